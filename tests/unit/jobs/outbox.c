/* SPDX-License-Identifier: MIT */
/* Unit tests of src/jobs/outbox.c through include/qun/outbox.h, against a webhook
 * receiver on loopback run by this test: the configuration check; an event delivered
 * once, with the id, timestamp and HMAC signature docs/webhooks.md describes; a
 * refused attempt retried after the jittered backoff with the same id and body; a
 * delivery dead after the last attempt, listed, requeued by the admin retry and then
 * delivered; a receiver that is down (no HTTP status); and a URL dropped from the
 * configuration, whose pending delivery goes dead. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qun/outbox.h"
#include "qun/util.h"
#include "qun/writer.h"
#include "unit.h"

#define SECRET "unit-test-webhook-secret"

static char dir[] = "/tmp/qun-unit-outbox-XXXXXX", path[128], url[64], down_url[64];
static qun_writer_t *writer;
static qun_db_t *rd;

/* ---- the receiver: one thread, one request per connection ---- */

typedef struct {
    char event_id[64], timestamp[24], signature[80];
    char body[2048];
} request_t;

static int listen_fd = -1;
static pthread_t receiver;
static _Atomic int answer = 204; /* status of the next answers */
static _Atomic bool receiver_stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static request_t got[64];
static int ngot;

static void header(const char *head, const char *name, char *out, size_t size) {
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = head; (p = strstr(p, "\r\n")); p += 2) {
        if (strncasecmp(p + 2, name, n) != 0 || p[2 + n] != ':') continue;
        const char *v = p + 3 + n;
        while (*v == ' ')
            v++;
        size_t len = strcspn(v, "\r\n");
        snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), v);
        return;
    }
}

static void serve(int fd) {
    char buf[8192] = "";
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof buf - 1 && !(end = strstr(buf, "\r\n\r\n"))) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0) return;
        n += (size_t)r;
        buf[n] = '\0';
    }
    if (!end) return;
    char len_text[16];
    header(buf, "Content-Length", len_text, sizeof len_text);
    size_t head = (size_t)(end + 4 - buf), want = head + (size_t)atoi(len_text);
    while (n < want && n < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0) return;
        n += (size_t)r;
    }
    buf[n] = '\0';
    pthread_mutex_lock(&mu);
    if (ngot < (int)NROWS(got)) {
        request_t *q = &got[ngot++];
        header(buf, "Qun-Event-Id", q->event_id, sizeof q->event_id);
        header(buf, "Qun-Timestamp", q->timestamp, sizeof q->timestamp);
        header(buf, "Qun-Signature", q->signature, sizeof q->signature);
        snprintf(q->body, sizeof q->body, "%s", buf + head);
    }
    pthread_mutex_unlock(&mu);
    char reply[128];
    int len =
        snprintf(reply, sizeof reply, "HTTP/1.1 %d Unit\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                 atomic_load(&answer));
    (void)!send(fd, reply, (size_t)len, MSG_NOSIGNAL);
}

static void *receiver_main(void *arg) {
    (void)arg;
    while (!atomic_load(&receiver_stop)) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) continue;
        if (!atomic_load(&receiver_stop)) serve(fd);
        close(fd);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1 and its port. */
static int listen_loopback(int *fd) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(*fd, 16) != 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    return ntohs(a.sin_port);
}

static int requests(void) {
    pthread_mutex_lock(&mu);
    int n = ngot;
    pthread_mutex_unlock(&mu);
    return n;
}

/* ---- the store ---- */

typedef struct {
    const char *topic, *payload;
    int64_t id;
} event_t;

static qun_rc event_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    event_t *e = arg;
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "INSERT INTO outbox(topic, payload, created_at) VALUES ($1, $2, $3) RETURNING id",
                           "ssi", e->topic, e->payload, (int64_t)1700000000);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    e->id = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

/* Write an outbox row, as a job does; its row id. */
static int64_t emit(const char *topic, const char *payload) {
    event_t e = {topic, payload, 0};
    qun_err_t err;
    CHECK(qun_writer_run(writer, event_txn, &e, &err) == QUN_OK);
    return e.id;
}

typedef struct {
    char state[16], event_id[64], last_error[256];
    int64_t attempts, last_status, next_at, last_attempt_at, delivered_at;
} delivery_t;

/* The delivery of outbox row id to u. */
static bool delivery(int64_t id, const char *u, delivery_t *d) {
    qun_q_t *q;
    qun_err_t err;
    memset(d, 0, sizeof *d);
    if (qun_db_run(
            rd, &q, &err,
            "SELECT d.state, COALESCE(o.event_id, ''), d.attempts, COALESCE(d.last_status, -1), d.next_at, "
            "COALESCE(d.last_attempt_at, 0), COALESCE(o.delivered_at, 0), d.last_error FROM "
            "outbox_deliveries d "
            "JOIN outbox o ON o.id = d.outbox_id WHERE o.id = $1 AND d.url = $2",
            "is", id, u) != QUN_ROW)
        return false;
    snprintf(d->state, sizeof d->state, "%s", qun_q_col_text(q, 0));
    snprintf(d->event_id, sizeof d->event_id, "%s", qun_q_col_text(q, 1));
    d->attempts = qun_q_col_int(q, 2);
    d->last_status = qun_q_col_int(q, 3);
    d->next_at = qun_q_col_int(q, 4);
    d->last_attempt_at = qun_q_col_int(q, 5);
    d->delivered_at = qun_q_col_int(q, 6);
    snprintf(d->last_error, sizeof d->last_error, "%s", qun_q_col_text(q, 7));
    qun_q_done(q);
    return true;
}

/* Wait (up to 20 s) until the delivery is in state after at least `attempts` attempts. */
static bool wait_delivery(int64_t id, const char *u, const char *state, int64_t attempts, delivery_t *d) {
    for (int i = 0; i < 1000; i++) {
        if (delivery(id, u, d) && strcmp(d->state, state) == 0 && d->attempts >= attempts) return true;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "  delivery of %lld to %s is %s after %lld attempts, want %s\n", (long long)id, u,
            d->state, (long long)d->attempts, state);
    return false;
}

/* The body docs/webhooks.md promises: canonical JSON of the stored columns. */
static void expected_body(const char *event_id, const char *topic, const char *payload, char *out,
                          size_t size) {
    snprintf(out, size, "{\"created_at\":1700000000,\"id\":\"%s\",\"payload\":%s,\"topic\":\"%s\"}", event_id,
             payload, topic);
}

/* Qun-Signature: v1=hex(HMAC-SHA256(secret, timestamp "." body)). */
static bool signature_ok(const request_t *q) {
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)q->timestamp, strlen(q->timestamp));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)q->body, strlen(q->body));
    crypto_auth_hmacsha256_final(&st, mac);
    char want[80] = "v1=";
    sodium_bin2hex(want + 3, sizeof want - 3, mac, sizeof mac);
    return strcmp(q->signature, want) == 0;
}

/* ---- cases ---- */

static void config_check(void) {
    static const struct {
        const char *name, *urls, *secret;
        qun_rc rc;
    } rows[] = {
        {"no URL", NULL, NULL, QUN_OK},
        {"empty list", " , ", NULL, QUN_OK},
        {"one http URL", "http://127.0.0.1:1/h", SECRET, QUN_OK},
        {"http and https", "http://a/h, https://b/h", SECRET, QUN_OK},
        {"URL without a secret", "http://a/h", NULL, QUN_BAD_REQUEST},
        {"secret too short", "http://a/h", "short", QUN_BAD_REQUEST},
        {"another scheme", "ftp://a/h", SECRET, QUN_BAD_REQUEST},
        {"bare scheme", "http://", SECRET, QUN_BAD_REQUEST},
        {"space inside", "http://a/b c", SECRET, QUN_BAD_REQUEST},
        {"nine URLs", "http://a,http://b,http://c,http://d,http://e,http://f,http://g,http://h,http://i",
         SECRET, QUN_BAD_REQUEST},
    };
    qun_outbox_cfg_t saved = qun_outbox_cfg;
    for (size_t r = 0; r < NROWS(rows); r++) {
        qun_err_t err = {{0}, {0}};
        qun_outbox_cfg.urls = rows[r].urls;
        qun_outbox_cfg.secret = rows[r].secret;
        CHECKF(qun_outbox_cfg_check(&err) == rows[r].rc, rows[r].name);
        if (rows[r].rc != QUN_OK) CHECKF(strncmp(err.msg, "webhook_", 8) == 0, rows[r].name);
    }
    qun_outbox_cfg = saved;
    /* No URL: nothing starts. */
    qun_outbox_t *o = (qun_outbox_t *)1;
    qun_err_t err;
    qun_outbox_cfg.urls = NULL;
    CHECK(qun_outbox_start(path, writer, &o, &err) == QUN_OK && o == NULL);
    qun_outbox_stop(NULL);
    qun_outbox_cfg = saved;
}

/* One event, answered 204: delivered once, signed, with the documented body. */
static void delivered_once(void) {
    uint64_t d0, f0, x0, d1, f1, x1;
    qun_outbox_stats(&d0, &f0, &x0);
    int before = requests();
    atomic_store(&answer, 204);
    int64_t id = emit("cdn.purge", "{\"paths\":[\"/a\",\"/b\"]}");
    delivery_t d;
    CHECK(wait_delivery(id, url, "delivered", 1, &d));
    CHECK(d.attempts == 1 && d.last_status == 204);
    CHECK(d.delivered_at > 0);
    CHECK(strncmp(d.event_id, "ev_", 3) == 0);
    CHECK(requests() == before + 1);
    request_t q = got[before];
    for (int i = 0; i < 100; i++) {
        qun_outbox_stats(&d1, &f1, &x1);
        if (d1 != d0) break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    CHECK_STR(q.event_id, d.event_id);
    char want[512];
    expected_body(d.event_id, "cdn.purge", "{\"paths\":[\"/a\",\"/b\"]}", want, sizeof want);
    CHECK_STR(q.body, want);
    CHECK(signature_ok(&q));
    CHECK(atoll(q.timestamp) >= d.last_attempt_at - 1 && atoll(q.timestamp) <= d.last_attempt_at);
    CHECK(d1 == d0 + 1 && f1 == f0 && x1 == x0);
}

/* Refused once (500): pending, retried after base..2*base/2 jitter with the same id
 * and the same bytes, then delivered. */
static void retried_after_backoff(void) {
    int before = requests();
    atomic_store(&answer, 500);
    int64_t id = emit("cdn.purge", "{\"paths\":[\"/c\"]}");
    delivery_t d;
    CHECK(wait_delivery(id, url, "pending", 1, &d));
    CHECK(d.attempts == 1 && d.last_status == 500 && d.delivered_at == 0);
    /* backoff(1) = base with equal jitter: between base/2 and base seconds. */
    int64_t base = qun_outbox_cfg.backoff_base;
    CHECK(d.next_at >= d.last_attempt_at + base / 2 && d.next_at <= d.last_attempt_at + base);
    CHECK(strstr(d.last_error, "500") != NULL);
    atomic_store(&answer, 200);
    qun_clock_advance(base);
    CHECK(wait_delivery(id, url, "delivered", 2, &d));
    CHECK(d.attempts == 2 && d.last_status == 200);
    CHECK(requests() == before + 2);
    CHECK_STR(got[before].event_id, got[before + 1].event_id);
    CHECK_STR(got[before].body, got[before + 1].body);
    CHECK(signature_ok(&got[before + 1]));
}

static qun_rc retry_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    void **a = arg;
    return qun_outbox_retry(db, a[0], (json_t **)a[1], err);
}

static qun_rc retry(const char *event_id, json_t **out) {
    qun_err_t err;
    void *arg[2] = {(void *)event_id, out};
    return qun_writer_run(writer, retry_txn, arg, &err);
}

/* Always 503: dead after max_attempts, listed, requeued by the admin retry (a fresh
 * round of attempts, due now), then delivered; a second retry finds nothing dead. */
static void dead_then_redelivered(void) {
    uint64_t d0, f0, x0, d1, f1, x1;
    qun_outbox_stats(&d0, &f0, &x0);
    atomic_store(&answer, 503);
    int64_t id = emit("cdn.purge", "{\"paths\":[\"/dead\"]}");
    delivery_t d;
    int max = qun_outbox_cfg.max_attempts;
    for (int k = 1; k < max; k++) {
        char row[24];
        snprintf(row, sizeof row, "attempt %d", k);
        CHECKF(wait_delivery(id, url, "pending", k, &d), row);
        CHECKF(d.attempts == k && d.last_status == 503, row);
        qun_clock_advance(d.next_at - qun_now() > 0 ? d.next_at - qun_now() : 0);
    }
    CHECK(wait_delivery(id, url, "dead", max, &d));
    CHECK(d.attempts == max && d.delivered_at == 0);
    /* The counters move just after the outcome commits: wait for them a moment. */
    for (int i = 0; i < 100; i++) {
        qun_outbox_stats(&d1, &f1, &x1);
        if (x1 != x0 && f1 == f0 + (uint64_t)max) break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    CHECK(d1 == d0 && f1 == f0 + (uint64_t)max && x1 == x0 + 1);

    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_outbox_dead_list(rd, 0, 50, &out, &err) == QUN_OK);
    json_t *items = json_object_get(out, "items"), *it = NULL, *e;
    size_t i;
    json_array_foreach(items, i, e) if (strcmp(json_string_value(json_object_get(e, "id")), d.event_id) == 0)
        it = e;
    CHECK(it != NULL);
    CHECK_STR(json_string_value(json_object_get(it, "url")), url);
    CHECK_STR(json_string_value(json_object_get(it, "topic")), "cdn.purge");
    CHECK(json_integer_value(json_object_get(it, "attempts")) == max);
    CHECK(json_integer_value(json_object_get(it, "last_status")) == 503);
    CHECK_STR(json_string_value(json_array_get(json_object_get(json_object_get(it, "payload"), "paths"), 0)),
              "/dead");
    CHECK(json_is_null(json_object_get(out, "next_cursor")));
    json_decref(out);

    atomic_store(&answer, 200);
    CHECK(retry(d.event_id, &out) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "id")), d.event_id);
    CHECK(json_integer_value(json_object_get(out, "requeued")) == 1);
    json_decref(out);
    CHECK(wait_delivery(id, url, "delivered", 1, &d));
    CHECK(d.attempts == 1 && d.delivered_at > 0);
    CHECK(retry(d.event_id, &out) == QUN_DEAD_LETTER_NOT_FOUND);
    CHECK(retry("ev_none", &out) == QUN_DEAD_LETTER_NOT_FOUND);
    CHECK(qun_outbox_dead_list(rd, 0, 50, &out, &err) == QUN_OK);
    json_array_foreach(json_object_get(out, "items"), i, e)
        CHECK(strcmp(json_string_value(json_object_get(e, "id")), d.event_id) != 0);
    json_decref(out);
}

static qun_outbox_t *outbox;
static char urls[160];

/* Stop the delivery thread and start it again on the URL list u (a restart of qund
 * with another configuration). */
static void restart(const char *u) {
    qun_err_t err;
    qun_outbox_stop(outbox);
    snprintf(urls, sizeof urls, "%s", u);
    qun_outbox_cfg.urls = urls;
    outbox = NULL;
    CHECK(qun_outbox_start(path, writer, &outbox, &err) == QUN_OK && outbox != NULL);
}

/* A second URL where nobody listens: its attempt fails with no HTTP status and the
 * event stays undelivered although the first URL has it (delivered_at waits for every
 * URL).  Dropped from the configuration, its pending delivery is dead at its next
 * attempt instead of being retried for ever. */
static void down_receiver_then_url_dropped(void) {
    char both[160];
    snprintf(both, sizeof both, "%s,%s", url, down_url);
    restart(both);
    atomic_store(&answer, 200);
    int64_t id = emit("cdn.purge", "{\"paths\":[\"/two\"]}");
    delivery_t up, down;
    CHECK(wait_delivery(id, url, "delivered", 1, &up));
    CHECK(wait_delivery(id, down_url, "pending", 1, &down));
    CHECK(down.last_status == -1); /* NULL: no HTTP answer */
    CHECK(strlen(down.last_error) > 0);
    CHECK(up.delivered_at == 0 && down.delivered_at == 0);
    CHECK_STR(up.event_id, down.event_id);
    restart(url);
    qun_clock_advance(down.next_at - qun_now() > 0 ? down.next_at - qun_now() : 0);
    CHECK(wait_delivery(id, down_url, "dead", 2, &down));
    CHECK(down.attempts == 2);
    CHECK(delivery(id, url, &up) && strcmp(up.state, "delivered") == 0 && up.attempts == 1);
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    if (sodium_init() < 0 || !mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/qun.db", dir);
    int port = listen_loopback(&listen_fd), down_fd;
    int down_port = listen_loopback(&down_fd); /* bound, then closed: nobody listens there */
    close(down_fd);
    CHECK(port > 0 && down_port > 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    snprintf(down_url, sizeof down_url, "http://127.0.0.1:%d/hook", down_port);
    pthread_create(&receiver, NULL, receiver_main, NULL);

    qun_db_t *wdb;
    CHECK(qun_db_open(path, false, true, &wdb, &err) == QUN_OK);
    CHECK(qun_writer_start(wdb, 64, &writer, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &rd, &err) == QUN_OK);
    RUN(config_check);

    qun_outbox_cfg.urls = url;
    qun_outbox_cfg.secret = SECRET;
    qun_outbox_cfg.timeout_ms = 5000;
    qun_outbox_cfg.max_attempts = 3;
    qun_outbox_cfg.backoff_base = 10;
    CHECK(qun_outbox_start(path, writer, &outbox, &err) == QUN_OK && outbox != NULL);
    RUN(delivered_once);
    RUN(retried_after_backoff);
    RUN(dead_then_redelivered);
    RUN(down_receiver_then_url_dropped);
    qun_outbox_stop(outbox);

    atomic_store(&receiver_stop, true);
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(receiver, NULL);
    qun_writer_stop(writer);
    qun_db_close(rd);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return unit_done("jobs/outbox");
}
