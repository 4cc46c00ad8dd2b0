/* SPDX-License-Identifier: MIT */
/* Invitations with consent: an owner or admin invites someone, who becomes a member
 * only by accepting.  The rights are those of a direct add (qun_member_add): admins
 * invite members, only the owner invites admins, into an active group.  They are
 * checked when the invitation is made and again when it is accepted, since the
 * inviter's role and the group may have changed in between.
 *
 *   pending --accept--> accepted      (the invitee; the member is added in the same step)
 *   pending --decline-> declined      (the invitee; never a member)
 *   pending --revoke--> revoked       (the inviter, or the group's owner or admins)
 *   pending ----------> expired       (reserved; nothing expires an invitation yet)
 *
 * Invariants: I1 at most one pending invitation per group and invitee (a unique partial
 * index); I2 an invitation leaves `pending` once, and only an `accepted` one ever made
 * a member; I3 the invitee is not a member when the invitation is made. */
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/notify.h"

static const char *const STATE_PENDING = "pending";

/* The invitation iid as the API shows it, or NULL when there is none. */
static json_t *invitation_json(qun_db_t *db, const char *iid, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT i.id, i.state, g.gid, g.name, g.kind, g.state, ee.openid, ee.username, er.openid, "
        "er.username, i.role, i.created_at, i.decided_at FROM invitations i JOIN groups g ON g.id = "
        "i.group_id "
        "JOIN users ee ON ee.id = i.invitee_id JOIN users er ON er.id = i.inviter_id WHERE i.id = $1",
        "s", iid);
    if (rc != QUN_ROW) return NULL;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", qun_q_col_text(q, 0), "state",
        qun_q_col_text(q, 1), "group", qun_q_col_text(q, 2), "group_name", qun_q_col_text(q, 3), "group_kind",
        qun_q_col_text(q, 4), "group_state", qun_q_col_text(q, 5), "invitee", qun_q_col_text(q, 6),
        "invitee_username", qun_q_col_text(q, 7), "inviter", qun_q_col_text(q, 8), "inviter_username",
        qun_q_col_text(q, 9), "role", qun_q_col_text(q, 10), "created_at", (json_int_t)qun_q_col_int(q, 11));
    if (o)
        json_object_set_new(o, "decided_at",
                            qun_q_col_null(q, 12) ? json_null() : json_integer(qun_q_col_int(q, 12)));
    qun_q_done(q);
    return o;
}

static qun_rc answer(qun_db_t *db, const char *iid, json_t **out, qun_err_t *err) {
    *out = invitation_json(db, iid, err);
    return *out ? QUN_OK : qun_fail(err, QUN_STORE, "cannot read invitation %.40s back", iid);
}

/* Whether someone of role `by` may add a person with role `role` (qun_member_add's rule:
 * admins and the owner add members, only the owner appoints admins). */
static bool may_add(qun_role_t by, const char *role) {
    return strcmp(role, "admin") == 0 ? by == QUN_ROLE_OWNER : by >= QUN_ROLE_ADMIN;
}

/* The invitee named by exactly one of username and openid. */
static qun_rc invitee_id(qun_db_t *db, const char *username, const char *openid, int64_t *uid,
                         qun_err_t *err) {
    if (username && openid)
        return qun_fail_field(err, QUN_FIELD_INVALID, "username",
                              "name the invitee by username or by openid, not both");
    if (!username && !openid)
        return qun_fail_field(err, QUN_FIELD_MISSING, "username",
                              "name the invitee by username or by openid");
    if (openid) return qun_user_id(db, openid, uid, err);
    char pwhash[256];
    qun_rc rc = qun_user_credentials(db, username, uid, pwhash, sizeof pwhash, err);
    if (rc == QUN_USER_NOT_FOUND)
        return qun_fail_field(err, rc, "username", "no user is named %.60s", username);
    return rc;
}

qun_rc qun_invitation_create(qun_db_t *db, const qun_actor_t *a, const char *gid,
                             const char *username_or_null, const char *openid_or_null, const char *role,
                             json_t **out, qun_err_t *err) {
    qun_group_t g;
    int64_t uid;
    qun_role_t cur;
    qun_q_t *q;
    if (!role) role = "member";
    if (strcmp(role, "member") != 0 && strcmp(role, "admin") != 0)
        return qun_fail_field(err, QUN_FIELD_INVALID, "role", "role is admin or member");
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_ADMIN, &g, err);
    if (rc == QUN_OK && !may_add(g.role, role))
        rc = qun_fail(err, QUN_FORBIDDEN_ROLE, "only the owner appoints admins");
    if (rc == QUN_OK && qun_group_state_parse(g.state) != QUN_GROUP_ACTIVE)
        rc = qun_fail(err, QUN_GROUP_NOT_ACTIVE, "group %s is %s: nobody can be invited now", g.gid, g.state);
    if (rc == QUN_OK) rc = invitee_id(db, username_or_null, openid_or_null, &uid, err);
    if (rc == QUN_OK) rc = qun_member_role(db, g.id, uid, &cur, err);
    if (rc == QUN_OK && cur != QUN_ROLE_NONE)
        rc = qun_fail(err, QUN_ALREADY_MEMBER, "%s is already a %s",
                      username_or_null ? username_or_null : openid_or_null, qun_role_name(cur));
    if (rc != QUN_OK) return rc;
    /* I1: a second invitation of the same person answers the pending one. */
    char iid[QUN_ID_MAX];
    rc = qun_invitation_pending_for(db, g.id, uid, iid, err);
    if (rc != QUN_OK) return rc;
    if (iid[0]) return answer(db, iid, out, err);
    qun_id_new(iid, "i");
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO invitations(id, group_id, inviter_id, invitee_id, role, state, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    "siiissi", iid, g.id, a->uid, uid, role, STATE_PENDING, qun_now());
    if (rc != QUN_DONE) return rc == QUN_OK ? QUN_STORE : rc;
    rc = qun_db_run(db, &q, err, "SELECT openid FROM users WHERE id = $1", "i", uid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    json_t *f = json_pack("{s:s, s:s, s:s, s:s}", "openid", qun_q_col_text(q, 0), "by", a->openid, "role",
                          role, "invitation", iid);
    qun_q_done(q);
    rc = qun_event_group(db, "member.invited", g.id, uid, f, err);
    if (rc == QUN_OK) rc = qun_notify_invitation(db, iid, g.id, a->uid, uid, role, err);
    return rc == QUN_OK ? answer(db, iid, out, err) : rc;
}

/* The row of invitation iid as its invitee or anyone else sees it. */
typedef struct {
    int64_t group_id, inviter_id, invitee_id;
    char role[8], state[16], gid[QUN_ID_MAX], openid[QUN_ID_MAX];
} inv_row_t;

static qun_rc load(qun_db_t *db, const char *iid, inv_row_t *r, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT i.group_id, i.inviter_id, i.invitee_id, i.role, i.state, g.gid, u.openid "
        "FROM invitations i JOIN groups g ON g.id = i.group_id JOIN users u ON u.id = i.invitee_id "
        "WHERE i.id = $1",
        "s", iid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_INVITATION_NOT_FOUND, "no invitation %.40s", iid);
    if (rc != QUN_ROW) return rc;
    r->group_id = qun_q_col_int(q, 0);
    r->inviter_id = qun_q_col_int(q, 1);
    r->invitee_id = qun_q_col_int(q, 2);
    snprintf(r->role, sizeof r->role, "%s", qun_q_col_text(q, 3));
    snprintf(r->state, sizeof r->state, "%s", qun_q_col_text(q, 4));
    snprintf(r->gid, sizeof r->gid, "%s", qun_q_col_text(q, 5));
    snprintf(r->openid, sizeof r->openid, "%s", qun_q_col_text(q, 6));
    qun_q_done(q);
    return QUN_OK;
}

/* Move a pending invitation to state (I2: only from pending). */
static qun_rc decide(qun_db_t *db, const char *iid, const char *state, qun_err_t *err) {
    qun_rc rc =
        qun_db_run(db, NULL, err,
                   "UPDATE invitations SET state = $2, decided_at = $3 WHERE id = $1 AND state = 'pending'",
                   "ssi", iid, state, qun_now());
    if (rc != QUN_DONE) return rc == QUN_OK ? QUN_STORE : rc;
    return qun_db_changes(db) == 1
               ? QUN_OK
               : qun_fail(err, QUN_INVITATION_CLOSED, "invitation %.40s is no longer pending", iid);
}

/* Accepting: the checks of a direct add, again, then the member row and its event. */
static qun_rc accept(qun_db_t *db, const char *iid, const inv_row_t *r, qun_err_t *err) {
    qun_group_t g;
    qun_role_t by, cur;
    qun_rc rc = qun_group_load(db, r->gid, &g, err);
    if (rc != QUN_OK) return rc;
    qun_group_state_t st = qun_group_state_parse(g.state);
    if (!qun_group_state_live(st))
        return qun_fail(err, QUN_GROUP_GONE, "group %s was dissolved: its invitations cannot be accepted",
                        g.gid);
    if (st != QUN_GROUP_ACTIVE)
        return qun_fail(
            err, QUN_GROUP_NOT_ACTIVE,
            "group %s is %s (a dissolution is open): the invitation can be accepted only while it is "
            "active",
            g.gid, g.state);
    rc = qun_member_role(db, g.id, r->inviter_id, &by, err);
    if (rc == QUN_OK && !may_add(by, r->role))
        rc = qun_fail(err, QUN_INVITATION_STALE, "whoever invited you may no longer add a%s %s to group %s",
                      strcmp(r->role, "admin") == 0 ? "n" : "", r->role, g.gid);
    if (rc == QUN_OK) rc = qun_member_role(db, g.id, r->invitee_id, &cur, err);
    if (rc == QUN_OK && cur != QUN_ROLE_NONE)
        rc = qun_fail(err, QUN_ALREADY_MEMBER, "you are already a %s of group %s", qun_role_name(cur), g.gid);
    if (rc == QUN_OK) rc = decide(db, iid, "accepted", err);
    if (rc == QUN_OK) rc = qun_member_insert(db, g.id, r->invitee_id, r->role, qun_now(), err);
    if (rc == QUN_OK) rc = qun_event_member(db, "member.added", g.id, r->invitee_id, err);
    return rc;
}

qun_rc qun_invitation_respond(qun_db_t *db, const qun_actor_t *a, const char *iid, bool accept_it,
                              json_t **out, qun_err_t *err) {
    inv_row_t r;
    qun_rc rc = load(db, iid, &r, err);
    /* Someone else's invitation is not disclosed. */
    if (rc == QUN_OK && r.invitee_id != a->uid)
        rc = qun_fail(err, QUN_INVITATION_NOT_FOUND, "no invitation %.40s", iid);
    if (rc != QUN_OK) return rc;
    const char *want = accept_it ? "accepted" : "declined";
    if (strcmp(r.state, want) == 0) return answer(db, iid, out, err); /* a replay */
    if (strcmp(r.state, STATE_PENDING) != 0)
        return qun_fail(err, QUN_INVITATION_CLOSED, "this invitation was %s", r.state);
    if (accept_it) {
        rc = accept(db, iid, &r, err);
    } else {
        rc = decide(db, iid, "declined", err);
        if (rc == QUN_OK)
            rc = qun_event_group(db, "invitation.declined", r.group_id, r.invitee_id,
                                 json_pack("{s:s, s:s}", "openid", r.openid, "invitation", iid), err);
    }
    return rc == QUN_OK ? answer(db, iid, out, err) : rc;
}

qun_rc qun_invitation_revoke(qun_db_t *db, const qun_actor_t *a, const char *iid, json_t **out,
                             qun_err_t *err) {
    inv_row_t r;
    qun_role_t by = QUN_ROLE_NONE;
    qun_rc rc = load(db, iid, &r, err);
    if (rc == QUN_OK) rc = qun_member_role(db, r.group_id, a->uid, &by, err);
    /* The inviter, or whoever may make the same invitation now; to anyone else it does
     * not exist. */
    if (rc == QUN_OK && r.inviter_id != a->uid && !may_add(by, r.role))
        rc = qun_fail(err, QUN_INVITATION_NOT_FOUND, "no invitation %.40s", iid);
    if (rc != QUN_OK) return rc;
    if (strcmp(r.state, "revoked") == 0) return answer(db, iid, out, err);
    if (strcmp(r.state, STATE_PENDING) != 0)
        return qun_fail(err, QUN_INVITATION_CLOSED, "this invitation was %s", r.state);
    rc = decide(db, iid, "revoked", err);
    if (rc == QUN_OK)
        rc = qun_event_group(
            db, "invitation.revoked", r.group_id, r.invitee_id,
            json_pack("{s:s, s:s, s:s}", "openid", r.openid, "invitation", iid, "by", a->openid), err);
    return rc == QUN_OK ? answer(db, iid, out, err) : rc;
}

qun_rc qun_invitation_pending_for(qun_db_t *db, int64_t group_id, int64_t uid, char iid[QUN_ID_MAX],
                                  qun_err_t *err) {
    qun_q_t *q;
    iid[0] = '\0';
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT id FROM invitations WHERE group_id = $1 AND invitee_id = $2 AND state = 'pending'",
                   "ii", group_id, uid);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    snprintf(iid, QUN_ID_MAX, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_invitations_of_user(qun_db_t *db, int64_t uid, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    char ids[QUN_INVITATIONS_MAX][QUN_ID_MAX];
    int n = 0;
    /* Pending invitations to groups still live (a dissolved group's cannot be accepted),
     * which the invitee has not joined by another way meanwhile; oldest first. */
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT i.id FROM invitations i JOIN groups g ON g.id = i.group_id "
                   "WHERE i.invitee_id = $1 AND i.state = 'pending' "
                   "AND g.state IN ('active', 'review', 'pending') AND NOT EXISTS "
                   "(SELECT 1 FROM members m WHERE m.group_id = i.group_id AND m.user_id = i.invitee_id) "
                   "ORDER BY i.created_at, i.id LIMIT $2",
                   "ii", uid, (int64_t)QUN_INVITATIONS_MAX);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        snprintf(ids[n++], QUN_ID_MAX, "%s", qun_q_col_text(q, 0));
    if (rc != QUN_DONE) return rc;
    json_t *items = json_array();
    if (!items) return qun_fail(err, QUN_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        json_t *o = invitation_json(db, ids[i], err);
        if (!o || json_array_append_new(items, o) != 0) {
            json_decref(items);
            return qun_fail(err, QUN_STORE, "cannot read invitation %.40s", ids[i]);
        }
    }
    *out = items;
    return QUN_OK;
}

qun_rc qun_invitation_consent_check(qun_db_t *db, const qun_group_t *g, qun_err_t *err) {
    (void)db;
    if (!qun_policy_consent_required(qun_core_cfg.policy, g->kind, g->member_count)) return QUN_OK;
    return qun_fail(
        err, QUN_INVITATION_REQUIRED,
        "group %s adds people only with their consent: invite them with POST /v1/groups/%s/invitations "
        "{\"username\" or \"openid\", \"role\"}; they become members when they accept",
        g->gid, g->gid);
}
