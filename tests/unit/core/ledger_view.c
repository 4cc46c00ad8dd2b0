/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/ledger_view.c on an in-memory store: which entries the owner,
 * a member, a non-member, an entry's actor and a server admin may read, a row whose
 * side columns disagree with its hashed text, the range checks, nodes and proofs that
 * verify against the head, and a group's history before and after it is gone. */
#include <stdio.h>

#include "qun/core.h"
#include "qun/ledger.h"
#include "qun/ledger_view.h"
#include "unit.h"
#include "unit_core.h"

static qun_db_t *db;
static qun_actor_t owner, member, other, admin;
static char g1[QUN_ID_MAX], g2[QUN_ID_MAX];

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static void group(const qun_actor_t *a, const char *name, char gid[QUN_ID_MAX]) {
    json_t *out;
    qun_err_t err;
    CHECK(qun_group_create(db, a, name, "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
}

static void exec(const char *sql, const char *s1, int64_t i2) {
    qun_err_t err;
    CHECK(qun_db_run(db, NULL, &err, sql, "si", s1, i2) == QUN_DONE);
}

/* Entries 0..4:
 *   0 group.created of g1 by owner      1 group.created of g2 by other
 *   2 note about g1 by other            3 note about no group by admin
 *   4 note about g2 by other, whose group column was then edited to say g1 */
static void setup(void) {
    qun_err_t err;
    json_t *out;
    user("owner", &owner);
    user("member", &member);
    user("other", &other);
    user("admin", &admin);
    admin.is_admin = true;
    group(&owner, "one", g1);
    CHECK(qun_member_add(db, &owner, g1, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    group(&other, "two", g2);
    CHECK(qun_ledger_append(db, "test.note", g1, other.openid, "active", "active", NULL, NULL, &err) ==
          QUN_OK);
    CHECK(qun_ledger_append(db, "test.note", NULL, admin.openid, NULL, NULL, NULL, NULL, &err) == QUN_OK);
    CHECK(qun_ledger_append(db, "test.note", g2, other.openid, "active", "active", NULL, NULL, &err) ==
          QUN_OK);
    exec("UPDATE ledger_entries SET group_openid = $1 WHERE idx = $2", g1, 4);
}

/* Which of entries 0..4 a reads, as a string of 0/1. */
static void visible(const qun_actor_t *a, char out[6]) {
    json_t *page = NULL;
    qun_err_t err;
    CHECK(qun_ledger_view_entries(db, a, 0, -1, &page, &err) == QUN_OK);
    json_t *items = json_object_get(page, "items");
    CHECK(json_array_size(items) == 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *it = json_array_get(items, i);
        const char *hash = json_string_value(json_object_get(it, "leaf_hash"));
        CHECK(hash && strlen(hash) == 2 * QUN_HASH); /* every leaf hash, for everyone */
        json_t *entry = json_object_get(it, "entry");
        out[i] = entry ? '1' : '0';
        /* What is shown comes with the text, never without it. */
        CHECK((json_object_get(it, "event") != NULL) == (entry != NULL));
    }
    out[5] = '\0';
    json_decref(page);
}

static void test_entry_visibility(void) {
    char v[6];
    visible(&owner, v);
    CHECK_STR(v, "10100");
    visible(&member, v);
    CHECK_STR(v, "10100");
    visible(&other, v); /* not in g1, but the actor of 2; 4's text disagrees with its column */
    CHECK_STR(v, "01100");
    visible(&admin, v);
    CHECK_STR(v, "11111");
    qun_actor_t stranger = member;
    stranger.uid = 0;
    snprintf(stranger.openid, sizeof stranger.openid, "u_nobody");
    visible(&stranger, v);
    CHECK_STR(v, "00000");
}

/* The event and group shown are the hashed text's, not the edited column's. */
static void test_shown_from_text(void) {
    json_t *page = NULL;
    qun_err_t err;
    CHECK(qun_ledger_view_entries(db, &admin, 4, 5, &page, &err) == QUN_OK);
    json_t *it = json_array_get(json_object_get(page, "items"), 0);
    CHECK_STR(json_string_value(json_object_get(it, "group")), g2);
    CHECK_STR(json_string_value(json_object_get(it, "event")), "test.note");
    CHECK(json_integer_value(json_object_get(page, "tree_size")) == 5);
    json_decref(page);
}

static void test_entry_ranges(void) {
    json_t *page = NULL;
    qun_err_t err;
    CHECK(qun_ledger_view_entries(db, &owner, 1, 3, &page, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(page, "start")) == 1 &&
          json_integer_value(json_object_get(page, "end")) == 3);
    CHECK(json_array_size(json_object_get(page, "items")) == 2);
    json_decref(page);
    CHECK(qun_ledger_view_entries(db, &owner, 5, -1, &page, &err) == QUN_OK); /* an empty page at the end */
    CHECK(json_array_size(json_object_get(page, "items")) == 0);
    json_decref(page);
    page = NULL;
    CHECK(qun_ledger_view_entries(db, &owner, 0, 6, &page, &err) == QUN_FIELD_INVALID && !page);
    CHECK_STR(err.field, "end");
    CHECK(qun_ledger_view_entries(db, &owner, 6, -1, &page, &err) == QUN_FIELD_INVALID);
    CHECK(qun_ledger_view_entries(db, &owner, 3, 2, &page, &err) == QUN_FIELD_INVALID);
}

static void unhex(const char *hex, unsigned char out[QUN_HASH]) {
    for (int i = 0; i < QUN_HASH; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static void test_nodes_and_proofs(void) {
    json_t *out = NULL;
    qun_err_t err;
    uint64_t size;
    unsigned char root[QUN_HASH], leaf[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    CHECK(qun_ledger_head(db, &size, root, &err) == QUN_OK && size == 5);
    CHECK(qun_ledger_view_nodes(db, 1, 0, -1, &out, &err) == QUN_OK); /* 5 leaves: 2 complete pairs */
    CHECK(json_array_size(json_object_get(out, "items")) == 2);
    json_decref(out);
    CHECK(qun_ledger_view_nodes(db, 0, 0, 6, &out, &err) == QUN_FIELD_INVALID);
    CHECK_STR(err.field, "end");
    CHECK(qun_ledger_view_nodes(db, 63, 0, -1, &out, &err) == QUN_FIELD_INVALID);
    CHECK_STR(err.field, "level");

    CHECK(qun_ledger_view_inclusion(db, 2, -1, &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "tree_size")) == 5);
    unhex(json_string_value(json_object_get(out, "leaf_hash")), leaf);
    json_t *p = json_object_get(out, "proof");
    int n = (int)json_array_size(p);
    for (int i = 0; i < n; i++)
        unhex(json_string_value(json_array_get(p, (size_t)i)), proof[i]);
    CHECK(qun_merkle_verify_inclusion(leaf, 2, 5, (const unsigned char(*)[QUN_HASH])proof, n, root));
    json_decref(out);
    CHECK(qun_ledger_view_inclusion(db, 5, -1, &out, &err) == QUN_FIELD_INVALID);
    CHECK_STR(err.field, "index");
    CHECK(qun_ledger_view_inclusion(db, 0, 6, &out, &err) == QUN_FIELD_INVALID);

    unsigned char old_root[QUN_HASH];
    CHECK(qun_ledger_root_at(db, 3, old_root, &err) == QUN_OK);
    CHECK(qun_ledger_view_consistency(db, 3, -1, &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "new")) == 5);
    p = json_object_get(out, "proof");
    n = (int)json_array_size(p);
    for (int i = 0; i < n; i++)
        unhex(json_string_value(json_array_get(p, (size_t)i)), proof[i]);
    CHECK(qun_merkle_verify_consistency(3, 5, old_root, root, (const unsigned char(*)[QUN_HASH])proof, n));
    json_decref(out);
    CHECK(qun_ledger_view_consistency(db, 0, -1, &out, &err) == QUN_FIELD_INVALID);
    CHECK_STR(err.field, "old");
    CHECK(qun_ledger_view_consistency(db, 4, 3, &out, &err) == QUN_FIELD_INVALID);
}

/* The indexes of a history page's items, as "0,2". */
static void history_indexes(json_t *page, char *out, size_t size) {
    size_t i, n = 0;
    json_t *it;
    out[0] = '\0';
    json_array_foreach(json_object_get(page, "items"), i, it) {
        n += (size_t)snprintf(out + n, size - n, "%s%lld", i ? "," : "",
                              (long long)json_integer_value(json_object_get(it, "index")));
        CHECK(json_object_get(it, "group") == NULL && json_object_get(it, "entry") != NULL);
    }
}

static void test_history(void) {
    json_t *out = NULL;
    qun_err_t err;
    char idx[64];
    CHECK(qun_ledger_view_history(db, &member, g1, 0, 50, &out, &err) == QUN_OK);
    history_indexes(out, idx, sizeof idx);
    CHECK_STR(idx, "0,2"); /* 4 is found by its column but its text is about g2 */
    CHECK_STR(json_string_value(json_object_get(out, "group")), g1);
    CHECK(json_is_null(json_object_get(out, "next_cursor")));
    json_decref(out);
    CHECK(qun_ledger_view_history(db, &member, g1, 1, 1, &out, &err) == QUN_OK); /* from the cursor */
    history_indexes(out, idx, sizeof idx);
    CHECK_STR(idx, "2");
    CHECK_STR(json_string_value(json_object_get(out, "next_cursor")), "3");
    json_decref(out);
    CHECK(qun_ledger_view_history(db, &other, g1, 0, 50, &out, &err) == QUN_GROUP_NOT_FOUND);
    CHECK(qun_ledger_view_history(db, &admin, g1, 0, 50, &out, &err) == QUN_GROUP_NOT_FOUND);
    CHECK(qun_ledger_view_history(db, &member, "g_none", 0, 50, &out, &err) == QUN_GROUP_NOT_FOUND);

    /* Gone: the owner keeps reading the record, members get GROUP_GONE. */
    exec("UPDATE groups SET state = 'dissolved' WHERE gid = $1 AND id > $2", g1, 0);
    CHECK(qun_ledger_view_history(db, &member, g1, 0, 50, &out, &err) == QUN_GROUP_GONE);
    CHECK(qun_ledger_view_history(db, &owner, g1, 0, 50, &out, &err) == QUN_OK);
    history_indexes(out, idx, sizeof idx);
    CHECK_STR(idx, "0,2");
    json_decref(out);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    setup();
    RUN(test_entry_visibility);
    RUN(test_shown_from_text);
    RUN(test_entry_ranges);
    RUN(test_nodes_and_proofs);
    RUN(test_history);
    qun_db_close(db);
    return unit_done("test_core_ledger_view");
}
