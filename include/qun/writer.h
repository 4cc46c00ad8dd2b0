/* SPDX-License-Identifier: MIT */
/* The group-commit writer: one thread owns the write connection and runs every
 * write of the process.  Operations queued while a commit is in flight are run
 * together, each inside its own savepoint, and share one durable COMMIT (one fsync)
 * instead of paying one each.  An operation's done callback runs on the writer
 * thread only after its outcome is durable (or failed); it must hand off quickly. */
#ifndef QUN_WRITER_H
#define QUN_WRITER_H

#include <stdint.h>

#include "qun/errors.h"
#include "qun/store.h"

typedef struct qun_wop qun_wop_t;
struct qun_wop {
    /* Runs inside a savepoint on the writer thread; QUN_OK keeps its changes. */
    qun_rc (*fn)(qun_db_t *db, void *arg, qun_err_t *err);
    /* Called after the batch's commit with the final rc (fn's, or the commit's error). */
    void (*done)(qun_wop_t *op);
    void *arg;
    /* Set by the submitter when fn makes every check before its first write and, once
     * it has written, fails only when the store does (a message post): the writer runs
     * it without a savepoint of its own, which saves copying the old image of every
     * page it changes (two round trips on PostgreSQL).  A refusal that wrote nothing
     * (a 4xx rc, the row count unchanged) costs the batch nothing.  Should it fail
     * after writing, or with a 5xx rc, its half cannot be taken back alone: the batch's
     * transaction is rolled back and every operation of it fails, as when a COMMIT
     * fails. */
    bool unguarded;
    /* Optional, for an unguarded fn: send now what fn will read (qun_db_run_ahead), in
     * the batch's transaction.  The writer calls it for a run of consecutive operations
     * that have it (up to 64), in their order, before it runs the first of them, so the
     * run's reads cost one round trip on PostgreSQL.  What it sends executes before the
     * run's writes: it may read only what those writes cannot change, and it may write
     * only what fn would write first, and only when fn's checks will pass. */
    void (*ahead)(qun_db_t *db, void *arg);
    /* Optional: set when fn takes no store-wide lock (qun_db_xlock) and, among row locks,
     * only that of the row this key names (a post: its group's).  A batch of such
     * operations alone may run beside other instances' (on PostgreSQL, BEGIN SHARED:
     * the ledger lock in share mode), its operations in key order, so that two such
     * batches lock their rows in one order and never wait for each other in a circle.
     * Operations of one key keep their order. */
    const char *shares_key;
    /* Set by the submitter for work nobody waits on (a job's step): a batch of such
     * operations alone runs at the lowest CPU priority (qun_writer_yield), and an
     * operation without it, queued meanwhile, lifts the writer back at once. */
    bool background;
    qun_rc rc;
    qun_err_t err;
    qun_wop_t *next;
};

typedef struct qun_writer qun_writer_t;

/* Start the writer thread on db, which it takes over.  max_batch bounds the number
 * of operations per commit. */
qun_rc qun_writer_start(qun_db_t *db, int max_batch, qun_writer_t **out, qun_err_t *err);
/* Drain the queue, stop the thread and close its connection. */
void qun_writer_stop(qun_writer_t *w);
/* Queue op (caller-owned, must live until op->done runs). */
void qun_writer_submit(qun_writer_t *w, qun_wop_t *op);
/* Queue fn and wait for its durable outcome; for background threads (jobs). */
qun_rc qun_writer_run(qun_writer_t *w, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *), void *arg,
                      qun_err_t *err);
/* The same for work nobody waits on (qun_wop_t.background): a job's step. */
qun_rc qun_writer_run_background(qun_writer_t *w, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *), void *arg,
                                 qun_err_t *err);
/* Whether background batches run at SCHED_IDLE, so that the HTTP loops and foreground
 * writes take the cores first (a purge's batches otherwise hold a loop's core for a
 * scheduler slice at a time).  Asked for with on; true only when the process may also
 * return the thread to normal priority (root, CAP_SYS_NICE, or RLIMIT_NICE of 20 or
 * more), which is tried once on a throwaway thread: a writer left at SCHED_IDLE would
 * starve behind any busy process. */
bool qun_writer_yield(qun_writer_t *w, bool on);
/* The nice value of background work that waited too long for a CPU at SCHED_IDLE, and of
 * an export (somebody waits for it): about a tenth of a busy core's turns against a
 * thread at nice 0, so it yields most of the CPU and is never starved. */
#define QUN_GENTLE_NICE 10
/* Run background batches at QUN_GENTLE_NICE (on) or at SCHED_IDLE again (off), the one
 * running now too; for the job scheduler, when its work waited too long (jobs.h,
 * qun_jobs_watch).  Nothing changes unless background work yields. */
void qun_writer_hurry(qun_writer_t *w, bool on);
/* What the last qun_writer_yield settled: the threads that feed the writer background
 * work (the job scheduler) may then run at SCHED_IDLE themselves. */
bool qun_writer_yields(qun_writer_t *w);
/* Whether an operation that is not background work was queued to a writer of this
 * process in the last ms milliseconds: people are writing, so background steps keep short. */
bool qun_writer_foreground_within(int64_t ms);
/* Call fn(arg) on the writer thread after every successful COMMIT, once the batch's
 * done callbacks ran (NULL fn: none): a loop answers a write before it fans out the
 * events the write appended.  fn must be quick and thread-safe: it is how the HTTP
 * loops learn that new events are durable. */
void qun_writer_on_commit(qun_writer_t *w, void (*fn)(void *arg), void *arg);
/* Call fn(arg, due_at) on the writer thread after a COMMIT that queued a job or brought
 * one forward, with the earliest such due time (NULL fn: none): the scheduler wakes
 * for it instead of waiting for its next look.  fn runs with the writer's lock held (so
 * once on_job(NULL) returns the old fn is never called again): quick, and it must not
 * submit to the writer. */
void qun_writer_on_job(qun_writer_t *w, void (*fn)(void *arg, int64_t due_at), void *arg);
/* Call fn(db, arg) on the writer thread before each COMMIT, after the batch's operations,
 * in their transaction (NULL fn: none; setting NULL returns once no batch uses the old
 * fn).  fn undoes its own failures (a savepoint) and returns an error only when the
 * transaction itself broke, which fails the batch.  The scheduler marks a dissolution
 * due at once here, in the commit of the request that made it due. */
void qun_writer_before_commit(qun_writer_t *w, qun_rc (*fn)(qun_db_t *db, void *arg, qun_err_t *err),
                              void *arg);
/* Counters for /metrics. */
void qun_writer_stats(qun_writer_t *w, uint64_t *commits, uint64_t *ops, uint64_t *failed);

#endif
