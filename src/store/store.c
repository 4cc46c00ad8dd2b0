/* SPDX-License-Identifier: MIT */
/* The storage interface's front: picks a backend from the connection string (a path
 * or `sqlite:PATH` is SQLite; `postgres://` or `postgresql://` is PostgreSQL) and
 * forwards every qun_db_* / qun_q_* call to the ops table of the connection.  It is
 * also where a test's injected statement and commit faults fire (store_fault.c). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qun/store.h"
#include "store_internal.h"

/* Every backend's connection and query structs start with their ops pointer. */
#define DB_OPS(db) QUN_DB_OPS(db)
#define Q_OPS(q) (*(const qun_store_ops_t *const *)(const void *)(q))

static const qun_store_ops_t *pick(const char *conn, const char **rest) {
    *rest = conn;
    if (strncmp(conn, "postgres://", 11) == 0 || strncmp(conn, "postgresql://", 13) == 0) return &qun_pg_ops;
    if (strncmp(conn, "sqlite:", 7) == 0) *rest = conn + 7;
    return &qun_sqlite_ops;
}

qun_rc qun_db_open(const char *conn, bool readonly, bool migrate, qun_db_t **out, qun_err_t *err) {
    const char *rest;
    const qun_store_ops_t *ops = pick(conn, &rest);
    qun_rc rc = ops->open(rest, readonly, migrate, out, err);
    if (rc == QUN_OK) QUN_DB_EXT(*out)->name = strdup(conn); /* NULL when memory is short */
    return rc;
}

void qun_db_close(qun_db_t *db) {
    if (!db) return;
    qun_db_ext_t *ext = QUN_DB_EXT(db);
    for (int i = 0; i < QUN_AUX_SLOTS; i++)
        if (ext->aux[i] && ext->aux_free[i]) ext->aux_free[i](ext->aux[i]);
    free(ext->name);
    DB_OPS(db)->close(db);
}

bool qun_db_readonly(qun_db_t *db) {
    return QUN_DB_EXT(db)->readonly;
}

const char *qun_db_name(qun_db_t *db) {
    return QUN_DB_EXT(db)->name;
}

void *qun_db_aux_get(qun_db_t *db, qun_aux_slot slot) {
    return QUN_DB_EXT(db)->aux[slot];
}

void qun_db_aux_set(qun_db_t *db, qun_aux_slot slot, void *aux, void (*aux_free)(void *aux)) {
    qun_db_ext_t *ext = QUN_DB_EXT(db);
    ext->aux[slot] = aux;
    ext->aux_free[slot] = aux_free;
}

void *qun_db_aux_zeroed(qun_db_t *db, qun_aux_slot slot, size_t size, void (*aux_free)(void *aux)) {
    void *aux = qun_db_aux_get(db, slot);
    if (!aux && (aux = calloc(1, size))) qun_db_aux_set(db, slot, aux, aux_free);
    return aux;
}

int qun_db_schema_version(qun_db_t *db) {
    qun_q_t *q;
    int v = 0;
    if (qun_db_run(db, &q, NULL, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", "") == QUN_ROW) {
        v = (int)qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return v;
}

qun_rc qun_db_ping(qun_db_t *db, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT 1", "");
    if (rc == QUN_ROW) qun_q_done(q);
    return rc == QUN_ROW || rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_q_prepare(qun_db_t *db, const char *sql, qun_q_t **out, qun_err_t *err) {
    return DB_OPS(db)->prepare(db, sql, out, err);
}

void qun_q_int(qun_q_t *q, int idx, int64_t v) {
    Q_OPS(q)->bind_int(q, idx, v);
}
void qun_q_text(qun_q_t *q, int idx, const char *s) {
    Q_OPS(q)->bind_text(q, idx, s);
}
void qun_q_blob(qun_q_t *q, int idx, const void *p, size_t n) {
    Q_OPS(q)->bind_blob(q, idx, p, n);
}
void qun_q_null(qun_q_t *q, int idx) {
    Q_OPS(q)->bind_null(q, idx);
}
/* A statement fails here when a test armed a fault (store_fault.c); the query is
 * reset as the backend resets one whose step failed. */
static qun_rc step(qun_q_t *q, bool faultable, qun_err_t *err) {
    if (QUN_FAULT_ARMED() && faultable) {
        qun_rc rc = qun_fault_check(QUN_FAULT_STMT, err);
        if (rc != QUN_OK) {
            Q_OPS(q)->done(q);
            return rc;
        }
    }
    return Q_OPS(q)->step(q, err);
}

qun_rc qun_q_step(qun_q_t *q, qun_err_t *err) {
    return step(q, true, err);
}
int64_t qun_q_col_int(qun_q_t *q, int col) {
    return Q_OPS(q)->col_int(q, col);
}
const char *qun_q_col_text(qun_q_t *q, int col) {
    return Q_OPS(q)->col_text(q, col);
}
const void *qun_q_col_blob(qun_q_t *q, int col, size_t *n) {
    return Q_OPS(q)->col_blob(q, col, n);
}
bool qun_q_col_null(qun_q_t *q, int col) {
    return Q_OPS(q)->col_null(q, col);
}

void qun_q_done(qun_q_t *q) {
    if (q) Q_OPS(q)->done(q);
}

int64_t qun_db_changes(qun_db_t *db) {
    return DB_OPS(db)->changes(db);
}

qun_rc qun_db_take_id(qun_db_t *db, const char *table, int64_t *id, qun_err_t *err) {
    *id = 0;
    return DB_OPS(db)->take_id ? DB_OPS(db)->take_id(db, table, id, err) : QUN_OK;
}

void qun_db_ids_used(qun_db_t *db, const char *table) {
    if (DB_OPS(db)->ids_used) DB_OPS(db)->ids_used(db, table);
}

void qun_db_expect_ids(qun_db_t *db, const char *table, int n) {
    if (DB_OPS(db)->expect_ids) DB_OPS(db)->expect_ids(db, table, n);
}

void qun_db_send_expected(qun_db_t *db) {
    if (DB_OPS(db)->send_expected) DB_OPS(db)->send_expected(db);
}

qun_rc qun_db_set_later(qun_db_t *db, const char *sql, int64_t key, int64_t value, qun_err_t *err) {
    if (DB_OPS(db)->set_later) return DB_OPS(db)->set_later(db, sql, key, value, err);
    qun_rc rc = qun_db_run(db, NULL, err, sql, "ii", key, value);
    return rc == QUN_DONE ? QUN_OK : rc;
}

bool qun_db_later_value(qun_db_t *db, const char *sql, int64_t key, int64_t *value) {
    return DB_OPS(db)->later_value && DB_OPS(db)->later_value(db, sql, key, value);
}

bool qun_db_txn_shared(qun_db_t *db) {
    return DB_OPS(db)->txn_shared && DB_OPS(db)->txn_shared(db);
}

uint64_t qun_db_txn_serial(qun_db_t *db) {
    return DB_OPS(db)->txn_serial ? DB_OPS(db)->txn_serial(db) : 0;
}

int64_t qun_db_total_changes(qun_db_t *db) {
    return DB_OPS(db)->total_changes(db);
}

qun_rc qun_db_exec(qun_db_t *db, const char *sql, qun_err_t *err) {
    if (QUN_FAULT_ARMED() && strncmp(sql, "ROLLBACK", 8) != 0) {
        qun_rc rc = qun_fault_check(strcmp(sql, "COMMIT") == 0 ? QUN_FAULT_COMMIT : QUN_FAULT_STMT, err);
        if (rc != QUN_OK) return rc;
    }
    return DB_OPS(db)->exec(db, sql, err);
}

qun_rc qun_db_txn(qun_db_t *db, qun_txn_fn fn, void *arg, qun_err_t *err) {
    return DB_OPS(db)->txn(db, fn, arg, err);
}

qun_rc qun_db_savepoint(qun_db_t *db, qun_err_t *err) {
    return DB_OPS(db)->savepoint(db, err);
}

qun_rc qun_db_release(qun_db_t *db, bool keep, qun_err_t *err) {
    return DB_OPS(db)->release(db, keep, err);
}

/* Read transactions nest: an inner one shares the outer's snapshot, and only the
 * outermost ends it.  A statement failure may have ended or aborted the shared
 * transaction (PostgreSQL aborts it at any error): an inner begin then begins a new
 * one, so one request's failure is not every later one's. */
qun_rc qun_db_read_begin(qun_db_t *db, qun_err_t *err) {
    qun_db_ext_t *x = QUN_DB_EXT(db);
    if (x->read_depth > 0 && DB_OPS(db)->read_live(db)) {
        x->read_depth++;
        return QUN_OK;
    }
    if (x->read_depth > 0) DB_OPS(db)->read_end(db);
    qun_rc rc = DB_OPS(db)->read_begin(db, err);
    if (rc == QUN_OK)
        x->read_depth++;
    else if (x->read_depth > 0) /* the outer one's work goes on without a snapshot */
        x->read_depth = 0;
    return rc;
}

void qun_db_read_end(qun_db_t *db) {
    qun_db_ext_t *x = QUN_DB_EXT(db);
    if (x->read_depth == 0) return; /* an inner begin failed to begin it again */
    if (--x->read_depth == 0) DB_OPS(db)->read_end(db);
}

uint64_t qun_db_read_snapshot(qun_db_t *db) {
    qun_db_ext_t *x = QUN_DB_EXT(db);
    return x->read_depth > 0 && DB_OPS(db)->read_live(db) ? x->snapshot : 0;
}

qun_rc qun_db_xlock(qun_db_t *db, int64_t key, qun_err_t *err) {
    return DB_OPS(db)->xlock ? DB_OPS(db)->xlock(db, key, err) : QUN_OK;
}

bool qun_db_locks_rows(qun_db_t *db) {
    return DB_OPS(db)->skip_locked[0] != '\0'; /* the stores that skip locked rows lock them */
}

bool qun_db_runs_ahead(qun_db_t *db) {
    return DB_OPS(db)->run_ahead != NULL;
}

const char *qun_db_backend(qun_db_t *db) {
    return DB_OPS(db)->name;
}

qun_rc qun_db_copy_to(qun_db_t *db, const char *path, qun_err_t *err) {
    return DB_OPS(db)->copy_to
               ? DB_OPS(db)->copy_to(db, path, err)
               : qun_fail(err, QUN_INTERNAL, "the %s store has no file copy", DB_OPS(db)->name);
}

static _Atomic uint64_t scrubs;

qun_rc qun_db_scrub(qun_db_t *db, qun_err_t *err) {
    qun_rc rc = DB_OPS(db)->scrub ? DB_OPS(db)->scrub(db, err) : QUN_OK;
    if (rc == QUN_OK) atomic_fetch_add(&scrubs, 1);
    return rc;
}

uint64_t qun_db_scrubs(void) {
    return atomic_load(&scrubs);
}

static atomic_bool scrub_owed;

void qun_db_scrub_later(void) {
    atomic_store(&scrub_owed, true);
}

bool qun_db_take_scrub_owed(void) {
    return atomic_exchange(&scrub_owed, false);
}

qun_rc qun_db_event_order(qun_db_t *db, qun_err_t *err) {
    return DB_OPS(db)->event_order ? DB_OPS(db)->event_order(db, err) : QUN_OK;
}

qun_rc qun_db_event_frontier(qun_db_t *db, int64_t *below, qun_err_t *err) {
    *below = INT64_MAX;
    return DB_OPS(db)->event_frontier ? DB_OPS(db)->event_frontier(db, below, err) : QUN_OK;
}

int qun_db_notify_owed(qun_db_t *db) {
    return DB_OPS(db)->notify_owed ? DB_OPS(db)->notify_owed(db) : 0;
}

qun_rc qun_db_notify(qun_db_t *db, const char *channel, qun_err_t *err) {
    return DB_OPS(db)->notify ? DB_OPS(db)->notify(db, channel, err) : QUN_OK;
}

qun_rc qun_db_listen(qun_db_t *db, const char *channel, qun_err_t *err) {
    if (!DB_OPS(db)->listen) return qun_fail(err, QUN_INTERNAL, "%s has no notifications", DB_OPS(db)->name);
    return DB_OPS(db)->listen(db, channel, err);
}

qun_rc qun_db_wait_notify(qun_db_t *db, int timeout_ms, int stop_fd, bool *woken, qun_err_t *err) {
    *woken = false;
    if (!DB_OPS(db)->wait_notify)
        return qun_fail(err, QUN_INTERNAL, "%s has no notifications", DB_OPS(db)->name);
    return DB_OPS(db)->wait_notify(db, timeout_ms, stop_fd, woken, err);
}

bool qun_store_listens(const char *conn) {
    const char *rest;
    return conn && pick(conn, &rest)->listen != NULL;
}

void qun_store_init(void) {
    qun_sqlite_ops.init();
    qun_pg_ops.init();
}

static void bind_va(qun_q_t *q, const char *types, va_list ap) {
    for (int i = 0; types[i]; i++) {
        switch (types[i]) {
        case 'i': qun_q_int(q, i + 1, va_arg(ap, int64_t)); break;
        case 'z': {
            int64_t v = va_arg(ap, int64_t);
            if (v)
                qun_q_int(q, i + 1, v);
            else
                qun_q_null(q, i + 1);
            break;
        }
        case 's': qun_q_text(q, i + 1, va_arg(ap, const char *)); break;
        default: qun_q_null(q, i + 1); break;
        }
    }
}

/* qun_q_prepare, then bind the arguments by types (qun_db_run's letters). */
static qun_rc prepare_bound(qun_db_t *db, const char *sql, const char *types, va_list ap, qun_q_t **q,
                            qun_err_t *err) {
    qun_rc rc = qun_q_prepare(db, sql, q, err);
    if (rc == QUN_OK) bind_va(*q, types, ap);
    return rc;
}

qun_rc qun_db_run(qun_db_t *db, qun_q_t **out, qun_err_t *err, const char *sql, const char *types, ...) {
    qun_q_t *q;
    va_list ap;
    va_start(ap, types);
    qun_rc rc = prepare_bound(db, sql, types, ap, &q, err);
    va_end(ap);
    if (rc != QUN_OK) return rc;
    /* The backends end a read transaction and undo a savepoint through here; those
     * are never failed by an injected fault (store_fault.c says why). */
    bool faultable = !QUN_FAULT_ARMED() || (strncmp(sql, "ROLLBACK", 8) != 0 && strcmp(sql, "COMMIT") != 0);
    rc = step(q, faultable, err);
    if (rc == QUN_ROW && out)
        *out = q;
    else if (rc == QUN_ROW)
        qun_q_done(q);
    return rc;
}

qun_rc qun_db_insert_id(qun_db_t *db, int64_t *id, qun_err_t *err, const char *sql, const char *returning,
                        const char *types, ...) {
    *id = 0;
    bool rowid = DB_OPS(db)->last_id != NULL;
    qun_q_t *q;
    va_list ap;
    va_start(ap, types);
    qun_rc rc = prepare_bound(db, rowid ? sql : returning, types, ap, &q, err);
    va_end(ap);
    if (rc != QUN_OK) return rc;
    rc = step(q, true, err);
    if (rc == QUN_ROW && rowid) {
        qun_q_done(q);
        return qun_fail(err, QUN_INTERNAL, "an INSERT without RETURNING answered rows");
    }
    if (rc == QUN_ROW) { /* RETURNING: one row, and no second one */
        int64_t first = qun_q_col_int(q, 0);
        if ((rc = step(q, true, err)) == QUN_DONE) {
            *id = first;
            return QUN_OK;
        }
        if (rc != QUN_ROW) return rc;
        qun_q_done(q);
        return qun_fail(err, QUN_STORE, "an INSERT wrote more than one row");
    }
    if (rc != QUN_DONE) return rc;
    if (!rowid || qun_db_changes(db) != 1)
        return qun_fail(err, QUN_STORE, "an INSERT wrote %lld rows, not one",
                        (long long)(rowid ? qun_db_changes(db) : 0));
    *id = DB_OPS(db)->last_id(db);
    return QUN_OK;
}

qun_rc qun_db_run_ahead(qun_db_t *db, qun_q_t **out, qun_err_t *err, const char *sql, const char *types,
                        ...) {
    *out = NULL;
    if (!DB_OPS(db)->run_ahead) return QUN_OK;
    qun_q_t *q;
    va_list ap;
    va_start(ap, types);
    qun_rc rc = prepare_bound(db, sql, types, ap, &q, err);
    va_end(ap);
    if (rc == QUN_OK && QUN_FAULT_ARMED()) rc = qun_fault_check(QUN_FAULT_STMT, err);
    return rc == QUN_OK ? DB_OPS(db)->run_ahead(q, out, err) : rc;
}

qun_rc qun_db_run_nowait(qun_db_t *db, qun_err_t *err, const char *sql, const char *types, ...) {
    qun_q_t *q;
    va_list ap;
    va_start(ap, types);
    qun_rc rc = prepare_bound(db, sql, types, ap, &q, err);
    va_end(ap);
    if (rc != QUN_OK) return rc;
    if (DB_OPS(db)->step_nowait) {
        rc = QUN_FAULT_ARMED() ? qun_fault_check(QUN_FAULT_STMT, err) : QUN_OK;
        return rc == QUN_OK ? DB_OPS(db)->step_nowait(q, err) : rc;
    }
    rc = step(q, true, err);
    if (rc == QUN_ROW) {
        qun_q_done(q);
        rc = qun_fail(err, QUN_INTERNAL, "a one-row write answered rows");
    } else if (rc == QUN_DONE) {
        rc = qun_db_changes(db) == 1 ? QUN_OK
                                     : qun_fail(err, QUN_STORE, "a one-row write changed %lld rows",
                                                (long long)qun_db_changes(db));
    }
    return rc;
}
