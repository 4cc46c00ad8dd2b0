/* SPDX-License-Identifier: MIT */
/* Storage grants (include/qun/export.h): an owner lets another application fetch one
 * group's exports without a user session.  A grant is a token `qgr_<grid>_<secret>`:
 * the public id finds the row, the SHA-256 of the 32-byte secret is all the store
 * keeps, compared in constant time.  A grant covers the finished whole-group exports
 * of its group only (never a member's own copy), expires, can be revoked, and is
 * deleted with its group's purge (jobs/purge.c);
 * issuing, each download and revocation are ledgered (`grant.issued`, `grant.used`,
 * `grant.revoked`). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/export.h"
#include "qun/ledger.h"

#define GRANT_PREFIX "qgr_"
#define SECRET_BYTES 32
#define MAX_EXPIRES (366LL * 86400)

typedef struct {
    int64_t id, group_id;
    char grid[QUN_ID_MAX], gid[QUN_ID_MAX], state[16];
} grant_t;

qun_rc qun_grant_auth(qun_db_t *db, const char *token, int64_t *grant_id, int64_t *group_id, qun_err_t *err) {
    /* qgr_ + "gr_" + 22 id chars + "_" + 64 hex */
    size_t n = token ? strlen(token) : 0, plen = strlen(GRANT_PREFIX);
    if (n < plen + 2 + 2 * SECRET_BYTES || n > 200 || strncmp(token, GRANT_PREFIX, plen) != 0)
        return qun_fail(err, QUN_GRANT_INVALID, "send Authorization: Bearer qgr_... (a storage grant token)");
    const char *secret = token + n - 2 * SECRET_BYTES;
    if (secret[-1] != '_') return qun_fail(err, QUN_GRANT_INVALID, "malformed grant token");
    char grid[QUN_ID_MAX];
    size_t glen = (size_t)(secret - 1 - (token + plen));
    if (glen == 0 || glen >= sizeof grid) return qun_fail(err, QUN_GRANT_INVALID, "malformed grant token");
    memcpy(grid, token + plen, glen);
    grid[glen] = '\0';
    char hash[65];
    qun_sha256_hex(hash, secret, 2 * SECRET_BYTES);
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT id, group_id, secret_hash, expires_at, revoked_at FROM export_grants WHERE grid = $1", "s",
        grid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_GRANT_INVALID, "unknown grant token");
    if (rc != QUN_ROW) return rc;
    bool same = strlen(qun_q_col_text(q, 2)) == 64 && qun_ct_equal(qun_q_col_text(q, 2), hash, 64);
    bool revoked = !qun_q_col_null(q, 4), expired = qun_q_col_int(q, 3) <= qun_now();
    *grant_id = qun_q_col_int(q, 0);
    *group_id = qun_q_col_int(q, 1);
    qun_q_done(q);
    if (!same) return qun_fail(err, QUN_GRANT_INVALID, "unknown grant token");
    if (revoked) return qun_fail(err, QUN_GRANT_REVOKED, "grant %s was revoked", grid);
    if (expired) return qun_fail(err, QUN_GRANT_EXPIRED, "grant %s has expired", grid);
    return QUN_OK;
}

static json_t *grant_json(qun_q_t *q, const char *gid) {
    /* columns: grid, label, created_at, expires_at, revoked_at, uses, last_used_at, creator openid */
    int64_t now = qun_now();
    const char *state = !qun_q_col_null(q, 4) ? "revoked" : qun_q_col_int(q, 3) <= now ? "expired" : "active";
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:I, s:I}", "id", qun_q_col_text(q, 0),
                          "group", gid, "scope", "exports", "state", state, "label",
                          qun_q_col_null(q, 1) ? NULL : qun_q_col_text(q, 1), "created_by",
                          qun_q_col_text(q, 7), "created_at", (json_int_t)qun_q_col_int(q, 2), "expires_at",
                          (json_int_t)qun_q_col_int(q, 3), "uses", (json_int_t)qun_q_col_int(q, 5));
    if (!qun_q_col_null(q, 4)) json_object_set_new(o, "revoked_at", json_integer(qun_q_col_int(q, 4)));
    if (!qun_q_col_null(q, 6)) json_object_set_new(o, "last_used_at", json_integer(qun_q_col_int(q, 6)));
    return o;
}

#define GRANT_COLS                                                                                           \
    "g.grid, g.label, g.created_at, g.expires_at, g.revoked_at, g.uses, g.last_used_at, u.openid "           \
    "FROM export_grants g JOIN users u ON u.id = g.created_by "

qun_rc qun_grant_issue(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t expires_in,
                       const char *label, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    if (expires_in < 60 || expires_in > MAX_EXPIRES)
        return qun_fail_field(err, QUN_FIELD_INVALID, "expires_in", "expires_in must be 60 to %lld seconds",
                              (long long)MAX_EXPIRES);
    char grid[QUN_ID_MAX], secret[2 * SECRET_BYTES + 1], hash[65], token[160];
    unsigned char raw[SECRET_BYTES];
    qun_id_new(grid, "gr");
    qun_random(raw, sizeof raw);
    qun_hex(secret, raw, sizeof raw);
    qun_sha256_hex(hash, secret, strlen(secret));
    snprintf(token, sizeof token, GRANT_PREFIX "%s_%s", grid, secret);
    int64_t now = qun_now(), expires = now + expires_in;
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO export_grants(grid, group_id, secret_hash, label, created_by, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "sissiii", grid, g.id, hash, label, a->uid, now, expires);
    if (rc != QUN_DONE) return rc;
    json_t *f = json_pack("{s:s, s:s, s:I, s:s?}", "grant", grid, "scope", "exports", "expires_at",
                          (json_int_t)expires, "label", label);
    rc = qun_ledger_append(db, "grant.issued", g.gid, a->openid, g.state, g.state, f, NULL, err);
    json_decref(f);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:I, s:I}", "id", grid, "group", g.gid, "scope",
                     "exports", "state", "active", "token", token, "label", label, "expires_at",
                     (json_int_t)expires, "created_at", (json_int_t)now);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(token, sizeof token);
    return QUN_OK;
}

qun_rc qun_grant_list(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    json_t *items = json_array();
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, "SELECT " GRANT_COLS "WHERE g.group_id = $1 ORDER BY g.id", "i", g.id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(items, grant_json(q, g.gid));
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o}", "items", items);
    return QUN_OK;
}

qun_rc qun_grant_revoke(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *grid, json_t **out,
                        qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, "SELECT id, revoked_at FROM export_grants WHERE grid = $1 AND group_id = $2",
                    "si", grid, g.id);
    if (rc == QUN_DONE) return qun_fail(err, QUN_GRANT_NOT_FOUND, "group %s has no grant %.40s", g.gid, grid);
    if (rc != QUN_ROW) return rc;
    int64_t id = qun_q_col_int(q, 0);
    bool revoked = !qun_q_col_null(q, 1);
    qun_q_done(q);
    if (!revoked) {
        rc = qun_db_run(db, NULL, err,
                        "UPDATE export_grants SET revoked_at = $2, revoked_by = $3 WHERE id = $1", "iii", id,
                        qun_now(), a->uid);
        if (rc != QUN_DONE) return rc;
        json_t *f = json_pack("{s:s}", "grant", grid);
        rc = qun_ledger_append(db, "grant.revoked", g.gid, a->openid, g.state, g.state, f, NULL, err);
        json_decref(f);
        if (rc != QUN_OK) return rc;
    }
    rc = qun_db_run(db, &q, err, "SELECT " GRANT_COLS "WHERE g.id = $1", "i", id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = grant_json(q, g.gid);
    qun_q_done(q);
    return QUN_OK;
}

static qun_rc group_gid(qun_db_t *db, int64_t group_id, char gid[QUN_ID_MAX], char state[16],
                        qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT gid, state FROM groups WHERE id = $1", "i", group_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    snprintf(gid, QUN_ID_MAX, "%s", qun_q_col_text(q, 0));
    snprintf(state, 16, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_grant_exports(qun_db_t *db, const char *token, json_t **out, qun_err_t *err) {
    int64_t grant_id, group_id;
    qun_rc rc = qun_grant_auth(db, token, &grant_id, &group_id, err);
    char gid[QUN_ID_MAX], state[16];
    if (rc == QUN_OK) rc = group_gid(db, group_id, gid, state, err);
    if (rc != QUN_OK) return rc;
    json_t *items = json_array();
    qun_q_t *q;
    rc = qun_db_run(
        db, &q, err,
        "SELECT xid, digest, size, ledger_index, created_at, finished_at FROM exports WHERE group_id = $1 "
        "AND scope = 'group' AND state = 'done' AND purged_at IS NULL ORDER BY id DESC LIMIT 100",
        "i", group_id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "id", qun_q_col_text(q, 0), "digest",
                             qun_q_col_text(q, 1), "size", (json_int_t)qun_q_col_int(q, 2), "ledger_index",
                             (json_int_t)qun_q_col_int(q, 3), "created_at", (json_int_t)qun_q_col_int(q, 4),
                             "finished_at", (json_int_t)qun_q_col_int(q, 5)));
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:s, s:o}", "group", gid, "items", items);
    return QUN_OK;
}

qun_rc qun_grant_download(qun_db_t *db, const char *token, const char *xid, char *path, size_t size,
                          json_t **out, qun_err_t *err) {
    int64_t grant_id, group_id;
    qun_rc rc = qun_grant_auth(db, token, &grant_id, &group_id, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    /* Another group's export, a member's own copy, a purged one and an id that never
     * existed get one answer: a grant holder learns nothing about exports it does not
     * cover (not even that they exist). */
    rc = qun_db_run(
        db, &q, err,
        "SELECT state, digest, size FROM exports WHERE xid = $1 AND group_id = $2 AND scope = 'group' "
        "AND purged_at IS NULL",
        "si", xid, group_id);
    if (rc == QUN_DONE) return qun_fail(err, QUN_EXPORT_NOT_FOUND, "no export %.40s under this grant", xid);
    if (rc != QUN_ROW) return rc;
    char state[16], digest[65];
    snprintf(state, sizeof state, "%s", qun_q_col_text(q, 0));
    snprintf(digest, sizeof digest, "%s", qun_q_col_null(q, 1) ? "" : qun_q_col_text(q, 1));
    int64_t bytes = qun_q_col_int(q, 2);
    qun_q_done(q);
    if (strcmp(state, "done") != 0) return qun_fail(err, QUN_EXPORT_NOT_READY, "export %s is %s", xid, state);
    char gid[QUN_ID_MAX], gstate[16], grid[QUN_ID_MAX];
    rc = group_gid(db, group_id, gid, gstate, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, &q, err,
                        "UPDATE export_grants SET uses = uses + 1, last_used_at = $2 WHERE id = $1 "
                        "RETURNING grid",
                        "ii", grant_id, qun_now());
    if (rc != QUN_OK && rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    snprintf(grid, sizeof grid, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    json_t *f = json_pack("{s:s, s:s, s:s}", "grant", grid, "export", xid, "digest", digest);
    rc = qun_ledger_append(db, "grant.used", gid, NULL, gstate, gstate, f, NULL, err);
    json_decref(f);
    if (rc != QUN_OK) return rc;
    snprintf(path, size, "%s/exports/%s.age", qun_core_cfg.data_dir, xid);
    if (out) *out = json_pack("{s:s, s:s, s:I}", "id", xid, "digest", digest, "size", (json_int_t)bytes);
    return QUN_OK;
}
