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
/* The action a challenge that vouches for a new device key is bound to. */
#define QUN_ACTION_REGISTER_KEY "register_device_key"

/* Register the Ed25519 public key (32 bytes) of the actor's current device.  The same
 * key again succeeds; another key on a device that has one is DEVICE_KEY_EXISTS.  The
 * account's first key is enrolled as is; a key for a device while another device of
 * the account holds one needs challenge_id: a qr challenge of this session for action
 * QUN_ACTION_REGISTER_KEY, no group, params_digest the digest of {"public_key": the key
 * in standard base64}, approved from a device that holds a key (else QR_REQUIRED, with
 * {requirements, action, params_digest} in *problem, owned by the caller; or the
 * CHALLENGE_* codes).  *out = {device_id, public_key, created_at}. */
qun_rc qun_device_key_register(qun_db_t *db, const qun_actor_t *a, const unsigned char pk[32],
                               const char *challenge_id, json_t **out, json_t **problem, qun_err_t *err);
/* The actor's devices: {items: [{device_id, platform, first_seen, last_seen, has_key, current}]}. */
qun_rc qun_device_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);

/* ---- challenges ---- */
/* Issue a challenge for actor's current session: method "device_key" or "qr", bound
 * to action (required), group (public id or NULL) and params_digest (64 hex or NULL).
 * *out = {id, nonce, expires_at, method, action, group, params_digest, state}. */
qun_rc qun_challenge_create(qun_db_t *db, const qun_actor_t *a, const char *method, const char *action,
                            const char *group, const char *params_digest, json_t **out, qun_err_t *err);
/* Approve challenge cid of the actor's account with a signature (64 bytes) by the
 * registered key of device_id, a device of the same account.  For method "qr" the
 * device must differ from the requesting one.  *out = the challenge's status. */
qun_rc qun_challenge_approve(qun_db_t *db, const qun_actor_t *a, const char *cid, const char *device_id,
                             const unsigned char sig[64], json_t **out, qun_err_t *err);
/* The options of navigator.credentials.get for approving challenge cid (of the actor's
 * account, pending, and approvable from the actor's device) with a passkey:
 * {challenge_id, publicKey: {challenge, rpId, allowCredentials, userVerification
 * "required", timeout}, expires_at}.  The WebAuthn challenge is the SHA-256 of the
 * challenge's signed message, so the assertion is bound to the action, the group and
 * the parameters digest.  PASSKEY_NOT_FOUND when the account has no passkey. */
qun_rc qun_challenge_passkey_options(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t **out,
                                     qun_err_t *err);
/* Approve challenge cid from the actor's current device with a passkey assertion
 * (cred: PublicKeyCredential JSON, checked by qun_passkey_assert, which see for the
 * codes and *problem).  The device rules are those of qun_challenge_approve, with the
 * actor's device as the approving one.  *out = the challenge's status. */
qun_rc qun_challenge_approve_passkey(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t *cred,
                                     json_t **out, json_t **problem, qun_err_t *err);
/* Whether user uid holds a key (an Ed25519 device key or a passkey registered from the
 * device) on device_id, or, when other_than is not NULL, on a device other than it. */
qun_rc qun_device_has_key(qun_db_t *db, int64_t uid, const char *device_id, const char *other_than, bool *yes,
                          qun_err_t *err);
/* Status of challenge cid of the actor's account: {id, method, action, group,
 * params_digest, state (pending|approved|declined|expired|used), expires_at,
 * approved_by, approved_with, declined_at, approve_url (without the nonce),
 * requested_by {device_id, platform, current}} and, for a group the actor is a member
 * of, group_name, group_kind, member_count and (action "dissolve") impact counts. */
qun_rc qun_challenge_status(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t **out,
                            qun_err_t *err);
/* Decline challenge cid of the actor's account (pending only): it can then never be
 * approved or used (CHALLENGE_DECLINED), and a `challenge.declined` event tells the
 * user's sessions.  *out = the challenge's status. */
qun_rc qun_challenge_decline(qun_db_t *db, const qun_actor_t *a, const char *cid, json_t **out,
                             qun_err_t *err);
/* The text the challenge's QR code encodes, its approve_url with the nonce,
 * "<webauthn_origin>/app/approve?c=<id>&n=<nonce>", into out (at least 512 bytes).
 * Only for the actor's own pending challenges. */
qun_rc qun_challenge_uri(qun_db_t *db, const qun_actor_t *a, const char *cid, char *out, size_t size,
                         qun_err_t *err);
/* What dissolution (and any protected action) calls: check that challenge cid belongs
 * to the actor and was issued to the actor's current session, is approved, unexpired
 * and unused, and is bound to exactly action, group and params_digest (NULL and ""
 * are the same); then mark it used.  Codes: CHALLENGE_NOT_FOUND, CHALLENGE_EXPIRED,
 * CHALLENGE_USED, CHALLENGE_NOT_APPROVED, CHALLENGE_MISMATCH.  *method_out (may be
 * NULL) receives "device_key" or "qr" (static string). */
qun_rc qun_challenge_consume(qun_db_t *db, const qun_actor_t *a, const char *cid, const char *action,
                             const char *group, const char *params_digest, const char **method_out,
                             qun_err_t *err);
/* The signed message of a challenge into a malloc'd string (*len its length). */
char *qun_challenge_message(const char *cid, const char *nonce, const char *action, const char *group,
                            const char *params_digest, size_t *len);

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
/* The method bits (QUN_VM_*) and which platform needs which are in qun/policy.h: the
 * verification section of the policy pack (policies/verification.json). */

/* What a request must present. */
typedef struct {
    unsigned all;      /* every method of this mask (QUN_VM_*) */
    unsigned any;      /* and one of these (0: none): the risk step-up */
    bool review;       /* and a manual review must approve it */
    bool denied;       /* nothing satisfies it */
    unsigned enrolled; /* the methods of all asked because of what the account enrolled */
} qun_verify_need_t;

/* The verification policy alone: what a request from platform needs at risk level.
 * Only for describing the policy; a request's own need is qun_verify_need's. */
qun_verify_need_t qun_verify_required(const char *platform, qun_risk_level_t level);
/* What a request by actor a needs at risk level: the platform's methods (policy), plus,
 * when the account has a registered device key and the platform asks for no key
 * method, a key's proof whatever the session's platform: device_key when a's device
 * holds a key, else qr (another device of the account approves).  The platform only
 * chooses how a proof is shown, never whether one is needed.  Reads only. */
qun_rc qun_verify_need(qun_db_t *db, const qun_actor_t *a, qun_risk_level_t level, qun_verify_need_t *need,
                       qun_err_t *err);
/* {all: [names], any_of: [names], review, denied} as a new JSON object. */
json_t *qun_verify_need_json(qun_verify_need_t need);
/* Name of one method bit ("confirm", "device_key", "qr", "totp", "typed_name"). */
const char *qun_verify_method_name(unsigned bit);
/* The names of mask's methods joined by '+' ("confirm+typed_name"), then extra (may be
 * NULL), into out; truncated to size. */
void qun_verify_mask_text(unsigned mask, const char *extra, char *out, size_t size);
/* [{method, how}] for each method of mask, as a new JSON array: what a client must do. */
json_t *qun_verify_requirements(unsigned mask);

/* The proofs a request for a destructive action presents. */
typedef struct {
    const char *action;        /* "dissolve", "transfer", "bulk_remove" */
    const char *group;         /* the group's public id, which challenges are bound to */
    const char *group_name;    /* what typed_name must equal */
    const char *params_digest; /* 64 hex: the parameters challenges are bound to */
    bool confirmed;            /* the request's confirmation token was checked and used */
    const char *typed_name;    /* the group's name as typed, or NULL */
    const char *challenges[2]; /* challenge_id and step_up_challenge_id, or NULL */
    const char *totp_code;     /* or NULL */
} qun_verify_proof_t;

/* Check that p satisfies need: one proof for every method of need.all and, when need.any
 * is set, one more proof of a method in need.any (a proof counts once).  Every proof
 * presented is checked and challenges and codes are used up, needed or not: a wrong
 * proof is always refused.  Codes: TYPED_NAME_MISMATCH and the CHALLENGE_* and TOTP_*
 * codes for a bad proof; for a missing platform method the code naming it
 * (CONFIRMATION_REQUIRED, TYPED_NAME_REQUIRED, DEVICE_KEY_REQUIRED, QR_REQUIRED,
 * TOTP_REQUIRED); VERIFICATION_REQUIRED for a missing step-up.  On a missing method
 * *problem (may be NULL) receives {requirements, action, group, params_digest} (owned by
 * the caller). */
qun_rc qun_verify_check(qun_db_t *db, const qun_actor_t *a, qun_verify_need_t need,
                        const qun_verify_proof_t *p, json_t **problem, qun_err_t *err);

/* ---- confirmation tokens (method confirm) ---- */
/* Issue a single-use token (into token, "qct_" + 43 characters) bound to the actor,
 * group_id, action and the digest of params, living confirm_ttl; *expires its end. */
qun_rc qun_confirm_issue(qun_db_t *db, const qun_actor_t *a, int64_t group_id, const char *action,
                         json_t *params, char token[64], int64_t *expires, qun_err_t *err);
/* Check and use up token for exactly these bindings; CONFIRMATION_INVALID otherwise. */
qun_rc qun_confirm_consume(qun_db_t *db, const qun_actor_t *a, int64_t group_id, const char *action,
                           json_t *params, const char *token, qun_err_t *err);

/* ---- sealing other secrets ---- */
/* Seal plain[n] with the server's sealing key (<data_dir>/totp.key, as TOTP secrets):
 * *out (malloc'd, caller frees) = nonce || secretbox, *out_len bytes. */
qun_rc qun_secret_seal(const void *plain, size_t n, unsigned char **out, size_t *out_len, qun_err_t *err);
/* Open what qun_secret_seal made into plain[size]; *plain_len bytes.  INTERNAL when it
 * does not open (another server's key, or altered). */
qun_rc qun_secret_open(const void *sealed, size_t n, unsigned char *plain, size_t size, size_t *plain_len,
                       qun_err_t *err);

/* ---- rendering ---- */
/* An SVG of a QR code of text (malloc'd, NUL-terminated), or NULL on failure. */
char *qun_qr_svg(const char *text);
/* A PNG of a QR code of text (malloc'd; *len bytes), or NULL on failure.  Grayscale,
 * 8 bits, zlib stream of stored (uncompressed) deflate blocks. */
unsigned char *qun_qr_png(const char *text, size_t *len);

#endif
