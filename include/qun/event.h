/* SPDX-License-Identifier: MIT */
/* Member-facing events (GET /v1/events): the core appends one row to `events` in the
 * same write transaction as the change it describes, so an event exists exactly when
 * its change is durable.  Delivery is the HTTP layer's business (src/http/events.c):
 * after each commit the writer wakes the loops, and each loop reads the new rows once
 * and fans them out from memory.  See docs/events.md for the topics and payloads.
 *
 * Audience of a row: every member of group_id (when not 0) and the user user_id (when
 * not 0).  Every code path that changes memberships must emit `member.added` /
 * `member.removed` (or `group.created`, or `group.dissolved` naming the successor that
 * takes the members) so the loops' membership maps stay exact  An invitation
 * (`member.invited`, `invitation.declined`, `invitation.revoked`) is addressed to the
 * group and to the invitee, but joins nobody: only the `member.added` of its
 * acceptance does.
 *
 * A row with neither group_id nor user_id reaches no client: it is an instruction to
 * the loops of every instance.  `session.revoked` is one: every code path that
 * revokes sessions must append it (qun_event_sessions_revoked) in the same
 * transaction, so the streams those sessions opened end wherever they are open. */
#ifndef QUN_EVENT_H
#define QUN_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/errors.h"
#include "qun/store.h"

/* Append an event in the caller's (writer) transaction.  topic: e.g. "message.created";
 * group_id / user_id: row ids of the audience, 0 for none; payload: the JSON object
 * clients receive as `data`, stolen (a NULL payload, e.g. a failed json_pack, is
 * QUN_NOMEM).  Returns QUN_OK or a store error. */
qun_rc qun_event_emit(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id, json_t *payload,
                      qun_err_t *err);
/* qun_event_emit, and the new row's id into *id (when id is not NULL; 0 on failure). */
qun_rc qun_event_emit_id(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id, json_t *payload,
                         int64_t *id, qun_err_t *err);
/* qun_event_emit_id with the payload already encoded (compact JSON text, borrowed):
 * for a caller that answers with the same bytes and would otherwise encode twice. */
qun_rc qun_event_emit_text(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id,
                           const char *payload, int64_t *id, qun_err_t *err);
/* An event row's id taken ahead, for a caller that sends the row inside a statement of
 * its own (a writable CTE, QUN_EVENT_ROW_CTE): the event's ordering and notification are
 * arranged as qun_event_emit's.  *id is 0 when the store gives ids only at insert
 * (SQLite; PostgreSQL for a transaction's first event, whose id its INSERT gives, so
 * that a lone row leaves no gap): the caller then appends with qun_event_insert. */
qun_rc qun_event_reserve(qun_db_t *db, int64_t *id, qun_err_t *err);
/* Announce, from an operation whose reads are sent ahead (qun_wop_t.ahead), that it will
 * reserve n event ids in this transaction: the event's ordering and notification are
 * arranged now, and the ids come with the reads (qun_db_expect_ids). */
void qun_event_expect(qun_db_t *db, int n);
/* After a qun_event_reserve that gave no id: the row inserted now, its id into *id. */
qun_rc qun_event_insert(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id,
                        const char *payload, int64_t *id, qun_err_t *err);
/* The row of an event whose id is known: parameters $1 id, $2 topic, $3 group_id,
 * $4 user_id (NULL for none), $5 payload, $6 created_at. */
#define QUN_EVENT_ROW                                                                                        \
    "INSERT INTO events(id, topic, group_id, user_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
/* That row ahead of the statement that carries it (a reserved event). */
#define QUN_EVENT_ROW_CTE "WITH e AS (" QUN_EVENT_ROW ") "
/* The user id that stands for "the group's owner" in qun_event_group. */
#define QUN_EVENT_OWNER (-1)
/* The PostgreSQL channel an event insert notifies at commit (src/http/events.c listens). */
#define QUN_EVENTS_CHANNEL "qun_events"
/* An event about group group_id: fields (stolen; NULL is QUN_NOMEM) plus "group": its
 * public id.  user_id: 0, a user row id, or QUN_EVENT_OWNER. */
qun_rc qun_event_group(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id, json_t *fields,
                       qun_err_t *err);
/* A `message.created` event of the stored message (group_id, seq), as GET .../messages
 * shows it plus "group"; the new row's id becomes the message's stream_id. */
qun_rc qun_event_message(qun_db_t *db, int64_t group_id, int64_t seq, qun_err_t *err);
/* A membership event ("member.added", "member.removed", "group.created") for user uid
 * in group group_id, to the group and to that user: payload {group, openid, role?}
 * read from the rows. */
qun_rc qun_event_member(qun_db_t *db, const char *topic, int64_t group_id, int64_t uid, qun_err_t *err);
/* qun_event_member with the members of extra (a JSON object, stolen; NULL for none)
 * added to the payload, e.g. member.removed's {by, reason?}. */
qun_rc qun_event_member_with(qun_db_t *db, const char *topic, int64_t group_id, int64_t uid, json_t *extra,
                             qun_err_t *err);
/* The internal topic that ends the event streams of revoked sessions (src/http/events.c). */
#define QUN_EVENT_SESSION_REVOKED "session.revoked"
/* Append `session.revoked` for the session row ids in ids (a JSON array of integers,
 * stolen; an empty array appends nothing), saying why: reason is what the ended
 * streams are told ("revoked", "password_changed").  Payload {sessions, reason}; it
 * holds row ids, which is why no client ever sees the row. */
qun_rc qun_event_sessions_revoked(qun_db_t *db, json_t *ids, const char *reason, qun_err_t *err);
/* `approval.requested` for approval aid to whoever may decide it: its named approver,
 * or every admin of its org but the requester.  Payload as in GET /v1/approvals. */
qun_rc qun_event_approval_requested(qun_db_t *db, const char *aid, qun_err_t *err);

/* ---- retention (the housekeeping job, src/jobs/scheduler.c; docs/events.md) ----
 * Group-state topics (member.*, group.*, dissolution.*, invitation.*,
 * transfer.accepted) of a group stay until its purge deletes them (or, for a group
 * already purged, until housekeeping); every other row goes once it is old. */

/* In the caller's (writer) transaction: delete the expirable rows created before
 * `before` (every row but the group-state rows of groups not purged), count them into
 * *deleted (when not NULL), and raise the horizon to the largest id deleted. */
qun_rc qun_event_expire(qun_db_t *db, int64_t before, int64_t *deleted, qun_err_t *err);
/* The horizon into *id: the largest event id housekeeping ever deleted, 0 for none.  A
 * stream that last saw an id below it has lost events (QUN_REPLAY_EXPIRED). */
qun_rc qun_event_horizon(qun_db_t *db, int64_t *id, qun_err_t *err);

/* ---- reading the feed (src/http/events.c) ----
 * The loops read events in id order: new rows after the last one they fanned out, and
 * on a resume the rows a reconnecting user missed.  Who is in a row's audience is
 * decided here (qun_event_replay) and, for live delivery, by the loops' membership
 * maps, which qun_event_user_groups fills and the membership events keep current. */

/* An event row as the feed reads it. */
typedef struct {
    int64_t id;
    int64_t group_id; /* the audience's group row id, 0 for none */
    int64_t user_id;  /* the audience's user row id, 0 for none */
    char *topic;      /* malloc'd */
    char *payload;    /* the JSON text clients receive as `data`, malloc'd */
} qun_event_row_t;

/* The feed's position into *id: the newest row's id under the event frontier
 * (qun_db_event_frontier: no row at or under it can still appear), or the horizon when
 * housekeeping deleted the newest rows (0 when there was never one).  In a read
 * transaction, the transaction may begin again for the frontier: read this first. */
qun_rc qun_event_last_id(qun_db_t *db, int64_t *id, qun_err_t *err);
/* Up to max events with id > after and under the event frontier, oldest first, into
 * rows[0..*n).  On an error the
 * *n rows read before it are still filled (the rest can be read later).  The caller
 * owns the rows' strings either way: qun_event_rows_free. */
qun_rc qun_event_fetch(qun_db_t *db, int64_t after, qun_event_row_t *rows, int max, int *n, qun_err_t *err);
/* Free the strings of rows[0..n) (not the array).  NULL is accepted when n is 0. */
void qun_event_rows_free(qun_event_row_t *rows, int n);

/* Why a replay could not send every event a stream missed. */
typedef enum {
    QUN_REPLAY_COMPLETE = 0, /* every event is in the rows */
    QUN_REPLAY_EXPIRED,      /* after is below the horizon (qun_event_horizon): some may be
                              * deleted; no rows */
    QUN_REPLAY_TOO_MANY,     /* more than max: no rows */
} qun_event_replay_t;
/* The events with after < id <= upto whose audience includes user uid (the user itself,
 * or a group the user is a member of now), oldest first: into *rows (malloc'd, *n of
 * them; free with qun_event_rows_free, then free()) when they are all there and at most
 * max; otherwise *how says why and *rows is NULL.  Nothing to replay when after >= upto. */
qun_rc qun_event_replay(qun_db_t *db, int64_t uid, int64_t after, int64_t upto, int max,
                        qun_event_row_t **rows, int *n, qun_event_replay_t *how, qun_err_t *err);
/* Whether session session_id is live (not revoked, not expired) in db's snapshot:
 * QUN_OK with *expires_at set, or QUN_TOKEN_INVALID.  A stream opens only after this, so
 * a revocation it did not see commits later and is still to be read (events.c, E4). */
qun_rc qun_event_session_live(qun_db_t *db, int64_t session_id, int64_t *expires_at, qun_err_t *err);
/* The row ids of the groups user uid is a member of, ascending, into *ids (malloc'd:
 * the caller frees it; NULL when *n is 0). */
qun_rc qun_event_user_groups(qun_db_t *db, int64_t uid, int64_t **ids, size_t *n, qun_err_t *err);
/* The row id of the successor group a `group.dissolved` event's payload names into
 * *group_id; 0 when it names none or no such group exists. */
qun_rc qun_event_successor(qun_db_t *db, const char *payload, int64_t *group_id, qun_err_t *err);

/* What a row changes for the loops that deliver it (their membership maps and streams). */
typedef enum {
    QUN_EVENT_KEEPS = 0,     /* nothing */
    QUN_EVENT_JOINS,         /* user_id joins group_id, before delivery: a new member sees its own
                              * arrival (member.added, group.created) */
    QUN_EVENT_LEAVES,        /* user_id leaves group_id, after delivery (member.removed) */
    QUN_EVENT_MOVES,         /* after delivery, every member of group_id joins the successor the
                              * payload names, if any (group.dissolved; qun_event_successor) */
    QUN_EVENT_ENDS,          /* after delivery, everyone leaves group_id (group.purged) */
    QUN_EVENT_ENDS_SESSIONS, /* an internal row: the streams of the sessions it names end
                              * (session.revoked) */
} qun_event_effect_t;
/* The effect of row e: how live delivery keeps every audience exact. */
qun_event_effect_t qun_event_effect(const qun_event_row_t *e);
/* Whether row e reaches user uid, who is (in_group) or is not a member of e's group: its
 * user, or any member of its group.  A row with neither reaches no client. */
bool qun_event_reaches(const qun_event_row_t *e, int64_t uid, bool in_group);

/* Whether any event was appended since the last call (cleared by the call).  The HTTP
 * layer asks after each commit so commits without events wake nobody. */
bool qun_event_take_pending(void);
/* Events appended since start, for /metrics (includes ones a rollback undid). */
uint64_t qun_event_emitted(void);

#endif
