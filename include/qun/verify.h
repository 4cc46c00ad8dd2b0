/* SPDX-License-Identifier: MIT */
/* Verification methods beyond the confirmation token: device keys (Ed25519 keys a
 * device registers and signs challenges with), challenges (method `device_key`: the
 * requesting device signs; method `qr`: another trusted device of the same user signs
 * what a QR code shows), TOTP step-up (RFC 6238 via liboath, sealed secrets, ±1 step
 * drift and replay protection) and the policy of which method each platform needs.
 *
 * The signed message of a challenge is the exact byte string
 *     "qun-challenge:v1\n" id "\n" nonce "\n" action "\n" group "\n" params_digest
 * where nonce is the base64url text the API answered, and group and params_digest are
 * "" when the challenge has none.  No trailing newline.
 *
 * Functions that write (register, create, approve, consume, enroll, confirm, check) run
 * on the writer; the others may run on a reader. */
#ifndef QUN_VERIFY_H
#define QUN_VERIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/errors.h"
#include "qun/risk.h"
#include "qun/store.h"

typedef struct {
    int64_t challenge_ttl;   /* seconds a challenge lives (120) */
    unsigned totp_step;      /* RFC 6238 time step (30 s) */
    unsigned totp_digits;    /* 6 */
    unsigned totp_window;    /* accepted drift in steps either side (1) */
    const char *totp_issuer; /* "qun" */
} qun_verify_cfg_t;
extern qun_verify_cfg_t qun_verify_cfg;

#define QUN_CHALLENGE_DOMAIN "qun-challenge:v1"

/* ---- device keys ---- */
/* Register the Ed25519 public key (32 bytes) of the actor's current device.  The same
 * key again succeeds; another key on a device that has one is DEVICE_KEY_EXISTS.
 * *out = {device_id, public_key, created_at}. */
qun_rc qun_device_key_register(qun_db_t *db, const qun_actor_t *a, const unsigned char pk[32],
                               json_t **out, qun_err_t *err);
/* The actor's devices: {items: [{device_id, platform, first_seen, last_seen, has_key, current}]}. */
qun_rc qun_device_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);

/* ---- challenges ---- */
/* Issue a challenge for actor's current session: method "device_key" or "qr", bound
 * to action (required), group (public id or NULL) and params_digest (64 hex or NULL).
 * *out = {id, nonce, expires_at, method, action, group, params_digest, state}. */
qun_rc qun_challenge_create(qun_db_t *db, const qun_actor_t *a, const char *method,
                            const char *action, const char *group, const char *params_digest,
                            json_t **out, qun_err_t *err);
/* Approve challenge cid of the actor's account with a signature (64 bytes) by the
 * registered key of device_id, a device of the same account.  For method "qr" the
 * device must differ from the requesting one.  *out = the challenge's status. */
qun_rc qun_challenge_approve(qun_db_t *db, const qun_actor_t *a, const char *cid,
                             const char *device_id, const unsigned char sig[64], json_t **out,
                             qun_err_t *err);
/* Status of challenge cid of the actor's account: {id, method, action, group,
 * params_digest, state (pending|approved|expired|used), expires_at, approved_by}. */
qun_rc qun_challenge_status(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t **out,
                            qun_err_t *err);
/* The text the challenge's QR code encodes, "qun://challenge/<id>?n=<nonce>", into
 * out (at least 160 bytes).  Only for the actor's own pending challenges. */
qun_rc qun_challenge_uri(qun_db_t *db, const qun_actor_t *a, const char *cid, char *out,
                         size_t size, qun_err_t *err);
/* What dissolution (and any protected action) calls: check that challenge cid belongs
 * to the actor and was issued to the actor's current session, is approved, unexpired
 * and unused, and is bound to exactly action, group and params_digest (NULL and ""
 * are the same); then mark it used.  Codes: CHALLENGE_NOT_FOUND, CHALLENGE_EXPIRED,
 * CHALLENGE_USED, CHALLENGE_NOT_APPROVED, CHALLENGE_MISMATCH.  *method_out (may be
 * NULL) receives "device_key" or "qr" (static string). */
qun_rc qun_challenge_consume(qun_db_t *db, const qun_actor_t *a, const char *cid,
                             const char *action, const char *group, const char *params_digest,
                             const char **method_out, qun_err_t *err);
/* The signed message of a challenge into a malloc'd string (*len its length). */
char *qun_challenge_message(const char *cid, const char *nonce, const char *action,
                            const char *group, const char *params_digest, size_t *len);

/* ---- TOTP ---- */
/* Start (or restart, while not yet confirmed) a TOTP enrollment.  The secret is sealed
 * with the key of <data_dir>/totp.key (created 0600 on first use).
 * *out = {secret (base32), otpauth_uri, qr_svg, digits, period, algorithm}. */
qun_rc qun_totp_enroll(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);
/* Activate a pending enrollment with a current code (which is then used up). */
qun_rc qun_totp_confirm(qun_db_t *db, const qun_actor_t *a, const char *code, qun_err_t *err);
/* Step-up: accept code for the actor's active TOTP within ±totp_window steps, once:
 * a code of a time step at or before the last accepted one is TOTP_REPLAYED.
 * Codes: TOTP_NOT_ENROLLED, TOTP_INVALID, TOTP_REPLAYED. */
qun_rc qun_totp_check(qun_db_t *db, const qun_actor_t *a, const char *code, qun_err_t *err);
/* Whether the actor has an active TOTP enrollment. */
qun_rc qun_totp_active(qun_db_t *db, const qun_actor_t *a, bool *active, qun_err_t *err);

/* ---- policy ---- */
enum {
    QUN_VM_CONFIRM = 1 << 0,    /* the two-step confirmation token */
    QUN_VM_DEVICE_KEY = 1 << 1, /* a challenge signed by the requesting device */
    QUN_VM_QR = 1 << 2,         /* a challenge shown as QR, signed by another device */
    QUN_VM_TOTP = 1 << 3,       /* an RFC 6238 code */
    QUN_VM_TYPED_NAME = 1 << 4, /* the group's name typed back */
};

/* Which methods each platform needs, and which satisfy a risk step-up. */
typedef struct {
    unsigned android, ios, windows, web, cli, other;
    unsigned step_up; /* any one of these satisfies a risk level of verify or review */
} qun_verify_policy_t;
extern qun_verify_policy_t qun_verify_policy;

/* What a request must present. */
typedef struct {
    unsigned all;    /* every method of this mask (QUN_VM_*) */
    unsigned any;    /* and one of these (0: none): the risk step-up */
    bool review;     /* and a manual review must approve it */
    bool denied;     /* nothing satisfies it */
} qun_verify_need_t;

/* The verification a request from platform needs at risk level. */
qun_verify_need_t qun_verify_required(const char *platform, qun_risk_level_t level);
/* {all: [names], any_of: [names], review, denied} as a new JSON object. */
json_t *qun_verify_need_json(qun_verify_need_t need);
/* Name of one method bit ("confirm", "device_key", "qr", "totp", "typed_name"). */
const char *qun_verify_method_name(unsigned bit);

/* ---- rendering ---- */
/* An SVG of a QR code of text (malloc'd, NUL-terminated), or NULL on failure. */
char *qun_qr_svg(const char *text);
/* A PNG of a QR code of text (malloc'd; *len bytes), or NULL on failure.  Grayscale,
 * 8 bits, zlib stream of stored (uncompressed) deflate blocks. */
unsigned char *qun_qr_png(const char *text, size_t *len);

#endif
