/* SPDX-License-Identifier: MIT */
/* Brute-force protection: failed proofs of identity (a login's password, a re-entered
 * step-up password, a TOTP code, a challenge signature) are counted per account (the
 * username, whether or not it exists, so a lock reveals nothing about who exists) and
 * per network (/24 for IPv4 and IPv4-mapped IPv6, /64 for IPv6) within a window.  When
 * either count reaches its threshold a lock engages for a fixed duration; while it
 * holds, every attempt of that account or from that network is refused before any
 * password is checked, so a correct guess during a lock still fails.  Locks are rows
 * admins list and clear.  All times come from qun_now(), so the test clock moves them.
 *
 * The check runs on a reader; recording a failure and clearing a lock are writes. */
#ifndef QUN_LOCKOUT_H
#define QUN_LOCKOUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/errors.h"
#include "qun/store.h"

typedef struct {
    int account_max;  /* failures of one account in the window that lock it (10; 0: never) */
    int network_max;  /* failures from one network in the window that lock it (100; 0: never) */
    int64_t window;   /* seconds failures are counted over (900) */
    int64_t duration; /* seconds a lock holds (900) */
} qun_lockout_cfg_t;
extern qun_lockout_cfg_t qun_lockout_cfg;

#define QUN_NET_MAX 56

/* The network of a peer address as text into out: "203.0.113.0/24", "2001:db8:0:1::/64".
 * "" when ip is not an address.  Loopback is a network like any other. */
void qun_lockout_network(const char *ip, char out[QUN_NET_MAX]);

/* What a failed request was, by its code: "password", "totp" or "signature" for the
 * codes that count (BAD_CREDENTIALS, TOTP_INVALID, TOTP_REPLAYED, SIGNATURE_INVALID),
 * NULL for every other code. */
const char *qun_lockout_counts(qun_rc rc);

/* Whether account (a username; NULL or "": none) or the network of ip is locked now.
 * QUN_OK when neither is; QUN_LOCKED_OUT with *retry_after (seconds until the lock
 * ends, at least 1) and *info = {scope, locked_until, retry_after} (owned by the
 * caller) when one is. */
qun_rc qun_lockout_check(qun_db_t *db, const char *account, const char *ip, int64_t *retry_after,
                         json_t **info, qun_err_t *err);

/* Count one failure of kind against account and the network of ip (a write).  When a
 * count reaches its threshold, a lock engages and the count starts again; *retry_after
 * then receives the lock's duration (else 0) and *info (may be NULL) the lock as
 * qun_lockout_check describes it (owned by the caller; NULL when no lock engaged). */
qun_rc qun_lockout_fail(qun_db_t *db, const char *account, const char *ip, const char *kind,
                        int64_t *retry_after, json_t **info, qun_err_t *err);

/* Forget account's failures (after a successful login; a write). */
qun_rc qun_lockout_reset(qun_db_t *db, const char *account, qun_err_t *err);

/* Locks for server admins, in order of id after cursor after: only active ones,
 * or all (active, expired, cleared) when all is true.  *out = {items, next_cursor};
 * each item {id, scope, subject, kind, failures, locked_at, locked_until, state,
 * cleared_at, cleared_by}. */
qun_rc qun_lockout_list(qun_db_t *db, const qun_actor_t *a, bool all, int64_t after, int limit, json_t **out,
                        qun_err_t *err);

/* Clear lock lid (server admins; a write): it ends now, the failures counted against
 * its subject are forgotten, and the clearing is ledgered (`lockout.cleared`, with a
 * digest of the subject, not the subject).  *out = the lock.  LOCK_NOT_FOUND when
 * there is no such lock; a lock already ended is answered as it is. */
qun_rc qun_lockout_clear(qun_db_t *db, const qun_actor_t *a, const char *lid, json_t **out, qun_err_t *err);

#endif
