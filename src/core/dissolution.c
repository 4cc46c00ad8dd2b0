/* SPDX-License-Identifier: MIT */
/* The first dissolution: the three phases of DESIGN.md section 3, without the
 * timers and approvals later work adds.
 *
 *   active --preview--> (token) --request+token--> dissolved --purge job--> purging --> purged
 *
 * 1. authorize: owner only; a single-use confirmation token from the preview, bound to
 *    the user, the group and the digest of the parameters, short-lived.
 * 2. mark: in one transaction the group becomes `dissolved`, the dissolution row is
 *    written and the purge jobs are queued; members lose access at once because every
 *    access check requires a live state.
 * 3. reclaim: jobs/purge.c, durable and resumable.
 *
 * Invariants: (I1) a token is used at most once (used_at is set in the transaction that
 * marks); (I2) a group has at most one dissolution that is not cancelled; (I3) state
 * moves only forward along the diagram. */
#include <sodium.h>
#include <string.h>

#include "qun/core.h"

void qun_params_digest(json_t *params, char out[65]) {
    char *text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    qun_sha256_hex(out, text, strlen(text));
    free(text);
}

static int64_t count(qun_db_t *db, const char *sql, int64_t id) {
    qun_q_t *q;
    int64_t n = 0;
    if (qun_db_run(db, &q, NULL, sql, "i", id) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

static json_t *impact(qun_db_t *db, const qun_group_t *g, const char *messages) {
    int64_t files = count(db, "SELECT COUNT(*) FROM group_files WHERE group_id = $1", g->id);
    int64_t bytes = count(db, "SELECT COALESCE(SUM(size), 0) FROM group_files WHERE group_id = $1", g->id);
    int64_t msgs = count(db, "SELECT COUNT(*) FROM messages WHERE group_id = $1", g->id);
    int64_t pays = count(db, "SELECT COUNT(*) FROM payments WHERE group_id = $1", g->id);
    int64_t lines = count(db, "SELECT COUNT(*) FROM bill_lines b JOIN payments p ON p.pid = b.payment_openid "
                              "WHERE p.group_id = $1", g->id);
    bool del = strcmp(messages, "delete") == 0;
    return json_pack(
        "{s:{s:I}, s:{s:I, s:s}, s:{s:I, s:I, s:s}, s:{s:I, s:s, s:I}, s:{s:I, s:s}}",
        "members", "count", (json_int_t)g->member_count,
        "messages", "count", (json_int_t)msgs, "rule",
        del ? "purged after dissolution" : "kept read-only, visible to the owner only",
        "files", "count", (json_int_t)files, "bytes", (json_int_t)bytes, "rule",
        "members lose access at once; bytes purged unless another group references them",
        "payments", "count", (json_int_t)pays, "rule", "group payment records retained, then purged",
        "retention_seconds", (json_int_t)qun_core_cfg.payment_retention,
        "bill_lines", "count", (json_int_t)lines, "rule", "personal bill lines are never purged");
}

qun_rc qun_diss_preview(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params,
                        json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    if (strcmp(g.state, "active") != 0) return qun_fail(err, QUN_GROUP_NOT_ACTIVE, "group is %s", g.state);
    unsigned char raw[32];
    char token[64] = "qct_", hash[65], digest[65];
    qun_random(raw, sizeof raw);
    sodium_bin2base64(token + 4, sizeof token - 4, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    qun_sha256_hex(hash, token, strlen(token));
    qun_params_digest(params, digest);
    int64_t expires = qun_now() + qun_core_cfg.confirm_ttl;
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO confirm_tokens(token_hash, user_id, group_id, action, params_digest, expires_at) "
                    "VALUES ($1, $2, $3, 'dissolve', $4, $5)", "siisi", hash, a->uid, g.id, digest, expires);
    if (rc != QUN_DONE) return rc;
    const char *messages = json_string_value(json_object_get(params, "messages"));
    *out = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:I, s:s}", "group", g.gid, "name", g.name,
                     "state", g.state, "impact", impact(db, &g, messages), "params", json_deep_copy(params),
                     "confirmation_token", token, "expires_at", (json_int_t)expires,
                     "confirm", "send confirmation_token with the same parameters to POST /v1/groups/{id}/dissolution");
    return QUN_OK;
}

/* Check and consume a confirmation token (I1). */
static qun_rc consume_token(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g,
                            json_t *params, const char *token, qun_err_t *err) {
    char hash[65], digest[65];
    qun_sha256_hex(hash, token, strlen(token));
    qun_params_digest(params, digest);
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT user_id, group_id, params_digest, expires_at, used_at FROM confirm_tokens "
                           "WHERE token_hash = $1 AND action = 'dissolve'", "s", hash);
    if (rc == QUN_DONE) return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token", "unknown confirmation token");
    if (rc != QUN_ROW) return rc;
    bool mine = qun_q_col_int(q, 0) == a->uid && qun_q_col_int(q, 1) == g->id;
    bool same = qun_ct_equal(qun_q_col_text(q, 2), digest, 64);
    bool expired = qun_q_col_int(q, 3) <= qun_now(), used = !qun_q_col_null(q, 4);
    qun_q_done(q);
    if (!mine) return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token", "this token was issued for another user or group");
    if (used) return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token", "this token was already used");
    if (expired) return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token", "this token has expired; ask for a new preview");
    if (!same) return qun_fail_field(err, QUN_CONFIRMATION_INVALID, "confirmation_token", "the parameters differ from the previewed ones");
    rc = qun_db_run(db, NULL, err, "UPDATE confirm_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
                    "si", hash, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_diss_request(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params,
                        const char *token, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    if (strcmp(g.state, "active") != 0) return qun_fail(err, QUN_GROUP_NOT_ACTIVE, "group is %s", g.state);
    if (!token) return qun_fail(err, QUN_CONFIRMATION_REQUIRED, "preview the dissolution and send its confirmation_token");
    rc = consume_token(db, a, &g, params, token, err);
    if (rc != QUN_OK) return rc;
    const char *messages = json_string_value(json_object_get(params, "messages"));
    int64_t now = qun_now();
    qun_q_t *q;
    rc = qun_db_run(db, NULL, err, "UPDATE groups SET state = 'dissolved', updated_at = $2 WHERE id = $1 AND state = 'active'",
                    "ii", g.id, now);
    if (rc == QUN_DONE && qun_db_changes(db) != 1) return qun_fail(err, QUN_GROUP_NOT_ACTIVE, "group changed state");
    if (rc == QUN_DONE)
        rc = qun_db_run(db, &q, err,
                        "INSERT INTO dissolutions(group_id, requested_by, messages, state, requested_at, dissolved_at) "
                        "VALUES ($1, $2, $3, 'dissolved', $4, $4) RETURNING id", "iisi", g.id, a->uid, messages, now);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t did = qun_q_col_int(q, 0);
    qun_q_done(q);
    rc = qun_db_run(db, NULL, err, "DELETE FROM transfers WHERE group_id = $1", "i", g.id);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO jobs(kind, group_id, ref_id, due_at, created_at) VALUES ('purge_group', $1, $2, $3, $3), "
                        "('purge_payments', $1, $2, $4, $3)", "iiii", g.id, did, now, now + qun_core_cfg.payment_retention);
    if (rc != QUN_DONE) return rc;
    return qun_diss_status(db, a, gid, out, err);
}

qun_rc qun_diss_status(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out,
                       qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK;
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    rc = qun_db_run(db, &q, err,
                    "SELECT d.id, d.messages, d.state, d.requested_at, d.dissolved_at, d.purged_at, d.receipt, u.openid "
                    "FROM dissolutions d JOIN users u ON u.id = d.requested_by WHERE d.group_id = $1 "
                    "AND d.cancelled_at IS NULL ORDER BY d.id DESC LIMIT 1", "i", g.id);
    if (rc == QUN_DONE) return qun_fail(err, QUN_DISSOLUTION_NOT_FOUND, "group %s has no dissolution", g.gid);
    if (rc != QUN_ROW) return rc;
    int64_t did = qun_q_col_int(q, 0);
    json_t *receipt = json_loads(qun_q_col_text(q, 6), 0, NULL);
    *out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o?, s:o?, s:o, s:[]}", "group", g.gid, "state", g.state,
                     "messages", qun_q_col_text(q, 1), "requested_by", qun_q_col_text(q, 7),
                     "requested_at", (json_int_t)qun_q_col_int(q, 3),
                     "dissolved_at", qun_q_col_null(q, 4) ? NULL : json_integer(qun_q_col_int(q, 4)),
                     "purged_at", qun_q_col_null(q, 5) ? NULL : json_integer(qun_q_col_int(q, 5)),
                     "receipt", receipt ? receipt : json_object(), "jobs");
    qun_q_done(q);
    if (!*out) return qun_fail(err, QUN_INTERNAL, "cannot build the dissolution status");
    rc = qun_db_run(db, &q, err,
                    "SELECT kind, state, due_at, attempts, progress FROM jobs WHERE ref_id = $1 "
                    "AND kind IN ('purge_group', 'purge_payments') ORDER BY id", "i", did);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        json_t *progress = json_loads(qun_q_col_text(q, 4), 0, NULL);
        json_array_append_new(json_object_get(*out, "jobs"),
                              json_pack("{s:s, s:s, s:I, s:I, s:o}", "kind", qun_q_col_text(q, 0),
                                        "state", qun_q_col_text(q, 1), "due_at", (json_int_t)qun_q_col_int(q, 2),
                                        "attempts", (json_int_t)qun_q_col_int(q, 3),
                                        "progress", progress ? progress : json_object()));
    }
    if (rc != QUN_DONE) {
        json_decref(*out);
        return rc;
    }
    return QUN_OK;
}

qun_rc qun_diss_cancel(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out,
                       qun_err_t *err) {
    json_t *status = NULL;
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER)
        return qun_fail(err, QUN_DISSOLUTION_NOT_CANCELLABLE,
                        "group %s is already %s; the undo window has passed", g.gid, g.state);
    if (rc != QUN_OK) return rc;
    rc = qun_diss_status(db, a, gid, &status, err);
    json_decref(status);
    (void)out;
    /* Live groups have no dissolution to cancel until the cooling-off window exists. */
    return rc == QUN_OK ? qun_fail(err, QUN_DISSOLUTION_NOT_CANCELLABLE, "nothing to cancel") : rc;
}
