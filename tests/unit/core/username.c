/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/username.c on an in-memory store: the NFKC_Casefold keys of
 * case and Unicode variants, the characters a registration accepts, and the startup
 * backfill of accounts written without a key (oldest keeps the name, the others are
 * recorded and still found by their exact name). */
#include "qun/core.h"
#include "unit.h"

static qun_db_t *db;

static void key_is(const char *name, const char *want) {
    char key[QUN_USERNAME_KEY_MAX];
    qun_err_t err;
    CHECK(qun_username_key(name, key, sizeof key, &err) == QUN_OK);
    if (strcmp(key, want) != 0) fprintf(stderr, "key of %s: %s, want %s\n", name, key, want);
    CHECK_STR(key, want);
}

static void test_keys(void) {
    key_is("Alice", "alice");
    key_is("STRASSE", "strasse");
    key_is("straße", "strasse");
    key_is("ΣΑΣ", "σασ");
    key_is("σας", "σασ");
    key_is("ａｌｉｃｅ", "alice");         /* full-width letters */
    key_is("cafe\xcc\x81", "caf\xc3\xa9"); /* a decomposed accent composes */
    key_is("CAFÉ", "caf\xc3\xa9");
    key_is("ǅemal", "d\xc5\xbe"
                    "emal"); /* a title-case digraph: "dž", compatibility-decomposed */
    key_is("ﬁle", "file");   /* a ligature */
    key_is("A.b-c_9", "a.b-c_9");
}

static void test_check(void) {
    char key[QUN_USERNAME_KEY_MAX];
    qun_err_t err;
    const char *good[] = {"abc", "ünïcode", "张伟", "Ｂｏｂ", "e\xcc\x81tienne", "a.b-c_9", NULL};
    const char *bad[] = {"has space",
                         "semi;colon",
                         "zero\xe2\x80\x8bwidth",
                         "\xcc\x81"
                         "accent",
                         "smile\xf0\x9f\x98\x80",
                         "nb\xc2\xa0sp",
                         "bad\xff",
                         NULL};
    for (int i = 0; good[i]; i++)
        CHECK(qun_username_check(good[i], key, sizeof key, &err) == QUN_OK);
    for (int i = 0; bad[i]; i++) {
        CHECK(qun_username_check(bad[i], key, sizeof key, &err) == QUN_FIELD_INVALID);
        CHECK_STR(err.field, "username");
    }
    /* A key that does not fit is refused, not cut. */
    CHECK(qun_username_key("\xef\xb7\xba\xef\xb7\xba", key, 16, &err) == QUN_FIELD_INVALID);
}

static void legacy_user(const char *openid, const char *name) {
    qun_err_t err;
    CHECK(qun_db_run(db, NULL, &err,
                     "INSERT INTO users(openid, username, pwhash, password_changed_at, created_at) "
                     "VALUES ($1, $2, 'h', 1, 1)",
                     "ss", openid, name) == QUN_DONE);
}

static int64_t uid_of(const char *name) {
    int64_t uid = -1;
    char h[16];
    qun_err_t err;
    if (qun_user_credentials(db, name, &uid, h, sizeof h, &err) != QUN_OK) return -1;
    return uid;
}

static int64_t uid_by_openid(const char *openid) {
    int64_t uid = -1;
    qun_err_t err;
    CHECK(qun_user_id(db, openid, &uid, &err) == QUN_OK);
    return uid;
}

static void test_backfill(void) {
    qun_err_t err;
    int64_t keyed, collisions;
    legacy_user("u_1", "alice");
    legacy_user("u_2", "Alice");
    legacy_user("u_3", "ALICE");
    legacy_user("u_4", "bob");
    CHECK(qun_username_backfill(db, &keyed, &collisions, &err) == QUN_OK);
    CHECK(keyed == 2 && collisions == 2);
    /* Exact names find their own accounts; any other form finds the oldest. */
    CHECK(uid_of("alice") == uid_by_openid("u_1"));
    CHECK(uid_of("Alice") == uid_by_openid("u_2"));
    CHECK(uid_of("ALICE") == uid_by_openid("u_3"));
    CHECK(uid_of("aLiCe") == uid_by_openid("u_1"));
    CHECK(uid_of("ＢＯＢ") == uid_by_openid("u_4"));
    CHECK(uid_of("carol") == -1);
    /* A second run finds nothing new. */
    CHECK(qun_username_backfill(db, &keyed, &collisions, &err) == QUN_OK);
    CHECK(keyed == 0 && collisions == 2);
    /* Registration refuses every form of a taken name. */
    json_t *out = NULL;
    CHECK(qun_user_create(db, "ALIce", "h", &out, &err) == QUN_USERNAME_TAKEN);
    CHECK(qun_user_create(db, "Bob", "h", &out, &err) == QUN_USERNAME_TAKEN);
    CHECK(qun_user_create(db, "Straße", "h", &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_user_create(db, "STRASSE", "h", &out, &err) == QUN_USERNAME_TAKEN);
    /* The report is for server admins. */
    qun_actor_t admin = {.is_admin = true}, user = {.is_admin = false};
    CHECK(qun_username_collisions(db, &user, 0, 50, &out, &err) == QUN_FORBIDDEN_ADMIN);
    CHECK(qun_username_collisions(db, &admin, 0, 50, &out, &err) == QUN_OK);
    json_t *items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 2);
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(json_array_get(items, 0), "user"), "username")),
        "Alice");
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(json_array_get(items, 1), "holder"), "openid")),
        "u_1");
    json_decref(out);
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(test_keys);
    RUN(test_check);
    RUN(test_backfill);
    qun_db_close(db);
    return unit_done("core/username");
}
