/* SPDX-License-Identifier: MIT */
/* Account commands: register, login (saves the token), logout (revokes the session
 * and forgets the token), whoami, sessions, display-name and password. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

int qun_cmd_register(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--password", "-p", true}, {"--display-name", NULL, true}, {0}};
    qun_args_t a;
    char password[512];
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, opts, 1, 1,
                            "register <username> [--password P] [--display-name NAME]", &a);
    if (rc != QUN_EXIT_OK) return rc;
    rc = qun_read_password(a.val[0], true, password, sizeof password);
    if (rc != QUN_EXIT_OK) goto out;
    qun_call_t call = {.method = "POST",
                       .path = "/v1/users",
                       .no_auth = true,
                       .body = json_pack("{s:s, s:s, s:s?}", "username", a.pos[0], "password", password,
                                         "display_name", a.val[1])};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    json_decref(call.body);
    out = resp.json;
    resp.json = NULL;
    qun_resp_free(&resp);
    if (rc != QUN_EXIT_OK) goto out;
    char dn[200] = "";
    if (json_is_string(json_object_get(out, "display_name")))
        qun_wf(dn, sizeof dn, "cli.quoted", qun_jstr_or(out, "display_name", ""));
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.registered", qun_jstr_or(out, "username", a.pos[0]), dn, qun_jstr_or(out, "openid", "?"),
                a.pos[0]);
out:
    sodium_memzero(password, sizeof password);
    json_decref(out);
    return rc;
}

int qun_cmd_login(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {
        {"--password", "-p", true}, {"--device", NULL, true}, {"--platform", NULL, true}, {0}};
    qun_args_t a;
    char password[512], device[80], secret[128];
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, opts, 1, 1,
                            "login <username> [--password P] [--device ID] [--platform cli]", &a);
    if (rc != QUN_EXIT_OK) return rc;
    rc = qun_read_password(a.val[0], false, password, sizeof password);
    if (rc == QUN_EXIT_OK && a.val[1])
        snprintf(device, sizeof device, "%s", a.val[1]);
    else if (rc == QUN_EXIT_OK)
        rc = qun_cli_device_id(c, device, sizeof device);
    if (rc == QUN_EXIT_OK) rc = qun_cli_device_secret(c, a.pos[0], device, secret, sizeof secret);
    if (rc != QUN_EXIT_OK) goto out;
    /* A device the account already knows is recognized by its secret alone; without
     * one the server refuses the id (DEVICE_SECRET_REQUIRED) and --device picks another. */
    qun_call_t call = {.method = "POST",
                       .path = "/v1/sessions",
                       .no_auth = true,
                       .body =
                           json_pack("{s:s, s:s, s:s, s:s, s:s?}", "username", a.pos[0], "password", password,
                                     "device_id", device, "platform", a.val[2] ? a.val[2] : "cli",
                                     "device_secret", secret[0] ? secret : NULL)};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    json_decref(call.body);
    out = resp.json;
    resp.json = NULL;
    qun_resp_free(&resp);
    if (rc != QUN_EXIT_OK) goto out;
    const char *token = qun_jstr_or(out, "token", NULL);
    if (!token) {
        rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.no_token");
        goto out;
    }
    /* A new device's secret is shown once: keep it before anything else can fail. */
    const char *issued = qun_jstr_or(out, "device_secret", NULL);
    if (issued) rc = qun_cli_device_secret_save(c, a.pos[0], device, issued);
    if (rc == QUN_EXIT_OK) rc = qun_cli_token_save(c, token);
    if (rc != QUN_EXIT_OK) goto out;
    if (c->token_from_env) qun_note("cli.token_env");
    if (c->json) {
        /* The token is a secret already stored in the token file; keep it off stdout. */
        json_object_del(out, "token");
        json_object_del(out, "device_secret");
        qun_print_json(out);
    } else {
        qun_say("cli.logged_in", a.pos[0], qun_jstr_or(out, "openid", "?"),
                qun_jstr_or(out, "session_id", "?"), device);
    }
out:
    sodium_memzero(password, sizeof password);
    sodium_memzero(secret, sizeof secret);
    json_decref(out);
    return rc;
}

int qun_cmd_logout(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *me = NULL;
    char path[256];
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "logout", &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (!c->token) return qun_failw(QUN_EXIT_FAIL, "NOT_LOGGED_IN", "cli.err.not_logged_in_short");
    qun_call_t call = {.method = "GET", .path = "/v1/me"};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    me = resp.json;
    resp.json = NULL;
    bool already_gone = rc != QUN_EXIT_OK && resp.status == 401;
    qun_resp_free(&resp);
    if (already_gone && !c->token_from_env) {
        /* The session ended on the server already; what is left is the local file. */
        rc = qun_cli_token_remove(c);
        if (rc == QUN_EXIT_OK) qun_note("cli.token_removed");
        goto out;
    }
    if (rc != QUN_EXIT_OK) goto out;
    const char *sid = qun_jstr_or(me, "session_id", "");
    if (!*sid) {
        rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.no_session_id");
        goto out;
    }
    rc = qun_pathf(path, sizeof path, "/v1/sessions/%s", sid);
    if (rc == QUN_EXIT_OK) {
        json_t *ignored = NULL;
        rc = qun_cli_json(c, "DELETE", path, NULL, &ignored);
        json_decref(ignored);
    }
    if (rc == QUN_EXIT_OK && !c->token_from_env) rc = qun_cli_token_remove(c);
    if (rc != QUN_EXIT_OK) goto out;
    if (c->json) {
        json_t *o = json_pack("{s:s, s:b}", "session_id", sid, "revoked", 1);
        qun_print_json(o);
        json_decref(o);
    } else {
        qun_say("cli.logged_out", qun_jstr_or(me, "username", "?"), sid);
    }
out:
    json_decref(me);
    return rc;
}

int qun_cmd_whoami(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *me = NULL;
    char t[32];
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "whoami", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", "/v1/me", NULL, &me);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(me);
    } else {
        static const char *const labels[] = {
            "cli.label.openid", "cli.label.display_name", "cli.label.matrix", "cli.label.session",
            "cli.label.since",  "cli.label.minor",        "cli.label.server"};
        size_t w = qun_label_width(labels, sizeof labels / sizeof labels[0], 10);
        char v[400];
        printf("%s\n", qun_jstr_or(me, "username", "?"));
        qun_field(w, "cli.label.openid", qun_jstr_or(me, "openid", "?"));
        qun_field(w, "cli.label.display_name",
                  qun_jstr_or(me, "display_name", qun_w("cli.value.no_display_name")));
        snprintf(v, sizeof v, "@%s", qun_jstr_or(me, "mx_localpart", "?"));
        qun_field(w, "cli.label.matrix", v);
        qun_field(w, "cli.label.session",
                  qun_wf(v, sizeof v, "cli.value.session", qun_jstr_or(me, "session_id", "?"),
                         qun_jstr_or(me, "platform", "?"), qun_jstr_or(me, "device_id", "?")));
        qun_field(w, "cli.label.since", qun_fmt_time(qun_jint(me, "created_at"), t));
        if (json_is_true(json_object_get(me, "minor")))
            qun_field(w, "cli.label.minor", qun_w("cli.value.yes"));
        qun_field(w, "cli.label.server", c->url);
    }
    json_decref(me);
    return QUN_EXIT_OK;
}

int qun_cmd_sessions(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL, *s;
    size_t i;
    char t1[32], t2[32];
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "sessions", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", "/v1/me/sessions", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else {
        static const char *const cols[] = {"cli.col.session", "cli.col.device", "cli.col.platform",
                                           "cli.col.created", "cli.col.expires"};
        size_t w[] = {26, 22, 8, 17, 0};
        fputs("  ", stdout);
        qun_print_header(cols, w, 5);
        json_array_foreach(json_object_get(out, "items"), i, s) {
            const char *cells[] = {qun_jstr_or(s, "session_id", "?"), qun_jstr_or(s, "device_id", "?"),
                                   qun_jstr_or(s, "platform", "?"),
                                   qun_fmt_time(qun_jint(s, "created_at"), t1),
                                   qun_fmt_time(qun_jint(s, "expires_at"), t2)};
            printf("%c ", json_is_true(json_object_get(s, "current")) ? '*' : ' ');
            qun_print_row(cells, w, 5);
        }
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

/* display-name NAME | display-name --clear: PATCH /v1/me. */
int qun_cmd_display_name(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--clear", NULL, false}, {0}};
    static const char usage[] = "display-name <name> | display-name --clear";
    qun_args_t a;
    json_t *me = NULL;
    int rc = qun_args_parse(argc, argv, opts, 0, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if ((a.npos == 1) == (a.val[0] != NULL))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.name_or_clear", usage);
    json_t *body =
        a.npos == 1 ? json_pack("{s:s}", "display_name", a.pos[0]) : json_pack("{s:n}", "display_name");
    rc = qun_cli_json(c, "PATCH", "/v1/me", body, &me);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(me);
    else if (json_is_string(json_object_get(me, "display_name")))
        qun_say("cli.display_name_set", qun_jstr_or(me, "display_name", ""));
    else
        qun_say("cli.display_name_cleared", qun_jstr_or(me, "username", "?"));
    json_decref(me);
    return QUN_EXIT_OK;
}

/* One line of standard input, without its line end; false at end of input. */
static bool stdin_line(char *out, size_t size) {
    if (!fgets(out, (int)size, stdin)) return false;
    out[strcspn(out, "\r\n")] = '\0';
    return true;
}

/* password [--stdin]: on a terminal it asks for the current password and the new one
 * twice; with --stdin, or when standard input is not a terminal, it reads the current
 * password from the first line and the new one from the second (for scripts). */
int qun_cmd_password(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--stdin", NULL, false}, {0}};
    qun_args_t a;
    char cur[512], pw[512], again[512];
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, opts, 0, 0, "password [--stdin]", &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (a.val[0] || !isatty(STDIN_FILENO)) {
        if (!stdin_line(cur, sizeof cur) || !stdin_line(pw, sizeof pw))
            rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.stdin_two_lines");
    } else {
        rc = qun_prompt_password(qun_w("cli.password_current"), cur, sizeof cur);
        if (rc == QUN_EXIT_OK) rc = qun_prompt_password(qun_w("cli.password_new"), pw, sizeof pw);
        if (rc == QUN_EXIT_OK) rc = qun_prompt_password(qun_w("cli.password_repeat"), again, sizeof again);
        if (rc == QUN_EXIT_OK && strcmp(pw, again) != 0)
            rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.new_passwords_differ");
    }
    if (rc == QUN_EXIT_OK && strlen(pw) < 8)
        rc = qun_failw(QUN_EXIT_USAGE, "FIELD_INVALID", "cli.err.password_short");
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "POST", "/v1/me/password",
                          json_pack("{s:s, s:s}", "old_password", cur, "new_password", pw), &out);
    sodium_memzero(cur, sizeof cur);
    sodium_memzero(pw, sizeof pw);
    sodium_memzero(again, sizeof again);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.password_changed");
    json_decref(out);
    return QUN_EXIT_OK;
}
