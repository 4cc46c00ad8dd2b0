/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/group.c on an in-memory store: creating a group (its
 * representation, ledger entry and the kinds that need an org or regions), adding and
 * removing members and changing roles, the member count kept equal to the member rows
 * by every route, pages of the caller's groups, and the permission table of the design
 * (section 2: owner / admin / member / non-member against each action), one row per
 * pair, each on a fresh group; and the successor a gone group's id names (the latest
 * dissolution's, none, an unknown id). */
#include "qun/core.h"
#include "qun/policy.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t owner, admin, member, outsider, target, target_admin;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static void add(const char *gid, const qun_actor_t *by, const qun_actor_t *who, const char *role) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_member_add(db, by, gid, who->openid, role, &out, &err) == QUN_OK);
    json_decref(out);
}

/* A group of owner's named name into gid (QUN_ID_MAX). */
static void new_group(const char *name, char *gid) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_group_create(db, &owner, name, "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
}

/* A group with every role: owner, admin, member, and a member and an admin to act on. */
static void full_group(char *gid) {
    new_group("table", gid);
    add(gid, &owner, &admin, "admin");
    add(gid, &owner, &member, "member");
    add(gid, &owner, &target, "member");
    add(gid, &owner, &target_admin, "admin");
}

/* Invariant: a group's member_count equals its member rows. */
static bool count_consistent(const char *gid) {
    qun_group_t g;
    qun_err_t err;
    if (qun_group_load(db, gid, &g, &err) != QUN_OK) return false;
    qun_q_t *q;
    int64_t rows = -1;
    if (qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM members WHERE group_id = $1", "i", g.id) == QUN_ROW) {
        rows = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    if (rows != g.member_count)
        fprintf(stderr, "group %s: member_count %lld, %lld rows\n", gid, (long long)g.member_count,
                (long long)rows);
    return rows == g.member_count;
}

static int64_t member_count(const char *gid) {
    qun_group_t g;
    qun_err_t err;
    return qun_group_load(db, gid, &g, &err) == QUN_OK ? g.member_count : -1;
}

static void role_names(void) {
    static const struct {
        qun_role_t role;
        const char *name;
    } rows[] = {{QUN_ROLE_OWNER, "owner"},
                {QUN_ROLE_ADMIN, "admin"},
                {QUN_ROLE_MEMBER, "member"},
                {QUN_ROLE_NONE, "none"}};
    for (size_t r = 0; r < NROWS(rows); r++)
        CHECKF(strcmp(qun_role_name(rows[r].role), rows[r].name) == 0, rows[r].name);
    /* Roles are ordered: each includes the ones below it. */
    CHECK(QUN_ROLE_NONE < QUN_ROLE_MEMBER && QUN_ROLE_MEMBER < QUN_ROLE_ADMIN &&
          QUN_ROLE_ADMIN < QUN_ROLE_OWNER);
}

/* QUN_GROUP_LIVE_SQL, the live states a post's statement sent ahead allows on the server,
 * names exactly the states group_states.def marks live. */
static void live_states_sql(void) {
    int live = 0;
    for (int s = 0; qun_group_state_name(s); s++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", qun_group_state_name(s));
        CHECKF((strstr(QUN_GROUP_LIVE_SQL, quoted) != NULL) == qun_group_state_live(s), quoted);
        live += qun_group_state_live(s);
    }
    int listed = 1;
    for (const char *p = QUN_GROUP_LIVE_SQL; *p; p++)
        listed += *p == ',';
    CHECK(live > 0 && listed == live);
}

/* A new group: its owner is its one member, it is ledgered, and it reads back. */
static void create_group(void) {
    json_t *out = NULL;
    qun_err_t err;
    int64_t ledger0 = unit_count(db, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'group.created'");
    int64_t t0 = qun_now();
    CHECK(qun_group_create(db, &owner, "Book club", "standard", NULL, NULL, &out, &err) == QUN_OK);
    const char *gid = json_string_value(json_object_get(out, "id"));
    CHECK(gid && strncmp(gid, "g_", 2) == 0);
    CHECK_STR(json_string_value(json_object_get(out, "name")), "Book club");
    CHECK_STR(json_string_value(json_object_get(out, "kind")), "standard");
    CHECK_STR(json_string_value(json_object_get(out, "owner")), owner.openid);
    CHECK_STR(json_string_value(json_object_get(out, "state")), "active");
    CHECK_STR(json_string_value(json_object_get(out, "my_role")), "owner");
    CHECK(json_integer_value(json_object_get(out, "member_count")) == 1);
    CHECK(json_integer_value(json_object_get(out, "last_seq")) == 0);
    CHECK(json_is_array(json_object_get(out, "regions")) &&
          json_array_size(json_object_get(out, "regions")) == 0);
    CHECK(json_object_get(out, "org") == NULL || json_is_null(json_object_get(out, "org")));
    CHECK(json_integer_value(json_object_get(out, "created_at")) >= t0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'group.created'") == ledger0 + 1);
    char id[QUN_ID_MAX];
    snprintf(id, sizeof id, "%s", gid);
    json_decref(out);
    qun_group_t g;
    CHECK(qun_group_access(db, &owner, id, QUN_ROLE_OWNER, &g, &err) == QUN_OK);
    CHECK(g.role == QUN_ROLE_OWNER && g.owner_id == owner.uid && g.member_count == 1 && g.org_id == 0);
    CHECK_STR(g.state, "active");
    CHECK(count_consistent(id));
    CHECK(qun_group_get(db, &outsider, id, &out, &err) == QUN_GROUP_NOT_FOUND);
    CHECK(qun_group_get(db, &owner, "g_doesnotexist", &out, &err) == QUN_GROUP_NOT_FOUND);
}

/* Kinds that need an org or regions, and regions no policy pack defines, are refused. */
static void create_refusals(void) {
    static const struct {
        const char *name, *kind, *regions;
        qun_rc rc;
        const char *field;
    } rows[] = {
        {"enterprise without an org", "enterprise", NULL, QUN_FIELD_MISSING, "org"},
        {"education without an org", "education", NULL, QUN_FIELD_MISSING, "org"},
        {"cross_border without regions", "cross_border", NULL, QUN_FIELD_MISSING, "regions"},
        {"cross_border with one region", "cross_border", "[\"eu\"]", QUN_FIELD_MISSING, "regions"},
        {"unknown region", "cross_border", "[\"eu\", \"atlantis\"]", QUN_POLICY_UNKNOWN_REGION, "regions"},
        {"cross_border with two regions", "cross_border", "[\"eu\", \"cn\"]", QUN_OK, NULL},
    };
    int64_t groups0 = unit_count(db, "SELECT COUNT(*) FROM groups");
    int made = 0;
    for (size_t r = 0; r < NROWS(rows); r++) {
        json_t *regions = rows[r].regions ? json_loads(rows[r].regions, 0, NULL) : NULL, *out = NULL;
        qun_err_t err = {{0}, {0}};
        qun_rc rc = qun_group_create(db, &owner, "k", rows[r].kind, NULL, regions, &out, &err);
        CHECKF(rc == rows[r].rc, rows[r].name);
        if (rows[r].field) CHECKF(strcmp(err.field, rows[r].field) == 0, rows[r].name);
        if (rc == QUN_OK) {
            made++;
            CHECKF(json_array_size(json_object_get(out, "regions")) == 2, rows[r].name);
            json_decref(out);
        }
        json_decref(regions);
    }
    CHECK(unit_count(db, "SELECT COUNT(*) FROM groups") == groups0 + made);
}

/* Adding, re-adding, changing roles and removing; the count follows every step. */
static void members_add_remove(void) {
    char gid[QUN_ID_MAX];
    json_t *out = NULL;
    qun_err_t err;
    qun_action_proof_t none = {0};
    new_group("members", gid);
    int64_t t0 = qun_now();
    CHECK(qun_member_add(db, &owner, gid, member.openid, "member", &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "openid")), member.openid);
    CHECK_STR(json_string_value(json_object_get(out, "username")), "member");
    CHECK_STR(json_string_value(json_object_get(out, "role")), "member");
    CHECK(json_integer_value(json_object_get(out, "joined_at")) >= t0);
    json_decref(out);
    CHECK(member_count(gid) == 2);
    CHECK(qun_member_add(db, &owner, gid, member.openid, "admin", &out, &err) == QUN_ALREADY_MEMBER);
    CHECK(qun_member_add(db, &owner, gid, owner.openid, "member", &out, &err) == QUN_ALREADY_MEMBER);
    CHECK(qun_member_add(db, &owner, gid, "u_nobody", "member", &out, &err) == QUN_USER_NOT_FOUND);
    CHECK(member_count(gid) == 2);

    CHECK(qun_member_set_role(db, &owner, gid, member.openid, "admin", &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "role")), "admin");
    json_decref(out);
    qun_group_t g;
    CHECK(qun_group_access(db, &member, gid, QUN_ROLE_ADMIN, &g, &err) == QUN_OK && g.role == QUN_ROLE_ADMIN);
    CHECK(qun_member_set_role(db, &owner, gid, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_group_access(db, &member, gid, QUN_ROLE_ADMIN, &g, &err) == QUN_FORBIDDEN_ROLE);
    CHECK(qun_member_set_role(db, &owner, gid, outsider.openid, "admin", &out, &err) == QUN_MEMBER_NOT_FOUND);
    CHECK(qun_member_set_role(db, &owner, gid, owner.openid, "member", &out, &err) == QUN_FORBIDDEN_ROLE);

    int64_t removed0 = unit_count(db, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'members.removed'");
    CHECK(qun_member_remove(db, &owner, gid, owner.openid, NULL, &none, &err) == QUN_FORBIDDEN_ROLE);
    CHECK(qun_member_remove(db, &owner, gid, outsider.openid, NULL, &none, &err) == QUN_MEMBER_NOT_FOUND);
    CHECK(qun_member_remove(db, &owner, gid, member.openid, NULL, &none, &err) == QUN_OK);
    CHECK(member_count(gid) == 1);
    CHECK(qun_member_remove(db, &owner, gid, member.openid, NULL, &none, &err) == QUN_MEMBER_NOT_FOUND);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'members.removed'") ==
          removed0 + 1);
    /* A removed member no longer sees the group, and may be added again. */
    CHECK(qun_group_get(db, &member, gid, &out, &err) == QUN_GROUP_NOT_FOUND);
    add(gid, &owner, &member, "member");
    CHECK(member_count(gid) == 2);
    CHECK(count_consistent(gid));
}

/* Every route that changes membership keeps member_count equal to the rows, also when
 * a bulk removal is refused part-way through its checks. */
static void member_count_invariant(void) {
    char gid[QUN_ID_MAX];
    json_t *out = NULL;
    qun_err_t err;
    qun_action_proof_t none = {0};
    full_group(gid);
    CHECK(member_count(gid) == 5 && count_consistent(gid));
    add(gid, &admin, &outsider, "member");
    CHECK(member_count(gid) == 6 && count_consistent(gid));
    CHECK(qun_group_leave(db, &outsider, gid, NULL, &err) == QUN_OK);
    CHECK(member_count(gid) == 5 && count_consistent(gid));
    /* A bulk removal naming the owner is refused as a whole: nobody leaves. */
    json_t *bad = json_pack("[s, s]", target.openid, owner.openid);
    CHECK(qun_member_remove_bulk(db, &owner, gid, bad, NULL, &none, &out, &err) == QUN_FORBIDDEN_ROLE);
    CHECK_STR(err.field, "openids[1]");
    json_decref(bad);
    bad = json_pack("[s, s]", target.openid, target.openid);
    CHECK(qun_member_remove_bulk(db, &owner, gid, bad, NULL, &none, &out, &err) == QUN_FIELD_INVALID);
    json_decref(bad);
    CHECK(member_count(gid) == 5 && count_consistent(gid));
    json_t *two = json_pack("[s, s]", target.openid, target_admin.openid);
    CHECK(qun_member_remove_bulk(db, &owner, gid, two, NULL, &none, &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "removed")) == 2);
    CHECK(json_integer_value(json_object_get(out, "admins")) == 1);
    CHECK(json_integer_value(json_object_get(out, "member_count")) == 3);
    json_decref(out);
    json_decref(two);
    CHECK(member_count(gid) == 3 && count_consistent(gid));
    CHECK(qun_member_remove(db, &admin, gid, member.openid, NULL, &none, &err) == QUN_OK);
    CHECK(member_count(gid) == 2 && count_consistent(gid));
}

/* The groups the caller belongs to, a page at a time, each with the caller's role. */
static void group_pages(void) {
    qun_actor_t pager;
    user("pager", &pager);
    char gids[3][QUN_ID_MAX];
    for (int i = 0; i < 3; i++) {
        new_group("paged", gids[i]);
        add(gids[i], &owner, &pager, i == 1 ? "admin" : "member");
    }
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_group_list(db, &pager, 0, 2, &out, &err) == QUN_OK);
    json_t *items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "id")), gids[0]);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 1), "my_role")), "admin");
    const char *cursor = json_string_value(json_object_get(out, "next_cursor"));
    CHECK(cursor != NULL);
    int64_t after = cursor ? atoll(cursor) : 0;
    json_decref(out);
    CHECK(qun_group_list(db, &pager, after, 2, &out, &err) == QUN_OK);
    items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "id")), gids[2]);
    CHECK(json_is_null(json_object_get(out, "next_cursor")));
    json_decref(out);
}

/* ---- the permission table (design section 2) ---- */

typedef enum { OWNER, ADMIN, MEMBER, NONE } who_t;
static qun_actor_t *actor_of(who_t w) {
    return w == OWNER ? &owner : w == ADMIN ? &admin : w == MEMBER ? &member : &outsider;
}

typedef enum {
    A_DISSOLVE, /* ask for a dissolution (its preview) */
    A_ADD_MEMBER,
    A_APPOINT_ADMIN, /* add someone as an admin */
    A_PROMOTE,       /* promote a member to admin */
    A_DEMOTE,        /* demote an admin */
    A_REMOVE_MEMBER,
    A_REMOVE_ADMIN,
    A_LEAVE,
    A_POST,
    A_READ_HISTORY,
    A_VIEW,
    A_LIST_MEMBERS,
    A_RENAME,
} action_t;

static qun_rc act(action_t what, const qun_actor_t *a, const char *gid) {
    json_t *out = NULL, *params;
    qun_err_t err;
    qun_action_proof_t none = {0};
    qun_rc rc;
    switch (what) {
    case A_DISSOLVE:
        params = json_pack("{s:s}", "messages", "delete");
        rc = qun_diss_preview(db, a, gid, params, NULL, &out, &err);
        json_decref(params);
        break;
    case A_ADD_MEMBER:
        rc = qun_member_add(db, a, gid, outsider.openid == a->openid ? owner.openid : outsider.openid,
                            "member", &out, &err);
        break;
    case A_APPOINT_ADMIN:
        rc = qun_member_add(db, a, gid, outsider.openid == a->openid ? owner.openid : outsider.openid,
                            "admin", &out, &err);
        break;
    case A_PROMOTE: rc = qun_member_set_role(db, a, gid, target.openid, "admin", &out, &err); break;
    case A_DEMOTE: rc = qun_member_set_role(db, a, gid, target_admin.openid, "member", &out, &err); break;
    case A_REMOVE_MEMBER: rc = qun_member_remove(db, a, gid, target.openid, NULL, &none, &err); break;
    case A_REMOVE_ADMIN: rc = qun_member_remove(db, a, gid, target_admin.openid, NULL, &none, &err); break;
    case A_LEAVE: rc = qun_group_leave(db, a, gid, NULL, &err); break;
    case A_POST: rc = qun_message_post(db, a, gid, "hello", &out, &err); break;
    case A_READ_HISTORY: rc = qun_message_list(db, a, gid, 0, 50, &out, &err); break;
    case A_VIEW: rc = qun_group_get(db, a, gid, &out, &err); break;
    case A_LIST_MEMBERS: rc = qun_member_list(db, a, gid, 0, 50, &out, &err); break;
    case A_RENAME: rc = qun_group_rename(db, a, gid, "renamed", &out, &err); break;
    default: rc = QUN_INTERNAL;
    }
    if (rc == QUN_OK) json_decref(out);
    return rc;
}

/* Owner / admin / member / non-member against each action: the exact answer, and the
 * member count still equal to the rows afterwards.  A non-member is told the group
 * does not exist, never that it lacks the role. */
static void permission_table(void) {
    static const struct {
        const char *name;
        action_t action;
        who_t who;
        qun_rc rc;
    } rows[] = {
        {"owner dissolves", A_DISSOLVE, OWNER, QUN_OK},
        {"admin dissolves", A_DISSOLVE, ADMIN, QUN_FORBIDDEN_ROLE},
        {"member dissolves", A_DISSOLVE, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member dissolves", A_DISSOLVE, NONE, QUN_GROUP_NOT_FOUND},
        {"owner adds a member", A_ADD_MEMBER, OWNER, QUN_OK},
        {"admin adds a member", A_ADD_MEMBER, ADMIN, QUN_OK},
        {"member adds a member", A_ADD_MEMBER, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member adds a member", A_ADD_MEMBER, NONE, QUN_GROUP_NOT_FOUND},
        {"owner appoints an admin", A_APPOINT_ADMIN, OWNER, QUN_OK},
        {"admin appoints an admin", A_APPOINT_ADMIN, ADMIN, QUN_FORBIDDEN_ROLE},
        {"member appoints an admin", A_APPOINT_ADMIN, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member appoints an admin", A_APPOINT_ADMIN, NONE, QUN_GROUP_NOT_FOUND},
        {"owner promotes", A_PROMOTE, OWNER, QUN_OK},
        {"admin promotes", A_PROMOTE, ADMIN, QUN_FORBIDDEN_ROLE},
        {"member promotes", A_PROMOTE, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member promotes", A_PROMOTE, NONE, QUN_GROUP_NOT_FOUND},
        {"owner demotes", A_DEMOTE, OWNER, QUN_OK},
        {"admin demotes", A_DEMOTE, ADMIN, QUN_FORBIDDEN_ROLE},
        {"member demotes", A_DEMOTE, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member demotes", A_DEMOTE, NONE, QUN_GROUP_NOT_FOUND},
        {"owner removes a member", A_REMOVE_MEMBER, OWNER, QUN_OK},
        {"admin removes a member", A_REMOVE_MEMBER, ADMIN, QUN_OK},
        {"member removes a member", A_REMOVE_MEMBER, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member removes a member", A_REMOVE_MEMBER, NONE, QUN_GROUP_NOT_FOUND},
        {"owner removes an admin", A_REMOVE_ADMIN, OWNER, QUN_OK},
        {"admin removes an admin", A_REMOVE_ADMIN, ADMIN, QUN_FORBIDDEN_ROLE},
        {"member removes an admin", A_REMOVE_ADMIN, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member removes an admin", A_REMOVE_ADMIN, NONE, QUN_GROUP_NOT_FOUND},
        {"owner leaves", A_LEAVE, OWNER, QUN_OWNER_MUST_TRANSFER},
        {"admin leaves", A_LEAVE, ADMIN, QUN_OK},
        {"member leaves", A_LEAVE, MEMBER, QUN_OK},
        {"non-member leaves", A_LEAVE, NONE, QUN_GROUP_NOT_FOUND},
        {"owner posts", A_POST, OWNER, QUN_OK},
        {"admin posts", A_POST, ADMIN, QUN_OK},
        {"member posts", A_POST, MEMBER, QUN_OK},
        {"non-member posts", A_POST, NONE, QUN_GROUP_NOT_FOUND},
        {"owner reads history", A_READ_HISTORY, OWNER, QUN_OK},
        {"admin reads history", A_READ_HISTORY, ADMIN, QUN_OK},
        {"member reads history", A_READ_HISTORY, MEMBER, QUN_OK},
        {"non-member reads history", A_READ_HISTORY, NONE, QUN_GROUP_NOT_FOUND},
        {"owner views", A_VIEW, OWNER, QUN_OK},
        {"admin views", A_VIEW, ADMIN, QUN_OK},
        {"member views", A_VIEW, MEMBER, QUN_OK},
        {"non-member views", A_VIEW, NONE, QUN_GROUP_NOT_FOUND},
        {"owner lists members", A_LIST_MEMBERS, OWNER, QUN_OK},
        {"admin lists members", A_LIST_MEMBERS, ADMIN, QUN_OK},
        {"member lists members", A_LIST_MEMBERS, MEMBER, QUN_OK},
        {"non-member lists members", A_LIST_MEMBERS, NONE, QUN_GROUP_NOT_FOUND},
        {"owner renames", A_RENAME, OWNER, QUN_OK},
        {"admin renames", A_RENAME, ADMIN, QUN_OK},
        {"member renames", A_RENAME, MEMBER, QUN_FORBIDDEN_ROLE},
        {"non-member renames", A_RENAME, NONE, QUN_GROUP_NOT_FOUND},
    };
    for (size_t r = 0; r < NROWS(rows); r++) {
        char gid[QUN_ID_MAX];
        full_group(gid);
        int64_t before = member_count(gid);
        qun_rc rc = act(rows[r].action, actor_of(rows[r].who), gid);
        if (rc != rows[r].rc)
            fprintf(stderr, "  %s: %s, want %s\n", rows[r].name, qun_rc_name(rc), qun_rc_name(rows[r].rc));
        CHECKF(rc == rows[r].rc, rows[r].name);
        CHECKF(count_consistent(gid), rows[r].name);
        /* Only an allowed add, removal or leave changes the count, by exactly one. */
        int64_t delta = member_count(gid) - before;
        bool adds = rows[r].action == A_ADD_MEMBER || rows[r].action == A_APPOINT_ADMIN;
        bool removes = rows[r].action == A_REMOVE_MEMBER || rows[r].action == A_REMOVE_ADMIN ||
                       rows[r].action == A_LEAVE;
        int64_t want = rows[r].rc != QUN_OK ? 0 : adds ? 1 : removes ? -1 : 0;
        CHECKF(delta == want, rows[r].name);
    }
}

/* The row id of group gid. */
static int64_t group_id(const char *gid) {
    qun_group_t g;
    qun_err_t err;
    CHECK(qun_group_load(db, gid, &g, &err) == QUN_OK);
    return g.id;
}

/* A dissolution row of group id with successor succ (0: none); only the successor
 * column matters here, so the row is written directly. */
static void dissolution(int64_t id, int64_t succ) {
    qun_err_t err;
    CHECK(
        qun_db_run(db, NULL, &err,
                   "INSERT INTO dissolutions(group_id, requested_by, messages, state, requested_at, "
                   "successor_group_id) SELECT $1, owner_id, 'keep', state, 0, $2 FROM groups WHERE id = $1",
                   "iz", id, succ) == QUN_DONE);
}

static void test_successor(void) {
    qun_err_t err;
    char old[QUN_ID_MAX], first[QUN_ID_MAX], second[QUN_ID_MAX], plain[QUN_ID_MAX], out[QUN_ID_MAX];
    new_group("old", old);
    new_group("first", first);
    new_group("second", second);
    new_group("plain", plain);
    int64_t old_id = group_id(old), first_id = group_id(first), second_id = group_id(second),
            plain_id = group_id(plain);
    CHECK(qun_group_successor(db, old, out, &err) == QUN_OK && out[0] == '\0'); /* never dissolved */
    dissolution(old_id, first_id);
    CHECK(qun_group_successor(db, old, out, &err) == QUN_OK);
    CHECK_STR(out, first);
    dissolution(old_id, second_id); /* restored and dissolved again: the latest counts */
    CHECK(qun_group_successor(db, old, out, &err) == QUN_OK);
    CHECK_STR(out, second);
    dissolution(plain_id, 0); /* dissolved without a successor */
    CHECK(qun_group_successor(db, plain, out, &err) == QUN_OK && out[0] == '\0');
    CHECK(qun_group_successor(db, "g_unknown", out, &err) == QUN_OK && out[0] == '\0');
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
    user("outsider", &outsider);
    user("target", &target);
    user("target_admin", &target_admin);
    RUN(role_names);
    RUN(live_states_sql);
    RUN(create_group);
    RUN(create_refusals);
    RUN(members_add_remove);
    RUN(member_count_invariant);
    RUN(group_pages);
    RUN(permission_table);
    RUN(test_successor);
    qun_db_close(db);
    qun_policy_free(policy);
    return unit_done("core/group");
}
