/* SPDX-License-Identifier: MIT */
/* Helpers for unit tests that run on an in-memory store. */
#ifndef QUN_UNIT_STORE_H
#define QUN_UNIT_STORE_H

#include <stdio.h>

#include "qun/core.h"
#include "qun/store.h"

/* The integer in the first column of the first row of sql, or -1. */
static inline int64_t unit_count(qun_db_t *db, const char *sql) {
    qun_q_t *q;
    int64_t n = -1;
    if (qun_db_run(db, &q, NULL, sql, "") == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

/* A new user named name (password hash "x") as the actor *a; false if that failed. */
static inline bool unit_user(qun_db_t *db, const char *name, qun_actor_t *a) {
    json_t *out;
    qun_err_t err;
    if (qun_user_create(db, name, "x", &out, &err) != QUN_OK) return false;
    snprintf(a->openid, sizeof a->openid, "%s", json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    return qun_user_id(db, a->openid, &a->uid, &err) == QUN_OK;
}

#endif
