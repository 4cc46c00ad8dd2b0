/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/idempotency.c on an in-memory store: an unknown key, a stored
 * answer replayed to the same request, refused to another, kept apart per user, a
 * second store of one key refused as in flight, an empty answer, and a key forgotten
 * once older than idempotency_ttl though its row is still there. */
#include <stdlib.h>

#include "qun/core.h"
#include "qun/idempotency.h"
#include "qun/util.h"
#include "unit.h"
#include "unit_store.h"

static qun_db_t *db;

#define DIGEST_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_unknown_key(void) {
    qun_err_t err;
    qun_idem_answer_t a = {0, NULL};
    bool found = true;
    CHECK(qun_idem_get(db, 1, "k-unknown", DIGEST_A, &found, &a, &err) == QUN_OK);
    CHECK(!found && a.body == NULL);
}

static void test_put_then_replay(void) {
    qun_err_t err;
    qun_idem_answer_t a = {0, NULL};
    bool found = false;
    CHECK(qun_idem_lock(db, 1, "k1", &err) == QUN_OK); /* a no-op on SQLite's single writer */
    CHECK(qun_idem_put(db, 1, "k1", DIGEST_A, 201, "{\"id\":\"g_1\"}", &err) == QUN_OK);
    CHECK(qun_idem_get(db, 1, "k1", DIGEST_A, &found, &a, &err) == QUN_OK);
    CHECK(found && a.status == 201);
    CHECK(a.body && strcmp(a.body, "{\"id\":\"g_1\"}") == 0);
    free(a.body);
}

static void test_reused_for_another_request(void) {
    qun_err_t err;
    qun_idem_answer_t a = {0, NULL};
    bool found = true;
    CHECK(qun_idem_get(db, 1, "k1", DIGEST_B, &found, &a, &err) == QUN_IDEMPOTENCY_KEY_REUSED);
    CHECK(!found && a.body == NULL);
    CHECK(strstr(err.msg, "another request") != NULL);
}

static void test_keys_are_per_user(void) {
    qun_err_t err;
    qun_idem_answer_t a = {0, NULL};
    bool found = true;
    CHECK(qun_idem_get(db, 2, "k1", DIGEST_B, &found, &a, &err) == QUN_OK && !found);
    CHECK(qun_idem_get(db, 0, "k1", DIGEST_A, &found, &a, &err) == QUN_OK && !found);
    CHECK(qun_idem_put(db, 2, "k1", DIGEST_B, 200, "{}", &err) == QUN_OK);
    CHECK(qun_idem_get(db, 2, "k1", DIGEST_B, &found, &a, &err) == QUN_OK && found && a.status == 200);
    free(a.body);
}

/* A key stored since the lookup: the second run must be undone, not answered twice. */
static void test_second_put_in_flight(void) {
    qun_err_t err;
    qun_idem_answer_t a = {0, NULL};
    bool found = false;
    CHECK(qun_idem_put(db, 1, "k1", DIGEST_A, 500, "other", &err) == QUN_IDEMPOTENCY_KEY_IN_FLIGHT);
    CHECK(qun_idem_put(db, 1, "k1", DIGEST_B, 201, "other", &err) == QUN_IDEMPOTENCY_KEY_IN_FLIGHT);
    CHECK(qun_idem_get(db, 1, "k1", DIGEST_A, &found, &a, &err) == QUN_OK && found);
    CHECK(a.status == 201 && strcmp(a.body, "{\"id\":\"g_1\"}") == 0); /* the first answer stays */
    free(a.body);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM idempotency") == 2);
}

/* A 204 has no body: it is stored and replayed as "". */
static void test_empty_answer(void) {
    qun_err_t err;
    qun_idem_answer_t a = {0, NULL};
    bool found = false;
    CHECK(qun_idem_put(db, 0, "k-anon", DIGEST_A, 204, NULL, &err) == QUN_OK);
    CHECK(qun_idem_get(db, 0, "k-anon", DIGEST_A, &found, &a, &err) == QUN_OK && found);
    CHECK(a.status == 204 && a.body && a.body[0] == '\0');
    free(a.body);
}

/* Past idempotency_ttl a key is forgotten before housekeeping deletes its row: not found,
 * for any request, and a new answer takes its place; a fresh one is kept. */
static void test_forgotten_after_ttl(void) {
    qun_err_t err;
    qun_idem_answer_t a = {0, NULL};
    bool found = true;
    CHECK(qun_idem_put(db, 3, "k-old", DIGEST_A, 201, "first", &err) == QUN_OK);
    qun_clock_advance(qun_core_cfg.idempotency_ttl - 1);
    CHECK(qun_idem_get(db, 3, "k-old", DIGEST_A, &found, &a, &err) == QUN_OK && found);
    free(a.body);
    a.body = NULL;
    CHECK(qun_idem_put(db, 3, "k-old", DIGEST_B, 201, "second", &err) == QUN_IDEMPOTENCY_KEY_IN_FLIGHT);
    qun_clock_advance(2);
    CHECK(qun_idem_get(db, 3, "k-old", DIGEST_B, &found, &a, &err) == QUN_OK && !found && !a.body);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM idempotency WHERE user_id = 3") == 1); /* not deleted */
    CHECK(qun_idem_put(db, 3, "k-old", DIGEST_B, 200, "second", &err) == QUN_OK);
    CHECK(qun_idem_get(db, 3, "k-old", DIGEST_B, &found, &a, &err) == QUN_OK && found);
    CHECK(a.status == 200 && a.body && strcmp(a.body, "second") == 0);
    free(a.body);
    CHECK(qun_idem_get(db, 3, "k-old", DIGEST_A, &found, &a, &err) == QUN_IDEMPOTENCY_KEY_REUSED);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(test_unknown_key);
    RUN(test_put_then_replay);
    RUN(test_reused_for_another_request);
    RUN(test_keys_are_per_user);
    RUN(test_second_put_in_flight);
    RUN(test_empty_answer);
    RUN(test_forgotten_after_ttl);
    qun_db_close(db);
    return unit_done("test_core_idempotency");
}
