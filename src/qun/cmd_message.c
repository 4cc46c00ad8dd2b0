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
            return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.message_long", qun_fmt_int(MAX_TEXT, seq));
        text[n] = '\0';
    } else {
        /* Words are joined with single spaces, as echo would print them. */
        for (int i = 1; i < a.npos; i++) {
            size_t len = strlen(a.pos[i]);
            if (n + len + 1 > MAX_TEXT)
                return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.message_long", qun_fmt_int(MAX_TEXT, seq));
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
    char t[32], num[24], key[64], succ[300] = "", why[300] = "";
    if (strcmp(stage, "review") == 0) {
        qun_fmt_int(qun_jint(n, "approvals"), num);
        by ? qun_wf(out, size, "cli.notice.review_by", by, num) : qun_wf(out, size, "cli.notice.review", num);
    } else if (strcmp(stage, "pending") == 0) {
        qun_wf(out, size, "cli.notice.pending", qun_fmt_time(qun_jint(n, "dissolves_at"), t));
    } else if (strcmp(stage, "dissolved") == 0) {
        const char *m = qun_jstr_or(n, "messages", "keep");
        snprintf(key, sizeof key, "cli.notice.messages.%s", m);
        if (qun_jstr_or(n, "successor", NULL))
            qun_wf(succ, sizeof succ, "cli.notice.continues",
                   qun_jstr_or(n, "successor_name", qun_jstr_or(n, "successor", "")));
        qun_fmt_time(qun_jint(n, "restorable_until"), t);
        by ? qun_wf(out, size, "cli.notice.dissolved_by", by, qun_w_or(key, m), succ, t)
           : qun_wf(out, size, "cli.notice.dissolved", qun_w_or(key, m), succ, t);
    } else if (strcmp(stage, "restored") == 0) {
        by ? qun_wf(out, size, "cli.notice.restored_by", by) : qun_wf(out, size, "cli.notice.restored");
    } else {
        if (qun_jstr_or(n, "reason", NULL))
            qun_wf(why, sizeof why, "cli.notice.reason", qun_jstr_or(n, "reason", ""));
        qun_dissolution_was(out, size, stage, by, why);
    }
    json_decref(n);
    return true;
}

const char *qun_dissolution_was(char *out, size_t size, const char *stage, const char *by, const char *why) {
    char key[64];
    snprintf(key, sizeof key, "cli.notice.stage.%s", stage);
    const char *what = qun_w_or(key, stage);
    return by ? qun_wf(out, size, "cli.notice.other_by", what, by, why)
              : qun_wf(out, size, "cli.notice.other", what, why);
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
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.after_limit", usage);
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
            char what[600], why[400] = "";
            if (reason) qun_wf(why, sizeof why, "cli.notice.reason", reason);
            if (!json_is_true(json_object_get(m, "removed")))
                qun_wf(what, sizeof what, "cli.history_recalled");
            else if (*by_name) /* by is null after an import */
                qun_wf(what, sizeof what, "cli.history_removed_by", by_name, why);
            else
                qun_wf(what, sizeof what, "cli.history_removed", why);
            printf("#%-4lld %s  %s: %s\n", (long long)qun_jint(m, "seq"),
                   qun_fmt_time(qun_jint(m, "created_at"), t),
                   qun_jstr_or(m, "author_display_name", qun_jstr_or(names, author, author)), what);
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
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.seq", usage);
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
