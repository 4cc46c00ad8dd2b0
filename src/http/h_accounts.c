/* SPDX-License-Identifier: MIT */
/* Accounts and sessions: register, login (argon2id, off the writer), me, sessions,
 * revoke, password change, and the personal bill. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "qun/lockout.h"

/* A username is 3 to 32 bytes of UTF-8: letters of any script and the rest that
 * qun_username_check allows (core/username.c). */
static const qun_field_t user_fields[] = {{"username", F_STR, true, 3, 32, NULL},
                                          {"password", F_STR, true, 8, 256, NULL},
                                          {"display_name", F_STR, false, 1, 1024, NULL},
                                          {0}};

/* Hashing is slow on purpose: on a password thread (slow.c), not the loop or the writer. */
static qun_rc user_create_hash(qun_req_t *r) {
    return qun_password_hash(qun_jstr(r->json, "password"), r->scratch, &r->err);
}

qun_rc h_user_create_prep(qun_req_t *r) {
    char key[QUN_USERNAME_KEY_MAX];
    qun_rc rc = qun_fields_check(r->json, user_fields, &r->err);
    if (rc == QUN_OK) rc = qun_username_check(qun_jstr(r->json, "username"), key, sizeof key, &r->err);
    const char *dn = qun_jstr(r->json, "display_name");
    char name[QUN_DISPLAY_NAME_MAX];
    if (rc == QUN_OK && dn) rc = qun_display_name_check(dn, name, &r->err);
    if (rc != QUN_OK) return rc;
    r->scratch = qun_xmalloc(crypto_pwhash_STRBYTES);
    r->slow = user_create_hash;
    return QUN_OK;
}

qun_rc h_user_create(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_user_create_named(r->db, qun_jstr(r->json, "username"), qun_jstr(r->json, "display_name"),
                                      r->scratch, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}

typedef struct {
    int64_t uid;
    qun_rc found; /* QUN_OK, or QUN_USER_NOT_FOUND: the password is hashed all the same */
    char hash[crypto_pwhash_STRBYTES];
    char token[64];
    char device_secret[64]; /* handed out only if this login enrolls a new device */
} login_t;

static const qun_field_t session_fields[] = {{"username", F_STR, true, 1, 64, NULL},
                                             {"password", F_STR, true, 1, 256, NULL},
                                             {"device_id", F_STR, true, 1, 64, NULL},
                                             {"platform", F_STR, true, 1, 16, "android|ios|windows|web|cli"},
                                             {"device_secret", F_STR, false, 1, 128, NULL},
                                             {0}};

/* "qun_" or "qds_" then 32 random bytes in base64url: a bearer token or a device secret. */
static void random_secret(char out[64], const char *prefix) {
    unsigned char raw[32];
    qun_random(raw, sizeof raw);
    memcpy(out, prefix, 4);
    sodium_bin2base64(out + 4, 60, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

/* On a password thread: the password against the stored hash. */
static qun_rc session_check(qun_req_t *r) {
    login_t *l = r->scratch;
    if (!qun_password_login_ok(l->found == QUN_OK, l->hash, qun_jstr(r->json, "password")))
        return qun_fail(&r->err, QUN_BAD_CREDENTIALS, "username or password is wrong");
    random_secret(l->token, "qun_");
    random_secret(l->device_secret, "qds_");
    return QUN_OK;
}

qun_rc h_session_create_prep(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, session_fields, &r->err);
    if (rc != QUN_OK) return rc;
    login_t *l = qun_xcalloc(1, sizeof *l);
    r->scratch = l;
    rc =
        qun_user_credentials(r->db, qun_jstr(r->json, "username"), &l->uid, l->hash, sizeof l->hash, &r->err);
    if (rc != QUN_OK && rc != QUN_USER_NOT_FOUND) return rc;
    l->found = rc;
    r->slow = session_check;
    return QUN_OK;
}

qun_rc h_session_create(qun_req_t *r) {
    login_t *l = r->scratch;
    char hash[65], new_secret[65], presented[65];
    qun_sha256_hex(hash, l->token, strlen(l->token));
    qun_sha256_hex(new_secret, l->device_secret, strlen(l->device_secret));
    /* The device secret is stored and compared as its SHA-256, like tokens: a database
     * leak yields no secret, and the constant-time comparison is on a hash. */
    const char *secret = json_string_value(json_object_get(r->json, "device_secret"));
    if (secret) qun_sha256_hex(presented, secret, strlen(secret));
    json_t *out = NULL;
    qun_rc rc =
        qun_session_create(r->db, l->uid, hash, qun_jstr(r->json, "device_id"), qun_jstr(r->json, "platform"),
                           secret ? presented : NULL, new_secret, r->ip, &out, &r->err);
    if (rc == QUN_OK) rc = qun_lockout_reset(r->db, qun_jstr(r->json, "username"), &r->err);
    if (rc != QUN_OK) {
        json_decref(out);
        return rc;
    }
    json_object_set_new(out, "token", json_string(l->token));
    /* Once: the server keeps only its hash, and the device sends it back at every
     * later login to be recognized as this device. */
    if (json_is_true(json_object_get(out, "new_device")))
        json_object_set_new(out, "device_secret", json_string(l->device_secret));
    return qun_ok(r, 201, out);
}

qun_rc h_me(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_me(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* PATCH /v1/me {display_name}: a string sets it, null clears it (the username is
 * shown then).  Answers GET /v1/me's representation. */
qun_rc h_me_patch(qun_req_t *r) {
    static const qun_field_t f[] = {{"display_name", F_STR, false, 1, 1024, NULL}, {0}};
    bool clear = json_is_null(json_object_get(r->json, "display_name"));
    qun_rc rc = qun_fields_check(r->json, f, &r->err); /* drops the null */
    if (rc != QUN_OK) return rc;
    const char *name = qun_jstr(r->json, "display_name");
    if (!name && !clear)
        return qun_fail_field(&r->err, QUN_FIELD_MISSING, "display_name",
                              "display_name is required (a string, or null to clear it)");
    json_t *out = NULL;
    rc = qun_user_set_display_name(r->db, &r->actor, name, &out, &r->err);
    json_decref(out);
    if (rc == QUN_OK) rc = qun_me(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_me_sessions(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_session_list(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_session_delete(qun_req_t *r) {
    return qun_session_revoke(r->db, &r->actor, r->params[0], &r->err);
}

qun_rc h_bill(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_bill_list(r->db, &r->actor, after, limit, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* POST /v1/events/ticket: a short-lived, single-use ticket that authenticates one
 * GET /v1/events?ticket= for the calling session (a browser's EventSource cannot send
 * an Authorization header, and a bearer token in a URL would end up in logs and
 * histories).  Only its hash is stored; the router spends it (router.c, R_TICKET) and
 * events.c serves the stream. */
qun_rc h_event_ticket(qun_req_t *r) {
    static const qun_field_t no_fields[] = {{0}};
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    if (rc != QUN_OK) return rc;
    unsigned char raw[32];
    char ticket[64] = "et_", hash[65];
    qun_random(raw, sizeof raw);
    sodium_bin2base64(ticket + 3, sizeof ticket - 3, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    qun_sha256_hex(hash, ticket, strlen(ticket));
    int64_t expires_at;
    rc = qun_event_ticket_issue(r->db, &r->actor, hash, &expires_at, &r->err);
    if (rc != QUN_OK) return rc;
    return qun_ok(r, 201, json_pack("{s:s, s:I}", "ticket", ticket, "expires_at", (json_int_t)expires_at));
}

/* On a password thread: the old password against the stored hash in scratch, then the new
 * one's hash into scratch. */
static qun_rc password_rehash(qun_req_t *r) {
    if (!qun_password_verify(r->scratch, qun_jstr(r->json, "old_password")))
        return qun_fail_field(&r->err, QUN_BAD_CREDENTIALS, "old_password", "the old password is wrong");
    return qun_password_hash(qun_jstr(r->json, "new_password"), r->scratch, &r->err);
}

/* A password change: the stored hash read here, the old password checked and the new one
 * hashed on a password thread (argon2id is slow by design); the writer only stores the hash. */
qun_rc h_password_prep(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"old_password", F_STR, true, 1, 256, NULL}, {"new_password", F_STR, true, 8, 256, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc != QUN_OK) return rc;
    const char *old = qun_jstr(r->json, "old_password"), *new = qun_jstr(r->json, "new_password");
    if (strcmp(old, new) == 0)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "new_password",
                              "the new password must differ from the old one");
    int64_t uid;
    r->scratch = qun_xcalloc(1, crypto_pwhash_STRBYTES);
    rc = qun_user_credentials(r->db, r->actor.username, &uid, r->scratch, crypto_pwhash_STRBYTES, &r->err);
    if (rc != QUN_OK) return rc;
    r->slow = password_rehash;
    return QUN_OK;
}

qun_rc h_password(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_password_change(r->db, &r->actor, r->scratch, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
