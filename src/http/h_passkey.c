/* SPDX-License-Identifier: MIT */
/* Passkeys over HTTP: registration ceremonies, the list of the caller's passkeys, and
 * approving a challenge with a passkey assertion.  The checks live in core/passkey.c
 * and core/verify.c; a refusal carries its reason beside the code. */
#include <string.h>

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

/* The body is the browser's PublicKeyCredential JSON, whose members vary by browser
 * (authenticatorAttachment, clientExtensionResults...): only what qun reads is checked
 * here and in the core; label and challenge_id may ride along. */
static qun_rc check_extras(qun_req_t *r) {
    static const struct {
        const char *name;
        size_t max;
    } f[] = {{"label", 64}, {"challenge_id", 64}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        json_t *v = json_object_get(r->json, f[i].name);
        if (!v || json_is_null(v)) continue;
        if (!json_is_string(v))
            return qun_fail_field(&r->err, QUN_FIELD_INVALID, f[i].name, "%s must be a string", f[i].name);
        size_t n = json_string_length(v);
        if (n < (i == 0 ? 0 : 1) || n > f[i].max || memchr(json_string_value(v), '\0', n))
            return qun_fail_field(&r->err, QUN_FIELD_INVALID, f[i].name, "%s must be 1 to %zu bytes", f[i].name,
                                  f[i].max);
    }
    return QUN_OK;
}

qun_rc h_passkey_options(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *out;
    rc = qun_passkey_options(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}

qun_rc h_passkey_register(qun_req_t *r) {
    qun_rc rc = check_extras(r);
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

qun_rc h_passkey_delete(qun_req_t *r) {
    qun_rc rc = qun_passkey_delete(r->db, &r->actor, r->params[0], &r->err);
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
    json_t *out = NULL, *problem = NULL;
    qun_rc rc = qun_challenge_approve_passkey(r->db, &r->actor, r->params[0], r->json, &out, &problem, &r->err);
    rc = with_problem(r, rc, problem);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
