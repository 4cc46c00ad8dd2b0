/* SPDX-License-Identifier: MIT */
/* Server administration (server admins only: the `admins` setting): the webhook
 * dead letters and their requeueing; the brute-force locks and their clearing; the
 * username collisions found when usernames got their keys. */
#include <string.h>

#include "http.h"
#include "qun/lockout.h"
#include "qun/outbox.h"

static qun_rc admin_only(qun_req_t *r) {
    return r->actor.is_admin ? QUN_OK
                             : qun_fail(&r->err, QUN_FORBIDDEN_ADMIN, "only server admins see the outbox");
}

/* GET /v1/admin/outbox/dead?after=&limit= */
qun_rc h_admin_outbox_dead(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = admin_only(r);
    if (rc == QUN_OK) rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_outbox_dead_list(r->db, after, limit, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* POST /v1/admin/outbox/{id}/retry: id is the event id (Qun-Event-Id). */
qun_rc h_admin_outbox_retry(qun_req_t *r) {
    static const qun_field_t f[] = {{0}};
    json_t *out = NULL;
    qun_rc rc = admin_only(r);
    if (rc == QUN_OK) rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK) rc = qun_outbox_retry(r->db, r->params[0], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* GET /v1/admin/locks?state=active|all&after=&limit= */
qun_rc h_admin_locks(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    const char *state = qun_query(r, "state");
    if (state && strcmp(state, "active") != 0 && strcmp(state, "all") != 0)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "state", "state must be active or all");
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK)
        rc = qun_lockout_list(r->db, &r->actor, state && strcmp(state, "all") == 0, after, limit, &out,
                              &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* DELETE /v1/admin/locks/{id}: end a lock now (ledgered as lockout.cleared). */
qun_rc h_admin_lock_clear(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_lockout_clear(r->db, &r->actor, r->params[0], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* GET /v1/admin/username-collisions?after=&limit=: accounts whose usernames were one
 * name, once case and Unicode forms are folded, before usernames had keys (migration
 * 0020); the older holds the key, the other logs in by its exact username. */
qun_rc h_admin_username_collisions(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_username_collisions(r->db, &r->actor, after, limit, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
