/* SPDX-License-Identifier: MIT */
/* Private to the store: the backend operations table that src/store/store.c
 * dispatches qun_db_* / qun_q_* calls through, and the embedded migrations, generated
 * by the Makefile from src/store/sql/<backend>/NNNN_name.sql. */
#ifndef QUN_STORE_INTERNAL_H
#define QUN_STORE_INTERNAL_H

#include <stddef.h>

#include "qun/store.h"

typedef struct {
    int version;
    const char *name;
    const char *sql;
} qun_migration_t;

extern const qun_migration_t qun_sqlite_migrations[];
extern const size_t qun_sqlite_migrations_count;
extern const qun_migration_t qun_pg_migrations[];
extern const size_t qun_pg_migrations_count;

/* One backend.  Each backend defines its own (private) struct qun_db and struct
 * qun_q whose first member is a pointer to its ops table, which is how store.c
 * finds the backend of a connection or a query. */
typedef struct qun_store_ops {
    const char *name;
    /* Appended to a row-claiming subquery (the job queue's): skip the rows another
     * transaction holds instead of waiting for them; "" where one writer is all
     * there is (SQLite). */
    const char *skip_locked;
    void (*init)(void);
    qun_rc (*open)(const char *conninfo, bool readonly, bool migrate, qun_db_t **out,
                   qun_err_t *err);
    void (*close)(qun_db_t *db);
    qun_rc (*prepare)(qun_db_t *db, const char *sql, qun_q_t **out, qun_err_t *err);
    void (*bind_int)(qun_q_t *q, int idx, int64_t v);
    void (*bind_text)(qun_q_t *q, int idx, const char *s);
    void (*bind_blob)(qun_q_t *q, int idx, const void *p, size_t n);
    void (*bind_null)(qun_q_t *q, int idx);
    qun_rc (*step)(qun_q_t *q, qun_err_t *err);
    int64_t (*col_int)(qun_q_t *q, int col);
    const char *(*col_text)(qun_q_t *q, int col);
    const void *(*col_blob)(qun_q_t *q, int col, size_t *n);
    bool (*col_null)(qun_q_t *q, int col);
    void (*done)(qun_q_t *q);
    int64_t (*changes)(qun_db_t *db);
    qun_rc (*exec)(qun_db_t *db, const char *sql, qun_err_t *err);
    qun_rc (*txn)(qun_db_t *db, qun_txn_fn fn, void *arg, qun_err_t *err);
    qun_rc (*savepoint)(qun_db_t *db, qun_err_t *err);
    qun_rc (*release)(qun_db_t *db, bool keep, qun_err_t *err);
    qun_rc (*read_begin)(qun_db_t *db, qun_err_t *err);
    void (*read_end)(qun_db_t *db);
    qun_rc (*xlock)(qun_db_t *db, int64_t key, qun_err_t *err);
    /* Optional (NULL on PostgreSQL): drop the copies of deleted rows the backend's own
     * files still hold (the SQLite WAL). */
    qun_rc (*scrub)(qun_db_t *db, qun_err_t *err);
    /* Optional (NULL on SQLite): notifications between processes. */
    qun_rc (*notify)(qun_db_t *db, const char *channel, qun_err_t *err);
    qun_rc (*listen)(qun_db_t *db, const char *channel, qun_err_t *err);
    qun_rc (*wait_notify)(qun_db_t *db, int timeout_ms, bool *woken, qun_err_t *err);
} qun_store_ops_t;

extern const qun_store_ops_t qun_sqlite_ops;
extern const qun_store_ops_t qun_pg_ops;
/* The ops table of db's backend. */
#define QUN_DB_OPS(db) (*(const qun_store_ops_t *const *)(const void *)(db))

#endif
