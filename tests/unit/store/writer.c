/* SPDX-License-Identifier: MIT */
/* Unit tests of src/store/writer.c: concurrent submitters share commits (group
 * commit), a failing operation rolls back only itself, and done runs after commit. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "qun/writer.h"
#include "unit.h"

static qun_writer_t *w;

static qun_rc insert_op(qun_db_t *db, void *arg, qun_err_t *err) {
    int64_t v = *(int64_t *)arg;
    qun_rc rc = qun_db_run(db, NULL, err, "INSERT INTO t(v) VALUES ($1)", "i", v);
    if (rc != QUN_DONE) return rc;
    /* Odd negative values fail after writing: their row must not survive. */
    return v < 0 ? qun_fail(err, QUN_BAD_REQUEST, "refused") : QUN_OK;
}

static void *submitter(void *arg) {
    int64_t base = (int64_t)(intptr_t)arg;
    for (int64_t i = 0; i < 50; i++) {
        int64_t v = base * 1000 + i;
        if (i % 10 == 9) v = -v - 1;
        qun_err_t err;
        qun_rc rc = qun_writer_run(w, insert_op, &v, &err);
        CHECK(rc == (v < 0 ? QUN_BAD_REQUEST : QUN_OK));
    }
    return NULL;
}

int main(void) {
    char path[] = "/tmp/qun-writer-test-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    qun_db_t *db;
    qun_err_t err;
    CHECK(qun_db_open(path, false, true, &db, &err) == QUN_OK);
    CHECK(qun_db_exec(db, "CREATE TABLE t(v INTEGER)", &err) == QUN_OK);
    CHECK(qun_writer_start(db, 512, &w, &err) == QUN_OK);

    enum { THREADS = 32 };
    pthread_t th[THREADS];
    for (intptr_t i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, submitter, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);

    uint64_t commits, ops, failed;
    qun_writer_stats(w, &commits, &ops, &failed);
    CHECK(ops == THREADS * 50);
    CHECK(failed == THREADS * 5);
    /* With 32 concurrent submitters, commits are shared: far fewer than operations. */
    CHECK(commits < ops / 2);
    printf("writer: %llu ops in %llu commits (%.1f per commit)\n", (unsigned long long)ops,
           (unsigned long long)commits, (double)ops / (double)(commits ? commits : 1));
    qun_writer_stop(w);

    /* Reopen: exactly the successful rows are there. */
    CHECK(qun_db_open(path, false, false, &db, &err) == QUN_OK);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "SELECT COUNT(*), SUM(v < 0) FROM t", "") == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == THREADS * 45);
    CHECK(qun_q_col_int(q, 1) == 0);
    qun_q_done(q);
    qun_db_close(db);
    unlink(path);
    char side[64];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return unit_done("store_writer");
}
