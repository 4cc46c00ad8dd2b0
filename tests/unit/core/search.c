/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/search.c on an in-memory store: the query's checks, members
 * only, Chinese two-character and longer phrases and English words whatever their
 * case, and the index following the message rows (update of body, delete) in the
 * same transaction: the trigram tables hold exactly the trigrams of the bodies not
 * pending, recall takes the text out, and a COMMIT leaves nothing pending. */
#include <stdio.h>
#include <string.h>

#include "qun/core.h"
#include "qun/search.h"
#include "unit.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t alice, bob;
static char g1[QUN_ID_MAX];

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

/* The index holds exactly the trigrams of every text message's body that is not
 * pending (migration 0029's invariant). */
#define DERIVED                                                                                              \
    "SELECT m.group_id, substr(lower(m.body), p.i, 3), m.seq FROM messages m "                               \
    "JOIN search_positions p ON p.i <= length(m.body) - 2 "                                                  \
    "WHERE m.kind = 'text' AND m.id NOT IN (SELECT id FROM search_pending)"
static bool index_ok(void) {
    return unit_count(db,
                      "SELECT COUNT(*) FROM (SELECT group_id, tri, seq FROM search_trigrams EXCEPT " DERIVED
                      ")") == 0 &&
           unit_count(db, "SELECT COUNT(*) FROM (" DERIVED
                          " EXCEPT SELECT group_id, tri, seq FROM search_trigrams)") == 0;
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
    CHECK(index_ok());
    /* A COMMIT indexes what is pending. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    post("committed 作业 words");
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_pending") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_trigrams") > 0);
    CHECK_STR(found("作业 w"), "committed 作业 words");
    CHECK(index_ok());
}

/* A recalled message is not found, by any of its words, and its trigrams are gone
 * from the index in the recall's transaction. */
static void test_recall_leaves_the_index(void) {
    qun_err_t err;
    json_t *out = NULL;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    post("secret plan 秘密计划");
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK_STR(found("秘密计划"), "secret plan 秘密计划");
    int64_t seq = unit_count(db, "SELECT MAX(seq) FROM messages");
    int64_t before = unit_count(db, "SELECT COUNT(*) FROM search_trigrams");
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_message_recall(db, &alice, g1, seq, NULL, &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK_STR(found("秘密计划"), "");
    CHECK_STR(found("secret"), "");
    CHECK_STR(found("秘密"), "");
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_trigrams WHERE tri IN ('秘密计', 'sec', 'pla')") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM search_trigrams") < before);
    CHECK(index_ok());
}

int main(void) {
    qun_err_t err;
    json_t *out;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    CHECK(unit_user(db, "alice", &alice));
    CHECK(unit_user(db, "bob", &bob));
    CHECK(qun_group_create(db, &alice, "one", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(g1, sizeof g1, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    RUN(test_query_checks);
    RUN(test_members_only);
    RUN(test_chinese_and_english);
    RUN(test_index_follows_the_rows);
    RUN(test_recall_leaves_the_index);
    qun_db_close(db);
    return unit_done("test_core_search");
}
