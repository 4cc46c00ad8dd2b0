/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/passkey.c (and the passkey paths of src/core/verify.c) on an
 * in-memory store.  The test is its own authenticator: P-256 keys and ECDSA signatures
 * from OpenSSL, attestation objects written byte by byte in CBOR.  Registration and
 * its refusals, assertions approving device_key and qr challenges, single use, the
 * sign counter, and the reasons every refusal names. */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "qun/passkey.h"
#include "qun/verify.h"
#include "unit.h"
#include "unit_core.h"

static qun_db_t *db;

#define UP 0x01
#define UV 0x04
#define AT 0x40

static int64_t new_user(const char *name) {
    return unit_user_id(db, name);
}

static void login(int64_t uid, const char *device, const char *platform, qun_actor_t *a) {
    json_t *out;
    qun_err_t err;
    char token[40], hash[65];
    qun_id_new(token, "t");
    qun_sha256_hex(hash, token, strlen(token));
    CHECK(qun_session_create(db, uid, hash, device, platform, NULL, hash, "192.0.2.1", &out, &err) == QUN_OK);
    json_decref(out);
    memset(a, 0, sizeof *a);
    CHECK(qun_session_auth(db, hash, a, &err) == QUN_OK);
}

/* ---- the test's authenticator ---- */

typedef struct {
    EVP_PKEY *key;
    unsigned char x[32], y[32], cred[16];
    uint32_t count;
} authn_t;

static void authn_new(authn_t *k) {
    memset(k, 0, sizeof *k);
    k->key = EVP_EC_gen("P-256");
    CHECK(k->key != NULL);
    BIGNUM *x = NULL, *y = NULL;
    CHECK(EVP_PKEY_get_bn_param(k->key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1);
    CHECK(EVP_PKEY_get_bn_param(k->key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1);
    BN_bn2binpad(x, k->x, 32);
    BN_bn2binpad(y, k->y, 32);
    BN_free(x);
    BN_free(y);
    randombytes_buf(k->cred, sizeof k->cred);
}

static void authn_free(authn_t *k) {
    EVP_PKEY_free(k->key);
}

typedef struct {
    unsigned char b[1024];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n) {
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

/* A CBOR head (RFC 8949 section 3) for lengths and small integers. */
static void head(buf_t *b, int major, uint64_t n) {
    unsigned char h[3];
    if (n < 24) {
        h[0] = (unsigned char)(major << 5 | n);
        put(b, h, 1);
    } else if (n < 256) {
        h[0] = (unsigned char)(major << 5 | 24), h[1] = (unsigned char)n;
        put(b, h, 2);
    } else {
        h[0] = (unsigned char)(major << 5 | 25), h[1] = (unsigned char)(n >> 8), h[2] = (unsigned char)n;
        put(b, h, 3);
    }
}

static void text(buf_t *b, const char *s) {
    head(b, 3, strlen(s));
    put(b, s, strlen(s));
}

static void bytes(buf_t *b, const void *p, size_t n) {
    head(b, 2, n);
    put(b, p, n);
}

static void authdata(buf_t *b, const char *rp_id, unsigned flags, uint32_t count) {
    unsigned char h[32], c[4] = {(unsigned char)(count >> 24), (unsigned char)(count >> 16),
                                 (unsigned char)(count >> 8), (unsigned char)count};
    qun_sha256(h, rp_id, strlen(rp_id));
    put(b, h, 32);
    unsigned char f = (unsigned char)flags;
    put(b, &f, 1);
    put(b, c, 4);
}

static char *b64u(const void *p, size_t n) {
    return qun_b64url(p, n);
}

static json_t *credential(const authn_t *k, json_t *response) {
    char *id = b64u(k->cred, sizeof k->cred);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o}", "id", id, "rawId", id, "type", "public-key", "response", response);
    free(id);
    return o;
}

static char *client_data(const char *type, const char *challenge, const char *origin, size_t *n) {
    char *s = NULL;
    CHECK(asprintf(&s, "{\"type\":\"%s\",\"challenge\":\"%s\",\"origin\":\"%s\",\"crossOrigin\":false}", type,
                   challenge, origin) > 0);
    *n = strlen(s);
    return s;
}

typedef struct {
    const char *origin, *rp_id, *type, *fmt;
    unsigned flags;
    int alg; /* -7, or -8 for an Ed25519 key libfido2 must refuse as ES256 */
} reg_opts_t;

static const reg_opts_t REG_OK = {
    "http://localhost:8080", "localhost", "webauthn.create", "none", UP | UV | AT, -7};

static json_t *registration(const authn_t *k, const char *challenge, reg_opts_t o) {
    buf_t ad = {0}, att = {0};
    authdata(&ad, o.rp_id, o.flags, k->count);
    unsigned char aaguid[16] = {0}, len[2] = {0, sizeof k->cred};
    put(&ad, aaguid, 16);
    put(&ad, len, 2);
    put(&ad, k->cred, sizeof k->cred);
    if (o.alg == -7) { /* {1: 2, 3: -7, -1: 1, -2: x, -3: y} */
        head(&ad, 5, 5);
        head(&ad, 0, 1), head(&ad, 0, 2), head(&ad, 0, 3), head(&ad, 1, 6), head(&ad, 1, 0), head(&ad, 0, 1);
        head(&ad, 1, 1), bytes(&ad, k->x, 32), head(&ad, 1, 2), bytes(&ad, k->y, 32);
    } else { /* {1: 1, 3: -8, -1: 6, -2: x} */
        head(&ad, 5, 4);
        head(&ad, 0, 1), head(&ad, 0, 1), head(&ad, 0, 3), head(&ad, 1, 7), head(&ad, 1, 0), head(&ad, 0, 6);
        head(&ad, 1, 1), bytes(&ad, k->x, 32);
    }
    head(&att, 5, 3);
    text(&att, "fmt"), text(&att, o.fmt);
    text(&att, "attStmt"), head(&att, 5, 0);
    text(&att, "authData"), bytes(&att, ad.b, ad.n);
    size_t cn;
    char *cd = client_data(o.type, challenge, o.origin, &cn);
    char *cd64 = b64u(cd, cn), *att64 = b64u(att.b, att.n);
    json_t *r = json_pack("{s:s, s:s}", "clientDataJSON", cd64, "attestationObject", att64);
    free(cd), free(cd64), free(att64);
    return credential(k, r);
}

static json_t *assertion(authn_t *k, const unsigned char challenge[32], uint32_t count, unsigned flags,
                         const char *origin, EVP_PKEY *signer) {
    buf_t ad = {0};
    authdata(&ad, "localhost", flags, count);
    char *ch = b64u(challenge, 32);
    size_t cn;
    char *cd = client_data("webauthn.get", ch, origin, &cn);
    unsigned char msg[1024], sig[128];
    memcpy(msg, ad.b, ad.n);
    qun_sha256(msg + ad.n, cd, cn);
    size_t sn = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, signer ? signer : k->key) == 1);
    CHECK(EVP_DigestSign(ctx, sig, &sn, msg, ad.n + 32) == 1);
    EVP_MD_CTX_free(ctx);
    char *cd64 = b64u(cd, cn), *ad64 = b64u(ad.b, ad.n), *sig64 = b64u(sig, sn);
    json_t *r =
        json_pack("{s:s, s:s, s:s}", "clientDataJSON", cd64, "authenticatorData", ad64, "signature", sig64);
    free(ch), free(cd), free(cd64), free(ad64), free(sig64);
    return credential(k, r);
}

/* Options for a, and the registration of k under them with o. */
static qun_rc do_register(const qun_actor_t *a, const authn_t *k, reg_opts_t o, const char **reason) {
    json_t *opt = NULL, *out = NULL, *problem = NULL;
    qun_err_t err;
    CHECK(qun_passkey_options(db, a, &opt, &err) == QUN_OK);
    const char *ch = json_string_value(json_object_get(json_object_get(opt, "publicKey"), "challenge"));
    json_t *cred = registration(k, ch, o);
    qun_rc rc = qun_passkey_register(db, a, cred, "unit", NULL, &out, &problem, &err);
    static char why[32];
    snprintf(why, sizeof why, "%s", problem ? json_string_value(json_object_get(problem, "reason")) : "");
    if (reason) *reason = why;
    json_decref(opt), json_decref(out), json_decref(problem), json_decref(cred);
    return rc;
}

static void webauthn_challenge(json_t *ch, unsigned char out[32]) {
    size_t len;
    char *msg = qun_challenge_message(
        json_string_value(json_object_get(ch, "id")), json_string_value(json_object_get(ch, "nonce")),
        json_string_value(json_object_get(ch, "action")), json_string_value(json_object_get(ch, "group")),
        json_string_value(json_object_get(ch, "params_digest")), &len);
    qun_sha256(out, msg, len);
    free(msg);
}

/* Approve ch by a passkey assertion; *reason receives a refusal's reason. */
static qun_rc do_approve(const qun_actor_t *a, json_t *ch, json_t *cred, const char **reason) {
    json_t *out = NULL, *problem = NULL;
    qun_err_t err;
    qun_rc rc = qun_challenge_approve_passkey(db, a, json_string_value(json_object_get(ch, "id")), cred, &out,
                                              &problem, &err);
    static char why[32];
    snprintf(why, sizeof why, "%s", problem ? json_string_value(json_object_get(problem, "reason")) : "");
    if (reason) *reason = why;
    json_decref(out), json_decref(problem), json_decref(cred);
    return rc;
}

static int64_t events_of(int64_t uid, const char *topic) {
    qun_q_t *q;
    qun_err_t err;
    int64_t n = -1;
    if (qun_db_run(db, &q, &err, "SELECT count(*) FROM events WHERE user_id = $1 AND topic = $2", "is", uid,
                   topic) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

static void test_registration(void) {
    qun_actor_t a, b;
    login(new_user("pk_reg"), "pk-reg-phone", "ios", &a);
    login(new_user("pk_reg2"), "pk-reg2-phone", "ios", &b);
    authn_t k;
    authn_new(&k);
    const char *why;
    static const struct {
        const char *name, *reason;
        reg_opts_t o;
    } bad[] = {
        {"origin",
         "origin",
         {"http://evil.example", "localhost", "webauthn.create", "none", UP | UV | AT, -7}},
        {"port",
         "origin",
         {"http://localhost:8081", "localhost", "webauthn.create", "none", UP | UV | AT, -7}},
        {"rp",
         "rp_id",
         {"http://localhost:8080", "evil.example", "webauthn.create", "none", UP | UV | AT, -7}},
        {"type", "type", {"http://localhost:8080", "localhost", "webauthn.get", "none", UP | UV | AT, -7}},
        {"uv",
         "user_verified",
         {"http://localhost:8080", "localhost", "webauthn.create", "none", UP | AT, -7}},
        {"up",
         "user_present",
         {"http://localhost:8080", "localhost", "webauthn.create", "none", UV | AT, -7}},
        {"fmt",
         "attestation",
         {"http://localhost:8080", "localhost", "webauthn.create", "packed", UP | UV | AT, -7}},
        {"eddsa",
         "algorithm",
         {"http://localhost:8080", "localhost", "webauthn.create", "none", UP | UV | AT, -8}},
    };
    for (size_t i = 0; i < NROWS(bad); i++) {
        CHECKF(do_register(&a, &k, bad[i].o, &why) == QUN_PASSKEY_INVALID, bad[i].name);
        CHECKF(strcmp(why, bad[i].reason) == 0, bad[i].name);
    }
    bool yes = true;
    qun_err_t err;
    CHECK(qun_passkey_exists(db, a.uid, NULL, NULL, &yes, &err) == QUN_OK && !yes);
    CHECK(do_register(&a, &k, REG_OK, &why) == QUN_OK);
    CHECK(qun_passkey_exists(db, a.uid, a.device_id, NULL, &yes, &err) == QUN_OK && yes);
    CHECK(qun_device_has_key(db, a.uid, a.device_id, NULL, &yes, &err) == QUN_OK && yes);
    CHECK(qun_device_has_key(db, a.uid, NULL, a.device_id, &yes, &err) == QUN_OK && !yes);
    /* The same credential again, by its user or another. */
    CHECK(do_register(&a, &k, REG_OK, &why) == QUN_PASSKEY_EXISTS);
    CHECK(do_register(&b, &k, REG_OK, &why) == QUN_PASSKEY_EXISTS);
    /* Options used once; another session's options are not this one's. */
    json_t *opt, *out = NULL, *problem = NULL;
    CHECK(qun_passkey_options(db, &b, &opt, &err) == QUN_OK);
    authn_t k2;
    authn_new(&k2);
    json_t *cred = registration(
        &k2, json_string_value(json_object_get(json_object_get(opt, "publicKey"), "challenge")), REG_OK);
    CHECK(qun_passkey_register(db, &a, cred, NULL, NULL, &out, &problem, &err) == QUN_PASSKEY_INVALID);
    CHECK_STR(json_string_value(json_object_get(problem, "reason")), "challenge");
    json_decref(problem), problem = NULL;
    CHECK(qun_passkey_register(db, &b, cred, NULL, NULL, &out, &problem, &err) == QUN_OK);
    json_decref(out), out = NULL;
    CHECK(qun_passkey_register(db, &b, cred, NULL, NULL, &out, &problem, &err) == QUN_PASSKEY_INVALID);
    json_decref(problem), json_decref(opt), json_decref(cred);
    /* The list, and removal only of one's own. */
    CHECK(qun_passkey_list(db, &a, &out, &err) == QUN_OK);
    json_t *items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 1);
    const char *pkid = json_string_value(json_object_get(json_array_get(items, 0), "id"));
    CHECK(qun_passkey_delete(db, &b, pkid, true, &err) == QUN_PASSKEY_NOT_FOUND);
    /* Without the password again, the passkey stays. */
    CHECK(qun_passkey_delete(db, &a, pkid, false, &err) == QUN_STEP_UP_REQUIRED);
    CHECK(qun_passkey_delete(db, &a, pkid, true, &err) == QUN_OK);
    CHECK(qun_passkey_delete(db, &a, pkid, true, &err) == QUN_PASSKEY_NOT_FOUND);
    json_decref(out);
    /* Each registration and removal told its user's devices, once. */
    CHECK(events_of(a.uid, "passkey.added") == 1 && events_of(a.uid, "passkey.removed") == 1);
    CHECK(events_of(b.uid, "passkey.added") == 1 && events_of(b.uid, "passkey.removed") == 0);
    authn_free(&k), authn_free(&k2);
}

static void test_assertion(void) {
    qun_actor_t a, m;
    qun_err_t err;
    login(new_user("pk_as"), "pk-as-phone", "ios", &a);
    login(new_user("pk_mal"), "pk-mal-phone", "ios", &m);
    authn_t k, mk, stranger;
    authn_new(&k), authn_new(&mk), authn_new(&stranger);
    k.count = 5;
    CHECK(do_register(&a, &k, REG_OK, NULL) == QUN_OK);
    CHECK(do_register(&m, &mk, REG_OK, NULL) == QUN_OK);
    json_t *ch;
    char digest[65];
    memset(digest, 'a', 64), digest[64] = '\0';
    CHECK(qun_challenge_create(db, &a, "device_key", "dissolve", "g_x", digest, &ch, &err) == QUN_OK);
    unsigned char wc[32], other[32];
    webauthn_challenge(ch, wc);
    memcpy(other, wc, 32), other[0] ^= 1;
    const char *origin = "http://localhost:8080", *why;
    json_t *opts;
    CHECK(qun_challenge_passkey_options(db, &a, json_string_value(json_object_get(ch, "id")), &opts, &err) ==
          QUN_OK);
    char *want = b64u(wc, 32);
    CHECK_STR(json_string_value(json_object_get(json_object_get(opts, "publicKey"), "challenge")), want);
    free(want), json_decref(opts);
    CHECK(do_approve(&a, ch, assertion(&k, other, 6, UP | UV, origin, NULL), &why) == QUN_PASSKEY_INVALID);
    CHECK_STR(why, "challenge");
    CHECK(do_approve(&a, ch, assertion(&k, wc, 6, UP | UV, "https://evil.example", NULL), &why) ==
          QUN_PASSKEY_INVALID);
    CHECK_STR(why, "origin");
    CHECK(do_approve(&a, ch, assertion(&k, wc, 6, UP, origin, NULL), &why) == QUN_PASSKEY_INVALID);
    CHECK_STR(why, "user_verified");
    CHECK(do_approve(&a, ch, assertion(&k, wc, 6, UV, origin, NULL), &why) == QUN_PASSKEY_INVALID);
    CHECK_STR(why, "user_present");
    CHECK(do_approve(&a, ch, assertion(&k, wc, 6, UP | UV, origin, stranger.key), &why) ==
          QUN_PASSKEY_INVALID);
    CHECK_STR(why, "signature");
    CHECK(do_approve(&a, ch, assertion(&k, wc, 5, UP | UV, origin, NULL), &why) == QUN_PASSKEY_INVALID);
    CHECK_STR(why, "sign_count");
    CHECK(do_approve(&a, ch, assertion(&k, wc, 4, UP | UV, origin, NULL), &why) == QUN_PASSKEY_INVALID);
    CHECK_STR(why, "sign_count");
    CHECK(do_approve(&a, ch, assertion(&mk, wc, 1, UP | UV, origin, NULL), &why) == QUN_PASSKEY_NOT_FOUND);
    CHECK(do_approve(&a, ch, assertion(&stranger, wc, 1, UP | UV, origin, NULL), &why) ==
          QUN_PASSKEY_NOT_FOUND);
    /* The right answer, once. */
    json_t *good = assertion(&k, wc, 6, UP | UV, origin, NULL);
    json_incref(good);
    CHECK(do_approve(&a, ch, good, &why) == QUN_OK);
    CHECK(do_approve(&a, ch, good, &why) == QUN_CHALLENGE_ALREADY_APPROVED);
    const char *method = NULL;
    CHECK(qun_challenge_consume(db, &a, json_string_value(json_object_get(ch, "id")), "dissolve", "g_x",
                                digest, &method, &err) == QUN_OK);
    CHECK(method && strcmp(method, "device_key") == 0);
    json_decref(ch);
    /* The stored counter is now 6. */
    json_t *list;
    CHECK(qun_passkey_list(db, &a, &list, &err) == QUN_OK);
    CHECK(json_integer_value(
              json_object_get(json_array_get(json_object_get(list, "items"), 0), "sign_count")) == 6);
    json_decref(list);
    /* A qr challenge is approved from another device only. */
    qun_actor_t desk;
    login(a.uid, "pk-as-desk", "web", &desk);
    CHECK(qun_challenge_create(db, &desk, "qr", "dissolve", "g_x", NULL, &ch, &err) == QUN_OK);
    webauthn_challenge(ch, wc);
    CHECK(do_approve(&desk, ch, assertion(&k, wc, 7, UP | UV, origin, NULL), &why) == QUN_QR_SAME_DEVICE);
    CHECK(do_approve(&a, ch, assertion(&k, wc, 7, UP | UV, origin, NULL), &why) == QUN_OK);
    CHECK(qun_challenge_consume(db, &desk, json_string_value(json_object_get(ch, "id")), "dissolve", "g_x",
                                NULL, &method, &err) == QUN_OK);
    CHECK(method && strcmp(method, "qr") == 0);
    json_decref(ch);
    authn_free(&k), authn_free(&mk), authn_free(&stranger);
}

static void test_malformed(void) {
    qun_actor_t a;
    qun_err_t err;
    login(new_user("pk_bad"), "pk-bad-phone", "ios", &a);
    unsigned char ch[32] = {0};
    static const char *bodies[] = {
        "null",
        "{}",
        "{\"rawId\": \"AAAA\"}",
        "{\"rawId\": \"AAAA\", \"response\": 1}",
        "{\"rawId\": \"!!\", \"response\": {}}",
        "{\"rawId\": \"AAAA\", \"id\": \"AAAB\", \"response\": {}}",
        "{\"rawId\": \"AAAA\", \"type\": \"x\", \"response\": {}}",
        "{\"rawId\": \"AAAA\", \"response\": {\"clientDataJSON\": \"e30\"}}",
        "{\"rawId\": \"AAAA\", \"response\": {\"clientDataJSON\": \"e30=\", \"attestationObject\": \"oA\"}}",
        "{\"rawId\": \"AAAA\", \"response\": {\"clientDataJSON\": \"e30==\", \"attestationObject\": \"oA\"}}",
        "{\"rawId\": \"AAAA\", \"response\": {\"clientDataJSON\": \"W10\", \"attestationObject\": \"/w\"}}",
    };
    for (size_t i = 0; i < NROWS(bodies); i++) {
        json_t *cred = json_loads(bodies[i], JSON_DECODE_ANY, NULL), *out = NULL, *problem = NULL;
        qun_rc rc = qun_passkey_register(db, &a, cred, NULL, NULL, &out, &problem, &err);
        CHECKF(rc == QUN_PASSKEY_INVALID, bodies[i]);
        CHECKF(qun_rc_status(rc) / 100 == 4, bodies[i]);
        json_decref(problem), problem = NULL;
        rc = qun_passkey_assert(db, &a, ch, cred, NULL, &problem, &err);
        CHECKF(qun_rc_status(rc) / 100 == 4, bodies[i]);
        json_decref(problem), json_decref(out), json_decref(cred);
    }
}

/* CBOR that declares more than it holds is refused before libcbor or libfido2 reads it:
 * both allocate what a header declares first (a mutation in test_mutations once asked
 * for 24 GB).  In the attestation object itself, and in its authenticator data's COSE
 * key, which libfido2 parses. */
static void test_declared_lengths(void) {
    qun_actor_t a;
    qun_err_t err;
    login(new_user("pk_len"), "pk-len-phone", "ios", &a);
    authn_t k;
    authn_new(&k);
    /* {"fmt": [2^32 items]}; a byte string of 2^60 bytes; an indefinite map. */
    static const unsigned char arr[] = {0xa1, 0x63, 'f', 'm', 't', 0x9b, 0, 0, 0, 1, 0, 0, 0, 0};
    static const unsigned char str[] = {0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char indef[] = {0xbf, 0xff};
    /* fmt "none", attStmt {}, authData whose COSE key is a map of 2^32 pairs. */
    unsigned char ao[160], ad[80];
    unsigned char h[32];
    qun_sha256(h, qun_passkey_cfg.rp_id, strlen(qun_passkey_cfg.rp_id));
    memcpy(ad, h, 32);
    ad[32] = 0x45; /* UP, UV, AT */
    memset(ad + 33, 0, 4 + 16);
    ad[53] = 0, ad[54] = 16;
    memset(ad + 55, 7, 16);
    static const unsigned char cose[] = {0xbb, 0, 0, 0, 1, 0, 0, 0, 0};
    memcpy(ad + 71, cose, sizeof cose);
    static const unsigned char ao_head[] = {0xa3, 0x63, 'f', 'm', 't', 0x64, 'n', 'o', 'n',  'e',
                                            0x67, 'a',  't', 't', 'S', 't',  'm', 't', 0xa0, 0x68,
                                            'a',  'u',  't', 'h', 'D', 'a',  't', 'a', 0x58, sizeof ad};
    memcpy(ao, ao_head, sizeof ao_head);
    memcpy(ao + sizeof ao_head, ad, sizeof ad);
    struct {
        const unsigned char *p;
        size_t n;
    } cases[] = {
        {arr, sizeof arr}, {str, sizeof str}, {indef, sizeof indef}, {ao, sizeof ao_head + sizeof ad}};
    for (size_t i = 0; i < NROWS(cases); i++) {
        json_t *opt, *out = NULL, *problem = NULL;
        CHECK(qun_passkey_options(db, &a, &opt, &err) == QUN_OK);
        json_t *cred = registration(
            &k, json_string_value(json_object_get(json_object_get(opt, "publicKey"), "challenge")), REG_OK);
        char *enc = b64u(cases[i].p, cases[i].n);
        json_object_set_new(json_object_get(cred, "response"), "attestationObject", json_string(enc));
        free(enc);
        qun_rc rc = qun_passkey_register(db, &a, cred, NULL, NULL, &out, &problem, &err);
        CHECKF(rc == QUN_PASSKEY_INVALID, err.msg);
        CHECK_STR(json_string_value(json_object_get(problem, "reason")), "malformed");
        json_decref(opt), json_decref(out), json_decref(problem), json_decref(cred);
    }
    authn_free(&k);
}

/* Replace the base64url member key of cred's response by its bytes mutated with r:
 * a bit flipped, the tail cut, or a byte replaced. */
static void mutate(json_t *cred, const char *key, unsigned r) {
    json_t *resp = json_object_get(cred, "response");
    const char *s = json_string_value(json_object_get(resp, key));
    unsigned char b[2048];
    size_t n = 0;
    CHECK(sodium_base642bin(b, sizeof b, s, strlen(s), NULL, &n, NULL,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
    if (!n) return;
    size_t pos = (r >> 4) % n;
    switch (r % 3) {
    case 0: b[pos] ^= (unsigned char)(1u << ((r >> 16) % 8)); break;
    case 1: n = pos; break;
    default: b[pos] = (unsigned char)(r >> 20); break;
    }
    char *enc = n ? b64u(b, n) : strdup("");
    json_object_set_new(resp, key, json_string(enc));
    free(enc);
}

/* Mutated ceremonies never crash and are never a server error. */
static void test_mutations(void) {
    qun_actor_t a;
    qun_err_t err;
    login(new_user("pk_mut"), "pk-mut-phone", "ios", &a);
    authn_t k;
    authn_new(&k);
    unsigned seed = 7;
    const char *why;
    /* A point off the curve is refused at registration, not at its first use. */
    k.x[31] ^= 1;
    CHECK(do_register(&a, &k, REG_OK, &why) == QUN_PASSKEY_INVALID);
    CHECK_STR(why, "algorithm");
    k.x[31] ^= 1;
    for (int i = 0; i < 400; i++) {
        json_t *opt, *out = NULL, *problem = NULL;
        CHECK(qun_passkey_options(db, &a, &opt, &err) == QUN_OK);
        json_t *cred = registration(
            &k, json_string_value(json_object_get(json_object_get(opt, "publicKey"), "challenge")), REG_OK);
        mutate(cred, i % 4 ? "attestationObject" : "clientDataJSON", (unsigned)rand_r(&seed));
        qun_rc rc = qun_passkey_register(db, &a, cred, NULL, NULL, &out, &problem, &err);
        CHECKF(rc == QUN_OK || qun_rc_status(rc) / 100 == 4, err.msg);
        if (rc == QUN_OK) randombytes_buf(k.cred, sizeof k.cred); /* a harmless byte: the next one is new */
        json_decref(opt), json_decref(out), json_decref(problem), json_decref(cred);
    }
    CHECK(do_register(&a, &k, REG_OK, NULL) == QUN_OK);
    json_t *ch;
    CHECK(qun_challenge_create(db, &a, "device_key", "dissolve", "g_m", NULL, &ch, &err) == QUN_OK);
    unsigned char wc[32];
    webauthn_challenge(ch, wc);
    static const char *keys[] = {"authenticatorData", "signature", "clientDataJSON"};
    for (int i = 0; i < 300; i++) {
        json_t *cred = assertion(&k, wc, 100, UP | UV, "http://localhost:8080", NULL), *problem = NULL;
        mutate(cred, keys[i % 3], (unsigned)rand_r(&seed));
        qun_rc rc = qun_passkey_assert(db, &a, wc, cred, NULL, &problem, &err);
        CHECKF(rc == QUN_OK || qun_rc_status(rc) / 100 == 4,
               err.msg); /* OK: a mutation that changed nothing */
        json_decref(problem), json_decref(cred);
    }
    json_decref(ch);
    authn_free(&k);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(test_registration);
    RUN(test_assertion);
    RUN(test_malformed);
    RUN(test_declared_lengths);
    RUN(test_mutations);
    qun_db_close(db);
    return unit_done("core/passkey");
}
