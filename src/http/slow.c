/* SPDX-License-Identifier: MIT */
/* Work too slow for an HTTP loop: argon2id, about 100 ms of CPU and 64 MiB a password by
 * design.  On a loop it stalled every connection of that loop for as long: beside four
 * sign-ins a second, others' GET p99 went from 2 to 170 ms (bench/README.md, "Sign-ins
 * beside reads").
 *
 * A route's prep does its reads on the loop and sets r->slow; the router hands the request
 * here (qun_worker_submit_slow), one of the pool's threads (`qun-slow`, as many as the
 * loops, so at most as many hashes run at once as before) runs r->slow(r), and the request
 * goes back to its loop through the loop's completion queue, where the router carries on
 * after prep (qun_router_slow_done).
 *
 * r->slow may use only r->json, r->scratch and r->err: the loop does not touch r
 * meanwhile, and the database connection and the evhttp request are the loop's.
 *
 * At most qun_server_cfg.argon2_queue requests wait (those being worked on not counted); one
 * more is answered 503 UNAVAILABLE with Retry-After at once rather than after seconds
 * behind the others.  Once qund is stopping, what still waits is answered 503 without the
 * work. */
#include <pthread.h>
#include <stdatomic.h>

#include "qun/util.h"
#include "worker.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static qun_req_t *g_head, **g_tail = &g_head;
static int g_waiting, g_nthreads;
static bool g_stop;
static pthread_t *g_threads;
static _Atomic uint64_t m_done, m_refused;

static void *slow_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g_mu);
        while (!g_head && !g_stop)
            pthread_cond_wait(&g_cv, &g_mu);
        qun_req_t *r = g_head;
        if (r) {
            g_head = r->slow_next;
            if (!g_head) g_tail = &g_head;
            g_waiting--;
        }
        pthread_mutex_unlock(&g_mu);
        if (!r) return NULL; /* stopping, and nothing waits */
        r->slow_next = NULL;
        r->slow_rc =
            qun_server_stopping() ? qun_fail(&r->err, QUN_UNAVAILABLE, "the server is stopping") : r->slow(r);
        atomic_fetch_add(&m_done, 1);
        qun_worker_slow_done(r);
    }
}

void qun_slow_start(int threads) {
    g_stop = false;
    g_nthreads = threads > 0 ? threads : 1;
    g_threads = qun_xcalloc((size_t)g_nthreads, sizeof *g_threads);
    for (int i = 0; i < g_nthreads; i++)
        qun_thread_start(&g_threads[i], "qun-slow", slow_main, NULL);
}

void qun_slow_stop(void) {
    pthread_mutex_lock(&g_mu);
    g_stop = true;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < g_nthreads; i++)
        pthread_join(g_threads[i], NULL);
    free(g_threads);
    g_threads = NULL;
    g_nthreads = 0;
}

bool qun_slow_submit(qun_req_t *r) {
    int cap = qun_server_cfg.argon2_queue > 0 ? qun_server_cfg.argon2_queue : 1;
    pthread_mutex_lock(&g_mu);
    bool ok = !g_stop && g_waiting < cap;
    if (ok) {
        r->slow_next = NULL;
        *g_tail = r;
        g_tail = &r->slow_next;
        g_waiting++;
        pthread_cond_signal(&g_cv);
    }
    pthread_mutex_unlock(&g_mu);
    if (!ok) atomic_fetch_add(&m_refused, 1);
    return ok;
}

void qun_slow_stats(uint64_t *done, uint64_t *refused, int *waiting) {
    *done = atomic_load(&m_done);
    *refused = atomic_load(&m_refused);
    pthread_mutex_lock(&g_mu);
    *waiting = g_waiting;
    pthread_mutex_unlock(&g_mu);
}
