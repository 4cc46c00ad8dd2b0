/* SPDX-License-Identifier: MIT */
/* qun grant: storage grants, tokens that let another application download one group's
 * exports without a session (`grant export <group> --expires 7d`, `grant list <group>`,
 * `grant revoke <group> <grant-id>`).  The token is printed once, when issued. */
#include <stdlib.h>
#include <string.h>

#include "client.h"

int qun_cmd_grant(qun_cli_t *c, int argc, char **argv);

/* "90s", "30m", "12h", "7d" or plain seconds into *out; false for anything else. */
static bool parse_expiry(const char *s, int64_t *out) {
    char *end;
    long long n = strtoll(s, &end, 10);
    if (end == s || n <= 0) return false;
    int64_t unit = 1;
    if (*end == 'd')
        unit = 86400, end++;
    else if (*end == 'h')
        unit = 3600, end++;
    else if (*end == 'm')
        unit = 60, end++;
    else if (*end == 's')
        end++;
    if (*end || n > 366LL * 86400) return false;
    *out = (int64_t)n * unit;
    return true;
}

/* The columns of grant list: widths at least the English ones, and the headers' words. */
static const char *const grant_cols[] = {"cli.col.id", "cli.col.state", "cli.col.created", "cli.col.expires",
                                         "cli.col.uses"};
static const size_t grant_min[] = {26, 8, 20, 20, 5};

static void print_grant(json_t *g, const size_t w[5]) {
    char t[32], u[32], n[24];
    qun_print_col(qun_jstr_or(g, "id", "?"), w[0]);
    qun_print_col(qun_jstr_or(g, "state", "?"), w[1]);
    qun_print_col(qun_fmt_time(qun_jint(g, "created_at"), t), w[2]);
    qun_print_col(qun_fmt_time(qun_jint(g, "expires_at"), u), w[3]);
    qun_print_cell_right(qun_fmt_int(qun_jint(g, "uses"), n), w[4]);
    printf("  %s\n", qun_jstr_or(g, "label", ""));
}

static int grant_export(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--expires", NULL, true}, {"--label", NULL, true}, {0}};
    static const char usage[] = "grant export <group> --expires 7d [--label L]";
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    int64_t secs;
    if (!a.val[0] || !parse_expiry(a.val[0], &secs))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.expires", usage);
    char path[512];
    json_t *out = NULL, *body = json_pack("{s:I, s:s}", "expires_in", (json_int_t)secs, "scope", "exports");
    if (a.val[1]) json_object_set_new(body, "label", json_string(a.val[1]));
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/grants", a.pos[0]);
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "POST", path, body, &out);
    else
        json_decref(body);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else {
        char t[32];
        qun_say("cli.grant_made", qun_jstr_or(out, "id", "?"), qun_jstr_or(out, "group", "?"),
                qun_fmt_time(qun_jint(out, "expires_at"), t));
        qun_say("cli.grant_token", qun_jstr_or(out, "token", "?"));
        qun_say("cli.grant_use");
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

static int grant_list(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    char path[512];
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "grant list <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/grants", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else {
        size_t i, w[5];
        json_t *g;
        for (i = 0; i < 5; i++)
            w[i] = qun_col_width(grant_cols[i], grant_min[i]);
        for (i = 0; i < 4; i++)
            qun_print_col(qun_w(grant_cols[i]), w[i]);
        qun_print_cell_right(qun_w(grant_cols[4]), w[4]);
        printf("  %s\n", qun_w("cli.col.label"));
        json_array_foreach(json_object_get(out, "items"), i, g) print_grant(g, w);
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

static int grant_revoke(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    char path[512];
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, "grant revoke <group> <grant-id>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/grants/%s", a.pos[0], a.pos[1]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "DELETE", path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.grant_revoked", qun_jstr_or(out, "id", "?"), qun_jstr_or(out, "group", "?"));
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_grant(qun_cli_t *c, int argc, char **argv) {
    if (argc < 1)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage_see", "grant export|list|revoke ...",
                         "grant");
    if (strcmp(argv[0], "export") == 0) return grant_export(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "list") == 0) return grant_list(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "revoke") == 0) return grant_revoke(c, argc - 1, argv + 1);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.unknown_sub", "grant", argv[0], "grant");
}
