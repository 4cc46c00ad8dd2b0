/* SPDX-License-Identifier: MIT */
/* Accounts, devices and sessions.  Passwords are argon2id hashes; bearer tokens
 * are random and only their SHA-256 is stored, so a database leak yields no usable
 * token.  A token is found by its hash through a unique index: the comparison an
 * attacker could time is on a hash they cannot steer. */
#include <sodium.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"

qun_core_cfg_t qun_core_cfg = {
    .data_dir = "var",
    .session_ttl = 30LL * 86400,
    .confirm_ttl = 600,
    .payment_retention = -1,
    .idempotency_ttl = 48LL * 3600,
    .export_retention = 30LL * 86400,
    .event_ticket_ttl = 30,
    .cooling_off = -1,
    .notice = -1,
    .notice_threshold = -1,
    .purge_grace = -1,
    .tombstone = -1,
    .approval_expiry = -1,
    .purge_batch = 500,
    .purge_batch_busy = 50,
    .import_limit = (int64_t)1 << 30,
    .pw_opslimit = 2,         /* crypto_pwhash_OPSLIMIT_INTERACTIVE */
    .pw_memlimit = 64u << 20, /* crypto_pwhash_MEMLIMIT_INTERACTIVE */
};

qun_rc qun_page(qun_rc rc, json_t *items, int64_t last, int limit, json_t **out) {
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)last);
    *out = json_pack("{s:o, s:s?}", "items", items, "next_cursor",
                     (int)json_array_size(items) == limit ? cur : NULL);
    return *out ? QUN_OK : QUN_NOMEM;
}

bool qun_name_listed(const char *list, const char *username) {
    size_t n = strlen(username);
    while (list && *list) {
        const char *comma = strchr(list, ',');
        size_t len = comma ? (size_t)(comma - list) : strlen(list);
        if (len == n && memcmp(list, username, n) == 0) return true;
        list = comma ? comma + 1 : NULL;
    }
    return false;
}

bool qun_is_admin(const char *username) {
    return qun_name_listed(qun_core_cfg.admins, username);
}

bool qun_is_compliance(const char *username) {
    return qun_name_listed(qun_core_cfg.compliance, username);
}

qun_rc qun_password_hash(const char *password, char *out, qun_err_t *err) {
    if (crypto_pwhash_str(out, password, strlen(password), qun_core_cfg.pw_opslimit,
                          qun_core_cfg.pw_memlimit) != 0)
        return qun_fail(err, QUN_NOMEM, "password hashing ran out of memory");
    return QUN_OK;
}

bool qun_password_verify(const char *hash, const char *password) {
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

bool qun_password_login_ok(bool found, char *hash, const char *password) {
    if (found) return qun_password_verify(hash, password);
    qun_password_hash(password, hash, NULL);
    return false;
}

qun_rc qun_user_create(qun_db_t *db, const char *username, const char *pwhash, json_t **out, qun_err_t *err) {
    return qun_user_create_named(db, username, NULL, pwhash, out, err);
}

qun_rc qun_user_create_named(qun_db_t *db, const char *username, const char *display_name, const char *pwhash,
                             json_t **out, qun_err_t *err) {
    char openid[QUN_ID_MAX], key[QUN_USERNAME_KEY_MAX], localpart[QUN_MX_LOCALPART_MAX],
        name[QUN_DISPLAY_NAME_MAX];
    qun_id_new(openid, "u");
    int64_t now = qun_now();
    qun_q_t *q;
    qun_rc rc = qun_username_key(username, key, sizeof key, err);
    if (rc == QUN_OK && display_name) rc = qun_display_name_check(display_name, name, err);
    if (rc != QUN_OK) return rc;
    /* Taken names are refused below without a localpart being spent on them. */
    rc = qun_db_run(db, &q, err, "SELECT 1 FROM users WHERE username = $1 OR username_key = $2", "ss",
                    username, key);
    if (rc == QUN_ROW) {
        qun_q_done(q);
        rc = QUN_DONE;
    } else if (rc == QUN_DONE) {
        rc = qun_mx_localpart_new(db, username, localpart, err);
        /* No conflict target: the exact name and its key are both unique, and either
         * taken is the same answer. */
        if (rc == QUN_OK)
            rc = qun_db_run(db, &q, err,
                            "INSERT INTO users(openid, username, username_key, pwhash, password_changed_at, "
                            "created_at, mx_localpart, display_name) "
                            "VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
                            "ssssiss", openid, username, key, pwhash, now, localpart,
                            display_name ? name : NULL);
    }
    if (rc == QUN_DONE)
        return qun_fail_field(err, QUN_USERNAME_TAKEN, "username",
                              "username \"%s\" is taken (names are compared ignoring case and Unicode forms)",
                              username);
    if (rc != QUN_ROW) return rc;
    qun_q_done(q);
    *out = json_pack("{s:s, s:s, s:s?, s:s, s:I}", "openid", openid, "username", username, "display_name",
                     display_name ? name : NULL, "mx_localpart", localpart, "created_at", (json_int_t)now);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

/* The account named username: *q on its row (id, pwhash, openid). */
static qun_rc user_by_name(qun_db_t *db, const char *username, qun_q_t **q, qun_err_t *err) {
    char key[QUN_USERNAME_KEY_MAX];
    qun_err_t ignore = {{0}, {0}};
    /* A name that cannot be folded has no key; it can still match exactly. */
    if (qun_username_key(username, key, sizeof key, &ignore) != QUN_OK) key[0] = '\0';
    /* The exact name first: of accounts whose names collided before keys existed, only
     * the oldest holds the key, and each other one is found by its own exact name. */
    qun_rc rc = qun_db_run(db, q, err,
                           "SELECT id, pwhash, openid FROM users WHERE username = $1 OR username_key = $2 "
                           "ORDER BY CASE WHEN username = $1 THEN 0 ELSE 1 END LIMIT 1",
                           "ss", username, key);
    if (rc == QUN_DONE) return qun_fail(err, QUN_USER_NOT_FOUND, "no such user");
    return rc == QUN_ROW ? QUN_OK : rc;
}

qun_rc qun_user_credentials(qun_db_t *db, const char *username, int64_t *uid, char *pwhash,
                            size_t pwhash_size, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = user_by_name(db, username, &q, err);
    if (rc != QUN_OK) return rc;
    *uid = qun_q_col_int(q, 0);
    snprintf(pwhash, pwhash_size, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_user_openid_of(qun_db_t *db, const char *username, char openid[QUN_ID_MAX], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = user_by_name(db, username, &q, err);
    if (rc != QUN_OK) return rc;
    snprintf(openid, QUN_ID_MAX, "%s", qun_q_col_text(q, 2));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_user_id(qun_db_t *db, const char *openid, int64_t *uid, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT id FROM users WHERE openid = $1", "s", openid);
    if (rc == QUN_DONE)
        return qun_fail_field(err, QUN_USER_NOT_FOUND, "openid", "no user has openid %.40s", openid);
    if (rc != QUN_ROW) return rc;
    *uid = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

/* Prove that the login comes from device_id of account uid, or enroll it.  A device id
 * is a name anyone who can list the account's devices knows, so it is never the proof:
 * the secret handed to the device at its first login is.  *fresh says whether the
 * device was enrolled now. */
static qun_rc device_prove(qun_db_t *db, int64_t uid, const char *device_id, const char *platform,
                           const char *secret_hash, const char *new_secret_hash, int64_t now, bool *fresh,
                           qun_err_t *err) {
    qun_q_t *q;
    /* DO NOTHING, not an update: a known device's row (its platform, its first-seen
     * time, its secret) is never rewritten by whoever claims its id. */
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "INSERT INTO devices(user_id, device_id, platform, first_seen, last_seen, secret_hash) "
                   "VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (user_id, device_id) DO NOTHING "
                   "RETURNING first_seen",
                   "issis", uid, device_id, platform, now, new_secret_hash);
    *fresh = rc == QUN_ROW;
    if (rc == QUN_ROW) qun_q_done(q);
    if (rc != QUN_DONE) return rc == QUN_ROW ? QUN_OK : rc;
    rc = qun_db_run(db, &q, err,
                    "SELECT platform, COALESCE(secret_hash, '') FROM devices "
                    "WHERE user_id = $1 AND device_id = $2",
                    "is", uid, device_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_INTERNAL, "device vanished") : rc;
    char stored[65], known_platform[16];
    snprintf(stored, sizeof stored, "%s", qun_q_col_text(q, 1));
    snprintf(known_platform, sizeof known_platform, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    /* A device recorded before secrets existed cannot be proved by anyone, so it is
     * refused like a login that sent no secret: its owner logs in as a new device. */
    /* A Matrix device proves nothing and may do nothing destructive (qun_verify_need
     * refuses its sessions), and Matrix clients know no device secrets: a known Matrix
     * device logs in again by its id alone.  It still never becomes another platform. */
    bool matrix = strcmp(platform, "matrix") == 0 && strcmp(known_platform, "matrix") == 0;
    if (matrix) secret_hash = stored;
    if (!secret_hash || strlen(stored) != 64)
        return qun_fail_field(
            err, QUN_DEVICE_SECRET_REQUIRED, "device_secret",
            "device %.64s is already enrolled on this account: send the device_secret it was "
            "given at its first login, or log in as a new device with another device_id",
            device_id);
    if (strlen(secret_hash) != 64 || !qun_ct_equal(stored, secret_hash, 64))
        return qun_fail_field(err, QUN_DEVICE_SECRET_INVALID, "device_secret",
                              "the device_secret is not the one device %.64s was given", device_id);
    if (strcmp(known_platform, platform) != 0)
        return qun_fail_field(err, QUN_DEVICE_PLATFORM_MISMATCH, "platform",
                              "device %.64s is a %s device; a known device never changes platform", device_id,
                              known_platform);
    rc = qun_db_run(db, NULL, err, "UPDATE devices SET last_seen = $3 WHERE user_id = $1 AND device_id = $2",
                    "isi", uid, device_id, now);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_session_create(qun_db_t *db, int64_t uid, const char *token_hash, const char *device_id,
                          const char *platform, const char *secret_hash, const char *new_secret_hash,
                          const char *ip, json_t **out, qun_err_t *err) {
    char sid[QUN_ID_MAX];
    qun_id_new(sid, "s");
    int64_t now = qun_now();
    bool fresh = false;
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT disabled_at IS NOT NULL, password_reset FROM users WHERE id = $1", "i", uid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_USER_NOT_FOUND, "no such user") : rc;
    bool disabled = qun_q_col_int(q, 0) != 0;
    int64_t reset = qun_q_col_int(q, 1);
    qun_q_done(q);
    if (disabled) return qun_fail(err, QUN_ACCOUNT_DISABLED, "this account is disabled by a server admin");
    /* A one-time code logs in once; its session may only set a new password. */
    if (reset == 2)
        return qun_fail(err, QUN_RESET_CODE_USED,
                        "the one-time code was already used; ask a server admin for a new one");
    if (reset == 1) {
        rc = qun_db_run(db, NULL, err, "UPDATE users SET password_reset = 2 WHERE id = $1", "i", uid);
        if (rc != QUN_DONE) return rc;
    }
    rc = device_prove(db, uid, device_id, platform, secret_hash, new_secret_hash, now, &fresh, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO sessions(sid, user_id, token_hash, device_id, platform, ip, "
                        "created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        "sissssii", sid, uid, token_hash, device_id, platform, ip, now,
                        now + qun_core_cfg.session_ttl);
    if (rc != QUN_DONE) return rc == QUN_OK ? QUN_INTERNAL : rc;
    rc = qun_db_run(db, &q, err,
                    "SELECT u.openid, d.first_seen FROM users u JOIN devices d ON d.user_id = u.id "
                    "WHERE u.id = $1 AND d.device_id = $2",
                    "is", uid, device_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_INTERNAL, "session vanished") : rc;
    *out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:I}", "session_id", sid, "openid", qun_q_col_text(q, 0),
                     "device_id", device_id, "platform", platform, "device_first_seen",
                     (json_int_t)qun_q_col_int(q, 1), "new_device", fresh, "expires_at",
                     (json_int_t)(now + qun_core_cfg.session_ttl));
    qun_q_done(q);
    if (reset) json_object_set_new(*out, "password_change_required", json_true());
    return QUN_OK;
}

#define ACTOR_COLS                                                                                           \
    "SELECT s.id, s.user_id, u.openid, s.platform, s.device_id, u.username, u.password_reset, s.expires_at " \
    "FROM sessions s JOIN users u ON u.id = s.user_id AND u.disabled_at IS NULL "

/* Fill a from a row of ACTOR_COLS and finish q. */
static void actor_from(qun_q_t *q, qun_actor_t *a) {
    a->session_id = qun_q_col_int(q, 0);
    a->uid = qun_q_col_int(q, 1);
    qun_copy(a->openid, sizeof a->openid, qun_q_col_text(q, 2));
    qun_copy(a->platform, sizeof a->platform, qun_q_col_text(q, 3));
    qun_copy(a->device_id, sizeof a->device_id, qun_q_col_text(q, 4));
    qun_copy(a->username, sizeof a->username, qun_q_col_text(q, 5));
    a->must_change_password = qun_q_col_int(q, 6) != 0;
    a->session_expires_at = qun_q_col_int(q, 7);
    a->cached = false;
    qun_q_done(q);
    a->is_admin = qun_is_admin(a->username);
}

qun_rc qun_session_auth(qun_db_t *db, const char *token_hash, qun_actor_t *a, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err, ACTOR_COLS "WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        "si", token_hash, qun_now());
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_TOKEN_INVALID, "the bearer token is invalid, expired or revoked");
    if (rc != QUN_ROW) return rc;
    actor_from(q, a);
    return QUN_OK;
}

qun_rc qun_event_ticket_issue(qun_db_t *db, const qun_actor_t *a, const char *ticket_hash,
                              int64_t *expires_at, qun_err_t *err) {
    *expires_at = qun_now() + qun_core_cfg.event_ticket_ttl;
    qun_rc rc = qun_db_run(db, NULL, err,
                           "INSERT INTO event_tickets(token_hash, session_id, created_at, expires_at) "
                           "VALUES ($1, $2, $3, $4)",
                           "siii", ticket_hash, a->session_id, qun_now(), *expires_at);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_event_ticket_redeem(qun_db_t *db, const char *ticket_hash, qun_actor_t *a, qun_err_t *err) {
    int64_t now = qun_now(), sid;
    qun_q_t *q;
    /* Spend first: the conditional UPDATE is what makes a ticket good once, even when two
     * requests race (the writer serializes them; on PostgreSQL the row lock does). */
    qun_rc rc = qun_db_run(db, &q, err,
                           "UPDATE event_tickets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL "
                           "AND expires_at > $2 RETURNING session_id",
                           "si", ticket_hash, now);
    if (rc == QUN_DONE) {
        rc = qun_db_run(db, &q, err, "SELECT used_at IS NOT NULL FROM event_tickets WHERE token_hash = $1",
                        "s", ticket_hash);
        if (rc == QUN_DONE) return qun_fail(err, QUN_TICKET_INVALID, "no such event ticket");
        if (rc != QUN_ROW) return rc;
        bool used = qun_q_col_int(q, 0) != 0;
        qun_q_done(q);
        return qun_fail(err, QUN_TICKET_INVALID,
                        used ? "the event ticket was already used" : "the event ticket has expired");
    }
    if (rc != QUN_ROW) return rc;
    sid = qun_q_col_int(q, 0);
    qun_q_done(q);
    rc = qun_db_run(db, &q, err, ACTOR_COLS "WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
                    "ii", sid, now);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_TICKET_INVALID, "the session that asked for the ticket has ended");
    if (rc != QUN_ROW) return rc;
    actor_from(q, a);
    return QUN_OK;
}

qun_rc qun_session_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT s.sid, s.device_id, s.platform, s.created_at, s.expires_at, "
                           "d.first_seen, s.id FROM sessions s JOIN devices d "
                           "ON d.user_id = s.user_id AND d.device_id = s.device_id "
                           "WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 "
                           "ORDER BY s.id",
                           "ii", a->uid, qun_now());
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "session_id",
                                        qun_q_col_text(q, 0), "device_id", qun_q_col_text(q, 1), "platform",
                                        qun_q_col_text(q, 2), "created_at", (json_int_t)qun_q_col_int(q, 3),
                                        "expires_at", (json_int_t)qun_q_col_int(q, 4), "device_first_seen",
                                        (json_int_t)qun_q_col_int(q, 5), "current",
                                        qun_q_col_int(q, 6) == a->session_id));
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o}", "items", items);
    return QUN_OK;
}

/* Finish an `UPDATE sessions ... RETURNING id` whose first step gave rc: append
 * session.revoked for the sessions it revoked, in the same transaction, so the event
 * streams they opened end on every instance (include/qun/event.h).  A token that
 * stops working while its stream keeps delivering would be no revocation at all.
 * *n: how many sessions were revoked. */
static qun_rc sessions_revoked(qun_db_t *db, qun_rc rc, qun_q_t *q, const char *reason, int64_t *n,
                               qun_err_t *err) {
    json_t *ids = json_array();
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(ids, json_integer(qun_q_col_int(q, 0)));
    if (rc != QUN_DONE) {
        json_decref(ids);
        return rc;
    }
    *n = (int64_t)json_array_size(ids);
    return qun_event_sessions_revoked(db, ids, reason, err);
}

qun_rc qun_session_revoke(qun_db_t *db, const qun_actor_t *a, const char *sid, qun_err_t *err) {
    qun_q_t *q;
    int64_t n = 0;
    qun_rc rc = qun_db_run(db, &q, err,
                           "UPDATE sessions SET revoked_at = $3 WHERE sid = $1 AND user_id = $2 "
                           "AND revoked_at IS NULL RETURNING id",
                           "sii", sid, a->uid, qun_now());
    rc = sessions_revoked(db, rc, q, "revoked", &n, err);
    if (rc == QUN_OK && n == 0)
        return qun_fail(err, QUN_SESSION_NOT_FOUND, "you have no active session %.40s", sid);
    return rc;
}

qun_rc qun_session_revoke_own(qun_db_t *db, const qun_actor_t *a, bool all, int64_t *n, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND (id = $2 OR $4 = 1) "
                           "AND revoked_at IS NULL RETURNING id",
                           "iiii", a->uid, a->session_id, qun_now(), (int64_t)all);
    return sessions_revoked(db, rc, q, "revoked", n, err);
}

qun_rc qun_session_revoke_user(qun_db_t *db, int64_t uid, const char *reason, int64_t *n, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL "
                           "RETURNING id",
                           "ii", uid, qun_now());
    return sessions_revoked(db, rc, q, reason, n, err);
}

qun_rc qun_me(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT openid, username, is_minor, created_at, display_name, mx_localpart "
                           "FROM users WHERE id = $1",
                           "i", a->uid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_USER_NOT_FOUND, "gone") : rc;
    *out = json_pack("{s:s, s:s, s:b, s:I, s:s, s:s, s:s, s:s?, s:s?}", "openid", qun_q_col_text(q, 0),
                     "username", qun_q_col_text(q, 1), "minor", (int)qun_q_col_int(q, 2), "created_at",
                     (json_int_t)qun_q_col_int(q, 3), "platform", a->platform, "device_id", a->device_id,
                     "session_id", "", "display_name", qun_q_col_null(q, 4) ? NULL : qun_q_col_text(q, 4),
                     "mx_localpart", qun_q_col_null(q, 5) ? NULL : qun_q_col_text(q, 5));
    qun_q_done(q);
    /* The server-wide roles, so a client knows which admin pages to offer. */
    json_object_set_new(*out, "server_admin", json_boolean(a->is_admin));
    json_object_set_new(*out, "compliance", json_boolean(qun_is_compliance(a->username)));
    json_object_set_new(*out, "password_change_required", json_boolean(a->must_change_password));
    rc = qun_db_run(db, &q, err, "SELECT sid FROM sessions WHERE id = $1", "i", a->session_id);
    if (rc == QUN_ROW) {
        json_object_set_new(*out, "session_id", json_string(qun_q_col_text(q, 0)));
        qun_q_done(q);
    }
    return QUN_OK;
}

qun_rc qun_password_change(qun_db_t *db, const qun_actor_t *a, const char *pwhash, json_t **out,
                           qun_err_t *err) {
    int64_t now = qun_now();
    qun_rc rc =
        qun_db_run(db, NULL, err,
                   "UPDATE users SET pwhash = $2, password_changed_at = $3, password_reset = 0 WHERE id = $1",
                   "isi", a->uid, pwhash, now);
    if (rc != QUN_DONE) return rc;
    /* Whoever else holds a session of this account (perhaps whoever learned the old
     * password) is logged out. */
    qun_q_t *q;
    int64_t n = 0;
    rc = qun_db_run(
        db, &q, err,
        "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL "
        "RETURNING id",
        "iii", a->uid, a->session_id, now);
    rc = sessions_revoked(db, rc, q, "password_changed", &n, err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:I, s:I}", "password_changed_at", (json_int_t)now, "sessions_revoked", (json_int_t)n);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}
