/* SPDX-License-Identifier: MIT */
/* Unit tests of src/store/store_sqlite.c: migrations, $N parameter mapping (also out
 * of order and repeated), the statement cache, transactions and savepoints, keys read
 * after an INSERT, and what the schema makes a post's rows cost. */
#include "qun/store.h"
#include "unit.h"

static qun_rc txn_insert(qun_db_t *db, void *arg, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err, "INSERT INTO t(a, b) VALUES ($1, $2)", "is", (int64_t)7, "seven");
    if (rc != QUN_DONE) return rc;
    return *(int *)arg ? qun_fail(err, QUN_BAD_REQUEST, "roll back please") : QUN_OK;
}

static qun_db_t *db;

/* Every migration is applied once: a second pass changes nothing. */
static void migrations(void) {
    qun_err_t err;
    qun_q_t *q;
    CHECK(qun_db_schema_version(db) >= 1);
    CHECK(qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM schema_migrations", "") == QUN_ROW);
    int64_t n = qun_q_col_int(q, 0);
    qun_q_done(q);
    CHECK(n >= 1);
}

/* Parameters used out of order and twice still bind by number. */
static void parameters_by_number(void) {
    qun_err_t err;
    qun_q_t *q;
    CHECK(qun_db_exec(db, "CREATE TABLE t(a INTEGER, b TEXT)", &err) == QUN_OK);
    CHECK(qun_db_run(db, NULL, &err, "INSERT INTO t(b, a) VALUES ($2 || $2, $1)", "is", (int64_t)1, "x") ==
          QUN_DONE);
    CHECK(qun_db_run(db, &q, &err, "SELECT a, b FROM t WHERE a = $1", "i", (int64_t)1) == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 1);
    CHECK_STR(qun_q_col_text(q, 1), "xx");
    qun_q_done(q);
}

/* The same literal reuses its cached statement, with fresh bindings. */
static void statement_cache(void) {
    qun_err_t err;
    const char *sql = "SELECT COUNT(*) FROM t WHERE a = $1";
    qun_q_t *q1, *q2;
    CHECK(qun_q_prepare(db, sql, &q1, &err) == QUN_OK);
    CHECK(qun_q_prepare(db, sql, &q2, &err) == QUN_OK);
    CHECK(q1 == q2);
}

/* NULL binding via 'z' and 'n'. */
static void null_bindings(void) {
    qun_err_t err;
    qun_q_t *q;
    CHECK(qun_db_run(db, NULL, &err, "INSERT INTO t(a, b) VALUES ($1, $2)", "zn", (int64_t)0) == QUN_DONE);
    CHECK(qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM t WHERE a IS NULL AND b IS NULL", "") == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 1);
    qun_q_done(q);
}

/* A failing transaction leaves nothing behind; a good one commits. */
static void transactions(void) {
    qun_err_t err;
    qun_q_t *q;
    int fail = 1;
    CHECK(qun_db_txn(db, txn_insert, &fail, &err) == QUN_BAD_REQUEST);
    CHECK(qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM t WHERE a = 7", "") == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 0);
    qun_q_done(q);
    fail = 0;
    CHECK(qun_db_txn(db, txn_insert, &fail, &err) == QUN_OK);
    CHECK(qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM t WHERE a = 7", "") == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 1);
    qun_q_done(q);
}

/* Savepoints: a released-without-keep savepoint undoes only its own work. */
static void savepoints(void) {
    qun_err_t err;
    qun_q_t *q;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_db_savepoint(db, &err) == QUN_OK);
    CHECK(qun_db_run(db, NULL, &err, "INSERT INTO t(a) VALUES (100)", "") == QUN_DONE);
    CHECK(qun_db_release(db, true, &err) == QUN_OK);
    CHECK(qun_db_savepoint(db, &err) == QUN_OK);
    CHECK(qun_db_run(db, NULL, &err, "INSERT INTO t(a) VALUES (200)", "") == QUN_DONE);
    CHECK(qun_db_release(db, false, &err) == QUN_OK);
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM t WHERE a IN (100, 200)", "") == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 1);
    qun_q_done(q);
}

/* qun_db_insert_id answers each row's key; an INSERT that writes no row fails rather
 * than answer the key of the row before. */
static void insert_id(void) {
    qun_err_t err;
    int64_t id = -1;
    CHECK(qun_db_exec(db, "CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT UNIQUE)", &err) == QUN_OK);
    CHECK(QUN_DB_INSERT_ID(db, &id, &err, "INSERT INTO k(v) VALUES ($1)", "s", "a") == QUN_OK);
    CHECK(id == 1);
    CHECK(qun_db_run(db, NULL, &err, "INSERT INTO t(a) VALUES (300)", "") == QUN_DONE);
    CHECK(QUN_DB_INSERT_ID(db, &id, &err, "INSERT INTO k(v) VALUES ($1)", "s", "b") == QUN_OK);
    CHECK(id == 2);
    CHECK(QUN_DB_INSERT_ID(db, &id, &err, "INSERT OR IGNORE INTO k(v) VALUES ($1)", "s", "a") == QUN_STORE);
    CHECK(id == 0);
    CHECK(QUN_DB_INSERT_ID(db, &id, &err, "INSERT INTO k(v) VALUES ($1)", "s", "b") == QUN_STORE);
    CHECK(strstr(err.msg, "UNIQUE") != NULL);
}

/* A message row is written without a temporary index (the media_msgtype CHECK tests with
 * `=` since migration 0040) and fires no trigger (0041: a trigger would make SQLite copy
 * every page the row touches into a statement journal first), and the CHECK still
 * refuses a type it does not list. */
static void message_row_without_temporary_index(void) {
    qun_err_t err;
    qun_q_t *q;
    int ops = 0, ephemeral = 0, programs = 0;
    qun_rc rc =
        qun_db_run(db, &q, &err,
                   "EXPLAIN INSERT INTO messages(group_id, seq, author_id, body, created_at, msgtype, "
                   "media_msgtype) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                   "iiisisn", (int64_t)1, (int64_t)1, (int64_t)1, "hi", (int64_t)1, "m.notice");
    for (; rc == QUN_ROW; rc = qun_q_step(q, &err)) {
        ops++;
        if (strcmp(qun_q_col_text(q, 1), "OpenEphemeral") == 0) ephemeral++;
        if (strcmp(qun_q_col_text(q, 1), "Program") == 0) programs++;
    }
    CHECK(rc == QUN_DONE);
    CHECK(ops > 10);
    CHECK(ephemeral == 0);
    CHECK(programs == 0);
    CHECK(qun_db_run(db, NULL, &err,
                     "INSERT INTO messages(group_id, seq, author_id, body, created_at, media_msgtype) "
                     "VALUES (1, 1, 1, 'hi', 1, $1)",
                     "s", "m.sticker") == QUN_STORE);
    CHECK(strstr(err.msg, "CHECK") != NULL);
}

/* An event addressed to no one, as every message's is, adds no entry to events_user
 * (migration 0042), and a user's events are still read through it. */
static void events_user_partial(void) {
    qun_err_t err;
    qun_q_t *q;
    CHECK(qun_db_exec(db,
                      "INSERT INTO events(topic, group_id, user_id, payload, created_at) VALUES "
                      "('message.created', 1, NULL, '{}', 0), ('message.created', 1, NULL, '{}', 0), "
                      "('session.revoked', NULL, 7, '{}', 0)",
                      &err) == QUN_OK);
    CHECK(qun_db_run(db, &q, &err,
                     "SELECT SUM(ncell) FROM dbstat WHERE name = 'events_user' AND pagetype = 'leaf'",
                     "") == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 1);
    qun_q_done(q);
    bool used = false;
    qun_rc rc = qun_db_run(db, &q, &err,
                           "EXPLAIN QUERY PLAN SELECT id FROM events WHERE id > $1 AND id <= $2 AND "
                           "(user_id = $3 OR group_id IN (SELECT group_id FROM members WHERE user_id = $3)) "
                           "ORDER BY id",
                           "iii", (int64_t)0, (int64_t)10, (int64_t)7);
    for (; rc == QUN_ROW; rc = qun_q_step(q, &err))
        if (strstr(qun_q_col_text(q, 3), "INDEX events_user")) used = true;
    CHECK(rc == QUN_DONE);
    CHECK(used);
}

/* Constraint violations are hard errors with a message, not crashes; bad SQL is
 * reported at prepare time. */
static void errors(void) {
    qun_err_t err;
    CHECK(qun_db_run(db, NULL, &err, "INSERT INTO users(openid) VALUES ($1)", "s", "x") == QUN_STORE);
    CHECK(strlen(err.msg) > 0);
    CHECK(qun_db_run(db, NULL, &err, "SELEC nonsense", "") == QUN_STORE);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(migrations);
    RUN(parameters_by_number);
    RUN(statement_cache);
    RUN(null_bindings);
    RUN(transactions);
    RUN(savepoints);
    RUN(errors);
    RUN(insert_id);
    RUN(message_row_without_temporary_index);
    RUN(events_user_partial);
    qun_db_close(db);
    qun_db_close(NULL);
    return unit_done("store/store_sqlite");
}
