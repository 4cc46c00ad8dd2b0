/* SPDX-License-Identifier: MIT */
/* User administration for server admins (the `admins` setting): the accounts with
 * their state and last activity, one account's groups, disabling and enabling an
 * account, and resetting its password to a one-time code.  Each change is a ledger
 * entry naming the account by openid, in the transaction that makes it; disabling and
 * resetting revoke the account's sessions there too (Matrix ones included), so its
 * event streams end and its parked syncs wake on every instance. */
#include <string.h>

#include "qun/core.h"
#include "qun/ledger.h"

#define USER_COLS                                                                                            \
    "SELECT u.id, u.openid, u.username, u.display_name, u.created_at, u.disabled_at, "                       \
    "(SELECT MAX(d.last_seen) FROM devices d WHERE d.user_id = u.id), u.password_reset FROM users u "

static qun_rc admin_only(const qun_actor_t *a, qun_err_t *err) {
    return a->is_admin ? QUN_OK
                       : qun_fail(err, QUN_FORBIDDEN_ADMIN, "only server admins administer accounts");
}

/* A row of USER_COLS as the API shows an account. */
static json_t *user_json(qun_q_t *q) {
    bool disabled = !qun_q_col_null(q, 5);
    json_t *u =
        json_pack("{s:s, s:s, s:s?, s:I, s:b, s:o, s:o, s:b}", "openid", qun_q_col_text(q, 1), "username",
                  qun_q_col_text(q, 2), "display_name", qun_q_col_null(q, 3) ? NULL : qun_q_col_text(q, 3),
                  "created_at", (json_int_t)qun_q_col_int(q, 4), "disabled", disabled, "disabled_at",
                  disabled ? json_integer(qun_q_col_int(q, 5)) : json_null(), "last_seen",
                  qun_q_col_null(q, 6) ? json_null() : json_integer(qun_q_col_int(q, 6)),
                  "password_change_required", qun_q_col_int(q, 7) != 0);
    return u;
}

qun_rc qun_useradmin_list(qun_db_t *db, const qun_actor_t *a, const char *prefix, int64_t after, int limit,
                          json_t **out, qun_err_t *err) {
    qun_rc rc = admin_only(a, err);
    if (rc != QUN_OK) return rc;
    char lower[128];
    size_t n = 0;
    for (const char *p = prefix ? prefix : ""; *p && n + 1 < sizeof lower; p++)
        lower[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
    lower[n] = '\0';
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = 0;
    /* substr and length count characters on both backends, so a prefix of any script
     * compares whole characters. */
    rc = qun_db_run(db, &q, err,
                    USER_COLS "WHERE u.id > $1 AND ($2 = '' OR substr(u.username, 1, length($2)) = $2 "
                              "OR substr(COALESCE(u.username_key, ''), 1, length($3)) = $3) "
                              "ORDER BY u.id LIMIT $4",
                    "issi", after, prefix ? prefix : "", lower, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_array_append_new(items, user_json(q));
    }
    return qun_page(rc, items, last, limit, out);
}

/* Load account openid as the API shows it; *uid its row id. */
static qun_rc user_load(qun_db_t *db, const char *openid, int64_t *uid, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, USER_COLS "WHERE u.openid = $1", "s", openid);
    if (rc == QUN_DONE)
        return qun_fail_field(err, QUN_USER_NOT_FOUND, "openid", "no user has openid %.40s", openid);
    if (rc != QUN_ROW) return rc;
    *uid = qun_q_col_int(q, 0);
    *out = user_json(q);
    qun_q_done(q);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_useradmin_get(qun_db_t *db, const qun_actor_t *a, const char *openid, json_t **out,
                         qun_err_t *err) {
    int64_t uid;
    qun_rc rc = admin_only(a, err);
    if (rc == QUN_OK) rc = user_load(db, openid, &uid, out, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    json_t *groups = json_array();
    rc = qun_db_run(db, &q, err,
                    "SELECT g.gid, g.name, m.role, g.state FROM members m JOIN groups g ON g.id = m.group_id "
                    "WHERE m.user_id = $1 ORDER BY g.id",
                    "i", uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(groups, json_pack("{s:s, s:s, s:s, s:s}", "id", qun_q_col_text(q, 0), "name",
                                                qun_q_col_text(q, 1), "role", qun_q_col_text(q, 2), "state",
                                                qun_q_col_text(q, 3)));
    json_object_set_new(*out, "groups", groups);
    if (rc == QUN_DONE) return QUN_OK;
    json_decref(*out);
    *out = NULL;
    return rc;
}

qun_rc qun_useradmin_set_disabled(qun_db_t *db, const qun_actor_t *a, const char *openid, bool disable,
                                  json_t **out, qun_err_t *err) {
    int64_t uid, n = 0, now = qun_now();
    json_t *before = NULL;
    qun_rc rc = admin_only(a, err);
    if (rc == QUN_OK) rc = user_load(db, openid, &uid, &before, err);
    if (rc != QUN_OK) return rc;
    bool was = json_is_true(json_object_get(before, "disabled"));
    json_decref(before);
    if (disable && uid == a->uid)
        return qun_fail(err, QUN_ADMIN_SELF, "you cannot disable your own account; ask another server admin");
    if (was != disable) {
        rc = qun_db_run(db, NULL, err, "UPDATE users SET disabled_at = $2 WHERE id = $1", "iz", uid,
                        disable ? now : (int64_t)0);
        if (rc == QUN_DONE) rc = disable ? qun_session_revoke_user(db, uid, "revoked", &n, err) : QUN_OK;
        if (rc != QUN_OK) return rc;
        json_t *f = json_pack("{s:s, s:I}", "user", openid, "sessions_revoked", (json_int_t)n);
        rc =
            qun_ledger_append(db, disable ? "user.disabled" : "user.enabled", NULL, a->openid,
                              disable ? "active" : "disabled", disable ? "disabled" : "active", f, NULL, err);
        json_decref(f);
        if (rc != QUN_OK) return rc;
        qun_log("info", "user %s %s by %s (%lld sessions revoked)", openid, disable ? "disabled" : "enabled",
                a->openid, (long long)n);
    }
    rc = qun_useradmin_get(db, a, openid, out, err);
    if (rc == QUN_OK) json_object_set_new(*out, "sessions_revoked", json_integer(n));
    return rc;
}

qun_rc qun_useradmin_reset_password(qun_db_t *db, const qun_actor_t *a, const char *openid,
                                    const char *pwhash, json_t **out, qun_err_t *err) {
    int64_t uid, n = 0, now = qun_now();
    json_t *before = NULL;
    qun_rc rc = admin_only(a, err);
    if (rc == QUN_OK) rc = user_load(db, openid, &uid, &before, err);
    if (rc != QUN_OK) return rc;
    json_decref(before);
    rc =
        qun_db_run(db, NULL, err,
                   "UPDATE users SET pwhash = $2, password_changed_at = $3, password_reset = 1 WHERE id = $1",
                   "isi", uid, pwhash, now);
    if (rc == QUN_DONE) rc = qun_session_revoke_user(db, uid, "password_changed", &n, err);
    if (rc != QUN_OK) return rc;
    json_t *f = json_pack("{s:s, s:I}", "user", openid, "sessions_revoked", (json_int_t)n);
    rc = qun_ledger_append(db, "user.password_reset", NULL, a->openid, "active", "password_reset", f, NULL,
                           err);
    json_decref(f);
    if (rc != QUN_OK) return rc;
    qun_log("info", "user %s: password reset by %s (%lld sessions revoked)", openid, a->openid, (long long)n);
    rc = qun_useradmin_get(db, a, openid, out, err);
    if (rc == QUN_OK) json_object_set_new(*out, "sessions_revoked", json_integer(n));
    return rc;
}
