/* SPDX-License-Identifier: MIT */
/* A background thread's rest between rounds, and its stop: the mail sender and the
 * webhook sender each loop "work, then rest IDLE_MS unless told to stop", and stopping
 * must wake a thread that rests. */
#ifndef QUN_IDLE_H
#define QUN_IDLE_H

#include <pthread.h>
#include <stdbool.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
} qun_idle_t;

void qun_idle_init(qun_idle_t *d);
void qun_idle_destroy(qun_idle_t *d);
/* True once qun_idle_stop was called. */
bool qun_idle_stopping(qun_idle_t *d);
/* Rest up to ms milliseconds; returns at once when stopping, or when qun_idle_stop
 * is called meanwhile. */
void qun_idle_rest(qun_idle_t *d, long ms);
/* Mark the thread stopping and wake it if it rests. */
void qun_idle_stop(qun_idle_t *d);

#endif
