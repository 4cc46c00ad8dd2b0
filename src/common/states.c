/* SPDX-License-Identifier: MIT */
/* The tables of group_states.def and diss_states.def: names, lookups and the
 * lifecycle's rules, each a walk over one table. */
#include <stddef.h>
#include <string.h>

#include "qun/states.h"

static const struct {
    const char *name;
    bool live;
} group_states[] = {
#define QUN_GROUP_STATE(id, name, live) {name, live},
#include "qun/group_states.def"
#undef QUN_GROUP_STATE
};

static const struct {
    const char *name;
    qun_group_state_t group_state;
    bool cancellable;
    unsigned next;
} diss_states[] = {
#define QUN_DISS_STATE(id, name, group_state, cancellable, next)                                             \
    {name, QUN_GROUP_##group_state, cancellable, next},
#include "qun/diss_states.def"
#undef QUN_DISS_STATE
};

_Static_assert(QUN_DISS__STATES <= 32, "the next states of a row are a 32-bit set");

static bool group_valid(qun_group_state_t s) {
    return s >= 0 && s < QUN_GROUP__STATES;
}

static bool diss_valid(qun_diss_state_t s) {
    return s >= 0 && s < QUN_DISS__STATES;
}

const char *qun_group_state_name(qun_group_state_t s) {
    return group_valid(s) ? group_states[s].name : NULL;
}

qun_group_state_t qun_group_state_parse(const char *name) {
    for (int s = 0; name && s < QUN_GROUP__STATES; s++)
        if (strcmp(group_states[s].name, name) == 0) return (qun_group_state_t)s;
    return QUN_GROUP_STATE_INVALID;
}

bool qun_group_state_live(qun_group_state_t s) {
    return group_valid(s) && group_states[s].live;
}

const char *qun_diss_state_name(qun_diss_state_t s) {
    return diss_valid(s) ? diss_states[s].name : NULL;
}

qun_diss_state_t qun_diss_state_parse(const char *name) {
    for (int s = 0; name && s < QUN_DISS__STATES; s++)
        if (diss_states[s].name && strcmp(diss_states[s].name, name) == 0) return (qun_diss_state_t)s;
    return QUN_DISS_INVALID;
}

qun_group_state_t qun_diss_group_state(qun_diss_state_t s) {
    return diss_valid(s) ? diss_states[s].group_state : QUN_GROUP_STATE_INVALID;
}

bool qun_diss_cancellable(qun_diss_state_t s) {
    return diss_valid(s) && diss_states[s].cancellable;
}

bool qun_diss_open(qun_diss_state_t s) {
    return diss_valid(s) && s != QUN_DISS_NONE && diss_states[s].next != 0;
}

bool qun_diss_allowed(qun_diss_state_t from, qun_diss_state_t to) {
    return diss_valid(from) && diss_valid(to) && (diss_states[from].next & (1u << to)) != 0;
}
