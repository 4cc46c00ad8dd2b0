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
 * takes the members) so the loops' membership maps stay exact.
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
qun_rc qun_event_emit(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id,
                      json_t *payload, qun_err_t *err);
/* The user id that stands for "the group's owner" in qun_event_group. */
#define QUN_EVENT_OWNER (-1)
/* The PostgreSQL channel an event insert notifies at commit (src/http/events.c listens). */
#define QUN_EVENTS_CHANNEL "qun_events"
/* An event about group group_id: fields (stolen; NULL is QUN_NOMEM) plus "group": its
 * public id.  user_id: 0, a user row id, or QUN_EVENT_OWNER. */
qun_rc qun_event_group(qun_db_t *db, const char *topic, int64_t group_id, int64_t user_id,
                       json_t *fields, qun_err_t *err);
/* A `message.created` event of the stored message (group_id, seq), as GET .../messages
 * shows it plus "group". */
qun_rc qun_event_message(qun_db_t *db, int64_t group_id, int64_t seq, qun_err_t *err);
/* A membership event ("member.added", "member.removed", "group.created") for user uid
 * in group group_id, to the group and to that user: payload {group, openid, role?}
 * read from the rows. */
qun_rc qun_event_member(qun_db_t *db, const char *topic, int64_t group_id, int64_t uid,
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

/* Whether any event was appended since the last call (cleared by the call).  The HTTP
 * layer asks after each commit so commits without events wake nobody. */
bool qun_event_take_pending(void);
/* Events appended since start, for /metrics (includes ones a rollback undid). */
uint64_t qun_event_emitted(void);

#endif
