/* SPDX-License-Identifier: MIT */
/* A person's mail address and language, and invitations by mail (include/qun/notify.h).
 *
 * An address is verified by a code mailed to it:
 *
 *     (none) ──set──▶ unverified, code pending ──right code──▶ verified
 *                        │  ▲                                    │
 *                        │  └──────────── set (new address) ─────┘
 *                        └── the code expires (code_ttl): set again for a new one
 *
 * The code (8 digits) is stored as SHA-256(salt || code) and compared in constant
 * time; the mail row carries it sealed (qun_secret_seal) until the mail thread has
 * sent it.  A wrong code answers EMAIL_CODE_INVALID, which the router counts like a
 * wrong password (core/lockout.c), so guesses lock the account.
 *
 * An invitation by mail carries a single-use token of 256 bits, stored as its SHA-256;
 * redeeming it makes the signed-in person the org's admin or the minor's guardian. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/notify.h"
#include "qun/util.h"
#include "qun/verify.h"

#define CODE_DIGITS 8
#define RESEND_AFTER 60        /* seconds between two codes of one account */
#define CODES_PER_DAY 10       /* codes one account may have mailed in 24 hours */
#define INVITE_TTL (7 * 86400) /* seconds an invitation by mail stays valid */

/* ---- language ---- */

qun_rc qun_lang_get(qun_db_t *db, const qun_actor_t *a, const char *dflt, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT lang FROM users WHERE id = $1", "i", a->uid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    bool chosen = !qun_q_col_null(q, 0);
    *out = json_pack("{s:s, s:b}", "lang",
                     chosen ? qun_q_col_text(q, 0)
                     : dflt ? dflt
                            : "en",
                     "chosen", chosen);
    qun_q_done(q);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}

qun_rc qun_lang_set(qun_db_t *db, const qun_actor_t *a, const char *lang, json_t **out, qun_err_t *err) {
    if (strcmp(lang, "en") && strcmp(lang, "zh-CN"))
        return qun_fail_field(err, QUN_FIELD_INVALID, "lang", "lang is en or zh-CN");
    qun_rc rc = qun_db_run(db, NULL, err, "UPDATE users SET lang = $2 WHERE id = $1", "is", a->uid, lang);
    if (rc != QUN_DONE) return rc;
    /* Mail not yet sent follows the new choice. */
    rc =
        qun_db_run(db, NULL, err, "UPDATE mail_outbox SET lang = $2 WHERE user_id = $1 AND state = 'pending'",
                   "is", a->uid, lang);
    if (rc != QUN_DONE) return rc;
    *out = json_pack("{s:s, s:b}", "lang", lang, "chosen", 1);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}

/* ---- the address ---- */

static json_t *email_json(qun_q_t *q) {
    bool verified = !qun_q_col_null(q, 1);
    return json_pack("{s:s, s:b, s:o, s:o}", "address", qun_q_col_text(q, 0), "verified", verified,
                     "verified_at", verified ? json_integer(qun_q_col_int(q, 1)) : json_null(),
                     "code_expires_at",
                     qun_q_col_null(q, 2) ? json_null() : json_integer(qun_q_col_int(q, 2)));
}

#define EMAIL_COLS "SELECT address, verified_at, code_expires_at, code_salt, code_hash, code_sent_at "

qun_rc qun_email_get(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, EMAIL_COLS "FROM email_addresses WHERE user_id = $1", "i", a->uid);
    if (rc == QUN_DONE) {
        *out = json_pack("{s:n}", "address");
        return QUN_OK;
    }
    if (rc != QUN_ROW) return rc;
    *out = email_json(q);
    qun_q_done(q);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}

/* A mail of kind to addr for user uid (0: none) in lang, with params (stolen), due now. */
static qun_rc queue_mail(qun_db_t *db, int64_t uid, const char *addr, const char *lang, const char *kind,
                         json_t *params, qun_err_t *err) {
    char *text = params ? qun_json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(params);
    if (!text) return qun_fail(err, QUN_NOMEM, "cannot build the %s mail", kind);
    char mid[QUN_ID_MAX];
    qun_id_new(mid, "m");
    qun_rc rc =
        qun_db_run(db, NULL, err,
                   "INSERT INTO mail_outbox(mid, user_id, to_addr, lang, kind, params, next_at, created_at) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                   "szssssi", mid, uid, addr, lang, kind, text, qun_now());
    free(text);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* secret (NUL-terminated) sealed, as hex, into a new JSON string; NULL on failure. */
static json_t *sealed_hex(const char *secret, qun_err_t *err) {
    unsigned char *sealed = NULL;
    size_t n = 0;
    if (qun_secret_seal(secret, strlen(secret), &sealed, &n, err) != QUN_OK) return NULL;
    char *hex = qun_xmalloc(2 * n + 1);
    qun_hex(hex, sealed, n);
    free(sealed);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

static void code_hash(char out[65], const char *salt, const char *code) {
    char buf[64 + CODE_DIGITS + 1];
    snprintf(buf, sizeof buf, "%s%s", salt, code);
    qun_sha256_hex(out, buf, strlen(buf));
    sodium_memzero(buf, sizeof buf);
}

/* One code a minute per account and ten a day, whatever the address: changing or
 * removing it does not turn the server into a mailer for strangers' inboxes.  The
 * outbox remembers what was sent after the address row is gone. */
static qun_rc codes_allowed(qun_db_t *db, int64_t uid, int64_t now, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT COUNT(*), COALESCE(MAX(created_at), 0) FROM mail_outbox "
                           "WHERE user_id = $1 AND kind = 'email.verify' AND created_at > $2",
                           "ii", uid, now - 86400);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t n = qun_q_col_int(q, 0), last = qun_q_col_int(q, 1);
    qun_q_done(q);
    if (last > now - RESEND_AFTER)
        return qun_fail(err, QUN_EMAIL_CODE_TOO_SOON, "a code went out %lld seconds ago",
                        (long long)(now - last));
    if (n >= CODES_PER_DAY)
        return qun_fail(err, QUN_EMAIL_CODE_LIMIT, "%d codes went out in the last 24 hours", CODES_PER_DAY);
    return QUN_OK;
}

qun_rc qun_email_set(qun_db_t *db, const qun_actor_t *a, const char *address, const char *lang, json_t **out,
                     qun_err_t *err) {
    if (!qun_email_valid(address))
        return qun_fail_field(err, QUN_FIELD_INVALID, "address",
                              "expected a mail address such as ann@example.org");
    if (!qun_mail_enabled())
        return qun_fail(err, QUN_MAIL_DISABLED,
                        "this server sends no mail: its operator has not set smtp_url");
    int64_t now = qun_now();
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, EMAIL_COLS "FROM email_addresses WHERE user_id = $1", "i", a->uid);
    if (rc == QUN_ROW) {
        bool same = strcasecmp(qun_q_col_text(q, 0), address) == 0;
        bool verified = !qun_q_col_null(q, 1);
        if (same && verified) { /* nothing to verify again */
            *out = email_json(q);
            qun_q_done(q);
            return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
        }
        qun_q_done(q);
    } else if (rc != QUN_DONE) {
        return rc;
    }
    rc = codes_allowed(db, a->uid, now, err);
    if (rc != QUN_OK) return rc;
    /* The person's language, when they never chose one, is the one they asked in. */
    rc = qun_db_run(db, NULL, err, "UPDATE users SET lang = $2 WHERE id = $1 AND lang IS NULL", "is", a->uid,
                    lang ? lang : "en");
    if (rc != QUN_DONE) return rc;
    char code[CODE_DIGITS + 1], salt_raw[16], salt[33], hash[65];
    for (int i = 0; i < CODE_DIGITS; i++)
        code[i] = (char)('0' + randombytes_uniform(10));
    code[CODE_DIGITS] = '\0';
    qun_random(salt_raw, sizeof salt_raw);
    qun_hex(salt, salt_raw, sizeof salt_raw);
    code_hash(hash, salt, code);
    json_t *sealed = sealed_hex(code, err);
    sodium_memzero(code, sizeof code);
    if (!sealed) return err->msg[0] ? QUN_INTERNAL : qun_fail(err, QUN_NOMEM, "cannot seal the code");
    int64_t expires = now + qun_notify_cfg.code_ttl;
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO email_addresses(user_id, address, verified_at, code_salt, code_hash, code_sent_at, "
        "code_expires_at, created_at) VALUES ($1, $2, NULL, $3, $4, $5, $6, $5) "
        "ON CONFLICT (user_id) DO UPDATE SET address = excluded.address, verified_at = NULL, "
        "code_salt = excluded.code_salt, code_hash = excluded.code_hash, "
        "code_sent_at = excluded.code_sent_at, code_expires_at = excluded.code_expires_at",
        "isssii", a->uid, address, salt, hash, now, expires);
    /* Mail not yet sent to an older address is not sent to it any more. */
    if (rc == QUN_DONE)
        rc =
            qun_db_run(db, NULL, err,
                       "UPDATE mail_outbox SET state = 'dead', params = '{}', last_error = 'address changed' "
                       "WHERE user_id = $1 AND state = 'pending'",
                       "i", a->uid);
    if (rc != QUN_DONE) {
        json_decref(sealed);
        return rc;
    }
    char mail_lang[8] = "en";
    if (qun_db_run(db, &q, NULL, "SELECT COALESCE(lang, 'en') FROM users WHERE id = $1", "i", a->uid) ==
        QUN_ROW) {
        snprintf(mail_lang, sizeof mail_lang, "%s", qun_q_col_text(q, 0));
        qun_q_done(q);
    }
    json_t *p = json_pack("{s:s, s:s, s:o, s:I}", "username", a->username, "address", address, "code_sealed",
                          sealed, "expires_at", (json_int_t)expires);
    rc = queue_mail(db, a->uid, address, mail_lang, "email.verify", p, err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:b, s:n, s:I}", "address", address, "verified", 0, "verified_at",
                     "code_expires_at", (json_int_t)expires);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}

qun_rc qun_email_verify(qun_db_t *db, const qun_actor_t *a, const char *code, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, EMAIL_COLS "FROM email_addresses WHERE user_id = $1", "i", a->uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_EMAIL_NOT_FOUND, "you have no mail address to verify");
    if (rc != QUN_ROW) return rc;
    bool pending = !qun_q_col_null(q, 4) && !qun_q_col_null(q, 2) && qun_q_col_int(q, 2) > qun_now();
    char salt[40], stored[65], hash[65];
    snprintf(salt, sizeof salt, "%s", qun_q_col_text(q, 3));
    snprintf(stored, sizeof stored, "%s", qun_q_col_text(q, 4));
    bool verified = !qun_q_col_null(q, 1);
    qun_q_done(q);
    if (!pending)
        return qun_fail(err, QUN_EMAIL_CODE_EXPIRED,
                        verified ? "the address is already verified" : "the code expired: ask for a new one");
    bool shaped = strlen(code) == CODE_DIGITS && strspn(code, "0123456789") == CODE_DIGITS;
    code_hash(hash, salt, shaped ? code : "");
    if (!shaped || strlen(stored) != 64 || !qun_ct_equal(hash, stored, 64))
        return qun_fail_field(err, QUN_EMAIL_CODE_INVALID, "code", "the code is wrong");
    rc = qun_db_run(db, NULL, err,
                    "UPDATE email_addresses SET verified_at = $2, code_salt = NULL, code_hash = NULL, "
                    "code_expires_at = NULL WHERE user_id = $1",
                    "ii", a->uid, qun_now());
    if (rc != QUN_DONE) return rc;
    return qun_email_get(db, a, out, err);
}

qun_rc qun_email_delete(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err, "DELETE FROM email_addresses WHERE user_id = $1", "i", a->uid);
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) == 0) return qun_fail(err, QUN_EMAIL_NOT_FOUND, "you have no mail address");
    rc = qun_db_run(db, NULL, err,
                    "UPDATE mail_outbox SET state = 'dead', params = '{}', last_error = 'address removed' "
                    "WHERE user_id = $1 AND state = 'pending'",
                    "i", a->uid);
    if (rc != QUN_DONE) return rc;
    *out = json_pack("{s:b}", "deleted", 1);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}

/* ---- invitations by mail ---- */

static json_t *person(qun_db_t *db, int64_t uid) {
    qun_q_t *q;
    if (qun_db_run(db, &q, NULL, "SELECT openid, username, display_name FROM users WHERE id = $1", "i",
                   uid) != QUN_ROW)
        return json_null();
    json_t *p =
        json_pack("{s:s, s:s, s:s?}", "openid", qun_q_col_text(q, 0), "username", qun_q_col_text(q, 1),
                  "display_name", qun_q_col_null(q, 2) ? NULL : qun_q_col_text(q, 2));
    qun_q_done(q);
    return p;
}

qun_rc qun_email_invite(qun_db_t *db, const qun_actor_t *a, const char *oid, const char *address,
                        const char *role, const char *minor_openid, const char *lang, json_t **out,
                        qun_err_t *err) {
    int64_t org, minor = 0;
    qun_q_t *q;
    if (!qun_email_valid(address))
        return qun_fail_field(err, QUN_FIELD_INVALID, "address",
                              "expected a mail address such as ann@example.org");
    if (strcmp(role, "admin") && strcmp(role, "guardian"))
        return qun_fail_field(err, QUN_FIELD_INVALID, "role", "role is admin or guardian");
    qun_rc rc = qun_org_admin_id(db, a, oid, &org, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err, "SELECT name, kind FROM orgs WHERE id = $1", "i", org);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    char org_name[256], org_kind[16];
    snprintf(org_name, sizeof org_name, "%s", qun_q_col_text(q, 0));
    snprintf(org_kind, sizeof org_kind, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    if (strcmp(role, "guardian") == 0) {
        if (strcmp(org_kind, "school"))
            return qun_fail(err, QUN_FORBIDDEN_ORG, "only school orgs have guardians");
        if (!minor_openid)
            return qun_fail_field(err, QUN_FIELD_MISSING, "minor", "a guardian is for a minor");
        rc = qun_user_id(db, minor_openid, &minor, err);
        if (rc != QUN_OK) return rc;
    } else if (minor_openid) {
        return qun_fail_field(err, QUN_FIELD_INVALID, "minor", "only a guardian's invitation names a minor");
    }
    if (!qun_mail_enabled())
        return qun_fail(err, QUN_MAIL_DISABLED,
                        "this server sends no mail: its operator has not set smtp_url");
    unsigned char raw[32];
    char token[4 + 64 + 1], hash[65], iid[QUN_ID_MAX];
    qun_random(raw, sizeof raw);
    memcpy(token, "qei_", 4);
    qun_hex(token + 4, raw, sizeof raw);
    qun_sha256_hex(hash, token, strlen(token));
    json_t *sealed = sealed_hex(token, err);
    sodium_memzero(token, sizeof token);
    if (!sealed) return err->msg[0] ? QUN_INTERNAL : qun_fail(err, QUN_NOMEM, "cannot seal the token");
    int64_t now = qun_now(), expires = now + INVITE_TTL;
    rc = qun_db_run(
        db, &q, err,
        "INSERT INTO email_invites(token_hash, org_id, role, minor_id, address, invited_by, created_at, "
        "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        "siszsiii", hash, org, role, minor, address, a->uid, now, expires);
    if (rc != QUN_ROW) {
        json_decref(sealed);
        return rc == QUN_DONE ? QUN_STORE : rc;
    }
    snprintf(iid, sizeof iid, "ei_%lld", (long long)qun_q_col_int(q, 0));
    qun_q_done(q);
    json_t *p =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "org_name", org_name, "org_kind", org_kind, "role",
                  role, "by", person(db, a->uid), "minor", minor ? person(db, minor) : json_null(),
                  "token_sealed", sealed, "expires_at", (json_int_t)expires);
    rc = queue_mail(db, 0, address, lang && strcmp(lang, "zh-CN") == 0 ? "zh-CN" : "en", "email.invite", p,
                    err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:s, s:s, s:I}", "id", iid, "address", address, "role", role, "expires_at",
                     (json_int_t)expires);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}

/* As guardian of minor, user uid is asked to decide every open review of an education
 * group the minor is in: one guardian approval each, expiring with the review's others. */
static qun_rc ask_new_guardian(qun_db_t *db, int64_t uid, int64_t minor, json_t *aids, qun_err_t *err) {
    int64_t rows[64][3];
    int n = 0;
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT d.id, d.group_id, (SELECT MAX(expires_at) FROM approvals x WHERE "
                   "x.dissolution_id = d.id) FROM dissolutions d JOIN groups g ON g.id = d.group_id "
                   "JOIN members m ON m.group_id = g.id AND m.user_id = $1 WHERE d.state = 'review' AND "
                   "g.kind = 'education' AND d.requested_by != $2 AND NOT EXISTS (SELECT 1 FROM approvals "
                   "y WHERE y.dissolution_id = d.id AND y.approver_id = $2 AND y.subject_id = $1) "
                   "ORDER BY d.id",
                   "ii", minor, uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        if (n < 64 && !qun_q_col_null(q, 2))
            rows[n][0] = qun_q_col_int(q, 0), rows[n][1] = qun_q_col_int(q, 1),
            rows[n++][2] = qun_q_col_int(q, 2);
    if (rc != QUN_DONE) return rc;
    rc = QUN_OK;
    for (int i = 0; i < n && rc == QUN_OK; i++) {
        char aid[QUN_ID_MAX];
        qun_id_new(aid, "a");
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO approvals(aid, dissolution_id, group_id, kind, approver_id, subject_id, "
                        "created_at, expires_at) VALUES ($1, $2, $3, 'guardian', $4, $5, $6, $7)",
                        "siiiiii", aid, rows[i][0], rows[i][1], uid, minor, qun_now(), rows[i][2]);
        if (rc == QUN_DONE) rc = qun_event_approval_requested(db, aid, err);
        if (rc == QUN_OK) rc = qun_notify_approval(db, aid, err);
        if (rc == QUN_OK) json_array_append_new(aids, json_string(aid));
    }
    return rc;
}

qun_rc qun_email_invite_redeem(qun_db_t *db, const qun_actor_t *a, const char *token, json_t **out,
                               qun_err_t *err) {
    char hash[65];
    qun_sha256_hex(hash, token, strlen(token));
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT i.id, i.org_id, i.role, COALESCE(i.minor_id, 0), i.address, o.oid, o.name "
                           "FROM email_invites i JOIN orgs o ON o.id = i.org_id WHERE i.token_hash = $1 "
                           "AND i.redeemed_at IS NULL AND i.expires_at > $2",
                           "si", hash, qun_now());
    if (rc == QUN_DONE)
        return qun_fail_field(err, QUN_EMAIL_INVITE_INVALID, "token",
                              "the invitation is unknown, used or expired");
    if (rc != QUN_ROW) return rc;
    int64_t id = qun_q_col_int(q, 0), org = qun_q_col_int(q, 1), minor = qun_q_col_int(q, 3);
    char role[16], address[256], oid[QUN_ID_MAX], org_name[256];
    snprintf(role, sizeof role, "%s", qun_q_col_text(q, 2));
    snprintf(address, sizeof address, "%s", qun_q_col_text(q, 4));
    snprintf(oid, sizeof oid, "%s", qun_q_col_text(q, 5));
    snprintf(org_name, sizeof org_name, "%s", qun_q_col_text(q, 6));
    qun_q_done(q);
    if (minor == a->uid)
        return qun_fail_field(err, QUN_FIELD_INVALID, "token", "a user cannot be their own guardian");
    int64_t now = qun_now();
    json_t *aids = json_array();
    rc =
        qun_db_run(db, NULL, err, "UPDATE email_invites SET redeemed_by = $2, redeemed_at = $3 WHERE id = $1",
                   "iii", id, a->uid, now);
    if (rc == QUN_DONE && strcmp(role, "admin") == 0)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO org_admins(org_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        "ii", org, a->uid);
    else if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO guardians(minor_id, guardian_id, created_at) VALUES ($1, $2, $3) "
                        "ON CONFLICT DO NOTHING",
                        "iii", minor, a->uid, now);
    /* The link reached this address: it is the invitee's, verified. */
    if (rc == QUN_DONE)
        rc = qun_db_run(
            db, NULL, err,
            "INSERT INTO email_addresses(user_id, address, verified_at, created_at) VALUES ($1, $2, "
            "$3, $3) ON CONFLICT (user_id) DO UPDATE SET address = excluded.address, verified_at = "
            "excluded.verified_at, code_salt = NULL, code_hash = NULL, code_expires_at = NULL",
            "isi", a->uid, address, now);
    rc = rc == QUN_DONE ? QUN_OK : rc;
    if (rc == QUN_OK && strcmp(role, "guardian") == 0) rc = ask_new_guardian(db, a->uid, minor, aids, err);
    if (rc == QUN_OK && strcmp(role, "admin") == 0) { /* what the org's admins are asked now */
        rc = qun_db_run(
            db, &q, err,
            "SELECT a.aid FROM approvals a JOIN dissolutions d ON d.id = a.dissolution_id WHERE "
            "a.org_id = $1 AND a.state = 'pending' AND d.requested_by != $2 ORDER BY a.id LIMIT 200",
            "ii", org, a->uid);
        for (; rc == QUN_ROW; rc = qun_q_step(q, err))
            json_array_append_new(aids, json_string(qun_q_col_text(q, 0)));
        rc = rc == QUN_DONE ? QUN_OK : rc;
    }
    if (rc != QUN_OK) {
        json_decref(aids);
        return rc;
    }
    *out = json_pack("{s:s, s:s, s:s, s:o, s:o}", "org", oid, "org_name", org_name, "role", role, "minor",
                     minor ? person(db, minor) : json_null(), "approvals", aids);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}
