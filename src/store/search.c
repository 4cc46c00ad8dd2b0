/* SPDX-License-Identifier: MIT */
/* Message search: the one place that knows how each backend indexes message text.
 * SQLite keeps an FTS5 trigram index without positions (messages_fts, migrations 0029,
 * 0035 and 0044; a search checks its candidates' text for the needle): a new
 * text message waits above a watermark (search_state) until a COMMIT finds
 * qun_search_batch of them and indexes the lot (qun_db_search_flush), and a search
 * reads the waiting rows' text directly; triggers queue changed and deleted text, which
 * leaves the index at the COMMIT of the transaction that changed it.  PostgreSQL keeps a
 * pg_trgm GIN index on message_search, copies of the text messages that the job thread's
 * own connection makes a slice at a time beside the writer (qun_db_search_copy), and a
 * search reads the few messages not copied yet directly (migration 0043).  Both answer
 * substring queries of three or more characters; a shorter needle scans the group's rows
 * through (group_id, seq), one bounded window per call, because neither index holds
 * anything it could look up. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qun/store.h"
#include "qun/util.h"

/* Characters (UTF-8 code points) in s. */
static size_t chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* s with ASCII letters lowered, and, when like, wrapped as an ILIKE pattern '%s%' with
 * its own '%', '_' and '\' escaped.  Owned by the caller. */
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

/* The FTS5 query for a needle of QUN_SEARCH_INDEXED characters or more: the trigrams
 * that start at characters 0, 3, 6 ... and the needle's last one, each an FTS5 string
 * with '"' doubled, joined by AND.  The index keeps no positions (migration 0044), so
 * this finds the messages that hold every one of them anywhere; the caller keeps those
 * whose text holds the needle.  Trigrams that tile the needle suffice for that test and
 * read fewer of the index's lists than all of them would.  Owned by the caller. */
static char *trigrams_of(const char *s) {
    size_t len = strlen(s), n = chars(s);
    /* At most n / 3 + 1 trigrams, each at most 3 * 4 bytes doubled, quoted, " AND ". */
    char *out = qun_xmalloc((n / 3 + 1) * (2 * 12 + 2 + 5) + 1), *o = out;
    const char *p = s;
    for (size_t at = 0;; at += 3) {
        if (at + 3 > n) { /* the last trigram, overlapping the one before */
            at = n - 3;
            p = s + len;
            for (int back = 0; back < 3; back++)
                while (((unsigned char)*--p & 0xC0) == 0x80) {
                }
        }
        if (o != out) {
            memcpy(o, " AND ", 5);
            o += 5;
        }
        *o++ = '"';
        const char *t = p;
        for (int k = 0; k < 3 && *t; k++) /* *t: a needle not UTF-8 ends it early */
            do {
                if (*t == '"') *o++ = '"';
                *o++ = *t++;
            } while (((unsigned char)*t & 0xC0) == 0x80);
        *o++ = '"';
        if (at + 3 == n) break;
        p = t;
    }
    *o = '\0';
    return out;
}

int qun_search_batch = 1024;

static atomic_bool unmerged = true; /* a COMMIT wrote to the index (or nobody looked yet) */

bool qun_search_unmerged(void) {
    return atomic_load(&unmerged);
}

qun_rc qun_db_search_merge(qun_db_t *db, int pages, bool *more, qun_err_t *err) {
    *more = false;
    if (strcmp(qun_db_backend(db), "sqlite") != 0) {
        atomic_store(&unmerged, false);
        return QUN_OK;
    }
    /* FTS5 counts a merge that wrote anything as at least two changes. */
    int64_t before = qun_db_total_changes(db);
    qun_rc rc = qun_db_run(db, NULL, err, "INSERT INTO messages_fts(messages_fts, rank) VALUES ('merge', $1)",
                           "i", (int64_t)pages);
    if (rc != QUN_DONE) return rc;
    *more = qun_db_total_changes(db) - before >= 2;
    if (!*more) atomic_store(&unmerged, false);
    return QUN_OK;
}

qun_rc qun_db_search_scrub(qun_db_t *db, int pages, int64_t *covered, qun_err_t *err) {
    *covered = INT64_MAX;
    if (strcmp(qun_db_backend(db), "sqlite") != 0) return QUN_OK;
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT gone, scrubbed, scrub_to FROM search_state", "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "search_state has no row") : rc;
    int64_t gone = qun_q_col_int(q, 0), scrubbed = qun_q_col_int(q, 1), scrub_to = qun_q_col_int(q, 2);
    qun_q_done(q);
    *covered = scrubbed;
    if (!scrub_to && scrubbed >= gone) return QUN_OK;
    if (!scrub_to) {
        /* A negative 'merge' begins an incremental optimize: every segment is to become
         * one, at the oldest level, where tombstones drop with what they hide. */
        rc = qun_db_run(db, NULL, err, "UPDATE search_state SET scrub_to = $1", "i", gone);
        if (rc == QUN_DONE)
            rc =
                qun_db_run(db, NULL, err, "INSERT INTO messages_fts(messages_fts, rank) VALUES ('merge', $1)",
                           "i", -(int64_t)pages);
        return rc == QUN_DONE ? QUN_OK : rc;
    }
    int64_t before = qun_db_total_changes(db);
    rc = qun_db_run(db, NULL, err, "INSERT INTO messages_fts(messages_fts, rank) VALUES ('merge', $1)", "i",
                    (int64_t)pages);
    if (rc != QUN_DONE || qun_db_total_changes(db) - before >= 2) return rc == QUN_DONE ? QUN_OK : rc;
    /* Nothing left to merge: the rewrite is done. */
    rc = qun_db_run(db, NULL, err, "UPDATE search_state SET scrubbed = scrub_to, scrub_to = 0", "");
    *covered = scrub_to;
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_db_search_flush(qun_db_t *db, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT indexed_to, COALESCE((SELECT MAX(id) FROM messages), 0), "
                           "EXISTS (SELECT 1 FROM search_gone), (SELECT count(*) FROM search_pending) "
                           "FROM search_state",
                           "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t indexed_to = qun_q_col_int(q, 0), top = qun_q_col_int(q, 1);
    bool gone = qun_q_col_int(q, 2) != 0;
    int64_t waiting = qun_q_col_int(q, 3);
    /* New rows wait until about a thousand gather: FTS5 writes a segment per flush and
     * merges them as they pile up, so its cost per row falls with the rows per flush
     * (bench/README.md, benchmark 14). A search reads the waiting rows' text itself.
     * Ids above the watermark are new messages (text or not): close enough a count. */
    bool due = (top > indexed_to ? top - indexed_to : 0) + waiting >= qun_search_batch;
    qun_q_done(q);
    rc = QUN_DONE;
    /* Old text out first (a reused id may be pending with new text), then the new rows
     * in: one statement each, so FTS5 writes once for the whole batch. Old text never
     * waits: recalled or purged text leaves the index in its own transaction. */
    if (gone)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO messages_fts(messages_fts, rowid, body) "
                        "SELECT 'delete', id, body FROM search_gone",
                        "");
    if (gone && rc == QUN_DONE) rc = qun_db_run(db, NULL, err, "DELETE FROM search_gone", "");
    /* Hidden, not yet gone from the file: the next rewrite must cover this COMMIT. */
    if (gone && rc == QUN_DONE) rc = qun_db_run(db, NULL, err, "UPDATE search_state SET gone = gone + 1", "");
    if (gone || due) atomic_store(&unmerged, true); /* a segment more: the job thread merges */
    if (!due || rc != QUN_DONE) return rc == QUN_DONE ? QUN_OK : rc;
    /* A bulk load (an import, a copy, rows written by another tool) leaves millions above
     * the watermark: one COMMIT takes in at most QUN_SEARCH_CATCHUP ids of them, so no
     * transaction stalls the writer for long, and the jobs thread commits until the rest
     * is in (qun_db_search_backlog). */
    int64_t upto = top - indexed_to > QUN_SEARCH_CATCHUP ? indexed_to + QUN_SEARCH_CATCHUP : top;
    rc =
        qun_db_run(db, NULL, err,
                   "INSERT INTO messages_fts(rowid, body) "
                   "SELECT id, body FROM messages WHERE id > $1 AND id <= $2 AND kind = 'text' "
                   "UNION ALL SELECT m.id, m.body FROM search_pending p CROSS JOIN messages m ON m.id = p.id",
                   "ii", indexed_to, upto);
    if (rc == QUN_DONE && waiting > 0) rc = qun_db_run(db, NULL, err, "DELETE FROM search_pending", "");
    if (rc == QUN_DONE && upto > indexed_to)
        rc = qun_db_run(db, NULL, err, "UPDATE search_state SET indexed_to = $1", "i", upto);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* PostgreSQL's copy step (store.h).  Why every text message up to top is copied: the
 * statement that read top (the newest id its snapshot S showed) read the open
 * transactions after S.  An id under top was taken before S; if S did not show its row,
 * its transaction was open at S and had written (it has an xid) or was inside its INSERT
 * (active), so it was still open and so when the open transactions were read, or had
 * ended by then.  Once none of those read is left, a snapshot shows every message under
 * top that will ever commit, and the copy statement's is such a snapshot.  Transactions
 * that began after S take ids above top; those of other databases take none. */
#define MAY_COMMIT_MESSAGES                                                                                  \
    "l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid() AND "                             \
    "a.datname = current_database() AND (a.backend_xid IS NOT NULL OR "                                      \
    "COALESCE(a.state NOT IN ('idle in transaction', 'idle in transaction (aborted)'), true))"
#define COPY_WAIT_MS 100 /* for the transactions open at S; the next step tries again */

typedef struct {
    int64_t mark, top;
    int limit;
    bool more;
} copy_t;

static qun_rc copy_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    copy_t *k = arg;
    qun_q_t *q;
    /* A row lock the copy waits for longer than this fails the attempt (qun_db_txn
     * tries again after a backoff).  When the writer and the copy each wait for a row
     * the other took (a batch that recalls two new messages in the opposite order), the
     * copy gives up, long before PostgreSQL's deadlock check (a second) might abort the
     * writer's batch instead. */
    qun_rc rc = qun_db_run(db, NULL, err, "SET LOCAL lock_timeout = 50", "");
    if (rc != QUN_DONE) return rc == QUN_ROW ? qun_fail(err, QUN_STORE, "rows from a SET") : rc;
    /* FOR KEY SHARE (which the foreign key's check takes anyway): a row being deleted
     * is waited for and skipped once gone, where the check would fail the step; a
     * change of text (which does not wait for it) wrote its copy itself, by trigger, and
     * ON CONFLICT keeps that one, waiting for it if it is not committed yet.  Whether the
     * step stopped at limit is counted on the rows it took, not on those it inserted: a
     * row kept by ON CONFLICT is not returned, and counting inserts raised the watermark
     * over rows the step never looked at (tests/unit/store/search.c, the stress case).
     * PostgreSQL runs the INSERT of c to completion though nothing reads it. */
    rc = qun_db_run(db, &q, err,
                    "WITH s AS (SELECT id, group_id, seq, body FROM messages "
                    "WHERE id > $1 AND id <= $2 AND kind = 'text' ORDER BY id LIMIT $3 FOR KEY SHARE), "
                    "c AS (INSERT INTO message_search(id, group_id, seq, body) SELECT * FROM s "
                    "ON CONFLICT (id) DO NOTHING) "
                    "SELECT count(*), COALESCE(MAX(id), 0) FROM s",
                    "iii", k->mark, k->top, (int64_t)k->limit);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no answer to a copy") : rc;
    k->more = qun_q_col_int(q, 0) >= k->limit; /* taken up to its MAX(id): the rest next */
    int64_t to = k->more ? qun_q_col_int(q, 1) : k->top;
    qun_q_done(q);
    rc = qun_db_run(db, NULL, err, "UPDATE search_state SET indexed_to = $1 WHERE indexed_to < $1", "i", to);
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc copy_step(qun_db_t *db, int limit, bool *more, qun_err_t *err) {
    qun_q_t *q;
    copy_t k = {.limit = limit};
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT indexed_to, (SELECT COALESCE(MAX(id), 0) FROM messages), "
                           "(SELECT COALESCE(array_agg(l.virtualxid), '{}')::text FROM pg_locks l "
                           "JOIN pg_stat_activity a ON a.pid = l.pid WHERE " MAY_COMMIT_MESSAGES ") "
                           "FROM search_state",
                           "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "search_state has no row") : rc;
    k.mark = qun_q_col_int(q, 0);
    k.top = qun_q_col_int(q, 1);
    char *open = qun_xstrdup(qun_q_col_text(q, 2));
    qun_q_done(q);
    bool settled = strcmp(open, "{}") == 0 || k.top <= k.mark;
    /* Each statement outside a transaction reads pg_stat_activity afresh. */
    for (int waited = 0; !settled && waited <= COPY_WAIT_MS; waited++) {
        if (waited) nanosleep(&(struct timespec){0, 1000000}, NULL);
        rc =
            qun_db_run(db, &q, err,
                       "SELECT NOT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                       "WHERE l.virtualxid = ANY($1::text[]) AND " MAY_COMMIT_MESSAGES ")",
                       "s", open);
        if (rc != QUN_ROW) break;
        settled = qun_q_col_int(q, 0) != 0;
        qun_q_done(q);
    }
    free(open);
    if (rc != QUN_ROW && rc != QUN_DONE) return rc;
    if (!settled || k.top <= k.mark) return QUN_OK;
    rc = qun_db_txn(db, copy_txn, &k, err);
    *more = rc == QUN_OK && k.more;
    return rc;
}

qun_rc qun_db_search_copy(qun_db_t *db, int limit, bool *more, qun_err_t *err) {
    *more = false;
    if (strcmp(qun_db_backend(db), "sqlite") == 0) return QUN_OK;
    qun_q_t *q;
    /* Nothing above the watermark (two index lookups): a step costs nothing more. */
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT COALESCE((SELECT MAX(id) FROM messages), 0) > indexed_to FROM search_state", "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "search_state has no row") : rc;
    bool behind = qun_q_col_int(q, 0) != 0;
    qun_q_done(q);
    if (!behind) return QUN_OK;
    /* One copier at a time, for the whole step: the watermark it read stays its own. */
    rc = qun_db_run(db, &q, err, "SELECT pg_try_advisory_lock($1)", "i", (int64_t)QUN_SEARCH_COPY_LOCK);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no answer to a lock") : rc;
    bool mine = qun_q_col_int(q, 0) != 0;
    qun_q_done(q);
    if (!mine) return QUN_OK;
    rc = copy_step(db, limit, more, err);
    qun_err_t ignore; /* a connection lost takes its lock with it */
    if (qun_db_run(db, &q, &ignore, "SELECT pg_advisory_unlock($1)", "i", (int64_t)QUN_SEARCH_COPY_LOCK) ==
        QUN_ROW)
        qun_q_done(q);
    return rc;
}

qun_rc qun_db_search_backlog(qun_db_t *db, int64_t *n, qun_err_t *err) {
    *n = 0;
    if (strcmp(qun_db_backend(db), "sqlite") != 0) return QUN_OK;
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT COALESCE((SELECT MAX(id) FROM messages), 0) - indexed_to FROM search_state", "");
    if (rc == QUN_ROW) {
        *n = qun_q_col_int(q, 0);
        qun_q_done(q);
        rc = QUN_DONE;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Merge the descending seqs b[0..nb) into a[0..*na), keeping the limit largest. */
static void merge_desc(int64_t *a, int *na, const int64_t *b, int nb, int limit) {
    int64_t *out = qun_xmalloc(sizeof *out * (size_t)limit);
    int i = 0, j = 0, k = 0;
    while (k < limit && (i < *na || j < nb))
        out[k++] = j >= nb || (i < *na && a[i] > b[j]) ? a[i++] : b[j++];
    memcpy(a, out, sizeof *out * (size_t)k);
    *na = k;
    free(out);
}

static qun_rc collect(qun_rc rc, qun_q_t *q, int64_t *seqs, int limit, int *n, qun_err_t *err) {
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        if (*n < limit) seqs[(*n)++] = qun_q_col_int(q, 0);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_db_search(qun_db_t *db, int64_t group_id, const char *needle, int64_t before, int limit,
                     int64_t *seqs, int *n, int64_t *next, qun_err_t *err) {
    bool pg = strcmp(qun_db_backend(db), "sqlite") != 0;
    bool indexed = chars(needle) >= QUN_SEARCH_INDEXED;
    qun_q_t *q;
    qun_rc rc = QUN_OK;
    *n = 0;
    *next = 0;
    if (before <= 0 && !indexed) { /* the window starts at the newest message */
        rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE group_id = $1",
                        "i", group_id);
        if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
        before = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    if (before <= 0) before = INT64_MAX;
    int64_t floor = indexed ? 0 : (before > QUN_SEARCH_WINDOW ? before - QUN_SEARCH_WINDOW : 1);
    char *arg = !pg && indexed ? trigrams_of(needle) : needle_as(needle, pg);
    if (pg && indexed) {
        /* The copies (ILIKE lets the planner choose the trigram index or the group's seq
         * order), and the messages above the watermark that have none yet, each part
         * ordered and cut apart (under one ORDER BY the planner sorted every copy of the
         * group that matched a common word: 148 ms against 1.4 at 1M messages).  The
         * watermark is read first and only grows, so every message at or below the value
         * read has its copy in the second statement's snapshot; passed as a parameter,
         * it lets the planner walk the few ids above it by the primary key. */
        rc = qun_db_run(db, &q, err, "SELECT indexed_to FROM search_state", "");
        int64_t mark = 0;
        if (rc == QUN_ROW) {
            mark = qun_q_col_int(q, 0);
            qun_q_done(q);
            rc = qun_db_run(
                db, &q, err,
                "SELECT seq FROM ((SELECT seq FROM message_search WHERE group_id = $1 AND seq < $2 "
                "AND body ILIKE $3 ORDER BY seq DESC LIMIT $4) UNION ALL (SELECT seq FROM messages m "
                "WHERE id > $5 AND group_id = $1 AND seq < $2 AND kind = 'text' AND body ILIKE $3 "
                "AND NOT EXISTS (SELECT 1 FROM message_search s WHERE s.id = m.id) "
                "ORDER BY seq DESC LIMIT $4)) u ORDER BY 1 DESC LIMIT $4",
                "iisii", group_id, before, arg, (int64_t)limit, mark);
        } else if (rc == QUN_DONE) {
            rc = qun_fail(err, QUN_STORE, "search_state has no row");
        }
    } else if (pg) {
        rc = qun_db_run(db, &q, err,
                        "SELECT seq FROM messages WHERE group_id = $1 AND seq < $2 AND seq >= $3 "
                        "AND kind = 'text' AND body ILIKE $4 ORDER BY seq DESC LIMIT $5",
                        "iiisi", group_id, before, floor, arg, (int64_t)limit);
    } else if (indexed) {
        /* Message ids grow with seq inside a group, so the index's rowid order, walked
         * down from the cursor's row, is the group's newest-first order. */
        int64_t below = INT64_MAX;
        if (before != INT64_MAX) {
            rc = qun_db_run(db, &q, err, "SELECT id FROM messages WHERE group_id = $1 AND seq = $2", "ii",
                            group_id, before);
            if (rc == QUN_ROW) {
                below = qun_q_col_int(q, 0);
                qun_q_done(q);
            } else if (rc == QUN_DONE) {
                below = 0; /* no such message: nothing below it */
            }
        }
        /* The index finds the messages holding the needle's trigrams; instr keeps
         * those holding the needle, with ASCII folded as everywhere else. */
        char *plain = needle_as(needle, false);
        if (rc == QUN_ROW || rc == QUN_DONE || rc == QUN_OK)
            rc = qun_db_run(db, &q, err,
                            "SELECT m.seq FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                            "WHERE messages_fts MATCH $1 AND messages_fts.rowid < $2 AND m.group_id = $3 "
                            "AND m.kind = 'text' AND m.id <= (SELECT indexed_to FROM search_state) "
                            "AND NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.id = m.id) "
                            "AND instr(lower(m.body), $5) > 0 "
                            "ORDER BY messages_fts.rowid DESC LIMIT $4",
                            "siiis", arg, below, group_id, (int64_t)limit, plain);
        free(plain);
    } else {
        rc = qun_db_run(db, &q, err,
                        "SELECT seq FROM messages WHERE group_id = $1 AND seq < $2 AND seq >= $3 "
                        "AND kind = 'text' AND instr(lower(body), $4) > 0 ORDER BY seq DESC LIMIT $5",
                        "iiisi", group_id, before, floor, arg, (int64_t)limit);
    }
    free(arg);
    rc = collect(rc, q, seqs, limit, n, err);
    if (rc == QUN_OK && !pg && indexed) {
        /* Rows committed but not indexed yet (above the watermark, fewer than
         * qun_search_batch; or in search_pending, whose old text the index may still
         * hold, so the query above skips them): matched by their text, ASCII case-folded
         * as the short-needle scan does.  The first part walks ids down from the newest
         * (+group_id keeps the planner off (group_id, seq), which would walk the whole
         * group); CROSS JOIN keeps the queue the outer loop of the second. */
        int64_t *more = qun_xmalloc(sizeof *more * (size_t)limit);
        int nm = 0;
        char *plain = needle_as(needle, false);
        rc = qun_db_run(db, &q, err,
                        "SELECT seq FROM messages WHERE id > (SELECT indexed_to FROM search_state) "
                        "AND +group_id = $1 AND seq < $2 AND kind = 'text' AND instr(lower(body), $3) > 0 "
                        "UNION ALL SELECT m.seq FROM search_pending p CROSS JOIN messages m ON m.id = p.id "
                        "WHERE m.group_id = $1 AND m.seq < $2 AND m.kind = 'text' "
                        "AND instr(lower(m.body), $3) > 0 ORDER BY 1 DESC LIMIT $4",
                        "iisi", group_id, before, plain, (int64_t)limit);
        free(plain);
        rc = collect(rc, q, more, limit, &nm, err);
        if (rc == QUN_OK && nm > 0) merge_desc(seqs, n, more, nm, limit);
        free(more);
    }
    if (rc != QUN_OK) return rc;
    if (*n == limit)
        *next = seqs[*n - 1];
    else if (floor > 1)
        *next = floor;
    return QUN_OK;
}

qun_rc qun_db_search_gone(qun_db_t *db, int64_t *gone, int64_t *scrubbed, qun_err_t *err) {
    *gone = *scrubbed = 0;
    if (strcmp(qun_db_backend(db), "sqlite") != 0) return QUN_OK;
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT gone, scrubbed FROM search_state", "");
    if (rc == QUN_ROW) {
        *gone = qun_q_col_int(q, 0);
        *scrubbed = qun_q_col_int(q, 1);
        qun_q_done(q);
        rc = QUN_DONE;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}
