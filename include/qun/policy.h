/* SPDX-License-Identifier: MIT */
/* Policy packs: the data that decides, per group kind and per region, how long the
 * dissolution timers run, which approvals are required, what must be kept and for how
 * long, and whether export is allowed (docs/design.md sections 3 and 4); and which
 * confirmation methods each platform must present for a destructive action, with the
 * limits of ownership transfers and bulk removals (section 5).
 *
 * A pack is read once at start from a directory holding `kinds.json`, `regions.json`
 * and `verification.json`, and validated strictly: an unknown key, a wrong type or an out-of-range value
 * makes loading fail with "FILE: FIELD.PATH: PROBLEM", because a typo that silently fell back to a default
 * would quietly weaken a safety rule.  The format is documented in policies/README.md.
 *
 * A group's effective policy is resolved from its kind and its regions: the kind gives
 * the baseline (its own values, else the pack's defaults); every listed region may then
 * only tighten it, and the strictest value wins.  Each resolved value names the source
 * that imposed it ("default", "kind:finance", "region:eu"), so an impact preview can say
 * which region imposed what. */
#ifndef QUN_POLICY_H
#define QUN_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/errors.h"

/* A loaded, validated, immutable pack.  Opaque; safe to share between threads. */
typedef struct qun_policy qun_policy_t;

/* The rules a pack decides.  Durations are seconds.  The comment gives the JSON key. */
typedef enum {
    QUN_POLICY_COOLING_OFF,           /* cooling_off_seconds: owner may cancel until it ends */
    QUN_POLICY_NOTICE_THRESHOLD,      /* notice_threshold_members: MORE members => notice */
    QUN_POLICY_NOTICE,                /* notice_seconds: advance notice to all members */
    QUN_POLICY_PURGE_GRACE,           /* purge_grace_seconds: restorable after `dissolved` */
    QUN_POLICY_TOMBSTONE,             /* tombstone_seconds: the handle answers `gone` */
    QUN_POLICY_APPROVALS,             /* approvals: bitmask of 1 << qun_approval_kind */
    QUN_POLICY_GUARDIAN_QUORUM,       /* guardian_quorum: QUN_POLICY_QUORUM_ALL or a count */
    QUN_POLICY_APPROVAL_EXPIRY,       /* approval_expiry_seconds: an approval request lapses */
    QUN_POLICY_STEP_UP,               /* step_up_required: 0 or 1 */
    QUN_POLICY_DESENSITIZE,           /* desensitize: 0 or 1, mask before export/retained copy */
    QUN_POLICY_EXPORT,                /* export_allowed: 0 or 1 */
    QUN_POLICY_RETAIN_MESSAGES,       /* retention.messages: minimum, or QUN_POLICY_FOREVER */
    QUN_POLICY_RETAIN_FILES,          /* retention.files */
    QUN_POLICY_RETAIN_GROUP_PAYMENTS, /* retention.group_payments */
    QUN_POLICY_RETAIN_BILL_LINES,     /* retention.bill_lines */
    QUN_POLICY_RECALL_WINDOW,         /* recall_window_seconds: an author may recall a message */
    QUN_POLICY__COUNT
} qun_policy_rule;

/* Who may be required to approve a dissolution. */
typedef enum {
    QUN_APPROVAL_ORG_ADMIN,              /* "org_admin": an admin of the group's org, always */
    QUN_APPROVAL_ORG_ADMIN_IF_PROTECTED, /* "org_admin_if_protected": only if dissolve_protection is on */
    QUN_APPROVAL_SCHOOL_ADMIN,           /* "school_admin": an admin of the group's school org */
    QUN_APPROVAL_GUARDIANS,              /* "guardians": guardians of minor members, per guardian_quorum */
    QUN_APPROVAL__COUNT
} qun_approval_kind;

/* "forever" as a retention minimum, and "all" as a guardian quorum.  Both are the largest
 * value so that "strictest wins" is plain max(); callers must compare against them before
 * doing arithmetic with a retention value. */
#define QUN_POLICY_FOREVER INT64_MAX
#define QUN_POLICY_QUORUM_ALL INT64_MAX
/* Upper bound of every duration in a pack: ten years of 365 days. */
#define QUN_POLICY_MAX_SECONDS ((int64_t)10 * 365 * 86400)

/* Room for "default", "kind:cross_border" or "region:<name up to 15 chars>". */
#define QUN_POLICY_SOURCE_MAX 32

/* One resolved value and the source that imposed it. */
typedef struct {
    int64_t value;
    char source[QUN_POLICY_SOURCE_MAX];
} qun_policy_value_t;

/* The effective policy of one group.  Plain data, caller-owned, no cleanup needed. */
typedef struct {
    char kind[16];
    qun_policy_value_t rule[QUN_POLICY__COUNT];
    /* For each required approval, who required it; "" for approvals not required.
     * rule[QUN_POLICY_APPROVALS].value is the union as a bitmask. */
    char approval_source[QUN_APPROVAL__COUNT][QUN_POLICY_SOURCE_MAX];
} qun_policy_view_t;

/* Load and validate the pack in dir (kinds.json, regions.json, verification.json).  A file that is absent
 * takes its part from the builtin pack, and so does everything when dir itself does not
 * exist; but a file that is present and wrong, or an unexpected *.json file in dir, fails
 * with QUN_POLICY_INVALID and err->msg "FILE: FIELD: PROBLEM" (err->field = FIELD).
 * On success *out is owned by the caller (qun_policy_free). */
qun_rc qun_policy_load_dir(const char *dir, qun_policy_t **out, qun_err_t *err);

/* The compiled-in pack, equal to the shipped policies/ files.  *out is caller-owned.
 * Fails only with QUN_NOMEM. */
qun_rc qun_policy_builtin(qun_policy_t **out);

/* Free a pack; NULL is fine. */
void qun_policy_free(qun_policy_t *p);

/* Where the pack came from, for the start-up log: "builtin", or the directory and which
 * files were read from it.  Borrowed from p. */
const char *qun_policy_origin(const qun_policy_t *p);

/* Whether p defines region name. */
bool qun_policy_has_region(const qun_policy_t *p, const char *name);

/* Whether name is one of the group kinds (standard, enterprise, education, finance,
 * cross_border). */
bool qun_policy_kind_valid(const char *kind);

/* Resolve the effective policy of a group of kind with regions[0..nregions).  The kind's
 * values (else the defaults) are the baseline; each region, in order, replaces a value only
 * with a strictly stricter one: longer durations and retention, a lower notice threshold,
 * export allowed only if every source allows it, the union of approvals.  On a tie the
 * earlier source keeps the credit.  Errors: QUN_POLICY_UNKNOWN_KIND; QUN_POLICY_UNKNOWN_REGION
 * (err->field "regions[i]") for a region the pack does not define; QUN_FIELD_MISSING when a
 * cross_border group lists no region, since it would otherwise get no region's rules. */
qun_rc qun_policy_resolve(const qun_policy_t *p, const char *kind, const char *const *regions, int nregions,
                          qun_policy_view_t *out, qun_err_t *err);

/* The view as {"kind", "<rule>": {"value", "source"}, ..., "retention": {"<type>": {...}},
 * "approvals": [{"value": "<approval>", "source"}]}; "forever" and "all" appear as those
 * strings.  New reference owned by the caller; NULL only when out of memory. */
json_t *qun_policy_view_json(const qun_policy_view_t *v);

/* The whole pack in file form, {"version", "defaults", "kinds", "regions", "verification"}, with the
 * defaults complete and kinds and regions listing only what they set.  Two packs that
 * decide the same things render equal.  New reference; NULL only when out of memory. */
json_t *qun_policy_json(const qun_policy_t *p);

/* The delay before a group of this many members is dissolved: the larger of the cooling-off
 * and, when members exceed the notice threshold, the notice.  *notice (may be NULL) tells
 * whether the advance notice applies. */
int64_t qun_policy_delay(const qun_policy_view_t *v, int64_t members, bool *notice);

/* JSON key of a rule ("cooling_off_seconds", "retention.messages") and name of an approval
 * kind ("school_admin"). */
const char *qun_policy_rule_key(qun_policy_rule r);
const char *qun_policy_approval_name(qun_approval_kind a);

/* ---- verification and the limits of destructive actions (verification.json) ---- */

/* Confirmation methods, as bits of a mask (docs/design.md section 5). */
enum {
    QUN_VM_CONFIRM = 1 << 0,    /* "confirm": the two-step confirmation token */
    QUN_VM_DEVICE_KEY = 1 << 1, /* "device_key": a challenge signed by the requesting device */
    QUN_VM_QR = 1 << 2,         /* "qr": a challenge shown as QR, signed by another device */
    QUN_VM_TOTP = 1 << 3,       /* "totp": an RFC 6238 code */
    QUN_VM_TYPED_NAME = 1 << 4, /* "typed_name": the group's name typed back */
};

/* The platforms a session declares at login; OTHER stands for anything else. */
typedef enum {
    QUN_PLATFORM_ANDROID,
    QUN_PLATFORM_IOS,
    QUN_PLATFORM_WINDOWS,
    QUN_PLATFORM_WEB,
    QUN_PLATFORM_CLI,
    QUN_PLATFORM_OTHER,
    QUN_PLATFORM__COUNT
} qun_platform;

/* The verification section of a pack: which methods a session of each platform must
 * present for a destructive action (dissolution, ownership transfer, bulk member
 * removal), which methods satisfy a risk step-up, and the safety limits of transfers and
 * bulk removals.  Durations are seconds.  Plain data, borrowed from its pack. */
typedef struct {
    unsigned platform[QUN_PLATFORM__COUNT]; /* QUN_VM_* masks, never 0 */
    unsigned step_up;                       /* any one of these satisfies a risk step-up */
    int64_t transfer_session_age;           /* the proposing session must be at least this old */
    int64_t transfer_password_age;          /* ... and the password at least this old */
    int64_t transfer_group_max;             /* completed transfers per group ... */
    int64_t transfer_group_window;          /* ... within this window */
    int64_t transfer_owner_max;             /* groups one user may receive ... */
    int64_t transfer_owner_window;          /* ... within this window */
    int64_t bulk_verify_above;              /* removing more members than this needs verification */
    /* invitations: when adding someone needs their consent (an invitation they accept)
     * rather than a direct POST /v1/groups/{id}/members. */
    unsigned consent_kinds; /* require_consent_kinds: bit 1 << k for each kind named */
    int64_t consent_above;  /* require_consent_above_members: groups with MORE members;
                             * QUN_POLICY_UNLIMITED (null in the file) for no size rule */
} qun_policy_verify_t;

/* "no limit" for a member count (null in the file). */
#define QUN_POLICY_UNLIMITED INT64_MAX

/* The verification section of p, or of the builtin pack when p is NULL.  Borrowed. */
const qun_policy_verify_t *qun_policy_verification(const qun_policy_t *p);

/* Whether adding someone to a group of kind with members members needs their consent
 * (an invitation) under p's invitations section (the builtin pack's when p is NULL):
 * the kind is listed in require_consent_kinds, or members exceeds
 * require_consent_above_members. */
bool qun_policy_consent_required(const qun_policy_t *p, const char *kind, int64_t members);

/* The platform of a session's platform string (QUN_PLATFORM_OTHER when unknown), and
 * the name of a platform. */
qun_platform qun_platform_parse(const char *name);
const char *qun_platform_name(qun_platform pf);
/* The name of one method bit ("confirm", "device_key", "qr", "totp", "typed_name"). */
const char *qun_policy_method_name(unsigned bit);

#endif
