/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/invitation.c on an in-memory store: inviting by username and
 * by openid, the pending invitation answered again, declining (never a member),
 * accepting (a member with the invited role, counted, announced), the rights of a
 * direct add at invitation and again at acceptance, replays, other users' invitations
 * not disclosed, revoking, the invitee's list, and the events' audiences (an invitation
 * joins nobody to the live streams). */
#include "qun/core.h"
#include "qun/event.h"
#include "qun/policy.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t owner, admin, member, alice, bob, carol;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

/* A group of owner's with an admin and a member into gid. */
static void new_group(char *gid) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_group_create(db, &owner, "club", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_member_add(db, &owner, gid, admin.openid, "admin", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_member_add(db, &owner, gid, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
}

/* Invite; the new invitation's id into iid (when iid is not NULL); the rc. */
static qun_rc invite(const qun_actor_t *by, const char *gid, const char *username, const char *openid,
                     const char *role, char *iid) {
    json_t *out = NULL;
    qun_err_t err;
    qun_rc rc = qun_invitation_create(db, by, gid, username, openid, role, &out, &err);
    if (rc == QUN_OK && iid) snprintf(iid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    if (rc == QUN_OK) CHECK(strcmp(json_string_value(json_object_get(out, "state")), "pending") == 0);
    json_decref(out);
    return rc;
}

static qun_rc respond(const qun_actor_t *a, const char *iid, bool accept, char *state) {
    json_t *out = NULL;
    qun_err_t err;
    qun_rc rc = qun_invitation_respond(db, a, iid, accept, &out, &err);
    if (rc == QUN_OK && state) snprintf(state, 16, "%s", json_string_value(json_object_get(out, "state")));
    json_decref(out);
    return rc;
}

static qun_role_t role_of(const char *gid, const qun_actor_t *a) {
    qun_group_t g;
    qun_err_t err;
    return qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, &err) == QUN_OK ? g.role : QUN_ROLE_NONE;
}

static int64_t events(const char *topic, int64_t uid) {
    qun_q_t *q;
    int64_t n = -1;
    if (qun_db_run(db, &q, NULL, "SELECT COUNT(*) FROM events WHERE topic = $1 AND user_id = $2", "si", topic,
                   uid) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

static void invite_and_answer(void) {
    char gid[QUN_ID_MAX], i1[QUN_ID_MAX], i2[QUN_ID_MAX], again[QUN_ID_MAX], state[16];
    new_group(gid);
    CHECK(invite(&admin, gid, alice.username, NULL, NULL, i1) == QUN_OK);
    CHECK(strncmp(i1, "i_", 2) == 0);
    CHECK(invite(&owner, gid, NULL, bob.openid, "admin", i2) == QUN_OK);
    /* I1: the pending invitation answers a second one. */
    CHECK(invite(&owner, gid, NULL, alice.openid, "admin", again) == QUN_OK && strcmp(again, i1) == 0);
    CHECK(events("member.invited", alice.uid) == 1 && events("member.invited", bob.uid) == 1);
    qun_group_t g;
    qun_err_t err;
    CHECK(qun_group_load(db, gid, &g, &err) == QUN_OK);
    char found[QUN_ID_MAX];
    CHECK(qun_invitation_pending_for(db, g.id, alice.uid, found, &err) == QUN_OK && strcmp(found, i1) == 0);
    CHECK(qun_invitation_pending_for(db, g.id, carol.uid, found, &err) == QUN_OK && found[0] == '\0');
    json_t *list = NULL;
    CHECK(qun_invitations_of_user(db, alice.uid, &list, &err) == QUN_OK && json_array_size(list) == 1);
    json_t *it = json_array_get(list, 0);
    CHECK(strcmp(json_string_value(json_object_get(it, "group_name")), "club") == 0);
    CHECK(strcmp(json_string_value(json_object_get(it, "inviter_username")), "admin") == 0);
    CHECK(strcmp(json_string_value(json_object_get(it, "role")), "member") == 0);
    json_decref(list);

    /* Other users' invitations do not exist for them. */
    CHECK(respond(&bob, i1, true, NULL) == QUN_INVITATION_NOT_FOUND);
    CHECK(respond(&owner, i1, true, NULL) == QUN_INVITATION_NOT_FOUND);
    CHECK(respond(&alice, "i_nope", true, NULL) == QUN_INVITATION_NOT_FOUND);

    /* Decline: never a member; a replay answers the same; accepting it then is closed. */
    CHECK(respond(&alice, i1, false, state) == QUN_OK && strcmp(state, "declined") == 0);
    CHECK(role_of(gid, &alice) == QUN_ROLE_NONE);
    CHECK(respond(&alice, i1, false, state) == QUN_OK && strcmp(state, "declined") == 0);
    CHECK(respond(&alice, i1, true, NULL) == QUN_INVITATION_CLOSED);
    CHECK(events("invitation.declined", alice.uid) == 1);

    /* Accept: a member with the invited role, once; a replay answers the same. */
    int64_t before = g.member_count;
    CHECK(respond(&bob, i2, true, state) == QUN_OK && strcmp(state, "accepted") == 0);
    CHECK(role_of(gid, &bob) == QUN_ROLE_ADMIN);
    CHECK(respond(&bob, i2, true, state) == QUN_OK && strcmp(state, "accepted") == 0);
    CHECK(respond(&bob, i2, false, NULL) == QUN_INVITATION_CLOSED);
    CHECK(qun_group_load(db, gid, &g, &err) == QUN_OK && g.member_count == before + 1);
    CHECK(events("member.added", bob.uid) >= 1);
    CHECK(invite(&owner, gid, NULL, bob.openid, NULL, NULL) == QUN_ALREADY_MEMBER);
}

static void rights(void) {
    char gid[QUN_ID_MAX], iid[QUN_ID_MAX];
    new_group(gid);
    CHECK(invite(&member, gid, "alice", NULL, NULL, NULL) == QUN_FORBIDDEN_ROLE);
    CHECK(invite(&admin, gid, "alice", NULL, "admin", NULL) == QUN_FORBIDDEN_ROLE);
    CHECK(invite(&alice, gid, "bob", NULL, NULL, NULL) == QUN_GROUP_NOT_FOUND);
    CHECK(invite(&owner, gid, "nobody-here", NULL, NULL, NULL) == QUN_USER_NOT_FOUND);
    CHECK(invite(&owner, gid, "alice", alice.openid, NULL, NULL) == QUN_FIELD_INVALID);
    CHECK(invite(&owner, gid, NULL, NULL, NULL, NULL) == QUN_FIELD_MISSING);
    CHECK(invite(&owner, gid, "alice", NULL, "owner", NULL) == QUN_FIELD_INVALID);
    CHECK(invite(&owner, gid, "member", NULL, NULL, NULL) == QUN_ALREADY_MEMBER);

    /* Re-checked at acceptance: the inviter demoted to member meanwhile. */
    CHECK(invite(&admin, gid, "carol", NULL, NULL, iid) == QUN_OK);
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_member_set_role(db, &owner, gid, admin.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(respond(&carol, iid, true, NULL) == QUN_INVITATION_STALE);
    CHECK(role_of(gid, &carol) == QUN_ROLE_NONE);

    /* ... and the group no longer active. */
    char g2[QUN_ID_MAX];
    new_group(g2);
    CHECK(invite(&owner, g2, "carol", NULL, NULL, iid) == QUN_OK);
    qun_group_t g;
    CHECK(qun_group_load(db, g2, &g, &err) == QUN_OK);
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = 'pending' WHERE id = $1", "i", g.id) ==
          QUN_DONE);
    CHECK(respond(&carol, iid, true, NULL) == QUN_GROUP_NOT_ACTIVE);
    CHECK(invite(&owner, g2, "alice", NULL, NULL, NULL) == QUN_GROUP_NOT_ACTIVE);
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = 'dissolved' WHERE id = $1", "i", g.id) ==
          QUN_DONE);
    CHECK(respond(&carol, iid, true, NULL) == QUN_GROUP_GONE);
    json_t *list = NULL;
    CHECK(qun_invitations_of_user(db, carol.uid, &list, &err) == QUN_OK);
    CHECK(json_array_size(list) == 1); /* the first group's stale one only */
    json_decref(list);
    /* Declining always works. */
    CHECK(respond(&carol, iid, false, NULL) == QUN_OK);
}

static void revoke(void) {
    char gid[QUN_ID_MAX], iid[QUN_ID_MAX];
    new_group(gid);
    CHECK(invite(&owner, gid, "alice", NULL, "admin", iid) == QUN_OK);
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_invitation_revoke(db, &member, iid, &out, &err) == QUN_INVITATION_NOT_FOUND);
    CHECK(qun_invitation_revoke(db, &admin, iid, &out, &err) == QUN_INVITATION_NOT_FOUND); /* an admin one */
    CHECK(qun_invitation_revoke(db, &owner, iid, &out, &err) == QUN_OK);
    CHECK(strcmp(json_string_value(json_object_get(out, "state")), "revoked") == 0);
    json_decref(out);
    CHECK(qun_invitation_revoke(db, &owner, iid, &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(respond(&alice, iid, true, NULL) == QUN_INVITATION_CLOSED);
    CHECK(role_of(gid, &alice) == QUN_ROLE_NONE);
    /* A new invitation may follow a closed one. */
    CHECK(invite(&admin, gid, "alice", NULL, NULL, iid) == QUN_OK);
    CHECK(qun_invitation_revoke(db, &admin, iid, &out, &err) == QUN_OK);
    json_decref(out);
}

/* An invitation reaches the invitee but joins nobody to a group's live audience. */
static void effects(void) {
    qun_event_row_t e = {.id = 1, .group_id = 7, .user_id = 9, .topic = "member.invited", .payload = "{}"};
    CHECK(qun_event_effect(&e) == QUN_EVENT_KEEPS);
    CHECK(qun_event_reaches(&e, 9, false) && qun_event_reaches(&e, 3, true) &&
          !qun_event_reaches(&e, 3, false));
    e.topic = "invitation.declined";
    CHECK(qun_event_effect(&e) == QUN_EVENT_KEEPS);
    e.topic = "member.added";
    CHECK(qun_event_effect(&e) == QUN_EVENT_JOINS);
}

static void consent(void) {
    char gid[QUN_ID_MAX];
    new_group(gid);
    qun_group_t g;
    qun_err_t err;
    CHECK(qun_group_load(db, gid, &g, &err) == QUN_OK);
    CHECK(qun_invitation_consent_check(db, &g, &err) == QUN_OK); /* the builtin pack: direct adds */
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    qun_policy_t *policy = NULL;
    CHECK(qun_policy_builtin(&policy) == QUN_OK);
    qun_core_cfg.policy = policy;
    user("owner", &owner);
    user("admin", &admin);
    user("member", &member);
    user("alice", &alice);
    user("bob", &bob);
    user("carol", &carol);
    RUN(invite_and_answer);
    RUN(rights);
    RUN(revoke);
    RUN(effects);
    RUN(consent);
    qun_db_close(db);
    qun_policy_free(policy);
    return unit_done("core/invitation");
}
