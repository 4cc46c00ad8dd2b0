/* SPDX-License-Identifier: MIT */
/* raw_delete DIR ROWS: the baseline of the purge benchmark.  Fills a fresh SQLite
 * file (WAL, synchronous=FULL, as qun_db_open sets) with ROWS messages of one group
 * and a few of another, in a table shaped like qun's messages (with its
 * UNIQUE (group_id, seq) index), then deletes the group's rows 500 per transaction,
 * the purge's batch size, until none is left.  Prints `key=value` lines:
 *
 *   raw_delete      the baseline: every batch selects its 500 rows in the order of
 *                   the (group_id, seq) index, so a batch costs the same at any size
 *   batch_cost      context, measured on the full table before the baseline run:
 *                   milliseconds per batch of the index-ordered statement and of the
 *                   statement jobs/purge.c runs (`... ORDER BY id LIMIT 500`, which the
 *                   index cannot deliver in order: SQLite sorts every remaining row
 *                   of the group in a temporary B-tree on each batch) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench.h"

#define BATCH 500
#define PROBES 5 /* batches timed per statement for batch_cost */

static const char index_order[] =
    "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE group_id = 1 ORDER BY seq LIMIT 500)";
static const char purge_order[] =
    "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE group_id = 1 ORDER BY id LIMIT 500)";

static void die(sqlite3 *h, const char *what) {
    fprintf(stderr, "raw_delete: %s: %s\n", what, h ? sqlite3_errmsg(h) : "out of memory");
    exit(1);
}

/* One durable batch; returns the rows deleted. */
static int batch(sqlite3 *h, sqlite3_stmt *del) {
    if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) die(h, "begin");
    if (sqlite3_step(del) != SQLITE_DONE) die(h, "delete");
    sqlite3_reset(del);
    int n = sqlite3_changes(h);
    if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die(h, "commit");
    return n;
}

static double probe(sqlite3 *h, sqlite3_stmt *del) {
    double t0 = bench_now();
    for (int i = 0; i < PROBES; i++)
        batch(h, del);
    return (bench_now() - t0) / PROBES * 1e3;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: raw_delete DIR ROWS\n");
        return 2;
    }
    long long rows = atoll(argv[2]);
    char path[1024], side[1100];
    snprintf(path, sizeof path, "%s/raw_delete.db", argv[1]);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);

    sqlite3 *h = NULL;
    sqlite3_stmt *ins, *del_index, *del_purge;
    if (sqlite3_open(path, &h) != SQLITE_OK) die(h, "open");
    if (sqlite3_exec(h,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE messages (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL,"
                     " seq INTEGER NOT NULL, author_id INTEGER NOT NULL, kind TEXT NOT NULL DEFAULT 'text',"
                     " body TEXT NOT NULL, created_at INTEGER NOT NULL, UNIQUE (group_id, seq))",
                     NULL, NULL, NULL) != SQLITE_OK)
        die(h, "schema");
    if (sqlite3_prepare_v2(h,
                           "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                           "VALUES (?1, ?2, 1, ?3, 0)",
                           -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, index_order, -1, &del_index, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, purge_order, -1, &del_purge, NULL) != SQLITE_OK)
        die(h, "prepare");
    /* The group to purge, interleaved with another group's rows so its ids are not
     * one contiguous run (the server's groups write concurrently). */
    double t0 = bench_now();
    sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
    char body[96];
    for (long long i = 1; i <= rows; i++) {
        for (int g = 1; g <= (i % 10 == 0 ? 2 : 1); g++) {
            snprintf(body, sizeof body, "bulk message %lld", i);
            sqlite3_bind_int(ins, 1, g);
            sqlite3_bind_int64(ins, 2, i);
            sqlite3_bind_text(ins, 3, body, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(ins) != SQLITE_DONE) die(h, "insert");
            sqlite3_reset(ins);
        }
    }
    if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die(h, "seed commit");
    double seed = bench_now() - t0;

    /* Context first, while the group is full: both statements, a few batches each. */
    double ms_purge = probe(h, del_purge), ms_index = probe(h, del_index);
    printf("batch_cost rows_left=%lld index_order_ms=%.2f purge_order_ms=%.2f\n", rows, ms_index, ms_purge);

    long long deleted = 0, commits = 0;
    t0 = bench_now();
    for (int n = BATCH; n == BATCH; commits++) {
        n = batch(h, del_index);
        deleted += n;
    }
    double t = bench_now() - t0;
    printf("raw_delete rows=%lld batch=%d commits=%lld seconds=%.3f rows_per_s=%.0f seed_seconds=%.1f\n",
           deleted, BATCH, commits, t, (double)deleted / t, seed);
    sqlite3_finalize(ins);
    sqlite3_finalize(del_index);
    sqlite3_finalize(del_purge);
    sqlite3_close(h);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return 0;
}
