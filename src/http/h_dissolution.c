/* SPDX-License-Identifier: MIT */
/* Dissolution over HTTP: impact preview with a confirmation token, the request (with
 * step-up by password re-entry where the rules demand it), status and progress,
 * cancel, restore; the approvals inbox; legal holds; org dissolve protection. */
#include <sodium.h>
#include <string.h>

#include "http.h"

#define GID r->params[0]

static const qun_field_t diss_fields[] = {
    {"messages", F_STR, true, 1, 8, "keep|delete"},
    {"confirmation_token", F_STR, false, 1, 128, NULL},
    {"password", F_STR, false, 1, 256, NULL},
    {"successor_name", F_STR, false, 1, 128, NULL},
    {"totp_code", F_STR, false, 6, 8, NULL},
    {"challenge_id", F_STR, false, 1, 64, NULL},
    {"step_up_challenge_id", F_STR, false, 1, 64, NULL},
    {"typed_name", F_STR, false, 1, 256, NULL},
    {"archive", F_OBJ, false, 0, 0, NULL}, /* {"recipients": [age1...]}: archive, then dissolve */
    {0}};

/* The parameters a confirmation token is bound to: the body without the secrets. */
static json_t *diss_params(json_t *body) {
    json_t *p = json_deep_copy(body);
    json_object_del(p, "confirmation_token");
    json_object_del(p, "password");
    json_object_del(p, "totp_code");
    json_object_del(p, "challenge_id");
    json_object_del(p, "step_up_challenge_id");
    json_object_del(p, "typed_name");
    return p;
}

/* scratch of a step-up: the outcome first, so that run() reads it as a bool. */
typedef struct {
    bool stepped_up;
    char hash[crypto_pwhash_STRBYTES];
} step_up_t;

/* On a password thread (slow.c): the re-entered password against the stored hash. */
static qun_rc step_up_check(qun_req_t *r) {
    step_up_t *s = r->scratch;
    if (!qun_password_verify(s->hash, qun_jstr(r->json, "password")))
        return qun_fail_field(&r->err, QUN_BAD_CREDENTIALS, "password", "the password is wrong");
    s->stepped_up = true;
    return QUN_OK;
}

/* Step-up: a re-entered password, verified off the loop and off the writer (argon2id is
 * slow by design).  scratch records the outcome (a bool first).  Also the prep of other
 * routes that take a `password` (DELETE /v1/me/passkeys/{id}). */
qun_rc h_step_up_prep(qun_req_t *r) {
    const char *pw = qun_jstr(r->json, "password");
    step_up_t *s = qun_xcalloc(1, sizeof *s);
    r->scratch = s;
    if (!pw) return QUN_OK;
    int64_t uid;
    qun_rc rc = qun_user_credentials(r->db, r->actor.username, &uid, s->hash, sizeof s->hash, &r->err);
    if (rc != QUN_OK) return rc;
    r->slow = step_up_check;
    return QUN_OK;
}

static qun_rc answer(qun_req_t *r, qun_rc rc, int status, json_t *out) {
    if (rc == QUN_STEP_UP_REQUIRED)
        r->problem_extra = json_pack("{s:[{s:s, s:s}]}", "requirements", "method", "password", "how",
                                     "send your account password again as `password`");
    if (rc == QUN_CONFIRMATION_REQUIRED)
        r->problem_extra =
            json_pack("{s:[{s:s, s:s}]}", "requirements", "method", "confirm", "how",
                      "POST /v1/groups/{id}/dissolution/preview, then send its confirmation_token");
    return rc == QUN_OK ? qun_ok(r, status, out) : rc;
}

/* A preview refused with LIFECYCLE_CONFLICT says what is open, as the request does
 * (`open`, `transfer_to`, `group_name`), so a client can name the way out. */
static qun_rc conflict_extra(qun_req_t *r, qun_rc rc) {
    qun_group_t g;
    qun_err_t ignored;
    json_t *problem = NULL;
    if (rc == QUN_LIFECYCLE_CONFLICT && !r->problem_extra &&
        qun_group_load(r->db, GID, &g, &ignored) == QUN_OK &&
        qun_lifecycle_no_transfer(r->db, &g, &problem, &ignored) == QUN_LIFECYCLE_CONFLICT)
        r->problem_extra = problem;
    else
        json_decref(problem);
    return rc;
}

/* The preview's counting happens here, on the loop thread's reader: at 1M messages it
 * takes tens of milliseconds that must not hold the writer. */
qun_rc h_diss_preview_prep(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, diss_fields, &r->err);
    if (rc != QUN_OK) return rc;
    static const char *proofs[] = {"confirmation_token", "password",   "totp_code",
                                   "challenge_id",       "typed_name", "step_up_challenge_id"};
    for (size_t i = 0; i < sizeof proofs / sizeof proofs[0]; i++)
        if (json_object_get(r->json, proofs[i]))
            return qun_fail_field(&r->err, QUN_FIELD_UNKNOWN, proofs[i],
                                  "the preview takes only the dissolution's parameters");
    json_t *params = diss_params(r->json);
    rc = qun_diss_impact(r->db, &r->actor, GID, params, &r->out, &r->err);
    json_decref(params);
    return conflict_extra(r, rc);
}

qun_rc h_diss_preview(qun_req_t *r) {
    json_t *params = diss_params(r->json), *view = r->out, *out = NULL;
    r->out = NULL;
    qun_rc rc = qun_diss_preview(r->db, &r->actor, GID, params, view, &out, &r->err);
    json_decref(params);
    json_decref(view);
    return answer(r, conflict_extra(r, rc), 200, out);
}

qun_rc h_diss_request_prep(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, diss_fields, &r->err);
    return rc == QUN_OK ? h_step_up_prep(r) : rc;
}

qun_rc h_diss_request(qun_req_t *r) {
    json_t *params = diss_params(r->json), *out = NULL, *problem = NULL;
    qun_diss_proof_t proof = {.token = qun_jstr(r->json, "confirmation_token"),
                              .stepped_up = *(bool *)r->scratch,
                              .totp_code = qun_jstr(r->json, "totp_code"),
                              .challenge_id = qun_jstr(r->json, "challenge_id"),
                              .step_up_challenge_id = qun_jstr(r->json, "step_up_challenge_id"),
                              .typed_name = qun_jstr(r->json, "typed_name"),
                              .ip = r->ip,
                              .problem = &problem};
    qun_rc rc = qun_diss_request(r->db, &r->actor, GID, params, &proof, &out, &r->err);
    json_decref(params);
    if (problem) {
        json_decref(r->problem_extra);
        r->problem_extra = problem;
        return rc;
    }
    return answer(r, rc, 202, out);
}

qun_rc h_diss_status(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_diss_status(r->db, &r->actor, GID, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_diss_cancel(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_diss_cancel(r->db, &r->actor, GID, &out, &r->err);
    return answer(r, rc, 200, out);
}

static const qun_field_t restore_fields[] = {{"password", F_STR, false, 1, 256, NULL}, {0}};

qun_rc h_diss_restore_prep(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, restore_fields, &r->err);
    return rc == QUN_OK ? h_step_up_prep(r) : rc;
}

qun_rc h_diss_restore(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_diss_restore(r->db, &r->actor, GID, *(bool *)r->scratch, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_approval_list(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_approval_list(r->db, &r->actor, &out, &r->err);
    return answer(r, rc, 200, out);
}

static qun_rc decide(qun_req_t *r, bool approve) {
    json_t *out = NULL;
    qun_rc rc = qun_approval_decide(r->db, &r->actor, r->params[0], approve, qun_jstr(r->json, "reason"),
                                    &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_approval_approve(qun_req_t *r) {
    static const qun_field_t f[] = {{"reason", F_STR, false, 0, 500, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    return rc == QUN_OK ? decide(r, true) : rc;
}

qun_rc h_approval_reject(qun_req_t *r) {
    static const qun_field_t f[] = {{"reason", F_STR, true, 1, 500, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    return rc == QUN_OK ? decide(r, false) : rc;
}

qun_rc h_hold_place(qun_req_t *r) {
    static const qun_field_t f[] = {{"reason", F_STR, true, 1, 500, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK) rc = qun_hold_place(r->db, &r->actor, GID, qun_jstr(r->json, "reason"), &out, &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_hold_list(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_hold_list(r->db, &r->actor, GID, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_hold_release(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_hold_release(r->db, &r->actor, GID, r->params[1], &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_org_protection(qun_req_t *r) {
    static const qun_field_t f[] = {{"enabled", F_BOOL, true, 0, 0, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK)
        rc = qun_org_set_protection(r->db, &r->actor, r->params[0],
                                    json_is_true(json_object_get(r->json, "enabled")), &out, &r->err);
    return answer(r, rc, 200, out);
}
