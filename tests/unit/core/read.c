/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/read.c on an in-memory store: positions move forward only,
 * unread counts leave out one's own messages, public receipts are seen by the other
 * members and private ones only by their author, a mark appends its receipt event, and
 * /v1's mark refuses non-members and a seq beyond the newest message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The unread count of (uid, group_id) on connection on, -1 if none: read alone, or with
 * every group of uid's (the other statement). */
static int64_t unread_in(qun_db_t *on, int64_t uid, int64_t group_id, bool every) {
    qun_read_pos_t *pos = NULL;
    size_t n = 0;
    qun_err_t err;
    int64_t u = -1;
    if (qun_read_positions(on, uid, every ? 0 : group_id, &pos, &n, &err) == QUN_OK)
        for (size_t i = 0; i < n; i++)
            if (pos[i].group_id == group_id) u = pos[i].unread;
    free(pos);
    return u;
}

static int64_t unread_on(qun_db_t *on, int64_t uid, int64_t group_id) {
    return unread_in(on, uid, group_id, false);
}

/* A read-only connection starts a count from the last one it made of the same member
 * (src/core/read.c); the writer's connection counts in full.  Through posts by everyone,
 * read marks that move, both of the reader's statements (one group, every group), a
 * dissolution and its restoration, and a purge that deletes messages, the two always
 * agree. */
static void test_counts_from_the_last_agree(void) {
    char dir[] = "/tmp/qun-unit-read-XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/qun.db", dir);
    qun_db_t *w = NULL, *r = NULL;
    qun_err_t err;
    CHECK(qun_db_open(path, false, true, &w, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &r, &err) == QUN_OK);
    if (!w || !r) {
        qun_db_close(w);
        return;
    }
    qun_actor_t who[3];
    const char *names[] = {"dora", "eli", "fay"};
    for (int i = 0; i < 3; i++)
        unit_user(w, names[i], &who[i]);
    json_t *out;
    char gid[QUN_ID_MAX];
    qun_group_t g;
    CHECK(qun_group_create(w, &who[0], "memo", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, sizeof gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_group_load(w, gid, &g, &err) == QUN_OK);
    for (int i = 1; i < 3; i++) {
        CHECK(qun_member_add(w, &who[0], gid, who[i].openid, "member", &out, &err) == QUN_OK);
        json_decref(out);
    }
    int disagree = 0, newest = 0;
    uint32_t x = 12345;
    for (int step = 0; step < 300; step++) {
        x = x * 1103515245u + 12345u;
        int u = (int)(x >> 16) % 3, act = (int)(x >> 8) % 10;
        if (act < 8) {
            CHECK(qun_message_post(w, &who[u], gid, "m", &out, &err) == QUN_OK);
            json_decref(out);
            newest++;
        } else if (newest > 0) { /* a mark somewhere up to the newest, forward only */
            int64_t seq;
            CHECK(qun_read_mark(w, who[u].uid, &g, (int64_t)(x % (uint32_t)newest) + 1, act == 9, 1000, &seq,
                                &err) == QUN_OK);
        }
        for (int k = 0; k < 3; k++) {
            int64_t full = unread_on(w, who[k].uid, g.id);
            int64_t one = unread_on(r, who[k].uid, g.id);
            /* Every group at once, now and then: it counts in full and notes the count. */
            int64_t every = step % 7 == 0 ? unread_in(r, who[k].uid, g.id, true) : one;
            if (full < 0 || one != full || every != full) disagree++;
        }
    }
    CHECK(disagree == 0);
    int64_t before = unread_on(w, who[1].uid, g.id);
    CHECK(before > 0);
    /* Dissolved, then restored: no message goes, and the counts stay. */
    CHECK(qun_db_run(w, NULL, &err, "UPDATE groups SET state = 'dissolved' WHERE id = $1", "i", g.id) ==
          QUN_DONE);
    CHECK(unread_on(r, who[1].uid, g.id) == before);
    CHECK(qun_db_run(w, NULL, &err, "UPDATE groups SET state = 'active' WHERE id = $1", "i", g.id) ==
          QUN_DONE);
    CHECK(unread_on(r, who[1].uid, g.id) == before);
    /* Purging: its messages go, and the counts fall with them (here every other one
     * of the others'; a purge's batches take them in order of id). */
    CHECK(qun_db_run(w, NULL, &err, "UPDATE groups SET state = 'purging' WHERE id = $1", "i", g.id) ==
          QUN_DONE);
    CHECK(qun_db_run(w, NULL, &err, "DELETE FROM messages WHERE group_id = $1 AND seq % 2 = 0", "i", g.id) ==
          QUN_DONE);
    int64_t after = unread_on(w, who[1].uid, g.id);
    CHECK(after < before);
    for (int k = 0; k < 3; k++)
        CHECK(unread_on(r, who[k].uid, g.id) == unread_on(w, who[k].uid, g.id));
    qun_db_close(r);
    qun_db_close(w);
    unit_remove_sqlite(path);
    rmdir(dir);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    setup();
    RUN(test_unread_and_forward_only);
    RUN(test_receipts_seen);
    RUN(test_mark_group);
    RUN(test_counts_from_the_last_agree);
    qun_db_close(db);
    return unit_done("test_core_read");
}
