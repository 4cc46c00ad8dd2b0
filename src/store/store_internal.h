/* SPDX-License-Identifier: MIT */
/* Private to the store: the backend operations table that src/store/store.c
 * dispatches qun_db_* / qun_q_* calls through, and the embedded migrations, generated
 * by the Makefile from src/store/sql/<backend>/NNNN_name.sql. */
#ifndef QUN_STORE_INTERNAL_H
#define QUN_STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "qun/store.h"

typedef struct {
    int version;
    const char *name;
    const char *sql;
} qun_migration_t;

/* Each backend's schema_migrations, the create argument below. */
#define QUN_SQLITE_MIGRATIONS_TABLE                                                                          \
    "CREATE TABLE IF NOT EXISTS schema_migrations("                                                          \
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
#define QUN_PG_MIGRATIONS_TABLE                                                                              \
    "CREATE TABLE IF NOT EXISTS schema_migrations("                                                          \
    " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"

/* Apply the migrations of list (n, in version order) that db's schema_migrations lacks,
 * in one transaction, after create (the backend's CREATE TABLE IF NOT EXISTS
 * schema_migrations).  QUN_STORE naming the migration that failed, which undoes them all.
 * src/store/migrate.c. */
qun_rc qun_store_migrate(qun_db_t *db, const qun_migration_t *list, size_t n, const char *create,
                         qun_err_t *err);

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
    qun_rc (*open)(const char *conninfo, bool readonly, bool migrate, qun_db_t **out, qun_err_t *err);
    void (*close)(qun_db_t *db);
    qun_rc (*prepare)(qun_db_t *db, const char *sql, qun_q_t **out, qun_err_t *err);
    void (*bind_int)(qun_q_t *q, int idx, int64_t v);
    void (*bind_text)(qun_q_t *q, int idx, const char *s);
    void (*bind_blob)(qun_q_t *q, int idx, const void *p, size_t n);
    void (*bind_null)(qun_q_t *q, int idx);
    qun_rc (*step)(qun_q_t *q, qun_err_t *err);
    /* Optional (NULL on SQLite): step a one-row write without waiting for it
     * (qun_db_run_nowait). */
    qun_rc (*step_nowait)(qun_q_t *q, qun_err_t *err);
    /* Optional (NULL on SQLite): send a prepared, bound statement now and keep its rows
     * for a handle read later (qun_db_run_ahead); unbinds q. */
    qun_rc (*run_ahead)(qun_q_t *q, qun_q_t **out, qun_err_t *err);
    /* Optional (NULL on SQLite): an id taken ahead of its INSERT (qun_db_take_id). */
    qun_rc (*take_id)(qun_db_t *db, const char *table, int64_t *id, qun_err_t *err);
    void (*ids_used)(qun_db_t *db, const char *table);
    void (*expect_ids)(qun_db_t *db, const char *table, int n);
    void (*send_expected)(qun_db_t *db);
    /* Optional (NULL on SQLite): qun_db_set_later, qun_db_later_value, qun_db_txn_shared. */
    qun_rc (*set_later)(qun_db_t *db, const char *sql, int64_t key, int64_t value, qun_err_t *err);
    bool (*later_value)(qun_db_t *db, const char *sql, int64_t key, int64_t *value);
    bool (*txn_shared)(qun_db_t *db);
    uint64_t (*txn_serial)(qun_db_t *db);
    int64_t (*col_int)(qun_q_t *q, int col);
    const char *(*col_text)(qun_q_t *q, int col);
    const void *(*col_blob)(qun_q_t *q, int col, size_t *n);
    bool (*col_null)(qun_q_t *q, int col);
    void (*done)(qun_q_t *q);
    int64_t (*changes)(qun_db_t *db);
    /* Optional (NULL on PostgreSQL): the key of the row the connection's last INSERT
     * wrote (qun_db_insert_id). */
    int64_t (*last_id)(qun_db_t *db);
    int64_t (*total_changes)(qun_db_t *db);
    qun_rc (*exec)(qun_db_t *db, const char *sql, qun_err_t *err);
    qun_rc (*txn)(qun_db_t *db, qun_txn_fn fn, void *arg, qun_err_t *err);
    qun_rc (*savepoint)(qun_db_t *db, qun_err_t *err);
    qun_rc (*release)(qun_db_t *db, bool keep, qun_err_t *err);
    qun_rc (*read_begin)(qun_db_t *db, qun_err_t *err);
    void (*read_end)(qun_db_t *db);
    /* Whether the open read transaction can still answer (no statement failure ended or
     * aborted it): a nested qun_db_read_begin begins a new one when not. */
    bool (*read_live)(qun_db_t *db);
    qun_rc (*xlock)(qun_db_t *db, int64_t key, qun_err_t *err);
    /* Optional (NULL on SQLite, whose one writer commits ids in order): the event
     * frontier (qun_db_event_order, qun_db_event_frontier). */
    qun_rc (*event_order)(qun_db_t *db, qun_err_t *err);
    qun_rc (*event_frontier)(qun_db_t *db, int64_t *below, qun_err_t *err);
    /* Optional (NULL on PostgreSQL): drop the copies of deleted rows the backend's own
     * files still hold (the SQLite WAL). */
    qun_rc (*scrub)(qun_db_t *db, qun_err_t *err);
    /* Optional (NULL on PostgreSQL, whose copy is pg_dump's): the whole database as of
     * one commit into a new file. */
    qun_rc (*copy_to)(qun_db_t *db, const char *path, qun_err_t *err);
    /* Optional (NULL on SQLite): notifications between processes. */
    qun_rc (*notify)(qun_db_t *db, const char *channel, qun_err_t *err);
    int (*notify_owed)(qun_db_t *db);
    qun_rc (*listen)(qun_db_t *db, const char *channel, qun_err_t *err);
    qun_rc (*wait_notify)(qun_db_t *db, int timeout_ms, int stop_fd, bool *woken, qun_err_t *err);
} qun_store_ops_t;

/* What every backend's struct qun_db holds right after its ops pointer, for store.c:
 * whether the connection was opened read-only, the connection string it was opened
 * with (set and freed by store.c), the objects other layers hung on it
 * (qun_db_aux_set), freed when the connection closes, and the read transactions open
 * on it (qun_db_read_begin): how deep, and which snapshot.  A backend bumps snapshot
 * whenever it begins a read transaction, its own restarts included. */
typedef struct qun_db_ext {
    bool readonly;
    int read_depth;
    uint64_t snapshot;
    char *name;
    void *aux[QUN_AUX_SLOTS];
    void (*aux_free[QUN_AUX_SLOTS])(void *aux);
} qun_db_ext_t;
#define QUN_DB_EXT(db)                                                                                       \
    (&((struct {                                                                                             \
          const qun_store_ops_t *ops;                                                                        \
          qun_db_ext_t ext;                                                                                  \
      } *)(void *)(db))                                                                                      \
          ->ext)

extern const qun_store_ops_t qun_sqlite_ops;
extern const qun_store_ops_t qun_pg_ops;
/* The ops table of db's backend. */
#define QUN_DB_OPS(db) (*(const qun_store_ops_t *const *)(const void *)(db))

/* SQLite (store/search.c): put the messages above the watermark and in search_pending
 * (migrations 0029, 0035) into the FTS5 index once enough wait, and take search_gone's
 * old text off it, in the open transaction; store_sqlite.c calls it
 * just before each COMMIT of a connection whose schema has the search tables. */
qun_rc qun_db_search_flush(qun_db_t *db, qun_err_t *err);

/* Fault injection for tests (store_fault.c): while armed, store.c counts statements
 * and COMMITs, and the installed allocators count allocations; the Nth event of the
 * armed kind fails once with the armed error.  Disarmed (qund), the cost is one
 * relaxed load and a branch per statement. */
typedef enum { QUN_FAULT_STMT, QUN_FAULT_COMMIT, QUN_FAULT_ALLOC, QUN_FAULT_KINDS } qun_fault_kind;
extern atomic_bool qun_fault_on;
#define QUN_FAULT_ARMED() atomic_load_explicit(&qun_fault_on, memory_order_relaxed)
/* Fail the nth (1-based) event of kind with rc (QUN_STORE for a hard error,
 * QUN_CONFLICT_RETRY for a busy one; allocations fail with NULL); reset every count. */
void qun_fault_arm(qun_fault_kind kind, long n, qun_rc rc);
/* Disarm: nothing fails and nothing is counted. */
void qun_fault_clear(void);
/* Whether the armed fault fired since qun_fault_arm, and how many events of kind were seen. */
bool qun_fault_fired(void);
long qun_fault_seen(qun_fault_kind kind);
/* For store.c: count one event of kind; its error (detail in err) when it must fail. */
qun_rc qun_fault_check(qun_fault_kind kind, qun_err_t *err);
/* Route jansson's and SQLite's allocations through the counting allocators (once,
 * before any connection is opened and any JSON allocated); false if SQLite refused. */
bool qun_fault_alloc_install(void);
/* Neither count nor fail jansson's allocations on this thread while paused (nests):
 * for a library call that does not survive a failed allocation itself. */
void qun_fault_json_pause(bool pause);
/* Neither count nor fail anything on this thread while paused (nests): for a test's
 * own queries while other threads run the operation under test. */
void qun_fault_pause(bool pause);

#endif
