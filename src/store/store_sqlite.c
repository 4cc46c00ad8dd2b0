/* SPDX-License-Identifier: MIT */
/* The SQLite backend of store.h: WAL, foreign keys, synchronous=FULL commits, a
 * per-connection cache of prepared statements keyed by the SQL literal's address,
 * and `$N` parameters mapped onto SQLite's named-parameter indexes.  Reached through
 * qun_sqlite_ops (store.c picks it for a path or a `sqlite:PATH` connection string). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "qun/store.h"
#include "qun/util.h"
#include "store_internal.h"

#define QCACHE 1024  /* statement cache slots (a power of two): room for every SQL text */
#define QMAXPARAM 24 /* highest $N a statement may use */

struct qun_q {
    const qun_store_ops_t *ops;
    qun_db_t *db;
    const char *sql;
    sqlite3_stmt *stmt;
    int map[QMAXPARAM + 1]; /* $N -> sqlite parameter index, 0 if unused */
    int bind_rc;            /* the first failed bind (out of memory copying a value), or 0 */
};

struct qun_db {
    const qun_store_ops_t *ops;
    qun_db_ext_t ext; /* second, as store.c expects */
    sqlite3 *h;
    int savepoints;
    /* Inside a transaction opened with qun_db_exec("BEGIN ...") and not yet ended.
     * SQLite rolls a transaction back by itself after some errors (out of memory, a
     * full disk, I/O); a statement run after that would commit on its own. */
    bool in_txn;
    bool search; /* the schema has search_state (migration 0035): index at COMMIT */
    qun_q_t *cache[QCACHE];
};

static qun_rc sqlite_rc(qun_db_t *db, int rc, qun_err_t *err, const char *what) {
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return qun_fail(err, QUN_CONFLICT_RETRY, "%s: %s", what, sqlite3_errmsg(db->h));
    if (prim == SQLITE_NOMEM) return qun_fail(err, QUN_NOMEM, "%s: out of memory", what);
    if (prim == SQLITE_FULL) return qun_fail(err, QUN_STORAGE_FULL, "%s: %s", what, sqlite3_errmsg(db->h));
    /* A journal or temporary file that cannot be opened for want of a descriptor. */
    if ((prim == SQLITE_CANTOPEN || prim == SQLITE_IOERR) &&
        qun_rc_errno(sqlite3_system_errno(db->h), QUN_STORE) == QUN_DESCRIPTORS_EXHAUSTED)
        return qun_fail(err, QUN_DESCRIPTORS_EXHAUSTED, "%s: %s", what, sqlite3_errmsg(db->h));
    return qun_fail(err, QUN_STORE, "%s: %s", what, sqlite3_errmsg(db->h));
}

/* The transaction this connection opened is gone (SQLite rolled it back after an
 * error its caller may not have seen): refuse everything until it is ended, so no
 * statement of it runs, and commits, outside it. */
static bool txn_lost(qun_db_t *db) {
    return db->in_txn && sqlite3_get_autocommit(db->h);
}

static qun_rc lost(qun_err_t *err) {
    return qun_fail(err, QUN_STORE, "the transaction was rolled back after an earlier error");
}

/* SQLite rolled the whole transaction back by itself (out of memory in FTS5's write of
 * the search index, seen under store_fault's allocation faults): FTS5 3.40 can keep
 * state from it that the next write into the index takes for a malformed index.  A
 * rolled-back schema change makes SQLite drop every table object of the connection,
 * FTS5's included, so the index is read afresh from the file, which is intact. */
static void reset_after_lost_txn(qun_db_t *db) {
    if (!db->search) return;
    sqlite3_exec(db->h, "BEGIN; CREATE TABLE search_reset(x); ROLLBACK", NULL, NULL, NULL);
    if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

static qun_rc sq_exec(qun_db_t *db, const char *sql, qun_err_t *err) {
    bool rollback = strcmp(sql, "ROLLBACK") == 0;
    if (rollback && txn_lost(db)) reset_after_lost_txn(db);
    if (rollback)
        db->in_txn = false;
    else if (txn_lost(db))
        return lost(err);
    /* The text messages this transaction inserted or changed go into the search index
     * here, once, in the transaction (migration 0029 says why not per statement). */
    if (db->search && db->in_txn && strcmp(sql, "COMMIT") == 0) {
        qun_rc r = qun_db_search_flush(db, err);
        if (r != QUN_OK) return r;
    }
    char *msg = NULL;
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK && !rollback) {
        if (strncmp(sql, "BEGIN", 5) == 0)
            db->in_txn = true;
        else if (strcmp(sql, "COMMIT") == 0)
            db->in_txn = false;
    }
    if (rc != SQLITE_OK) {
        qun_rc r = sqlite_rc(db, rc, err, msg ? msg : "exec");
        sqlite3_free(msg);
        return r;
    }
    return QUN_OK;
}

static qun_rc migrate(qun_db_t *db, qun_err_t *err) {
    return qun_store_migrate(db, qun_sqlite_migrations, qun_sqlite_migrations_count,
                             QUN_SQLITE_MIGRATIONS_TABLE, err);
}

static qun_rc sq_open(const char *path, bool readonly, bool migrate_now, qun_db_t **out, qun_err_t *err) {
    qun_db_t *db = calloc(1, sizeof *db);
    if (!db) return qun_fail(err, QUN_NOMEM, "out of memory");
    db->ops = &qun_sqlite_ops;
    db->ext.readonly = readonly;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &db->h, flags, NULL);
    if (rc != SQLITE_OK) {
        qun_rc r = qun_fail(err, QUN_STORE, "cannot open %s: %s", path,
                            db->h ? sqlite3_errmsg(db->h) : "out of memory");
        sqlite3_close(db->h);
        free(db);
        return r;
    }
    sqlite3_busy_timeout(db->h, 5000);
    qun_rc r = qun_db_exec(db,
                           "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                           /* What is purged is gone: deleted rows are overwritten with zeros, in their
                            * pages and on the freelist, instead of lingering in the file. */
                           "PRAGMA secure_delete=ON;",
                           err);
    if (r == QUN_OK && migrate_now) r = migrate(db, err);
    if (r == QUN_OK && !readonly) {
        qun_q_t *q;
        r = qun_db_run(db, &q, err,
                       "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'search_state'", "");
        db->search = r == QUN_ROW;
        if (r == QUN_ROW) qun_q_done(q);
        if (r == QUN_ROW || r == QUN_DONE) r = QUN_OK;
    }
    if (r == QUN_OK && readonly) r = qun_db_exec(db, "PRAGMA query_only=1", err);
    if (r != QUN_OK) {
        qun_db_close(db);
        return r;
    }
    *out = db;
    return QUN_OK;
}

static void sq_close(qun_db_t *db) {
    if (!db) return;
    for (int i = 0; i < QCACHE; i++) {
        if (!db->cache[i]) continue;
        sqlite3_finalize(db->cache[i]->stmt);
        free(db->cache[i]);
    }
    sqlite3_close(db->h);
    free(db);
}

static qun_rc sq_prepare(qun_db_t *db, const char *sql, qun_q_t **out, qun_err_t *err) {
    size_t h = ((uintptr_t)sql >> 3) * 2654435761u;
    for (size_t n = 0; n < QCACHE; n++) {
        size_t i = (h + n) & (QCACHE - 1);
        qun_q_t *q = db->cache[i];
        if (q && q->sql == sql) {
            sqlite3_reset(q->stmt);
            sqlite3_clear_bindings(q->stmt);
            q->bind_rc = 0;
            *out = q;
            return QUN_OK;
        }
        if (q) continue;
        q = calloc(1, sizeof *q);
        if (!q) return qun_fail(err, QUN_NOMEM, "out of memory");
        int rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->stmt, NULL);
        if (rc != SQLITE_OK) {
            free(q);
            return sqlite_rc(db, rc, err, "prepare");
        }
        q->ops = &qun_sqlite_ops;
        q->db = db;
        q->sql = sql;
        for (int k = 1; k <= QMAXPARAM; k++) {
            char name[16];
            snprintf(name, sizeof name, "$%d", k);
            q->map[k] = sqlite3_bind_parameter_index(q->stmt, name);
        }
        db->cache[i] = q;
        *out = q;
        return QUN_OK;
    }
    return qun_fail(err, QUN_INTERNAL, "statement cache full");
}

static int pidx(qun_q_t *q, int idx) {
    return idx >= 1 && idx <= QMAXPARAM ? q->map[idx] : 0;
}

/* A bind that failed (SQLite could not copy the value) leaves the parameter NULL: the
 * statement must not run with it, so the failure is kept for the step to report. */
static void bound(qun_q_t *q, int rc) {
    if (rc != SQLITE_OK && !q->bind_rc) q->bind_rc = rc;
}

static void sq_bind_int(qun_q_t *q, int idx, int64_t v) {
    if (pidx(q, idx)) bound(q, sqlite3_bind_int64(q->stmt, pidx(q, idx), v));
}

static void sq_bind_text(qun_q_t *q, int idx, const char *s) {
    if (!pidx(q, idx)) return;
    if (s)
        bound(q, sqlite3_bind_text(q->stmt, pidx(q, idx), s, -1, SQLITE_TRANSIENT));
    else
        bound(q, sqlite3_bind_null(q->stmt, pidx(q, idx)));
}

static void sq_bind_blob(qun_q_t *q, int idx, const void *p, size_t n) {
    if (pidx(q, idx)) bound(q, sqlite3_bind_blob64(q->stmt, pidx(q, idx), p, n, SQLITE_TRANSIENT));
}

static void sq_bind_null(qun_q_t *q, int idx) {
    if (pidx(q, idx)) bound(q, sqlite3_bind_null(q->stmt, pidx(q, idx)));
}

static qun_rc sq_step(qun_q_t *q, qun_err_t *err) {
    if (txn_lost(q->db)) {
        sqlite3_reset(q->stmt);
        return lost(err);
    }
    if (q->bind_rc) {
        int brc = q->bind_rc;
        q->bind_rc = 0;
        sqlite3_reset(q->stmt);
        return sqlite_rc(q->db, brc, err, "bind");
    }
    int rc = sqlite3_step(q->stmt);
    if (rc == SQLITE_ROW) return QUN_ROW;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q->stmt);
        return QUN_DONE;
    }
    qun_rc r = sqlite_rc(q->db, rc, err, "step");
    sqlite3_reset(q->stmt);
    return r;
}

static int64_t sq_col_int(qun_q_t *q, int col) {
    return sqlite3_column_int64(q->stmt, col);
}

static const char *sq_col_text(qun_q_t *q, int col) {
    const unsigned char *s = sqlite3_column_text(q->stmt, col);
    return s ? (const char *)s : "";
}

static const void *sq_col_blob(qun_q_t *q, int col, size_t *n) {
    const void *p = sqlite3_column_blob(q->stmt, col);
    *n = (size_t)sqlite3_column_bytes(q->stmt, col);
    return p;
}

static bool sq_col_null(qun_q_t *q, int col) {
    return sqlite3_column_type(q->stmt, col) == SQLITE_NULL;
}

static void sq_done(qun_q_t *q) {
    if (q) sqlite3_reset(q->stmt);
}

static int64_t sq_changes(qun_db_t *db) {
    return sqlite3_changes64(db->h);
}

static int64_t sq_last_id(qun_db_t *db) {
    return sqlite3_last_insert_rowid(db->h);
}

static int64_t sq_total_changes(qun_db_t *db) {
    return sqlite3_total_changes64(db->h);
}

static qun_rc sq_txn(qun_db_t *db, qun_txn_fn fn, void *arg, qun_err_t *err) {
    qun_rc rc = QUN_CONFLICT_RETRY;
    for (int attempt = 0; attempt < 5 && rc == QUN_CONFLICT_RETRY; attempt++) {
        rc = qun_db_exec(db, "BEGIN IMMEDIATE", err);
        if (rc != QUN_OK) continue;
        rc = fn(db, arg, err);
        if (rc == QUN_OK) rc = qun_db_exec(db, "COMMIT", err);
        if (rc != QUN_OK) {
            qun_err_t ignore;
            qun_db_exec(db, "ROLLBACK", &ignore);
        }
    }
    return rc;
}

/* Run a parameterless statement through the statement cache: the writer issues a
 * savepoint pair per operation, and re-parsing them each time was measurable. */
static qun_rc run_cached(qun_db_t *db, const char *sql, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err, sql, "");
    return rc == QUN_DONE || rc == QUN_ROW ? QUN_OK : rc;
}

static qun_rc sq_savepoint(qun_db_t *db, qun_err_t *err) {
    qun_rc rc = run_cached(db, "SAVEPOINT op", err);
    if (rc == QUN_OK) db->savepoints++;
    return rc;
}

static qun_rc sq_release(qun_db_t *db, bool keep, qun_err_t *err) {
    qun_rc rc = QUN_OK;
    if (!keep) rc = run_cached(db, "ROLLBACK TO op", err);
    if (rc == QUN_OK) rc = run_cached(db, "RELEASE op", err);
    db->savepoints--;
    return rc;
}

static qun_rc sq_read_begin(qun_db_t *db, qun_err_t *err) {
    qun_rc rc = run_cached(db, "BEGIN", err);
    if (rc == QUN_OK) db->ext.snapshot++;
    return rc;
}

/* SQLite ends a transaction itself after some failures (out of memory, I/O). */
static bool sq_read_live(qun_db_t *db) {
    return !sqlite3_get_autocommit(db->h);
}

static void sq_read_end(qun_db_t *db) {
    qun_err_t ignore;
    run_cached(db, "COMMIT", &ignore);
}

/* The WAL still holds the page images from before a delete: checkpoint them into the
 * (zeroed) database and truncate the WAL. */
static qun_rc sq_scrub(qun_db_t *db, qun_err_t *err) {
    qun_q_t *q;
    /* No busy handler: a TRUNCATE checkpoint holds the write lock while it waits for a
     * reader with an older snapshot (an export reads for seconds), and every write of
     * qund would wait with it.  Busy at once instead; the caller tries again later. */
    sqlite3_busy_timeout(db->h, 0);
    qun_rc rc = qun_db_run(db, &q, err, "PRAGMA wal_checkpoint(TRUNCATE)", "");
    sqlite3_busy_timeout(db->h, 5000);
    if (rc != QUN_ROW) /* QUN_CONFLICT_RETRY too: the writer was in the middle of a commit */
        return rc == QUN_DONE ? QUN_OK : rc;
    bool busy = qun_q_col_int(q, 0) != 0;
    qun_q_done(q);
    return busy ? qun_fail(err, QUN_CONFLICT_RETRY, "a reader kept the WAL checkpoint from finishing")
                : QUN_OK;
}

/* The database as of one commit, page by page, into a new file at path: one backup step
 * over every page holds one read transaction, so writers carry on (WAL) and the copy is
 * never restarted.  Not synced: the caller syncs what it wrote. */
static qun_rc sq_copy_to(qun_db_t *db, const char *path, qun_err_t *err) {
    sqlite3 *to = NULL;
    int rc =
        sqlite3_open_v2(path, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE, NULL);
    if (rc != SQLITE_OK) {
        qun_rc out =
            qun_fail(err, QUN_STORE, "cannot create %s: %s", path, to ? sqlite3_errmsg(to) : "no memory");
        sqlite3_close(to);
        return out;
    }
    sqlite3_backup *b = sqlite3_backup_init(to, "main", db->h, "main");
    if (!b) {
        qun_rc out = qun_fail(err, QUN_STORE, "cannot copy the database: %s", sqlite3_errmsg(to));
        sqlite3_close(to);
        return out;
    }
    rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    qun_rc out = rc == SQLITE_DONE ? QUN_OK : sqlite_rc(db, rc, err, "copying the database");
    if (sqlite3_close(to) != SQLITE_OK && out == QUN_OK)
        out = qun_fail(err, QUN_STORE, "cannot close %s", path);
    return out;
}

static void sq_init(void) {
    /* SQLite's memory statistics take a process-wide mutex on every allocation;
     * qund does not read them, and every loop thread paid for them. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* The writer runs each operation in a savepoint; in WAL mode every page that
     * existed before it and that it changes has its old image copied to the statement
     * journal, which SQLite keeps in memory only up to 64 KiB by default and then moves
     * to a temporary file: a batch of message posts opened, wrote and unlinked one per
     * commit (a fifth of the writer's time, bench/README.md).  The journal only rolls an
     * operation back and is never read after a crash, so memory is as safe.  -1 keeps it
     * in memory whatever its size, in SQLite's small chunks: a positive limit would also
     * be the size of each chunk, and a multi-megabyte malloc and free per operation cost
     * more than the file did.  An operation's journal holds at most one image of each
     * page it changed (a purge batch of 500 rows: a few hundred pages). */
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, -1);
}

const qun_store_ops_t qun_sqlite_ops = {
    .name = "sqlite",
    .skip_locked = "",
    .init = sq_init,
    .open = sq_open,
    .close = sq_close,
    .prepare = sq_prepare,
    .bind_int = sq_bind_int,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .col_int = sq_col_int,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .col_null = sq_col_null,
    .done = sq_done,
    .changes = sq_changes,
    .last_id = sq_last_id,
    .total_changes = sq_total_changes,
    .exec = sq_exec,
    .txn = sq_txn,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .read_live = sq_read_live,
    .scrub = sq_scrub,
    .copy_to = sq_copy_to,
};
