/* SPDX-License-Identifier: MIT */
/* Unit tests of src/store/store_sqlite.c: migrations, $N parameter mapping (also out
 * of order and repeated), the statement cache, transactions and savepoints. */
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
    qun_db_close(db);
    qun_db_close(NULL);
    return unit_done("store/store_sqlite");
}
