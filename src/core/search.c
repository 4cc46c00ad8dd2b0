/* SPDX-License-Identifier: MIT */
/* Search within a group's messages: the query's checks, the members-only access of
 * GET .../messages, and the page built from the seqs the store's text index finds
 * (store/search.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/search.h"
#include "qun/store.h"

/* The length of the UTF-8 sequence at s (0: not valid UTF-8 or a control character). */
static size_t char_len(const unsigned char *s) {
    if (*s < 0x20 || *s == 0x7f) return 0;
    if (*s < 0x80) return 1;
    size_t n = *s >= 0xF0 && *s <= 0xF4 ? 4 : *s >= 0xE0 ? 3 : *s >= 0xC2 && *s < 0xE0 ? 2 : 0;
    if (n == 0) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    /* Overlong forms and surrogates. */
    if (n == 3 && ((*s == 0xE0 && s[1] < 0xA0) || (*s == 0xED && s[1] >= 0xA0))) return 0;
    if (n == 4 && ((*s == 0xF0 && s[1] < 0x90) || (*s == 0xF4 && s[1] >= 0x90))) return 0;
    /* C1 controls (U+0080 to U+009F). */
    if (n == 2 && *s == 0xC2 && s[1] < 0xA0) return 0;
    return n;
}

bool qun_search_query_ok(const char *q, const char **start, size_t *len) {
    if (!q) return false;
    while (*q == ' ')
        q++;
    size_t n = strlen(q);
    while (n > 0 && q[n - 1] == ' ')
        n--;
    size_t count = 0;
    for (size_t i = 0; i < n; count++) {
        size_t l = char_len((const unsigned char *)q + i);
        if (l == 0 || i + l > n) return false;
        i += l;
    }
    if (count < 1 || count > QUN_SEARCH_MAX_CHARS) return false;
    *start = q;
    *len = n;
    return true;
}

/* The message seq of group g as GET .../messages shows it, appended to items. */
static qun_rc add_item(qun_db_t *db, int64_t group_id, int64_t seq, json_t *items, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT " QUN_MESSAGE_ITEM_COLS " FROM messages m "
                           "JOIN users u ON u.id = m.author_id "
                           "LEFT JOIN group_files f ON f.group_id = m.group_id AND f.sha256 = m.file_sha256 "
                           "WHERE m.group_id = $1 AND m.seq = $2",
                           "ii", group_id, seq);
    if (rc == QUN_DONE) return QUN_OK; /* gone since the index answered: not a match */
    if (rc != QUN_ROW) return rc;
    json_t *item = qun_message_item(q);
    bool null_text = qun_q_col_null(q, 3);
    qun_q_done(q);
    if (!item) return qun_fail(err, QUN_NOMEM, "out of memory");
    if (null_text) { /* recalled since the index answered */
        json_decref(item);
        return QUN_OK;
    }
    json_array_append_new(items, item);
    return QUN_OK;
}

qun_rc qun_message_search(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *q, int64_t after,
                          int limit, json_t **out, qun_err_t *err) {
    const char *start;
    size_t len;
    *out = NULL;
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    /* After a dissolution that kept messages, the owner still reads them. */
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK;
    if (rc != QUN_OK) return rc;
    if (!qun_search_query_ok(q, &start, &len))
        return qun_fail_field(err, QUN_SEARCH_QUERY_INVALID, "q",
                              "q must be 1 to %d characters of text (no control characters)",
                              QUN_SEARCH_MAX_CHARS);
    char *needle = strndup(start, len);
    int64_t seqs[200], next = 0;
    int n = 0;
    if (!needle) return qun_fail(err, QUN_NOMEM, "out of memory");
    if (limit > 200) limit = 200;
    rc = qun_db_search(db, g.id, needle, after, limit, seqs, &n, &next, err);
    free(needle);
    json_t *items = json_array();
    for (int i = 0; rc == QUN_OK && i < n; i++)
        rc = add_item(db, g.id, seqs[i], items, err);
    if (rc != QUN_OK) {
        json_decref(items);
        return rc;
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)next);
    *out = json_pack("{s:o, s:s?}", "items", items, "next_cursor", next > 0 ? cur : NULL);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}
