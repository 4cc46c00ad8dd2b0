/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/policy.c: the shipped policies/ files load and equal the builtin
 * pack; resolution per kind; cross-border groups take the strictest value per rule and name
 * its source; broken packs fail naming the file, the exact field path and the problem.
 * Run from the repository root (scripts/run-unit.sh is), where policies/ lives. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/policy.h"
#include "unit.h"

#define V(view, r) ((view).rule[QUN_POLICY_##r].value)
#define SRC(view, r) ((view).rule[QUN_POLICY_##r].source)

static char tmp_root[] = "/tmp/qun-policy-XXXXXX";
static int ndirs;

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A fresh empty directory under tmp_root. */
static void new_dir(char *out, size_t n) {
    snprintf(out, n, "%s/%d", tmp_root, ndirs++);
    CHECK(mkdir(out, 0700) == 0);
}

static json_t *read_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fprintf(stderr, "%s: %s\n", path, je.text);
    return j;
}

/* Set (or, with value NULL, delete) the member at a dotted path, creating objects on the way. */
static void set_path(json_t *root, const char *path, json_t *value) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *o = root;
    char *save, *key = strtok_r(buf, ".", &save), *next;
    for (; (next = strtok_r(NULL, ".", &save)) != NULL; key = next) {
        json_t *child = json_object_get(o, key);
        if (!child) json_object_set_new(o, key, child = json_object());
        o = child;
    }
    if (value)
        json_object_set_new(o, key, value);
    else
        json_object_del(o, key);
}

static void resolve_ok(const qun_policy_t *p, const char *kind, const char *const *regions, int n,
                       qun_policy_view_t *v) {
    qun_err_t err = {{0}, {0}};
    qun_rc rc = qun_policy_resolve(p, kind, regions, n, v, &err);
    if (rc != QUN_OK) fprintf(stderr, "resolve %s: %s\n", kind, err.msg);
    CHECK(rc == QUN_OK);
}

static qun_policy_t *builtin; /* the builtin pack, loaded once by main */

static void test_shipped_equals_builtin(void) {
    qun_policy_t *p = NULL;
    qun_err_t err = {{0}, {0}};
    qun_rc rc = qun_policy_load_dir("policies", &p, &err);
    if (rc != QUN_OK) fprintf(stderr, "load policies: %s\n", err.msg);
    CHECK(rc == QUN_OK);
    if (!p) return;
    CHECK(strstr(qun_policy_origin(p), "kinds.json") != NULL);
    CHECK(strstr(qun_policy_origin(p), "regions.json") != NULL);
    json_t *a = qun_policy_json(p), *b = qun_policy_json(builtin);
    CHECK(a && b && json_equal(a, b));
    if (a && b && !json_equal(a, b)) {
        char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
        fprintf(stderr, "shipped: %s\nbuiltin: %s\n", sa, sb);
        free(sa);
        free(sb);
    }

    /* The rendering is the file format: written back out, it loads to the same pack. */
    char dir[128], path[160];
    new_dir(dir, sizeof dir);
    json_t *kinds = json_pack("{s:i, s:O, s:O}", "version", 1, "defaults", json_object_get(a, "defaults"),
                              "kinds", json_object_get(a, "kinds"));
    json_t *regions = json_pack("{s:i, s:O}", "version", 1, "regions", json_object_get(a, "regions"));
    snprintf(path, sizeof path, "%s/kinds.json", dir);
    CHECK(json_dump_file(kinds, path, JSON_INDENT(2)) == 0);
    snprintf(path, sizeof path, "%s/regions.json", dir);
    CHECK(json_dump_file(regions, path, JSON_INDENT(2)) == 0);
    json_t *verification = json_deep_copy(json_object_get(a, "verification"));
    json_object_set_new(verification, "version", json_integer(1));
    snprintf(path, sizeof path, "%s/verification.json", dir);
    CHECK(json_dump_file(verification, path, JSON_INDENT(2)) == 0);
    json_decref(verification);
    qun_policy_t *again = NULL;
    CHECK(qun_policy_load_dir(dir, &again, &err) == QUN_OK);
    json_t *c = again ? qun_policy_json(again) : NULL;
    CHECK(c && json_equal(a, c));
    json_decref(c);
    qun_policy_free(again);
    json_decref(kinds);
    json_decref(regions);
    json_decref(a);
    json_decref(b);
    qun_policy_free(p);
}

static void test_kinds(void) {
    const qun_policy_t *p = builtin;
    qun_policy_view_t v;

    resolve_ok(p, "standard", NULL, 0, &v);
    CHECK_STR(v.kind, "standard");
    CHECK(V(v, COOLING_OFF) == 48 * 3600);
    CHECK_STR(SRC(v, COOLING_OFF), "default");
    CHECK(V(v, NOTICE_THRESHOLD) == 500);
    CHECK(V(v, NOTICE) == 72 * 3600);
    CHECK(V(v, PURGE_GRACE) == 7 * 86400);
    CHECK(V(v, TOMBSTONE) == 31 * 86400);
    CHECK(V(v, APPROVALS) == 0);
    CHECK(V(v, STEP_UP) == 0 && V(v, DESENSITIZE) == 0);
    CHECK(V(v, EXPORT) == 1);
    CHECK(V(v, RETAIN_MESSAGES) == 0 && V(v, RETAIN_FILES) == 0);
    CHECK(V(v, RETAIN_GROUP_PAYMENTS) == 72 * 3600);
    CHECK(V(v, RETAIN_BILL_LINES) == QUN_POLICY_FOREVER);
    for (int r = 0; r < QUN_POLICY__COUNT; r++)
        CHECK_STR(v.rule[r].source, "default");
    for (int a = 0; a < QUN_APPROVAL__COUNT; a++)
        CHECK_STR(v.approval_source[a], "");

    resolve_ok(p, "enterprise", NULL, 0, &v);
    CHECK(V(v, APPROVALS) == 1 << QUN_APPROVAL_ORG_ADMIN_IF_PROTECTED);
    CHECK_STR(SRC(v, APPROVALS), "kind:enterprise");
    CHECK_STR(v.approval_source[QUN_APPROVAL_ORG_ADMIN_IF_PROTECTED], "kind:enterprise");
    CHECK_STR(v.approval_source[QUN_APPROVAL_ORG_ADMIN], "");
    CHECK_STR(SRC(v, COOLING_OFF), "default");

    resolve_ok(p, "education", NULL, 0, &v);
    CHECK(V(v, APPROVALS) == ((1 << QUN_APPROVAL_SCHOOL_ADMIN) | (1 << QUN_APPROVAL_GUARDIANS)));
    CHECK_STR(v.approval_source[QUN_APPROVAL_GUARDIANS], "kind:education");
    CHECK(V(v, GUARDIAN_QUORUM) == QUN_POLICY_QUORUM_ALL);
    CHECK_STR(SRC(v, GUARDIAN_QUORUM), "kind:education");
    CHECK(V(v, STEP_UP) == 1);
    CHECK_STR(SRC(v, STEP_UP), "kind:education");
    CHECK(V(v, APPROVAL_EXPIRY) == 72 * 3600);
    CHECK(V(v, DESENSITIZE) == 0);

    resolve_ok(p, "finance", NULL, 0, &v);
    CHECK(V(v, DESENSITIZE) == 1);
    CHECK_STR(SRC(v, DESENSITIZE), "kind:finance");
    CHECK(V(v, RETAIN_GROUP_PAYMENTS) == 30 * 86400);
    CHECK_STR(SRC(v, RETAIN_GROUP_PAYMENTS), "kind:finance");
    CHECK(V(v, RETAIN_BILL_LINES) == QUN_POLICY_FOREVER);
    CHECK_STR(SRC(v, RETAIN_BILL_LINES), "default");

    /* A cross-border group with no region would get no region's rules: refused. */
    qun_err_t err = {{0}, {0}};
    CHECK(qun_policy_resolve(p, "cross_border", NULL, 0, &v, &err) == QUN_FIELD_MISSING);
    CHECK_STR(err.field, "regions");
    const char *eu[] = {"eu"};
    resolve_ok(p, "cross_border", eu, 1, &v);
    CHECK_STR(v.kind, "cross_border");

    /* A region may also apply to other kinds; it only tightens them. */
    const char *us[] = {"us"};
    resolve_ok(p, "finance", us, 1, &v);
    CHECK(V(v, RETAIN_GROUP_PAYMENTS) == 90 * 86400);
    CHECK_STR(SRC(v, RETAIN_GROUP_PAYMENTS), "region:us");
    CHECK_STR(SRC(v, DESENSITIZE), "kind:finance");

    CHECK(qun_policy_resolve(p, "guild", NULL, 0, &v, &err) == QUN_POLICY_UNKNOWN_KIND);
    CHECK(qun_policy_resolve(p, NULL, NULL, 0, &v, &err) == QUN_POLICY_UNKNOWN_KIND);
    CHECK(qun_policy_kind_valid("education") && !qun_policy_kind_valid("guild"));
}

static void test_cross_border(void) {
    const qun_policy_t *p = builtin;
    qun_policy_view_t v, w;
    const char *eu_cn[] = {"eu", "cn"}, *cn_eu[] = {"cn", "eu"};
    resolve_ok(p, "cross_border", eu_cn, 2, &v);
    CHECK(V(v, COOLING_OFF) == 72 * 3600);
    CHECK_STR(SRC(v, COOLING_OFF), "region:eu");
    CHECK(V(v, NOTICE) == 7 * 86400);
    CHECK_STR(SRC(v, NOTICE), "region:eu");
    CHECK(V(v, RETAIN_MESSAGES) == 180 * 86400);
    CHECK_STR(SRC(v, RETAIN_MESSAGES), "region:cn");
    CHECK(V(v, RETAIN_FILES) == 180 * 86400);
    CHECK_STR(SRC(v, RETAIN_FILES), "region:cn");
    CHECK(V(v, EXPORT) == 0);
    CHECK_STR(SRC(v, EXPORT), "region:cn");
    CHECK(V(v, NOTICE_THRESHOLD) == 500);
    CHECK_STR(SRC(v, NOTICE_THRESHOLD), "default");
    CHECK(V(v, RETAIN_GROUP_PAYMENTS) == 72 * 3600);
    CHECK_STR(SRC(v, RETAIN_GROUP_PAYMENTS), "default");

    /* The order of the regions changes nothing when one is strictly stricter. */
    resolve_ok(p, "cross_border", cn_eu, 2, &w);
    for (int r = 0; r < QUN_POLICY__COUNT; r++) {
        CHECK(v.rule[r].value == w.rule[r].value);
        CHECK_STR(v.rule[r].source, w.rule[r].source);
    }

    /* Export only if all allow; when every source allows, the tie keeps the baseline's name. */
    const char *eu_us[] = {"eu", "us"}, *us_sg[] = {"us", "sg"}, *sg_cn_us[] = {"sg", "cn", "us"};
    resolve_ok(p, "cross_border", eu_us, 2, &v);
    CHECK(V(v, EXPORT) == 1);
    CHECK_STR(SRC(v, EXPORT), "default");
    CHECK(V(v, RETAIN_GROUP_PAYMENTS) == 90 * 86400);
    CHECK_STR(SRC(v, RETAIN_GROUP_PAYMENTS), "region:us");
    resolve_ok(p, "cross_border", sg_cn_us, 3, &v);
    CHECK(V(v, EXPORT) == 0);
    CHECK_STR(SRC(v, EXPORT), "region:cn");

    /* A lower notice threshold is stricter. */
    resolve_ok(p, "cross_border", us_sg, 2, &v);
    CHECK(V(v, NOTICE_THRESHOLD) == 200);
    CHECK_STR(SRC(v, NOTICE_THRESHOLD), "region:sg");
    CHECK(V(v, RETAIN_MESSAGES) == 30 * 86400);
    CHECK_STR(SRC(v, RETAIN_MESSAGES), "region:sg");
    CHECK(V(v, RETAIN_FILES) == 30 * 86400);
    CHECK_STR(SRC(v, RETAIN_FILES), "region:us");

    /* The effective delay: cooling-off, or the notice when the group is over the threshold. */
    bool notice;
    CHECK(qun_policy_delay(&v, 200, &notice) == 48 * 3600 && !notice);
    CHECK(qun_policy_delay(&v, 201, &notice) == 72 * 3600 && notice);
    resolve_ok(p, "cross_border", eu_cn, 2, &v);
    CHECK(qun_policy_delay(&v, 500, &notice) == 72 * 3600 && !notice);
    CHECK(qun_policy_delay(&v, 501, NULL) == 7 * 86400);

    /* What the impact preview shows: {value, source} per rule. */
    json_t *j = qun_policy_view_json(&v);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "kind")), "cross_border");
    json_t *msg = json_object_get(json_object_get(j, "retention"), "messages");
    CHECK(json_integer_value(json_object_get(msg, "value")) == 180 * 86400);
    CHECK_STR(json_string_value(json_object_get(msg, "source")), "region:cn");
    json_t *bills = json_object_get(json_object_get(j, "retention"), "bill_lines");
    CHECK_STR(json_string_value(json_object_get(bills, "value")), "forever");
    json_t *exp = json_object_get(j, "export_allowed");
    CHECK(json_is_false(json_object_get(exp, "value")));
    CHECK_STR(json_string_value(json_object_get(exp, "source")), "region:cn");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "guardian_quorum"), "value")), "all");
    CHECK(json_is_array(json_object_get(j, "approvals")) &&
          json_array_size(json_object_get(j, "approvals")) == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(j, "cooling_off_seconds"), "value")) ==
          72 * 3600);
    json_decref(j);

    resolve_ok(p, "education", NULL, 0, &v);
    j = qun_policy_view_json(&v);
    json_t *ap = json_object_get(j, "approvals");
    CHECK(json_array_size(ap) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(ap, 0), "value")), "school_admin");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ap, 1), "source")), "kind:education");
    CHECK(json_is_true(json_object_get(json_object_get(j, "step_up_required"), "value")));
    json_decref(j);

    /* An unknown region is an error naming which entry, never silently skipped. */
    const char *bad[] = {"eu", "atlantis"};
    qun_err_t err = {{0}, {0}};
    CHECK(qun_policy_resolve(p, "cross_border", bad, 2, &v, &err) == QUN_POLICY_UNKNOWN_REGION);
    CHECK_STR(err.field, "regions[1]");
    CHECK(strstr(err.msg, "atlantis") != NULL);
    CHECK(qun_policy_has_region(p, "eu") && !qun_policy_has_region(p, "atlantis"));
}

/* Regions may require approvals too; the union names who required each. */
static void test_region_approvals(void) {
    char dir[128], path[160];
    new_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/regions.json", dir);
    write_file(path,
               "{\"version\": 1, \"regions\": {\"xx\": {\"approvals\": [\"org_admin\", \"school_admin\"]},"
               " \"yy\": {\"export_allowed\": false, \"retention\": {\"messages\": \"forever\"}}}}");
    qun_policy_t *p = NULL;
    qun_err_t err = {{0}, {0}};
    CHECK(qun_policy_load_dir(dir, &p, &err) == QUN_OK);
    if (!p) return;
    CHECK(strstr(qun_policy_origin(p), "kinds: builtin") != NULL);
    CHECK(!qun_policy_has_region(p, "eu")); /* a present regions.json replaces the builtin regions */
    const char *r[] = {"yy", "xx"};
    qun_policy_view_t v;
    resolve_ok(p, "education", r, 2, &v);
    CHECK_STR(v.approval_source[QUN_APPROVAL_SCHOOL_ADMIN], "kind:education");
    CHECK_STR(v.approval_source[QUN_APPROVAL_GUARDIANS], "kind:education");
    CHECK_STR(v.approval_source[QUN_APPROVAL_ORG_ADMIN], "region:xx");
    CHECK_STR(v.approval_source[QUN_APPROVAL_ORG_ADMIN_IF_PROTECTED], "");
    CHECK(V(v, RETAIN_MESSAGES) == QUN_POLICY_FOREVER);
    CHECK_STR(SRC(v, RETAIN_MESSAGES), "region:yy");
    resolve_ok(p, "standard", r + 1, 1, &v);
    CHECK(V(v, APPROVALS) == ((1 << QUN_APPROVAL_ORG_ADMIN) | (1 << QUN_APPROVAL_SCHOOL_ADMIN)));
    CHECK_STR(SRC(v, APPROVALS), "region:xx");
    qun_policy_free(p);
}

/* The verification section: the builtin values, and a pack that changes them. */
static void test_verification(void) {
    const qun_policy_verify_t *v = qun_policy_verification(builtin);
    CHECK(v == qun_policy_verification(NULL) || memcmp(v, qun_policy_verification(NULL), sizeof *v) == 0);
    CHECK(v->platform[QUN_PLATFORM_ANDROID] == QUN_VM_CONFIRM);
    CHECK(v->platform[QUN_PLATFORM_IOS] == QUN_VM_DEVICE_KEY);
    CHECK(v->platform[QUN_PLATFORM_WINDOWS] == QUN_VM_QR && v->platform[QUN_PLATFORM_WEB] == QUN_VM_QR);
    CHECK(v->platform[QUN_PLATFORM_CLI] == (QUN_VM_CONFIRM | QUN_VM_TYPED_NAME));
    CHECK(v->step_up == (QUN_VM_TOTP | QUN_VM_DEVICE_KEY));
    CHECK(v->transfer_session_age == 86400 && v->transfer_password_age == 86400);
    CHECK(v->transfer_group_max == 3 && v->transfer_group_window == 90 * 86400);
    CHECK(v->transfer_owner_max == 5 && v->transfer_owner_window == 86400 && v->bulk_verify_above == 10);
    CHECK(qun_platform_parse("ios") == QUN_PLATFORM_IOS && qun_platform_parse("palm") == QUN_PLATFORM_OTHER);
    CHECK(qun_platform_parse(NULL) == QUN_PLATFORM_OTHER &&
          strcmp(qun_platform_name(QUN_PLATFORM_CLI), "cli") == 0);
    CHECK(strcmp(qun_policy_method_name(QUN_VM_TYPED_NAME), "typed_name") == 0);

    char dir[128], path[160];
    new_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/verification.json", dir);
    write_file(
        path,
        "{\"version\": 1, \"platforms\": {\"android\": [\"qr\", \"totp\"], \"ios\": [\"device_key\"], "
        "\"windows\": [\"qr\"], \"web\": [\"qr\"], \"cli\": [\"typed_name\"], \"other\": [\"confirm\"]}, "
        "\"step_up\": [\"qr\"], \"transfer\": {\"max_per_group\": 1}}");
    qun_policy_t *p = NULL;
    qun_err_t err = {{0}, {0}};
    CHECK(qun_policy_load_dir(dir, &p, &err) == QUN_OK);
    if (!p) return;
    CHECK(strstr(qun_policy_origin(p), "verification.json") != NULL);
    v = qun_policy_verification(p);
    CHECK(v->platform[QUN_PLATFORM_ANDROID] == (QUN_VM_QR | QUN_VM_TOTP) &&
          v->platform[QUN_PLATFORM_CLI] == QUN_VM_TYPED_NAME);
    CHECK(v->step_up == QUN_VM_QR && v->transfer_group_max == 1);
    CHECK(v->transfer_owner_max == 5 && v->bulk_verify_above == 10); /* omitted: builtin */
    /* No invitations section: direct adds everywhere. */
    CHECK(!qun_policy_consent_required(p, "education", 100000));
    qun_policy_free(p);

    /* Consent per kind and above a size (WeChat's 40): more than 40 members, not 40. */
    write_file(path, "{\"version\": 1, \"platforms\": {\"android\": [\"qr\"], \"ios\": [\"qr\"], "
                     "\"windows\": [\"qr\"], \"web\": [\"qr\"], \"cli\": [\"confirm\"], \"other\": [\"qr\"]}, "
                     "\"step_up\": [\"qr\"], \"invitations\": {\"require_consent_kinds\": [\"education\"], "
                     "\"require_consent_above_members\": 40}}");
    p = NULL;
    CHECK(qun_policy_load_dir(dir, &p, &err) == QUN_OK);
    if (!p) return;
    CHECK(qun_policy_consent_required(p, "education", 1));
    CHECK(!qun_policy_consent_required(p, "standard", 40) && qun_policy_consent_required(p, "standard", 41));
    json_t *j = qun_policy_json(p);
    json_t *inv = json_object_get(json_object_get(j, "verification"), "invitations");
    CHECK(json_integer_value(json_object_get(inv, "require_consent_above_members")) == 40);
    CHECK(json_array_size(json_object_get(inv, "require_consent_kinds")) == 1);
    json_decref(j);
    qun_policy_free(p);
    CHECK(!qun_policy_consent_required(NULL, "education", 1000)); /* the builtin pack */
}

static void test_missing(void) {
    qun_policy_t *p = NULL;
    qun_err_t err = {{0}, {0}};
    char dir[128], path[160];
    snprintf(dir, sizeof dir, "%s/does-not-exist", tmp_root);
    CHECK(qun_policy_load_dir(dir, &p, &err) == QUN_OK);
    CHECK(p && strstr(qun_policy_origin(p), "builtin") != NULL);
    qun_policy_free(p);
    /* An empty directory, or one holding only documentation, is the builtin pack too. */
    new_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/README.md", dir);
    write_file(path, "# notes\n");
    p = NULL;
    CHECK(qun_policy_load_dir(dir, &p, &err) == QUN_OK);
    CHECK(p && qun_policy_has_region(p, "cn"));
    qun_policy_free(p);
    qun_policy_free(NULL);
}

/* One broken pack: start from the shipped file, set (or delete, value NULL) one path or
 * replace the whole text, and expect a failure naming the file and the field. */
static const struct broken {
    const char *file;
    const char *path;  /* dotted path to change in the shipped file */
    const char *value; /* JSON text to put there; NULL deletes it */
    const char *raw;   /* instead: the whole file text */
    const char *field; /* expected field path in the message ("" for syntax errors) */
    const char *problem;
} broken[] = {
    {"kinds.json", NULL, NULL, "{\"version\": 1, \"kinds\": {", "", "not valid JSON"},
    {"regions.json", NULL, NULL, "[1, 2]", "(top level)", "must be an object"},
    {"kinds.json", NULL, NULL, "{\"version\": 1, \"version\": 1}", "", "duplicate"},
    {"kinds.json", "kinds.finance.retention.mesages", "5", NULL, "kinds.finance.retention.mesages",
     "unknown data type"},
    {"kinds.json", "kinds.finance.desensitise", "true", NULL, "kinds.finance.desensitise", "unknown key"},
    {"kinds.json", "defaults.cooling_off", "60", NULL, "defaults.cooling_off", "unknown key"},
    {"kinds.json", "kindz", "{}", NULL, "kindz", "unknown key"},
    {"kinds.json", "kinds.guild", "{}", NULL, "kinds.guild", "unknown group kind"},
    {"kinds.json", "kinds.education", NULL, NULL, "kinds.education", "is missing"},
    {"kinds.json", "kinds.finance.desensitize", "\"yes\"", NULL, "kinds.finance.desensitize",
     "must be true or false"},
    {"kinds.json", "kinds.standard.cooling_off_seconds", "\"48h\"", NULL,
     "kinds.standard.cooling_off_seconds", "must be an integer"},
    {"kinds.json", "kinds.standard.cooling_off_seconds", "3.5", NULL, "kinds.standard.cooling_off_seconds",
     "must be an integer"},
    {"kinds.json", "kinds.finance.retention.messages", "-1", NULL, "kinds.finance.retention.messages",
     "must be \"forever\" or an integer >= 0"},
    {"kinds.json", "kinds.finance.retention.bill_lines", "\"never\"", NULL,
     "kinds.finance.retention.bill_lines", "must be \"forever\""},
    {"kinds.json", "kinds.finance.retention", "[]", NULL, "kinds.finance.retention", "must be an object"},
    {"kinds.json", "kinds.standard.tombstone_seconds", "315360001", NULL, "kinds.standard.tombstone_seconds",
     "<= 315360000"},
    {"kinds.json", "kinds.standard.notice_threshold_members", "-5", NULL,
     "kinds.standard.notice_threshold_members", "must be an integer >= 0"},
    {"kinds.json", "kinds.education.approval_expiry_seconds", "0", NULL,
     "kinds.education.approval_expiry_seconds", "must be an integer >= 1"},
    {"kinds.json", "kinds.enterprise.approvals", "[\"org_admn\"]", NULL, "kinds.enterprise.approvals[0]",
     "unknown approval kind \"org_admn\""},
    {"kinds.json", "kinds.education.approvals", "[\"school_admin\", 7]", NULL, "kinds.education.approvals[1]",
     "must be a string"},
    {"kinds.json", "kinds.education.approvals", "[\"guardians\", \"guardians\"]", NULL,
     "kinds.education.approvals[1]", "listed twice"},
    {"kinds.json", "kinds.enterprise.approvals", "\"org_admin\"", NULL, "kinds.enterprise.approvals",
     "must be an array"},
    {"kinds.json", "kinds.education.guardian_quorum", "\"most\"", NULL, "kinds.education.guardian_quorum",
     "must be \"all\" or an integer >= 1"},
    {"kinds.json", "kinds.education.guardian_quorum", "0", NULL, "kinds.education.guardian_quorum",
     "must be \"all\" or an integer >= 1"},
    {"kinds.json", "kinds.standard.guardian_quorum", "2", NULL, "kinds.standard.guardian_quorum",
     "approvals do not include \"guardians\""},
    {"kinds.json", "kinds.standard", "[]", NULL, "kinds.standard", "must be an object"},
    {"kinds.json", "version", NULL, NULL, "version", "is required"},
    {"kinds.json", "version", "2", NULL, "version", "must be 1"},
    {"kinds.json", "comment", "42", NULL, "comment", "must be a string"},
    {"regions.json", "regions.eu.notice_seconds", "-1", NULL, "regions.eu.notice_seconds",
     "must be an integer >= 0"},
    {"regions.json", "regions.eu.export_allowed", "\"yes\"", NULL, "regions.eu.export_allowed",
     "must be true or false"},
    {"regions.json", "regions.eu.step_up_required", "true", NULL, "regions.eu.step_up_required",
     "cannot be set per region"},
    {"regions.json", "regions.cn.retention.files", "null", NULL, "regions.cn.retention.files",
     "must be \"forever\" or an integer"},
    {"regions.json", "regions.eu.notice_second", "1", NULL, "regions.eu.notice_second", "unknown key"},
    {"regions.json", "regions.EU", "{}", NULL, "regions.EU", "region names"},
    {"regions.json", "regions", NULL, NULL, "regions", "is required"},
    {"verification.json", "platforms.ios", "[\"faceid\"]", NULL, "platforms.ios[0]", "must be one of"},
    {"verification.json", "platforms.ios", "[]", NULL, "platforms.ios", "non-empty array"},
    {"verification.json", "platforms.web", "[\"qr\", \"qr\"]", NULL, "platforms.web[1]", "listed twice"},
    {"verification.json", "platforms.cli", NULL, NULL, "platforms.cli", "is missing"},
    {"verification.json", "platforms.symbian", "[\"confirm\"]", NULL, "platforms.symbian",
     "unknown platform"},
    {"verification.json", "step_up", "[\"typed_name\"]", NULL, "step_up[0]", "must be one of device_key"},
    {"verification.json", "transfer.max_per_group", "0", NULL, "transfer.max_per_group",
     "must be an integer >= 1"},
    {"verification.json", "transfer.min_session_age", "60", NULL, "transfer.min_session_age", "unknown key"},
    {"verification.json", "bulk_remove.verify_above_members", "-1", NULL, "bulk_remove.verify_above_members",
     "must be an integer >= 0"},
    {"verification.json", "platforms", NULL, NULL, "platforms", "is required"},
    {"verification.json", "invitations.require_consent_kinds", "[\"school\"]", NULL,
     "invitations.require_consent_kinds[0]", "must be a group kind"},
    {"verification.json", "invitations.require_consent_kinds", "[\"finance\", \"finance\"]", NULL,
     "invitations.require_consent_kinds[1]", "listed twice"},
    {"verification.json", "invitations.require_consent_above_members", "-1", NULL,
     "invitations.require_consent_above_members", "must be an integer >= 0"},
    {"verification.json", "invitations.require_consent", "true", NULL, "invitations.require_consent",
     "unknown key"},
};

static void test_broken(void) {
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        const struct broken *b = &broken[i];
        char dir[128], file[192], src[64];
        new_dir(dir, sizeof dir);
        snprintf(file, sizeof file, "%s/%s", dir, b->file);
        if (b->raw) {
            write_file(file, b->raw);
        } else {
            snprintf(src, sizeof src, "policies/%s", b->file);
            json_t *root = read_json(src);
            CHECK(root != NULL);
            if (!root) continue;
            json_t *v = NULL;
            if (b->value) {
                json_error_t je;
                v = json_loads(b->value, JSON_DECODE_ANY, &je);
                CHECK(v != NULL);
            }
            set_path(root, b->path, v);
            CHECK(json_dump_file(root, file, JSON_INDENT(2)) == 0);
            json_decref(root);
        }
        qun_policy_t *p = (qun_policy_t *)1;
        qun_err_t err = {{0}, {0}};
        qun_rc rc = qun_policy_load_dir(dir, &p, &err);
        char want[256];
        snprintf(want, sizeof want, "%s: %s%s", file, b->field, *b->field ? ": " : "");
        bool ok = rc == QUN_POLICY_INVALID && p == NULL && strncmp(err.msg, want, strlen(want)) == 0 &&
                  strcmp(err.field, b->field) == 0 && strstr(err.msg, b->problem) != NULL;
        if (getenv("UNIT_VERBOSE")) printf("  %s\n", err.msg);
        if (!ok)
            fprintf(stderr, "broken[%zu] (%s %s): rc=%s field=\"%s\" msg=\"%s\"\n", i, b->file,
                    b->path ? b->path : "raw", qun_rc_name(rc), err.field, err.msg);
        CHECKF(ok, b->path ? b->path : b->raw);
    }

    /* A misnamed file beside the real ones is refused, not ignored. */
    char dir[128], file[192];
    new_dir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/region.json", dir);
    write_file(file, "{}");
    qun_policy_t *p = NULL;
    qun_err_t err = {{0}, {0}};
    CHECK(qun_policy_load_dir(dir, &p, &err) == QUN_POLICY_INVALID);
    CHECK(p == NULL);
    CHECK(strstr(err.msg, "region.json") != NULL);
}

/* The builtin pack's origin and the names of its rules. */
static void test_names(void) {
    CHECK_STR(qun_policy_origin(builtin), "builtin");
    CHECK_STR(qun_policy_rule_key(QUN_POLICY_RETAIN_MESSAGES), "retention.messages");
    CHECK_STR(qun_policy_approval_name(QUN_APPROVAL_GUARDIANS), "guardians");
}

int main(void) {
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    CHECK(qun_policy_builtin(&builtin) == QUN_OK);
    RUN(test_names);
    RUN(test_shipped_equals_builtin);
    RUN(test_verification);
    RUN(test_kinds);
    RUN(test_cross_border);
    RUN(test_region_approvals);
    RUN(test_missing);
    RUN(test_broken);
    qun_policy_free(builtin);

    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return unit_done("core/policy");
}
