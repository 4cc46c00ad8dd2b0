/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/message.c's recall and removal on an in-memory store: the
 * author recalls within the policy's window and not after it, the ranks decide who
 * removes whose message (and a removal needs a reason), a recall deletes the text from
 * the row and from the message.created event, appends message.recalled, answers the
 * same state again, and counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/policy.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t owner, admin, alice, bob, outsider;
static char g1[QUN_ID_MAX];
static qun_group_t grp;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static int64_t post(const qun_actor_t *a, const char *text) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_message_post(db, a, g1, text, &out, &err) == QUN_OK);
    int64_t seq = json_integer_value(json_object_get(out, "seq"));
    json_decref(out);
    return seq;
}

/* qun_message_recall's rc; *out freed here. */
static qun_rc recall(const qun_actor_t *a, int64_t seq, const char *reason) {
    json_t *out = NULL;
    qun_err_t err;
    qun_rc rc = qun_message_recall(db, a, g1, seq, reason, &out, &err);
    CHECK((rc == QUN_OK) == (out != NULL));
    json_decref(out);
    return rc;
}

/* The integer sql (a literal: the store caches statements by address) answers for $1 = a. */
static int64_t rows(const char *sql, int64_t a) {
    return unit_count_i(db, sql, a);
}

static void setup(void) {
    json_t *out;
    qun_err_t err;
    user("owner", &owner);
    user("admin", &admin);
    user("alice", &alice);
    user("bob", &bob);
    user("outsider", &outsider);
    CHECK(qun_group_create(db, &owner, "one", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(g1, sizeof g1, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_group_load(db, g1, &grp, &err) == QUN_OK);
    CHECK(qun_member_add(db, &owner, g1, admin.openid, "admin", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_member_add(db, &owner, g1, alice.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_member_add(db, &owner, g1, bob.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
}

static void test_author_recalls_within_window(void) {
    int64_t seq = post(&alice, "secret words");
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_message_recall(db, &alice, g1, seq, NULL, &out, &err) == QUN_OK);
    CHECK(json_is_true(json_object_get(out, "recalled")) && json_is_false(json_object_get(out, "removed")));
    CHECK(!json_object_get(out, "text") && !json_object_get(out, "reason"));
    CHECK_STR(json_string_value(json_object_get(out, "by")), alice.openid);
    json_decref(out);
    /* The text is gone from the row and from the event that announced it. */
    CHECK(rows("SELECT COUNT(*) FROM messages WHERE seq = $1 AND body = '' AND recalled_at IS NOT NULL",
               seq) == 1);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM events WHERE payload LIKE '%secret words%'") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM events WHERE topic = 'message.recalled'") == 1);
    /* Again: the same state, no second event. */
    CHECK(recall(&alice, seq, NULL) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM events WHERE topic = 'message.recalled'") == 1);
    /* The list shows it without text. */
    CHECK(qun_message_list(db, &bob, g1, seq - 1, 1, &out, &err) == QUN_OK);
    json_t *item = json_array_get(json_object_get(out, "items"), 0);
    CHECK(item && json_is_true(json_object_get(item, "recalled")) && !json_object_get(item, "text"));
    json_decref(out);
}

static void test_window_passes(void) {
    int64_t seq = post(&alice, "late");
    qun_clock_advance(121);
    CHECK(recall(&alice, seq, NULL) == QUN_RECALL_WINDOW_PASSED);
    CHECK(rows("SELECT COUNT(*) FROM messages WHERE seq = $1 AND body = 'late'", seq) == 1);
    /* An admin still removes it, with a reason. */
    CHECK(recall(&admin, seq, NULL) == QUN_FIELD_MISSING);
    CHECK(recall(&admin, seq, "off topic") == QUN_OK);
    CHECK(rows("SELECT COUNT(*) FROM messages WHERE seq = $1 AND recall_reason = 'off topic'", seq) == 1);
}

static void test_ranks(void) {
    int64_t by_bob = post(&bob, "bob"), by_admin = post(&admin, "admin"), by_owner = post(&owner, "owner");
    CHECK(recall(&alice, by_bob, "mean") == QUN_FORBIDDEN_ROLE);   /* member on a member's */
    CHECK(recall(&admin, by_owner, "mean") == QUN_FORBIDDEN_ROLE); /* admin on the owner's */
    CHECK(recall(&owner, by_admin, "spam") == QUN_OK);             /* owner on an admin's */
    CHECK(recall(&admin, by_bob, "spam") == QUN_OK);               /* admin on a member's */
    qun_clock_advance(3600);
    CHECK(recall(&owner, by_owner, NULL) == QUN_OK); /* one's own, any time, as the owner */
    CHECK(recall(&outsider, by_bob, NULL) == QUN_GROUP_NOT_FOUND);
    CHECK(recall(&bob, 9999, NULL) == QUN_MESSAGE_NOT_FOUND);
    CHECK(recall(&bob, 0, NULL) == QUN_MESSAGE_NOT_FOUND);
    int64_t n = -1;
    qun_err_t err;
    CHECK(qun_message_recalled_count(db, grp.id, &n, &err) == QUN_OK && n == 5);
}

int main(void) {
    qun_err_t err;
    qun_policy_t *policy = NULL;
    CHECK(qun_policy_builtin(&policy) == QUN_OK);
    qun_core_cfg.policy = policy;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    setup();
    RUN(test_author_recalls_within_window);
    RUN(test_window_passes);
    RUN(test_ranks);
    qun_db_close(db);
    qun_policy_free(policy);
    return unit_done("test_core_message");
}
