/* SPDX-License-Identifier: MIT */
/* Helpers for unit tests of src/core on an in-memory store. */
#ifndef QUN_UNIT_CORE_H
#define QUN_UNIT_CORE_H

#include <stdio.h>
#include <string.h>

#include "qun/core.h"
#include "unit.h"

/* A new account name (password "x") on db, as the actor *a of a session without a
 * device: openid, username and uid filled, everything else zero. */
static inline void unit_user(qun_db_t *db, const char *name, qun_actor_t *a) {
    json_t *out = NULL;
    qun_err_t err;
    memset(a, 0, sizeof *a);
    CHECK(qun_user_create(db, name, "x", &out, &err) == QUN_OK);
    snprintf(a->openid, sizeof a->openid, "%s", json_string_value(json_object_get(out, "openid")));
    snprintf(a->username, sizeof a->username, "%s", name);
    json_decref(out);
    CHECK(qun_user_id(db, a->openid, &a->uid, &err) == QUN_OK);
}

/* The same, when a test needs only the account's id. */
static inline int64_t unit_user_id(qun_db_t *db, const char *name) {
    qun_actor_t a;
    unit_user(db, name, &a);
    return a.uid;
}

#endif
