/* SPDX-License-Identifier: MIT */
/* The PostgreSQL backend of store.h (libpq), picked by store.c for a `postgres://` or
 * `postgresql://` connection string.  Each connection keeps a cache of server-side
 * prepared statements keyed by the SQL literal's address (prepared lazily, named
 * q<N>, prepared again after a reconnect); parameters travel as text (blobs as binary
 * bytea), results come back as text and are read row by row by the column readers.
 *
 * Errors: serialization failures and deadlocks (SQLSTATE 40001, 40P01) and lock
 * timeouts are QUN_CONFLICT_RETRY; a server that cannot be reached or a lost
 * connection is QUN_STORE_UNAVAILABLE; qun_db_txn retries both with backoff,
 * reconnecting when the server went away.  Outside a transaction, a
 * connection found broken is re-established before the next statement; inside one,
 * the transaction is lost and every statement fails until the caller rolls back. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "qun/store.h"
#include "qun/util.h"
#include "store_internal.h"

#define QCACHE 1024  /* statement cache slots (a power of two): room for every SQL text */
#define QMAXPARAM 63 /* highest $N a statement may use (qun admin migrate binds a whole row) */
#define BYTEAOID 17
#define TEXTOID 25
#define PENDING_MAX 160     /* statements sent ahead at most before their results are read */
#define BEGIN_AHEAD_MS 1000 /* pg_exec: a batch's BEGIN is sent ahead this soon after a commit */
#define AHEAD_MAX 144       /* statements sent ahead whose rows are kept (run_ahead), per transaction */
#define READ_BEGIN "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
/* What a statement sent ahead must answer: one changed row; success; anything (a read
 * transaction's COMMIT: its failure ends the transaction just the same); or, for
 * PEND_SYNC, the pipeline's sync sent after the statements before it; PEND_KEEP, a
 * statement whose rows are kept for a handle (run_ahead); PEND_INSERT, one changed row
 * from an INSERT of one VALUES row, which the server inserts or fails (the schema has
 * no trigger that could skip it): unlike PEND_ONE_ROW's, its check cannot fail once the
 * server has said yes, so a COMMIT may follow it unread (pg_exec). */
enum { PEND_ONE_ROW, PEND_ANY, PEND_IGNORE, PEND_SYNC, PEND_KEEP, PEND_INSERT };
#define ROWS_MAX 256  /* rows of one INSERT held back to go as one statement (rows_out), at most */
#define LATER_MAX 512 /* values set later (qun_db_set_later) per transaction: a batch's posts */
#define IDS_FIRST 8   /* ids in the first block take_id fetches in a transaction */
#define IDS_MAX 128   /* and at most, doubling */

struct qun_q {
    const qun_store_ops_t *ops;
    qun_db_t *db;
    const char *sql;
    char name[16];
    unsigned gen; /* connection generation it is prepared in; 0: not prepared */
    int nparams;  /* highest $N in sql */
    bool insert1; /* sql inserts exactly one row or fails (one_row_insert) */
    bool rows_checked;
    char *rows_sql; /* insert1's form for many rows at once (rows_form), or NULL */
    uint64_t used;  /* bit N set when $N appears */
    char *vals[QMAXPARAM + 1];
    int lens[QMAXPARAM + 1];
    int fmts[QMAXPARAM + 1];
    PGresult *res; /* the executed statement's rows, NULL before the first step */
    int row, nrows;
    unsigned char *blob; /* col_blob's decoded bytea */
    size_t blob_cap;
    bool ahead;   /* a handle of run_ahead: no statement of its own, rows kept for it */
    bool waiting; /* (ahead) its statement is sent and its rows not read yet */
    bool lost;    /* (ahead) its statement failed, or was not run after a failure */
};

/* The array literal of one parameter of the rows held back (rows_hold), NUL-terminated. */
typedef struct {
    char *p;
    size_t len, cap;
} rowbuf_t;

struct qun_db {
    const qun_store_ops_t *ops;
    qun_db_ext_t ext; /* second, as store.c expects */
    PGconn *conn;
    char *conninfo;
    bool readonly;
    bool in_txn;  /* between our BEGIN and COMMIT/ROLLBACK */
    unsigned gen; /* bumped on every (re)connect: prepared statements are per session */
    int nprepared;
    int64_t changes;
    int64_t total_changes; /* the sum of every changes since the connection opened */
    int64_t retry_at_ms;   /* no new connection attempt before (monotonic ms) */
    int64_t committed_ms;  /* when a COMMIT last succeeded on this session (monotonic ms) */
    int backoff_ms;        /* the wait after the next failed attempt */
    char listening[32];    /* the channel to LISTEN on again after a reconnect */
    /* Transaction locks the open transaction already holds (queued), so a
     * batch of 500 writes pays one round trip for them, not 500.  Those taken since the
     * savepoint (index >= sp_mark) go when it is rolled back, as the server drops them. */
    int64_t held[8];
    int nheld, sp_mark;
    /* Statements sent without waiting (libpq's pipeline mode, step_nowait): their
     * results are read with the next statement's, in one round trip.  kind[i]: a write
     * that must change exactly one row, or anything that merely succeeds. */
    int pending;
    unsigned char pending_kind[PENDING_MAX];
    int pending_want[PENDING_MAX];      /* PEND_ONE_ROW, PEND_INSERT: the rows it must change */
    qun_q_t *pending_dest[PENDING_MAX]; /* PEND_KEEP: the handle its rows go to */
    /* Handles of run_ahead, reused from one transaction to the next: ahead[0..nahead). */
    qun_q_t *ahead[AHEAD_MAX];
    int nahead;
    bool read_fresh; /* a read transaction's BEGIN is sent ahead and no statement followed */
    bool reading;    /* the open transaction is a read transaction (READ_BEGIN) */
    bool failed;     /* a statement failed in the open transaction, which is then aborted */
    bool shared;     /* it began as BEGIN SHARED: the ledger lock held in share mode */
    bool notify_due; /* it asked for a NOTIFY on notify_to, sent once it commits */
    char notify_to[32];
    bool notify_owed;    /* a committed transaction's NOTIFY waits for NOTIFY_GAP_MS to pass */
    int64_t notified_ms; /* when the last one was sent (monotonic) */
    bool frontier_ok;    /* it began after the event frontier was read: frontier holds it */
    int64_t frontier;
    /* Ids taken ahead for one table (take_id) in the open transaction: ids[next..n). */
    char ids_table[64];
    int64_t ids[IDS_MAX];
    int ids_next, ids_n;
    int ids_blocks; /* since BEGIN: 0, then 1 once the first row's INSERT took its own id */
    /* Ids announced by operations sent ahead (qun_db_expect_ids), and the handle of the
     * statement fetching them (qun_db_send_expected), read when the block above runs out. */
    char want_table[64];
    int ids_want;
    qun_q_t *ids_ahead;
    qun_q_t *cache[QCACHE];
    /* Rows of one insert1 statement sent without waiting, held back to go as one
     * statement (rows_out): rows_buf[k] is the array literal of parameter $k so far. */
    qun_q_t *rows_of;
    int rows_n;
    bool rows_lost; /* a held batch or value could not be sent: the transaction must not commit */
    /* Values set later (qun_db_set_later) in the open transaction, the last per (sql,
     * key); `sent` once written, kept for qun_db_later_value until the transaction ends. */
    struct {
        const char *sql;
        int64_t key, value;
        bool sent;
    } later[LATER_MAX];
    int nlater;
    int64_t later_sets;  /* qun_db_set_later calls since the connection opened: changes */
    uint64_t txn_serial; /* transactions begun on this connection (qun_db_txn_serial) */
    rowbuf_t rows_buf[QMAXPARAM + 1];
};

/* The rows held back (rows_hold) are forgotten: gone with a rollback or a lost connection. */
static void rows_drop(qun_db_t *db) {
    db->rows_of = NULL;
    db->rows_n = 0;
    for (int k = 0; k <= QMAXPARAM; k++)
        db->rows_buf[k].len = 0;
}

/* And the values set later: at a transaction's start and end, and with its connection. */
static void held_drop(qun_db_t *db) {
    rows_drop(db);
    db->nlater = 0;
}

static void held_out(qun_db_t *db);

static void quiet(void *arg, const char *msg) {
    (void)arg;
    (void)msg; /* NOTICEs (e.g. "relation already exists, skipping") are not news */
}

/* Connect (again), and set the session up.  Bumps the generation so cached
 * statements are prepared again on the new session.  While the server is away,
 * attempts are spaced out (50 ms doubling to 1 s per connection) so a burst of
 * requests does not turn into a burst of connection attempts. */
static qun_rc connect_db(qun_db_t *db, qun_err_t *err) {
    int64_t now = qun_mono_ms();
    if (db->conn && now < db->retry_at_ms)
        return qun_fail(err, QUN_STORE_UNAVAILABLE,
                        "postgres: the server is unreachable; next attempt in %lld ms",
                        (long long)(db->retry_at_ms - now));
    if (db->conn) PQfinish(db->conn);
    held_drop(db);
    db->conn = PQconnectdb(db->conninfo);
    db->gen++;
    db->in_txn = false;
    db->committed_ms = 0;
    if (!db->conn) return qun_fail(err, QUN_NOMEM, "postgres: out of memory");
    if (PQstatus(db->conn) != CONNECTION_OK) {
        db->backoff_ms = db->backoff_ms ? (db->backoff_ms * 2 > 1000 ? 1000 : db->backoff_ms * 2) : 50;
        db->retry_at_ms = qun_mono_ms() + db->backoff_ms;
        return qun_fail(err, QUN_STORE_UNAVAILABLE, "postgres: cannot connect: %.200s",
                        PQerrorMessage(db->conn));
    }
    db->backoff_ms = 0;
    db->retry_at_ms = 0;
    PQsetNoticeProcessor(db->conn, quiet, NULL);
    PGresult *r = PQexec(db->conn, db->readonly ? "SET default_transaction_read_only = on; "
                                                  "SET application_name = 'qund'"
                                                : "SET application_name = 'qund'");
    qun_rc rc = QUN_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = qun_fail(err, QUN_STORE, "postgres: session setup: %.200s", PQerrorMessage(db->conn));
    PQclear(r);
    return rc;
}

/* Before a statement: a connection that went away is re-established, unless a
 * transaction was open on it (its work is lost: the caller must roll back). */
static qun_rc ensure_conn(qun_db_t *db, qun_err_t *err) {
    if (PQstatus(db->conn) == CONNECTION_OK) return QUN_OK;
    if (db->in_txn)
        return qun_fail(err, QUN_STORE_UNAVAILABLE, "postgres: connection lost inside a transaction");
    return connect_db(db, err);
}

/* Map a failed result onto qun_rc. */
static qun_rc pg_fail(qun_db_t *db, PGresult *r, qun_err_t *err, const char *what) {
    db->failed = db->in_txn;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(db->conn);
    char clean[300];
    snprintf(clean, sizeof clean, "%s", msg);
    for (char *p = clean; *p; p++)
        if (*p == '\n') *p = ' ';
    if (PQstatus(db->conn) != CONNECTION_OK)
        return qun_fail(err, QUN_STORE_UNAVAILABLE, "%s: connection lost: %.200s", what, clean);
    if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0))
        return qun_fail(err, QUN_CONFLICT_RETRY, "%s: %.200s", what, clean);
    if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0)) /* connection, shutdown */
        return qun_fail(err, QUN_STORE_UNAVAILABLE, "%s: %.200s", what, clean);
    if (state && strcmp(state, "53100") == 0) /* disk_full */
        return qun_fail(err, QUN_STORAGE_FULL, "%s: %.200s", what, clean);
    return qun_fail(err, QUN_STORE, "%s: %.200s", what, clean);
}

static void note_changes(qun_db_t *db, PGresult *r) {
    const char *st = PQcmdStatus(r);
    if (strncmp(st, "INSERT", 6) == 0 || strncmp(st, "UPDATE", 6) == 0 || strncmp(st, "DELETE", 6) == 0) {
        db->changes = strtoll(PQcmdTuples(r), NULL, 10);
        db->total_changes += db->changes;
    }
}

/* The ids taken ahead are the open transaction's: gone with it, and with a rollback to a
 * savepoint, which may have dropped the lock they were taken under. */
static void ids_drop(qun_db_t *db) {
    db->ids_next = db->ids_n = 0;
    db->ids_table[0] = '\0';
    db->ids_want = 0;
    db->ids_ahead = NULL;
}

/* The run_ahead handles go back to the pool when their transaction ends. */
static void ahead_drop(qun_db_t *db) {
    for (int i = 0; i < db->pending; i++)
        db->pending_dest[i] = NULL;
    for (int i = 0; i < db->nahead; i++) {
        qun_q_t *h = db->ahead[i];
        if (h->res) PQclear(h->res);
        h->res = NULL;
        h->waiting = h->lost = false;
        h->row = h->nrows = 0;
    }
    db->nahead = 0;
}

/* Transaction bookkeeping for BEGIN/COMMIT/ROLLBACK, run through exec or sent ahead. */
static void track_txn(qun_db_t *db, const char *sql) {
    if (strncmp(sql, "BEGIN", 5) == 0 || strncmp(sql, "START", 5) == 0) {
        db->in_txn = true;
        db->reading = strcmp(sql, READ_BEGIN) == 0;
        db->failed = false;
        db->frontier_ok = db->shared = db->notify_due = db->rows_lost = false;
        db->txn_serial++;
        held_drop(db);
        db->nheld = 0;
        ids_drop(db);
        ahead_drop(db);
        db->ids_blocks = 0;
    } else if (strncmp(sql, "COMMIT", 6) == 0 || strcmp(sql, "ROLLBACK") == 0 ||
               strncmp(sql, "END", 3) == 0) {
        if (sql[0] == 'C') db->committed_ms = qun_mono_ms(); /* called once it succeeded */
        db->in_txn = false;
        db->reading = db->frontier_ok = db->shared = db->rows_lost = false;
        held_drop(db);
        ids_drop(db);
        ahead_drop(db);
    }
}

/* A statement that failed because the connection was gone may be sent again on a new
 * one when resending cannot apply anything twice: outside a transaction, a BEGIN or
 * any statement of a read-only connection. */
static bool safe_to_resend(qun_db_t *db, const char *sql) {
    return PQstatus(db->conn) != CONNECTION_OK && !db->in_txn &&
           (db->readonly || strncmp(sql, "BEGIN", 5) == 0);
}

/* Send q's prepared statement with its binds, not waiting for the answer. */
static bool send_q(qun_q_t *q) {
    return PQsendQueryPrepared(q->db->conn, q->name, q->nparams, (const char *const *)q->vals + 1,
                               q->lens + 1, q->fmts + 1, 0) == 1;
}

/* Read the results of the statements sent ahead and leave pipeline mode.  Each must
 * have succeeded (and a write changed one row); the first failure is the answer.
 * With q: q was sent after them, and its result is kept on it for pg_step. */
static qun_rc drain(qun_db_t *db, qun_q_t *q, qun_err_t *err) {
    qun_rc rc = PQpipelineSync(db->conn) == 1 ? QUN_OK : pg_fail(db, NULL, err, "pipeline");
    int n = db->pending + (q ? 1 : 0);
    /* Each statement answers with its result and then NULL (after a failure the later
     * ones answer PGRES_PIPELINE_ABORTED); then comes the sync. */
    for (int i = 0; i < n; i++) {
        int kind = i < db->pending ? db->pending_kind[i] : PEND_ANY;
        PGresult *r = PQgetResult(db->conn), *extra;
        ExecStatusType st = PQresultStatus(r);
        bool keep = false;
        qun_q_t *dest = kind == PEND_KEEP && i < db->pending ? db->pending_dest[i] : NULL;
        if (dest) dest->waiting = false, dest->lost = true;
        if (kind == PEND_SYNC) { /* a sync answers alone, with no NULL after it */
            if (rc == QUN_OK && st != PGRES_PIPELINE_SYNC)
                rc = r ? qun_fail(err, QUN_STORE, "postgres: a pipeline's sync did not come back")
                       : pg_fail(db, NULL, err, "pipeline");
            PQclear(r);
            if (!r) break;
            continue;
        }
        if (rc != QUN_OK || kind == PEND_IGNORE) {
            /* only read */
        } else if (kind == PEND_KEEP && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
            /* Not counted in changes: a handle's statement reads (the writer's
             * unguarded operations count what they write themselves). */
            if (dest) {
                dest->lost = false;
                dest->res = r;
                dest->nrows = st == PGRES_TUPLES_OK ? PQntuples(r) : 0;
                dest->row = -1;
                keep = true;
            }
        } else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            note_changes(db, r);
            if ((kind == PEND_ONE_ROW || kind == PEND_INSERT) && db->changes != db->pending_want[i])
                rc = qun_fail(err, QUN_STORE, "a write sent ahead changed %lld rows, not %d",
                              (long long)db->changes, db->pending_want[i]);
            keep = q && i == db->pending;
        } else {
            rc = pg_fail(db, r, err, i < db->pending ? "pipelined write" : "step");
        }
        if (keep && !dest)
            q->res = r;
        else if (!keep)
            PQclear(r);
        if (!r) break; /* the connection is gone */
        while ((extra = PQgetResult(db->conn)))
            PQclear(extra);
    }
    PGresult *sync = PQstatus(db->conn) == CONNECTION_OK ? PQgetResult(db->conn) : NULL;
    if (sync && PQresultStatus(sync) != PGRES_PIPELINE_SYNC && rc == QUN_OK)
        rc = qun_fail(err, QUN_STORE, "postgres: the pipeline's sync did not come back");
    PQclear(sync);
    if (rc != QUN_OK && q && q->res) {
        PQclear(q->res);
        q->res = NULL;
    }
    db->pending = 0;
    PQexitPipelineMode(db->conn);
    if (rc == QUN_OK && db->rows_lost)
        rc = qun_fail(err, QUN_STORE, "postgres: writes held back could not be sent");
    return rc;
}

static qun_rc settle(qun_db_t *db, qun_err_t *err) {
    return db->pending ? drain(db, NULL, err) : QUN_OK;
}

static qun_rc pg_xlock(qun_db_t *db, int64_t key, qun_err_t *err);
static qun_rc ledger_share(qun_db_t *db, qun_err_t *err);
static void notify_now(qun_db_t *db);

static bool send_sql_ahead(qun_db_t *db, const char *sql, int kind);

/* Whether every statement sent ahead fails on the server if it fails at all, so that a
 * COMMIT sent behind them runs only when they all succeeded: not so after a write
 * whose count of changed rows is checked here (PEND_ONE_ROW). */
static bool commit_may_follow(qun_db_t *db) {
    for (int i = 0; i < db->pending; i++)
        if (db->pending_kind[i] == PEND_ONE_ROW) return false;
    return true;
}

/* What follows a BEGIN that succeeded: BEGIN IMMEDIATE's and BEGIN SHARED's lock. */
static qun_rc begun(qun_db_t *db, bool immediate, bool shared, qun_err_t *err) {
    track_txn(db, "BEGIN");
    if (shared) return ledger_share(db, err);
    return immediate ? pg_xlock(db, QUN_LEDGER_LOCK, err) : QUN_OK;
}

static qun_rc pg_exec(qun_db_t *db, const char *sql, qun_err_t *err) {
    /* SQLite's BEGIN that takes the write lock up front (the writer's batches): here the
     * lock every instance's ledger appends take anyway, sent ahead.  A batch that held a
     * row lock and then waited for it could deadlock with another instance's batch
     * holding it and waiting for the row; taken first, it cannot.  BEGIN SHARED (a
     * batch of posts alone, qun_wop_t.shares_key) takes it in share mode: such batches
     * run beside each other, and lock their group rows in one order. */
    bool immediate = strcmp(sql, "BEGIN IMMEDIATE") == 0, shared = strcmp(sql, "BEGIN SHARED") == 0;
    if (immediate || shared) sql = "BEGIN";
    if (strncmp(sql, "ROLLBACK", 8) == 0) { /* rows held since the savepoint, or the BEGIN */
        rows_drop(db);
        /* A value set later may have been set since the savepoint: what it was before is
         * not kept, so the transaction cannot commit (the writer's posts set values in
         * transactions without savepoints). */
        if (db->nlater && strncmp(sql, "ROLLBACK TO", 11) == 0) db->rows_lost = true;
    } else {
        held_out(db);
        if (db->rows_lost && strcmp(sql, "COMMIT") == 0) {
            pg_exec(db, "ROLLBACK", &(qun_err_t){{0}, {0}});
            return qun_fail(err, QUN_STORE, "postgres: writes held back could not be sent");
        }
    }
    bool committing = strcmp(sql, "COMMIT") == 0 && db->notify_due;
    if (strcmp(sql, "ROLLBACK") == 0 && PQstatus(db->conn) != CONNECTION_OK) {
        db->in_txn = false; /* the server already dropped it */
        return QUN_OK;
    }
    /* What was sent ahead is read first.  A ROLLBACK (to a savepoint, too) goes on
     * whatever it said; anything else is not sent after a failure, and a COMMIT then
     * rolls back.  Outside a transaction only what nobody waits for can be pending (a
     * NOTIFY after a commit, a read transaction's COMMIT): when reading it fails (the
     * server dropped the connection meanwhile; libpq may not call it bad yet), the
     * connection is made afresh, as it would be with nothing pending. */
    bool owed_only = !db->in_txn;
    qun_rc rc;
    /* A batch's BEGIN on a session that committed less than BEGIN_AHEAD_MS ago (a writer
     * under load) is sent ahead: it goes with the batch's lock and first reads, and a
     * batch costs two round trips, not three (8 % more posts a second on one instance,
     * bench/README.md).  Should the server have gone meanwhile, the batch fails on its
     * reads (503), as one running then would; a session idle for longer waits for its
     * BEGIN, which is sent again on a new connection if the server restarted. */
    if (owed_only && (immediate || shared) && PQstatus(db->conn) == CONNECTION_OK &&
        qun_mono_ms() - db->committed_ms < BEGIN_AHEAD_MS && send_sql_ahead(db, sql, PEND_ANY))
        return begun(db, immediate, shared, err);
    /* A BEGIN after a commit whose NOTIFY is still unread goes in the same round trip
     * as reading it; if that fails, it runs again on a new connection. */
    if (owed_only && db->pending && strcmp(sql, "BEGIN") == 0 && PQstatus(db->conn) == CONNECTION_OK &&
        send_sql_ahead(db, sql, PEND_ANY)) {
        if (drain(db, NULL, err) == QUN_OK) return begun(db, immediate, shared, err);
        if ((rc = connect_db(db, err)) != QUN_OK) return rc;
    }
    /* A COMMIT behind writes sent ahead goes with them: one round trip.  Should one of
     * them fail, the COMMIT is not run and the transaction rolls back, as below. */
    if (!owed_only && db->pending && strcmp(sql, "COMMIT") == 0 && commit_may_follow(db) &&
        send_sql_ahead(db, sql, PEND_ANY)) {
        if ((rc = drain(db, NULL, err)) == QUN_OK) {
            track_txn(db, sql);
            if (committing) notify_now(db);
            return QUN_OK;
        }
        pg_exec(db, "ROLLBACK", &(qun_err_t){{0}, {0}});
        return rc;
    }
    rc = settle(db, err);
    if (rc != QUN_OK && owed_only) rc = connect_db(db, err);
    if (rc != QUN_OK && strncmp(sql, "ROLLBACK", 8) != 0) {
        if (strncmp(sql, "COMMIT", 6) == 0) {
            qun_err_t ignore;
            pg_exec(db, "ROLLBACK", &ignore);
        }
        return rc;
    }
    rc = ensure_conn(db, err);
    if (rc != QUN_OK) return rc;
    PGresult *r = PQexec(db->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR && safe_to_resend(db, sql)) {
        PQclear(r); /* the server restarted since the last statement: once more, reconnected */
        if ((rc = ensure_conn(db, err)) != QUN_OK) return rc;
        r = PQexec(db->conn, sql);
        st = PQresultStatus(r);
    }
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
        note_changes(db, r);
        PQclear(r);
        if (strcmp(sql, "BEGIN") == 0) return begun(db, immediate, shared, err);
        track_txn(db, sql);
        if (committing) notify_now(db);
        return QUN_OK;
    }
    rc = pg_fail(db, r, err, "exec");
    PQclear(r);
    if (strncmp(sql, "COMMIT", 6) == 0) db->in_txn = false; /* a failed COMMIT rolls back */
    return rc;
}

static qun_rc migrate(qun_db_t *db, qun_err_t *err) {
    return qun_store_migrate(db, qun_pg_migrations, qun_pg_migrations_count, QUN_PG_MIGRATIONS_TABLE, err);
}

static void pg_close(qun_db_t *db);

static qun_rc pg_open(const char *conninfo, bool readonly, bool migrate_now, qun_db_t **out, qun_err_t *err) {
    qun_db_t *db = calloc(1, sizeof *db);
    if (!db) return qun_fail(err, QUN_NOMEM, "out of memory");
    db->ops = &qun_pg_ops;
    db->ext.readonly = readonly;
    db->readonly = readonly;
    db->conninfo = strdup(conninfo);
    qun_rc rc = db->conninfo ? connect_db(db, err) : qun_fail(err, QUN_NOMEM, "out of memory");
    if (rc == QUN_OK && migrate_now) rc = migrate(db, err);
    if (rc != QUN_OK) {
        pg_close(db);
        return rc;
    }
    *out = db;
    return QUN_OK;
}

static void clear_binds(qun_q_t *q) {
    for (int k = 1; k <= QMAXPARAM; k++) {
        free(q->vals[k]);
        q->vals[k] = NULL;
        q->lens[k] = 0;
        q->fmts[k] = 0;
    }
}

static void reset_q(qun_q_t *q) {
    if (q->res) PQclear(q->res);
    q->res = NULL;
    q->row = q->nrows = 0;
}

static void pg_close(qun_db_t *db) {
    if (!db) return;
    for (int i = 0; i < QCACHE; i++) {
        qun_q_t *q = db->cache[i];
        if (!q) continue;
        reset_q(q);
        clear_binds(q);
        free(q->blob);
        free(q->rows_sql);
        free(q);
    }
    for (int k = 0; k <= QMAXPARAM; k++)
        free(db->rows_buf[k].p);
    ahead_drop(db);
    for (int i = 0; i < AHEAD_MAX && db->ahead[i]; i++) {
        free(db->ahead[i]->blob);
        free(db->ahead[i]);
    }
    if (db->conn) PQfinish(db->conn);
    free(db->conninfo);
    free(db);
}

/* The $N parameters sql uses, skipping quoted strings and identifiers. */
static void scan_params(const char *sql, int *max, uint64_t *used) {
    *max = 0;
    *used = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            quote = *p;
            continue;
        }
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            int n = (int)strtol(p + 1, NULL, 10);
            if (n >= 1 && n <= QMAXPARAM) {
                *used |= (uint64_t)1 << n;
                if (n > *max) *max = n;
            }
        }
    }
}

/* Whether sql is an INSERT (after any WITH) whose rows are one VALUES row, with nothing
 * after it (no ON CONFLICT, no RETURNING): outside parentheses and quotes, the text
 * holds INSERT INTO and ends with VALUES (...). */
static bool one_row_insert(const char *sql) {
    if (strncmp(sql, "INSERT ", 7) != 0 && strncmp(sql, "WITH ", 5) != 0) return false;
    char quote = 0;
    int depth = 0;
    bool insert = false;
    const char *values = NULL, *row_end = NULL; /* the last top-level VALUES, its row's ')' */
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '(') {
            depth++;
        } else if (*p == ')') {
            if (--depth == 0 && values && !row_end) row_end = p;
        } else if (depth == 0 && strncmp(p, "INSERT INTO ", 12) == 0) {
            insert = true;
        } else if (depth == 0 && insert && strncmp(p, "VALUES ", 7) == 0) {
            values = p, row_end = NULL;
        }
        if (depth == 0 && row_end && p > row_end && *p != ' ') values = NULL; /* more after the row */
    }
    return insert && values && row_end && depth == 0 && !quote;
}

static qun_rc pg_prepare(qun_db_t *db, const char *sql, qun_q_t **out, qun_err_t *err) {
    size_t h = ((uintptr_t)sql >> 3) * 2654435761u;
    for (size_t n = 0; n < QCACHE; n++) {
        size_t i = (h + n) & (QCACHE - 1);
        qun_q_t *q = db->cache[i];
        if (q && q->sql == sql) {
            reset_q(q);
            clear_binds(q);
            *out = q;
            return QUN_OK;
        }
        if (q) continue;
        q = calloc(1, sizeof *q);
        if (!q) return qun_fail(err, QUN_NOMEM, "out of memory");
        q->ops = &qun_pg_ops;
        q->db = db;
        q->sql = sql;
        snprintf(q->name, sizeof q->name, "q%d", ++db->nprepared);
        scan_params(sql, &q->nparams, &q->used);
        q->insert1 = one_row_insert(sql);
        db->cache[i] = q;
        *out = q;
        return QUN_OK;
    }
    return qun_fail(err, QUN_INTERNAL, "statement cache full");
}

static void bind(qun_q_t *q, int idx, char *v, int len, int fmt) {
    if (idx < 1 || idx > QMAXPARAM) {
        free(v);
        return;
    }
    free(q->vals[idx]);
    q->vals[idx] = v;
    q->lens[idx] = len;
    q->fmts[idx] = fmt;
}

static void pg_bind_int(qun_q_t *q, int idx, int64_t v) {
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    bind(q, idx, strdup(buf), n, 0);
}

static void pg_bind_text(qun_q_t *q, int idx, const char *s) {
    bind(q, idx, s ? strdup(s) : NULL, 0, 0);
}

static void pg_bind_blob(qun_q_t *q, int idx, const void *p, size_t n) {
    char *copy = malloc(n ? n : 1);
    if (copy && n) memcpy(copy, p, n);
    bind(q, idx, copy, (int)n, 1);
}

static void pg_bind_null(qun_q_t *q, int idx) {
    bind(q, idx, NULL, 0, 0);
}

/* ---- many rows of one INSERT as one statement ----
 * A transaction's writes sent without waiting are often one INSERT of one row many
 * times over (a batch of posts: an event row and a message row each).  PostgreSQL
 * starts its executor and prepares the tables' constraints and triggers once per
 * statement, which cost more than the row itself: such rows are held back while they
 * come one after another, and go as one statement, `INSERT ... SELECT * FROM
 * unnest($1::T[], ...)` with each parameter an array of the rows' values, before
 * anything else is sent (rows_out, called first by every function that sends), so the
 * server runs the same writes in the same order.  That statement inserts every row or
 * fails, as each one-row INSERT did: the transaction fails as it would have. */

/* The element type of an array parameter for a parameter of type t, or NULL. */
static const char *array_type(Oid t) {
    switch (t) {
    case 16: return "bool";
    case 20: return "int8";
    case 21: return "int2";
    case 23: return "int4";
    case 25: return "text";
    case 701: return "float8";
    case 1043: return "varchar";
    default: return NULL;
    }
}

/* The row `($a, $b, ...)` at p as `SELECT * FROM unnest($a::T[], $b::T[], ...)`, T the
 * type PostgreSQL gave the parameter (types[n-1] for $n), written at *o: the text after
 * the row, or NULL when it holds anything but parameters of types array_type knows. */
static const char *unnest_row(const char *p, char **o, const Oid *types, int ntypes) {
    *o += sprintf(*o, "SELECT * FROM unnest(");
    for (p++;; p++) { /* past the '(', then past each ',' */
        while (*p == ' ')
            p++;
        char *end = NULL;
        long n = *p == '$' ? strtol(p + 1, &end, 10) : 0;
        const char *t = n >= 1 && n <= ntypes ? array_type(types[n - 1]) : NULL;
        if (!t) return NULL;
        *o += sprintf(*o, "$%ld::%s[]", n, t);
        for (p = end; *p == ' '; p++)
            ;
        if (*p == ')') {
            *(*o)++ = ')';
            return p + 1;
        }
        if (*p != ',') return NULL;
        *o += sprintf(*o, ", ");
    }
}

/* sql (one_row_insert) with every `VALUES (...)` row in unnest_row's form, or NULL when
 * one is not, or when sql does anything but INSERT rows of parameters: a SELECT, UPDATE,
 * DELETE or RETURNING (in a WITH, say) would run once for all the rows instead of once
 * for each.  Malloc'd. */
static char *rows_form(const char *sql, const Oid *types, int ntypes) {
    static const char *const once[] = {"SELECT", "UPDATE", "DELETE", "RETURNING", "CONFLICT", "nextval"};
    for (size_t i = 0; i < sizeof once / sizeof *once; i++)
        if (strstr(sql, once[i])) return NULL;
    int inserts = 0, rows = 0;
    for (const char *p = sql; (p = strstr(p, "INSERT INTO ")) != NULL; p++)
        inserts++;
    char *out = malloc(strlen(sql) * 7 + 64), *o = out; /* "$n" grows to 13 at most */
    char quote = 0;
    for (const char *p = sql; out && *p;) {
        if (!quote && strncmp(p, "VALUES (", 8) == 0) {
            if (!(p = unnest_row(p + 7, &o, types, ntypes))) {
                free(out);
                return NULL;
            }
            rows++;
            continue;
        }
        if (quote ? *p == quote : *p == '\'' || *p == '"') quote = quote ? 0 : *p;
        *o++ = *p++;
    }
    if (out) *o = '\0';
    if (out && rows && rows == inserts && !quote) return out; /* each INSERT its one row */
    free(out);
    return NULL;
}

static bool buf_put(qun_db_t *db, int k, const char *s, size_t n) {
    rowbuf_t *b = &db->rows_buf[k];
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2 < 256 ? 256 : (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static qun_rc ensure_prepared(qun_q_t *q, qun_err_t *err);
static bool send_q(qun_q_t *q);
static qun_rc settle(qun_db_t *db, qun_err_t *err);

/* Send q (bound) ahead as kind, want the rows it must change: how held writes go out
 * (rows_out, held_out).  False when it could not be sent. */
static bool send_held(qun_q_t *q, int kind, int want) {
    qun_db_t *db = q->db;
    qun_err_t ignore;
    bool ok = db->pending < PENDING_MAX || settle(db, &ignore) == QUN_OK;
    if (ok) ok = ensure_prepared(q, &ignore) == QUN_OK;
    if (ok && !db->pending) ok = PQenterPipelineMode(db->conn) == 1;
    if (ok && !send_q(q)) {
        ok = false;
        if (!db->pending) PQexitPipelineMode(db->conn);
    }
    if (ok) {
        db->pending_want[db->pending] = want;
        db->pending_kind[db->pending++] = (unsigned char)kind;
    }
    return ok;
}

/* Send the rows held back as one statement, sent without waiting like them; if that
 * cannot be done, the transaction is marked so that it cannot commit. */
static void rows_out(qun_db_t *db) {
    qun_q_t *src = db->rows_of, *q = NULL;
    if (!src) return;
    int n = db->rows_n;
    db->rows_of = NULL;
    db->rows_n = 0;
    qun_err_t ignore;
    bool ok = !db->rows_lost && pg_prepare(db, src->rows_sql, &q, &ignore) == QUN_OK;
    for (int k = 1; ok && k <= src->nparams; k++) {
        if (!(src->used & ((uint64_t)1 << k))) continue;
        ok = buf_put(db, k, "}", 1);
        if (ok) { /* the literal goes to the statement, which frees it */
            bind(q, k, db->rows_buf[k].p, (int)db->rows_buf[k].len, 0);
            db->rows_buf[k].p = NULL;
            db->rows_buf[k].cap = 0;
        }
    }
    rows_drop(db);
    if (!ok || !send_held(q, PEND_INSERT, n)) db->rows_lost = true;
}

/* Hold q's binds back as one more row: false when they cannot be (q has no form for
 * many rows, or a binary parameter), and it is sent by itself. */
static bool rows_hold(qun_q_t *q) {
    qun_db_t *db = q->db;
    if (!q->rows_sql) return false;
    for (int k = 1; k <= q->nparams; k++)
        if (q->fmts[k]) return false;
    if (db->rows_of != q) rows_out(db);
    bool ok = true;
    for (int k = 1; k <= q->nparams; k++) {
        if (!(q->used & ((uint64_t)1 << k))) continue;
        ok = ok && buf_put(db, k, db->rows_n ? "," : "{", 1);
        const char *v = q->vals[k];
        if (!v) {
            ok = ok && buf_put(db, k, "NULL", 4);
            continue;
        }
        ok = ok && buf_put(db, k, "\"", 1); /* quoted, `"` and `\` escaped: even "NULL" is text */
        while (ok && *v) {
            size_t run = strcspn(v, "\"\\");
            ok = buf_put(db, k, v, run);
            v += run;
            if (ok && *v) ok = buf_put(db, k, "\\", 1) && buf_put(db, k, v++, 1);
        }
        ok = ok && buf_put(db, k, "\"", 1);
    }
    db->rows_of = q;
    db->rows_n++;
    if (!ok) db->rows_lost = true;
    if (db->rows_n == ROWS_MAX) rows_out(db);
    return true;
}

/* Send the values set later and not sent yet (qun_db_set_later), then the rows held
 * back: whatever the caller sends next comes after them. */
static void held_out(qun_db_t *db) {
    qun_err_t ignore;
    for (int i = 0; i < db->nlater; i++) {
        if (db->later[i].sent) continue;
        db->later[i].sent = true;
        qun_q_t *q;
        bool ok = pg_prepare(db, db->later[i].sql, &q, &ignore) == QUN_OK;
        if (ok) {
            pg_bind_int(q, 1, db->later[i].key);
            pg_bind_int(q, 2, db->later[i].value);
        }
        /* a row the transaction holds locked (store.h): its count is not checked */
        if (!ok || !send_held(q, PEND_ANY, 1)) db->rows_lost = true;
    }
    rows_out(db);
}

static qun_rc pg_set_later(qun_db_t *db, const char *sql, int64_t key, int64_t value, qun_err_t *err) {
    if (!db->in_txn) return qun_fail(err, QUN_INTERNAL, "a value set later needs a transaction");
    int i = 0;
    while (i < db->nlater && !(db->later[i].sql == sql && db->later[i].key == key))
        i++;
    if (i == LATER_MAX) return qun_fail(err, QUN_INTERNAL, "too many values set later in one transaction");
    if (i == db->nlater) db->nlater++;
    db->later[i].sql = sql;
    db->later[i].key = key;
    db->later[i].value = value;
    db->later[i].sent = false;
    db->later_sets++;
    return QUN_OK;
}

static bool pg_later_value(qun_db_t *db, const char *sql, int64_t key, int64_t *value) {
    for (int i = 0; db->in_txn && i < db->nlater; i++)
        if (db->later[i].sql == sql && db->later[i].key == key) {
            *value = db->later[i].value;
            return true;
        }
    return false;
}

static bool pg_txn_shared(qun_db_t *db) {
    return db->in_txn && db->shared;
}

static uint64_t pg_txn_serial(qun_db_t *db) {
    return db->txn_serial;
}

/* Prepare q on the current session if it is not yet. */
static qun_rc ensure_prepared(qun_q_t *q, qun_err_t *err) {
    qun_db_t *db = q->db;
    if (q->gen == db->gen) return QUN_OK;
    qun_rc src = settle(db, err); /* PQprepare waits: not inside a pipeline */
    if (src != QUN_OK) return src;
    /* A $N the text skips has no type to infer: call it text. */
    Oid types[QMAXPARAM + 1] = {0};
    for (int k = 1; k <= q->nparams; k++)
        if (!(q->used & ((uint64_t)1 << k))) types[k - 1] = TEXTOID;
    PGresult *r = PQprepare(db->conn, q->name, q->sql, q->nparams, types);
    qun_rc rc = QUN_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pg_fail(db, r, err, "prepare");
    else
        q->gen = db->gen;
    PQclear(r);
    if (rc == QUN_OK && q->insert1 && !q->rows_checked) { /* its form for many rows, once */
        q->rows_checked = true;
        PGresult *d = PQdescribePrepared(db->conn, q->name);
        if (PQresultStatus(d) == PGRES_COMMAND_OK && PQnparams(d) <= QMAXPARAM) {
            Oid ptypes[QMAXPARAM];
            for (int k = 0; k < PQnparams(d); k++)
                ptypes[k] = PQparamtype(d, k);
            q->rows_sql = rows_form(q->sql, ptypes, PQnparams(d));
        }
        PQclear(d);
    }
    return rc;
}

/* Step a run_ahead handle: its rows come with the first drain after it was sent. */
static qun_rc step_ahead(qun_q_t *q, qun_err_t *err) {
    if (q->waiting) {
        qun_rc rc = settle(q->db, err);
        if (q->waiting) q->lost = true; /* the drain stopped before it: the connection went */
        q->waiting = false;
        if (rc != QUN_OK) return rc;
    }
    if (q->lost) return qun_fail(err, QUN_STORE, "postgres: a statement sent ahead failed");
    if (q->res && ++q->row < q->nrows) return QUN_ROW;
    reset_q(q);
    return QUN_DONE;
}

static qun_rc pg_step(qun_q_t *q, qun_err_t *err) {
    qun_db_t *db = q->db;
    if (q->ahead) return step_ahead(q, err);
    if (!q->res) held_out(db); /* what is held back goes first */
    if (!q->res && db->pending) {
        /* Behind the statements sent ahead, in the same round trip. */
        bool fresh = db->read_fresh;
        db->read_fresh = false;
        qun_rc rc = ensure_prepared(q, err);
        if (rc == QUN_OK && db->pending) {
            if (!send_q(q)) rc = pg_fail(db, NULL, err, "step");
            qun_rc drc = drain(db, rc == QUN_OK ? q : NULL, err);
            if (rc == QUN_OK) rc = drc;
            if (rc == QUN_OK) {
                q->nrows = PQresultStatus(q->res) == PGRES_TUPLES_OK ? PQntuples(q->res) : 0;
                q->row = -1;
            }
        }
        if (rc != QUN_OK) {
            if (!fresh || PQstatus(db->conn) == CONNECTION_OK) return rc;
            /* The connection went away before the read transaction began (the server
             * restarted while the loop was idle): begin it on a new one, as a BEGIN run
             * by itself would have been sent again. */
            db->in_txn = false;
            if ((rc = pg_exec(db, READ_BEGIN, err)) != QUN_OK) return rc;
        }
    }
    if (!q->res) {
        qun_rc rc = ensure_conn(db, err);
        if (rc == QUN_OK) rc = ensure_prepared(q, err);
        if (rc != QUN_OK) return rc;
        PGresult *r = PQexecPrepared(db->conn, q->name, q->nparams, (const char *const *)q->vals + 1,
                                     q->lens + 1, q->fmts + 1, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_FATAL_ERROR && safe_to_resend(db, q->sql)) {
            PQclear(r);
            rc = ensure_conn(db, err);
            if (rc == QUN_OK) rc = ensure_prepared(q, err);
            if (rc != QUN_OK) return rc;
            r = PQexecPrepared(db->conn, q->name, q->nparams, (const char *const *)q->vals + 1, q->lens + 1,
                               q->fmts + 1, 0);
            st = PQresultStatus(r);
        }
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            rc = pg_fail(db, r, err, "step");
            PQclear(r);
            return rc;
        }
        note_changes(db, r);
        q->res = r;
        q->nrows = st == PGRES_TUPLES_OK ? PQntuples(r) : 0;
        q->row = -1;
    }
    if (++q->row < q->nrows) return QUN_ROW;
    reset_q(q); /* like sqlite3_reset after SQLITE_DONE: stepping again re-runs it */
    return QUN_DONE;
}

static bool have(qun_q_t *q, int col) {
    return q->res && q->row >= 0 && q->row < q->nrows && col >= 0 && col < PQnfields(q->res);
}

static int64_t pg_col_int(qun_q_t *q, int col) {
    if (!have(q, col) || PQgetisnull(q->res, q->row, col)) return 0;
    const char *v = PQgetvalue(q->res, q->row, col);
    if (v[0] == 't' && !v[1]) return 1; /* boolean expressions */
    if (v[0] == 'f' && !v[1]) return 0;
    return strtoll(v, NULL, 10);
}

static const char *pg_col_text(qun_q_t *q, int col) {
    if (!have(q, col)) return "";
    return PQgetvalue(q->res, q->row, col);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static const void *pg_col_blob(qun_q_t *q, int col, size_t *n) {
    *n = 0;
    if (!have(q, col) || PQgetisnull(q->res, q->row, col)) return NULL;
    const char *v = PQgetvalue(q->res, q->row, col);
    size_t len = (size_t)PQgetlength(q->res, q->row, col);
    if (PQftype(q->res, col) != BYTEAOID || len < 2 || v[0] != '\\' || v[1] != 'x') {
        *n = len;
        return v;
    }
    size_t bytes = (len - 2) / 2;
    if (bytes + 1 > q->blob_cap) {
        unsigned char *nb = realloc(q->blob, bytes + 1);
        if (!nb) return NULL;
        q->blob = nb;
        q->blob_cap = bytes + 1;
    }
    for (size_t i = 0; i < bytes; i++) {
        int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
        if (hi < 0 || lo < 0) return NULL;
        q->blob[i] = (unsigned char)(hi << 4 | lo);
    }
    *n = bytes;
    return q->blob;
}

static bool pg_col_null(qun_q_t *q, int col) {
    return !have(q, col) || PQgetisnull(q->res, q->row, col);
}

static void pg_done(qun_q_t *q) {
    if (q) reset_q(q);
}

/* Send q without waiting for its result (a write of one row, or with kind PEND_ANY
 * anything), inside a transaction; outside one, or when the pipeline is full, it
 * runs at once. */
static qun_rc send_ahead(qun_q_t *q, int kind, qun_err_t *err) {
    qun_db_t *db = q->db;
    qun_rc rc = ensure_conn(db, err);
    if (rc != QUN_OK) return rc;
    if (kind == PEND_INSERT && db->in_txn && q->gen == db->gen && rows_hold(q)) return QUN_OK;
    held_out(db);
    if (db->pending == PENDING_MAX) rc = settle(db, err);
    if (rc == QUN_OK) rc = ensure_prepared(q, err);
    if (rc != QUN_OK) return rc;
    if (!db->in_txn) {
        rc = pg_step(q, err);
        if (rc == QUN_ROW) rc = QUN_DONE;
        if (rc == QUN_DONE && kind == PEND_ONE_ROW && db->changes != 1)
            rc = qun_fail(err, QUN_STORE, "a one-row write changed %lld rows", (long long)db->changes);
        reset_q(q);
        return rc == QUN_DONE ? QUN_OK : rc;
    }
    if (!db->pending && PQenterPipelineMode(db->conn) != 1) return pg_fail(db, NULL, err, "pipeline");
    if (!send_q(q)) {
        rc = pg_fail(db, NULL, err, "send");
        if (!db->pending) PQexitPipelineMode(db->conn);
        return rc;
    }
    db->pending_want[db->pending] = 1;
    db->pending_kind[db->pending++] = (unsigned char)kind;
    return QUN_OK;
}

static qun_rc pg_step_nowait(qun_q_t *q, qun_err_t *err) {
    return send_ahead(q, q->insert1 ? PEND_INSERT : PEND_ONE_ROW, err);
}

/* Send q (prepared, bound) and hand back a handle its rows will be kept for; *out NULL
 * when nothing was sent (outside a transaction, or every handle taken). */
static qun_rc pg_run_ahead(qun_q_t *q, qun_q_t **out, qun_err_t *err) {
    qun_db_t *db = q->db;
    *out = NULL;
    qun_rc rc = QUN_OK;
    if (!db->in_txn || db->nahead == AHEAD_MAX) goto unbound;
    held_out(db);
    if ((rc = ensure_conn(db, err)) == QUN_OK && db->pending == PENDING_MAX) rc = settle(db, err);
    if (rc == QUN_OK) rc = ensure_prepared(q, err);
    if (rc != QUN_OK) goto unbound;
    qun_q_t *h = db->ahead[db->nahead];
    if (!h) {
        h = db->ahead[db->nahead] = qun_xcalloc(1, sizeof *h);
        h->ops = q->ops;
        h->db = db;
        h->ahead = true;
        h->sql = "(sent ahead)";
    }
    if (!db->pending && PQenterPipelineMode(db->conn) != 1) {
        rc = pg_fail(db, NULL, err, "pipeline");
        goto unbound;
    }
    if (!send_q(q)) {
        rc = pg_fail(db, NULL, err, "send");
        if (!db->pending) PQexitPipelineMode(db->conn);
        goto unbound;
    }
    db->pending_dest[db->pending] = h;
    db->pending_kind[db->pending++] = PEND_KEEP;
    db->nahead++;
    h->waiting = true;
    h->lost = false;
    *out = h;
unbound:
    reset_q(q);
    clear_binds(q);
    return rc;
}

/* A transaction's first row gets its id from its INSERT (*id 0): a lone row leaves no gap.
 * After it, blocks of ids, each fetched in one round trip, doubling up to IDS_MAX. */
/* The sequence named once per statement, not once per id (a catalog lookup each). */
#define IDS_SQL                                                                                              \
    "SELECT nextval(s) FROM (SELECT pg_get_serial_sequence($1, 'id')::regclass) AS t(s), "                   \
    "generate_series(1, $2) ORDER BY 1"
static qun_rc pg_take_id(qun_db_t *db, const char *table, int64_t *id, qun_err_t *err) {
    if (!db->in_txn || strlen(table) >= sizeof db->ids_table) return QUN_OK;
    if (strcmp(db->ids_table, table) != 0 && strcmp(db->want_table, table) != 0) ids_drop(db);
    if (db->ids_next == db->ids_n) {
        qun_q_t *q = strcmp(db->want_table, table) == 0 ? db->ids_ahead : NULL;
        if (q) {
            db->ids_ahead = NULL; /* read now: blocks after it are fetched as usual */
            if (db->ids_blocks < 2) db->ids_blocks = 2;
        } else if (db->ids_blocks++ == 0) {
            return QUN_OK;
        }
        qun_rc rc = QUN_OK;
        if (q)
            rc = pg_step(q, err);
        else
            rc = qun_db_run(db, &q, err, IDS_SQL, "si", table,
                            (int64_t)(db->ids_blocks > 5 ? IDS_MAX : IDS_FIRST << (db->ids_blocks - 2)));
        int n = 0;
        for (; rc == QUN_ROW && n < IDS_MAX; rc = pg_step(q, err))
            db->ids[n++] = pg_col_int(q, 0);
        if (rc == QUN_ROW) reset_q(q);
        if (rc != QUN_ROW && rc != QUN_DONE) return rc;
        if (n == 0) return qun_fail(err, QUN_STORE, "no ids from the sequence of %s", table);
        snprintf(db->ids_table, sizeof db->ids_table, "%s", table);
        db->ids_next = 0;
        db->ids_n = n;
    }
    *id = db->ids[db->ids_next++];
    return QUN_OK;
}

static void pg_ids_used(qun_db_t *db, const char *table) {
    if (strcmp(db->ids_table, table) == 0 || strcmp(db->want_table, table) == 0) ids_drop(db);
}

static void pg_expect_ids(qun_db_t *db, const char *table, int n) {
    if (!db->in_txn || n <= 0 || strlen(table) >= sizeof db->want_table) return;
    if (db->ids_want && strcmp(db->want_table, table) != 0) return; /* one table at a time */
    snprintf(db->want_table, sizeof db->want_table, "%s", table);
    db->ids_want = db->ids_want + n > IDS_MAX ? IDS_MAX : db->ids_want + n;
}

/* Sent only while no fetch is waiting to be read: the ids must come out in order. */
static void pg_send_expected(qun_db_t *db) {
    if (!db->in_txn || !db->ids_want || db->ids_ahead) return;
    int want = db->ids_want;
    db->ids_want = 0;
    qun_q_t *q, *h = NULL;
    qun_err_t ignore; /* pg_run_ahead sends what is held back first */
    if (pg_prepare(db, IDS_SQL, &q, &ignore) != QUN_OK) return;
    pg_bind_text(q, 1, db->want_table);
    pg_bind_int(q, 2, want);
    if (pg_run_ahead(q, &h, &ignore) == QUN_OK) db->ids_ahead = h; /* NULL: blocks as usual */
}

static int64_t pg_changes(qun_db_t *db) {
    return db->changes;
}

/* The writes sent ahead count as done: each changes one row, or its failure fails the
 * transaction (the writer compares this count around an operation). */
static int64_t pg_total_changes(qun_db_t *db) {
    int64_t n = db->total_changes;
    for (int i = 0; i < db->pending; i++)
        if (db->pending_kind[i] == PEND_ONE_ROW || db->pending_kind[i] == PEND_INSERT)
            n += db->pending_want[i];
    return n + db->rows_n + db->later_sets;
}

static void backoff(int attempt) {
    long ms = 20L << (attempt < 6 ? attempt : 6); /* 20 ms .. 1.3 s */
    ms += rand() % (ms / 2 + 1);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static qun_rc pg_txn(qun_db_t *db, qun_txn_fn fn, void *arg, qun_err_t *err) {
    qun_rc rc = QUN_CONFLICT_RETRY;
    for (int attempt = 0; attempt < 8 && (rc == QUN_CONFLICT_RETRY || rc == QUN_STORE_UNAVAILABLE);
         attempt++) {
        if (attempt) backoff(attempt - 1);
        rc = pg_exec(db, "BEGIN", err);
        if (rc != QUN_OK) continue;
        rc = fn(db, arg, err);
        if (rc == QUN_OK) rc = pg_exec(db, "COMMIT", err);
        if (rc != QUN_OK) {
            qun_err_t ignore;
            pg_exec(db, "ROLLBACK", &ignore);
        }
    }
    return rc;
}

static qun_rc pg_savepoint(qun_db_t *db, qun_err_t *err) {
    db->sp_mark = db->nheld;
    return pg_exec(db, "SAVEPOINT op", err);
}

static qun_rc pg_release(qun_db_t *db, bool keep, qun_err_t *err) {
    qun_rc rc = QUN_OK;
    if (!keep) {
        db->nheld = db->sp_mark < db->nheld ? db->sp_mark : db->nheld;
        ids_drop(db);
        rc = pg_exec(db, "ROLLBACK TO SAVEPOINT op", err);
    }
    if (rc == QUN_OK) rc = pg_exec(db, "RELEASE SAVEPOINT op", err);
    return rc;
}

/* Send sql (no parameters) ahead as kind, entering pipeline mode if need be. */
static bool send_sql_ahead(qun_db_t *db, const char *sql, int kind) {
    held_out(db);
    if (db->pending + 2 > PENDING_MAX) return false;
    if (!db->pending && PQenterPipelineMode(db->conn) != 1) return false;
    if (PQsendQueryParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 0) != 1) {
        if (!db->pending) PQexitPipelineMode(db->conn);
        return false;
    }
    db->pending_kind[db->pending++] = (unsigned char)kind;
    return true;
}

/* A read transaction costs no round trip of its own: its BEGIN goes with its first
 * statement, and its COMMIT, flushed with a sync, is answered with the next one (the
 * next request's BEGIN and first statement).  The snapshot is the first statement's,
 * as before. */
static qun_rc pg_read_begin(qun_db_t *db, qun_err_t *err) {
    db->ext.snapshot++;
    if (db->in_txn || PQstatus(db->conn) != CONNECTION_OK || !send_sql_ahead(db, READ_BEGIN, PEND_ANY))
        return pg_exec(db, READ_BEGIN, err);
    track_txn(db, READ_BEGIN);
    db->read_fresh = true;
    return QUN_OK;
}

static bool pg_read_live(qun_db_t *db) {
    return db->in_txn && db->reading && !db->failed;
}

static void pg_read_end(qun_db_t *db) {
    qun_err_t ignore;
    db->read_fresh = false;
    if (PQstatus(db->conn) == CONNECTION_OK && send_sql_ahead(db, "COMMIT", PEND_IGNORE)) {
        track_txn(db, "COMMIT");
        if (PQpipelineSync(db->conn) == 1) {
            db->pending_kind[db->pending++] = PEND_SYNC;
            return;
        }
        settle(db, &ignore); /* reads what it can; the connection is then made again */
        return;
    }
    if (pg_exec(db, "COMMIT", &ignore) != QUN_OK) pg_exec(db, "ROLLBACK", &ignore);
}

/* Whether the open transaction holds key already; if not, remember it will. */
static bool held(qun_db_t *db, int64_t key) {
    for (int i = 0; i < db->nheld; i++)
        if (db->held[i] == key) return true;
    return false;
}

static void hold(qun_db_t *db, int64_t key) {
    if (db->in_txn && db->nheld < (int)(sizeof db->held / sizeof db->held[0])) db->held[db->nheld++] = key;
}

/* The lock is sent ahead: the server takes it before it runs what follows, and the
 * transaction learns it has it with the next statement's answer. */
/* Send a lock statement ahead: sql with key as $1, or without parameters (key NULL). */
static qun_rc lock_ahead(qun_db_t *db, const char *sql, const int64_t *key, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = pg_prepare(db, sql, &q, err);
    if (rc != QUN_OK) return rc;
    if (key) pg_bind_int(q, 1, *key);
    return send_ahead(q, PEND_ANY, err);
}

static qun_rc pg_xlock(qun_db_t *db, int64_t key, qun_err_t *err) {
    if (db->in_txn && held(db, key)) return QUN_OK;
    /* Two shared batches asking for it whole would wait for each other: a bug to name. */
    if (db->in_txn && db->shared && key == QUN_LEDGER_LOCK)
        return qun_fail(err, QUN_INTERNAL, "an operation of a shared batch asked for the ledger lock");
    qun_rc rc = lock_ahead(db, "SELECT pg_advisory_xact_lock($1)", &key, err);
    if (rc == QUN_OK) hold(db, key);
    return rc;
}

/* The event frontier (include/qun/store.h; docs/architecture.md "The event frontier").
 * A transaction about to take event ids holds a shared advisory lock keyed by the
 * sequence's next value at that moment: its ids are all at or above the key.  The lock
 * uses the two-int4 form (objsubid 2 in pg_locks), which nothing else in qun uses, so
 * it never waits and never meets another lock; the key's 64 bits are split across the
 * two halves. */
#define FRONTIER_HELD INT64_MIN /* held()'s key for it: no advisory key of ours */
#define FRONTIER_NEXT                                                                                        \
    "(SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM events_id_seq)"
#define FRONTIER_LOCK_SQL                                                                                    \
    "SELECT pg_advisory_xact_lock_shared((n >> 32)::int4, ((n & 4294967295) - CASE WHEN n & 2147483648 = 0 " \
    "THEN 0 ELSE 4294967296 END)::int4) FROM " FRONTIER_NEXT " AS s(n)"
#define FRONTIER_LOCKS_SQL                                                                                   \
    "SELECT MIN((classid::int8 << 32) | objid::int8) FROM pg_locks WHERE locktype = 'advisory' AND "         \
    "objsubid = 2 AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = "  \
    "current_database())"

static qun_rc pg_event_order(qun_db_t *db, qun_err_t *err) {
    if (db->in_txn && held(db, FRONTIER_HELD)) return QUN_OK;
    qun_rc rc = lock_ahead(db, FRONTIER_LOCK_SQL, NULL, err);
    if (rc == QUN_OK) hold(db, FRONTIER_HELD);
    return rc;
}

/* One int8 (NULL: none) of a one-row statement. */
static qun_rc frontier_part(qun_db_t *db, const char *sql, int64_t *v, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = pg_prepare(db, sql, &q, err);
    if (rc == QUN_OK) rc = pg_step(q, err);
    if (rc == QUN_ROW && !pg_col_null(q, 0) && pg_col_int(q, 0) < *v) *v = pg_col_int(q, 0);
    if (rc == QUN_ROW) reset_q(q);
    return rc == QUN_ROW ? QUN_OK : rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no event frontier") : rc;
}

/* The sequence's next value first, then the locks: an id under that value was taken
 * before, after its transaction's lock, which is in pg_locks unless that transaction
 * has ended.  The connection's own lock does not count: its rows are its own.  Each
 * statement has a snapshot of its own (outside a read transaction): the reads that
 * follow see every transaction that ended before. */
static qun_rc pg_event_frontier(qun_db_t *db, int64_t *below, qun_err_t *err) {
    if (db->frontier_ok && db->in_txn) {
        *below = db->frontier;
        return QUN_OK;
    }
    bool again = db->in_txn && db->reading; /* its snapshot may be older than the frontier */
    if (again) pg_read_end(db);
    int64_t v = INT64_MAX;
    qun_rc rc = frontier_part(db, "SELECT " FRONTIER_NEXT, &v, err);
    if (rc == QUN_OK) rc = frontier_part(db, FRONTIER_LOCKS_SQL, &v, err);
    if (again) {
        qun_rc brc = pg_read_begin(db, err);
        if (rc == QUN_OK) rc = brc;
    }
    if (rc != QUN_OK) return rc;
    db->frontier = *below = v;
    db->frontier_ok = db->in_txn && db->reading;
    return QUN_OK;
}

/* BEGIN SHARED's lock (pg_exec). */
static qun_rc ledger_share(qun_db_t *db, qun_err_t *err) {
    qun_rc rc = lock_ahead(db, "SELECT pg_advisory_xact_lock_shared($1)", &(int64_t){QUN_LEDGER_LOCK}, err);
    if (rc == QUN_OK) db->shared = true;
    return rc;
}

/* A NOTIFY asked for inside a transaction goes out once it has committed, as a
 * transaction of its own that does not wait for its WAL flush (synchronous_commit off:
 * a wake-up, not data).  Sent inside, it made PostgreSQL serialize the commits of every
 * notifying transaction, flush included (the notification queue's lock is held through
 * the commit): each instance's batch waited for the others' flushes.  It is sent ahead
 * with a sync and read with the next statement.  A wake-up lost in between (qund dying
 * there) is made up by the listeners' 250 ms wake (src/http/events.c). */
#define NOTIFY_SQL "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')"
static void notify_send(qun_db_t *db) {
    db->notify_owed = false;
    db->notified_ms = qun_mono_ms();
    if (PQstatus(db->conn) != CONNECTION_OK || db->pending + 2 > PENDING_MAX) return;
    if (!db->pending && PQenterPipelineMode(db->conn) != 1) return;
    const char *vals[1] = {db->notify_to};
    if (PQsendQueryParams(db->conn, NOTIFY_SQL, 1, NULL, vals, NULL, NULL, 0) != 1) {
        if (!db->pending) PQexitPipelineMode(db->conn);
        return;
    }
    db->pending_kind[db->pending++] = PEND_IGNORE;
    if (PQpipelineSync(db->conn) == 1) db->pending_kind[db->pending++] = PEND_SYNC;
}

/* Even so, a NOTIFY per commit cost a third of what two instances post (the queue's
 * lock, a commit record, and every listener waking): one goes out at most every
 * NOTIFY_GAP_MS, and one owed meanwhile is sent by the next commit or by
 * qun_db_notify_owed, which the writer calls while it waits for work. */
#define NOTIFY_GAP_MS 5
static void notify_now(qun_db_t *db) {
    db->notify_due = false;
    if (qun_mono_ms() - db->notified_ms < NOTIFY_GAP_MS)
        db->notify_owed = true;
    else
        notify_send(db);
}

static int pg_notify_owed(qun_db_t *db) {
    if (!db->notify_owed) return 0;
    int64_t wait = db->notified_ms + NOTIFY_GAP_MS - qun_mono_ms();
    if (wait > 0 || db->in_txn) return wait > 0 ? (int)wait : 1;
    notify_send(db);
    return 0;
}

static qun_rc pg_notify(qun_db_t *db, const char *channel, qun_err_t *err) {
    if (strlen(channel) >= sizeof db->notify_to) return qun_fail(err, QUN_INTERNAL, "bad channel name");
    if (db->in_txn) {
        if (db->notify_due && strcmp(db->notify_to, channel) != 0)
            return qun_fail(err, QUN_INTERNAL, "one channel per transaction is notified");
        snprintf(db->notify_to, sizeof db->notify_to, "%s", channel);
        db->notify_due = true;
        return QUN_OK;
    }
    qun_q_t *q;
    qun_rc rc = pg_prepare(db, "SELECT pg_notify($1, '')", &q, err);
    if (rc != QUN_OK) return rc;
    pg_bind_text(q, 1, channel);
    return send_ahead(q, PEND_ANY, err); /* outside a transaction: at once */
}

static qun_rc send_listen(qun_db_t *db, qun_err_t *err) {
    char sql[64];
    snprintf(sql, sizeof sql, "LISTEN %s", db->listening);
    return pg_exec(db, sql, err);
}

static qun_rc pg_listen(qun_db_t *db, const char *channel, qun_err_t *err) {
    size_t n = strlen(channel);
    if (n == 0 || n >= sizeof db->listening || strspn(channel, "abcdefghijklmnopqrstuvwxyz_") != n)
        return qun_fail(err, QUN_INTERNAL, "bad channel name");
    memcpy(db->listening, channel, n + 1);
    return send_listen(db, err);
}

static qun_rc pg_wait_notify(qun_db_t *db, int timeout_ms, int stop_fd, bool *woken, qun_err_t *err) {
    *woken = false;
    struct pollfd p[2] = {{-1, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (PQstatus(db->conn) != CONNECTION_OK) {
        qun_rc rc = connect_db(db, err);
        if (rc == QUN_OK) rc = send_listen(db, err);
        if (rc != QUN_OK) {
            (void)poll(&p[1], 1, timeout_ms); /* the timeout, or less when stopped */
            return rc;
        }
        *woken = true; /* whatever was sent while we were away is lost: look */
        return QUN_OK;
    }
    p[0].fd = PQsocket(db->conn);
    if (p[0].fd < 0 || poll(p, 2, timeout_ms) < 0) return QUN_OK;
    if (p[0].revents && !PQconsumeInput(db->conn)) {
        return qun_fail(err, QUN_STORE_UNAVAILABLE, "postgres: listening connection lost: %.200s",
                        PQerrorMessage(db->conn));
    }
    PGnotify *note;
    while ((note = PQnotifies(db->conn))) {
        *woken = true;
        PQfreemem(note);
    }
    return QUN_OK;
}

static void pg_init(void) {}

const qun_store_ops_t qun_pg_ops = {
    .name = "postgres",
    .skip_locked = " FOR UPDATE SKIP LOCKED",
    .init = pg_init,
    .open = pg_open,
    .close = pg_close,
    .prepare = pg_prepare,
    .bind_int = pg_bind_int,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .col_int = pg_col_int,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .col_null = pg_col_null,
    .done = pg_done,
    .changes = pg_changes,
    .total_changes = pg_total_changes,
    .exec = pg_exec,
    .txn = pg_txn,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .read_begin = pg_read_begin,
    .read_live = pg_read_live,
    .read_end = pg_read_end,
    .xlock = pg_xlock,
    .event_order = pg_event_order,
    .event_frontier = pg_event_frontier,
    .step_nowait = pg_step_nowait,
    .run_ahead = pg_run_ahead,
    .take_id = pg_take_id,
    .ids_used = pg_ids_used,
    .expect_ids = pg_expect_ids,
    .set_later = pg_set_later,
    .later_value = pg_later_value,
    .txn_shared = pg_txn_shared,
    .txn_serial = pg_txn_serial,
    .send_expected = pg_send_expected,
    .notify = pg_notify,
    .notify_owed = pg_notify_owed,
    .listen = pg_listen,
    .wait_notify = pg_wait_notify,
};
