/* SPDX-License-Identifier: MIT */
/* Legal holds: the compliance role (the `compliance` setting) places and releases
 * holds on a group.  A held group can still be dissolved (access ends), but no purge
 * runs until every hold is released; the purge job then resumes by itself. */
#include <string.h>

#include "qun/core.h"
#include "qun/ledger.h"
#include "qun/queue.h"

/* Compliance officers act on any group, member or not. */
static qun_rc load(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_group_t *g, qun_err_t *err) {
    if (!qun_is_compliance(a->username))
        return qun_fail(err, QUN_FORBIDDEN_COMPLIANCE, "only the compliance role manages legal holds");
    return qun_group_load(db, gid, g, err);
}

/* Who placed and released a hold by openid, and by username for a person to read. */
static json_t *hold_json(qun_q_t *q) {
    bool released = !qun_q_col_null(q, 4);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:o?}", "id", qun_q_col_text(q, 0), "reason",
                     qun_q_col_text(q, 1), "placed_by", qun_q_col_text(q, 2), "placed_by_name",
                     qun_q_col_text(q, 6), "placed_at", (json_int_t)qun_q_col_int(q, 3), "released_by",
                     released ? qun_q_col_text(q, 4) : NULL, "released_by_name",
                     released ? qun_q_col_text(q, 7) : NULL, "released_at",
                     qun_q_col_null(q, 5) ? NULL : json_integer(qun_q_col_int(q, 5)));
}

#define HOLD_COLS                                                                                            \
    "SELECT h.hid, h.reason, pu.openid, h.placed_at, ru.openid, h.released_at, pu.username, ru.username "    \
    "FROM holds h JOIN users pu ON pu.id = h.placed_by LEFT JOIN users ru ON ru.id = h.released_by "

qun_rc qun_hold_place(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *reason, json_t **out,
                      qun_err_t *err) {
    qun_group_t g = {0};
    qun_rc rc = load(db, a, gid, &g, err);
    if (rc != QUN_OK) return rc;
    char hid[QUN_ID_MAX];
    qun_id_new(hid, "h");
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO holds(hid, group_id, reason, placed_by, placed_at) VALUES ($1, $2, $3, $4, $5)", "sisii",
        hid, g.id, reason, a->uid, qun_now());
    if (rc != QUN_DONE) return rc;
    json_t *f = json_pack("{s:s, s:s}", "hold", hid, "reason", reason);
    rc = qun_ledger_append(db, "hold.placed", g.gid, a->openid, g.state, g.state, f, NULL, err);
    json_decref(f);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, HOLD_COLS "WHERE h.hid = $1", "s", hid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = hold_json(q);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_hold_release(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *hid, json_t **out,
                        qun_err_t *err) {
    qun_group_t g = {0};
    qun_rc rc = load(db, a, gid, &g, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, NULL, err,
                    "UPDATE holds SET released_by = $3, released_at = $4 WHERE hid = $1 AND group_id = $2 "
                    "AND released_at IS NULL",
                    "siii", hid, g.id, a->uid, qun_now());
    if (rc != QUN_DONE) return rc;
    if (qun_db_changes(db) == 0)
        return qun_fail(err, QUN_HOLD_NOT_FOUND, "no active hold %.40s on this group", hid);
    json_t *f = json_pack("{s:s}", "hold", hid);
    rc = qun_ledger_append(db, "hold.released", g.gid, a->openid, g.state, g.state, f, NULL, err);
    json_decref(f);
    /* Purges that waited for the hold run again now. */
    if (rc == QUN_OK) rc = qun_queue_wake_held(db, g.id, qun_now(), err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, HOLD_COLS "WHERE h.hid = $1", "s", hid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = hold_json(q);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_hold_list(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err) {
    qun_group_t g = {0};
    qun_rc rc = load(db, a, gid, &g, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    json_t *items = json_array();
    rc = qun_db_run(db, &q, err, HOLD_COLS "WHERE h.group_id = $1 ORDER BY h.id", "i", g.id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(items, hold_json(q));
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:s, s:s, s:o}", "group", g.gid, "group_name", g.name, "items", items);
    return QUN_OK;
}
