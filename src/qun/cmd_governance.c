/* SPDX-License-Identifier: MIT */
/* Governance commands around dissolutions: the approvals inbox (`approvals list`,
 * `approve`, `reject`), legal holds for the compliance role (`hold place|list|release`)
 * and an enterprise org's dissolve protection (`org protection`). */
#include <string.h>

#include "client.h"

/* A sub-command table entry: the word after the family name and its runner. */
typedef struct {
    const char *name;
    int (*run)(qun_cli_t *c, int argc, char **argv);
} sub_t;

static int dispatch(qun_cli_t *c, const char *family, const sub_t *subs, size_t n, int argc, char **argv) {
    if (argc >= 1)
        for (size_t i = 0; i < n; i++)
            if (strcmp(subs[i].name, argv[0]) == 0) return subs[i].run(c, argc - 1, argv + 1);
    if (argc < 1) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.sub_missing", family, family);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.unknown_sub", family, argv[0], family);
}

/* ---- approvals ---- */

static void print_approval(json_t *a) {
    char t[32], key[64], as[300];
    /* In what capacity the caller decides, in words from the kind; people by name: the
     * display name, else the username (never the openid). */
    const char *kind = qun_jstr_or(a, "kind", "?");
    const char *subject = qun_jstr_or(a, "subject_display_name", qun_jstr_or(a, "subject_username", NULL));
    snprintf(key, sizeof key, "approval.kind.%s", kind);
    if (strcmp(kind, "guardian") == 0)
        qun_wf(as, sizeof as, "approval.kind.guardian_of", subject ? subject : "?");
    else
        snprintf(as, sizeof as, "%s", qun_w_or(key, kind));
    char line[900], piece[400];
    printf("%-24s %s", qun_jstr_or(a, "id", "?"),
           qun_wf(line, sizeof line, "cli.approval_line", as, qun_jstr_or(a, "state", "?"),
                  qun_jstr_or(a, "group", "?"), qun_jstr_or(a, "group_name", ""),
                  qun_jstr_or(a, "group_kind", "?"),
                  qun_jstr_or(a, "requested_by_display_name", qun_jstr_or(a, "requested_by_username", "?"))));
    if (subject && strcmp(kind, "guardian") != 0)
        fputs(qun_wf(piece, sizeof piece, "cli.approval_for", subject), stdout);
    if (strcmp(qun_jstr_or(a, "state", ""), "pending") == 0)
        fputs(qun_wf(piece, sizeof piece, "cli.approval_expires", qun_fmt_time(qun_jint(a, "expires_at"), t)),
              stdout);
    const char *reason = qun_jstr_or(a, "reason", "");
    if (*reason) fputs(qun_wf(piece, sizeof piece, "cli.approval_reason", reason), stdout);
    putchar('\n');
    /* What is decided on, in figures. */
    json_t *i = json_object_get(a, "impact");
    if (json_is_object(i)) {
        char sz[32], n[5][24];
        const char *k[] = {"members", "messages", "files", "payments"};
        for (int j = 0; j < 4; j++)
            snprintf(n[j], sizeof n[j], "%lld", (long long)qun_jint(i, k[j]));
        qun_fmt_size(qun_jint(i, "file_bytes"), sz);
        printf("  %s", qun_wf(line, sizeof line, "cli.approval_impact", n[0], n[1], n[2], sz, n[3]));
        const char *m = qun_jstr_or(a, "messages", "");
        snprintf(key, sizeof key, "cli.approval_messages.%s", m);
        if (*m) printf(" %s", qun_w_or(key, ""));
        putchar('\n');
    }
}

static int approvals_list(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL, *it;
    size_t i;
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "approvals list", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", "/v1/approvals", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *items = json_object_get(out, "items");
    if (c->json) {
        qun_print_json(out);
    } else if (json_array_size(items) == 0) {
        qun_say("cli.approvals_none");
    } else {
        json_array_foreach(items, i, it) print_approval(it);
        qun_say("cli.approvals_decide");
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

static int decide(qun_cli_t *c, int argc, char **argv, bool approve) {
    static const qun_opt_t opts[] = {{"--reason", NULL, true}, {0}};
    const char *usage =
        approve ? "approvals approve <aid> [--reason R]" : "approvals reject <aid> --reason R";
    qun_args_t a;
    json_t *out = NULL;
    char path[512];
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    /* The server insists on a reason for a rejection; say so before asking it. */
    if (!approve && (!a.val[0] || !*a.val[0]))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.reject_reason", usage);
    json_t *body = json_object();
    if (a.val[0]) json_object_set_new(body, "reason", json_string(a.val[0]));
    rc = qun_pathf(path, sizeof path, approve ? "/v1/approvals/%s/approve" : "/v1/approvals/%s/reject",
                   a.pos[0]);
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "POST", path, body, &out);
    else
        json_decref(body);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say(approve ? "cli.approval_approved" : "cli.approval_rejected", qun_jstr_or(out, "id", a.pos[0]),
                qun_jstr_or(out, "group", "?"), qun_jstr_or(out, "group_name", ""));
    json_decref(out);
    return QUN_EXIT_OK;
}

static int approvals_approve(qun_cli_t *c, int argc, char **argv) {
    return decide(c, argc, argv, true);
}

static int approvals_reject(qun_cli_t *c, int argc, char **argv) {
    return decide(c, argc, argv, false);
}

int qun_cmd_approvals(qun_cli_t *c, int argc, char **argv) {
    static const sub_t subs[] = {
        {"list", approvals_list}, {"approve", approvals_approve}, {"reject", approvals_reject}};
    /* "qun approvals" alone lists the inbox, the common case. */
    if (argc == 0) return approvals_list(c, 0, argv);
    return dispatch(c, "approvals", subs, sizeof subs / sizeof subs[0], argc, argv);
}

/* ---- legal holds ---- */

static void print_hold(json_t *h) {
    char t[32], line[600], released[300] = "";
    bool over = json_is_integer(json_object_get(h, "released_at"));
    if (over)
        qun_wf(released, sizeof released, "cli.hold_released_at", qun_fmt_time(qun_jint(h, "released_at"), t),
               qun_jstr_or(h, "released_by", "?"));
    printf("%-24s ", qun_jstr_or(h, "id", "?"));
    qun_print_col(qun_w(over ? "cli.hold_state.released" : "cli.hold_state.active"), 8);
    printf("%s\n", qun_wf(line, sizeof line, "cli.hold_line", qun_fmt_time(qun_jint(h, "placed_at"), t),
                          qun_jstr_or(h, "placed_by", "?"), released, qun_jstr_or(h, "reason", "")));
}

static int hold_place(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--reason", NULL, true}, {0}};
    static const char usage[] = "hold place <group> --reason R";
    qun_args_t a;
    json_t *out = NULL;
    char path[512];
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (!a.val[0] || !*a.val[0]) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.hold_reason", usage);
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/holds", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", path, json_pack("{s:s}", "reason", a.val[0]), &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.hold_placed", qun_jstr_or(out, "id", "?"), a.pos[0], a.pos[0],
                qun_jstr_or(out, "id", "?"));
    json_decref(out);
    return QUN_EXIT_OK;
}

static int hold_list(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL, *h;
    size_t i;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "hold list <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/holds", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *items = json_object_get(out, "items");
    if (c->json)
        qun_print_json(out);
    else if (json_array_size(items) == 0)
        qun_say("cli.holds_none", a.pos[0]);
    else
        json_array_foreach(items, i, h) print_hold(h);
    json_decref(out);
    return QUN_EXIT_OK;
}

static int hold_release(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, "hold release <group> <hid>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/holds/%s", a.pos[0], a.pos[1]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "DELETE", path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.hold_released", qun_jstr_or(out, "id", a.pos[1]), a.pos[0]);
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_hold(qun_cli_t *c, int argc, char **argv) {
    static const sub_t subs[] = {{"place", hold_place}, {"list", hold_list}, {"release", hold_release}};
    return dispatch(c, "hold", subs, sizeof subs / sizeof subs[0], argc, argv);
}

/* ---- orgs ---- */

static int org_protection(qun_cli_t *c, int argc, char **argv) {
    static const char usage[] = "org protection <oid> on|off";
    qun_args_t a;
    json_t *out = NULL;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    bool on = strcmp(a.pos[1], "on") == 0;
    if (!on && strcmp(a.pos[1], "off") != 0)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", usage);
    rc = qun_pathf(path, sizeof path, "/v1/orgs/%s/protection", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", path, json_pack("{s:b}", "enabled", on), &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say(json_is_true(json_object_get(out, "dissolve_protection")) ? "cli.protection_on"
                                                                          : "cli.protection_off",
                qun_jstr_or(out, "id", a.pos[0]), qun_jstr_or(out, "name", ""));
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_org(qun_cli_t *c, int argc, char **argv) {
    static const sub_t subs[] = {{"protection", org_protection}};
    return dispatch(c, "org", subs, sizeof subs / sizeof subs[0], argc, argv);
}
