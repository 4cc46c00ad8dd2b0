/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/matrix_view.c on an in-memory store: a user's rooms and its
 * role, the rows a sync covers (groups left since the position included, other
 * people's groups not), members, message windows and the seq at a stream position. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/matrix.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t alice, bob, carol;
static char g1[QUN_ID_MAX], g2[QUN_ID_MAX]; /* alice owns g1 (bob member), carol owns g2 */
static int64_t g1_id, g2_id;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static int64_t group_in(qun_db_t *in, const qun_actor_t *owner, const char *name, char gid[QUN_ID_MAX]) {
    json_t *out;
    qun_err_t err;
    qun_group_t g;
    CHECK(qun_group_create(in, owner, name, "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_group_load(in, gid, &g, &err) == QUN_OK);
    return g.id;
}

static int64_t group(const qun_actor_t *owner, const char *name, char gid[QUN_ID_MAX]) {
    return group_in(db, owner, name, gid);
}

static void post(const qun_actor_t *a, const char *gid, const char *text) {
    json_t *out;
    qun_err_t err;
    CHECK(qun_message_post(db, a, gid, text, &out, &err) == QUN_OK);
    json_decref(out);
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
    user("Alice", &alice);
    user("bob", &bob);
    user("carol", &carol);
    g1_id = group(&alice, "one", g1);
    g2_id = group(&carol, "two", g2);
    CHECK(qun_member_add(db, &alice, g1, bob.openid, "admin", &out, &err) == QUN_OK);
    json_decref(out);
}

static void test_rooms_and_roles(void) {
    qun_mx_room_t *rooms, r;
    size_t n;
    qun_err_t err;
    CHECK(qun_mx_view_rooms(db, bob.uid, &rooms, &n, &err) == QUN_OK && n == 1);
    if (n == 1) {
        CHECK_STR(rooms[0].gid, g1);
        CHECK_STR(rooms[0].role, "admin");
        CHECK_STR(rooms[0].owner_local, "alice"); /* lower(username) until mx_localpart */
        CHECK_STR(rooms[0].state, "active");
        CHECK_STR(rooms[0].name, "one");
    }
    free(rooms);
    CHECK(qun_mx_view_room(db, bob.uid, 0, g2, &r, &err) == QUN_OK && r.role[0] == '\0' && r.id == g2_id);
    CHECK(qun_mx_view_room(db, bob.uid, g1_id, NULL, &r, &err) == QUN_OK && strcmp(r.gid, g1) == 0);
    CHECK(qun_mx_view_room(db, bob.uid, 0, "g_nosuch", &r, &err) == QUN_GROUP_NOT_FOUND);
    json_t *members;
    CHECK(qun_mx_view_members(db, g1_id, &members, &err) == QUN_OK && json_array_size(members) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(members, 0), "role")), "owner");
    CHECK_STR(json_string_value(json_object_get(json_array_get(members, 1), "local")), "bob");
    json_decref(members);
    char local[QUN_MX_LOCAL_MAX];
    CHECK(qun_mx_view_local(db, alice.openid, local, &err) == QUN_OK && strcmp(local, "alice") == 0);
    CHECK(qun_mx_view_local(db, "u_nobody", local, &err) == QUN_OK && local[0] == '\0');
    json_t *diss;
    CHECK(qun_mx_view_dissolution(db, g1_id, &diss, &err) == QUN_OK && json_object_size(diss) == 0);
    json_decref(diss);
}

/* The rows of bob's sync across a leave; with pad more of carol's posts in the middle,
 * which make the range wide enough for the other of qun_mx_view_rows' two statements
 * (ROWS_NARROW, 64): the answer must not depend on which one ran. */
static void rows_of_a_user(int pad) {
    qun_event_row_t *rows;
    int n;
    qun_err_t err;
    int64_t since = last_id();
    post(&alice, g1, "to bob");
    post(&carol, g2, "not to bob");
    for (int i = 0; i < pad; i++)
        post(&carol, g2, "still not to bob");
    CHECK(qun_event_emit(db, "matrix.account_data", 0, bob.uid, json_pack("{s:s}", "type", "x"), &err) ==
          QUN_OK);
    int64_t before_leave = last_id();
    /* Bob leaves g1 (as the core's removal does: the row, then the event). */
    CHECK(qun_db_run(db, NULL, &err, "DELETE FROM members WHERE group_id = $1 AND user_id = $2", "ii", g1_id,
                     bob.uid) == QUN_DONE);
    CHECK(qun_event_member(db, "member.removed", g1_id, bob.uid, &err) == QUN_OK);
    post(&alice, g1, "after bob left");
    int64_t upto = last_id();
    CHECK(pad ? upto - since > 64 : upto - since <= 64);
    CHECK(qun_mx_view_rows(db, bob.uid, since, upto, &rows, &n, &err) == QUN_OK);
    /* His message, his account data, his leave; g1's later rows too (the caller cuts
     * them at the leave); never carol's group. */
    CHECK(n == 4);
    for (int i = 0; i < n; i++)
        CHECK(rows[i].group_id != g2_id);
    if (n == 4) {
        CHECK_STR(rows[0].topic, "message.created");
        CHECK_STR(rows[1].topic, "matrix.account_data");
        CHECK_STR(rows[2].topic, "member.removed");
    }
    qun_event_row_t one;
    CHECK(qun_mx_view_row(db, g1_id, rows[0].id, &one, &err) == QUN_OK && one.id == rows[0].id);
    qun_event_rows_free(&one, 1);
    CHECK(qun_mx_view_row(db, g2_id, rows[0].id, &one, &err) == QUN_NOT_FOUND);
    qun_event_rows_free(rows, n);
    free(rows);
    /* A window after the leave: g1 is no longer his. */
    CHECK(qun_mx_view_rows(db, bob.uid, upto - 1, upto, &rows, &n, &err) == QUN_OK && n == 0);
    free(rows);
    CHECK(qun_mx_view_rows(db, bob.uid, before_leave, before_leave, &rows, &n, &err) == QUN_OK && n == 0);
}

static void test_rows_of_a_user(void) {
    rows_of_a_user(0);
}

/* After test_message_windows, which reads g1's seqs as test_rows_of_a_user left them. */
static void test_rows_of_a_user_wide(void) {
    json_t *out;
    qun_err_t err;
    CHECK(qun_member_add(db, &alice, g1, bob.openid, "admin", &out, &err) == QUN_OK); /* back */
    json_decref(out);
    rows_of_a_user(70);
}

static void test_message_windows(void) {
    qun_mx_msg_t *m;
    int n;
    qun_err_t err;
    int64_t pos = last_id(), seq;
    CHECK(qun_mx_view_seq_at(db, g1_id, pos, &seq, &err) == QUN_OK && seq == 2);
    for (int i = 0; i < 5; i++)
        post(&alice, g1, "more");
    CHECK(qun_mx_view_seq_at(db, g1_id, pos, &seq, &err) == QUN_OK && seq == 2);
    CHECK(qun_mx_view_seq_at(db, g1_id, last_id(), &seq, &err) == QUN_OK && seq == 7);
    CHECK(qun_mx_view_messages(db, g1_id, 0, -1, 2, true, &m, &n, &err) == QUN_OK && n == 2);
    if (n == 2) CHECK(m[0].seq == 6 && m[1].seq == 7 && strcmp(m[0].author_local, "alice") == 0);
    qun_mx_msgs_free(m, n);
    CHECK(qun_mx_view_messages(db, g1_id, 1, 3, 10, false, &m, &n, &err) == QUN_OK && n == 2);
    if (n == 2) {
        CHECK(m[0].seq == 2 && m[1].seq == 3);
        CHECK_STR(m[0].body, "after bob left");
        CHECK_STR(m[0].kind, "text");
    }
    qun_mx_msgs_free(m, n);
    CHECK(qun_mx_view_messages(db, g1_id, 7, -1, 10, false, &m, &n, &err) == QUN_OK && n == 0);
    qun_mx_msgs_free(m, n);
}

/* In one read snapshot the room row is read once and kept for the next reader, each
 * with its own role; a new snapshot reads it again. */
static void test_room_in_one_snapshot(void) {
    char path[] = "/tmp/qun-mx-room-XXXXXX";
    close(mkstemp(path));
    qun_db_t *wr, *rd;
    qun_err_t err;
    qun_actor_t ann, ben, cat;
    json_t *out;
    int64_t id;
    qun_mx_room_t room;
    char gid[QUN_ID_MAX];
    CHECK(qun_db_open(path, false, true, &wr, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &rd, &err) == QUN_OK);
    unit_user(wr, "ann", &ann);
    unit_user(wr, "ben", &ben);
    unit_user(wr, "cat", &cat);
    id = group_in(wr, &ann, "one", gid);
    CHECK(qun_member_add(wr, &ann, gid, ben.openid, "admin", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_db_read_begin(rd, &err) == QUN_OK);
    CHECK(qun_mx_view_room(rd, ann.uid, id, NULL, &room, &err) == QUN_OK);
    CHECK_STR(room.role, "owner");
    CHECK_STR(room.name, "one");
    CHECK(qun_db_run(wr, NULL, &err, "UPDATE groups SET name = 'uno' WHERE id = $1", "i", id) == QUN_DONE);
    CHECK(qun_db_run(wr, NULL, &err, "UPDATE members SET role = 'member' WHERE user_id = $1", "i", ben.uid) ==
          QUN_DONE);
    CHECK(qun_mx_view_room(rd, ben.uid, id, NULL, &room, &err) == QUN_OK);
    CHECK_STR(room.role, "admin"); /* the snapshot's */
    CHECK_STR(room.name, "one");
    CHECK(qun_mx_view_room(rd, cat.uid, id, NULL, &room, &err) == QUN_OK);
    CHECK_STR(room.role, "");
    CHECK_STR(room.owner_local, "ann");
    CHECK(qun_mx_view_room(rd, ann.uid, id, NULL, &room, &err) == QUN_OK);
    CHECK_STR(room.role, "owner");
    qun_db_read_end(rd);
    CHECK(qun_db_read_begin(rd, &err) == QUN_OK);
    CHECK(qun_mx_view_room(rd, ben.uid, id, NULL, &room, &err) == QUN_OK);
    CHECK_STR(room.role, "member");
    CHECK_STR(room.name, "uno");
    qun_db_read_end(rd);
    qun_db_close(rd);
    qun_db_close(wr);
    unit_remove_sqlite(path);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    setup();
    RUN(test_rooms_and_roles);
    RUN(test_rows_of_a_user);
    RUN(test_message_windows);
    RUN(test_rows_of_a_user_wide);
    RUN(test_room_in_one_snapshot);
    qun_db_close(db);
    return unit_done("test_core_matrix_view");
}
