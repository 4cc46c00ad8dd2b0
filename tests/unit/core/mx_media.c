/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/mx_media.c on an in-memory store and a temporary blob
 * directory: media ids, staging and its blob reference, who may attach and read,
 * expiry of staged media, and a group's purge of its links. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "qun/core.h"
#include "qun/jobs.h"
#include "qun/matrix.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t alice, bob, carol;
static char g1[QUN_ID_MAX], g2[QUN_ID_MAX]; /* alice owns both; bob is in g1, carol in g2 */
static int64_t g1_id;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static int64_t group(const char *name, char gid[QUN_ID_MAX], const qun_actor_t *member) {
    json_t *out;
    qun_err_t err;
    qun_group_t g;
    CHECK(qun_group_create(db, &alice, name, "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    CHECK(qun_member_add(db, &alice, gid, member->openid, "member", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_group_load(db, gid, &g, &err) == QUN_OK);
    return g.id;
}

static int64_t refcount(const char *sha) {
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT refcount FROM blobs WHERE sha256 = '%s'", sha);
    return unit_count(db, sql);
}

/* Store bytes and stage them as user uid's upload. */
static void stage(int64_t uid, const char *bytes, char sha[65], char id[QUN_MX_MEDIA_ID_MAX]) {
    qun_err_t err;
    CHECK(qun_blob_put(bytes, strlen(bytes), sha, &err) == QUN_OK);
    CHECK(qun_mx_media_stage(db, uid, sha, (int64_t)strlen(bytes), "a.png", "image/png", id, &err) == QUN_OK);
}

static void test_ids(void) {
    CHECK(qun_mx_media_id_ok("AbC-_09"));
    CHECK(!qun_mx_media_id_ok(""));
    CHECK(!qun_mx_media_id_ok("a/b"));
    CHECK(!qun_mx_media_id_ok("a%2F"));
    CHECK(!qun_mx_media_id_ok(NULL));
    char longid[80];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    CHECK(!qun_mx_media_id_ok(longid));
}

static void test_stage_attach_read(void) {
    char sha[65], sha2[65], id[QUN_MX_MEDIA_ID_MAX], again[QUN_MX_MEDIA_ID_MAX];
    qun_err_t err;
    qun_mx_media_t m;
    stage(alice.uid, "png bytes", sha, id);
    CHECK(strlen(id) == QUN_MX_MEDIA_ID_LEN && qun_mx_media_id_ok(id) && !strstr(sha, id));
    CHECK(refcount(sha) == 1);
    stage(alice.uid, "png bytes", sha2, again); /* the same bytes: a new id, one more reference */
    CHECK(strcmp(id, again) != 0 && strcmp(sha, sha2) == 0 && refcount(sha) == 2);
    /* Staged: the uploader only. */
    CHECK(qun_mx_media_get(db, alice.uid, id, &m, &err) == QUN_OK && m.size == 9);
    CHECK_STR(m.content_type, "image/png");
    CHECK(qun_mx_media_get(db, bob.uid, id, &m, &err) == QUN_FILE_NOT_FOUND);
    CHECK(qun_mx_media_get(db, alice.uid, "nope", &m, &err) == QUN_FILE_NOT_FOUND);
    CHECK(qun_mx_media_get(db, alice.uid, "../x", &m, &err) == QUN_FILE_NOT_FOUND);
    /* Only the uploader attaches; a non-member cannot. */
    CHECK(qun_mx_media_attach(db, &bob, g1, id, &m, &err) == QUN_FILE_NOT_FOUND);
    CHECK(qun_mx_media_attach(db, &carol, g1, id, &m, &err) == QUN_FILE_NOT_FOUND);
    CHECK(qun_mx_media_attach(db, &alice, g1, id, &m, &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM group_files") == 1 && refcount(sha) == 3);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM mx_media_links") == 1);
    /* Linked: the group's members read it, carol does not; bob may forward it there. */
    CHECK(qun_mx_media_get(db, bob.uid, id, &m, &err) == QUN_OK);
    CHECK(qun_mx_media_get(db, carol.uid, id, &m, &err) == QUN_FILE_NOT_FOUND);
    CHECK(qun_mx_media_attach(db, &bob, g1, id, &m, &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM mx_media_links") == 1 && refcount(sha) == 3);
    /* The second staged copy to the same group: one file (dedupe), a link of its own. */
    CHECK(qun_mx_media_attach(db, &alice, g1, again, &m, &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM group_files") == 1 && refcount(sha) == 3);
    /* A second group: its own file row and its own link. */
    CHECK(qun_mx_media_attach(db, &alice, g2, id, &m, &err) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM group_files") == 2 && refcount(sha) == 4);
    CHECK(qun_mx_media_get(db, carol.uid, id, &m, &err) == QUN_OK);
}

static void test_expire(void) {
    char sha[65], id[QUN_MX_MEDIA_ID_MAX];
    qun_err_t err;
    int64_t n = -1;
    stage(bob.uid, "never sent", sha, id);
    CHECK(refcount(sha) == 1);
    CHECK(qun_mx_media_expire(db, qun_now() - 10, &n, &err) == QUN_OK && n == 0);
    CHECK(qun_mx_media_expire(db, qun_now() + 1, &n, &err) == QUN_OK && n == 1); /* linked media stay */
    CHECK(refcount(sha) == -1);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM unlink_queue WHERE sha256 = '%s'", sha);
    CHECK(unit_count(db, sql) == 1);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM mx_media") == 2);
    int unlinked = 0;
    CHECK(qun_blob_unlink_queued(db, &unlinked, &err) == QUN_OK && unlinked == 1);
    char path[1024];
    qun_blob_path(sha, path, sizeof path);
    CHECK(access(path, F_OK) != 0);
}

static void test_purge_group(void) {
    qun_err_t err;
    qun_mx_media_purged_t c = {0, 0, 0};
    bool more = true, released = true;
    /* g1 holds two links; one of its media is linked to g2 as well and stays. */
    CHECK(qun_mx_media_purge_group(db, g1_id, &c, &more, &err) == QUN_OK && !more);
    CHECK(c.links_deleted == 2 && c.media_deleted == 1 && c.blobs_released == 0);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM mx_media") == 1);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM outbox WHERE topic = 'cdn.purge'") == 0);
    CHECK(qun_blob_release(db, "0000", "x", &released, &err) == QUN_OK && !released);
}

int main(void) {
    qun_err_t err;
    char dir[] = "/tmp/qun-unit-mx-media-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    qun_core_cfg.data_dir = dir;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    user("alice", &alice);
    user("bob", &bob);
    user("carol", &carol);
    g1_id = group("one", g1, &bob);
    group("two", g2, &carol);
    RUN(test_ids);
    RUN(test_stage_attach_read);
    RUN(test_expire);
    RUN(test_purge_group);
    qun_db_close(db);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return unit_done("test_core_mx_media");
}
