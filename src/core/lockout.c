/* SPDX-License-Identifier: MIT */
/* Brute-force protection (include/qun/lockout.h): failure counters per account and
 * per network in `auth_failures`, and the locks they engage in `lockouts`.
 *
 * A counter counts failures in a fixed window opened by its first failure: a failure
 * more than `window` seconds after the window opened starts a new one.  Reaching the
 * threshold inserts a lock (until now + duration) and sets the counter back to zero,
 * so when the lock ends the subject starts afresh rather than one failure away from
 * the next lock.  Attempts refused by a lock are not counted (they check nothing). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "qun/ledger.h"
#include "qun/lockout.h"

qun_lockout_cfg_t qun_lockout_cfg = {
    .account_max = 10,
    .network_max = 100,
    .window = 900,
    .duration = 900,
};

void qun_lockout_network(const char *ip, char out[QUN_NET_MAX]) {
    char buf[64];
    unsigned char a[16];
    out[0] = '\0';
    if (!ip || !*ip) return;
    snprintf(buf, sizeof buf, "%s", ip[0] == '[' ? ip + 1 : ip);
    buf[strcspn(buf, "]%")] = '\0'; /* brackets and an IPv6 zone */
    if (inet_pton(AF_INET, buf, a) == 1) {
        snprintf(out, QUN_NET_MAX, "%u.%u.%u.0/24", a[0], a[1], a[2]);
        return;
    }
    if (inet_pton(AF_INET6, buf, a) != 1) return;
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, v4mapped, sizeof v4mapped) == 0) { /* one IPv4 client, whichever socket it came in on */
        snprintf(out, QUN_NET_MAX, "%u.%u.%u.0/24", a[12], a[13], a[14]);
        return;
    }
    memset(a + 8, 0, 8);
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, a, text, sizeof text)) snprintf(out, QUN_NET_MAX, "%s/64", text);
}

/* The subject an account's failures count against: its username's key (core/username.c),
 * so "Alice", "ALICE" and "ａｌｉｃｅ" share one counter, as they name one account at
 * login.  A name that cannot be folded counts as itself. */
static const char *account_subject(const char *account, char out[QUN_USERNAME_KEY_MAX]) {
    qun_err_t ignore = {{0}, {0}};
    if (!account || !*account) return account;
    if (qun_username_key(account, out, QUN_USERNAME_KEY_MAX, &ignore) != QUN_OK || !*out) return account;
    return out;
}

const char *qun_lockout_counts(qun_rc rc) {
    switch (rc) {
    case QUN_BAD_CREDENTIALS: return "password";
    case QUN_TOTP_INVALID:
    case QUN_TOTP_REPLAYED: return "totp";
    case QUN_SIGNATURE_INVALID: return "signature";
    case QUN_EMAIL_CODE_INVALID: return "email_code";
    default: return NULL;
    }
}

qun_rc qun_lockout_check(qun_db_t *db, const char *account, const char *ip, int64_t *retry_after,
                         json_t **info, qun_err_t *err) {
    char net[QUN_NET_MAX], key[QUN_USERNAME_KEY_MAX];
    qun_lockout_network(ip, net);
    account = account_subject(account, key);
    int64_t now = qun_now();
    qun_q_t *q;
    *retry_after = 0;
    if (info) *info = NULL;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT scope, until_at FROM lockouts WHERE ((scope = 'account' AND subject = $1) OR "
                   "(scope = 'network' AND subject = $2)) AND until_at > $3 AND cleared_at IS NULL "
                   "ORDER BY until_at DESC LIMIT 1",
                   "ssi", account ? account : "", net, now); /* subjects are never "" */
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    char scope[16];
    snprintf(scope, sizeof scope, "%s", qun_q_col_text(q, 0));
    int64_t until = qun_q_col_int(q, 1);
    qun_q_done(q);
    *retry_after = until - now > 0 ? until - now : 1;
    if (info)
        *info = json_pack("{s:s, s:I, s:I}", "scope", scope, "locked_until", (json_int_t)until, "retry_after",
                          (json_int_t)*retry_after);
    return qun_fail(err, QUN_LOCKED_OUT, "too many failed attempts from this %s; try again in %lld seconds",
                    strcmp(scope, "account") == 0 ? "account" : "network", (long long)*retry_after);
}

/* Count one failure against (scope, subject); lock when it reaches max. */
static qun_rc count_one(qun_db_t *db, const char *scope, const char *subject, const char *kind, int max,
                        int64_t *locked_for, json_t **info, qun_err_t *err) {
    if (!subject || !*subject || max <= 0) return QUN_OK;
    int64_t now = qun_now();
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "INSERT INTO auth_failures(scope, subject, failures, window_start, last_kind, last_at) "
        "VALUES ($1, $2, 1, $3, $4, $3) ON CONFLICT (scope, subject) DO UPDATE SET "
        "failures = CASE WHEN auth_failures.window_start <= $5 THEN 1 ELSE auth_failures.failures + 1 END, "
        "window_start = CASE WHEN auth_failures.window_start <= $5 THEN $3 ELSE auth_failures.window_start "
        "END, "
        "last_kind = $4, last_at = $3 RETURNING failures",
        "ssisi", scope, subject, now, kind, now - qun_lockout_cfg.window);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no failure count returned") : rc;
    int64_t failures = qun_q_col_int(q, 0);
    qun_q_done(q);
    if (failures < max) return QUN_OK;
    char lid[QUN_ID_MAX];
    qun_id_new(lid, "l");
    int64_t until = now + qun_lockout_cfg.duration;
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO lockouts(lid, scope, subject, kind, failures, locked_at, until_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    "ssssiii", lid, scope, subject, kind, failures, now, until);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE auth_failures SET failures = 0 WHERE scope = $1 AND subject = $2", "ss",
                        scope, subject);
    if (rc != QUN_DONE) return rc;
    qun_log("warn", "lockout %s: %s %s locked for %llds after %lld failed attempts (last: %s)", lid, scope,
            subject, (long long)qun_lockout_cfg.duration, (long long)failures, kind);
    if (*locked_for == 0 && info) {
        json_decref(*info);
        *info = json_pack("{s:s, s:I, s:I}", "scope", scope, "locked_until", (json_int_t)until, "retry_after",
                          (json_int_t)qun_lockout_cfg.duration);
    }
    *locked_for = qun_lockout_cfg.duration;
    return QUN_OK;
}

qun_rc qun_lockout_fail(qun_db_t *db, const char *account, const char *ip, const char *kind,
                        int64_t *retry_after, json_t **info, qun_err_t *err) {
    char net[QUN_NET_MAX], key[QUN_USERNAME_KEY_MAX];
    qun_lockout_network(ip, net);
    *retry_after = 0;
    if (info) *info = NULL;
    qun_rc rc = count_one(db, "account", account_subject(account, key), kind, qun_lockout_cfg.account_max,
                          retry_after, info, err);
    if (rc == QUN_OK)
        rc = count_one(db, "network", net, kind, qun_lockout_cfg.network_max, retry_after, info, err);
    return rc;
}

qun_rc qun_lockout_reset(qun_db_t *db, const char *account, qun_err_t *err) {
    char key[QUN_USERNAME_KEY_MAX];
    account = account_subject(account, key);
    qun_rc rc = qun_db_run(db, NULL, err,
                           "UPDATE auth_failures SET failures = 0 WHERE scope = 'account' AND subject = $1 "
                           "AND failures > 0",
                           "s", account);
    return rc == QUN_DONE ? QUN_OK : rc;
}

#define LOCK_COLS                                                                                            \
    "SELECT id, lid, scope, subject, kind, failures, locked_at, until_at, cleared_at, cleared_by FROM "      \
    "lockouts "

static json_t *lock_json(qun_q_t *q, int64_t now) {
    bool cleared = !qun_q_col_null(q, 8);
    const char *state = cleared ? "cleared" : qun_q_col_int(q, 7) > now ? "active" : "expired";
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o, s:o}", "id", qun_q_col_text(q, 1),
                     "scope", qun_q_col_text(q, 2), "subject", qun_q_col_text(q, 3), "kind",
                     qun_q_col_text(q, 4), "failures", (json_int_t)qun_q_col_int(q, 5), "locked_at",
                     (json_int_t)qun_q_col_int(q, 6), "locked_until", (json_int_t)qun_q_col_int(q, 7),
                     "state", state, "cleared_at", cleared ? json_integer(qun_q_col_int(q, 8)) : json_null(),
                     "cleared_by", cleared ? json_string(qun_q_col_text(q, 9)) : json_null());
}

qun_rc qun_lockout_list(qun_db_t *db, const qun_actor_t *a, bool all, int64_t after, int limit, json_t **out,
                        qun_err_t *err) {
    if (!a->is_admin) return qun_fail(err, QUN_FORBIDDEN_ADMIN, "only server admins see the locks");
    int64_t now = qun_now(), last = after;
    json_t *items = json_array();
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           LOCK_COLS "WHERE id > $1 AND ($2 = 1 OR (until_at > $3 AND cleared_at IS NULL)) "
                                     "ORDER BY id LIMIT $4",
                           "iiii", after, (int64_t)all, now, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_t *it = lock_json(q, now);
        if (!it || json_array_append_new(items, it) != 0) {
            qun_q_done(q);
            rc = qun_fail(err, QUN_NOMEM, "cannot build the lock list");
            break;
        }
    }
    return qun_page(rc, items, last, limit, out);
}

qun_rc qun_lockout_clear(qun_db_t *db, const qun_actor_t *a, const char *lid, json_t **out, qun_err_t *err) {
    if (!a->is_admin) return qun_fail(err, QUN_FORBIDDEN_ADMIN, "only server admins clear locks");
    int64_t now = qun_now();
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, LOCK_COLS "WHERE lid = $1", "s", lid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_LOCK_NOT_FOUND, "no lock %.40s", lid);
    if (rc != QUN_ROW) return rc;
    int64_t id = qun_q_col_int(q, 0);
    bool active = qun_q_col_null(q, 8) && qun_q_col_int(q, 7) > now;
    char scope[16], subject[80], digest[65], text[100];
    snprintf(scope, sizeof scope, "%s", qun_q_col_text(q, 2));
    snprintf(subject, sizeof subject, "%s", qun_q_col_text(q, 3));
    qun_q_done(q);
    if (active) {
        rc = qun_db_run(db, NULL, err, "UPDATE lockouts SET cleared_at = $2, cleared_by = $3 WHERE id = $1",
                        "iis", id, now, a->openid);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err,
                            "UPDATE auth_failures SET failures = 0 WHERE scope = $1 AND subject = $2", "ss",
                            scope, subject);
        if (rc != QUN_DONE) return rc;
        /* The ledger is readable by every user: it names the lock, not whom it locked. */
        snprintf(text, sizeof text, "%s:%s", scope, subject);
        qun_sha256_hex(digest, text, strlen(text));
        json_t *f = json_pack("{s:s, s:s, s:s}", "lock", lid, "scope", scope, "subject_sha256", digest);
        rc = qun_ledger_append(db, "lockout.cleared", NULL, a->openid, "active", "cleared", f, NULL, err);
        json_decref(f);
        if (rc != QUN_OK) return rc;
        qun_log("info", "lockout %s: %s %s cleared by %s", lid, scope, subject, a->openid);
    }
    rc = qun_db_run(db, &q, err, LOCK_COLS "WHERE id = $1", "i", id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = lock_json(q, now);
    qun_q_done(q);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the lock");
}
