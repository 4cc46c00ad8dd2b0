/* SPDX-License-Identifier: MIT */
/* The raw SQLite baseline: the cheapest durable way to store the rows qun stores,
 * i.e. prepared INSERTs into a table shaped like qun's messages table, in WAL mode
 * with synchronous=FULL, committed every `batch` rows.  No savepoints, no sequence
 * counter, no access check: this is the floor the server is measured against. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench.h"

/* The shape of messages in src/store/sql/sqlite/0001_init.sql, including the
 * UNIQUE (group_id, seq) index every insert has to maintain.  The foreign keys are
 * left out: the baseline has no users or groups rows to point at. */
static const char schema[] = "CREATE TABLE messages ("
                             " id INTEGER PRIMARY KEY,"
                             " group_id INTEGER NOT NULL,"
                             " seq INTEGER NOT NULL,"
                             " author_id INTEGER NOT NULL,"
                             " kind TEXT NOT NULL DEFAULT 'text',"
                             " body TEXT NOT NULL,"
                             " created_at INTEGER NOT NULL,"
                             " UNIQUE (group_id, seq))";

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(sqlite3 *h, char *err, size_t n, const char *what) {
    snprintf(err, n, "%s: %s", what, h ? sqlite3_errmsg(h) : "out of memory");
    return -1;
}

int raw_insert_run(const char *path, int batch, double seconds, raw_result_t *out, char *err,
                   size_t err_size) {
    char side[1100];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);

    sqlite3 *h = NULL;
    sqlite3_stmt *ins = NULL;
    int rc = -1;
    if (sqlite3_open(path, &h) != SQLITE_OK) {
        fail(h, err, err_size, "open");
        goto out;
    }
    /* The same pragmas qun_db_open applies, so the durability bought is the same. */
    if (sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL) ||
        sqlite3_exec(h, schema, NULL, NULL, NULL)) {
        fail(h, err, err_size, "schema");
        goto out;
    }
    if (sqlite3_prepare_v2(h,
                           "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &ins, NULL) != SQLITE_OK) {
        fail(h, err, err_size, "prepare");
        goto out;
    }
    int64_t seq = 0, commits = 0;
    double t0 = bench_now(), t;
    do {
        if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
            fail(h, err, err_size, "begin");
            goto out;
        }
        for (int i = 0; i < batch; i++) {
            sqlite3_bind_int64(ins, 1, 1);
            sqlite3_bind_int64(ins, 2, ++seq);
            sqlite3_bind_int64(ins, 3, 1);
            sqlite3_bind_text(ins, 4, BENCH_TEXT, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 5, (int64_t)time(NULL));
            if (sqlite3_step(ins) != SQLITE_DONE) {
                fail(h, err, err_size, "insert");
                goto out;
            }
            sqlite3_reset(ins);
        }
        if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            fail(h, err, err_size, "commit");
            goto out;
        }
        commits++;
        t = bench_now();
    } while (t - t0 < seconds);
    out->rows = seq;
    out->commits = commits;
    out->seconds = t - t0;
    rc = 0;
out:
    sqlite3_finalize(ins);
    sqlite3_close(h);
    return rc;
}
