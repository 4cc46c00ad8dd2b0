/* SPDX-License-Identifier: MIT */
/* The job scheduler: one thread that finds due jobs and runs them to completion,
 * one step (one transaction on the writer) at a time, pausing between steps so a big
 * purge never starves interactive writes.  A failing step is retried with
 * exponential backoff and the error kept on the row; after 10 attempts the job is
 * `failed` and stays visible.  Jobs left `running` by a crash simply resume.
 *
 * Several qund may share one PostgreSQL database: an instance claims a handful of due
 * jobs at a time (claimed_by = its id, claimed_until = now + lease, FOR UPDATE SKIP
 * LOCKED so two claims never wait on each other) and renews the lease with every
 * step.  Each step is one writer transaction that first updates the job's row where
 * the claim is still its own, so a step runs once even when a lease ran out under a
 * slow instance and another took the job over.  A crashed instance's claims expire
 * after the lease; the same instance restarted (same id) takes its own back at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/export.h"
#include "qun/jobs.h"
#include "qun/matrix.h"
#include "qun/queue.h"
#include "qun/util.h"

#define MAX_ATTEMPTS 10

struct qun_jobs {
    qun_db_t *db;
    qun_writer_t *writer;
    int pause_ms;
    int64_t lease;      /* seconds a claim lasts without a step renewing it */
    char instance[128]; /* claimed_by of this process's claims */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping, kicked;
};

/* The dissolution timer: mark the group dissolved when its delay is over. */
static qun_rc dissolve_due_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id,
                                bool *finished, int64_t *defer, qun_err_t *err) {
    bool marked;
    *finished = true;
    return qun_diss_mark_due(db, ref_id, &marked, err);
}

/* Open approvals of a dissolution expire together. */
static qun_rc approval_expiry_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id,
                                   bool *finished, int64_t *defer, qun_err_t *err) {
    *finished = true;
    return qun_approvals_expire(db, ref_id, err);
}

/* The step of each job kind (include/qun/queue.h). */
static const qun_job_step_fn steps[QUN_JOB_KIND_COUNT] = {
    [QUN_JOB_PURGE_GROUP] = qun_purge_group_step,   [QUN_JOB_PURGE_PAYMENTS] = qun_purge_payments_step,
    [QUN_JOB_DISSOLVE_DUE] = dissolve_due_step,     [QUN_JOB_APPROVAL_EXPIRY] = approval_expiry_step,
    [QUN_JOB_EXPORT_GROUP] = qun_export_group_step,
};

typedef struct {
    qun_job_t job;
    int64_t defer;
    bool finished;
    const qun_jobs_t *j;
} run_t;

static qun_rc step_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    run_t *r = arg;
    /* The claim check makes a job taken over after a lapsed lease stop here. */
    bool mine;
    qun_rc rc = qun_queue_begin_step(db, r->job.id, r->j->instance, qun_now() + r->j->lease, &mine, err);
    if (rc != QUN_OK) return rc;
    if (!mine) { /* finished, failed or taken over meanwhile */
        r->finished = true;
        return QUN_OK;
    }
    r->defer = 0;
    rc = steps[r->job.kind](db, r->job.id, r->job.group_id, r->job.ref_id, &r->finished, &r->defer, err);
    if (rc == QUN_OK && r->defer && !r->finished) /* wait, e.g. for a legal hold's release */
        return qun_queue_defer(db, r->job.id, r->defer, err);
    if (rc == QUN_OK && r->finished) rc = qun_queue_done(db, r->job.id, qun_now(), err);
    return rc;
}

typedef struct {
    int64_t id;
    int attempts;
    const char *msg;
} failure_t;

static qun_rc fail_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    failure_t *f = arg;
    return qun_queue_fail(db, f->id, f->attempts, f->msg, MAX_ATTEMPTS, qun_now(), err);
}

#define CLAIM_MAX 16

typedef struct {
    qun_jobs_t *j;
    qun_job_t due[CLAIM_MAX];
    int n;
} claim_t;

/* The due jobs nobody else holds, oldest first. */
static qun_rc claim_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    claim_t *c = arg;
    return qun_queue_claim(db, c->j->instance, qun_now(), c->j->lease, c->due, CLAIM_MAX, &c->n, err);
}

static qun_rc unlink_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    return qun_blob_unlink_queued(db, arg, err);
}

/* Housekeeping: forget idempotency keys, confirmation tokens, events and event tickets past
 * their life. */
static qun_rc expire_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)arg;
    int64_t now = qun_now();
    qun_rc rc = qun_db_run(db, NULL, err, "DELETE FROM idempotency WHERE created_at < $1", "i",
                           now - qun_core_cfg.idempotency_ttl);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err, "DELETE FROM confirm_tokens WHERE expires_at < $1", "i", now - 86400);
    if (rc == QUN_DONE) { /* GET /v1/events replays at most this far back (docs/events.md) */
        rc = qun_event_expire(db, now - 86400, NULL, err);
        if (rc == QUN_OK) rc = QUN_DONE;
    }
    if (rc == QUN_DONE) /* kept an hour past expiry: a late reuse still says "expired" */
        rc = qun_db_run(db, NULL, err, "DELETE FROM event_tickets WHERE expires_at < $1", "i", now - 3600);
    if (rc == QUN_DONE) { /* Matrix uploads no message took up (docs/matrix.md "Media") */
        int64_t expired;
        rc = qun_mx_media_expire(db, now - 86400, &expired, err);
        if (rc == QUN_OK) rc = QUN_DONE;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool stopping(qun_jobs_t *j) {
    pthread_mutex_lock(&j->mu);
    bool s = j->stopping;
    pthread_mutex_unlock(&j->mu);
    return s;
}

/* After a purge, the database's own files must not keep what it deleted (the SQLite
 * WAL's old page images).  A reader in the way is waited for a few times; a WAL that
 * still could not be truncated is logged, and the next purge tries again. */
static void scrub(qun_jobs_t *j) {
    qun_err_t err = {{0}, {0}};
    qun_rc rc = QUN_OK;
    for (int i = 0; i < 20 && !stopping(j); i++) {
        rc = qun_db_scrub(j->db, &err);
        if (rc != QUN_CONFLICT_RETRY) break;
        pause_ms(50);
    }
    if (rc != QUN_OK) qun_log("warn", "jobs: cannot scrub the database files after a purge: %s", err.msg);
}

static void run_job(qun_jobs_t *j, run_t *r) {
    qun_err_t err = {{0}, {0}};
    while (!r->finished && !stopping(j)) {
        qun_rc rc = qun_writer_run(j->writer, step_txn, r, &err);
        if (rc == QUN_OK && r->defer) return;
        if (rc != QUN_OK) {
            qun_log("warn", "job %lld failed a step: %s %s", (long long)r->job.id, qun_rc_name(rc), err.msg);
            /* Some steps fail without a message; the row still says how. */
            failure_t f = {r->job.id, r->job.attempts, err.msg[0] ? err.msg : qun_rc_name(rc)};
            qun_writer_run(j->writer, fail_txn, &f, &err);
            return;
        }
        int unlinked;
        do {
            unlinked = 0;
            qun_writer_run(j->writer, unlink_txn, &unlinked, &err);
        } while (unlinked > 0);
        if (r->finished && r->job.kind == QUN_JOB_PURGE_GROUP) scrub(j);
        if (j->pause_ms > 0 && !r->finished) pause_ms(j->pause_ms);
    }
}

/* Claim the due jobs (up to CLAIM_MAX) and run each; true when at least one ran.  The
 * read connection looks first, so an idle scheduler costs no write transactions. */
static bool run_due(qun_jobs_t *j) {
    qun_err_t err;
    bool any;
    if (qun_queue_any_due(j->db, j->instance, qun_now(), &any, &err) != QUN_OK || !any) return false;
    claim_t c = {.j = j};
    if (qun_writer_run(j->writer, claim_txn, &c, &err) != QUN_OK) {
        qun_log("warn", "jobs: claiming due jobs failed: %s", err.msg);
        return false;
    }
    for (int i = 0; i < c.n && !stopping(j); i++) {
        run_t r = {.job = c.due[i], .j = j};
        run_job(j, &r);
    }
    return c.n > 0;
}

static void *jobs_main(void *arg) {
    qun_jobs_t *j = arg;
    int unlinked = 0;
    qun_err_t err;
    qun_writer_run(j->writer, unlink_txn, &unlinked, &err); /* leftovers of a crash */
    int64_t next_expiry = 0;
    while (!stopping(j)) {
        if (qun_now() >= next_expiry) {
            qun_writer_run(j->writer, expire_txn, NULL, &err);
            do { /* the bytes of expired Matrix uploads */
                unlinked = 0;
                qun_writer_run(j->writer, unlink_txn, &unlinked, &err);
            } while (unlinked > 0);
            next_expiry = qun_now() + 600;
        }
        if (run_due(j)) continue;
        pthread_mutex_lock(&j->mu);
        if (!j->kicked && !j->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        }
        j->kicked = false;
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}

qun_rc qun_jobs_start(const char *db_path, qun_writer_t *writer, int pause, const char *instance,
                      int64_t lease, qun_jobs_t **out, qun_err_t *err) {
    qun_jobs_t *j = qun_xcalloc(1, sizeof *j);
    qun_rc rc = qun_db_open(db_path, true, false, &j->db, err);
    if (rc != QUN_OK) {
        free(j);
        return rc;
    }
    j->writer = writer;
    qun_export_use_writer(writer);
    j->pause_ms = pause;
    j->lease = lease > 0 ? lease : 60;
    snprintf(j->instance, sizeof j->instance, "%s", instance && *instance ? instance : "qund");
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    pthread_create(&j->thread, NULL, jobs_main, j);
    *out = j;
    return QUN_OK;
}

void qun_jobs_kick(qun_jobs_t *j) {
    pthread_mutex_lock(&j->mu);
    j->kicked = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void qun_jobs_stop(qun_jobs_t *j) {
    if (!j) return;
    qun_export_use_writer(NULL); /* export threads stop using the writer before it stops */
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    qun_db_close(j->db);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}
