/* SPDX-License-Identifier: MIT */
/* A worker thread of the HTTP server, private to src/http. */
#ifndef QUN_WORKER_H
#define QUN_WORKER_H

#include <pthread.h>

#include <event2/event.h>

#include "http.h"

struct qun_worker {
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    qun_db_t *db;         /* read-only connection of this thread */
    pthread_mutex_t mu;   /* guards done_head */
    qun_wop_t *done_head; /* writes finished by the writer, to answer */
    struct event *done_ev;
    qun_gate_loop_t *gate;     /* the connections' framing state (gate.c) */
    qun_actor_cache_t *actors; /* sessions this loop authenticated (actors.c) */
    struct evconnlistener *listener;
    struct event *accept_retry; /* re-enables the listener after a failed accept */
    int reserve_fd;             /* a descriptor kept to answer connections when none is free */
    int64_t starved_log_ms;     /* when the last "no descriptor" warning was logged */
};

/* Queue r's write on the group-commit writer; the answer is sent from this worker's
 * loop once the write is durable. */
void qun_worker_submit_write(qun_req_t *r, qun_rc (*fn)(qun_db_t *, void *, qun_err_t *));
/* Hand r (r->slow set) to its pool (slow.c); false when its queue is full.  Once the work is
 * done (qun_worker_slow_done, on the pool's thread), the loop calls qun_router_slow_done. */
bool qun_worker_submit_slow(qun_req_t *r);
void qun_worker_slow_done(qun_req_t *r);

#endif
