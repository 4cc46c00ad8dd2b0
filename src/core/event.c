/* SPDX-License-Identifier: MIT */
/* Appending member-facing events (include/qun/event.h).  Rows are written in the
 * caller's transaction; the loops that deliver them are woken after the commit.
 *
 * With several qund on one PostgreSQL database, event ids commit in any order.  An
 * event insert first marks its transaction in the event frontier (qun_db_event_order),
 * and every reader reads only under the frontier (qun_db_event_frontier), so a
 * reader's `id > last` never skips a row that commits later with a smaller id; no
 * writer waits for another's.  It also asks for a NOTIFY on `qun_events`, sent after
 * the commit, which wakes the other instances' loops.
 * Ids taken ahead after that mark (qun_db_take_id) let PostgreSQL send a row without
 * waiting for it, as the message's own row is (its failure fails the transaction). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"

static atomic_bool g_pending;
static _Atomic uint64_t g_emitted;

bool qun_event_take_pending(void) {
    return atomic_exchange(&g_pending, false);
}

uint64_t qun_event_emitted(void) {
    return atomic_load(&g_emitted);
}

static void appended(uint64_t n) {
    atomic_fetch_add(&g_emitted, n);
    atomic_store(&g_pending, true);
}

/* Before an insert into events: its place in the frontier, and the NOTIFY. */
static qun_rc ordered(qun_db_t *db, qun_err_t *err) {
    qun_rc rc = qun_db_event_order(db, err);
    if (rc == QUN_OK) rc = qun_db_notify(db, QUN_EVENTS_CHANNEL, err);
    return rc;
}

qun_rc qun_event_reserve(qun_db_t *db, int64_t *id, qun_err_t *err) {
    *id = 0;
    qun_rc rc = ordered(db, err);
    if (rc == QUN_OK) rc = qun_db_take_id(db, "events", id, err);
    if (rc == QUN_OK && *id) appended(1); /* a wake-up for a row that then fails is harmless */
    return rc;
}

void qun_event_expect(qun_db_t *db, int n) {
    qun_err_t ignore; /* on failure nothing is announced: the reserve takes its ids itself */
    if (ordered(db, &ignore) == QUN_OK) qun_db_expect_ids(db, "events", n);
}

qun_rc qun_event_insert(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id,
                        const char *payload, int64_t *id, qun_err_t *err) {
    int64_t row;
    qun_rc rc = QUN_DB_INSERT_ID(db, &row, err,
                                 "INSERT INTO events(topic, group_id, user_id, payload, created_at) "
                                 "VALUES ($1, $2, $3, $4, $5)",
                                 "szzsi", topic, group_id, user_id, payload, qun_now());
    if (rc != QUN_OK) return rc;
    if (id) *id = row;
    appended(1);
    return QUN_OK;
}

qun_rc qun_event_emit_text(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id,
                           const char *payload, int64_t *id, qun_err_t *err) {
    if (id) *id = 0;
    int64_t taken;
    qun_rc rc = qun_event_reserve(db, &taken, err);
    if (rc != QUN_OK) return rc;
    if (!taken) return qun_event_insert(db, topic, group_id, user_id, payload, id, err);
    /* PostgreSQL: the id is known, so the row is sent without waiting */
    rc = qun_db_run_nowait(db, err, QUN_EVENT_ROW, "iszzsi", taken, topic, group_id, user_id, payload,
                           qun_now());
    if (rc == QUN_OK && id) *id = taken;
    return rc;
}

qun_rc qun_event_emit_id(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id, json_t *payload,
                         int64_t *id, qun_err_t *err) {
    if (id) *id = 0;
    if (!payload) return qun_fail(err, QUN_NOMEM, "cannot build the %s event", topic);
    char *text = qun_json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (!text) return qun_fail(err, QUN_NOMEM, "cannot serialize the %s event", topic);
    qun_rc rc = qun_event_emit_text(db, topic, group_id, user_id, text, id, err);
    free(text);
    return rc;
}

qun_rc qun_event_emit(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id, json_t *payload,
                      qun_err_t *err) {
    return qun_event_emit_id(db, topic, group_id, user_id, payload, NULL, err);
}

qun_rc qun_event_group(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id, json_t *fields,
                       qun_err_t *err) {
    if (!fields) return qun_fail(err, QUN_NOMEM, "cannot build the %s event", topic);
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT gid, owner_id FROM groups WHERE id = $1", "i", group_id);
    if (rc != QUN_ROW) {
        json_decref(fields);
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "%s: no group %lld", topic, (long long)group_id)
                              : rc;
    }
    json_object_set_new(fields, "group", json_string(qun_q_col_text(q, 0)));
    if (user_id == QUN_EVENT_OWNER) user_id = qun_q_col_int(q, 1);
    qun_q_done(q);
    return qun_event_emit(db, topic, group_id, user_id, fields, err);
}

qun_rc qun_event_message(qun_db_t *db, int64_t group_id, int64_t seq, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT g.gid, m.seq, u.openid, m.kind, m.body, m.created_at, m.msgtype, "
                           "u.display_name FROM messages m "
                           "JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.author_id "
                           "WHERE m.group_id = $1 AND m.seq = $2",
                           "ii", group_id, seq);
    if (rc != QUN_ROW)
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "message %lld vanished", (long long)seq) : rc;
    json_t *p =
        json_pack("{s:s, s:I, s:s, s:s?, s:s, s:s, s:I, s:s*}", "group", qun_q_col_text(q, 0), "seq",
                  (json_int_t)qun_q_col_int(q, 1), "author", qun_q_col_text(q, 2), "author_display_name",
                  qun_q_col_null(q, 7) ? NULL : qun_q_col_text(q, 7), "kind", qun_q_col_text(q, 3), "text",
                  qun_q_col_text(q, 4), "created_at", (json_int_t)qun_q_col_int(q, 5), "msgtype",
                  qun_q_col_null(q, 6) ? NULL : qun_q_col_text(q, 6));
    qun_q_done(q);
    int64_t id;
    rc = qun_event_emit_id(db, "message.created", group_id, 0, p, &id, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err, "UPDATE messages SET stream_id = $3 WHERE group_id = $1 AND seq = $2",
                        "iii", group_id, seq, id);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_event_member_with(qun_db_t *db, const char *topic, int64_t group_id, int64_t uid, json_t *extra,
                             qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT g.gid, u.openid, m.role, g.name, u.display_name FROM groups g "
                           "JOIN users u ON u.id = $2 "
                           "LEFT JOIN members m ON m.group_id = g.id AND m.user_id = u.id WHERE g.id = $1",
                           "ii", group_id, uid);
    if (rc != QUN_ROW) {
        json_decref(extra);
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "%s: no such group or user", topic) : rc;
    }
    json_t *p = json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "group", qun_q_col_text(q, 0), "group_name",
                          qun_q_col_text(q, 3), "openid", qun_q_col_text(q, 1), "display_name",
                          qun_q_col_null(q, 4) ? NULL : qun_q_col_text(q, 4), "role",
                          qun_q_col_null(q, 2) ? NULL : qun_q_col_text(q, 2));
    qun_q_done(q);
    if (p && extra && json_object_update(p, extra) != 0) json_decref(p), p = NULL;
    json_decref(extra);
    return qun_event_emit(db, topic, group_id, uid, p, err);
}

qun_rc qun_event_member(qun_db_t *db, const char *topic, int64_t group_id, int64_t uid, qun_err_t *err) {
    return qun_event_member_with(db, topic, group_id, uid, NULL, err);
}

qun_rc qun_event_sessions_revoked(qun_db_t *db, json_t *ids, const char *reason, qun_err_t *err) {
    if (!ids) return qun_fail(err, QUN_NOMEM, "cannot build the %s event", QUN_EVENT_SESSION_REVOKED);
    if (json_array_size(ids) == 0) {
        json_decref(ids);
        return QUN_OK;
    }
    return qun_event_emit(db, QUN_EVENT_SESSION_REVOKED, 0, 0,
                          json_pack("{s:o, s:s}", "sessions", ids, "reason", reason), err);
}

qun_rc qun_event_approval_requested(qun_db_t *db, const char *aid, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT a.kind, g.gid, g.name, g.kind, su.openid, ru.openid, a.created_at, a.expires_at, "
                   "COALESCE(a.approver_id, 0), COALESCE(a.org_id, 0), d.requested_by FROM approvals a "
                   "JOIN groups g ON g.id = a.group_id JOIN dissolutions d ON d.id = a.dissolution_id "
                   "JOIN users ru ON ru.id = d.requested_by LEFT JOIN users su ON su.id = a.subject_id "
                   "WHERE a.aid = $1",
                   "s", aid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "approval %s vanished", aid) : rc;
    json_t *p = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:I}", "id", aid, "kind", qun_q_col_text(q, 0), "group",
        qun_q_col_text(q, 1), "group_name", qun_q_col_text(q, 2), "group_kind", qun_q_col_text(q, 3),
        "subject", qun_q_col_null(q, 4) ? NULL : qun_q_col_text(q, 4), "requested_by", qun_q_col_text(q, 5),
        "created_at", (json_int_t)qun_q_col_int(q, 6), "expires_at", (json_int_t)qun_q_col_int(q, 7));
    int64_t approver = qun_q_col_int(q, 8), org = qun_q_col_int(q, 9), requester = qun_q_col_int(q, 10);
    qun_q_done(q);
    if (approver) return qun_event_emit(db, "approval.requested", 0, approver, p, err);
    char *text = p ? qun_json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!text) return qun_fail(err, QUN_NOMEM, "cannot build the approval.requested event");
    /* Any admin of the org may decide: one row each (orgs have few admins). */
    rc = ordered(db, err);
    if (rc != QUN_OK) {
        free(text);
        return rc;
    }
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO events(topic, group_id, user_id, payload, created_at) "
                    "SELECT 'approval.requested', NULL, user_id, $2, $3 FROM org_admins WHERE org_id = $1 "
                    "AND user_id != $4",
                    "isii", org, text, qun_now(), requester);
    free(text);
    if (rc != QUN_DONE) return rc;
    qun_db_ids_used(db, "events"); /* the next event's id is above these */
    appended((uint64_t)qun_db_changes(db));
    return QUN_OK;
}

/* ---- retention ---- */

/* The rows housekeeping may delete, created before $1: per-user and internal rows,
 * message.created and any other topic that is not group state; group-state rows only
 * once their group is in state $2 (purged) or gone. */
#define EXPIRABLE                                                                                            \
    "created_at < $1 AND (COALESCE(group_id, 0) = 0 OR NOT (topic LIKE 'member.%' OR topic LIKE "            \
    "'group.%' OR topic LIKE 'dissolution.%' OR topic LIKE 'invitation.%' OR topic = "                       \
    "'transfer.accepted') OR NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = events.group_id AND "           \
    "g.state != $2))"

qun_rc qun_event_expire(qun_db_t *db, int64_t before, int64_t *deleted, qun_err_t *err) {
    qun_q_t *q;
    if (deleted) *deleted = 0;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(id), 0) FROM events WHERE " EXPIRABLE, "is",
                           before, QUN_GROUP_NAME(PURGED));
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no largest expired event") : rc;
    int64_t top = qun_q_col_int(q, 0);
    qun_q_done(q);
    if (top == 0) return QUN_OK;
    rc = qun_db_run(db, NULL, err, "DELETE FROM events WHERE id <= $3 AND " EXPIRABLE, "isi", before,
                    QUN_GROUP_NAME(PURGED), top);
    if (rc != QUN_DONE) return rc;
    if (deleted) *deleted = qun_db_changes(db);
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO event_horizon(one, id) VALUES (1, $1) ON CONFLICT (one) DO UPDATE SET id = "
                    "excluded.id WHERE excluded.id > event_horizon.id",
                    "i", top);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* What one snapshot says of the feed, kept for the next reader of the same snapshot:
 * the answers one wake sends its parked syncs all read it (qun_db_read_snapshot).  Kept
 * once computed, with the snapshot it was computed in (PostgreSQL may begin a newer one
 * while finding the frontier), on read-only connections. */
typedef struct {
    uint64_t last_snap, horizon_snap; /* 0: not known */
    int64_t last_id, horizon;
} feed_memo_t;

static feed_memo_t *feed_memo(qun_db_t *db) {
    if (!qun_db_readonly(db)) return NULL; /* a transaction that writes may move both */
    return qun_db_aux_zeroed(db, QUN_AUX_FEED, sizeof(feed_memo_t), free);
}

qun_rc qun_event_horizon(qun_db_t *db, int64_t *id, qun_err_t *err) {
    qun_q_t *q;
    *id = 0;
    uint64_t snap = qun_db_read_snapshot(db);
    feed_memo_t *m = snap ? feed_memo(db) : NULL;
    if (m && m->horizon_snap == snap) {
        *id = m->horizon;
        return QUN_OK;
    }
    qun_rc rc = qun_db_run(db, &q, err, "SELECT id FROM event_horizon WHERE one = 1", "");
    if (rc == QUN_ROW) {
        *id = qun_q_col_int(q, 0);
        qun_q_done(q);
    } else if (rc != QUN_DONE) {
        return rc;
    }
    if (m) *m = (feed_memo_t){m->last_snap, snap, m->last_id, *id};
    return QUN_OK;
}

/* ---- reading the feed ---- */
qun_rc qun_event_last_id(qun_db_t *db, int64_t *id, qun_err_t *err) {
    qun_q_t *q;
    int64_t horizon, below;
    *id = 0;
    uint64_t snap = qun_db_read_snapshot(db);
    feed_memo_t *m = snap ? feed_memo(db) : NULL;
    if (m && m->last_snap == snap) {
        *id = m->last_id;
        return QUN_OK;
    }
    qun_rc rc = qun_db_event_frontier(db, &below, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(id), 0) FROM events WHERE id < $1", "i", below);
    if (rc == QUN_ROW) {
        *id = qun_q_col_int(q, 0);
        qun_q_done(q);
    } else if (rc != QUN_DONE) {
        return rc;
    }
    /* Housekeeping may have deleted the newest rows: ids never go back below it. */
    rc = qun_event_horizon(db, &horizon, err);
    if (rc == QUN_OK && horizon > *id) *id = horizon < below ? horizon : below - 1;
    snap = qun_db_read_snapshot(db); /* the one the reads above were made in */
    if (rc == QUN_OK && m && snap) {
        m->last_snap = snap;
        m->last_id = *id;
    }
    return rc;
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

qun_rc qun_event_fetch(qun_db_t *db, int64_t after, qun_event_row_t *rows, int max, int *n, qun_err_t *err) {
    qun_q_t *q;
    int64_t below;
    *n = 0;
    qun_rc rc = qun_db_event_frontier(db, &below, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err,
                    "SELECT id, topic, COALESCE(group_id, 0), COALESCE(user_id, 0), payload FROM events "
                    "WHERE id > $1 AND id < $3 ORDER BY id LIMIT $2",
                    "iii", after, (int64_t)max, below);
    for (; rc == QUN_ROW && *n < max; rc = qun_q_step(q, err)) {
        qun_rc taken = row_take(q, &rows[*n], err);
        if (taken != QUN_OK) {
            qun_q_done(q);
            return taken;
        }
        (*n)++;
    }
    if (rc == QUN_ROW) qun_q_done(q);
    return rc == QUN_ROW || rc == QUN_DONE ? QUN_OK : rc;
}

void qun_event_rows_free(qun_event_row_t *rows, int n) {
    for (int i = 0; i < n; i++) {
        free(rows[i].topic);
        free(rows[i].payload);
    }
}

qun_rc qun_event_replay(qun_db_t *db, int64_t uid, int64_t after, int64_t upto, int max,
                        qun_event_row_t **rows, int *n, qun_event_replay_t *how, qun_err_t *err) {
    qun_q_t *q;
    *rows = NULL;
    *n = 0;
    *how = QUN_REPLAY_COMPLETE;
    if (after >= upto) return QUN_OK;
    int64_t horizon;
    qun_rc rc = qun_event_horizon(db, &horizon, err);
    if (rc != QUN_OK) return rc;
    if (after < horizon) { /* housekeeping deleted some of what the stream missed */
        *how = QUN_REPLAY_EXPIRED;
        return QUN_OK;
    }
    qun_event_row_t *got = calloc((size_t)max + 1, sizeof *got);
    int k = 0;
    if (!got) return qun_fail(err, QUN_NOMEM, "cannot replay %d events", max);
    /* The audience: the user's own events, and those of the groups it is a member of. */
    rc = qun_db_run(db, &q, err,
                    "SELECT id, topic, COALESCE(group_id, 0), COALESCE(user_id, 0), payload FROM events "
                    "WHERE id > $1 AND id <= $2 AND (user_id = $3 OR group_id IN "
                    "(SELECT group_id FROM members WHERE user_id = $3)) ORDER BY id LIMIT $4",
                    "iiii", after, upto, uid, (int64_t)max + 1);
    for (; rc == QUN_ROW && k < max; rc = qun_q_step(q, err)) {
        qun_rc taken = row_take(q, &got[k], err);
        if (taken != QUN_OK) {
            qun_q_done(q);
            rc = taken;
            break;
        }
        k++;
    }
    if (rc == QUN_ROW) { /* a row beyond max */
        qun_q_done(q);
        *how = QUN_REPLAY_TOO_MANY;
        rc = QUN_DONE;
    }
    if (rc != QUN_DONE || *how != QUN_REPLAY_COMPLETE) {
        qun_event_rows_free(got, k);
        free(got);
        return rc == QUN_DONE ? QUN_OK : rc;
    }
    *rows = got;
    *n = k;
    return QUN_OK;
}

qun_rc qun_event_session_live(qun_db_t *db, int64_t session_id, int64_t *expires_at, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT expires_at FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
                   "ii", session_id, qun_now());
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_TOKEN_INVALID, "the bearer token is invalid, expired or revoked");
    if (rc != QUN_ROW) return rc;
    *expires_at = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_event_user_groups(qun_db_t *db, int64_t uid, int64_t **ids, size_t *n, qun_err_t *err) {
    qun_q_t *q;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT group_id FROM members WHERE user_id = $1 ORDER BY group_id",
                           "i", uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            int64_t *more = realloc(*ids, cap * sizeof *more);
            if (!more) {
                qun_q_done(q);
                rc = qun_fail(err, QUN_NOMEM, "cannot list the groups of user %lld", (long long)uid);
                break;
            }
            *ids = more;
        }
        (*ids)[(*n)++] = qun_q_col_int(q, 0);
    }
    if (rc == QUN_DONE) return QUN_OK;
    free(*ids);
    *ids = NULL;
    *n = 0;
    return rc;
}

qun_rc qun_event_successor(qun_db_t *db, const char *payload, int64_t *group_id, qun_err_t *err) {
    json_t *p = json_loads(payload, 0, NULL);
    const char *succ = json_string_value(json_object_get(p, "successor"));
    qun_q_t *q;
    qun_rc rc = QUN_DONE;
    *group_id = 0;
    if (succ) rc = qun_db_run(db, &q, err, "SELECT id FROM groups WHERE gid = $1", "s", succ);
    if (rc == QUN_ROW) {
        *group_id = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    json_decref(p);
    return rc == QUN_ROW || rc == QUN_DONE ? QUN_OK : rc;
}

static bool topic_is(const qun_event_row_t *e, const char *t) {
    return strcmp(e->topic, t) == 0;
}

qun_event_effect_t qun_event_effect(const qun_event_row_t *e) {
    if (!e->group_id && !e->user_id)
        return topic_is(e, QUN_EVENT_SESSION_REVOKED) ? QUN_EVENT_ENDS_SESSIONS : QUN_EVENT_KEEPS;
    if (!e->group_id) return QUN_EVENT_KEEPS;
    if (e->user_id && (topic_is(e, "member.added") || topic_is(e, "group.created"))) return QUN_EVENT_JOINS;
    if (e->user_id && topic_is(e, "member.removed")) return QUN_EVENT_LEAVES;
    if (topic_is(e, "group.dissolved")) return QUN_EVENT_MOVES;
    if (topic_is(e, "group.purged")) return QUN_EVENT_ENDS;
    return QUN_EVENT_KEEPS;
}

bool qun_event_reaches(const qun_event_row_t *e, int64_t uid, bool in_group) {
    return (e->user_id && e->user_id == uid) || (e->group_id && in_group);
}
