/* SPDX-License-Identifier: MIT */
/* The storage interface: connections, prepared queries with $N parameters, and
 * transactions.  One interface, one implementation per backend (store_sqlite.c and
 * store_pg.c, picked by store.c from the connection string).  SQL handed to it must be
 * accepted by both backends: `$1` parameters, RETURNING, ON CONFLICT; DDL lives per
 * backend under src/store/sql/.
 *
 * Stepping a query returns QUN_ROW (a row is readable), QUN_DONE (no more rows),
 * QUN_CONFLICT_RETRY (busy / serialization failure: the whole transaction may be
 * retried), QUN_STORE_UNAVAILABLE (the database server cannot be reached, or the
 * connection was lost: the transaction is gone; it may be retried once the server is
 * back) or another error.  Connections are not thread-safe: one per thread. */
#ifndef QUN_STORE_H
#define QUN_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "qun/errors.h"

typedef struct qun_db qun_db_t; /* a connection */
typedef struct qun_q qun_q_t;   /* a prepared query, owned by its connection */

/* Open a connection to the store named by path: a SQLite file as a path or
 * `sqlite:PATH` (":memory:" for tests), or a PostgreSQL database as a `postgres://` or
 * `postgresql://` URL.  readonly connections refuse writes.  Applies migrations when migrate is true.  On
 * success *out is owned by the caller (qun_db_close). */
qun_rc qun_db_open(const char *path, bool readonly, bool migrate, qun_db_t **out, qun_err_t *err);
/* Close a connection and finalize its queries.  NULL is accepted. */
void qun_db_close(qun_db_t *db);
/* Whether db was opened read-only: it never holds uncommitted writes of its own, so
 * whatever it reads was committed. */
bool qun_db_readonly(qun_db_t *db);
/* The connection string db was opened with, as given (borrowed, lives as long as db);
 * NULL if memory was short.  Connections opened with the same string reach the same
 * database, except ":memory:", which is a new one each time. */
const char *qun_db_name(qun_db_t *db);
/* The objects layers above the store keep per connection, one per slot: _get borrows
 * it (NULL when none); _set hands it over, and aux_free(aux) runs when the connection
 * closes.  Like the connection, not thread-safe. */
typedef enum {
    QUN_AUX_LEDGER, /* the reference to the cache of subtree hashes (src/ledger/ledger.c) */
    QUN_AUX_UNREAD, /* the unread counts last counted (src/core/read.c) */
    QUN_AUX_FEED,   /* the feed's last id and horizon in the open snapshot (src/core/event.c) */
    QUN_AUX_WINDOW, /* the messages a woken sync rendered in it (src/http/h_matrix_sync.c) */
    QUN_AUX_ROOM,   /* the room row read last in it, without the role (src/core/matrix_view.c) */
    QUN_AUX_SLOTS
} qun_aux_slot;
void *qun_db_aux_get(qun_db_t *db, qun_aux_slot slot);
void qun_db_aux_set(qun_db_t *db, qun_aux_slot slot, void *aux, void (*aux_free)(void *aux));
/* The object in slot, or, when it holds none, size zeroed bytes hung there (freed with
 * aux_free); NULL when memory is short, and the caller goes without. */
void *qun_db_aux_zeroed(qun_db_t *db, qun_aux_slot slot, size_t size, void (*aux_free)(void *aux));
/* Schema version after migrations. */
int qun_db_schema_version(qun_db_t *db);
/* Whether db answers a trivial query (readiness): QUN_OK, or the error that kept it
 * from answering (detail in err). */
qun_rc qun_db_ping(qun_db_t *db, qun_err_t *err);

/* Borrow the cached prepared query for sql.  sql must be a string literal (or
 * otherwise live as long as db): the cache is keyed by its address.  The query is
 * reset and its bindings cleared. */
qun_rc qun_q_prepare(qun_db_t *db, const char *sql, qun_q_t **out, qun_err_t *err);
/* Bind parameter $idx (1-based). Text and blob are copied. */
void qun_q_int(qun_q_t *q, int idx, int64_t v);
void qun_q_text(qun_q_t *q, int idx, const char *s); /* NULL binds SQL NULL */
void qun_q_blob(qun_q_t *q, int idx, const void *p, size_t n);
void qun_q_null(qun_q_t *q, int idx);
/* Advance: QUN_ROW, QUN_DONE, or an error (detail in err). */
qun_rc qun_q_step(qun_q_t *q, qun_err_t *err);
/* Column readers for the current row (0-based).  Text is borrowed until the next step. */
int64_t qun_q_col_int(qun_q_t *q, int col);
const char *qun_q_col_text(qun_q_t *q, int col); /* "" for NULL */
const void *qun_q_col_blob(qun_q_t *q, int col, size_t *n);
bool qun_q_col_null(qun_q_t *q, int col);
/* Reset a query so its connection may start another statement on it. */
void qun_q_done(qun_q_t *q);
/* Rows changed by the last completed statement on db. */
int64_t qun_db_changes(qun_db_t *db);
/* Rows inserted, updated or deleted by every statement completed on db since it was
 * opened: an unchanged count means nothing was written in between (the writer tells
 * an operation refused by its checks from one that failed half-way, writer.h). */
int64_t qun_db_total_changes(qun_db_t *db);

/* Run sql with no parameters (DDL, BEGIN, COMMIT ...). */
qun_rc qun_db_exec(qun_db_t *db, const char *sql, qun_err_t *err);

/* Run fn(db, arg, err) inside one transaction; commit when it returns QUN_OK, roll back
 * otherwise.  Conflicts (and, on PostgreSQL, a lost server) are retried a bounded
 * number of times with backoff. */
typedef qun_rc (*qun_txn_fn)(qun_db_t *db, void *arg, qun_err_t *err);
qun_rc qun_db_txn(qun_db_t *db, qun_txn_fn fn, void *arg, qun_err_t *err);

/* Savepoints inside an open transaction (used by the group-commit writer). */
qun_rc qun_db_savepoint(qun_db_t *db, qun_err_t *err);
qun_rc qun_db_release(qun_db_t *db, bool keep, qun_err_t *err);

/* One read transaction around a request's reads on a reader connection: one snapshot
 * (SQLite's WAL snapshot, PostgreSQL's REPEATABLE READ: consistent answers) and one
 * round trip to begin it instead of one per query.  They nest: a read begun inside
 * another shares its snapshot (several parked requests answered by one wake), unless a
 * failure ended that transaction, and only the outermost end ends it. */
qun_rc qun_db_read_begin(qun_db_t *db, qun_err_t *err);
void qun_db_read_end(qun_db_t *db);
/* Which snapshot the open read transaction reads: equal values, equal answers, so what
 * was read in it may be kept for it; 0 outside one. */
uint64_t qun_db_read_snapshot(qun_db_t *db);
/* Inside the open transaction, wait until no other connection's transaction holds
 * key, and hold it until this transaction ends (PostgreSQL: pg_advisory_xact_lock, so
 * several qund sharing one database serialize, e.g., ledger appends).  A no-op on
 * SQLite, whose single writer already serializes every write. */
qun_rc qun_db_xlock(qun_db_t *db, int64_t key, qun_err_t *err);
#define QUN_LEDGER_LOCK 0x71756e01 /* the ledger's appends, and the writer's batches */
#define QUN_IDEM_LOCK 0x71756e02   /* high bits of an Idempotency-Key's lock (router.c) */

/* The event feed's order with several writers (PostgreSQL, docs/architecture.md "The event
 * frontier").  Event ids come from one sequence but commit in any order, so a reader
 * must not pass an id whose transaction is still open.  qun_db_event_order, in a
 * transaction, before its first event id is taken: marks the transaction as one that
 * may hold ids from the sequence's current value on (a shared lock nobody waits for).
 * qun_db_event_frontier: *below (INT64_MAX on SQLite) such that every event id under it
 * belongs to a transaction that has ended, so the events a reader sees under it are all
 * there will ever be.  In a read transaction that began without it, the transaction
 * begins again after it (a new snapshot, which then sees every id under *below). */
qun_rc qun_db_event_order(qun_db_t *db, qun_err_t *err);
qun_rc qun_db_event_frontier(qun_db_t *db, int64_t *below, qun_err_t *err);

/* Outside any transaction, make what was deleted unrecoverable from the database's
 * own files, as far as the backend allows (a purge calls it when it ends).  SQLite
 * zeroes deleted content as it deletes (secure_delete) and keeps old page images only
 * in its WAL: this checkpoints the WAL and truncates it to zero bytes (QUN_CONFLICT_RETRY
 * when a reader's snapshot kept it from finishing).  A no-op on PostgreSQL, whose dead
 * rows go with VACUUM (docs/postgres.md). */
qun_rc qun_db_scrub(qun_db_t *db, qun_err_t *err);
/* How many qun_db_scrub calls succeeded in this process. */
uint64_t qun_db_scrubs(void);
/* A write that took text away from a row it keeps (a recall) asks for a qun_db_scrub
 * soon: the row's old page images stay in the SQLite WAL until it starts over.
 * qun_db_take_scrub_owed: whether one was asked for since, clearing it. */
void qun_db_scrub_later(void);
bool qun_db_take_scrub_owed(void);
/* Copy the whole database, as of one commit, into a new file at path (SQLite's online
 * backup: writers carry on meanwhile); not synced.  QUN_INTERNAL on PostgreSQL. */
qun_rc qun_db_copy_to(qun_db_t *db, const char *path, qun_err_t *err);
/* The backend's name: "sqlite" or "postgres" (static). */
const char *qun_db_backend(qun_db_t *db);
/* Whether the store locks rows, so that a read a write will follow must lock what it read
 * (`FOR UPDATE`) against other writers (PostgreSQL); SQLite's one writer needs none. */
bool qun_db_locks_rows(qun_db_t *db);
/* Whether qun_db_run_ahead sends anything on this store (PostgreSQL): where it does not,
 * preparing reads ahead is wasted work. */
bool qun_db_runs_ahead(qun_db_t *db);
/* Inside the open transaction, signal channel to every listening connection once it
 * has committed (PostgreSQL NOTIFY, sent after the COMMIT; the same signal twice in one
 * transaction is sent once; one channel per transaction).
 * A no-op on SQLite, where one process owns the database. */
qun_rc qun_db_notify(qun_db_t *db, const char *channel, qun_err_t *err);
/* PostgreSQL sends a committed transaction's notification after the commit, at most
 * one every few milliseconds per connection; one owed meanwhile goes with the next
 * commit or with this call, outside a transaction, once its time has come.  Returns the
 * milliseconds until an owed one is due (0: none owed, or it was just sent).  The
 * writer calls it while it waits for work; other connections' owed ones are made up by
 * the listeners' 250 ms wake. */
int qun_db_notify_owed(qun_db_t *db);
/* Make db (a connection of its own, outside any transaction) listen on channel.
 * QUN_INTERNAL on SQLite, which has no notifications. */
qun_rc qun_db_listen(qun_db_t *db, const char *channel, qun_err_t *err);
/* Wait up to timeout_ms for a notification on a listening connection.  *woken is set
 * when one (or several) arrived, and also after the connection had to be made again,
 * since notifications sent meanwhile are lost: the caller should look for news.
 * A lost server is reported as QUN_STORE_UNAVAILABLE after the timeout.  stop_fd, unless
 * -1, ends the wait at once when it becomes readable: the caller's way to stop the
 * waiting thread without waiting out the timeout. */
qun_rc qun_db_wait_notify(qun_db_t *db, int timeout_ms, int stop_fd, bool *woken, qun_err_t *err);
/* Whether the backend the connection string conn names delivers notifications between
 * processes (qun_db_listen works): true for PostgreSQL, false for SQLite.  Callers ask
 * this instead of looking at the string, so only the store knows backend dialects. */
bool qun_store_listens(const char *conn);
/* Copy an installation: every row of every table of the SQLite database `from`
 * ("sqlite:PATH", opened read-only, read in one snapshot) into the PostgreSQL database
 * `to` (a postgres:// URL; migrated to this version first), in one transaction that
 * commits only if everything was copied.  The target's tables must be empty and both
 * at the same schema version.  report (may be NULL) is called with each table's row
 * count as it is done.  QUN_BAD_REQUEST for a refused pair, with the reason in err. */
typedef void (*qun_copy_report_fn)(void *arg, const char *table, int64_t rows);
qun_rc qun_store_copy(const char *from, const char *to, qun_copy_report_fn report, void *arg, qun_err_t *err);
/* Process-wide store settings; call once before opening any connection. */
void qun_store_init(void);

/* Convenience: prepare+bind by printf-like type string and step once.
 * types: one char per parameter: 'i' int64_t, 'z' int64_t bound as NULL when 0,
 * 's' const char * (NULL binds NULL), 'n' NULL (consumes no argument).
 * Returns QUN_ROW (row readable on *out, call qun_q_done when finished), QUN_DONE or error. */
qun_rc qun_db_run(qun_db_t *db, qun_q_t **out, qun_err_t *err, const char *sql, const char *types, ...);
/* qun_db_run of a write that changes exactly one row and whose outcome the caller does
 * not read and that only a failing store can make fail, inside a transaction that may
 * then fail as a whole (the writer's unguarded operations, an event row with an id taken
 * ahead: docs/architecture.md).  PostgreSQL sends it without waiting (libpq's
 * pipeline mode) and reads its answer with the next statement's, in the same round
 * trip: a failure, or a count other than one row, then fails that next call (a COMMIT
 * rolls back).  An INSERT of one VALUES row of parameters that does nothing else is
 * held back while more of the same follow, and they go as one statement before the
 * next other statement (docs/postgres.md); a COMMIT may ride with it.  SQLite runs it
 * at once.  QUN_OK or an error. */
qun_rc qun_db_run_nowait(qun_db_t *db, qun_err_t *err, const char *sql, const char *types, ...);
/* An INSERT of one row that lets the table assign its integer key `id`; *id the key.
 * sql carries no RETURNING and returning is the same statement followed by
 * " RETURNING id": QUN_DB_INSERT_ID writes both from one literal.  SQLite runs sql and
 * reads the connection's last rowid (its RETURNING fills a temporary table for every
 * statement: 1.6 µs of a 4.4 µs event row, bench/README.md); PostgreSQL runs returning.
 * A statement that writes no row (or more than one) fails with QUN_STORE. */
qun_rc qun_db_insert_id(qun_db_t *db, int64_t *id, qun_err_t *err, const char *sql, const char *returning,
                        const char *types, ...);
#define QUN_DB_INSERT_ID(db, id, err, sql, types, ...)                                                       \
    qun_db_insert_id(db, id, err, sql, sql " RETURNING id", types, __VA_ARGS__)
/* A statement sent now whose rows are read later, inside a transaction: PostgreSQL sends
 * it without waiting (libpq's pipeline mode), the server runs it after everything sent
 * before it, and its rows come back with the next answer the connection waits for, so
 * the reads of a run of operations cost one round trip, not one each (qun_wop_t.ahead).
 * *out is a handle the transaction owns: qun_q_step it (the first step answers QUN_ROW
 * or QUN_DONE, as qun_db_run would have), qun_q_done it, and never touch it after the
 * transaction ends.  Should the statement fail, the call that reads its answer fails
 * (which may be another statement's), as for qun_db_run_nowait.  QUN_OK with *out NULL:
 * nothing was sent (SQLite, outside a transaction, or 144 handles in this transaction
 * already); run the statement when its rows are needed. */
qun_rc qun_db_run_ahead(qun_db_t *db, qun_q_t **out, qun_err_t *err, const char *sql, const char *types, ...);
/* An id for the next row of table (its `id` identity column) taken before the INSERT, so
 * the INSERT needs no RETURNING and can go through qun_db_run_nowait.  *id 0: let the
 * INSERT assign it and return it (SQLite always, where that costs no round trip; and a
 * transaction's first row on PostgreSQL, so a lone row leaves no gap).  PostgreSQL takes
 * ids in blocks (8, then twice as many each time, at most 128) in one round trip each;
 * those the transaction does not use are gaps, never reused.  Call it inside the
 * transaction after any lock that orders the table's ids: the block is dropped when the
 * transaction ends or rolls back to a savepoint. */
qun_rc qun_db_take_id(qun_db_t *db, const char *table, int64_t *id, qun_err_t *err);
/* Rows of table were just inserted with ids of the table's own (a multi-row INSERT ...
 * SELECT): the ids taken ahead before them are dropped, so that rows inserted after them
 * get higher ids, in the order they are written. */
void qun_db_ids_used(qun_db_t *db, const char *table);
/* The operations whose reads a writer sends ahead (qun_wop_t.ahead) announce the ids
 * they will take: qun_db_expect_ids, after the lock that orders the table's ids (for
 * events, qun_db_event_order), adds n to the open transaction's count; once the run's
 * reads are sent, qun_db_send_expected sends one statement that fetches that many ids
 * (at most 128) behind them, so the reads and the ids cost one round trip together and
 * no operation waits for a block of its own.  qun_db_take_id hands them out first, in
 * order.  Nothing on SQLite, nor outside a transaction. */
void qun_db_expect_ids(qun_db_t *db, const char *table, int n);
void qun_db_send_expected(qun_db_t *db);
/* Inside the open transaction, set a value of a row the transaction holds locked: sql is
 * an UPDATE of that one row ($1 its key, $2 the value; the address of the literal names
 * it).  PostgreSQL writes it before the transaction's next statement goes (its COMMIT
 * included), and a value set again for the same key before then is written once, the
 * last; qun_db_later_value answers the last value set for the key in this transaction.
 * Its count of changed rows is not checked: the row must exist.  Values set in a
 * transaction that then rolls back to a savepoint keep it from committing.  SQLite
 * runs it at once. */
qun_rc qun_db_set_later(qun_db_t *db, const char *sql, int64_t key, int64_t value, qun_err_t *err);
bool qun_db_later_value(qun_db_t *db, const char *sql, int64_t key, int64_t *value);
/* Whether the open transaction began as BEGIN SHARED (the writer's batch of posts sent
 * ahead alone, qun_wop_t.shares_key in writer.h); never on SQLite. */
bool qun_db_txn_shared(qun_db_t *db);
/* A number that changes with every transaction the connection begins (PostgreSQL; 0 on
 * SQLite): what lets state kept beside a transaction know it is stale. */
uint64_t qun_db_txn_serial(qun_db_t *db);

/* ---- message search (store/search.c) ---- */
/* Needles of fewer characters than this are not looked up in the text index (a trigram
 * index holds nothing for them): the group's rows are scanned, a window at a time. */
#define QUN_SEARCH_INDEXED 3
/* The rows one windowed scan covers: a short needle's page costs at most this many rows. */
#define QUN_SEARCH_WINDOW 50000
/* SQLite: new text messages wait above the index's watermark until a COMMIT finds this many
 * (setting `search_batch`, default 1024), then one FTS5 statement indexes them all; a
 * search reads the waiting ones' text directly. */
extern int qun_search_batch;
/* The most ids above the watermark one COMMIT indexes (a bulk load catches up over many):
 * 4096, or four batches when search_batch is larger. */
#define QUN_SEARCH_CATCHUP (qun_search_batch > 1024 ? 4 * (int64_t)qun_search_batch : 4096)
/* SQLite: how many message ids wait above the index's watermark (0 on PostgreSQL, whose
 * copies are made apart, qun_db_search_copy).  The jobs thread commits while this is
 * qun_search_batch or more, so a bulk load gets indexed though nobody writes. */
qun_rc qun_db_search_backlog(qun_db_t *db, int64_t *n, qun_err_t *err);
/* SQLite: merge the search index's segments, about pages pages of merged data at most
 * (FTS5's 'merge'); *more when it did some, so the caller asks again.  The COMMITs that
 * write the index never merge (migration 0038): the job thread calls this as background
 * work while qun_search_unmerged() says a COMMIT wrote since the index was last found
 * merged.  A no-op on PostgreSQL. */
qun_rc qun_db_search_merge(qun_db_t *db, int pages, bool *more, qun_err_t *err);
/* Whether a COMMIT of this process wrote to the search index since qun_db_search_merge
 * last found nothing to merge. */
bool qun_search_unmerged(void);
/* One bounded step (about pages pages written) of rewriting the SQLite search index so
 * that text taken out of it is gone from the file, not only hidden (migration 0039):
 * FTS5 keeps a deleted entry beside its tombstone until both meet at the oldest level.
 * A step begins a rewrite when a COMMIT took text out since the last one began, and
 * continues the one under way otherwise.  *covered: the COMMITs counted so far whose
 * text is gone for good (compare qun_db_search_gone); INT64_MAX on PostgreSQL, where
 * there is nothing to do. */
qun_rc qun_db_search_scrub(qun_db_t *db, int pages, int64_t *covered, qun_err_t *err);
/* The COMMITs so far that took text out of the search index, and how many of them the
 * last finished rewrite covers (both 0 on PostgreSQL). */
qun_rc qun_db_search_gone(qun_db_t *db, int64_t *gone, int64_t *scrubbed, qun_err_t *err);
/* PostgreSQL: text messages are copied, a slice at a time, into message_search, which
 * holds the pg_trgm index (migration 0043), by a connection of their own beside the
 * writer; search_state.indexed_to is the id below which every text message has its copy.
 * A step reads the newest message id, waits (about 100 ms at most) for the transactions
 * then open that could still commit a message under it, copies the text messages up to
 * it (up to limit of them) and raises the watermark over them; it does nothing when
 * those transactions outlast the wait, or another copier is at work (one at a time,
 * QUN_SEARCH_COPY_LOCK).  *more when it stopped at limit: ask again soon.  A no-op on
 * SQLite. */
#define QUN_SEARCH_COPY_LOCK 0x71756e03 /* pg_try_advisory_lock, held for a step */
qun_rc qun_db_search_copy(qun_db_t *db, int limit, bool *more, qun_err_t *err);
/* The seqs of group_id's text messages whose body contains needle (valid UTF-8, no
 * control characters, case-folded by the backend: ASCII at least), newest first, with
 * seq < before (0: from the newest): at most limit (1 to 200) of them into seqs[], their
 * count into *n.  *next is where the following page starts (seq < *next), 0 when the
 * search has reached the group's first message.  A needle of 3 characters or more goes
 * through the backend's text index (SQLite FTS5 trigram, PostgreSQL pg_trgm on the copies,
 * and the messages not copied yet by their text); a shorter
 * one scans at most QUN_SEARCH_WINDOW rows below before, so a page may hold fewer than
 * limit matches (even none) while *next is set.  Returns QUN_OK or a store error. */
qun_rc qun_db_search(qun_db_t *db, int64_t group_id, const char *needle, int64_t before, int limit,
                     int64_t *seqs, int *n, int64_t *next, qun_err_t *err);

#endif
