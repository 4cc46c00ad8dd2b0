/* SPDX-License-Identifier: MIT */
/* Unit tests of src/store/search.c on an in-memory store: a short needle scans one
 * bounded window of the group's rows per call and says where to go on, a long one goes
 * through the index in one call, pages follow each other without gap or repeat, and
 * another group's rows are never found. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qun/store.h"
#include "store_internal.h"
#include "qun/util.h"
#include "unit.h"
#include "unit_store.h"

static qun_db_t *db;
#define ROWS (QUN_SEARCH_WINDOW + QUN_SEARCH_WINDOW / 2)

static void fill(void) {
    qun_err_t err;
    CHECK(qun_db_exec(db,
                      "INSERT INTO users(id, openid, username, pwhash, password_changed_at, created_at) "
                      "VALUES (1, 'u_a', 'a', 'x', 0, 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_exec(db,
                      "INSERT INTO groups(id, gid, name, kind, owner_id, created_at, updated_at) VALUES "
                      "(1, 'g_1', 'one', 'standard', 1, 0, 0), (2, 'g_2', 'two', 'standard', 1, 0, 0), "
                      "(3, 'g_3', 'three', 'standard', 1, 0, 0)",
                      &err) == QUN_OK);
    /* Group 1: "hit NN" at seqs 10, 20 and ROWS - 5; "filler" elsewhere; group 2 all hits. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %d) "
             "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
             "SELECT 1, n, 1, CASE WHEN n IN (10, 20, %d) THEN 'a 作业 hit ' || n ELSE 'filler text' END, n "
             "FROM s",
             ROWS, ROWS - 5);
    CHECK(qun_db_exec(db, sql, &err) == QUN_OK);
    CHECK(qun_db_exec(db,
                      "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES "
                      "(2, 1, 1, 'a 作业 hit', 0), (2, 2, 1, 'a 作业 hit', 0)",
                      &err) == QUN_OK);
    qun_search_batch = ROWS; /* one slice takes in the lot */
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    qun_search_batch = 256;
    int64_t backlog;
    CHECK(qun_db_search_backlog(db, &backlog, &err) == QUN_OK && backlog == 0);
}

static void test_short_needle_windows(void) {
    int64_t seqs[200], next;
    int n;
    qun_err_t err;
    /* The first window holds the newest hit only, and says where to go on. */
    CHECK(qun_db_search(db, 1, "作业", 0, 50, seqs, &n, &next, &err) == QUN_OK);
    CHECK(n == 1 && seqs[0] == ROWS - 5);
    CHECK(next == ROWS + 1 - QUN_SEARCH_WINDOW);
    /* The next one reaches the first message. */
    CHECK(qun_db_search(db, 1, "作业", next, 50, seqs, &n, &next, &err) == QUN_OK);
    CHECK(n == 2 && seqs[0] == 20 && seqs[1] == 10 && next == 0);
    /* A full page ends at its last seq. */
    CHECK(qun_db_search(db, 1, "作业", 21, 1, seqs, &n, &next, &err) == QUN_OK);
    CHECK(n == 1 && seqs[0] == 20 && next == 20);
    /* Every filler row has an "x": a full page, newest first. */
    CHECK(qun_db_search(db, 1, "x", 0, 50, seqs, &n, &next, &err) == QUN_OK);
    CHECK(n == 50 && seqs[0] == ROWS && next == seqs[49]);
}

static void test_long_needle_index(void) {
    int64_t seqs[200], next;
    int n;
    qun_err_t err;
    CHECK(qun_db_search(db, 1, "作业 HIT", 0, 50, seqs, &n, &next, &err) == QUN_OK);
    CHECK(n == 3 && seqs[0] == ROWS - 5 && seqs[1] == 20 && seqs[2] == 10 && next == 0);
    CHECK(qun_db_search(db, 1, "作业 hit", 0, 2, seqs, &n, &next, &err) == QUN_OK);
    CHECK(n == 2 && next == 20);
    CHECK(qun_db_search(db, 1, "作业 hit", next, 2, seqs, &n, &next, &err) == QUN_OK);
    CHECK(n == 1 && seqs[0] == 10 && next == 0);
    CHECK(qun_db_search(db, 1, "作业 hit", 999999999, 2, seqs, &n, &next, &err) == QUN_OK && n == 0);
    CHECK(qun_db_search(db, 2, "hit", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 2);
}

/* Rows the index has not taken in: those above the watermark and those queued. */
static int64_t waiting(void) {
    return unit_count(db, "SELECT (SELECT COALESCE(MAX(id), 0) FROM messages) - indexed_to + "
                          "(SELECT COUNT(*) FROM search_pending) FROM search_state");
}

/* A write outside a transaction of this store leaves the index to the next COMMIT
 * through it: until then the search reads the row itself, never the stale index. */
static void test_pending_rows(void) {
    int64_t seqs[200], next;
    int n;
    qun_err_t err;
    qun_search_batch = 1; /* every COMMIT indexes what waits */
    CHECK(qun_db_exec(db,
                      "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                      "VALUES (2, 3, 1, 'late 斑马线 row', 0)",
                      &err) == QUN_OK);
    CHECK(waiting() == 1);
    CHECK(qun_db_search(db, 2, "斑马线", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 1 && seqs[0] == 3);
    CHECK(qun_db_search(db, 2, "a 作业", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 2);
    /* Any COMMIT through the store indexes it. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(waiting() == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '斑马线'") == 1);
    /* Recalled outside a transaction: the old text is not found, though still indexed. */
    CHECK(qun_db_exec(db, "UPDATE messages SET body = '' WHERE group_id = 2 AND seq = 3", &err) == QUN_OK);
    CHECK(qun_db_search(db, 2, "斑马线", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 0);
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '斑马线'") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_gone") == 0);
    /* In a transaction: recall and delete take the text out at its COMMIT. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "UPDATE messages SET body = 'masked' WHERE group_id = 2 AND seq = 1", &err) ==
          QUN_OK);
    CHECK(qun_db_exec(db, "DELETE FROM messages WHERE group_id = 2 AND seq = 2", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(qun_db_search(db, 2, "作业 hit", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 0);
    CHECK(qun_db_search(db, 2, "masked", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 1 && seqs[0] == 1);
    CHECK(unit_count(db,
                     "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"a 作\" AND \" 作业\"'") ==
          3);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_gone") == 0 && waiting() == 0);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')", "") ==
          QUN_DONE);
    qun_search_batch = 256;
}

/* New rows gather until qun_search_batch of them wait: meanwhile they are found by their
 * text, a recalled one is not, and the COMMIT that completes the batch indexes each
 * waiting row once, with its current text. */
static void test_batched_rows(void) {
    int64_t seqs[200], next;
    int n;
    qun_err_t err;
    qun_search_batch = 3;
    int64_t docs = unit_count(db, "SELECT COUNT(*) FROM messages_fts_docsize");
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db,
                      "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES "
                      "(2, 10, 1, '运动会 batch one', 0), (2, 11, 1, '运动会 batch two', 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(waiting() == 2);
    CHECK(qun_db_search(db, 2, "运动会", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 2 && seqs[0] == 11);
    CHECK(qun_db_search(db, 2, "BATCH", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 2);
    /* Recalled while waiting: gone from the answers, and never indexed. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "UPDATE messages SET body = '' WHERE group_id = 2 AND seq = 11", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(qun_db_search(db, 2, "运动会", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 1 && seqs[0] == 10);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_gone") == 0);
    /* The third row completes the batch: all three indexed, nothing waits. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db,
                      "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES "
                      "(2, 12, 1, '运动会 batch three', 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(waiting() == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts_docsize") == docs + 3);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '运动会'") == 2);
    CHECK(qun_db_search(db, 2, "运动会", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 2 && seqs[0] == 12);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')", "") ==
          QUN_DONE);
    qun_search_batch = 256;
}

/* sql (one statement) in a transaction of its own, committed through the store. */
static bool committed(const char *sql) {
    qun_err_t err;
    bool ok = qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, sql, &err) == QUN_OK;
    return qun_db_exec(db, ok ? "COMMIT" : "ROLLBACK", &err) == QUN_OK && ok;
}

/* In one transaction: del, then ins; whether both ran, the watermark was lowered to
 * mark between them, and the transaction committed. */
static bool deleted_then_posted(const char *del, int64_t mark, const char *ins) {
    qun_err_t err;
    bool ok = qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, del, &err) == QUN_OK &&
              unit_count(db, "SELECT indexed_to FROM search_state") == mark &&
              qun_db_exec(db, ins, &err) == QUN_OK;
    return qun_db_exec(db, ok ? "COMMIT" : "ROLLBACK", &err) == QUN_OK && ok;
}

/* The seqs a search of group for needle finds on d, as "3,1" (newest first). */
static const char *found_on(qun_db_t *d, int64_t group, const char *needle) {
    static char out[256];
    int64_t seqs[50], next;
    int n = 0;
    qun_err_t err;
    out[0] = '\0';
    if (qun_db_search(d, group, needle, 0, 50, seqs, &n, &next, &err) != QUN_OK) return "error";
    for (int i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%lld", i ? "," : "", (long long)seqs[i]);
    return out;
}

/* Needles and the seqs of group 9 (filled below) that hold them, newest first. */
static const struct {
    const char *needle, *seqs;
} NEEDLES[] = {
    {"abcd", "2"},     {"ABC", "6,2,1"},  {"bc b", "1"},        {"\"hi\"", "3"},
    {"😀😀😀", "3"},      {"😀 now", "3"},    {"i\" 😀", "3"},       {"homework", "4"},
    {"Work DUE", "4"}, {"ÉCOLE", "5"},    {"école", ""},        {"bcda", ""},
    {"cabcab", "6"},   {"abcabcabc", ""}, {"x\" AND \"y", "7"}, {"NEAR(abc)", ""},
};

static void check_needles(const char *when) {
    for (size_t i = 0; i < sizeof NEEDLES / sizeof NEEDLES[0]; i++) {
        const char *got = found_on(db, 9, NEEDLES[i].needle);
        if (strcmp(got, NEEDLES[i].seqs) == 0) continue;
        fprintf(stderr, "%s: %s found %s, not %s\n", when, NEEDLES[i].needle, got, NEEDLES[i].seqs);
        CHECK(false);
    }
}

/* The index keeps no positions (migration 0044): it finds the messages holding a needle's
 * trigrams anywhere, and the text decides.  Each needle finds the same messages while they
 * wait above the watermark (read by their text) and once indexed: trigrams out of order or
 * apart are no match, quotes and characters of four bytes are themselves, ASCII letters
 * match whatever their case and other letters as written. */
static void test_trigrams_and_the_text(void) {
    qun_search_batch = 1000; /* the rows wait above the watermark */
    CHECK(committed("INSERT INTO groups(id, gid, name, kind, owner_id, created_at, updated_at) "
                    "VALUES (9, 'g_9', 'nine', 'standard', 1, 0, 0)"));
    CHECK(committed("INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES "
                    "(9, 1, 1, 'abc bcd', 0), (9, 2, 1, 'xabcdx', 0), (9, 3, 1, 'say \"hi\" 😀😀😀 now', 0), "
                    "(9, 4, 1, 'HOMEWORK due', 0), (9, 5, 1, 'ÉCOLE', 0), (9, 6, 1, 'abcabcab', 0), "
                    "(9, 7, 1, 'x\" AND \"y', 0)"));
    CHECK(waiting() == 7);
    check_needles("waiting");
    qun_search_batch = 1;
    CHECK(committed("SELECT 1") && waiting() == 0);
    check_needles("indexed");
    qun_search_batch = 256;
}

/* Migration 0044 on a store whose positional index held text: the new index starts empty
 * at watermark 0, a search finds by the messages' text meanwhile (never a recalled one's
 * old text), and COMMITs take the messages in until the index alone answers. */
static void test_positions_dropped(void) {
    char path[] = "/tmp/qun-search-0044-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    qun_err_t err;
    qun_db_t *old;
    CHECK(qun_db_open(path, false, false, &old, &err) == QUN_OK);
    size_t upto = 0; /* the migrations before 0044 (some numbers have none) */
    while (upto < qun_sqlite_migrations_count && qun_sqlite_migrations[upto].version < 44)
        upto++;
    CHECK(qun_store_migrate(old, qun_sqlite_migrations, upto, QUN_SQLITE_MIGRATIONS_TABLE, &err) == QUN_OK);
    qun_db_close(old);
    CHECK(qun_db_open(path, false, false, &old, &err) == QUN_OK); /* sees search_state now */
    qun_db_t *keep = db;
    db = old;
    qun_search_batch = 1;
    CHECK(committed("INSERT INTO users(id, openid, username, pwhash, password_changed_at, created_at) "
                    "VALUES (1, 'u_a', 'a', 'x', 0, 0)"));
    CHECK(committed("INSERT INTO groups(id, gid, name, kind, owner_id, created_at, updated_at) "
                    "VALUES (1, 'g_1', 'one', 'standard', 1, 0, 0)"));
    CHECK(
        committed("WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 5000) "
                  "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                  "SELECT 1, i, 1, CASE WHEN i % 1000 = 0 THEN 'old 鸵鸟 ' ELSE 'old ' END || i, 0 FROM k"));
    CHECK(committed("SELECT 1")); /* the second slice of the bulk load */
    CHECK(committed("UPDATE messages SET body = '' WHERE seq = 3000")); /* hidden in the old index */
    CHECK(waiting() == 0 && unit_count(db, "SELECT COUNT(*) FROM messages_fts_docsize") == 5000);
    CHECK(unit_count(db, "SELECT gone - scrubbed FROM search_state") == 1);
    qun_db_close(old);
    CHECK(qun_db_open(path, false, true, &old, &err) == QUN_OK);
    db = old;
    CHECK(unit_count(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_fts' "
                         "AND sql LIKE '%detail=''none''%'") == 1);
    CHECK(unit_count(db, "SELECT gone - scrubbed FROM search_state") == 0);
    CHECK(unit_count(db, "SELECT indexed_to FROM search_state") == 0);
    CHECK_STR(found_on(db, 1, "鸵鸟"), "5000,4000,2000,1000");
    CHECK_STR(found_on(db, 1, "old 鸵鸟"), "5000,4000,2000,1000");
    /* Each COMMIT takes in QUN_SEARCH_CATCHUP ids, as the jobs thread's do. */
    CHECK(committed("SELECT 1") &&
          unit_count(db, "SELECT indexed_to FROM search_state") == QUN_SEARCH_CATCHUP);
    CHECK_STR(found_on(db, 1, "old 鸵鸟"), "5000,4000,2000,1000");
    CHECK(committed("SELECT 1") && waiting() == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts_docsize") == 5000);
    CHECK_STR(found_on(db, 1, "old 鸵鸟"), "5000,4000,2000,1000");
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')", "") ==
          QUN_DONE);
    qun_db_close(old);
    db = keep;
    qun_search_batch = 256;
    unit_remove_sqlite(path);
}

/* SQLite gives a deleted newest row's id to the next row.  Deleting the newest row
 * lowers the watermark below it, so the new row waits above it like any other (no
 * trigger fires for a new row), and the old text leaves the index before the new text
 * goes in. */
static void test_reused_id(void) {
    int64_t seqs[200], next;
    int n;
    qun_err_t err;
    qun_search_batch = 1;
    CHECK(committed("INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                    "VALUES (2, 20, 1, 'old 长颈鹿 text', 0)"));
    int64_t id = unit_count(db, "SELECT MAX(id) FROM messages");
    CHECK(unit_count(db, "SELECT indexed_to FROM search_state") == id);
    qun_search_batch = 256; /* the new row waits above the watermark */
    CHECK(deleted_then_posted("DELETE FROM messages WHERE group_id = 2 AND seq = 20", id - 1,
                              "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                              "VALUES (2, 21, 1, 'new 河马 text', 0)"));
    CHECK(unit_count(db, "SELECT MAX(id) FROM messages") == id);
    CHECK(unit_count(db, "SELECT indexed_to FROM search_state") == id - 1);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_pending") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_gone") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '长颈鹿'") == 0);
    CHECK(qun_db_search(db, 2, "长颈鹿", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 0);
    CHECK(qun_db_search(db, 2, "河马", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 1 && seqs[0] == 21);
    qun_search_batch = 1;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(waiting() == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"new\" AND \"w 河\" "
                         "AND \" 河马\"'") == 1);
    CHECK(qun_db_search(db, 2, "new 河马", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 1 &&
          seqs[0] == 21);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')", "") ==
          QUN_DONE);
    qun_search_batch = 256;
}

/* The newest rows deleted while some wait above the watermark and some are indexed:
 * the watermark comes down to the newest row left, and the rows posted next, with the
 * deleted rows' ids, are found and then indexed once each. */
static void test_newest_rows_deleted(void) {
    int64_t seqs[200], next;
    int n;
    qun_err_t err;
    qun_search_batch = 1;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db,
                      "INSERT INTO groups(id, gid, name, kind, owner_id, created_at, updated_at) "
                      "VALUES (4, 'g_4', 'four', 'standard', 1, 0, 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_exec(db,
                      "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                      "VALUES (4, 1, 1, 'kept 企鹅 one', 0), (4, 2, 1, 'gone 斑马 two', 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    int64_t top = unit_count(db, "SELECT MAX(id) FROM messages");
    CHECK(unit_count(db, "SELECT indexed_to FROM search_state") == top);
    qun_search_batch = 256;
    CHECK(committed("INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                    "VALUES (4, 3, 1, 'gone 斑马 three', 0), (4, 4, 1, 'gone 斑马 four', 0)"));
    CHECK(unit_count(db, "SELECT indexed_to FROM search_state") == top);
    CHECK(deleted_then_posted("DELETE FROM messages WHERE group_id = 4 AND seq > 1", top - 1,
                              "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                              "VALUES (4, 5, 1, 'new 海豹 five', 0), (4, 6, 1, 'new 海豹 six', 0)"));
    CHECK(unit_count(db, "SELECT MAX(id) FROM messages") == top + 1);
    CHECK(qun_db_search(db, 4, "斑马", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 0);
    CHECK(qun_db_search(db, 4, "海豹", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 2 && seqs[0] == 6);
    CHECK(qun_db_search(db, 4, "企鹅", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 1 && seqs[0] == 1);
    qun_search_batch = 1;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(waiting() == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"gon\" AND \"e 斑\" "
                         "AND \" 斑马\"'") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"new\" AND \"w 海\" "
                         "AND \" 海豹\"'") == 2);
    CHECK(qun_db_search(db, 4, "new 海豹", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 2);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')", "") ==
          QUN_DONE);
    qun_search_batch = 256;
}

/* A bulk load far above the watermark is taken in a slice per COMMIT, never all at
 * once, and is found by its text meanwhile. */
static void test_bulk_catch_up(void) {
    int64_t seqs[200], next, backlog;
    int n;
    qun_err_t err;
    qun_search_batch = 8; /* QUN_SEARCH_CATCHUP stays 4096 */
    int64_t top = unit_count(db, "SELECT MAX(id) FROM messages");
    CHECK(qun_db_exec(
              db,
              "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 10000) "
              "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
              "SELECT 3, i, 1, CASE WHEN i % 1000 = 0 THEN 'bulk 骆驼 ' ELSE 'bulk ' END || i, 0 FROM k",
              &err) == QUN_OK);
    CHECK(qun_db_search_backlog(db, &backlog, &err) == QUN_OK && backlog == 10000);
    CHECK(qun_db_search(db, 3, "骆驼", 0, 200, seqs, &n, &next, &err) == QUN_OK && n == 10);
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT indexed_to FROM search_state") == top + 4096);
    CHECK(qun_db_search_backlog(db, &backlog, &err) == QUN_OK && backlog == 5904);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"bul\" AND \"k 骆\" "
                         "AND \" 骆驼\"'") == 4);
    CHECK(qun_db_search(db, 3, "bulk 骆驼", 0, 200, seqs, &n, &next, &err) == QUN_OK && n == 10 &&
          seqs[0] == 10000 && seqs[9] == 1000);
    for (int i = 0; i < 2; i++)
        CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(qun_db_search_backlog(db, &backlog, &err) == QUN_OK && backlog == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"bul\" AND \"k 骆\" "
                         "AND \" 骆驼\"'") == 10);
    /* Fewer than a batch wait for the next posts, as new messages do. */
    CHECK(qun_db_exec(db,
                      "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES "
                      "(3, 10001, 1, 'bulk 骆驼 10001', 0), (3, 10002, 1, 'bulk 骆驼 10002', 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(qun_db_search_backlog(db, &backlog, &err) == QUN_OK && backlog == 2);
    CHECK(qun_db_search(db, 3, "bulk 骆驼", 0, 200, seqs, &n, &next, &err) == QUN_OK && n == 12 &&
          seqs[0] == 10002);
    qun_search_batch = 2;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(qun_db_search_backlog(db, &backlog, &err) == QUN_OK && backlog == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"bul\" AND \"k 骆\" "
                         "AND \" 骆驼\"'") == 12);
    qun_search_batch = 256;
}

static int64_t segments(void) {
    return unit_count(db, "SELECT COUNT(DISTINCT segid) FROM messages_fts_idx");
}

/* A COMMIT that writes to the index adds a segment and never merges (migration 0038):
 * 40 of them leave 40 more segments.  qun_db_search_merge then folds them, a bounded
 * piece per call, says when it is done, and the answers stay the same. */
static void test_merges_apart(void) {
    qun_err_t err;
    int64_t seqs[200], next;
    int n;
    qun_search_batch = 1;
    bool more = true;
    for (int i = 0; i < 1000 && more; i++) /* what the earlier cases left */
        CHECK(qun_db_search_merge(db, 64, &more, &err) == QUN_OK);
    CHECK(!qun_search_unmerged());
    int64_t before = segments();
    for (int i = 0; i < 40; i++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (2, %d, 1, "
                 "'合并 merge %d', 0)",
                 5000 + i, i);
        CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
        CHECK(qun_db_exec(db, sql, &err) == QUN_OK);
        CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    }
    CHECK(segments() == before + 40);
    CHECK(qun_search_unmerged());
    int calls = 0;
    for (more = true; more && calls < 1000; calls++)
        CHECK(qun_db_search_merge(db, 2, &more, &err) == QUN_OK);
    CHECK(calls >= 2);               /* one that merged, one that found nothing left */
    CHECK(segments() < before + 16); /* 16 a level at a time (usermerge) */
    CHECK(!qun_search_unmerged());
    CHECK(qun_db_search(db, 2, "合并 merge", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 40);
    CHECK(seqs[0] == 5039 && seqs[39] == 5000);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')", "") ==
          QUN_DONE);
    qun_search_batch = 256;
}

/* How many of the index's pages hold bytes of text (a blob search of messages_fts_data). */
static int64_t pages_holding(const char *text) {
    qun_err_t err;
    qun_q_t *q;
    int64_t n = -1;
    if (qun_db_run(db, &q, &err,
                   "SELECT count(*) FROM messages_fts_data WHERE instr(block, CAST($1 AS BLOB)) > 0", "s",
                   text) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

/* FTS5's 'delete' only hides an entry: the trigrams of a deleted message stay in the
 * index's pages until qun_db_search_scrub rewrites it, after which none is left and
 * everything else is found as before. */
static void test_scrub_drops_hidden_text(void) {
    qun_err_t err;
    int64_t seqs[200], next, gone0, gone, scrubbed, covered = 0;
    int n;
    qun_search_batch = 1;
    CHECK(qun_db_search_gone(db, &gone0, &scrubbed, &err) == QUN_OK);
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db,
                      "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (2, 9000, 1, "
                      "'龘靐齉麤 scrub me', 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(pages_holding("靐齉") > 0);
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "DELETE FROM messages WHERE group_id = 2 AND seq = 9000", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(qun_db_search_gone(db, &gone, &scrubbed, &err) == QUN_OK && gone == gone0 + 1 && scrubbed < gone);
    CHECK(qun_db_search(db, 2, "龘靐齉", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 0);
    CHECK(pages_holding("靐齉") > 0); /* hidden, not gone */
    int calls = 0;
    while (calls < 10000 && covered < gone) {
        CHECK(qun_db_search_scrub(db, 2, &covered, &err) == QUN_OK);
        calls++;
    }
    CHECK(covered >= gone);
    CHECK(calls >= 3); /* began, merged, found nothing left */
    CHECK(qun_db_search_gone(db, &gone, &scrubbed, &err) == QUN_OK && scrubbed == gone);
    CHECK(pages_holding("靐齉") == 0 && pages_holding("龘靐") == 0 && pages_holding("齉麤") == 0);
    CHECK(qun_db_search(db, 2, "合并 merge", 0, 50, seqs, &n, &next, &err) == QUN_OK && n == 40);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')", "") ==
          QUN_DONE);
    /* Nothing hidden since: a step writes nothing. */
    int64_t changes = qun_db_total_changes(db);
    CHECK(qun_db_search_scrub(db, 2, &covered, &err) == QUN_OK && covered >= gone);
    CHECK(qun_db_total_changes(db) == changes);
    qun_search_batch = 256;
}

/* ---- PostgreSQL (QUN_TEST_PG): the copies the pg_trgm index holds (migration 0043) ---- */

static qun_db_t *pg;         /* a fresh database's store */
static char pg_conn[512];    /* its conninfo */
static const char *pg_admin; /* QUN_TEST_PG: another database of the same server */

static int64_t pg_count(const char *sql) {
    return unit_count(pg, sql);
}

static qun_rc post(qun_db_t *to, int64_t seq, const char *body) {
    qun_err_t err;
    return qun_db_run(
               to, NULL, &err,
               "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (1, $1, 1, $2, 0)",
               "is", seq, body) == QUN_DONE
               ? QUN_OK
               : QUN_STORE;
}

static int64_t mark(void) {
    return pg_count("SELECT indexed_to FROM search_state");
}

/* One copy step on a connection: true when it did not stop at limit. */
static bool step_on(qun_db_t *on, int limit) {
    bool more;
    qun_err_t err;
    return qun_db_search_copy(on, limit, &more, &err) == QUN_OK && !more;
}

static bool step(int limit) {
    return step_on(pg, limit);
}

/* A fresh database unit_search next to QUN_TEST_PG's, migrated, with a user and a group. */
static bool pg_fresh(const char *conn) {
    qun_db_t *admin;
    qun_err_t err;
    const char *slash = strrchr(conn, '/');
    pg_admin = conn;
    if (!slash || qun_db_open(conn, false, false, &admin, &err) != QUN_OK) return false;
    bool ok = qun_db_exec(admin, "DROP DATABASE IF EXISTS unit_search", &err) == QUN_OK &&
              qun_db_exec(admin, "CREATE DATABASE unit_search", &err) == QUN_OK;
    qun_db_close(admin);
    snprintf(pg_conn, sizeof pg_conn, "%.*s/unit_search", (int)(slash - conn), conn);
    return ok && qun_db_open(pg_conn, false, true, &pg, &err) == QUN_OK &&
           qun_db_exec(pg,
                       "INSERT INTO users(id, openid, username, pwhash, password_changed_at, created_at) "
                       "VALUES (1, 'u_a', 'a', 'x', 0, 0); "
                       "INSERT INTO groups(id, gid, name, kind, owner_id, created_at, updated_at) "
                       "VALUES (1, 'g_1', 'one', 'standard', 1, 0, 0)",
                       &err) == QUN_OK;
}

/* New messages are found before any copy and once each after it; a step copies the
 * text messages and raises the watermark over them, no higher than it copied when it
 * stopped at its limit. */
static void test_pg_copies(void) {
    qun_err_t err;
    CHECK(post(pg, 1, "first zebra") == QUN_OK && post(pg, 2, "second zebra") == QUN_OK);
    CHECK(post(pg, 3, "a file") == QUN_OK);
    CHECK(qun_db_exec(pg, "UPDATE messages SET kind = 'file' WHERE seq = 3", &err) == QUN_OK);
    CHECK_STR(found_on(pg, 1, "zebra"), "2,1");
    CHECK(step(100) && mark() == 3 && pg_count("SELECT count(*) FROM message_search") == 2);
    CHECK_STR(found_on(pg, 1, "ZEBRA"), "2,1");
    CHECK_STR(found_on(pg, 1, "file"), "");
    CHECK(post(pg, 4, "third zebra") == QUN_OK && post(pg, 5, "fourth zebra") == QUN_OK);
    CHECK(!step(1) && mark() == 4);
    CHECK_STR(found_on(pg, 1, "zebra"), "5,4,2,1");
    CHECK(!step(1) && mark() == 5);
    CHECK(step(1) && mark() == 5);
    CHECK_STR(found_on(pg, 1, "zebra"), "5,4,2,1");
    /* Another copier at work: a step does nothing. */
    qun_db_t *other = NULL;
    CHECK(qun_db_open(pg_conn, false, false, &other, &err) == QUN_OK);
    if (!other) return;
    qun_q_t *q;
    /* try: a step that kept the lock makes this fail at once, not wait forever */
    CHECK(qun_db_run(other, &q, &err, "SELECT pg_try_advisory_lock($1)", "i",
                     (int64_t)QUN_SEARCH_COPY_LOCK) == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 1);
    qun_q_done(q);
    CHECK(post(pg, 6, "fifth zebra") == QUN_OK);
    CHECK(step(100) && mark() == 5);
    /* Released at once (a closed connection's backend lets go a moment later). */
    CHECK(qun_db_run(other, &q, &err, "SELECT pg_advisory_unlock($1)", "i", (int64_t)QUN_SEARCH_COPY_LOCK) ==
          QUN_ROW);
    qun_q_done(q);
    qun_db_close(other);
    CHECK(step(100) && mark() == 6);
}

/* A message whose transaction is still open when a later one committed: the step waits
 * for it, a while, then leaves both for a later step; once it commits both are copied
 * and found. */
static void test_pg_open_transaction(void) {
    qun_db_t *other = NULL;
    qun_err_t err;
    CHECK(qun_db_open(pg_conn, false, false, &other, &err) == QUN_OK);
    if (!other) return;
    int64_t before = mark();
    CHECK(qun_db_exec(other, "BEGIN", &err) == QUN_OK && post(other, 10, "late giraffe") == QUN_OK);
    CHECK(post(pg, 11, "early giraffe") == QUN_OK);
    int64_t late = pg_count("SELECT max(id) FROM messages") - 1;
    CHECK(step(100) && mark() == before); /* still open: not passed */
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body LIKE '%giraffe%'") == 0);
    CHECK_STR(found_on(pg, 1, "giraffe"), "11");
    CHECK(qun_db_exec(other, "COMMIT", &err) == QUN_OK);
    CHECK_STR(found_on(pg, 1, "giraffe"), "11,10");
    CHECK(step(100) && mark() == late + 1);
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body LIKE '%giraffe%'") == 2);
    CHECK_STR(found_on(pg, 1, "giraffe"), "11,10");
    /* An open transaction that wrote nothing does not hold a step back. */
    CHECK(qun_db_exec(other, "BEGIN", &err) == QUN_OK);
    CHECK(unit_count(other, "SELECT count(*) FROM messages") > 0);
    CHECK(post(pg, 12, "zebra again") == QUN_OK);
    CHECK(step(100) && mark() == late + 2);
    CHECK(qun_db_exec(other, "COMMIT", &err) == QUN_OK);
    qun_db_close(other);
    /* Nor does one that wrote in another database of the same server. */
    qun_db_t *elsewhere = NULL;
    CHECK(qun_db_open(pg_admin, false, false, &elsewhere, &err) == QUN_OK);
    if (!elsewhere) return;
    CHECK(qun_db_exec(elsewhere, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(elsewhere, "CREATE TEMP TABLE unit_elsewhere(v INT)", &err) == QUN_OK);
    CHECK(post(pg, 13, "zebra elsewhere") == QUN_OK);
    CHECK(step(100) && mark() == late + 3);
    CHECK(qun_db_exec(elsewhere, "ROLLBACK", &err) == QUN_OK);
    qun_db_close(elsewhere);
}

/* The copier's session cut (a server restart, an administrator's pg_terminate_backend):
 * the step that finds it fails, the next connects again and copies, the copy lock gone
 * with the old session. */
static void test_pg_copier_reconnects(void) {
    qun_db_t *copier = NULL;
    qun_err_t err;
    CHECK(qun_db_open(pg_conn, false, false, &copier, &err) == QUN_OK);
    if (!copier) return;
    int64_t pid = unit_count(copier, "SELECT pg_backend_pid()");
    qun_q_t *q;
    CHECK(qun_db_run(pg, &q, &err, "SELECT pg_terminate_backend($1::int4)", "i", pid) == QUN_ROW);
    qun_q_done(q);
    CHECK(post(pg, 30, "after the cut zebra") == QUN_OK);
    bool more = true;
    /* The first statement finds the session gone: the step fails as the server being
     * away does (the scheduler logs it and steps again a second later), copying nothing. */
    CHECK(qun_db_search_copy(copier, 100, &more, &err) == QUN_STORE_UNAVAILABLE && !more);
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body = 'after the cut zebra'") == 0);
    CHECK(qun_db_search_copy(copier, 100, &more, &err) == QUN_OK && !more);
    CHECK(mark() == pg_count("SELECT max(id) FROM messages"));
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body = 'after the cut zebra'") == 1);
    CHECK(qun_db_run(pg, &q, &err,
                     "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND "
                     "objid::int8 = $1 AND database = (SELECT oid FROM pg_database WHERE datname = "
                     "current_database())",
                     "i", (int64_t)QUN_SEARCH_COPY_LOCK) == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 0); /* the step let go of its lock */
    qun_q_done(q);
    qun_db_close(copier);
}

/* Text changed, a message no longer text, or deleted: the copy follows in the same
 * transaction, copied already or not. */
static void test_pg_changes(void) {
    qun_err_t err;
    CHECK(qun_db_exec(pg, "UPDATE messages SET body = 'recalled' WHERE seq = 1", &err) == QUN_OK);
    CHECK(qun_db_exec(pg, "DELETE FROM messages WHERE seq = 2", &err) == QUN_OK);
    CHECK_STR(found_on(pg, 1, "zebra"), "13,12,6,5,4");
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE id IN (SELECT id FROM messages WHERE seq = 1) "
                   "AND body = 'recalled'") == 1);
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body LIKE '%second%'") == 0);
    CHECK(qun_db_exec(pg, "UPDATE messages SET kind = 'file' WHERE seq = 4", &err) == QUN_OK);
    CHECK_STR(found_on(pg, 1, "zebra"), "13,12,6,5");
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body LIKE '%third%'") == 0);
    /* A message not copied yet, masked: the change writes the copy itself, and the
     * step keeps it (its own row, from a snapshot before the change, would conflict). */
    CHECK(post(pg, 20, "secret okapi") == QUN_OK);
    CHECK(qun_db_exec(pg, "UPDATE messages SET body = '******' WHERE seq = 20", &err) == QUN_OK);
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body = '******'") == 1);
    CHECK(step(100));
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body LIKE '%okapi%'") == 0);
    CHECK(
        pg_count("SELECT count(*) FROM message_search s JOIN messages m USING (id) WHERE s.body <> m.body") ==
        0);
    CHECK_STR(found_on(pg, 1, "okapi"), "");
}

/* Posts, changes of text and deletions of new messages on one connection while copy
 * steps of 4 rows run on another (most stop at their limit, some among rows whose copy
 * a change of text wrote already): whatever the interleaving (the change or deletion of
 * a row a step is copying included), no step fails and, at the end, every copy holds
 * its message's current text and every text message under the watermark has one. */
#define STRESS_POSTS 1500
static atomic_bool stress_done;

static void *stress_copier(void *arg) {
    qun_db_t *on = arg;
    int *failed = qun_xcalloc(1, sizeof *failed);
    while (!atomic_load(&stress_done)) {
        bool more;
        qun_err_t err;
        if (qun_db_search_copy(on, 4, &more, &err) != QUN_OK) {
            fprintf(stderr, "copy step: %s\n", err.msg);
            (*failed)++;
        }
    }
    return failed;
}

static void test_pg_changes_during_copies(void) {
    qun_db_t *writer = NULL, *copier = NULL;
    qun_err_t err;
    CHECK(qun_db_open(pg_conn, false, false, &writer, &err) == QUN_OK);
    CHECK(qun_db_open(pg_conn, false, false, &copier, &err) == QUN_OK);
    if (!writer || !copier) return;
    atomic_store(&stress_done, false);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, stress_copier, copier) == 0);
    char text[64];
    for (int i = 1; i <= STRESS_POSTS; i++) {
        snprintf(text, sizeof text, "stress %d", i);
        CHECK(post(writer, 1000 + i, text) == QUN_OK);
        if (i % 3 == 0)
            CHECK(qun_db_run(writer, NULL, &err, "UPDATE messages SET body = 'masked ' || seq WHERE seq = $1",
                             "i", (int64_t)(1000 + i - 1)) == QUN_DONE);
        if (i % 5 == 0)
            CHECK(qun_db_run(writer, NULL, &err, "DELETE FROM messages WHERE seq = $1", "i",
                             (int64_t)(1000 + i - 2)) == QUN_DONE);
    }
    atomic_store(&stress_done, true);
    int *failed = NULL;
    pthread_join(t, (void **)&failed);
    CHECK(failed && *failed == 0);
    free(failed);
    CHECK(step(100000));
    CHECK(mark() == pg_count("SELECT max(id) FROM messages"));
    CHECK(
        pg_count("SELECT count(*) FROM message_search s JOIN messages m USING (id) WHERE s.body <> m.body") ==
        0);
    CHECK(pg_count("SELECT count(*) FROM messages m WHERE kind = 'text' AND id <= "
                   "(SELECT indexed_to FROM search_state) AND NOT EXISTS "
                   "(SELECT 1 FROM message_search s WHERE s.id = m.id)") == 0);
    CHECK(pg_count("SELECT count(*) FROM message_search WHERE body LIKE 'masked%'") ==
          pg_count("SELECT count(*) FROM messages WHERE body LIKE 'masked%'"));
    qun_db_close(writer);
    qun_db_close(copier);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    fill();
    RUN(test_short_needle_windows);
    RUN(test_long_needle_index);
    RUN(test_pending_rows);
    RUN(test_batched_rows);
    RUN(test_trigrams_and_the_text);
    RUN(test_positions_dropped);
    RUN(test_reused_id);
    RUN(test_newest_rows_deleted);
    RUN(test_bulk_catch_up);
    RUN(test_merges_apart);
    RUN(test_scrub_drops_hidden_text);
    qun_db_close(db);
    const char *conn = getenv("QUN_TEST_PG");
    if (conn && *conn) {
        CHECK(pg_fresh(conn));
        if (pg) {
            RUN(test_pg_copies);
            RUN(test_pg_open_transaction);
            RUN(test_pg_changes);
            RUN(test_pg_copier_reconnects);
            RUN(test_pg_changes_during_copies);
            qun_db_close(pg);
        }
    } else {
        printf("store/search: QUN_TEST_PG not set, PostgreSQL cases skipped\n");
    }
    return unit_done("test_store_search");
}
