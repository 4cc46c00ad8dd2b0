/* SPDX-License-Identifier: MIT */
/* Invitations: `qun invite` (owners and admins), `qun invitations` (your pending ones)
 * and `qun invitation accept|decline|revoke`.  Output names groups and people by name;
 * --json prints the API's answer. */
#include <stdio.h>
#include <string.h>

#include "client.h"

static int finish(qun_cli_t *c, json_t *out, void (*print_fn)(json_t *out, const char *verb),
                  const char *verb) {
    if (c->json)
        qun_print_json(out);
    else
        print_fn(out, verb);
    json_decref(out);
    return QUN_EXIT_OK;
}

/* "invited bob to "Class 3" (g_…) as member: invitation i_… is pending"; verb is the
 * words' key. */
static void print_invitation(json_t *i, const char *verb) {
    qun_say(verb, qun_jstr_or(i, "invitee_username", "?"), qun_jstr_or(i, "group_name", ""),
            qun_jstr_or(i, "group", "?"), qun_jstr_or(i, "role", "?"), qun_jstr_or(i, "id", "?"),
            qun_jstr_or(i, "state", "?"));
}

static void print_answer(json_t *i, const char *verb) {
    (void)verb;
    const char *state = qun_jstr_or(i, "state", "?");
    if (strcmp(state, "accepted") == 0)
        qun_say("cli.invite_joined", qun_jstr_or(i, "group_name", ""), qun_jstr_or(i, "group", "?"),
                qun_jstr_or(i, "role", "?"));
    else
        qun_say("cli.invite_declined", qun_jstr_or(i, "group_name", ""), qun_jstr_or(i, "group", "?"),
                qun_jstr_or(i, "inviter_username", "?"));
}

static void print_list(json_t *out, const char *verb) {
    (void)verb;
    json_t *items = json_object_get(out, "items"), *i;
    size_t k;
    char t[32];
    if (json_array_size(items) == 0) {
        qun_say("cli.invitations_none");
        return;
    }
    /* Group names and usernames may be Chinese: pad by display columns. */
    static const char *const cols[] = {"cli.col.invitation", "cli.col.group", "cli.col.invited_by",
                                       "cli.col.role", "cli.col.since"};
    size_t w[] = {26, 24, 20, 7, 0};
    qun_print_header(cols, w, 5);
    json_array_foreach(items, k, i) {
        const char *cells[] = {qun_jstr_or(i, "id", "?"), qun_jstr_or(i, "group_name", "?"),
                               qun_jstr_or(i, "inviter_username", "?"), qun_jstr_or(i, "role", "?"),
                               qun_fmt_time(qun_jint(i, "created_at"), t)};
        qun_print_row(cells, w, 5);
    }
}

int qun_cmd_invite(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--role", NULL, true}, {"--openid", NULL, false}, {0}};
    static const char usage[] = "invite <group> <username> [--role admin|member] [--openid]";
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, opts, 2, 2, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (a.val[0] && strcmp(a.val[0], "admin") != 0 && strcmp(a.val[0], "member") != 0)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.role", usage);
    /* --openid: the second argument is an openid, not a username. */
    json_t *body = json_pack("{s:s}", a.val[1] ? "openid" : "username", a.pos[1]);
    if (a.val[0]) json_object_set_new(body, "role", json_string(a.val[0]));
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/invitations", a.pos[0]);
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "POST", path, body, &out);
    else
        json_decref(body);
    return rc == QUN_EXIT_OK ? finish(c, out, print_invitation, "cli.invited") : rc;
}

int qun_cmd_invitations(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "invitations", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", "/v1/me/invitations", NULL, &out);
    return rc == QUN_EXIT_OK ? finish(c, out, print_list, NULL) : rc;
}

int qun_cmd_invitation(qun_cli_t *c, int argc, char **argv) {
    static const char usage[] = "invitation accept|decline|revoke <invitation-id>";
    qun_args_t a;
    json_t *out;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    const char *verb = a.pos[0];
    if (strcmp(verb, "accept") == 0 || strcmp(verb, "decline") == 0) {
        rc = qun_pathf(path, sizeof path, "/v1/invitations/%s/%s", a.pos[1], verb);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", path, json_object(), &out);
        return rc == QUN_EXIT_OK ? finish(c, out, print_answer, verb) : rc;
    }
    if (strcmp(verb, "revoke") == 0) {
        rc = qun_pathf(path, sizeof path, "/v1/invitations/%s", a.pos[1]);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "DELETE", path, NULL, &out);
        return rc == QUN_EXIT_OK ? finish(c, out, print_invitation, "cli.invite_revoked") : rc;
    }
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", usage);
}
