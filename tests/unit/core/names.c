/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/names.c on an in-memory store: the Matrix spec's escape of
 * usernames, the localpart a new account gets (lower case, escape, ".N"), the lookups
 * by localpart and by account, the startup fill of rows written without one, and the
 * display-name rules (NFC, trimming, 1 to 64 characters, no control or format
 * characters). */
#include "qun/core.h"
#include "unit.h"

static qun_db_t *db;

static void test_escape(void) {
    static const struct {
        const char *in, *want;
    } rows[] = {
        {"alice", "alice"},
        {"Alice", "_alice"},
        {"_alice", "__alice"},
        {"Bob_Jones", "_bob___jones"},
        {"a.b-c/d+e9", "a.b-c/d+e9"},
        {"a=b", "a=3db"}, /* '=' itself is escaped, so the mapping is one to one */
        {"a b#", "a=20b=23"},
        {"caf\xc3\xa9", "caf=c3=a9"},
        {"\xe7\x8e\x8b\xe5\xb0\x8f\xe6\x98\x8e", "=e7=8e=8b=e5=b0=8f=e6=98=8e"}, /* 王小明 */
        {"\xf0\x9f\x98\x80", "=f0=9f=98=80"},
        {"ZZ", "_z_z"},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        char out[QUN_MX_LOCALPART_MAX];
        qun_err_t err;
        CHECKF(qun_mx_localpart_escape(rows[i].in, out, &err) == QUN_OK, rows[i].in);
        CHECKF(strcmp(out, rows[i].want) == 0, rows[i].in);
    }
    /* Too long to fit: refused, not cut. */
    char out[QUN_MX_LOCALPART_MAX], big[64 * 3 + 1];
    qun_err_t err;
    for (int i = 0; i < 64; i++)
        memcpy(big + 3 * i, "\xe7\x8e\x8b", 3);
    big[sizeof big - 1] = '\0';
    CHECK(qun_mx_localpart_escape(big, out, &err) == QUN_FIELD_INVALID);
    CHECK(qun_mx_localpart_escape("", out, &err) == QUN_FIELD_INVALID);
}

static void user_with(const char *openid, const char *name, const char *localpart) {
    qun_err_t err;
    CHECK(qun_db_run(
              db, NULL, &err,
              "INSERT INTO users(openid, username, username_key, pwhash, password_changed_at, created_at, "
              "mx_localpart) VALUES ($1, $2, $1, 'h', 1, 1, $3)",
              "sss", openid, name, localpart) == QUN_DONE);
}

static void localpart_is(const char *name, const char *want) {
    char out[QUN_MX_LOCALPART_MAX];
    qun_err_t err;
    CHECKF(qun_mx_localpart_new(db, name, out, &err) == QUN_OK, name);
    if (strcmp(out, want) != 0) fprintf(stderr, "localpart of %s: %s, want %s\n", name, out, want);
    CHECKF(strcmp(out, want) == 0, name);
}

static void test_new_and_lookup(void) {
    user_with("u_1", "carol", "carol");
    user_with("u_2", "Carol", "_carol");
    localpart_is("dave", "dave");
    localpart_is("Dave", "dave");
    localpart_is("Carol", "_carol.2"); /* lower case and escape both taken */
    user_with("u_3", "Carol.2x", "_carol.2");
    localpart_is("Carol", "_carol.3");
    localpart_is("_carol", "__carol");
    localpart_is("caf\xc3\xa9", "caf=c3=a9");

    int64_t uid = 0;
    char name[QUN_USERNAME_MAX], lp[QUN_MX_LOCALPART_MAX];
    qun_err_t err;
    CHECK(qun_user_by_localpart(db, "_carol", &uid, name, &err) == QUN_OK);
    CHECK_STR(name, "Carol");
    CHECK(qun_user_localpart(db, uid, lp, &err) == QUN_OK);
    CHECK_STR(lp, "_carol");
    CHECK(qun_user_by_localpart(db, "nobody", &uid, name, &err) == QUN_USER_NOT_FOUND);
    CHECK(qun_user_by_localpart(db, "Carol", &uid, name, &err) == QUN_USER_NOT_FOUND); /* exact only */
    CHECK(qun_user_localpart(db, 999999, lp, &err) == QUN_USER_NOT_FOUND);

    /* Rows written without one get theirs at startup, oldest first; known ones stay. */
    user_with("u_4", "Erin", NULL);
    user_with("u_5", "erin_", NULL);
    int64_t filled = 0;
    CHECK(qun_mx_localpart_backfill(db, &filled, &err) == QUN_OK);
    CHECK(filled == 2);
    CHECK(qun_user_by_localpart(db, "erin", &uid, name, &err) == QUN_OK);
    CHECK_STR(name, "Erin");
    CHECK(qun_user_by_localpart(db, "erin_", &uid, name, &err) == QUN_OK);
    CHECK(qun_mx_localpart_backfill(db, &filled, &err) == QUN_OK);
    CHECK(filled == 0);
}

static void test_display_names(void) {
    static const struct {
        const char *in, *want;
    } good[] = {
        {"\xe7\x8e\x8b\xe5\xb0\x8f\xe6\x98\x8e", "\xe7\x8e\x8b\xe5\xb0\x8f\xe6\x98\x8e"},
        {"  Ann Lee \t", "Ann Lee"},
        {"\xe3\x80\x80\xe7\x8e\x8b\xe3\x80\x80", "\xe7\x8e\x8b"}, /* ideographic spaces trimmed */
        {"Rene\xcc\x81", "Ren\xc3\xa9"},                          /* NFC composes */
        {"x", "x"},
        {"\xf0\x9f\x98\x80 smile", "\xf0\x9f\x98\x80 smile"},
    };
    static const char *bad[] = {"",
                                "   ",
                                "a\x07z",
                                "a\nz",
                                "zero\xe2\x80\x8bwidth",
                                "rtl\xe2\x80\xaeoverride",
                                "bad\xff",
                                "line\xe2\x80\xa8sep"};
    char out[QUN_DISPLAY_NAME_MAX];
    qun_err_t err;
    for (size_t i = 0; i < NROWS(good); i++) {
        CHECKF(qun_display_name_check(good[i].in, out, &err) == QUN_OK, good[i].in);
        CHECKF(strcmp(out, good[i].want) == 0, good[i].in);
    }
    for (size_t i = 0; i < NROWS(bad); i++) {
        CHECKF(qun_display_name_check(bad[i], out, &err) == QUN_FIELD_INVALID, bad[i]);
        CHECKF(strcmp(err.field, "display_name") == 0, bad[i]);
    }
    /* 64 characters pass and 65 do not, counted as characters, not bytes. */
    char wang[65 * 3 + 1];
    for (int i = 0; i < 65; i++)
        memcpy(wang + 3 * i, "\xe7\x8e\x8b", 3);
    wang[64 * 3] = '\0';
    CHECK(qun_display_name_check(wang, out, &err) == QUN_OK);
    CHECK(strlen(out) == 64 * 3);
    wang[64 * 3] = '\xe7';
    wang[65 * 3] = '\0';
    CHECK(qun_display_name_check(wang, out, &err) == QUN_FIELD_INVALID);
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(test_escape);
    RUN(test_new_and_lookup);
    RUN(test_display_names);
    qun_db_close(db);
    return unit_done("core/names");
}
