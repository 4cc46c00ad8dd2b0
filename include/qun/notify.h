/* SPDX-License-Identifier: MIT */
/* Notifications that reach people (docs/notifications.md).  Each is a row of one
 * person's inbox: a code (`kind`) with parameters that carry names (the group's name,
 * people's usernames and display names, an approval's impact figures), never ids
 * alone, so every client renders it in its own language.  A row is written in the
 * same writer transaction as the change it announces, together with a
 * `notification.created` event to that person only and, when the operator configured
 * SMTP and the person has a verified mail address, a row of `mail_outbox` that the
 * mail thread (src/jobs/mail.c) sends later, never inside the request.
 *
 * Kinds: approval.requested, transfer.offered, invitation.received,
 * dissolution.pending, dissolution.cancelled, dissolution.rejected,
 * dissolution.expired, dissolution.dissolved, dissolution.restored.
 *
 * Mail addresses are verified by a code sent to them: the code is stored only as a
 * salted SHA-256 (compared in constant time) and travels to the mail thread sealed;
 * wrong codes count against the account like wrong passwords (core/lockout.c). */
#ifndef QUN_NOTIFY_H
#define QUN_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/errors.h"
#include "qun/store.h"

/* Mail settings (the smtp_* keys of qund.conf). */
typedef struct {
    const char *smtp_url;    /* smtp:// or smtps:// URL of the relay; NULL or "": no mail */
    const char *smtp_from;   /* the sender's address, e.g. qun@example.org */
    const char *console_url; /* the console's origin, the base of links in mail (NULL: webauthn_origin) */
    int timeout_ms;          /* one attempt, connecting included */
    int max_attempts;        /* attempts before a mail is dead */
    int backoff_base;        /* seconds before the first retry, doubled per attempt */
    int64_t code_ttl;        /* seconds a verification code lives */
} qun_notify_cfg_t;
extern qun_notify_cfg_t qun_notify_cfg;

/* Whether mail is configured (smtp_url set). */
bool qun_mail_enabled(void);
/* Check the smtp_* settings: a smtp(s):// URL and a plausible from address when the URL
 * is set.  QUN_BAD_REQUEST with the reason otherwise. */
qun_rc qun_mail_cfg_check(qun_err_t *err);
/* Whether s is an address we accept: local@domain, printable ASCII without spaces, angle
 * brackets, quotes or commas, at most 254 bytes, a dot in the domain. */
bool qun_email_valid(const char *s);
/* The language code for an Accept-Language value: "zh-CN" when its first language is
 * Chinese, else "en". */
const char *qun_lang_from_accept(const char *accept_language);

/* ---- writing notifications (in the caller's writer transaction) ---- */

/* Notify user uid: kind with params (stolen; NULL is QUN_NOMEM).  Appends the row, the
 * `notification.created` event to uid, and the mail when uid has a verified address
 * and mail is on. */
qun_rc qun_notify_user(qun_db_t *db, int64_t uid, const char *kind, json_t *params, qun_err_t *err);
/* An approval aid was created: notify whoever may decide it (its named approver, every
 * admin of its org but the requester, or the server admins for a risk review), with
 * the group's name, the requester's and subject's names and the impact figures. */
qun_rc qun_notify_approval(qun_db_t *db, const char *aid, qun_err_t *err);
/* A dissolution notice of stage ("pending", "cancelled", "rejected", "expired",
 * "dissolved", "restored") was posted to group_id with fields notice (borrowed): notify
 * every member but the one who caused it (for pending, cancelled and restored).  Up to
 * QUN_NOTIFY_INLINE members are notified in the caller's transaction; for more, it
 * records the notice and queues a `notify_fanout` job that notifies the members
 * QUN_NOTIFY_SLICE at a time, in user id order, due QUN_NOTIFY_DEFER seconds after the
 * commit's second (job times are whole seconds: 0 to 1 s later): the live events of the same commit
 * (dissolution.pending, group.dissolved) reach every open stream first, instead of sharing the writer and the
 * loops with hundreds of inbox rows and their events in that moment. */
qun_rc qun_notify_dissolution(qun_db_t *db, int64_t group_id, const char *stage, const json_t *notice,
                              qun_err_t *err);
#define QUN_NOTIFY_INLINE 64
#define QUN_NOTIFY_SLICE 512
#define QUN_NOTIFY_DEFER 1
/* One step of the `notify_fanout` job of fan-out fid: notify the next QUN_NOTIFY_SLICE
 * members and move its cursor past them, in the caller's transaction; *finished after
 * the last (a fan-out already gone is finished too, so a repeated step is a no-op). */
qun_rc qun_notify_fanout_step(qun_db_t *db, int64_t fid, bool *finished, qun_err_t *err);
/* Ownership of group_id was offered by from to to. */
qun_rc qun_notify_transfer(qun_db_t *db, int64_t group_id, int64_t from, int64_t to, qun_err_t *err);
/* Invitation iid to group_id was sent by inviter to invitee, with role. */
qun_rc qun_notify_invitation(qun_db_t *db, const char *iid, int64_t group_id, int64_t inviter,
                             int64_t invitee, const char *role, qun_err_t *err);

/* ---- the inbox (GET/POST /v1/me/notifications...) ---- */

/* The caller's notifications, newest first, older than the cursor `before` (a seq; 0:
 * from the newest), at most limit.  *out = {items, next_cursor, unread} (owned). */
qun_rc qun_notify_list(qun_db_t *db, const qun_actor_t *a, int64_t before, int limit, json_t **out,
                       qun_err_t *err);
/* Mark the caller's notifications up to seq upto read (0: all).  *out = {read, unread}. */
qun_rc qun_notify_read(qun_db_t *db, const qun_actor_t *a, int64_t upto, json_t **out, qun_err_t *err);
/* *out = {unread} for the caller. */
qun_rc qun_notify_unread(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);

/* ---- language and mail address (/v1/me/language, /v1/me/email) ---- */

/* *out = {lang, chosen}: the caller's language, or dflt ("en" when NULL) when unchosen. */
qun_rc qun_lang_get(qun_db_t *db, const qun_actor_t *a, const char *dflt, json_t **out, qun_err_t *err);
/* Set the caller's language ("en" or "zh-CN"). */
qun_rc qun_lang_set(qun_db_t *db, const qun_actor_t *a, const char *lang, json_t **out, qun_err_t *err);
/* *out = the caller's address {address, verified, verified_at, code_expires_at} or
 * {address: null}. */
qun_rc qun_email_get(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);
/* Set (or replace) the caller's address and mail it a new code.  lang: the language to
 * keep when the caller has chosen none (from Accept-Language).  MAIL_DISABLED without
 * SMTP; EMAIL_CODE_TOO_SOON within a minute of the last code to the same address. */
qun_rc qun_email_set(qun_db_t *db, const qun_actor_t *a, const char *address, const char *lang, json_t **out,
                     qun_err_t *err);
/* Verify the caller's pending code.  EMAIL_CODE_INVALID (counted by the lockout) for a
 * wrong one, EMAIL_CODE_EXPIRED when none is pending or it expired. */
qun_rc qun_email_verify(qun_db_t *db, const qun_actor_t *a, const char *code, json_t **out, qun_err_t *err);
/* Forget the caller's address (mail not yet sent to it is dropped). */
qun_rc qun_email_delete(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err);

/* ---- invitations by mail (POST /v1/orgs/{id}/email-invites, POST /v1/email-invites/redeem) ---- */

/* An admin of org oid invites address to become an admin of it (role "admin") or a
 * guardian of the minor minor_openid ("guardian", school orgs).  The mail carries a
 * link to the console's sign-up with a single-use token (only its hash is stored).
 * *out = {id, address, role, expires_at}. */
qun_rc qun_email_invite(qun_db_t *db, const qun_actor_t *a, const char *oid, const char *address,
                        const char *role, const char *minor_openid, const char *lang, json_t **out,
                        qun_err_t *err);
/* The signed-in caller redeems token: becomes the org's admin, or the minor's guardian
 * (and is asked to approve every open review of the minor's education groups), and the
 * invitation's address becomes theirs, verified.  EMAIL_INVITE_INVALID otherwise.
 * *out = {org, org_name, role, approvals: [ids to decide]}. */
qun_rc qun_email_invite_redeem(qun_db_t *db, const qun_actor_t *a, const char *token, json_t **out,
                               qun_err_t *err);

/* ---- mail text ---- */

/* The subject and plain-text body of mail kind (a notification kind, "email.verify" or
 * "email.invite") with params, in lang ("zh-CN" or anything else for English): owned
 * strings.  code: the clear verification code for email.verify, else NULL.  False
 * when out of memory. */
bool qun_mail_render(const char *kind, const json_t *params, const char *lang, const char *code,
                     char **subject, char **body);

#endif
