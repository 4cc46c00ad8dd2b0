/* SPDX-License-Identifier: MIT */
/* Passkeys: WebAuthn credentials (ES256, attestation "none") as the browser form of a
 * device key.  A passkey is registered from a device of its user and then approves
 * challenges (core/verify.c) as that device's key would.  Registration ceremonies are
 * checked here; the CBOR of the attestation object is read with libcbor, and the
 * authenticator data, the COSE key and every signature with libfido2.
 *
 * Bytes travel as base64url without padding, as the browser's
 * PublicKeyCredential.toJSON() and the options of navigator.credentials.create and
 * .get use them.  Every refusal of a ceremony is PASSKEY_INVALID with *problem =
 * {"reason": R}, R one of malformed, type, challenge, origin, rp_id, user_present,
 * user_verified, attestation, algorithm, signature, sign_count; an unknown credential
 * (or one of another user) is PASSKEY_NOT_FOUND.
 *
 * Functions that write (options, register, delete, assert) run on the writer. */
#ifndef QUN_PASSKEY_H
#define QUN_PASSKEY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/errors.h"
#include "qun/store.h"

typedef struct {
    const char *rp_id;   /* the relying party id: a host name ("localhost") */
    const char *origin;  /* the console's origin, exactly ("http://localhost:8080") */
    const char *rp_name; /* what authenticators show ("qun") */
    int64_t options_ttl; /* seconds a registration challenge lives (600) */
    int64_t timeout_ms;  /* the timeout the options suggest to the browser (120000) */
} qun_passkey_cfg_t;
extern qun_passkey_cfg_t qun_passkey_cfg;

/* The action a qr challenge that vouches for a new passkey is bound to. */
#define QUN_ACTION_REGISTER_PASSKEY "register_passkey"

/* Begin a registration: a fresh challenge (kept hashed, single use, options_ttl) for
 * the actor's session.  *out = {publicKey: the options of navigator.credentials.create
 * (challenge, rp, user, pubKeyCredParams ES256, excludeCredentials, timeout,
 * attestation "none", authenticatorSelection with userVerification "required"),
 * expires_at}. */
qun_rc qun_passkey_options(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);

/* Finish a registration with cred, the PublicKeyCredential JSON (id, rawId, type,
 * response.clientDataJSON, response.attestationObject); label (may be NULL) names it.
 * When this device holds no key (device key or passkey) but another device of the
 * account does, the passkey must be vouched for as a device key is: challenge_id, a qr
 * challenge of this session for QUN_ACTION_REGISTER_PASSKEY bound to the digest of
 * {"credential_id": rawId}, approved from another device (else QR_REQUIRED with
 * {requirements, action, params_digest} in *problem).  A credential id already
 * registered is PASSKEY_EXISTS.  *out = the passkey as qun_passkey_list shows it;
 * *problem (owned by the caller) may be set on failure. */
qun_rc qun_passkey_register(qun_db_t *db, const qun_actor_t *a, json_t *cred, const char *label,
                            const char *challenge_id, json_t **out, json_t **problem, qun_err_t *err);

/* The actor's passkeys: {items: [{id, credential_id, label, device_id, current,
 * created_at, last_used_at, sign_count}]}. */
qun_rc qun_passkey_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);

/* Remove the actor's passkey id; PASSKEY_NOT_FOUND when the actor has none by that id,
 * else STEP_UP_REQUIRED unless the caller checked the account's password again
 * (stepped_up): a stolen session alone must not take a way to approve away. */
qun_rc qun_passkey_delete(qun_db_t *db, const qun_actor_t *a, const char *id, bool stepped_up,
                          qun_err_t *err);

/* [{type: "public-key", id}] of the passkeys of user uid, as a new JSON array (NULL
 * on a store error, described in err). */
json_t *qun_passkey_allow(qun_db_t *db, int64_t uid, qun_err_t *err);

/* Whether user uid has a passkey: registered from device_id when it is not NULL, from
 * a device other than other_than when that is not NULL, anywhere when both are NULL. */
qun_rc qun_passkey_exists(qun_db_t *db, int64_t uid, const char *device_id, const char *other_than, bool *yes,
                          qun_err_t *err);

/* Check cred, an assertion's PublicKeyCredential JSON (id, rawId, type,
 * response.clientDataJSON, response.authenticatorData, response.signature), against
 * the expected WebAuthn challenge (32 bytes): a passkey of the actor's user, type
 * "webauthn.get", the challenge, the configured origin and RP id, the user-present and
 * user-verified flags, the signature, and a sign count above the stored one (when
 * either is not zero), which is then stored.  pkid (QUN_ID_MAX bytes, may be NULL)
 * receives the passkey's id. */
qun_rc qun_passkey_assert(qun_db_t *db, const qun_actor_t *a, const unsigned char challenge[32], json_t *cred,
                          char *pkid, json_t **problem, qun_err_t *err);

/* Base64url (no padding) of n bytes into a malloc'd string, or NULL. */
char *qun_b64url(const unsigned char *p, size_t n);

#endif
