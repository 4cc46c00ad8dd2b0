/* SPDX-License-Identifier: MIT */
/* Unit tests of src/store/migrate.c: a new database gets every migration in one go, a
 * second run changes nothing, a forgotten version runs again, and a failing migration
 * undoes the whole run, naming itself.  On SQLite (in memory), and on PostgreSQL too when
 * QUN_TEST_PG holds a connection string (in a schema of its own, dropped first). */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "unit.h"
#include "unit_store.h"

static qun_db_t *db;
static const char *create;

/* Each would fail if it ran twice (no IF NOT EXISTS). */
static const qun_migration_t TWO[] = {
    {9001, "9001_a", "CREATE TABLE unit_a(x INTEGER); INSERT INTO unit_a(x) VALUES (1)"},
    {9002, "9002_b", "CREATE TABLE unit_b(y INTEGER)"},
};
/* TWO and two more, the second of which fails. */
static const qun_migration_t FOUR_BAD[] = {
    TWO[0],
    TWO[1],
    {9003, "9003_c", "CREATE TABLE unit_c(z INTEGER)"},
    {9004, "9004_bad", "ALTER TABLE unit_nowhere ADD COLUMN w INTEGER"},
};

static int64_t versions(void) {
    return unit_count(db, "SELECT COUNT(*) FROM schema_migrations");
}

static void new_database_gets_all(void) {
    qun_err_t err;
    CHECK(qun_store_migrate(db, TWO, 2, create, &err) == QUN_OK);
    CHECK(versions() == 2);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM unit_a") == 1);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM unit_b") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 9002 AND name = '9002_b'") ==
          1);
}

static void second_run_changes_nothing(void) {
    qun_err_t err;
    CHECK(qun_store_migrate(db, TWO, 2, create, &err) == QUN_OK);
    CHECK(versions() == 2);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM unit_a") == 1); /* 9001's insert did not run again */
}

/* As an operator (or test_45) does to run a migration again: its row deleted. */
static void forgotten_version_runs_again(void) {
    qun_err_t err;
    CHECK(qun_db_exec(db, "DROP TABLE unit_b", &err) == QUN_OK);
    CHECK(qun_db_exec(db, "DELETE FROM schema_migrations WHERE version = 9002", &err) == QUN_OK);
    CHECK(qun_store_migrate(db, TWO, 2, create, &err) == QUN_OK);
    CHECK(versions() == 2);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM unit_b") == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM unit_a") == 1);
}

static void failure_undoes_the_whole_run(void) {
    qun_err_t err;
    memset(&err, 0, sizeof err);
    CHECK(qun_store_migrate(db, FOUR_BAD, 4, create, &err) == QUN_STORE);
    CHECK(strstr(err.msg, "migration 9004_bad failed") != NULL);
    CHECK(versions() == 2);
    /* 9003 ran before 9004 failed, in the same transaction: gone with it. */
    CHECK(unit_count(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 9003") == 0);
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, &err, "SELECT COUNT(*) FROM unit_c", "");
    if (rc == QUN_ROW) qun_q_done(q);
    CHECK(rc == QUN_STORE);
    /* The database is usable, and the good part applies once the bad one is left out. */
    CHECK(qun_store_migrate(db, FOUR_BAD, 3, create, &err) == QUN_OK);
    CHECK(versions() == 3);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM unit_c") == 0);
}

static void run_all(void) {
    RUN(new_database_gets_all);
    RUN(second_run_changes_nothing);
    RUN(forgotten_version_runs_again);
    RUN(failure_undoes_the_whole_run);
}

int main(void) {
    qun_err_t err;
    qun_store_init();
    create = QUN_SQLITE_MIGRATIONS_TABLE;
    CHECK(qun_db_open(":memory:", false, false, &db, &err) == QUN_OK);
    run_all();
    qun_db_close(db);
    const char *conn = getenv("QUN_TEST_PG");
    if (conn && *conn) {
        create = QUN_PG_MIGRATIONS_TABLE;
        CHECK(qun_db_open(conn, false, false, &db, &err) == QUN_OK);
        CHECK(qun_db_exec(db, "DROP SCHEMA IF EXISTS unit_migrate CASCADE", &err) == QUN_OK);
        CHECK(qun_db_exec(db, "CREATE SCHEMA unit_migrate", &err) == QUN_OK);
        CHECK(qun_db_exec(db, "SET search_path TO unit_migrate", &err) == QUN_OK);
        run_all();
        CHECK(qun_db_exec(db, "DROP SCHEMA unit_migrate CASCADE", &err) == QUN_OK);
        qun_db_close(db);
    } else {
        printf("store/migrate: QUN_TEST_PG not set, PostgreSQL cases skipped\n");
    }
    return unit_done("store/migrate");
}
