/* SPDX-License-Identifier: MIT */
/* search_bench DIR [SECONDS] [MESSAGES]: what message search costs (benchmark 14).
 *
 * 1. Posts with the index maintained against posts without it, same process, same run:
 *    two fresh stores migrated alike, in one of which the three search triggers (none
 *    fires for a new row since migration 0041: posts pay the COMMIT's indexing) and the
 *    index's watermark (search_state) are dropped and the store opened again, so its
 *    COMMITs index nothing: the store qun was before migration 0029.  64 submitter threads post through
 * the group-commit writer, as in benchmark 2, half the messages English (BENCH_TEXT) and half Chinese; the
 * two stores alternate in 6 rounds (indexed first in odd rounds) and each side's rows and seconds are summed,
 * so load that comes and goes falls on both.  The writer threads' CPU time (from /proc/self/task, read with
 * no submitter alive) is summed per side too: CPU per post does not depend on what else the shared machine
 * runs.
 * 2. Search latency over MESSAGES (default 1M) messages in one group, seeded through
 *    plain INSERTs with the triggers on (the index is built as qund builds it): a
 *    generated school-chat vocabulary, 70% Chinese, 30% English, with rare marker words.
 *    Each query is qun_message_search from the newest message, limit 20, the call
 *    GET .../messages/search makes; the baseline is qun_message_list of the same group's
 *    latest 20 messages (the indexed (group_id, seq) lookup GET .../messages makes).
 *    Queries and baseline alternate; p50 and p99 over the samples.
 * Every figure is printed as a `key=value` line for bench/run.sh. */
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "qun/core.h"
#include "qun/search.h"
#include "qun/writer.h"

#define SUBMITTERS 64
#define ZH_TEXT "今天的作业很多，明天上午八点在学校操场集合，记得带水。"

typedef struct {
    qun_db_t *db;
    qun_writer_t *writer;
    qun_actor_t actor;
    char gid[QUN_ID_MAX];
} store_t;

static store_t *cur;
static double deadline;
static _Atomic int64_t posted, failures;

static void fail(const char *what, const qun_err_t *err) {
    fprintf(stderr, "search_bench: %s: %s\n", what, err->msg);
    exit(1);
}

static qun_rc setup(qun_db_t *db, void *arg, qun_err_t *err) {
    store_t *s = arg;
    json_t *out;
    qun_rc rc = qun_user_create(db, "bench", "$argon2id$not-a-real-hash", &out, err);
    if (rc != QUN_OK) return rc;
    snprintf(s->actor.openid, sizeof s->actor.openid, "%s",
             json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    rc = qun_user_id(db, s->actor.openid, &s->actor.uid, err);
    if (rc == QUN_OK) rc = qun_group_create(db, &s->actor, "bench", "standard", NULL, NULL, &out, err);
    if (rc != QUN_OK) return rc;
    snprintf(s->gid, sizeof s->gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    return QUN_OK;
}

static void open_store(store_t *s, const char *dir, const char *name, bool indexed, bool writer) {
    char path[1024];
    qun_err_t err = {{0}, {0}};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (const char *ext = ""; ext; ext = *ext == '\0'                   ? "-wal"
                                          : *ext == '-' && ext[1] == 'w' ? "-shm"
                                                                         : NULL) {
        char p[1100];
        snprintf(p, sizeof p, "%s%s", path, ext);
        unlink(p);
    }
    if (qun_db_open(path, false, true, &s->db, &err) != QUN_OK) fail("open", &err);
    /* The baseline: no trigger feeds the index and, search_state gone, the store opened
     * again flushes nothing at COMMIT, as before migration 0029. */
    if (!indexed && qun_db_exec(s->db,
                                "DROP TRIGGER search_tail; DROP TRIGGER search_delete; "
                                "DROP TRIGGER search_update; DROP TABLE search_state",
                                &err) != QUN_OK)
        fail("drop triggers", &err);
    if (!indexed) {
        qun_db_close(s->db);
        if (qun_db_open(path, false, false, &s->db, &err) != QUN_OK) fail("reopen", &err);
    }
    if (qun_db_txn(s->db, setup, s, &err) != QUN_OK) fail("setup", &err);
    if (writer && qun_writer_start(s->db, 512, &s->writer, &err) != QUN_OK) fail("writer", &err);
}

/* ---- 1. posts ---- */

static qun_rc post(qun_db_t *db, void *arg, qun_err_t *err) {
    json_t *out = NULL;
    qun_rc rc = qun_message_post(db, &cur->actor, cur->gid, arg ? ZH_TEXT : BENCH_TEXT, &out, err);
    json_decref(out);
    return rc;
}

static void *submitter(void *arg) {
    qun_err_t err;
    uintptr_t i = (uintptr_t)arg;
    while (bench_now() < deadline) {
        if (qun_writer_run(cur->writer, post, (void *)(i++ & 1), &err) == QUN_OK)
            atomic_fetch_add(&posted, 1);
        else if (atomic_fetch_add(&failures, 1) == 0)
            fprintf(stderr, "search_bench: post: %s\n", err.msg);
    }
    return NULL;
}

/* CPU seconds of every thread of this process but the main one: called while no
 * submitter runs, that is the writer threads (the idle store's writer adds nothing). */
static double threads_cpu(void) {
    char path[64];
    double ticks = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)getpid());
    DIR *d = opendir(path);
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == (int)getpid()) continue;
        char stat[400], buf[1024];
        snprintf(stat, sizeof stat, "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(stat, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command's closing parenthesis: state is the 3rd, utime the 14th. */
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            ticks += (double)(ut + st);
    }
    closedir(d);
    return ticks / (double)sysconf(_SC_CLK_TCK);
}

static void post_round(store_t *s, double seconds, int64_t *rows, double *spent, double *cpu) {
    pthread_t th[SUBMITTERS];
    double c0 = threads_cpu();
    cur = s;
    atomic_store(&posted, 0);
    double t0 = bench_now();
    deadline = t0 + seconds;
    for (uintptr_t i = 0; i < SUBMITTERS; i++)
        pthread_create(&th[i], NULL, submitter, (void *)i);
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_join(th[i], NULL);
    *spent += bench_now() - t0;
    *rows += atomic_load(&posted);
    *cpu += threads_cpu() - c0;
}

/* ---- 2. search at scale ---- */

static const char *zh_words[] = {
    "今天",   "明天", "作业", "老师",   "同学",   "考试", "数学", "语文", "英语", "家长",
    "开会",   "通知", "周末", "学校",   "放学",   "下午", "上午", "晚上", "记得", "带书",
    "本子",   "活动", "比赛", "运动会", "报名",   "练习", "复习", "预习", "课本", "请假",
    "接孩子", "谢谢", "收到", "好的",   "辛苦了", "的",   "了",   "吗",   "，",   "。",
};
static const char *en_words[] = {
    "homework", "teacher",  "meeting", "tomorrow", "library", "noon", "math",  "class", "remember",
    "bring",    "book",     "sports",  "day",      "parents", "the",  "at",    "in",    "please",
    "thanks",   "received", "see",     "you",      "ok",      "exam", "notes", "lunch", "bus",
};
#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng = 88172645463325252ULL;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Message i's text into buf: 4 to 11 words; every 10 000th carries 期末考试安排, every
 * 100 000th the English word zebra, every 50 000th the two characters 斑马. */
static void message_text(int64_t i, char *buf, size_t size) {
    bool zh = next_rand() % 10 < 7;
    int n = 4 + (int)(next_rand() % 8);
    size_t len = 0;
    buf[0] = '\0';
    for (int w = 0; w < n && len + 32 < size; w++) {
        const char *word =
            zh ? zh_words[next_rand() % NWORDS(zh_words)] : en_words[next_rand() % NWORDS(en_words)];
        len += (size_t)snprintf(buf + len, size - len, "%s%s", zh || w == 0 ? "" : " ", word);
    }
    if (i % 10000 == 5000) len += (size_t)snprintf(buf + len, size - len, "期末考试安排");
    if (i % 100000 == 50000) len += (size_t)snprintf(buf + len, size - len, " zebra");
    if (i % 50000 == 25000) snprintf(buf + len, size - len, "斑马");
}

typedef struct {
    int64_t messages;
    int64_t group_id;
} seed_t;

static qun_rc seed(qun_db_t *db, void *arg, qun_err_t *err) {
    seed_t *sd = arg;
    qun_q_t *q;
    char text[512];
    qun_rc rc = qun_q_prepare(db,
                              "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                              "VALUES ($1, $2, $3, $4, $5)",
                              &q, err);
    for (int64_t i = 1; rc == QUN_OK && i <= sd->messages; i++) {
        message_text(i, text, sizeof text);
        qun_q_int(q, 1, sd->group_id);
        qun_q_int(q, 2, i);
        qun_q_int(q, 3, cur->actor.uid);
        qun_q_text(q, 4, text);
        qun_q_int(q, 5, 1700000000 + i);
        rc = qun_q_step(q, err);
        rc = rc == QUN_DONE ? QUN_OK : rc;
    }
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err, "UPDATE groups SET next_seq = $2 WHERE id = $1", "ii", sd->group_id,
                        sd->messages + 1);
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc merge_some(qun_db_t *db, void *arg, qun_err_t *err) {
    return qun_db_search_merge(db, 128, arg, err);
}

static qun_rc nothing(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)db, (void)arg, (void)err;
    return QUN_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(int)(p * (n - 1) + 0.5)];
}

/* One sample of each query and of the baseline per round, rounds times. */
static void latency(store_t *s, int64_t messages, int rounds) {
    static const struct {
        const char *name, *q;
    } queries[] = {
        {"zh2_common", "作业"},       {"zh2_rare", "斑马"},      {"zh3_common", "运动会"},
        {"zh6_rare", "期末考试安排"}, {"en_common", "HOMEWORK"}, {"en_rare", "zebra"},
    };
    enum { NQ = sizeof queries / sizeof queries[0] };
    double *t[NQ + 1];
    int items[NQ + 1] = {0};
    bool more[NQ + 1] = {0};
    qun_err_t err;
    for (int k = 0; k <= NQ; k++)
        t[k] = calloc((size_t)rounds, sizeof(double));
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k <= NQ; k++) {
            json_t *out = NULL;
            double t0 = bench_now();
            qun_rc rc = k == NQ
                            ? qun_message_list(s->db, &s->actor, s->gid, messages - 20, 20, &out, &err)
                            : qun_message_search(s->db, &s->actor, s->gid, queries[k].q, 0, 20, &out, &err);
            t[k][r] = (bench_now() - t0) * 1e6;
            if (rc != QUN_OK) fail(k == NQ ? "list" : queries[k].name, &err);
            items[k] = (int)json_array_size(json_object_get(out, "items"));
            more[k] = json_is_string(json_object_get(out, "next_cursor"));
            json_decref(out);
        }
    }
    for (int k = 0; k <= NQ; k++) {
        const char *name = k == NQ ? "latest_page" : queries[k].name;
        double p50 = pct(t[k], rounds, 0.5), p99 = pct(t[k], rounds, 0.99);
        printf("search_%s q=%s samples=%d items=%d more=%d p50_us=%.0f p99_us=%.0f\n", name,
               k == NQ ? "-" : queries[k].q, rounds, items[k], more[k], p50, p99);
        free(t[k]);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: search_bench DIR [SECONDS] [MESSAGES]\n");
        return 2;
    }
    const char *dir = argv[1];
    double seconds = argc > 2 ? atof(argv[2]) : 12.0;
    int64_t messages = argc > 3 ? atoll(argv[3]) : 1000000;
    qun_err_t err = {{0}, {0}};
    if (sodium_init() < 0) return 1;
    /* As qund runs (src/qund/main.c): without it, glibc trims and regrows the writer's
     * arena around FTS5's large buffers, and each post pays the page faults. */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    qun_log_quiet = true;
    qun_core_cfg.data_dir = dir;

    store_t on = {0}, off = {0};
    open_store(&on, dir, "search_on.db", true, true);
    open_store(&off, dir, "search_off.db", false, true);
    int64_t rows_on = 0, rows_off = 0;
    double s_on = 0, s_off = 0, c_on = 0, c_off = 0;
    for (int r = 0; r < 6; r++) {
        bool on_first = r % 2 == 0;
        post_round(on_first ? &on : &off, seconds / 6, on_first ? &rows_on : &rows_off,
                   on_first ? &s_on : &s_off, on_first ? &c_on : &c_off);
        post_round(on_first ? &off : &on, seconds / 6, on_first ? &rows_off : &rows_on,
                   on_first ? &s_off : &s_on, on_first ? &c_off : &c_on);
    }
    qun_writer_stop(on.writer); /* closes its store */
    qun_writer_stop(off.writer);
    if (atomic_load(&failures)) return 1;
    double r_on = (double)rows_on / s_on, r_off = (double)rows_off / s_off;
    printf("post_indexed rows=%lld seconds=%.3f rows_per_s=%.0f\n", (long long)rows_on, s_on, r_on);
    printf("post_plain rows=%lld seconds=%.3f rows_per_s=%.0f\n", (long long)rows_off, s_off, r_off);
    printf("post_ratio value=%.3f\n", r_on / r_off);
    printf("writer_cpu_per_post indexed_us=%.1f plain_us=%.1f ratio=%.3f\n", c_on / (double)rows_on * 1e6,
           c_off / (double)rows_off * 1e6, (c_off / (double)rows_off) / (c_on / (double)rows_on));
    fflush(stdout);

    store_t big;
    open_store(&big, dir, "search_1m.db", true, false);
    cur = &big;
    qun_group_t g;
    if (qun_group_load(big.db, big.gid, &g, &err) != QUN_OK) fail("group", &err);
    seed_t sd = {messages, g.id};
    double t0 = bench_now();
    if (qun_db_txn(big.db, seed, &sd, &err) != QUN_OK) fail("seed", &err);
    double seeded = bench_now() - t0;
    printf("seed_indexed rows=%lld seconds=%.1f rows_per_s=%.0f\n", (long long)messages, seeded,
           (double)messages / seeded);
    /* The seeding COMMIT indexed one slice of the bulk load (QUN_SEARCH_CATCHUP ids); qund's
     * jobs thread commits until the rest is in (catch_up_search), and so does this, so the
     * searches below meet the index as a running server has it, not a million rows read by
     * their text. */
    int64_t backlog = 0;
    t0 = bench_now();
    for (;;) {
        if (qun_db_search_backlog(big.db, &backlog, &err) != QUN_OK) fail("backlog", &err);
        if (backlog < qun_search_batch) break;
        if (qun_db_txn(big.db, nothing, NULL, &err) != QUN_OK) fail("catch up", &err);
    }
    double caught = bench_now() - t0;
    printf("catch_up rows=%lld seconds=%.1f rows_per_s=%.0f left=%lld\n", (long long)(messages - backlog),
           caught, (double)(messages - backlog) / caught, (long long)backlog);
    /* And merges the index's segments apart from those COMMITs (migration 0038): the
     * job thread's merges, one bounded 'merge' per transaction, until none is left. */
    bool more = true;
    int merges = 0;
    t0 = bench_now();
    while (more) {
        if (qun_db_txn(big.db, merge_some, &more, &err) != QUN_OK) fail("merge", &err);
        merges++;
    }
    printf("merge transactions=%d seconds=%.1f\n", merges, bench_now() - t0);
    fflush(stdout);
    latency(&big, messages, 200);
    qun_db_close(big.db);
    return 0;
}
