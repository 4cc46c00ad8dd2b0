/* SPDX-License-Identifier: MIT */
/* Names of people beyond the username: the Matrix localpart an account is addressed
 * by (@<localpart>:<server>), given once and never recomputed, and the display name a
 * person chooses, shown wherever they appear (docs/api.md "Names").
 *
 * The localpart is the username in ASCII lower case when that fits the localpart
 * alphabet and is free, otherwise the Matrix spec's escape of the username (appendix
 * "Mapping from other character sets"), then that escape with ".2", ".3"... appended.
 * Migration 0023 gave existing accounts theirs by the same rules. */
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "qun/core.h"
#include "qun/event.h"

/* Bytes a localpart may hold as they are (the escape also writes '_' and '='). */
static bool plain_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '/' || c == '+';
}

/* Whether the ASCII lower case of name is a localpart as it stands. */
static bool lowers_cleanly(const char *name, char out[QUN_MX_LOCALPART_MAX]) {
    size_t n = strlen(name);
    if (n == 0 || n >= QUN_MX_LOCALPART_MAX) return false;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (c && !plain_byte(c) && c != '_' && c != '=') return false;
        out[i] = (char)c;
    }
    return true;
}

qun_rc qun_mx_localpart_escape(const char *username, char out[QUN_MX_LOCALPART_MAX], qun_err_t *err) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)username; *p; p++) {
        char buf[4];
        size_t n = 0;
        if (plain_byte(*p)) {
            buf[n++] = (char)*p;
        } else if (*p >= 'A' && *p <= 'Z') {
            buf[n++] = '_';
            buf[n++] = (char)(*p - 'A' + 'a');
        } else if (*p == '_') {
            buf[n++] = '_';
            buf[n++] = '_';
        } else { /* '=' itself too, so the mapping stays one to one */
            buf[n++] = '=';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
        }
        if (o + n >= QUN_MX_LOCALPART_MAX)
            return qun_fail_field(err, QUN_FIELD_INVALID, "username",
                                  "the username's Matrix localpart would exceed %d bytes",
                                  QUN_MX_LOCALPART_MAX - 1);
        memcpy(out + o, buf, n);
        o += n;
    }
    out[o] = '\0';
    if (o == 0)
        return qun_fail_field(err, QUN_FIELD_INVALID, "username", "an empty username has no localpart");
    return QUN_OK;
}

/* Whether an account holds localpart: *taken. */
static qun_rc localpart_taken(qun_db_t *db, const char *localpart, bool *taken, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT 1 FROM users WHERE mx_localpart = $1", "s", localpart);
    *taken = rc == QUN_ROW;
    if (rc == QUN_ROW) qun_q_done(q);
    return rc == QUN_ROW || rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_mx_localpart_new(qun_db_t *db, const char *username, char out[QUN_MX_LOCALPART_MAX],
                            qun_err_t *err) {
    bool taken = true;
    qun_rc rc = QUN_OK;
    if (lowers_cleanly(username, out)) rc = localpart_taken(db, out, &taken, err);
    if (rc != QUN_OK || !taken) return rc;
    char esc[QUN_MX_LOCALPART_MAX];
    rc = qun_mx_localpart_escape(username, esc, err);
    for (int k = 1; rc == QUN_OK; k++) {
        int n = k == 1 ? snprintf(out, QUN_MX_LOCALPART_MAX, "%s", esc)
                       : snprintf(out, QUN_MX_LOCALPART_MAX, "%s.%d", esc, k);
        if (n >= QUN_MX_LOCALPART_MAX)
            return qun_fail_field(err, QUN_FIELD_INVALID, "username",
                                  "no free Matrix localpart fits for this username");
        rc = localpart_taken(db, out, &taken, err);
        if (rc == QUN_OK && !taken) return QUN_OK;
    }
    return rc;
}

static qun_rc localpart_backfill_txn(qun_db_t *db, void *arg, qun_err_t *err) {
    int64_t *filled = arg, ids[64];
    char names[64][QUN_USERNAME_MAX];
    *filled = 0;
    /* The same lock as the username keys: one qund backfills at a time. */
    qun_rc rc = qun_db_xlock(db, QUN_USERNAME_LOCK, err);
    for (bool more = true; rc == QUN_OK && more;) {
        qun_q_t *q;
        int n = 0;
        rc = qun_db_run(db, &q, err,
                        "SELECT id, username FROM users WHERE mx_localpart IS NULL ORDER BY id LIMIT 64", "");
        for (; rc == QUN_ROW; rc = qun_q_step(q, err), n++) {
            ids[n] = qun_q_col_int(q, 0);
            snprintf(names[n], sizeof names[n], "%s", qun_q_col_text(q, 1));
        }
        if (rc != QUN_DONE) break;
        rc = QUN_OK;
        more = n == 64;
        for (int i = 0; i < n && rc == QUN_OK; i++) {
            char lp[QUN_MX_LOCALPART_MAX];
            rc = qun_mx_localpart_new(db, names[i], lp, err);
            if (rc == QUN_OK)
                rc = qun_db_run(db, NULL, err, "UPDATE users SET mx_localpart = $2 WHERE id = $1", "is",
                                ids[i], lp);
            if (rc == QUN_DONE) rc = QUN_OK, (*filled)++;
        }
    }
    return rc;
}

qun_rc qun_mx_localpart_backfill(qun_db_t *db, int64_t *filled, qun_err_t *err) {
    return qun_db_txn(db, localpart_backfill_txn, filled, err);
}

qun_rc qun_user_by_localpart(qun_db_t *db, const char *localpart, int64_t *uid,
                             char username[QUN_USERNAME_MAX], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT id, username FROM users WHERE mx_localpart = $1", "s", localpart);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_USER_NOT_FOUND, "no user has the localpart %.128s", localpart);
    if (rc != QUN_ROW) return rc;
    *uid = qun_q_col_int(q, 0);
    snprintf(username, QUN_USERNAME_MAX, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_user_localpart(qun_db_t *db, int64_t uid, char out[QUN_MX_LOCALPART_MAX], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT mx_localpart FROM users WHERE id = $1 AND mx_localpart IS NOT NULL", "i", uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_USER_NOT_FOUND, "no user %lld", (long long)uid);
    if (rc != QUN_ROW) return rc;
    snprintf(out, QUN_MX_LOCALPART_MAX, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return QUN_OK;
}

#define DN_U16 (4 * QUN_DISPLAY_NAME_INPUT_MAX) /* UTF-16 units: NFC expands at most 3 times */

/* Characters a display name may not hold: controls, format characters (invisible
 * joiners and direction marks, which would let a name pass for another), surrogates,
 * line and paragraph separators, unassigned code points. */
static bool refused(UChar32 c) {
    switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_UNASSIGNED: return true;
    default: return false;
    }
}

qun_rc qun_display_name_check(const char *name, char out[QUN_DISPLAY_NAME_MAX], qun_err_t *err) {
    UChar *s, *d; /* on the heap: too big for a worker's stack */
    int32_t n = 0, m = 0, bytes = 0;
    UErrorCode st = U_ZERO_ERROR;
    if (strlen(name) > QUN_DISPLAY_NAME_INPUT_MAX)
        return qun_fail_field(err, QUN_FIELD_INVALID, "display_name",
                              "display_name must be 1 to 64 characters (%d bytes of UTF-8 at most)",
                              QUN_DISPLAY_NAME_INPUT_MAX);
    s = qun_xmalloc(sizeof(UChar) * DN_U16);
    d = qun_xmalloc(sizeof(UChar) * DN_U16);
    const UNormalizer2 *nfc = unorm2_getNFCInstance(&st);
    if (U_SUCCESS(st)) u_strFromUTF8(s, DN_U16, &n, name, -1, &st);
    if (U_SUCCESS(st) && st != U_STRING_NOT_TERMINATED_WARNING)
        m = unorm2_normalize(nfc, s, n, d, DN_U16, &st);
    qun_rc rc = QUN_OK;
    if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING) {
        rc = qun_fail_field(err, QUN_FIELD_INVALID, "display_name", "display_name is not valid UTF-8 (%s)",
                            u_errorName(st));
        goto out;
    }
    /* Trim white space (Unicode's, the ideographic space included) at both ends. */
    int32_t start = 0, end = m, count = 0;
    while (start < end) {
        UChar32 c;
        int32_t i = start;
        U16_NEXT(d, i, end, c);
        if (!u_isUWhiteSpace(c)) break;
        start = i;
    }
    while (end > start) {
        UChar32 c;
        int32_t i = end;
        U16_PREV(d, start, i, c);
        if (!u_isUWhiteSpace(c)) break;
        end = i;
    }
    for (int32_t i = start; i < end; count++) {
        UChar32 c;
        U16_NEXT(d, i, end, c);
        if (refused(c)) {
            rc = qun_fail_field(err, QUN_FIELD_INVALID, "display_name",
                                "display_name may not hold control or format characters (U+%04X)",
                                (unsigned)c);
            goto out;
        }
    }
    if (count < 1 || count > 64) {
        rc = qun_fail_field(err, QUN_FIELD_INVALID, "display_name",
                            "display_name must be 1 to 64 characters once trimmed (it has %d)", (int)count);
        goto out;
    }
    st = U_ZERO_ERROR;
    u_strToUTF8(out, QUN_DISPLAY_NAME_MAX, &bytes, d + start, end - start, &st);
    if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING)
        rc = qun_fail_field(err, QUN_FIELD_INVALID, "display_name", "display_name does not fit (%s)",
                            u_errorName(st));
out:
    free(s);
    free(d);
    return rc;
}

qun_rc qun_user_set_display_name(qun_db_t *db, const qun_actor_t *a, const char *name_or_null, json_t **out,
                                 qun_err_t *err) {
    char name[QUN_DISPLAY_NAME_MAX];
    qun_q_t *q;
    *out = NULL;
    qun_rc rc = name_or_null ? qun_display_name_check(name_or_null, name, err) : QUN_OK;
    if (rc != QUN_OK) return rc;
    const char *set = name_or_null ? name : NULL;
    /* Unchanged: nothing to tell anyone. */
    rc = qun_db_run(db, &q, err, "SELECT display_name FROM users WHERE id = $1", "i", a->uid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_USER_NOT_FOUND, "gone") : rc;
    bool same = qun_q_col_null(q, 0) ? !set : set && strcmp(qun_q_col_text(q, 0), set) == 0;
    qun_q_done(q);
    if (!same) {
        rc = qun_db_run(db, NULL, err, "UPDATE users SET display_name = $2 WHERE id = $1", "is", a->uid, set);
        if (rc != QUN_DONE) return rc;
        /* Every group the person is in hears it, in this transaction, so chat clients
         * redraw the name. */
        int64_t *groups = NULL;
        size_t n = 0, cap = 0;
        rc = qun_db_run(db, &q, err, "SELECT group_id FROM members WHERE user_id = $1 ORDER BY group_id", "i",
                        a->uid);
        for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
            if (n == cap) {
                int64_t *grown = qun_xcalloc(cap ? 2 * cap : 16, sizeof *grown);
                if (n) memcpy(grown, groups, n * sizeof *grown);
                free(groups);
                groups = grown;
                cap = cap ? 2 * cap : 16;
            }
            groups[n++] = qun_q_col_int(q, 0);
        }
        if (rc == QUN_DONE) rc = QUN_OK;
        for (size_t i = 0; i < n && rc == QUN_OK; i++)
            rc = qun_event_group(db, "member.display_name_changed", groups[i], 0,
                                 json_pack("{s:s, s:s?}", "openid", a->openid, "display_name", set), err);
        free(groups);
        if (rc != QUN_OK) return rc;
    }
    *out = json_pack("{s:s, s:s?}", "openid", a->openid, "display_name", set);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_display_name_put(qun_db_t *db, json_t *o, const char *key, int64_t uid, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT display_name FROM users WHERE id = $1", "i", uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_USER_NOT_FOUND, "no user %lld", (long long)uid);
    if (rc != QUN_ROW) return rc;
    json_object_set_new(o, key, qun_q_col_null(q, 0) ? json_null() : json_string(qun_q_col_text(q, 0)));
    qun_q_done(q);
    return QUN_OK;
}
