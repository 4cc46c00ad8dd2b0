/* SPDX-License-Identifier: MIT */
/* The HTTP server: one evhttp loop per worker thread, each on its own listening
 * socket bound with SO_REUSEPORT to the same address, so the kernel spreads
 * connections across loops.  Each worker has a read-only store connection and a
 * completion queue on which the group-commit writer hands back finished writes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "http.h"
#include "qun/util.h"
#include "worker.h"

qun_server_cfg_t qun_server_cfg = {
    .host = "127.0.0.1",
    .port = 8080,
    .threads = 2,
    .upload_limit = 64u << 20,
    .log_requests = true,
    .argon2_queue = 128,
    .upload_queue = 32,
};

static qun_writer_t *g_writer;
static _Atomic bool g_ready;
static _Atomic bool g_stopping; /* SIGTERM or SIGINT came: new requests are refused */
static qun_worker_t *g_workers;
static int g_nworkers;

qun_writer_t *qun_server_writer(void) {
    return g_writer;
}
bool qun_server_ready(void) {
    return atomic_load(&g_ready);
}
bool qun_server_stopping(void) {
    return atomic_load(&g_stopping);
}

/* SO_REUSEPORT lets our loops share the port, but it would also let a second qund
 * (or anything else using the option) bind the same port silently and steal half the
 * connections.  A plain bind without the option fails on any port in use, so try one
 * first. */
static qun_rc port_free(const char *host, int port, qun_err_t *err) {
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
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
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
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
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0 ||
        /* Accepted sockets inherit it (Linux): an answer written in several pieces (a
         * large /sync, a file) must not wait on the client's delayed ACK for its tail. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        qun_fail(err, QUN_INTERNAL, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Writes handed to the writer whose outcome a loop has not taken back yet: a stop waits
 * for them before it frees the loops and their requests. */
static atomic_int g_writes_out;

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
        atomic_fetch_sub(&g_writes_out, 1);
        if (r->slow_out) {
            r->slow_out = false;
            qun_router_slow_done(r);
            list = next;
            continue;
        }
        if (r->rc == QUN_OK && list->rc != QUN_OK) { /* the commit failed */
            r->rc = list->rc;
            r->err = list->err;
        }
        if (r->reauth) {
            qun_router_reauth(r);
            list = next;
            continue;
        }
        void (*resume)(qun_req_t *) = r->resume;
        r->resume = NULL;
        if (resume && r->rc == QUN_OK)
            resume(r);
        else
            qun_req_finish(r);
        list = next;
    }
}

void qun_worker_submit_write(qun_req_t *r, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *)) {
    r->wop.fn = fn;
    r->wop.done = write_done;
    r->wop.arg = r;
    atomic_fetch_add(&g_writes_out, 1);
    qun_writer_submit(g_writer, &r->wop);
}

/* Slow work comes back through the same completion queue as writes, and a stop waits for
 * it as it does for them (settle_writes), so it counts among g_writes_out. */
bool qun_worker_submit_slow(qun_req_t *r) {
    r->wop.arg = r;
    r->wop.rc = QUN_OK;
    r->slow_out = true;
    atomic_fetch_add(&g_writes_out, 1);
    if (qun_slow_submit(r)) return true;
    atomic_fetch_sub(&g_writes_out, 1);
    r->slow_out = false;
    return false;
}

void qun_worker_slow_done(qun_req_t *r) {
    write_done(&r->wop);
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

/* ---- accepting when descriptors run out ----
 * A listening socket with a connection waiting stays readable while accept() fails
 * with EMFILE, so a loop that only retries spins.  On a failed accept the worker
 * instead answers what waits with a reserved descriptor (a short 503, so clients
 * learn at once rather than time out), then stops listening for ACCEPT_BACKOFF_MS;
 * connections it already has are served as usual meanwhile. */
#define ACCEPT_BACKOFF_MS 100
#define SHED_MAX 16 /* connections answered 503 per failed accept */

static char g_shed_answer[512];
static size_t g_shed_len;

static void shed_answer_init(void) {
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"type\":\"urn:qun:problem:%s\",\"title\":\"%s\",\"status\":503,"
                     "\"detail\":\"%s\",\"code\":\"%s\"}",
                     qun_rc_name(QUN_DESCRIPTORS_EXHAUSTED), qun_rc_title(QUN_DESCRIPTORS_EXHAUSTED),
                     qun_rc_title(QUN_DESCRIPTORS_EXHAUSTED), qun_rc_name(QUN_DESCRIPTORS_EXHAUSTED));
    int m = snprintf(g_shed_answer, sizeof g_shed_answer,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                     "Retry-After: 1\r\nCache-Control: no-store\r\nConnection: close\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     n, body);
    g_shed_len = (size_t)m;
}

/* Answer up to SHED_MAX connections waiting on one listening socket 503, in the one free
 * descriptor slot. */
static void shed_listener(int lfd) {
    for (int i = 0; i < SHED_MAX; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        /* Read what the client sent: closing with unread input resets the connection,
         * and a reset may destroy the answer before the client reads it. */
        char sink[4096];
        for (int k = 0; k < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; k++) {
        }
        ssize_t sent = send(fd, g_shed_answer, g_shed_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)sent; /* best effort: a client that cannot take 300 bytes learns from the close */
        shutdown(fd, SHUT_WR);
        close(fd);
    }
}

/* Shed through the reserved descriptor's slot, on every loop's listening socket: the
 * descriptor table is the process's, so when one loop runs out all do, and a loop whose
 * reserve another thread took (its slot filled between the close and the accept) cannot
 * answer its own clients until a descriptor frees: the kernel spreads new connections
 * over the loops' sockets (SO_REUSEPORT), and those would wait.  One loop sheds at a
 * time, so two cannot take each other's slot. */
static pthread_mutex_t g_shed_mu = PTHREAD_MUTEX_INITIALIZER;

static void shed(qun_worker_t *w) {
    pthread_mutex_lock(&g_shed_mu);
    if (w->reserve_fd < 0) w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd >= 0) {
        close(w->reserve_fd);
        shed_listener(evconnlistener_get_fd(w->listener));
        for (int i = 0; i < g_nworkers; i++)
            if (&g_workers[i] != w) shed_listener(evconnlistener_get_fd(g_workers[i].listener));
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    pthread_mutex_unlock(&g_shed_mu);
}

/* evhttp owns the listener's callback argument: find the worker by its listener. */
static void accept_error(struct evconnlistener *lev, void *arg) {
    (void)arg;
    int e = errno;
    qun_worker_t *w = NULL;
    for (int i = 0; i < g_nworkers && !w; i++)
        if (g_workers[i].listener == lev) w = &g_workers[i];
    if (!w) return;
    int64_t now = qun_mono_ms();
    if (now - w->starved_log_ms >= 10000) { /* once in a while, not once per retry */
        w->starved_log_ms = now;
        qun_log("warn", "loop %d cannot accept connections: %s; answering 503 and retrying every %d ms",
                w->index, strerror(e), ACCEPT_BACKOFF_MS);
    }
    if (e == EMFILE || e == ENFILE) shed(w);
    evconnlistener_disable(lev);
    struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
    evtimer_add(w->accept_retry, &tv);
}

static void accept_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    qun_worker_t *w = arg;
    if (w->reserve_fd < 0) w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    evconnlistener_enable(w->listener);
}

/* After the loops stopped: turn them (on this thread; theirs have ended) until every write
 * they handed to the writer came back and its request was answered, so that no done
 * callback finds a freed loop or request.  A request whose answer queues another write
 * is waited for too; 10 s at most.  Turning a loop also reads its connections: so that
 * clients that keep posting cannot keep it busy, it accepts no connection any more and
 * the router answers what still arrives 503 (qun_server_stopping). */
static void settle_writes(void) {
    for (int i = 0; i < g_nworkers; i++) {
        event_del(g_workers[i].accept_retry);
        evconnlistener_disable(g_workers[i].listener);
    }
    for (int spins = 0; atomic_load(&g_writes_out) > 0 && spins < 10000; spins++) {
        for (int i = 0; i < g_nworkers; i++)
            event_base_loop(g_workers[i].base, EVLOOP_NONBLOCK);
        if (atomic_load(&g_writes_out) > 0) usleep(1000);
    }
    if (atomic_load(&g_writes_out) > 0)
        qun_log("warn", "http: %d writes still queued at the stop", atomic_load(&g_writes_out));
}

static void stop_cb(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    (void)arg;
    atomic_store(&g_stopping, true);
    if (qun_server_cfg.on_stopping) qun_server_cfg.on_stopping();
    for (int i = 0; i < g_nworkers; i++)
        event_base_loopexit(g_workers[i].base, NULL);
}

static void hook_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    void (**hook)(void) = arg; /* a field of qun_server_cfg */
    (*hook)();
}

/* SIGHUP: the certificate and key (src/http/tls.c), then what the service manager asked
 * for (the policy packs, src/qund/main.c). */
static void hup_cb(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    (void)arg;
    qun_tls_reload();
    if (qun_server_cfg.on_reload) qun_server_cfg.on_reload();
}

static void *worker_main(void *arg) {
    qun_worker_t *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static qun_rc worker_init(qun_worker_t *w, int index, qun_err_t *err) {
    w->index = index;
    pthread_mutex_init(&w->mu, NULL);
    /* The epoll backend's change list: an event disabled and enabled again within one
     * turn of the loop (evhttp stops reading while a request is handled, a bufferevent
     * stops writing once its output drains) costs no epoll_ctl(2) until the turn ends,
     * and then at most one.  13 % more hello-world answers a second, 4 % more posts
     * (bench/README.md, "The loops' change list").  libevent's one condition: no
     * descriptor of a loop is a dup(2) of another, which holds (qun never dups). */
    struct event_config *cfg = event_config_new();
    if (cfg) event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = cfg ? event_base_new_with_config(cfg) : NULL;
    if (cfg) event_config_free(cfg);
    w->http = w->base ? evhttp_new(w->base) : NULL;
    if (!w->base || !w->http) return qun_fail(err, QUN_INTERNAL, "cannot create event loop");
    /* The gate (gate.c) enforces both limits first and answers in problem+json;
     * evhttp's own checks, which answer in HTML, stay as a backstop it never reaches. */
    w->gate = qun_gate_loop_new();
    w->actors = qun_actor_cache_new();
    evhttp_set_bevcb(w->http, qun_server_cfg.tls_cert ? qun_tls_bev : qun_gate_bev, w->gate);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)qun_server_cfg.upload_limit);
    evhttp_set_max_headers_size(w->http, QUN_HEAD_MAX + 4096);
    evhttp_set_timeout(w->http, 60);
    /* Every method reaches the router, which answers 405 (with Allow) or 404: evhttp
     * would answer a method outside this set 501 in HTML.  Methods evhttp does not
     * know carry its private bit 1 << 15, hence all sixteen bits. */
    evhttp_set_allowed_methods(w->http, 0xffff);
    evhttp_set_gencb(w->http, qun_router_dispatch, w);
    if (qun_server_cfg.bench_hello) evhttp_set_cb(w->http, "/bench/hello", bench_hello, NULL);
    int fd = listen_socket(qun_server_cfg.host, qun_server_cfg.port, err);
    if (fd < 0) return QUN_INTERNAL;
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(w->http, fd);
    if (!bound) {
        close(fd);
        return qun_fail(err, QUN_INTERNAL, "evhttp cannot accept on the socket");
    }
    w->listener = evhttp_bound_socket_get_listener(bound);
    w->accept_retry = evtimer_new(w->base, accept_retry, w);
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    evconnlistener_set_error_cb(w->listener, accept_error);
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
    shed_answer_init();
    qun_rc rc = port_free(qun_server_cfg.host, qun_server_cfg.port, err);
    for (int i = 0; i < g_nworkers && rc == QUN_OK; i++)
        rc = worker_init(&g_workers[i], i, err);
    if (rc != QUN_OK) return rc;
    rc = qun_slow_start(g_nworkers, err);
    if (rc != QUN_OK) return rc;
    qun_events_start(writer, g_workers, g_nworkers);
    /* libevent restores a signal's earlier disposition when its event is freed.  Ignoring
     * them first makes that disposition "ignore", so a second TERM (or INT, or a HUP) that
     * comes while qund settles and closes its store changes nothing instead of killing it
     * half-way with the default action: the first one already started a stop that ends. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    struct event *sigint = evsignal_new(g_workers[0].base, SIGINT, stop_cb, NULL);
    struct event *sigterm = evsignal_new(g_workers[0].base, SIGTERM, stop_cb, NULL);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    /* The service manager's hooks: SIGHUP, and a tick that proves the first loop turns. */
    struct event *sighup = evsignal_new(g_workers[0].base, SIGHUP, hup_cb, NULL), *tick = NULL;
    event_add(sighup, NULL);
    if (qun_server_cfg.on_tick && qun_server_cfg.tick_usec) {
        struct timeval tv = {(time_t)(qun_server_cfg.tick_usec / 1000000),
                             (suseconds_t)(qun_server_cfg.tick_usec % 1000000)};
        tick = event_new(g_workers[0].base, -1, EV_PERSIST, hook_cb, &qun_server_cfg.on_tick);
        event_add(tick, &tv);
    }
    qun_log("info", "qund listening on %s:%d (%s) with %d loops", qun_server_cfg.host, qun_server_cfg.port,
            qun_server_cfg.tls_cert ? "HTTPS" : "HTTP", g_nworkers);
    if (qun_proxy_count())
        qun_log("info", "client addresses from X-Forwarded-For/Forwarded of %d trusted proxy networks",
                qun_proxy_count());
    for (int i = 1; i < g_nworkers; i++)
        qun_thread_start(&g_workers[i].thread, "qun-loop", worker_main, &g_workers[i]);
    atomic_store(&g_ready, true); /* a loop may answer /readyz at once: every thread is named */
    if (qun_server_cfg.on_ready) qun_server_cfg.on_ready();
    event_base_dispatch(g_workers[0].base);
    atomic_store(&g_ready, false);
    if (tick) event_free(tick);
    for (int i = 1; i < g_nworkers; i++)
        pthread_join(g_workers[i].thread, NULL);
    settle_writes();
    qun_slow_stop();
    qun_events_quiesce();
    event_free(sigint);
    event_free(sigterm);
    event_free(sighup);
    for (int i = 0; i < g_nworkers; i++) {
        qun_worker_t *w = &g_workers[i];
        evhttp_free(w->http);
        qun_events_loop_free(i);
        event_free(w->done_ev);
        event_free(w->accept_retry);
        qun_gate_loop_free(w->gate);
        qun_actor_cache_free(w->actors);
        if (w->reserve_fd >= 0) close(w->reserve_fd);
        event_base_free(w->base);
        qun_db_close(w->db);
        pthread_mutex_destroy(&w->mu);
    }
    qun_events_stop();
    free(g_workers);
    qun_tls_free();
    return QUN_OK;
}
