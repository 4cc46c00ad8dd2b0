/* SPDX-License-Identifier: MIT */
/* Message commands: post a message and read a group's history, following the
 * server's cursors so an unlimited read prints everything. */
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define MAX_TEXT 16384 /* the server's limit on a message */

int qun_cmd_post(qun_cli_t *c, int argc, char **argv) {
    static const char usage[] = "post <group> <text...>";
    qun_args_t a;
    json_t *out;
    char path[512], text[MAX_TEXT + 2], seq[24];
    size_t n = 0;
    int rc = qun_args_parse(argc, argv, NULL, 2, -1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (a.npos == 2 && strcmp(a.pos[1], "-") == 0) {
        /* "-" posts standard input, for text that is awkward to quote. */
        n = fread(text, 1, sizeof text - 1, stdin);
        while (n > 0 && text[n - 1] == '\n')
            n--;
        if (n > MAX_TEXT || (!feof(stdin) && fgetc(stdin) != EOF))
            return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "a message holds at most %d bytes", MAX_TEXT);
        text[n] = '\0';
    } else {
        /* Words are joined with single spaces, as echo would print them. */
        for (int i = 1; i < a.npos; i++) {
            size_t len = strlen(a.pos[i]);
            if (n + len + 1 > MAX_TEXT)
                return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "a message holds at most %d bytes", MAX_TEXT);
            if (i > 1) text[n++] = ' ';
            memcpy(text + n, a.pos[i], len);
            n += len;
        }
        text[n] = '\0';
    }
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/messages", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", path, json_pack("{s:s%}", "text", text, n), &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.posted", qun_fmt_int(qun_jint(out, "seq"), seq), qun_jstr_or(out, "group", a.pos[0]));
    json_decref(out);
    return QUN_EXIT_OK;
}

bool qun_notice_line(const char *text, json_t *names, char *out, size_t size) {
    json_t *n = json_loads(text, 0, NULL);
    const char *kind = qun_jstr_or(n, "notice", NULL);
    if (!kind || strncmp(kind, "dissolution", 11) != 0) {
        json_decref(n);
        return false;
    }
    const char *stage = kind[11] == '.' ? kind + 12 : "pending", *by = qun_jstr_or(n, "by", NULL);
    if (by) by = qun_jstr_or(names, by, by); /* a name where the member list gave one */
    char t[32], who[80] = "";
    if (by) snprintf(who, sizeof who, " by %s", by);
    if (strcmp(stage, "review") == 0)
        snprintf(out, size, "dissolution requested%s; waiting for %lld approval(s)", who,
                 (long long)qun_jint(n, "approvals"));
    else if (strcmp(stage, "pending") == 0)
        snprintf(out, size,
                 "this group will be dissolved at %s; the owner can still cancel until then, and every "
                 "member may export their own copy until then",
                 qun_fmt_time(qun_jint(n, "dissolves_at"), t));
    else if (strcmp(stage, "dissolved") == 0)
        snprintf(out, size, "this group was dissolved%s (messages %s%s%s); restorable until %s", who,
                 qun_jstr_or(n, "messages", "keep"),
                 qun_jstr_or(n, "successor", NULL) ? "; continues in " : "",
                 qun_jstr_or(n, "successor_name", qun_jstr_or(n, "successor", "")),
                 qun_fmt_time(qun_jint(n, "restorable_until"), t));
    else if (strcmp(stage, "restored") == 0)
        snprintf(out, size, "this group was restored%s", who);
    else
        snprintf(out, size, "the dissolution was %s%s%s%s", stage, who,
                 qun_jstr_or(n, "reason", NULL) ? ": " : "", qun_jstr_or(n, "reason", ""));
    json_decref(n);
    return true;
}

int qun_cmd_history(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--after", NULL, true}, {"--limit", "-n", true}, {0}};
    static const char usage[] = "history <group> [--after N] [--limit N]";
    qun_args_t a;
    json_t *out = NULL, *names = NULL, *m;
    int64_t after = 0, limit = 0;
    char path[512], n[24];
    size_t i;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if ((a.val[0] && !qun_parse_uint(a.val[0], &after)) || (a.val[1] && !qun_parse_uint(a.val[1], &limit)))
        return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "--after and --limit take whole numbers; usage: qun %s",
                            usage);
    if (a.val[1]) {
        /* One page, exactly as asked; the answer's next_cursor says where to go on. */
        rc = qun_pathf(path, sizeof path, "/v1/groups/%s/messages?after=%I&limit=%I", a.pos[0], after, limit);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &out);
    } else {
        rc = qun_pathf(path, sizeof path, "/v1/groups/%s/messages", a.pos[0]);
        if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, a.val[0], &out);
    }
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
        json_decref(out);
        return QUN_EXIT_OK;
    }
    json_t *items = json_object_get(out, "items");
    if (json_array_size(items) > 0) names = qun_member_names(c, a.pos[0]);
    json_array_foreach(items, i, m) {
        char t[32], line[512];
        const char *author = qun_jstr_or(m, "author", "?");
        const char *kind = qun_jstr_or(m, "kind", "text");
        if (json_is_true(json_object_get(m, "recalled"))) { /* its text is gone from the server */
            const char *by = qun_jstr_or(m, "by", ""), *reason = qun_jstr_or(m, "reason", NULL);
            const char *by_name = qun_jstr_or(m, "by_display_name", qun_jstr_or(m, "by_username", by));
            char why[400] = "";
            if (json_is_true(json_object_get(m, "removed"))) /* by is null after an import */
                snprintf(why, sizeof why, " removed%s%s%s%s", *by_name ? " by " : "", by_name,
                         reason ? ": " : "", reason ? reason : "");
            printf("#%-4lld %s  %s: (recalled)%s\n", (long long)qun_jint(m, "seq"),
                   qun_fmt_time(qun_jint(m, "created_at"), t),
                   qun_jstr_or(m, "author_display_name", qun_jstr_or(names, author, author)), why);
            continue;
        }
        if (strcmp(kind, "system") == 0 &&
            qun_notice_line(qun_jstr_or(m, "text", ""), names, line, sizeof line)) {
            printf("#%-4lld %s  ** %s\n", (long long)qun_jint(m, "seq"),
                   qun_fmt_time(qun_jint(m, "created_at"), t), line);
            continue;
        }
        printf("#%-4lld %s  %s: %s\n", (long long)qun_jint(m, "seq"),
               qun_fmt_time(qun_jint(m, "created_at"), t),
               qun_jstr_or(m, "author_display_name", qun_jstr_or(names, author, author)),
               qun_jstr_or(m, "text", ""));
    }
    if (json_array_size(items) == 0) qun_say("cli.messages_none");
    const char *next = qun_jstr_or(out, "next_cursor", NULL);
    if (a.val[1] && next) qun_say("cli.history_more", a.pos[0], next, qun_fmt_int(limit, n));
    json_decref(names);
    json_decref(out);
    return QUN_EXIT_OK;
}

/* qun recall: the author takes back a message within the group's window; an owner or
 * admin removes one, with --reason. */
int qun_cmd_recall(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--reason", NULL, true}, {0}};
    static const char usage[] = "recall <group> <seq> [--reason TEXT]";
    qun_args_t a;
    json_t *out = NULL;
    int64_t seq = 0;
    char path[512], n[24];
    int rc = qun_args_parse(argc, argv, opts, 2, 2, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (!qun_parse_uint(a.pos[1], &seq) || seq < 1)
        return qun_cli_fail(QUN_EXIT_USAGE, "USAGE",
                            "<seq> is a message number (see qun history); usage: qun %s", usage);
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/messages/%I", a.pos[0], seq);
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "DELETE", path, a.val[0] ? json_pack("{s:s}", "reason", a.val[0]) : NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else if (json_is_true(json_object_get(out, "removed")))
        qun_say("cli.message_removed", qun_fmt_int(seq, n), qun_jstr_or(out, "group", a.pos[0]));
    else
        qun_say("cli.message_recalled", qun_fmt_int(seq, n), qun_jstr_or(out, "group", a.pos[0]));
    json_decref(out);
    return QUN_EXIT_OK;
}
