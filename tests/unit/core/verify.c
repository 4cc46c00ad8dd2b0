/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/verify.c on an in-memory store: device keys, challenge
 * binding, expiry, single approval and single use, Ed25519 signatures by keys made
 * here, the qr method's other-device rule, TOTP against the RFC 6238 test vectors and
 * with drift and replay, the platform policy and the QR renderers. */
#include <liboath/oath.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/verify.h"
#include "unit.h"
#include "unit_core.h"

static qun_db_t *db;

static int64_t new_user(const char *name) {
    return unit_user_id(db, name);
}

/* A logged-in actor of user uid on device, as the router would authenticate it. */
static void login(int64_t uid, const char *device, const char *platform, qun_actor_t *a) {
    json_t *out;
    qun_err_t err;
    char token[40], hash[65];
    qun_id_new(token, "t");
    qun_sha256_hex(hash, token, strlen(token));
    /* Each test device logs in once: a new device, enrolled with a secret of its own. */
    CHECK(qun_session_create(db, uid, hash, device, platform, NULL, hash, "192.0.2.1", &out, &err) == QUN_OK);
    CHECK(json_is_true(json_object_get(out, "new_device")));
    json_decref(out);
    memset(a, 0, sizeof *a);
    CHECK(qun_session_auth(db, hash, a, &err) == QUN_OK);
}

typedef struct {
    unsigned char pk[32], sk[64];
} keypair_t;

static void sign_challenge(const keypair_t *k, json_t *c, const char *nonce_override, unsigned char sig[64]) {
    size_t len;
    const char *group = json_string_value(json_object_get(c, "group"));
    const char *digest = json_string_value(json_object_get(c, "params_digest"));
    char *msg = qun_challenge_message(json_string_value(json_object_get(c, "id")),
                                      nonce_override ? nonce_override
                                                     : json_string_value(json_object_get(c, "nonce")),
                                      json_string_value(json_object_get(c, "action")), group, digest, &len);
    crypto_sign_detached(sig, NULL, (const unsigned char *)msg, len, k->sk);
    free(msg);
}

/* Register pk for a's device while the account already has a key: refused until a
 * qr challenge bound to the key is approved by approver (key k), then accepted. */
static void vouch(const qun_actor_t *a, const qun_actor_t *approver, const keypair_t *k,
                  const unsigned char pk[32]) {
    json_t *out = NULL, *problem = NULL, *c;
    qun_err_t err;
    unsigned char sig[64];
    CHECK(qun_device_key_register(db, a, pk, NULL, &out, &problem, &err) == QUN_QR_REQUIRED);
    CHECK_STR(json_string_value(json_object_get(problem, "action")), QUN_ACTION_REGISTER_KEY);
    CHECK(qun_challenge_create(db, a, "qr", QUN_ACTION_REGISTER_KEY, NULL,
                               json_string_value(json_object_get(problem, "params_digest")), &c,
                               &err) == QUN_OK);
    const char *cid = json_string_value(json_object_get(c, "id"));
    CHECK(qun_device_key_register(db, a, pk, cid, &out, NULL, &err) == QUN_CHALLENGE_NOT_APPROVED);
    sign_challenge(k, c, NULL, sig);
    CHECK(qun_challenge_approve(db, approver, cid, approver->device_id, sig, &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_device_key_register(db, a, pk, cid, &out, NULL, &err) == QUN_OK);
    json_decref(out);
    json_decref(problem);
    json_decref(c);
}

static const char *state_of(const qun_actor_t *a, const char *cid) {
    static char state[16];
    json_t *out;
    qun_err_t err;
    state[0] = '\0';
    if (qun_challenge_status(db, a, cid, &out, &err) == QUN_OK) {
        snprintf(state, sizeof state, "%s", json_string_value(json_object_get(out, "state")));
        json_decref(out);
    }
    return state;
}

static void test_message_format(void) {
    size_t len;
    char *m = qun_challenge_message("c_1", "bm9uY2U", "dissolve", NULL, "", &len);
    CHECK_STR(m, "qun-challenge:v1\nc_1\nbm9uY2U\ndissolve\n\n");
    CHECK(len == strlen(m));
    free(m);
    m = qun_challenge_message("c_2", "n", "dissolve", "g_x", "ab", &len);
    CHECK_STR(m, "qun-challenge:v1\nc_2\nn\ndissolve\ng_x\nab");
    free(m);
}

static void test_device_key_challenge(void) {
    qun_err_t err;
    json_t *out, *c;
    int64_t alice = new_user("alice"), bob = new_user("bob");
    qun_actor_t phone, desktop, bob_phone;
    login(alice, "alice-phone", "ios", &phone);
    login(alice, "alice-desktop", "windows", &desktop);
    login(bob, "bob-phone", "ios", &bob_phone);
    keypair_t kp, kd, kb;
    crypto_sign_keypair(kp.pk, kp.sk);
    crypto_sign_keypair(kd.pk, kd.sk);
    crypto_sign_keypair(kb.pk, kb.sk);

    /* No key yet: a device_key challenge cannot be asked for. */
    CHECK(qun_challenge_create(db, &phone, "device_key", "dissolve", "g_a", NULL, &out, &err) ==
          QUN_DEVICE_NOT_TRUSTED);
    CHECK(qun_device_key_register(db, &phone, kp.pk, NULL, &out, NULL, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_device_key_register(db, &phone, kp.pk, NULL, &out, NULL, &err) == QUN_OK); /* same key: fine */
    json_decref(out);
    CHECK(qun_device_key_register(db, &phone, kd.pk, NULL, &out, NULL, &err) == QUN_DEVICE_KEY_EXISTS);
    vouch(&desktop, &phone, &kp, kd.pk);
    CHECK(qun_device_key_register(db, &bob_phone, kb.pk, NULL, &out, NULL, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_device_list(db, &phone, &out, &err) == QUN_OK);
    CHECK(json_array_size(json_object_get(out, "items")) == 2);
    CHECK(json_is_true(json_object_get(json_array_get(json_object_get(out, "items"), 0), "has_key")));
    json_decref(out);

    char digest[65];
    memset(digest, 'a', 64);
    digest[64] = '\0';
    CHECK(qun_challenge_create(db, &phone, "device_key", "dissolve", "g_a", digest, &c, &err) == QUN_OK);
    char cid[QUN_ID_MAX];
    snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(c, "id")));
    CHECK(strlen(json_string_value(json_object_get(c, "nonce"))) == 43);
    CHECK_STR(state_of(&phone, cid), "pending");
    CHECK(qun_challenge_consume(db, &phone, cid, "dissolve", "g_a", digest, NULL, &err) ==
          QUN_CHALLENGE_NOT_APPROVED);

    unsigned char sig[64];
    /* Another user's device, another user, a wrong key, a wrong nonce: refused. */
    sign_challenge(&kb, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &bob_phone, cid, "bob-phone", sig, &out, &err) ==
          QUN_CHALLENGE_NOT_FOUND);
    CHECK(qun_challenge_approve(db, &phone, cid, "bob-phone", sig, &out, &err) == QUN_DEVICE_NOT_TRUSTED);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) == QUN_SIGNATURE_INVALID);
    sign_challenge(&kp, c, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", sig);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) == QUN_SIGNATURE_INVALID);
    /* The other device of the same user may not sign a device_key challenge. */
    sign_challenge(&kd, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-desktop", sig, &out, &err) == QUN_CHALLENGE_MISMATCH);
    CHECK_STR(state_of(&phone, cid), "pending");

    sign_challenge(&kp, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "state")), "approved");
    json_decref(out);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) ==
          QUN_CHALLENGE_ALREADY_APPROVED);
    CHECK_STR(state_of(&phone, cid), "approved");

    /* Consume: bound to action, group, digest and the asking session. */
    char other[65];
    memset(other, 'b', 64);
    other[64] = '\0';
    CHECK(qun_challenge_consume(db, &phone, cid, "transfer", "g_a", digest, NULL, &err) ==
          QUN_CHALLENGE_MISMATCH);
    CHECK(qun_challenge_consume(db, &phone, cid, "dissolve", "g_b", digest, NULL, &err) ==
          QUN_CHALLENGE_MISMATCH);
    CHECK(qun_challenge_consume(db, &phone, cid, "dissolve", NULL, digest, NULL, &err) ==
          QUN_CHALLENGE_MISMATCH);
    CHECK(qun_challenge_consume(db, &phone, cid, "dissolve", "g_a", other, NULL, &err) ==
          QUN_CHALLENGE_MISMATCH);
    CHECK(qun_challenge_consume(db, &desktop, cid, "dissolve", "g_a", digest, NULL, &err) ==
          QUN_CHALLENGE_MISMATCH);
    CHECK(qun_challenge_consume(db, &bob_phone, cid, "dissolve", "g_a", digest, NULL, &err) ==
          QUN_CHALLENGE_NOT_FOUND);
    const char *method = NULL;
    CHECK(qun_challenge_consume(db, &phone, cid, "dissolve", "g_a", digest, &method, &err) == QUN_OK);
    CHECK(method && strcmp(method, "device_key") == 0);
    CHECK(qun_challenge_consume(db, &phone, cid, "dissolve", "g_a", digest, NULL, &err) ==
          QUN_CHALLENGE_USED);
    CHECK_STR(state_of(&phone, cid), "used");
    char uri[600];
    CHECK(qun_challenge_uri(db, &phone, cid, uri, sizeof uri, &err) == QUN_CHALLENGE_USED);
    json_decref(c);

    /* Expiry: a challenge signed after its 120 s is refused; state says expired. */
    CHECK(qun_challenge_create(db, &phone, "device_key", "dissolve", NULL, NULL, &c, &err) == QUN_OK);
    snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(c, "id")));
    CHECK(json_is_null(json_object_get(c, "group")));
    qun_clock_advance(qun_verify_cfg.challenge_ttl);
    sign_challenge(&kp, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) == QUN_CHALLENGE_EXPIRED);
    CHECK_STR(state_of(&phone, cid), "expired");
    json_decref(c);
    /* Approved but consumed too late: expired as well. */
    CHECK(qun_challenge_create(db, &phone, "device_key", "dissolve", NULL, NULL, &c, &err) == QUN_OK);
    snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(c, "id")));
    sign_challenge(&kp, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) == QUN_OK);
    json_decref(out);
    qun_clock_advance(qun_verify_cfg.challenge_ttl + 1);
    CHECK(qun_challenge_consume(db, &phone, cid, "dissolve", "", "", NULL, &err) == QUN_CHALLENGE_EXPIRED);
    json_decref(c);

    /* qr: the desktop asks, the phone approves; the desktop itself may not. */
    CHECK(qun_challenge_create(db, &desktop, "qr", "dissolve", "g_q", NULL, &c, &err) == QUN_OK);
    snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(c, "id")));
    CHECK(qun_challenge_uri(db, &desktop, cid, uri, sizeof uri, &err) == QUN_OK);
    char want[600];
    /* The QR code opens the console's approval page on the configured origin; the
     * challenge's answer carries the same URL. */
    snprintf(want, sizeof want, "http://localhost:8080/app/approve?c=%s&n=%s", cid,
             json_string_value(json_object_get(c, "nonce")));
    CHECK_STR(uri, want);
    CHECK_STR(json_string_value(json_object_get(c, "approve_url")), want);
    sign_challenge(&kd, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &desktop, cid, "alice-desktop", sig, &out, &err) == QUN_QR_SAME_DEVICE);
    sign_challenge(&kp, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) == QUN_OK);
    json_decref(out);
    CHECK_STR(state_of(&desktop, cid), "approved");
    CHECK(qun_challenge_consume(db, &desktop, cid, "dissolve", "g_q", NULL, &method, &err) == QUN_OK);
    CHECK(method && strcmp(method, "qr") == 0);
    json_decref(c);

    /* Declined on the phone (V5): never approved, used or shown again. */
    CHECK(qun_challenge_create(db, &desktop, "qr", "dissolve", "g_q", NULL, &c, &err) == QUN_OK);
    snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(c, "id")));
    CHECK(qun_challenge_decline(db, &phone, cid, &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "state")), "declined");
    json_decref(out);
    CHECK(qun_challenge_decline(db, &phone, cid, &out, &err) == QUN_CHALLENGE_DECLINED);
    sign_challenge(&kp, c, NULL, sig);
    CHECK(qun_challenge_approve(db, &phone, cid, "alice-phone", sig, &out, &err) == QUN_CHALLENGE_DECLINED);
    CHECK(qun_challenge_uri(db, &desktop, cid, uri, sizeof uri, &err) == QUN_CHALLENGE_DECLINED);
    CHECK(qun_challenge_consume(db, &desktop, cid, "dissolve", "g_q", NULL, &method, &err) ==
          QUN_CHALLENGE_DECLINED);
    CHECK_STR(state_of(&desktop, cid), "declined");
    json_decref(c);

    /* A qr challenge needs another device with a key; bob has only one. */
    CHECK(qun_challenge_create(db, &bob_phone, "qr", "dissolve", NULL, NULL, &c, &err) ==
          QUN_DEVICE_NOT_TRUSTED);
    CHECK(qun_challenge_create(db, &bob_phone, "sms", "dissolve", NULL, NULL, &c, &err) == QUN_FIELD_INVALID);
}

/* RFC 6238 appendix B, through the liboath calls the server uses. */
static void test_rfc6238_vectors(void) {
    static const struct {
        long t;
        const char *sha1, *sha256, *sha512;
    } v[] = {
        {59, "94287082", "46119246", "90693936"},         {1111111109, "07081804", "68084774", "25091201"},
        {1111111111, "14050471", "67062674", "99943326"}, {1234567890, "89005924", "91819424", "93441116"},
        {2000000000, "69279037", "90698825", "38618901"}, {20000000000, "65353130", "77737706", "47863826"},
    };
    const char *k1 = "12345678901234567890";
    const char *k256 = "12345678901234567890123456789012";
    const char *k512 = "1234567890123456789012345678901234567890123456789012345678901234";
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char otp[16];
        CHECK(oath_totp_generate2(k1, 20, (time_t)v[i].t, 30, 0, 8, 0, otp) == OATH_OK);
        CHECK_STR(otp, v[i].sha1);
        CHECK(oath_totp_generate2(k256, 32, (time_t)v[i].t, 30, 0, 8, OATH_TOTP_HMAC_SHA256, otp) == OATH_OK);
        CHECK_STR(otp, v[i].sha256);
        CHECK(oath_totp_generate2(k512, 64, (time_t)v[i].t, 30, 0, 8, OATH_TOTP_HMAC_SHA512, otp) == OATH_OK);
        CHECK_STR(otp, v[i].sha512);
        int pos;
        uint64_t counter;
        /* Validation (as the server calls it) finds the vector at its own step, and one step
         * later within a window of 1 at position -1. */
        CHECK(oath_totp_validate3(k1, 20, (time_t)v[i].t, 30, 0, 0, &pos, &counter, v[i].sha1) >= 0);
        CHECK(pos == 0 && counter == (uint64_t)(v[i].t / 30));
        CHECK(oath_totp_validate3(k1, 20, (time_t)v[i].t + 30, 30, 0, 1, &pos, &counter, v[i].sha1) >= 0);
        CHECK(pos == -1 && counter == (uint64_t)(v[i].t / 30));
    }
}

static void code_at(const char *secret, size_t n, int64_t t, char out[16]) {
    CHECK(oath_totp_generate(secret, n, (time_t)t, 30, 0, 6, out) == OATH_OK);
}

static void test_totp(void) {
    qun_err_t err;
    json_t *out;
    int64_t carol = new_user("carol");
    qun_actor_t a;
    login(carol, "carol-phone", "android", &a);
    snprintf(a.username, sizeof a.username, "carol");
    /* Start at the beginning of a time step so ±1 step stays within this test's reach. */
    qun_clock_advance(30 - qun_now() % 30);

    CHECK(qun_totp_check(db, &a, "123456", &err) == QUN_TOTP_NOT_ENROLLED);
    CHECK(qun_totp_enroll(db, &a, &out, &err) == QUN_OK);
    const char *b32 = json_string_value(json_object_get(out, "secret"));
    CHECK(b32 && strlen(b32) == 32);
    CHECK(strncmp(json_string_value(json_object_get(out, "otpauth_uri")),
                  "otpauth://totp/qun:carol?secret=", 32) == 0);
    CHECK(strstr(json_string_value(json_object_get(out, "qr_svg")), "<svg") != NULL);
    char *secret = NULL;
    size_t n = 0;
    CHECK(oath_base32_decode(b32, strlen(b32), &secret, &n) == OATH_OK && n == 20);
    json_decref(out);

    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/totp.key", qun_core_cfg.data_dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
    /* The secret is not stored in clear. */
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "SELECT sealed FROM totp WHERE user_id = $1", "i", carol) == QUN_ROW);
    size_t sn;
    const unsigned char *sealed = qun_q_col_blob(q, 0, &sn);
    CHECK(sn == 60 && memmem(sealed, sn, secret, 20) == NULL);
    qun_q_done(q);

    char code[16], prev[16], next[16], far[16];
    int64_t now = qun_now();
    code_at(secret, n, now, code);
    code_at(secret, n, now - 30, prev);
    code_at(secret, n, now + 30, next);
    code_at(secret, n, now + 90, far);
    CHECK(qun_totp_check(db, &a, code, &err) == QUN_TOTP_NOT_ENROLLED); /* pending */
    CHECK(qun_totp_confirm(db, &a, "12345", &err) == QUN_TOTP_INVALID);
    CHECK(qun_totp_confirm(db, &a, strcmp(code, "000000") ? "000000" : "111111", &err) == QUN_TOTP_INVALID);
    CHECK(qun_totp_confirm(db, &a, prev, &err) == QUN_OK); /* one step of drift back is accepted */
    CHECK(qun_totp_enroll(db, &a, &out, &err) == QUN_TOTP_ALREADY_ACTIVE);
    CHECK(qun_totp_confirm(db, &a, code, &err) == QUN_TOTP_ALREADY_ACTIVE);
    CHECK(qun_totp_check(db, &a, prev, &err) == QUN_TOTP_REPLAYED);
    CHECK(qun_totp_check(db, &a, far, &err) == QUN_TOTP_INVALID); /* three steps ahead: outside ±1 */
    CHECK(qun_totp_check(db, &a, code, &err) == QUN_OK);
    CHECK(qun_totp_check(db, &a, code, &err) == QUN_TOTP_REPLAYED);
    CHECK(qun_totp_check(db, &a, next, &err) == QUN_OK); /* one step ahead */
    qun_clock_advance(30);
    CHECK(qun_totp_check(db, &a, next, &err) == QUN_TOTP_REPLAYED); /* now the current step, used already */
    qun_clock_advance(30);
    char fresh[16];
    code_at(secret, n, qun_now(), fresh);
    CHECK(qun_totp_check(db, &a, fresh, &err) == QUN_OK);
    bool active = false;
    CHECK(qun_totp_active(db, &a, &active, &err) == QUN_OK && active);
    free(secret);
}

static void test_policy(void) {
    qun_verify_need_t n = qun_verify_required("ios", QUN_RISK_ALLOW);
    CHECK(n.all == QUN_VM_DEVICE_KEY && n.any == 0 && !n.review && !n.denied);
    n = qun_verify_required("ios", QUN_RISK_VERIFY);
    CHECK(n.all == QUN_VM_DEVICE_KEY && n.any == QUN_VM_TOTP);
    n = qun_verify_required("android", QUN_RISK_WARN);
    CHECK(n.all == QUN_VM_CONFIRM && n.any == 0);
    n = qun_verify_required("android", QUN_RISK_VERIFY);
    CHECK(n.any == (QUN_VM_TOTP | QUN_VM_DEVICE_KEY));
    n = qun_verify_required("windows", QUN_RISK_ALLOW);
    CHECK(n.all == QUN_VM_QR);
    n = qun_verify_required("web", QUN_RISK_REVIEW);
    CHECK(n.all == QUN_VM_QR && n.review && !n.denied && n.any);
    n = qun_verify_required("cli", QUN_RISK_DENY);
    CHECK(n.all == (QUN_VM_CONFIRM | QUN_VM_TYPED_NAME) && n.denied);
    json_t *j = qun_verify_need_json(qun_verify_required("cli", QUN_RISK_VERIFY));
    char *s = json_dumps(j, JSON_COMPACT);
    CHECK_STR(s, "{\"all\":[\"confirm\",\"typed_name\"],\"any_of\":[\"device_key\",\"totp\"],\"review\":"
                 "false,\"denied\":false}");
    free(s);
    json_decref(j);
}

/* An approved challenge of actor a (signed by key k of device `signer`) for check_proofs. */
static void approved(const qun_actor_t *a, const qun_actor_t *signer, const keypair_t *k, const char *method,
                     const char *digest, char cid[QUN_ID_MAX]) {
    json_t *c, *out;
    qun_err_t err;
    unsigned char sig[64];
    CHECK(qun_challenge_create(db, a, method, "transfer", "g_v", digest, &c, &err) == QUN_OK);
    snprintf(cid, QUN_ID_MAX, "%s", json_string_value(json_object_get(c, "id")));
    sign_challenge(k, c, NULL, sig);
    CHECK(qun_challenge_approve(db, signer, cid, signer->device_id, sig, &out, &err) == QUN_OK);
    json_decref(out);
    json_decref(c);
}

/* qun_verify_check: each proof counts once, a missing method is named, a wrong proof is
 * refused even when not needed; and the confirmation tokens of any action. */
static void test_check_proofs(void) {
    qun_err_t err;
    json_t *out, *problem = NULL;
    int64_t vera = new_user("vera");
    qun_actor_t phone, desk;
    login(vera, "carol-phone", "ios", &phone);
    login(vera, "carol-desk", "web", &desk);
    keypair_t kp, kd;
    crypto_sign_keypair(kp.pk, kp.sk);
    crypto_sign_keypair(kd.pk, kd.sk);
    CHECK(qun_device_key_register(db, &phone, kp.pk, NULL, &out, NULL, &err) == QUN_OK);
    json_decref(out);
    vouch(&desk, &phone, &kp, kd.pk);
    char digest[65];
    memset(digest, 'b', 64);
    digest[64] = '\0';
    qun_verify_proof_t p = {
        .action = "transfer", .group = "g_v", .group_name = "Vault", .params_digest = digest};

    /* cli: confirm + typed_name. */
    qun_verify_need_t cli = qun_verify_required("cli", QUN_RISK_ALLOW);
    CHECK(qun_verify_check(db, &desk, cli, &p, &problem, &err) == QUN_CONFIRMATION_REQUIRED);
    CHECK(problem && json_array_size(json_object_get(problem, "requirements")) == 2);
    CHECK_STR(json_string_value(json_object_get(problem, "params_digest")), digest);
    json_decref(problem);
    problem = NULL;
    p.confirmed = true;
    CHECK(qun_verify_check(db, &desk, cli, &p, NULL, &err) == QUN_TYPED_NAME_REQUIRED);
    p.typed_name = "vault";
    CHECK(qun_verify_check(db, &desk, cli, &p, NULL, &err) == QUN_TYPED_NAME_MISMATCH);
    CHECK_STR(err.field, "typed_name");
    p.typed_name = "Vault";
    CHECK(qun_verify_check(db, &desk, cli, &p, NULL, &err) == QUN_OK);
    /* A wrong name is refused even where no name is needed. */
    p.typed_name = "Vaul";
    CHECK(qun_verify_check(db, &desk, (qun_verify_need_t){0}, &p, NULL, &err) == QUN_TYPED_NAME_MISMATCH);
    p.typed_name = NULL;
    p.confirmed = false;

    /* web: qr; a device_key challenge is the wrong kind. */
    qun_verify_need_t web = qun_verify_required("web", QUN_RISK_ALLOW);
    char own[QUN_ID_MAX], qr[QUN_ID_MAX], qr2[QUN_ID_MAX];
    approved(&desk, &desk, &kd, "device_key", digest, own);
    p.challenges[0] = own;
    CHECK(qun_verify_check(db, &desk, web, &p, NULL, &err) == QUN_QR_REQUIRED);
    approved(&desk, &phone, &kp, "qr", digest, qr);
    p.challenges[0] = qr;
    CHECK(qun_verify_check(db, &desk, web, &p, NULL, &err) == QUN_OK);
    CHECK(qun_verify_check(db, &desk, web, &p, NULL, &err) == QUN_CHALLENGE_USED); /* replayed */
    /* At risk verify: qr plus a step-up (device_key or totp, not qr again). */
    qun_verify_need_t webv = qun_verify_required("web", QUN_RISK_VERIFY);
    CHECK(webv.all == QUN_VM_QR && webv.any == (QUN_VM_DEVICE_KEY | QUN_VM_TOTP));
    approved(&desk, &phone, &kp, "qr", digest, qr2);
    p.challenges[0] = qr2;
    CHECK(qun_verify_check(db, &desk, webv, &p, &problem, &err) == QUN_VERIFICATION_REQUIRED);
    CHECK(problem && json_is_object(json_object_get(problem, "requirements")));
    json_decref(problem);
    problem = NULL;
    /* (A refusal rolls back with the request's transaction over HTTP; here qr2 stays used.) */
    approved(&desk, &phone, &kp, "qr", digest, qr2);
    approved(&desk, &desk, &kd, "device_key", digest, own);
    p.challenges[1] = own;
    CHECK(qun_verify_check(db, &desk, webv, &p, NULL, &err) == QUN_OK);
    p.challenges[0] = p.challenges[1] = NULL;

    /* ios: device_key; the qr kind is wrong; the binding must match. */
    qun_verify_need_t ios = qun_verify_required("ios", QUN_RISK_ALLOW);
    approved(&phone, &desk, &kd, "qr", digest, qr);
    p.challenges[0] = qr;
    CHECK(qun_verify_check(db, &phone, ios, &p, NULL, &err) == QUN_DEVICE_KEY_REQUIRED);
    approved(&phone, &phone, &kp, "device_key", digest, own);
    p.challenges[0] = own;
    p.params_digest = "c";
    CHECK(qun_verify_check(db, &phone, ios, &p, NULL, &err) == QUN_CHALLENGE_MISMATCH);
    p.params_digest = digest;
    CHECK(qun_verify_check(db, &phone, ios, &p, NULL, &err) == QUN_OK);

    /* Confirmation tokens are bound to user, group, action and parameters, once. */
    json_t *params = json_pack("{s:s}", "to", "u_x"), *other = json_pack("{s:s}", "to", "u_y");
    char token[64];
    int64_t expires, g7, g8;
    qun_group_t g;
    CHECK(qun_group_create(db, &desk, "Vault", "standard", NULL, NULL, &out, &err) == QUN_OK);
    CHECK(qun_group_load(db, json_string_value(json_object_get(out, "id")), &g, &err) == QUN_OK);
    json_decref(out);
    g7 = g.id;
    CHECK(qun_group_create(db, &desk, "Other", "standard", NULL, NULL, &out, &err) == QUN_OK);
    CHECK(qun_group_load(db, json_string_value(json_object_get(out, "id")), &g, &err) == QUN_OK);
    json_decref(out);
    g8 = g.id;
    CHECK(qun_confirm_issue(db, &desk, g7, "transfer", params, token, &expires, &err) == QUN_OK);
    CHECK(strncmp(token, "qct_", 4) == 0 && strlen(token) == 47 &&
          expires == qun_now() + qun_core_cfg.confirm_ttl);
    CHECK(qun_confirm_consume(db, &desk, g7, "bulk_remove", params, token, &err) == QUN_CONFIRMATION_INVALID);
    CHECK(qun_confirm_consume(db, &desk, g8, "transfer", params, token, &err) == QUN_CONFIRMATION_INVALID);
    CHECK(qun_confirm_consume(db, &desk, g7, "transfer", other, token, &err) == QUN_CONFIRMATION_INVALID);
    CHECK(qun_confirm_consume(db, &desk, g7, "transfer", params, token, &err) == QUN_OK);
    CHECK(qun_confirm_consume(db, &desk, g7, "transfer", params, token, &err) == QUN_CONFIRMATION_INVALID);
    CHECK(strstr(err.msg, "already used") != NULL);
    json_decref(params);
    json_decref(other);

    char text[64];
    qun_verify_mask_text(QUN_VM_CONFIRM | QUN_VM_TYPED_NAME, "password", text, sizeof text);
    CHECK_STR(text, "confirm+typed_name+password");
    qun_verify_mask_text(0, NULL, text, sizeof text);
    CHECK_STR(text, "");
}

static uint32_t crc(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_render(void) {
    char *svg = qun_qr_svg("qun://challenge/c_x?n=abc");
    CHECK(svg && strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"") &&
          strstr(svg, "</svg>"));
    free(svg);
    size_t n;
    unsigned char *png = qun_qr_png("qun://challenge/c_x?n=abc", &n);
    CHECK(png && n > 100 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    /* Every chunk's CRC holds, and the chunks are IHDR, IDAT, IEND. */
    size_t at = 8;
    int chunks = 0;
    while (png && at + 12 <= n) {
        uint32_t len = be32(png + at);
        CHECK(at + 12 + len <= n);
        CHECK(crc(png + at + 4, len + 4) == be32(png + at + 8 + len));
        chunks++;
        at += 12 + len;
    }
    CHECK(chunks == 3 && at == n);
    CHECK(png && memcmp(png + 12, "IHDR", 4) == 0 && be32(png + 16) == be32(png + 20));
    free(png);
}

/* A device is proved by its secret: a known id without it, with a wrong one, or under
 * another platform is refused and the device row stays as it was. */
static void test_device_secrets(void) {
    qun_err_t err;
    json_t *out = NULL;
    int64_t uid = new_user("dora");
    char secret[65], wrong[65], tok[65];
    qun_sha256_hex(secret, "qds_dora", 8);
    qun_sha256_hex(wrong, "qds_mallory", 11);
    qun_sha256_hex(tok, "t1", 2);
    CHECK(qun_session_create(db, uid, tok, "dora-phone", "android", NULL, secret, "192.0.2.1", &out, &err) ==
          QUN_OK);
    CHECK(json_is_true(json_object_get(out, "new_device")));
    int64_t first = json_integer_value(json_object_get(out, "device_first_seen"));
    json_decref(out);
    qun_sha256_hex(tok, "t2", 2);
    CHECK(qun_session_create(db, uid, tok, "dora-phone", "android", NULL, wrong, "192.0.2.1", &out, &err) ==
          QUN_DEVICE_SECRET_REQUIRED);
    CHECK_STR(err.field, "device_secret");
    CHECK(qun_session_create(db, uid, tok, "dora-phone", "android", wrong, wrong, "192.0.2.1", &out, &err) ==
          QUN_DEVICE_SECRET_INVALID);
    CHECK(qun_session_create(db, uid, tok, "dora-phone", "ios", secret, wrong, "192.0.2.1", &out, &err) ==
          QUN_DEVICE_PLATFORM_MISMATCH);
    CHECK(qun_session_create(db, uid, tok, "dora-phone", "android", secret, wrong, "192.0.2.1", &out, &err) ==
          QUN_OK);
    CHECK(!json_is_true(json_object_get(out, "new_device")));
    CHECK(json_integer_value(json_object_get(out, "device_first_seen")) == first);
    json_decref(out);
    /* The secret was not replaced by the one offered for a new device. */
    qun_sha256_hex(tok, "t3", 2);
    CHECK(qun_session_create(db, uid, tok, "dora-phone", "android", wrong, secret, "192.0.2.1", &out, &err) ==
          QUN_DEVICE_SECRET_INVALID);
    /* A device recorded before secrets existed cannot be proved. */
    CHECK(qun_db_run(db, NULL, &err,
                     "INSERT INTO devices(user_id, device_id, platform, first_seen, last_seen) "
                     "VALUES ($1, 'old', 'cli', 1, 1)",
                     "i", uid) == QUN_DONE);
    CHECK(qun_session_create(db, uid, tok, "old", "cli", secret, secret, "192.0.2.1", &out, &err) ==
          QUN_DEVICE_SECRET_REQUIRED);
}

/* qun_verify_need: once the account has a key, every platform needs a key's proof. */
static void test_need_follows_enrollment(void) {
    qun_err_t err;
    json_t *out;
    int64_t uid = new_user("enno");
    qun_actor_t droid, term, phone, tab;
    login(uid, "enno-droid", "android", &droid);
    login(uid, "enno-term", "cli", &term);
    login(uid, "enno-phone", "ios", &phone);
    login(uid, "enno-tab", "android", &tab);
    qun_verify_need_t n;
    CHECK(qun_verify_need(db, &droid, QUN_RISK_ALLOW, &n, &err) == QUN_OK);
    CHECK(n.all == QUN_VM_CONFIRM && n.enrolled == 0);
    keypair_t kp, kt;
    crypto_sign_keypair(kp.pk, kp.sk);
    crypto_sign_keypair(kt.pk, kt.sk);
    CHECK(qun_device_key_register(db, &phone, kp.pk, NULL, &out, NULL, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_verify_need(db, &droid, QUN_RISK_ALLOW, &n, &err) == QUN_OK);
    CHECK(n.all == (QUN_VM_CONFIRM | QUN_VM_QR) && n.enrolled == QUN_VM_QR);
    CHECK(qun_verify_need(db, &term, QUN_RISK_ALLOW, &n, &err) == QUN_OK);
    CHECK(n.all == (QUN_VM_CONFIRM | QUN_VM_TYPED_NAME | QUN_VM_QR));
    CHECK(qun_verify_need(db, &phone, QUN_RISK_ALLOW, &n, &err) == QUN_OK);
    CHECK(n.all == QUN_VM_DEVICE_KEY && n.enrolled == 0);
    vouch(&tab, &phone, &kp, kt.pk);
    CHECK(qun_verify_need(db, &tab, QUN_RISK_ALLOW, &n, &err) == QUN_OK);
    CHECK(n.all == (QUN_VM_CONFIRM | QUN_VM_DEVICE_KEY) && n.enrolled == QUN_VM_DEVICE_KEY);
    /* The step-up is beyond the enrolled proof too: totp. */
    CHECK(qun_verify_need(db, &tab, QUN_RISK_VERIFY, &n, &err) == QUN_OK);
    CHECK(n.any == QUN_VM_TOTP);
}

int main(void) {
    qun_err_t err;
    char dir[] = "/tmp/qun-verify-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    qun_core_cfg.data_dir = dir;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(test_message_format);
    RUN(test_device_key_challenge);
    RUN(test_rfc6238_vectors);
    RUN(test_totp);
    RUN(test_policy);
    RUN(test_check_proofs);
    RUN(test_device_secrets);
    RUN(test_need_follows_enrollment);
    RUN(test_render);
    qun_db_close(db);
    char path[64];
    snprintf(path, sizeof path, "%s/totp.key", dir);
    unlink(path);
    rmdir(dir);
    return unit_done("core/verify");
}
