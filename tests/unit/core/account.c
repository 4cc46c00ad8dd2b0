/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/account.c on an in-memory store: the admins list, argon2id
 * password hashes, registration and the login lookup, sessions found only by the
 * SHA-256 of their bearer token and ending on expiry, revocation and a password
 * change (each announced as a session.revoked event), single-use event tickets, the
 * profile, and the cursor pages every list shares. */
#include <sodium.h>

#include "qun/core.h"
#include "unit.h"
#include "unit_store.h"

static qun_db_t *db;

/* A registered user: its openid into openid (QUN_ID_MAX) and its row id. */
static int64_t new_user(const char *name, char *openid) {
    json_t *out = NULL;
    qun_err_t err;
    int64_t uid = 0;
    CHECK(qun_user_create(db, name, "hash", &out, &err) == QUN_OK);
    snprintf(openid, QUN_ID_MAX, "%s", json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    CHECK(qun_user_id(db, openid, &uid, &err) == QUN_OK);
    return uid;
}

/* A session of uid on a new device for the bearer token `token`; the store only ever
 * sees the token's SHA-256. */
static void login(int64_t uid, const char *token, const char *device, const char *platform, qun_actor_t *a) {
    char hash[65], secret[65];
    json_t *out = NULL;
    qun_err_t err;
    qun_sha256_hex(hash, token, strlen(token));
    qun_sha256_hex(secret, device, strlen(device));
    CHECK(qun_session_create(db, uid, hash, device, platform, NULL, secret, "192.0.2.7", &out, &err) ==
          QUN_OK);
    CHECK(strncmp(json_string_value(json_object_get(out, "session_id")), "s_", 2) == 0);
    CHECK_STR(json_string_value(json_object_get(out, "device_id")), device);
    CHECK_STR(json_string_value(json_object_get(out, "platform")), platform);
    CHECK(json_integer_value(json_object_get(out, "expires_at")) == qun_now() + qun_core_cfg.session_ttl);
    json_decref(out);
    memset(a, 0, sizeof *a);
    CHECK(qun_session_auth(db, hash, a, &err) == QUN_OK);
}

static qun_rc auth(const char *token, qun_actor_t *a) {
    char hash[65];
    qun_err_t err;
    qun_sha256_hex(hash, token, strlen(token));
    return qun_session_auth(db, hash, a, &err);
}

/* Whether a name is on a comma-separated list: whole entries only. */
static void names_listed(void) {
    static const struct {
        const char *name, *list, *user;
        bool want;
    } rows[] = {
        {"first entry", "alice,bob", "alice", true},
        {"last entry", "alice,bob", "bob", true},
        {"prefix of an entry", "alice,bob", "bo", false},
        {"entry is a prefix", "alice,bob", "alicea", false},
        {"case matters", "alice,bob", "Alice", false},
        {"the whole list", "alice,bob", "alice,bob", false},
        {"single entry", "root", "root", true},
        {"empty list", "", "root", false},
        {"no list", NULL, "root", false},
    };
    for (size_t r = 0; r < NROWS(rows); r++)
        CHECKF(qun_name_listed(rows[r].list, rows[r].user) == rows[r].want, rows[r].name);
    const char *saved = qun_core_cfg.admins;
    qun_core_cfg.admins = "root,ops";
    CHECK(qun_is_admin("ops") && !qun_is_admin("op"));
    qun_core_cfg.admins = saved;
}

/* argon2id hashes: salted (two hashes of one password differ), verified only by it. */
static void password_hashes(void) {
    char h1[crypto_pwhash_STRBYTES], h2[crypto_pwhash_STRBYTES];
    qun_err_t err;
    CHECK(qun_password_hash("correct horse", h1, &err) == QUN_OK);
    CHECK(qun_password_hash("correct horse", h2, &err) == QUN_OK);
    CHECK(strncmp(h1, "$argon2id$", 10) == 0);
    CHECK(strcmp(h1, h2) != 0);
    CHECK(qun_password_verify(h1, "correct horse"));
    CHECK(qun_password_verify(h2, "correct horse"));
    CHECK(!qun_password_verify(h1, "correct horsf"));
    CHECK(!qun_password_verify(h1, ""));
    CHECK(!qun_password_verify("not a hash", "correct horse"));
    /* A login: a found user's password is checked; an unknown user's is hashed all the
     * same (the same work, so timing tells nothing) and never accepted. */
    CHECK(qun_password_login_ok(true, h1, "correct horse"));
    CHECK(!qun_password_login_ok(true, h1, "correct horsf"));
    char none[crypto_pwhash_STRBYTES] = "";
    CHECK(!qun_password_login_ok(false, none, "correct horse"));
    CHECK(strncmp(none, "$argon2id$", 10) == 0 && qun_password_verify(none, "correct horse"));
}

/* Registration answers the public fields; login finds the exact name first, then
 * any case or Unicode form of it; unknown names and openids are USER_NOT_FOUND. */
static void register_and_lookup(void) {
    json_t *out = NULL;
    qun_err_t err;
    int64_t t0 = qun_now();
    CHECK(qun_user_create(db, "Zoë", "$argon2id$zoe", &out, &err) == QUN_OK);
    CHECK(strncmp(json_string_value(json_object_get(out, "openid")), "u_", 2) == 0);
    CHECK_STR(json_string_value(json_object_get(out, "username")), "Zoë");
    CHECK(json_integer_value(json_object_get(out, "created_at")) >= t0);
    /* No display name yet; the Matrix localpart is the escape ("Zoë" is not ASCII). */
    CHECK(json_is_null(json_object_get(out, "display_name")));
    CHECK_STR(json_string_value(json_object_get(out, "mx_localpart")), "_zo=c3=ab");
    CHECK(json_object_size(out) == 5);
    char openid[QUN_ID_MAX];
    snprintf(openid, sizeof openid, "%s", json_string_value(json_object_get(out, "openid")));
    json_decref(out);
    int64_t uid = 0, found = 0;
    CHECK(qun_user_id(db, openid, &uid, &err) == QUN_OK && uid > 0);
    char hash[64];
    CHECK(qun_user_credentials(db, "Zoë", &found, hash, sizeof hash, &err) == QUN_OK);
    CHECK(found == uid);
    CHECK_STR(hash, "$argon2id$zoe");
    found = 0;
    CHECK(qun_user_credentials(db, "ZOË", &found, hash, sizeof hash, &err) == QUN_OK && found == uid);
    CHECK(qun_user_create(db, "zoë", "h", &out, &err) == QUN_USERNAME_TAKEN);
    CHECK_STR(err.field, "username");
    CHECK(qun_user_credentials(db, "zoe", &found, hash, sizeof hash, &err) == QUN_USER_NOT_FOUND);
    CHECK(qun_user_id(db, "u_nobody", &found, &err) == QUN_USER_NOT_FOUND);
    CHECK_STR(err.field, "openid");
}

/* A session is found by the token's hash only, carries who and where, and ends when
 * it expires. */
static void sessions_by_token_hash(void) {
    char openid[QUN_ID_MAX];
    int64_t uid = new_user("sam", openid);
    const char *saved = qun_core_cfg.admins;
    qun_core_cfg.admins = "sam";
    qun_actor_t a, b;
    login(uid, "qut_sam_token_1", "sam-phone", "ios", &a);
    CHECK(a.uid == uid && a.session_id > 0);
    CHECK_STR(a.openid, openid);
    CHECK_STR(a.username, "sam");
    CHECK_STR(a.device_id, "sam-phone");
    CHECK_STR(a.platform, "ios");
    CHECK(a.is_admin);
    qun_core_cfg.admins = saved;
    qun_err_t err;
    /* The token itself is never a key: presenting it unhashed finds nothing. */
    CHECK(qun_session_auth(db, "qut_sam_token_1", &b, &err) == QUN_TOKEN_INVALID);
    CHECK(auth("qut_sam_token_2", &b) == QUN_TOKEN_INVALID);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM sessions WHERE token_hash LIKE 'qut_%'") == 0);
    CHECK(auth("qut_sam_token_1", &b) == QUN_OK && b.session_id == a.session_id && !b.is_admin);
    qun_clock_advance(qun_core_cfg.session_ttl - 1);
    CHECK(auth("qut_sam_token_1", &b) == QUN_OK);
    qun_clock_advance(1);
    CHECK(auth("qut_sam_token_1", &b) == QUN_TOKEN_INVALID);
}

/* The account's live sessions, the current one marked; revoking one ends it at once
 * and is announced; another account's session cannot be revoked. */
static void list_and_revoke(void) {
    char openid[QUN_ID_MAX], other_id[QUN_ID_MAX];
    int64_t uid = new_user("rita", openid), other = new_user("otto", other_id);
    qun_actor_t phone, laptop, o;
    login(uid, "qut_rita_phone", "rita-phone", "android", &phone);
    login(uid, "qut_rita_laptop", "rita-laptop", "web", &laptop);
    login(other, "qut_otto", "otto-phone", "ios", &o);
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_session_list(db, &phone, &out, &err) == QUN_OK);
    json_t *items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "device_id")), "rita-phone");
    CHECK(json_is_true(json_object_get(json_array_get(items, 0), "current")));
    CHECK(json_is_false(json_object_get(json_array_get(items, 1), "current")));
    char laptop_sid[QUN_ID_MAX];
    snprintf(laptop_sid, sizeof laptop_sid, "%s",
             json_string_value(json_object_get(json_array_get(items, 1), "session_id")));
    json_decref(out);

    int64_t events0 = unit_count(db, "SELECT COUNT(*) FROM events WHERE topic = 'session.revoked'");
    CHECK(qun_session_revoke(db, &o, laptop_sid, &err) == QUN_SESSION_NOT_FOUND);
    CHECK(auth("qut_rita_laptop", &laptop) == QUN_OK);
    CHECK(qun_session_revoke(db, &phone, laptop_sid, &err) == QUN_OK);
    CHECK(auth("qut_rita_laptop", &laptop) == QUN_TOKEN_INVALID);
    CHECK(qun_session_revoke(db, &phone, laptop_sid, &err) == QUN_SESSION_NOT_FOUND);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM events WHERE topic = 'session.revoked'") == events0 + 1);
    CHECK(qun_session_list(db, &phone, &out, &err) == QUN_OK);
    CHECK(json_array_size(json_object_get(out, "items")) == 1);
    json_decref(out);
}

/* A password change logs out every other session of the account, not this one nor
 * other accounts'. */
static void password_change_revokes_others(void) {
    char openid[QUN_ID_MAX], other_id[QUN_ID_MAX];
    int64_t uid = new_user("pete", openid), other = new_user("paula", other_id);
    qun_actor_t a, b, c, p;
    login(uid, "qut_pete_a", "pete-a", "cli", &a);
    login(uid, "qut_pete_b", "pete-b", "web", &b);
    login(uid, "qut_pete_c", "pete-c", "ios", &c);
    login(other, "qut_paula", "paula-a", "ios", &p);
    json_t *out = NULL;
    qun_err_t err;
    int64_t events0 = unit_count(db, "SELECT COUNT(*) FROM events WHERE topic = 'session.revoked'");
    CHECK(qun_password_change(db, &a, "$argon2id$new", &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "sessions_revoked")) == 2);
    CHECK(json_integer_value(json_object_get(out, "password_changed_at")) == qun_now());
    json_decref(out);
    CHECK(auth("qut_pete_a", &a) == QUN_OK);
    CHECK(auth("qut_pete_b", &b) == QUN_TOKEN_INVALID);
    CHECK(auth("qut_pete_c", &c) == QUN_TOKEN_INVALID);
    CHECK(auth("qut_paula", &p) == QUN_OK);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM events WHERE topic = 'session.revoked'") == events0 + 1);
    char hash[64];
    int64_t found;
    CHECK(qun_user_credentials(db, "pete", &found, hash, sizeof hash, &err) == QUN_OK);
    CHECK_STR(hash, "$argon2id$new");
    /* Changing again with no other session revokes none and announces nothing. */
    CHECK(qun_password_change(db, &a, "$argon2id$newer", &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "sessions_revoked")) == 0);
    json_decref(out);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM events WHERE topic = 'session.revoked'") == events0 + 1);
}

/* Event tickets: good once, within their life, while their session lives. */
static void event_tickets(void) {
    char openid[QUN_ID_MAX];
    int64_t uid = new_user("tina", openid);
    qun_actor_t a, got;
    login(uid, "qut_tina", "tina-web", "web", &a);
    qun_err_t err;
    int64_t expires = 0;
    CHECK(qun_event_ticket_issue(db, &a, "ticket-1", &expires, &err) == QUN_OK);
    CHECK(expires == qun_now() + qun_core_cfg.event_ticket_ttl);
    memset(&got, 0, sizeof got);
    CHECK(qun_event_ticket_redeem(db, "ticket-1", &got, &err) == QUN_OK);
    CHECK(got.uid == uid && got.session_id == a.session_id);
    CHECK_STR(got.openid, openid);
    CHECK(qun_event_ticket_redeem(db, "ticket-1", &got, &err) == QUN_TICKET_INVALID);
    CHECK(strstr(err.msg, "already used") != NULL);
    CHECK(qun_event_ticket_redeem(db, "ticket-none", &got, &err) == QUN_TICKET_INVALID);
    CHECK(strstr(err.msg, "no such") != NULL);
    CHECK(qun_event_ticket_issue(db, &a, "ticket-2", &expires, &err) == QUN_OK);
    qun_clock_advance(qun_core_cfg.event_ticket_ttl);
    CHECK(qun_event_ticket_redeem(db, "ticket-2", &got, &err) == QUN_TICKET_INVALID);
    CHECK(strstr(err.msg, "expired") != NULL);
    /* A ticket outlives nothing: its session ends, it is refused. */
    CHECK(qun_event_ticket_issue(db, &a, "ticket-3", &expires, &err) == QUN_OK);
    json_t *out = NULL;
    CHECK(qun_session_list(db, &a, &out, &err) == QUN_OK);
    char sid[QUN_ID_MAX];
    snprintf(
        sid, sizeof sid, "%s",
        json_string_value(json_object_get(json_array_get(json_object_get(out, "items"), 0), "session_id")));
    json_decref(out);
    CHECK(qun_session_revoke(db, &a, sid, &err) == QUN_OK);
    CHECK(qun_event_ticket_redeem(db, "ticket-3", &got, &err) == QUN_TICKET_INVALID);
    CHECK(strstr(err.msg, "has ended") != NULL);
}

/* The profile names the session and the server-wide roles. */
static void profile(void) {
    char openid[QUN_ID_MAX];
    int64_t uid = new_user("mia", openid);
    qun_actor_t a;
    login(uid, "qut_mia", "mia-desk", "windows", &a);
    const char *saved = qun_core_cfg.compliance;
    qun_core_cfg.compliance = "mia";
    json_t *out = NULL, *sessions = NULL;
    qun_err_t err;
    CHECK(qun_me(db, &a, &out, &err) == QUN_OK);
    qun_core_cfg.compliance = saved;
    CHECK_STR(json_string_value(json_object_get(out, "openid")), openid);
    CHECK_STR(json_string_value(json_object_get(out, "username")), "mia");
    CHECK_STR(json_string_value(json_object_get(out, "platform")), "windows");
    CHECK_STR(json_string_value(json_object_get(out, "device_id")), "mia-desk");
    CHECK(json_is_false(json_object_get(out, "minor")));
    CHECK(json_is_false(json_object_get(out, "server_admin")));
    CHECK(json_is_true(json_object_get(out, "compliance")));
    CHECK(qun_session_list(db, &a, &sessions, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "session_id")),
              json_string_value(
                  json_object_get(json_array_get(json_object_get(sessions, "items"), 0), "session_id")));
    json_decref(sessions);
    json_decref(out);
}

/* qun_page: a full page has a cursor, a short one ends, an error frees the items. */
static void pages(void) {
    static const struct {
        const char *name;
        qun_rc rc;
        int items, limit;
        int64_t last;
        const char *cursor; /* NULL: null at the end */
    } rows[] = {
        {"full page", QUN_DONE, 3, 3, 42, "42"},
        {"short page", QUN_DONE, 2, 3, 42, NULL},
        {"empty page", QUN_DONE, 0, 50, 0, NULL},
        {"store error", QUN_STORE, 2, 2, 7, NULL},
    };
    for (size_t r = 0; r < NROWS(rows); r++) {
        json_t *items = json_array(), *out = NULL;
        for (int i = 0; i < rows[r].items; i++)
            json_array_append_new(items, json_integer(i));
        qun_rc rc = qun_page(rows[r].rc, items, rows[r].last, rows[r].limit, &out);
        if (rows[r].rc != QUN_DONE) {
            CHECKF(rc == rows[r].rc, rows[r].name);
            continue;
        }
        CHECKF(rc == QUN_OK, rows[r].name);
        CHECKF(json_array_size(json_object_get(out, "items")) == (size_t)rows[r].items, rows[r].name);
        json_t *c = json_object_get(out, "next_cursor");
        if (rows[r].cursor)
            CHECKF(json_is_string(c) && strcmp(json_string_value(c), rows[r].cursor) == 0, rows[r].name);
        else
            CHECKF(json_is_null(c), rows[r].name);
        json_decref(out);
    }
}

int main(void) {
    qun_err_t err;
    if (sodium_init() < 0) return 1;
    qun_log_quiet = true;
    /* The cheapest argon2id: these tests are about the calls, not the cost. */
    qun_core_cfg.pw_opslimit = crypto_pwhash_OPSLIMIT_MIN;
    qun_core_cfg.pw_memlimit = crypto_pwhash_MEMLIMIT_MIN;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(names_listed);
    RUN(password_hashes);
    RUN(register_and_lookup);
    RUN(sessions_by_token_hash);
    RUN(list_and_revoke);
    RUN(password_change_revokes_others);
    RUN(event_tickets);
    RUN(profile);
    RUN(pages);
    qun_db_close(db);
    return unit_done("core/account");
}
