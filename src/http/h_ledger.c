/* SPDX-License-Identifier: MIT */
/* The ledger over HTTP: the signed checkpoint, the verifier key, entries, inclusion
 * and consistency proofs, and a group's history.  Who reads what: every
 * authenticated user gets every leaf hash (so anyone can recompute roots), but an
 * entry's text only for groups they belong to or own, or events they acted in;
 * server admins read everything. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "qun/ledger.h"

#define PAGE_MAX 1000

static json_t *hashes_json(unsigned char p[][QUN_HASH], int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        char hex[2 * QUN_HASH + 1];
        qun_hex(hex, p[i], QUN_HASH);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

qun_rc h_ledger_checkpoint(qun_req_t *r) {
    uint64_t size;
    unsigned char root[QUN_HASH];
    qun_rc rc = qun_ledger_head(r->db, &size, root, &r->err);
    if (rc != QUN_OK) return rc;
    r->out_text = qun_note_checkpoint(qun_server_cfg.ledger_key, size, root);
    if (!r->out_text) return qun_fail(&r->err, QUN_NOMEM, "cannot sign the checkpoint");
    r->status = 200;
    snprintf(r->content_type, sizeof r->content_type, "text/plain; charset=utf-8");
    return QUN_OK;
}

qun_rc h_ledger_key(qun_req_t *r) {
    char v[256];
    qun_note_verifier(qun_server_cfg.ledger_key, v, sizeof v);
    return qun_ok(r, 200, json_pack("{s:s, s:s, s:s}", "origin", qun_server_cfg.ledger_key->name,
                                    "verifier_key", v, "algorithm", "ed25519"));
}

/* The hashed text of an entry, parsed: what the API shows of an entry (event, group)
 * comes from here, never from the side columns of ledger_entries (event, group_openid,
 * actor_openid), which only index the text and which no hash covers, so an offline
 * edit of them cannot change what anyone is shown.  NULL when the text is not a JSON
 * object (a damaged row: `qun audit verify` names it). */
static json_t *entry_parse(const char *text) {
    json_t *e = json_loads(text, 0, NULL);
    if (json_is_object(e)) return e;
    json_decref(e);
    return NULL;
}

/* Whether the hashed member key of e equals the side column value (NULL or "" for an
 * SQL NULL): the SQL that decides who may read an entry filters on the side columns,
 * so a row whose columns disagree with its text is shown to server admins only. */
static bool column_agrees(json_t *e, const char *key, const char *column, bool column_null) {
    json_t *v = json_object_get(e, key);
    if (column_null) return v == NULL || json_is_null(v);
    return json_is_string(v) && strcmp(json_string_value(v), column) == 0;
}

/* The event and group of entry e into the listing item it. */
static void entry_show(json_t *it, json_t *e) {
    json_t *event = json_object_get(e, "event"), *group = json_object_get(e, "group");
    if (json_is_string(event)) json_object_set(it, "event", event);
    if (json_is_string(group)) json_object_set(it, "group", group);
}

qun_rc h_ledger_entries(qun_req_t *r) {
    uint64_t size;
    unsigned char root[QUN_HASH];
    int64_t start, end;
    qun_rc rc = qun_ledger_head(r->db, &size, root, &r->err);
    if (rc == QUN_OK) rc = qun_query_int(r, "start", 0, INT64_MAX / 2, &start);
    if (rc == QUN_OK) rc = qun_query_int(r, "end", (int64_t)size < start + PAGE_MAX ? (int64_t)size : start + PAGE_MAX,
                                         INT64_MAX / 2, &end);
    if (rc != QUN_OK) return rc;
    if (end > (int64_t)size || start > end || end - start > PAGE_MAX)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "end",
                              "need start <= end <= %llu and at most %d entries", (unsigned long long)size, PAGE_MAX);
    qun_q_t *q;
    json_t *items = json_array();
    rc = qun_db_run(r->db, &q, &r->err,
        "SELECT e.idx, e.group_openid, e.actor_openid, e.entry, n.hash, "
        "(e.actor_openid = $3 OR EXISTS (SELECT 1 FROM groups g LEFT JOIN members m "
        " ON m.group_id = g.id AND m.user_id = $4 WHERE g.gid = e.group_openid "
        " AND (m.user_id IS NOT NULL OR g.owner_id = $4))) "
        "FROM ledger_entries e JOIN ledger_nodes n ON n.level = 0 AND n.idx = e.idx "
        "WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx",
        "iisi", start, end, r->actor.openid, r->actor.uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, &r->err)) {
        size_t n;
        const void *h = qun_q_col_blob(q, 4, &n);
        char hex[2 * QUN_HASH + 1] = "";
        if (n == QUN_HASH) qun_hex(hex, h, QUN_HASH);
        json_t *it = json_pack("{s:I, s:s}", "index", (json_int_t)qun_q_col_int(q, 0), "leaf_hash", hex);
        json_t *e = entry_parse(qun_q_col_text(q, 3));
        bool visible = r->actor.is_admin ||
                       (qun_q_col_int(q, 5) && e && column_agrees(e, "group", qun_q_col_text(q, 1), qun_q_col_null(q, 1)) &&
                        column_agrees(e, "actor", qun_q_col_text(q, 2), qun_q_col_null(q, 2)));
        if (visible) {
            if (e) entry_show(it, e);
            json_object_set_new(it, "entry", json_string(qun_q_col_text(q, 3)));
        }
        json_decref(e);
        json_array_append_new(items, it);
    }
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    return qun_ok(r, 200, json_pack("{s:I, s:I, s:I, s:o}", "start", (json_int_t)start, "end", (json_int_t)end,
                                    "tree_size", (json_int_t)size, "items", items));
}

/* GET /v1/ledger/nodes?level=&start=&end=: the stored subtree hashes of one level, the
 * ones every root and proof is built from.  They are public like the leaf hashes (each
 * follows from them), and `qun audit verify` recomputes every one from the leaves, so
 * a damaged stored node is named rather than silently serving proofs that fail. */
qun_rc h_ledger_nodes(qun_req_t *r) {
    uint64_t size;
    unsigned char root[QUN_HASH];
    int64_t level, start, end;
    qun_rc rc = qun_ledger_head(r->db, &size, root, &r->err);
    if (rc == QUN_OK) rc = qun_query_int(r, "level", -1, 62, &level);
    if (rc != QUN_OK) return rc;
    int64_t count = (int64_t)(size >> level); /* complete subtrees at this level */
    rc = qun_query_int(r, "start", 0, INT64_MAX / 2, &start);
    if (rc == QUN_OK) rc = qun_query_int(r, "end", count < start + PAGE_MAX ? count : start + PAGE_MAX,
                                         INT64_MAX / 2, &end);
    if (rc != QUN_OK) return rc;
    if (end > count || start > end || end - start > PAGE_MAX)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "end",
                              "need start <= end <= %lld (the level's complete subtrees) and at most %d nodes",
                              (long long)count, PAGE_MAX);
    qun_q_t *q;
    json_t *items = json_array();
    rc = qun_db_run(r->db, &q, &r->err,
                    "SELECT idx, hash FROM ledger_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
                    "iii", level, start, end);
    for (; rc == QUN_ROW; rc = qun_q_step(q, &r->err)) {
        size_t n;
        const void *h = qun_q_col_blob(q, 1, &n);
        char hex[2 * QUN_HASH + 1] = "";
        if (n == QUN_HASH) qun_hex(hex, h, QUN_HASH);
        json_array_append_new(items, json_pack("{s:I, s:s}", "index", (json_int_t)qun_q_col_int(q, 0), "hash", hex));
    }
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    return qun_ok(r, 200, json_pack("{s:I, s:I, s:I, s:I, s:o}", "level", (json_int_t)level, "start", (json_int_t)start,
                                    "end", (json_int_t)end, "tree_size", (json_int_t)size, "items", items));
}

qun_rc h_ledger_inclusion(qun_req_t *r) {
    uint64_t size;
    unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int64_t index, at;
    int n;
    qun_rc rc = qun_ledger_head(r->db, &size, root, &r->err);
    if (rc == QUN_OK) rc = qun_query_int(r, "index", -1, INT64_MAX / 2, &index);
    if (rc == QUN_OK) rc = qun_query_int(r, "size", (int64_t)size, INT64_MAX / 2, &at);
    if (rc != QUN_OK) return rc;
    if (at > (int64_t)size || index >= at)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "index", "need index < size <= %llu", (unsigned long long)size);
    rc = qun_ledger_inclusion(r->db, (uint64_t)index, (uint64_t)at, proof, &n, &r->err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    char hex[2 * QUN_HASH + 1] = "";
    rc = qun_db_run(r->db, &q, &r->err, "SELECT hash FROM ledger_nodes WHERE level = 0 AND idx = $1", "i", index);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    size_t hl;
    const void *h = qun_q_col_blob(q, 0, &hl);
    if (hl == QUN_HASH) qun_hex(hex, h, QUN_HASH);
    qun_q_done(q);
    return qun_ok(r, 200, json_pack("{s:I, s:I, s:s, s:o}", "index", (json_int_t)index, "tree_size", (json_int_t)at,
                                    "leaf_hash", hex, "proof", hashes_json(proof, n)));
}

qun_rc h_ledger_consistency(qun_req_t *r) {
    uint64_t size;
    unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int64_t old, at;
    int n;
    qun_rc rc = qun_ledger_head(r->db, &size, root, &r->err);
    if (rc == QUN_OK) rc = qun_query_int(r, "old", -1, INT64_MAX / 2, &old);
    if (rc == QUN_OK) rc = qun_query_int(r, "new", (int64_t)size, INT64_MAX / 2, &at);
    if (rc != QUN_OK) return rc;
    if (at > (int64_t)size || old < 1 || old > at)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "old", "need 1 <= old <= new <= %llu", (unsigned long long)size);
    rc = qun_ledger_consistency(r->db, (uint64_t)old, (uint64_t)at, proof, &n, &r->err);
    if (rc != QUN_OK) return rc;
    return qun_ok(r, 200, json_pack("{s:I, s:I, s:o}", "old", (json_int_t)old, "new", (json_int_t)at,
                                    "proof", hashes_json(proof, n)));
}

qun_rc h_group_history(qun_req_t *r) {
    qun_group_t g;
    int64_t after;
    int limit;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_group_access(r->db, &r->actor, r->params[0], QUN_ROLE_MEMBER, &g, &r->err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK;
    if (rc != QUN_OK) return rc;
    /* after is an entry index + 1, so 0 means "from the start". */
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = after, rows = 0;
    rc = qun_db_run(r->db, &q, &r->err,
                    "SELECT e.idx, e.entry, n.hash FROM ledger_entries e JOIN ledger_nodes n "
                    "ON n.level = 0 AND n.idx = e.idx WHERE e.group_openid = $1 AND e.idx >= $2 "
                    "ORDER BY e.idx LIMIT $3", "sii", g.gid, after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, &r->err)) {
        size_t n;
        const void *h = qun_q_col_blob(q, 2, &n);
        char hex[2 * QUN_HASH + 1] = "";
        if (n == QUN_HASH) qun_hex(hex, h, QUN_HASH);
        last = qun_q_col_int(q, 0) + 1;
        rows++;
        /* The column found the row; the hashed text decides whether it is this group's. */
        json_t *e = entry_parse(qun_q_col_text(q, 1));
        if (e && column_agrees(e, "group", g.gid, false)) {
            json_t *it = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)(last - 1), "entry", qun_q_col_text(q, 1),
                                   "leaf_hash", hex);
            entry_show(it, e);
            json_object_del(it, "group");
            json_array_append_new(items, it);
        }
        json_decref(e);
    }
    json_t *out;
    rc = qun_page(rc, items, last, limit, &out);
    if (rc != QUN_OK) return rc;
    if (rows == limit && !json_object_get(out, "next_cursor")) /* a full page with a row left out */
        json_object_set_new(out, "next_cursor", json_sprintf("%lld", (long long)last));
    json_object_set_new(out, "group", json_string(g.gid));
    return qun_ok(r, 200, out);
}
