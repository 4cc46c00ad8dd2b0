/* SPDX-License-Identifier: MIT */
/* The job queue (include/qun/queue.h): every write to `jobs` rows.  A job is queued
 * by core in the transaction of the change that needs it; the scheduler claims due
 * jobs for its instance with a lease, renews the claim with every step (in the step's
 * own transaction, so a step runs once even when a lease lapsed under a slow instance
 * and another took the job over), and ends each as done, deferred or failed. */
#include <stdlib.h>
#include <string.h>

#include "qun/queue.h"
#include "qun/util.h"
#include "store_internal.h"

static const char *const kind_names[QUN_JOB_KIND_COUNT] = {
#define KIND_NAME(e, name) name,
    QUN_JOB_KINDS(KIND_NAME)
#undef KIND_NAME
};

const char *qun_job_kind_name(qun_job_kind k) {
    return (unsigned)k < QUN_JOB_KIND_COUNT ? kind_names[k] : NULL;
}

bool qun_job_kind_parse(const char *s, qun_job_kind *k) {
    for (int i = 0; s && i < QUN_JOB_KIND_COUNT; i++)
        if (strcmp(kind_names[i], s) == 0) {
            *k = (qun_job_kind)i;
            return true;
        }
    return false;
}

static qun_rc done_ok(qun_rc rc) {
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* The earliest due time the transactions of this thread queued or brought forward since
 * the writer last asked: a job queued by a commit wakes the scheduler at once instead of
 * at its next look.  Per thread, because only the thread running a transaction knows
 * what it wrote. */
static _Thread_local int64_t t_due_hint;

static void hint_due(int64_t due_at) {
    if (!t_due_hint || due_at < t_due_hint) t_due_hint = due_at;
}

int64_t qun_queue_take_hint(void) {
    int64_t due = t_due_hint;
    t_due_hint = 0;
    return due;
}

/* The jobs this thread's transactions queued due at once since the writer last asked,
 * for the writer's before-commit hook (qun_queue_take_due_now). */
#define DUE_NOW_MAX 8
static _Thread_local struct {
    int64_t id;
    qun_job_kind kind;
} t_due_now[DUE_NOW_MAX];
static _Thread_local int t_due_now_n;

int qun_queue_take_due_now(qun_job_kind kind, int64_t *ids, int max) {
    int n = 0;
    for (int i = 0; i < t_due_now_n; i++)
        if (t_due_now[i].kind == kind && n < max) ids[n++] = t_due_now[i].id;
    t_due_now_n = 0;
    return n;
}

qun_rc qun_queue_add(qun_db_t *db, qun_job_kind kind, int64_t group_id, int64_t ref_id, int64_t due_at,
                     int64_t *id, qun_err_t *err) {
    const char *name = qun_job_kind_name(kind);
    if (!name) return qun_fail(err, QUN_INTERNAL, "no job kind %d", (int)kind);
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "INSERT INTO jobs(kind, group_id, ref_id, due_at, created_at) VALUES ($1, $2, $3, $4, $5) "
                   "RETURNING id",
                   "sziii", name, group_id, ref_id, due_at, qun_now());
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t row = qun_q_col_int(q, 0);
    if (id) *id = row;
    qun_q_done(q);
    hint_due(due_at);
    if (due_at <= qun_now() && t_due_now_n < DUE_NOW_MAX) /* beyond: the scheduler has them */
        t_due_now[t_due_now_n].id = row, t_due_now[t_due_now_n++].kind = kind;
    return QUN_OK;
}

qun_rc qun_queue_wake_held(qun_db_t *db, int64_t group_id, int64_t now, qun_err_t *err) {
    hint_due(now);
    return done_ok(qun_db_run(db, NULL, err,
                              "UPDATE jobs SET due_at = $2 WHERE group_id = $1 AND state = 'queued' "
                              "AND kind IN ($3, $4) AND due_at > $2 AND last_error = 'held'",
                              "iiss", group_id, now, kind_names[QUN_JOB_PURGE_GROUP],
                              kind_names[QUN_JOB_PURGE_PAYMENTS]));
}

qun_rc qun_queue_end_purges(qun_db_t *db, int64_t ref_id, const char *reason, qun_err_t *err) {
    return done_ok(
        qun_db_run(db, NULL, err,
                   "UPDATE jobs SET state = 'done', finished_at = $2, last_error = $3 WHERE ref_id = $1 "
                   "AND kind IN ($4, $5) AND state IN ('queued', 'running')",
                   "iisss", ref_id, qun_now(), reason, kind_names[QUN_JOB_PURGE_GROUP],
                   kind_names[QUN_JOB_PURGE_PAYMENTS]));
}

qun_rc qun_queue_list_purges(qun_db_t *db, int64_t ref_id, json_t *into, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT kind, state, due_at, attempts, progress FROM jobs WHERE ref_id = $1 "
                   "AND kind IN ($2, $3) ORDER BY id",
                   "iss", ref_id, kind_names[QUN_JOB_PURGE_GROUP], kind_names[QUN_JOB_PURGE_PAYMENTS]);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        json_t *progress = json_loads(qun_q_col_text(q, 4), 0, NULL);
        json_array_append_new(into,
                              json_pack("{s:s, s:s, s:I, s:I, s:o}", "kind", qun_q_col_text(q, 0), "state",
                                        qun_q_col_text(q, 1), "due_at", (json_int_t)qun_q_col_int(q, 2),
                                        "attempts", (json_int_t)qun_q_col_int(q, 3), "progress",
                                        progress ? progress : json_object()));
    }
    return done_ok(rc);
}

qun_rc qun_queue_progress(qun_db_t *db, int64_t job_id, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    *out = NULL;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT progress FROM jobs WHERE id = $1", "i", job_id);
    if (rc == QUN_ROW) {
        const char *text = qun_q_col_text(q, 0);
        *out = *text ? json_loads(text, 0, NULL) : json_object();
        qun_q_done(q);
        if (!*out) return qun_fail(err, QUN_NOMEM, "cannot read the progress of job %lld", (long long)job_id);
        return QUN_OK;
    }
    if (rc != QUN_DONE) return rc;
    *out = json_object();
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_queue_set_progress(qun_db_t *db, int64_t job_id, json_t *p, qun_err_t *err) {
    char *text = qun_json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) return qun_fail(err, QUN_NOMEM, "cannot encode the progress of job %lld", (long long)job_id);
    qun_rc rc = qun_db_run(db, NULL, err, "UPDATE jobs SET progress = $2 WHERE id = $1", "is", job_id, text);
    free(text);
    return done_ok(rc);
}

/* ---- the scheduler's side ---- */

#define CLAIMABLE                                                                                            \
    "state IN ('queued', 'running') AND due_at <= $3 AND (claimed_by IS NULL OR claimed_by = $1 "            \
    "OR claimed_until < $3)"

qun_rc qun_queue_next_due(qun_db_t *db, const char *instance, int64_t now, int64_t *due, qun_err_t *err) {
    qun_q_t *q;
    *due = 0;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT MIN(due_at) FROM jobs WHERE state IN ('queued', 'running') AND "
                           "(claimed_by IS NULL OR claimed_by = $1 OR claimed_until < $2)",
                           "si", instance, now);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_OK : rc;
    if (!qun_q_col_null(q, 0)) *due = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

/* What a claim's RETURNING lists, in this order, and the job it describes: false for a
 * kind this build does not know. */
#define CLAIMED_COLUMNS                                                                                      \
    "id, kind, COALESCE(group_id, 0), COALESCE(ref_id, 0), attempts, due_at, "                               \
    "CASE WHEN state = 'running' THEN 1 ELSE 0 END"

static bool claimed_job(qun_q_t *q, qun_job_t *job) {
    *job = (qun_job_t){.id = qun_q_col_int(q, 0),
                       .group_id = qun_q_col_int(q, 2),
                       .ref_id = qun_q_col_int(q, 3),
                       .attempts = (int)qun_q_col_int(q, 4),
                       .due_at = qun_q_col_int(q, 5),
                       .started = qun_q_col_int(q, 6) != 0};
    return qun_job_kind_parse(qun_q_col_text(q, 1), &job->kind);
}

/* One text per store, each a constant: the statement caches know a statement by its
 * text's address, so a text built per call could be taken for another. */
#define CLAIM_SQL(lock)                                                                                      \
    "UPDATE jobs SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT id FROM jobs WHERE " CLAIMABLE  \
    " ORDER BY CASE WHEN state = 'running' THEN 1 ELSE 0 END, due_at, id LIMIT $4" lock                      \
    ") RETURNING " CLAIMED_COLUMNS

qun_rc qun_queue_claim(qun_db_t *db, const char *instance, int64_t now, int64_t lease, qun_job_t *out,
                       int max, int *n, qun_err_t *err) {
    const char *sql = qun_db_locks_rows(db) ? CLAIM_SQL(" FOR UPDATE SKIP LOCKED") : CLAIM_SQL("");
    qun_q_t *q;
    *n = 0;
    qun_rc rc = qun_db_run(db, &q, err, sql, "siii", instance, now + lease, now, (int64_t)max);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        qun_job_t job;
        if (*n >= max || !claimed_job(q, &job)) continue;
        /* insertion sort by (started, due_at, id): RETURNING keeps no order */
        int i = (*n)++;
        while (i > 0 && (out[i - 1].started > job.started ||
                         (out[i - 1].started == job.started &&
                          (out[i - 1].due_at > job.due_at ||
                           (out[i - 1].due_at == job.due_at && out[i - 1].id > job.id))))) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = job;
    }
    return done_ok(rc);
}

qun_rc qun_queue_claim_one(qun_db_t *db, int64_t id, const char *instance, int64_t now, int64_t lease,
                           qun_job_t *job, bool *mine, qun_err_t *err) {
    qun_q_t *q;
    *mine = false;
    qun_rc rc = qun_db_run(db, &q, err,
                           "UPDATE jobs SET claimed_by = $1, claimed_until = $2 WHERE id = $4 AND " CLAIMABLE
                           " RETURNING " CLAIMED_COLUMNS,
                           "siii", instance, now + lease, now, id);
    if (rc != QUN_ROW) return done_ok(rc);
    *mine = claimed_job(q, job);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_queue_begin_step(qun_db_t *db, int64_t id, const char *instance, int64_t until, bool *mine,
                            qun_err_t *err) {
    /* The row lock this takes serializes the step with any other instance's. */
    qun_rc rc = qun_db_run(db, NULL, err,
                           "UPDATE jobs SET state = 'running', claimed_until = $3 WHERE id = $1 "
                           "AND state IN ('queued', 'running') AND claimed_by = $2",
                           "isi", id, instance, until);
    *mine = rc == QUN_DONE && qun_db_changes(db) > 0;
    return done_ok(rc);
}

qun_rc qun_queue_defer(qun_db_t *db, int64_t id, int64_t due_at, qun_err_t *err) {
    qun_rc rc =
        qun_db_run(db, NULL, err,
                   "UPDATE jobs SET state = 'queued', due_at = $2, last_error = 'held', claimed_by = NULL "
                   "WHERE id = $1",
                   "ii", id, due_at);
    return rc == QUN_DONE ? QUN_OK : QUN_STORE;
}

qun_rc qun_queue_done(qun_db_t *db, int64_t id, int64_t now, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err, "UPDATE jobs SET state = 'done', finished_at = $2 WHERE id = $1",
                           "ii", id, now);
    return rc == QUN_DONE ? QUN_OK : QUN_STORE;
}

qun_rc qun_queue_fail(qun_db_t *db, int64_t id, int attempts, const char *msg, int max_attempts, int64_t now,
                      qun_err_t *err) {
    int64_t backoff = (int64_t)1 << (attempts < 10 ? attempts : 10);
    return done_ok(qun_db_run(
        db, NULL, err,
        "UPDATE jobs SET attempts = attempts + 1, last_error = $2, due_at = $3, claimed_by = NULL, "
        "state = CASE WHEN attempts + 1 >= $4 THEN 'failed' ELSE 'queued' END WHERE id = $1",
        "isii", id, msg, now + backoff, (int64_t)max_attempts));
}
