/* SPDX-License-Identifier: MIT */
/* qun search: the messages of a group that contain some words, newest first, as
 * "time  author: text" lines (GET /v1/groups/{id}/messages/search). */
#include <stdlib.h>
#include <string.h>

#include "client.h"

int qun_cmd_search(qun_cli_t *c, int argc, char **argv);

int qun_cmd_search(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--limit", "-n", true}, {0}};
    static const char usage[] = "search <group> <words...> [--limit N]";
    qun_args_t a;
    int64_t limit = 20;
    char words[1024] = "", path[2048], after[24] = "", stop[24];
    json_t *names = NULL, *all = json_array();
    int64_t scanned_to = 0; /* the last page's, when its scan stopped at its window */
    int rc = qun_args_parse(argc, argv, opts, 2, -1, usage, &a);
    if (rc != QUN_EXIT_OK) return json_decref(all), rc;
    if (a.val[0] && (!qun_parse_uint(a.val[0], &limit) || limit < 1 || limit > 1000)) {
        json_decref(all);
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.search_limit", usage);
    }
    for (int i = 1; i < a.npos; i++) {
        size_t n = strlen(words);
        snprintf(words + n, sizeof words - n, "%s%s", i > 1 ? " " : "", a.pos[i]);
    }
    /* Follow next_cursor until enough matches: a short query's pages may be sparse. */
    for (int pages = 0; rc == QUN_EXIT_OK && pages < 1000 && (int64_t)json_array_size(all) < limit; pages++) {
        json_t *out = NULL;
        rc = *after ? qun_pathf(path, sizeof path, "/v1/groups/%s/messages/search?q=%s&limit=%I&after=%s",
                                a.pos[0], words, limit - (int64_t)json_array_size(all), after)
                    : qun_pathf(path, sizeof path, "/v1/groups/%s/messages/search?q=%s&limit=%I", a.pos[0],
                                words, limit - (int64_t)json_array_size(all));
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &out);
        if (rc != QUN_EXIT_OK) break;
        json_array_extend(all, json_object_get(out, "items"));
        const char *next = qun_jstr_or(out, "next_cursor", NULL);
        scanned_to = json_is_string(json_object_get(out, "incomplete")) ? qun_jint(out, "scanned_to") : 0;
        snprintf(after, sizeof after, "%s", next ? next : "");
        json_decref(out);
        if (!*after) break;
    }
    if (rc != QUN_EXIT_OK) {
        json_decref(all);
        return rc;
    }
    if (c->json) {
        json_t *out = json_pack("{s:o, s:s?}", "items", all, "next_cursor", *after ? after : NULL);
        if (out && scanned_to > 0) {
            json_object_set_new(out, "incomplete", json_string("SEARCH_SCAN_LIMIT"));
            json_object_set_new(out, "scanned_to", json_integer((json_int_t)scanned_to));
        }
        qun_print_json(out);
        json_decref(out);
        return QUN_EXIT_OK;
    }
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m) {
        if (!names && !json_is_string(json_object_get(m, "author_display_name")))
            names = qun_member_names(c, a.pos[0]);
        char t[32];
        const char *author = qun_jstr_or(m, "author", "?");
        printf("%s  %s: %s\n", qun_fmt_time(qun_jint(m, "created_at"), t),
               qun_jstr_or(m, "author_display_name", qun_jstr_or(names, author, author)),
               qun_jstr_or(m, "text", ""));
    }
    if (scanned_to > 0) /* SEARCH_SCAN_LIMIT: a short query read as many windows as it may */
        qun_say(json_array_size(all) ? "cli.search_stopped_some" : "cli.search_stopped_none",
                qun_fmt_int(scanned_to, stop));
    else if (json_array_size(all) == 0)
        qun_say("cli.search_none");
    json_decref(names);
    json_decref(all);
    return QUN_EXIT_OK;
}
