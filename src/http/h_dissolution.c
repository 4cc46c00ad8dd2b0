/* SPDX-License-Identifier: MIT */
/* Dissolution: impact preview with a confirmation token, the request, its status
 * and progress, and cancellation. */
#include "http.h"

#define GID r->params[0]

static const qun_field_t diss_fields[] = {
    {"messages", F_STR, true, 1, 8, "keep|delete"},
    {"confirmation_token", F_STR, false, 1, 128, NULL},
    {0}};

/* The parameters a confirmation token is bound to: the body without the token. */
static json_t *diss_params(json_t *body) {
    json_t *p = json_deep_copy(body);
    json_object_del(p, "confirmation_token");
    return p;
}

qun_rc h_diss_preview(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, diss_fields, &r->err);
    if (rc != QUN_OK) return rc;
    if (json_object_get(r->json, "confirmation_token"))
        return qun_fail_field(&r->err, QUN_FIELD_UNKNOWN, "confirmation_token",
                              "the preview issues the token; send it to /dissolution");
    json_t *params = diss_params(r->json), *out = NULL;
    rc = qun_diss_preview(r->db, &r->actor, GID, params, &out, &r->err);
    json_decref(params);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_diss_request(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, diss_fields, &r->err);
    if (rc != QUN_OK) return rc;
    const char *token = qun_jstr(r->json, "confirmation_token");
    json_t *params = diss_params(r->json), *out = NULL;
    rc = qun_diss_request(r->db, &r->actor, GID, params, token, &out, &r->err);
    json_decref(params);
    if (rc == QUN_CONFIRMATION_REQUIRED)
        r->problem_extra = json_pack("{s:[{s:s, s:s}]}", "requirements", "method", "confirm",
                                     "how", "POST /v1/groups/{id}/dissolution/preview, then send its confirmation_token");
    return rc == QUN_OK ? qun_ok(r, 202, out) : rc;
}

qun_rc h_diss_status(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_diss_status(r->db, &r->actor, GID, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_diss_cancel(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_diss_cancel(r->db, &r->actor, GID, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
