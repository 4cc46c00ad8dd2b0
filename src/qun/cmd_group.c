/* SPDX-License-Identifier: MIT */
/* Group commands: `group create|list|show|members|add|remove|role|rename`, ownership
 * transfer (offer, accept, decline, withdraw) and leaving a group. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

/* Print a JSON answer for scripts, or the human line(s) print_fn renders. */
static int finish(qun_cli_t *c, json_t *out, void (*print_fn)(json_t *out, const void *arg),
                  const void *arg) {
    /* An empty answer (204) still gives scripts a JSON document to parse. */
    if (c->json && !out)
        printf("{}\n");
    else if (c->json)
        qun_print_json(out);
    else
        print_fn(out, arg);
    json_decref(out);
    return QUN_EXIT_OK;
}

static void print_group(json_t *g, const void *arg) {
    static const char *const labels[] = {"cli.label.id",       "cli.label.name",    "cli.label.kind",
                                         "cli.label.org",      "cli.label.regions", "cli.label.state",
                                         "cli.label.owner",    "cli.label.members", "cli.label.my_role",
                                         "cli.label.messages", "cli.label.created"};
    size_t w = qun_label_width(labels, sizeof labels / sizeof labels[0], 10);
    char t[32], v[600], n[24];
    const char *verb = arg;
    if (verb) qun_say(verb, qun_jstr_or(g, "id", "?"), qun_jstr_or(g, "name", ""));
    qun_field(w, "cli.label.id", qun_jstr_or(g, "id", "?"));
    qun_field(w, "cli.label.name", qun_jstr_or(g, "name", ""));
    qun_field(w, "cli.label.kind", qun_jstr_or(g, "kind", "?"));
    if (json_is_string(json_object_get(g, "org"))) qun_field(w, "cli.label.org", qun_jstr_or(g, "org", ""));
    json_t *regions = json_object_get(g, "regions");
    if (json_array_size(regions) > 0) {
        size_t i, len = 0;
        json_t *r;
        v[0] = '\0';
        json_array_foreach(regions, i, r) if (len < sizeof v) len += (size_t)snprintf(
            v + len, sizeof v - len, "%s%s", i ? " " : "", json_string_value(r) ? json_string_value(r) : "?");
        qun_field(w, "cli.label.regions", v);
    }
    qun_field(w, "cli.label.state", qun_jstr_or(g, "state", "?"));
    if (json_is_string(json_object_get(g, "owner_display_name")))
        qun_field(w, "cli.label.owner",
                  qun_wf(v, sizeof v, "cli.value.named", qun_jstr_or(g, "owner", "?"),
                         qun_jstr_or(g, "owner_display_name", "")));
    else
        qun_field(w, "cli.label.owner", qun_jstr_or(g, "owner", "?"));
    qun_field(w, "cli.label.members", qun_fmt_int(qun_jint(g, "member_count"), n));
    qun_field(w, "cli.label.my_role", qun_jstr_or(g, "my_role", "-"));
    qun_field(w, "cli.label.messages", qun_fmt_int(qun_jint(g, "last_seq"), n));
    qun_field(w, "cli.label.created", qun_fmt_time(qun_jint(g, "created_at"), t));
}

static void print_group_list(json_t *out, const void *arg) {
    size_t i;
    json_t *g;
    json_t *items = json_object_get(out, "items");
    if (json_array_size(items) == 0) {
        qun_say("cli.groups_none");
        return;
    }
    /* Names may hold CJK text: pad by display columns, not bytes. */
    size_t wname = 24;
    json_array_foreach(items, i, g) {
        size_t w = qun_text_width(qun_jstr_or(g, "name", ""));
        wname = w > wname ? w : wname;
    }
    size_t wid = qun_col_width("cli.col.id", 26), wkind = qun_col_width("cli.col.kind", 12),
           wstate = qun_col_width("cli.col.state", 9), wcount = qun_col_width("cli.col.members", 7);
    wname = qun_col_width("cli.col.name", wname);
    qun_print_col(qun_w("cli.col.id"), wid);
    qun_print_cell(qun_w("cli.col.name"), wname + 1);
    qun_print_col(qun_w("cli.col.kind"), wkind);
    qun_print_col(qun_w("cli.col.state"), wstate);
    qun_print_cell_right(qun_w("cli.col.members"), wcount);
    printf("  %s\n", qun_w("cli.col.role"));
    json_array_foreach(items, i, g) {
        char n[24];
        qun_print_col(qun_jstr_or(g, "id", "?"), wid);
        qun_print_cell(qun_jstr_or(g, "name", ""), wname + 1);
        qun_print_col(qun_jstr_or(g, "kind", "?"), wkind);
        qun_print_col(qun_jstr_or(g, "state", "?"), wstate);
        qun_print_cell_right(qun_fmt_int(qun_jint(g, "member_count"), n), wcount);
        printf("  %s\n", qun_jstr_or(g, "my_role", "-"));
    }
}

static void print_members(json_t *out, const void *arg) {
    size_t i;
    json_t *m;
    char t[32];
    json_t *items = json_object_get(out, "items");
    /* Usernames may be Chinese too: pad by display columns. */
    static const char *const cols[] = {"cli.col.openid", "cli.col.username", "cli.col.role", "cli.col.joined",
                                       "cli.col.display_name"};
    size_t w[] = {26, 20, 7, 17, 0};
    qun_print_header(cols, w, 5);
    json_array_foreach(items, i, m) {
        char name[300];
        snprintf(name, sizeof name, "%s%s", qun_jstr_or(m, "display_name", "-"),
                 json_is_true(json_object_get(m, "minor")) ? qun_w("cli.value.minor") : "");
        const char *cells[] = {qun_jstr_or(m, "openid", "?"), qun_jstr_or(m, "username", "?"),
                               qun_jstr_or(m, "role", "?"), qun_fmt_time(qun_jint(m, "joined_at"), t), name};
        qun_print_row(cells, w, 5);
    }
}

static void print_member_change(json_t *m, const void *arg) {
    char dn[200] = "";
    if (qun_jstr_or(m, "display_name", NULL))
        qun_wf(dn, sizeof dn, "cli.quoted", qun_jstr_or(m, "display_name", ""));
    qun_say(arg, qun_jstr_or(m, "username", "?"), dn, qun_jstr_or(m, "openid", "?"),
            qun_jstr_or(m, "role", "?"));
}

static void print_line(json_t *out, const void *arg) {
    printf("%s\n", (const char *)arg);
}

static int group_create(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--kind", NULL, true}, {"--org", NULL, true}, {0}};
    static const char usage[] = "group create <name> [--kind K] [--org O]";
    qun_args_t a;
    json_t *out;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *body = json_pack("{s:s}", "name", a.pos[0]);
    if (a.val[0]) json_object_set_new(body, "kind", json_string(a.val[0]));
    if (a.val[1]) json_object_set_new(body, "org", json_string(a.val[1]));
    rc = qun_cli_json(c, "POST", "/v1/groups", body, &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_group, "cli.group_created") : rc;
}

static int group_list(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "group list", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, "/v1/groups", NULL, &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_group_list, NULL) : rc;
}

static int group_show(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "group show <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_group, NULL) : rc;
}

static int group_members(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "group members <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/members", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, NULL, &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_members, NULL) : rc;
}

static int group_add(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--role", NULL, true}, {0}};
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, opts, 2, 2, "group add <group> <person> [--role admin|member]", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/members", a.pos[0]);
    if (rc != QUN_EXIT_OK) return rc;
    /* The server finds a person by username itself; an openid is sent as one. */
    json_t *body = json_pack("{s:s}", strncmp(a.pos[1], "u_", 2) == 0 ? "openid" : "username", a.pos[1]);
    if (a.val[0]) json_object_set_new(body, "role", json_string(a.val[0]));
    rc = qun_cli_json(c, "POST", path, body, &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_member_change, "cli.member_added") : rc;
}

/* The group's name typed back (given, or asked for with prompt): QUN_EXIT_OK when it
 * matches name, else CONFIRMATION_MISMATCH in the words of mismatch (which say what was
 * not done). */
static int typed_confirm(const char *prompt, const char *name, const char *given, const char *mismatch) {
    char *typed = given ? NULL : qun_prompt_line(prompt);
    const char *got = given ? given : typed ? typed : "";
    int rc = strcmp(got, name) == 0 ? QUN_EXIT_OK
                                    : qun_failw(QUN_EXIT_FAIL, "CONFIRMATION_MISMATCH", mismatch, name);
    free(typed);
    return rc;
}

/* Remove one member.  Past the removals a day allows without proof (they count with the
 * bulk removals), the server answers 428 for a cli session's confirmation token and
 * typed name: the bulk preview of this one member issues the token, the owner types the
 * group's name back, and the removal is sent again with both. */
static int group_remove(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {
        {"--confirm-name", NULL, true}, {"--totp-code", NULL, true}, {"--key", NULL, true}, {0}};
    qun_args_t a;
    json_t *out = NULL, *preview = NULL;
    char path[512], ppath[512], line[300], prompt[512];
    int rc = qun_args_parse(
        argc, argv, opts, 2, 2,
        "group remove <group> <person> [--confirm-name NAME] [--totp-code C] [--key FILE]", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/members/%s", a.pos[0], a.pos[1]);
    if (rc == QUN_EXIT_OK)
        rc = qun_pathf(ppath, sizeof ppath, "/v1/groups/%s/members/remove/preview", a.pos[0]);
    if (rc != QUN_EXIT_OK) return rc;
    qun_call_t call = {.method = "DELETE", .path = path, .quiet = true};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    bool proof = resp.status == 428;
    if (rc != QUN_EXIT_OK && resp.status != 0 && !proof) rc = qun_cli_report(&resp);
    qun_resp_free(&resp);
    if (proof) {
        fprintf(stderr, "%s\n", qun_w("cli.remove_many"));
        /* The bulk preview of this one member issues the token; the name is typed back
         * here, and whatever else the 428 names is collected by qun_send_proved. */
        rc = qun_cli_json(c, "POST", ppath, json_pack("{s:[s]}", "openids", a.pos[1]), &preview);
        const char *name = qun_jstr_or(preview, "name", "");
        qun_wf(prompt, sizeof prompt, "cli.remove_prompt", a.pos[1], name);
        if (rc == QUN_EXIT_OK) rc = typed_confirm(prompt, name, a.val[0], "cli.err.mismatch_remove");
        qun_proofs_t proofs = {.totp_code = a.val[1], .key_file = a.val[2]};
        if (rc == QUN_EXIT_OK)
            rc =
                qun_send_proved(c, "DELETE", path,
                                json_pack("{s:s, s:s}", "confirmation_token",
                                          qun_jstr_or(preview, "confirmation_token", ""), "typed_name", name),
                                &proofs, &out);
        json_decref(preview);
    }
    if (rc != QUN_EXIT_OK) return rc;
    qun_wf(line, sizeof line, "cli.removed_member", a.pos[1], a.pos[0]);
    return finish(c, out, print_line, line);
}

static int group_role(qun_cli_t *c, int argc, char **argv) {
    static const char usage[] = "group role <group> <person> admin|member";
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 3, 3, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (strcmp(a.pos[2], "admin") != 0 && strcmp(a.pos[2], "member") != 0)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.role", usage);
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/members/%s", a.pos[0], a.pos[1]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "PATCH", path, json_pack("{s:s}", "role", a.pos[2]), &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_member_change, "cli.member_set") : rc;
}

static int group_rename(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, "group rename <group> <name>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "PATCH", path, json_pack("{s:s}", "name", a.pos[1]), &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_group, "cli.group_renamed") : rc;
}

int qun_cmd_group(qun_cli_t *c, int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(qun_cli_t *c, int argc, char **argv);
    } subs[] = {{"create", group_create},   {"list", group_list},    {"show", group_show},
                {"members", group_members}, {"add", group_add},      {"remove", group_remove},
                {"role", group_role},       {"rename", group_rename}};
    if (argc < 1)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage_see",
                         "group create|list|show|members|add|remove|role|rename ...", "group");
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(subs[i].name, argv[0]) == 0) return subs[i].run(c, argc - 1, argv + 1);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.unknown_sub", "group", argv[0], "group");
}

/* arg: the new owner as the command was given them (a name), else NULL. */
static void print_transfer(json_t *out, const void *arg) {
    const char *state = qun_jstr_or(out, "state", "?");
    if (strcmp(state, "proposed") == 0)
        qun_say("cli.transfer_offered", qun_jstr_or(out, "group", "?"),
                arg ? (const char *)arg : qun_jstr_or(out, "to", "?"), qun_jstr_or(out, "group", "?"));
    else if (strcmp(state, "accepted") == 0)
        qun_say("cli.transfer_accepted", qun_jstr_or(out, "group", "?"));
    else if (strcmp(state, "withdrawn") == 0)
        qun_say("cli.transfer_withdrawn", qun_jstr_or(out, "group", "?"), qun_jstr_or(out, "to", "?"));
    else
        qun_say("cli.transfer_declined", qun_jstr_or(out, "group", "?"));
}

/* Offer ownership: the preview issues a confirmation token, the owner types the group's
 * name back (a cli session's verification policy asks for both), then the offer. */
static int transfer_offer(qun_cli_t *c, const char *gid, const char *to, const char *confirm,
                          const qun_proofs_t *proofs, json_t **out) {
    char ppath[512], path[512];
    json_t *preview = NULL;
    char prompt[512], gidbuf[128], openid[128];
    int rc = qun_group_ref(c, gid, gidbuf, sizeof gidbuf);
    if (rc == QUN_EXIT_OK) rc = qun_member_ref(c, gidbuf, to, openid, sizeof openid);
    if (rc != QUN_EXIT_OK) return rc;
    gid = gidbuf;
    to = openid;
    rc = qun_pathf(ppath, sizeof ppath, "/v1/groups/%s/transfer/preview", gid);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/transfer", gid);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", ppath, json_pack("{s:s}", "to", to), &preview);
    if (rc != QUN_EXIT_OK) return rc;
    const char *name = qun_jstr_or(preview, "name", ""),
               *token = qun_jstr_or(preview, "confirmation_token", NULL);
    char shown_name[201], shown_to[65];
    snprintf(shown_name, sizeof shown_name, "%.200s", name);
    snprintf(shown_to, sizeof shown_to, "%.64s", to);
    qun_wf(prompt, sizeof prompt, "cli.transfer_prompt", shown_name, shown_to);
    rc = typed_confirm(prompt, name, confirm, "cli.err.mismatch_transfer");
    if (rc == QUN_EXIT_OK) {
        json_t *body = json_pack("{s:s, s:s}", "to", to, "typed_name", name);
        if (token) json_object_set_new(body, "confirmation_token", json_string(token));
        rc = qun_send_proved(c, "POST", path, body, proofs, out);
    }
    json_decref(preview);
    return rc;
}

int qun_cmd_transfer(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {
        {"--confirm-name", NULL, true}, {"--totp-code", NULL, true}, {"--key", NULL, true}, {0}};
    static const char usage[] =
        "transfer <group> <person> [--confirm-name NAME] [--totp-code C] [--key FILE] | "
        "transfer accept|decline|withdraw <group>";
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, opts, 2, 2, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    /* Group ids are opaque "g_..." strings, so the words cannot be mistaken for one. */
    bool accept = strcmp(a.pos[0], "accept") == 0, decline = strcmp(a.pos[0], "decline") == 0;
    if (strcmp(a.pos[0], "withdraw") == 0) {
        rc = qun_pathf(path, sizeof path, "/v1/groups/%s/transfer", a.pos[1]);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "DELETE", path, NULL, &out);
    } else if (accept || decline) {
        rc = qun_pathf(path, sizeof path, "/v1/groups/%s/transfer/%s", a.pos[1], a.pos[0]);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", path, json_object(), &out);
    } else {
        qun_proofs_t proofs = {.totp_code = a.val[1], .key_file = a.val[2]};
        rc = transfer_offer(c, a.pos[0], a.pos[1], a.val[0], &proofs, &out);
    }
    /* The new owner by the name they were given by, not the openid it resolved to. */
    bool offer = !accept && !decline && strcmp(a.pos[0], "withdraw") != 0;
    return rc == QUN_EXIT_OK ? finish(c, out, print_transfer, offer ? a.pos[1] : NULL) : rc;
}

int qun_cmd_leave(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    char path[512], line[300];
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "leave <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/leave", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", path, json_object(), &out);
    if (rc != QUN_EXIT_OK) return rc;
    qun_wf(line, sizeof line, "cli.left", a.pos[0]);
    return finish(c, out, print_line, line);
}
