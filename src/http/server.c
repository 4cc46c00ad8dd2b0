/* SPDX-License-Identifier: MIT */
/* The HTTP server: one evhttp loop per worker thread, each on its own listening
 * socket bound with SO_REUSEPORT to the same address, so the kernel spreads
 * connections across loops.  Each worker has a read-only store connection and a
 * completion queue on which the group-commit writer hands back finished writes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "http.h"
#include "qun/util.h"
#include "worker.h"

qun_server_cfg_t qun_server_cfg = {
    .host = "127.0.0.1", .port = 8080, .threads = 2, .upload_limit = 64u << 20,
    .log_requests = true,
};

static qun_writer_t *g_writer;
static _Atomic bool g_ready;
static qun_worker_t *g_workers;
static int g_nworkers;

qun_writer_t *qun_server_writer(void) { return g_writer; }
bool qun_server_ready(void) { return atomic_load(&g_ready); }

/* SO_REUSEPORT lets our loops share the port, but it would also let a second qund
 * (or anything else using the option) bind the same port silently and steal half the
 * connections.  A plain bind without the option fails on any port in use, so try one
 * first. */
static qun_rc port_free(const char *host, int port, qun_err_t *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    if (getaddrinfo(host, ports, &hints, &res) != 0) return QUN_OK; /* listen_socket reports it */
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    qun_rc rc = QUN_OK;
    if (fd >= 0 && bind(fd, res->ai_addr, res->ai_addrlen) != 0 && errno == EADDRINUSE)
        rc = qun_fail(err, QUN_INTERNAL, "%s:%d is already in use", host, port);
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return rc;
}

static int listen_socket(const char *host, int port, qun_err_t *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai != 0) {
        qun_fail(err, QUN_INTERNAL, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        qun_fail(err, QUN_INTERNAL, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* The writer's done callback: move the request to its worker's completion queue. */
static void write_done(qun_wop_t *op) {
    qun_req_t *r = op->arg;
    qun_worker_t *w = r->w;
    pthread_mutex_lock(&w->mu);
    op->next = w->done_head;
    w->done_head = op;
    pthread_mutex_unlock(&w->mu);
    event_active(w->done_ev, EV_READ, 0);
}

static void drain_done(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    qun_worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    qun_wop_t *list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->mu);
    while (list) {
        qun_wop_t *next = list->next;
        qun_req_t *r = list->arg;
        if (r->rc == QUN_OK && list->rc != QUN_OK) { /* the commit failed */
            r->rc = list->rc;
            r->err = list->err;
        }
        void (*resume)(qun_req_t *) = r->resume;
        r->resume = NULL;
        if (resume && r->rc == QUN_OK) resume(r);
        else qun_req_finish(r);
        list = next;
    }
}

void qun_worker_submit_write(qun_req_t *r, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *)) {
    r->wop.fn = fn;
    r->wop.done = write_done;
    r->wop.arg = r;
    qun_writer_submit(g_writer, &r->wop);
}

/* The benchmarks' baseline: the cheapest JSON answer evhttp can give, on the same
 * loops and sockets as the API (only with the bench_hello setting). */
static void bench_hello(struct evhttp_request *ev, void *arg) {
    (void)arg;
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, "{\"hello\":\"world\"}", 17);
    evhttp_add_header(evhttp_request_get_output_headers(ev), "Content-Type", "application/json");
    evhttp_send_reply(ev, 200, "OK", buf);
    evbuffer_free(buf);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    (void)arg;
    for (int i = 0; i < g_nworkers; i++) event_base_loopexit(g_workers[i].base, NULL);
}

static void *worker_main(void *arg) {
    qun_worker_t *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static qun_rc worker_init(qun_worker_t *w, int index, qun_err_t *err) {
    w->index = index;
    pthread_mutex_init(&w->mu, NULL);
    w->base = event_base_new();
    w->http = evhttp_new(w->base);
    if (!w->base || !w->http) return qun_fail(err, QUN_INTERNAL, "cannot create event loop");
    evhttp_set_max_body_size(w->http, (ev_ssize_t)qun_server_cfg.upload_limit);
    evhttp_set_max_headers_size(w->http, 64 * 1024);
    evhttp_set_timeout(w->http, 60);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(w->http, qun_router_dispatch, w);
    if (qun_server_cfg.bench_hello) evhttp_set_cb(w->http, "/bench/hello", bench_hello, NULL);
    int fd = listen_socket(qun_server_cfg.host, qun_server_cfg.port, err);
    if (fd < 0) return QUN_INTERNAL;
    if (!evhttp_accept_socket_with_handle(w->http, fd)) {
        close(fd);
        return qun_fail(err, QUN_INTERNAL, "evhttp cannot accept on the socket");
    }
    w->done_ev = event_new(w->base, -1, EV_PERSIST | EV_READ, drain_done, w);
    qun_rc rc = qun_db_open(qun_server_cfg.db_path, true, false, &w->db, err);
    return rc;
}

qun_rc qun_server_run(qun_writer_t *writer, qun_err_t *err) {
    g_writer = writer;
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    g_nworkers = qun_server_cfg.threads > 0 ? qun_server_cfg.threads : 1;
    g_workers = qun_xcalloc((size_t)g_nworkers, sizeof *g_workers);
    qun_rc rc = port_free(qun_server_cfg.host, qun_server_cfg.port, err);
    for (int i = 0; i < g_nworkers && rc == QUN_OK; i++) rc = worker_init(&g_workers[i], i, err);
    if (rc != QUN_OK) return rc;
    qun_events_start(writer, g_workers, g_nworkers);
    struct event *sigint = evsignal_new(g_workers[0].base, SIGINT, stop_cb, NULL);
    struct event *sigterm = evsignal_new(g_workers[0].base, SIGTERM, stop_cb, NULL);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    qun_log("info", "qund listening on %s:%d with %d loops", qun_server_cfg.host,
            qun_server_cfg.port, g_nworkers);
    atomic_store(&g_ready, true);
    for (int i = 1; i < g_nworkers; i++)
        pthread_create(&g_workers[i].thread, NULL, worker_main, &g_workers[i]);
    event_base_dispatch(g_workers[0].base);
    atomic_store(&g_ready, false);
    for (int i = 1; i < g_nworkers; i++) pthread_join(g_workers[i].thread, NULL);
    qun_events_quiesce();
    event_free(sigint);
    event_free(sigterm);
    for (int i = 0; i < g_nworkers; i++) {
        qun_worker_t *w = &g_workers[i];
        evhttp_free(w->http);
        qun_events_loop_free(i);
        event_free(w->done_ev);
        event_base_free(w->base);
        qun_db_close(w->db);
        pthread_mutex_destroy(&w->mu);
    }
    qun_events_stop();
    free(g_workers);
    return QUN_OK;
}
