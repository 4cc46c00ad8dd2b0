/* SPDX-License-Identifier: MIT */
/* Read positions, unread counts and receipts (include/qun/read.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qun/event.h"
#include "qun/read.h"

/* The current row of (uid, group_id): both positions, 0 when there is none. */
static qun_rc current(qun_db_t *db, int64_t uid, int64_t group_id, int64_t *seq, int64_t *pub_seq,
                      bool *exists, qun_err_t *err) {
    qun_q_t *q;
    *seq = *pub_seq = 0;
    *exists = false;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT seq, pub_seq FROM read_marks WHERE user_id = $1 AND group_id = $2",
                   "ii", uid, group_id);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    *seq = qun_q_col_int(q, 0);
    *pub_seq = qun_q_col_int(q, 1);
    *exists = true;
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_read_mark(qun_db_t *db, int64_t uid, const qun_group_t *g, int64_t seq, bool public_,
                     int64_t ts_ms, int64_t *read_seq, qun_err_t *err) {
    int64_t cur, pub;
    bool exists;
    qun_rc rc = current(db, uid, g->id, &cur, &pub, &exists, err);
    if (rc != QUN_OK) return rc;
    if (read_seq) *read_seq = cur > seq ? cur : seq;
    bool moves = seq > cur, moves_pub = public_ && seq > pub;
    if (!moves && !moves_pub) return QUN_OK;
    if (!exists)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO read_marks(user_id, group_id, seq, ts, pub_seq, pub_ts) "
                        "VALUES ($1, $2, $3, $4, $5, $6)",
                        "iiiiii", uid, g->id, seq, ts_ms, moves_pub ? seq : 0, moves_pub ? ts_ms : 0);
    else if (moves && moves_pub)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE read_marks SET seq = $3, ts = $4, pub_seq = $3, pub_ts = $4 "
                        "WHERE user_id = $1 AND group_id = $2",
                        "iiii", uid, g->id, seq, ts_ms);
    else if (moves)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE read_marks SET seq = $3, ts = $4 WHERE user_id = $1 AND group_id = $2",
                        "iiii", uid, g->id, seq, ts_ms);
    else
        rc =
            qun_db_run(db, NULL, err,
                       "UPDATE read_marks SET pub_seq = $3, pub_ts = $4 WHERE user_id = $1 AND group_id = $2",
                       "iiii", uid, g->id, seq, ts_ms);
    if (rc != QUN_DONE) return rc == QUN_OK ? QUN_STORE : rc;
    if (moves_pub) {
        char openid[QUN_ID_MAX] = "";
        qun_q_t *q;
        rc = qun_db_run(db, &q, err, "SELECT openid FROM users WHERE id = $1", "i", uid);
        if (rc != QUN_ROW)
            return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no user %lld", (long long)uid) : rc;
        snprintf(openid, sizeof openid, "%s", qun_q_col_text(q, 0));
        qun_q_done(q);
        return qun_event_emit(db, "receipt.read", g->id, 0,
                              json_pack("{s:s, s:s, s:I, s:I}", "group", g->gid, "user", openid, "seq",
                                        (json_int_t)seq, "ts", (json_int_t)ts_ms),
                              err);
    }
    return qun_event_emit(db, "receipt.private", 0, uid,
                          json_pack("{s:s, s:I, s:I, s:I}", "group", g->gid, "group_id", (json_int_t)g->id,
                                    "seq", (json_int_t)seq, "ts", (json_int_t)ts_ms),
                          err);
}

qun_rc qun_read_mark_group(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t seq, json_t **out,
                           qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
    int64_t newest = 0, read_seq = 0;
    qun_read_pos_t *pos = NULL;
    size_t n = 0;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err, "SELECT next_seq - 1 FROM groups WHERE id = $1", "i", g.id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_GROUP_NOT_FOUND, "group not found") : rc;
    newest = qun_q_col_int(q, 0);
    qun_q_done(q);
    if (seq < 0) seq = newest;
    if (seq > newest)
        return qun_fail_field(err, QUN_READ_SEQ_INVALID, "seq",
                              "seq %lld is beyond the newest message (%lld)", (long long)seq,
                              (long long)newest);
    rc = qun_read_mark(db, a->uid, &g, seq, true, qun_now_ms(), &read_seq, err);
    if (rc == QUN_OK) rc = qun_read_positions(db, a->uid, g.id, &pos, &n, err);
    if (rc == QUN_OK)
        *out = json_pack("{s:I, s:I}", "read_seq", (json_int_t)read_seq, "unread",
                         (json_int_t)(n ? pos[0].unread : 0));
    free(pos);
    if (rc == QUN_OK && !*out) rc = qun_fail(err, QUN_NOMEM, "out of memory");
    return rc;
}

/* ---- unread counts ----
 * A member's unread count is the messages of others after its read position: counted
 * row by row, O(unread), and paid by the /sync of every member a post wakes (bench/README.md,
 * "A woken sync's reads").  So a read-only connection remembers the counts it made
 * (memo_t: the read position, the group's newest seq then, the count), and the next count
 * of the same member adds only the messages after that seq, when the read position has
 * not moved and the group is still live.  That sum is exact because what the count reads
 * of the messages up to a seq a snapshot saw does not change while the group is live:
 *   - a seq is taken under the group row's lock by the transaction that inserts its
 *     message and raises next_seq, so a snapshot holds every message up to the newest
 *     seq it sees (no later commit adds one below it);
 *   - rows stay while the group is live (a recall or a removal blanks the body only),
 *     and their group, seq and author never change;
 *   - only the purge of a dissolved group deletes them, and a group that is not live
 *     is counted in full.
 * Read-only connections only: a write transaction also sees its own rows, which a
 * rollback may take back. */
#define MEMO_SLOTS 4096 /* a power of two; a slot holds the last (uid, group) hashed to it */
typedef struct {
    int64_t uid, group_id; /* 0, 0: empty */
    int64_t read_seq, upto, unread;
} memo_t;

#define LIVE_SQL "(g.state = 'active' OR g.state = 'review' OR g.state = 'pending')"

static memo_t *memo_of(qun_db_t *db, int64_t uid, int64_t group_id) {
    if (!qun_db_readonly(db)) return NULL;
    memo_t *m = qun_db_aux_zeroed(db, QUN_AUX_UNREAD, MEMO_SLOTS * sizeof *m, free);
    if (!m) return NULL; /* then counted in full */
    uint64_t h = (uint64_t)uid * 0x9E3779B97F4A7C15u ^ (uint64_t)group_id * 0xC2B2AE3D27D4EB4Fu;
    return &m[(h >> 40) & (MEMO_SLOTS - 1)];
}

/* Note the count of (uid, group_id) made at read_seq with the group's newest seq upto. */
static void memo_note(memo_t *m, int64_t uid, int64_t group_id, bool live, int64_t read_seq, int64_t upto,
                      int64_t unread) {
    if (!m) return;
    if (live && upto >= read_seq)
        *m = (memo_t){uid, group_id, read_seq, upto, unread};
    else if (m->uid == uid && m->group_id == group_id)
        *m = (memo_t){0};
}

qun_rc qun_read_positions(qun_db_t *db, int64_t uid, int64_t group_id, qun_read_pos_t **pos, size_t *n,
                          qun_err_t *err) {
    qun_q_t *q;
    size_t cap = 0;
    *pos = NULL;
    *n = 0;
    /* One group: from what this connection counted before, when it can; every group: in
     * full (the initial sync, once per device), each count noted for the next.  A count
     * walks the group's (group_id, seq) index from the seq it starts after. */
    memo_t *one = group_id ? memo_of(db, uid, group_id) : NULL;
    bool known = one && one->uid == uid && one->group_id == group_id;
    int64_t since_seq = known ? one->read_seq : -1, since_upto = known ? one->upto : 0;
    qun_rc rc =
        group_id
            ? qun_db_run(
                  db, &q, err,
                  "SELECT m.group_id, COALESCE(r.seq, 0), g.next_seq - 1, CASE WHEN " LIVE_SQL
                  " THEN 1 ELSE 0 END, (SELECT COUNT(*) FROM messages x WHERE x.group_id = m.group_id "
                  "AND x.seq > CASE WHEN COALESCE(r.seq, 0) = $3 AND g.next_seq - 1 >= $4 AND " LIVE_SQL
                  " THEN $4 ELSE COALESCE(r.seq, 0) END AND x.author_id != m.user_id) FROM members m "
                  "JOIN groups g ON g.id = m.group_id LEFT JOIN read_marks r ON r.user_id = m.user_id "
                  "AND r.group_id = m.group_id WHERE m.user_id = $1 AND m.group_id = $2",
                  "iiii", uid, group_id, since_seq, since_upto)
            : qun_db_run(db, &q, err,
                         "SELECT m.group_id, COALESCE(r.seq, 0), g.next_seq - 1, CASE WHEN " LIVE_SQL
                         " THEN 1 ELSE 0 END, (SELECT COUNT(*) FROM messages x WHERE x.group_id = m.group_id "
                         "AND x.seq > COALESCE(r.seq, 0) AND x.author_id != m.user_id) FROM members m "
                         "JOIN groups g ON g.id = m.group_id LEFT JOIN read_marks r ON r.user_id = m.user_id "
                         "AND r.group_id = m.group_id WHERE m.user_id = $1 ORDER BY m.group_id",
                         "i", uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            qun_read_pos_t *more = realloc(*pos, cap * sizeof *more);
            if (!more) {
                qun_q_done(q);
                rc = qun_fail(err, QUN_NOMEM, "cannot list the read positions of user %lld", (long long)uid);
                break;
            }
            *pos = more;
        }
        qun_read_pos_t *p = &(*pos)[(*n)++];
        int64_t upto = qun_q_col_int(q, 2), counted = qun_q_col_int(q, 4);
        bool live = qun_q_col_int(q, 3) != 0;
        p->group_id = qun_q_col_int(q, 0);
        p->seq = qun_q_col_int(q, 1);
        /* The statement's CASE, the same test: counted from since_upto on. */
        bool from_memo = known && p->seq == since_seq && upto >= since_upto && live;
        p->unread = from_memo ? one->unread + counted : counted;
        memo_note(group_id ? one : memo_of(db, uid, p->group_id), uid, p->group_id, live, p->seq, upto,
                  p->unread);
    }
    if (rc == QUN_DONE) return QUN_OK;
    free(*pos);
    *pos = NULL;
    *n = 0;
    return rc;
}

qun_rc qun_read_receipts(qun_db_t *db, int64_t uid, int64_t group_id, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    *out = json_array();
    if (!*out) return qun_fail(err, QUN_NOMEM, "out of memory");
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT r.group_id, COALESCE(u.mx_localpart, lower(u.username)), r.user_id, r.seq, "
                   "r.ts, r.pub_seq, r.pub_ts FROM members m JOIN read_marks r ON r.group_id = m.group_id "
                   "JOIN members rm ON rm.group_id = r.group_id AND rm.user_id = r.user_id "
                   "JOIN users u ON u.id = r.user_id WHERE m.user_id = $1 AND (CAST($2 AS BIGINT) = 0 OR "
                   "m.group_id = $2) "
                   "AND (r.pub_seq > 0 OR r.user_id = $1) ORDER BY r.group_id, r.user_id",
                   "ii", uid, group_id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        int64_t gid = qun_q_col_int(q, 0), who = qun_q_col_int(q, 2);
        int64_t seq = qun_q_col_int(q, 3), ts = qun_q_col_int(q, 4), pub = qun_q_col_int(q, 5),
                pub_ts = qun_q_col_int(q, 6);
        const char *local = qun_q_col_text(q, 1);
        if (pub > 0)
            json_array_append_new(*out, json_pack("{s:I, s:s, s:I, s:I, s:b}", "group_id", (json_int_t)gid,
                                                  "local", local, "seq", (json_int_t)pub, "ts",
                                                  (json_int_t)pub_ts, "private", 0));
        if (who == uid && seq > pub)
            json_array_append_new(*out, json_pack("{s:I, s:s, s:I, s:I, s:b}", "group_id", (json_int_t)gid,
                                                  "local", local, "seq", (json_int_t)seq, "ts",
                                                  (json_int_t)ts, "private", 1));
    }
    if (rc == QUN_DONE) return QUN_OK;
    json_decref(*out);
    *out = NULL;
    return rc;
}
