/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/approval.c on an in-memory store, through real dissolution
 * requests: an enterprise group with dissolve protection needs an org admin's yes, an
 * education group its school admin's and every guardian's of a minor member.  Who may
 * decide (nobody their own request; outsiders are told there is no such approval),
 * approval moving the dissolution to pending once every approval is in, a rejection
 * ending it, expiry, and the risk review only server admins see. */
#include "qun/core.h"
#include "qun/policy.h"
#include "qun/risk.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t owner, admin2, member, outsider, minor, guardian1, guardian2, server_admin;
static char enterprise_org[QUN_ID_MAX], school_org[QUN_ID_MAX];

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static void org(const char *kind, char *oid) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_org_create(db, &owner, kind, kind, &out, &err) == QUN_OK);
    snprintf(oid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_org_add_admin(db, &owner, oid, admin2.openid, &err) == QUN_OK);
}

/* A group of kind in org oid with member (and minor for education) in it. */
static void group(const char *kind, const char *oid, char *gid) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_group_create(db, &owner, "approvals", kind, oid, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_member_add(db, &owner, gid, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    if (strcmp(kind, "education") == 0) {
        CHECK(qun_member_add(db, &owner, gid, minor.openid, "member", &out, &err) == QUN_OK);
        json_decref(out);
    }
}

/* The owner previews and requests the group's dissolution (stepping up, as education
 * needs); answers the request's rc. */
static qun_rc request(const char *gid) {
    json_t *params = json_pack("{s:s}", "messages", "delete"), *out = NULL;
    qun_err_t err;
    char token[80] = "";
    qun_rc rc = qun_diss_preview(db, &owner, gid, params, NULL, &out, &err);
    if (rc == QUN_OK) {
        snprintf(token, sizeof token, "%s", json_string_value(json_object_get(out, "confirmation_token")));
        json_decref(out);
        rc = qun_diss_request(db, &owner, gid, params,
                              &(qun_diss_proof_t){.token = token, .stepped_up = true}, &out, &err);
        if (rc != QUN_OK) fprintf(stderr, "request: %s %s\n", qun_rc_name(rc), err.msg);
        if (rc == QUN_OK) json_decref(out);
    }
    json_decref(params);
    return rc;
}

/* The group's state and its dissolution's, "" when unknown. */
static void states(const char *gid, char group_state[16], char diss_state[16]) {
    json_t *out = NULL;
    qun_err_t err;
    group_state[0] = diss_state[0] = '\0';
    if (qun_diss_status(db, &owner, gid, &out, &err) != QUN_OK) return;
    snprintf(group_state, 16, "%s", json_string_value(json_object_get(out, "state")));
    snprintf(diss_state, 16, "%s", json_string_value(json_object_get(out, "dissolution_state")));
    json_decref(out);
}

static bool in_state(const char *gid, const char *group_state, const char *diss_state) {
    char g[16], d[16];
    states(gid, g, d);
    if (strcmp(g, group_state) != 0 || strcmp(d, diss_state) != 0)
        fprintf(stderr, "  group %s is %s / %s, want %s / %s\n", gid, g, d, group_state, diss_state);
    return strcmp(g, group_state) == 0 && strcmp(d, diss_state) == 0;
}

/* The ids of the pending approvals of group gid that actor a is asked for, by kind. */
static int approvals_for(const qun_actor_t *a, const char *gid, const char *kind, char ids[][QUN_ID_MAX],
                         int max) {
    json_t *out = NULL, *e;
    qun_err_t err;
    size_t i;
    int n = 0;
    CHECK(qun_approval_list(db, a, &out, &err) == QUN_OK);
    json_array_foreach(json_object_get(out, "items"), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "group")), gid) != 0) continue;
        if (strcmp(json_string_value(json_object_get(e, "kind")), kind) != 0) continue;
        if (n < max) snprintf(ids[n++], QUN_ID_MAX, "%s", json_string_value(json_object_get(e, "id")));
    }
    json_decref(out);
    return n;
}

static qun_rc decide(const qun_actor_t *a, const char *aid, bool yes, const char *reason, json_t **out) {
    qun_err_t err;
    json_t *ignored = NULL;
    qun_rc rc = qun_approval_decide(db, a, aid, yes, reason, out ? out : &ignored, &err);
    if (!out && rc == QUN_OK) json_decref(ignored);
    return rc;
}

/* What a group's dissolution would need, as the preview lists it. */
static void needed_for_preview(void) {
    char ent[QUN_ID_MAX], edu[QUN_ID_MAX];
    group("enterprise", enterprise_org, ent);
    group("education", school_org, edu);
    qun_group_t g;
    qun_err_t err;
    json_t *out = NULL;
    CHECK(qun_group_load(db, ent, &g, &err) == QUN_OK);
    CHECK(qun_approvals_needed(db, &g, &(qun_approval_needs_t){.org_admin = true}, &out, &err) == QUN_OK);
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    /* `from` is pinned English; from_code and from_params are what clients say. */
    CHECK_STR(s, "[{\"from\":\"any admin of the org\",\"from_code\":\"org_admins\",\"from_params\":{\"org\":"
                 "\"enterprise\"},\"kind\":\"org_admin\"}]");
    free(s);
    json_decref(out);
    CHECK(qun_approvals_needed(db, &g, &(qun_approval_needs_t){0}, &out, &err) == QUN_OK);
    CHECK(json_array_size(out) == 0);
    json_decref(out);
    CHECK(qun_group_load(db, edu, &g, &err) == QUN_OK);
    CHECK(qun_approvals_needed(db, &g, &(qun_approval_needs_t){.school_admin = true, .guardians = true}, &out,
                               &err) == QUN_OK);
    CHECK(json_array_size(out) == 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 0), "kind")), "school_admin");
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 1), "from")), guardian1.openid);
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 1), "for_minor")), minor.openid);
    /* Names as well as ids: a parent reads "a guardian of <name>", never an openid. */
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 1), "from_name")), guardian1.username);
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 1), "for_minor_name")), minor.username);
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 2), "from")), guardian2.openid);
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 0), "from_code")), "school_admins");
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 1), "from_code")), "guardian");
    json_t *fp = json_object_get(json_array_get(out, 1), "from_params");
    CHECK_STR(json_string_value(json_object_get(fp, "guardian")), guardian1.username);
    CHECK_STR(json_string_value(json_object_get(fp, "minor")), minor.username);
    json_decref(out);
}

/* Who may decide an org admin's approval: exactly the org's other admins.  Refusals
 * change nothing; the one yes moves the dissolution on to pending, ledgered. */
static void org_admin_approves(void) {
    char gid[QUN_ID_MAX], aid[1][QUN_ID_MAX];
    group("enterprise", enterprise_org, gid);
    CHECK(request(gid) == QUN_OK);
    CHECK(in_state(gid, "review", "review"));
    CHECK(approvals_for(&admin2, gid, "org_admin", aid, 1) == 1);
    CHECK(approvals_for(&member, gid, "org_admin", aid + 0, 0) == 0); /* not asked */
    static const struct {
        const char *name;
        qun_actor_t *who;
        qun_rc rc;
    } rows[] = {
        {"a group member who is no org admin", &member, QUN_APPROVAL_NOT_FOUND},
        {"an outsider", &outsider, QUN_APPROVAL_NOT_FOUND},
        {"a server admin", &server_admin, QUN_APPROVAL_NOT_FOUND},
        {"the requester, an org admin too", &owner, QUN_FORBIDDEN_APPROVER},
        {"the other org admin", &admin2, QUN_OK},
        {"the other org admin again", &admin2, QUN_APPROVAL_CLOSED},
    };
    int64_t ledger0 = unit_count(db, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'approval.approved'");
    for (size_t r = 0; r < NROWS(rows); r++) {
        json_t *out = NULL;
        qun_rc rc = decide(rows[r].who, aid[0], true, "ok", &out);
        CHECKF(rc == rows[r].rc, rows[r].name);
        if (rc != QUN_OK) {
            CHECKF(rows[r].rc == QUN_APPROVAL_CLOSED || in_state(gid, "review", "review"), rows[r].name);
            continue;
        }
        CHECKF(strcmp(json_string_value(json_object_get(out, "state")), "approved") == 0, rows[r].name);
        CHECKF(strcmp(json_string_value(json_object_get(out, "reason")), "ok") == 0, rows[r].name);
        CHECKF(strcmp(json_string_value(json_object_get(out, "requested_by")), owner.openid) == 0,
               rows[r].name);
        json_decref(out);
    }
    CHECK(in_state(gid, "pending", "pending"));
    CHECK(unit_count(db, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'approval.approved'") ==
          ledger0 + 1);
    CHECK(approvals_for(&admin2, gid, "org_admin", aid, 1) == 0); /* no longer pending */
}

/* One rejection ends the dissolution; the group is active again. */
static void rejection_ends_it(void) {
    char gid[QUN_ID_MAX], aid[1][QUN_ID_MAX];
    group("enterprise", enterprise_org, gid);
    CHECK(request(gid) == QUN_OK);
    CHECK(approvals_for(&admin2, gid, "org_admin", aid, 1) == 1);
    json_t *out = NULL;
    CHECK(decide(&admin2, aid[0], false, "we still need it", &out) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "state")), "rejected");
    CHECK_STR(json_string_value(json_object_get(out, "reason")), "we still need it");
    json_decref(out);
    CHECK(in_state(gid, "active", "rejected"));
    qun_err_t err;
    CHECK(qun_message_post(db, &member, gid, "still here", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(decide(&admin2, aid[0], true, NULL, NULL) == QUN_APPROVAL_CLOSED);
    /* A new request opens a new approval. */
    CHECK(request(gid) == QUN_OK);
    CHECK(in_state(gid, "review", "review"));
}

/* Open approvals expire with their request: deciding late is refused, and the expiry
 * job ends the dissolution; before the time it does nothing. */
static void expiry(void) {
    char gid[QUN_ID_MAX], aid[1][QUN_ID_MAX];
    group("enterprise", enterprise_org, gid);
    CHECK(request(gid) == QUN_OK);
    CHECK(approvals_for(&admin2, gid, "org_admin", aid, 1) == 1);
    qun_q_t *q;
    qun_err_t err;
    int64_t did = 0, expires = 0;
    if (qun_db_run(db, &q, &err, "SELECT dissolution_id, expires_at FROM approvals WHERE aid = $1", "s",
                   aid[0]) == QUN_ROW) {
        did = qun_q_col_int(q, 0);
        expires = qun_q_col_int(q, 1);
        qun_q_done(q);
    }
    CHECK(expires > qun_now());
    CHECK(qun_approvals_expire(db, did, &err) == QUN_OK);
    CHECK(in_state(gid, "review", "review"));
    qun_clock_advance(expires - qun_now());
    CHECK(decide(&admin2, aid[0], true, NULL, NULL) == QUN_APPROVAL_CLOSED);
    CHECK(qun_approvals_expire(db, did, &err) == QUN_OK);
    CHECK(in_state(gid, "active", "expired"));
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM approvals WHERE dissolution_id = %lld AND state = 'expired'",
             (long long)did);
    CHECK(unit_count(db, sql) == 1);
}

/* An education group: the school admin and both guardians of the minor member must
 * all say yes; each guardian decides only their own approval. */
static void guardians_all_needed(void) {
    char gid[QUN_ID_MAX], school[1][QUN_ID_MAX], g1[2][QUN_ID_MAX], g2[2][QUN_ID_MAX];
    group("education", school_org, gid);
    CHECK(request(gid) == QUN_OK);
    CHECK(in_state(gid, "review", "review"));
    CHECK(approvals_for(&admin2, gid, "school_admin", school, 1) == 1);
    CHECK(approvals_for(&guardian1, gid, "guardian", g1, 2) == 1);
    CHECK(approvals_for(&guardian2, gid, "guardian", g2, 2) == 1);
    CHECK(strcmp(g1[0], g2[0]) != 0);
    CHECK(decide(&guardian2, g1[0], true, NULL, NULL) == QUN_APPROVAL_NOT_FOUND);
    CHECK(decide(&admin2, g1[0], true, NULL, NULL) == QUN_APPROVAL_NOT_FOUND);
    CHECK(decide(&admin2, school[0], true, NULL, NULL) == QUN_OK);
    CHECK(in_state(gid, "review", "review"));
    CHECK(decide(&guardian1, g1[0], true, NULL, NULL) == QUN_OK);
    CHECK(in_state(gid, "review", "review"));
    CHECK(decide(&guardian2, g2[0], true, NULL, NULL) == QUN_OK);
    CHECK(in_state(gid, "pending", "pending"));
}

/* A risk review is decided by any server admin, and only they are asked. */
static void risk_review_by_server_admins(void) {
    char gid[QUN_ID_MAX], aid[1][QUN_ID_MAX], org_aid[1][QUN_ID_MAX];
    group("enterprise", enterprise_org, gid);
    CHECK(request(gid) == QUN_OK);
    qun_group_t g;
    qun_err_t err;
    CHECK(qun_group_load(db, gid, &g, &err) == QUN_OK);
    qun_q_t *q;
    int64_t did = 0;
    qun_rc rc = qun_db_run(db, &q, &err, "SELECT id FROM dissolutions WHERE group_id = $1", "i", g.id);
    CHECK(rc == QUN_ROW);
    if (rc == QUN_ROW) {
        did = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    int n = -1;
    CHECK(qun_approvals_create(db, did, &g, &(qun_approval_needs_t){.risk_review = true}, qun_now() + 3600,
                               &n, &err) == QUN_OK);
    CHECK(n == 1);
    CHECK(approvals_for(&admin2, gid, "risk_review", aid, 1) == 0);
    CHECK(approvals_for(&server_admin, gid, "risk_review", aid, 1) == 1);
    CHECK(decide(&admin2, aid[0], true, NULL, NULL) == QUN_APPROVAL_NOT_FOUND);
    CHECK(approvals_for(&admin2, gid, "org_admin", org_aid, 1) == 1);
    CHECK(decide(&admin2, org_aid[0], true, NULL, NULL) == QUN_OK);
    CHECK(in_state(gid, "review", "review")); /* the review is still open */
    CHECK(decide(&server_admin, aid[0], true, "looked fine", NULL) == QUN_OK);
    CHECK(in_state(gid, "pending", "pending"));
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    qun_policy_t *policy = NULL;
    CHECK(qun_policy_builtin(&policy) == QUN_OK);
    qun_core_cfg.policy = policy;
    /* The owner asks for many dissolutions here; the risk engine (tests/unit/core/risk.c)
     * would ask for a step-up after the third in a day. */
    qun_risk_cfg.rules = 0;
    user("owner", &owner);
    user("admin2", &admin2);
    user("member", &member);
    user("outsider", &outsider);
    user("minor", &minor);
    user("guardian1", &guardian1);
    user("guardian2", &guardian2);
    user("root", &server_admin);
    server_admin.is_admin = true;
    org("enterprise", enterprise_org);
    org("school", school_org);
    CHECK(qun_org_guardian_link(db, &owner, school_org, minor.openid, guardian1.openid, &err) == QUN_OK);
    CHECK(qun_org_guardian_link(db, &owner, school_org, minor.openid, guardian2.openid, &err) == QUN_OK);
    RUN(needed_for_preview);
    RUN(org_admin_approves);
    RUN(rejection_ends_it);
    RUN(expiry);
    RUN(guardians_all_needed);
    RUN(risk_review_by_server_admins);
    qun_db_close(db);
    qun_policy_free(policy);
    return unit_done("core/approval");
}
