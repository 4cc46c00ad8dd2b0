/* SPDX-License-Identifier: MIT */
/* The durable job queue: the `jobs` table, and the only code that writes its rows.
 * Core queues and cancels jobs through it, the scheduler (jobs/scheduler.c) claims,
 * steps and ends them through it, so a job's life — queued, running, done or failed,
 * held, claimed by one instance with a lease — is written in one place.  Job kinds are
 * an enum; their names are the `kind` column and what GET .../dissolution shows. */
#ifndef QUN_QUEUE_H
#define QUN_QUEUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/errors.h"
#include "qun/store.h"

/* X(enum suffix, stored name) */
#define QUN_JOB_KINDS(X)                                                                                     \
    X(PURGE_GROUP, "purge_group")                                                                            \
    X(PURGE_PAYMENTS, "purge_payments")                                                                      \
    X(DISSOLVE_DUE, "dissolve_due")                                                                          \
    X(APPROVAL_EXPIRY, "approval_expiry")                                                                    \
    X(EXPORT_GROUP, "export_group")                                                                          \
    X(NOTIFY_FANOUT, "notify_fanout")

typedef enum {
#define QUN_JOB_ENUM(e, name) QUN_JOB_##e,
    QUN_JOB_KINDS(QUN_JOB_ENUM)
#undef QUN_JOB_ENUM
        QUN_JOB_KIND_COUNT
} qun_job_kind;

/* The stored name of kind k ("purge_group"); NULL for a value out of range. */
const char *qun_job_kind_name(qun_job_kind k);
/* The kind named s into *k; false for a name this build does not know. */
bool qun_job_kind_parse(const char *s, qun_job_kind *k);

/* Queue a job of kind for group_id (0: none) and ref_id (the dissolution or export row
 * it works on), due at due_at, in the caller's transaction; its row id to *id (may be
 * NULL). */
qun_rc qun_queue_add(qun_db_t *db, qun_job_kind kind, int64_t group_id, int64_t ref_id, int64_t due_at,
                     int64_t *id, qun_err_t *err);

/* The purge jobs of group_id that wait for a released legal hold become due at now. */
qun_rc qun_queue_wake_held(qun_db_t *db, int64_t group_id, int64_t now, qun_err_t *err);
/* End the queued or running purge jobs of dissolution ref_id as done, with reason kept
 * as their last error (e.g. "restored"). */
qun_rc qun_queue_end_purges(qun_db_t *db, int64_t ref_id, const char *reason, qun_err_t *err);
/* Append the purge jobs of dissolution ref_id to the JSON array into, oldest first:
 * {kind, state, due_at, attempts, progress}. */
qun_rc qun_queue_list_purges(qun_db_t *db, int64_t ref_id, json_t *into, qun_err_t *err);

/* A job's progress object into *out (owned by the caller; an empty object when the
 * job has none).  A failed read is an error (QUN_NOMEM, a store error), never empty
 * progress: a step that started its counters over would count twice. */
qun_rc qun_queue_progress(qun_db_t *db, int64_t job_id, json_t **out, qun_err_t *err);
/* Replace a job's progress with p (borrowed), in the caller's transaction. */
qun_rc qun_queue_set_progress(qun_db_t *db, int64_t job_id, json_t *p, qun_err_t *err);

/* ---- the scheduler's side ---- */

/* A claimed job; started: a step of it ran before (it is `running`). */
typedef struct {
    int64_t id, group_id, ref_id, due_at;
    qun_job_kind kind;
    int attempts;
    bool started;
} qun_job_t;

/* The earliest due_at among the jobs instance may claim at now, 0 when there is none
 * (on a read connection: an idle scheduler costs no write transaction). */
qun_rc qun_queue_next_due(qun_db_t *db, const char *instance, int64_t now, int64_t *due, qun_err_t *err);
/* The earliest due_at that transactions on the calling thread queued or brought forward
 * since the last call, 0 when none; the writer hands it to the scheduler after each
 * commit.  A job whose savepoint rolled back only costs the scheduler a needless look. */
int64_t qun_queue_take_hint(void);
/* The ids (at most max) of the jobs of kind that transactions on the calling thread
 * queued due at once since the last call, and forget all of them: the writer's
 * before-commit hook runs their first step in the same transaction
 * (qun_writer_before_commit).  Ids whose savepoint rolled back are no rows any more. */
int qun_queue_take_due_now(qun_job_kind kind, int64_t *ids, int max);
/* Claim up to max due jobs nobody else holds for instance until now + lease, those not
 * started yet first, each part ordered by (due_at, id): a job just due goes before the
 * next step of a long one, however many long ones run.  The claimed jobs of known kinds
 * go to out[*n] in that order.  Another
 * instance's locked rows are skipped, never waited for, where the backend can. */
qun_rc qun_queue_claim(qun_db_t *db, const char *instance, int64_t now, int64_t lease, qun_job_t *out,
                       int max, int *n, qun_err_t *err);
/* Claim job id for instance until now + lease if it is due and nobody else holds it:
 * *mine, and the job to *job. */
qun_rc qun_queue_claim_one(qun_db_t *db, int64_t id, const char *instance, int64_t now, int64_t lease,
                           qun_job_t *job, bool *mine, qun_err_t *err);
/* Start a step of job id: running, the claim renewed until until, if instance still
 * holds it; *mine false when the job ended or another instance took it over. */
qun_rc qun_queue_begin_step(qun_db_t *db, int64_t id, const char *instance, int64_t until, bool *mine,
                            qun_err_t *err);
/* The job waits until due_at (e.g. for a legal hold's release): queued, unclaimed. */
qun_rc qun_queue_defer(qun_db_t *db, int64_t id, int64_t due_at, qun_err_t *err);
/* The job is done (claimed_by stays: which instance finished it). */
qun_rc qun_queue_done(qun_db_t *db, int64_t id, int64_t now, qun_err_t *err);
/* A step failed with msg: retried after 2^attempts seconds, or `failed` after
 * max_attempts. */
qun_rc qun_queue_fail(qun_db_t *db, int64_t id, int attempts, const char *msg, int max_attempts, int64_t now,
                      qun_err_t *err);

#endif
