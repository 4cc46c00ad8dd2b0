/* SPDX-License-Identifier: MIT */
/* Server administration (server admins only: the `admins` setting): the webhook
 * dead letters and their requeueing; the brute-force locks and their clearing; the
 * username collisions found when usernames got their keys; the accounts, disabled and
 * enabled, and their passwords reset to a one-time code (core/useradmin.c). */
#include <sodium.h>
#include <string.h>

#include "http.h"
#include "qun/lockout.h"
#include "qun/outbox.h"

static qun_rc admin_only(qun_req_t *r) {
    return r->actor.is_admin ? QUN_OK
                             : qun_fail(&r->err, QUN_FORBIDDEN_ADMIN, "only server admins may do this");
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

/* GET /v1/admin/users?prefix=&after=&limit=: the accounts, by creation. */
qun_rc h_admin_users(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    const char *prefix = qun_query(r, "prefix");
    if (prefix && strlen(prefix) > 64)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "prefix", "prefix is at most 64 bytes");
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_useradmin_list(r->db, &r->actor, prefix, after, limit, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* GET /v1/admin/users/{openid}: one account and its groups. */
qun_rc h_admin_user(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_useradmin_get(r->db, &r->actor, r->params[0], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

static qun_rc set_disabled(qun_req_t *r, bool disable) {
    json_t *out = NULL;
    qun_rc rc = qun_useradmin_set_disabled(r->db, &r->actor, r->params[0], disable, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* POST /v1/admin/users/{openid}/disable: no login, every session revoked at once. */
qun_rc h_admin_user_disable(qun_req_t *r) {
    static const qun_field_t f[] = {{0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    return rc == QUN_OK ? set_disabled(r, true) : rc;
}

/* POST /v1/admin/users/{openid}/enable */
qun_rc h_admin_user_enable(qun_req_t *r) {
    static const qun_field_t f[] = {{0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    return rc == QUN_OK ? set_disabled(r, false) : rc;
}

typedef struct {
    char code[16];                         /* xxxx-xxxx-xxxx, shown once */
    char hash[crypto_pwhash_STRBYTES + 1]; /* what the writer stores */
} reset_t;

/* On a password thread (slow.c): the code's argon2id hash. */
static qun_rc reset_hash(qun_req_t *r) {
    reset_t *s = r->scratch;
    return qun_password_hash(s->code, s->hash, &r->err);
}

/* The one-time code, here, and its argon2id hash, on a password thread (hashing is slow by
 * design).  Letters and digits that are not easily confused, for reading aloud. */
qun_rc h_admin_user_reset_prep(qun_req_t *r) {
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
    static const qun_field_t f[] = {{0}};
    qun_rc rc = admin_only(r);
    if (rc == QUN_OK) rc = qun_fields_check(r->json, f, &r->err);
    if (rc != QUN_OK) return rc;
    reset_t *s = qun_xcalloc(1, sizeof *s);
    r->scratch = s;
    for (int i = 0; i < 14; i++)
        s->code[i] = (i == 4 || i == 9) ? '-' : alphabet[randombytes_uniform(sizeof alphabet - 1)];
    s->code[14] = '\0';
    r->slow = reset_hash;
    return QUN_OK;
}

/* POST /v1/admin/users/{openid}/password-reset: answers the account with `code`, the
 * one-time password, which the server keeps only hashed and never shows again. */
qun_rc h_admin_user_reset(qun_req_t *r) {
    reset_t *s = r->scratch;
    json_t *out = NULL;
    qun_rc rc = qun_useradmin_reset_password(r->db, &r->actor, r->params[0], s->hash, &out, &r->err);
    if (rc != QUN_OK) return rc;
    json_object_set_new(out, "code", json_string(s->code));
    sodium_memzero(s->code, sizeof s->code);
    return qun_ok(r, 200, out);
}
