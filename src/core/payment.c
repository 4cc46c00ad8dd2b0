/* SPDX-License-Identifier: MIT */
/* Group payments (red packets of N shares that members claim) and personal bill
 * lines.  A payment and its bill lines change in one transaction, so the sum of a
 * payment's claims always equals its claimed_amount, and every claim has exactly one
 * bill line.  Shares are equal; the last claim takes the remainder. */
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"

static qun_rc bill_line(qun_db_t *db, int64_t uid, const qun_group_t *g, const char *pid, const char *kind,
                        int64_t amount, qun_err_t *err) {
    qun_rc rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO bill_lines(user_id, group_openid, group_name, payment_openid, kind, amount, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "issssii", uid, g->gid, g->name, pid, kind, amount, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* A row of PAY_COLS. */
static json_t *payment_json(qun_q_t *q) {
    return json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:s, s:I}", "id", qun_q_col_text(q, 0),
                     "kind", qun_q_col_text(q, 1), "creator", qun_q_col_text(q, 2), "creator_display_name",
                     qun_q_col_null(q, 10) ? NULL : qun_q_col_text(q, 10), "amount",
                     (json_int_t)qun_q_col_int(q, 3), "shares", (json_int_t)qun_q_col_int(q, 4),
                     "claimed_amount", (json_int_t)qun_q_col_int(q, 5), "claimed_shares",
                     (json_int_t)qun_q_col_int(q, 6), "memo", qun_q_col_text(q, 7), "created_at",
                     (json_int_t)qun_q_col_int(q, 8));
}

#define PAY_COLS                                                                                             \
    "p.pid, p.kind, u.openid, p.amount, p.shares, p.claimed_amount, p.claimed_shares, p.memo, "              \
    "p.created_at, p.id, u.display_name"

qun_rc qun_payment_create(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *kind,
                          int64_t amount, int64_t shares, const char *memo, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    if (shares > amount)
        return qun_fail_field(err, QUN_FIELD_INVALID, "shares", "each share must be worth at least 1");
    char pid[QUN_ID_MAX];
    qun_id_new(pid, "p");
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO payments(pid, group_id, creator_id, kind, amount, shares, memo, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    "siisiisi", pid, g.id, a->uid, kind, amount, shares, memo, qun_now());
    if (rc != QUN_DONE) return rc;
    rc = bill_line(db, a->uid, &g, pid, "red_packet_sent", -amount, err);
    /* The members' open pages show the new red packet at once (docs/events.md). */
    if (rc == QUN_OK)
        rc = qun_event_group(db, "payment.created", g.id, 0,
                             json_pack("{s:s, s:s, s:I, s:I, s:s}", "payment", pid, "creator", a->openid,
                                       "amount", (json_int_t)amount, "shares", (json_int_t)shares, "memo",
                                       memo),
                             err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    rc = qun_db_run(
        db, &q, err,
        "SELECT " PAY_COLS " FROM payments p JOIN users u ON u.id = p.creator_id WHERE p.pid = $1", "s", pid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = payment_json(q);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_payment_claim(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *pid, json_t **out,
                         qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err,
                    "SELECT id, amount, shares, claimed_amount, claimed_shares FROM payments "
                    "WHERE pid = $1 AND group_id = $2",
                    "si", pid, g.id);
    if (rc == QUN_DONE) return qun_fail(err, QUN_PAYMENT_NOT_FOUND, "no payment %.40s in this group", pid);
    if (rc != QUN_ROW) return rc;
    int64_t id = qun_q_col_int(q, 0), amount = qun_q_col_int(q, 1), shares = qun_q_col_int(q, 2);
    int64_t camount = qun_q_col_int(q, 3), cshares = qun_q_col_int(q, 4);
    qun_q_done(q);
    if (cshares >= shares)
        return qun_fail(err, QUN_PAYMENT_EXHAUSTED, "all %lld shares are claimed", (long long)shares);
    int64_t share = cshares + 1 == shares ? amount - camount : amount / shares;
    rc = qun_db_run(
        db, &q, err,
        "INSERT INTO payment_claims(payment_id, user_id, amount, created_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING amount",
        "iiii", id, a->uid, share, qun_now());
    if (rc == QUN_DONE) return qun_fail(err, QUN_ALREADY_CLAIMED, "you already claimed this payment");
    if (rc != QUN_ROW) return rc;
    qun_q_done(q);
    rc = qun_db_run(db, NULL, err,
                    "UPDATE payments SET claimed_amount = claimed_amount + $2, claimed_shares = "
                    "claimed_shares + 1 WHERE id = $1",
                    "ii", id, share);
    if (rc != QUN_DONE) return rc;
    rc = bill_line(db, a->uid, &g, pid, "red_packet_received", share, err);
    if (rc == QUN_OK)
        rc = qun_event_group(db, "payment.claimed", g.id, 0,
                             json_pack("{s:s, s:s, s:I, s:I, s:I}", "payment", pid, "claimer", a->openid,
                                       "amount", (json_int_t)share, "claimed_shares",
                                       (json_int_t)(cshares + 1), "shares", (json_int_t)shares),
                             err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:s, s:I}", "payment", pid, "claimer", a->openid, "amount", (json_int_t)share);
    return QUN_OK;
}

qun_rc qun_payment_list(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    json_t *items = json_array();
    rc = qun_db_run(db, &q, err,
                    "SELECT " PAY_COLS " FROM payments p JOIN users u ON u.id = p.creator_id "
                    "WHERE p.group_id = $1 ORDER BY p.id DESC LIMIT 200",
                    "i", g.id);
    int64_t oldest = 0;
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        json_array_append_new(items, payment_json(q));
        oldest = qun_q_col_int(q, 9);
    }
    /* Who claimed what, by name: one query for the listed payments. */
    json_t *by_pid = json_object();
    if (rc == QUN_DONE && oldest)
        rc = qun_db_run(db, &q, err,
                        "SELECT p.pid, u.openid, u.username, u.display_name, c.amount, c.created_at "
                        "FROM payment_claims c JOIN payments p ON p.id = c.payment_id JOIN users u ON "
                        "u.id = c.user_id WHERE p.group_id = $1 AND p.id >= $2 ORDER BY c.payment_id, "
                        "c.created_at, c.user_id",
                        "ii", g.id, oldest);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        json_t *list = json_object_get(by_pid, qun_q_col_text(q, 0));
        if (!list) json_object_set_new(by_pid, qun_q_col_text(q, 0), list = json_array());
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s?, s:I, s:I}", "claimer", qun_q_col_text(q, 1), "claimer_username",
                            qun_q_col_text(q, 2), "claimer_display_name",
                            qun_q_col_null(q, 3) ? NULL : qun_q_col_text(q, 3), "amount",
                            (json_int_t)qun_q_col_int(q, 4), "claimed_at", (json_int_t)qun_q_col_int(q, 5)));
    }
    if (rc != QUN_DONE) {
        json_decref(items);
        json_decref(by_pid);
        return rc;
    }
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        json_t *list = json_object_get(by_pid, json_string_value(json_object_get(it, "id")));
        json_object_set_new(it, "claims", list ? json_incref(list) : json_array());
    }
    json_decref(by_pid);
    *out = json_pack("{s:o}", "items", items);
    return QUN_OK;
}

qun_rc qun_bill_list(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                     qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = 0;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT id, group_openid, group_name, payment_openid, kind, amount, created_at "
                           "FROM bill_lines WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                           "iii", a->uid, after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "group",
                                               qun_q_col_text(q, 1), "group_name", qun_q_col_text(q, 2),
                                               "payment", qun_q_col_text(q, 3), "kind", qun_q_col_text(q, 4),
                                               "amount", (json_int_t)qun_q_col_int(q, 5), "created_at",
                                               (json_int_t)qun_q_col_int(q, 6)));
    }
    return qun_page(rc, items, last, limit, out);
}
