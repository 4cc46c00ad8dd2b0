/* SPDX-License-Identifier: MIT */
/* Mail delivery of notifications (src/jobs/mail.c): one thread, apart from the job
 * scheduler and the webhook thread, sends the rows of `mail_outbox` with libcurl's
 * SMTP client to the relay of `smtp_url`, a few at a time, and records each outcome
 * through the writer.  Mail is written only inside write transactions (core/notify.c,
 * core/email.c), so a request never waits for a relay; a relay that is down delays
 * mail (retries with doubling backoff) without losing it.  Delivery is at least once:
 * a crash between the relay's acceptance and the record re-sends the mail with the
 * same Message-ID, by which mail clients drop the repeat. */
#ifndef QUN_MAIL_H
#define QUN_MAIL_H

#include <stdint.h>

#include "qun/errors.h"
#include "qun/writer.h"

typedef struct qun_mail qun_mail_t;

/* Start the mail thread with its own read connection at db_path, writing through
 * writer.  Without smtp_url *out is NULL and nothing runs (no mail is queued either).
 * On success *out is owned (qun_mail_stop). */
qun_rc qun_mail_start(const char *db_path, qun_writer_t *writer, qun_mail_t **out, qun_err_t *err);
/* Stop the thread; a mail in flight is re-sent after the next start.  NULL is accepted. */
void qun_mail_stop(qun_mail_t *m);
/* Counters for /metrics since start: mails the relay accepted, attempts that failed,
 * mails that went dead after the last attempt. */
void qun_mail_stats(uint64_t *sent, uint64_t *failed, uint64_t *dead);

#endif
