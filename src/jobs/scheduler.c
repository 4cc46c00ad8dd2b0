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
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/import.h"
#include "qun/event.h"
#include "qun/export.h"
#include "qun/jobs.h"
#include "qun/matrix.h"
#include "qun/notify.h"
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
    int64_t due_hint; /* the earliest due time a commit queued since the last look */
    bool was_cut;     /* the last round ended early (run_due) */
    /* scrub_search: whether a rewrite of the search index is under way, and when the
     * next may begin. */
    int64_t next_scrub;
    bool scrubbing;
    int64_t next_wal_scrub; /* scrub_recalled */
    /* copy_search (PostgreSQL): its own connection, and when its next step is due. */
    qun_db_t *copy_db;
    int64_t copy_next_us; /* mono_us */
    bool copy_more;       /* the last step stopped at COPY_ROWS: the next one at once */
    /* Patience (qun_jobs_watch): whether the thread runs at SCHED_IDLE, its id, by when
     * (qun_mono_ms) it owes its next progress (0: nothing owed), and the hurry, guarded by
     * hurry_mu (never held with mu: the writer calls on_job with its own lock held). */
    bool yields;
    _Atomic pid_t tid;
    _Atomic int64_t owed_ms;
    pthread_mutex_t hurry_mu;
    bool hurried;
    int64_t hurried_ms;
};

/* How long the scheduler waits at most between looks: what no commit of this process
 * announces (another instance's job, a moved test clock) is found this late. */
#define LOOK_MS 250

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

/* A notice to a large group: the next slice of its people. */
static qun_rc notify_fanout_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id,
                                 bool *finished, int64_t *defer, qun_err_t *err) {
    return qun_notify_fanout_step(db, ref_id, finished, err);
}

/* The step of each job kind (include/qun/queue.h). */
static const qun_job_step_fn steps[QUN_JOB_KIND_COUNT] = {
    [QUN_JOB_PURGE_GROUP] = qun_purge_group_step,   [QUN_JOB_PURGE_PAYMENTS] = qun_purge_payments_step,
    [QUN_JOB_DISSOLVE_DUE] = dissolve_due_step,     [QUN_JOB_APPROVAL_EXPIRY] = approval_expiry_step,
    [QUN_JOB_EXPORT_GROUP] = qun_export_group_step, [QUN_JOB_NOTIFY_FANOUT] = notify_fanout_step,
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

/* The due jobs nobody else holds, those not started yet first.  Its own transaction:
 * a step in it would hold the claimed rows while it waits for a group's lock, and a
 * cancellation on another instance holding that lock and waiting for one of those
 * rows deadlocks with it (tests/pg/test_multi.py). */
static qun_rc claim_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    claim_t *c = arg;
    return qun_queue_claim(db, c->j->instance, qun_now(), c->j->lease, c->due, CLAIM_MAX, &c->n, err);
}

/* The writer's before-commit hook: a dissolution the batch made due at once (no
 * cooling-off, notice or approval left) is marked in the same commit as the request
 * or the last approval that made it due, so its members get
 * `dissolution.pending` and `group.dissolved` together instead of one commit and a
 * scheduler round apart (bench/README.md, benchmark 9).  A step that fails is undone
 * and left to the scheduler, which records the failure.  The job row is the batch's own,
 * uncommitted, and the request holds the group's lock already: no other instance can
 * hold what the step waits for. */
static qun_rc mark_due_now(qun_db_t *db, void *arg, qun_err_t *err) {
    qun_jobs_t *j = arg;
    int64_t ids[4];
    int n = qun_queue_take_due_now(QUN_JOB_DISSOLVE_DUE, ids, 4);
    for (int i = 0; i < n; i++) {
        run_t r = {.j = j};
        qun_err_t step_err = {{0}, {0}};
        bool mine = false;
        qun_rc rc = qun_db_savepoint(db, err);
        if (rc != QUN_OK) return rc;
        qun_rc step =
            qun_queue_claim_one(db, ids[i], j->instance, qun_now(), j->lease, &r.job, &mine, &step_err);
        if (step == QUN_OK && mine) step = step_txn(db, &r, &step_err);
        if ((rc = qun_db_release(db, step == QUN_OK && mine, err)) != QUN_OK) return rc;
    }
    return QUN_OK;
}

/* What housekeeping deleted, by kind (qun_housekeeping_kinds below).  A round counts
 * into a tally of its own, added here only once its transaction committed: /metrics
 * never counts a deletion a reader cannot see yet, nor one a rollback undid. */
static _Atomic uint64_t hk_deleted[QUN_HK_KINDS];
typedef struct {
    uint64_t n[QUN_HK_KINDS];
} hk_tally_t;

static void hk_publish(const hk_tally_t *t) {
    for (int i = 0; i < QUN_HK_KINDS; i++)
        if (t->n[i]) atomic_fetch_add(&hk_deleted[i], t->n[i]);
}

static qun_rc unlink_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    return qun_blob_unlink_queued(db, arg, err);
}

/* The bytes of the blobs that commits released, a batch per transaction until none is
 * left (or a batch fails: the next round tries again), each batch counted once it is
 * committed. */
static void unlink_blobs(qun_writer_t *w) {
    qun_err_t err;
    int unlinked;
    do {
        unlinked = 0;
        if (qun_writer_run_background(w, unlink_txn, &unlinked, &err) != QUN_OK) break;
        hk_publish(&(hk_tally_t){.n[4] = (uint64_t)unlinked});
    } while (unlinked > 0);
}

/* Housekeeping: forget idempotency keys, confirmation tokens, events and event tickets past
 * their life; delete the files of exports older than export_retention (the row stays,
 * marked purged_at, so a download says the file is gone); unlink the blob files no row
 * references; remove staged imports a crash left behind; forget Matrix uploads no message
 * took up within a day.  Each kind is counted for
 * /metrics. */
const char *const qun_housekeeping_kinds[QUN_HK_KINDS] = {
    "idempotency_key", "confirm_token", "event_ticket", "export", "blob", "staged_import", "matrix_media"};
void qun_housekeeping_stats(uint64_t out[QUN_HK_KINDS]) {
    for (int i = 0; i < QUN_HK_KINDS; i++)
        out[i] = atomic_load(&hk_deleted[i]);
}

/* Run a DELETE ... RETURNING 1 and count its rows into t's kind. */
static qun_rc count_deleted(qun_db_t *db, hk_tally_t *t, int kind, qun_err_t *err, const char *sql,
                            int64_t before) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, sql, "i", before);
    uint64_t n = 0;
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        n++;
    if (rc == QUN_DONE) t->n[kind] += n;
    return rc;
}

/* The files of finished exports older than export_retention, a batch at a time. */
static qun_rc expire_exports(qun_db_t *db, hk_tally_t *t, int64_t now, qun_err_t *err) {
    qun_q_t *q;
    char xids[100][QUN_ID_MAX];
    int64_t ids[100];
    int n = 0;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT id, xid FROM exports WHERE state = 'done' AND purged_at IS NULL "
                           "AND finished_at < $1 ORDER BY id LIMIT 100",
                           "i", now - qun_core_cfg.export_retention);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        ids[n] = qun_q_col_int(q, 0);
        snprintf(xids[n++], QUN_ID_MAX, "%s", qun_q_col_text(q, 1));
    }
    for (int i = 0; rc == QUN_DONE && i < n; i++) {
        char path[1024];
        if (snprintf(path, sizeof path, "%s/exports/%s.age", qun_core_cfg.data_dir, xids[i]) >=
            (int)sizeof path)
            return qun_fail(err, QUN_STORE, "the data directory's path is too long");
        if (unlink(path) != 0 && errno != ENOENT)
            return qun_fail(err, QUN_STORE, "cannot delete %s: %s", path, strerror(errno));
        rc = qun_db_run(db, NULL, err, "UPDATE exports SET purged_at = $2 WHERE id = $1", "ii", ids[i], now);
        if (rc == QUN_DONE) t->n[3]++;
    }
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Staged imports (data_dir/imports/<id>/) a day old: an import stages and finishes in one
 * request, so only a crash leaves one behind. */
static void sweep_imports(int64_t now) {
    /* Not while an import is staging: under QUN_TEST_CLOCK qun_now() runs days ahead of
     * the file times, and the directory being filled looked a day old.  Leftovers of a
     * crash wait for the next round. */
    if (qun_import_staging()) return;
    char top[700];
    snprintf(top, sizeof top, "%s/imports", qun_core_cfg.data_dir);
    DIR *d = opendir(top);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", top, e->d_name);
        if (stat(path, &st) != 0 || st.st_mtime > now - 86400) continue;
        if (nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS) == 0) atomic_fetch_add(&hk_deleted[5], 1);
    }
    closedir(d);
}

static qun_rc expire_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    hk_tally_t *t = arg;
    *t = (hk_tally_t){{0}}; /* the writer may run it again after a retry */
    int64_t now = qun_now();
    qun_rc rc = count_deleted(db, t, 0, err, "DELETE FROM idempotency WHERE created_at < $1 RETURNING 1",
                              now - qun_core_cfg.idempotency_ttl);
    if (rc == QUN_DONE)
        rc = count_deleted(db, t, 1, err, "DELETE FROM confirm_tokens WHERE expires_at < $1 RETURNING 1",
                           now - 86400);
    if (rc == QUN_DONE) { /* GET /v1/events replays at most this far back (docs/events.md) */
        rc = qun_event_expire(db, now - 86400, NULL, err);
        if (rc == QUN_OK) rc = QUN_DONE;
    }
    if (rc == QUN_DONE) /* kept an hour past expiry: a late reuse still says "expired" */
        rc = count_deleted(db, t, 2, err, "DELETE FROM event_tickets WHERE expires_at < $1 RETURNING 1",
                           now - 3600);
    if (rc == QUN_DONE) rc = expire_exports(db, t, now, err);
    if (rc == QUN_DONE) { /* Matrix uploads no message took up (docs/matrix.md "Media") */
        int64_t expired;
        rc = qun_mx_media_expire(db, now - 86400, &expired, err);
        if (rc == QUN_OK) {
            t->n[6] += (uint64_t)expired;
            rc = QUN_DONE;
        }
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Patience ----
 * Background work runs at SCHED_IDLE (docs/architecture.md, "Background work"): it takes
 * what qund's loops leave.  It would also take only what other processes leave, which on
 * a host whose cores they keep busy is nothing: purges of 200 messages took 30 to 40 s
 * beside four busy loops on two cores instead of 1.2 s, and timers fired up to 7 s late.
 * So the thread says by when it owes its next progress (a step's end, a timer's due
 * time), and the first loop's tick (qun_jobs_watch) hurries it when that is PATIENCE_MS
 * past: the thread and the writer's background batches then run at the normal policy,
 * niced to QUN_GENTLE_NICE.  A step takes milliseconds, and a little more while wrk loads
 * both cores (benchmark 7); one that waits half a second is starved, by other processes
 * or by qund's own loops at full load, and then gets a tenth of a core instead of
 * nothing.  The hurry ends when nothing is owed (the thread goes to sleep with nothing
 * due soon) or after HURRY_MS, when the thread tries SCHED_IDLE again and the watch
 * looks anew. */
#define PATIENCE_MS 500
#define HURRY_MS 10000

static _Atomic uint64_t hurries; /* qun_jobs_hurries */

uint64_t qun_jobs_hurries(void) {
    return atomic_load(&hurries);
}

/* By when the thread owes its next progress: at (qun_mono_ms), or 0 for nothing. */
static void owe(qun_jobs_t *j, int64_t at) {
    atomic_store(&j->owed_ms, at);
}

/* late: by how long the thread is behind (for the log), when it is hurried. */
static void set_hurry(qun_jobs_t *j, bool on, int64_t late) {
    id_t tid = (id_t)atomic_load(&j->tid); /* 0 only before the thread runs: nothing owed yet */
    pthread_mutex_lock(&j->hurry_mu);
    if (j->hurried != on && tid) {
        struct sched_param none = {0};
        int nice = 0; /* where setpriority is refused (a seccomp filter), the hurry is at nice 0 */
        if (on) {
            pthread_setschedparam(j->thread, SCHED_OTHER, &none);
            if (setpriority(PRIO_PROCESS, tid, QUN_GENTLE_NICE) == 0) nice = QUN_GENTLE_NICE;
        } else {
            setpriority(PRIO_PROCESS, tid, 0);
            pthread_setschedparam(j->thread, SCHED_IDLE, &none);
        }
        qun_writer_hurry(j->writer, on);
        j->hurried = on;
        j->hurried_ms = qun_mono_ms();
        if (on && atomic_fetch_add(&hurries, 1) == 0)
            qun_log(
                "info",
                "background work waited %lld ms for a CPU at SCHED_IDLE: it runs at nice %d while it is late "
                "(qun_background_hurries_total in /metrics counts the times)",
                (long long)late, nice);
    }
    pthread_mutex_unlock(&j->hurry_mu);
}

void qun_jobs_watch(qun_jobs_t *j) {
    if (!j || !j->yields) return;
    int64_t owed = atomic_load(&j->owed_ms);
    int64_t late = owed ? qun_mono_ms() - owed : 0;
    if (late >= PATIENCE_MS) set_hurry(j, true, late);
}

/* On the jobs thread: the hurry ends when nothing is owed, or tries SCHED_IDLE again
 * after HURRY_MS. */
static void calm(qun_jobs_t *j, bool idle) {
    if (!j->yields) return;
    pthread_mutex_lock(&j->hurry_mu);
    bool end = j->hurried && (idle || qun_mono_ms() - j->hurried_ms >= HURRY_MS);
    pthread_mutex_unlock(&j->hurry_mu);
    if (end) set_hurry(j, false, 0);
}

/* Wait us microseconds, or less when a commit makes a job due by now or qund stops:
 * true then. */
static bool wait_unless_due(qun_jobs_t *j, int64_t us) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(us / 1000000);
    ts.tv_nsec += (long)(us % 1000000) * 1000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    owe(j, qun_mono_ms() + us / 1000);
    pthread_mutex_lock(&j->mu);
    bool woken = false;
    while (!(woken = j->stopping || (j->due_hint && j->due_hint <= qun_now())))
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&j->mu);
    owe(j, qun_mono_ms());
    return woken;
}

/* The pause after a round of long jobs: purge_pause_ms at least, and as long as the round
 * took, up to STEP_YIELD_MAX_US.  A step's time is its own work plus its wait behind the
 * writes queued before it, so a purge takes at most about half the writer when the
 * server is idle and yields more the busier the writer and the cores are: the readers and
 * posters of other groups keep their latency (bench/README.md, benchmark 7).  A commit
 * that makes a job due now (a dissolution's timer) ends the pause: yielding is for the
 * readers and writers of the loops, not for other jobs. */
#define STEP_YIELD_MAX_US 250000
static void step_pause(qun_jobs_t *j, int64_t took_us) {
    int64_t us = took_us < STEP_YIELD_MAX_US ? took_us : STEP_YIELD_MAX_US;
    if (us < (int64_t)j->pause_ms * 1000) us = (int64_t)j->pause_ms * 1000;
    wait_unless_due(j, us);
}

static bool stopping(qun_jobs_t *j) {
    pthread_mutex_lock(&j->mu);
    bool s = j->stopping;
    pthread_mutex_unlock(&j->mu);
    return s;
}

/* After a purge, a rewrite of the search index or a recall, the database's own files
 * must not keep what was removed (the SQLite WAL's old page images).  A reader in the
 * way is tried around 20 times, 50 ms apart, unless a commit makes a job due meanwhile
 * (an export asked for then does not wait a second for a reader to go: the purge asks
 * again at its next step); a WAL that still could not be truncated is logged, and
 * false tells the caller to ask again later.  A timer queued earlier that falls due
 * during the tries waits for them, as it waits for any step. */
static bool scrub(qun_jobs_t *j) {
    qun_err_t err = {{0}, {0}};
    qun_rc rc = QUN_OK;
    for (int i = 0; i < 20; i++) {
        rc = qun_db_scrub(j->db, &err);
        if (rc != QUN_CONFLICT_RETRY || wait_unless_due(j, 50000)) break;
    }
    if (rc != QUN_OK) qun_log("warn", "jobs: cannot scrub the database files: %s", err.msg);
    return rc == QUN_OK;
}

#define SCRUB_WAL_EVERY 60 /* seconds between two scrubs for recalls (qun_db_scrub_later) */

/* A recall's old rows linger in WAL frames until the WAL starts over: when no job is
 * due, at most every SCRUB_WAL_EVERY seconds, the WAL is truncated. */
static void scrub_recalled(qun_jobs_t *j) {
    if (qun_now() < j->next_wal_scrub || !qun_db_take_scrub_owed()) return;
    j->next_wal_scrub = qun_now() + SCRUB_WAL_EVERY;
    if (!scrub(j)) qun_db_scrub_later();
}

/* One step of a claimed job; r->finished also when it failed or waits (deferred):
 * nothing more of it this round. */
static void step_job(qun_jobs_t *j, run_t *r) {
    qun_err_t err = {{0}, {0}};
    qun_rc rc = qun_writer_run_background(j->writer, step_txn, r, &err);
    if (rc == QUN_OK && r->defer) {
        r->finished = true;
        return;
    }
    if (rc != QUN_OK) {
        qun_log("warn", "job %lld failed a step: %s %s", (long long)r->job.id, qun_rc_name(rc), err.msg);
        /* Some steps fail without a message; the row still says how. */
        failure_t f = {r->job.id, r->job.attempts, err.msg[0] ? err.msg : qun_rc_name(rc)};
        qun_writer_run_background(j->writer, fail_txn, &f, &err);
        r->finished = true;
        return;
    }
    unlink_blobs(j->writer);
    if (qun_purge_take_scrub()) scrub(j);
}

/* A commit made a job due by now since the last claim (it is not among the claimed). */
static bool newly_due(qun_jobs_t *j) {
    pthread_mutex_lock(&j->mu);
    bool due = j->due_hint && j->due_hint <= qun_now();
    pthread_mutex_unlock(&j->mu);
    return due;
}

/* Claim the due jobs (up to CLAIM_MAX) and run one step of each, those not started
 * first; true when at least one ran.  A long job (a purge, a notice to 100 000 people)
 * is claimed again by the next round, and a round ends early when a commit makes
 * another job due (but not two rounds in a row): a dissolution's timer waits for one
 * step of a long job, not for all of it nor for a step of each.  After a round that
 * left work, the thread pauses as long as the round took (step_pause).  *next is the
 * earliest due time seen, so the thread can sleep until then.  The read connection
 * looks first, so an idle scheduler costs no write transactions. */
static bool run_due(qun_jobs_t *j, int64_t *next) {
    qun_err_t err;
    int64_t now = qun_now();
    pthread_mutex_lock(&j->mu);
    j->due_hint = 0; /* what is due now, the claim below takes */
    pthread_mutex_unlock(&j->mu);
    if (qun_queue_next_due(j->db, j->instance, now, next, &err) != QUN_OK || !*next || *next > now)
        return false;
    claim_t c = {.j = j};
    if (qun_writer_run_background(j->writer, claim_txn, &c, &err) != QUN_OK) {
        qun_log("warn", "jobs: claiming due jobs failed: %s", err.msg);
        return false;
    }
    int64_t t0 = mono_us();
    bool left = false, cut = false;
    for (int i = 0; i < c.n && !cut && !stopping(j); i++) {
        run_t r = {.job = c.due[i], .j = j};
        step_job(j, &r);
        owe(j, qun_mono_ms());
        left |= !r.finished;
        /* The rest stay claimed: the next round has them.  Never two cut rounds in a row,
         * so jobs that keep coming do not starve a long one. */
        cut = !j->was_cut && i + 1 < c.n && newly_due(j);
    }
    j->was_cut = cut;
    if (left && !cut && j->pause_ms > 0 && !stopping(j)) step_pause(j, mono_us() - t0);
    return c.n > 0;
}

/* A commit queued a job (writer thread): wake the scheduler if it is due before the
 * thread's next look. */
static void on_job(void *arg, int64_t due_at) {
    qun_jobs_t *j = arg;
    int64_t owed = atomic_load(&j->owed_ms), now = qun_mono_ms();
    if (due_at <= qun_now() && (!owed || owed > now)) owe(j, now); /* the thread runs next */
    pthread_mutex_lock(&j->mu);
    if (!j->due_hint || due_at < j->due_hint) j->due_hint = due_at;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Milliseconds until the due time, at most LOOK_MS. */
static int64_t wait_for(int64_t due_at, int64_t now_ms) {
    if (!due_at) return LOOK_MS;
    int64_t ms = due_at * 1000 - now_ms;
    return ms < 0 ? 0 : ms < LOOK_MS ? ms : LOOK_MS;
}

static qun_rc commit_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)db, (void)arg, (void)err;
    return QUN_OK;
}

/* Messages a bulk load left above the search index's watermark: each COMMIT takes in a
 * slice of them (store/search.c), so commit while they wait, yielding between commits as
 * a long job does.  True when it committed. */
static bool catch_up_search(qun_jobs_t *j) {
    qun_err_t err = {{0}, {0}};
    int64_t n;
    if (qun_db_search_backlog(j->db, &n, &err) != QUN_OK || n < qun_search_batch) return false;
    int64_t t0 = mono_us();
    if (qun_writer_run_background(j->writer, commit_txn, NULL, &err) != QUN_OK) {
        qun_log("warn", "jobs: indexing waiting messages failed: %s", err.msg);
        return false;
    }
    step_pause(j, mono_us() - t0);
    return true;
}

/* PostgreSQL's search copies (store/search.c, qun_db_search_copy): a step copies up to
 * COPY_ROWS new text messages on a connection of its own, beside the writer, and raises
 * the watermark below which a search finds every message in the index.  A step runs
 * every COPY_MS (one lookup when nothing is above the watermark: rows another instance
 * or another tool wrote are copied too), at once again while one stops at COPY_ROWS.
 * True when it should run again at once. */
#define COPY_ROWS 8192
/* A step a second while posts come: what a step costs apart from its rows (reading and
 * waiting for the open transactions, a statement per table) is paid once a second, and
 * a search reads at most about two seconds of new messages directly (bench/README.md,
 * "Search apart from the post on PostgreSQL": steps every 50 ms cost two instances a
 * sixth of their posts). */
#define COPY_MS 1000
static bool copy_search(qun_jobs_t *j) {
    if (!j->copy_db || (!j->copy_more && mono_us() < j->copy_next_us)) return false;
    j->copy_next_us = mono_us() + (int64_t)COPY_MS * 1000;
    int64_t t0 = mono_us();
    qun_err_t err = {{0}, {0}};
    bool more = false;
    if (qun_db_search_copy(j->copy_db, COPY_ROWS, &more, &err) != QUN_OK)
        qun_log("warn", "jobs: copying messages for search failed: %s", err.msg);
    j->copy_more = more;
    if (!more) return false;
    step_pause(j, mono_us() - t0);
    return true;
}

#define MERGE_PAGES 128 /* about half a MiB of the search index merged per commit */

static qun_rc merge_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    return qun_db_search_merge(db, MERGE_PAGES, arg, err);
}

/* The search index's segments, merged a bounded piece per commit while COMMITs wrote some
 * since it was last found merged (migration 0038): no COMMIT of a person's write merges,
 * and the merging yields as a long job does.  True when there is more. */
static bool merge_search(qun_jobs_t *j) {
    /* During a rewrite a 'merge' would go on with it, 128 pages at once: the rewrite's
     * own steps merge everything in QUN_SCRUB_PAGES pieces instead. */
    if (!qun_search_unmerged() || j->scrubbing) return false;
    qun_err_t err = {{0}, {0}};
    bool more = false;
    int64_t t0 = mono_us();
    if (qun_writer_run_background(j->writer, merge_txn, &more, &err) != QUN_OK) {
        qun_log("warn", "jobs: merging the search index failed: %s", err.msg);
        return false;
    }
    if (more) step_pause(j, mono_us() - t0);
    return more;
}

#define SCRUB_EVERY 900 /* seconds between the starts of two rewrites for recalls and masks */

static _Atomic int64_t search_hidden; /* qun_jobs_search_hidden */

int64_t qun_jobs_search_hidden(void) {
    return atomic_load(&search_hidden);
}

static qun_rc scrub_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    return qun_db_search_scrub(db, QUN_SCRUB_PAGES, arg, err);
}

/* Recalled and masked text, hidden in the search index when it changed, is dropped
 * from the file by a rewrite of the index (migration 0039) when no job is due: one
 * begins at most every SCRUB_EVERY seconds, and goes on a bounded piece per commit
 * until done, and then the WAL is truncated as after a purge.  A purge does not wait
 * for this: its last phase rewrites the index itself (jobs/purge.c).  True when there
 * is more. */
static bool scrub_search(qun_jobs_t *j) {
    qun_err_t err = {{0}, {0}};
    int64_t gone, scrubbed, covered;
    if (qun_db_search_gone(j->db, &gone, &scrubbed, &err) != QUN_OK) return false;
    atomic_store(&search_hidden, gone > scrubbed ? gone - scrubbed : 0);
    if (!j->scrubbing && (scrubbed >= gone || qun_now() < j->next_scrub)) return false;
    int64_t t0 = mono_us();
    if (qun_writer_run_background(j->writer, scrub_txn, &covered, &err) != QUN_OK) {
        qun_log("warn", "jobs: rewriting the search index failed: %s", err.msg);
        j->next_scrub = qun_now() + 60;
        return false;
    }
    bool ended = covered > scrubbed; /* this step, or a purge's since the read, finished one */
    j->scrubbing = !ended && covered < gone;
    if (ended) { /* and the WAL's old page images go; text hidden since waits its turn */
        atomic_store(&search_hidden, gone > covered ? gone - covered : 0);
        j->next_scrub = qun_now() + SCRUB_EVERY;
        scrub(j);
    }
    if (j->scrubbing) step_pause(j, mono_us() - t0);
    return j->scrubbing;
}

static void *jobs_main(void *arg) {
    qun_jobs_t *j = arg;
    /* Everything this thread does is background work: with the writer's, its own turns
     * come after the loops' when the cores are busy (a step's wake-up would otherwise
     * preempt a loop mid-request).  It leaves SCHED_IDLE only while it is late (Patience). */
    atomic_store(&j->tid, gettid());
    if (j->yields) pthread_setschedparam(pthread_self(), SCHED_IDLE, &(struct sched_param){0});
    qun_err_t err;
    unlink_blobs(j->writer); /* leftovers of a crash */
    int64_t next_expiry = 0;
    while (!stopping(j)) {
        owe(j, qun_mono_ms());
        calm(j, false);
        if (qun_now() >= next_expiry) {
            hk_tally_t tally;
            if (qun_writer_run_background(j->writer, expire_txn, &tally, &err) == QUN_OK) hk_publish(&tally);
            unlink_blobs(j->writer); /* expired exports' and Matrix uploads' blobs */
            sweep_imports(qun_now());
            next_expiry = qun_now() + 600;
        }
        int64_t next = 0;
        if (run_due(j, &next) || catch_up_search(j) || copy_search(j) || merge_search(j) || scrub_search(j))
            continue;
        scrub_recalled(j);
        pthread_mutex_lock(&j->mu);
        /* A due job that could not be claimed (another instance holds it) is looked at
         * again after LOOK_MS, not at once. */
        int64_t now_ms = qun_now_ms(), ms = next * 1000 > now_ms ? wait_for(next, now_ms) : LOOK_MS;
        if (j->due_hint && wait_for(j->due_hint, now_ms) < ms) ms = wait_for(j->due_hint, now_ms);
        /* A job due within the wait is owed at its time; the look after LOOK_MS owes nothing. */
        bool soon = (next && next * 1000 <= now_ms + LOOK_MS) || j->due_hint;
        owe(j, soon ? qun_mono_ms() + ms : 0);
        if (!soon) {
            pthread_mutex_unlock(&j->mu);
            calm(j, true);
            pthread_mutex_lock(&j->mu);
        }
        if (!j->kicked && !j->stopping && ms > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += ms / 1000;
            ts.tv_nsec += (ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        }
        j->kicked = false;
        j->due_hint = 0;
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
    /* PostgreSQL: the search copies are written beside the writer, on a connection of
     * their own (the scheduler's reads are read-only). */
    if (strcmp(qun_db_backend(j->db), "sqlite") != 0 &&
        (rc = qun_db_open(db_path, false, false, &j->copy_db, err)) != QUN_OK) {
        qun_db_close(j->db);
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
    pthread_mutex_init(&j->hurry_mu, NULL);
    j->yields = qun_writer_yields(writer);
    qun_writer_on_job(writer, on_job, j);
    qun_writer_before_commit(writer, mark_due_now, j);
    qun_thread_start(&j->thread, "qun-jobs", jobs_main, j);
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
    qun_writer_on_job(j->writer, NULL, NULL);
    qun_writer_before_commit(j->writer, NULL, NULL);
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    qun_db_close(j->db);
    if (j->copy_db) qun_db_close(j->copy_db);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->hurry_mu);
    free(j);
}
