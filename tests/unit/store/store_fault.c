/* SPDX-License-Identifier: MIT */
/* Fault injection through the store seam (src/store/store_fault.c), SQLite's testing
 * habit: for dissolution (request, then mark), purge (the whole job), export (the job
 * producing an archive) and import (an archive into a new group), fail the Nth
 * statement, then the Nth COMMIT, then the Nth allocation, for N = 1, 2, ... until a
 * run fires no fault.  After each faulted run the operation has either completed or
 * left no trace (every row of every table as before; for the resumable jobs, progress
 * counters that agree with the rows left), and a run with the fault cleared completes
 * it with the exact expected end state.  Prints the failure points walked. */
#include <dlfcn.h>
#include <sodium.h>
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/export.h"
#include "qun/import.h"
#include "qun/jobs.h"
#include "qun/ledger.h"
#include "qun/policy.h"
#include "store_internal.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_archive.h"
#include "unit_store.h"

#define MESSAGES 6
#define MAX_POINTS 100000

static qun_db_t *db;
static qun_err_t err1; /* the detail of the last run's failure */
static qun_actor_t owner, member;
static char gid[QUN_ID_MAX], dir[64];

static int64_t count(const char *sql) {
    return unit_count(db, sql);
}

/* jansson 2.14's decoder writes out of bounds when one of its allocations fails (a
 * crash inside libjansson, seen at json_loads of a purge's progress): its
 * allocations are not failed.  This definition takes the place of the library's for
 * every caller in this binary. */
json_t *json_loads(const char *input, size_t flags, json_error_t *error) {
    static json_t *(*real)(const char *, size_t, json_error_t *);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "json_loads");
    qun_fault_json_pause(true);
    json_t *j = real(input, flags, error);
    qun_fault_json_pause(false);
    return j;
}

json_t *json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error) {
    static json_t *(*real)(const char *, size_t, size_t, json_error_t *);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "json_loadb");
    qun_fault_json_pause(true);
    json_t *j = real(buffer, buflen, flags, error);
    qun_fault_json_pause(false);
    return j;
}

json_t *json_loadf(FILE *input, size_t flags, json_error_t *error) {
    static json_t *(*real)(FILE *, size_t, json_error_t *);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "json_loadf");
    qun_fault_json_pause(true);
    json_t *j = real(input, flags, error);
    qun_fault_json_pause(false);
    return j;
}

/* ---- snapshots: every row of every table ---- */

#define MAX_TABLES 128
static char *dump_sql[MAX_TABLES]; /* built once; the statement cache keys on their address */
static char table_name[MAX_TABLES][64];
static int ntables;

static void dump_prepare(void) {
    if (ntables) return;
    qun_q_t *q;
    qun_err_t err;
    static const char *list =
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
    for (qun_rc rc = qun_db_run(db, &q, &err, list, ""); rc == QUN_ROW && ntables < MAX_TABLES;
         rc = qun_q_step(q, &err))
        snprintf(table_name[ntables++], sizeof table_name[0], "%s", qun_q_col_text(q, 0));
    for (int t = 0; t < ntables; t++) {
        char cols[4096] = "";
        static const char *colsql =
            "SELECT group_concat('quote(\"' || name || '\")', ',') FROM pragma_table_info($1)";
        CHECK(qun_db_run(db, &q, &err, colsql, "s", table_name[t]) == QUN_ROW);
        snprintf(cols, sizeof cols, "%s", qun_q_col_text(q, 0));
        qun_q_done(q);
        char sql[5000];
        snprintf(sql, sizeof sql,
                 "SELECT COUNT(*), COALESCE(group_concat(r, char(10)), '') FROM "
                 "(SELECT json_array(%s) AS r FROM \"%s\" ORDER BY 1)",
                 cols, table_name[t]);
        dump_sql[t] = strdup(sql);
    }
}

/* The whole database as text, one line per table: name, row count, rows. */
static char *dump(void) {
    dump_prepare();
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (int t = 0; t < ntables; t++) {
        qun_q_t *q;
        qun_err_t err;
        CHECK(qun_db_run(db, &q, &err, dump_sql[t], "") == QUN_ROW);
        const char *rows = qun_q_col_text(q, 1);
        size_t need = strlen(table_name[t]) + strlen(rows) + 64;
        if (len + need >= cap) out = realloc(out, cap = (len + need) * 2);
        len +=
            (size_t)sprintf(out + len, "%s %lld: %s\n", table_name[t], (long long)qun_q_col_int(q, 0), rows);
        qun_q_done(q);
    }
    return out;
}

/* Compare two dumps and name the first table that differs. */
static bool same(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return true;
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        if (!ea || !eb) break;
        if (ea - a != eb - b || memcmp(a, b, (size_t)(ea - a)) != 0) {
            fprintf(stderr, "differs: %.*s\n   was: %.*s\n", (int)(eb - b > 300 ? 300 : eb - b), b,
                    (int)(ea - a > 300 ? 300 : ea - a), a);
            break;
        }
        a = ea + 1, b = eb + 1;
    }
    return false;
}

/* ---- the fixture: an owner, a member, a group with MESSAGES messages ---- */

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static void fixture_build(const char *path) {
    qun_err_t err;
    json_t *out;
    CHECK(qun_db_open(path, false, true, &db, &err) == QUN_OK);
    user("owner", &owner);
    user("member", &member);
    CHECK(qun_group_create(db, &owner, "doomed", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, sizeof gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_member_add(db, &owner, gid, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    /* In one transaction, as qund's writer posts: its COMMIT puts them in the search
     * index, so the walks below take indexed text out of it. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    for (int i = 0; i < MESSAGES; i++) {
        CHECK(qun_message_post(db, &member, gid, "hello", &out, &err) == QUN_OK);
        json_decref(out);
    }
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
    CHECK(count("SELECT COUNT(*) FROM search_pending") == 0);
    CHECK(count("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '\"hel\" AND \"llo\"'") ==
          MESSAGES);
}

/* path and its WAL files gone, then a copy of from (a closed store: one file) at path. */
static void copy_store(const char *from, const char *path) {
    unit_remove_sqlite(path);
    FILE *in = fopen(from, "rb"), *out = fopen(path, "wb");
    CHECK(in && out);
    char buf[65536];
    for (size_t n; in && out && (n = fread(buf, 1, sizeof buf, in)) > 0;)
        CHECK(fwrite(buf, 1, n, out) == n);
    if (in) fclose(in);
    if (out) CHECK(fclose(out) == 0);
}

/* The fixture is built once, into a file, and every run starts from a copy of it: a
 * fresh store's migrations were most of the walks' time (they start thousands of
 * stores).  The copies live where dir does (tmpfs when there is one). */
static void fixture_at(const char *path) {
    static char tmpl[128];
    if (!tmpl[0]) {
        snprintf(tmpl, sizeof tmpl, "%s/fixture.db", dir);
        fixture_build(tmpl);
        qun_db_close(db); /* checkpoints the WAL into the one file */
        db = NULL;
    }
    qun_err_t err;
    copy_store(tmpl, path);
    CHECK(qun_db_open(path, false, true, &db, &err) == QUN_OK);
}

static void fixture(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/store.db", dir);
    fixture_at(path);
}

static qun_writer_t *wr; /* the export's writer */

static void teardown(void) {
    if (wr) {
        qun_export_use_writer(NULL);
        qun_writer_stop(wr);
        wr = NULL;
    }
    qun_db_close(db);
    db = NULL;
}

/* ---- the walk ---- */

/* One operation under test.  setup builds a fresh store; run performs the operation
 * (its own transactions) and returns its outcome; consistent checks a store the
 * faulted run left (before: the dump taken after setup); finished checks the exact end
 * state once run has succeeded. */
typedef struct {
    const char *name;
    void (*setup)(void);
    qun_rc (*run)(void);
    void (*consistent)(const char *before);
    void (*finished)(void);
    long max_alloc; /* walk at most this many allocation points (0: all) */
} op_t;

/* Atomic operations: a failed run leaves every row as it was. */
static void unchanged(const char *before) {
    char *now = dump();
    CHECK(same(before, now));
    free(now);
}

static const char *kind_name(qun_fault_kind kind) {
    return kind == QUN_FAULT_STMT ? "statement" : kind == QUN_FAULT_COMMIT ? "commit" : "allocation";
}

static long walk(const op_t *op, qun_fault_kind kind, qun_rc how) {
    long limit = kind == QUN_FAULT_ALLOC && op->max_alloc ? op->max_alloc + 1 : MAX_POINTS;
    long n;
    long from = getenv("FAULT_FROM") ? atol(getenv("FAULT_FROM")) : 1; /* to debug one point */
    for (n = from; n < limit; n++) {
        if (getenv("FAULT_TRACE")) fprintf(stderr, "%s %s %ld\n", op->name, kind_name(kind), n);
        op->setup();
        char *before = dump();
        qun_fault_arm(kind, n, how);
        qun_rc rc = op->run();
        bool fired = qun_fault_fired();
        qun_fault_clear();
        if (!fired) {
            CHECK(rc == QUN_OK);
            if (rc != QUN_OK) fprintf(stderr, "%s: unfaulted run failed: %s\n", op->name, qun_rc_name(rc));
            op->finished();
            free(before);
            teardown();
            break;
        }
        if (rc != QUN_OK) {
            /* Failed: no trace, then a clean retry completes it. */
            int failures = unit_failures;
            op->consistent(before);
            if (unit_failures != failures)
                fprintf(stderr, "%s: a trace after %s fault %ld (%s): %s %s\n", op->name, kind_name(kind), n,
                        qun_rc_name(how), qun_rc_name(rc), err1.msg);
            rc = op->run();
            if (rc != QUN_OK)
                fprintf(stderr, "%s: retry after fault %ld failed: %s %s\n", op->name, n, qun_rc_name(rc),
                        err1.msg);
            CHECK(rc == QUN_OK);
        }
        int failures = unit_failures;
        op->finished();
        if (unit_failures != failures)
            fprintf(stderr, "%s: wrong end state after %s fault %ld (run rc %s)\n", op->name, kind_name(kind),
                    n, qun_rc_name(rc));
        free(before);
        teardown();
        if (unit_failures > 50) break; /* enough to go on */
    }
    return n - 1;
}

static void walk_all(const op_t *ops, int nops, const char *label) {
    long pts[3] = {0, 0, 0};
    for (int i = 0; i < nops; i++) {
        pts[0] += walk(&ops[i], QUN_FAULT_STMT, QUN_STORE);
        walk(&ops[i], QUN_FAULT_STMT, QUN_CONFLICT_RETRY);
        pts[1] += walk(&ops[i], QUN_FAULT_COMMIT, QUN_STORE);
        walk(&ops[i], QUN_FAULT_COMMIT, QUN_CONFLICT_RETRY);
        pts[2] += walk(&ops[i], QUN_FAULT_ALLOC, QUN_NOMEM);
    }
    printf("fault: %s walked %ld statement points, %ld commit points, %ld allocation points\n", label, pts[0],
           pts[1], pts[2]);
}

/* ---- dissolution: request, then mark ---- */

static json_t *del_params;
static char token[80];

typedef struct {
    qun_rc (*fn)(qun_db_t *db, void *arg, qun_err_t *err);
    void *arg;
} txn_t;

static qun_rc request_txn(qun_db_t *d, void *arg, qun_err_t *err) {
    json_t *out = NULL;
    qun_rc rc = qun_diss_request(d, &owner, gid, del_params, &(qun_diss_proof_t){.token = token}, &out, err);
    if (rc == QUN_OK) json_decref(out); /* on an error *out is not ours */
    return rc;
}

static void request_setup(void) {
    fixture();
    json_t *out;
    qun_err_t err;
    CHECK(qun_diss_preview(db, &owner, gid, del_params, NULL, &out, &err) == QUN_OK);
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(out, "confirmation_token")));
    json_decref(out);
}

static qun_rc request_run(void) {
    return qun_db_txn(db, request_txn, NULL, &err1);
}

static void request_finished(void) {
    CHECK(count("SELECT COUNT(*) FROM dissolutions WHERE state = 'pending'") == 1);
    CHECK(count("SELECT COUNT(*) FROM dissolutions") == 1);
    CHECK(count("SELECT COUNT(*) FROM groups WHERE state = 'pending'") == 1);
    CHECK(count("SELECT COUNT(*) FROM jobs WHERE kind = 'dissolve_due'") == 1);
    CHECK(count("SELECT COUNT(*) FROM messages") == MESSAGES + 1); /* + the notice */
}

static int64_t did;

static qun_rc mark_txn(qun_db_t *d, void *arg, qun_err_t *err) {
    bool marked = false;
    qun_rc rc = qun_diss_mark_due(d, did, &marked, err);
    if (rc == QUN_OK && !marked) rc = qun_fail(err, QUN_INTERNAL, "not marked");
    return rc;
}

static void mark_setup(void) {
    request_setup();
    CHECK(request_run() == QUN_OK);
    did = count("SELECT id FROM dissolutions");
    qun_clock_advance(48 * 3600);
}

static qun_rc mark_run(void) {
    return qun_db_txn(db, mark_txn, NULL, &err1);
}

static void mark_finished(void) {
    CHECK(count("SELECT COUNT(*) FROM dissolutions WHERE state = 'dissolved'") == 1);
    CHECK(count("SELECT COUNT(*) FROM groups WHERE state = 'dissolved'") == 1);
    CHECK(count("SELECT COUNT(*) FROM jobs WHERE kind = 'purge_group'") == 1);
    CHECK(count("SELECT COUNT(*) FROM members") == 2);
    CHECK(count("SELECT COUNT(*) FROM messages") == MESSAGES + 2); /* + the pending and dissolved notices */
    bool marked = true;
    qun_err_t err;
    CHECK(qun_diss_mark_due(db, did, &marked, &err) == QUN_OK && !marked); /* exactly once */
}

static void dissolution(void) {
    const op_t ops[] = {
        {"dissolution request", request_setup, request_run, unchanged, request_finished, 0},
        {"dissolution mark", mark_setup, mark_run, unchanged, mark_finished, 0},
    };
    walk_all(ops, 2, "dissolution");
}

/* ---- purge: the whole job, one transaction per step ---- */

#define EXPORTS 3
static int64_t job, job_group, job_ref, start_messages, start_events;

static void purge_setup(void) {
    mark_setup();
    CHECK(mark_run() == QUN_OK);
    qun_clock_advance(qun_core_cfg.purge_grace + 60);
    qun_err_t err;
    char path[600];
    snprintf(path, sizeof path, "%s/exports", dir);
    mkdir(path, 0700);
    for (int i = 0; i < EXPORTS; i++) {
        char xid[32];
        snprintf(xid, sizeof xid, "x_fault%d", i);
        CHECK(qun_db_run(db, NULL, &err,
                         "INSERT INTO exports(xid, group_id, requester_id, recipients, state, size, "
                         "created_at, scope) "
                         "SELECT $1, id, owner_id, '[]', 'done', $2, 0, 'group' FROM groups WHERE gid = $3",
                         "sis", xid, (int64_t)(i + 1), gid) == QUN_DONE);
        snprintf(path, sizeof path, "%s/exports/%s.age", dir, xid);
        FILE *f = fopen(path, "w");
        CHECK(f && fputs("ciphertext", f) >= 0 && fclose(f) == 0);
    }
    CHECK(qun_db_run(
              db, NULL, &err,
              "INSERT INTO export_grants(grid, group_id, secret_hash, created_by, created_at, expires_at) "
              "SELECT 'gr_fault', id, 'h', owner_id, 0, 1 FROM groups WHERE gid = $1",
              "s", gid) == QUN_DONE);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "SELECT id, group_id, ref_id FROM jobs WHERE kind = 'purge_group'", "") ==
          QUN_ROW);
    job = qun_q_col_int(q, 0), job_group = qun_q_col_int(q, 1), job_ref = qun_q_col_int(q, 2);
    qun_q_done(q);
    start_messages = count("SELECT COUNT(*) FROM messages");
    start_events = count("SELECT COUNT(*) FROM events WHERE topic = 'message.created'");
}

static qun_rc purge_txn(qun_db_t *d, void *arg, qun_err_t *err) {
    bool *finished = arg;
    int64_t defer = 0;
    qun_rc rc = qun_purge_group_step(d, job, job_group, job_ref, finished, &defer, err);
    if (rc == QUN_OK && defer) rc = qun_fail(err, QUN_INTERNAL, "the purge deferred");
    return rc;
}

static qun_rc purge_run(void) {
    bool finished = false;
    for (int steps = 0; !finished && steps < 1000; steps++) {
        qun_rc rc = qun_db_txn(db, purge_txn, &finished, &err1);
        if (rc != QUN_OK) return rc;
    }
    return finished ? QUN_OK : QUN_INTERNAL;
}

static int64_t progress(const char *key) {
    char sql[200];
    static char stored[8][200]; /* the statement cache keys on the address: one per key */
    static const char *keys[8];
    int k;
    for (k = 0; k < 8 && keys[k] && strcmp(keys[k], key) != 0; k++) {
    }
    if (k == 8) return -1;
    if (!keys[k]) {
        keys[k] = key;
        snprintf(sql, sizeof sql,
                 "SELECT COALESCE(json_extract(progress, '$.%s'), 0) FROM jobs WHERE kind = 'purge_group'",
                 key);
        snprintf(stored[k], sizeof stored[k], "%s", sql);
    }
    return count(stored[k]);
}

/* What the job has committed agrees with the rows it has deleted. */
static void purge_consistent(const char *before) {
    if (getenv("FAULT_DEBUG")) {
        qun_q_t *q;
        if (qun_db_run(
                db, &q, NULL,
                "SELECT progress, typeof(progress), length(progress) FROM jobs WHERE kind = 'purge_group'",
                "") == QUN_ROW) {
            fprintf(stderr, "progress: [%s] %s\n", qun_q_col_text(q, 0), qun_q_col_text(q, 1));
            qun_q_done(q);
        }
    }
    CHECK(progress("messages_deleted") + count("SELECT COUNT(*) FROM messages") == start_messages);
    CHECK(progress("members_removed") + count("SELECT COUNT(*) FROM members") == 2);
    CHECK(progress("exports_deleted") + count("SELECT COUNT(*) FROM exports WHERE purged_at IS NULL") ==
          EXPORTS);
    CHECK(progress("grants_deleted") + count("SELECT COUNT(*) FROM export_grants") == 1);
    CHECK(progress("message_events_deleted") +
              count("SELECT COUNT(*) FROM events WHERE topic = 'message.created'") ==
          start_events);
    CHECK(count("SELECT COUNT(*) FROM groups WHERE state = 'purged'") == 0);
}

static void purge_finished(void) {
    CHECK(count("SELECT COUNT(*) FROM messages") == 0);
    CHECK(count("SELECT COUNT(*) FROM members") == 0);
    CHECK(count("SELECT COUNT(*) FROM groups WHERE state = 'purged'") == 1);
    CHECK(count("SELECT COUNT(*) FROM dissolutions WHERE state = 'purged'") == 1);
    CHECK(count("SELECT json_extract(receipt, '$.messages_deleted') FROM dissolutions") == MESSAGES + 2);
    CHECK(count("SELECT json_extract(receipt, '$.members_removed') FROM dissolutions") == 2);
    CHECK(count("SELECT json_extract(receipt, '$.exports_deleted') FROM dissolutions") == EXPORTS);
    CHECK(count("SELECT json_extract(receipt, '$.export_bytes_deleted') FROM dissolutions") ==
          EXPORTS * (EXPORTS + 1) / 2);
    CHECK(count("SELECT json_extract(receipt, '$.grants_deleted') FROM dissolutions") == 1);
    CHECK(count("SELECT json_extract(receipt, '$.message_events_deleted') FROM dissolutions") ==
          start_events);
    CHECK(count("SELECT COUNT(*) FROM exports WHERE purged_at IS NULL") == 0);
    CHECK(count("SELECT COUNT(*) FROM export_grants") == 0);
    CHECK(count("SELECT COUNT(*) FROM events WHERE topic = 'message.created'") == 0);
    CHECK(count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'group.purged'") == 1);
    CHECK(count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'group.purging'") == 1);
}

static void purge(void) {
    const op_t ops[] = {{"purge", purge_setup, purge_run, purge_consistent, purge_finished, 0}};
    walk_all(ops, 1, "purge");
}

/* ---- import: an archive of group "src" into a new group ---- */

static buf_t plain;

/* The store of the fixture, and the plaintext of an archive of its group (as the
 * export would write it, with its content ledgered in this store). */
static void import_setup(void) {
    fixture();
    qun_err_t err;
    buf_t members = {0}, messages = {0}, files = {0}, payments = {0}, blob = {0}, list = {0}, manifest = {0};
    char line[600], sha[65];
    snprintf(line, sizeof line,
             "[\n{\"joined_at\":100,\"openid\":\"%s\",\"role\":\"owner\",\"username\":\"owner\"},\n"
             "{\"joined_at\":200,\"openid\":\"%s\",\"role\":\"member\",\"username\":\"member\"}\n]\n",
             owner.openid, member.openid);
    puts_(&members, line);
    for (int i = 1; i <= MESSAGES; i++) {
        snprintf(line, sizeof line,
                 "{\"author\":\"%s\",\"created_at\":%d,\"kind\":\"text\",\"seq\":%d,\"text\":\"m%d\"}\n",
                 i % 2 ? owner.openid : member.openid, 1000 + i, i, i);
        puts_(&messages, line);
    }
    for (int i = 0; i < 300; i++)
        put(&blob, &(unsigned char){(unsigned char)(i * 7)}, 1);
    hex_of(&blob, sha);
    snprintf(line, sizeof line,
             "{\"content_type\":\"a/b\",\"created_at\":5,\"name\":\"f\",\"sha256\":\"%s\",\"size\":300,"
             "\"uploader\":\"%s\"}\n",
             sha, member.openid);
    puts_(&files, line);
    snprintf(
        line, sizeof line,
        "{\"amount\":10,\"claimed_amount\":5,\"claimed_shares\":1,\"claims\":[{\"amount\":5,"
        "\"created_at\":7,\"openid\":\"%s\"}],\"created_at\":6,\"creator\":\"%s\",\"id\":\"p_x\",\"kind\":"
        "\"red_packet\",\"memo\":\"\",\"shares\":2}\n",
        member.openid, owner.openid);
    puts_(&payments, line);
    char blob_name[80];
    snprintf(blob_name, sizeof blob_name, "files/%s", sha);
    const char *names[] = {"members.json", "messages.jsonl", blob_name, "files.jsonl", "payments.jsonl"};
    const buf_t *parts[] = {&members, &messages, &blob, &files, &payments};
    json_t *digests = json_object();
    for (int i = 0; i < 5; i++) {
        char h[65];
        hex_of(parts[i], h);
        json_object_set_new(digests, names[i], json_string(h));
        snprintf(line, sizeof line, "%s  %s\n", h, names[i]);
        puts_(&list, line);
    }
    char content[65];
    hex_of(&list, content);
    json_t *f = json_pack("{s:s, s:s}", "export", "x_src", "content_digest", content);
    int64_t index;
    CHECK(qun_ledger_append(db, "export.content", gid, owner.openid, "active", "active", f, &index, &err) ==
          QUN_OK);
    json_decref(f);
    qun_q_t *q;
    char *entry = NULL;
    if (qun_db_run(db, &q, &err, "SELECT entry FROM ledger_entries WHERE idx = $1", "i", index) == QUN_ROW) {
        entry = strdup(qun_q_col_text(q, 0));
        qun_q_done(q);
    }
    CHECK(entry != NULL);
    unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int np = 0;
    CHECK(qun_ledger_root_at(db, (uint64_t)index + 1, root, &err) == QUN_OK);
    CHECK(qun_ledger_inclusion(db, (uint64_t)index, (uint64_t)index + 1, proof, &np, &err) == QUN_OK);
    char hex[65];
    json_t *path = json_array();
    for (int i = 0; i < np; i++) {
        qun_hex(hex, proof[i], QUN_HASH);
        json_array_append_new(path, json_string(hex));
    }
    qun_hex(hex, root, QUN_HASH);
    json_t *m =
        json_pack("{s:s, s:i, s:s, s:{s:s, s:s, s:s}, s:o, s:s, s:{s:s, s:I, s:I, s:s, s:s, s:o}}", "format",
                  "qun-group-archive", "format_version", 1, "export", "x_src", "group", "id", gid, "name",
                  "doomed", "kind", "standard", "digests", digests, "content_digest", content, "ledger",
                  "event", "export.content", "index", (json_int_t)index, "tree_size", (json_int_t)index + 1,
                  "root", hex, "entry", entry, "proof", path);
    char *mtext = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    puts_(&manifest, mtext);
    free(mtext);
    free(entry);
    plain.n = 0;
    struct archive *ar = archive_write_new();
    CHECK(archive_write_set_format_pax_restricted(ar) == ARCHIVE_OK);
    CHECK(archive_write_add_filter_zstd(ar) == ARCHIVE_OK);
    CHECK(archive_write_set_bytes_in_last_block(ar, 1) == ARCHIVE_OK);
    CHECK(archive_write_open(ar, &plain, NULL, ar_write, NULL) == ARCHIVE_OK);
    for (int i = 0; i < 5; i++)
        ar_add(ar, names[i], parts[i]);
    ar_add(ar, "manifest.json", &manifest);
    CHECK(archive_write_close(ar) == ARCHIVE_OK);
    archive_write_free(ar);
    free(members.p), free(messages.p), free(files.p), free(payments.p), free(blob.p), free(list.p);
    free(manifest.p);
}

static qun_rc rebuild_txn(qun_db_t *d, void *arg, qun_err_t *err) {
    json_t *out = NULL;
    qun_rc rc = qun_import_rebuild(d, &owner, arg, &out, err);
    if (rc == QUN_OK && getenv("FAULT_DEBUG")) {
        char *t = json_dumps(json_object_get(out, "skipped"), JSON_COMPACT);
        fprintf(stderr, "skipped: %s\n", t ? t : "?");
        free(t);
    }
    if (rc == QUN_OK) json_decref(out);
    return rc;
}

static qun_rc import_run(void) {
    qun_import_t *imp = NULL;
    qun_rc rc = qun_import_stage(db, &owner, plain.p, plain.n, &imp, &err1);
    if (rc == QUN_OK) rc = qun_db_txn(db, rebuild_txn, imp, &err1);
    qun_import_free(imp);
    return rc;
}

static int entries(const char *path) {
    DIR *d = opendir(path);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void import_consistent(const char *before) {
    unchanged(before);
    char path[600];
    snprintf(path, sizeof path, "%s/imports", dir);
    CHECK(entries(path) == 0); /* nothing left staged */
}

static void import_finished(void) {
    CHECK(count("SELECT COUNT(*) FROM groups") == 2);
    CHECK(count("SELECT COUNT(*) FROM members") == 4);
    CHECK(count("SELECT COUNT(*) FROM members WHERE role = 'owner'") == 2);
    CHECK(count("SELECT COUNT(*) FROM messages WHERE created_at > 1000 AND created_at <= 1000 + 6") ==
          MESSAGES);
    CHECK(count("SELECT MAX(next_seq) FROM groups") == MESSAGES + 1);
    CHECK(count("SELECT refcount FROM blobs") == 1);
    CHECK(count("SELECT COUNT(*) FROM group_files") == 1);
    CHECK(count("SELECT COUNT(*) FROM payments") == 1);
    CHECK(count("SELECT COUNT(*) FROM payment_claims WHERE amount = 5") == 1);
    CHECK(count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'import.made'") == 1);
    CHECK(count("SELECT member_count FROM groups ORDER BY id DESC LIMIT 1") == 2);
    char path[600];
    snprintf(path, sizeof path, "%s/imports", dir);
    CHECK(entries(path) == 0);
}

static void import(void) {
    const op_t ops[] = {{"import", import_setup, import_run, import_consistent, import_finished, 0}};
    walk_all(ops, 1, "import");
    free(plain.p);
}

/* ---- export: the request, then the job producing an archive ---- */

/* An export runs on a thread of its own over its own connection, and seals through
 * the writer: the store is a file, and the test steps the job through a writer as the
 * scheduler does.  The export's thread counts (and fails) too, so where its points
 * fall among the step's depends on timing: the walk's counts may vary a little. */
static char store_path[700];
static const char *recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

/* This process's threads (/proc/self/status), or -1. */
static int threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    if (f) fclose(f);
    return n;
}

static int idle_threads; /* with the writer started and no export thread (export_setup) */

static void export_setup(void) {
    snprintf(store_path, sizeof store_path, "%s/export.db", dir);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/exports'", dir);
    CHECK(system(cmd) == 0);
    fixture_at(store_path);
    qun_core_cfg.store = store_path;
    qun_db_t *wdb;
    qun_err_t err;
    CHECK(qun_db_open(store_path, false, false, &wdb, &err) == QUN_OK);
    CHECK(qun_writer_start(wdb, 16, &wr, &err) == QUN_OK);
    qun_export_use_writer(wr);
    idle_threads = threads();
}

static qun_rc create_fn(qun_db_t *d, void *arg, qun_err_t *err) {
    json_t *r = json_pack("[s]", recipient), *out = NULL;
    qun_rc rc = r ? qun_export_create(d, &owner, gid, r, "group", NULL, &out, err)
                  : qun_fail(err, QUN_NOMEM, "no memory");
    json_decref(r);
    if (rc == QUN_OK) json_decref(out);
    return rc;
}

typedef struct {
    int64_t job, group, ref, defer;
    bool finished;
} xstep_t;

static qun_rc xstep_fn(qun_db_t *d, void *arg, qun_err_t *err) {
    xstep_t *x = arg;
    x->defer = 0;
    return qun_export_group_step(d, x->job, x->group, x->ref, &x->finished, &x->defer, err);
}

/* The newest export still running, as the scheduler would find its job (the test's
 * own query: not a failure point). */
static bool live_export(xstep_t *x) {
    qun_q_t *q;
    bool found = false;
    qun_fault_pause(true);
    if (qun_db_run(db, &q, NULL,
                   "SELECT j.id, j.group_id, j.ref_id FROM jobs j JOIN exports e ON e.id = j.ref_id "
                   "WHERE j.kind = 'export_group' AND e.state = 'running' ORDER BY j.id DESC LIMIT 1",
                   "") == QUN_ROW) {
        x->job = qun_q_col_int(q, 0), x->group = qun_q_col_int(q, 1), x->ref = qun_q_col_int(q, 2);
        qun_q_done(q);
        found = true;
    }
    qun_fault_pause(false);
    return found;
}

/* Request an export unless one is running, then step its job until it ends; an
 * export that ended `failed` is a failed run.  An export resumed from an earlier,
 * faulted run may end `failed` (its thread saw the fault before it was cleared): its
 * owner then asks again, and that new export must succeed. */
static qun_rc export_run(void) {
    /* The thread records its own end: a faulted run may have left the export done. */
    qun_fault_pause(true);
    int64_t already = count("SELECT COUNT(*) FROM exports WHERE state = 'done'");
    qun_fault_pause(false);
    if (already == 1) return QUN_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        xstep_t x = {0, 0, 0, 0, false};
        qun_rc rc;
        bool resumed = live_export(&x);
        if (!resumed) {
            rc = qun_writer_run(wr, create_fn, NULL, &err1);
            if (rc != QUN_OK) return rc;
            if (!live_export(&x)) return qun_fail(&err1, QUN_INTERNAL, "no export was queued");
        }
        for (int i = 0; i < 5000 && !x.finished; i++) {
            rc = qun_writer_run(wr, xstep_fn, &x, &err1);
            if (rc != QUN_OK) return rc;
            if (!x.finished) usleep(2000);
        }
        if (!x.finished) return qun_fail(&err1, QUN_INTERNAL, "the export did not end");
        qun_fault_pause(true);
        int64_t done = count("SELECT COUNT(*) FROM exports WHERE state = 'done'");
        qun_fault_pause(false);
        if (done == 1) return QUN_OK;
        if (!resumed) break;
    }
    return qun_fail(&err1, QUN_EXPORT_NOT_READY, "the export failed");
}

static int64_t files_in_exports(const char *suffix) {
    char path[600];
    snprintf(path, sizeof path, "%s/exports", dir);
    DIR *d = opendir(path);
    int64_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name), k = strlen(suffix);
        if (e->d_name[0] != '.' && l > k && strcmp(e->d_name + l - k, suffix) == 0) n++;
    }
    closedir(d);
    return n;
}

static void export_finished(void);

/* A run that failed in a step of its job leaves the export's thread going: it may still
 * finish the archive and record the end.  What the run left is what is there once it
 * has ended (waited for up to 10 s; a thread stuck longer fails the checks after). */
static void export_settle(void) {
    for (int i = 0; i < 5000 && threads() > idle_threads; i++)
        usleep(2000);
}

/* A failed run: no export, or one still running (its job resumes), or one that ended
 * `failed` with its reason and no archive; nothing half-recorded.  Or one whole and
 * done: its thread recorded the end, and a later step of the job met the fault. */
static void export_consistent(const char *before) {
    export_settle();
    if (count("SELECT COUNT(*) FROM exports WHERE state = 'done'") > 0) {
        export_finished();
        return;
    }
    CHECK(count("SELECT COUNT(*) FROM exports WHERE state = 'running'") <= 1);
    CHECK(count("SELECT COUNT(*) FROM exports WHERE state = 'failed' AND (error IS NULL OR finished_at IS "
                "NULL)") == 0);
    CHECK(count("SELECT COUNT(*) FROM exports e WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = "
                "'export_group' "
                "AND j.ref_id = e.id)") == 0);
    CHECK(count("SELECT COUNT(*) FROM jobs WHERE kind = 'export_group'") ==
          count("SELECT COUNT(*) FROM exports"));
    CHECK(count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'export.made'") == 0);
    CHECK(count("SELECT COUNT(*) FROM events WHERE topic = 'export.failed'") ==
          count("SELECT COUNT(*) FROM exports WHERE state = 'failed'"));
    /* An archive the thread finished whose end the step could not record: the job,
     * still running, starts the export over and writes it again. */
    CHECK(files_in_exports(".age") <= count("SELECT COUNT(*) FROM exports WHERE state = 'running'"));
    if (count("SELECT COUNT(*) FROM exports") == 0) unchanged(before);
}

static void export_finished(void) {
    CHECK(count("SELECT COUNT(*) FROM exports WHERE state = 'done' AND digest IS NOT NULL AND size > 0 "
                "AND ledger_index IS NOT NULL") == 1);
    CHECK(count("SELECT COUNT(*) FROM exports WHERE state = 'running'") == 0);
    CHECK(count("SELECT COUNT(*) FROM exports WHERE state NOT IN ('done', 'failed')") == 0);
    CHECK(count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'export.made'") == 1);
    CHECK(count("SELECT COUNT(*) FROM ledger_entries l JOIN exports e ON e.ledger_index = l.idx "
                "WHERE l.event = 'export.made'") == 1);
    CHECK(count("SELECT json_extract(progress, '$.messages') FROM exports WHERE state = 'done'") == MESSAGES);
    CHECK(count("SELECT COUNT(*) FROM ledger_entries WHERE event = 'export.content'") >= 1);
    CHECK(files_in_exports(".age") == 1);
    CHECK(files_in_exports(".part") == 0);
    /* The source is untouched. */
    CHECK(count("SELECT COUNT(*) FROM messages") == MESSAGES);
    CHECK(count("SELECT COUNT(*) FROM members") == 2);
}

static void export(void) {
    /* Each point costs a file store and a thread: the first 600 allocations. */
    const op_t ops[] = {{"export", export_setup, export_run, export_consistent, export_finished, 600}};
    walk_all(ops, 1, "export");
}

int main(int argc, char **argv) {
    if (sodium_init() < 0) return 1;
    CHECK(qun_fault_alloc_install());
    snprintf(dir, sizeof dir, "%s/qun-unit-fault-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    qun_core_cfg.data_dir = dir;
    qun_policy_t *policy;
    CHECK(qun_policy_builtin(&policy) == QUN_OK);
    qun_core_cfg.policy = policy;
    qun_core_cfg.purge_batch = 2;
    qun_search_batch = 1; /* each COMMIT indexes, so the walks take indexed text out */
    del_params = json_pack("{s:s}", "messages", "delete");
    const char *only = argc > 1 ? argv[1] : "";
    if (!*only || strcmp(only, "dissolution") == 0) RUN(dissolution);
    if (!*only || strcmp(only, "purge") == 0) RUN(purge);
    if (!*only || strcmp(only, "export") == 0) RUN(export);
    if (!*only || strcmp(only, "import") == 0) RUN(import);
    json_decref(del_params);
    qun_policy_free(policy);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return unit_done("store_fault");
}
