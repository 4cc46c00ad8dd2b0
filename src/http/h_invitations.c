/* SPDX-License-Identifier: MIT */
/* Invitations with consent over HTTP: an owner or admin invites by username or openid,
 * the invitee lists, accepts or declines, the inviter or an admin revokes.  Each
 * handler is a field check over one core call (core/invitation.c). */
#include "http.h"

static qun_rc answer(qun_req_t *r, qun_rc rc, int status, json_t *out) {
    return rc == QUN_OK ? qun_ok(r, status, out) : rc;
}

static const qun_field_t no_fields[] = {{0}};

qun_rc h_invitation_create(qun_req_t *r) {
    static const qun_field_t f[] = {{"username", F_STR, false, 1, 64, NULL},
                                    {"openid", F_STR, false, 1, 64, NULL},
                                    {"role", F_STR, false, 1, 16, "admin|member"},
                                    {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK)
        rc = qun_invitation_create(r->db, &r->actor, r->params[0], qun_jstr(r->json, "username"),
                                   qun_jstr(r->json, "openid"), qun_jstr(r->json, "role"), &out, &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_invitation_list(qun_req_t *r) {
    json_t *items = NULL;
    qun_rc rc = qun_invitations_of_user(r->db, r->actor.uid, &items, &r->err);
    return answer(r, rc, 200, rc == QUN_OK ? json_pack("{s:o}", "items", items) : NULL);
}

/* The invitee's answer; the body is {} (or empty). */
static qun_rc respond(qun_req_t *r, bool accept) {
    json_t *out = NULL;
    qun_rc rc = qun_invitation_respond(r->db, &r->actor, r->params[0], accept, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_invitation_accept(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    return rc == QUN_OK ? respond(r, true) : rc;
}

qun_rc h_invitation_decline(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    return rc == QUN_OK ? respond(r, false) : rc;
}

qun_rc h_invitation_revoke(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_invitation_revoke(r->db, &r->actor, r->params[0], &out, &r->err);
    return answer(r, rc, 200, out);
}
