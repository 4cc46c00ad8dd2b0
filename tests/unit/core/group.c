/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/group.c on an in-memory store: the successor a gone group's
 * id names (the latest dissolution's, none, an unknown id). */
#include <stdio.h>

#include "qun/core.h"
#include "unit.h"

static qun_db_t *db;
static qun_actor_t owner;

static void user(const char *name, qun_actor_t *a) {
    json_t *out;
    qun_err_t err;
    CHECK(qun_user_create(db, name, "x", &out, &err) == QUN_OK);
    snprintf(a->openid, sizeof a->openid, "%s", json_string_value(json_object_get(out, "openid")));
    CHECK(qun_user_id(db, a->openid, &a->uid, &err) == QUN_OK);
    json_decref(out);
}

static int64_t group(const char *name, char gid[QUN_ID_MAX]) {
    json_t *out;
    qun_err_t err;
    qun_group_t g;
    CHECK(qun_group_create(db, &owner, name, "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
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
    int64_t old_id = group("old", old), first_id = group("first", first), second_id = group("second", second);
    int64_t plain_id = group("plain", plain);
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
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    user("owner", &owner);
    RUN(test_successor);
    qun_db_close(db);
    return unit_done("test_core_group");
}
