/* SPDX-License-Identifier: MIT */
/* The reads behind the Matrix adapter's /sync and room read routes (include/qun/matrix.h,
 * "the read side"): groups with the viewer's role, the events rows a user's sync covers,
 * members, messages by seq window, and dissolution rows.  Rendering is the HTTP layer's
 * (src/http/mx_render.c). */
#include <stdlib.h>
#include <string.h>

#include "qun/matrix.h"

/* A user's Matrix localpart in SQL, for the user row aliased u (users.mx_localpart, fixed
 * at registration; a row from before its backfill reads as lower(username)). */
#define MX_LOCAL(u) "COALESCE(" u ".mx_localpart, lower(" u ".username))"
/* The name Matrix shows for a user: its display name, else its username. */
#define MX_NAME(u) "COALESCE(" u ".display_name, " u ".username)"

#define ROOM_COLS                                                                                            \
    "g.id, g.gid, g.name, g.kind, g.state, COALESCE(o.oid, ''), g.regions, g.owner_id, " MX_LOCAL(           \
        "ou") ", g.created_at, g.next_seq - 1, COALESCE(m.role, '') "
#define ROOM_FROM                                                                                            \
    "FROM groups g JOIN users ou ON ou.id = g.owner_id LEFT JOIN orgs o ON o.id = g.org_id "                 \
    "LEFT JOIN members m ON m.group_id = g.id AND m.user_id = $1 "

static void room_take(qun_q_t *q, qun_mx_room_t *r) {
    memset(r, 0, sizeof *r);
    r->id = qun_q_col_int(q, 0);
    snprintf(r->gid, sizeof r->gid, "%s", qun_q_col_text(q, 1));
    snprintf(r->name, sizeof r->name, "%s", qun_q_col_text(q, 2));
    snprintf(r->kind, sizeof r->kind, "%s", qun_q_col_text(q, 3));
    snprintf(r->state, sizeof r->state, "%s", qun_q_col_text(q, 4));
    snprintf(r->org, sizeof r->org, "%s", qun_q_col_text(q, 5));
    snprintf(r->regions, sizeof r->regions, "%s", qun_q_col_text(q, 6));
    r->owner_id = qun_q_col_int(q, 7);
    snprintf(r->owner_local, sizeof r->owner_local, "%s", qun_q_col_text(q, 8));
    r->created_at = qun_q_col_int(q, 9);
    r->last_seq = qun_q_col_int(q, 10);
    snprintf(r->role, sizeof r->role, "%s", qun_q_col_text(q, 11));
}

qun_rc qun_mx_view_rooms(qun_db_t *db, int64_t uid, qun_mx_room_t **rooms, size_t *n, qun_err_t *err) {
    qun_q_t *q;
    size_t cap = 0;
    *rooms = NULL;
    *n = 0;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT " ROOM_COLS ROOM_FROM "WHERE m.user_id = $1 ORDER BY g.id", "i", uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            qun_mx_room_t *more = realloc(*rooms, cap * sizeof *more);
            if (!more) {
                qun_q_done(q);
                rc = qun_fail(err, QUN_NOMEM, "cannot list the rooms of user %lld", (long long)uid);
                break;
            }
            *rooms = more;
        }
        room_take(q, &(*rooms)[(*n)++]);
    }
    if (rc == QUN_DONE) return QUN_OK;
    free(*rooms);
    *rooms = NULL;
    *n = 0;
    return rc;
}

/* The room row read last in a snapshot, but for the reader's role: the answers one
 * wake sends its parked syncs (qun_db_read_snapshot) all read the room the post was in,
 * and then each reads only its role. */
typedef struct {
    uint64_t snap; /* 0: none */
    qun_mx_room_t room;
} room_memo_t;

static room_memo_t *room_memo(qun_db_t *db, int64_t group_id) {
    uint64_t snap = group_id && qun_db_readonly(db) ? qun_db_read_snapshot(db) : 0;
    if (!snap) return NULL;
    return qun_db_aux_zeroed(db, QUN_AUX_ROOM, sizeof(room_memo_t), free);
}

qun_rc qun_mx_view_room(qun_db_t *db, int64_t uid, int64_t group_id, const char *gid, qun_mx_room_t *room,
                        qun_err_t *err) {
    qun_q_t *q;
    room_memo_t *m = room_memo(db, group_id);
    if (m && m->snap == qun_db_read_snapshot(db) && m->room.id == group_id) {
        qun_role_t role;
        qun_rc rc = qun_member_role(db, group_id, uid, &role, err);
        *room = m->room;
        snprintf(room->role, sizeof room->role, "%s", role == QUN_ROLE_NONE ? "" : qun_role_name(role));
        return rc;
    }
    qun_rc rc = group_id ? qun_db_run(db, &q, err, "SELECT " ROOM_COLS ROOM_FROM "WHERE g.id = $2", "ii", uid,
                                      group_id)
                         : qun_db_run(db, &q, err, "SELECT " ROOM_COLS ROOM_FROM "WHERE g.gid = $2", "is",
                                      uid, gid ? gid : "");
    if (rc == QUN_DONE) return qun_fail(err, QUN_GROUP_NOT_FOUND, "no such group");
    if (rc != QUN_ROW) return rc;
    room_take(q, room);
    qun_q_done(q);
    if (m) {
        m->snap = qun_db_read_snapshot(db);
        m->room = *room;
        m->room.role[0] = '\0';
    }
    return QUN_OK;
}

/* The current row of q (id, topic, group_id, user_id, payload) into e, strings copied. */
static qun_rc row_take(qun_q_t *q, qun_event_row_t *e, qun_err_t *err) {
    *e = (qun_event_row_t){qun_q_col_int(q, 0), qun_q_col_int(q, 2), qun_q_col_int(q, 3),
                           strdup(qun_q_col_text(q, 1)), strdup(qun_q_col_text(q, 4))};
    if (e->topic && e->payload) return QUN_OK;
    free(e->topic);
    free(e->payload);
    return qun_fail(err, QUN_NOMEM, "cannot copy event %lld", (long long)e->id);
}

/* The widest range of event ids read row by row (qun_mx_view_rows). */
#define ROWS_NARROW 64

qun_rc qun_mx_view_rows(qun_db_t *db, int64_t uid, int64_t after, int64_t upto, qun_event_row_t **rows,
                        int *n, qun_err_t *err) {
    qun_q_t *q;
    int cap = 0;
    *rows = NULL;
    *n = 0;
    if (after >= upto) return QUN_OK;
    /* The groups left after `after` stay in the audience up to and including the leave;
     * the caller cuts each room's rows at the user's own leave.  Two statements, one
     * answer: across a wide range the user's own indexes find their rows among everyone
     * else's; across a narrow one (a parked sync woken by the post after its position)
     * reading the range itself and testing each row is cheaper than gathering the user's
     * groups into temporary tables first (bench/README.md, "A woken sync's reads"). */
    qun_rc rc =
        upto - after <= ROWS_NARROW
            ? qun_db_run(
                  db, &q, err,
                  "SELECT id, topic, COALESCE(group_id, 0), COALESCE(user_id, 0), payload FROM events e "
                  "WHERE id > $1 AND id <= $2 AND (user_id = $3 OR EXISTS (SELECT 1 FROM members m "
                  "WHERE m.group_id = e.group_id AND m.user_id = $3) OR EXISTS (SELECT 1 FROM events x "
                  "WHERE x.id > $1 AND x.id <= $2 AND x.topic = 'member.removed' AND x.user_id = $3 "
                  "AND x.group_id = e.group_id)) ORDER BY id",
                  "iii", after, upto, uid)
            : qun_db_run(
                  db, &q, err,
                  "SELECT id, topic, COALESCE(group_id, 0), COALESCE(user_id, 0), payload FROM events "
                  "WHERE id > $1 AND id <= $2 AND (user_id = $3 OR group_id IN "
                  "(SELECT group_id FROM members WHERE user_id = $3) OR group_id IN (SELECT group_id "
                  "FROM events WHERE id > $1 AND id <= $2 AND topic = 'member.removed' AND user_id = $3)) "
                  "ORDER BY id",
                  "iii", after, upto, uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            qun_event_row_t *more = realloc(*rows, (size_t)cap * sizeof *more);
            if (!more) {
                qun_q_done(q);
                rc = qun_fail(err, QUN_NOMEM, "cannot read the events of user %lld", (long long)uid);
                break;
            }
            *rows = more;
        }
        qun_rc taken = row_take(q, &(*rows)[*n], err);
        if (taken != QUN_OK) {
            qun_q_done(q);
            rc = taken;
            break;
        }
        (*n)++;
    }
    if (rc == QUN_DONE) return QUN_OK;
    qun_event_rows_free(*rows, *n);
    free(*rows);
    *rows = NULL;
    *n = 0;
    return rc;
}

qun_rc qun_mx_view_row(qun_db_t *db, int64_t group_id, int64_t id, qun_event_row_t *row, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT id, topic, COALESCE(group_id, 0), COALESCE(user_id, 0), payload FROM events "
                   "WHERE id = $1 AND group_id = $2",
                   "ii", id, group_id);
    if (rc == QUN_DONE) return qun_fail(err, QUN_NOT_FOUND, "no such event");
    if (rc != QUN_ROW) return rc;
    rc = row_take(q, row, err);
    qun_q_done(q);
    return rc;
}

qun_rc qun_mx_view_members(qun_db_t *db, int64_t group_id, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    *out = json_array();
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT " MX_LOCAL("u") ", u.openid, m.role, " MX_NAME(
            "u") ", m.joined_at FROM members m "
                 "JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 ORDER BY m.joined_at, u.id",
        "i", group_id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(*out,
                              json_pack("{s:s, s:s, s:s, s:s, s:I}", "local", qun_q_col_text(q, 0), "openid",
                                        qun_q_col_text(q, 1), "role", qun_q_col_text(q, 2), "name",
                                        qun_q_col_text(q, 3), "joined_at", (json_int_t)qun_q_col_int(q, 4)));
    if (rc == QUN_DONE) return QUN_OK;
    json_decref(*out);
    *out = NULL;
    return rc;
}

qun_rc qun_mx_view_local(qun_db_t *db, const char *openid, char local[QUN_MX_LOCAL_MAX], qun_err_t *err) {
    qun_q_t *q;
    local[0] = '\0';
    qun_rc rc = qun_db_run(db, &q, err, "SELECT " MX_LOCAL("u") " FROM users u WHERE u.openid = $1", "s",
                           openid ? openid : "");
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    snprintf(local, QUN_MX_LOCAL_MAX, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_mx_view_dissolution(qun_db_t *db, int64_t group_id, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    *out = json_object();
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT d.state, d.messages, " MX_LOCAL(
                       "u") ", d.requested_at, d.due_at, "
                            "d.dissolved_at, d.grace_until, s.gid, d.successor_name FROM dissolutions d "
                            "JOIN users u ON u.id = d.requested_by LEFT JOIN groups s ON s.id = "
                            "d.successor_group_id WHERE d.group_id = $1 ORDER BY d.id DESC LIMIT 1",
                   "i", group_id);
    if (rc == QUN_ROW) {
#define OPT_INT(c) (qun_q_col_null(q, c) ? NULL : json_integer(qun_q_col_int(q, c)))
#define OPT_STR(c) (qun_q_col_null(q, c) ? NULL : json_string(qun_q_col_text(q, c)))
        json_t *d =
            json_pack("{s:s, s:s, s:s, s:I, s:o?, s:o?, s:o?, s:o?, s:o?}", "state", qun_q_col_text(q, 0),
                      "messages", qun_q_col_text(q, 1), "requested_by", qun_q_col_text(q, 2), "requested_at",
                      (json_int_t)qun_q_col_int(q, 3), "dissolves_at", OPT_INT(4), "dissolved_at", OPT_INT(5),
                      "restorable_until", OPT_INT(6), "successor", OPT_STR(7), "successor_name", OPT_STR(8));
#undef OPT_INT
#undef OPT_STR
        qun_q_done(q);
        if (d) json_object_update(*out, d);
        json_decref(d);
        rc = QUN_DONE;
    }
    if (rc == QUN_DONE)
        rc = qun_db_run(db, &q, err,
                        "SELECT p.gid, p.id FROM dissolutions d JOIN groups p ON p.id = d.group_id "
                        "WHERE d.successor_group_id = $1 ORDER BY d.id DESC LIMIT 1",
                        "i", group_id);
    if (rc == QUN_ROW) {
        json_object_set_new(*out, "predecessor", json_string(qun_q_col_text(q, 0)));
        int64_t pid = qun_q_col_int(q, 1);
        qun_q_done(q);
        rc = qun_db_run(
            db, &q, err,
            "SELECT COALESCE(MAX(id), 0) FROM events WHERE group_id = $1 AND topic = 'group.dissolved'", "i",
            pid);
        if (rc == QUN_ROW) {
            json_object_set_new(*out, "predecessor_event", json_integer(qun_q_col_int(q, 0)));
            qun_q_done(q);
            rc = QUN_DONE;
        }
    }
    if (rc == QUN_DONE) return QUN_OK;
    json_decref(*out);
    *out = NULL;
    return rc;
}

void qun_mx_msgs_free(qun_mx_msg_t *msgs, int n) {
    for (int i = 0; i < n; i++)
        free(msgs[i].body);
    free(msgs);
}

qun_rc qun_mx_view_messages(qun_db_t *db, int64_t group_id, int64_t lo, int64_t hi, int limit, bool from_end,
                            qun_mx_msg_t **msgs, int *n, qun_err_t *err) {
    qun_q_t *q;
    *msgs = NULL;
    *n = 0;
    if (limit <= 0) return QUN_OK;
    if (hi < 0) hi = INT64_MAX;
    qun_mx_msg_t *got = calloc((size_t)limit, sizeof *got);
    if (!got) return qun_fail(err, QUN_NOMEM, "cannot read %d messages", limit);
    qun_rc rc =
        from_end
            ? qun_db_run(
                  db, &q, err,
                  "SELECT m.seq, m.created_at, m.kind, " MX_LOCAL(
                      "u") ", m.body, COALESCE(m.msgtype, ''), COALESCE(m.session_id, 0), "
                           "COALESCE(m.txn_id, ''), COALESCE(m.stream_id, 0), COALESCE(m.media_msgtype, ''), "
                           "COALESCE(m.media_id, ''), COALESCE(f.content_type, ''), COALESCE(f.size, 0), "
                           "CASE WHEN m.recalled_at IS NULL THEN 0 ELSE 1 END FROM messages m JOIN users u "
                           "ON u.id = m.author_id LEFT JOIN group_files f "
                           "ON f.group_id = m.group_id AND f.sha256 = m.file_sha256 WHERE m.group_id = $1 "
                           "AND m.seq > $2 AND m.seq <= $3 ORDER BY m.seq DESC LIMIT $4",
                  "iiii", group_id, lo, hi, (int64_t)limit)
            : qun_db_run(
                  db, &q, err,
                  "SELECT m.seq, m.created_at, m.kind, " MX_LOCAL(
                      "u") ", m.body, COALESCE(m.msgtype, ''), COALESCE(m.session_id, 0), "
                           "COALESCE(m.txn_id, ''), COALESCE(m.stream_id, 0), COALESCE(m.media_msgtype, ''), "
                           "COALESCE(m.media_id, ''), COALESCE(f.content_type, ''), COALESCE(f.size, 0), "
                           "CASE WHEN m.recalled_at IS NULL THEN 0 ELSE 1 END FROM messages m JOIN users u "
                           "ON u.id = m.author_id LEFT JOIN group_files f "
                           "ON f.group_id = m.group_id AND f.sha256 = m.file_sha256 WHERE m.group_id = $1 "
                           "AND m.seq > $2 AND m.seq <= $3 ORDER BY m.seq LIMIT $4",
                  "iiii", group_id, lo, hi, (int64_t)limit);
    int k = 0;
    for (; rc == QUN_ROW && k < limit; rc = qun_q_step(q, err)) {
        qun_mx_msg_t *m = &got[k];
        m->seq = qun_q_col_int(q, 0);
        m->created_at = qun_q_col_int(q, 1);
        snprintf(m->kind, sizeof m->kind, "%s", qun_q_col_text(q, 2));
        snprintf(m->author_local, sizeof m->author_local, "%s", qun_q_col_text(q, 3));
        m->body = strdup(qun_q_col_text(q, 4));
        snprintf(m->msgtype, sizeof m->msgtype, "%s", qun_q_col_text(q, 5));
        m->session_id = qun_q_col_int(q, 6);
        snprintf(m->txn_id, sizeof m->txn_id, "%s", qun_q_col_text(q, 7));
        m->stream_id = qun_q_col_int(q, 8);
        snprintf(m->media_msgtype, sizeof m->media_msgtype, "%s", qun_q_col_text(q, 9));
        snprintf(m->media_id, sizeof m->media_id, "%s", qun_q_col_text(q, 10));
        snprintf(m->file_type, sizeof m->file_type, "%s", qun_q_col_text(q, 11));
        m->file_size = qun_q_col_int(q, 12);
        m->recalled = qun_q_col_int(q, 13) != 0;
        k++;
        if (!m->body) {
            qun_q_done(q);
            rc = qun_fail(err, QUN_NOMEM, "cannot copy a message");
            break;
        }
    }
    if (rc == QUN_ROW) {
        qun_q_done(q);
        rc = QUN_DONE;
    }
    if (rc != QUN_DONE) {
        qun_mx_msgs_free(got, k);
        return rc;
    }
    if (from_end) /* read newest first: turn into ascending order */
        for (int i = 0; i < k / 2; i++) {
            qun_mx_msg_t t = got[i];
            got[i] = got[k - 1 - i];
            got[k - 1 - i] = t;
        }
    *msgs = got;
    *n = k;
    return QUN_OK;
}

qun_rc qun_mx_view_seq_at(qun_db_t *db, int64_t group_id, int64_t pos, int64_t *seq, qun_err_t *err) {
    qun_q_t *q;
    /* A message's stream position is its message.created row; messages from before
     * stream positions (NULL) come before every position. */
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE group_id = $1 "
                           "AND (stream_id IS NULL OR stream_id <= $2)",
                           "ii", group_id, pos);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_GROUP_NOT_FOUND, "no such group") : rc;
    *seq = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_mx_view_group_rows(qun_db_t *db, int64_t group_id, int64_t after, int64_t upto,
                              qun_event_row_t **rows, int *n, qun_err_t *err) {
    qun_q_t *q;
    int cap = 0;
    *rows = NULL;
    *n = 0;
    if (after >= upto) return QUN_OK;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT id, topic, COALESCE(group_id, 0), COALESCE(user_id, 0), payload FROM events "
                   "WHERE group_id = $1 AND id > $2 AND id <= $3 AND topic != 'message.created' "
                   "AND topic NOT LIKE 'receipt.%' ORDER BY id",
                   "iii", group_id, after, upto);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            qun_event_row_t *more = realloc(*rows, (size_t)cap * sizeof *more);
            if (!more) {
                qun_q_done(q);
                rc = qun_fail(err, QUN_NOMEM, "cannot read the rows of group %lld", (long long)group_id);
                break;
            }
            *rows = more;
        }
        qun_rc taken = row_take(q, &(*rows)[*n], err);
        if (taken != QUN_OK) {
            qun_q_done(q);
            rc = taken;
            break;
        }
        (*n)++;
    }
    if (rc == QUN_DONE) return QUN_OK;
    qun_event_rows_free(*rows, *n);
    free(*rows);
    *rows = NULL;
    *n = 0;
    return rc;
}

qun_rc qun_mx_view_stream_of(qun_db_t *db, int64_t group_id, int64_t seq, int64_t *pos, qun_err_t *err) {
    qun_q_t *q;
    *pos = 0;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT COALESCE(stream_id, 0) FROM messages WHERE group_id = $1 AND seq = $2",
                           "ii", group_id, seq);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    *pos = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}
