/* SPDX-License-Identifier: MIT */
/* Groups, memberships, leaving, ownership transfer and bulk member removal (the last two
 * with the verification their session's platform needs, and a preview issuing the
 * confirmation token). */
#include "http.h"
#include "qun/matrix.h"
#include "qun/read.h"

#define GID r->params[0]

static qun_rc answer(qun_req_t *r, qun_rc rc, int status, json_t *out) {
    return rc == QUN_OK ? qun_ok(r, status, out) : rc;
}

qun_rc h_group_create(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"name", F_STR, true, 1, 128, NULL},
        {"kind", F_STR, false, 1, 16, "standard|enterprise|education|finance|cross_border"},
        {"org", F_STR, false, 1, 64, NULL},
        {"regions", F_STRARR, false, 2, 8, NULL},
        {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc != QUN_OK) return rc;
    const char *kind = qun_jstr(r->json, "kind");
    json_t *out;
    rc = qun_group_create(r->db, &r->actor, qun_jstr(r->json, "name"), kind ? kind : "standard",
                          qun_jstr(r->json, "org"), json_object_get(r->json, "regions"), &out, &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_group_list(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_group_list(r->db, &r->actor, after, limit, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_group_get(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_group_get(r->db, &r->actor, GID, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_group_patch(qun_req_t *r) {
    static const qun_field_t f[] = {{"name", F_STR, true, 1, 128, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK) rc = qun_group_rename(r->db, &r->actor, GID, qun_jstr(r->json, "name"), &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_member_list(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_member_list(r->db, &r->actor, GID, after, limit, &out, &r->err);
    return answer(r, rc, 200, out);
}

static const qun_field_t member_fields[] = {{"openid", F_STR, false, 1, 64, NULL},
                                            {"username", F_STR, false, 1, 64, NULL},
                                            {"role", F_STR, false, 1, 16, "admin|member"},
                                            {0}};

/* The person to add, named by exactly one of openid and username (what people know of
 * each other); a username is looked up only for those who may add members here. */
static qun_rc member_named(qun_req_t *r, char openid[QUN_ID_MAX]) {
    const char *oid = qun_jstr(r->json, "openid"), *name = qun_jstr(r->json, "username");
    if (oid && name)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "username",
                              "name the person by username or by openid");
    if (!oid && !name)
        return qun_fail_field(&r->err, QUN_FIELD_MISSING, "openid", "whom to add: openid or username");
    if (oid) {
        snprintf(openid, QUN_ID_MAX, "%s", oid);
        return QUN_OK;
    }
    qun_group_t g;
    qun_rc rc = qun_group_access(r->db, &r->actor, GID, QUN_ROLE_ADMIN, &g, &r->err);
    if (rc == QUN_OK) rc = qun_user_openid_of(r->db, name, openid, &r->err);
    if (rc == QUN_USER_NOT_FOUND) qun_fail_field(&r->err, rc, "username", "no user is named %.60s", name);
    return rc;
}

qun_rc h_member_add(qun_req_t *r) {
    /* Either name may be left out, but one that is there is a name: a null openid stays
     * the FIELD_INVALID it was when openid was the only way (the field check would read
     * an optional null as absent). */
    static const char *const names[] = {"openid", "username"};
    for (int i = 0; i < 2; i++)
        if (json_is_null(json_object_get(r->json, names[i])))
            return qun_fail_field(&r->err, QUN_FIELD_INVALID, names[i], "%s must be a string", names[i]);
    qun_rc rc = qun_fields_check(r->json, member_fields, &r->err);
    json_t *out = NULL;
    char openid[QUN_ID_MAX];
    const char *role = qun_jstr(r->json, "role");
    if (rc == QUN_OK) rc = member_named(r, openid);
    if (rc == QUN_OK)
        rc = qun_member_add(r->db, &r->actor, GID, openid, role ? role : "member", &out, &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_member_patch(qun_req_t *r) {
    static const qun_field_t f[] = {{"role", F_STR, true, 1, 16, "admin|member"}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK)
        rc = qun_member_set_role(r->db, &r->actor, GID, r->params[1], qun_jstr(r->json, "role"), &out,
                                 &r->err);
    return answer(r, rc, 200, out);
}

static const qun_field_t no_fields[] = {{0}};

/* The optional reason of a removal or a leave is told in the member.removed event. */
qun_rc h_group_leave(qun_req_t *r) {
    static const qun_field_t f[] = {{"reason", F_STR, false, 0, 500, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    return rc == QUN_OK ? qun_group_leave(r->db, &r->actor, GID, qun_jstr(r->json, "reason"), &r->err) : rc;
}

/* A destructive action's answer: a refusal carries what the core put in problem. */
static qun_rc answer_action(qun_req_t *r, qun_rc rc, int status, json_t *out, json_t *problem) {
    if (rc != QUN_OK && problem) {
        json_decref(r->problem_extra);
        r->problem_extra = problem;
    } else {
        json_decref(problem);
    }
    return answer(r, rc, status, out);
}

static qun_action_proof_t action_proof(qun_req_t *r, json_t **problem) {
    return (qun_action_proof_t){.token = qun_jstr(r->json, "confirmation_token"),
                                .typed_name = qun_jstr(r->json, "typed_name"),
                                .challenge_id = qun_jstr(r->json, "challenge_id"),
                                .totp_code = qun_jstr(r->json, "totp_code"),
                                .problem = problem};
}

/* One removal counts against the bulk removals' window: once that is crossed it takes
 * the same proofs (an optional JSON body; none is needed below the threshold). */
qun_rc h_member_delete(qun_req_t *r) {
    static const qun_field_t f[] = {{"confirmation_token", F_STR, false, 1, 128, NULL},
                                    {"typed_name", F_STR, false, 1, 256, NULL},
                                    {"challenge_id", F_STR, false, 1, 64, NULL},
                                    {"totp_code", F_STR, false, 6, 8, NULL},
                                    {"reason", F_STR, false, 0, 500, NULL},
                                    {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *problem = NULL;
    qun_action_proof_t proof = action_proof(r, &problem);
    if (rc == QUN_OK)
        rc = qun_member_remove(r->db, &r->actor, GID, r->params[1], qun_jstr(r->json, "reason"), &proof,
                               &r->err);
    if (rc != QUN_OK) return answer_action(r, rc, 0, NULL, problem);
    json_decref(problem);
    return QUN_OK; /* 204 */
}

qun_rc h_transfer_preview(qun_req_t *r) {
    static const qun_field_t f[] = {{"to", F_STR, true, 1, 64, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL, *problem = NULL;
    if (rc == QUN_OK)
        rc = qun_transfer_preview(r->db, &r->actor, GID, qun_jstr(r->json, "to"), &out, &problem, &r->err);
    return answer_action(r, rc, 200, out, problem);
}

qun_rc h_transfer(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"to", F_STR, true, 1, 64, NULL},           {"confirmation_token", F_STR, false, 1, 128, NULL},
        {"typed_name", F_STR, false, 1, 256, NULL}, {"challenge_id", F_STR, false, 1, 64, NULL},
        {"totp_code", F_STR, false, 6, 8, NULL},    {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL, *problem = NULL;
    qun_action_proof_t proof = action_proof(r, &problem);
    if (rc == QUN_OK)
        rc = qun_transfer_propose(r->db, &r->actor, GID, qun_jstr(r->json, "to"), &proof, &out, &r->err);
    return answer_action(r, rc, 202, out, problem);
}

qun_rc h_member_remove_preview(qun_req_t *r) {
    static const qun_field_t f[] = {{"openids", F_STRARR, true, 1, 64, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK)
        rc = qun_member_remove_bulk_preview(r->db, &r->actor, GID, json_object_get(r->json, "openids"), &out,
                                            &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_member_remove_bulk(qun_req_t *r) {
    static const qun_field_t f[] = {{"openids", F_STRARR, true, 1, 64, NULL},
                                    {"confirmation_token", F_STR, false, 1, 128, NULL},
                                    {"typed_name", F_STR, false, 1, 256, NULL},
                                    {"challenge_id", F_STR, false, 1, 64, NULL},
                                    {"totp_code", F_STR, false, 6, 8, NULL},
                                    {"reason", F_STR, false, 0, 500, NULL},
                                    {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL, *problem = NULL;
    qun_action_proof_t proof = action_proof(r, &problem);
    if (rc == QUN_OK)
        rc = qun_member_remove_bulk(r->db, &r->actor, GID, json_object_get(r->json, "openids"),
                                    qun_jstr(r->json, "reason"), &proof, &out, &r->err);
    return answer_action(r, rc, 200, out, problem);
}

qun_rc h_transfer_accept(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK) rc = qun_transfer_answer(r->db, &r->actor, GID, true, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_transfer_decline(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK) rc = qun_transfer_answer(r->db, &r->actor, GID, false, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_transfer_withdraw(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_transfer_withdraw(r->db, &r->actor, GID, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_org_create(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"name", F_STR, true, 1, 128, NULL}, {"kind", F_STR, true, 1, 16, "enterprise|school"}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK)
        rc = qun_org_create(r->db, &r->actor, qun_jstr(r->json, "name"), qun_jstr(r->json, "kind"), &out,
                            &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_org_get(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_org_get(r->db, &r->actor, r->params[0], &out, &r->err);
    return answer(r, rc, 200, out);
}

/* GET /v1/orgs?after=&limit=: the orgs the caller administers (server admins: all). */
qun_rc h_org_list(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_org_list(r->db, &r->actor, after, limit, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_org_admin_add(qun_req_t *r) {
    static const qun_field_t f[] = {{"openid", F_STR, true, 1, 64, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK)
        rc = qun_org_add_admin(r->db, &r->actor, r->params[0], qun_jstr(r->json, "openid"), &r->err);
    return rc;
}

qun_rc h_org_guardian(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"minor", F_STR, true, 1, 64, NULL}, {"guardian", F_STR, true, 1, 64, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK)
        rc = qun_org_guardian_link(r->db, &r->actor, r->params[0], qun_jstr(r->json, "minor"),
                                   qun_jstr(r->json, "guardian"), &r->err);
    return rc;
}

/* POST /v1/groups/{id}/read {seq?}: mark the group read up to seq (default: the newest
 * message); the same positions as Matrix receipts (include/qun/read.h). */
qun_rc h_group_read(qun_req_t *r) {
    static const qun_field_t f[] = {{"seq", F_INT, false, 0, 9007199254740991LL, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL, *seq = json_object_get(r->json, "seq");
    int64_t upto = json_is_integer(seq) ? json_integer_value(seq) : -1; /* null reads as absent */
    if (rc == QUN_OK) rc = qun_read_mark_group(r->db, &r->actor, GID, upto, &out, &r->err);
    return answer(r, rc, 200, out);
}

/* PUT /v1/groups/{id}/typing {typing}: the member starts (for 30 s, or until the next
 * stop) or stops typing; nothing is stored (events.c "typing"). */
qun_rc h_group_typing(qun_req_t *r) {
    static const qun_field_t f[] = {{"typing", F_BOOL, true, 0, 0, NULL}, {0}};
    char local[QUN_MX_LOCAL_MAX] = "";
    qun_group_t g;
    json_t *profile = NULL;
    bool shared;
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK) rc = qun_group_access(r->db, &r->actor, GID, QUN_ROLE_MEMBER, &g, &r->err);
    if (rc == QUN_OK) rc = qun_mx_view_local(r->db, r->actor.openid, local, &r->err);
    if (rc == QUN_OK) rc = qun_mx_profile(r->db, r->actor.uid, r->actor.uid, &profile, &shared, &r->err);
    if (rc != QUN_OK) return rc;
    qun_typing_set(g.id, g.gid, r->actor.uid, r->actor.openid,
                   json_string_value(json_object_get(profile, "displayname")), local,
                   json_is_true(json_object_get(r->json, "typing")), 30000);
    json_decref(profile);
    return QUN_OK;
}
