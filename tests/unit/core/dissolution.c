/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/dissolution.c and src/jobs/purge.c on an in-memory store:
 * the state table and qun_diss_transition (every edge taken, every other pair
 * refused, the group's state mirroring its dissolution's), the confirmation token's
 * bindings, the mark, purge steps that are rolled back halfway (a simulated crash)
 * and resumed without double counting, and steps that go on into the next phase while
 * their purge_batch rows last. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/jobs.h"
#include "qun/policy.h"
#include "qun/read.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static int64_t count(const char *sql) {
    return unit_count(db, sql);
}

static qun_actor_t owner, member, other;

/* The lifecycle's edges, written out independently of diss_states.def so that a
 * change to the table is a change to this list too. */
static const struct {
    qun_diss_state_t from, to;
} edges[] = {
    {QUN_DISS_NONE, QUN_DISS_ARCHIVING},      {QUN_DISS_NONE, QUN_DISS_REVIEW},
    {QUN_DISS_NONE, QUN_DISS_PENDING},        {QUN_DISS_ARCHIVING, QUN_DISS_REVIEW},
    {QUN_DISS_ARCHIVING, QUN_DISS_PENDING},   {QUN_DISS_ARCHIVING, QUN_DISS_FAILED},
    {QUN_DISS_ARCHIVING, QUN_DISS_CANCELLED}, {QUN_DISS_REVIEW, QUN_DISS_PENDING},
    {QUN_DISS_REVIEW, QUN_DISS_CANCELLED},    {QUN_DISS_REVIEW, QUN_DISS_REJECTED},
    {QUN_DISS_REVIEW, QUN_DISS_EXPIRED},      {QUN_DISS_PENDING, QUN_DISS_DISSOLVED},
    {QUN_DISS_PENDING, QUN_DISS_CANCELLED},   {QUN_DISS_PENDING, QUN_DISS_REJECTED},
    {QUN_DISS_PENDING, QUN_DISS_EXPIRED},     {QUN_DISS_DISSOLVED, QUN_DISS_PURGING},
    {QUN_DISS_DISSOLVED, QUN_DISS_RESTORED},  {QUN_DISS_PURGING, QUN_DISS_PURGED},
};
#define NEDGES (sizeof edges / sizeof edges[0])

static bool is_edge(int from, int to) {
    for (size_t i = 0; i < NEDGES; i++)
        if ((int)edges[i].from == from && (int)edges[i].to == to) return true;
    return false;
}

static const char *text_of(const char *sql, int64_t id) {
    static char buf[32];
    qun_q_t *q;
    buf[0] = '\0';
    if (qun_db_run(db, &q, NULL, sql, "i", id) == QUN_ROW) {
        snprintf(buf, sizeof buf, "%s", qun_q_col_text(q, 0));
        qun_q_done(q);
    }
    return buf;
}

/* A new group of the owner's with one dissolution row in state `from` (for NONE: a row
 * just inserted, as qun_diss_request leaves it), the group in from's group state. */
static void group_in(qun_diss_state_t from, int64_t *group_id, int64_t *did) {
    json_t *out;
    qun_err_t err;
    qun_q_t *q;
    CHECK(qun_group_create(db, &owner, "lifecycle", "standard", NULL, NULL, &out, &err) == QUN_OK);
    const char *gid = json_string_value(json_object_get(out, "id"));
    CHECK(qun_db_run(db, &q, &err, "SELECT id FROM groups WHERE gid = $1", "s", gid) == QUN_ROW);
    *group_id = qun_q_col_int(q, 0);
    qun_q_done(q);
    json_decref(out);
    CHECK(qun_db_run(db, &q, &err,
                     "INSERT INTO dissolutions(group_id, requested_by, messages, state, requested_at) "
                     "VALUES ($1, $2, 'keep', $3, 0) RETURNING id",
                     "iis", *group_id, owner.uid,
                     from == QUN_DISS_NONE ? "review" : qun_diss_state_name(from)) == QUN_ROW);
    *did = qun_q_col_int(q, 0);
    qun_q_done(q);
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = $2 WHERE id = $1", "is", *group_id,
                     qun_group_state_name(qun_diss_group_state(from))) == QUN_DONE);
}

/* The names are pinned (stored and sent over the API); every one parses back. */
static void state_names_pinned(void) {
    static const char *diss[] = {NULL,     "archiving", "review",   "pending", "dissolved", "purging",
                                 "purged", "cancelled", "rejected", "expired", "restored",  "failed"};
    static const char *group[] = {"active", "review", "pending", "dissolved", "purging", "purged"};
    CHECK(QUN_DISS__STATES == sizeof diss / sizeof diss[0]);
    CHECK(QUN_GROUP__STATES == sizeof group / sizeof group[0]);
    for (int s = 0; s < QUN_DISS__STATES; s++) {
        const char *name = qun_diss_state_name((qun_diss_state_t)s);
        CHECK(diss[s] ? name && strcmp(name, diss[s]) == 0 : name == NULL);
        if (name) CHECK(qun_diss_state_parse(name) == (qun_diss_state_t)s);
        CHECK(qun_diss_group_state((qun_diss_state_t)s) != QUN_GROUP_STATE_INVALID);
    }
    for (int s = 0; s < QUN_GROUP__STATES; s++) {
        CHECK_STR(qun_group_state_name((qun_group_state_t)s), group[s]);
        CHECK(qun_group_state_parse(group[s]) == (qun_group_state_t)s);
    }
    CHECK(qun_diss_state_parse("none") == QUN_DISS_INVALID);
    CHECK(qun_diss_state_parse(NULL) == QUN_DISS_INVALID);
    CHECK(qun_diss_state_parse("Pending") == QUN_DISS_INVALID);
    CHECK(qun_group_state_parse("archiving") == QUN_GROUP_STATE_INVALID);
    CHECK(qun_diss_state_name(QUN_DISS_INVALID) == NULL && qun_diss_state_name(QUN_DISS__STATES) == NULL);
    CHECK(qun_group_state_name(QUN_GROUP_STATE_INVALID) == NULL);
    /* live groups, cancellable and open dissolutions */
    CHECK(qun_group_state_live(QUN_GROUP_ACTIVE) && qun_group_state_live(QUN_GROUP_REVIEW) &&
          qun_group_state_live(QUN_GROUP_PENDING) && !qun_group_state_live(QUN_GROUP_DISSOLVED) &&
          !qun_group_state_live(QUN_GROUP_PURGING) && !qun_group_state_live(QUN_GROUP_PURGED));
    for (int s = 0; s < QUN_DISS__STATES; s++) {
        bool cancellable = s == QUN_DISS_ARCHIVING || s == QUN_DISS_REVIEW || s == QUN_DISS_PENDING;
        bool open = cancellable || s == QUN_DISS_DISSOLVED || s == QUN_DISS_PURGING;
        CHECK(qun_diss_cancellable((qun_diss_state_t)s) == cancellable);
        CHECK(qun_diss_open((qun_diss_state_t)s) == open);
    }
    /* Every group state name passes the groups table's CHECK constraint. */
    qun_err_t err;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    for (int s = 0; s < QUN_GROUP__STATES; s++)
        CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = $1", "s",
                         qun_group_state_name((qun_group_state_t)s)) == QUN_DONE);
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = 'archiving'", "") != QUN_DONE);
    CHECK(qun_db_exec(db, "ROLLBACK", &err) == QUN_OK);
}

/* The table's edges are exactly the list above. */
static void table_matches_edges(void) {
    int allowed = 0;
    for (int from = 0; from < QUN_DISS__STATES; from++)
        for (int to = 0; to < QUN_DISS__STATES; to++) {
            bool ok = qun_diss_allowed((qun_diss_state_t)from, (qun_diss_state_t)to);
            CHECK(ok == is_edge(from, to));
            allowed += ok;
        }
    CHECK(allowed == (int)NEDGES);
    CHECK(!qun_diss_allowed(QUN_DISS_INVALID, QUN_DISS_PENDING) &&
          !qun_diss_allowed(QUN_DISS_PENDING, QUN_DISS_INVALID));
}

/* Every edge succeeds on a real row: the dissolution and its group both move, and
 * the group's state is the group state of its dissolution's (I3). */
static void every_edge_succeeds(void) {
    for (size_t i = 0; i < NEDGES; i++) {
        int64_t group_id, did;
        qun_err_t err;
        group_in(edges[i].from, &group_id, &did);
        CHECK(qun_diss_transition(db, did, edges[i].from, edges[i].to, &err) == QUN_OK);
        CHECK_STR(text_of("SELECT state FROM dissolutions WHERE id = $1", did),
                  qun_diss_state_name(edges[i].to));
        CHECK_STR(text_of("SELECT state FROM groups WHERE id = $1", group_id),
                  qun_group_state_name(qun_diss_group_state(edges[i].to)));
    }
}

/* A row that moved meanwhile is a conflict the caller gets back, and nothing moves
 * (the caller's transaction rolls back). */
static void stale_from_is_a_conflict(void) {
    int64_t group_id, did;
    qun_err_t err;
    group_in(QUN_DISS_PENDING, &group_id, &did);
    /* The dissolution is not in `from`. */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_diss_transition(db, did, QUN_DISS_REVIEW, QUN_DISS_PENDING, &err) == QUN_GROUP_NOT_ACTIVE);
    CHECK(qun_db_exec(db, "ROLLBACK", &err) == QUN_OK);
    /* The group is not in from's group state. */
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = 'review' WHERE id = $1", "i", group_id) ==
          QUN_DONE);
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_diss_transition(db, did, QUN_DISS_PENDING, QUN_DISS_DISSOLVED, &err) == QUN_GROUP_NOT_ACTIVE);
    CHECK(qun_db_exec(db, "ROLLBACK", &err) == QUN_OK);
    CHECK_STR(text_of("SELECT state FROM dissolutions WHERE id = $1", did), "pending");
    CHECK(qun_db_run(db, NULL, &err, "UPDATE groups SET state = 'pending' WHERE id = $1", "i", group_id) ==
          QUN_DONE);
}

/* Every pair that is not an edge is a programming error: the transition asserts
 * before touching the store (checked in a child process per pair). */
static void every_other_pair_refused(void) {
#ifndef NDEBUG
    int refused = 0, pairs = 0;
    for (int from = 0; from < QUN_DISS__STATES; from++)
        for (int to = 0; to < QUN_DISS__STATES; to++) {
            if (is_edge(from, to)) continue;
            pairs++;
            fflush(NULL);
            pid_t pid = fork();
            if (pid == 0) {
                if (!freopen("/dev/null", "w", stderr)) _exit(3);
                qun_err_t err;
                qun_diss_transition(db, 1, (qun_diss_state_t)from, (qun_diss_state_t)to, &err);
                _exit(0);
            }
            int status = 0;
            CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
            bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
            if (!aborted) fprintf(stderr, "not refused: %d -> %d\n", from, to);
            refused += aborted;
        }
    CHECK(pairs == QUN_DISS__STATES * QUN_DISS__STATES - (int)NEDGES);
    CHECK(refused == pairs);
#endif
}

/* Cancelling through the API path: the dissolution ends `cancelled`, the group is
 * `active` again, and a second request may follow. */
static void cancel_mirrors(void) {
    json_t *out, *keep = json_pack("{s:s}", "messages", "keep");
    qun_err_t err;
    CHECK(qun_group_create(db, &owner, "cancelled", "standard", NULL, NULL, &out, &err) == QUN_OK);
    char gid[QUN_ID_MAX];
    snprintf(gid, sizeof gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    for (int round = 0; round < 2; round++) {
        CHECK(qun_diss_preview(db, &owner, gid, keep, NULL, &out, &err) == QUN_OK);
        char token[80];
        snprintf(token, sizeof token, "%s", json_string_value(json_object_get(out, "confirmation_token")));
        json_decref(out);
        CHECK(qun_diss_request(db, &owner, gid, keep, &(qun_diss_proof_t){.token = token}, &out, &err) ==
              QUN_OK);
        CHECK_STR(json_string_value(json_object_get(out, "state")), "pending");
        CHECK_STR(json_string_value(json_object_get(out, "dissolution_state")), "pending");
        json_decref(out);
        CHECK(qun_diss_cancel(db, &owner, gid, &out, &err) == QUN_OK);
        CHECK_STR(json_string_value(json_object_get(out, "state")), "active");
        CHECK_STR(json_string_value(json_object_get(out, "dissolution_state")), "cancelled");
        json_decref(out);
        CHECK(qun_diss_cancel(db, &owner, gid, &out, &err) == QUN_DISSOLUTION_NOT_FOUND);
    }
    json_decref(keep);
}

/* The whole way through: request, mark, purge in steps with every other step rolled
 * back as a crash; the group's state follows its dissolution's at each stop. */
static void purge_resumes_after_crashes(void) {
    qun_err_t err;
    json_t *out;
    CHECK(qun_group_create(db, &owner, "doomed", "standard", NULL, NULL, &out, &err) == QUN_OK);
    char gid[QUN_ID_MAX];
    snprintf(gid, sizeof gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_member_add(db, &owner, gid, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    for (int i = 0; i < 1234; i++) {
        CHECK(qun_message_post(db, &member, gid, "hello", &out, &err) == QUN_OK);
        json_decref(out);
    }

    /* The member may not preview; the owner may. */
    json_t *del = json_pack("{s:s}", "messages", "delete"), *keep = json_pack("{s:s}", "messages", "keep");
    CHECK(qun_diss_preview(db, &member, gid, del, NULL, &out, &err) == QUN_FORBIDDEN_ROLE);
    CHECK(qun_diss_preview(db, &other, gid, del, NULL, &out, &err) == QUN_GROUP_NOT_FOUND);
    CHECK(qun_diss_preview(db, &owner, gid, del, NULL, &out, &err) == QUN_OK);
    CHECK(json_integer_value(
              json_object_get(json_object_get(json_object_get(out, "impact"), "messages"), "count")) == 1234);
    char token[80];
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(out, "confirmation_token")));
    json_decref(out);

    /* The token is bound to its parameters and single-use. */
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = NULL}, &out, &err) ==
          QUN_CONFIRMATION_REQUIRED);
    CHECK(qun_diss_request(db, &owner, gid, keep, &(qun_diss_proof_t){.token = token}, &out, &err) ==
          QUN_CONFIRMATION_INVALID);
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = "qct_forged"}, &out, &err) ==
          QUN_CONFIRMATION_INVALID);
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = token}, &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "state")), "pending");
    CHECK(json_integer_value(json_object_get(out, "seconds_left")) == 48 * 3600);
    json_decref(out);
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = token}, &out, &err) ==
          QUN_DISSOLUTION_PENDING);
    /* During the cooling-off members keep access, and the timer does nothing early. */
    CHECK(qun_message_post(db, &member, gid, "still here", &out, &err) == QUN_OK);
    json_decref(out);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "SELECT id FROM dissolutions", "") == QUN_ROW);
    int64_t did = qun_q_col_int(q, 0);
    qun_q_done(q);
    bool marked;
    CHECK(qun_diss_mark_due(db, did, &marked, &err) == QUN_OK && !marked);
    qun_clock_advance(48 * 3600);
    CHECK(qun_diss_mark_due(db, did, &marked, &err) == QUN_OK && marked);
    CHECK(qun_diss_mark_due(db, did, &marked, &err) == QUN_OK && !marked); /* exactly once */
    CHECK(count("SELECT COUNT(*) FROM dissolutions d JOIN groups g ON g.id = d.group_id "
                "WHERE d.state = 'dissolved' AND g.state = 'dissolved'") == 1);
    /* Members lose access at once. */
    CHECK(qun_message_post(db, &member, gid, "late", &out, &err) == QUN_GROUP_GONE);
    qun_clock_advance(7 * 86400); /* past the purge grace */

    /* The group's exports (250 rows, each with its .age file; one also with a leftover
     * .part) and grants: the purge deletes them in batches too. */
    char dir[] = "/tmp/qun-unit-purge-XXXXXX", path[600];
    CHECK(mkdtemp(dir) != NULL);
    qun_core_cfg.data_dir = dir;
    snprintf(path, sizeof path, "%s/exports", dir);
    CHECK(mkdir(path, 0700) == 0);
    for (int i = 0; i < 250; i++) {
        char xid[32];
        snprintf(xid, sizeof xid, "x_unit%03d", i);
        CHECK(qun_db_run(db, NULL, &err,
                         "INSERT INTO exports(xid, group_id, requester_id, recipients, state, size, "
                         "created_at, scope) "
                         "SELECT $1, id, owner_id, '[]', 'done', $2, 0, $3 FROM groups WHERE gid = $4",
                         "siss", xid, (int64_t)(i + 1), i % 5 ? "group" : "self", gid) == QUN_DONE);
        snprintf(path, sizeof path, "%s/exports/%s.age%s", dir, xid, i == 7 ? ".part" : "");
        FILE *f = fopen(path, "w");
        CHECK(f && fputs("ciphertext", f) >= 0 && fclose(f) == 0);
    }
    for (int i = 0; i < 3; i++) {
        char grid[32];
        snprintf(grid, sizeof grid, "gr_unit%d", i);
        CHECK(
            qun_db_run(
                db, NULL, &err,
                "INSERT INTO export_grants(grid, group_id, secret_hash, created_by, created_at, expires_at) "
                "SELECT $1, id, 'h', owner_id, 0, 1 FROM groups WHERE gid = $2",
                "ss", grid, gid) == QUN_DONE);
    }

    /* Purge in steps; every other step is rolled back as if qund died before commit. */
    qun_core_cfg.purge_batch = 100;
    CHECK(qun_db_run(db, &q, &err, "SELECT id, group_id, ref_id FROM jobs WHERE kind = 'purge_group'", "") ==
          QUN_ROW);
    int64_t job = qun_q_col_int(q, 0), group = qun_q_col_int(q, 1), ref = qun_q_col_int(q, 2);
    qun_q_done(q);
    bool finished = false;
    int steps = 0;
    while (!finished && steps < 1000) {
        bool crash = steps++ % 2 == 1;
        CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
        int64_t defer = 0;
        CHECK(qun_purge_group_step(db, job, group, ref, &finished, &defer, &err) == QUN_OK);
        CHECK(defer == 0);
        CHECK(qun_db_exec(db, crash ? "ROLLBACK" : "COMMIT", &err) == QUN_OK);
        if (crash) finished = false;
    }
    CHECK(finished);
    CHECK(count("SELECT COUNT(*) FROM messages") == 0);
    CHECK(count("SELECT COUNT(*) FROM members") == 0);
    CHECK(count("SELECT json_extract(receipt, '$.messages_deleted') FROM dissolutions") ==
          1237); /* + the pending and dissolved notices + "still here" */
    CHECK(count("SELECT json_extract(receipt, '$.members_removed') FROM dissolutions") == 2);
    CHECK(count("SELECT COUNT(*) FROM dissolutions d JOIN groups g ON g.id = d.group_id "
                "WHERE d.state = 'purged' AND g.state = 'purged'") == 1);
    CHECK(count("SELECT json_extract(receipt, '$.exports_deleted') FROM dissolutions") == 250);
    CHECK(count("SELECT json_extract(receipt, '$.export_bytes_deleted') FROM dissolutions") == 250 * 251 / 2);
    CHECK(count("SELECT json_extract(receipt, '$.grants_deleted') FROM dissolutions") == 3);
    CHECK(count("SELECT json_extract(receipt, '$.message_events_deleted') FROM dissolutions") == 1237);
    /* Every other event row of the group went too, but the group.purged it ends with. */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM events WHERE group_id = %lld AND topic != 'group.purged'",
             (long long)group);
    CHECK(count(sql) == 0);
    CHECK(count("SELECT COUNT(*) FROM events WHERE topic = 'group.purged'") == 1);
    CHECK(count("SELECT COUNT(*) FROM exports WHERE purged_at IS NULL") == 0);
    CHECK(count("SELECT COUNT(*) FROM export_grants") == 0);
    CHECK(count("SELECT COUNT(*) FROM events WHERE topic = 'message.created'") == 0);
    snprintf(path, sizeof path, "%s/exports", dir);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    int left = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') left++;
    closedir(d);
    CHECK(left == 0); /* every .age and the .part are gone */
    CHECK(rmdir(path) == 0 && rmdir(dir) == 0);
    qun_core_cfg.data_dir = NULL; /* dir was this function's */

    json_decref(del);
    json_decref(keep);
}

/* A group dissolved and past its grace, with n messages by the member (read to the end),
 * exports rows and grants: the ids of its purge job, group and dissolution. */
static void dissolve_for_purge(const char *name, int n, int exports, int grants, int64_t ids[3]) {
    qun_err_t err;
    json_t *out;
    CHECK(qun_group_create(db, &owner, name, "standard", NULL, NULL, &out, &err) == QUN_OK);
    char gid[QUN_ID_MAX];
    snprintf(gid, sizeof gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_member_add(db, &owner, gid, member.openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    for (int i = 0; i < n; i++) {
        CHECK(qun_message_post(db, &member, gid, "hello", &out, &err) == QUN_OK);
        json_decref(out);
    }
    CHECK(qun_read_mark_group(db, &member, gid, n, &out, &err) == QUN_OK);
    json_decref(out);
    for (int i = 0; i < exports + grants; i++) {
        char id[48];
        snprintf(id, sizeof id, "%s_%s%d", i < exports ? "x" : "gr", name, i);
        CHECK(qun_db_run(db, NULL, &err,
                         i < exports
                             ? "INSERT INTO exports(xid, group_id, requester_id, recipients, state, size, "
                               "created_at, scope) SELECT $1, id, owner_id, '[]', 'done', 1, 0, 'group' "
                               "FROM groups WHERE gid = $2"
                             : "INSERT INTO export_grants(grid, group_id, secret_hash, created_by, "
                               "created_at, expires_at) SELECT $1, id, 'h', owner_id, 0, 1 FROM groups "
                               "WHERE gid = $2",
                         "ss", id, gid) == QUN_DONE);
    }
    json_t *del = json_pack("{s:s}", "messages", "delete");
    CHECK(qun_diss_preview(db, &owner, gid, del, NULL, &out, &err) == QUN_OK);
    char token[80];
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(out, "confirmation_token")));
    json_decref(out);
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = token}, &out, &err) == QUN_OK);
    json_decref(out);
    json_decref(del);
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err,
                     "SELECT d.id FROM dissolutions d JOIN groups g ON g.id = d.group_id WHERE g.gid = $1",
                     "s", gid) == QUN_ROW);
    int64_t did = qun_q_col_int(q, 0);
    qun_q_done(q);
    qun_clock_advance(48 * 3600);
    bool marked;
    CHECK(qun_diss_mark_due(db, did, &marked, &err) == QUN_OK && marked);
    qun_clock_advance(7 * 86400);
    CHECK(qun_db_run(db, &q, &err,
                     "SELECT id, group_id, ref_id FROM jobs WHERE kind = 'purge_group' AND ref_id = $1", "i",
                     did) == QUN_ROW);
    for (int i = 0; i < 3; i++)
        ids[i] = qun_q_col_int(q, i);
    qun_q_done(q);
}

/* The rows a purge step spent (the counters bounded by purge_batch), from its progress. */
static int64_t spent(int64_t job, int *phases) {
    static const char *keys[] = {"messages_deleted",  "files_removed",          "media_links_deleted",
                                 "exports_deleted",   "message_events_deleted", "members_removed",
                                 "read_marks_deleted"};
    static int64_t last[sizeof keys / sizeof keys[0]];
    static int64_t last_job;
    qun_q_t *q;
    json_t *p = NULL;
    if (qun_db_run(db, &q, NULL, "SELECT progress FROM jobs WHERE id = $1", "i", job) == QUN_ROW) {
        p = json_loads(qun_q_col_text(q, 0), 0, NULL);
        qun_q_done(q);
    }
    if (job != last_job) memset(last, 0, sizeof last), last_job = job;
    int64_t sum = 0;
    *phases = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int64_t v = json_integer_value(json_object_get(p, keys[i]));
        sum += v - last[i];
        *phases += v != last[i];
        last[i] = v;
    }
    json_decref(p);
    return sum;
}

/* Run a purge to its end as the jobs thread does (a step a transaction, the database's
 * files scrubbed after a step that asks); its number of steps. */
static int purge_steps(const int64_t ids[3], int64_t batch, int *widest) {
    qun_err_t err;
    qun_core_cfg.purge_batch = batch;
    bool finished = false;
    int steps = 0;
    *widest = 0;
    while (!finished && steps < 100) {
        int64_t defer = 0;
        CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
        CHECK(qun_purge_group_step(db, ids[0], ids[1], ids[2], &finished, &defer, &err) == QUN_OK);
        CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);
        if (qun_purge_take_scrub()) CHECK(qun_db_scrub(db, &err) == QUN_OK);
        steps++;
        int phases;
        int64_t n = spent(ids[0], &phases);
        CHECKF(n <= batch, "a step spent more than purge_batch rows");
        if (phases > *widest) *widest = phases;
    }
    CHECK(finished);
    return steps;
}

/* A step goes on into the next phase while its purge_batch rows last: a small group's
 * purge takes three transactions (its rows; its people; the scrub of the files after
 * their commit), not one a phase, and no step spends more than purge_batch rows. */
static void a_step_goes_on_while_its_rows_last(void) {
    char dir[] = "/tmp/qun-unit-steps-XXXXXX"; /* the exports' files: none to find */
    CHECK(mkdtemp(dir) != NULL);
    qun_core_cfg.data_dir = dir;
    int64_t small[3], big[3];
    dissolve_for_purge("small", 6, 3, 2, small);
    dissolve_for_purge("batches", 30, 9, 1, big);
    int widest;
    CHECK(purge_steps(small, 500, &widest) == 3);
    CHECK(widest >= 2); /* messages, exports and their events in the first step */
    CHECK(purge_steps(big, 7, &widest) >= (30 + 2 + 9 + 30 + 2) / 7);
    CHECK(widest >= 2);
    CHECK(unit_count_i(db,
                       "SELECT json_extract(receipt, '$.messages_deleted') FROM dissolutions WHERE id = $1",
                       small[2]) == 6 + 2); /* and the pending and dissolved notices */
    CHECK(unit_count_i(db,
                       "SELECT json_extract(receipt, '$.exports_deleted') FROM dissolutions WHERE id = $1",
                       small[2]) == 3);
    CHECK(unit_count_i(db, "SELECT json_extract(receipt, '$.grants_deleted') FROM dissolutions WHERE id = $1",
                       small[2]) == 2);
    CHECK(unit_count_i(db,
                       "SELECT json_extract(receipt, '$.messages_deleted') FROM dissolutions WHERE id = $1",
                       big[2]) == 30 + 2);
    CHECK(unit_count_i(db,
                       "SELECT json_extract(receipt, '$.exports_deleted') FROM dissolutions WHERE id = $1",
                       big[2]) == 9);
    CHECK(unit_count_i(db,
                       "SELECT json_extract(receipt, '$.read_marks_deleted') FROM dissolutions WHERE id = $1",
                       big[2]) == 1);
    for (int i = 0; i < 2; i++) {
        int64_t g = (i ? big : small)[1];
        CHECK(unit_count_i(db, "SELECT COUNT(*) FROM messages WHERE group_id = $1", g) == 0);
        CHECK(unit_count_i(db, "SELECT COUNT(*) FROM members WHERE group_id = $1", g) == 0);
        CHECK(unit_count_i(db, "SELECT COUNT(*) FROM events WHERE group_id = $1 AND topic != 'group.purged'",
                           g) == 0);
        CHECK(unit_count_i(db, "SELECT state = 'purged' FROM groups WHERE id = $1", g) == 1);
    }
    CHECK(rmdir(dir) == 0);
    qun_core_cfg.data_dir = NULL;
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    qun_policy_t *policy;
    CHECK(qun_policy_builtin(&policy) == QUN_OK);
    qun_core_cfg.policy = policy;
    user("owner", &owner);
    user("member", &member);
    user("other", &other);
    RUN(purge_resumes_after_crashes); /* first: it counts every row of some tables */
    RUN(a_step_goes_on_while_its_rows_last);
    RUN(state_names_pinned);
    RUN(table_matches_edges);
    RUN(every_edge_succeeds);
    RUN(stale_from_is_a_conflict);
    RUN(every_other_pair_refused);
    RUN(cancel_mirrors);
    qun_db_close(db);
    qun_policy_free(policy);
    return unit_done("core_dissolution");
}
