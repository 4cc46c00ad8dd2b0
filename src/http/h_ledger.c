/* SPDX-License-Identifier: MIT */
/* The ledger over HTTP: the signed checkpoint, the verifier key, entries, nodes,
 * inclusion and consistency proofs, and a group's history.  Who reads which entry is
 * the core's rule (include/qun/ledger_view.h); these handlers only read the query. */
#include "http.h"
#include "qun/ledger.h"
#include "qun/ledger_view.h"

#define INDEX_MAX (INT64_MAX / 2)

/* An optional index query parameter: -1 when absent, so the core applies its default. */
static qun_rc opt_index(qun_req_t *r, const char *name, int64_t *out) {
    *out = -1;
    return qun_query(r, name) ? qun_query_int(r, name, 0, INDEX_MAX, out) : QUN_OK;
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
    return qun_ok(r, 200,
                  json_pack("{s:s, s:s, s:s}", "origin", qun_server_cfg.ledger_key->name, "verifier_key", v,
                            "algorithm", "ed25519"));
}

/* GET /v1/ledger/entries?start=&end= */
qun_rc h_ledger_entries(qun_req_t *r) {
    int64_t start, end;
    json_t *out = NULL;
    qun_rc rc = qun_query_int(r, "start", 0, INDEX_MAX, &start);
    if (rc == QUN_OK) rc = opt_index(r, "end", &end);
    if (rc == QUN_OK) rc = qun_ledger_view_entries(r->db, &r->actor, start, end, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* GET /v1/ledger/nodes?level=&start=&end=: the stored subtree hashes of one level, the
 * ones every root and proof is built from.  They are public like the leaf hashes (each
 * follows from them), and `qun audit verify` recomputes every one from the leaves, so
 * a damaged stored node is named rather than silently serving proofs that fail. */
qun_rc h_ledger_nodes(qun_req_t *r) {
    int64_t level, start, end;
    json_t *out = NULL;
    qun_rc rc = qun_query_int(r, "level", -1, 62, &level);
    if (rc == QUN_OK) rc = qun_query_int(r, "start", 0, INDEX_MAX, &start);
    if (rc == QUN_OK) rc = opt_index(r, "end", &end);
    if (rc == QUN_OK) rc = qun_ledger_view_nodes(r->db, level, start, end, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* GET /v1/ledger/proof/inclusion?index=&size= */
qun_rc h_ledger_inclusion(qun_req_t *r) {
    int64_t index, size;
    json_t *out = NULL;
    qun_rc rc = qun_query_int(r, "index", -1, INDEX_MAX, &index);
    if (rc == QUN_OK) rc = opt_index(r, "size", &size);
    if (rc == QUN_OK) rc = qun_ledger_view_inclusion(r->db, index, size, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* GET /v1/ledger/proof/consistency?old=&new= */
qun_rc h_ledger_consistency(qun_req_t *r) {
    int64_t old, size;
    json_t *out = NULL;
    qun_rc rc = qun_query_int(r, "old", -1, INDEX_MAX, &old);
    if (rc == QUN_OK) rc = opt_index(r, "new", &size);
    if (rc == QUN_OK) rc = qun_ledger_view_consistency(r->db, old, size, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* GET /v1/groups/{id}/history?after=&limit= */
qun_rc h_group_history(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK)
        rc = qun_ledger_view_history(r->db, &r->actor, r->params[0], after, limit, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
