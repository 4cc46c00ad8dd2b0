/* SPDX-License-Identifier: MIT */
/* Read positions: how far each member has read each group (table read_marks), the
 * unread counts derived from them, and the receipts other members see (docs/matrix.md
 * "Receipts, unread counts and typing").  One row per user and group holds two
 * positions, both moving forward only: seq, the newest message seq the user has read
 * by any receipt (it decides the unread count), and pub_seq, the one its public
 * receipts show the other members (a Matrix m.read.private moves seq alone).
 *
 * A position that moves appends an event in the same transaction, so receipts travel
 * as every other change does: `receipt.read` {group, user, seq, ts} to the group's
 * members for a public one, `receipt.private` {group, group_id, seq, ts} to the user
 * alone for a private one.  Both are short-lived rows (housekeeping deletes them with
 * the other non-state rows); the table keeps the positions. */
#ifndef QUN_READ_H
#define QUN_READ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/core.h"

/* Mark group g read by user uid up to message seq (0 <= seq <= the group's newest
 * seq: the caller checks), publicly or privately, at ts_ms.  A seq at or below the
 * current position leaves it (positions move forward only) and appends nothing.  The
 * position afterwards into *read_seq (when not NULL).  Runs in the caller's writer
 * transaction; membership is the caller's to check. */
qun_rc qun_read_mark(qun_db_t *db, int64_t uid, const qun_group_t *g, int64_t seq, bool public_,
                     int64_t ts_ms, int64_t *read_seq, qun_err_t *err);

/* /v1's mark: the member a marks group gid read up to seq (seq < 0: the newest
 * message), publicly.  Answers {read_seq, unread}.  Non-members GROUP_NOT_FOUND (as
 * qun_group_access), a seq beyond the newest message READ_SEQ_INVALID. */
qun_rc qun_read_mark_group(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t seq, json_t **out,
                           qun_err_t *err);

/* A user's position in one group. */
typedef struct {
    int64_t group_id;
    int64_t seq;    /* read up to (0: nothing read) */
    int64_t unread; /* messages after seq not written by the user */
} qun_read_pos_t;

/* The positions of user uid in every group it is a member of (group_id 0), or in
 * group_id alone, with one query, ascending by group: into *pos (malloc'd, *n; the
 * caller frees it; NULL when none). */
qun_rc qun_read_positions(qun_db_t *db, int64_t uid, int64_t group_id, qun_read_pos_t **pos, size_t *n,
                          qun_err_t *err);

/* The receipts user uid may see in every group it is a member of (group_id 0) or in
 * group_id alone, with one query: every member's public position (pub_seq > 0) and,
 * when it is ahead of its public one, uid's own private position.  Into *out (owned by
 * the caller) as [{group_id, local (a Matrix localpart), seq, ts, private}]. */
qun_rc qun_read_receipts(qun_db_t *db, int64_t uid, int64_t group_id, json_t **out, qun_err_t *err);

#endif
