/* SPDX-License-Identifier: MIT */
/* Policy packs (include/qun/policy.h): strict loading of policies/kinds.json,
 * policies/regions.json and policies/verification.json, the compiled-in pack equal to the
 * shipped files, and resolution of a group's effective policy where the strictest source
 * wins and is named.
 *
 * One table, `rules`, describes every rule: its JSON key, its type and range, which way
 * is stricter and whether a region may set it.  Parsing, validation, resolution and
 * rendering all walk that table, so a new rule is one row plus one enum value. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/policy.h"
#include "qun/util.h"

#define POLICY_VERSION 1
#define REGION_NAME_MAX 16 /* including the NUL */

enum rtype {
    T_DURATION,  /* integer seconds in [min, QUN_POLICY_MAX_SECONDS] */
    T_COUNT,     /* integer in [min, max] */
    T_QUORUM,    /* "all" or integer in [min, max] */
    T_BOOL,      /* true / false */
    T_RETENTION, /* "forever" or integer seconds in [0, QUN_POLICY_MAX_SECONDS] */
    T_APPROVALS, /* array of distinct approval kinds, stored as a bitmask */
};

/* Which way is stricter when a region competes with the baseline. */
enum strict {
    S_MAX,   /* larger wins: durations, retention, quorum */
    S_MIN,   /* smaller wins: the member count above which notice is given */
    S_AND,   /* false wins: export_allowed */
    S_OR,    /* true wins: step-up, desensitization */
    S_UNION, /* bitmask union: approvals */
};

static const struct rule {
    const char *key;  /* key inside its object ("retention" rules sit one level down) */
    const char *path; /* key as a dotted path relative to a kind or region */
    bool in_retention;
    enum rtype type;
    enum strict strict;
    bool region; /* a region may set it */
    int64_t min, max;
} rules[QUN_POLICY__COUNT] = {
    [QUN_POLICY_COOLING_OFF] = {"cooling_off_seconds", "cooling_off_seconds", false, T_DURATION, S_MAX, true,
                                0, QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_NOTICE_THRESHOLD] = {"notice_threshold_members", "notice_threshold_members", false, T_COUNT,
                                     S_MIN, true, 0, 1000000000},
    [QUN_POLICY_NOTICE] = {"notice_seconds", "notice_seconds", false, T_DURATION, S_MAX, true, 0,
                           QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_PURGE_GRACE] = {"purge_grace_seconds", "purge_grace_seconds", false, T_DURATION, S_MAX, false,
                                0, QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_TOMBSTONE] = {"tombstone_seconds", "tombstone_seconds", false, T_DURATION, S_MAX, false, 0,
                              QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_APPROVALS] = {"approvals", "approvals", false, T_APPROVALS, S_UNION, true, 0, 0},
    /* A quorum of 0 guardians would approve nothing, so counts start at 1. */
    [QUN_POLICY_GUARDIAN_QUORUM] = {"guardian_quorum", "guardian_quorum", false, T_QUORUM, S_MAX, false, 1,
                                    1000},
    /* An approval request that expires at once could never be granted. */
    [QUN_POLICY_APPROVAL_EXPIRY] = {"approval_expiry_seconds", "approval_expiry_seconds", false, T_DURATION,
                                    S_MAX, false, 1, QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_STEP_UP] = {"step_up_required", "step_up_required", false, T_BOOL, S_OR, false, 0, 1},
    [QUN_POLICY_DESENSITIZE] = {"desensitize", "desensitize", false, T_BOOL, S_OR, false, 0, 1},
    [QUN_POLICY_EXPORT] = {"export_allowed", "export_allowed", false, T_BOOL, S_AND, true, 0, 1},
    [QUN_POLICY_RETAIN_MESSAGES] = {"messages", "retention.messages", true, T_RETENTION, S_MAX, true, 0,
                                    QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_RETAIN_FILES] = {"files", "retention.files", true, T_RETENTION, S_MAX, true, 0,
                                 QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_RETAIN_GROUP_PAYMENTS] = {"group_payments", "retention.group_payments", true, T_RETENTION,
                                          S_MAX, true, 0, QUN_POLICY_MAX_SECONDS},
    [QUN_POLICY_RETAIN_BILL_LINES] = {"bill_lines", "retention.bill_lines", true, T_RETENTION, S_MAX, true, 0,
                                      QUN_POLICY_MAX_SECONDS},
    /* Not a dissolution rule: how long after posting an author may recall a message
     * (core/message.c).  A region may not lengthen it; a kind may set it (0: never). */
    [QUN_POLICY_RECALL_WINDOW] = {"recall_window_seconds", "recall_window_seconds", false, T_DURATION, S_MAX,
                                  false, 0, QUN_POLICY_MAX_SECONDS},
};

static const char *const approval_names[QUN_APPROVAL__COUNT] = {
    [QUN_APPROVAL_ORG_ADMIN] = "org_admin",
    [QUN_APPROVAL_ORG_ADMIN_IF_PROTECTED] = "org_admin_if_protected",
    [QUN_APPROVAL_SCHOOL_ADMIN] = "school_admin",
    [QUN_APPROVAL_GUARDIANS] = "guardians",
};

enum { K_STANDARD, K_ENTERPRISE, K_EDUCATION, K_FINANCE, K_CROSS_BORDER, K__COUNT };
static const char *const kind_names[K__COUNT] = {"standard", "enterprise", "education", "finance",
                                                 "cross_border"};

/* The values one object of a pack sets; bit r of `set` says rule r is present. */
struct rules {
    int64_t v[QUN_POLICY__COUNT];
    uint32_t set;
};

struct region {
    char name[REGION_NAME_MAX];
    struct rules r;
};

struct qun_policy {
    struct rules defaults; /* always complete: every bit set */
    struct rules kinds[K__COUNT];
    struct region *regions;
    int nregions;
    qun_policy_verify_t verify;
    char origin[300];
};

#define BIT(r) (1u << (r))
#define ALL_RULES (BIT(QUN_POLICY__COUNT) - 1u)

/* ---- small lookups ---- */

const char *qun_policy_rule_key(qun_policy_rule r) {
    return (unsigned)r < QUN_POLICY__COUNT ? rules[r].path : "?";
}

const char *qun_policy_approval_name(qun_approval_kind a) {
    return (unsigned)a < QUN_APPROVAL__COUNT ? approval_names[a] : "?";
}

static int kind_index(const char *kind) {
    for (int k = 0; kind && k < K__COUNT; k++)
        if (strcmp(kind, kind_names[k]) == 0) return k;
    return -1;
}

bool qun_policy_kind_valid(const char *kind) {
    return kind_index(kind) >= 0;
}

static const struct region *find_region(const qun_policy_t *p, const char *name) {
    for (int i = 0; name && i < p->nregions; i++)
        if (strcmp(p->regions[i].name, name) == 0) return &p->regions[i];
    return NULL;
}

bool qun_policy_has_region(const qun_policy_t *p, const char *name) {
    return find_region(p, name) != NULL;
}

const char *qun_policy_origin(const qun_policy_t *p) {
    return p->origin;
}

/* Lower-case ASCII letters, digits and '_', starting with a letter: region names appear in
 * sources ("region:eu"), logs and API answers, so they stay plain. */
static bool region_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 2 || n >= REGION_NAME_MAX || s[0] < 'a' || s[0] > 'z') return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return false;
    return true;
}

/* ---- the builtin pack: must stay equal to the shipped policies/ files (a unit test checks) ---- */

#define HOURS(h) ((int64_t)(h)*3600)
#define DAYS(d) ((int64_t)(d)*86400)

static void set_rule(struct rules *r, qun_policy_rule rule, int64_t v) {
    r->v[rule] = v;
    r->set |= BIT(rule);
}

/* docs/design.md section 3's defaults.  Also the base under a kinds.json whose "defaults"
 * object omits some rules. */
static void design_defaults(struct rules *d) {
    memset(d, 0, sizeof *d);
    set_rule(d, QUN_POLICY_COOLING_OFF, HOURS(48));
    set_rule(d, QUN_POLICY_NOTICE_THRESHOLD, 500);
    set_rule(d, QUN_POLICY_NOTICE, HOURS(72));
    set_rule(d, QUN_POLICY_PURGE_GRACE, DAYS(7));
    set_rule(d, QUN_POLICY_TOMBSTONE, DAYS(31));
    set_rule(d, QUN_POLICY_APPROVALS, 0);
    set_rule(d, QUN_POLICY_GUARDIAN_QUORUM, QUN_POLICY_QUORUM_ALL);
    set_rule(d, QUN_POLICY_APPROVAL_EXPIRY, DAYS(7));
    set_rule(d, QUN_POLICY_STEP_UP, 0);
    set_rule(d, QUN_POLICY_DESENSITIZE, 0);
    set_rule(d, QUN_POLICY_EXPORT, 1);
    set_rule(d, QUN_POLICY_RETAIN_MESSAGES, 0);
    set_rule(d, QUN_POLICY_RETAIN_FILES, 0);
    set_rule(d, QUN_POLICY_RETAIN_GROUP_PAYMENTS, HOURS(72));
    set_rule(d, QUN_POLICY_RETAIN_BILL_LINES, QUN_POLICY_FOREVER);
    set_rule(d, QUN_POLICY_RECALL_WINDOW, 120); /* two minutes, as WeChat */
}

static void builtin_kinds(qun_policy_t *p) {
    memset(p->kinds, 0, sizeof p->kinds);
    set_rule(&p->kinds[K_ENTERPRISE], QUN_POLICY_APPROVALS, 1 << QUN_APPROVAL_ORG_ADMIN_IF_PROTECTED);
    struct rules *edu = &p->kinds[K_EDUCATION];
    set_rule(edu, QUN_POLICY_APPROVALS, (1 << QUN_APPROVAL_SCHOOL_ADMIN) | (1 << QUN_APPROVAL_GUARDIANS));
    set_rule(edu, QUN_POLICY_GUARDIAN_QUORUM, QUN_POLICY_QUORUM_ALL);
    set_rule(edu, QUN_POLICY_APPROVAL_EXPIRY, HOURS(72));
    set_rule(edu, QUN_POLICY_STEP_UP, 1);
    struct rules *fin = &p->kinds[K_FINANCE];
    set_rule(fin, QUN_POLICY_DESENSITIZE, 1);
    set_rule(fin, QUN_POLICY_RETAIN_GROUP_PAYMENTS, DAYS(30));
}

/* Example regions, not legal advice: see policies/README.md. */
static qun_rc builtin_regions(qun_policy_t *p) {
    static const char *const names[] = {"cn", "eu", "sg", "us"};
    int n = (int)(sizeof names / sizeof names[0]);
    p->regions = calloc((size_t)n, sizeof *p->regions);
    if (!p->regions) return QUN_NOMEM;
    p->nregions = n;
    for (int i = 0; i < n; i++)
        snprintf(p->regions[i].name, REGION_NAME_MAX, "%s", names[i]);
    struct rules *cn = &p->regions[0].r, *eu = &p->regions[1].r, *sg = &p->regions[2].r,
                 *us = &p->regions[3].r;
    set_rule(cn, QUN_POLICY_EXPORT, 0);
    set_rule(cn, QUN_POLICY_RETAIN_MESSAGES, DAYS(180));
    set_rule(cn, QUN_POLICY_RETAIN_FILES, DAYS(180));
    set_rule(eu, QUN_POLICY_EXPORT, 1);
    set_rule(eu, QUN_POLICY_NOTICE, DAYS(7));
    set_rule(eu, QUN_POLICY_COOLING_OFF, HOURS(72));
    set_rule(sg, QUN_POLICY_EXPORT, 1);
    set_rule(sg, QUN_POLICY_NOTICE_THRESHOLD, 200);
    set_rule(sg, QUN_POLICY_RETAIN_MESSAGES, DAYS(30));
    set_rule(us, QUN_POLICY_EXPORT, 1);
    set_rule(us, QUN_POLICY_RETAIN_GROUP_PAYMENTS, DAYS(90));
    set_rule(us, QUN_POLICY_RETAIN_FILES, DAYS(30));
    return QUN_OK;
}

/* docs/design.md section 5's platform methods and step-up, and the transfer limits of the
 * anchors (a session and a password at least 24 h old, as Telegram asks; caps per group
 * and per new owner, as WeCom has). */
static const qun_policy_verify_t builtin_verify = {
    .platform =
        {
            [QUN_PLATFORM_ANDROID] = QUN_VM_CONFIRM,
            [QUN_PLATFORM_IOS] = QUN_VM_DEVICE_KEY,
            [QUN_PLATFORM_WINDOWS] = QUN_VM_QR,
            [QUN_PLATFORM_WEB] = QUN_VM_QR,
            [QUN_PLATFORM_CLI] = QUN_VM_CONFIRM | QUN_VM_TYPED_NAME,
            [QUN_PLATFORM_OTHER] = QUN_VM_CONFIRM,
        },
    .step_up = QUN_VM_TOTP | QUN_VM_DEVICE_KEY,
    .transfer_session_age = HOURS(24),
    .transfer_password_age = HOURS(24),
    .transfer_group_max = 3,
    .transfer_group_window = DAYS(90),
    .transfer_owner_max = 5,
    .transfer_owner_window = DAYS(1),
    .bulk_verify_above = 10,
    /* Direct adds everywhere unless a pack asks for consent (WeChat asks above 40). */
    .consent_kinds = 0,
    .consent_above = QUN_POLICY_UNLIMITED,
};

static const char *const platform_names[QUN_PLATFORM__COUNT] = {
    [QUN_PLATFORM_ANDROID] = "android", [QUN_PLATFORM_IOS] = "ios", [QUN_PLATFORM_WINDOWS] = "windows",
    [QUN_PLATFORM_WEB] = "web",         [QUN_PLATFORM_CLI] = "cli", [QUN_PLATFORM_OTHER] = "other",
};

static const struct {
    unsigned bit;
    const char *name;
} method_names[] = {
    {QUN_VM_CONFIRM, "confirm"}, {QUN_VM_DEVICE_KEY, "device_key"}, {QUN_VM_QR, "qr"},
    {QUN_VM_TOTP, "totp"},       {QUN_VM_TYPED_NAME, "typed_name"},
};
#define NMETHODS (sizeof method_names / sizeof method_names[0])

const qun_policy_verify_t *qun_policy_verification(const qun_policy_t *p) {
    return p ? &p->verify : &builtin_verify;
}

const char *qun_policy_method_name(unsigned bit) {
    for (size_t i = 0; i < NMETHODS; i++)
        if (method_names[i].bit == bit) return method_names[i].name;
    return "unknown";
}

qun_platform qun_platform_parse(const char *name) {
    for (int i = 0; name && i < QUN_PLATFORM_OTHER; i++)
        if (strcmp(name, platform_names[i]) == 0) return (qun_platform)i;
    return QUN_PLATFORM_OTHER;
}

const char *qun_platform_name(qun_platform pf) {
    return (unsigned)pf < QUN_PLATFORM__COUNT ? platform_names[pf] : "other";
}

static qun_policy_t *policy_new(void) {
    qun_policy_t *p = calloc(1, sizeof *p);
    if (p) {
        design_defaults(&p->defaults);
        p->verify = builtin_verify;
    }
    return p;
}

qun_rc qun_policy_builtin(qun_policy_t **out) {
    *out = NULL;
    qun_policy_t *p = policy_new();
    if (!p) return QUN_NOMEM;
    builtin_kinds(p);
    if (builtin_regions(p) != QUN_OK) {
        qun_policy_free(p);
        return QUN_NOMEM;
    }
    snprintf(p->origin, sizeof p->origin, "builtin");
    *out = p;
    return QUN_OK;
}

void qun_policy_free(qun_policy_t *p) {
    if (!p) return;
    free(p->regions);
    free(p);
}

/* ---- strict parsing ---- */

/* Where parsing is: the file shown in messages and the object's JSON path. */
struct ctx {
    const char *file;
    qun_err_t *err;
};

/* Every validation failure goes through here so the message always has the same shape,
 * "FILE: FIELD: PROBLEM", and err->field carries FIELD for callers that want it alone. */
static qun_rc bad(struct ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static qun_rc bad(struct ctx *c, const char *path, const char *fmt, ...) {
    char problem[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return qun_fail_field(c->err, QUN_POLICY_INVALID, path, "%s: %s: %s", c->file, path, problem);
}

/* JSON paths are short in practice (kinds.cross_border.retention.group_payments is 43
 * characters); a longer one can only come from an over-long key, which a check rejects
 * before the path is used. */
#define PATH_MAX_LEN 128

static void join(char *out, const char *base, const char *key) {
    /* Truncation cannot happen given check_key's bound, but a short path beats overflow. */
    if (snprintf(out, PATH_MAX_LEN, "%s%s%s", base, *base ? "." : "", key) >= PATH_MAX_LEN)
        out[PATH_MAX_LEN - 1] = '\0';
}

static qun_rc parse_int(struct ctx *c, const char *path, json_t *v, int64_t min, int64_t max,
                        const char *unit, int64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return bad(c, path, "must be an integer >= %lld and <= %lld%s", (long long)min, (long long)max, unit);
    *out = json_integer_value(v);
    return QUN_OK;
}

static qun_rc parse_value(struct ctx *c, const char *path, const struct rule *r, json_t *v, int64_t *out) {
    switch (r->type) {
    case T_DURATION: return parse_int(c, path, v, r->min, r->max, " seconds (10 years)", out);
    case T_COUNT: return parse_int(c, path, v, r->min, r->max, "", out);
    case T_BOOL:
        if (!json_is_boolean(v)) return bad(c, path, "must be true or false");
        *out = json_is_true(v);
        return QUN_OK;
    case T_QUORUM:
        if (json_is_string(v) && strcmp(json_string_value(v), "all") == 0) {
            *out = QUN_POLICY_QUORUM_ALL;
            return QUN_OK;
        }
        if (!json_is_integer(v) || json_integer_value(v) < r->min || json_integer_value(v) > r->max)
            return bad(c, path, "must be \"all\" or an integer >= %lld and <= %lld", (long long)r->min,
                       (long long)r->max);
        *out = json_integer_value(v);
        return QUN_OK;
    case T_RETENTION:
        if (json_is_string(v) && strcmp(json_string_value(v), "forever") == 0) {
            *out = QUN_POLICY_FOREVER;
            return QUN_OK;
        }
        if (!json_is_integer(v) || json_integer_value(v) < r->min || json_integer_value(v) > r->max)
            return bad(c, path, "must be \"forever\" or an integer >= 0 and <= %lld seconds (10 years)",
                       (long long)r->max);
        *out = json_integer_value(v);
        return QUN_OK;
    case T_APPROVALS: {
        if (!json_is_array(v)) return bad(c, path, "must be an array of approval kinds");
        int64_t mask = 0;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            char epath[PATH_MAX_LEN + 16];
            snprintf(epath, sizeof epath, "%s[%zu]", path, i);
            if (!json_is_string(e)) return bad(c, epath, "must be a string naming an approval kind");
            int a = -1;
            for (int k = 0; k < QUN_APPROVAL__COUNT; k++)
                if (strcmp(json_string_value(e), approval_names[k]) == 0) a = k;
            if (a < 0)
                return bad(c, epath,
                           "unknown approval kind \"%.40s\" (known: org_admin, org_admin_if_protected, "
                           "school_admin, guardians)",
                           json_string_value(e));
            if (mask & (1 << a)) return bad(c, epath, "\"%s\" is listed twice", approval_names[a]);
            mask |= 1 << a;
        }
        *out = mask;
        return QUN_OK;
    }
    }
    return bad(c, path, "internal: unhandled rule type");
}

enum scope { SCOPE_DEFAULTS, SCOPE_KIND, SCOPE_REGION };

static const struct rule *lookup(const char *key, bool in_retention, int *index) {
    for (int i = 0; i < QUN_POLICY__COUNT; i++)
        if (rules[i].in_retention == in_retention && strcmp(rules[i].key, key) == 0) {
            *index = i;
            return &rules[i];
        }
    return NULL;
}

static qun_rc check_key(struct ctx *c, const char *base, const char *key) {
    /* Keys become part of error paths; refusing silly ones keeps every path printable. */
    if (strlen(key) > 48) return bad(c, base, "has a key longer than 48 characters");
    return QUN_OK;
}

/* Parse one rule-bearing object (the defaults, a kind or a region) at path into r. */
static qun_rc parse_rules(struct ctx *c, const char *path, json_t *obj, enum scope scope, struct rules *r) {
    char sub[PATH_MAX_LEN], sub2[PATH_MAX_LEN];
    const char *key, *key2;
    json_t *v, *v2;
    qun_rc rc;
    if (!json_is_object(obj)) return bad(c, path, "must be an object");
    json_object_foreach(obj, key, v) {
        if ((rc = check_key(c, path, key)) != QUN_OK) return rc;
        join(sub, path, key);
        if (strcmp(key, "comment") == 0) {
            if (!json_is_string(v)) return bad(c, sub, "must be a string");
            continue;
        }
        if (strcmp(key, "retention") == 0) {
            if (!json_is_object(v)) return bad(c, sub, "must be an object of data type: minimum seconds");
            json_object_foreach(v, key2, v2) {
                if ((rc = check_key(c, sub, key2)) != QUN_OK) return rc;
                join(sub2, sub, key2);
                int i;
                const struct rule *rl = lookup(key2, true, &i);
                if (!rl)
                    return bad(c, sub2,
                               "unknown data type (known: messages, files, group_payments, "
                               "bill_lines)");
                if ((rc = parse_value(c, sub2, rl, v2, &r->v[i])) != QUN_OK) return rc;
                r->set |= BIT(i);
            }
            continue;
        }
        int i;
        const struct rule *rl = lookup(key, false, &i);
        if (!rl) return bad(c, sub, "unknown key (see policies/README.md for the fields)");
        if (scope == SCOPE_REGION && !rl->region)
            return bad(c, sub, "cannot be set per region (only per kind or in defaults)");
        if ((rc = parse_value(c, sub, rl, v, &r->v[i])) != QUN_OK) return rc;
        r->set |= BIT(i);
    }
    return QUN_OK;
}

/* A missing or wrong "version" means the file was written for another format; reading it
 * as ours could misread a rule, so it is refused. */
static qun_rc check_version(struct ctx *c, json_t *root) {
    json_t *v = json_object_get(root, "version");
    if (!v) return bad(c, "version", "is required (this server reads version %d)", POLICY_VERSION);
    if (!json_is_integer(v) || json_integer_value(v) != POLICY_VERSION)
        return bad(c, "version", "must be %d (the only format this server reads)", POLICY_VERSION);
    return QUN_OK;
}

static qun_rc check_top(struct ctx *c, json_t *root, const char *const *allowed) {
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        bool ok = false;
        for (int i = 0; allowed[i]; i++)
            ok = ok || strcmp(key, allowed[i]) == 0;
        if (strcmp(key, "comment") == 0 && !json_is_string(v)) return bad(c, "comment", "must be a string");
        if (!ok) {
            qun_rc rc = check_key(c, "(top level)", key);
            return rc != QUN_OK ? rc : bad(c, key, "unknown key (see policies/README.md for the fields)");
        }
    }
    return check_version(c, root);
}

static qun_rc parse_kinds(struct ctx *c, json_t *root, qun_policy_t *p) {
    static const char *const top[] = {"version", "comment", "defaults", "kinds", NULL};
    qun_rc rc = check_top(c, root, top);
    if (rc != QUN_OK) return rc;
    json_t *d = json_object_get(root, "defaults");
    /* Values the file's defaults omit keep docs/design.md's; so defaults stay complete. */
    design_defaults(&p->defaults);
    if (d && (rc = parse_rules(c, "defaults", d, SCOPE_DEFAULTS, &p->defaults)) != QUN_OK) return rc;
    p->defaults.set = ALL_RULES;

    json_t *kinds = json_object_get(root, "kinds");
    if (!kinds) return bad(c, "kinds", "is required");
    if (!json_is_object(kinds)) return bad(c, "kinds", "must be an object of group kind: rules");
    memset(p->kinds, 0, sizeof p->kinds);
    const char *key;
    json_t *v;
    char path[PATH_MAX_LEN];
    json_object_foreach(kinds, key, v) {
        if ((rc = check_key(c, "kinds", key)) != QUN_OK) return rc;
        join(path, "kinds", key);
        int k = kind_index(key);
        if (k < 0)
            return bad(c, path,
                       "unknown group kind (known: standard, enterprise, education, finance, "
                       "cross_border)");
        if ((rc = parse_rules(c, path, v, SCOPE_KIND, &p->kinds[k])) != QUN_OK) return rc;
        /* A quorum set on a kind that asks no guardians is a mistake the author should hear
         * about: it reads as a safeguard but would do nothing. */
        struct rules *r = &p->kinds[k];
        int64_t approvals = r->set & BIT(QUN_POLICY_APPROVALS) ? r->v[QUN_POLICY_APPROVALS]
                                                               : p->defaults.v[QUN_POLICY_APPROVALS];
        if (r->set & BIT(QUN_POLICY_GUARDIAN_QUORUM) && !(approvals & (1 << QUN_APPROVAL_GUARDIANS))) {
            char qpath[PATH_MAX_LEN];
            join(qpath, path, "guardian_quorum");
            return bad(c, qpath, "is set but approvals do not include \"guardians\"");
        }
    }
    /* Every kind must be listed, even as {}: a kind left out would silently lose its
     * safeguards (education's guardians, enterprise's org admin) to the defaults. */
    for (int k = 0; k < K__COUNT; k++)
        if (!json_object_get(kinds, kind_names[k])) {
            join(path, "kinds", kind_names[k]);
            return bad(c, path, "is missing (list every group kind, {} for the defaults)");
        }
    return QUN_OK;
}

static qun_rc parse_regions(struct ctx *c, json_t *root, qun_policy_t *p) {
    static const char *const top[] = {"version", "comment", "regions", NULL};
    qun_rc rc = check_top(c, root, top);
    if (rc != QUN_OK) return rc;
    json_t *regions = json_object_get(root, "regions");
    if (!regions) return bad(c, "regions", "is required");
    if (!json_is_object(regions)) return bad(c, "regions", "must be an object of region name: rules");
    free(p->regions);
    p->nregions = 0;
    size_t n = json_object_size(regions);
    p->regions = calloc(n ? n : 1, sizeof *p->regions);
    if (!p->regions) return qun_fail(c->err, QUN_NOMEM, "%s: out of memory", c->file);
    const char *key;
    json_t *v;
    char path[PATH_MAX_LEN];
    json_object_foreach(regions, key, v) {
        if ((rc = check_key(c, "regions", key)) != QUN_OK) return rc;
        join(path, "regions", key);
        if (!region_name_ok(key))
            return bad(c, path, "region names are 2 to 15 characters: a-z, then a-z, 0-9 or _");
        struct region *r = &p->regions[p->nregions++];
        snprintf(r->name, sizeof r->name, "%s", key);
        if ((rc = parse_rules(c, path, v, SCOPE_REGION, &r->r)) != QUN_OK) return rc;
    }
    return QUN_OK;
}

/* A non-empty array of distinct method names, allowed: the methods it may name. */
static qun_rc parse_methods(struct ctx *c, const char *path, json_t *v, unsigned allowed, unsigned *out) {
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad(c, path, "must be a non-empty array of methods");
    unsigned mask = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        char epath[PATH_MAX_LEN + 16];
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        unsigned bit = 0;
        for (size_t k = 0; json_is_string(e) && k < NMETHODS; k++)
            if (strcmp(json_string_value(e), method_names[k].name) == 0) bit = method_names[k].bit;
        if (!bit || !(allowed & bit))
            return bad(c, epath, "must be one of %s",
                       allowed & QUN_VM_CONFIRM ? "confirm, device_key, qr, totp, typed_name"
                                                : "device_key, qr, totp");
        if (mask & bit) return bad(c, epath, "is listed twice");
        mask |= bit;
    }
    *out = mask;
    return QUN_OK;
}

/* The integer members of the transfer and bulk_remove objects: key, bounds, and where. */
static const struct limit {
    const char *section, *key;
    int64_t min, max;
    size_t offset;
} limits[] = {
    {"transfer", "min_session_age_seconds", 0, QUN_POLICY_MAX_SECONDS,
     offsetof(qun_policy_verify_t, transfer_session_age)},
    {"transfer", "password_change_cooldown_seconds", 0, QUN_POLICY_MAX_SECONDS,
     offsetof(qun_policy_verify_t, transfer_password_age)},
    {"transfer", "max_per_group", 1, 1000000, offsetof(qun_policy_verify_t, transfer_group_max)},
    {"transfer", "group_window_seconds", 1, QUN_POLICY_MAX_SECONDS,
     offsetof(qun_policy_verify_t, transfer_group_window)},
    {"transfer", "max_per_new_owner", 1, 1000000, offsetof(qun_policy_verify_t, transfer_owner_max)},
    {"transfer", "new_owner_window_seconds", 1, QUN_POLICY_MAX_SECONDS,
     offsetof(qun_policy_verify_t, transfer_owner_window)},
    {"bulk_remove", "verify_above_members", 0, 1000000, offsetof(qun_policy_verify_t, bulk_verify_above)},
};
#define NLIMITS (sizeof limits / sizeof limits[0])

static int64_t *limit_ptr(qun_policy_verify_t *v, const struct limit *l) {
    return (int64_t *)((char *)v + l->offset);
}

static int64_t limit_get(const qun_policy_verify_t *v, const struct limit *l) {
    return *(const int64_t *)((const char *)v + l->offset);
}

static qun_rc parse_limits(struct ctx *c, json_t *root, const char *section, qun_policy_verify_t *v) {
    json_t *obj = json_object_get(root, section), *e;
    if (!obj) return QUN_OK; /* the builtin limits */
    if (!json_is_object(obj)) return bad(c, section, "must be an object");
    const char *key;
    char path[PATH_MAX_LEN];
    qun_rc rc;
    json_object_foreach(obj, key, e) {
        if ((rc = check_key(c, section, key)) != QUN_OK) return rc;
        join(path, section, key);
        if (strcmp(key, "comment") == 0) {
            if (!json_is_string(e)) return bad(c, path, "must be a string");
            continue;
        }
        const struct limit *l = NULL;
        for (size_t i = 0; i < NLIMITS; i++)
            if (strcmp(limits[i].section, section) == 0 && strcmp(limits[i].key, key) == 0) l = &limits[i];
        if (!l) return bad(c, path, "unknown key (see policies/README.md for the fields)");
        if ((rc = parse_int(c, path, e, l->min, l->max, strstr(key, "_seconds") ? " seconds" : "",
                            limit_ptr(v, l))) != QUN_OK)
            return rc;
    }
    return QUN_OK;
}

/* The invitations section: {"require_consent_kinds": [kind, ...],
 * "require_consent_above_members": count | null}, both optional. */
static qun_rc parse_invitations(struct ctx *c, json_t *root, qun_policy_verify_t *v) {
    json_t *obj = json_object_get(root, "invitations"), *e;
    if (!obj) return QUN_OK; /* the builtin: direct adds */
    if (!json_is_object(obj)) return bad(c, "invitations", "must be an object");
    const char *key;
    char path[PATH_MAX_LEN];
    qun_rc rc;
    json_object_foreach(obj, key, e) {
        if ((rc = check_key(c, "invitations", key)) != QUN_OK) return rc;
        join(path, "invitations", key);
        if (strcmp(key, "comment") == 0) {
            if (!json_is_string(e)) return bad(c, path, "must be a string");
        } else if (strcmp(key, "require_consent_kinds") == 0) {
            if (!json_is_array(e)) return bad(c, path, "must be an array of group kinds");
            unsigned mask = 0;
            size_t i;
            json_t *k;
            json_array_foreach(e, i, k) {
                char epath[PATH_MAX_LEN + 24];
                snprintf(epath, sizeof epath, "%s[%zu]", path, i);
                int ki = kind_index(json_string_value(k));
                if (ki < 0)
                    return bad(
                        c, epath,
                        "must be a group kind (standard, enterprise, education, finance, cross_border)");
                if (mask & (1u << ki)) return bad(c, epath, "is listed twice");
                mask |= 1u << ki;
            }
            v->consent_kinds = mask;
        } else if (strcmp(key, "require_consent_above_members") == 0) {
            if (json_is_null(e))
                v->consent_above = QUN_POLICY_UNLIMITED;
            else if ((rc = parse_int(c, path, e, 0, 1000000000, "", &v->consent_above)) != QUN_OK)
                return rc;
        } else {
            return bad(c, path, "unknown key (see policies/README.md for the fields)");
        }
    }
    return QUN_OK;
}

bool qun_policy_consent_required(const qun_policy_t *p, const char *kind, int64_t members) {
    const qun_policy_verify_t *v = qun_policy_verification(p);
    int k = kind_index(kind);
    return (k >= 0 && (v->consent_kinds & (1u << k))) ||
           (v->consent_above != QUN_POLICY_UNLIMITED && members > v->consent_above);
}

static qun_rc parse_verification(struct ctx *c, json_t *root, qun_policy_t *p) {
    static const char *const top[] = {"version",  "comment",     "platforms",   "step_up",
                                      "transfer", "bulk_remove", "invitations", NULL};
    qun_rc rc = check_top(c, root, top);
    if (rc != QUN_OK) return rc;
    qun_policy_verify_t v = builtin_verify;
    json_t *pf = json_object_get(root, "platforms"), *e;
    if (!pf) return bad(c, "platforms", "is required");
    if (!json_is_object(pf)) return bad(c, "platforms", "must be an object of platform: [methods]");
    const char *key;
    char path[PATH_MAX_LEN];
    json_object_foreach(pf, key, e) {
        if ((rc = check_key(c, "platforms", key)) != QUN_OK) return rc;
        join(path, "platforms", key);
        if (strcmp(key, "comment") == 0) {
            if (!json_is_string(e)) return bad(c, path, "must be a string");
            continue;
        }
        int k = -1;
        for (int i = 0; i < QUN_PLATFORM__COUNT; i++)
            if (strcmp(key, platform_names[i]) == 0) k = i;
        if (k < 0) return bad(c, path, "unknown platform (known: android, ios, windows, web, cli, other)");
        if ((rc = parse_methods(c, path, e, ~0u, &v.platform[k])) != QUN_OK) return rc;
    }
    /* As with kinds: a platform left out would silently take some default. */
    for (int i = 0; i < QUN_PLATFORM__COUNT; i++)
        if (!json_object_get(pf, platform_names[i])) {
            join(path, "platforms", platform_names[i]);
            return bad(c, path, "is missing (list every platform)");
        }
    json_t *su = json_object_get(root, "step_up");
    if (!su) return bad(c, "step_up", "is required");
    if ((rc = parse_methods(c, "step_up", su, QUN_VM_DEVICE_KEY | QUN_VM_QR | QUN_VM_TOTP, &v.step_up)) !=
        QUN_OK)
        return rc;
    if ((rc = parse_limits(c, root, "transfer", &v)) != QUN_OK) return rc;
    if ((rc = parse_limits(c, root, "bulk_remove", &v)) != QUN_OK) return rc;
    if ((rc = parse_invitations(c, root, &v)) != QUN_OK) return rc;
    p->verify = v;
    return QUN_OK;
}

/* Read one file of the pack.  *present tells whether it exists at all. */
static qun_rc load_file(const char *dir, const char *name, qun_policy_t *p, bool *present,
                        qun_rc (*parse)(struct ctx *, json_t *, qun_policy_t *), qun_err_t *err) {
    char file[512];
    size_t dl = strlen(dir);
    snprintf(file, sizeof file, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name);
    struct ctx c = {file, err};
    FILE *f = fopen(file, "rb");
    if (!f) {
        if (errno == ENOENT) {
            *present = false;
            return QUN_OK;
        }
        return qun_fail(err, QUN_POLICY_INVALID, "%s: cannot open: %s", file, strerror(errno));
    }
    *present = true;
    json_error_t je;
    /* Duplicate keys are refused: with two values for one rule, which one won would be a
     * property of the parser, not of the policy. */
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root)
        return qun_fail_field(err, QUN_POLICY_INVALID, "", "%s: line %d, column %d: not valid JSON: %s", file,
                              je.line, je.column, je.text);
    qun_rc rc = json_is_object(root) ? parse(&c, root, p) : bad(&c, "(top level)", "must be an object");
    json_decref(root);
    return rc;
}

static qun_rc scan_dir(const char *dir, bool *exists, qun_err_t *err) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            *exists = false;
            return QUN_OK;
        }
        return qun_fail(err, QUN_POLICY_INVALID, "%s: cannot read the policy directory: %s", dir,
                        strerror(errno));
    }
    *exists = true;
    struct dirent *e;
    qun_rc rc = QUN_OK;
    /* A stray kind.json or region.json beside the real files is most likely a misnamed
     * pack that the operator believes is in force; say so instead of ignoring it. */
    while (rc == QUN_OK && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        if (strcmp(e->d_name, "kinds.json") == 0 || strcmp(e->d_name, "regions.json") == 0 ||
            strcmp(e->d_name, "verification.json") == 0)
            continue;
        rc = qun_fail(err, QUN_POLICY_INVALID,
                      "%s/%s: unexpected policy file (a pack is kinds.json, "
                      "regions.json and verification.json)",
                      dir, e->d_name);
    }
    closedir(d);
    return rc;
}

qun_rc qun_policy_load_dir(const char *dir, qun_policy_t **out, qun_err_t *err) {
    *out = NULL;
    bool exists, have_kinds = false, have_regions = false, have_verify = false;
    qun_rc rc = scan_dir(dir, &exists, err);
    if (rc != QUN_OK) return rc;
    qun_policy_t *p;
    if (qun_policy_builtin(&p) != QUN_OK) return qun_fail(err, QUN_NOMEM, "out of memory");
    if (!exists) {
        snprintf(p->origin, sizeof p->origin, "builtin (no directory %s)", dir);
        *out = p;
        return QUN_OK;
    }
    rc = load_file(dir, "kinds.json", p, &have_kinds, parse_kinds, err);
    if (rc == QUN_OK) rc = load_file(dir, "regions.json", p, &have_regions, parse_regions, err);
    if (rc == QUN_OK) rc = load_file(dir, "verification.json", p, &have_verify, parse_verification, err);
    if (rc != QUN_OK) {
        qun_policy_free(p);
        return rc;
    }
    snprintf(p->origin, sizeof p->origin, "%s (kinds: %s, regions: %s, verification: %s)", dir,
             have_kinds ? "kinds.json" : "builtin", have_regions ? "regions.json" : "builtin",
             have_verify ? "verification.json" : "builtin");
    *out = p;
    return QUN_OK;
}

/* ---- resolution ---- */

static void source_set(char *dst, const char *what, const char *name) {
    size_t n = qun_copy(dst, QUN_POLICY_SOURCE_MAX, what);
    if (name) n += qun_copy(dst + n, QUN_POLICY_SOURCE_MAX - n, ":");
    if (name) qun_copy(dst + n, QUN_POLICY_SOURCE_MAX - n, name);
}

/* Whether candidate is strictly stricter than current under rule r. */
static bool stricter(const struct rule *r, int64_t candidate, int64_t current) {
    switch (r->strict) {
    case S_MAX: return candidate > current;
    case S_MIN: return candidate < current;
    case S_AND: return !candidate && current;
    case S_OR: return candidate && !current;
    case S_UNION: return (candidate & ~current) != 0;
    }
    return false;
}

qun_rc qun_policy_resolve(const qun_policy_t *p, const char *kind, const char *const *regions, int nregions,
                          qun_policy_view_t *out, qun_err_t *err) {
    memset(out, 0, sizeof *out);
    int k = kind_index(kind);
    if (k < 0)
        return qun_fail_field(err, QUN_POLICY_UNKNOWN_KIND, "kind", "no policy for group kind \"%.40s\"",
                              kind ? kind : "(null)");
    /* Check every region before using any, so the answer never mixes a partial result with
     * an error. */
    for (int i = 0; i < nregions; i++)
        if (!find_region(p, regions[i])) {
            char field[32];
            snprintf(field, sizeof field, "regions[%d]", i);
            return qun_fail_field(err, QUN_POLICY_UNKNOWN_REGION, field,
                                  "region \"%.40s\" is not defined by the policy pack",
                                  regions[i] ? regions[i] : "(null)");
        }
    if (k == K_CROSS_BORDER && nregions <= 0)
        return qun_fail_field(err, QUN_FIELD_MISSING, "regions",
                              "a cross_border group must list at least one region");

    snprintf(out->kind, sizeof out->kind, "%s", kind_names[k]);
    const struct rules *kr = &p->kinds[k];
    for (int r = 0; r < QUN_POLICY__COUNT; r++) {
        bool own = kr->set & BIT(r);
        out->rule[r].value = own ? kr->v[r] : p->defaults.v[r];
        source_set(out->rule[r].source, own ? "kind" : "default", own ? kind_names[k] : NULL);
    }
    for (int a = 0; a < QUN_APPROVAL__COUNT; a++)
        if (out->rule[QUN_POLICY_APPROVALS].value & (1 << a))
            snprintf(out->approval_source[a], QUN_POLICY_SOURCE_MAX, "%s",
                     out->rule[QUN_POLICY_APPROVALS].source);

    for (int i = 0; i < nregions; i++) {
        const struct region *reg = find_region(p, regions[i]);
        for (int r = 0; r < QUN_POLICY__COUNT; r++) {
            if (!(reg->r.set & BIT(r))) continue;
            int64_t cand = reg->r.v[r];
            qun_policy_value_t *cur = &out->rule[r];
            if (!stricter(&rules[r], cand, cur->value)) continue;
            if (rules[r].strict == S_UNION) {
                /* Each approval keeps the name of whoever first required it. */
                for (int a = 0; a < QUN_APPROVAL__COUNT; a++)
                    if ((cand & (1 << a)) && !(cur->value & (1 << a)))
                        source_set(out->approval_source[a], "region", reg->name);
                cur->value |= cand;
                if (cur->value == cand) source_set(cur->source, "region", reg->name);
            } else {
                cur->value = cand;
                source_set(cur->source, "region", reg->name);
            }
        }
    }
    return QUN_OK;
}

int64_t qun_policy_delay(const qun_policy_view_t *v, int64_t members, bool *notice) {
    bool n = members > v->rule[QUN_POLICY_NOTICE_THRESHOLD].value;
    if (notice) *notice = n;
    int64_t cool = v->rule[QUN_POLICY_COOLING_OFF].value, note = v->rule[QUN_POLICY_NOTICE].value;
    return n && note > cool ? note : cool;
}

/* ---- rendering ---- */

static json_t *value_json(const struct rule *r, int64_t v) {
    switch (r->type) {
    case T_BOOL: return json_boolean(v);
    case T_QUORUM: return v == QUN_POLICY_QUORUM_ALL ? json_string("all") : json_integer(v);
    case T_RETENTION: return v == QUN_POLICY_FOREVER ? json_string("forever") : json_integer(v);
    case T_APPROVALS: {
        json_t *a = json_array();
        for (int i = 0; a && i < QUN_APPROVAL__COUNT; i++)
            if ((v & (1 << i)) && json_array_append_new(a, json_string(approval_names[i])) != 0) {
                json_decref(a);
                return NULL;
            }
        return a;
    }
    default: return json_integer(v);
    }
}

/* Put item under key of obj, or under obj.retention.key for retention rules.  Steals item. */
static int put(json_t *obj, const struct rule *r, json_t *item) {
    if (!item) return -1;
    if (!r->in_retention) return json_object_set_new(obj, r->key, item);
    json_t *ret = json_object_get(obj, "retention");
    if (!ret) {
        ret = json_object();
        if (!ret || json_object_set_new(obj, "retention", ret) != 0) {
            json_decref(item);
            return -1;
        }
    }
    return json_object_set_new(ret, r->key, item);
}

json_t *qun_policy_view_json(const qun_policy_view_t *v) {
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "kind", json_string(v->kind)) != 0) goto error;
    for (int r = 0; r < QUN_POLICY__COUNT; r++) {
        json_t *item;
        if (r == QUN_POLICY_APPROVALS) {
            item = json_array();
            for (int a = 0; item && a < QUN_APPROVAL__COUNT; a++)
                if ((v->rule[r].value & (1 << a)) &&
                    json_array_append_new(item, json_pack("{s:s, s:s}", "value", approval_names[a], "source",
                                                          v->approval_source[a])) != 0) {
                    json_decref(item);
                    item = NULL;
                }
        } else {
            item = json_pack("{s:o?, s:s}", "value", value_json(&rules[r], v->rule[r].value), "source",
                             v->rule[r].source);
        }
        if (put(o, &rules[r], item) != 0) goto error;
    }
    return o;
error:
    json_decref(o);
    return NULL;
}

static json_t *rules_json(const struct rules *rs) {
    json_t *o = json_object();
    for (int r = 0; o && r < QUN_POLICY__COUNT; r++)
        if ((rs->set & BIT(r)) && put(o, &rules[r], value_json(&rules[r], rs->v[r])) != 0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

static json_t *methods_json(unsigned mask) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < NMETHODS; i++)
        if ((mask & method_names[i].bit) &&
            json_array_append_new(a, json_string(method_names[i].name)) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The verification section in file form (verification.json). */
static json_t *verification_json(const qun_policy_verify_t *v) {
    json_t *o = json_object(), *pf = json_object();
    if (json_object_set_new(o, "platforms", pf) != 0 ||
        json_object_set_new(o, "step_up", methods_json(v->step_up)) != 0)
        goto error;
    for (int i = 0; i < QUN_PLATFORM__COUNT; i++)
        if (json_object_set_new(pf, platform_names[i], methods_json(v->platform[i])) != 0) goto error;
    for (size_t i = 0; i < NLIMITS; i++) {
        json_t *sec = json_object_get(o, limits[i].section);
        if (!sec && json_object_set_new(o, limits[i].section, sec = json_object()) != 0) goto error;
        if (json_object_set_new(sec, limits[i].key, json_integer(limit_get(v, &limits[i]))) != 0) goto error;
    }
    json_t *inv = json_object(), *kinds = json_array();
    if (json_object_set_new(o, "invitations", inv) != 0 ||
        json_object_set_new(inv, "require_consent_kinds", kinds) != 0 ||
        json_object_set_new(inv, "require_consent_above_members",
                            v->consent_above == QUN_POLICY_UNLIMITED ? json_null()
                                                                     : json_integer(v->consent_above)) != 0)
        goto error;
    for (int k = 0; k < K__COUNT; k++)
        if ((v->consent_kinds & (1u << k)) && json_array_append_new(kinds, json_string(kind_names[k])) != 0)
            goto error;
    return o;
error:
    json_decref(o);
    return NULL;
}

json_t *qun_policy_json(const qun_policy_t *p) {
    /* Each container is attached as soon as it exists, so one decref of o frees whatever
     * was built; json_object_set_new releases the value when it fails. */
    json_t *o = json_object(), *kinds = json_object();
    if (json_object_set_new(o, "kinds", kinds) != 0) goto error;
    json_t *regions = json_object();
    if (json_object_set_new(o, "regions", regions) != 0) goto error;
    if (json_object_set_new(o, "version", json_integer(POLICY_VERSION)) != 0 ||
        json_object_set_new(o, "defaults", rules_json(&p->defaults)) != 0 ||
        json_object_set_new(o, "verification", verification_json(&p->verify)) != 0)
        goto error;
    for (int k = 0; k < K__COUNT; k++)
        if (json_object_set_new(kinds, kind_names[k], rules_json(&p->kinds[k])) != 0) goto error;
    for (int i = 0; i < p->nregions; i++)
        if (json_object_set_new(regions, p->regions[i].name, rules_json(&p->regions[i].r)) != 0) goto error;
    return o;
error:
    json_decref(o);
    return NULL;
}
