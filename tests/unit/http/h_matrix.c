/* SPDX-License-Identifier: MIT */
/* Unit tests of the Matrix adapter's shared parts (src/http/h_matrix.c): which paths
 * it answers, how both client prefixes meet one route table, and the codec between qun
 * ids and Matrix ids, which must refuse every id of another server. */
#include <stdio.h>
#include <string.h>

#include "../../src/http/http.h"
#include "qun/matrix.h"
#include "unit.h"

static void paths_and_prefixes(void) {
    static const struct {
        const char *path, *normal;
        bool matrix;
    } rows[] = {
        {"/_matrix/client/r0/sync", "/_matrix/client/v3/sync", true},
        {"/_matrix/client/v3/sync", "/_matrix/client/v3/sync", true},
        {"/_matrix/media/r0/upload", "/_matrix/media/v3/upload", true},
        {"/_matrix/client/versions", "/_matrix/client/versions", true},
        {"/.well-known/matrix/client", "/.well-known/matrix/client", true},
        {"/_matrix/client/r0", "/_matrix/client/r0", true}, /* no slash after the prefix: unchanged */
        {"/v1/groups", "/v1/groups", false},
        {"/_matrixx/client/r0/sync", "/_matrixx/client/r0/sync", false},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        char out[256];
        qun_mx_normalize(rows[i].path, out, sizeof out);
        CHECKF(strcmp(out, rows[i].normal) == 0, rows[i].path);
        CHECKF(qun_mx_path(rows[i].path) == rows[i].matrix, rows[i].path);
    }
}

static void room_ids(void) {
    static const struct {
        const char *room, *gid; /* gid NULL: refused */
    } rows[] = {
        {"!g_Ab3x-_9:qun.test", "g_Ab3x-_9"},
        {"!g_Ab3x:elsewhere.example", NULL},
        {"!g_Ab3x:qun.test.evil", NULL},
        {"!g_Ab3x", NULL},
        {"g_Ab3x:qun.test", NULL},
        {"!u_Ab3x:qun.test", NULL},
        {"!g_:qun.test", NULL},
        {"!g_a/b:qun.test", NULL},
        {"!g_a%3A:qun.test", NULL},
        {"!:qun.test", NULL},
        {"!g_0000000000000000000000000000000000000000:qun.test", NULL}, /* longer than any group id */
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        char gid[QUN_ID_MAX];
        bool ok = qun_mx_room_gid(rows[i].room, gid);
        CHECKF(ok == (rows[i].gid != NULL), rows[i].room);
        if (ok && rows[i].gid) CHECKF(strcmp(gid, rows[i].gid) == 0, rows[i].room);
    }
    char room[QUN_MX_ID_MAX], gid[QUN_ID_MAX];
    qun_mx_room_id("g_round", room, sizeof room);
    CHECK(strcmp(room, "!g_round:qun.test") == 0);
    CHECK(qun_mx_room_gid(room, gid) && strcmp(gid, "g_round") == 0);
}

static void user_ids(void) {
    static const struct {
        const char *user, *local;
    } rows[] = {
        {"@alice:qun.test", "alice"},       {"@_alice=2e:qun.test", "_alice=2e"},
        {"@alice:elsewhere.example", NULL}, {"@alice", NULL},
        {"alice:qun.test", NULL},           {"@:qun.test", NULL},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        char local[QUN_MX_LOCAL_MAX];
        bool ok = qun_mx_user_local(rows[i].user, local);
        CHECKF(ok == (rows[i].local != NULL), rows[i].user);
        if (ok && rows[i].local) CHECKF(strcmp(local, rows[i].local) == 0, rows[i].user);
    }
    CHECK(qun_mx_remote("@bob:elsewhere.example"));
    CHECK(!qun_mx_remote("@bob:qun.test"));
    CHECK(!qun_mx_remote("bob"));
}

int main(void) {
    snprintf(qun_mx_cfg.server_name, sizeof qun_mx_cfg.server_name, "qun.test");
    RUN(paths_and_prefixes);
    RUN(room_ids);
    RUN(user_ids);
    return unit_done("http/h_matrix");
}
