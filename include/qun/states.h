/* SPDX-License-Identifier: MIT */
/* The states of a group and of a dissolution, expanded from group_states.def and
 * diss_states.def: enums, their pinned names and the lifecycle's rules.  Pure data, no
 * store: the CLI uses it to read the API's answers, the core to write and check rows.
 * The one function that moves a dissolution between states is qun_diss_transition
 * (core.h). */
#ifndef QUN_STATES_H
#define QUN_STATES_H

#include <stdbool.h>

typedef enum qun_group_state {
    QUN_GROUP_STATE_INVALID = -1, /* qun_group_state_parse of an unknown name */
#define QUN_GROUP_STATE(id, name, live) QUN_GROUP_##id,
#include "qun/group_states.def"
#undef QUN_GROUP_STATE
    QUN_GROUP__STATES
} qun_group_state_t;

typedef enum qun_diss_state {
    QUN_DISS_INVALID = -1, /* qun_diss_state_parse of an unknown name */
#define QUN_DISS_STATE(id, name, group_state, cancellable, next) QUN_DISS_##id,
#include "qun/diss_states.def"
#undef QUN_DISS_STATE
    QUN_DISS__STATES
} qun_diss_state_t;

/* The bit of state s in a row's set of next states. */
#define QUN_DISS_NEXT(s) (1u << QUN_DISS_##s)

/* The pinned names, spelled by ID: QUN_GROUP_NAME(ACTIVE) is "active". */
#define QUN_GROUP_NAME(id) qun_group_state_name(QUN_GROUP_##id)
#define QUN_DISS_NAME(id) qun_diss_state_name(QUN_DISS_##id)

/* The pinned name of s ("active"), or NULL when s is not a group state. */
const char *qun_group_state_name(qun_group_state_t s);
/* The live states of group_states.def as an SQL list, for statements that decide access
 * on the server (core/group.c); tests/unit/core/group.c checks that the two agree. */
#define QUN_GROUP_LIVE_SQL "'active', 'review', 'pending'"
/* The state named name, or QUN_GROUP_STATE_INVALID (also for NULL). */
qun_group_state_t qun_group_state_parse(const char *name);
/* Whether members of a group in state s still have access (active, review, pending). */
bool qun_group_state_live(qun_group_state_t s);

/* The pinned name of s ("pending"), or NULL for QUN_DISS_NONE and invalid values. */
const char *qun_diss_state_name(qun_diss_state_t s);
/* The state named name, or QUN_DISS_INVALID (also for NULL); never QUN_DISS_NONE. */
qun_diss_state_t qun_diss_state_parse(const char *name);
/* The state of the group whose latest dissolution is in s (QUN_GROUP_STATE_INVALID
 * for invalid s). */
qun_group_state_t qun_diss_group_state(qun_diss_state_t s);
/* Whether a dissolution in s may still be cancelled, rejected or expire. */
bool qun_diss_cancellable(qun_diss_state_t s);
/* Whether s is open: a stored state with a next state (archiving, review, pending,
 * dissolved, purging).  A group has at most one open dissolution (I2). */
bool qun_diss_open(qun_diss_state_t s);
/* Whether the table lets a dissolution move from `from` to `to`. */
bool qun_diss_allowed(qun_diss_state_t from, qun_diss_state_t to);

#endif
