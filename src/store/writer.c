/* SPDX-License-Identifier: MIT */
/* Group commit: a single writer thread batches queued operations into one
 * transaction, one savepoint per operation (none for an operation marked unguarded,
 * writer.h), and one COMMIT (synchronous=FULL, so one fsync) per batch.  An operation's done callback runs
 * only after the commit that made it durable, which is what lets the HTTP layer acknowledge a write. */
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qun/queue.h"
#include "qun/util.h"
#include "qun/writer.h"

#define AHEAD_RUN 64 /* operations whose reads are sent ahead together (qun_wop_t.ahead) */

struct qun_writer {
    qun_db_t *db;
    int max_batch;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qun_wop_t *head, *tail;
    bool stopping;
    bool yield_ok; /* qun_writer_yield: background batches at SCHED_IDLE */
    bool nice_ok;  /* qun_writer_yield: and the thread's nice may go to QUN_GENTLE_NICE and back */
    bool hurry;    /* qun_writer_hurry: background batches at QUN_GENTLE_NICE instead */
    int cls;       /* the thread's class now (enum below); guarded by mu */
    _Atomic pid_t tid;
    _Atomic uint64_t commits, ops, failed;
    void (*on_commit)(void *arg); /* guarded by mu */
    void *on_commit_arg;
    void (*on_job)(void *arg, int64_t due_at); /* guarded by mu */
    void *on_job_arg;
    qun_rc (*before_commit)(qun_db_t *db, void *arg, qun_err_t *err); /* guarded by mu */
    void *before_commit_arg;
};

static _Atomic int64_t foreground_ms; /* CLOCK_MONOTONIC_COARSE ms of the last one queued, 0: none */

static int64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0 */
}

bool qun_writer_foreground_within(int64_t ms) {
    int64_t at = atomic_load(&foreground_ms);
    return at && coarse_ms() - at < ms;
}

/* The writer thread's CPU class: normal for a batch somebody waits on, SCHED_IDLE for
 * one of background work only, and SCHED_OTHER at QUN_GENTLE_NICE for background work
 * that waited too long for a CPU (qun_writer_hurry); at nice 0 where the process may not
 * change a thread's nice (a seccomp filter that refuses setpriority). */
enum { CLS_NORMAL, CLS_GENTLE, CLS_IDLE };

/* Put the writer thread in class cls; with mu held.  Within the normal policy the nice
 * value tells gentle from normal; SCHED_IDLE ignores it, so it is left at 0 there:
 * SCHED_IDLE alone is what lets a woken loop preempt the writer. */
static void set_class(qun_writer_t *w, int cls) {
    if (w->cls == cls) return;
    pid_t tid = atomic_load(&w->tid);
    bool ok = pthread_setschedparam(w->thread, cls == CLS_IDLE ? SCHED_IDLE : SCHED_OTHER,
                                    &(struct sched_param){0}) == 0;
    if (ok && w->nice_ok && (cls == CLS_GENTLE || w->cls == CLS_GENTLE))
        ok = tid && setpriority(PRIO_PROCESS, (id_t)tid, cls == CLS_GENTLE ? QUN_GENTLE_NICE : 0) == 0;
    if (ok) {
        w->cls = cls;
    } else if (cls == CLS_NORMAL && w->yield_ok) {
        /* only when the limits changed since qun_writer_yield's trial */
        qun_log("error", "writer: cannot return to normal CPU priority; background work no longer yields");
        w->yield_ok = false; /* once: later submits still try, quietly */
    }
}

/* Take up to max_batch queued operations, or NULL when stopping with nothing left. */
static qun_wop_t *take_batch(qun_writer_t *w) {
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->stopping) {
        pthread_mutex_unlock(&w->mu);
        int ms = qun_db_notify_owed(w->db); /* sent when due: other instances wake */
        pthread_mutex_lock(&w->mu);
        if (w->head || w->stopping) break;
        if (ms <= 0) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)ms * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec += ts.tv_nsec / 1000000000L, ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    qun_wop_t *batch = w->head, *last = w->head;
    bool background = batch && batch->background;
    for (int n = 1; last && last->next && n < w->max_batch; n++) {
        last = last->next;
        background = background && last->background;
    }
    if (w->yield_ok) set_class(w, !background ? CLS_NORMAL : w->hurry ? CLS_GENTLE : CLS_IDLE);
    if (last) {
        w->head = last->next;
        if (!w->head) w->tail = NULL;
        last->next = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    return batch;
}

static void fail_all(qun_wop_t *batch, qun_rc rc, const qun_err_t *why) {
    for (qun_wop_t *op = batch; op; op = op->next) {
        if (op->rc == QUN_OK) {
            op->rc = rc;
            op->err = *why;
        }
    }
}

/* What the operations of a batch whose transaction broke are told: a full disk and a
 * lost database are worth naming (the client should wait, not just retry); anything
 * else is a retry. */
static qun_rc broken(qun_rc why) {
    return why == QUN_STORAGE_FULL || why == QUN_STORE_UNAVAILABLE || why == QUN_DESCRIPTORS_EXHAUSTED
               ? why
               : QUN_UNAVAILABLE;
}

/* Whether every operation of the batch may run beside other instances' batches
 * (qun_wop_t.shares_key), on a store where they would (one that locks rows). */
static bool batch_shares(qun_writer_t *w, const qun_wop_t *batch) {
    if (!qun_db_locks_rows(w->db)) return false;
    for (const qun_wop_t *op = batch; op; op = op->next)
        if (!op->shares_key) return false;
    return true;
}

/* The batch in shares_key order, stable (a merge sort of the list): the order in which
 * its row locks are taken, the same in every instance. */
static qun_wop_t *by_key(qun_wop_t *list) {
    if (!list || !list->next) return list;
    qun_wop_t *slow = list, *fast = list->next;
    while (fast && fast->next)
        slow = slow->next, fast = fast->next->next;
    qun_wop_t *right = slow->next;
    slow->next = NULL;
    qun_wop_t *a = by_key(list), *b = by_key(right), head = {0}, *tail = &head;
    while (a && b) {
        qun_wop_t **take = strcmp(b->shares_key, a->shares_key) < 0 ? &b : &a;
        tail = tail->next = *take;
        *take = (*take)->next;
    }
    tail->next = a ? a : b;
    return head.next;
}

/* The batch's transaction; true when it committed.  *batch may be reordered (by_key). */
static bool run_batch(qun_writer_t *w, qun_wop_t **batchp) {
    qun_err_t err = {{0}, {0}};
    qun_queue_take_hint(); /* what a broken batch before this one queued is gone */
    qun_queue_take_due_now(0, NULL, 0);
    bool shared = batch_shares(w, *batchp);
    if (shared) *batchp = by_key(*batchp);
    qun_wop_t *batch = *batchp;
    qun_rc rc = qun_db_exec(w->db, shared ? "BEGIN SHARED" : "BEGIN IMMEDIATE", &err);
    if (rc != QUN_OK) {
        for (qun_wop_t *op = batch; op; op = op->next)
            op->rc = QUN_OK;
        fail_all(batch, broken(rc), &err);
        return false;
    }
    qun_wop_t *unsent = batch; /* the first operation whose read was not sent ahead */
    for (qun_wop_t *op = batch; op; op = op->next) {
        op->err.msg[0] = op->err.field[0] = '\0';
        if (op == unsent) { /* a run's reads, in one round trip */
            for (int n = 0; unsent && unsent->ahead && n < AHEAD_RUN; unsent = unsent->next, n++)
                unsent->ahead(w->db, unsent->arg);
            qun_db_send_expected(w->db);         /* the ids they announced, in the same round trip */
            if (unsent == op) unsent = op->next; /* op has none */
        }
        if (op->unguarded) {
            int64_t written = qun_db_total_changes(w->db);
            op->rc = op->fn(w->db, op->arg, &op->err);
            if (op->rc == QUN_OK || (qun_rc_status(op->rc) < 500 && qun_db_total_changes(w->db) == written))
                continue;
            qun_log(op->rc == QUN_STORAGE_FULL ? "warn" : "error",
                    "writer: an operation without a savepoint failed: %s", op->err.msg);
            qun_db_exec(w->db, "ROLLBACK", &(qun_err_t){{0}, {0}});
            fail_all(batch, broken(op->rc), &op->err);
            return false;
        }
        op->rc = qun_db_savepoint(w->db, &op->err);
        if (op->rc == QUN_OK) op->rc = op->fn(w->db, op->arg, &op->err);
        if ((rc = qun_db_release(w->db, op->rc == QUN_OK, &err)) != QUN_OK) {
            /* The transaction itself broke: nothing of this batch is kept. */
            qun_log(rc == QUN_STORAGE_FULL ? "warn" : "error", "writer: savepoint release failed: %s",
                    err.msg);
            qun_db_exec(w->db, "ROLLBACK", &(qun_err_t){{0}, {0}});
            fail_all(batch, broken(rc), &err);
            return false;
        }
    }
    pthread_mutex_lock(&w->mu);
    qun_rc (*pre)(qun_db_t *, void *, qun_err_t *) = w->before_commit;
    void *pre_arg = w->before_commit_arg;
    pthread_mutex_unlock(&w->mu);
    if (pre && (rc = pre(w->db, pre_arg, &err)) != QUN_OK) {
        qun_log("error", "writer: the work before the commit broke the transaction: %s", err.msg);
        qun_db_exec(w->db, "ROLLBACK", &(qun_err_t){{0}, {0}});
        fail_all(batch, broken(rc), &err);
        return false;
    }
    if ((rc = qun_db_exec(w->db, "COMMIT", &err)) != QUN_OK) {
        qun_log(rc == QUN_STORAGE_FULL ? "warn" : "error", "writer: commit failed: %s", err.msg);
        qun_db_exec(w->db, "ROLLBACK", &(qun_err_t){{0}, {0}});
        fail_all(batch, broken(rc), &err);
        return false;
    }
    atomic_fetch_add(&w->commits, 1);
    int64_t due = qun_queue_take_hint();
    if (due) { /* under the lock: once on_job(NULL) returns, the old hook is never called */
        pthread_mutex_lock(&w->mu);
        if (w->on_job) w->on_job(w->on_job_arg, due);
        pthread_mutex_unlock(&w->mu);
    }
    return true;
}

/* After a commit and the batch's done callbacks, so that a loop answers the writes
 * before it fans their events out (a dissolution's 202 before its 500 members' frames). */
static void wake_loops(qun_writer_t *w) {
    pthread_mutex_lock(&w->mu);
    void (*hook)(void *) = w->on_commit;
    void *hook_arg = w->on_commit_arg;
    pthread_mutex_unlock(&w->mu);
    if (hook) hook(hook_arg);
}

static void *writer_main(void *arg) {
    qun_writer_t *w = arg;
    atomic_store(&w->tid, gettid());
    qun_wop_t *batch;
    while ((batch = take_batch(w))) {
        bool committed = run_batch(w, &batch);
        while (batch) {
            qun_wop_t *next = batch->next;
            atomic_fetch_add(&w->ops, 1);
            if (batch->rc != QUN_OK) atomic_fetch_add(&w->failed, 1);
            batch->next = NULL;
            batch->done(batch); /* may free batch */
            batch = next;
        }
        if (committed) wake_loops(w);
    }
    return NULL;
}

qun_rc qun_writer_start(qun_db_t *db, int max_batch, qun_writer_t **out, qun_err_t *err) {
    qun_writer_t *w = qun_xcalloc(1, sizeof *w);
    w->db = db;
    w->max_batch = max_batch > 0 ? max_batch : 256;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (qun_thread_start(&w->thread, "qun-writer", writer_main, w) != 0) {
        free(w);
        return qun_fail(err, QUN_INTERNAL, "cannot start the writer thread");
    }
    *out = w;
    return QUN_OK;
}

void qun_writer_stop(qun_writer_t *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    qun_db_close(w->db);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

void qun_writer_submit(qun_writer_t *w, qun_wop_t *op) {
    op->next = NULL;
    op->rc = QUN_OK;
    pthread_mutex_lock(&w->mu);
    if (!op->background) {
        atomic_store(&foreground_ms, coarse_ms());
        set_class(w, CLS_NORMAL); /* someone waits: the batch running finishes first */
    }
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

typedef struct {
    qun_wop_t op;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
} sync_op_t;

static void sync_done(qun_wop_t *op) {
    sync_op_t *s = (sync_op_t *)op;
    pthread_mutex_lock(&s->mu);
    s->finished = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static qun_rc run_sync(qun_writer_t *w, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *), void *arg,
                       bool background, qun_err_t *err) {
    sync_op_t s = {.op = {.fn = fn, .done = sync_done, .arg = arg, .background = background}};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    qun_writer_submit(w, &s.op);
    pthread_mutex_lock(&s.mu);
    while (!s.finished)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    if (err && s.op.rc != QUN_OK) *err = s.op.err;
    return s.op.rc;
}

qun_rc qun_writer_run(qun_writer_t *w, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *), void *arg,
                      qun_err_t *err) {
    return run_sync(w, fn, arg, false, err);
}

qun_rc qun_writer_run_background(qun_writer_t *w, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *), void *arg,
                                 qun_err_t *err) {
    return run_sync(w, fn, arg, true, err);
}

/* On a thread of its own: whether this process may go to SCHED_IDLE and come back
 * (ok[0]), and to QUN_GENTLE_NICE and back (ok[1]). */
static void *try_idle(void *arg) {
    bool *ok = arg;
    struct sched_param none = {0};
    id_t tid = (id_t)gettid();
    ok[0] = pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) == 0 &&
            pthread_setschedparam(pthread_self(), SCHED_OTHER, &none) == 0;
    ok[1] = setpriority(PRIO_PROCESS, tid, QUN_GENTLE_NICE) == 0 && setpriority(PRIO_PROCESS, tid, 0) == 0;
    return NULL;
}

bool qun_writer_yield(qun_writer_t *w, bool on) {
    bool ok[2] = {false, false};
    pthread_t t;
    if (on && pthread_create(&t, NULL, try_idle, ok) == 0) pthread_join(t, NULL);
    pthread_mutex_lock(&w->mu);
    w->yield_ok = ok[0];
    w->nice_ok = ok[0] && ok[1];
    if (!ok[0]) set_class(w, CLS_NORMAL);
    pthread_mutex_unlock(&w->mu);
    return ok[0];
}

void qun_writer_hurry(qun_writer_t *w, bool on) {
    pthread_mutex_lock(&w->mu);
    w->hurry = on;
    if (w->yield_ok && w->cls != CLS_NORMAL)
        set_class(w, on ? CLS_GENTLE : CLS_IDLE); /* the batch running too */
    pthread_mutex_unlock(&w->mu);
}

bool qun_writer_yields(qun_writer_t *w) {
    pthread_mutex_lock(&w->mu);
    bool ok = w->yield_ok;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static qun_rc noop_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)db, (void)arg, (void)err;
    return QUN_OK;
}

void qun_writer_on_job(qun_writer_t *w, void (*fn)(void *arg, int64_t due_at), void *arg) {
    pthread_mutex_lock(&w->mu);
    w->on_job = fn;
    w->on_job_arg = arg;
    pthread_mutex_unlock(&w->mu);
}

void qun_writer_before_commit(qun_writer_t *w, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *), void *arg) {
    pthread_mutex_lock(&w->mu);
    w->before_commit = fn;
    w->before_commit_arg = arg;
    pthread_mutex_unlock(&w->mu);
    /* A batch that read the old hook commits before this no-op runs. */
    if (!fn) qun_writer_run(w, noop_txn, NULL, NULL);
}

void qun_writer_on_commit(qun_writer_t *w, void (*fn)(void *arg), void *arg) {
    pthread_mutex_lock(&w->mu);
    w->on_commit = fn;
    w->on_commit_arg = arg;
    pthread_mutex_unlock(&w->mu);
}

void qun_writer_stats(qun_writer_t *w, uint64_t *commits, uint64_t *ops, uint64_t *failed) {
    *commits = atomic_load(&w->commits);
    *ops = atomic_load(&w->ops);
    *failed = atomic_load(&w->failed);
}
