/* SPDX-License-Identifier: MIT */
/* Names instead of ids: a group argument that is not a group id ("g_...") is looked up
 * by name among the caller's groups, and a person argument that is not an openid
 * ("u_...") by username or display name among a group's members.  Also the display
 * width of text for tables that hold CJK, and human-readable sizes. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"

/* The last group resolved, so that a command building several paths asks once. */
static char last_name[512], last_id[128];

int qun_group_ref(qun_cli_t *c, const char *arg, char *out, size_t size) {
    json_t *all = NULL, *g, *hit = NULL;
    size_t i, n = 0;
    if (strncmp(arg, "g_", 2) == 0 || (*last_name && strcmp(arg, last_name) == 0)) {
        snprintf(out, size, "%s", *last_name && strcmp(arg, last_name) == 0 ? last_id : arg);
        return QUN_EXIT_OK;
    }
    int rc = qun_cli_get_all(c, "/v1/groups", NULL, &all);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *items = json_object_get(all, "items");
    /* Names compare as given (no normalization), ignoring ASCII case. */
    json_array_foreach(items, i, g) if (strcasecmp(qun_jstr_or(g, "name", ""), arg) == 0) {
        hit = g;
        n++;
    }
    char count[24];
    if (n == 0) {
        rc = qun_failw(QUN_EXIT_FAIL, "GROUP_NOT_FOUND", "cli.err.group_not_found",
                       qun_fmt_int((int64_t)json_array_size(items), count), arg);
    } else if (n > 1) {
        char line[700];
        fprintf(stderr, "%s\n",
                qun_wf(line, sizeof line, "cli.groups_named", qun_fmt_int((int64_t)n, count), arg));
        json_array_foreach(items, i, g) if (strcasecmp(qun_jstr_or(g, "name", ""), arg) == 0) {
            char t[32];
            fprintf(stderr, "%s\n",
                    qun_wf(line, sizeof line, "cli.group_named", qun_jstr_or(g, "id", "?"),
                           qun_jstr_or(g, "name", ""), qun_fmt_time(qun_jint(g, "created_at"), t)));
        }
        rc = qun_failw(QUN_EXIT_FAIL, "GROUP_AMBIGUOUS", "cli.err.group_ambiguous", arg);
    } else if ((size_t)snprintf(out, size, "%s", qun_jstr_or(hit, "id", "")) >= size) {
        rc = qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.group_id_long");
    } else {
        snprintf(last_name, sizeof last_name, "%s", arg);
        snprintf(last_id, sizeof last_id, "%s", out);
    }
    json_decref(all);
    return rc;
}

int qun_member_ref(qun_cli_t *c, const char *gid, const char *arg, char *out, size_t size) {
    json_t *all = NULL, *m, *hit = NULL;
    size_t i, n = 0;
    char path[512];
    if (strncmp(arg, "u_", 2) == 0) {
        snprintf(out, size, "%s", arg);
        return QUN_EXIT_OK;
    }
    int rc = qun_pathf(path, sizeof path, "/v1/groups/%s/members", gid);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, NULL, &all);
    if (rc != QUN_EXIT_OK) return rc;
    json_t *items = json_object_get(all, "items");
    /* A username is unique, so it wins over display names that happen to match. */
    json_array_foreach(items, i, m) if (strcasecmp(qun_jstr_or(m, "username", ""), arg) == 0) {
        hit = m;
        n = 1;
    }
    if (!hit) json_array_foreach(items, i, m) if (strcmp(qun_jstr_or(m, "display_name", ""), arg) == 0) {
            hit = m;
            n++;
        }
    char count[24];
    if (n == 0)
        rc = qun_failw(QUN_EXIT_FAIL, "MEMBER_NOT_FOUND", "cli.err.member_not_found", arg);
    else if (n > 1)
        rc = qun_failw(QUN_EXIT_FAIL, "MEMBER_AMBIGUOUS", "cli.err.member_ambiguous",
                       qun_fmt_int((int64_t)n, count), arg);
    else
        snprintf(out, size, "%s", qun_jstr_or(hit, "openid", ""));
    json_decref(all);
    return rc;
}

/* Columns of one code point: 2 for East Asian wide and fullwidth, 0 for combining marks. */
static int cp_width(unsigned cp) {
    if (cp == 0 || (cp >= 0x300 && cp <= 0x36f) || cp == 0x200b || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
    if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) || (cp >= 0x3041 && cp <= 0x33ff) ||
        (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
        (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
        (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) ||
        (cp >= 0x1f300 && cp <= 0x1f64f) || (cp >= 0x1f900 && cp <= 0x1f9ff) ||
        (cp >= 0x20000 && cp <= 0x3fffd))
        return 2;
    return 1;
}

size_t qun_text_width(const char *s) {
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp = *p;
        int extra = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
        if (extra) cp &= 0x3fu >> extra;
        p++;
        for (; extra > 0 && (*p & 0xc0) == 0x80; extra--, p++)
            cp = (cp << 6) | (*p & 0x3fu);
        w += (size_t)cp_width(cp);
    }
    return w;
}

void qun_print_cell(const char *s, size_t width) {
    size_t w = qun_text_width(s);
    fputs(s, stdout);
    for (; w < width; w++)
        putchar(' ');
}

void qun_print_col(const char *s, size_t width) {
    qun_print_cell(s, width);
    putchar(' ');
}

void qun_print_cell_right(const char *s, size_t width) {
    for (size_t w = qun_text_width(s); w < width; w++)
        putchar(' ');
    fputs(s, stdout);
}

size_t qun_col_width(const char *key, size_t min) {
    size_t w = qun_text_width(qun_w(key));
    return w > min ? w : min;
}

void qun_print_row(const char *const cells[], const size_t widths[], size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        qun_print_col(cells[i], widths[i]);
    printf("%s\n", n ? cells[n - 1] : "");
}

void qun_print_header(const char *const keys[], size_t widths[], size_t n) {
    const char *words[16];
    for (size_t i = 0; i < n && i < 16; i++) {
        widths[i] = qun_col_width(keys[i], widths[i]);
        words[i] = qun_w(keys[i]);
    }
    qun_print_row(words, widths, n < 16 ? n : 16);
}

const char *qun_fmt_size(int64_t bytes, char out[32]) {
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(out, 32, "%lld B", (long long)bytes);
        return out;
    }
    double v = (double)bytes / 1024;
    int u = 0;
    while (v >= 1024 && u < 3)
        v /= 1024, u++;
    snprintf(out, 32, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return out;
}

json_t *qun_member_names(qun_cli_t *c, const char *gid) {
    char path[512];
    json_t *names = json_object(), *m;
    size_t i;
    if (qun_pathf(path, sizeof path, "/v1/groups/%s/members?limit=200", gid) != QUN_EXIT_OK) return names;
    qun_call_t call = {.method = "GET", .path = path, .quiet = true};
    qun_resp_t resp;
    if (qun_cli_call(c, &call, &resp) == QUN_EXIT_OK)
        json_array_foreach(json_object_get(resp.json, "items"), i,
                           m) if (json_is_string(json_object_get(m, "openid")))
            json_object_set(names, qun_jstr_or(m, "openid", ""),
                            json_object_get(m, json_is_string(json_object_get(m, "display_name"))
                                                   ? "display_name"
                                                   : "username"));
    qun_resp_free(&resp);
    return names;
}
