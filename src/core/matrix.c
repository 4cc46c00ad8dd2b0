/* SPDX-License-Identifier: MIT */
/* The Matrix adapter's own rows: filters, account data, forgotten rooms, and the
 * account lookups behind Matrix user ids (include/qun/matrix.h). */
#include <stdlib.h>
#include <string.h>

#include "qun/event.h"
#include "qun/matrix.h"

qun_rc qun_mx_user_by_local(qun_db_t *db, const char *local, int64_t *uid, char openid[QUN_ID_MAX],
                            char username[QUN_USERNAME_MAX], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT id, openid, username FROM users WHERE mx_localpart = $1", "s", local);
    if (rc == QUN_DONE) return qun_fail(err, QUN_USER_NOT_FOUND, "no such user");
    if (rc != QUN_ROW) return rc;
    *uid = qun_q_col_int(q, 0);
    snprintf(openid, QUN_ID_MAX, "%s", qun_q_col_text(q, 1));
    snprintf(username, QUN_USERNAME_MAX, "%s", qun_q_col_text(q, 2));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_mx_local_of(qun_db_t *db, int64_t uid, char local[QUN_MX_LOCAL_MAX], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT mx_localpart FROM users WHERE id = $1", "i", uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_USER_NOT_FOUND, "no such user");
    if (rc != QUN_ROW) return rc;
    snprintf(local, QUN_MX_LOCAL_MAX, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_mx_filter_put(qun_db_t *db, int64_t uid, const char *json, int64_t *id, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "INSERT INTO mx_filters(user_id, json) VALUES ($1, $2) RETURNING id",
                           "is", uid, json);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no filter id") : rc;
    *id = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

/* The text of the first column of a one-row query into *out, or QUN_NOT_FOUND. */
static qun_rc one_text(qun_rc rc, qun_q_t *q, char **out, qun_err_t *err) {
    if (rc == QUN_DONE) return qun_fail(err, QUN_NOT_FOUND, "not set");
    if (rc != QUN_ROW) return rc;
    *out = strdup(qun_q_col_text(q, 0));
    qun_q_done(q);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_mx_filter_get(qun_db_t *db, int64_t uid, int64_t id, char **json, qun_err_t *err) {
    qun_q_t *q = NULL;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT json FROM mx_filters WHERE id = $1 AND user_id = $2", "ii", id, uid);
    return one_text(rc, q, json, err);
}

qun_rc qun_mx_data_put(qun_db_t *db, int64_t uid, int64_t group_id, const char *type, const char *json,
                       qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err,
                           "INSERT INTO mx_account_data(user_id, group_id, type, json, updated_at) "
                           "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, group_id, type) "
                           "DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at",
                           "iissi", uid, group_id, type, json, qun_now());
    if (rc != QUN_DONE) return rc == QUN_OK ? QUN_STORE : rc;
    json_t *p = json_pack("{s:s}", "type", type);
    if (p && group_id) json_object_set_new(p, "group_id", json_integer(group_id));
    return qun_event_emit(db, "matrix.account_data", 0, uid, p, err);
}

qun_rc qun_mx_data_get(qun_db_t *db, int64_t uid, int64_t group_id, const char *type, char **json,
                       qun_err_t *err) {
    qun_q_t *q = NULL;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT json FROM mx_account_data WHERE user_id = $1 AND group_id = $2 AND type = $3",
        "iis", uid, group_id, type);
    return one_text(rc, q, json, err);
}

qun_rc qun_mx_data_list(qun_db_t *db, int64_t uid, int64_t group_id, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    *out = json_array();
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT type, json FROM mx_account_data WHERE user_id = $1 AND group_id = $2 "
                           "ORDER BY type",
                           "ii", uid, group_id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        json_t *content = json_loads(qun_q_col_text(q, 1), 0, NULL);
        if (content)
            json_array_append_new(*out,
                                  json_pack("{s:s, s:o}", "type", qun_q_col_text(q, 0), "content", content));
    }
    if (rc == QUN_DONE) return QUN_OK;
    json_decref(*out);
    *out = NULL;
    return rc;
}

qun_rc qun_mx_forget(qun_db_t *db, int64_t uid, int64_t group_id, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err,
                           "INSERT INTO mx_forgotten(user_id, group_id, forgotten_at) VALUES ($1, $2, $3) "
                           "ON CONFLICT (user_id, group_id) DO NOTHING",
                           "iii", uid, group_id, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_mx_forgotten(qun_db_t *db, int64_t uid, int64_t group_id, bool *yes, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT 1 FROM mx_forgotten WHERE user_id = $1 AND group_id = $2",
                           "ii", uid, group_id);
    *yes = rc == QUN_ROW;
    if (rc == QUN_ROW) qun_q_done(q);
    return rc == QUN_ROW || rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_mx_profile(qun_db_t *db, int64_t caller, int64_t uid, json_t **out, bool *shared, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT COALESCE(u.display_name, u.username), u.id = $2 OR EXISTS (SELECT 1 FROM "
                           "members a JOIN members b "
                           "ON a.group_id = b.group_id WHERE a.user_id = $1 AND b.user_id = $2) "
                           "FROM users u WHERE u.id = $1",
                           "ii", uid, caller);
    if (rc == QUN_DONE) return qun_fail(err, QUN_USER_NOT_FOUND, "no such user");
    if (rc != QUN_ROW) return rc;
    *shared = qun_q_col_int(q, 1) != 0;
    *out = json_pack("{s:s}", "displayname", qun_q_col_text(q, 0));
    qun_q_done(q);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}
