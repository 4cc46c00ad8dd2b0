/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/event.c's feed on an in-memory store: the last id, batches of
 * new rows, a user's groups, the audience and the limits of a replay (complete, too
 * many, past retention), the successor a group.dissolved event names, and whether the
 * session opening a stream is live. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/event.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t alice, bob;
static int64_t g1, g2, g3; /* alice is in g1 and g3, bob in g2 and g3 */
static char g2_gid[QUN_ID_MAX];

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static int64_t group(const qun_actor_t *owner, const char *name, char gid[QUN_ID_MAX]) {
    json_t *out;
    qun_err_t err;
    qun_group_t g;
    CHECK(qun_group_create(db, owner, name, "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_group_load(db, gid, &g, &err) == QUN_OK);
    return g.id;
}

static int64_t last_id(void) {
    int64_t id = -1;
    qun_err_t err;
    CHECK(qun_event_last_id(db, &id, &err) == QUN_OK);
    return id;
}

static void emit(const char *topic, int64_t group_id, int64_t user_id) {
    qun_err_t err;
    CHECK(qun_event_emit(db, topic, group_id, user_id, json_pack("{s:s}", "t", topic), &err) == QUN_OK);
}

static void setup(void) {
    char gid[QUN_ID_MAX];
    json_t *out;
    qun_err_t err;
    user("alice", &alice);
    user("bob", &bob);
    CHECK(last_id() == 0); /* no event yet */
    g1 = group(&alice, "one", gid);
    g2 = group(&bob, "two", g2_gid);
    g3 = group(&alice, "three", gid);
    CHECK(qun_member_add(db, &alice, gid, bob.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
}

static void test_fetch_batches(void) {
    qun_event_row_t rows[4];
    int n;
    qun_err_t err;
    int64_t last = last_id();
    CHECK(last > 0);
    emit("test.one", g1, 0);
    emit("test.two", 0, bob.uid);
    emit("test.three", g2, alice.uid);
    CHECK(last_id() == last + 3);
    CHECK(qun_event_fetch(db, last, rows, 2, &n, &err) == QUN_OK && n == 2);
    CHECK(rows[0].id == last + 1 && rows[1].id == last + 2);
    CHECK_STR(rows[0].topic, "test.one");
    CHECK(rows[0].group_id == g1 && rows[0].user_id == 0);
    CHECK(rows[1].group_id == 0 && rows[1].user_id == bob.uid);
    CHECK_STR(rows[1].payload, "{\"t\":\"test.two\"}");
    qun_event_rows_free(rows, n);
    CHECK(qun_event_fetch(db, last + 2, rows, 4, &n, &err) == QUN_OK && n == 1);
    CHECK(rows[0].group_id == g2 && rows[0].user_id == alice.uid);
    qun_event_rows_free(rows, n);
    CHECK(qun_event_fetch(db, last + 3, rows, 4, &n, &err) == QUN_OK && n == 0);
}

static void test_user_groups(void) {
    int64_t *ids;
    size_t n;
    qun_err_t err;
    CHECK(qun_event_user_groups(db, alice.uid, &ids, &n, &err) == QUN_OK && n == 2);
    CHECK(ids[0] == g1 && ids[1] == g3);
    free(ids);
    CHECK(qun_event_user_groups(db, bob.uid, &ids, &n, &err) == QUN_OK && n == 2);
    CHECK(ids[0] == g2 && ids[1] == g3);
    free(ids);
    CHECK(qun_event_user_groups(db, 999999, &ids, &n, &err) == QUN_OK && n == 0 && ids == NULL);
}

/* The topics alice's replay of (after, upto] holds, as "a,b", or "-" when none. */
static qun_event_replay_t replayed(int64_t after, int64_t upto, int max, char *out, size_t size) {
    qun_event_row_t *rows;
    int n;
    qun_event_replay_t how;
    qun_err_t err;
    CHECK(qun_event_replay(db, alice.uid, after, upto, max, &rows, &n, &how, &err) == QUN_OK);
    CHECK((rows != NULL) == (n > 0));
    size_t k = 0;
    snprintf(out, size, "-");
    for (int i = 0; i < n; i++) {
        CHECK(i == 0 || rows[i].id > rows[i - 1].id);
        k += (size_t)snprintf(out + k, size - k, "%s%s", i ? "," : "", rows[i].topic);
    }
    qun_event_rows_free(rows, n);
    free(rows);
    return how;
}

/* A replay holds alice's own events and her groups', and nothing else. */
static void test_replay_audience(void) {
    char got[256];
    int64_t last = last_id();
    emit("r.g1", g1, 0); /* alice's group */
    emit("r.g2", g2, 0); /* bob's group only */
    emit("r.alice", 0, alice.uid);
    emit("r.bob", 0, bob.uid);
    emit("r.g2.alice", g2, alice.uid); /* to a group she is not in, but to her */
    emit("r.g3", g3, 0);               /* shared */
    emit("r.internal", 0, 0);          /* no audience */
    CHECK(replayed(last, last_id(), 100, got, sizeof got) == QUN_REPLAY_COMPLETE);
    CHECK_STR(got, "r.g1,r.alice,r.g2.alice,r.g3");
    CHECK(replayed(last + 1, last + 3, 100, got, sizeof got) == QUN_REPLAY_COMPLETE); /* (after, upto] */
    CHECK_STR(got, "r.alice");
    CHECK(replayed(last_id(), last_id(), 100, got, sizeof got) == QUN_REPLAY_COMPLETE); /* nothing missed */
    CHECK_STR(got, "-");
    CHECK(replayed(last, last_id(), 4, got, sizeof got) == QUN_REPLAY_COMPLETE); /* exactly max */
    CHECK(replayed(last, last_id(), 3, got, sizeof got) == QUN_REPLAY_TOO_MANY);
    CHECK_STR(got, "-");
}

/* Housekeeping deleted old events: a resume from below the horizon cannot be replayed,
 * and the group-state rows of live groups stay. */
static void test_replay_expired(void) {
    char got[256];
    qun_err_t err;
    qun_q_t *q;
    int64_t last = last_id(), h = -1, n = -1;
    CHECK(qun_event_horizon(db, &h, &err) == QUN_OK && h == 0);
    CHECK(qun_db_run(db, NULL, &err, "UPDATE events SET created_at = 1 WHERE id <= $1", "i", (int64_t)5) ==
          QUN_DONE);
    CHECK(qun_event_expire(db, 2, &n, &err) == QUN_OK);
    CHECK(qun_event_horizon(db, &h, &err) == QUN_OK && h == 5);
    /* group.created of g1..g3 and member.added (ids 1-4) are group state: kept. */
    CHECK(qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM events WHERE id <= 5", "") == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 4 && n == 1);
    qun_q_done(q);
    CHECK(replayed(0, last, 1000, got, sizeof got) == QUN_REPLAY_EXPIRED);
    CHECK_STR(got, "-");
    CHECK(replayed(4, last, 1000, got, sizeof got) == QUN_REPLAY_EXPIRED);
    CHECK(replayed(5, last, 1000, got, sizeof got) == QUN_REPLAY_COMPLETE); /* the horizon is 5 */
    /* Nothing old enough: the horizon stays. */
    CHECK(qun_event_expire(db, 2, &n, &err) == QUN_OK && n == 0);
    CHECK(qun_event_horizon(db, &h, &err) == QUN_OK && h == 5);
    /* Once g2 is purged its state rows go too, and a smaller id never lowers the horizon. */
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = 'purged' WHERE id = $1", "i", g2) ==
          QUN_DONE);
    CHECK(qun_event_expire(db, 2, &n, &err) == QUN_OK && n == 1);
    CHECK(qun_event_horizon(db, &h, &err) == QUN_OK && h == 5);
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = 'active' WHERE id = $1", "i", g2) ==
          QUN_DONE);
}

/* qun_event_emit_id hands back the new row's id, the one the feed reads. */
static void test_emit_id(void) {
    qun_err_t err;
    int64_t id = -1, before = last_id();
    CHECK(qun_event_emit_id(db, "e.id", g1, 0, json_pack("{s:i}", "n", 1), &id, &err) == QUN_OK);
    CHECK(id > before && id == last_id());
    CHECK(qun_event_emit_id(db, "e.id", g1, 0, NULL, &id, &err) == QUN_NOMEM && id == 0);
}

/* A posted message's stream_id is its message.created row; msgtype and the session are
 * stored, and msgtype shows only when it is not plain text. */
static void test_message_stream(void) {
    qun_err_t err;
    json_t *out;
    qun_q_t *q;
    char gid[QUN_ID_MAX];
    int64_t gi = group(&alice, "stream", gid);
    alice.session_id = 42;
    CHECK(qun_message_post(db, &alice, gid, "one", &out, &err) == QUN_OK);
    CHECK(json_object_get(out, "msgtype") == NULL);
    json_decref(out);
    int64_t first = last_id();
    qun_msg_opts_t o = {.msgtype = "m.notice", .txn_id = "t1"};
    CHECK(qun_message_post_ex(db, &alice, gid, "two", &o, &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "msgtype")), "m.notice");
    json_decref(out);
    int64_t second = last_id();
    o.msgtype = "m.image";
    CHECK(qun_message_post_ex(db, &alice, gid, "bad", &o, &out, &err) == QUN_FIELD_INVALID && !out);
    alice.session_id = 0;
    CHECK(qun_db_run(db, &q, &err,
                     "SELECT seq, stream_id, COALESCE(msgtype, '-'), session_id, COALESCE(txn_id, '-') "
                     "FROM messages WHERE group_id = $1 ORDER BY seq",
                     "i", gi) == QUN_ROW);
    CHECK(qun_q_col_int(q, 1) == first && qun_q_col_int(q, 3) == 42);
    CHECK_STR(qun_q_col_text(q, 2), "-");
    CHECK(qun_q_step(q, &err) == QUN_ROW);
    CHECK(qun_q_col_int(q, 1) == second && second > first);
    CHECK_STR(qun_q_col_text(q, 2), "m.notice");
    CHECK_STR(qun_q_col_text(q, 4), "t1");
    CHECK(qun_q_step(q, &err) == QUN_DONE);
    /* The event carries msgtype too, and the listing shows it. */
    qun_event_row_t rows[1];
    int n;
    CHECK(qun_event_fetch(db, second - 1, rows, 1, &n, &err) == QUN_OK && n == 1);
    CHECK(strstr(rows[0].payload, "\"msgtype\":\"m.notice\"") != NULL);
    qun_event_rows_free(rows, n);
    CHECK(qun_message_list(db, &alice, gid, 0, 10, &out, &err) == QUN_OK);
    json_t *items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 2 && !json_object_get(json_array_get(items, 0), "msgtype"));
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 1), "msgtype")), "m.notice");
    json_decref(out);
}

static void test_successor(void) {
    int64_t id = -1;
    qun_err_t err;
    char payload[128];
    snprintf(payload, sizeof payload, "{\"group\":\"g_x\",\"successor\":\"%s\"}", g2_gid);
    CHECK(qun_event_successor(db, payload, &id, &err) == QUN_OK && id == g2);
    CHECK(qun_event_successor(db, "{\"group\":\"g_x\"}", &id, &err) == QUN_OK && id == 0);
    CHECK(qun_event_successor(db, "{\"successor\":\"g_unknown\"}", &id, &err) == QUN_OK && id == 0);
    CHECK(qun_event_successor(db, "not json", &id, &err) == QUN_OK && id == 0);
}

static void test_session_live(void) {
    json_t *out;
    qun_err_t err;
    int64_t expires = 0;
    CHECK(qun_session_create(db, alice.uid, "hash-of-token", "dev-1", "cli", NULL, "hash-of-secret",
                             "192.0.2.1", &out, &err) == QUN_OK);
    json_decref(out);
    int64_t sid = unit_count(db, "SELECT MAX(id) FROM sessions");
    CHECK(qun_event_session_live(db, sid, &expires, &err) == QUN_OK);
    CHECK(expires > qun_now());
    CHECK(qun_event_session_live(db, sid + 1, &expires, &err) == QUN_TOKEN_INVALID);
    qun_clock_advance(expires - qun_now()); /* expiry is a time */
    CHECK(qun_event_session_live(db, sid, &expires, &err) == QUN_TOKEN_INVALID);
    qun_clock_advance(-(expires - qun_now()) - 1);
    CHECK(qun_event_session_live(db, sid, &expires, &err) == QUN_OK);
    CHECK(qun_db_run(db, NULL, &err, "UPDATE sessions SET revoked_at = 1 WHERE id = $1", "i", sid) ==
          QUN_DONE);
    CHECK(qun_event_session_live(db, sid, &expires, &err) == QUN_TOKEN_INVALID);
}

/* What each row changes for the loops, and whom it reaches. */
static void test_effects(void) {
    static const struct {
        const char *topic;
        int64_t group_id, user_id;
        qun_event_effect_t effect;
    } cases[] = {
        {"member.added", 7, 3, QUN_EVENT_JOINS},
        {"group.created", 7, 3, QUN_EVENT_JOINS},
        {"member.added", 7, 0, QUN_EVENT_KEEPS}, /* no user to join */
        {"member.removed", 7, 3, QUN_EVENT_LEAVES},
        {"member.removed", 7, 0, QUN_EVENT_KEEPS},
        {"group.dissolved", 7, 0, QUN_EVENT_MOVES},
        {"group.dissolved", 7, 3, QUN_EVENT_MOVES},
        {"group.dissolved", 0, 3, QUN_EVENT_KEEPS}, /* no group to move */
        {"group.purged", 7, 3, QUN_EVENT_ENDS},
        {"message.created", 7, 0, QUN_EVENT_KEEPS},
        {QUN_EVENT_SESSION_REVOKED, 0, 0, QUN_EVENT_ENDS_SESSIONS},
        {QUN_EVENT_SESSION_REVOKED, 7, 0, QUN_EVENT_KEEPS}, /* only as an internal row */
        {"approval.requested", 0, 3, QUN_EVENT_KEEPS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qun_event_row_t e = {1, cases[i].group_id, cases[i].user_id, (char *)cases[i].topic, (char *)"{}"};
        CHECK(qun_event_effect(&e) == cases[i].effect);
    }
    qun_event_row_t to_group = {1, 7, 0, (char *)"message.created", (char *)"{}"};
    qun_event_row_t to_user = {1, 0, 3, (char *)"approval.requested", (char *)"{}"};
    qun_event_row_t to_both = {1, 7, 3, (char *)"member.added", (char *)"{}"};
    qun_event_row_t internal = {1, 0, 0, (char *)QUN_EVENT_SESSION_REVOKED, (char *)"{}"};
    CHECK(qun_event_reaches(&to_group, 3, true) && !qun_event_reaches(&to_group, 3, false));
    CHECK(qun_event_reaches(&to_user, 3, false) && !qun_event_reaches(&to_user, 4, true));
    CHECK(qun_event_reaches(&to_both, 3, false) && qun_event_reaches(&to_both, 4, true));
    CHECK(!qun_event_reaches(&to_both, 4, false));
    CHECK(!qun_event_reaches(&internal, 0, true) && !qun_event_reaches(&internal, 3, true));
}

/* In one read snapshot the feed's last id and horizon are read once and kept for the
 * snapshot's next readers (the answers of one wake); a new snapshot reads them again. */
static void test_snapshot_memo(void) {
    char path[] = "/tmp/qun-event-memo-XXXXXX";
    close(mkstemp(path));
    qun_db_t *wr, *rd;
    qun_err_t err;
    int64_t id, horizon;
    CHECK(qun_db_open(path, false, true, &wr, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &rd, &err) == QUN_OK);
    CHECK(qun_event_emit(wr, "unit.one", 0, 0, json_object(), &err) == QUN_OK);
    CHECK(qun_db_read_begin(rd, &err) == QUN_OK);
    CHECK(qun_event_last_id(rd, &id, &err) == QUN_OK && id == 1);
    CHECK(qun_event_horizon(rd, &horizon, &err) == QUN_OK && horizon == 0);
    CHECK(qun_event_emit(wr, "unit.two", 0, 0, json_object(), &err) == QUN_OK);
    CHECK(qun_db_run(wr, NULL, &err, "INSERT INTO event_horizon(one, id) VALUES (1, 1)", "") == QUN_DONE);
    CHECK(qun_db_read_begin(rd, &err) == QUN_OK); /* the same snapshot: the same answers */
    CHECK(qun_event_last_id(rd, &id, &err) == QUN_OK && id == 1);
    CHECK(qun_event_horizon(rd, &horizon, &err) == QUN_OK && horizon == 0);
    qun_db_read_end(rd);
    qun_db_read_end(rd);
    CHECK(qun_db_read_begin(rd, &err) == QUN_OK); /* a new one */
    CHECK(qun_event_horizon(rd, &horizon, &err) == QUN_OK && horizon == 1);
    CHECK(qun_event_last_id(rd, &id, &err) == QUN_OK && id == 2);
    qun_db_read_end(rd);
    CHECK(qun_event_emit(wr, "unit.three", 0, 0, json_object(), &err) == QUN_OK);
    CHECK(qun_event_last_id(rd, &id, &err) == QUN_OK && id == 3); /* outside any */
    qun_db_close(rd);
    qun_db_close(wr);
    unit_remove_sqlite(path);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    setup();
    RUN(test_fetch_batches);
    RUN(test_user_groups);
    RUN(test_replay_audience);
    RUN(test_replay_expired);
    RUN(test_successor);
    RUN(test_emit_id);
    RUN(test_message_stream);
    RUN(test_session_live);
    RUN(test_effects);
    RUN(test_snapshot_memo);
    qun_db_close(db);
    return unit_done("test_core_event");
}
