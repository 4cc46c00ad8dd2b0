/* SPDX-License-Identifier: MIT */
/* The idempotency store (include/qun/idempotency.h): answers remembered under
 * (user, Idempotency-Key) in the `idempotency` table, each bound to the digest of the
 * request that made it. */
#include <stdlib.h>
#include <string.h>

#include "qun/core.h"
#include "qun/idempotency.h"
#include "qun/util.h"

/* A key is remembered for idempotency_ttl: older rows are forgotten here already, not
 * only when housekeeping gets to deleting them, so the life is the same on every store
 * and under any load. */
static int64_t oldest_kept(void) {
    return qun_now() - qun_core_cfg.idempotency_ttl;
}

qun_rc qun_idem_get(qun_db_t *db, int64_t uid, const char *key, const char *digest, bool *found,
                    qun_idem_answer_t *out, qun_err_t *err) {
    qun_q_t *q;
    *found = false;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT request_digest, status, body FROM idempotency "
                           "WHERE user_id = $1 AND key = $2 AND created_at >= $3",
                           "isi", uid, key, oldest_kept());
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    /* In constant time: the digest of someone's request is not to be learnt by timing. */
    if (!qun_ct_equal(qun_q_col_text(q, 0), digest, 64)) {
        qun_q_done(q);
        return qun_fail(err, QUN_IDEMPOTENCY_KEY_REUSED, "this Idempotency-Key was used for another request");
    }
    out->status = (int)qun_q_col_int(q, 1);
    out->body = strdup(qun_q_col_text(q, 2));
    qun_q_done(q);
    if (!out->body) return qun_fail(err, QUN_NOMEM, "cannot copy a stored answer");
    *found = true;
    return QUN_OK;
}

/* The lock of (uid, key): FNV-1a of both in the low 32 bits, under QUN_IDEM_LOCK's. */
static int64_t lock_key(int64_t uid, const char *key) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint8_t)(uid >> (8 * i))) * 16777619u;
    for (const char *k = key; *k; k++)
        h = (h ^ (uint8_t)*k) * 16777619u;
    return ((int64_t)QUN_IDEM_LOCK << 32) | h;
}

qun_rc qun_idem_lock(qun_db_t *db, int64_t uid, const char *key, qun_err_t *err) {
    return qun_db_xlock(db, lock_key(uid, key), err);
}

qun_rc qun_idem_put(qun_db_t *db, int64_t uid, const char *key, const char *digest, int status,
                    const char *body, qun_err_t *err) {
    /* A forgotten row housekeeping has not deleted yet gives way to the new answer. */
    qun_rc rc =
        qun_db_run(db, NULL, err,
                   "INSERT INTO idempotency(user_id, key, request_digest, status, body, created_at) "
                   "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO UPDATE SET "
                   "request_digest = excluded.request_digest, status = excluded.status, "
                   "body = excluded.body, created_at = excluded.created_at "
                   "WHERE idempotency.created_at < $7",
                   "issisii", uid, key, digest, (int64_t)status, body ? body : "", qun_now(), oldest_kept());
    if (rc != QUN_DONE) return rc;
    /* Someone stored this key since the lookup (the lock makes it unreachable, but a
     * duplicate must never become a 500): the caller undoes its run, asks for a retry. */
    if (qun_db_changes(db) == 0)
        return qun_fail(err, QUN_IDEMPOTENCY_KEY_IN_FLIGHT,
                        "another request with this Idempotency-Key finished first; retry to get its answer");
    return QUN_OK;
}
