/* SPDX-License-Identifier: MIT */
/* The stored ledger.  An append writes the entry, its leaf hash (level 0) and every
 * perfect subtree it completes (at most log2(n) parents), in the caller's transaction
 * so an event and the state change it records commit together.  Appends are
 * serialized by the single writer. */
#include <string.h>

#include <sodium.h>
#include <stdlib.h>

#include "qun/json.h"
#include "qun/ledger.h"
#include "qun/util.h"

static qun_rc node_get(qun_db_t *db, int level, uint64_t idx, unsigned char out[QUN_HASH], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT hash FROM ledger_nodes WHERE level = $1 AND idx = $2", "ii",
                           (int64_t)level, (int64_t)idx);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_STORE, "ledger node (%d, %llu) is missing", level, (unsigned long long)idx);
    if (rc != QUN_ROW) return rc;
    size_t n;
    const void *p = qun_q_col_blob(q, 0, &n);
    if (n == QUN_HASH) memcpy(out, p, QUN_HASH);
    qun_q_done(q);
    return n == QUN_HASH ? QUN_OK
                         : qun_fail(err, QUN_STORE, "ledger node (%d, %llu) is corrupt", level,
                                    (unsigned long long)idx);
}

static qun_rc node_put(qun_db_t *db, int level, uint64_t idx, const unsigned char h[QUN_HASH],
                       qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_q_prepare(db, "INSERT INTO ledger_nodes(level, idx, hash) VALUES ($1, $2, $3)", &q, err);
    if (rc != QUN_OK) return rc;
    qun_q_int(q, 1, level);
    qun_q_int(q, 2, (int64_t)idx);
    qun_q_blob(q, 3, h, QUN_HASH);
    rc = qun_q_step(q, err);
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc perfect_src(void *ctx, uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH], qun_err_t *err) {
    int level = 0;
    while (((uint64_t)1 << level) < hi - lo)
        level++;
    return node_get(ctx, level, lo >> level, out, err);
}

qun_rc qun_ledger_head(qun_db_t *db, uint64_t *size, unsigned char root[QUN_HASH], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries", "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *size = (uint64_t)qun_q_col_int(q, 0);
    qun_q_done(q);
    return qun_ledger_root_at(db, *size, root, err);
}

qun_rc qun_ledger_root_at(qun_db_t *db, uint64_t size, unsigned char root[QUN_HASH], qun_err_t *err) {
    if (size == 0) {
        crypto_hash_sha256(root, (const unsigned char *)"", 0);
        return QUN_OK;
    }
    return qun_merkle_range(perfect_src, db, 0, size, root, err);
}

qun_rc qun_ledger_inclusion(qun_db_t *db, uint64_t index, uint64_t size, unsigned char proof[][QUN_HASH],
                            int *n, qun_err_t *err) {
    return qun_merkle_inclusion(perfect_src, db, index, size, proof, n, err);
}

qun_rc qun_ledger_consistency(qun_db_t *db, uint64_t old, uint64_t size, unsigned char proof[][QUN_HASH],
                              int *n, qun_err_t *err) {
    return qun_merkle_consistency(perfect_src, db, old, size, proof, n, err);
}

qun_rc qun_ledger_append(qun_db_t *db, const char *event, const char *group, const char *actor,
                         const char *old_state, const char *new_state, json_t *fields, int64_t *index,
                         qun_err_t *err) {
    qun_q_t *q;
    /* Several qund on one PostgreSQL: one appender at a time keeps the tree one sequence. */
    qun_rc rc = qun_db_xlock(db, QUN_LEDGER_LOCK, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries", "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    uint64_t idx = (uint64_t)qun_q_col_int(q, 0);
    qun_q_done(q);
    int64_t now = qun_now();
    char digest[65];
    json_t *params = fields ? json_incref(fields) : json_object();
    bool digested = qun_json_digest(params, digest);
    json_t *e = digested ? json_deep_copy(params) : NULL;
    json_decref(params);
    if (!e) return qun_fail(err, QUN_NOMEM, "cannot build the %s entry", event);
    /* A field lost for want of memory would ledger a wrong entry: count the failures. */
    int bad = 0;
    bad |= json_object_set_new(e, "seq", json_integer((json_int_t)idx));
    bad |= json_object_set_new(e, "time", json_integer(now));
    bad |= json_object_set_new(e, "event", json_string(event));
    bad |= json_object_set_new(e, "group", group ? json_string(group) : json_null());
    bad |= json_object_set_new(e, "actor", actor ? json_string(actor) : json_null());
    bad |= json_object_set_new(e, "old_state", old_state ? json_string(old_state) : json_null());
    bad |= json_object_set_new(e, "new_state", new_state ? json_string(new_state) : json_null());
    bad |= json_object_set_new(e, "params_digest", json_string(digest));
    char *text = bad ? NULL : qun_json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(e);
    if (!text) return qun_fail(err, QUN_NOMEM, "cannot encode a ledger entry");
    unsigned char h[QUN_HASH];
    qun_merkle_leaf(h, text, strlen(text));
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO ledger_entries(idx, event, group_openid, actor_openid, entry, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    "issssi", (int64_t)idx, event, group, actor, text, now);
    free(text);
    if (rc != QUN_DONE) return rc;
    rc = node_put(db, 0, idx, h, err);
    /* Each trailing 1 bit of idx completes one more perfect subtree. */
    for (int level = 0; rc == QUN_OK && ((idx >> level) & 1); level++) {
        unsigned char left[QUN_HASH];
        rc = node_get(db, level, (idx >> level) - 1, left, err);
        if (rc == QUN_OK) {
            qun_merkle_node(h, left, h);
            rc = node_put(db, level + 1, idx >> (level + 1), h, err);
        }
    }
    if (rc == QUN_OK && index) *index = (int64_t)idx;
    return rc;
}
