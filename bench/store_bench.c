/* SPDX-License-Identifier: MIT */
/* store_bench DIR [SECONDS]: qun's write path without HTTP.  Opens a fresh store with
 * migrations, creates a user and a group through the core API, starts the
 * group-commit writer and posts messages with qun_message_post_text from 64 submitter
 * threads (so commits are shared), then from one (one commit per message, for
 * context).  The raw SQLite baseline (64 rows per transaction) runs first in the same
 * process against a fresh file in the same directory; every figure is printed as a
 * `key=value` line for bench/run.sh. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "qun/core.h"
#include "qun/writer.h"

#define SUBMITTERS 64

static qun_writer_t *writer;
static qun_actor_t actor;
static char group_gid[QUN_ID_MAX];
static double deadline;
static _Atomic int64_t posted, failures;

/* Writer-side setup: the user and the group the messages go to, as qund makes them. */
static qun_rc setup(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)arg;
    json_t *out;
    /* The hash is never checked here; a literal spares the bench an argon2 run. */
    qun_rc rc = qun_user_create(db, "bench", "$argon2id$not-a-real-hash", &out, err);
    if (rc != QUN_OK) return rc;
    snprintf(actor.openid, sizeof actor.openid, "%s", json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    rc = qun_user_id(db, actor.openid, &actor.uid, err);
    if (rc == QUN_OK) rc = qun_group_create(db, &actor, "bench", "standard", NULL, NULL, &out, err);
    if (rc != QUN_OK) return rc;
    snprintf(group_gid, sizeof group_gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    return QUN_OK;
}

/* One message, exactly the core call POST /v1/groups/{id}/messages makes. */
static qun_rc post(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)arg;
    char *out = NULL;
    qun_rc rc = qun_message_post_text(db, &actor, group_gid, BENCH_TEXT, NULL, &out, err);
    free(out);
    return rc;
}

static void *submitter(void *arg) {
    (void)arg;
    qun_err_t err;
    while (bench_now() < deadline) {
        if (qun_writer_run(writer, post, NULL, &err) == QUN_OK)
            atomic_fetch_add(&posted, 1);
        else if (atomic_fetch_add(&failures, 1) == 0)
            fprintf(stderr, "store_bench: post: %s\n", err.msg);
    }
    return NULL;
}

/* Post from n threads for `seconds`; prints a result line named name. */
static int post_phase(const char *name, int n, double seconds) {
    pthread_t th[SUBMITTERS];
    uint64_t c0, o0, f0, c1, o1, f1;
    qun_writer_stats(writer, &c0, &o0, &f0);
    atomic_store(&posted, 0);
    double t0 = bench_now();
    deadline = t0 + seconds;
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, submitter, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double t = bench_now() - t0;
    qun_writer_stats(writer, &c1, &o1, &f1);
    int64_t rows = atomic_load(&posted);
    printf("%s threads=%d rows=%lld commits=%llu seconds=%.3f rows_per_s=%.0f mean_batch=%.1f\n", name, n,
           (long long)rows, (unsigned long long)(c1 - c0), t, (double)rows / t,
           c1 > c0 ? (double)(o1 - o0) / (double)(c1 - c0) : 0.0);
    return atomic_load(&failures) ? 1 : 0;
}

/* Writer-side: 64 posts in the caller's transaction, without savepoints. */
static qun_rc post64(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)arg;
    qun_rc rc = QUN_OK;
    for (int i = 0; i < 64 && rc == QUN_OK; i++)
        rc = post(db, NULL, err);
    return rc;
}

/* The core's own cost, with the writer's hand-offs taken out: one thread runs
 * qun_message_post 64 times per writer operation, so per commit the store does the
 * same work as the raw baseline plus what the core adds to each row. */
static int core_phase(const char *name, double seconds) {
    qun_err_t err;
    int64_t rows = 0, commits = 0;
    double t0 = bench_now(), t;
    do {
        if (qun_writer_run(writer, post64, NULL, &err) != QUN_OK) {
            fprintf(stderr, "store_bench: post64: %s\n", err.msg);
            return 1;
        }
        rows += 64;
        commits++;
        t = bench_now();
    } while (t - t0 < seconds);
    printf("%s rows=%lld commits=%lld seconds=%.3f rows_per_s=%.0f\n", name, (long long)rows,
           (long long)commits, t - t0, (double)rows / (t - t0));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: store_bench DIR [SECONDS]\n");
        return 2;
    }
    const char *dir = argv[1];
    double seconds = argc > 2 ? atof(argv[2]) : 5.0;
    char path[1024], err_text[512];
    qun_err_t err = {{0}, {0}};
    if (sodium_init() < 0) return 1;
    qun_log_quiet = true;
    qun_core_cfg.data_dir = dir;

    raw_result_t raw;
    snprintf(path, sizeof path, "%s/raw_store.db", dir);
    if (raw_insert_run(path, 64, seconds, &raw, err_text, sizeof err_text) != 0) {
        fprintf(stderr, "store_bench: raw baseline: %s\n", err_text);
        return 1;
    }
    printf("raw_batch64 rows=%lld commits=%lld seconds=%.3f rows_per_s=%.0f\n", (long long)raw.rows,
           (long long)raw.commits, raw.seconds, (double)raw.rows / raw.seconds);

    qun_db_t *db;
    snprintf(path, sizeof path, "%s/store.db", dir);
    unlink(path);
    if (qun_db_open(path, false, true, &db, &err) != QUN_OK ||
        qun_writer_start(db, 512, &writer, &err) != QUN_OK ||
        qun_writer_run(writer, setup, NULL, &err) != QUN_OK) {
        fprintf(stderr, "store_bench: setup: %s\n", err.msg);
        return 1;
    }
    int rc = post_phase("store_64", SUBMITTERS, seconds);
    if (rc == 0) rc = post_phase("store_1", 1, seconds / 2);
    if (rc == 0) rc = core_phase("core_txn64", seconds / 2);
    qun_writer_stop(writer);
    return rc;
}
