/* SPDX-License-Identifier: MIT */
/* The load side of bench/fanout.py, in C so that the client is not what is measured.
 *
 * usage: fanout_load HOST PORT GID TOKENS_FILE MESSAGES INFLIGHT
 *   TOKENS_FILE: the owner's token on the first line, then one member token per line.
 *
 * Opens one GET /v1/events per member, then posts MESSAGES messages as the owner over
 * INFLIGHT keep-alive connections (one request in flight on each), all on one epoll
 * loop.  Every frame is scanned for its event name and message text; a message counts
 * as delivered when every member's stream has it.  Then it previews the group's
 * dissolution (a blocking call, not timed) and requests it on a kept-alive poster
 * connection read by the same loop as the streams, and waits for the 202, every member's
 * dissolution.pending and (qund runs with cooling-off 0, so the group is marked in the
 * request's commit) group.dissolved.  Prints one
 * JSON object with the figures.  With no member tokens it only posts (and dissolves):
 * the same run's baseline of posts/s without fan-out.  With MESSAGES 0 it only dissolves
 * (bench/fanout.py's further dissolutions of groups of the same members). */
#include <sys/epoll.h>

#include "loadlib.h"

#define LINE_MAX_ 65536

typedef struct {
    int fd;
    int is_stream;
    char *buf; /* unconsumed bytes */
    size_t len, cap;
    int msg;        /* poster: message in flight, -1 when idle */
    int dissolving; /* the poster that requested the dissolution, until its answer */
} conn_t;

static const char *g_gid;
static char *g_owner;
static int g_members, g_messages;
static int *g_count; /* per message: streams that got it */
static double *g_sent, *g_done;
static int g_pending_seen, g_dissolved_seen;
static double g_pending_all, g_dissolved_all; /* when the last member had each */
static int g_delivered_all;                   /* messages every stream has */
static double g_last_delivery;
static int g_dissolve_status; /* the dissolution request's answer, 0 until it is complete */
static double g_dissolve_acked;

/* One blocking request/response on a fresh connection; returns the body (malloc'd). */
static char *call(const char *method, const char *path, const char *body, int *status) {
    int fd = dial();
    char *req;
    int n = asprintf(
        &req,
        "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
        "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
        method, path, g_host, g_owner, strlen(body), body);
    if (n < 0) die("asprintf");
    send_all(fd, req, (size_t)n);
    free(req);
    conn_t c = {0};
    char tmp[65536];
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0)
        BUF_APPEND(&c, tmp, (size_t)r);
    close(fd);
    if (!c.buf) die("empty answer");
    *status = atoi(c.buf + 9);
    char *b = strstr(c.buf, "\r\n\r\n");
    char *out = strdup(b ? b + 4 : "");
    free(c.buf);
    return out;
}

static void post_next(conn_t *c, int msg) {
    char body[64], req[1024];
    int bl = snprintf(body, sizeof body, "{\"text\":\"msg %d\"}", msg);
    int n = snprintf(req, sizeof req,
                     "POST /v1/groups/%s/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     g_gid, g_host, g_owner, bl, body);
    c->msg = msg;
    g_sent[msg] = now();
    send_all(c->fd, req, (size_t)n);
}

/* A poster's answer is complete: headers and Content-Length bytes of body. */
static int poster_answer(conn_t *c) {
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end) return 0;
    char *cl = strcasestr(c->buf, "Content-Length:");
    size_t body = cl && cl < end ? (size_t)atol(cl + 15) : 0;
    size_t total = (size_t)(end + 4 - c->buf) + body;
    if (c->len < total) return 0;
    if (strncmp(c->buf + 9, "201", 3) != 0) {
        fprintf(stderr, "post answered: %.200s\n", c->buf);
        exit(1);
    }
    BUF_CONSUME(c, total);
    return 1;
}

/* Scan complete lines of an event stream (chunk-size lines are skipped as noise). */
static void stream_lines(conn_t *c) {
    char *p = c->buf, *nl;
    while ((nl = memchr(p, '\n', c->len - (size_t)(p - c->buf)))) {
        *nl = 0;
        if (!strncmp(p, "data: ", 6)) {
            char *t = strstr(p, "\"text\":\"msg ");
            if (t) {
                int m = atoi(t + 12);
                if (m >= 0 && m < g_messages && ++g_count[m] == g_members) {
                    g_done[m] = g_last_delivery = now();
                    g_delivered_all++;
                }
            }
        } else if (!strncmp(p, "event: dissolution.pending", 26)) {
            if (++g_pending_seen == g_members) g_pending_all = now();
        } else if (!strncmp(p, "event: group.dissolved", 22)) {
            if (++g_dissolved_seen == g_members) g_dissolved_all = now();
        }
        p = nl + 1;
    }
    BUF_CONSUME(c, (size_t)(p - c->buf));
}

/* One epoll_wait and what arrived: stream lines are scanned; a poster whose answer is
 * complete posts the next message (or goes idle).  -1 on a timeout or a closed
 * connection. */
static int g_next, g_answered;
static int pump(int ep, const char *waiting_for) {
    struct epoll_event evs[256];
    static char tmp[65536];
    int n = epoll_wait(ep, evs, 256, 30000);
    if (n == 0) {
        fprintf(stderr, "timed out waiting for %s: %d answered, %d delivered to all, %d of %d pending\n",
                waiting_for, g_answered, g_delivered_all, g_pending_seen, g_members);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        ssize_t r = read(c->fd, tmp, sizeof tmp);
        if (r <= 0) {
            fprintf(stderr, "connection closed by qund\n");
            return -1;
        }
        BUF_APPEND(c, tmp, (size_t)r);
        if (c->is_stream) {
            stream_lines(c);
            continue;
        }
        if (c->dissolving) {
            char *end = strstr(c->buf, "\r\n\r\n");
            char *cl = end ? strcasestr(c->buf, "Content-Length:") : NULL;
            if (end && c->len >= (size_t)(end + 4 - c->buf) + (cl && cl < end ? (size_t)atol(cl + 15) : 0)) {
                g_dissolve_acked = now();
                g_dissolve_status = atoi(c->buf + 9);
                c->dissolving = 0;
            }
            continue;
        }
        while (c->msg >= 0 && poster_answer(c)) {
            g_answered++;
            if (!g_members) g_last_delivery = now(); /* the baseline: no streams */
            c->msg = -1;
            if (g_next < g_messages) post_next(c, g_next++);
        }
    }
    return 0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: fanout_load HOST PORT GID TOKENS_FILE MESSAGES INFLIGHT\n");
        return 2;
    }
    g_host = argv[1];
    g_port = atoi(argv[2]);
    g_gid = argv[3];
    g_messages = atoi(argv[5]);
    int inflight = atoi(argv[6]);
    FILE *f = fopen(argv[4], "r");
    if (!f) die(argv[4]);
    char line[512];
    char **tokens = NULL;
    int ntok = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        tokens = realloc(tokens, (size_t)(ntok + 1) * sizeof *tokens);
        tokens[ntok++] = strdup(line);
    }
    fclose(f);
    g_owner = tokens[0];
    g_members = ntok - 1;
    g_count = calloc((size_t)g_messages, sizeof *g_count);
    g_sent = calloc((size_t)g_messages, sizeof *g_sent);
    g_done = calloc((size_t)g_messages, sizeof *g_done);

    int ep = epoll_create1(0);
    int nconns = g_members + inflight;
    conn_t *conns = calloc((size_t)nconns, sizeof *conns);
    for (int i = 0; i < g_members; i++) {
        conn_t *c = &conns[i];
        c->fd = dial();
        c->is_stream = 1;
        char req[1024];
        int n = snprintf(req, sizeof req,
                         "GET /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", g_host,
                         tokens[i + 1]);
        send_all(c->fd, req, (size_t)n);
        char tmp[4096];
        while (!c->buf || !strstr(c->buf, "\r\n\r\n")) { /* the stream's headers */
            ssize_t r = read(c->fd, tmp, sizeof tmp);
            if (r <= 0) die("stream open");
            BUF_APPEND(c, tmp, (size_t)r);
        }
        if (strncmp(c->buf + 9, "200", 3)) {
            fprintf(stderr, "stream answered: %.200s\n", c->buf);
            return 1;
        }
        BUF_CONSUME(c, (size_t)(strstr(c->buf, "\r\n\r\n") + 4 - c->buf));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }

    /* 1. Messages. */
    g_delivered_all = g_members ? 0 : g_messages; /* the baseline waits for answers only */
    double t0 = now();
    for (int i = 0; i < inflight && g_next < g_messages; i++) {
        conn_t *c = &conns[g_members + i];
        c->fd = dial();
        c->msg = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        post_next(c, g_next++);
    }
    while (g_answered < g_messages || g_delivered_all < g_messages)
        if (pump(ep, "the messages") < 0) return 1;
    double elapsed = g_last_delivery - t0;
    double *lat = calloc((size_t)g_messages + 1, sizeof *lat); /* one zero with no messages */
    for (int m = 0; m < g_messages; m++)
        lat[m] = (g_members ? g_done[m] : g_last_delivery) - g_sent[m];
    qsort(lat, (size_t)g_messages, sizeof *lat, cmp);
    if (!g_messages) { /* a dissolution alone: its poster connection was not dialed */
        conn_t *c = &conns[g_members];
        c->fd = dial();
        c->msg = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        elapsed = 1;
    }

    /* 2. Dissolution: preview (outside the timing), request, every member's pending. */
    char path[256];
    int status;
    snprintf(path, sizeof path, "/v1/groups/%s/dissolution/preview", g_gid);
    char *prev = call("POST", path, "{\"messages\":\"keep\"}", &status);
    char *tok = strstr(prev, "\"confirmation_token\"");
    if (status != 200 || !tok) {
        fprintf(stderr, "preview answered %d: %s\n", status, prev);
        return 1;
    }
    tok = strchr(tok + 20, '"') + 1;
    *strchr(tok, '"') = 0;
    char body[512];
    snprintf(body, sizeof body, "{\"messages\":\"keep\",\"confirmation_token\":\"%s\"}", tok);
    /* On a kept-alive poster connection, read on the same loop as the streams: a member's
     * phone does not wait for the owner's answer to read its own stream. */
    conn_t *d = &conns[g_members];
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
    d->dissolving = 1;
    char *req;
    int rn = asprintf(&req,
                      "POST /v1/groups/%s/dissolution HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      g_gid, g_host, g_owner, strlen(body), body);
    if (rn < 0) die("asprintf");
    g_pending_seen = 0;
    double t1 = now();
    send_all(d->fd, req, (size_t)rn);
    free(req);
    while (!g_dissolve_status || g_pending_seen < g_members || g_dissolved_seen < g_members)
        if (pump(ep, "the dissolution") < 0) return 1;
    double acked = g_dissolve_acked;
    if (g_dissolve_status != 202) {
        fprintf(stderr, "dissolution answered %d\n", g_dissolve_status);
        return 1;
    }
    printf("{\"members\":%d,\"messages\":%d,\"inflight\":%d,\"seconds\":%.4f,\"deliveries_per_s\":%.0f,"
           "\"messages_per_s\":%.0f,\"lat_p50_ms\":%.2f,\"lat_p99_ms\":%.2f,\"lat_max_ms\":%.2f,"
           "\"dissolve_ack_ms\":%.2f,\"dissolve_notify_all_ms\":%.2f,\"notify_after_ack_ms\":%.2f,"
           "\"dissolved_all_ms\":%.2f}\n",
           g_members, g_messages, inflight, elapsed, (double)g_members * g_messages / elapsed,
           g_messages / elapsed, lat[g_messages / 2] * 1e3, lat[(int)(g_messages * 0.99)] * 1e3,
           lat[g_messages ? g_messages - 1 : 0] * 1e3, (acked - t1) * 1e3, (g_pending_all - t1) * 1e3,
           (g_pending_all - acked) * 1e3, (g_dissolved_all - t1) * 1e3);
    return 0;
}
