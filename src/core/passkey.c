/* SPDX-License-Identifier: MIT */
/* Passkeys: WebAuthn registration (attestation "none") and assertion checks with
 * libfido2, the attestation object's CBOR read with libcbor.  See include/qun/passkey.h.
 *
 * Invariants: (P1) a registration challenge is used at most once (its UPDATE is
 * conditional on used_at being NULL) and only by the session it was issued to; (P2) a
 * stored sign count only grows; (P3) a passkey answers only for its own user: a
 * credential of another user is as unknown as one never registered. */
#include <cbor.h>
#include <fido.h>
#include <fido/es256.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/event.h"
#include "qun/json.h"
#include "qun/passkey.h"
#include "qun/verify.h"

qun_passkey_cfg_t qun_passkey_cfg = {
    .rp_id = "localhost",
    .origin = "http://localhost:8080",
    .rp_name = "qun",
    .options_ttl = 600,
    .timeout_ms = 120000,
};

#define CRED_ID_MAX 1023 /* WebAuthn: a credential id is at most 1023 bytes */
#define BLOB_MAX 16384   /* what any field of a ceremony may decode to */
#define FLAG_UP 0x01
#define FLAG_UV 0x04
#define FLAG_AT 0x40    /* attested credential data follows */
#define AUTHDATA_MIN 37 /* rpIdHash (32), flags (1), signCount (4) */

char *qun_b64url(const unsigned char *p, size_t n) {
    size_t size = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(size);
    if (s) sodium_bin2base64(s, size, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

/* A refusal of the ceremony: PASSKEY_INVALID naming the reason (and the field). */
static qun_rc refuse(qun_err_t *err, json_t **problem, const char *reason, const char *field,
                     const char *msg) {
    if (problem) {
        json_decref(*problem);
        *problem = json_pack("{s:s}", "reason", reason);
    }
    return field ? qun_fail_field(err, QUN_PASSKEY_INVALID, field, "%s", msg)
                 : qun_fail(err, QUN_PASSKEY_INVALID, "%s", msg);
}

/* A decoded base64url member: bytes owned by the struct (free with blob_free). */
typedef struct {
    unsigned char *p;
    size_t n;
} blob_t;

static void blob_free(blob_t *b) {
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

/* Decode the base64url (padding tolerated) string member key of o into b; field names
 * it in a refusal.  Empty or longer than max bytes is malformed. */
static qun_rc get_b64(json_t *o, const char *key, const char *field, size_t max, blob_t *b, json_t **problem,
                      qun_err_t *err) {
    json_t *v = json_object_get(o, key);
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be a base64url string", field);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return refuse(err, problem, "malformed", field, msg);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), cap = len / 4 * 3 + 3;
    if (cap > max + 3) return refuse(err, problem, "malformed", field, "the value is too long");
    b->p = malloc(cap);
    if (!b->p) return qun_fail(err, QUN_NOMEM, "out of memory");
    const char *end = NULL;
    int bad =
        sodium_base642bin(b->p, cap, s, len, NULL, &b->n, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    /* A padded form ends at the first '=': accept it when only padding follows. */
    if (!bad && end && end != s + len) {
        for (const char *q = end; q < s + len && !bad; q++)
            bad = *q != '=';
        bad = bad || (size_t)(s + len - end) > 2 || (end - s + (s + len - end)) % 4 != 0;
    }
    if (bad || b->n == 0 || b->n > max) {
        blob_free(b);
        return refuse(err, problem, "malformed", field, msg);
    }
    return QUN_OK;
}

/* The parts of a PublicKeyCredential JSON both ceremonies share. */
typedef struct {
    blob_t raw_id, client_data;
    json_t *response; /* borrowed */
} cred_t;

static void cred_free(cred_t *c) {
    blob_free(&c->raw_id);
    blob_free(&c->client_data);
}

static qun_rc cred_read(json_t *cred, cred_t *c, json_t **problem, qun_err_t *err) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(cred))
        return refuse(err, problem, "malformed", NULL, "the credential must be an object");
    json_t *type = json_object_get(cred, "type");
    if (type && !(json_is_string(type) && strcmp(json_string_value(type), "public-key") == 0))
        return refuse(err, problem, "malformed", "type", "type must be \"public-key\"");
    c->response = json_object_get(cred, "response");
    if (!json_is_object(c->response))
        return refuse(err, problem, "malformed", "response", "response must be an object");
    qun_rc rc = get_b64(cred, json_object_get(cred, "rawId") ? "rawId" : "id", "rawId", CRED_ID_MAX,
                        &c->raw_id, problem, err);
    if (rc == QUN_OK && json_object_get(cred, "rawId") && json_object_get(cred, "id")) {
        blob_t id = {0};
        rc = get_b64(cred, "id", "id", CRED_ID_MAX, &id, problem, err);
        if (rc == QUN_OK && (id.n != c->raw_id.n || memcmp(id.p, c->raw_id.p, id.n) != 0))
            rc = refuse(err, problem, "malformed", "id", "id and rawId name different credentials");
        blob_free(&id);
    }
    if (rc == QUN_OK)
        rc = get_b64(c->response, "clientDataJSON", "response.clientDataJSON", BLOB_MAX, &c->client_data,
                     problem, err);
    if (rc != QUN_OK) cred_free(c);
    return rc;
}

/* Check the client data: its type, its challenge (*challenge receives its 32 bytes),
 * the origin, and that it was not made in a cross-origin frame. */
static qun_rc client_data_check(const blob_t *cd, const char *want_type, unsigned char challenge[32],
                                json_t **problem, qun_err_t *err) {
    json_error_t je;
    json_t *o = json_loadb((const char *)cd->p, cd->n, JSON_REJECT_DUPLICATES, &je);
    qun_rc rc = QUN_OK;
    if (!json_is_object(o)) {
        rc = refuse(err, problem, "malformed", "response.clientDataJSON",
                    "clientDataJSON must be a JSON object");
        goto out;
    }
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *origin = json_string_value(json_object_get(o, "origin"));
    if (!type || strcmp(type, want_type) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "the client data's type must be %s", want_type);
        rc = refuse(err, problem, "type", "response.clientDataJSON", msg);
        goto out;
    }
    blob_t ch = {0};
    json_t *wrap = json_pack("{s:O?}", "c", json_object_get(o, "challenge"));
    rc = wrap ? get_b64(wrap, "c", "response.clientDataJSON", 64, &ch, problem, err)
              : qun_fail(err, QUN_NOMEM, "out of memory");
    json_decref(wrap);
    if (rc != QUN_OK) {
        if (problem && *problem) json_object_set_new(*problem, "reason", json_string("challenge"));
        goto out;
    }
    bool ok = ch.n == 32;
    if (ok) memcpy(challenge, ch.p, 32);
    blob_free(&ch);
    if (!ok) {
        rc = refuse(err, problem, "challenge", "response.clientDataJSON",
                    "the client data's challenge is not ours");
        goto out;
    }
    json_t *cross = json_object_get(o, "crossOrigin");
    if (!origin || strcmp(origin, qun_passkey_cfg.origin) != 0 || json_is_true(cross)) {
        rc = refuse(err, problem, "origin", "response.clientDataJSON",
                    "the passkey was used from another origin than this server's");
        goto out;
    }
out:
    json_decref(o);
    return rc;
}

/* The RP id hash and the flags at the head of authenticator data (fixed offsets). */
/* One CBOR item at p[*at..n), every length it declares within the bytes left.  libcbor
 * (and libfido2 through it) allocates what a header declares before reading it, so one
 * changed byte asked for gigabytes: a unit test's mutated attestation object was killed
 * at 24 GB.  Definite lengths only (WebAuthn's CTAP2 canonical CBOR), 16 levels deep. */
static bool cbor_item_fits(const unsigned char *p, size_t n, size_t *at, int depth) {
    if (depth > 16 || *at >= n) return false;
    unsigned char ib = p[(*at)++];
    unsigned major = ib >> 5, info = ib & 31;
    uint64_t arg = info;
    if (info >= 28) return false; /* reserved, or an indefinite length */
    if (info >= 24) {
        size_t len = (size_t)1 << (info - 24);
        if (n - *at < len) return false;
        for (arg = 0; len--;)
            arg = arg << 8 | p[(*at)++];
    }
    uint64_t left = n - *at;
    switch (major) {
    case 2: /* byte and text strings */
    case 3:
        if (arg > left) return false;
        *at += (size_t)arg;
        return true;
    case 4: /* arrays and maps: each item takes a byte at least */
    case 5:
        if (arg > left) return false;
        for (uint64_t i = 0; i < (major == 5 ? arg * 2 : arg); i++)
            if (!cbor_item_fits(p, n, at, depth + 1)) return false;
        return true;
    case 6: return cbor_item_fits(p, n, at, depth + 1); /* a tag's item */
    default: return true;                               /* integers, simple values, floats */
    }
}

/* Whether p[0..n) is CBOR items back to back, each within bounds (cbor_item_fits). */
static bool cbor_fits(const unsigned char *p, size_t n) {
    size_t at = 0;
    while (at < n)
        if (!cbor_item_fits(p, n, &at, 0)) return false;
    return true;
}

/* The CBOR of authenticator data (the attested credential's COSE key, extensions),
 * checked before libfido2 reads it. */
static bool authdata_fits(const unsigned char *ad, size_t n) {
    if (n <= AUTHDATA_MIN) return true;
    size_t at = AUTHDATA_MIN;
    if (ad[32] & FLAG_AT) { /* AAGUID (16), credential id length (2), the id */
        if (n - at < 18) return false;
        size_t id_len = (size_t)ad[at + 16] << 8 | ad[at + 17];
        at += 18;
        if (n - at < id_len) return false;
        at += id_len;
    }
    return cbor_fits(ad + at, n - at);
}

static qun_rc authdata_check(const unsigned char *ad, size_t n, json_t **problem, qun_err_t *err) {
    const char *field = "response.authenticatorData";
    if (n < AUTHDATA_MIN)
        return refuse(err, problem, "malformed", field, "the authenticator data is too short");
    if (!authdata_fits(ad, n))
        return refuse(err, problem, "malformed", field, "the authenticator data is not well-formed CBOR");
    unsigned char want[32];
    qun_sha256(want, qun_passkey_cfg.rp_id, strlen(qun_passkey_cfg.rp_id));
    if (!qun_ct_equal(want, ad, 32))
        return refuse(err, problem, "rp_id", field, "the passkey belongs to another relying party");
    if (!(ad[32] & FLAG_UP))
        return refuse(err, problem, "user_present", field, "the authenticator did not see the user present");
    if (!(ad[32] & FLAG_UV))
        return refuse(err, problem, "user_verified", field, "the authenticator did not verify the user");
    return QUN_OK;
}

static bool exists(qun_db_t *db, const char *sql, const char *types, int64_t uid, const char *s, qun_rc *rc,
                   qun_err_t *err) {
    qun_q_t *q;
    *rc = qun_db_run(db, &q, err, sql, types, uid, s);
    if (*rc == QUN_ROW) qun_q_done(q);
    bool yes = *rc == QUN_ROW;
    if (*rc == QUN_ROW || *rc == QUN_DONE) *rc = QUN_OK;
    return yes;
}

qun_rc qun_passkey_exists(qun_db_t *db, int64_t uid, const char *device_id, const char *other_than, bool *yes,
                          qun_err_t *err) {
    qun_rc rc;
    if (device_id)
        *yes = exists(db, "SELECT 1 FROM passkeys WHERE user_id = $1 AND device_id = $2 LIMIT 1", "is", uid,
                      device_id, &rc, err);
    else if (other_than)
        *yes = exists(db, "SELECT 1 FROM passkeys WHERE user_id = $1 AND device_id <> $2 LIMIT 1", "is", uid,
                      other_than, &rc, err);
    else
        *yes = exists(db, "SELECT 1 FROM passkeys WHERE user_id = $1 LIMIT 1", "i", uid, NULL, &rc, err);
    return rc;
}

json_t *qun_passkey_allow(qun_db_t *db, int64_t uid, qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    qun_rc rc = qun_db_run(db, &q, err, "SELECT credential_id FROM passkeys WHERE user_id = $1 ORDER BY id",
                           "i", uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        size_t n;
        const void *p = qun_q_col_blob(q, 0, &n);
        char *id = qun_b64url(p, n);
        json_array_append_new(items, json_pack("{s:s, s:s}", "type", "public-key", "id", id ? id : ""));
        free(id);
    }
    if (rc != QUN_DONE) {
        json_decref(items);
        return NULL;
    }
    return items;
}

/* ---- registration ---- */

qun_rc qun_passkey_options(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    unsigned char raw[32], uh[32];
    char hash[65];
    qun_random(raw, sizeof raw);
    qun_sha256_hex(hash, raw, sizeof raw);
    int64_t now = qun_now(), expires = now + qun_passkey_cfg.options_ttl;
    /* Old ceremonies of this user are of no use: keep the table small. */
    qun_rc rc =
        qun_db_run(db, NULL, err, "DELETE FROM passkey_options WHERE user_id = $1 AND expires_at < $2", "ii",
                   a->uid, now);
    if (rc == QUN_DONE)
        rc = qun_db_run(
            db, NULL, err,
            "INSERT INTO passkey_options(challenge_hash, user_id, session_id, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            "siiii", hash, a->uid, a->session_id, now, expires);
    if (rc != QUN_DONE) return rc;
    json_t *exclude = qun_passkey_allow(db, a->uid, err);
    if (!exclude) return QUN_INTERNAL;
    /* The user handle is opaque: a digest of the public id, never a name. */
    char seed[QUN_ID_MAX + 16];
    snprintf(seed, sizeof seed, "qun-user:%s", a->openid);
    qun_sha256(uh, seed, strlen(seed));
    char *ch = qun_b64url(raw, sizeof raw), *uid = qun_b64url(uh, sizeof uh);
    *out = ch && uid
               ? json_pack("{s:{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:[{s:s, s:i}], s:o, s:I, s:s, "
                           "s:{s:s, s:s}}, s:I}",
                           "publicKey", "challenge", ch, "rp", "id", qun_passkey_cfg.rp_id, "name",
                           qun_passkey_cfg.rp_name, "user", "id", uid, "name", a->username, "displayName",
                           a->username, "pubKeyCredParams", "type", "public-key", "alg", COSE_ES256,
                           "excludeCredentials", exclude, "timeout", (json_int_t)qun_passkey_cfg.timeout_ms,
                           "attestation", "none", "authenticatorSelection", "userVerification", "required",
                           "residentKey", "preferred", "expires_at", (json_int_t)expires)
               : NULL;
    if (!ch || !uid || !*out) json_decref(exclude);
    free(ch);
    free(uid);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

/* Use up the registration challenge ch of the actor's session (P1). */
static qun_rc options_consume(qun_db_t *db, const qun_actor_t *a, const unsigned char ch[32],
                              json_t **problem, qun_err_t *err) {
    char hash[65];
    qun_sha256_hex(hash, ch, 32);
    qun_rc rc =
        qun_db_run(db, NULL, err,
                   "UPDATE passkey_options SET used_at = $4 WHERE challenge_hash = $1 AND user_id = $2 "
                   "AND session_id = $3 AND used_at IS NULL AND expires_at > $4",
                   "siii", hash, a->uid, a->session_id, qun_now());
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) != 1)
        return refuse(err, problem, "challenge", "response.clientDataJSON",
                      "the challenge is unknown, expired, already used or was issued to another session: "
                      "ask for new options");
    return QUN_OK;
}

/* The attestation object's three members, borrowed from item. */
typedef struct {
    cbor_item_t *item;
    const unsigned char *auth_data;
    size_t auth_len;
    bool fmt_none, stmt_empty;
} attobj_t;

static bool key_is(cbor_item_t *k, const char *name) {
    size_t n = strlen(name);
    return cbor_isa_string(k) && cbor_string_is_definite(k) && cbor_string_length(k) == n &&
           memcmp(cbor_string_handle(k), name, n) == 0;
}

static qun_rc attobj_read(const blob_t *b, attobj_t *o, json_t **problem, qun_err_t *err) {
    const char *field = "response.attestationObject";
    struct cbor_load_result res;
    memset(o, 0, sizeof *o);
    if (!cbor_fits(b->p, b->n))
        return refuse(err, problem, "malformed", field, "attestationObject must be one CBOR map");
    o->item = cbor_load(b->p, b->n, &res);
    if (!o->item || res.error.code != CBOR_ERR_NONE || res.read != b->n || !cbor_isa_map(o->item) ||
        !cbor_map_is_definite(o->item))
        return refuse(err, problem, "malformed", field, "attestationObject must be one CBOR map");
    struct cbor_pair *pairs = cbor_map_handle(o->item);
    bool seen_fmt = false, seen_stmt = false, seen_ad = false;
    for (size_t i = 0; i < cbor_map_size(o->item); i++) {
        cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
        if (key_is(k, "fmt") && !seen_fmt) {
            seen_fmt = true;
            if (!cbor_isa_string(v) || !cbor_string_is_definite(v)) break;
            o->fmt_none = cbor_string_length(v) == 4 && memcmp(cbor_string_handle(v), "none", 4) == 0;
        } else if (key_is(k, "attStmt") && !seen_stmt) {
            seen_stmt = true;
            if (!cbor_isa_map(v)) break;
            o->stmt_empty = cbor_map_size(v) == 0;
        } else if (key_is(k, "authData") && !seen_ad) {
            seen_ad = true;
            if (!cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v)) break;
            o->auth_data = cbor_bytestring_handle(v);
            o->auth_len = cbor_bytestring_length(v);
        } else {
            seen_ad = false; /* an unknown or repeated member: refused below */
            break;
        }
    }
    if (!seen_fmt || !seen_stmt || !seen_ad || !o->auth_data)
        return refuse(err, problem, "malformed", field,
                      "attestationObject must hold fmt (text), attStmt (map) and authData (bytes) once each");
    if (!o->fmt_none || !o->stmt_empty)
        return refuse(err, problem, "attestation", field, "only attestation \"none\" is accepted");
    if (!authdata_fits(o->auth_data, o->auth_len)) /* before libfido2 reads it */
        return refuse(err, problem, "malformed", field, "the authenticator data is not well-formed CBOR");
    return QUN_OK;
}

/* Vouching, as for a device key (core/verify.c): a device without a key of its own on
 * an account whose other devices hold keys needs one of them to approve. */
static qun_rc passkey_vouched(qun_db_t *db, const qun_actor_t *a, const char *cred_b64,
                              const char *challenge_id, json_t **problem, qun_err_t *err) {
    bool own, others;
    qun_rc rc = qun_device_has_key(db, a->uid, a->device_id, NULL, &own, err);
    if (rc == QUN_OK) rc = qun_device_has_key(db, a->uid, NULL, a->device_id, &others, err);
    if (rc != QUN_OK || own || !others) return rc;
    char digest[65];
    json_t *params = json_pack("{s:s}", "credential_id", cred_b64);
    if (!params) return qun_fail(err, QUN_NOMEM, "out of memory");
    qun_json_digest(params, digest);
    json_decref(params);
    qun_verify_proof_t p = {
        .action = QUN_ACTION_REGISTER_PASSKEY, .params_digest = digest, .challenges = {challenge_id, NULL}};
    qun_verify_need_t need = {.all = QUN_VM_QR};
    json_decref(*problem);
    *problem = NULL;
    rc = qun_verify_check(db, a, need, &p, problem, err);
    if (rc == QUN_QR_REQUIRED)
        qun_fail(err, rc,
                 "your account already has a key on another device: approve this passkey from that device "
                 "(a qr challenge for action %s and this params_digest), then send its id as challenge_id",
                 QUN_ACTION_REGISTER_PASSKEY);
    return rc;
}

static json_t *passkey_json(const char *pkid, const unsigned char *cid, size_t cid_n, const char *label,
                            const char *device_id, const qun_actor_t *a, int64_t created, int64_t last_used,
                            int64_t count) {
    char *id = qun_b64url(cid, cid_n);
    json_t *o =
        id ? json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:o, s:I}", "id", pkid, "credential_id", id, "label",
                       label, "device_id", device_id, "current", strcmp(device_id, a->device_id) == 0,
                       "created_at", (json_int_t)created, "last_used_at",
                       last_used ? json_integer(last_used) : json_null(), "sign_count", (json_int_t)count)
           : NULL;
    free(id);
    return o;
}

qun_rc qun_passkey_register(qun_db_t *db, const qun_actor_t *a, json_t *cred, const char *label,
                            const char *challenge_id, json_t **out, json_t **problem, qun_err_t *err) {
    cred_t c;
    blob_t att = {0};
    attobj_t ao = {0};
    fido_cred_t *fc = NULL;
    char *cred_b64 = NULL;
    unsigned char ch[32];
    qun_rc rc = cred_read(cred, &c, problem, err);
    if (rc != QUN_OK) return rc;
    rc = get_b64(c.response, "attestationObject", "response.attestationObject", BLOB_MAX, &att, problem, err);
    if (rc == QUN_OK) rc = client_data_check(&c.client_data, "webauthn.create", ch, problem, err);
    if (rc == QUN_OK) rc = attobj_read(&att, &ao, problem, err);
    if (rc != QUN_OK) goto out;
    /* libfido2 reads the authenticator data: flags, counter and the attested
     * credential's id and COSE key, which must be an ES256 key. */
    if (!(fc = fido_cred_new())) {
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
        goto out;
    }
    if (fido_cred_set_type(fc, COSE_ES256) != FIDO_OK ||
        fido_cred_set_authdata_raw(fc, ao.auth_data, ao.auth_len) != FIDO_OK) {
        rc = refuse(err, problem, "algorithm", "response.attestationObject",
                    "the authenticator data must hold an ES256 (P-256) credential");
        goto out;
    }
    if ((rc = authdata_check(ao.auth_data, ao.auth_len, problem, err)) != QUN_OK) goto out;
    if (fido_cred_id_len(fc) != c.raw_id.n || memcmp(fido_cred_id_ptr(fc), c.raw_id.p, c.raw_id.n) != 0) {
        rc = refuse(err, problem, "malformed", "rawId", "rawId is not the id of the attested credential");
        goto out;
    }
    /* A point off the curve would be stored and fail every later assertion. */
    es256_pk_t *pk = es256_pk_new();
    bool point_ok = pk && fido_cred_pubkey_len(fc) == 64 &&
                    es256_pk_from_ptr(pk, fido_cred_pubkey_ptr(fc), fido_cred_pubkey_len(fc)) == FIDO_OK;
    es256_pk_free(&pk);
    if (!point_ok) {
        rc = refuse(err, problem, "algorithm", "response.attestationObject",
                    "the credential is not a P-256 key");
        goto out;
    }
    if (!(cred_b64 = qun_b64url(c.raw_id.p, c.raw_id.n))) {
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = passkey_vouched(db, a, cred_b64, challenge_id, problem, err)) != QUN_OK) goto out;
    if ((rc = options_consume(db, a, ch, problem, err)) != QUN_OK) goto out;
    qun_q_t *q;
    rc = qun_q_prepare(db, "SELECT 1 FROM passkeys WHERE credential_id = $1", &q, err);
    if (rc != QUN_OK) goto out;
    qun_q_blob(q, 1, c.raw_id.p, c.raw_id.n);
    rc = qun_q_step(q, err);
    if (rc == QUN_ROW) {
        qun_q_done(q);
        rc = qun_fail_field(err, QUN_PASSKEY_EXISTS, "rawId", "this passkey is already registered");
        goto out;
    }
    if (rc != QUN_DONE) goto out;
    char pkid[QUN_ID_MAX];
    qun_id_new(pkid, "pk");
    int64_t now = qun_now(), count = fido_cred_sigcount(fc);
    if (!label) label = "";
    rc = qun_q_prepare(db,
                       "INSERT INTO passkeys(pkid, user_id, device_id, credential_id, cose_alg, public_key, "
                       "sign_count, label, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                       &q, err);
    if (rc != QUN_OK) goto out;
    qun_q_text(q, 1, pkid);
    qun_q_int(q, 2, a->uid);
    qun_q_text(q, 3, a->device_id);
    qun_q_blob(q, 4, c.raw_id.p, c.raw_id.n);
    qun_q_int(q, 5, COSE_ES256);
    qun_q_blob(q, 6, fido_cred_pubkey_ptr(fc), 64);
    qun_q_int(q, 7, count);
    qun_q_text(q, 8, label);
    qun_q_int(q, 9, now);
    rc = qun_q_step(q, err);
    if (rc != QUN_DONE) {
        rc = rc == QUN_ROW ? QUN_INTERNAL : rc;
        goto out;
    }
    /* The account's other devices learn of it: a key was added to what approves. */
    rc = qun_event_emit(db, "passkey.added", 0, a->uid,
                        json_pack("{s:s, s:s, s:s}", "id", pkid, "label", label, "device_id", a->device_id),
                        err);
    if (rc != QUN_OK) goto out;
    *out = passkey_json(pkid, c.raw_id.p, c.raw_id.n, label, a->device_id, a, now, 0, count);
    rc = *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
out:
    free(cred_b64);
    fido_cred_free(&fc);
    if (ao.item) cbor_decref(&ao.item);
    blob_free(&att);
    cred_free(&c);
    return rc;
}

qun_rc qun_passkey_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT pkid, credential_id, label, device_id, created_at, COALESCE(last_used_at, 0), "
                   "sign_count FROM passkeys WHERE user_id = $1 ORDER BY id",
                   "i", a->uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        size_t n;
        const unsigned char *cid = qun_q_col_blob(q, 1, &n);
        json_array_append_new(items, passkey_json(qun_q_col_text(q, 0), cid, n, qun_q_col_text(q, 2),
                                                  qun_q_col_text(q, 3), a, qun_q_col_int(q, 4),
                                                  qun_q_col_int(q, 5), qun_q_col_int(q, 6)));
    }
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o}", "items", items);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_passkey_delete(qun_db_t *db, const qun_actor_t *a, const char *id, bool stepped_up,
                          qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT 1 FROM passkeys WHERE pkid = $1 AND user_id = $2", "si", id, a->uid);
    if (rc == QUN_ROW) qun_q_done(q);
    if (rc == QUN_DONE) return qun_fail(err, QUN_PASSKEY_NOT_FOUND, "you have no passkey %.40s", id);
    if (rc != QUN_ROW) return rc;
    if (!stepped_up)
        return qun_fail_field(err, QUN_STEP_UP_REQUIRED, "password",
                              "removing a passkey needs your password again");
    rc = qun_db_run(db, NULL, err, "DELETE FROM passkeys WHERE pkid = $1 AND user_id = $2", "si", id, a->uid);
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) != 1) return qun_fail(err, QUN_PASSKEY_NOT_FOUND, "you have no passkey %.40s", id);
    return qun_event_emit(db, "passkey.removed", 0, a->uid,
                          json_pack("{s:s, s:s}", "id", id, "device_id", a->device_id), err);
}

/* ---- assertion ---- */

qun_rc qun_passkey_assert(qun_db_t *db, const qun_actor_t *a, const unsigned char challenge[32], json_t *cred,
                          char *pkid, json_t **problem, qun_err_t *err) {
    cred_t c;
    blob_t ad = {0}, sig = {0};
    fido_assert_t *fa = NULL;
    es256_pk_t *pk = NULL;
    unsigned char got[32];
    qun_q_t *q = NULL;
    qun_rc rc = cred_read(cred, &c, problem, err);
    if (rc != QUN_OK) return rc;
    rc = get_b64(c.response, "authenticatorData", "response.authenticatorData", BLOB_MAX, &ad, problem, err);
    if (rc == QUN_OK) rc = get_b64(c.response, "signature", "response.signature", 256, &sig, problem, err);
    if (rc != QUN_OK) goto out;
    /* The credential first (P3): nothing about a stranger's passkey is checked. */
    rc = qun_q_prepare(db,
                       "SELECT id, pkid, public_key, sign_count FROM passkeys WHERE credential_id = $1 "
                       "AND user_id = $2",
                       &q, err);
    if (rc != QUN_OK) goto out;
    qun_q_blob(q, 1, c.raw_id.p, c.raw_id.n);
    qun_q_int(q, 2, a->uid);
    rc = qun_q_step(q, err);
    if (rc == QUN_DONE) {
        rc = qun_fail_field(err, QUN_PASSKEY_NOT_FOUND, "rawId", "you have no such passkey");
        goto out;
    }
    if (rc != QUN_ROW) goto out;
    int64_t row = qun_q_col_int(q, 0), stored = qun_q_col_int(q, 3);
    char id[QUN_ID_MAX];
    snprintf(id, sizeof id, "%s", qun_q_col_text(q, 1));
    size_t pk_n;
    const void *pk_p = qun_q_col_blob(q, 2, &pk_n);
    if (!(pk = es256_pk_new()) || es256_pk_from_ptr(pk, pk_p, pk_n) != FIDO_OK) {
        qun_q_done(q);
        rc = qun_fail(err, QUN_INTERNAL, "stored passkey %s has an unreadable key", id);
        goto out;
    }
    qun_q_done(q);
    if ((rc = client_data_check(&c.client_data, "webauthn.get", got, problem, err)) != QUN_OK) goto out;
    if (!qun_ct_equal(got, challenge, 32)) {
        rc = refuse(err, problem, "challenge", "response.clientDataJSON",
                    "the assertion answers another challenge");
        goto out;
    }
    if ((rc = authdata_check(ad.p, ad.n, problem, err)) != QUN_OK) goto out;
    if (!(fa = fido_assert_new())) {
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
        goto out;
    }
    /* libfido2 hashes the client data itself and checks the RP id hash, the flags and
     * the signature over authenticatorData || SHA-256(clientDataJSON). */
    if (fido_assert_set_count(fa, 1) != FIDO_OK || fido_assert_set_rp(fa, qun_passkey_cfg.rp_id) != FIDO_OK ||
        fido_assert_set_clientdata(fa, c.client_data.p, c.client_data.n) != FIDO_OK ||
        fido_assert_set_up(fa, FIDO_OPT_TRUE) != FIDO_OK ||
        fido_assert_set_uv(fa, FIDO_OPT_TRUE) != FIDO_OK) {
        rc = qun_fail(err, QUN_NOMEM, "cannot prepare the assertion check");
        goto out;
    }
    if (fido_assert_set_authdata_raw(fa, 0, ad.p, ad.n) != FIDO_OK) {
        rc = refuse(err, problem, "malformed", "response.authenticatorData",
                    "the authenticator data cannot be read");
        goto out;
    }
    if (fido_assert_set_sig(fa, 0, sig.p, sig.n) != FIDO_OK ||
        fido_assert_verify(fa, 0, COSE_ES256, pk) != FIDO_OK) {
        rc = refuse(err, problem, "signature", "response.signature",
                    "the signature is not this passkey's over this assertion");
        goto out;
    }
    /* A counter that does not grow betrays a cloned authenticator (P2). */
    int64_t count = fido_assert_sigcount(fa, 0);
    if ((count || stored) && count <= stored) {
        rc = refuse(err, problem, "sign_count", "response.authenticatorData",
                    "the authenticator's counter did not grow: it may be a copy");
        goto out;
    }
    rc =
        qun_db_run(db, NULL, err,
                   "UPDATE passkeys SET sign_count = $2, last_used_at = $3 WHERE id = $1 AND sign_count = $4",
                   "iiii", row, count, qun_now(), stored);
    if (rc != QUN_DONE) goto out;
    if (qun_db_changes(db) != 1) {
        rc = refuse(err, problem, "sign_count", "response.authenticatorData",
                    "the passkey was used meanwhile");
        goto out;
    }
    if (pkid) snprintf(pkid, QUN_ID_MAX, "%s", id);
    rc = QUN_OK;
out:
    es256_pk_free(&pk);
    fido_assert_free(&fa);
    blob_free(&ad);
    blob_free(&sig);
    cred_free(&c);
    return rc;
}
