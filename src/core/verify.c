/* SPDX-License-Identifier: MIT */
/* Verification methods: device keys, signed challenges (device_key and qr), TOTP
 * step-up and the per-platform policy of which method a request needs.  The signed
 * message format and the ownership rules are in include/qun/verify.h.
 *
 * A challenge's life:
 *
 *   pending --signature or passkey ok--> approved --consume--> used
 *      |  \                                  |
 *      |   +--decline--> declined             |
 *      +------------- expires_at -------------+--> expired
 *
 * Invariants: (V1) a challenge is approved at most once and used at most once (each
 * UPDATE is conditional on the column being NULL); (V2) only a registered key of a
 * device of the challenge's own user can approve it; (V3) a `qr` challenge is approved
 * by a device other than the one that asked, a `device_key` challenge by that one;
 * (V4) consume succeeds only for the session that asked, with the exact bindings;
 * (V5) a declined challenge is never approved or used.  Every approval and decline
 * appends a `challenge.approved` / `challenge.declined` event for the user in the same
 * transaction, so the waiting page learns the outcome over GET /v1/events. */
#include <errno.h>
#include <fcntl.h>
#include <liboath/oath.h>
#include <pthread.h>
#include <qrencode.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/event.h"
#include "qun/passkey.h"
#include "qun/verify.h"

qun_verify_cfg_t qun_verify_cfg = {
    .challenge_ttl = 120,
    .totp_step = 30,
    .totp_digits = 6,
    .totp_window = 1,
    .totp_issuer = "qun",
};

#define TOTP_SECRET 20 /* 160 bits, as RFC 4226 section 4 recommends */
#define SEALED (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + TOTP_SECRET)

/* ---- device keys ---- */

static qun_rc has_key(qun_db_t *db, int64_t uid, const char *device_id, const char *other_than, bool *yes,
                      qun_err_t *err);

/* A key for a device of an account that already trusts a key elsewhere is vouched for
 * by one of those devices: otherwise whoever learned the password could enroll a key of
 * their own and sign every proof that "needs a device key" with it.  The proof is a qr
 * challenge for action register_device_key bound to {"public_key": b64}, approved from
 * another device of the account that holds a key. */
static qun_rc key_vouched(qun_db_t *db, const qun_actor_t *a, const char *b64, const char *challenge_id,
                          json_t **problem, qun_err_t *err) {
    bool others;
    qun_rc rc = has_key(db, a->uid, NULL, a->device_id, &others, err);
    if (rc != QUN_OK || !others) return rc;
    char digest[65];
    json_t *params = json_pack("{s:s}", "public_key", b64);
    if (!params) return qun_fail(err, QUN_NOMEM, "out of memory");
    qun_json_digest(params, digest);
    json_decref(params);
    qun_verify_proof_t p = {
        .action = QUN_ACTION_REGISTER_KEY, .params_digest = digest, .challenges = {challenge_id, NULL}};
    qun_verify_need_t need = {.all = QUN_VM_QR};
    rc = qun_verify_check(db, a, need, &p, problem, err);
    if (rc == QUN_QR_REQUIRED)
        qun_fail(err, rc,
                 "your account already has a device key: approve this device's key from a device of yours "
                 "that has one (a qr challenge for action %s and this params_digest), then send its id as "
                 "challenge_id",
                 QUN_ACTION_REGISTER_KEY);
    return rc;
}

qun_rc qun_device_key_register(qun_db_t *db, const qun_actor_t *a, const unsigned char pk[32],
                               const char *challenge_id, json_t **out, json_t **problem, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2", "is",
                           a->uid, a->device_id);
    if (rc == QUN_DONE) return qun_fail(err, QUN_DEVICE_NOT_FOUND, "your session's device is not recorded");
    if (rc != QUN_ROW) return rc;
    qun_q_done(q);
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    rc = qun_db_run(db, &q, err,
                    "SELECT public_key, created_at FROM device_keys WHERE user_id = $1 AND device_id = $2",
                    "is", a->uid, a->device_id);
    int64_t created = qun_now();
    if (rc == QUN_ROW) {
        size_t n;
        const void *old = qun_q_col_blob(q, 0, &n);
        bool same = n == 32 && qun_ct_equal(old, pk, 32);
        created = qun_q_col_int(q, 1);
        qun_q_done(q);
        if (!same)
            return qun_fail_field(err, QUN_DEVICE_KEY_EXISTS, "public_key",
                                  "device %.64s already has another key", a->device_id);
    } else if (rc == QUN_DONE) {
        rc = key_vouched(db, a, b64, challenge_id, problem, err);
        if (rc != QUN_OK) return rc;
        rc = qun_q_prepare(db,
                           "INSERT INTO device_keys(user_id, device_id, public_key, created_at) "
                           "VALUES ($1, $2, $3, $4)",
                           &q, err);
        if (rc != QUN_OK) return rc;
        qun_q_int(q, 1, a->uid);
        qun_q_text(q, 2, a->device_id);
        qun_q_blob(q, 3, pk, 32);
        qun_q_int(q, 4, created);
        rc = qun_q_step(q, err);
        if (rc != QUN_DONE) return rc == QUN_ROW ? QUN_INTERNAL : rc;
    } else {
        return rc;
    }
    *out = json_pack("{s:s, s:s, s:I}", "device_id", a->device_id, "public_key", b64, "created_at",
                     (json_int_t)created);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_device_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    qun_rc rc = qun_db_run(
        db, &q, err,
        /* A passkey registered from a device is that device's key too. */
        "SELECT d.device_id, d.platform, d.first_seen, d.last_seen, (k.device_id IS NOT NULL OR EXISTS "
        "(SELECT 1 FROM passkeys p WHERE p.user_id = d.user_id AND p.device_id = d.device_id)) "
        "FROM devices d LEFT JOIN device_keys k ON k.user_id = d.user_id AND k.device_id = d.device_id "
        "WHERE d.user_id = $1 ORDER BY d.first_seen, d.device_id",
        "i", a->uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:I, s:I, s:b, s:b}", "device_id", qun_q_col_text(q, 0), "platform",
                             qun_q_col_text(q, 1), "first_seen", (json_int_t)qun_q_col_int(q, 2), "last_seen",
                             (json_int_t)qun_q_col_int(q, 3), "has_key", (int)qun_q_col_int(q, 4), "current",
                             strcmp(qun_q_col_text(q, 0), a->device_id) == 0));
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o}", "items", items);
    return QUN_OK;
}

/* ---- challenges ---- */

char *qun_challenge_message(const char *cid, const char *nonce, const char *action, const char *group,
                            const char *params_digest, size_t *len) {
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f) return NULL;
    fprintf(f, "%s\n%s\n%s\n%s\n%s\n%s", QUN_CHALLENGE_DOMAIN, cid, nonce, action, group ? group : "",
            params_digest ? params_digest : "");
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    if (len) *len = n;
    return text;
}

/* A challenge row, copied out of its query. */
typedef struct {
    int64_t id, session_id, expires_at, approved_at, used_at, created_at, declined_at;
    char cid[QUN_ID_MAX];
    char approved_with[16];
    char method[16];
    char device_id[65];
    char action[65];
    char group[QUN_ID_MAX + 100];
    char digest[65];
    char nonce[64];
    char approved_device[65];
} chal_t;

static const char *chal_state(const chal_t *c) {
    if (c->used_at) return "used";
    if (c->declined_at) return "declined";
    if (qun_now() >= c->expires_at) return "expired";
    return c->approved_at ? "approved" : "pending";
}

static qun_rc chal_load(qun_db_t *db, const qun_actor_t *a, const char *cid, chal_t *c, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT id, session_id, method, device_id, action, group_openid, params_digest, nonce, "
        "expires_at, COALESCE(approved_at, 0), COALESCE(used_at, 0), COALESCE(approved_device, ''), "
        "created_at, COALESCE(declined_at, 0), COALESCE(approved_with, '') FROM challenges "
        "WHERE cid = $1 AND user_id = $2",
        "si", cid, a->uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_CHALLENGE_NOT_FOUND, "you have no challenge %.40s", cid);
    if (rc != QUN_ROW) return rc;
    memset(c, 0, sizeof *c);
    c->id = qun_q_col_int(q, 0);
    c->session_id = qun_q_col_int(q, 1);
    snprintf(c->cid, sizeof c->cid, "%s", cid);
    snprintf(c->method, sizeof c->method, "%s", qun_q_col_text(q, 2));
    snprintf(c->device_id, sizeof c->device_id, "%s", qun_q_col_text(q, 3));
    snprintf(c->action, sizeof c->action, "%s", qun_q_col_text(q, 4));
    snprintf(c->group, sizeof c->group, "%s", qun_q_col_text(q, 5));
    snprintf(c->digest, sizeof c->digest, "%s", qun_q_col_text(q, 6));
    snprintf(c->nonce, sizeof c->nonce, "%s", qun_q_col_text(q, 7));
    c->expires_at = qun_q_col_int(q, 8);
    c->approved_at = qun_q_col_int(q, 9);
    c->used_at = qun_q_col_int(q, 10);
    snprintf(c->approved_device, sizeof c->approved_device, "%s", qun_q_col_text(q, 11));
    c->created_at = qun_q_col_int(q, 12);
    c->declined_at = qun_q_col_int(q, 13);
    snprintf(c->approved_with, sizeof c->approved_with, "%s", qun_q_col_text(q, 14));
    qun_q_done(q);
    return QUN_OK;
}

static void chal_url(const chal_t *c, bool with_nonce, char *out, size_t size);

static json_t *chal_json(const chal_t *c) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", c->cid, "method", c->method, "action",
                          c->action, "state", chal_state(c), "expires_at", (json_int_t)c->expires_at,
                          "created_at", (json_int_t)c->created_at);
    if (!o) return NULL;
    json_object_set_new(o, "group", c->group[0] ? json_string(c->group) : json_null());
    json_object_set_new(o, "params_digest", c->digest[0] ? json_string(c->digest) : json_null());
    json_object_set_new(o, "approved_by",
                        c->approved_device[0] ? json_string(c->approved_device) : json_null());
    json_object_set_new(o, "approved_at", c->approved_at ? json_integer(c->approved_at) : json_null());
    json_object_set_new(o, "approved_with",
                        c->approved_with[0] ? json_string(c->approved_with) : json_null());
    json_object_set_new(o, "declined_at", c->declined_at ? json_integer(c->declined_at) : json_null());
    /* The nonce travels only in the answer that creates the challenge (and its QR code). */
    char url[512];
    chal_url(c, false, url, sizeof url);
    json_object_set_new(o, "approve_url", json_string(url));
    return o;
}

/* The console's phone approval page for a challenge, on the configured public origin
 * (webauthn_origin): "<origin>/app/approve?c=<id>" and, with_nonce, "&n=<nonce>" so a
 * device key (qun approve) can sign what it scanned.  Both are URL-safe already. */
static void chal_url(const chal_t *c, bool with_nonce, char *out, size_t size) {
    const char *origin = qun_passkey_cfg.origin ? qun_passkey_cfg.origin : "http://localhost:8080";
    snprintf(out, size, "%s/app/approve?c=%s%s%s", origin, c->cid, with_nonce ? "&n=" : "",
             with_nonce ? c->nonce : "");
}

/* The outcome of a challenge, to every session of its user (the page showing the QR
 * code waits for it), in the transaction that decided it. */
static qun_rc chal_event(qun_db_t *db, const qun_actor_t *a, const chal_t *c, const char *topic,
                         qun_err_t *err) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?}", "id", c->cid, "state", chal_state(c), "method",
                          c->method, "action", c->action, "group", c->group[0] ? c->group : NULL,
                          "approved_with", c->approved_with[0] ? c->approved_with : NULL);
    return qun_event_emit(db, topic, 0, a->uid, o, err);
}

/* A key is a device key or a passkey registered from the device. */
static qun_rc has_key(qun_db_t *db, int64_t uid, const char *device_id, const char *other_than, bool *yes,
                      qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        other_than
            ? qun_db_run(db, &q, err,
                         "SELECT 1 FROM device_keys WHERE user_id = $1 AND device_id <> $2 LIMIT 1", "is",
                         uid, other_than)
            : qun_db_run(db, &q, err, "SELECT 1 FROM device_keys WHERE user_id = $1 AND device_id = $2", "is",
                         uid, device_id);
    if (rc == QUN_ROW) qun_q_done(q);
    *yes = rc == QUN_ROW;
    if (rc != QUN_ROW && rc != QUN_DONE) return rc;
    if (*yes) return QUN_OK;
    return qun_passkey_exists(db, uid, other_than ? NULL : device_id, other_than, yes, err);
}

qun_rc qun_device_has_key(qun_db_t *db, int64_t uid, const char *device_id, const char *other_than, bool *yes,
                          qun_err_t *err) {
    return has_key(db, uid, device_id, other_than, yes, err);
}

qun_rc qun_challenge_create(qun_db_t *db, const qun_actor_t *a, const char *method, const char *action,
                            const char *group, const char *params_digest, json_t **out, qun_err_t *err) {
    bool qr = strcmp(method, "qr") == 0;
    if (!qr && strcmp(method, "device_key") != 0)
        return qun_fail_field(err, QUN_FIELD_INVALID, "method", "method must be device_key or qr");
    if (!action || !*action || strlen(action) > 64)
        return qun_fail_field(err, QUN_FIELD_INVALID, "action", "action must be 1 to 64 bytes");
    if (group && strlen(group) >= sizeof((chal_t *)0)->group)
        return qun_fail_field(err, QUN_FIELD_INVALID, "group", "group is too long");
    if (params_digest && *params_digest && strlen(params_digest) != 64)
        return qun_fail_field(err, QUN_FIELD_INVALID, "params_digest", "params_digest must be 64 hex digits");
    /* Refuse early what no device could approve, so a client does not wait 120 s. */
    bool ok;
    qun_rc rc = has_key(db, a->uid, a->device_id, qr ? a->device_id : NULL, &ok, err);
    /* A passkey may roam (synced, or a security key): any of the account's will do. */
    if (rc == QUN_OK && !ok) rc = qun_passkey_exists(db, a->uid, NULL, NULL, &ok, err);
    if (rc != QUN_OK) return rc;
    if (!ok)
        return qr ? qun_fail(err, QUN_DEVICE_NOT_TRUSTED,
                             "a qr challenge needs another device of yours with a registered key")
                  : qun_fail(err, QUN_DEVICE_NOT_TRUSTED,
                             "register a key for this device first (POST /v1/me/devices/key)");
    chal_t c = {0};
    unsigned char raw[32];
    qun_random(raw, sizeof raw);
    sodium_bin2base64(c.nonce, sizeof c.nonce, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    qun_id_new(c.cid, "c");
    snprintf(c.method, sizeof c.method, "%s", method);
    snprintf(c.action, sizeof c.action, "%s", action);
    snprintf(c.group, sizeof c.group, "%s", group ? group : "");
    snprintf(c.digest, sizeof c.digest, "%s", params_digest ? params_digest : "");
    c.created_at = qun_now();
    c.expires_at = c.created_at + qun_verify_cfg.challenge_ttl;
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO challenges(cid, user_id, session_id, device_id, method, action, group_openid, "
        "params_digest, nonce, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        "siissssssii", c.cid, a->uid, a->session_id, a->device_id, c.method, c.action, c.group, c.digest,
        c.nonce, c.created_at, c.expires_at);
    if (rc != QUN_DONE) return rc;
    *out = chal_json(&c);
    if (!*out) return qun_fail(err, QUN_NOMEM, "out of memory");
    json_object_set_new(*out, "nonce", json_string(c.nonce));
    char url[512];
    chal_url(&c, true, url, sizeof url);
    json_object_set_new(*out, "approve_url", json_string(url));
    return QUN_OK;
}

/* Record the approval of c by device_id (with: "signature" or "passkey") and tell the
 * user's sessions (V1, V5: only a pending challenge changes). */
static qun_rc chal_mark_approved(qun_db_t *db, const qun_actor_t *a, chal_t *c, const char *device_id,
                                 const char *with, qun_err_t *err) {
    int64_t now = qun_now();
    qun_rc rc = qun_db_run(db, NULL, err,
                           "UPDATE challenges SET approved_at = $2, approved_device = $3, approved_with = $4 "
                           "WHERE id = $1 AND approved_at IS NULL AND declined_at IS NULL",
                           "iiss", c->id, now, device_id, with);
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) != 1)
        return qun_fail(err, QUN_CHALLENGE_ALREADY_APPROVED, "challenge %s is already decided", c->cid);
    c->approved_at = now;
    snprintf(c->approved_device, sizeof c->approved_device, "%s", device_id);
    snprintf(c->approved_with, sizeof c->approved_with, "%s", with);
    return chal_event(db, a, c, "challenge.approved", err);
}

qun_rc qun_challenge_approve(qun_db_t *db, const qun_actor_t *a, const char *cid, const char *device_id,
                             const unsigned char sig[64], json_t **out, qun_err_t *err) {
    chal_t c;
    qun_rc rc = chal_load(db, a, cid, &c, err);
    if (rc != QUN_OK) return rc;
    if (c.used_at) return qun_fail(err, QUN_CHALLENGE_USED, "challenge %s was already used", cid);
    if (qun_now() >= c.expires_at)
        return qun_fail(err, QUN_CHALLENGE_EXPIRED, "challenge %s has expired", cid);
    if (c.approved_at)
        return qun_fail(err, QUN_CHALLENGE_ALREADY_APPROVED, "challenge %s is already approved", cid);
    if (c.declined_at) return qun_fail(err, QUN_CHALLENGE_DECLINED, "challenge %s was declined", cid);
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, "SELECT public_key FROM device_keys WHERE user_id = $1 AND device_id = $2",
                    "is", a->uid, device_id);
    if (rc == QUN_DONE)
        return qun_fail_field(err, QUN_DEVICE_NOT_TRUSTED, "device_id",
                              "you have no device %.64s with a registered key", device_id);
    if (rc != QUN_ROW) return rc;
    unsigned char pk[32];
    size_t n;
    const void *blob = qun_q_col_blob(q, 0, &n);
    if (n != 32) {
        qun_q_done(q);
        return qun_fail(err, QUN_INTERNAL, "stored device key has %zu bytes", n);
    }
    memcpy(pk, blob, 32);
    qun_q_done(q);
    bool same_device = strcmp(device_id, c.device_id) == 0;
    if (strcmp(c.method, "qr") == 0 && same_device)
        return qun_fail_field(err, QUN_QR_SAME_DEVICE, "device_id",
                              "a qr challenge is approved from a device other than the one showing it");
    if (strcmp(c.method, "device_key") == 0 && !same_device)
        return qun_fail_field(err, QUN_CHALLENGE_MISMATCH, "device_id",
                              "a device_key challenge is signed by the device that asked for it (%.64s)",
                              c.device_id);
    size_t len;
    char *msg = qun_challenge_message(c.cid, c.nonce, c.action, c.group, c.digest, &len);
    if (!msg) return qun_fail(err, QUN_NOMEM, "out of memory");
    int bad = crypto_sign_verify_detached(sig, (const unsigned char *)msg, len, pk);
    free(msg);
    if (bad)
        return qun_fail_field(err, QUN_SIGNATURE_INVALID, "signature",
                              "the signature is not an Ed25519 signature of this challenge by device %.64s",
                              device_id);
    rc = chal_mark_approved(db, a, &c, device_id, "signature", err);
    if (rc != QUN_OK) return rc;
    *out = chal_json(&c);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

/* The WebAuthn challenge of a challenge: SHA-256 of its signed message, so that an
 * assertion is bound to the challenge, its action, group and parameters digest. */
static qun_rc chal_webauthn(const chal_t *c, unsigned char out[32], qun_err_t *err) {
    size_t len;
    char *msg = qun_challenge_message(c->cid, c->nonce, c->action, c->group, c->digest, &len);
    if (!msg) return qun_fail(err, QUN_NOMEM, "out of memory");
    qun_sha256(out, msg, len);
    free(msg);
    return QUN_OK;
}

/* The checks approving by signature and by passkey share: state, then which device
 * may approve (V3). */
static qun_rc chal_approvable(const chal_t *c, const char *device_id, qun_err_t *err) {
    if (c->used_at) return qun_fail(err, QUN_CHALLENGE_USED, "challenge %s was already used", c->cid);
    if (qun_now() >= c->expires_at)
        return qun_fail(err, QUN_CHALLENGE_EXPIRED, "challenge %s has expired", c->cid);
    if (c->approved_at)
        return qun_fail(err, QUN_CHALLENGE_ALREADY_APPROVED, "challenge %s is already approved", c->cid);
    if (c->declined_at) return qun_fail(err, QUN_CHALLENGE_DECLINED, "challenge %s was declined", c->cid);
    bool same_device = strcmp(device_id, c->device_id) == 0;
    if (strcmp(c->method, "qr") == 0 && same_device)
        return qun_fail_field(err, QUN_QR_SAME_DEVICE, "device_id",
                              "a qr challenge is approved from a device other than the one showing it");
    if (strcmp(c->method, "device_key") == 0 && !same_device)
        return qun_fail_field(err, QUN_CHALLENGE_MISMATCH, "device_id",
                              "a device_key challenge is signed by the device that asked for it (%.64s)",
                              c->device_id);
    return QUN_OK;
}

qun_rc qun_challenge_passkey_options(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t **out,
                                     qun_err_t *err) {
    chal_t c;
    unsigned char ch[32];
    qun_rc rc = chal_load(db, a, cid, &c, err);
    if (rc == QUN_OK) rc = chal_approvable(&c, a->device_id, err);
    if (rc == QUN_OK) rc = chal_webauthn(&c, ch, err);
    if (rc != QUN_OK) return rc;
    json_t *allow = qun_passkey_allow(db, a->uid, err);
    if (!allow) return QUN_INTERNAL;
    if (json_array_size(allow) == 0) {
        json_decref(allow);
        return qun_fail(err, QUN_PASSKEY_NOT_FOUND, "register a passkey first (POST /v1/me/passkeys)");
    }
    char *b64 = qun_b64url(ch, sizeof ch);
    *out = b64 ? json_pack("{s:s, s:{s:s, s:s, s:o, s:s, s:I}, s:I}", "challenge_id", c.cid, "publicKey",
                           "challenge", b64, "rpId", qun_passkey_cfg.rp_id, "allowCredentials", allow,
                           "userVerification", "required", "timeout", (json_int_t)qun_passkey_cfg.timeout_ms,
                           "expires_at", (json_int_t)c.expires_at)
               : NULL;
    if (!b64 || !*out) json_decref(allow);
    free(b64);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_challenge_approve_passkey(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t *cred,
                                     json_t **out, json_t **problem, qun_err_t *err) {
    chal_t c;
    unsigned char ch[32];
    qun_rc rc = chal_load(db, a, cid, &c, err);
    if (rc == QUN_OK) rc = chal_approvable(&c, a->device_id, err);
    if (rc == QUN_OK) rc = chal_webauthn(&c, ch, err);
    if (rc == QUN_OK) rc = qun_passkey_assert(db, a, ch, cred, NULL, problem, err);
    if (rc != QUN_OK) return rc;
    rc = chal_mark_approved(db, a, &c, a->device_id, "passkey", err);
    if (rc != QUN_OK) return rc;
    *out = chal_json(&c);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

/* What the approving person reads before deciding: the asking device and its platform,
 * and, for a group the caller belongs to, its name (and, for a dissolution, the impact
 * counts).  A group the caller is not in stays an id: a challenge may name any text. */
static qun_rc chal_context(qun_db_t *db, const qun_actor_t *a, const chal_t *c, json_t *o, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT platform FROM devices WHERE user_id = $1 AND device_id = $2",
                           "is", a->uid, c->device_id);
    const char *platform = rc == QUN_ROW ? qun_q_col_text(q, 0) : NULL;
    json_object_set_new(o, "requested_by",
                        json_pack("{s:s, s:s?, s:b}", "device_id", c->device_id, "platform", platform,
                                  "current", strcmp(c->device_id, a->device_id) == 0));
    if (rc == QUN_ROW) qun_q_done(q);
    if (rc != QUN_ROW && rc != QUN_DONE) return rc;
    if (!c->group[0]) return QUN_OK;
    qun_group_t g;
    qun_err_t ignored;
    if (qun_group_access(db, a, c->group, QUN_ROLE_MEMBER, &g, &ignored) != QUN_OK) return QUN_OK;
    json_object_set_new(o, "group_name", json_string(g.name));
    json_object_set_new(o, "group_kind", json_string(g.kind));
    json_object_set_new(o, "member_count", json_integer(g.member_count));
    if (strcmp(c->action, "dissolve") != 0) return QUN_OK;
    json_t *params = json_pack("{s:s}", "messages", "keep"), *view = NULL;
    if (params && qun_diss_impact(db, a, c->group, params, &view, &ignored) == QUN_OK) {
        json_t *impact = json_object_get(view, "impact"), *counts = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(impact, k, v) {
            json_t *n = json_object_get(v, "count");
            if (json_is_integer(n)) json_object_set(counts, k, n);
        }
        json_object_set_new(o, "impact", counts);
    }
    json_decref(view);
    json_decref(params);
    return QUN_OK;
}

qun_rc qun_challenge_status(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t **out,
                            qun_err_t *err) {
    chal_t c;
    qun_rc rc = chal_load(db, a, cid, &c, err);
    if (rc != QUN_OK) return rc;
    *out = chal_json(&c);
    if (!*out) return qun_fail(err, QUN_NOMEM, "out of memory");
    rc = chal_context(db, a, &c, *out, err);
    if (rc != QUN_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

qun_rc qun_challenge_decline(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t **out,
                             qun_err_t *err) {
    chal_t c;
    qun_rc rc = chal_load(db, a, cid, &c, err);
    if (rc != QUN_OK) return rc;
    if (c.used_at) return qun_fail(err, QUN_CHALLENGE_USED, "challenge %s was already used", cid);
    if (c.declined_at) return qun_fail(err, QUN_CHALLENGE_DECLINED, "challenge %s was declined", cid);
    if (qun_now() >= c.expires_at)
        return qun_fail(err, QUN_CHALLENGE_EXPIRED, "challenge %s has expired", cid);
    if (c.approved_at)
        return qun_fail(err, QUN_CHALLENGE_ALREADY_APPROVED, "challenge %s is already approved", cid);
    int64_t now = qun_now();
    rc = qun_db_run(db, NULL, err,
                    "UPDATE challenges SET declined_at = $2 WHERE id = $1 AND approved_at IS NULL "
                    "AND declined_at IS NULL AND used_at IS NULL",
                    "ii", c.id, now);
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) != 1)
        return qun_fail(err, QUN_CHALLENGE_ALREADY_APPROVED, "challenge %s is already decided", cid);
    c.declined_at = now;
    rc = chal_event(db, a, &c, "challenge.declined", err);
    if (rc != QUN_OK) return rc;
    *out = chal_json(&c);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_challenge_uri(qun_db_t *db, const qun_actor_t *a, const char *cid, char *out, size_t size,
                         qun_err_t *err) {
    chal_t c;
    qun_rc rc = chal_load(db, a, cid, &c, err);
    if (rc != QUN_OK) return rc;
    if (c.used_at) return qun_fail(err, QUN_CHALLENGE_USED, "challenge %s was already used", cid);
    if (qun_now() >= c.expires_at)
        return qun_fail(err, QUN_CHALLENGE_EXPIRED, "challenge %s has expired", cid);
    if (c.approved_at)
        return qun_fail(err, QUN_CHALLENGE_ALREADY_APPROVED, "challenge %s is already approved", cid);
    if (c.declined_at) return qun_fail(err, QUN_CHALLENGE_DECLINED, "challenge %s was declined", cid);
    chal_url(&c, true, out, size);
    return QUN_OK;
}

/* Equal bindings: NULL and "" are the same; the digest is compared in constant time. */
static bool same_text(const char *stored, const char *given, bool ct) {
    if (!given) given = "";
    size_t n = strlen(stored);
    if (n != strlen(given)) return false;
    return ct ? qun_ct_equal(stored, given, n) : memcmp(stored, given, n) == 0;
}

static qun_rc consume(qun_db_t *db, const qun_actor_t *a, const char *cid, const char *action,
                      const char *group, const char *params_digest, const char **method_out, bool *passkey,
                      qun_err_t *err) {
    chal_t c;
    qun_rc rc = chal_load(db, a, cid ? cid : "", &c, err);
    if (rc != QUN_OK) return rc;
    if (c.used_at) return qun_fail(err, QUN_CHALLENGE_USED, "challenge %s was already used", c.cid);
    if (c.declined_at) return qun_fail(err, QUN_CHALLENGE_DECLINED, "challenge %s was declined", c.cid);
    if (qun_now() >= c.expires_at)
        return qun_fail(err, QUN_CHALLENGE_EXPIRED, "challenge %s has expired", c.cid);
    if (c.session_id != a->session_id)
        return qun_fail(err, QUN_CHALLENGE_MISMATCH, "challenge %s was issued to another session", c.cid);
    if (!same_text(c.action, action, false))
        return qun_fail(err, QUN_CHALLENGE_MISMATCH, "challenge %s is for action %s", c.cid, c.action);
    if (!same_text(c.group, group, false))
        return qun_fail(err, QUN_CHALLENGE_MISMATCH, "challenge %s is bound to another group", c.cid);
    if (!same_text(c.digest, params_digest, true))
        return qun_fail(err, QUN_CHALLENGE_MISMATCH, "challenge %s is bound to other parameters", c.cid);
    if (!c.approved_at)
        return qun_fail(err, QUN_CHALLENGE_NOT_APPROVED, "challenge %s is not approved yet", c.cid);
    rc = qun_db_run(db, NULL, err, "UPDATE challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
                    "ii", c.id, qun_now());
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) != 1)
        return qun_fail(err, QUN_CHALLENGE_USED, "challenge %s was already used", c.cid);
    if (method_out) *method_out = strcmp(c.method, "qr") == 0 ? "qr" : "device_key";
    if (passkey) *passkey = strcmp(c.approved_with, "passkey") == 0;
    return QUN_OK;
}

qun_rc qun_challenge_consume(qun_db_t *db, const qun_actor_t *a, const char *cid, const char *action,
                             const char *group, const char *params_digest, const char **method_out,
                             qun_err_t *err) {
    return consume(db, a, cid, action, group, params_digest, method_out, NULL, err);
}

/* ---- TOTP ---- */

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char totp_key[crypto_secretbox_KEYBYTES];
static char totp_key_dir[4096];
static bool totp_key_loaded;
static pthread_once_t oath_once = PTHREAD_ONCE_INIT;

static void oath_start(void) {
    oath_init();
}

/* The sealing key from <data_dir>/totp.key, created (0600, fsynced) on first use.
 * Reloaded when the data directory changes (tests use several). */
static qun_rc load_key(unsigned char key[crypto_secretbox_KEYBYTES], qun_err_t *err) {
    qun_rc rc = QUN_OK;
    const char *dir = qun_core_cfg.data_dir ? qun_core_cfg.data_dir : ".";
    pthread_mutex_lock(&key_lock);
    if (totp_key_loaded && strcmp(totp_key_dir, dir) == 0) goto out;
    char path[4200];
    snprintf(path, sizeof path, "%s/totp.key", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        unsigned char fresh[crypto_secretbox_KEYBYTES];
        crypto_secretbox_keygen(fresh);
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        int w = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = w >= 0 && write(w, fresh, sizeof fresh) == (ssize_t)sizeof fresh && fsync(w) == 0;
        if (w >= 0) close(w);
        /* link() fails when another process created the key meanwhile: use theirs. */
        if (ok && link(tmp, path) != 0 && errno != EEXIST) ok = false;
        unlink(tmp);
        sodium_memzero(fresh, sizeof fresh);
        if (!ok) {
            rc = qun_fail(err, QUN_INTERNAL, "cannot create %s: %s", path, strerror(errno));
            goto out;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        rc = qun_fail(err, QUN_INTERNAL, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    ssize_t got = read(fd, totp_key, sizeof totp_key);
    close(fd);
    if (got != (ssize_t)sizeof totp_key) {
        rc = qun_fail(err, QUN_INTERNAL, "%s must hold %zu bytes", path, sizeof totp_key);
        goto out;
    }
    snprintf(totp_key_dir, sizeof totp_key_dir, "%s", dir);
    totp_key_loaded = true;
out:
    if (rc == QUN_OK) memcpy(key, totp_key, sizeof totp_key);
    pthread_mutex_unlock(&key_lock);
    return rc;
}

qun_rc qun_totp_enroll(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    pthread_once(&oath_once, oath_start);
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT state FROM totp WHERE user_id = $1", "i", a->uid);
    if (rc == QUN_ROW) {
        bool active = strcmp(qun_q_col_text(q, 0), "active") == 0;
        qun_q_done(q);
        if (active) return qun_fail(err, QUN_TOTP_ALREADY_ACTIVE, "TOTP is already active for your account");
    } else if (rc != QUN_DONE) {
        return rc;
    }
    unsigned char key[crypto_secretbox_KEYBYTES], secret[TOTP_SECRET], sealed[SEALED];
    rc = load_key(key, err);
    if (rc != QUN_OK) return rc;
    qun_random(secret, sizeof secret);
    qun_random(sealed, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(sealed + crypto_secretbox_NONCEBYTES, secret, sizeof secret, sealed, key);
    sodium_memzero(key, sizeof key);
    char *b32 = NULL;
    size_t b32len = 0;
    if (oath_base32_encode((const char *)secret, sizeof secret, &b32, &b32len) != OATH_OK) {
        sodium_memzero(secret, sizeof secret);
        return qun_fail(err, QUN_NOMEM, "base32 encoding failed");
    }
    sodium_memzero(secret, sizeof secret);
    int64_t now = qun_now();
    rc = qun_q_prepare(db,
                       "INSERT INTO totp(user_id, sealed, state, created_at) VALUES ($1, $2, 'pending', $3) "
                       "ON CONFLICT (user_id) DO UPDATE SET sealed = $2, state = 'pending', created_at = $3, "
                       "confirmed_at = NULL, last_step = -1",
                       &q, err);
    if (rc == QUN_OK) {
        qun_q_int(q, 1, a->uid);
        qun_q_blob(q, 2, sealed, sizeof sealed);
        qun_q_int(q, 3, now);
        rc = qun_q_step(q, err);
        if (rc == QUN_DONE)
            rc = QUN_OK;
        else if (rc == QUN_ROW)
            rc = qun_fail(err, QUN_INTERNAL, "unexpected row");
    }
    if (rc != QUN_OK) goto out;
    char uri[512];
    snprintf(uri, sizeof uri, "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%u&period=%u",
             qun_verify_cfg.totp_issuer, a->username, b32, qun_verify_cfg.totp_issuer,
             qun_verify_cfg.totp_digits, qun_verify_cfg.totp_step);
    char *svg = qun_qr_svg(uri);
    if (!svg) {
        rc = qun_fail(err, QUN_NOMEM, "cannot render the QR code");
        goto out;
    }
    *out = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s}", "secret", b32, "otpauth_uri", uri, "qr_svg", svg,
                     "digits", (int)qun_verify_cfg.totp_digits, "period", (int)qun_verify_cfg.totp_step,
                     "algorithm", "SHA1", "state", "pending");
    free(svg);
    if (!*out) rc = qun_fail(err, QUN_NOMEM, "out of memory");
out:
    sodium_memzero(b32, b32len);
    free(b32);
    return rc;
}

/* Check code against the actor's enrollment in state want ("pending" or "active") and
 * record its time step, refusing steps at or before the last accepted one. */
static qun_rc totp_use(qun_db_t *db, const qun_actor_t *a, const char *code, const char *want,
                       qun_err_t *err) {
    pthread_once(&oath_once, oath_start);
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT sealed, state, last_step FROM totp WHERE user_id = $1", "i", a->uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_TOTP_NOT_ENROLLED, "you have no TOTP enrollment");
    if (rc != QUN_ROW) return rc;
    unsigned char sealed[SEALED];
    size_t n;
    const void *blob = qun_q_col_blob(q, 0, &n);
    bool state_ok = strcmp(qun_q_col_text(q, 1), want) == 0;
    bool active = strcmp(qun_q_col_text(q, 1), "active") == 0;
    int64_t last_step = qun_q_col_int(q, 2);
    if (n == SEALED) memcpy(sealed, blob, SEALED);
    qun_q_done(q);
    if (!state_ok)
        return active ? qun_fail(err, QUN_TOTP_ALREADY_ACTIVE, "TOTP is already active for your account")
                      : qun_fail(err, QUN_TOTP_NOT_ENROLLED, "confirm your TOTP enrollment first");
    if (n != SEALED) return qun_fail(err, QUN_INTERNAL, "stored TOTP secret has %zu bytes", n);
    size_t len = code ? strlen(code) : 0;
    bool digits = len == qun_verify_cfg.totp_digits;
    for (size_t i = 0; digits && i < len; i++)
        digits = code[i] >= '0' && code[i] <= '9';
    if (!digits)
        return qun_fail_field(err, QUN_TOTP_INVALID, "code", "the code must be %u digits",
                              qun_verify_cfg.totp_digits);
    unsigned char key[crypto_secretbox_KEYBYTES], secret[TOTP_SECRET];
    rc = load_key(key, err);
    if (rc != QUN_OK) return rc;
    int open = crypto_secretbox_open_easy(secret, sealed + crypto_secretbox_NONCEBYTES,
                                          SEALED - crypto_secretbox_NONCEBYTES, sealed, key);
    sodium_memzero(key, sizeof key);
    if (open != 0)
        return qun_fail(err, QUN_INTERNAL, "the TOTP secret does not open with this server's totp.key");
    int64_t now = qun_now();
    int pos = 0;
    uint64_t counter = 0;
    int r = oath_totp_validate3((const char *)secret, sizeof secret, (time_t)now, qun_verify_cfg.totp_step, 0,
                                qun_verify_cfg.totp_window, &pos, &counter, code);
    sodium_memzero(secret, sizeof secret);
    if (r < 0)
        return qun_fail_field(err, QUN_TOTP_INVALID, "code",
                              "the code is wrong or outside the accepted window");
    int64_t step = now / (int64_t)qun_verify_cfg.totp_step + pos;
    if (step <= last_step)
        return qun_fail_field(err, QUN_TOTP_REPLAYED, "code", "a code of this time step was already used");
    if (strcmp(want, "pending") == 0)
        rc = qun_db_run(
            db, NULL, err,
            "UPDATE totp SET state = 'active', confirmed_at = $2, last_step = $3 WHERE user_id = $1", "iii",
            a->uid, now, step);
    else
        rc = qun_db_run(db, NULL, err, "UPDATE totp SET last_step = $2 WHERE user_id = $1 AND last_step < $2",
                        "ii", a->uid, step);
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) != 1)
        return qun_fail_field(err, QUN_TOTP_REPLAYED, "code", "a code of this time step was already used");
    return QUN_OK;
}

qun_rc qun_totp_confirm(qun_db_t *db, const qun_actor_t *a, const char *code, qun_err_t *err) {
    return totp_use(db, a, code, "pending", err);
}

qun_rc qun_totp_check(qun_db_t *db, const qun_actor_t *a, const char *code, qun_err_t *err) {
    return totp_use(db, a, code, "active", err);
}

qun_rc qun_totp_active(qun_db_t *db, const qun_actor_t *a, bool *active, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT 1 FROM totp WHERE user_id = $1 AND state = 'active'", "i", a->uid);
    if (rc == QUN_ROW) qun_q_done(q);
    *active = rc == QUN_ROW;
    return rc == QUN_ROW || rc == QUN_DONE ? QUN_OK : rc;
}

/* ---- policy ---- */

const char *qun_verify_method_name(unsigned bit) {
    return qun_policy_method_name(bit);
}

/* What a request needs whose platform and enrollment ask for the methods of all. */
static qun_verify_need_t need_of(unsigned all, qun_risk_level_t level) {
    const qun_policy_verify_t *p = qun_policy_verification(qun_core_cfg.policy);
    qun_verify_need_t need = {0};
    need.all = all;
    if (level >= QUN_RISK_VERIFY) {
        /* A step-up is a proof beyond the platform's own: a method the platform already
         * requires does not count twice, unless no other step-up method exists. */
        need.any = p->step_up & ~need.all;
        if (!need.any) need.any = p->step_up;
    }
    need.review = level >= QUN_RISK_REVIEW;
    need.denied = level >= QUN_RISK_DENY;
    return need;
}

qun_verify_need_t qun_verify_required(const char *platform, qun_risk_level_t level) {
    return need_of(qun_policy_verification(qun_core_cfg.policy)->platform[qun_platform_parse(platform)],
                   level);
}

qun_rc qun_verify_need(qun_db_t *db, const qun_actor_t *a, qun_risk_level_t level, qun_verify_need_t *need,
                       qun_err_t *err) {
    /* A Matrix client can show no confirmation, QR code or typed name of qun's, and its
     * token must not be a side door to /v1's destructive actions (docs/matrix.md). */
    if (strcmp(a->platform, "matrix") == 0)
        return qun_fail(err, QUN_MATRIX_FORBIDDEN,
                        "dissolution, ownership transfer and bulk removal are done in qun's own apps, "
                        "not from a Matrix client");
    unsigned all = qun_policy_verification(qun_core_cfg.policy)->platform[qun_platform_parse(a->platform)];
    unsigned enrolled = 0;
    /* The platform a session declares is only a claim: once the account has enrolled a
     * device key, every destructive action needs a key's signature, and the platform
     * (with the device) only chooses how it is shown.  This device signs if it holds a
     * key; otherwise another device of the account approves a QR code. */
    if (!(all & (QUN_VM_DEVICE_KEY | QUN_VM_QR))) {
        bool own, other;
        qun_rc rc = has_key(db, a->uid, a->device_id, NULL, &own, err);
        if (rc == QUN_OK) rc = has_key(db, a->uid, NULL, a->device_id, &other, err);
        if (rc != QUN_OK) return rc;
        enrolled = own ? QUN_VM_DEVICE_KEY : other ? QUN_VM_QR : 0;
    }
    *need = need_of(all | enrolled, level);
    need->enrolled = enrolled;
    return QUN_OK;
}

static json_t *names_of(unsigned mask) {
    json_t *a = json_array();
    for (unsigned bit = 1; bit <= QUN_VM_TYPED_NAME; bit <<= 1)
        if (mask & bit) json_array_append_new(a, json_string(qun_policy_method_name(bit)));
    return a;
}

json_t *qun_verify_need_json(qun_verify_need_t need) {
    return json_pack("{s:o, s:o, s:b, s:b}", "all", names_of(need.all), "any_of", names_of(need.any),
                     "review", need.review, "denied", need.denied);
}

static const char *method_how(unsigned bit) {
    switch (bit) {
    case QUN_VM_CONFIRM: return "ask for the action's preview and send its confirmation_token";
    case QUN_VM_TYPED_NAME: return "type the group's name back as typed_name";
    case QUN_VM_DEVICE_KEY:
        return "POST /v1/challenges {method: device_key, action, group, params_digest}, sign it with this "
               "device's key, then send its id as challenge_id";
    case QUN_VM_QR:
        return "POST /v1/challenges {method: qr, action, group, params_digest}, approve its QR code from "
               "another "
               "device of yours, then send its id as challenge_id";
    case QUN_VM_TOTP: return "send a current code of your authenticator app as totp_code";
    }
    return "";
}

void qun_verify_mask_text(unsigned mask, const char *extra, char *out, size_t size) {
    size_t n = 0;
    out[0] = '\0';
    for (unsigned bit = 1; bit <= QUN_VM_TYPED_NAME; bit <<= 1)
        if ((mask & bit) && n < size)
            n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "+" : "", qun_policy_method_name(bit));
    if (extra && n < size) snprintf(out + n, size - n, "%s%s", n ? "+" : "", extra);
}

json_t *qun_verify_requirements(unsigned mask) {
    json_t *a = json_array();
    for (unsigned bit = 1; bit <= QUN_VM_TYPED_NAME; bit <<= 1)
        if (mask & bit)
            json_array_append_new(
                a, json_pack("{s:s, s:s}", "method", qun_policy_method_name(bit), "how", method_how(bit)));
    return a;
}

/* The code that names a missing platform method. */
static qun_rc missing_code(unsigned bit) {
    switch (bit) {
    case QUN_VM_CONFIRM: return QUN_CONFIRMATION_REQUIRED;
    case QUN_VM_TYPED_NAME: return QUN_TYPED_NAME_REQUIRED;
    case QUN_VM_DEVICE_KEY: return QUN_DEVICE_KEY_REQUIRED;
    case QUN_VM_QR: return QUN_QR_REQUIRED;
    default: return QUN_TOTP_REQUIRED;
    }
}

static unsigned bit_index(unsigned bit) {
    unsigned i = 0;
    while (bit > 1)
        bit >>= 1, i++;
    return i;
}

qun_rc qun_verify_check(qun_db_t *db, const qun_actor_t *a, qun_verify_need_t need,
                        const qun_verify_proof_t *p, json_t **problem, qun_err_t *err) {
    /* How many proofs of each method the request holds: each proof satisfies one
     * requirement, so a step-up is never the platform's own proof counted twice. */
    unsigned have[5] = {0};
    /* device_key challenges approved by a passkey on the requesting device: a `qr`
     * asks another device for a key's proof because the requesting one has none; a
     * passkey with user verification on this device is that proof (a phone with no
     * second device approves on itself). */
    unsigned passkey_here = 0;
    if (p->confirmed) have[bit_index(QUN_VM_CONFIRM)]++;
    if (p->typed_name) {
        if (strcmp(p->typed_name, p->group_name ? p->group_name : "") != 0)
            return qun_fail_field(err, QUN_TYPED_NAME_MISMATCH, "typed_name",
                                  "the name typed does not match the group's name; nothing was done");
        have[bit_index(QUN_VM_TYPED_NAME)]++;
    }
    for (int i = 0; i < 2; i++) {
        const char *cid = p->challenges[i], *method = NULL;
        if (!cid) continue;
        if (i == 1 && p->challenges[0] && strcmp(cid, p->challenges[0]) == 0)
            return qun_fail_field(err, QUN_CHALLENGE_USED, "step_up_challenge_id",
                                  "one challenge counts once");
        bool passkey = false;
        qun_rc rc = consume(db, a, cid, p->action, p->group, p->params_digest, &method, &passkey, err);
        if (rc != QUN_OK) return rc;
        bool qr = strcmp(method, "qr") == 0;
        have[bit_index(qr ? QUN_VM_QR : QUN_VM_DEVICE_KEY)]++;
        if (!qr && passkey) passkey_here++;
    }
    if (p->totp_code) {
        qun_rc rc = qun_totp_check(db, a, p->totp_code, err);
        if (rc != QUN_OK) return rc;
        have[bit_index(QUN_VM_TOTP)]++;
    }
    unsigned missing = 0;
    for (unsigned bit = 1; bit <= QUN_VM_TYPED_NAME; bit <<= 1)
        if (need.all & bit) {
            if (have[bit_index(bit)]) {
                have[bit_index(bit)]--;
                if (bit == QUN_VM_DEVICE_KEY && passkey_here > have[bit_index(bit)]) passkey_here--;
            } else if (bit == QUN_VM_QR && passkey_here) {
                passkey_here--;
                have[bit_index(QUN_VM_DEVICE_KEY)]--;
            } else {
                missing |= bit;
            }
        }
    /* Name the first missing method in the order a client collects them. */
    static const unsigned order[] = {QUN_VM_CONFIRM, QUN_VM_TYPED_NAME, QUN_VM_DEVICE_KEY, QUN_VM_QR,
                                     QUN_VM_TOTP};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!(missing & order[i])) continue;
        if (problem)
            *problem = json_pack("{s:o, s:s, s:s?, s:s?}", "requirements", qun_verify_requirements(missing),
                                 "action", p->action, "group", p->group, "params_digest", p->params_digest);
        if (need.enrolled & order[i])
            return qun_fail(err, missing_code(order[i]),
                            "%s needs %s: your account has a registered device key, so a key's signature is "
                            "needed whatever platform a session declares",
                            p->action, qun_policy_method_name(order[i]));
        return qun_fail(err, missing_code(order[i]), "%s from this %s session needs %s", p->action,
                        a->platform, qun_policy_method_name(order[i]));
    }
    bool stepped = !need.any;
    for (unsigned bit = 1; !stepped && bit <= QUN_VM_TYPED_NAME; bit <<= 1)
        stepped = (need.any & bit) && have[bit_index(bit)] > 0;
    if (!stepped) {
        if (problem)
            *problem = json_pack("{s:o, s:s, s:s?, s:s?}", "requirements", qun_verify_need_json(need),
                                 "action", p->action, "group", p->group, "params_digest", p->params_digest);
        return qun_fail(err, QUN_VERIFICATION_REQUIRED, "%s needs a step-up verification beyond %s's own",
                        p->action, a->platform);
    }
    return QUN_OK;
}

/* ---- confirmation tokens ---- */

qun_rc qun_confirm_issue(qun_db_t *db, const qun_actor_t *a, int64_t group_id, const char *action,
                         json_t *params, char token[64], int64_t *expires, qun_err_t *err) {
    unsigned char raw[32];
    char hash[65], digest[65];
    memcpy(token, "qct_", 5);
    qun_random(raw, sizeof raw);
    sodium_bin2base64(token + 4, 60, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    qun_sha256_hex(hash, token, strlen(token));
    qun_json_digest(params, digest);
    *expires = qun_now() + qun_core_cfg.confirm_ttl;
    qun_rc rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO confirm_tokens(token_hash, user_id, group_id, action, params_digest, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        "siissi", hash, a->uid, group_id, action, digest, *expires);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_confirm_consume(qun_db_t *db, const qun_actor_t *a, int64_t group_id, const char *action,
                           json_t *params, const char *token, qun_err_t *err) {
    char hash[65], digest[65];
    qun_sha256_hex(hash, token, strlen(token));
    qun_json_digest(params, digest);
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT user_id, group_id, params_digest, expires_at, used_at FROM confirm_tokens "
                           "WHERE token_hash = $1 AND action = $2",
                           "ss", hash, action);
    if (rc == QUN_DONE)
        return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token",
                              "unknown confirmation token");
    if (rc != QUN_ROW) return rc;
    bool mine = qun_q_col_int(q, 0) == a->uid && qun_q_col_int(q, 1) == group_id;
    bool same = qun_ct_equal(qun_q_col_text(q, 2), digest, 64);
    bool expired = qun_q_col_int(q, 3) <= qun_now(), used = !qun_q_col_null(q, 4);
    qun_q_done(q);
    if (!mine)
        return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token",
                              "this token was issued for another user or group");
    if (used)
        return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token",
                              "this token was already used");
    if (expired)
        return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token",
                              "this token has expired; ask for a new preview");
    if (!same)
        return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token",
                              "the parameters differ from the previewed ones");
    rc = qun_db_run(db, NULL, err,
                    "UPDATE confirm_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL", "si",
                    hash, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* ---- rendering ---- */

#define QR_BORDER 4 /* quiet zone in modules (ISO/IEC 18004) */

static QRcode *qr_encode(const char *text) {
    return QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
}

char *qun_qr_svg(const char *text) {
    QRcode *qr = qr_encode(text);
    if (!qr) return NULL;
    int size = qr->width + 2 * QR_BORDER;
    char *svg = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&svg, &n);
    if (!f) {
        QRcode_free(qr);
        return NULL;
    }
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
            "shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path "
            "fill=\"#000\" d=\"",
            size, size, size * 8, size * 8, size, size);
    /* One rectangle per horizontal run of dark modules (bit 0 of each byte). */
    for (int y = 0; y < qr->width; y++)
        for (int x = 0; x < qr->width;) {
            if (!(qr->data[y * qr->width + x] & 1)) {
                x++;
                continue;
            }
            int run = 0;
            while (x + run < qr->width && (qr->data[y * qr->width + x + run] & 1))
                run++;
            fprintf(f, "M%d %dh%dv1h-%dz", x + QR_BORDER, y + QR_BORDER, run, run);
            x += run;
        }
    fprintf(f, "\"/></svg>\n");
    QRcode_free(qr);
    if (fclose(f) != 0) {
        free(svg);
        return NULL;
    }
    return svg;
}

/* CRC-32 (ISO-HDLC, the PNG chunk checksum), bitwise: PNGs here are small. */
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Append a chunk (length, type, data, CRC over type and data) at *at. */
static void png_chunk(unsigned char *buf, size_t *at, const char type[4], const unsigned char *data,
                      size_t n) {
    unsigned char *p = buf + *at;
    put32(p, (uint32_t)n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    put32(p + 8 + n, crc32_update(0, p + 4, n + 4));
    *at += 12 + n;
}

unsigned char *qun_qr_png(const char *text, size_t *len) {
    enum { SCALE = 6 };
    QRcode *qr = qr_encode(text);
    if (!qr) return NULL;
    uint32_t side = (uint32_t)(qr->width + 2 * QR_BORDER) * SCALE;
    size_t row = 1 + (side + 7) / 8; /* filter byte + 1 bit per pixel */
    size_t raw_n = row * side;
    unsigned char *raw = calloc(1, raw_n);
    size_t blocks = raw_n / 65535 + 1;
    size_t z_n = 2 + raw_n + 5 * blocks + 4;
    unsigned char *z = malloc(z_n);
    unsigned char *png = malloc(8 + 25 + 12 + z_n + 12);
    if (!raw || !z || !png) {
        free(raw), free(z), free(png);
        QRcode_free(qr);
        return NULL;
    }
    /* Grayscale, 1 bit: 1 is white.  Filter type 0 on every row. */
    for (uint32_t y = 0; y < side; y++) {
        unsigned char *r = raw + y * row;
        for (uint32_t x = 0; x < side; x++) {
            int mx = (int)(x / SCALE) - QR_BORDER, my = (int)(y / SCALE) - QR_BORDER;
            bool dark =
                mx >= 0 && my >= 0 && mx < qr->width && my < qr->width && (qr->data[my * qr->width + mx] & 1);
            if (!dark) r[1 + x / 8] |= (unsigned char)(0x80 >> (x % 8));
        }
    }
    QRcode_free(qr);
    /* zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 section 3.2.4). */
    size_t zi = 0;
    z[zi++] = 0x78;
    z[zi++] = 0x01;
    uint32_t s1 = 1, s2 = 0;
    for (size_t off = 0; off < raw_n || off == 0;) {
        size_t n = raw_n - off > 65535 ? 65535 : raw_n - off;
        z[zi++] = off + n == raw_n ? 1 : 0;
        z[zi++] = (unsigned char)(n & 0xff);
        z[zi++] = (unsigned char)(n >> 8);
        z[zi++] = (unsigned char)(~n & 0xff);
        z[zi++] = (unsigned char)((~n >> 8) & 0xff);
        memcpy(z + zi, raw + off, n);
        for (size_t i = 0; i < n; i++) {
            s1 = (s1 + raw[off + i]) % 65521;
            s2 = (s2 + s1) % 65521;
        }
        zi += n;
        off += n;
        if (n == 0) break;
    }
    put32(z + zi, (s2 << 16) | s1);
    zi += 4;
    free(raw);
    size_t at = 0;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    at = 8;
    unsigned char ihdr[13];
    put32(ihdr, side);
    put32(ihdr + 4, side);
    ihdr[8] = 1;  /* bit depth */
    ihdr[9] = 0;  /* grayscale */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering, type 0 used */
    ihdr[12] = 0; /* no interlace */
    png_chunk(png, &at, "IHDR", ihdr, sizeof ihdr);
    png_chunk(png, &at, "IDAT", z, zi);
    png_chunk(png, &at, "IEND", NULL, 0);
    free(z);
    *len = at;
    return png;
}

/* ---- sealing other secrets ---- */

qun_rc qun_secret_seal(const void *plain, size_t n, unsigned char **out, size_t *out_len, qun_err_t *err) {
    unsigned char key[crypto_secretbox_KEYBYTES];
    qun_rc rc = load_key(key, err);
    if (rc != QUN_OK) return rc;
    size_t len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    unsigned char *s = malloc(len);
    if (!s) {
        sodium_memzero(key, sizeof key);
        return qun_fail(err, QUN_NOMEM, "out of memory");
    }
    qun_random(s, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(s + crypto_secretbox_NONCEBYTES, plain, n, s, key);
    sodium_memzero(key, sizeof key);
    *out = s;
    *out_len = len;
    return QUN_OK;
}

qun_rc qun_secret_open(const void *sealed, size_t n, unsigned char *plain, size_t size, size_t *plain_len,
                       qun_err_t *err) {
    const unsigned char *s = sealed;
    size_t over = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES;
    if (n < over || n - over > size) return qun_fail(err, QUN_INTERNAL, "a sealed secret has %zu bytes", n);
    unsigned char key[crypto_secretbox_KEYBYTES];
    qun_rc rc = load_key(key, err);
    if (rc != QUN_OK) return rc;
    int bad = crypto_secretbox_open_easy(plain, s + crypto_secretbox_NONCEBYTES,
                                         n - crypto_secretbox_NONCEBYTES, s, key);
    sodium_memzero(key, sizeof key);
    if (bad) return qun_fail(err, QUN_INTERNAL, "a sealed secret does not open with this server's totp.key");
    *plain_len = n - over;
    return QUN_OK;
}
