/* SPDX-License-Identifier: MIT */
/* Work too slow for an HTTP loop, on pools of threads of its own:
 *   - passwords (`qun-passwords`): argon2id, about 100 ms of CPU and 64 MiB a password by
 *     design.  On a loop it held every other connection of that loop for as long: beside
 *     four sign-ins a second, others' GET p99 went from 2.5 to 176 ms (bench/signins.py);
 *   - files (`qun-files`): an upload's bytes hashed, written and fsynced (qun_blob_put),
 *     tens of milliseconds for a photo and more for a video, and an import's archive read,
 *     checked and staged (seconds for a large group), on the loop until then.
 * Each pool has as many threads as there are loops, so no more of such work runs at once,
 * and no more memory is taken, than when the loops did it.
 *
 * A route's prep does its reads and checks on the loop and sets r->slow (and r->slow_kind);
 * the router hands the request here (qun_worker_submit_slow), a thread of its pool runs
 * r->slow(r), and the request goes back to its loop through the loop's completion queue,
 * where the router carries on after prep (qun_router_slow_done).
 *
 * r->slow may use only r->json, r->body, r->actor, r->scratch and r->err: the loop does
 * not touch r meanwhile, and its database connection and the evhttp request are the
 * loop's.  On a file thread r->db is the thread's own read-only connection instead, in a
 * read transaction of its own for the call.
 *
 * At most argon2_queue (upload_queue) requests wait in a pool (those being worked on not
 * counted); one more is answered 503 UNAVAILABLE with Retry-After at once rather than
 * after seconds behind the others.  Once qund is stopping, what still waits is answered
 * 503 without the work. */
#include <pthread.h>
#include <stdatomic.h>

#include "qun/util.h"
#include "worker.h"

typedef struct pool pool_t;

typedef struct {
    pool_t *pool;
    pthread_t thread;
    qun_db_t *db; /* the thread's read-only connection, for a pool that reads */
} slow_thread_t;

struct pool {
    const char *thread_name;
    const int *cap; /* a qun_server_cfg field */
    bool reads;     /* its work reads the store (an import's checks) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qun_req_t *head, **tail;
    int waiting, nthreads;
    bool stop;
    slow_thread_t *threads;
    _Atomic uint64_t done, refused;
};

static pool_t g_pools[QUN_SLOW_KINDS] = {
    [QUN_SLOW_PASSWORD] = {.thread_name = "qun-passwords",
                           .cap = &qun_server_cfg.argon2_queue,
                           .mu = PTHREAD_MUTEX_INITIALIZER,
                           .cv = PTHREAD_COND_INITIALIZER},
    [QUN_SLOW_FILE] = {.thread_name = "qun-files",
                       .cap = &qun_server_cfg.upload_queue,
                       .reads = true,
                       .mu = PTHREAD_MUTEX_INITIALIZER,
                       .cv = PTHREAD_COND_INITIALIZER},
};

/* r->slow(r), on the thread's own connection when it has one. */
static qun_rc work(slow_thread_t *t, qun_req_t *r) {
    if (!t->db) return r->slow(r);
    qun_db_t *loops = r->db;
    r->db = t->db;
    bool reading = qun_db_read_begin(t->db, &r->err) == QUN_OK;
    qun_rc rc = r->slow(r);
    if (reading) qun_db_read_end(t->db);
    r->db = loops;
    return rc;
}

static void *slow_main(void *arg) {
    slow_thread_t *t = arg;
    pool_t *p = t->pool;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        qun_req_t *r = p->head;
        if (r) {
            p->head = r->slow_next;
            if (!p->head) p->tail = &p->head;
            p->waiting--;
        }
        pthread_mutex_unlock(&p->mu);
        if (!r) return NULL; /* stopping, and nothing waits */
        r->slow_next = NULL;
        r->slow_rc =
            qun_server_stopping() ? qun_fail(&r->err, QUN_UNAVAILABLE, "the server is stopping") : work(t, r);
        atomic_fetch_add(&p->done, 1);
        qun_worker_slow_done(r);
    }
}

qun_rc qun_slow_start(int threads, qun_err_t *err) {
    for (int k = 0; k < QUN_SLOW_KINDS; k++) {
        pool_t *p = &g_pools[k];
        p->stop = false;
        p->head = NULL;
        p->tail = &p->head;
        int n = threads > 0 ? threads : 1;
        p->threads = qun_xcalloc((size_t)n, sizeof *p->threads);
        for (int i = 0; i < n; i++) {
            p->threads[i].pool = p;
            qun_rc rc =
                p->reads ? qun_db_open(qun_server_cfg.db_path, true, false, &p->threads[i].db, err) : QUN_OK;
            if (rc != QUN_OK) {
                qun_slow_stop();
                return rc;
            }
            qun_thread_start(&p->threads[i].thread, p->thread_name, slow_main, &p->threads[i]);
            p->nthreads = i + 1;
        }
    }
    return QUN_OK;
}

void qun_slow_stop(void) {
    for (int k = 0; k < QUN_SLOW_KINDS; k++) {
        pool_t *p = &g_pools[k];
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->nthreads; i++) {
            pthread_join(p->threads[i].thread, NULL);
            qun_db_close(p->threads[i].db);
        }
        free(p->threads);
        p->threads = NULL;
        p->nthreads = 0;
    }
}

bool qun_slow_submit(qun_req_t *r) {
    pool_t *p = &g_pools[r->slow_kind];
    int cap = *p->cap > 0 ? *p->cap : 1;
    pthread_mutex_lock(&p->mu);
    bool ok = p->nthreads > 0 && !p->stop && p->waiting < cap;
    if (ok) {
        r->slow_next = NULL;
        *p->tail = r;
        p->tail = &r->slow_next;
        p->waiting++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (!ok) atomic_fetch_add(&p->refused, 1);
    return ok;
}

void qun_slow_stats(qun_slow_kind_t kind, uint64_t *done, uint64_t *refused, int *waiting) {
    pool_t *p = &g_pools[kind];
    *done = atomic_load(&p->done);
    *refused = atomic_load(&p->refused);
    pthread_mutex_lock(&p->mu);
    *waiting = p->waiting;
    pthread_mutex_unlock(&p->mu);
}
