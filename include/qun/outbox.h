/* SPDX-License-Identifier: MIT */
/* Webhook delivery of the outbox.  Jobs write events to `outbox` in the same
 * transaction as the work they describe; one delivery thread, apart from the job
 * scheduler so a slow receiver never stalls purges, POSTs each event to every
 * configured URL, signed with HMAC-SHA256, and records per URL whether it was
 * delivered, is waiting for a retry, or is dead after the last attempt.  A delivery is
 * marked delivered only after a 2xx answer, so delivery is at least once: receivers
 * drop repeats by the event id, which is the same on every attempt.  See
 * docs/webhooks.md for the wire format. */
#ifndef QUN_OUTBOX_H
#define QUN_OUTBOX_H

#include <jansson.h>
#include <stdint.h>

#include "qun/errors.h"
#include "qun/store.h"
#include "qun/writer.h"

/* Delivery settings (the webhook_* keys of qund.conf). */
typedef struct {
    const char *urls;   /* comma-separated http(s) URLs; NULL or "" = no delivery */
    const char *secret; /* HMAC-SHA256 key; required when urls is set */
    int timeout_ms;     /* whole-request timeout of one attempt */
    int max_attempts;   /* attempts per URL before the delivery is dead */
    int backoff_base;   /* seconds before the first retry; doubles per attempt */
} qun_outbox_cfg_t;
extern qun_outbox_cfg_t qun_outbox_cfg;

typedef struct qun_outbox qun_outbox_t;

/* Check qun_outbox_cfg: every URL http(s), a secret when any URL is set.  QUN_OK with
 * nothing to do when no URL is set. */
qun_rc qun_outbox_cfg_check(qun_err_t *err);
/* Start the delivery thread, which opens its own read connection at db_path and writes
 * through writer.  When no URL is configured *out is NULL and nothing runs: events
 * stay undelivered until a URL is set.  On success *out is owned (qun_outbox_stop). */
qun_rc qun_outbox_start(const char *db_path, qun_writer_t *writer, qun_outbox_t **out, qun_err_t *err);
/* Stop the thread; a batch in flight is abandoned unrecorded and re-sent after the next
 * start (at least once).  NULL is accepted. */
void qun_outbox_stop(qun_outbox_t *o);

/* Seconds before retry number attempts + 1 of a delivery whose first retry waits base
 * seconds: doubled per attempt, capped at 6 h, with "equal jitter" (half fixed, half
 * random).  The mail thread (jobs/mail.c) retries the same way. */
int64_t qun_backoff(int64_t base, int64_t attempts);

/* Counters for /metrics since start: attempts answered 2xx, attempts that failed
 * (non-2xx, timeout, connection error) and deliveries that went dead. */
void qun_outbox_stats(uint64_t *delivered, uint64_t *failed, uint64_t *dead);

/* Dead deliveries, oldest event first, after the cursor `after` (a delivery row id; 0
 * from the start), at most limit.  *out = {items: [...], next_cursor} (owned). */
qun_rc qun_outbox_dead_list(qun_db_t *db, int64_t after, int limit, json_t **out, qun_err_t *err);
/* Requeue every dead delivery of the event event_id with a fresh round of attempts,
 * due now.  *out = {id, requeued} (owned); QUN_DEAD_LETTER_NOT_FOUND when the event
 * has no dead delivery.  Run on the writer. */
qun_rc qun_outbox_retry(qun_db_t *db, const char *event_id, json_t **out, qun_err_t *err);

#endif
