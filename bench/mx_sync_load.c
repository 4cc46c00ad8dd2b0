/* SPDX-License-Identifier: MIT */
/* The load side of bench/mx_sync.py (benchmark 11), in C so that the client is not what is
 * measured: one epoll loop, hand-written HTTP/1.1, keep-alive connections.
 *
 *   mx_sync_load wake mx|sse HOST PORT GID TOKENS ROUNDS METRIC|- SETTLE_MS
 *     TOKENS: the owner's /v1 token on the first line, then one line per member:
 *     "TOKEN SINCE" (mx: a Matrix access token and the next_batch of its initial sync)
 *     or "TOKEN" (sse: a /v1 session token).  mx parks one
 *     GET /_matrix/client/v3/sync?since=SINCE&timeout=30000 per member, sse opens one
 *     GET /v1/events per member.  Each round waits until the requests are parked (the
 *     gauge METRIC reaches the member count, polled on /metrics; with "-", SETTLE_MS of
 *     quiet), posts one message as the owner (POST /v1/groups/GID/messages), and waits
 *     until every member got it: a sync answer whose body holds the text (the member
 *     then re-parks at once with the answer's next_batch, as a client does) or an event
 *     frame holding it.  Prints one JSON object: the post -> last member latencies over
 *     the rounds and deliveries/s (members x rounds / the summed post -> last times).
 *
 *   mx_sync_load park mx|sse HOST PORT PID TOKENS PER_TOKEN METRIC|- SETTLE_MS
 *     TOKENS as above without the owner line.  Reads qund's VmRSS (/proc/PID/status),
 *     opens PER_TOKEN parked syncs (or event streams) per token, waits until they are
 *     all parked (METRIC, or SETTLE_MS of quiet), reads VmRSS again and prints the KiB
 *     per request.  A parked sync that answers meanwhile (the 30 s cap) is re-parked and
 *     counted.
 *
 *   mx_sync_load get HOST PORT TOKEN REPS PATH_A PATH_B
 *     REPS timed GETs of each path on a keep-alive connection of its own, alternating A and B
 *     after three untimed warm-ups of each, with TCP quick-ACK and then without; prints the
 *     medians.
 *
 *   mx_sync_load post HOST PORT TOKEN INFLIGHT PER_GROUP GID...
 *     Posts PER_GROUP messages to each group with INFLIGHT requests in flight (setup).
 *
 * Exits non-zero with a message on stderr at the first unexpected answer. */
#include <sys/epoll.h>
#include <sys/resource.h>

#include "loadlib.h"

#define SINCE_MAX 256
#define OPEN_BATCH 500 /* connections opened before letting qund catch up */

typedef struct {
    int fd;
    int member; /* index into the members, -1 for a poster */
    int busy;   /* a request is in flight on it */
    int open;   /* sse: the stream's headers arrived */
    char *buf;  /* unconsumed bytes */
    size_t len, cap;
} conn_t;

typedef struct {
    char *token;
    char since[SINCE_MAX];
    int got; /* the last round this member received */
} member_t;

static int g_mx; /* mx (sync) or sse (events) */
static member_t *g_members;
static int g_nmembers;

/* As many descriptors as the hard limit allows: 10 000 parked requests need them. */
static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A complete HTTP answer at the head of c->buf: its status and its body (de-chunked,
 * NUL-terminated, malloc'd into *body); returns the bytes it takes, 0 while incomplete. */
static size_t answer(conn_t *c, int *status, char **body) {
    if (!c->buf) return 0;
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end) return 0;
    size_t head = (size_t)(end + 4 - c->buf);
    char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    char *te = strcasestr(c->buf, "\r\nTransfer-Encoding: chunked");
    *status = atoi(c->buf + 9);
    if (te && te < end) {
        /* Chunks: hex size CRLF data CRLF ..., ending with a zero chunk and CRLF. */
        size_t at = head, blen = 0;
        char *b = malloc(c->len + 1);
        if (!b) die("malloc");
        for (;;) {
            char *nl = memmem(c->buf + at, c->len - at, "\r\n", 2);
            if (!nl) break;
            size_t sz = strtoul(c->buf + at, NULL, 16), data = (size_t)(nl + 2 - c->buf);
            if (data + sz + 2 > c->len) break;
            if (sz == 0) {
                b[blen] = 0;
                *body = b;
                return data + 2;
            }
            memcpy(b + blen, c->buf + data, sz);
            blen += sz;
            at = data + sz + 2;
        }
        free(b);
        return 0;
    }
    size_t n = cl && cl < end ? (size_t)atol(cl + 17) : 0;
    if (c->len < head + n) return 0;
    *body = strndup(c->buf + head, n);
    if (!*body) die("strndup");
    return head + n;
}

static int g_quickack; /* acknowledge every read at once (get) */

/* Read what is there; returns 0 when the peer closed. */
static int fill(conn_t *c) {
    static char tmp[65536];
    if (g_quickack) { /* Linux clears it after a while: set it before every read */
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    ssize_t r = read(c->fd, tmp, sizeof tmp);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
    if (r <= 0) return 0;
    BUF_APPEND(c, tmp, (size_t)r);
    return 1;
}

/* One blocking request and its whole answer on a fresh connection (setup and /metrics). */
static char *call(const char *method, const char *path, const char *token, const char *body, int *status) {
    conn_t c = {.fd = dial()};
    char *req;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, g_host, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "", strlen(body), body);
    if (n < 0) die("asprintf");
    send_all(c.fd, req, (size_t)n);
    free(req);
    char *out = NULL;
    while (!answer(&c, status, &out))
        if (!fill(&c)) fail("%s: connection closed before the answer", path);
    close(c.fd);
    free(c.buf);
    return out;
}

/* The value of a gauge on /metrics, -1 when absent. */
static long metric(const char *name) {
    int status;
    char *m = call("GET", "/metrics", NULL, "", &status);
    size_t n = strlen(name);
    long v = -1;
    for (char *p = m; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ') {
            v = atol(p + n + 1);
            break;
        }
    free(m);
    return v;
}

static long vmrss_kib(const char *pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    fclose(f);
    return kib;
}

static void read_tokens(const char *file, int owner_line, char **owner) {
    FILE *f = fopen(file, "r");
    if (!f) die(file);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        if (owner_line && !*owner) {
            *owner = strdup(line);
            continue;
        }
        g_members = realloc(g_members, (size_t)(g_nmembers + 1) * sizeof *g_members);
        if (!g_members) die("realloc");
        member_t *m = &g_members[g_nmembers++];
        memset(m, 0, sizeof *m);
        m->got = -1;
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = 0;
            snprintf(m->since, sizeof m->since, "%s", sp + 1);
        }
        m->token = strdup(line);
    }
    fclose(f);
    if (g_mx)
        for (int i = 0; i < g_nmembers; i++)
            if (!g_members[i].since[0]) fail("%s: a member line without its since token", file);
}

/* The member's request: a parked sync (mx) or an event stream (sse). */
static void send_member(conn_t *c) {
    member_t *m = &g_members[c->member];
    char req[1024];
    int n = g_mx ? snprintf(req, sizeof req,
                            "GET /_matrix/client/v3/sync?since=%s&timeout=30000 HTTP/1.1\r\nHost: %s\r\n"
                            "Authorization: Bearer %s\r\n\r\n",
                            m->since, g_host, m->token)
                 : snprintf(req, sizeof req,
                            "GET /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", g_host,
                            m->token);
    if (n < 0 || (size_t)n >= sizeof req) fail("%s: request too long", "member");
    c->busy = 1;
    send_all(c->fd, req, (size_t)n);
}

static void watch(int ep, conn_t *c) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

/* ---- what arrives on member connections ---- */

static int g_round = -1;  /* the round whose message is awaited */
static int g_received;    /* members that got the current round */
static double g_last;     /* when the last of them got it */
static long g_extra;      /* sync answers without the awaited message */
static long g_answers;    /* sync answers in all */
static double g_bytes;    /* their bodies\' bytes */
static char g_needle[64]; /* "\"wake R\"" */

static void got_round(member_t *m) {
    if (m->got == g_round) return;
    m->got = g_round;
    if (++g_received == g_nmembers) g_last = now();
}

/* A complete sync answer: take its next_batch, count the message, park again at once. */
static void mx_answers(conn_t *c) {
    int status;
    char *body;
    size_t used;
    while ((used = answer(c, &status, &body))) {
        BUF_CONSUME(c, used);
        c->busy = 0;
        g_answers++;
        g_bytes += (double)strlen(body);
        member_t *m = &g_members[c->member];
        if (status != 200) fail("sync answered: %s", body);
        char *nb = strstr(body, "\"next_batch\"");
        nb = nb ? strchr(nb + 12, '"') : NULL;
        char *q = nb ? strchr(nb + 1, '"') : NULL;
        if (!q || (size_t)(q - nb - 1) >= sizeof m->since)
            fail("sync answer without next_batch: %.300s", body);
        memcpy(m->since, nb + 1, (size_t)(q - nb - 1));
        m->since[q - nb - 1] = 0;
        if (g_round >= 0 && strstr(body, g_needle))
            got_round(m);
        else
            g_extra++;
        free(body);
        send_member(c);
    }
}

/* Complete lines of an event stream; chunk-size lines are noise to the scan. */
static void sse_lines(conn_t *c) {
    if (!c->open) {
        char *end = c->buf ? strstr(c->buf, "\r\n\r\n") : NULL;
        if (!end) return;
        if (strncmp(c->buf + 9, "200", 3)) fail("stream answered: %.300s", c->buf);
        c->open = 1;
        BUF_CONSUME(c, (size_t)(end + 4 - c->buf));
    }
    char *p = c->buf, *nl;
    while (p && (nl = memchr(p, '\n', c->len - (size_t)(p - c->buf)))) {
        *nl = 0;
        if (g_round >= 0 && !strncmp(p, "data: ", 6) && strstr(p, g_needle)) got_round(&g_members[c->member]);
        p = nl + 1;
    }
    if (p) BUF_CONSUME(c, (size_t)(p - c->buf));
}

/* The owner's post: its answer must be a 201. */
static int g_post_done;
static void post_answer(conn_t *c) {
    int status;
    char *body;
    size_t used = answer(c, &status, &body);
    if (!used) return;
    BUF_CONSUME(c, used);
    if (status != 201) fail("post answered: %s", body);
    free(body);
    c->busy = 0;
    g_post_done = 1;
}

/* One epoll_wait of up to ms and what arrived.  Returns the events handled. */
static int pump(int ep, int ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        if (!fill(c)) fail("%s: connection closed by qund", c->member >= 0 ? "member" : "poster");
        if (c->member < 0)
            post_answer(c);
        else if (g_mx)
            mx_answers(c);
        else
            sse_lines(c);
    }
    return n < 0 ? 0 : n;
}

/* Wait until the members' requests are parked: the gauge reaches want, or settle_ms
 * with nothing arriving.  Returns the /metrics polls it took. */
static int wait_parked(int ep, const char *gauge, long want, int settle_ms) {
    double t0 = now();
    int polls = 0;
    if (gauge) {
        for (;;) {
            polls++;
            if (metric(gauge) >= want) return polls;
            if (now() - t0 > 60) fail("%s never reached the member count", gauge);
            pump(ep, 5);
        }
    }
    double quiet = now();
    while ((now() - quiet) * 1e3 < settle_ms)
        if (pump(ep, settle_ms / 4 + 1)) quiet = now();
    return polls;
}

static void close_all(conn_t *conns, int n) {
    for (int i = 0; i < n; i++) {
        if (conns[i].fd > 0) close(conns[i].fd);
        free(conns[i].buf);
    }
    free(conns);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pick(const double *sorted, int n, double p) {
    int i = (int)(p * n);
    return sorted[i < n ? i : n - 1];
}

/* Open one member connection per entry of conns (member index already set), in batches
 * so that the listen backlog never overflows; sse waits for each batch's headers. */
static void open_members(int ep, conn_t *conns, int n) {
    for (int b = 0; b < n; b += OPEN_BATCH) {
        int e = b + OPEN_BATCH < n ? b + OPEN_BATCH : n;
        for (int i = b; i < e; i++) {
            conns[i].fd = dial();
            watch(ep, &conns[i]);
            send_member(&conns[i]);
        }
        if (g_mx) {
            pump(ep, 20);
            continue;
        }
        for (int i = b; i < e; i++)
            while (!conns[i].open)
                if (!pump(ep, 30000)) fail("%s: a stream did not open within 30 s", "events");
    }
}

static int cmd_wake(char **argv) {
    g_host = argv[1];
    g_port = atoi(argv[2]);
    const char *gid = argv[3];
    char *owner = NULL;
    read_tokens(argv[4], 1, &owner);
    int rounds = atoi(argv[5]);
    const char *gauge = strcmp(argv[6], "-") ? argv[6] : NULL;
    int settle = atoi(argv[7]);
    if (!owner || !g_nmembers || rounds < 1) fail("%s: need the owner and members, rounds >= 1", argv[4]);

    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)g_nmembers + 1, sizeof *conns);
    if (!conns) die("calloc");
    for (int i = 0; i < g_nmembers; i++)
        conns[i].member = i;
    double t_open = now();
    open_members(ep, conns, g_nmembers);
    t_open = now() - t_open;
    conn_t *poster = &conns[g_nmembers];
    poster->member = -1;
    poster->fd = dial();
    watch(ep, poster);

    double *lat = calloc((size_t)rounds, sizeof *lat), sum = 0, park_sum = 0;
    if (!lat) die("calloc");
    int polls = 0;
    long extra_before = 0;
    for (int r = 0; r < rounds; r++) {
        double tp = now();
        polls += wait_parked(ep, gauge, g_nmembers, settle);
        park_sum += now() - tp;
        if (r == 0) extra_before = g_extra;
        g_round = r;
        g_received = 0;
        g_post_done = 0;
        snprintf(g_needle, sizeof g_needle, "\"wake %d\"", r);
        char body[64], req[1024];
        int bl = snprintf(body, sizeof body, "{\"text\":\"wake %d\"}", r);
        int n = snprintf(req, sizeof req,
                         "POST /v1/groups/%s/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                         gid, g_host, owner, bl, body);
        double t0 = now();
        poster->busy = 1;
        send_all(poster->fd, req, (size_t)n);
        while (g_received < g_nmembers || !g_post_done) {
            if (!pump(ep, 30000)) {
                fprintf(stderr,
                        "round %d: %d of %d members got the message within 30 s (post answered: %d)\n", r,
                        g_received, g_nmembers, g_post_done);
                return 1;
            }
        }
        lat[r] = g_last - t0;
        sum += lat[r];
    }
    qsort(lat, (size_t)rounds, sizeof *lat, cmp);
    printf("{\"mode\":\"%s\",\"members\":%d,\"rounds\":%d,\"open_s\":%.3f,\"deliveries_per_s\":%.0f,"
           "\"last_p50_ms\":%.2f,\"last_p99_ms\":%.2f,\"last_max_ms\":%.2f,\"park_mean_ms\":%.2f,"
           "\"metric_polls\":%d,\"sync_answers\":%ld,\"answers_without_message\":%ld,"
           "\"answers_without_message_before_round0\":%ld,\"answer_bytes_mean\":%.0f}\n",
           g_mx ? "mx" : "sse", g_nmembers, rounds, t_open, (double)g_nmembers * rounds / sum,
           pick(lat, rounds, 0.5) * 1e3, pick(lat, rounds, 0.99) * 1e3, lat[rounds - 1] * 1e3,
           park_sum / rounds * 1e3, polls, g_answers, g_extra, extra_before,
           g_answers ? g_bytes / (double)g_answers : 0.0);
    close_all(conns, g_nmembers + 1);
    free(lat);
    free(owner);
    close(ep);
    return 0;
}

static int cmd_park(char **argv) {
    g_host = argv[1];
    g_port = atoi(argv[2]);
    const char *pid = argv[3];
    read_tokens(argv[4], 0, NULL);
    int per = atoi(argv[5]);
    const char *gauge = strcmp(argv[6], "-") ? argv[6] : NULL;
    int settle = atoi(argv[7]);
    int total = g_nmembers * per;
    if (total < 1) fail("%s: no tokens", argv[4]);

    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)total, sizeof *conns);
    if (!conns) die("calloc");
    for (int i = 0; i < total; i++)
        conns[i].member = i % g_nmembers;
    long before = vmrss_kib(pid);
    double t0 = now();
    open_members(ep, conns, total);
    int polls = wait_parked(ep, gauge, total, settle);
    double t_open = now() - t0;
    /* Let the loops finish whatever the last requests started before reading. */
    double quiet = now();
    while ((now() - quiet) * 1e3 < 300)
        pump(ep, 50);
    long after = vmrss_kib(pid);
    long gauge_v = gauge ? metric(gauge) : -1;
    printf("{\"mode\":\"%s\",\"requests\":%d,\"tokens\":%d,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
           "\"kib_per_request\":%.3f,\"open_s\":%.3f,\"metric_polls\":%d,\"gauge\":%ld,"
           "\"answers_meanwhile\":%ld}\n",
           g_mx ? "mx" : "sse", total, g_nmembers, before, after, (double)(after - before) / total, t_open,
           polls, gauge_v, g_answers);
    close_all(conns, total);
    close(ep);
    return 0;
}

/* One GET on a keep-alive connection; returns its time and the body's size.  It starts
 * 100 ms after the previous one, so that qund has finished with the previous answer (freeing
 * a large sync answer takes the loop a few ms) and each request meets an idle server. */
static double timed_get(conn_t *c, const char *token, const char *path, size_t *bytes) {
    struct timespec pause = {0, 100000000L};
    nanosleep(&pause, NULL);
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", path,
                     g_host, token);
    if (n < 0 || (size_t)n >= sizeof req) fail("%s: path too long", path);
    double t0 = now();
    send_all(c->fd, req, (size_t)n);
    int status;
    char *body = NULL;
    size_t used;
    while (!(used = answer(c, &status, &body)))
        if (!fill(c)) fail("%s: connection closed by qund", path);
    double t = now() - t0;
    BUF_CONSUME(c, used);
    if (status != 200) {
        fprintf(stderr, "%s answered %d: %.300s\n", path, status, body);
        exit(1);
    }
    *bytes = strlen(body);
    free(body);
    return t;
}

/* REPS timed GETs of each path, alternating, each path on a keep-alive connection of its
 * own (so that neither inherits the other's unacknowledged tail), after three untimed warm-ups
 * of each; medians into ma and mb. */
static void get_series(const char *token, const char *pa, const char *pb, int reps, double *ma, double *mb,
                       size_t *ba, size_t *bb, double *mina, double *maxa) {
    conn_t ca = {.fd = dial()}, cb = {.fd = dial()};
    double *ta = calloc((size_t)reps, sizeof *ta), *tb = calloc((size_t)reps, sizeof *tb);
    if (!ta || !tb) die("calloc");
    for (int i = 0; i < 3; i++) { /* warm-up: caches, statements */
        timed_get(&ca, token, pa, ba);
        timed_get(&cb, token, pb, bb);
    }
    for (int i = 0; i < reps; i++) {
        ta[i] = timed_get(&ca, token, pa, ba);
        tb[i] = timed_get(&cb, token, pb, bb);
    }
    qsort(ta, (size_t)reps, sizeof *ta, cmp);
    qsort(tb, (size_t)reps, sizeof *tb, cmp);
    *ma = pick(ta, reps, 0.5);
    *mb = pick(tb, reps, 0.5);
    *mina = ta[0];
    *maxa = ta[reps - 1];
    close(ca.fd);
    close(cb.fd);
    free(ca.buf);
    free(cb.buf);
    free(ta);
    free(tb);
}

/* The series twice: with TCP quick-ACK on the client (the figure: qund's work, not the
 * 40 ms delayed-ACK timer that qund's answers can wait for, see bench/README.md), then as a
 * default client acknowledges (context). */
static int cmd_get(char **argv) {
    g_host = argv[1];
    g_port = atoi(argv[2]);
    const char *token = argv[3];
    int reps = atoi(argv[4]);
    const char *pa = argv[5], *pb = argv[6];
    if (reps < 1) fail("%s: reps >= 1", argv[4]);
    size_t ba, bb;
    double ma, mb, mina, maxa, pa_m, pb_m, pmin, pmax;
    g_quickack = 1;
    get_series(token, pa, pb, reps, &ma, &mb, &ba, &bb, &mina, &maxa);
    g_quickack = 0;
    get_series(token, pa, pb, reps, &pa_m, &pb_m, &ba, &bb, &pmin, &pmax);
    printf("{\"reps\":%d,\"a_median_ms\":%.3f,\"a_min_ms\":%.3f,\"a_max_ms\":%.3f,\"a_bytes\":%zu,"
           "\"b_median_ms\":%.3f,\"b_bytes\":%zu,\"a_plain_median_ms\":%.3f,\"b_plain_median_ms\":%.3f}\n",
           reps, ma * 1e3, mina * 1e3, maxa * 1e3, ba, mb * 1e3, bb, pa_m * 1e3, pb_m * 1e3);
    return 0;
}

static int cmd_post(int argc, char **argv) {
    g_host = argv[1];
    g_port = atoi(argv[2]);
    const char *token = argv[3];
    int inflight = atoi(argv[4]), per = atoi(argv[5]);
    int ngroups = argc - 6;
    char **gids = argv + 6;
    long total = (long)per * ngroups, next = 0, done = 0;
    if (inflight < 1 || per < 1 || ngroups < 1) fail("%s: need inflight, per group and groups", "post");
    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)inflight, sizeof *conns);
    if (!conns) die("calloc");
    for (int i = 0; i < inflight; i++)
        conns[i].fd = -1;
    double t0 = now();
    for (;;) {
        for (int i = 0; i < inflight && next < total; i++) {
            conn_t *c = &conns[i];
            if (c->busy) continue;
            if (c->fd < 0) {
                c->fd = dial();
                c->member = -1;
                watch(ep, c);
            }
            /* Message k goes to group k % ngroups, so each group fills evenly. */
            char body[96], req[1024];
            int bl = snprintf(body, sizeof body, "{\"text\":\"history %ld of group %ld\"}", next / ngroups,
                              next % ngroups);
            int n =
                snprintf(req, sizeof req,
                         "POST /v1/groups/%s/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                         gids[next % ngroups], g_host, token, bl, body);
            next++;
            c->busy = 1;
            send_all(c->fd, req, (size_t)n);
        }
        if (done == total) break;
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 30000);
        if (n == 0) fail("%s: no answer within 30 s", "post");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!fill(c)) fail("%s: connection closed by qund", "post");
            g_post_done = 0;
            post_answer(c);
            done += g_post_done;
        }
    }
    printf("{\"posts\":%ld,\"seconds\":%.3f}\n", total, now() - t0);
    for (int i = 0; i < inflight; i++) {
        if (conns[i].fd >= 0) close(conns[i].fd);
        free(conns[i].buf);
    }
    free(conns);
    close(ep);
    return 0;
}

int main(int argc, char **argv) {
    raise_nofile();
    const char *cmd = argc > 1 ? argv[1] : "";
    if ((!strcmp(cmd, "wake") || !strcmp(cmd, "park")) && argc == 10) {
        g_mx = !strcmp(argv[2], "mx");
        if (!g_mx && strcmp(argv[2], "sse")) fail("%s: expected mx or sse", argv[2]);
        return !strcmp(cmd, "wake") ? cmd_wake(argv + 2) : cmd_park(argv + 2);
    }
    if (!strcmp(cmd, "get") && argc == 8) return cmd_get(argv + 1);
    if (!strcmp(cmd, "post") && argc >= 8) return cmd_post(argc - 1, argv + 1);
    fprintf(stderr, "usage: mx_sync_load wake mx|sse HOST PORT GID TOKENS ROUNDS METRIC|- SETTLE_MS\n"
                    "       mx_sync_load park mx|sse HOST PORT PID TOKENS PER_TOKEN METRIC|- SETTLE_MS\n"
                    "       mx_sync_load get HOST PORT TOKEN REPS PATH_A PATH_B\n"
                    "       mx_sync_load post HOST PORT TOKEN INFLIGHT PER_GROUP GID...\n");
    return 2;
}
