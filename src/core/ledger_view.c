/* SPDX-License-Identifier: MIT */
/* The audit ledger as the API shows it, and who may read which entry
 * (include/qun/ledger_view.h). */
#include <stdlib.h>
#include <string.h>

#include "qun/ledger.h"
#include "qun/ledger_view.h"

/* A hash column as hex into out ("" when the column does not hold a hash). */
static void hash_hex(qun_q_t *q, int col, char out[2 * QUN_HASH + 1]) {
    size_t n;
    const void *h = qun_q_col_blob(q, col, &n);
    out[0] = '\0';
    if (n == QUN_HASH) qun_hex(out, h, QUN_HASH);
}

static json_t *hashes_json(unsigned char p[][QUN_HASH], int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        char hex[2 * QUN_HASH + 1];
        qun_hex(hex, p[i], QUN_HASH);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

/* The hashed text of an entry, parsed: what is shown of an entry comes from here.  NULL
 * when the text is not a JSON object (a damaged row: `qun audit verify` names it). */
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

/* Columns of the entries query: 0 idx, 1 group_openid, 2 actor_openid, 3 entry, 4 leaf
 * hash, 5 whether the actor ($3 openid, $4 row id) acted in the entry or belongs to or
 * owns the group it names (by the side columns). */
#define ENTRIES_SQL                                                                                          \
    "SELECT e.idx, e.group_openid, e.actor_openid, e.entry, n.hash, "                                        \
    "(e.actor_openid = $3 OR EXISTS (SELECT 1 FROM groups g LEFT JOIN members m "                            \
    " ON m.group_id = g.id AND m.user_id = $4 WHERE g.gid = e.group_openid "                                 \
    " AND (m.user_id IS NOT NULL OR g.owner_id = $4))) "                                                     \
    "FROM ledger_entries e JOIN ledger_nodes n ON n.level = 0 AND n.idx = e.idx "                            \
    "WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx"

/* The access rule for one row of ENTRIES_SQL, whose hashed text is e (NULL: damaged):
 * server admins read every entry; anyone else only one the side columns tie to them
 * and whose text agrees with those columns. */
static bool entry_visible(const qun_actor_t *a, qun_q_t *q, json_t *e) {
    if (a->is_admin) return true;
    return qun_q_col_int(q, 5) && e &&
           column_agrees(e, "group", qun_q_col_text(q, 1), qun_q_col_null(q, 1)) &&
           column_agrees(e, "actor", qun_q_col_text(q, 2), qun_q_col_null(q, 2));
}

qun_rc qun_ledger_view_entries(qun_db_t *db, const qun_actor_t *a, int64_t start, int64_t end, json_t **out,
                               qun_err_t *err) {
    uint64_t size;
    unsigned char root[QUN_HASH];
    qun_rc rc = qun_ledger_head(db, &size, root, err);
    if (rc != QUN_OK) return rc;
    if (end < 0)
        end = (int64_t)size < start + QUN_LEDGER_PAGE_MAX ? (int64_t)size : start + QUN_LEDGER_PAGE_MAX;
    if (end > (int64_t)size || start > end || end - start > QUN_LEDGER_PAGE_MAX)
        return qun_fail_field(err, QUN_FIELD_INVALID, "end",
                              "need start <= end <= %llu and at most %d entries", (unsigned long long)size,
                              QUN_LEDGER_PAGE_MAX);
    qun_q_t *q;
    json_t *items = json_array();
    rc = qun_db_run(db, &q, err, ENTRIES_SQL, "iisi", start, end, a->openid, a->uid);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        char hex[2 * QUN_HASH + 1];
        hash_hex(q, 4, hex);
        json_t *it = json_pack("{s:I, s:s}", "index", (json_int_t)qun_q_col_int(q, 0), "leaf_hash", hex);
        json_t *e = entry_parse(qun_q_col_text(q, 3));
        if (entry_visible(a, q, e)) {
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
    *out = json_pack("{s:I, s:I, s:I, s:o}", "start", (json_int_t)start, "end", (json_int_t)end, "tree_size",
                     (json_int_t)size, "items", items);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the page of entries");
}

qun_rc qun_ledger_view_nodes(qun_db_t *db, int64_t level, int64_t start, int64_t end, json_t **out,
                             qun_err_t *err) {
    uint64_t size;
    unsigned char root[QUN_HASH];
    if (level < 0 || level > 62)
        return qun_fail_field(err, QUN_FIELD_INVALID, "level", "level must be an integer from 0 to 62");
    qun_rc rc = qun_ledger_head(db, &size, root, err);
    if (rc != QUN_OK) return rc;
    int64_t count = (int64_t)(size >> level); /* complete subtrees at this level */
    if (end < 0) end = count < start + QUN_LEDGER_PAGE_MAX ? count : start + QUN_LEDGER_PAGE_MAX;
    if (end > count || start > end || end - start > QUN_LEDGER_PAGE_MAX)
        return qun_fail_field(
            err, QUN_FIELD_INVALID, "end",
            "need start <= end <= %lld (the level's complete subtrees) and at most %d nodes",
            (long long)count, QUN_LEDGER_PAGE_MAX);
    qun_q_t *q;
    json_t *items = json_array();
    rc = qun_db_run(
        db, &q, err,
        "SELECT idx, hash FROM ledger_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx", "iii",
        level, start, end);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        char hex[2 * QUN_HASH + 1];
        hash_hex(q, 1, hex);
        json_array_append_new(items,
                              json_pack("{s:I, s:s}", "index", (json_int_t)qun_q_col_int(q, 0), "hash", hex));
    }
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:I, s:I, s:I, s:I, s:o}", "level", (json_int_t)level, "start", (json_int_t)start,
                     "end", (json_int_t)end, "tree_size", (json_int_t)size, "items", items);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the page of nodes");
}

qun_rc qun_ledger_view_inclusion(qun_db_t *db, int64_t index, int64_t size, json_t **out, qun_err_t *err) {
    uint64_t now;
    unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int n;
    qun_rc rc = qun_ledger_head(db, &now, root, err);
    if (rc != QUN_OK) return rc;
    if (size < 0) size = (int64_t)now;
    if (size > (int64_t)now || index < 0 || index >= size)
        return qun_fail_field(err, QUN_FIELD_INVALID, "index", "need index < size <= %llu",
                              (unsigned long long)now);
    rc = qun_ledger_inclusion(db, (uint64_t)index, (uint64_t)size, proof, &n, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    char hex[2 * QUN_HASH + 1];
    rc = qun_db_run(db, &q, err, "SELECT hash FROM ledger_nodes WHERE level = 0 AND idx = $1", "i", index);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc; /* the proof read the leaf a moment ago */
    hash_hex(q, 0, hex);
    qun_q_done(q);
    *out = json_pack("{s:I, s:I, s:s, s:o}", "index", (json_int_t)index, "tree_size", (json_int_t)size,
                     "leaf_hash", hex, "proof", hashes_json(proof, n));
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the inclusion proof");
}

qun_rc qun_ledger_view_consistency(qun_db_t *db, int64_t old, int64_t size, json_t **out, qun_err_t *err) {
    uint64_t now;
    unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
    int n;
    qun_rc rc = qun_ledger_head(db, &now, root, err);
    if (rc != QUN_OK) return rc;
    if (size < 0) size = (int64_t)now;
    if (size > (int64_t)now || old < 1 || old > size)
        return qun_fail_field(err, QUN_FIELD_INVALID, "old", "need 1 <= old <= new <= %llu",
                              (unsigned long long)now);
    rc = qun_ledger_consistency(db, (uint64_t)old, (uint64_t)size, proof, &n, err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:I, s:I, s:o}", "old", (json_int_t)old, "new", (json_int_t)size, "proof",
                     hashes_json(proof, n));
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the consistency proof");
}

qun_rc qun_ledger_view_history(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                               json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK; /* the owner keeps the record */
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = after, rows = 0;
    rc = qun_db_run(
        db, &q, err,
        "SELECT e.idx, e.entry, n.hash, u.username, u.display_name, u.openid FROM ledger_entries e "
        "JOIN ledger_nodes n ON n.level = 0 AND n.idx = e.idx "
        "LEFT JOIN users u ON u.openid = e.actor_openid WHERE e.group_openid = $1 "
        "AND e.idx >= $2 ORDER BY e.idx LIMIT $3",
        "sii", g.gid, after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        char hex[2 * QUN_HASH + 1];
        hash_hex(q, 2, hex);
        last = qun_q_col_int(q, 0) + 1;
        rows++;
        /* The column found the row; the hashed text decides whether it is this group's. */
        json_t *e = entry_parse(qun_q_col_text(q, 1));
        if (e && column_agrees(e, "group", g.gid, false)) {
            json_t *it = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)(last - 1), "entry",
                                   qun_q_col_text(q, 1), "leaf_hash", hex);
            entry_show(it, e);
            json_object_del(it, "group");
            /* Who acted, by name: the side column found the user, the hashed text names them. */
            if (!qun_q_col_null(q, 5) && column_agrees(e, "actor", qun_q_col_text(q, 5), false)) {
                json_object_set_new(it, "actor_username", json_string(qun_q_col_text(q, 3)));
                if (!qun_q_col_null(q, 4))
                    json_object_set_new(it, "actor_display_name", json_string(qun_q_col_text(q, 4)));
            }
            json_array_append_new(items, it);
        }
        json_decref(e);
    }
    rc = qun_page(rc, items, last, limit, out);
    if (rc != QUN_OK) return rc;
    if (rows == limit && !json_object_get(*out, "next_cursor")) /* a full page with a row left out */
        json_object_set_new(*out, "next_cursor", json_sprintf("%lld", (long long)last));
    json_object_set_new(*out, "group", json_string(g.gid));
    return QUN_OK;
}
