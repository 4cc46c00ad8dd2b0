/* SPDX-License-Identifier: MIT */
/* The load side of bench/mx_media.py (benchmark 12), in C so that the client is not what is
 * measured: one epoll loop, hand-written HTTP/1.1, keep-alive connections, non-blocking
 * writes so that several uploads are in flight at once.
 *
 *   mx_media_load upload HOST PORT TOKEN PATH_PREFIX SIZE COUNT INFLIGHT TAG OUTFILE
 *     COUNT uploads of SIZE bytes to PATH_PREFIX "<TAG>-<i>.bin" (the prefix ends with the
 *     name's query parameter: "/_matrix/media/v3/upload?filename=" or
 *     "/v1/groups/GID/files?name="), INFLIGHT connections each sending its next upload as soon
 *     as the previous one is answered.  Every file is the same SIZE pseudo-random bytes except
 *     its first 32, which hold TAG and i, so no upload finds its blob already stored (blobs are
 *     content-addressed).  Any answer but 200 or 201 fails the run.  OUTFILE gets one line per
 *     upload: "i<TAB>answer body".  Prints one JSON object: bytes, seconds, MB/s (10^6 bytes).
 *
 *   mx_media_load download HOST PORT TOKEN PATHS SIZE COUNT INFLIGHT
 *     COUNT GETs of the paths listed in the file PATHS (one per line, in turn) on INFLIGHT
 *     keep-alive connections; every answer must be a 200 of exactly SIZE bytes (Content-Length
 *     or chunked; the bytes are counted, not kept).  Prints bytes, seconds and MB/s.
 *
 *   mx_media_load get HOST PORT REPS TOKEN_A PATH_A TOKEN_B PATH_B
 *     REPS timed GETs of each, alternating A and B, each side on a keep-alive connection of its
 *     own, after three untimed warm-ups each, the client acknowledging at once (TCP_QUICKACK:
 *     see bench/README.md, benchmark 11); prints the medians, quartiles and answer sizes.
 *
 *   mx_media_load wake HOST PORT POSTER ROUNDS METRIC|- SETTLE_MS TOKEN_A SINCE_A GIDS_A
 *                      TOKEN_B SINCE_B GIDS_B
 *     Readers A and B each hold one parked GET /_matrix/client/v3/sync?since=...&timeout=30000
 *     (re-parked at once with each answer's next_batch).  Each round posts one message as
 *     POSTER (POST /v1/groups/GID/messages) to the next group of A's list (a file of ids), times
 *     it until A's sync answers with it, then the same for B (the order swaps every round);
 *     before each post both syncs are parked (the gauge METRIC reaches 2, or SETTLE_MS of
 *     quiet).  Prints the post -> answer medians and quartiles of each side.
 *
 * Exits non-zero with a message on stderr at the first unexpected answer. */
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "loadlib.h"

#define PREFIX_BYTES 32 /* the unique head of every uploaded file */

enum { C_SIZE, C_DATA, C_DATA_END, C_TRAILER };

typedef struct {
    int fd;
    int side;  /* wake: 0 = A, 1 = B, 2 = the poster */
    int busy;  /* a request is in flight */
    int index; /* upload: the file being sent */
    /* What is left to send: the head, the unique prefix, the shared body. */
    char head[2048];
    unsigned char prefix[PREFIX_BYTES];
    struct iovec iov[3];
    int iov_at, niov;
    double sent_at;
    /* The answer being read. */
    char *h; /* header bytes until the blank line */
    size_t hlen, hcap;
    int in_body, chunked, cstate, status, keep;
    long long left; /* Content-Length or chunk bytes still to come */
    char line[128]; /* a chunk-size or trailer line */
    size_t line_len;
    char *body; /* the body when keep is set */
    size_t blen, bcap;
    long long body_bytes;
} conn_t;

static int g_quickack;

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n);
    if (!p) die("realloc");
    return p;
}

/* A connection of the epoll loop: loadlib's, non-blocking. */
static int dial_nb(void) {
    int fd = dial();
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
    return fd;
}

/* Write what the socket takes of c's iovecs; returns 1 when all is sent. */
static int push(conn_t *c) {
    while (c->iov_at < c->niov) {
        ssize_t w = writev(c->fd, c->iov + c->iov_at, c->niov - c->iov_at);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            die("writev");
        }
        size_t n = (size_t)w;
        while (n && c->iov_at < c->niov) {
            struct iovec *v = &c->iov[c->iov_at];
            size_t k = n < v->iov_len ? n : v->iov_len;
            v->iov_base = (char *)v->iov_base + k;
            v->iov_len -= k;
            n -= k;
            if (!v->iov_len) c->iov_at++;
        }
    }
    return 1;
}

/* A small request (no body, or a short one in head): sent whole, waiting out EAGAIN. */
static void send_small(conn_t *c) {
    c->iov[0] = (struct iovec){c->head, strlen(c->head)};
    c->niov = 1;
    c->iov_at = 0;
    while (!push(c)) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        poll(&p, 1, 1000);
    }
    c->busy = 1;
    c->sent_at = now();
}

static void reset_answer(conn_t *c) {
    c->hlen = 0;
    c->in_body = c->chunked = c->status = 0;
    c->cstate = C_SIZE;
    c->left = 0;
    c->line_len = 0;
    c->blen = 0;
    c->body_bytes = 0;
}

static void body_bytes(conn_t *c, const char *p, size_t n) {
    c->body_bytes += (long long)n;
    if (!c->keep) return;
    if (c->blen + n + 1 > c->bcap) {
        c->bcap = (c->blen + n + 1) * 2;
        c->body = xrealloc(c->body, c->bcap);
    }
    memcpy(c->body + c->blen, p, n);
    c->blen += n;
    c->body[c->blen] = 0;
}

/* Feed bytes of the answer; returns 1 when it is complete (its body in c->body if keep). */
static int feed(conn_t *c, const char *p, size_t n) {
    while (n) {
        if (!c->in_body) {
            /* Headers: append a byte at a time up to the blank line (they are short). */
            if (c->hlen + 2 > c->hcap) {
                c->hcap = c->hcap ? c->hcap * 2 : 1024;
                c->h = xrealloc(c->h, c->hcap);
            }
            c->h[c->hlen++] = *p++;
            n--;
            c->h[c->hlen] = 0;
            if (c->hlen < 4 || memcmp(c->h + c->hlen - 4, "\r\n\r\n", 4)) continue;
            c->status = atoi(c->h + 9);
            c->in_body = 1;
            c->chunked = strcasestr(c->h, "\r\nTransfer-Encoding: chunked") != NULL;
            char *cl = strcasestr(c->h, "\r\nContent-Length:");
            c->left = c->chunked ? 0 : cl ? atoll(cl + 17) : 0;
            if (c->keep) body_bytes(c, "", 0);
            if (!c->chunked && c->left == 0) {
                if (n) fail("%s: bytes after a complete answer", "answer");
                return 1;
            }
            continue;
        }
        if (!c->chunked || c->cstate == C_DATA) {
            size_t k = (long long)n < c->left ? n : (size_t)c->left;
            body_bytes(c, p, k);
            p += k;
            n -= k;
            c->left -= (long long)k;
            if (c->left) continue;
            if (!c->chunked) {
                if (n) fail("%s: bytes after a complete answer", "answer");
                return 1;
            }
            c->cstate = C_DATA_END;
            c->line_len = 0;
            continue;
        }
        /* Chunk-size lines, the CRLF after each chunk's data, and the trailer lines. */
        char ch = *p++;
        n--;
        if (c->line_len + 1 >= sizeof c->line) fail("%s: chunk line too long", "answer");
        c->line[c->line_len++] = ch;
        c->line[c->line_len] = 0;
        if (ch != '\n') continue;
        if (c->cstate == C_DATA_END) {
            c->cstate = C_SIZE;
        } else if (c->cstate == C_SIZE) {
            c->left = strtoll(c->line, NULL, 16);
            c->cstate = c->left ? C_DATA : C_TRAILER;
        } else if (c->line_len <= 2) { /* the blank line that ends the trailer */
            if (n) fail("%s: bytes after a complete answer", "answer");
            return 1;
        }
        c->line_len = 0;
    }
    return 0;
}

/* Read what is there; returns 1 when the answer is complete.  The peer closing is fatal. */
static int fill(conn_t *c) {
    static char tmp[1 << 18];
    for (;;) {
        if (g_quickack) {
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        }
        ssize_t r = read(c->fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return 0;
        if (r < 0) die("read");
        if (r == 0) fail("%s: connection closed by qund", "answer");
        if (feed(c, tmp, (size_t)r)) return 1;
    }
}

static void watch(int ep, conn_t *c, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pick(const double *sorted, int n, double p) {
    int i = (int)(p * n);
    return sorted[i < n ? i : n - 1];
}

/* The same pseudo-random bytes every run (xorshift): incompressible, like photos. */
static unsigned char *pattern(size_t size) {
    unsigned char *b = malloc(size ? size : 1);
    if (!b) die("malloc");
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)(x >> 32);
    }
    return b;
}

static char **read_lines(const char *file, int *count) {
    FILE *f = fopen(file, "r");
    if (!f) die(file);
    char line[2048], **out = NULL;
    *count = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        out = xrealloc(out, (size_t)(*count + 1) * sizeof *out);
        out[(*count)++] = strdup(line);
    }
    fclose(f);
    if (!*count) fail("%s: no lines", file);
    return out;
}

static void close_all(conn_t *conns, int n) {
    for (int i = 0; i < n; i++) {
        if (conns[i].fd > 0) close(conns[i].fd);
        free(conns[i].h);
        free(conns[i].body);
    }
    free(conns);
}

/* ---- upload ---- */

static int cmd_upload(char **argv) {
    g_host = argv[0];
    g_port = atoi(argv[1]);
    const char *token = argv[2], *prefix = argv[3], *tag = argv[7];
    size_t size = (size_t)atoll(argv[4]);
    int count = atoi(argv[5]), inflight = atoi(argv[6]);
    if (size <= PREFIX_BYTES || count < 1 || inflight < 1)
        fail("%s: size > 32, count and inflight >= 1", "upload");
    FILE *out = fopen(argv[8], "w");
    if (!out) die(argv[8]);
    unsigned char *data = pattern(size);
    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)inflight, sizeof *conns);
    if (!conns) die("calloc");
    double *lat = calloc((size_t)count, sizeof *lat);
    if (!lat) die("calloc");
    int next = 0, done = 0;
    double t0 = now();
    for (int i = 0; i < inflight; i++) {
        conns[i].fd = dial_nb();
        conns[i].keep = 1;
        watch(ep, &conns[i], EPOLLIN, EPOLL_CTL_ADD);
    }
    while (done < count) {
        for (int i = 0; i < inflight && next < count; i++) {
            conn_t *c = &conns[i];
            if (c->busy) continue;
            c->index = next++;
            reset_answer(c);
            snprintf(c->head, sizeof c->head,
                     "POST %s%s-%d.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                     prefix, tag, c->index, g_host, token, size);
            memcpy(c->prefix, data, PREFIX_BYTES);
            snprintf((char *)c->prefix, PREFIX_BYTES, "qun bench12 %s %d", tag, c->index);
            c->iov[0] = (struct iovec){c->head, strlen(c->head)};
            c->iov[1] = (struct iovec){c->prefix, PREFIX_BYTES};
            c->iov[2] = (struct iovec){data + PREFIX_BYTES, size - PREFIX_BYTES};
            c->niov = 3;
            c->iov_at = 0;
            c->busy = 1;
            c->sent_at = now();
            if (!push(c)) watch(ep, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        }
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 60000);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("%s: nothing happened for 60 s", "upload");
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if ((evs[k].events & EPOLLOUT) && c->iov_at < c->niov && push(c))
                watch(ep, c, EPOLLIN, EPOLL_CTL_MOD);
            if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || !fill(c)) continue;
            if (c->status != 200 && c->status != 201) {
                fprintf(stderr, "upload %d answered %d: %.300s\n", c->index, c->status, c->body);
                return 1;
            }
            if (c->iov_at < c->niov) fail("%s: answered before the body was sent", "upload");
            lat[done++] = now() - c->sent_at;
            fprintf(out, "%d\t%s\n", c->index, c->body);
            c->busy = 0;
        }
    }
    double secs = now() - t0;
    fclose(out);
    qsort(lat, (size_t)count, sizeof *lat, cmp);
    printf("{\"count\":%d,\"size\":%zu,\"bytes\":%lld,\"seconds\":%.4f,\"mb_per_s\":%.2f,\"p50_ms\":%.2f,"
           "\"p90_ms\":%.2f}\n",
           count, size, (long long)size * count, secs, (double)size * count / secs / 1e6,
           pick(lat, count, 0.5) * 1e3, pick(lat, count, 0.9) * 1e3);
    close_all(conns, inflight);
    free(lat);
    free(data);
    close(ep);
    return 0;
}

/* ---- download ---- */

static int cmd_download(char **argv) {
    g_host = argv[0];
    g_port = atoi(argv[1]);
    const char *token = argv[2];
    int npaths;
    char **paths = read_lines(argv[3], &npaths);
    long long size = atoll(argv[4]);
    int count = atoi(argv[5]), inflight = atoi(argv[6]);
    if (count < 1 || inflight < 1) fail("%s: count and inflight >= 1", "download");
    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)inflight, sizeof *conns);
    if (!conns) die("calloc");
    double *lat = calloc((size_t)count, sizeof *lat);
    if (!lat) die("calloc");
    int next = 0, done = 0;
    double t0 = now();
    for (int i = 0; i < inflight; i++) {
        conns[i].fd = dial_nb();
        watch(ep, &conns[i], EPOLLIN, EPOLL_CTL_ADD);
    }
    while (done < count) {
        for (int i = 0; i < inflight && next < count; i++) {
            conn_t *c = &conns[i];
            if (c->busy) continue;
            c->index = next;
            reset_answer(c);
            snprintf(c->head, sizeof c->head,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", paths[next % npaths],
                     g_host, token);
            next++;
            send_small(c);
        }
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 60000);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("%s: nothing happened for 60 s", "download");
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (!fill(c)) continue;
            if (c->status != 200 || c->body_bytes != size) {
                fprintf(stderr, "%s answered %d with %lld bytes, expected 200 with %lld\n%s\n",
                        paths[c->index % npaths], c->status, c->body_bytes, size, c->h);
                return 1;
            }
            lat[done++] = now() - c->sent_at;
            c->busy = 0;
        }
    }
    double secs = now() - t0;
    qsort(lat, (size_t)count, sizeof *lat, cmp);
    printf("{\"count\":%d,\"size\":%lld,\"bytes\":%lld,\"seconds\":%.4f,\"mb_per_s\":%.2f,\"p50_ms\":%.2f,"
           "\"p90_ms\":%.2f}\n",
           count, size, size * count, secs, (double)size * count / secs / 1e6, pick(lat, count, 0.5) * 1e3,
           pick(lat, count, 0.9) * 1e3);
    close_all(conns, inflight);
    for (int i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    free(lat);
    close(ep);
    return 0;
}

/* ---- get: two requests alternating ---- */

/* One GET on c, waited for; returns its time.  It starts 50 ms after the previous one so that
 * qund has finished with the previous answer and each request meets an idle server. */
static double timed_get(conn_t *c, const char *token, const char *path) {
    struct timespec pause = {0, 50000000L};
    nanosleep(&pause, NULL);
    reset_answer(c);
    snprintf(c->head, sizeof c->head, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", path,
             g_host, token);
    double t0 = now();
    send_small(c);
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 60000) <= 0) fail("%s: no answer within 60 s", path);
        if (fill(c)) break;
    }
    double t = now() - t0;
    if (c->status != 200) {
        fprintf(stderr, "%s answered %d: %.300s\n", path, c->status, c->body ? c->body : "");
        exit(1);
    }
    c->busy = 0;
    return t;
}

static int cmd_get(char **argv) {
    g_host = argv[0];
    g_port = atoi(argv[1]);
    int reps = atoi(argv[2]);
    const char *tok[2] = {argv[3], argv[5]}, *path[2] = {argv[4], argv[6]};
    if (reps < 1) fail("%s: reps >= 1", argv[2]);
    g_quickack = 1;
    conn_t c[2] = {{.fd = dial_nb(), .keep = 1}, {.fd = dial_nb(), .keep = 1}};
    double *t[2] = {calloc((size_t)reps, sizeof(double)), calloc((size_t)reps, sizeof(double))};
    if (!t[0] || !t[1]) die("calloc");
    for (int i = 0; i < 3; i++)
        for (int s = 0; s < 2; s++)
            timed_get(&c[s], tok[s], path[s]);
    for (int i = 0; i < reps; i++)
        for (int k = 0; k < 2; k++) { /* A B, then B A: neither side always goes first */
            int s = (i & 1) ? 1 - k : k;
            t[s][i] = timed_get(&c[s], tok[s], path[s]);
        }
    printf("{\"reps\":%d", reps);
    for (int s = 0; s < 2; s++) {
        qsort(t[s], (size_t)reps, sizeof(double), cmp);
        printf(",\"%c_median_ms\":%.3f,\"%c_q1_ms\":%.3f,\"%c_q3_ms\":%.3f,\"%c_bytes\":%lld", 'a' + s,
               pick(t[s], reps, 0.5) * 1e3, 'a' + s, pick(t[s], reps, 0.25) * 1e3, 'a' + s,
               pick(t[s], reps, 0.75) * 1e3, 'a' + s, c[s].body_bytes);
        close(c[s].fd);
        free(c[s].h);
        free(c[s].body);
        free(t[s]);
    }
    printf("}\n");
    return 0;
}

/* ---- wake: a post wakes a parked sync, A and B in turn ---- */

typedef struct {
    conn_t c;
    const char *token;
    char since[256];
    char **gids;
    int ngids;
    char needle[64]; /* the text awaited, quoted; empty when nothing is awaited */
    double got_at;   /* when the answer holding it arrived; 0 until then */
    long answers, extra;
    double bytes;
} reader_t;

static void park(reader_t *rd) {
    reset_answer(&rd->c);
    snprintf(rd->c.head, sizeof rd->c.head,
             "GET /_matrix/client/v3/sync?since=%s&timeout=30000 HTTP/1.1\r\nHost: %s\r\n"
             "Authorization: Bearer %s\r\n\r\n",
             rd->since, g_host, rd->token);
    send_small(&rd->c);
}

/* A complete sync answer: its next_batch, the awaited text, and park again at once. */
static void sync_answer(reader_t *rd) {
    conn_t *c = &rd->c;
    if (c->status != 200) fail("sync answered: %.300s", c->body ? c->body : "");
    rd->answers++;
    rd->bytes += (double)c->blen;
    char *nb = strstr(c->body, "\"next_batch\"");
    nb = nb ? strchr(nb + 12, '"') : NULL;
    char *q = nb ? strchr(nb + 1, '"') : NULL;
    if (!q || (size_t)(q - nb - 1) >= sizeof rd->since)
        fail("sync answer without next_batch: %.300s", c->body);
    memcpy(rd->since, nb + 1, (size_t)(q - nb - 1));
    rd->since[q - nb - 1] = 0;
    if (rd->needle[0] && strstr(c->body, rd->needle)) {
        rd->got_at = now();
        rd->needle[0] = 0;
    } else {
        rd->extra++;
    }
    park(rd);
}

static int g_post_done;

static void pump(int ep, reader_t *rd, conn_t *poster, int ms) {
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        if (!fill(c)) continue;
        if (c == poster) {
            if (c->status != 201) fail("post answered: %.300s", c->body ? c->body : "");
            c->busy = 0;
            g_post_done = 1;
        } else {
            sync_answer(c == &rd[0].c ? &rd[0] : &rd[1]);
        }
    }
}

/* The value of a gauge on /metrics, -1 when absent. */
static long metric(conn_t *m, const char *name) {
    reset_answer(m);
    snprintf(m->head, sizeof m->head, "GET /metrics HTTP/1.1\r\nHost: %s\r\n\r\n", g_host);
    send_small(m);
    for (;;) {
        struct pollfd p = {.fd = m->fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0) fail("%s: no answer", "/metrics");
        if (fill(m)) break;
    }
    m->busy = 0;
    size_t n = strlen(name);
    for (char *p = m->body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ') return atol(p + n + 1);
    return -1;
}

static int cmd_wake(char **argv) {
    g_host = argv[0];
    g_port = atoi(argv[1]);
    const char *poster_token = argv[2];
    int rounds = atoi(argv[3]);
    const char *gauge = strcmp(argv[4], "-") ? argv[4] : NULL;
    int settle = atoi(argv[5]);
    if (rounds < 1) fail("%s: rounds >= 1", argv[3]);
    reader_t rd[2];
    memset(rd, 0, sizeof rd);
    int ep = epoll_create1(0);
    for (int s = 0; s < 2; s++) {
        rd[s].token = argv[6 + 3 * s];
        snprintf(rd[s].since, sizeof rd[s].since, "%s", argv[7 + 3 * s]);
        rd[s].gids = read_lines(argv[8 + 3 * s], &rd[s].ngids);
        rd[s].c.fd = dial_nb();
        rd[s].c.keep = 1;
        rd[s].c.side = s;
        watch(ep, &rd[s].c, EPOLLIN, EPOLL_CTL_ADD);
        park(&rd[s]);
    }
    conn_t poster = {.fd = dial_nb(), .keep = 1, .side = 2}, mconn = {.fd = dial_nb(), .keep = 1};
    watch(ep, &poster, EPOLLIN, EPOLL_CTL_ADD);
    double *lat[2] = {calloc((size_t)rounds, sizeof(double)), calloc((size_t)rounds, sizeof(double))};
    if (!lat[0] || !lat[1]) die("calloc");
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 2; k++) {
            int s = (r & 1) ? 1 - k : k;
            /* Both syncs parked: the gauge, else quiet. */
            double t = now(), quiet = now();
            if (gauge) {
                while (metric(&mconn, gauge) < 2) {
                    if (now() - t > 30) fail("%s never reached 2", gauge);
                    pump(ep, rd, &poster, 2);
                }
            } else {
                while ((now() - quiet) * 1e3 < settle) {
                    long before = rd[0].answers + rd[1].answers;
                    pump(ep, rd, &poster, settle / 4 + 1);
                    if (rd[0].answers + rd[1].answers != before) quiet = now();
                }
            }
            char body[96];
            snprintf(rd[s].needle, sizeof rd[s].needle, "\"bench12 wake %c %d\"", 'A' + s, r);
            int bl = snprintf(body, sizeof body, "{\"text\":\"bench12 wake %c %d\"}", 'A' + s, r);
            reset_answer(&poster);
            snprintf(poster.head, sizeof poster.head,
                     "POST /v1/groups/%s/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     rd[s].gids[r % rd[s].ngids], g_host, poster_token, bl, body);
            rd[s].got_at = 0;
            g_post_done = 0;
            double t0 = now();
            send_small(&poster);
            while (!rd[s].got_at || !g_post_done) {
                if (now() - t0 > 30) fail("%s: the sync did not answer with the post within 30 s", "wake");
                pump(ep, rd, &poster, 1000);
            }
            lat[s][r] = rd[s].got_at - t0;
        }
    printf("{\"rounds\":%d", rounds);
    for (int s = 0; s < 2; s++) {
        qsort(lat[s], (size_t)rounds, sizeof(double), cmp);
        printf(
            ",\"%c_median_ms\":%.3f,\"%c_q1_ms\":%.3f,\"%c_q3_ms\":%.3f,\"%c_answers\":%ld,\"%c_extra\":%ld,"
            "\"%c_bytes_mean\":%.0f",
            'a' + s, pick(lat[s], rounds, 0.5) * 1e3, 'a' + s, pick(lat[s], rounds, 0.25) * 1e3, 'a' + s,
            pick(lat[s], rounds, 0.75) * 1e3, 'a' + s, rd[s].answers, 'a' + s, rd[s].extra, 'a' + s,
            rd[s].answers ? rd[s].bytes / (double)rd[s].answers : 0.0);
        free(lat[s]);
        close(rd[s].c.fd);
        free(rd[s].c.h);
        free(rd[s].c.body);
        for (int i = 0; i < rd[s].ngids; i++)
            free(rd[s].gids[i]);
        free(rd[s].gids);
    }
    printf("}\n");
    close(poster.fd);
    close(mconn.fd);
    free(poster.h);
    free(poster.body);
    free(mconn.h);
    free(mconn.body);
    close(ep);
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "upload") && argc == 11) return cmd_upload(argv + 2);
    if (!strcmp(cmd, "download") && argc == 9) return cmd_download(argv + 2);
    if (!strcmp(cmd, "get") && argc == 9) return cmd_get(argv + 2);
    if (!strcmp(cmd, "wake") && argc == 14) return cmd_wake(argv + 2);
    fprintf(stderr,
            "usage: mx_media_load upload HOST PORT TOKEN PATH_PREFIX SIZE COUNT INFLIGHT TAG OUTFILE\n"
            "       mx_media_load download HOST PORT TOKEN PATHS SIZE COUNT INFLIGHT\n"
            "       mx_media_load get HOST PORT REPS TOKEN_A PATH_A TOKEN_B PATH_B\n"
            "       mx_media_load wake HOST PORT POSTER ROUNDS METRIC|- SETTLE_MS TOKEN_A SINCE_A GIDS_A "
            "TOKEN_B SINCE_B GIDS_B\n");
    return 2;
}
