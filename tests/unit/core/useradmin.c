/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/useradmin.c on an in-memory store: admins only, the list and
 * its prefix search, disabling (sessions revoked, logins refused, ledgered once),
 * enabling, and a password reset's one-time code that logs in once. */
#include "qun/core.h"
#include "qun/ledger.h"
#include "unit.h"

static qun_db_t *db;
static qun_actor_t admin = {.is_admin = true}, user;

static void make(const char *name, qun_actor_t *a) {
    qun_err_t err;
    json_t *out = NULL;
    CHECK(qun_user_create(db, name, "hash", &out, &err) == QUN_OK);
    snprintf(a->openid, sizeof a->openid, "%s", json_string_value(json_object_get(out, "openid")));
    snprintf(a->username, sizeof a->username, "%s", name);
    json_decref(out);
    CHECK(qun_user_id(db, a->openid, &a->uid, &err) == QUN_OK);
}

static qun_rc login(const qun_actor_t *a, const char *token_hash) {
    qun_err_t err;
    json_t *out = NULL;
    char secret[65];
    snprintf(secret, sizeof secret, "%064d", 7);
    qun_rc rc =
        qun_session_create(db, a->uid, token_hash, "dev", "web", secret, secret, "127.0.0.1", &out, &err);
    json_decref(out);
    return rc;
}

static void test_list_and_forbidden(void) {
    qun_err_t err;
    json_t *out = NULL;
    CHECK(qun_useradmin_list(db, &user, NULL, 0, 50, &out, &err) == QUN_FORBIDDEN_ADMIN);
    CHECK(qun_useradmin_get(db, &user, admin.openid, &out, &err) == QUN_FORBIDDEN_ADMIN);
    CHECK(qun_useradmin_set_disabled(db, &user, admin.openid, true, &out, &err) == QUN_FORBIDDEN_ADMIN);
    CHECK(qun_useradmin_list(db, &admin, NULL, 0, 50, &out, &err) == QUN_OK);
    CHECK(json_array_size(json_object_get(out, "items")) == 2);
    json_decref(out);
    CHECK(qun_useradmin_list(db, &admin, "BO", 0, 50, &out, &err) == QUN_OK); /* folded: "bob" */
    json_t *items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "username")), "bob");
    json_decref(out);
    CHECK(qun_useradmin_get(db, &admin, "u_none", &out, &err) == QUN_USER_NOT_FOUND);
}

static void test_disable_enable(void) {
    qun_err_t err;
    json_t *out = NULL;
    uint64_t size0, size1;
    unsigned char root[QUN_HASH];
    qun_actor_t seen;
    CHECK(login(&user, "t1") == QUN_OK);
    CHECK(qun_session_auth(db, "t1", &seen, &err) == QUN_OK && seen.uid == user.uid);
    CHECK(qun_ledger_head(db, &size0, root, &err) == QUN_OK);
    CHECK(qun_useradmin_set_disabled(db, &admin, admin.openid, true, &out, &err) == QUN_ADMIN_SELF);
    CHECK(qun_useradmin_set_disabled(db, &admin, user.openid, true, &out, &err) == QUN_OK);
    CHECK(json_is_true(json_object_get(out, "disabled")));
    CHECK(json_integer_value(json_object_get(out, "sessions_revoked")) == 1);
    json_decref(out);
    CHECK(qun_session_auth(db, "t1", &seen, &err) == QUN_TOKEN_INVALID);
    CHECK(login(&user, "t2") == QUN_ACCOUNT_DISABLED);
    CHECK(qun_useradmin_set_disabled(db, &admin, user.openid, true, &out, &err) == QUN_OK); /* no change */
    json_decref(out);
    CHECK(qun_ledger_head(db, &size1, root, &err) == QUN_OK && size1 == size0 + 1);
    CHECK(qun_useradmin_set_disabled(db, &admin, user.openid, false, &out, &err) == QUN_OK);
    CHECK(!json_is_true(json_object_get(out, "disabled")));
    json_decref(out);
    CHECK(qun_ledger_head(db, &size1, root, &err) == QUN_OK && size1 == size0 + 2);
    CHECK(login(&user, "t3") == QUN_OK);
}

static void test_reset(void) {
    qun_err_t err;
    json_t *out = NULL;
    qun_actor_t seen;
    CHECK(qun_useradmin_reset_password(db, &admin, user.openid, "codehash", &out, &err) == QUN_OK);
    CHECK(json_is_true(json_object_get(out, "password_change_required")));
    json_decref(out);
    CHECK(qun_session_auth(db, "t3", &seen, &err) == QUN_TOKEN_INVALID);
    CHECK(login(&user, "t4") == QUN_OK);
    CHECK(qun_session_auth(db, "t4", &seen, &err) == QUN_OK && seen.must_change_password);
    CHECK(login(&user, "t5") == QUN_RESET_CODE_USED);
    CHECK(qun_password_change(db, &seen, "newhash", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_session_auth(db, "t4", &seen, &err) == QUN_OK && !seen.must_change_password);
    CHECK(login(&user, "t6") == QUN_OK);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    make("root", &admin);
    make("bob", &user);
    RUN(test_list_and_forbidden);
    RUN(test_disable_enable);
    RUN(test_reset);
    qun_db_close(db);
    return unit_done("core/useradmin");
}
