/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/search.c on an in-memory store: the query's checks, members
 * only, Chinese two-character and longer phrases and English words whatever their
 * case, and the index following the message rows (update of body, delete) in the
 * same transaction, with FTS5's own integrity check agreeing. */
#include <stdio.h>
#include <string.h>

#include "qun/core.h"
#include "qun/search.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t alice, bob;
static char g1[QUN_ID_MAX];

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static void post(const char *text) {
    json_t *out;
    qun_err_t err;
    CHECK(qun_message_post(db, &alice, g1, text, &out, &err) == QUN_OK);
    json_decref(out);
}

/* The texts found for q, newest first, joined by '|'. */
static const char *found(const char *q) {
    static char buf[1024];
    json_t *out = NULL, *m;
    qun_err_t err;
    size_t i;
    buf[0] = '\0';
    if (qun_message_search(db, &alice, g1, q, 0, 50, &out, &err) != QUN_OK) return "(error)";
    json_array_foreach(json_object_get(out, "items"), i, m) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, "%s%s", i ? "|" : "",
                 json_string_value(json_object_get(m, "text")));
    }
    json_decref(out);
    return buf;
}

/* After a COMMIT through the store (which indexes what writes outside a transaction
 * left pending), the index agrees with the rows. */
static bool index_ok(void) {
    qun_err_t err;
    if (qun_db_exec(db, "BEGIN", &err) != QUN_OK || qun_db_exec(db, "COMMIT", &err) != QUN_OK) return false;
    return qun_db_exec(db, "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)",
                       &err) == QUN_OK;
}

static void test_query_checks(void) {
    static const struct {
        const char *q;
        bool ok;
    } rows[] = {
        {"作业", true},      {"a", true},
        {"  noon  ", true},  {"", false},
        {"   ", false},      {"a\nb", false},
        {"a\tb", false},     {"\x7f", false},
        {"\xff", false},     {"\xc0\xaf", false},
        {"\xe4\xbd", false}, {"\xed\xa0\x80", false},
        {"\xc2\x85", false}, {"\xf0\x9f\x98\x80", true},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        const char *start;
        size_t len;
        CHECKF(qun_search_query_ok(rows[i].q, &start, &len) == rows[i].ok, rows[i].q);
    }
    const char *start;
    size_t len;
    char big[3 * 201 + 1] = "";
    for (int i = 0; i < 200; i++)
        strcat(big, "字");
    CHECK(qun_search_query_ok(big, &start, &len) && len == 600);
    strcat(big, "字");
    CHECK(!qun_search_query_ok(big, &start, &len));
    CHECK(qun_search_query_ok("  x y ", &start, &len) && len == 3 && memcmp(start, "x y", 3) == 0);
}

static void test_members_only(void) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_message_search(db, &bob, g1, "作业", 0, 50, &out, &err) == QUN_GROUP_NOT_FOUND);
    CHECK(qun_message_search(db, &bob, g1, "", 0, 50, &out, &err) == QUN_GROUP_NOT_FOUND);
    CHECK(qun_message_search(db, &alice, g1, "", 0, 50, &out, &err) == QUN_SEARCH_QUERY_INVALID);
    CHECK(out == NULL);
}

static void test_chinese_and_english(void) {
    post("今天的作业很多");
    post("Meeting at NOON");
    post("作业");
    post("明天见");
    CHECK_STR(found("作业"), "作业|今天的作业很多");
    CHECK_STR(found("的作业"), "今天的作业很多");
    CHECK_STR(found("见"), "明天见");
    CHECK_STR(found("noon"), "Meeting at NOON");
    CHECK_STR(found("Meeting at noon"), "Meeting at NOON");
    CHECK_STR(found("作文"), "");
    CHECK_STR(found("\"noon\""), "");
    CHECK(index_ok());
}

static void test_index_follows_the_rows(void) {
    qun_err_t err;
    CHECK(qun_db_exec(db, "UPDATE messages SET body = '已改正的内容' WHERE body = '今天的作业很多'", &err) ==
          QUN_OK);
    CHECK_STR(found("作业"), "作业");
    CHECK_STR(found("今天的"), "");
    CHECK_STR(found("已改正"), "已改正的内容");
    CHECK(qun_db_exec(db, "DELETE FROM messages WHERE body = '作业'", &err) == QUN_OK);
    CHECK_STR(found("作业"), "");
    /* A change rolled back leaves the index as it was. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "DELETE FROM messages", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "ROLLBACK", &err) == QUN_OK);
    CHECK_STR(found("noon"), "Meeting at NOON");
    /* These writes ran outside a transaction: the next COMMIT through the store brings
     * the index up to them, one entry per text message. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK && qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_pending") == 0 &&
          unit_count(db, "SELECT COUNT(*) FROM search_gone") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM messages_fts_docsize") ==
          unit_count(db, "SELECT COUNT(*) FROM messages WHERE kind = 'text'"));
    CHECK(index_ok());
}

int main(void) {
    qun_err_t err;
    json_t *out;
    qun_search_batch = 1; /* each COMMIT indexes: these tests read the index */
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    user("alice", &alice);
    user("bob", &bob);
    CHECK(qun_group_create(db, &alice, "one", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(g1, sizeof g1, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    RUN(test_query_checks);
    RUN(test_members_only);
    RUN(test_chinese_and_english);
    RUN(test_index_follows_the_rows);
    qun_db_close(db);
    return unit_done("test_core_search");
}
