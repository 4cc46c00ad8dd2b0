/* SPDX-License-Identifier: MIT */
/* qun search: the messages of a group that contain some words, newest first, as
 * "time  author: text" lines (GET /v1/groups/{id}/messages/search). */
#include <stdlib.h>
#include <string.h>

#include "client.h"

int qun_cmd_search(qun_cli_t *c, int argc, char **argv);

/* Usernames by openid for authors without a display name (borrowed from the members list). */
static json_t *usernames(qun_cli_t *c, const char *gid) {
    char path[512];
    json_t *names = json_object(), *m;
    size_t i;
    if (qun_pathf(path, sizeof path, "/v1/groups/%s/members?limit=200", gid) != QUN_EXIT_OK) return names;
    qun_call_t call = {.method = "GET", .path = path, .quiet = true};
    qun_resp_t resp;
    if (qun_cli_call(c, &call, &resp) == QUN_EXIT_OK)
        json_array_foreach(json_object_get(resp.json, "items"), i, m) {
            if (json_is_string(json_object_get(m, "openid")) &&
                json_is_string(json_object_get(m, "username")))
                json_object_set(names, qun_jstr_or(m, "openid", ""), json_object_get(m, "username"));
        }
    qun_resp_free(&resp);
    return names;
}

int qun_cmd_search(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--limit", "-n", true}, {0}};
    static const char usage[] = "search <group> <words...> [--limit N]";
    qun_args_t a;
    int64_t limit = 20;
    char words[1024] = "", path[2048], after[24] = "";
    json_t *names = NULL, *all = json_array();
    int rc = qun_args_parse(argc, argv, opts, 2, -1, usage, &a);
    if (rc != QUN_EXIT_OK) return json_decref(all), rc;
    if (a.val[0] && (!qun_parse_uint(a.val[0], &limit) || limit < 1 || limit > 1000)) {
        json_decref(all);
        return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "--limit takes 1 to 1000; usage: qun %s", usage);
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
        qun_print_json(out);
        json_decref(out);
        return QUN_EXIT_OK;
    }
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m) {
        if (!names && !json_is_string(json_object_get(m, "author_display_name")))
            names = usernames(c, a.pos[0]);
        char t[32];
        const char *author = qun_jstr_or(m, "author", "?");
        printf("%s  %s: %s\n", qun_fmt_time(qun_jint(m, "created_at"), t),
               qun_jstr_or(m, "author_display_name", qun_jstr_or(names, author, author)),
               qun_jstr_or(m, "text", ""));
    }
    if (json_array_size(all) == 0) printf("no messages found\n");
    json_decref(names);
    json_decref(all);
    return QUN_EXIT_OK;
}
