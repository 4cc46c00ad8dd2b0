/* SPDX-License-Identifier: MIT */
/* ledger_bench: the audit ledger's appends and proofs against baselines measured in
 * the same process on the same disk.  Every figure is printed as one `key=value`
 * line for bench/run.sh.
 *
 *   ledger_bench append DIR SECONDS
 *     append_writer64  qun_ledger_append, one append per writer operation, 64 submitter
 *                      threads on qun_writer_run (the shape of the server's governance
 *                      writes: each append shares a group commit with whatever else
 *                      is queued)
 *     append_bulk1000  qun_ledger_append, 1000 appends per transaction, one thread
 *     sha_leaf         baseline: SHA-256 leaf hashes (crypto_hash_sha256 of 0x00 ||
 *                      entry) of the very entry bytes the appends wrote, read back
 *     raw_batch64, raw_batch1000
 *                      context: raw SQLite inserts of the same rows an append writes
 *                      (the entry row, its leaf node and the parents it completes),
 *                      with the hashes precomputed, 64 and 1000 appends per COMMIT
 *
 *   ledger_bench proofs DIR ENTRIES SAMPLES
 *     build            ENTRIES appends through qun_ledger_append, 10 000 per
 *                      transaction, into a fresh file (the tree is real: every proof
 *                      measured afterwards is verified against the root)
 *                      (the file is then fsynced, so that the kernel's write-back of
 *                      a just-built ledger does not share the disk with the proofs)
 *     warm_nodes       the seconds of one read of the nodes table into the page cache
 *     lookup           baseline: one indexed point lookup of a random leaf node on a
 *                      plain sqlite3 read connection, per-call latency
 *     sha_entry        context: crypto_hash_sha256 of one entry, per-call latency
 *     inclusion, consistency
 *                      qun_ledger_inclusion / qun_ledger_consistency at size ENTRIES
 *                      for SAMPLES random indexes (old sizes), each inside one read
 *                      transaction on a read-only qun connection, as the server's
 *                      router wraps a request; also each proof's CPU time
 *                      (inclusion_cpu, consistency_cpu, lookup_cpu)
 *     lookup_cold, inclusion_cold
 *                      the same, the first SAMPLES on each connection: a server's
 *                      reader connections live as long as it runs, and the first
 *                      hundred or so proofs of one fill its cache of the tree's upper
 *                      levels (src/ledger/ledger.c); lookup, inclusion and
 *                      consistency are measured after them, on other random indexes
 *   BENCH_LEDGER_KEEP=1 keeps the built file and reuses it on the next run */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "bench.h"
#include "qun/core.h"
#include "qun/ledger.h"
#include "qun/util.h"
#include "qun/writer.h"

#define SUBMITTERS 64
#define POOL 4096 /* entries kept for the hashing and raw baselines */

static char group_gid[QUN_ID_MAX], actor_openid[QUN_ID_MAX];
static _Atomic int64_t appended, failures;
static double deadline;
static qun_writer_t *writer;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "ledger_bench: %s: %s\n", what, detail);
    exit(1);
}

/* One governance event shaped like the dissolution request's entry (the most common
 * entry with the largest field set): the same keys, so the same canonical JSON size. */
static qun_rc append_one(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)arg;
    json_t *f = json_pack("{s:s, s:s, s:i, s:I, s:b}", "messages", "delete", "confirmation", "confirm",
                          "approvals", 0, "delay_seconds", (json_int_t)172800, "notice", 0);
    int64_t idx;
    qun_rc rc = qun_ledger_append(db, "dissolution.requested", group_gid, actor_openid, "active", "pending",
                                  f, &idx, err);
    json_decref(f);
    return rc;
}

static qun_rc append_n(qun_db_t *db, int n, qun_err_t *err) {
    qun_rc rc = QUN_OK;
    for (int i = 0; i < n && rc == QUN_OK; i++)
        rc = append_one(db, NULL, err);
    return rc;
}

static qun_db_t *fresh_store(const char *dir, const char *name) {
    char path[1024], side[1100];
    qun_err_t err = {{0}, {0}};
    qun_db_t *db;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    if (qun_db_open(path, false, true, &db, &err) != QUN_OK) die("open", err.msg);
    return db;
}

/* ---- appends ---- */

static void *submitter(void *arg) {
    (void)arg;
    qun_err_t err;
    while (bench_now() < deadline) {
        if (qun_writer_run(writer, append_one, NULL, &err) == QUN_OK)
            atomic_fetch_add(&appended, 1);
        else if (atomic_fetch_add(&failures, 1) == 0)
            fprintf(stderr, "ledger_bench: append: %s\n", err.msg);
    }
    return NULL;
}

static void writer_phase(const char *dir, double seconds) {
    qun_err_t err = {{0}, {0}};
    qun_db_t *db = fresh_store(dir, "ledger_writer.db");
    if (qun_writer_start(db, 512, &writer, &err) != QUN_OK) die("writer", err.msg);
    pthread_t th[SUBMITTERS];
    uint64_t c0, o0, f0, c1, o1, f1;
    qun_writer_stats(writer, &c0, &o0, &f0);
    double t0 = bench_now();
    deadline = t0 + seconds;
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_create(&th[i], NULL, submitter, NULL);
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_join(th[i], NULL);
    double t = bench_now() - t0;
    qun_writer_stats(writer, &c1, &o1, &f1);
    qun_writer_stop(writer);
    if (atomic_load(&failures)) die("append_writer64", "appends failed");
    int64_t n = atomic_load(&appended);
    printf("append_writer64 threads=%d appends=%lld commits=%llu seconds=%.3f per_s=%.0f mean_batch=%.1f\n",
           SUBMITTERS, (long long)n, (unsigned long long)(c1 - c0), t, (double)n / t,
           c1 > c0 ? (double)(o1 - o0) / (double)(c1 - c0) : 0.0);
}

/* Bulk appends on a plain connection; returns the connection for reading back. */
static qun_db_t *bulk_phase(const char *dir, double seconds) {
    qun_err_t err = {{0}, {0}};
    qun_db_t *db = fresh_store(dir, "ledger_bulk.db");
    int64_t n = 0, commits = 0;
    double t0 = bench_now(), t;
    do {
        if (qun_db_exec(db, "BEGIN", &err) != QUN_OK || append_n(db, 1000, &err) != QUN_OK ||
            qun_db_exec(db, "COMMIT", &err) != QUN_OK)
            die("append_bulk1000", err.msg);
        n += 1000;
        commits++;
        t = bench_now();
    } while (t - t0 < seconds);
    printf("append_bulk1000 appends=%lld commits=%lld seconds=%.3f per_s=%.0f\n", (long long)n,
           (long long)commits, t - t0, (double)n / (t - t0));
    return db;
}

/* The first POOL entries of a ledger, as stored. */
static char **read_pool(qun_db_t *db, int *count, double *mean_bytes) {
    char **pool = calloc(POOL, sizeof *pool);
    qun_err_t err = {{0}, {0}};
    qun_q_t *q;
    int n = 0;
    size_t bytes = 0;
    qun_rc rc = qun_db_run(db, &q, &err, "SELECT entry FROM ledger_entries ORDER BY idx LIMIT $1", "i",
                           (int64_t)POOL);
    for (; rc == QUN_ROW; rc = qun_q_step(q, &err)) {
        pool[n] = strdup(qun_q_col_text(q, 0));
        bytes += strlen(pool[n++]);
    }
    if (rc != QUN_DONE || n == 0) die("read back", err.msg[0] ? err.msg : "no entries");
    *count = n;
    *mean_bytes = (double)bytes / n;
    return pool;
}

/* Baseline: RFC 6962 leaf hashes of the stored entry bytes, as fast as one thread goes. */
static void sha_phase(char **pool, int n, double mean_bytes, double seconds) {
    unsigned char h[QUN_HASH], acc = 0;
    int64_t done = 0;
    double t0 = bench_now(), t;
    do {
        for (int i = 0; i < 1024; i++, done++) {
            qun_merkle_leaf(h, pool[done % n], strlen(pool[done % n]));
            acc ^= h[0];
        }
        t = bench_now();
    } while (t - t0 < seconds);
    printf("sha_leaf hashes=%lld entry_bytes_mean=%.0f seconds=%.3f per_s=%.0f check=%u\n", (long long)done,
           mean_bytes, t - t0, (double)done / (t - t0), acc);
}

/* Context: the rows of n appends inserted with no reads, no JSON and no hashing,
 * into tables shaped like src/store/sql/sqlite/0002_ledger.sql. */
static void raw_phase(const char *dir, char **pool, int npool, int batch, double seconds) {
    char path[1024], side[1100];
    snprintf(path, sizeof path, "%s/ledger_raw%d.db", dir, batch);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    sqlite3 *h;
    sqlite3_stmt *ins_e, *ins_n;
    if (sqlite3_open(path, &h) != SQLITE_OK ||
        sqlite3_exec(
            h,
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
            "CREATE TABLE ledger_entries (idx INTEGER PRIMARY KEY, event TEXT NOT NULL,"
            " group_openid TEXT, actor_openid TEXT, entry TEXT NOT NULL, created_at INTEGER NOT NULL);"
            "CREATE INDEX ledger_entries_group ON ledger_entries(group_openid, idx);"
            "CREATE TABLE ledger_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL,"
            " hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;",
            NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h,
                           "INSERT INTO ledger_entries VALUES (?1, 'dissolution.requested', ?2, ?3, ?4, ?5)",
                           -1, &ins_e, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "INSERT INTO ledger_nodes VALUES (?1, ?2, ?3)", -1, &ins_n, NULL) != SQLITE_OK)
        die("raw ledger", sqlite3_errmsg(h));
    unsigned char hash[QUN_HASH];
    memset(hash, 0xab, sizeof hash);
    int64_t idx = 0, commits = 0, nodes = 0;
    double t0 = bench_now(), t;
    do {
        sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
        for (int i = 0; i < batch; i++, idx++) {
            sqlite3_bind_int64(ins_e, 1, idx);
            sqlite3_bind_text(ins_e, 2, group_gid, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_e, 3, actor_openid, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_e, 4, pool[idx % npool], -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins_e, 5, (int64_t)time(NULL));
            if (sqlite3_step(ins_e) != SQLITE_DONE) die("raw entry", sqlite3_errmsg(h));
            sqlite3_reset(ins_e);
            /* The leaf, then one parent per trailing 1 bit, exactly as an append writes. */
            for (int level = 0; level == 0 || ((idx >> (level - 1)) & 1); level++, nodes++) {
                sqlite3_bind_int(ins_n, 1, level);
                sqlite3_bind_int64(ins_n, 2, idx >> level);
                sqlite3_bind_blob(ins_n, 3, hash, QUN_HASH, SQLITE_STATIC);
                if (sqlite3_step(ins_n) != SQLITE_DONE) die("raw node", sqlite3_errmsg(h));
                sqlite3_reset(ins_n);
            }
        }
        if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) die("raw commit", sqlite3_errmsg(h));
        commits++;
        t = bench_now();
    } while (t - t0 < seconds);
    sqlite3_finalize(ins_e);
    sqlite3_finalize(ins_n);
    sqlite3_close(h);
    printf("raw_batch%d appends=%lld node_rows=%lld commits=%lld seconds=%.3f per_s=%.0f\n", batch,
           (long long)idx, (long long)nodes, (long long)commits, t - t0, (double)idx / (t - t0));
}

static int append_main(const char *dir, double seconds) {
    writer_phase(dir, seconds);
    qun_db_t *db = bulk_phase(dir, seconds);
    int npool;
    double mean_bytes;
    char **pool = read_pool(db, &npool, &mean_bytes);
    qun_db_close(db);
    sha_phase(pool, npool, mean_bytes, seconds / 2);
    raw_phase(dir, pool, npool, 64, seconds / 2);
    raw_phase(dir, pool, npool, 1000, seconds / 2);
    for (int i = 0; i < npool; i++)
        free(pool[i]);
    free(pool);
    return 0;
}

/* ---- proofs ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) { /* xorshift64*: reproducible indexes across runs */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* This thread's CPU time in seconds: on a machine shared with other jobs, a wait for the
 * CPU lands in the wall-clock latency but not here. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints name p50_us= p99_us= mean_us= over n per-call latencies (seconds); sorts lat. */
static void print_latency(const char *name, double *lat, int n, const char *extra) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += lat[i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    printf("%s samples=%d p50_us=%.2f p99_us=%.2f max_us=%.2f mean_us=%.2f%s\n", name, n, lat[n / 2] * 1e6,
           lat[(int)((double)n * 0.99)] * 1e6, lat[n - 1] * 1e6, sum / n * 1e6, extra);
}

static void build(const char *path, int64_t entries) {
    char side[1100];
    qun_err_t err = {{0}, {0}};
    qun_db_t *db;
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    if (qun_db_open(path, false, true, &db, &err) != QUN_OK) die("open", err.msg);
    double t0 = bench_now(), last = t0;
    for (int64_t n = 0; n < entries;) {
        int chunk = entries - n < 10000 ? (int)(entries - n) : 10000;
        if (qun_db_exec(db, "BEGIN", &err) != QUN_OK || append_n(db, chunk, &err) != QUN_OK ||
            qun_db_exec(db, "COMMIT", &err) != QUN_OK)
            die("build", err.msg);
        n += chunk;
        if (bench_now() - last > 30) {
            last = bench_now();
            fprintf(stderr, "ledger_bench: built %lld of %lld entries in %.0fs\n", (long long)n,
                    (long long)entries, last - t0);
        }
    }
    double t = bench_now() - t0;
    qun_db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", &err);
    qun_db_close(db);
    printf("build entries=%lld seconds=%.1f per_s=%.0f txn=10000\n", (long long)entries, t,
           (double)entries / t);
}

static int proofs_main(const char *dir, int64_t entries, int samples) {
    char path[1024];
    qun_err_t err = {{0}, {0}};
    snprintf(path, sizeof path, "%s/ledger_%lld.db", dir, (long long)entries);
    /* BENCH_LEDGER_KEEP=1 keeps the built file and reuses it on the next run (the 10M
     * build takes minutes; comparing two builds of the code on one file is fairer too). */
    const char *keep_env = getenv("BENCH_LEDGER_KEEP");
    bool keep = keep_env && strcmp(keep_env, "1") == 0;
    if (!keep || access(path, R_OK) != 0)
        build(path, entries);
    else
        printf("build entries=%lld seconds=0 per_s=0 txn=10000 reused=1\n", (long long)entries);

    qun_db_t *db;
    uint64_t size;
    unsigned char root[QUN_HASH];
    if (qun_db_open(path, true, false, &db, &err) != QUN_OK ||
        qun_ledger_head(db, &size, root, &err) != QUN_OK)
        die("head", err.msg);
    if (size != (uint64_t)entries) die("head", "the tree has the wrong size");
    sqlite3 *h;
    sqlite3_stmt *node, *entry;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "SELECT hash FROM ledger_nodes WHERE level = ?1 AND idx = ?2", -1, &node,
                           NULL) ||
        sqlite3_prepare_v2(h, "SELECT entry FROM ledger_entries WHERE idx = ?1", -1, &entry, NULL))
        die("raw read", sqlite3_errmsg(h));
    /* The build's pages on disk before anything is timed, and the nodes table (all a
     * proof reads; 866 MiB of the 5.9 GB file at 10M) read once into the page cache, as
     * a server's appends and proofs keep it: writing the file evicts node pages written
     * early, and the disk reads of those would be timed instead (bench/README.md, "Proofs
     * at 10M after a first pass"). */
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) die("fsync", path);
    close(fd);
    double w0 = bench_now();
    if (sqlite3_exec(h, "SELECT sum(length(hash)) FROM ledger_nodes", NULL, NULL, NULL) != SQLITE_OK)
        die("warm", sqlite3_errmsg(h));
    printf("warm_nodes seconds=%.2f\n", bench_now() - w0);
    double *lat = calloc((size_t)samples, sizeof *lat);
    uint64_t *pick = calloc((size_t)samples, sizeof *pick);
    unsigned char proof[QUN_PROOF_MAX][QUN_HASH], h32[QUN_HASH];
    int n;
    char extra[128];

    /* Baseline: one point lookup, same table, same kind of index, random leaves; a
     * first pass on the fresh connection, then the one compared. */
    double *lcpu = calloc((size_t)samples, sizeof *lcpu);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < samples; i++)
            pick[i] = rnd() % size;
        for (int i = 0; i < samples; i++) {
            double t0 = bench_now(), c0 = cpu_now();
            sqlite3_bind_int(node, 1, 0);
            sqlite3_bind_int64(node, 2, (int64_t)pick[i]);
            if (sqlite3_step(node) != SQLITE_ROW) die("lookup", "no such node");
            memcpy(h32, sqlite3_column_blob(node, 0), QUN_HASH);
            sqlite3_reset(node);
            lat[i] = bench_now() - t0;
            lcpu[i] = cpu_now() - c0;
        }
        print_latency(pass ? "lookup" : "lookup_cold", lat, samples, "");
        if (pass) print_latency("lookup_cpu", lcpu, samples, "");
    }
    free(lcpu);

    /* Context: hashing one entry. */
    sqlite3_bind_int64(entry, 1, 0);
    if (sqlite3_step(entry) != SQLITE_ROW) die("entry", "no entry 0");
    char *text = strdup((const char *)sqlite3_column_text(entry, 0));
    sqlite3_reset(entry);
    for (int i = 0; i < samples; i++) {
        double t0 = bench_now();
        crypto_hash_sha256(h32, (const unsigned char *)text, strlen(text));
        lat[i] = bench_now() - t0;
    }
    snprintf(extra, sizeof extra, " bytes=%zu", strlen(text));
    free(text);
    print_latency("sha_entry", lat, samples, extra);

    /* Inclusion proofs at the full size for random leaves: the first pass on the
     * fresh connection, then the one compared. */
    int64_t hashes = 0;
    double *cpu = calloc((size_t)samples, sizeof *cpu);
    for (int pass = 0; pass < 2; pass++) {
        hashes = 0;
        for (int i = 0; i < samples; i++)
            pick[i] = rnd() % size;
        for (int i = 0; i < samples; i++) {
            double t0 = bench_now(), c0 = cpu_now();
            qun_rc rc = qun_db_read_begin(db, &err);
            if (rc == QUN_OK) rc = qun_ledger_inclusion(db, pick[i], size, proof, &n, &err);
            qun_db_read_end(db);
            lat[i] = bench_now() - t0;
            cpu[i] = cpu_now() - c0;
            if (rc != QUN_OK) die("inclusion", err.msg);
            hashes += n;
            /* Not faked: the proof must take the entry's own bytes to the root. */
            sqlite3_bind_int64(entry, 1, (int64_t)pick[i]);
            if (sqlite3_step(entry) != SQLITE_ROW) die("entry", "missing");
            const char *e = (const char *)sqlite3_column_text(entry, 0);
            qun_merkle_leaf(h32, e, strlen(e));
            sqlite3_reset(entry);
            if (!qun_merkle_verify_inclusion(h32, pick[i], size, (const unsigned char(*)[QUN_HASH])proof, n,
                                             root))
                die("inclusion", "a proof does not verify");
        }
        snprintf(extra, sizeof extra, " hashes_mean=%.1f verified=%d", (double)hashes / samples, samples);
        print_latency(pass ? "inclusion" : "inclusion_cold", lat, samples, extra);
        if (pass) print_latency("inclusion_cpu", cpu, samples, "");
    }

    /* Consistency proofs from random older sizes to the full size. */
    hashes = 0;
    for (int i = 0; i < samples; i++)
        pick[i] = 1 + rnd() % (size - 1);
    int verified = 0;
    for (int i = 0; i < samples; i++) {
        double t0 = bench_now(), c0 = cpu_now();
        qun_rc rc = qun_db_read_begin(db, &err);
        if (rc == QUN_OK) rc = qun_ledger_consistency(db, pick[i], size, proof, &n, &err);
        qun_db_read_end(db);
        lat[i] = bench_now() - t0;
        cpu[i] = cpu_now() - c0;
        if (rc != QUN_OK) die("consistency", err.msg);
        hashes += n;
        if (i % 10 == 0) { /* the old root costs log n reads more: check one in ten */
            unsigned char old_root[QUN_HASH];
            if (qun_ledger_root_at(db, pick[i], old_root, &err) != QUN_OK) die("root_at", err.msg);
            if (!qun_merkle_verify_consistency(pick[i], size, old_root, root,
                                               (const unsigned char(*)[QUN_HASH])proof, n))
                die("consistency", "a proof does not verify");
            verified++;
        }
    }
    snprintf(extra, sizeof extra, " hashes_mean=%.1f verified=%d", (double)hashes / samples, verified);
    print_latency("consistency", lat, samples, extra);
    print_latency("consistency_cpu", cpu, samples, "");

    sqlite3_finalize(node);
    sqlite3_finalize(entry);
    sqlite3_close(h);
    qun_db_close(db);
    free(lat);
    free(cpu);
    free(pick);
    if (!keep) unlink(path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[1], "append") != 0 && strcmp(argv[1], "proofs") != 0)) {
        fprintf(stderr, "usage: ledger_bench append DIR SECONDS | proofs DIR ENTRIES [SAMPLES]\n");
        return 2;
    }
    if (sodium_init() < 0) return 1;
    qun_log_quiet = true;
    qun_store_init();
    qun_core_cfg.data_dir = argv[2];
    qun_id_new(group_gid, "g");
    qun_id_new(actor_openid, "u");
    if (strcmp(argv[1], "append") == 0) return append_main(argv[2], atof(argv[3]));
    return proofs_main(argv[2], atoll(argv[3]), argc > 4 ? atoi(argv[4]) : 10000);
}
