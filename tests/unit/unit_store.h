/* SPDX-License-Identifier: MIT */
/* Helpers for unit tests that run on an in-memory store. */
#ifndef QUN_UNIT_STORE_H
#define QUN_UNIT_STORE_H

#include <stdio.h>

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

/* The same with $1 = arg.  sql must be a literal: the store caches statements by the
 * address of their text, so a buffer rewritten between calls runs its first text. */
static inline int64_t unit_count_i(qun_db_t *db, const char *sql, int64_t arg) {
    qun_q_t *q;
    int64_t n = -1;
    if (qun_db_run(db, &q, NULL, sql, "i", arg) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

/* A SQLite store's file and its WAL files removed (those that exist). */
static inline void unit_remove_sqlite(const char *path) {
    static const char *const ends[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s%s", path, ends[i]);
        remove(p);
    }
}

#endif
