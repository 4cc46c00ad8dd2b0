/* SPDX-License-Identifier: MIT */
/* Message search: the one place that knows how each backend indexes message text.
 * SQLite keeps a trigram index in plain tables (search_trigrams, migration 0029): an
 * inserted text message is only noted in search_pending, and qun_db_search_flush
 * indexes the pending messages in one statement just before the connection's COMMIT,
 * in the same transaction; triggers take a changed or deleted body's trigrams out in
 * the statement that changes it.  PostgreSQL keeps a pg_trgm GIN index on
 * messages.body.  Both answer substring queries of three or more characters; a
 * shorter needle scans the group's rows through (group_id, seq), one bounded window per
 * call, because neither index holds anything it could look up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qun/store.h"
#include "qun/util.h"
#include "store_internal.h"

/* Characters (UTF-8 code points) in s. */
static size_t chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* s with ASCII letters lowered (as SQLite's lower() and the trigrams do), and, when
 * like, wrapped as an ILIKE pattern '%s%' with its own '%', '_' and '\' escaped.
 * Owned by the caller. */
static char *needle_as(const char *s, bool like) {
    char *out = qun_xmalloc(2 * strlen(s) + 3), *o = out;
    if (like) *o++ = '%';
    for (; *s; s++) {
        char c = *s;
        if (like && (c == '%' || c == '_' || c == '\\')) *o++ = '\\';
        *o++ = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    if (like) *o++ = '%';
    *o = '\0';
    return out;
}

/* The three characters of s starting at character k, into out (at most 12 bytes + NUL). */
static void trigram_at(const char *s, size_t k, char out[13]) {
    const char *p = s;
    for (size_t i = 0; i < k; i++)
        for (p++; ((unsigned char)*p & 0xC0) == 0x80; p++) {
        }
    const char *e = p;
    for (int i = 0; i < 3 && *e; i++)
        for (e++; ((unsigned char)*e & 0xC0) == 0x80; e++) {
        }
    size_t n = (size_t)(e - p) < 12 ? (size_t)(e - p) : 12;
    memcpy(out, p, n);
    out[n] = '\0';
}

static qun_rc collect(qun_rc rc, qun_q_t *q, int64_t *seqs, int limit, int *n, qun_err_t *err) {
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        if (*n < limit) seqs[(*n)++] = qun_q_col_int(q, 0);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_db_search_flush(qun_db_t *db, qun_err_t *err) {
    /* At most QUN_SEARCH_FLUSH messages per COMMIT: a writer's batch fits whole, and rows
     * some other tool inserted in bulk (they wait in search_pending, where searches see
     * them) are indexed a slice per commit instead of stalling one commit for minutes. */
    qun_rc rc = qun_db_run(
        db, NULL, err,
        "INSERT OR IGNORE INTO search_trigrams(group_id, tri, seq) "
        "SELECT m.group_id, substr(lower(m.body), p.i, 3), m.seq "
        "FROM (SELECT id FROM search_pending ORDER BY id LIMIT $1) s "
        "CROSS JOIN messages m ON m.id = s.id JOIN search_positions p ON p.i <= length(m.body) - 2",
        "i", (int64_t)QUN_SEARCH_FLUSH);
    if (rc == QUN_DONE)
        rc = qun_db_run(
            db, NULL, err,
            "DELETE FROM search_pending WHERE id IN (SELECT id FROM search_pending ORDER BY id LIMIT $1)",
            "i", (int64_t)QUN_SEARCH_FLUSH);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* SQLite, a needle of 3 characters or more: the index's matches with seq < before, and
 * the pending messages' (none once their COMMIT went through), merged newest first. */
static qun_rc sqlite_indexed(qun_db_t *db, int64_t group_id, const char *needle, int64_t before, int limit,
                             int64_t *seqs, int *n, qun_err_t *err) {
    int64_t pend[200], hit[200];
    int np = 0, nh = 0;
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT m.seq FROM search_pending s CROSS JOIN messages m ON m.id = s.id "
                           "WHERE m.group_id = $1 AND m.seq < $2 AND m.kind = 'text' "
                           "AND instr(lower(m.body), $3) > 0 ORDER BY m.seq DESC LIMIT $4",
                           "iisi", group_id, before, needle, (int64_t)limit);
    rc = collect(rc, q, pend, limit, &np, err);
    if (rc != QUN_OK) return rc;
    /* The first trigram's range, walked down from the cursor; the middle and the last
     * trigrams checked by key before the row's text is read. */
    size_t k = chars(needle);
    char t1[13], t2[13], t3[13];
    trigram_at(needle, 0, t1);
    trigram_at(needle, (k - 3) / 2, t2);
    trigram_at(needle, k - 3, t3);
    rc = qun_db_run(db, &q, err,
                    "SELECT t.seq FROM search_trigrams t JOIN messages m ON m.group_id = t.group_id "
                    "AND m.seq = t.seq WHERE t.group_id = $1 AND t.tri = $2 AND t.seq < $3 "
                    "AND EXISTS (SELECT 1 FROM search_trigrams u WHERE u.group_id = $1 AND u.tri = $4 "
                    "AND u.seq = t.seq) "
                    "AND EXISTS (SELECT 1 FROM search_trigrams v WHERE v.group_id = $1 AND v.tri = $5 "
                    "AND v.seq = t.seq) "
                    "AND m.kind = 'text' AND instr(lower(m.body), $6) > 0 ORDER BY t.seq DESC LIMIT $7",
                    "isisssi", group_id, t1, before, t2, t3, needle, (int64_t)limit);
    rc = collect(rc, q, hit, limit, &nh, err);
    if (rc != QUN_OK) return rc;
    for (int i = 0, j = 0; *n < limit && (i < np || j < nh);) {
        int64_t s = j >= nh || (i < np && pend[i] > hit[j]) ? pend[i++] : hit[j++];
        if (*n == 0 || seqs[*n - 1] != s) seqs[(*n)++] = s;
    }
    return QUN_OK;
}

qun_rc qun_db_search(qun_db_t *db, int64_t group_id, const char *needle, int64_t before, int limit,
                     int64_t *seqs, int *n, int64_t *next, bool *stopped, qun_err_t *err) {
    bool pg = strcmp(qun_db_backend(db), "sqlite") != 0;
    bool indexed = chars(needle) >= QUN_SEARCH_INDEXED;
    qun_q_t *q;
    qun_rc rc = QUN_OK;
    *n = 0;
    *next = 0;
    *stopped = false;
    if (before <= 0 && !indexed) { /* the window starts at the newest message */
        rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE group_id = $1",
                        "i", group_id);
        if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
        before = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    if (before <= 0) before = INT64_MAX;
    int64_t floor = indexed ? 0 : (before > QUN_SEARCH_WINDOW ? before - QUN_SEARCH_WINDOW : 1);
    char *arg = needle_as(needle, pg);
    if (pg) {
        /* ILIKE lets the planner choose the trigram index or the group's seq order. */
        rc = qun_db_run(db, &q, err,
                        "SELECT seq FROM messages WHERE group_id = $1 AND seq < $2 AND seq >= $3 "
                        "AND kind = 'text' AND body ILIKE $4 ORDER BY seq DESC LIMIT $5",
                        "iiisi", group_id, before, floor, arg, (int64_t)limit);
        rc = collect(rc, q, seqs, limit, n, err);
    } else if (indexed) {
        rc = sqlite_indexed(db, group_id, arg, before, limit, seqs, n, err);
    } else {
        rc = qun_db_run(db, &q, err,
                        "SELECT seq FROM messages WHERE group_id = $1 AND seq < $2 AND seq >= $3 "
                        "AND kind = 'text' AND instr(lower(body), $4) > 0 ORDER BY seq DESC LIMIT $5",
                        "iiisi", group_id, before, floor, arg, (int64_t)limit);
        rc = collect(rc, q, seqs, limit, n, err);
    }
    free(arg);
    if (rc != QUN_OK) return rc;
    if (*n == limit) {
        *next = seqs[*n - 1];
    } else if (floor > 1) { /* the window ended before the page filled: older rows unread */
        *next = floor;
        *stopped = true;
    }
    return QUN_OK;
}
