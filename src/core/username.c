/* SPDX-License-Identifier: MIT */
/* Usernames as people read them.  A username is shown exactly as it was registered,
 * but it is unique, and found at login, by its key: Unicode NFKC_Casefold (UAX #15
 * compatibility normalization with full case folding and default-ignorable code points
 * removed, the `NFKC_CF` of UAX #44, computed by ICU).  So "Alice" and "alice",
 * "STRASSE" and "straße", "ΣΑΣ" and "σας", and full-width "ａｌｉｃｅ" are one name.
 *
 * SQL cannot fold Unicode (neither SQLite nor PostgreSQL does it the same way, if at
 * all), so the key is computed here: at registration, and at startup for accounts
 * created before the key existed (migration 0020).  Accounts of that earlier time
 * whose keys collide all keep working: the oldest holds the key, each other one keeps
 * logging in by its exact username and is listed in username_collisions for the
 * server admins (docs/accounts.md). */
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "qun/core.h"

#define U16_MAX 2048 /* UTF-16 units: a 64-byte login name, expanded at most 18 times by NFKC */

qun_rc qun_username_key(const char *username, char *out, size_t size, qun_err_t *err) {
    UChar src[U16_MAX], dst[U16_MAX];
    int32_t n = 0, m = 0, bytes = 0;
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2 *nfkc_cf = unorm2_getNFKCCasefoldInstance(&st);
    if (U_SUCCESS(st)) u_strFromUTF8(src, U16_MAX, &n, username, -1, &st);
    if (U_SUCCESS(st) && st != U_STRING_NOT_TERMINATED_WARNING)
        m = unorm2_normalize(nfkc_cf, src, n, dst, U16_MAX, &st);
    if (U_SUCCESS(st) && st != U_STRING_NOT_TERMINATED_WARNING)
        u_strToUTF8(out, (int32_t)size, &bytes, dst, m, &st);
    if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
        return qun_fail_field(err, QUN_FIELD_INVALID, "username", "the username cannot be normalized (%s)",
                              u_errorName(st));
    return QUN_OK;
}

/* Whether c may appear in a username: letters of any script, combining marks after
 * the first character (accents, vowel signs), decimal digits, and '_', '-', '.'. */
static bool allowed(UChar32 c, bool first) {
    switch (u_charType(c)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
    case U_DECIMAL_DIGIT_NUMBER: return true;
    case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_ENCLOSING_MARK: return !first;
    default: return c == '_' || c == '-' || c == '.';
    }
}

qun_rc qun_username_check(const char *username, char *key, size_t size, qun_err_t *err) {
    int32_t i = 0, len = (int32_t)strlen(username);
    while (i < len) {
        UChar32 c;
        bool first = i == 0;
        U8_NEXT(username, i, len, c);
        if (c < 0 || !allowed(c, first))
            return qun_fail_field(err, QUN_FIELD_INVALID, "username",
                                  "username may hold letters, digits, combining marks, '_', '-' and '.'");
    }
    qun_rc rc = qun_username_key(username, key, size, err);
    if (rc == QUN_OK && !*key)
        return qun_fail_field(err, QUN_FIELD_INVALID, "username", "the username is empty once normalized");
    return rc;
}

/* Give one account created before usernames had keys its key, or record that an older
 * account holds it already.  Runs in the caller's transaction. */
static qun_rc backfill_one(qun_db_t *db, int64_t uid, const char *username, int64_t *collisions,
                           qun_err_t *err) {
    char key[QUN_USERNAME_KEY_MAX];
    qun_q_t *q;
    qun_err_t ignore = {{0}, {0}};
    /* Names from before this rule (ASCII letters, digits, "_-.") always fold; anything
     * that does not is keyed by its exact bytes, which still keeps it unique. */
    if (qun_username_key(username, key, sizeof key, &ignore) != QUN_OK || !*key)
        snprintf(key, sizeof key, "%s", username);
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT id, username, openid FROM users WHERE username_key = $1", "s", key);
    if (rc == QUN_DONE)
        return (rc = qun_db_run(db, NULL, err, "UPDATE users SET username_key = $2 WHERE id = $1", "is", uid,
                                key)) == QUN_DONE
                   ? QUN_OK
                   : rc;
    if (rc != QUN_ROW) return rc;
    int64_t holder = qun_q_col_int(q, 0);
    char holder_name[QUN_USERNAME_KEY_MAX], holder_openid[QUN_ID_MAX];
    snprintf(holder_name, sizeof holder_name, "%s", qun_q_col_text(q, 1));
    snprintf(holder_openid, sizeof holder_openid, "%s", qun_q_col_text(q, 2));
    qun_q_done(q);
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO username_collisions(user_id, holder_id, username_key, found_at) VALUES ($1, $2, $3, $4)",
        "iisi", uid, holder, key, qun_now());
    if (rc != QUN_DONE) return rc;
    (*collisions)++;
    qun_log(
        "warn",
        "username collision: \"%s\" and the older \"%s\" (%s) are one name once case and Unicode forms are "
        "folded (\"%s\"); \"%s\" keeps the name, the other keeps logging in by its exact username "
        "(GET /v1/admin/username-collisions)",
        username, holder_name, holder_openid, key, holder_name);
    return QUN_OK;
}

typedef struct {
    int64_t keyed, collisions;
} backfill_t;

static qun_rc backfill_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    backfill_t *b = arg;
    qun_q_t *q;
    int64_t ids[256];
    char names[256][QUN_USERNAME_MAX];
    int n = 0;
    b->keyed = b->collisions = 0;
    /* Several qund on one PostgreSQL may start at once: one backfills at a time. */
    qun_rc rc = qun_db_xlock(db, QUN_USERNAME_LOCK, err);
    for (bool more = true; rc == QUN_OK && more;) {
        /* Oldest first, so the oldest of colliding accounts keeps the key. */
        rc = qun_db_run(db, &q, err,
                        "SELECT id, username FROM users WHERE username_key IS NULL AND id NOT IN "
                        "(SELECT user_id FROM username_collisions) ORDER BY id LIMIT 256",
                        "");
        for (n = 0; rc == QUN_ROW; rc = qun_q_step(q, err), n++) {
            ids[n] = qun_q_col_int(q, 0);
            snprintf(names[n], sizeof names[n], "%s", qun_q_col_text(q, 1));
        }
        if (rc != QUN_DONE) break;
        rc = QUN_OK;
        more = n == 256;
        for (int i = 0; i < n && rc == QUN_OK; i++) {
            int64_t before = b->collisions;
            rc = backfill_one(db, ids[i], names[i], &b->collisions, err);
            if (b->collisions == before) b->keyed++;
        }
    }
    return rc;
}

qun_rc qun_username_backfill(qun_db_t *db, int64_t *keyed, int64_t *collisions, qun_err_t *err) {
    backfill_t b = {0, 0};
    qun_rc rc = qun_db_txn(db, backfill_txn, &b, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    *keyed = b.keyed;
    *collisions = 0;
    rc = qun_db_run(db, &q, err, "SELECT COUNT(*) FROM username_collisions", "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *collisions = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_username_collisions(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                               qun_err_t *err) {
    if (!a->is_admin) return qun_fail(err, QUN_FORBIDDEN_ADMIN, "only server admins see username collisions");
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = after;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT c.user_id, u.openid, u.username, u.created_at, h.openid, h.username, "
                           "h.created_at, c.username_key, c.found_at FROM username_collisions c "
                           "JOIN users u ON u.id = c.user_id JOIN users h ON h.id = c.holder_id "
                           "WHERE c.user_id > $1 ORDER BY c.user_id LIMIT $2",
                           "ii", after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_array_append_new(items,
                              json_pack("{s:{s:s, s:s, s:I}, s:{s:s, s:s, s:I}, s:s, s:I}", "user", "openid",
                                        qun_q_col_text(q, 1), "username", qun_q_col_text(q, 2), "created_at",
                                        (json_int_t)qun_q_col_int(q, 3), "holder", "openid",
                                        qun_q_col_text(q, 4), "username", qun_q_col_text(q, 5), "created_at",
                                        (json_int_t)qun_q_col_int(q, 6), "username_key", qun_q_col_text(q, 7),
                                        "found_at", (json_int_t)qun_q_col_int(q, 8)));
    }
    return qun_page(rc, items, last, limit, out);
}
