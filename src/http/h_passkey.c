/* SPDX-License-Identifier: MIT */
/* Passkeys over HTTP: registration ceremonies, the list of the caller's passkeys, and
 * approving a challenge with a passkey assertion.  The checks live in core/passkey.c
 * and core/verify.c; a refusal carries its reason beside the code. */
#include "http.h"
#include "qun/passkey.h"
#include "qun/verify.h"

static const qun_field_t no_fields[] = {{0}};

/* A refusal's detail (the reason, what to present) goes out with the problem. */
static qun_rc with_problem(qun_req_t *r, qun_rc rc, json_t *problem) {
    json_decref(r->problem_extra);
    r->problem_extra = rc == QUN_OK ? NULL : problem;
    if (rc == QUN_OK) json_decref(problem);
    return rc;
}

/* The body is the browser's PublicKeyCredential JSON (WebAuthn level 3 toJSON()):
 * its members are checked here; those of response vary by browser and authenticator
 * (transports, publicKey...), and the core reads only what it needs of them. */
static const qun_field_t register_fields[] = {
    {"id", F_STR, true, 1, 1400, NULL},
    {"rawId", F_STR, true, 1, 1400, NULL},
    {"type", F_STR, true, 1, 16, "public-key"},
    {"response", F_OBJ, true, 0, 0, NULL},
    {"authenticatorAttachment", F_STR, false, 1, 16, "platform|cross-platform"},
    {"clientExtensionResults", F_OBJ, false, 0, 0, NULL},
    {"label", F_STR, false, 0, 64, NULL},
    {"challenge_id", F_STR, false, 1, 64, NULL},
    {0}};
static const qun_field_t assertion_fields[] = {
    {"id", F_STR, true, 1, 1400, NULL},
    {"rawId", F_STR, true, 1, 1400, NULL},
    {"type", F_STR, true, 1, 16, "public-key"},
    {"response", F_OBJ, true, 0, 0, NULL},
    {"authenticatorAttachment", F_STR, false, 1, 16, "platform|cross-platform"},
    {"clientExtensionResults", F_OBJ, false, 0, 0, NULL},
    {0}};

qun_rc h_passkey_options(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *out;
    rc = qun_passkey_options(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}

qun_rc h_passkey_register(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, register_fields, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *out = NULL, *problem = NULL;
    rc = qun_passkey_register(r->db, &r->actor, r->json, qun_jstr(r->json, "label"),
                              qun_jstr(r->json, "challenge_id"), &out, &problem, &r->err);
    rc = with_problem(r, rc, problem);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}

qun_rc h_passkey_list(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_passkey_list(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* Removing a passkey takes away a way to approve: the password again (checked by
 * h_step_up_prep on the loop thread, so a stolen session alone cannot remove it). */
qun_rc h_passkey_delete(qun_req_t *r) {
    static const qun_field_t f[] = {{"password", F_STR, false, 1, 1024, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc != QUN_OK) return rc;
    rc = qun_passkey_delete(r->db, &r->actor, r->params[0], r->scratch && *(bool *)r->scratch, &r->err);
    if (rc == QUN_STEP_UP_REQUIRED)
        r->problem_extra = json_pack("{s:[{s:s, s:s}]}", "requirements", "method", "password", "how",
                                     "send your account password again as `password`");
    return rc == QUN_OK ? qun_ok(r, 200, json_pack("{s:s, s:b}", "id", r->params[0], "deleted", 1)) : rc;
}

qun_rc h_challenge_passkey_options(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *out;
    rc = qun_challenge_passkey_options(r->db, &r->actor, r->params[0], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_challenge_passkey(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, assertion_fields, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *out = NULL, *problem = NULL;
    rc = qun_challenge_approve_passkey(r->db, &r->actor, r->params[0], r->json, &out, &problem, &r->err);
    rc = with_problem(r, rc, problem);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
