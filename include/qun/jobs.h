/* SPDX-License-Identifier: MIT */
/* Durable jobs: rows in `jobs` run by one scheduler thread when due, in bounded
 * batches through the group-commit writer.  A job's progress is written in the same
 * transaction as the work it counts, so a job killed at any point resumes where its
 * last commit left it and never counts or does anything twice. */
#ifndef QUN_JOBS_H
#define QUN_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "qun/errors.h"
#include "qun/store.h"
#include "qun/writer.h"

typedef struct qun_jobs qun_jobs_t;

/* One step of a job: do at most one batch of work inside the writer's transaction,
 * update the job's progress, and set *finished when nothing is left, or *defer to a
 * later time when the job must wait (e.g. a legal hold). */
typedef qun_rc (*qun_job_step_fn)(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id,
                                  bool *finished, int64_t *defer, qun_err_t *err);

/* Start the scheduler thread.  db_path: where it opens its read connection.  instance
 * names this process in job claims (unique among the processes sharing the database,
 * the same across its restarts); lease: seconds a claim holds without a step. */
qun_rc qun_jobs_start(const char *db_path, qun_writer_t *writer, int pause_ms, const char *instance,
                      int64_t lease, qun_jobs_t **out, qun_err_t *err);
void qun_jobs_stop(qun_jobs_t *j);
/* Wake the scheduler now (e.g. after queuing a due job). */
void qun_jobs_kick(qun_jobs_t *j);
/* Called every quarter second from a thread at normal priority (the first HTTP loop's
 * tick): when the scheduler, at SCHED_IDLE, owes progress it has not made for too long
 * (starved by busy cores), its work runs at QUN_GENTLE_NICE until it catches up. */
void qun_jobs_watch(qun_jobs_t *j);
/* How many times qun_jobs_watch hurried background work since start. */
uint64_t qun_jobs_hurries(void);
/* The COMMITs whose text the SQLite search index still holds hidden (migration 0039),
 * as the jobs thread last read it: 0 once a rewrite dropped them all. */
int64_t qun_jobs_search_hidden(void);

/* Pages of the search index a step of its rewrite writes (qun_db_search_scrub): about
 * 0.2 ms each, so a step holds the writer about as long as a purge step (64 pages took
 * 10 ms at p50 and 20 ms at p90; bench/README.md, "What the tombstones hide"). */
#define QUN_SCRUB_PAGES 16

/* Steps of the purge jobs (jobs/purge.c). */
qun_rc qun_purge_group_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id, bool *finished,
                            int64_t *defer, qun_err_t *err);
/* Whether the purge step just run asks for qun_db_scrub once its transaction
 * committed (the scheduler runs it); reading it clears it. */
bool qun_purge_take_scrub(void);
qun_rc qun_purge_payments_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id, bool *finished,
                               int64_t *defer, qun_err_t *err);
/* What housekeeping deleted since start, by kind (qun_housekeeping_kinds names them):
 * idempotency keys, confirmation tokens, event tickets, expired exports' files, unlinked
 * blob files, staged imports left behind. */
#define QUN_HK_KINDS 7
extern const char *const qun_housekeeping_kinds[QUN_HK_KINDS];
void qun_housekeeping_stats(uint64_t out[QUN_HK_KINDS]);
/* Unlink up to a batch of blob files whose last reference is gone. */
qun_rc qun_blob_unlink_queued(qun_db_t *db, int *unlinked, qun_err_t *err);

#endif
