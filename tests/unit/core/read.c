/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/read.c on an in-memory store: positions move forward only,
 * unread counts leave out one's own messages, public receipts are seen by the other
 * members and private ones only by their author, a mark appends its receipt event, and
 * /v1's mark refuses non-members and a seq beyond the newest message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/read.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t alice, bob, carol;
static char g1[QUN_ID_MAX];
static qun_group_t grp;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static void post(const qun_actor_t *a, const char *text) {
    json_t *out;
    qun_err_t err;
    CHECK(qun_message_post(db, a, g1, text, &out, &err) == QUN_OK);
    json_decref(out);
}

static int64_t unread(const qun_actor_t *a) {
    qun_read_pos_t *pos;
    size_t n;
    qun_err_t err;
    int64_t u = -1;
    CHECK(qun_read_positions(db, a->uid, grp.id, &pos, &n, &err) == QUN_OK && n == 1);
    if (n == 1) u = pos[0].unread;
    free(pos);
    return u;
}

static int64_t last_id(void) {
    int64_t id = -1;
    qun_err_t err;
    CHECK(qun_event_last_id(db, &id, &err) == QUN_OK);
    return id;
}

static void setup(void) {
    json_t *out;
    qun_err_t err;
    user("alice", &alice);
    user("bob", &bob);
    user("carol", &carol);
    CHECK(qun_group_create(db, &alice, "one", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(g1, sizeof g1, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_group_load(db, g1, &grp, &err) == QUN_OK);
    CHECK(qun_member_add(db, &alice, g1, bob.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
}

static void test_unread_and_forward_only(void) {
    qun_err_t err;
    int64_t seq;
    post(&alice, "one");
    post(&alice, "two");
    post(&bob, "three");
    CHECK(unread(&bob) == 2);   /* his own message does not count */
    CHECK(unread(&alice) == 1); /* bob's */
    CHECK(qun_read_mark(db, bob.uid, &grp, 2, true, 1000, &seq, &err) == QUN_OK && seq == 2);
    CHECK(unread(&bob) == 0);
    CHECK(qun_read_mark(db, bob.uid, &grp, 1, true, 2000, &seq, &err) == QUN_OK && seq == 2); /* back: kept */
    post(&alice, "four");
    CHECK(unread(&bob) == 1);
}

static void test_receipts_seen(void) {
    qun_err_t err;
    json_t *list;
    int64_t seq, before = last_id();
    CHECK(qun_read_mark(db, alice.uid, &grp, 4, false, 3000, &seq, &err) == QUN_OK && seq == 4);
    CHECK(last_id() == before + 1); /* receipt.private, to alice alone */
    CHECK(unread(&alice) == 0);
    CHECK(qun_read_receipts(db, bob.uid, 0, &list, &err) == QUN_OK);
    CHECK(json_array_size(list) == 1); /* bob's own public one; alice's is private */
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "local")), "bob");
    json_decref(list);
    CHECK(qun_read_receipts(db, alice.uid, grp.id, &list, &err) == QUN_OK);
    CHECK(json_array_size(list) == 2); /* bob's public one, her own private one */
    json_decref(list);
    CHECK(qun_read_receipts(db, carol.uid, 0, &list, &err) == QUN_OK && json_array_size(list) == 0);
    json_decref(list);
}

static void test_mark_group(void) {
    qun_err_t err;
    json_t *out = NULL;
    CHECK(qun_read_mark_group(db, &carol, g1, -1, &out, &err) == QUN_GROUP_NOT_FOUND);
    CHECK(qun_read_mark_group(db, &bob, g1, 99, &out, &err) == QUN_READ_SEQ_INVALID);
    CHECK(qun_read_mark_group(db, &bob, g1, -1, &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "read_seq")) == 4);
    CHECK(json_integer_value(json_object_get(out, "unread")) == 0);
    json_decref(out);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    setup();
    RUN(test_unread_and_forward_only);
    RUN(test_receipts_seen);
    RUN(test_mark_group);
    qun_db_close(db);
    return unit_done("test_core_read");
}
