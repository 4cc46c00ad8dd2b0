/* SPDX-License-Identifier: MIT */
/* Schema migrations, for both backends: every migration a database lacks, in order,
 * in one transaction.  An upgrade over several versions is applied whole or not at all,
 * and the applied versions are read in one query instead of one per migration.  (The
 * DDL itself is most of a new database's migration time, one commit or many.)  Several
 * qund starting at once on one database migrate it once: SQLite's BEGIN IMMEDIATE and
 * PostgreSQL's advisory lock, taken first, make the check and the migrations one step. */
#include <stdio.h>
#include <stdlib.h>

#include "qun/store.h"
#include "qun/util.h"
#include "store_internal.h"

#define MIGRATE_LOCK 715001 /* PostgreSQL advisory lock: one instance migrates at a time */

typedef struct {
    const qun_migration_t *list;
    size_t n;
    const char *create;
} migration_run_t;

/* Mark in applied[] the migrations of run that schema_migrations lists. */
static qun_rc read_applied(qun_db_t *db, const migration_run_t *run, bool *applied, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT version FROM schema_migrations", "");
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        int64_t v = qun_q_col_int(q, 0);
        for (size_t i = 0; i < run->n; i++)
            if (run->list[i].version == v) applied[i] = true;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc migrate_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    const migration_run_t *run = arg;
    qun_rc rc = qun_db_xlock(db, MIGRATE_LOCK, err);
    if (rc == QUN_OK) rc = qun_db_exec(db, run->create, err);
    bool *applied = rc == QUN_OK ? calloc(run->n ? run->n : 1, sizeof *applied) : NULL;
    if (rc == QUN_OK && !applied) rc = qun_fail(err, QUN_NOMEM, "out of memory");
    if (rc == QUN_OK) rc = read_applied(db, run, applied, err);
    for (size_t i = 0; rc == QUN_OK && i < run->n; i++) {
        const qun_migration_t *m = &run->list[i];
        if (applied[i]) continue;
        rc = qun_db_exec(db, m->sql, err);
        if (rc == QUN_OK) {
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, $3)",
                            "isi", (int64_t)m->version, m->name, qun_now());
            if (rc == QUN_DONE) rc = QUN_OK;
        }
        if (rc != QUN_OK) {
            char why[200];
            snprintf(why, sizeof why, "%.180s", err ? err->msg : "");
            rc = qun_fail(err, QUN_STORE, "migration %s failed: %.180s", m->name, why);
        }
    }
    free(applied);
    return rc;
}

qun_rc qun_store_migrate(qun_db_t *db, const qun_migration_t *list, size_t n, const char *create,
                         qun_err_t *err) {
    migration_run_t run = {list, n, create};
    return qun_db_txn(db, migrate_txn, &run, err);
}
