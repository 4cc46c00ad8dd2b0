/* SPDX-License-Identifier: MIT */
/* The idempotency store: the answer to a POST remembered under its Idempotency-Key
 * (per user; 0 for an anonymous caller), so a retried request is answered with the
 * first answer instead of running twice (docs/api.md).  A key is bound to the digest
 * of its request: the same key with another request is refused.  Keys are forgotten
 * after qun_core_cfg.idempotency_ttl (the scheduler's housekeeping).
 *
 * On the writer the router takes the key's lock (qun_idem_lock), looks the key up
 * (qun_idem_get), runs the handler and stores its answer (qun_idem_put), all in one
 * transaction; loops look keys up on their readers to answer replays without
 * queueing on the writer. */
#ifndef QUN_IDEMPOTENCY_H
#define QUN_IDEMPOTENCY_H

#include <stdbool.h>
#include <stdint.h>

#include "qun/errors.h"
#include "qun/store.h"

/* The answer stored under a key. */
typedef struct {
    int status;
    char *body; /* the answer's text ("" for an empty answer), malloc'd: the caller frees it */
} qun_idem_answer_t;

/* Look up key (at most 128 bytes) of user uid (0: anonymous).  digest is the SHA-256 hex
 * of the request being made.  Returns QUN_OK with *found false when nothing is stored
 * or what is stored is older than idempotency_ttl (forgotten, whether or not housekeeping
 * has deleted it yet);
 * QUN_OK with *found true and *out filled (out->body owned by the caller) when the key
 * holds the answer to this same request; QUN_IDEMPOTENCY_KEY_REUSED when it holds the
 * answer to another request; a store error or QUN_NOMEM otherwise. */
qun_rc qun_idem_get(qun_db_t *db, int64_t uid, const char *key, const char *digest, bool *found,
                    qun_idem_answer_t *out, qun_err_t *err);
/* Inside the open (writer) transaction, wait until no other transaction holds the lock of
 * (uid, key), and hold it until this one ends: with several qund on one PostgreSQL
 * database, the first request with a key runs and the others then find its answer.  Two
 * keys may share a lock (a hash), which only makes one wait for the other. */
qun_rc qun_idem_lock(qun_db_t *db, int64_t uid, const char *key, qun_err_t *err);
/* Inside the open (writer) transaction, remember the answer (status, body; NULL body is
 * stored as "") to the request of digest under (uid, key), in place of a forgotten one.  Returns
 * QUN_IDEMPOTENCY_KEY_IN_FLIGHT when the key was stored since the caller looked it up
 * (the caller should then roll back and let the client retry), or a store error. */
qun_rc qun_idem_put(qun_db_t *db, int64_t uid, const char *key, const char *digest, int status,
                    const char *body, qun_err_t *err);

#endif
