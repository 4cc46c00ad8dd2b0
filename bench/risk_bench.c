/* SPDX-License-Identifier: MIT */
/* risk_bench DIR [REPS] [DURABLE_REPS]: what the risk engine costs a dissolution
 * request when the store holds a million rows of activity history.
 *
 * A fresh store (migrations applied) gets an owner with one session and device, the
 * groups to dissolve, and ~1M rows of history written in one transaction: 10 000 other
 * users with 2 devices and 2 sessions each (a tenth of them from the owner's /24), 1 000
 * of their groups, 900 000 messages (100 000 by the owner at daytime hours, the rest by
 * the others) and 50 000 dissolutions by the others, all spread over 90 days.  The
 * thresholds are raised so that every rule runs its queries but none stops the request.
 *
 * Measured, on one connection without the writer or HTTP, alternating so that drift hits
 * both sides alike:
 *   eval              qun_risk_evaluate alone (all four rules and the stored row), then
 *                     with each rule alone and with none, to show where the time goes
 *   request_rules     qun_diss_request with every rule            } in a transaction
 *   request_norules   qun_diss_request with no rule (risk_rules=0) } rolled back after
 *   durable_rules     the same two, each committed (one fsync), one fresh group each
 *   durable_norules
 * The rolled-back request reuses one confirmation token and one group, so every
 * repetition sees the same history.  Each figure is printed as a `key=value` line
 * (medians and 90th percentiles in microseconds) for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "qun/core.h"
#include "qun/policy.h"
#include "qun/risk.h"

#define IP "203.0.113.7"
#define MAX_GROUPS 1024

static qun_actor_t owner;
static char gids[MAX_GROUPS][QUN_ID_MAX];
static int ngroups;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static void fail(const char *what, const qun_err_t *err) {
    fprintf(stderr, "risk_bench: %s: %s\n", what, err->msg);
    exit(1);
}

/* The owner (a session from IP on an old device) and the groups to dissolve. */
static qun_rc setup(qun_db_t *db, void *arg, qun_err_t *err) {
    int n = *(int *)arg;
    json_t *out;
    char hash[65];
    qun_rc rc = qun_user_create(db, "owner", "$argon2id$not-a-real-hash", &out, err);
    if (rc != QUN_OK) return rc;
    int64_t uid;
    rc = qun_user_id(db, json_string_value(json_object_get(out, "openid")), &uid, err);
    json_decref(out);
    qun_sha256_hex(hash, "bench-token", 11);
    if (rc == QUN_OK)
        rc = qun_session_create(db, uid, hash, "bench-phone", "android", NULL, hash, IP, &out, err);
    if (rc != QUN_OK) return rc;
    json_decref(out);
    rc = qun_session_auth(db, hash, &owner, err);
    for (int i = 0; rc == QUN_OK && i < n; i++) {
        rc = qun_group_create(db, &owner, "doomed", "standard", NULL, NULL, &out, err);
        if (rc != QUN_OK) break;
        snprintf(gids[ngroups++], QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
        json_decref(out);
    }
    return rc;
}

/* ~1M rows of history, generated inside SQLite; the times are relative to now. */
static qun_rc seed(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)arg;
    char sql[2048];
    long long now = (long long)qun_now(), day0 = now - now % 86400;
    const char *steps[] = {
        /* the owner's device is 60 days old */
        "UPDATE devices SET first_seen = %lld - 60 * 86400 WHERE user_id = %lld",
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10000) "
        "INSERT INTO users(openid, username, pwhash, password_changed_at, created_at) "
        "SELECT printf('u_hist%%06d', i), printf('hist%%06d', i), '$argon2id$seeded', %lld, %lld - 200 * "
        "86400 FROM c",
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000) "
        "INSERT INTO groups(gid, name, kind, owner_id, member_count, created_at, updated_at) "
        "SELECT printf('g_hist%%05d', i), 'history', 'standard', (SELECT id FROM users WHERE username = "
        "printf('hist%%06d', i)), "
        "2, %lld - 100 * 86400, %lld FROM c",
        /* devices: two per user, first seen 30 to 120 days ago */
        "INSERT INTO devices(user_id, device_id, platform, first_seen, last_seen) "
        "SELECT u.id, 'dev-' || u.id || '-' || k.k, 'android', %lld - (30 + (u.id * 7 + k.k) %% 90) * 86400, "
        "%lld "
        "FROM users u, (SELECT 1 AS k UNION ALL SELECT 2) k WHERE u.username LIKE 'hist%%'",
        /* sessions: two per user; a tenth of the users log in from the owner's /24 */
        "INSERT INTO sessions(sid, user_id, token_hash, device_id, platform, ip, created_at, expires_at) "
        "SELECT 's_hist' || u.id || '_' || k.k, u.id, 'th' || u.id || '_' || k.k, 'dev-' || u.id || '-' || "
        "k.k, 'android', "
        "CASE WHEN u.id %% 10 = 0 THEN '203.0.113.' || (u.id %% 250) ELSE '198.51.' || (u.id / 250 %% 250) "
        "|| '.' || (u.id %% 250) END, "
        "%lld - (u.id %% 90) * 86400, %lld + 86400 "
        "FROM users u, (SELECT 1 AS k UNION ALL SELECT 2) k WHERE u.username LIKE 'hist%%'",
        /* 100 000 messages by the owner, at 08:00-19:59 UTC over 90 days */
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) "
        "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
        "SELECT (SELECT min(id) FROM groups WHERE gid LIKE 'g_hist%%') + i %% 1000, i, %lld, 'owner says "
        "hello', "
        "%lld - (1 + i %% 90) * 86400 + (8 + i %% 12) * 3600 + i %% 3600 FROM c",
        /* 800 000 by the others, at any hour */
        "WITH RECURSIVE c(i) AS (SELECT 100001 UNION ALL SELECT i + 1 FROM c WHERE i < 900000) "
        "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
        "SELECT (SELECT min(id) FROM groups WHERE gid LIKE 'g_hist%%') + i %% 1000, i, "
        "(SELECT min(id) FROM users WHERE username LIKE 'hist%%') + (i * 7919) %% 10000, 'someone says "
        "hello', "
        "%lld - (i * 104729) %% (90 * 86400) FROM c",
        /* 50 000 dissolutions by the others over 90 days (about 23 an hour) */
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50000) "
        "INSERT INTO dissolutions(group_id, requested_by, messages, state, requested_at) "
        "SELECT (SELECT min(id) FROM groups WHERE gid LIKE 'g_hist%%') + i %% 1000, "
        "(SELECT min(id) FROM users WHERE username LIKE 'hist%%') + (i * 31) %% 10000, 'delete', "
        "'cancelled', "
        "%lld - (i * 7777) %% (90 * 86400) FROM c",
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        switch (i) {
        case 0: snprintf(sql, sizeof sql, steps[i], now, (long long)owner.uid); break;
        case 1:
        case 2:
        case 3:
        case 4: snprintf(sql, sizeof sql, steps[i], now, now); break;
        case 5: snprintf(sql, sizeof sql, steps[i], (long long)owner.uid, day0); break;
        default: snprintf(sql, sizeof sql, steps[i], now); break;
        }
        qun_rc rc = qun_db_exec(db, sql, err);
        if (rc != QUN_OK) return rc;
    }
    return QUN_OK;
}

static int64_t count_rows(qun_db_t *db) {
    qun_q_t *q;
    int64_t n = 0;
    if (qun_db_run(db, &q, NULL,
                   "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM groups) + (SELECT count(*) "
                   "FROM devices) "
                   "+ (SELECT count(*) FROM sessions) + (SELECT count(*) FROM messages) + (SELECT count(*) "
                   "FROM dissolutions)",
                   "") == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

typedef struct {
    const char *gid;
    const char *token;
    json_t *params;
} req_t;

static qun_rc preview(qun_db_t *db, void *arg, qun_err_t *err) {
    req_t *r = arg;
    json_t *out = NULL;
    qun_rc rc = qun_diss_preview(db, &owner, r->gid, r->params, NULL, &out, err);
    if (rc == QUN_OK) r->token = strdup(json_string_value(json_object_get(out, "confirmation_token")));
    json_decref(out);
    return rc;
}

static qun_rc request(qun_db_t *db, void *arg, qun_err_t *err) {
    req_t *r = arg;
    json_t *out = NULL, *problem = NULL;
    qun_diss_proof_t proof = {.token = r->token, .ip = IP, .problem = &problem};
    qun_rc rc = qun_diss_request(db, &owner, r->gid, r->params, &proof, &out, err);
    json_decref(out);
    json_decref(problem);
    return rc;
}

static qun_rc evaluate(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)arg;
    qun_risk_t risk;
    qun_rc rc = qun_risk_evaluate(db, &owner, 0, IP, &risk, err);
    qun_risk_clear(&risk);
    return rc;
}

/* Time fn inside a transaction that is rolled back: the work without the fsync. */
static double rolled_back(qun_db_t *db, qun_txn_fn fn, void *arg) {
    qun_err_t err = {{0}, {0}};
    if (qun_db_exec(db, "BEGIN IMMEDIATE", &err) != QUN_OK) fail("begin", &err);
    double t0 = bench_now();
    qun_rc rc = fn(db, arg, &err);
    double t = bench_now() - t0;
    if (rc != QUN_OK) fail("measured call", &err);
    if (qun_db_exec(db, "ROLLBACK", &err) != QUN_OK) fail("rollback", &err);
    return t * 1e6;
}

static void report(const char *name, double *v, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    printf("%s reps=%d mean_us=%.1f median_us=%.1f p90_us=%.1f\n", name, n, sum / n, pct(v, n, 0.5),
           pct(v, n, 0.9));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: risk_bench DIR [REPS] [DURABLE_REPS]\n");
        return 2;
    }
    const char *dir = argv[1];
    int reps = argc > 2 ? atoi(argv[2]) : 300, dreps = argc > 3 ? atoi(argv[3]) : 30;
    if (reps < 10) reps = 10;
    if (dreps < 2) dreps = 2;
    if (2 * dreps + 1 > MAX_GROUPS) dreps = (MAX_GROUPS - 1) / 2;
    char path[1024];
    qun_err_t err = {{0}, {0}};
    if (sodium_init() < 0) return 1;
    qun_log_quiet = true;
    qun_core_cfg.data_dir = dir;
    qun_core_cfg.cooling_off = 0;
    qun_core_cfg.notice = 0;
    qun_policy_t *pol;
    if (qun_policy_builtin(&pol) != QUN_OK) return 1;
    qun_core_cfg.policy = pol;
    /* Every rule runs its queries; none stops the request. */
    qun_risk_cfg.freq_max = qun_risk_cfg.freq_deny_max = 1000000;
    qun_risk_cfg.linked_max = 1000000;
    qun_risk_cfg.deny_score = 1000000;

    qun_db_t *db;
    static const char *const files[] = {"risk.db", "risk.db-wal", "risk.db-shm"}; /* a fresh store */
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/risk.db", dir);
    int groups = 2 * dreps + 1;
    if (qun_db_open(path, false, true, &db, &err) != QUN_OK || qun_db_txn(db, setup, &groups, &err) != QUN_OK)
        fail("setup", &err);
    double t0 = bench_now();
    if (qun_db_txn(db, seed, NULL, &err) != QUN_OK) fail("seed", &err);
    printf("risk_seed rows=%lld seconds=%.1f\n", (long long)count_rows(db), bench_now() - t0);

    /* Rolled back: one group, one token, the same history every time. */
    json_t *params = json_pack("{s:s}", "messages", "delete");
    req_t r = {.gid = gids[0], .params = params};
    if (qun_db_txn(db, preview, &r, &err) != QUN_OK) fail("preview", &err);
    double *eval = calloc((size_t)reps, sizeof *eval), *with = calloc((size_t)reps, sizeof *with),
           *without = calloc((size_t)reps, sizeof *without);
    for (int i = -reps / 10; i < reps; i++) { /* the first tenth warms the caches, uncounted */
        qun_risk_cfg.rules = QUN_RISK_RULES_ALL;
        double e = rolled_back(db, evaluate, NULL), w = rolled_back(db, request, &r);
        qun_risk_cfg.rules = 0;
        double wo = rolled_back(db, request, &r);
        if (i < 0) continue;
        eval[i] = e, with[i] = w, without[i] = wo;
    }
    report("risk_eval", eval, reps);
    /* Where the time goes: each rule alone (the stored row included each time). */
    static const struct {
        const char *name;
        int bit;
    } rules[] = {{"risk_eval_frequency", QUN_RISK_RULE_FREQUENCY},
                 {"risk_eval_new_device", QUN_RISK_RULE_NEW_DEVICE},
                 {"risk_eval_linked", QUN_RISK_RULE_LINKED},
                 {"risk_eval_anomaly", QUN_RISK_RULE_ANOMALY},
                 {"risk_eval_none", 0}};
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        qun_risk_cfg.rules = rules[k].bit;
        for (int i = 0; i < reps / 3; i++)
            eval[i] = rolled_back(db, evaluate, NULL);
        report(rules[k].name, eval, reps / 3);
    }
    report("risk_request_rules", with, reps);
    report("risk_request_norules", without, reps);
    free((void *)r.token);

    /* Durable: each request committed, on a group of its own, alternating. */
    double *dwith = calloc((size_t)dreps, sizeof *dwith), *dwithout = calloc((size_t)dreps, sizeof *dwithout);
    for (int i = 0; i < 2 * dreps; i++) {
        req_t d = {.gid = gids[1 + i], .params = params};
        qun_risk_cfg.rules = i % 2 ? 0 : QUN_RISK_RULES_ALL;
        if (qun_db_txn(db, preview, &d, &err) != QUN_OK) fail("preview", &err);
        double s = bench_now();
        if (qun_db_txn(db, request, &d, &err) != QUN_OK) fail("durable request", &err);
        (i % 2 ? dwithout : dwith)[i / 2] = (bench_now() - s) * 1e6;
        free((void *)d.token);
    }
    report("risk_durable_rules", dwith, dreps);
    report("risk_durable_norules", dwithout, dreps);
    json_decref(params);
    free(eval);
    free(with);
    free(without);
    free(dwith);
    free(dwithout);
    qun_db_close(db);
    qun_policy_free(pol);
    return 0;
}
