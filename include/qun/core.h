/* SPDX-License-Identifier: MIT */
/* The domain of qun: accounts, orgs, groups and memberships, messages, files,
 * payments and dissolution.  Functions take a store connection (the caller decides
 * which: a per-thread reader or the group-commit writer) and the acting user, and
 * answer API representations as jansson objects the caller owns.  The core never
 * knows it is behind HTTP. */
#ifndef QUN_CORE_H
#define QUN_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/errors.h"
#include "qun/json.h"
#include "qun/policy.h"
#include "qun/states.h"
#include "qun/store.h"
#include "qun/util.h"

/* The authenticated caller of an operation. */
typedef struct {
    int64_t uid;
    char openid[QUN_ID_MAX];
    int64_t session_id;
    char platform[16];
    char device_id[65];
    char username[33];
    bool is_admin;             /* a server admin (the `admins` setting) */
    bool must_change_password; /* logged in with a one-time code: may only set a new password */
    int64_t session_expires_at;
    /* Taken from a loop's cache (src/http/actors.c), not looked up for this request: the
     * write it runs checks the session again (qun_group_access_post). */
    bool cached;
} qun_actor_t;

/* Server-wide settings the core needs. */
typedef struct {
    const char *data_dir;      /* blobs live under <data_dir>/blobs */
    const char *store;         /* the store's connection string (for threads opening their own) */
    int64_t session_ttl;       /* seconds */
    int64_t confirm_ttl;       /* seconds a confirmation token lives */
    int64_t payment_retention; /* seconds group payments outlive a dissolution (override) */
    int64_t idempotency_ttl;   /* seconds an Idempotency-Key is remembered (>= 24 h) */
    int purge_batch;           /* rows per purge transaction */
    int purge_batch_busy;      /* the same while people write (a foreground write in the last second) */
    unsigned long long pw_opslimit;
    size_t pw_memlimit;
    const char *admins;     /* comma-separated usernames of server admins */
    const char *compliance; /* comma-separated usernames holding the compliance role */
    /* The policy packs decide the dissolution rules per kind and region (policies/).
     * The settings below, when set (>= 0), override the packs for every group: an
     * operator's switch, and how tests shorten timers. */
    const struct qun_policy *policy;
    int64_t cooling_off;        /* seconds the owner can cancel */
    int64_t notice;             /* advance notice for large groups */
    int64_t notice_threshold;   /* groups with more members get the notice */
    int64_t purge_grace;        /* seconds a dissolved group stays restorable */
    int64_t tombstone;          /* seconds a purged group's id answers gone */
    int64_t approval_expiry;    /* seconds an approval request stays open */
    int64_t event_ticket_ttl;   /* seconds a GET /v1/events ticket may wait to be used */
    int64_t import_limit;       /* bytes an imported archive may expand to (tar, uncompressed) */
    int64_t export_quota_bytes; /* largest .age file one export may write; 0: no limit */
    int64_t export_retention;   /* seconds a finished export's file is kept (housekeeping) */
} qun_core_cfg_t;
extern qun_core_cfg_t qun_core_cfg;

/* Finish a cursor-paginated list: on QUN_DONE *out = {items, next_cursor} (next_cursor
 * is last as a string when the page is full, null at the end) and QUN_OK; on any other
 * rc, items is freed and rc returned.  Takes items. */
qun_rc qun_page(qun_rc rc, json_t *items, int64_t last, int limit, json_t **out);

/* ---- accounts (core/account.c) ---- */
/* Whether username is in a comma-separated list of usernames. */
bool qun_name_listed(const char *list, const char *username);
/* Whether username is listed in the `admins` setting. */
bool qun_is_admin(const char *username);
/* Hash a password with argon2id into out (crypto_pwhash_STRBYTES).  Slow by design:
 * call outside the writer. */
qun_rc qun_password_hash(const char *password, char *out, qun_err_t *err);
bool qun_password_verify(const char *hash, const char *password);
/* A login's check: password against hash (crypto_pwhash_STRBYTES) when its user was found;
 * else password hashed into hash all the same, so that timing does not reveal which
 * accounts exist, and false. */
bool qun_password_login_ok(bool found, char *hash, const char *password);
/* Create a user; *out = {openid, username, display_name, mx_localpart, created_at}.
 * QUN_USERNAME_TAKEN when the name, or another with the same key (qun_username_key),
 * is registered.  The account gets its Matrix localpart (qun_mx_localpart_new). */
qun_rc qun_user_create(qun_db_t *db, const char *username, const char *pwhash, json_t **out, qun_err_t *err);
/* qun_user_create with a display name (NULL: none), checked as qun_display_name_check. */
qun_rc qun_user_create_named(qun_db_t *db, const char *username, const char *display_name, const char *pwhash,
                             json_t **out, qun_err_t *err);
/* Look up a user's id and password hash by name (for login): the account whose
 * username is exactly this one, else the one holding its key (any case or Unicode
 * form of the name). */
qun_rc qun_user_credentials(qun_db_t *db, const char *username, int64_t *uid, char *pwhash,
                            size_t pwhash_size, qun_err_t *err);

/* ---- usernames (core/username.c) ---- */
#define QUN_USERNAME_MAX 256         /* bytes of a stored username, NUL included */
#define QUN_USERNAME_KEY_MAX 1024    /* bytes of its key, NUL included */
#define QUN_USERNAME_LOCK 0x71756e10 /* the startup backfill of keys (qun_db_xlock) */
/* The key a username is unique and found by: Unicode NFKC_Casefold of it, in UTF-8,
 * into out.  QUN_FIELD_INVALID when it cannot be computed (or does not fit). */
qun_rc qun_username_key(const char *username, char *out, size_t size, qun_err_t *err);
/* Check a username offered for registration (letters of any script, combining marks,
 * decimal digits, '_', '-', '.'; a non-empty key) and fill key with its key.
 * QUN_FIELD_INVALID otherwise. */
qun_rc qun_username_check(const char *username, char *key, size_t size, qun_err_t *err);
/* At startup, in its own transaction: give every account lacking one its key, oldest
 * first; an account whose key an older one holds is recorded in username_collisions
 * and logged.  *keyed counts the accounts keyed now, *collisions all recorded ones. */
qun_rc qun_username_backfill(qun_db_t *db, int64_t *keyed, int64_t *collisions, qun_err_t *err);
/* The recorded collisions, a page after a user row id (server admins only):
 * *out = {items: [{user, holder, username_key, found_at}], next_cursor}. */
qun_rc qun_username_collisions(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                               qun_err_t *err);

/* ---- Matrix localparts and display names (core/names.c) ---- */
#define QUN_MX_LOCALPART_MAX 128        /* bytes of a Matrix localpart, NUL included */
#define QUN_DISPLAY_NAME_MAX 260        /* bytes of a checked display name (64 characters), NUL included */
#define QUN_DISPLAY_NAME_INPUT_MAX 1024 /* bytes of a display name as offered, before normalization */
/* The Matrix spec's escape of a username (appendix "Mapping from other character
 * sets"): a-z, 0-9, '.', '-', '/', '+' as they are, A-Z as '_' and the lower-case
 * letter, '_' as "__", every other byte (UTF-8) as '=' and two lower-case hex digits.
 * QUN_FIELD_INVALID when the result would not fit out. */
qun_rc qun_mx_localpart_escape(const char *username, char out[QUN_MX_LOCALPART_MAX], qun_err_t *err);
/* The localpart a new account named username gets: its ASCII lower case when that is
 * a localpart no account holds, else its escape, else the escape with the lowest free
 * ".2", ".3"...  Reads the store; the caller inserts it in the same transaction. */
qun_rc qun_mx_localpart_new(qun_db_t *db, const char *username, char out[QUN_MX_LOCALPART_MAX],
                            qun_err_t *err);
/* At startup, in its own transaction: give every account written without a localpart
 * (by a tool writing SQL directly; SQLite cannot make the column NOT NULL) its
 * localpart, oldest first.  *filled counts them. */
qun_rc qun_mx_localpart_backfill(qun_db_t *db, int64_t *filled, qun_err_t *err);
/* The account whose Matrix localpart is exactly localpart: its row id and username.
 * QUN_USER_NOT_FOUND when none. */
qun_rc qun_user_by_localpart(qun_db_t *db, const char *localpart, int64_t *uid,
                             char username[QUN_USERNAME_MAX], qun_err_t *err);
/* The Matrix localpart of account uid (never changes).  QUN_USER_NOT_FOUND when none. */
qun_rc qun_user_localpart(qun_db_t *db, int64_t uid, char out[QUN_MX_LOCALPART_MAX], qun_err_t *err);
/* Check a display name and write its stored form to out: Unicode NFC, white space
 * trimmed at both ends, 1 to 64 characters, no control, format, separator or
 * unassigned characters.  QUN_FIELD_INVALID (field "display_name") otherwise. */
qun_rc qun_display_name_check(const char *name, char out[QUN_DISPLAY_NAME_MAX], qun_err_t *err);
/* Set (name_or_null checked as qun_display_name_check) or clear (NULL) the actor's
 * display name.  A change emits member.display_name_changed {group, openid,
 * display_name} to every group the actor is a member of, in the caller's
 * transaction.  *out = {openid, display_name} (owned by the caller). */
qun_rc qun_user_set_display_name(qun_db_t *db, const qun_actor_t *a, const char *name_or_null, json_t **out,
                                 qun_err_t *err);

/* Set o[key] to the display name of account uid, or null when they have none. */
qun_rc qun_display_name_put(qun_db_t *db, json_t *o, const char *key, int64_t uid, qun_err_t *err);

/* The openid of the account named username (as login finds it: the exact name, else its
 * folded key); QUN_USER_NOT_FOUND when there is none. */
qun_rc qun_user_openid_of(qun_db_t *db, const char *username, char openid[QUN_ID_MAX], qun_err_t *err);
/* Resolve an openid to a user row id. */
qun_rc qun_user_id(qun_db_t *db, const char *openid, int64_t *uid, qun_err_t *err);
/* Create a session bound to a device; token_hash is the SHA-256 hex of the bearer token.
 * A device is proved by its device secret, never by its id: a device_id new to the
 * account is enrolled with new_secret_hash (the SHA-256 hex of a fresh secret the
 * caller hands out once); a known one needs secret_hash (the SHA-256 hex of the secret
 * presented, or NULL) to match what was stored (DEVICE_SECRET_REQUIRED when none was
 * sent or the device predates secrets, DEVICE_SECRET_INVALID when it differs) and the
 * stored platform (DEVICE_PLATFORM_MISMATCH: a known device never changes platform).
 * *out = {session_id, openid, device_id, platform, device_first_seen, new_device,
 * expires_at}. */
qun_rc qun_session_create(qun_db_t *db, int64_t uid, const char *token_hash, const char *device_id,
                          const char *platform, const char *secret_hash, const char *new_secret_hash,
                          const char *ip, json_t **out, qun_err_t *err);
/* Resolve a bearer token's hash to an actor (QUN_TOKEN_INVALID when unknown, expired or revoked). */
qun_rc qun_session_auth(qun_db_t *db, const char *token_hash, qun_actor_t *actor, qun_err_t *err);
/* Store a ticket for GET /v1/events (a browser's EventSource cannot send a header):
 * ticket_hash is the SHA-256 hex of the ticket, which is bound to the actor's session
 * and lives qun_core_cfg.event_ticket_ttl seconds; *expires_at is when it expires. */
qun_rc qun_event_ticket_issue(qun_db_t *db, const qun_actor_t *a, const char *ticket_hash,
                              int64_t *expires_at, qun_err_t *err);
/* Spend a ticket (a write): good once, before it expires, while its session is valid.
 * Fills actor with the session's identity; QUN_TICKET_INVALID otherwise. */
qun_rc qun_event_ticket_redeem(qun_db_t *db, const char *ticket_hash, qun_actor_t *actor, qun_err_t *err);
qun_rc qun_session_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);
qun_rc qun_session_revoke(qun_db_t *db, const qun_actor_t *a, const char *sid, qun_err_t *err);
/* Revoke the actor's own session, or with all every session of the account (Matrix
 * logout and logout/all); *n: how many were revoked. */
qun_rc qun_session_revoke_own(qun_db_t *db, const qun_actor_t *a, bool all, int64_t *n, qun_err_t *err);
qun_rc qun_me(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);
/* Change the actor's password to pwhash (already argon2id-hashed; the caller verified
 * the old one) and revoke every other session of the account.  The change starts the
 * transfer cooldown.  *out = {password_changed_at, sessions_revoked}. */
qun_rc qun_password_change(qun_db_t *db, const qun_actor_t *a, const char *pwhash, json_t **out,
                           qun_err_t *err);
/* Revoke every live session of account uid (Matrix ones too), appending session.revoked
 * in the caller's transaction so their event streams and parked syncs end; *n: how many. */
qun_rc qun_session_revoke_user(qun_db_t *db, int64_t uid, const char *reason, int64_t *n, qun_err_t *err);

/* ---- user administration (core/useradmin.c; server admins only, else FORBIDDEN_ADMIN) ---- */
/* The accounts by creation as a page (limit <= 200), those whose username starts with
 * prefix (or whose folded name starts with its ASCII lower case) when prefix is set:
 * items {openid, username, display_name, created_at, disabled, disabled_at,
 * last_seen (a device's newest activity, or null), password_change_required}. */
qun_rc qun_useradmin_list(qun_db_t *db, const qun_actor_t *a, const char *prefix, int64_t after, int limit,
                          json_t **out, qun_err_t *err);
/* One account as in the list, with its groups: groups [{id, name, role, state}]. */
qun_rc qun_useradmin_get(qun_db_t *db, const qun_actor_t *a, const char *openid, json_t **out,
                         qun_err_t *err);
/* Disable (disable true) or enable account openid.  Disabling revokes its sessions in the
 * same transaction; an admin cannot disable their own account (ADMIN_SELF).  A change is
 * ledgered (user.disabled / user.enabled); asking for the state it has changes nothing.
 * *out is the account as qun_useradmin_get answers it. */
qun_rc qun_useradmin_set_disabled(qun_db_t *db, const qun_actor_t *a, const char *openid, bool disable,
                                  json_t **out, qun_err_t *err);
/* Replace account openid's password by pwhash, the argon2id hash of a one-time code the
 * caller shows the admin once: its sessions are revoked, the code logs in once, and that
 * session must set a new password before anything else.  Ledgered (user.password_reset). */
qun_rc qun_useradmin_reset_password(qun_db_t *db, const qun_actor_t *a, const char *openid,
                                    const char *pwhash, json_t **out, qun_err_t *err);

/* ---- orgs (core/org.c) ---- */
qun_rc qun_org_create(qun_db_t *db, const qun_actor_t *a, const char *name, const char *kind, json_t **out,
                      qun_err_t *err);
qun_rc qun_org_get(qun_db_t *db, const qun_actor_t *a, const char *oid, json_t **out, qun_err_t *err);
/* The orgs the actor administers (server admins: every org), by creation, as a page
 * (limit <= 200) of org objects like qun_org_get's. */
qun_rc qun_org_list(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                    qun_err_t *err);
qun_rc qun_org_add_admin(qun_db_t *db, const qun_actor_t *a, const char *oid, const char *openid,
                         qun_err_t *err);
/* Mark a user minor (school admins only) and link a guardian. */
qun_rc qun_org_guardian_link(qun_db_t *db, const qun_actor_t *a, const char *oid, const char *minor,
                             const char *guardian, qun_err_t *err);
/* Row id of org oid when the actor administers it. */
qun_rc qun_org_admin_id(qun_db_t *db, const qun_actor_t *a, const char *oid, int64_t *org_id, qun_err_t *err);

/* ---- groups and memberships (core/group.c) ---- */
typedef enum { QUN_ROLE_NONE = 0, QUN_ROLE_MEMBER, QUN_ROLE_ADMIN, QUN_ROLE_OWNER } qun_role_t;

/* The group row as the access checks see it. */
typedef struct {
    int64_t id;
    char gid[QUN_ID_MAX];
    char name[256];
    char kind[16];
    char state[16];
    int64_t owner_id;
    int64_t member_count;
    int64_t org_id;  /* 0 when the group belongs to no org */
    qun_role_t role; /* the actor's role */
} qun_group_t;

/* What a request for a destructive group action (ownership transfer, bulk member removal)
 * presents beyond its parameters: the proofs its session's platform needs by the
 * verification policy (policies/verification.json). */
typedef struct {
    const char *token;        /* the action preview's confirmation token */
    const char *typed_name;   /* the group's name typed back */
    const char *challenge_id; /* an approved device_key / qr challenge bound to the action */
    const char *totp_code;
    json_t **problem; /* receives requirements or limits of a refusal (owned by caller) */
} qun_action_proof_t;

/* Load group gid for actor and check access.  need: the weakest role allowed.
 * Non-members get GROUP_NOT_FOUND (a group's existence is not disclosed) unless the
 * group is gone; members of a dissolved group get GROUP_GONE. */
/* qun_group_access for a message post, in the writer's transaction: the same checks at
 * QUN_ROLE_MEMBER, and in the same round trip the group's next sequence number (its row
 * locked until the commit where the store locks rows, so no other instance takes the same
 * number) and the actor's display name (name[0] '\0' when it has none).  An actor taken
 * from a cache (a->cached) has its session checked in the same statement: QUN_TOKEN_INVALID
 * when it has ended or its user was disabled, reset or renamed since.  ahead: the handle
 * qun_group_access_post_ahead gave in this transaction, or NULL; through it the number
 * was already taken when the post is allowed (*seq_taken: the caller does not UPDATE
 * next_seq again), except in a transaction of posts alone (qun_db_txn_shared), whose
 * posts take their numbers themselves (qun_message_post_text). */
qun_rc qun_group_access_post(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_q_t *ahead,
                             qun_group_t *g, int64_t *next_seq, char name[QUN_DISPLAY_NAME_MAX],
                             bool *has_name, bool *seq_taken, qun_err_t *err);
/* Send a post's access statement ahead (qun_db_run_ahead, PostgreSQL): it also takes the
 * group's next sequence number when the post is allowed, so call it only for a post that
 * will run next in this transaction, after every check that does not need the store.
 * In a transaction of posts alone (qun_db_txn_shared) the post is registered instead,
 * and the first registered post to run reads the rows of all in one statement.  False:
 * neither was done (the post reads its row itself); *ahead NULL unless a statement was
 * sent for this post alone. */
bool qun_group_access_post_ahead(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_q_t **ahead);
qun_rc qun_group_access(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_role_t need, qun_group_t *g,
                        qun_err_t *err);
/* Add user uid to group group_id with role, joined at joined_at, and count them: the
 * one function that inserts a member row, so the group's member_count follows its rows
 * (a successor group copies its predecessor's rows and count together).  In the
 * caller's transaction; the caller checks rights and announces the member. */
qun_rc qun_member_insert(qun_db_t *db, int64_t group_id, int64_t uid, const char *role, int64_t joined_at,
                         qun_err_t *err);
/* User uid's role in group group_id, QUN_ROLE_NONE when not a member. */
qun_rc qun_member_role(qun_db_t *db, int64_t group_id, int64_t uid, qun_role_t *role, qun_err_t *err);
/* Load group gid without any access decision (role QUN_ROLE_NONE): for jobs and
 * roles that act on groups they are not members of (compliance, server admins). */
qun_rc qun_group_load(qun_db_t *db, const char *gid, qun_group_t *g, qun_err_t *err);
/* The public id of the group that succeeded group gid (a dissolution with a successor,
 * the latest if several) into out, for a GROUP_GONE answer to name where the group went.
 * QUN_OK with out set to "" when gid has none (or is unknown); a store error otherwise. */
qun_rc qun_group_successor(qun_db_t *db, const char *gid, char out[QUN_ID_MAX], qun_err_t *err);
const char *qun_role_name(qun_role_t r);
qun_rc qun_group_create(qun_db_t *db, const qun_actor_t *a, const char *name, const char *kind,
                        const char *org, json_t *regions, json_t **out, qun_err_t *err);
qun_rc qun_group_get(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err);
qun_rc qun_group_list(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                      qun_err_t *err);
/* Rename (admins): a changed name appends `group.renamed` {group, name, old_name, by}. */
qun_rc qun_group_rename(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *name, json_t **out,
                        qun_err_t *err);
qun_rc qun_member_list(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                       json_t **out, qun_err_t *err);
/* Add a member at once (admins add members, only the owner appoints admins); *out: the
 * member.  INVITATION_REQUIRED where the policy asks for the person's consent
 * (qun_invitation_consent_check): invite them instead. */
qun_rc qun_member_add(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *openid,
                      const char *role, json_t **out, qun_err_t *err);
/* Set a member's role (owner only; admin|member): a changed role appends
 * `member.role_changed` {group, group_name, openid, role, old_role, by}, as accepting
 * an ownership transfer does for both people. */
qun_rc qun_member_set_role(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *openid,
                           const char *role, json_t **out, qun_err_t *err);
/* Remove one member (owner; admins remove members only), ledgered as a `members.removed`
 * entry of one.  It counts against the same rolling day per actor and group as a bulk
 * removal: once that crosses bulk_remove.verify_above_members it needs the platform's
 * proofs for action "bulk_remove" bound to {"openids": [openid]} (proof; its problem
 * receives the requirements of a refusal).  reason (NULL for none) and the remover's
 * openid go into the `member.removed` event as {reason, by}; the same holds for
 * qun_member_remove_bulk and qun_group_leave (by = the member itself). */
qun_rc qun_member_remove(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *openid,
                         const char *reason, const qun_action_proof_t *proof, qun_err_t *err);
/* Most members one bulk removal names (the request's array limit). */
#define QUN_BULK_MAX 64
/* Preview removing the members openids (a JSON array of openids) at once: the checks of
 * the removal and a confirmation token for action "bulk_remove" bound to
 * {"openids": openids}.  *out = {group, name, count, admins, members_after,
 * verification_required, params, params_digest, confirmation_token, expires_at,
 * platform, requirements}. */
qun_rc qun_member_remove_bulk_preview(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *openids,
                                      json_t **out, qun_err_t *err);
/* Remove the members openids in one transaction (owner; admins remove members only),
 * with one ledger entry `members.removed` holding the counts.  More than the policy's
 * bulk_remove.verify_above_members needs the platform's proofs.  *out = {group,
 * removed, admins, member_count, verification}. */
qun_rc qun_member_remove_bulk(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *openids,
                              const char *reason, const qun_action_proof_t *proof, json_t **out,
                              qun_err_t *err);
/* Leave group gid (any member but the owner: OWNER_MUST_TRANSFER). */
qun_rc qun_group_leave(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *reason,
                       qun_err_t *err);
/* Preview a transfer to member `to`: every check a proposal makes except the proofs
 * (session and password age, the caps), and a confirmation token for action "transfer"
 * bound to {"to": to}.  *out = {group, name, to, params, params_digest,
 * confirmation_token, expires_at, platform, requirements}; a refusal's limits go to
 * *problem (may be NULL; owned by the caller). */
qun_rc qun_transfer_preview(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *to, json_t **out,
                            json_t **problem, qun_err_t *err);
/* Propose a transfer (owner): refused from a session younger than the policy's
 * min_session_age (SESSION_TOO_NEW) or within password_change_cooldown of a password
 * change (PASSWORD_TOO_RECENT), past the caps per group and per new owner
 * (TRANSFER_LIMIT_GROUP, TRANSFER_LIMIT_OWNER), and without the platform's proofs
 * (qun_verify_check codes).  The new owner then accepts or declines. */
qun_rc qun_transfer_propose(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *to,
                            const qun_action_proof_t *proof, json_t **out, qun_err_t *err);
/* Accept or decline the transfer offered to the actor.  Accepting is refused
 * (LIFECYCLE_CONFLICT; the offer stays open) while the group has a dissolution open. */
qun_rc qun_transfer_answer(qun_db_t *db, const qun_actor_t *a, const char *gid, bool accept, json_t **out,
                           qun_err_t *err);
/* Withdraw the open transfer offer of a group (owner): ledgered as `transfer.withdrawn`,
 * the proposed new owner gets a `transfer.withdrawn` event.  TRANSFER_NOT_FOUND when
 * none is open. */
qun_rc qun_transfer_withdraw(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out,
                             qun_err_t *err);

/* ---- invitations with consent (core/invitation.c) ----
 * An owner or admin invites someone, who becomes a member only by accepting; the rights
 * are those of a direct add (admins invite members, only the owner invites admins, into
 * an active group), checked at invitation and again at acceptance.  States: pending,
 * accepted, declined, revoked, expired.  An invitation as the API shows it:
 * {id, state, group, group_name, group_kind, group_state, invitee, invitee_username,
 *  inviter, inviter_username, role, created_at, decided_at}; the openids are invitee and
 * inviter.  Every function runs in the caller's (writer, for changes) transaction. */
/* Most pending invitations qun_invitations_of_user lists. */
#define QUN_INVITATIONS_MAX 200
/* Invite the user named by exactly one of username_or_null and openid_or_null into
 * group gid with role ("member" or "admin"; NULL: "member").  *out: the invitation
 * (caller-owned).  A second invitation while one is pending answers that one unchanged.
 * Emits `member.invited` {group, openid, by, role, invitation} to the group and the
 * invitee.  Errors: GROUP_NOT_FOUND (not a member), FORBIDDEN_ROLE (a member, or an
 * admin inviting an admin), GROUP_NOT_ACTIVE, USER_NOT_FOUND (field username or openid),
 * FIELD_MISSING / FIELD_INVALID (neither or both named; a bad role), ALREADY_MEMBER. */
qun_rc qun_invitation_create(qun_db_t *db, const qun_actor_t *a, const char *gid,
                             const char *username_or_null, const char *openid_or_null, const char *role,
                             json_t **out, qun_err_t *err);
/* The invitee accepts (accept) or declines invitation iid; *out: the invitation.
 * Accepting checks again that the group is active (GROUP_NOT_ACTIVE while a dissolution
 * is open, GROUP_GONE once dissolved), that the inviter may still add that role
 * (INVITATION_STALE) and that the invitee is not a member already (ALREADY_MEMBER),
 * then adds the member (qun_member_insert, `member.added`) in the same transaction.
 * Declining never makes a member and emits `invitation.declined` {group, openid,
 * invitation} to the group and the invitee.  Answering the same way again answers the
 * invitation as it is (a replay); otherwise a decided invitation is INVITATION_CLOSED.
 * Anyone but the invitee, and unknown ids: INVITATION_NOT_FOUND. */
qun_rc qun_invitation_respond(qun_db_t *db, const qun_actor_t *a, const char *iid, bool accept, json_t **out,
                              qun_err_t *err);
/* Revoke pending invitation iid: its inviter, or whoever may make that invitation now
 * (the owner; admins for member invitations).  Emits `invitation.revoked` {group,
 * openid, invitation, by} to the group and the invitee; revoking again answers it as it
 * is.  Anyone else: INVITATION_NOT_FOUND; a decided one: INVITATION_CLOSED. */
qun_rc qun_invitation_revoke(qun_db_t *db, const qun_actor_t *a, const char *iid, json_t **out,
                             qun_err_t *err);
/* The id of the pending invitation of user uid into group group_id, "" when there is
 * none (whatever the group's state). */
qun_rc qun_invitation_pending_for(qun_db_t *db, int64_t group_id, int64_t uid, char iid[QUN_ID_MAX],
                                  qun_err_t *err);
/* The pending invitations of user uid, oldest first, at most QUN_INVITATIONS_MAX: a new
 * JSON array (caller-owned) of invitations as above.  Invitations to groups no longer
 * live, or the user has joined meanwhile, are left out. */
qun_rc qun_invitations_of_user(qun_db_t *db, int64_t uid, json_t **out, qun_err_t *err);
/* INVITATION_REQUIRED (detail naming POST /v1/groups/{id}/invitations) when the policy
 * pack's invitations section asks consent for group g (its kind, or its member count
 * above require_consent_above_members); QUN_OK otherwise.  qun_member_add calls it. */
qun_rc qun_invitation_consent_check(qun_db_t *db, const qun_group_t *g, qun_err_t *err);

/* ---- the ownership / dissolution exclusion (core/group.c) ----
 * A group has at most one of an open ownership transfer offer and an open dissolution
 * (archiving, review or pending): either would otherwise hand the group to a new owner
 * who cannot stop a dissolution the old owner asked for.  Every operation that opens
 * one of the two calls qun_lifecycle_lock first, then checks the other, then changes
 * state, all in its one writer step. */
/* Wait for, and hold until the transaction ends, the lock that orders lifecycle
 * changes across every qund sharing a PostgreSQL database (a no-op on SQLite). */
qun_rc qun_lifecycle_lock(qun_db_t *db, qun_err_t *err);
/* LIFECYCLE_CONFLICT when group g has a transfer offer open; *problem (may be NULL)
 * then receives {"open": "transfer", "transfer_to": openid}. */
qun_rc qun_lifecycle_no_transfer(qun_db_t *db, const qun_group_t *g, json_t **problem, qun_err_t *err);

/* ---- messages (core/message.c) ---- */
/* A file a message carries: a row of the group's files. */
typedef struct {
    const char *sha256, *name, *content_type;
    int64_t size;
} qun_msg_file_t;
/* Options of a posted message (qun_message_post_ex); NULL members mean the default. */
typedef struct {
    const char *msgtype;        /* NULL or "m.text" (stored as NULL), "m.notice", "m.emote"; with a
                                 * file, "m.image", "m.file", "m.audio" or "m.video" */
    const char *txn_id;         /* the client's transaction id (Matrix), stored with the message */
    const qun_msg_file_t *file; /* the group file it carries (already added), or NULL */
    const char *media_id;       /* with file: the Matrix media id it was sent as */
    qun_q_t *ahead; /* qun_group_access_post_ahead's handle for this post in this transaction, or NULL */
} qun_msg_opts_t;
/* Post text to group gid as a's message: a member of the active group.  The message
 * records a's session row id, opts' msgtype and txn_id (opts NULL: none), and its
 * stream_id, the id of the `message.created` event appended in the same transaction.
 * *out (owned by the caller) is the message as the event carries it; msgtype appears
 * only when not plain text, `file` {sha256, name, content_type, size} only with a file.
 * QUN_FIELD_INVALID for another msgtype (a media msgtype needs a file). */
qun_rc qun_message_post_ex(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text,
                           const qun_msg_opts_t *opts, json_t **out, qun_err_t *err);
/* qun_message_post_ex with the message's JSON as text (compact, the bytes its event
 * carries) into *out, owned by the caller (free): what POST .../messages answers, encoded
 * once for both. */
qun_rc qun_message_post_text(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text,
                             const qun_msg_opts_t *opts, char **out, qun_err_t *err);
/* What a post about to run in the writer's transaction sends ahead (qun_wop_t.ahead): its
 * access statement (qun_group_access_post_ahead; *ahead NULL when nothing was sent) and
 * the announcement of its event's id (qun_event_expect). */
void qun_message_post_ahead(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_q_t **ahead);
/* qun_message_post_ex with opts NULL. */
qun_rc qun_message_post(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text, json_t **out,
                        qun_err_t *err);
qun_rc qun_message_list(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                        json_t **out, qun_err_t *err);
/* A message as qun_message_list shows it (search hits too), from a row whose first columns
 * are QUN_MESSAGE_ITEM_COLS (joins: users u, the author; group_files f, its file, LEFT);
 * NULL when out of memory.  Not for a recalled message. */
#define QUN_MESSAGE_ITEM_COLS                                                                                \
    "m.seq, u.openid, m.kind, m.body, m.created_at, COALESCE(m.msgtype, m.media_msgtype), u.display_name, "  \
    "f.sha256, f.name, f.content_type, f.size, u.username"
json_t *qun_message_item(qun_q_t *q);
/* Recall (the author, within the group policy's recall_window_seconds) or remove (an
 * owner, or an admin for a member's message, at any time, with a reason) message seq of
 * group gid.  The message's text is deleted: body becomes '', its file and media links
 * NULL and recalled_at/recalled_by/recall_reason are set, by one UPDATE of messages in
 * the caller's transaction; the copies a message leaves elsewhere (its message.created
 * event row, the stored Idempotency-Key answer of its post) are rewritten to the
 * recalled form, and a `message.recalled` event is appended.  Rank decides removal:
 * the owner removes anyone's message, an admin a member's (or a former member's) or its
 * own, never the owner's or another admin's.  reason: NULL or up to 500 bytes (required
 * for a removal).  Recalling a recalled message answers its recalled state again.
 * *out (owned by the caller) is the message as qun_message_list shows it.
 * Errors: GROUP_NOT_FOUND (not a member), GROUP_GONE, MESSAGE_NOT_FOUND,
 * MESSAGE_NOT_RECALLABLE (a system message), RECALL_WINDOW_PASSED (the author's window
 * passed, not an admin), FORBIDDEN_ROLE, FIELD_MISSING (reason for a removal). */
qun_rc qun_message_recall(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t seq,
                          const char *reason, json_t **out, qun_err_t *err);
/* Recalled messages of group group_id (for counts in previews and receipts). */
qun_rc qun_message_recalled_count(qun_db_t *db, int64_t group_id, int64_t *n, qun_err_t *err);

/* ---- files (core/file.c) ---- */
/* Store bytes content-addressed under the data dir (idempotent); sha_hex gets the digest. */
qun_rc qun_blob_put(const void *data, size_t n, char sha_hex[65], qun_err_t *err);
/* Move the file tmp (fsynced, on the data dir's file system, holding exactly the size
 * bytes whose SHA-256 is sha_hex: the caller checked) into the blob store; when the
 * blob is already there, tmp is removed instead. */
qun_rc qun_blob_adopt(const char *tmp, const char *sha_hex, int64_t size, qun_err_t *err);
/* Path of a blob's bytes into out. */
void qun_blob_path(const char *sha_hex, char *out, size_t size);
/* Drop one reference to blob sha (core/mx_media.c).  The last one deletes the blobs
 * row and queues the bytes' unlink (qun_blob_unlink_queued, after commit) and, when
 * cdn_reason is not NULL, a `cdn.purge` outbox event {digest, reason}; *released
 * then.  A blob without a row holds nothing: QUN_OK. */
qun_rc qun_blob_release(qun_db_t *db, const char *sha, const char *cdn_reason, bool *released,
                        qun_err_t *err);
qun_rc qun_file_add(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *sha_hex, int64_t size,
                    const char *name, const char *content_type, json_t **out, qun_err_t *err);
qun_rc qun_file_list(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                     json_t **out, qun_err_t *err);
/* A person's upload (POST /v1/groups/{id}/files): qun_file_add, then a file message
 * in the group's history carrying it (msgtype m.image, m.audio, m.video or m.file by
 * the content type; text: the file's name), in the caller's transaction.  *out
 * (owned by the caller) is the file as qun_file_add answers it plus `message_seq`,
 * the seq of that message. */
qun_rc qun_file_upload(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *sha_hex, int64_t size,
                       const char *name, const char *content_type, json_t **out, qun_err_t *err);
/* Find a file of the group; fills its content type and name. */
qun_rc qun_file_get(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *sha_hex,
                    char *content_type, size_t ct_size, char *name, size_t name_size, qun_err_t *err);

/* ---- payments (core/payment.c) ---- */
qun_rc qun_payment_create(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *kind,
                          int64_t amount, int64_t shares, const char *memo, json_t **out, qun_err_t *err);
qun_rc qun_payment_claim(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *pid, json_t **out,
                         qun_err_t *err);
qun_rc qun_payment_list(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err);
qun_rc qun_bill_list(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                     qun_err_t *err);

/* ---- dissolution (core/dissolution.c) ---- */
/* Impact preview, the rules that apply and a fresh single-use confirmation token
 * (bound to actor, group and the digest of params). */
qun_rc qun_diss_preview(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params, json_t *view,
                        json_t **out, qun_err_t *err);
/* The read-only part of the preview (impact, timing, approvals, requirements): it counts
 * the group's rows, so the HTTP layer runs it on a reader before the writer issues the
 * token, and passes it to qun_diss_preview as view (borrowed; NULL computes it there). */
qun_rc qun_diss_impact(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params, json_t **out,
                       qun_err_t *err);
/* Request: authorize with the proofs the session's platform needs (and the step-ups the
 * rules and the risk engine demand), then go to `review` (approvals needed) or `pending`
 * (the cooling-off / notice timer runs).  With params "archive": {"recipients": [age1...]}
 * (archive then dissolve), the dissolution waits in state `archiving` (the group stays
 * `active`) for an export of the whole group; it goes on only once that export is
 * complete and ledgered (qun_diss_archived). */
/* What the client presents: the token (needed when the session's platform requires
 * `confirm`), the other proofs its platform and the risk engine require, its address. */
typedef struct {
    const char *token;                /* the preview's confirmation token */
    bool stepped_up;                  /* the password was re-entered and verified */
    const char *totp_code;            /* a TOTP code, when risk asks for step-up */
    const char *challenge_id;         /* an approved device_key / qr challenge (platform method or step-up) */
    const char *step_up_challenge_id; /* a second one, when both the platform and the risk ask */
    const char *typed_name;           /* the group's name typed back (cli) */
    const char *ip;
    json_t **problem; /* receives requirements / reasons for a refusal (owned by caller) */
} qun_diss_proof_t;
qun_rc qun_diss_request(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params,
                        const qun_diss_proof_t *proof, json_t **out, qun_err_t *err);
qun_rc qun_diss_status(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err);
/* Cancel a dissolution archiving, in review or pending (owner). */
qun_rc qun_diss_cancel(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err);
/* Restore a dissolved group while it is still `dissolved`: within its purge grace, or later
 * while a retention minimum or a legal hold keeps the purge from starting (the owner with
 * step-up, or a server admin). */
qun_rc qun_diss_restore(qun_db_t *db, const qun_actor_t *a, const char *gid, bool stepped_up, json_t **out,
                        qun_err_t *err);
/* What a GROUP_GONE answer tells a person who was in group gid (a member until the
 * dissolution, or the owner): sets "gone" on problem (borrowed) to {name, state,
 * dissolved_at, purge_after, messages, held, successor_name?, kept: [{what, why}]}.
 * Nothing for anyone else, nor for a group that is not gone; QUN_OK then too. */
qun_rc qun_diss_gone_view(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *problem,
                          qun_err_t *err);
/* Move a dissolution from review to pending once every approval is in (approval.c). */
qun_rc qun_diss_approved(qun_db_t *db, int64_t did, int64_t decided_by, qun_err_t *err);
/* End a cancellable dissolution (archiving, review or pending) without dissolving:
 * why is QUN_DISS_CANCELLED, QUN_DISS_REJECTED or QUN_DISS_EXPIRED (its name is the
 * ended_reason and the ledger event's suffix).  DISSOLUTION_NOT_CANCELLABLE otherwise. */
qun_rc qun_diss_end(qun_db_t *db, int64_t did, qun_diss_state_t why, const char *actor_openid, json_t *fields,
                    qun_err_t *err);
/* The one way a dissolution changes state (src/core/dissolution.c lists every caller
 * beside it): move dissolution did from `from` to `to`, an edge of diss_states.def
 * (anything else is a programming error and asserts), and its group from from's group
 * state to to's, in the caller's transaction.  from QUN_DISS_NONE enters a row
 * inserted in this transaction into the lifecycle.  A dissolution no longer in
 * `from`, or a group no longer in from's group state, is GROUP_NOT_ACTIVE (another
 * change won).  Builds without NDEBUG then assert invariants I2 and I3. */
qun_rc qun_diss_transition(qun_db_t *db, int64_t did, qun_diss_state_t from, qun_diss_state_t to,
                           qun_err_t *err);
/* The end of export export_id (export.c, in the writer transaction that records it):
 * a dissolution `archiving` for it proceeds (ok: to `review` or `pending` as a plain
 * request would, ledgered with the archive's digest and ledger index) or ends in
 * state `failed` with the group left `active` (not ok: ledgered as
 * `dissolution.archive_failed`, a `dissolution.archive_failed` event).  No-op when no
 * dissolution waits for it (or it was cancelled meanwhile). */
qun_rc qun_diss_archived(qun_db_t *db, int64_t export_id, bool ok, const char *digest, int64_t ledger_index,
                         const char *error, qun_err_t *err);
/* The timer: mark a pending dissolution whose delay is over (jobs call it). */
qun_rc qun_diss_mark_due(qun_db_t *db, int64_t did, bool *marked, qun_err_t *err);
/* The policy packs' view for group g's kind and regions (operator overrides not applied). */
qun_rc qun_group_policy(qun_db_t *db, const qun_group_t *g, qun_policy_view_t *v, qun_err_t *err);
/* The same for g's kind and the regions its row holds, already read (a JSON array of
 * region names, borrowed; NULL for none). */
qun_rc qun_group_policy_of(const qun_group_t *g, const json_t *regions, qun_policy_view_t *v, qun_err_t *err);
/* Whether a dissolution may still purge: it is `dissolved`/`purging` and no hold is active.
 * *held tells a hold is what stops it. */
qun_rc qun_diss_purgeable(qun_db_t *db, int64_t did, int64_t group_id, bool *ok, bool *held, qun_err_t *err);

/* ---- approvals (core/approval.c) ---- */
/* Create the approvals a dissolution needs; *n receives how many. */
/* Which approvals a dissolution needs (from the policy view and the org's protection). */
typedef struct {
    bool org_admin, school_admin, guardians;
    bool risk_review;        /* the risk engine asked for a manual review (server admins) */
    int64_t guardian_quorum; /* INT64_MAX: all */
} qun_approval_needs_t;
qun_rc qun_approvals_create(qun_db_t *db, int64_t did, const qun_group_t *g, const qun_approval_needs_t *need,
                            int64_t expires_at, int *n, qun_err_t *err);
/* What approvals a group's dissolution would need, for the preview. */
qun_rc qun_approvals_needed(qun_db_t *db, const qun_group_t *g, const qun_approval_needs_t *need,
                            json_t **out, qun_err_t *err);
qun_rc qun_approval_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);
qun_rc qun_approval_decide(qun_db_t *db, const qun_actor_t *a, const char *aid, bool approve,
                           const char *reason, json_t **out, qun_err_t *err);
/* Expire the open approvals of a dissolution whose time is up (jobs call it). */
qun_rc qun_approvals_expire(qun_db_t *db, int64_t did, qun_err_t *err);

/* ---- legal holds (core/hold.c) ---- */
bool qun_is_compliance(const char *username);
qun_rc qun_hold_place(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *reason, json_t **out,
                      qun_err_t *err);
qun_rc qun_hold_release(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *hid, json_t **out,
                        qun_err_t *err);
qun_rc qun_hold_list(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err);

/* Switch an enterprise org's dissolve protection (org admins). */
qun_rc qun_org_set_protection(qun_db_t *db, const qun_actor_t *a, const char *oid, bool on, json_t **out,
                              qun_err_t *err);

#endif
