/* SPDX-License-Identifier: MIT */
/* Unit tests of src/jobs/scheduler.c through its public header, on a temporary SQLite
 * file: the scheduler thread runs due jobs to `done` (and leaves jobs not yet due
 * alone), retries a failing step with exponential backoff until it is `failed` after
 * 10 attempts, parks a purge behind a legal hold, takes over a job whose claim by a
 * crashed instance has expired (and its own claims at once after a restart), and two
 * instances sharing the database run each job once, and a job due meanwhile does not
 * wait for a long one to end.  Jobs are enqueued as rows of
 * `jobs`, as the core writes them; the test clock moves time forward. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/jobs.h"
#include "qun/queue.h"
#include "qun/writer.h"
#include "unit.h"

static char dir[] = "/tmp/qun-unit-jobs-XXXXXX", path[128];
static qun_writer_t *writer;
static qun_jobs_t *jobs;
static qun_db_t *rd; /* the test's own read connection */

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    const char *sql, *fmt;
    int64_t a, b, c, d;
    int64_t id;
} stmt_t;

/* Run one statement of up to four integer parameters on the writer (the only write
 * connection); st->id = the first column of the row it returns, if any. */
static qun_rc stmt_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    stmt_t *st = arg;
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, st->sql, st->fmt, st->a, st->b, st->c, st->d);
    if (rc == QUN_ROW) {
        st->id = qun_q_col_int(q, 0);
        qun_q_done(q);
        return QUN_OK;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

static int64_t write_sql(const char *sql, const char *fmt, int64_t a, int64_t b, int64_t c, int64_t d) {
    stmt_t st = {sql, fmt, a, b, c, d, 0};
    qun_err_t err;
    qun_rc rc = qun_writer_run(writer, stmt_txn, &st, &err);
    if (rc != QUN_OK) fprintf(stderr, "%s: %s\n", sql, err.msg);
    CHECK(rc == QUN_OK);
    return st.id;
}

typedef struct {
    const char *kind;
    int64_t group_id, ref_id, due_at, id;
} enqueue_t;

static qun_rc enqueue_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    enqueue_t *e = arg;
    qun_job_kind kind;
    if (!qun_job_kind_parse(e->kind, &kind)) return qun_fail(err, QUN_INTERNAL, "no job kind %s", e->kind);
    return qun_queue_add(db, kind, e->group_id, e->ref_id, e->due_at, &e->id, err);
}

/* Enqueue a job of kind (group_id 0: none), due at due_at; its id. */
static int64_t enqueue(const char *kind, int64_t group_id, int64_t ref_id, int64_t due_at) {
    enqueue_t e = {kind, group_id, ref_id, due_at, 0};
    qun_err_t err;
    CHECK(qun_writer_run(writer, enqueue_txn, &e, &err) == QUN_OK);
    return e.id;
}

typedef struct {
    char state[16], claimed_by[64], last_error[128];
    int64_t attempts, due_at, finished_at;
} job_t;

static bool job_get(int64_t id, job_t *j) {
    qun_q_t *q;
    qun_err_t err;
    memset(j, 0, sizeof *j);
    if (qun_db_run(
            rd, &q, &err,
            "SELECT state, COALESCE(claimed_by, ''), last_error, attempts, due_at, COALESCE(finished_at, 0) "
            "FROM jobs WHERE id = $1",
            "i", id) != QUN_ROW)
        return false;
    snprintf(j->state, sizeof j->state, "%s", qun_q_col_text(q, 0));
    snprintf(j->claimed_by, sizeof j->claimed_by, "%s", qun_q_col_text(q, 1));
    snprintf(j->last_error, sizeof j->last_error, "%s", qun_q_col_text(q, 2));
    j->attempts = qun_q_col_int(q, 3);
    j->due_at = qun_q_col_int(q, 4);
    j->finished_at = qun_q_col_int(q, 5);
    qun_q_done(q);
    return true;
}

/* Kick the scheduler and wait (up to 20 s) until job id is in state, with at least
 * `attempts` attempts; false on timeout. */
static bool wait_state(int64_t id, const char *state, int64_t attempts, job_t *j) {
    for (int i = 0; i < 1000; i++) {
        if (i % 10 == 0) qun_jobs_kick(jobs);
        if (job_get(id, j) && strcmp(j->state, state) == 0 && j->attempts >= attempts) return true;
        sleep_ms(20);
    }
    fprintf(stderr, "  job %lld is %s after %lld attempts, want %s\n", (long long)id, j->state,
            (long long)j->attempts, state);
    return false;
}

static void start(const char *instance, int64_t lease, qun_jobs_t **out) {
    qun_err_t err;
    CHECK(qun_jobs_start(path, writer, 0, instance, lease, out, &err) == QUN_OK);
}

/* A due job runs to done: finished by this instance, without an attempt counted. */
static void due_job_runs(void) {
    int64_t t0 = qun_now();
    int64_t id = enqueue("approval_expiry", 0, 999001, t0);
    job_t j;
    CHECK(wait_state(id, "done", 0, &j));
    CHECK_STR(j.claimed_by, "unit-a");
    CHECK(j.attempts == 0);
    CHECK_STR(j.last_error, "");
    CHECK(j.finished_at >= t0 && j.finished_at <= qun_now());
}

/* A job not yet due stays queued and unclaimed; once due, it runs. */
static void future_job_waits(void) {
    int64_t id = enqueue("approval_expiry", 0, 999002, qun_now() + 3600);
    job_t j;
    for (int i = 0; i < 5; i++) {
        qun_jobs_kick(jobs);
        sleep_ms(60);
    }
    CHECK(job_get(id, &j));
    CHECK_STR(j.state, "queued");
    CHECK_STR(j.claimed_by, "");
    qun_clock_advance(3600);
    CHECK(wait_state(id, "done", 0, &j));
}

/* A step that fails (a dissolution timer for a dissolution that does not exist) is
 * retried after 1, 2, 4, ... seconds, and is `failed` for good after 10 attempts. */
static void retry_backoff_then_failed(void) {
    int64_t id = enqueue("dissolve_due", 0, 999999, qun_now());
    job_t j;
    for (int64_t k = 1; k <= 10; k++) {
        int64_t t_kick = qun_now();
        bool last = k == 10;
        char row[32];
        snprintf(row, sizeof row, "attempt %lld", (long long)k);
        CHECKF(wait_state(id, last ? "failed" : "queued", k, &j), row);
        int64_t t_seen = qun_now(), backoff = (int64_t)1 << (k - 1);
        CHECKF(j.attempts == k, row);
        CHECKF(strcmp(j.claimed_by, "") == 0, row);      /* a failure gives the claim up */
        CHECKF(strcmp(j.last_error, "STORE") == 0, row); /* the step's error is kept on the row */
        /* due_at = the failure's time + 2^(k-1), and the failure came between the kick
         * and now. */
        if (j.due_at < t_kick + backoff || j.due_at > t_seen + backoff)
            fprintf(stderr, "  %s: due_at %lld not in [%lld, %lld]\n", row, (long long)j.due_at,
                    (long long)(t_kick + backoff), (long long)(t_seen + backoff));
        CHECKF(j.due_at >= t_kick + backoff && j.due_at <= t_seen + backoff, row);
        if (!last) qun_clock_advance(j.due_at - qun_now() > 0 ? j.due_at - qun_now() : 0);
    }
    /* Failed stays failed, however long one waits. */
    qun_clock_advance(4096);
    for (int i = 0; i < 5; i++) {
        qun_jobs_kick(jobs);
        sleep_ms(60);
    }
    CHECK(job_get(id, &j));
    CHECK_STR(j.state, "failed");
    CHECK(j.attempts == 10);
}

/* A purge behind a legal hold waits (queued, 'held', unclaimed, due a minute later)
 * and counts no attempt; after the release it runs to done. */
static void held_job_waits_for_release(void) {
    int64_t uid = write_sql("INSERT INTO users(openid, username, pwhash, password_changed_at, created_at) "
                            "VALUES ('u_held', 'held', 'h', $1, $1) RETURNING id",
                            "i", 0, 0, 0, 0);
    int64_t gid = write_sql(
        "INSERT INTO groups(gid, name, kind, owner_id, state, member_count, created_at, updated_at) "
        "VALUES ('g_held', 'held', 'standard', $1, 'dissolved', 0, 0, 0) RETURNING id",
        "i", uid, 0, 0, 0);
    int64_t did =
        write_sql("INSERT INTO dissolutions(group_id, requested_by, messages, state, requested_at, "
                  "dissolved_at, grace_until) VALUES ($1, $2, 'delete', 'dissolved', 0, 0, 0) RETURNING id",
                  "ii", gid, uid, 0, 0);
    int64_t hold = write_sql("INSERT INTO holds(hid, group_id, reason, placed_by, placed_at) "
                             "VALUES ('h_unit', $1, 'litigation', $2, 0) RETURNING id",
                             "ii", gid, uid, 0, 0);
    int64_t t0 = qun_now();
    int64_t id = enqueue("purge_group", gid, did, t0);
    job_t j;
    for (int i = 0; i < 500 && !(job_get(id, &j) && strcmp(j.last_error, "held") == 0); i++) {
        if (i % 10 == 0) qun_jobs_kick(jobs);
        sleep_ms(20);
    }
    CHECK_STR(j.last_error, "held");
    CHECK_STR(j.state, "queued");
    CHECK_STR(j.claimed_by, "");
    CHECK(j.attempts == 0);
    CHECK(j.due_at >= t0 + 60 && j.due_at <= qun_now() + 60);
    write_sql("UPDATE holds SET released_at = 1, released_by = $2 WHERE id = $1", "ii", hold, uid, 0, 0);
    qun_clock_advance(61);
    CHECK(wait_state(id, "done", 0, &j));
    CHECK(j.attempts == 0);
}

/* A job claimed by an instance that crashed is left alone while the claim holds, and
 * taken over once it expires; a job claimed by this instance itself (a restart) is
 * taken back at once. */
static void expired_claim_is_reclaimed(void) {
    int64_t now = qun_now();
    int64_t theirs = enqueue("approval_expiry", 0, 999003, now);
    int64_t ours = enqueue("approval_expiry", 0, 999004, now);
    /* Both enqueued and claimed in one go, before the scheduler looks. */
    write_sql(
        "UPDATE jobs SET state = 'running', claimed_by = CASE WHEN id = $1 THEN 'crashed' ELSE 'unit-a' END, "
        "claimed_until = $3 WHERE id IN ($1, $2)",
        "iii", theirs, ours, now + 30, 0);
    job_t j;
    CHECK(wait_state(ours, "done", 0, &j));
    CHECK_STR(j.claimed_by, "unit-a");
    for (int i = 0; i < 5; i++) {
        qun_jobs_kick(jobs);
        sleep_ms(60);
    }
    CHECK(job_get(theirs, &j));
    CHECK_STR(j.state, "running");
    CHECK_STR(j.claimed_by, "crashed");
    qun_clock_advance(31);
    CHECK(wait_state(theirs, "done", 0, &j));
    CHECK_STR(j.claimed_by, "unit-a");
    CHECK(j.attempts == 0);
}

/* Two instances on one database: 40 due jobs, each done exactly once, by either. */
static void two_instances_share(void) {
    qun_jobs_t *second = NULL;
    start("unit-b", 60, &second);
    int64_t first_id = 0, now = qun_now();
    for (int i = 0; i < 40; i++) {
        int64_t id = enqueue("approval_expiry", 0, 998000 + i, now);
        if (i == 0) first_id = id;
    }
    qun_jobs_kick(second);
    job_t j;
    for (int64_t id = first_id; id < first_id + 40; id++) {
        char row[32];
        snprintf(row, sizeof row, "job %lld", (long long)(id - first_id));
        CHECKF(wait_state(id, "done", 0, &j), row);
        CHECKF(strcmp(j.claimed_by, "unit-a") == 0 || strcmp(j.claimed_by, "unit-b") == 0, row);
        CHECKF(j.attempts == 0, row);
    }
    qun_jobs_stop(second);
}

static int64_t count_rd(const char *sql) {
    qun_q_t *q;
    qun_err_t err;
    int64_t n = -1;
    if (qun_db_run(rd, &q, &err, sql, "") == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

/* A job that becomes due while a long one runs (a notice to 20 480 members: 40 slices)
 * waits for a step of it, not for all of it: the scheduler takes one step of each claimed
 * job per round, the ones not started first, and claims again. */
static void a_due_job_does_not_wait_for_a_long_one(void) {
    write_sql(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $1) "
        "INSERT INTO users(openid, username, username_key, pwhash, password_changed_at, created_at) "
        "SELECT printf('u_many%05d', i), printf('many%05d', i), printf('many%05d', i), 'x', 1, 1 FROM c",
        "i", 40 * 512, 0, 0, 0);
    int64_t group = write_sql("INSERT INTO groups(gid, name, kind, owner_id, created_at, updated_at) "
                              "SELECT 'g_many', 'many', 'standard', MIN(id), 1, 1 FROM users RETURNING id",
                              "", 0, 0, 0, 0);
    write_sql("INSERT INTO members(group_id, user_id, role, joined_at) SELECT $1, id, 'member', 1 FROM users "
              "WHERE username LIKE 'many%'",
              "i", group, 0, 0, 0);
    int64_t fid = write_sql("INSERT INTO notice_fanouts(group_id, kind, params, created_at) "
                            "VALUES ($1, 'dissolution.expired', '{\"group_name\":\"g\"}', 1) RETURNING id",
                            "i", group, 0, 0, 0);
    int64_t long_id = enqueue("notify_fanout", group, fid, qun_now());
    job_t j;
    CHECK(wait_state(long_id, "running", 0, &j));
    int64_t id = enqueue("approval_expiry", 0, 999003, qun_now());
    CHECK(wait_state(id, "done", 0, &j));
    CHECKF(count_rd("SELECT COUNT(*) FROM notice_fanouts") == 1, "the long job had finished first");
    CHECK(wait_state(long_id, "done", 0, &j));
    CHECK(count_rd("SELECT COUNT(*) FROM notice_fanouts") == 0);
    CHECK(count_rd("SELECT COUNT(*) FROM notifications WHERE kind = 'dissolution.expired'") == 40 * 512);
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    if (!mkdtemp(dir)) return 1;
    qun_core_cfg.data_dir = dir;
    snprintf(path, sizeof path, "%s/qun.db", dir);
    qun_db_t *wdb;
    CHECK(qun_db_open(path, false, true, &wdb, &err) == QUN_OK);
    CHECK(qun_writer_start(wdb, 64, &writer, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &rd, &err) == QUN_OK);
    start("unit-a", 60, &jobs);
    RUN(due_job_runs);
    RUN(future_job_waits);
    RUN(retry_backoff_then_failed);
    RUN(held_job_waits_for_release);
    RUN(expired_claim_is_reclaimed);
    RUN(two_instances_share);
    RUN(a_due_job_does_not_wait_for_a_long_one);
    qun_jobs_stop(jobs);
    qun_writer_stop(writer);
    qun_db_close(rd);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return unit_done("jobs/scheduler");
}
