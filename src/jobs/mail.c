/* SPDX-License-Identifier: MIT */
/* Mail delivery (include/qun/mail.h).  A mail's states (table mail_outbox):
 *
 *     pending ──relay accepted──▶ sent
 *       │  ▲
 *       │  └── failure, attempts < max: next_at = now + backoff(attempts)
 *       └───── failure, attempts = max ──▶ dead
 *
 * Invariants:
 *   1. A mail becomes `sent` only in a transaction that follows the relay's 250 to the
 *      message, so a crash before that commit sends it again (at least once), with the
 *      same Message-ID (the row's mid) and the same text.
 *   2. A verification code or invitation token leaves the database only sealed, and
 *      its sealed copy is wiped (params = '{}') when the mail is sent or dead.
 *   3. Only this thread moves mail out of `pending` towards `sent`; core moves pending
 *      mail of a changed or removed address to `dead`, which this thread never undoes
 *      (its updates require state = 'pending'). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "qun/idle.h"
#include "qun/mail.h"
#include "qun/notify.h"
#include "qun/outbox.h"
#include "qun/util.h"
#include "qun/verify.h"

#define BATCH 8
#define IDLE_MS 250

static _Atomic uint64_t n_sent, n_failed, n_dead;

struct qun_mail {
    qun_db_t *db;
    qun_writer_t *writer;
    pthread_t thread;
    qun_idle_t idle; /* rest between rounds; stop */
};

typedef struct {
    int64_t id, attempts;
    char mid[QUN_ID_MAX];
    char *to, *lang, *kind, *params;
    bool ok;
    char error[256];
} mail_t;

/* ---- the message ---- */

static void b64(FILE *f, const unsigned char *p, size_t n) {
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *out = qun_xmalloc(cap);
    sodium_bin2base64(out, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
    fputs(out, f);
    free(out);
}

/* RFC 2047 encoded words of UTF-8 text, at most 45 bytes each (never splitting a
 * character), folded onto continuation lines. */
static void encoded_words(FILE *f, const char *s) {
    size_t n = strlen(s), i = 0;
    bool first = true;
    while (i < n || first) {
        size_t take = n - i > 45 ? 45 : n - i;
        while (take > 0 && i + take < n && ((unsigned char)s[i + take] & 0xC0) == 0x80)
            take--;
        fputs(first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?", f);
        b64(f, (const unsigned char *)s + i, take);
        fputs("?=", f);
        i += take;
        first = false;
        if (take == 0) break;
    }
}

/* The whole message as sent (headers, blank line, base64 body), or NULL. */
static char *message(const mail_t *m, const char *subject, const char *body, size_t *len) {
    char *out = NULL, date[64], domain[256];
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    if (!f) return NULL;
    time_t now = (time_t)qun_now();
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *at = strchr(qun_notify_cfg.smtp_from, '@');
    snprintf(domain, sizeof domain, "%s", at ? at + 1 : "qun.invalid");
    fprintf(f, "Date: %s\r\nFrom: qun <%s>\r\nTo: <%s>\r\nSubject: ", date, qun_notify_cfg.smtp_from, m->to);
    encoded_words(f, subject);
    fprintf(f,
            "\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: base64\r\nContent-Language: %s\r\nAuto-Submitted: auto-generated\r\n"
            "X-Qun-Kind: %s\r\n\r\n",
            m->mid, domain, m->lang, m->kind);
    size_t bl = strlen(body);
    for (size_t i = 0; i < bl; i += 57) { /* 76-character lines */
        b64(f, (const unsigned char *)body + i, bl - i > 57 ? 57 : bl - i);
        fputs("\r\n", f);
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    *len = n;
    return out;
}

typedef struct {
    const char *p;
    size_t left;
} upload_t;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg) {
    upload_t *u = arg;
    size_t n = size * nitems < u->left ? size * nitems : u->left;
    memcpy(buf, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

/* The clear secret of a mail that carries one (its sealed hex under key), into out. */
static bool unseal(json_t *params, const char *key, char *out, size_t size) {
    const char *hex = json_string_value(json_object_get(params, key));
    if (!hex) return false;
    size_t hl = strlen(hex), bl = 0;
    unsigned char *bin = qun_xmalloc(hl / 2 + 1);
    qun_err_t err = {{0}, {0}};
    size_t pl = 0;
    bool ok = sodium_hex2bin(bin, hl / 2 + 1, hex, hl, NULL, &bl, NULL) == 0 &&
              qun_secret_open(bin, bl, (unsigned char *)out, size - 1, &pl, &err) == QUN_OK;
    free(bin);
    out[ok ? pl : 0] = '\0';
    return ok;
}

/* One attempt: render, then hand the message to the relay. */
static void send_one(mail_t *m) {
    json_t *params = json_loads(m->params, 0, NULL);
    char secret[128] = "";
    bool has_secret = strcmp(m->kind, "email.verify") == 0 || strcmp(m->kind, "email.invite") == 0;
    if (!params ||
        (has_secret && !unseal(params, strcmp(m->kind, "email.verify") == 0 ? "code_sealed" : "token_sealed",
                               secret, sizeof secret))) {
        snprintf(m->error, sizeof m->error, "the mail's parameters cannot be read");
        json_decref(params);
        return;
    }
    char *subject = NULL, *body = NULL, *msg = NULL;
    size_t len = 0;
    if (qun_mail_render(m->kind, params, m->lang, has_secret ? secret : NULL, &subject, &body))
        msg = message(m, subject, body, &len);
    sodium_memzero(secret, sizeof secret);
    if (body) sodium_memzero(body, strlen(body));
    free(subject);
    free(body);
    json_decref(params);
    if (!msg) {
        snprintf(m->error, sizeof m->error, "cannot build the message");
        return;
    }
    CURL *e = curl_easy_init();
    char from[300], to[300], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(from, sizeof from, "<%s>", qun_notify_cfg.smtp_from);
    snprintf(to, sizeof to, "<%s>", m->to);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    upload_t up = {msg, len};
    if (e && rcpt) {
        curl_easy_setopt(e, CURLOPT_URL, qun_notify_cfg.smtp_url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, &up);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE, (long)len);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)qun_notify_cfg.timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode rc = curl_easy_perform(e);
        m->ok = rc == CURLE_OK;
        if (!m->ok) snprintf(m->error, sizeof m->error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else {
        snprintf(m->error, sizeof m->error, "cannot start libcurl");
    }
    curl_slist_free_all(rcpt);
    if (e) curl_easy_cleanup(e);
    sodium_memzero(msg, len);
    free(msg);
}

/* ---- recording ---- */

typedef struct {
    mail_t *ms;
    int n, dead;
} record_t;

static qun_rc record_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    record_t *r = arg;
    int64_t now = qun_now();
    qun_rc rc = QUN_DONE;
    r->dead = 0;
    for (int i = 0; i < r->n && rc == QUN_DONE; i++) {
        mail_t *m = &r->ms[i];
        if (m->ok) { /* invariants 1 and 2 */
            rc = qun_db_run(
                db, NULL, err,
                "UPDATE mail_outbox SET state = 'sent', attempts = attempts + 1, sent_at = $2, "
                "last_error = '', params = CASE WHEN kind LIKE 'email.%' THEN '{}' ELSE params END "
                "WHERE id = $1 AND state = 'pending'",
                "ii", m->id, now);
            continue;
        }
        bool dead = m->attempts + 1 >= qun_notify_cfg.max_attempts;
        r->dead += dead;
        rc = qun_db_run(db, NULL, err,
                        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, next_at = $3, "
                        "state = CASE WHEN $4 = 1 THEN 'dead' ELSE 'pending' END, "
                        "params = CASE WHEN $4 = 1 AND kind LIKE 'email.%' THEN '{}' ELSE params END "
                        "WHERE id = $1 AND state = 'pending'",
                        "isii", m->id, m->error,
                        now + qun_backoff(qun_notify_cfg.backoff_base, m->attempts + 1), (int64_t)dead);
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

static void mails_free(mail_t *ms, int n) {
    for (int i = 0; i < n; i++) {
        free(ms[i].to);
        free(ms[i].lang);
        free(ms[i].kind);
        if (ms[i].params) sodium_memzero(ms[i].params, strlen(ms[i].params));
        free(ms[i].params);
    }
}

/* Send one batch of due mail and record the outcomes; *n = attempts made. */
static qun_rc deliver(qun_mail_t *o, int *n, qun_err_t *err) {
    static mail_t ms[BATCH]; /* only this thread delivers */
    qun_q_t *q;
    *n = 0;
    memset(ms, 0, sizeof ms);
    qun_rc rc = qun_db_run(o->db, &q, err,
                           "SELECT id, mid, to_addr, lang, kind, params, attempts FROM mail_outbox "
                           "WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at, id LIMIT $2",
                           "ii", qun_now(), (int64_t)BATCH);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        mail_t *m = &ms[(*n)++];
        m->id = qun_q_col_int(q, 0);
        snprintf(m->mid, sizeof m->mid, "%s", qun_q_col_text(q, 1));
        m->to = qun_xstrdup(qun_q_col_text(q, 2));
        m->lang = qun_xstrdup(qun_q_col_text(q, 3));
        m->kind = qun_xstrdup(qun_q_col_text(q, 4));
        m->params = qun_xstrdup(qun_q_col_text(q, 5));
        m->attempts = qun_q_col_int(q, 6);
    }
    if (rc != QUN_DONE || *n == 0) {
        mails_free(ms, *n);
        return rc == QUN_DONE ? QUN_OK : rc;
    }
    int done = 0;
    for (; done < *n && !qun_idle_stopping(&o->idle); done++)
        send_one(&ms[done]);
    record_t r = {ms, done, 0};
    rc = done ? qun_writer_run(o->writer, record_txn, &r, err) : QUN_OK;
    if (rc == QUN_OK) {
        for (int i = 0; i < done; i++) {
            atomic_fetch_add(ms[i].ok ? &n_sent : &n_failed, 1);
            if (!ms[i].ok)
                qun_log("warn", "mail %s (%s) not sent (attempt %lld): %s", ms[i].mid, ms[i].kind,
                        (long long)ms[i].attempts + 1, ms[i].error);
        }
        atomic_fetch_add(&n_dead, (uint64_t)r.dead);
    }
    mails_free(ms, *n);
    return rc;
}

static void *mail_main(void *arg) {
    qun_mail_t *m = arg;
    qun_err_t err = {{0}, {0}};
    while (!qun_idle_stopping(&m->idle)) {
        int sent = 0;
        qun_rc rc = deliver(m, &sent, &err);
        if (rc != QUN_OK) qun_log("warn", "mail delivery: %s %s", qun_rc_name(rc), err.msg);
        if (rc != QUN_OK || sent < BATCH) qun_idle_rest(&m->idle, IDLE_MS);
    }
    return NULL;
}

qun_rc qun_mail_start(const char *db_path, qun_writer_t *writer, qun_mail_t **out, qun_err_t *err) {
    *out = NULL;
    if (!qun_mail_enabled()) return QUN_OK;
    qun_rc rc = qun_mail_cfg_check(err);
    if (rc != QUN_OK) return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return qun_fail(err, QUN_INTERNAL, "libcurl failed to initialise");
    qun_mail_t *m = qun_xcalloc(1, sizeof *m);
    rc = qun_db_open(db_path, true, false, &m->db, err);
    if (rc != QUN_OK) {
        free(m);
        curl_global_cleanup();
        return rc;
    }
    m->writer = writer;
    qun_idle_init(&m->idle);
    qun_thread_start(&m->thread, "qun-mail", mail_main, m);
    qun_log("info", "mail: sending notifications as %s", qun_notify_cfg.smtp_from);
    *out = m;
    return QUN_OK;
}

void qun_mail_stop(qun_mail_t *m) {
    if (!m) return;
    qun_idle_stop(&m->idle);
    pthread_join(m->thread, NULL);
    qun_db_close(m->db);
    qun_idle_destroy(&m->idle);
    free(m);
    curl_global_cleanup();
}

void qun_mail_stats(uint64_t *sent, uint64_t *failed, uint64_t *dead) {
    *sent = atomic_load(&n_sent);
    *failed = atomic_load(&n_failed);
    *dead = atomic_load(&n_dead);
}
