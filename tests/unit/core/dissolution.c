/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/dissolution.c and src/jobs/purge.c on an in-memory store:
 * the confirmation token's bindings, the mark, and purge steps that are rolled back
 * halfway (a simulated crash) and resumed without double counting. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/jobs.h"
#include "qun/policy.h"
#include "unit.h"
#include "unit_store.h"

static qun_db_t *db;

static void user(const char *name, qun_actor_t *a) {
    json_t *out;
    qun_err_t err;
    CHECK(qun_user_create(db, name, "x", &out, &err) == QUN_OK);
    snprintf(a->openid, sizeof a->openid, "%s", json_string_value(json_object_get(out, "openid")));
    CHECK(qun_user_id(db, a->openid, &a->uid, &err) == QUN_OK);
    json_decref(out);
}

static int64_t count(const char *sql) {
    return unit_count(db, sql);
}

int main(void) {
    qun_err_t err;
    json_t *out;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    qun_policy_t *policy;
    CHECK(qun_policy_builtin(&policy) == QUN_OK);
    qun_core_cfg.policy = policy;
    qun_actor_t owner = {0}, member = {0}, other = {0};
    user("owner", &owner);
    user("member", &member);
    user("other", &other);
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
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(out, "impact"), "messages"), "count")) == 1234);
    char token[80];
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(out, "confirmation_token")));
    json_decref(out);

    /* The token is bound to its parameters and single-use. */
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = NULL}, &out, &err) == QUN_CONFIRMATION_REQUIRED);
    CHECK(qun_diss_request(db, &owner, gid, keep, &(qun_diss_proof_t){.token = token}, &out, &err) == QUN_CONFIRMATION_INVALID);
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = "qct_forged"}, &out, &err) == QUN_CONFIRMATION_INVALID);
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = token}, &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "state")), "pending");
    CHECK(json_integer_value(json_object_get(out, "seconds_left")) == 48 * 3600);
    json_decref(out);
    CHECK(qun_diss_request(db, &owner, gid, del, &(qun_diss_proof_t){.token = token}, &out, &err) == QUN_DISSOLUTION_PENDING);
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
                         "INSERT INTO exports(xid, group_id, requester_id, recipients, state, size, created_at, scope) "
                         "SELECT $1, id, owner_id, '[]', 'done', $2, 0, $3 FROM groups WHERE gid = $4", "siss", xid,
                         (int64_t)(i + 1), i % 5 ? "group" : "self", gid) == QUN_DONE);
        snprintf(path, sizeof path, "%s/exports/%s.age%s", dir, xid, i == 7 ? ".part" : "");
        FILE *f = fopen(path, "w");
        CHECK(f && fputs("ciphertext", f) >= 0 && fclose(f) == 0);
    }
    for (int i = 0; i < 3; i++) {
        char grid[32];
        snprintf(grid, sizeof grid, "gr_unit%d", i);
        CHECK(qun_db_run(db, NULL, &err,
                         "INSERT INTO export_grants(grid, group_id, secret_hash, created_by, created_at, expires_at) "
                         "SELECT $1, id, 'h', owner_id, 0, 1 FROM groups WHERE gid = $2", "ss", grid, gid) == QUN_DONE);
    }

    /* Purge in steps; every other step is rolled back as if qund died before commit. */
    qun_core_cfg.purge_batch = 100;
    CHECK(qun_db_run(db, &q, &err, "SELECT id, group_id, ref_id FROM jobs WHERE kind = 'purge_group'", "") == QUN_ROW);
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
    CHECK(count("SELECT json_extract(receipt, '$.messages_deleted') FROM dissolutions") == 1236); /* + notice + "still here" */
    CHECK(count("SELECT json_extract(receipt, '$.members_removed') FROM dissolutions") == 2);
    CHECK(count("SELECT COUNT(*) FROM groups WHERE state = 'purged'") == 1);
    CHECK(count("SELECT json_extract(receipt, '$.exports_deleted') FROM dissolutions") == 250);
    CHECK(count("SELECT json_extract(receipt, '$.export_bytes_deleted') FROM dissolutions") == 250 * 251 / 2);
    CHECK(count("SELECT json_extract(receipt, '$.grants_deleted') FROM dissolutions") == 3);
    CHECK(count("SELECT json_extract(receipt, '$.message_events_deleted') FROM dissolutions") == 1236);
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

    json_decref(del);
    json_decref(keep);
    qun_db_close(db);
    qun_policy_free(policy);
    return unit_done("core_dissolution");
}
