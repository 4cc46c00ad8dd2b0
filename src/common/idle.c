/* SPDX-License-Identifier: MIT */
/* A background thread's rest between rounds, and its stop (include/qun/idle.h). */
#include "qun/idle.h"

#include <time.h>

void qun_idle_init(qun_idle_t *d) {
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->stopping = false;
}

void qun_idle_destroy(qun_idle_t *d) {
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

bool qun_idle_stopping(qun_idle_t *d) {
    pthread_mutex_lock(&d->mu);
    bool s = d->stopping;
    pthread_mutex_unlock(&d->mu);
    return s;
}

void qun_idle_rest(qun_idle_t *d, long ms) {
    pthread_mutex_lock(&d->mu);
    if (!d->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
}

void qun_idle_stop(qun_idle_t *d) {
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}
