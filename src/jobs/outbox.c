/* SPDX-License-Identifier: MIT */
/* Webhook delivery of the outbox: one thread, apart from the job scheduler, that
 * turns new outbox rows into one delivery per configured URL and POSTs due
 * deliveries, a bounded batch at a time and concurrently within the batch (libcurl's
 * multi interface), then records every outcome of the batch in one transaction.
 *
 * A delivery's states (table outbox_deliveries):
 *
 *     pending ──2xx──▶ delivered
 *       │  ▲
 *       │  └── failure, attempts < max: next_at = now + backoff(attempts)
 *       └───── failure, attempts = max ──▶ dead ──admin retry──▶ pending (attempts 0)
 *
 * Invariants:
 *   1. A delivery becomes `delivered` only in a transaction that follows a 2xx answer
 *      to it, so a crash anywhere before that commit re-sends it: at least once.
 *   2. Every attempt of an event carries the same Qun-Event-Id and the same body: both
 *      are built from stored columns only (event_id is assigned once, in the
 *      transaction that creates the event's deliveries).
 *   3. outbox.delivered_at is set exactly when every delivery of the row is delivered.
 *   4. Only this thread moves deliveries out of `pending`, and it never has two
 *      attempts of one delivery in flight; the admin retry only moves `dead` ones. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "qun/idle.h"
#include "qun/outbox.h"
#include "qun/util.h"
#include "qun/version.h"

#define MAX_URLS 8
#define BATCH 16          /* deliveries in flight at once */
#define SCAN 256          /* outbox rows turned into deliveries per transaction */
#define IDLE_MS 250       /* poll interval when nothing is due */
#define BACKOFF_CAP 21600 /* seconds: no retry waits longer than 6 h */

qun_outbox_cfg_t qun_outbox_cfg = {NULL, NULL, 5000, 12, 10};

static _Atomic uint64_t n_delivered, n_failed, n_dead;

struct qun_outbox {
    qun_db_t *db; /* this thread's read connection */
    qun_writer_t *writer;
    char *urls[MAX_URLS];
    int nurls;
    CURLM *multi;    /* keeps connections to receivers alive between batches */
    int64_t scanned; /* outbox ids up to here have their deliveries */
    pthread_t thread;
    qun_idle_t idle; /* rest between rounds; stop */
};

/* One attempt of one delivery. */
typedef struct {
    int64_t id, attempts;
    char *url, *body;
    char event_id[QUN_ID_MAX];
    bool configured; /* the URL is still in the configuration */
    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    long status; /* HTTP status, 0 when none came back */
    char error[256];
} attempt_t;

/* ---- configuration ---- */

/* Split the comma-separated URL list into out (owned strings); -1 on a bad list. */
static int split_urls(const char *list, char *out[MAX_URLS], qun_err_t *err) {
    int n = 0;
    const char *s = list ? list : "";
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len) {
            bool scheme =
                (len > 7 && strncmp(s, "http://", 7) == 0) || (len > 8 && strncmp(s, "https://", 8) == 0);
            bool clean = len < 2048;
            for (size_t i = 0; i < len && clean; i++)
                clean = s[i] > ' ' && s[i] != '"' && s[i] < 127;
            if (!scheme || !clean || n == MAX_URLS) {
                for (int i = 0; i < n; i++)
                    free(out[i]);
                if (n == MAX_URLS)
                    qun_fail(err, QUN_BAD_REQUEST, "webhook_url: at most %d URLs", MAX_URLS);
                else
                    qun_fail(err, QUN_BAD_REQUEST, "webhook_url: \"%.*s\" is not an http(s) URL",
                             (int)(len > 100 ? 100 : len), s);
                return -1;
            }
            out[n++] = strndup(s, len);
        }
        s += end ? (size_t)(end - s) + 1 : strlen(s);
    }
    return n;
}

qun_rc qun_outbox_cfg_check(qun_err_t *err) {
    char *urls[MAX_URLS];
    int n = split_urls(qun_outbox_cfg.urls, urls, err);
    if (n < 0) return QUN_BAD_REQUEST;
    for (int i = 0; i < n; i++)
        free(urls[i]);
    if (n > 0 && (!qun_outbox_cfg.secret || strlen(qun_outbox_cfg.secret) < 16))
        return qun_fail(err, QUN_BAD_REQUEST,
                        "webhook_url is set: webhook_secret (at least 16 characters) is required");
    return QUN_OK;
}

/* ---- the thread's plumbing ---- */

/* ---- new outbox rows become deliveries ---- */

typedef struct {
    qun_outbox_t *o;
    int64_t ids[SCAN];
    int n;
} scan_t;

static qun_rc scan_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    scan_t *s = arg;
    int64_t now = qun_now();
    qun_rc rc = QUN_DONE;
    for (int i = 0; i < s->n && rc == QUN_DONE; i++) {
        char ev[QUN_ID_MAX];
        qun_id_new(ev, "ev");
        rc = qun_db_run(db, NULL, err, "UPDATE outbox SET event_id = $2 WHERE id = $1 AND event_id IS NULL",
                        "is", s->ids[i], ev);
        for (int u = 0; u < s->o->nurls && rc == QUN_DONE; u++)
            rc = qun_db_run(
                db, NULL, err,
                "INSERT INTO outbox_deliveries(outbox_id, url, next_at, created_at) VALUES ($1, $2, $3, $3) "
                "ON CONFLICT (outbox_id, url) DO NOTHING",
                "isi", s->ids[i], s->o->urls[u], now);
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Give undelivered outbox rows past the scan mark their deliveries; *n = rows seen. */
static qun_rc scan(qun_outbox_t *o, int *n, qun_err_t *err) {
    static scan_t s; /* only this thread scans */
    qun_q_t *q;
    s.o = o;
    s.n = 0;
    qun_rc rc = qun_db_run(
        o->db, &q, err, "SELECT id FROM outbox WHERE id > $1 AND delivered_at IS NULL ORDER BY id LIMIT $2",
        "ii", o->scanned, (int64_t)SCAN);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        s.ids[s.n++] = qun_q_col_int(q, 0);
    *n = s.n;
    if (rc != QUN_DONE) return rc;
    if (s.n == 0) return QUN_OK;
    rc = qun_writer_run(o->writer, scan_txn, &s, err);
    if (rc == QUN_OK) o->scanned = s.ids[s.n - 1];
    return rc;
}

/* ---- building and signing one attempt ---- */

/* The body: canonical (compact, sorted keys) JSON of stored columns only, so every
 * attempt of an event sends the same bytes (invariant 2). */
static char *event_body(const char *event_id, const char *topic, int64_t created_at, const char *payload) {
    json_t *p = json_loads(payload, JSON_DECODE_ANY, NULL);
    if (!p) p = json_string(payload); /* never expected: jobs write JSON */
    json_t *b = json_pack("{s:s, s:s, s:I, s:o}", "id", event_id, "topic", topic, "created_at",
                          (json_int_t)created_at, "payload", p);
    char *text = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(b);
    return text;
}

/* Qun-Signature: v1=<hex HMAC-SHA256(secret, timestamp "." body)>. */
static void sign(char out[3 + 2 * crypto_auth_hmacsha256_BYTES + 1], const char *ts, const char *body) {
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    const char *key = qun_outbox_cfg.secret;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "v1=", 3);
    qun_hex(out + 3, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
}

static size_t discard(char *p, size_t size, size_t n, void *arg) {
    (void)p, (void)arg;
    return size * n;
}

static bool prepare(attempt_t *a) {
    char ts[24], sig[3 + 2 * crypto_auth_hmacsha256_BYTES + 1], h[160];
    snprintf(ts, sizeof ts, "%lld", (long long)qun_now());
    sign(sig, ts, a->body);
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(h, sizeof h, "Qun-Event-Id: %s", a->event_id);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "Qun-Timestamp: %s", ts);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "Qun-Signature: %s", sig);
    l = curl_slist_append(l, h);
    l = curl_slist_append(l, "Expect:"); /* no 100-continue round trip */
    a->headers = l;
    a->easy = curl_easy_init();
    if (!l || !a->easy) return false;
    CURL *e = a->easy;
    curl_easy_setopt(e, CURLOPT_URL, a->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(a->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "qund/" QUN_VERSION);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)qun_outbox_cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is not a delivery */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, a);
    return true;
}

/* Run the batch's attempts concurrently; false when stopped midway (nothing recorded). */
static bool send_all(qun_outbox_t *o, attempt_t *as, int n) {
    int added = 0;
    for (int i = 0; i < n; i++) {
        attempt_t *a = &as[i];
        if (!a->configured) {
            snprintf(a->error, sizeof a->error, "the URL is no longer configured");
        } else if (!prepare(a)) {
            snprintf(a->error, sizeof a->error, "cannot build the request");
        } else {
            curl_multi_add_handle(o->multi, a->easy);
            added++;
        }
    }
    bool stopped = false;
    for (int running = added; running > 0;) {
        if (curl_multi_perform(o->multi, &running) != CURLM_OK) break;
        if (running == 0) break;
        if (qun_idle_stopping(&o->idle)) {
            stopped = true;
            break;
        }
        curl_multi_poll(o->multi, NULL, 0, 1000, NULL); /* qun_outbox_stop wakes it */
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(o->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        attempt_t *a;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&a);
        if (m->data.result == CURLE_OK) {
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &a->status);
            if (a->status < 200 || a->status > 299)
                snprintf(a->error, sizeof a->error, "HTTP %ld", a->status);
        } else {
            snprintf(a->error, sizeof a->error, "%s",
                     a->errbuf[0] ? a->errbuf : curl_easy_strerror(m->data.result));
        }
    }
    for (int i = 0; i < n; i++) {
        if (!as[i].easy) continue;
        if (as[i].status == 0 && !as[i].error[0]) /* never finished: the batch was cut short */
            snprintf(as[i].error, sizeof as[i].error, "interrupted");
        curl_multi_remove_handle(o->multi, as[i].easy);
    }
    return !stopped;
}

/* ---- recording outcomes ---- */

/* Seconds before retry number `attempts` + 1: base * 2^(attempts-1), capped, with
 * "equal jitter" (half fixed, half random) so receivers that came back are not hit by
 * every sender at once. */
int64_t qun_backoff(int64_t base, int64_t attempts) {
    int64_t d = base;
    for (int64_t i = 1; i < attempts && d < BACKOFF_CAP; i++)
        d *= 2;
    if (d > BACKOFF_CAP) d = BACKOFF_CAP;
    int64_t half = d / 2;
    int64_t j = half + (int64_t)randombytes_uniform((uint32_t)(d - half + 1));
    return j < 1 ? 1 : j;
}

typedef struct {
    attempt_t *as;
    int n;
    int dead; /* deliveries this batch moved to dead */
} record_t;

static qun_rc record_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    record_t *r = arg;
    int64_t now = qun_now(), max = qun_outbox_cfg.max_attempts;
    qun_rc rc = QUN_DONE;
    r->dead = 0;
    for (int i = 0; i < r->n && rc == QUN_DONE; i++) {
        attempt_t *a = &r->as[i];
        bool ok = a->status >= 200 && a->status <= 299;
        if (ok) { /* invariant 1: only here, after the 2xx */
            rc = qun_db_run(db, NULL, err,
                            "UPDATE outbox_deliveries SET state = 'delivered', attempts = attempts + 1, "
                            "last_status = $2, last_error = '', last_attempt_at = $3, delivered_at = $3 "
                            "WHERE id = $1 AND state = 'pending'",
                            "iii", a->id, (int64_t)a->status, now);
            if (rc == QUN_DONE) /* invariant 3 */
                rc = qun_db_run(db, NULL, err,
                                "UPDATE outbox SET delivered_at = $2 WHERE id = (SELECT outbox_id FROM "
                                "outbox_deliveries WHERE id = $1) AND delivered_at IS NULL AND NOT EXISTS "
                                "(SELECT 1 FROM outbox_deliveries d WHERE d.outbox_id = outbox.id "
                                "AND d.state <> 'delivered')",
                                "ii", a->id, now);
            continue;
        }
        bool dead = !a->configured || a->attempts + 1 >= max;
        r->dead += dead;
        rc = qun_db_run(
            db, NULL, err,
            "UPDATE outbox_deliveries SET attempts = attempts + 1, last_status = $2, last_error = $3, "
            "last_attempt_at = $4, next_at = $5, state = CASE WHEN $6 = 1 THEN 'dead' ELSE 'pending' END "
            "WHERE id = $1 AND state = 'pending'",
            "izsiii", a->id, (int64_t)a->status, a->error, now,
            now + qun_backoff(qun_outbox_cfg.backoff_base, a->attempts + 1), (int64_t)dead);
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

static void attempts_free(attempt_t *as, int n) {
    for (int i = 0; i < n; i++) {
        if (as[i].easy) curl_easy_cleanup(as[i].easy);
        curl_slist_free_all(as[i].headers);
        free(as[i].url);
        free(as[i].body);
    }
}

/* Send one batch of due deliveries and record the outcomes; *n = attempts made. */
static qun_rc deliver(qun_outbox_t *o, int *n, qun_err_t *err) {
    static attempt_t as[BATCH]; /* only this thread delivers */
    qun_q_t *q;
    *n = 0;
    memset(as, 0, sizeof as);
    qun_rc rc =
        qun_db_run(o->db, &q, err,
                   "SELECT d.id, d.url, d.attempts, o.event_id, o.topic, o.created_at, o.payload "
                   "FROM outbox_deliveries d JOIN outbox o ON o.id = d.outbox_id "
                   "WHERE d.state = 'pending' AND d.next_at <= $1 ORDER BY d.outbox_id, d.id LIMIT $2",
                   "ii", qun_now(), (int64_t)BATCH);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        attempt_t *a = &as[*n];
        a->id = qun_q_col_int(q, 0);
        a->url = qun_xstrdup(qun_q_col_text(q, 1));
        a->attempts = qun_q_col_int(q, 2);
        snprintf(a->event_id, sizeof a->event_id, "%s", qun_q_col_text(q, 3));
        a->body = event_body(a->event_id, qun_q_col_text(q, 4), qun_q_col_int(q, 5), qun_q_col_text(q, 6));
        for (int u = 0; u < o->nurls; u++)
            a->configured |= strcmp(o->urls[u], a->url) == 0;
        if (!a->body) { /* leave it pending; nothing can be sent without a body */
            free(a->url);
            memset(a, 0, sizeof *a);
            continue;
        }
        (*n)++;
    }
    if (rc != QUN_DONE || *n == 0) {
        attempts_free(as, *n);
        return rc == QUN_DONE ? QUN_OK : rc;
    }
    if (send_all(o, as, *n)) {
        record_t r = {as, *n, 0};
        rc = qun_writer_run(o->writer, record_txn, &r, err);
        if (rc == QUN_OK) {
            for (int i = 0; i < *n; i++) {
                bool ok = as[i].status >= 200 && as[i].status <= 299;
                atomic_fetch_add(ok ? &n_delivered : &n_failed, 1);
                if (!ok)
                    qun_log("warn", "webhook %s to %s failed (attempt %lld): %s", as[i].event_id, as[i].url,
                            (long long)as[i].attempts + 1, as[i].error);
            }
            atomic_fetch_add(&n_dead, (uint64_t)r.dead);
        }
    }
    attempts_free(as, *n);
    return rc;
}

static void *outbox_main(void *arg) {
    qun_outbox_t *o = arg;
    qun_err_t err = {{0}, {0}};
    while (!qun_idle_stopping(&o->idle)) {
        int scanned = 0, sent = 0;
        qun_rc rc = scan(o, &scanned, &err);
        if (rc == QUN_OK) rc = deliver(o, &sent, &err);
        if (rc != QUN_OK) {
            qun_log("warn", "webhook delivery: %s %s", qun_rc_name(rc), err.msg);
            qun_idle_rest(&o->idle, IDLE_MS);
        } else if (sent == 0 && scanned < SCAN) {
            qun_idle_rest(&o->idle, IDLE_MS);
        }
    }
    return NULL;
}

qun_rc qun_outbox_start(const char *db_path, qun_writer_t *writer, qun_outbox_t **out, qun_err_t *err) {
    *out = NULL;
    char *urls[MAX_URLS];
    int n = split_urls(qun_outbox_cfg.urls, urls, err);
    if (n < 0) return QUN_BAD_REQUEST;
    if (n == 0) return QUN_OK;
    qun_rc rc = qun_outbox_cfg_check(err);
    if (rc == QUN_OK && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = qun_fail(err, QUN_INTERNAL, "libcurl failed to initialise");
    qun_outbox_t *o = qun_xcalloc(1, sizeof *o);
    memcpy(o->urls, urls, sizeof urls);
    o->nurls = n;
    if (rc == QUN_OK) rc = qun_db_open(db_path, true, false, &o->db, err);
    if (rc == QUN_OK && !(o->multi = curl_multi_init()))
        rc = qun_fail(err, QUN_NOMEM, "curl_multi_init failed");
    if (rc != QUN_OK) {
        for (int i = 0; i < n; i++)
            free(o->urls[i]);
        qun_db_close(o->db);
        free(o);
        return rc;
    }
    curl_multi_setopt(o->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)BATCH);
    o->writer = writer;
    qun_idle_init(&o->idle);
    qun_thread_start(&o->thread, "qun-webhooks", outbox_main, o);
    qun_log("info", "webhooks: delivering the outbox to %d URL(s)", n);
    *out = o;
    return QUN_OK;
}

void qun_outbox_stop(qun_outbox_t *o) {
    if (!o) return;
    qun_idle_stop(&o->idle);
    curl_multi_wakeup(o->multi);
    pthread_join(o->thread, NULL);
    curl_multi_cleanup(o->multi);
    qun_db_close(o->db);
    for (int i = 0; i < o->nurls; i++)
        free(o->urls[i]);
    qun_idle_destroy(&o->idle);
    free(o);
    curl_global_cleanup();
}

void qun_outbox_stats(uint64_t *delivered, uint64_t *failed, uint64_t *dead) {
    *delivered = atomic_load(&n_delivered);
    *failed = atomic_load(&n_failed);
    *dead = atomic_load(&n_dead);
}

/* ---- admin ---- */

qun_rc qun_outbox_dead_list(qun_db_t *db, int64_t after, int limit, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = after;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT d.id, o.event_id, o.topic, o.created_at, o.payload, d.url, d.attempts, "
                           "d.last_status, d.last_error, COALESCE(d.last_attempt_at, 0) "
                           "FROM outbox_deliveries d JOIN outbox o ON o.id = d.outbox_id "
                           "WHERE d.state = 'dead' AND d.id > $1 ORDER BY d.id LIMIT $2",
                           "ii", after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_t *payload = json_loads(qun_q_col_text(q, 4), JSON_DECODE_ANY, NULL);
        json_t *it =
            json_pack("{s:s, s:s, s:I, s:o, s:s, s:I, s:o, s:s, s:I}", "id", qun_q_col_text(q, 1), "topic",
                      qun_q_col_text(q, 2), "created_at", (json_int_t)qun_q_col_int(q, 3), "payload",
                      payload ? payload : json_string(qun_q_col_text(q, 4)), "url", qun_q_col_text(q, 5),
                      "attempts", (json_int_t)qun_q_col_int(q, 6), "last_status",
                      qun_q_col_null(q, 7) ? json_null() : json_integer(qun_q_col_int(q, 7)), "last_error",
                      qun_q_col_text(q, 8), "last_attempt_at", (json_int_t)qun_q_col_int(q, 9));
        if (!it || json_array_append_new(items, it) != 0) {
            qun_q_done(q);
            rc = qun_fail(err, QUN_NOMEM, "cannot build the dead-letter list");
            break;
        }
    }
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)last);
    *out = json_pack("{s:o, s:s?}", "items", items, "next_cursor",
                     (int)json_array_size(items) == limit ? cur : NULL);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the dead-letter list");
}

qun_rc qun_outbox_retry(qun_db_t *db, const char *event_id, json_t **out, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err,
                           "UPDATE outbox_deliveries SET state = 'pending', attempts = 0, next_at = $2 "
                           "WHERE state = 'dead' AND outbox_id = (SELECT id FROM outbox WHERE event_id = $1)",
                           "si", event_id, qun_now());
    if (rc != QUN_DONE) return rc;
    int64_t n = qun_db_changes(db);
    if (n == 0) return qun_fail(err, QUN_DEAD_LETTER_NOT_FOUND, "event %.64s has no dead delivery", event_id);
    *out = json_pack("{s:s, s:I}", "id", event_id, "requeued", (json_int_t)n);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}
