/* SPDX-License-Identifier: MIT */
/* What the Matrix adapter (src/http/h_matrix*.c, docs/matrix.md) keeps that qun itself
 * does not need: clients' sync filters, their account data and the rooms they forgot,
 * and the lookups that turn Matrix user ids into qun accounts.  Rooms, members and
 * messages are qun's own groups, members and messages, changed only through the same
 * core functions as /v1. */
#ifndef QUN_MATRIX_H
#define QUN_MATRIX_H

#include <jansson.h>
#include <stdint.h>

#include "qun/core.h"

#define QUN_MX_LOCAL_MAX 128       /* a Matrix localpart, NUL included */
#define QUN_MX_DATA_MAX (64 << 10) /* account data and filters, bytes of JSON */

/* The account whose Matrix localpart is local: its row id, openid and username
 * (QUN_USER_NOT_FOUND when none). */
qun_rc qun_mx_user_by_local(qun_db_t *db, const char *local, int64_t *uid, char openid[QUN_ID_MAX],
                            char username[QUN_USERNAME_MAX], qun_err_t *err);
/* The Matrix localpart of user uid into local. */
qun_rc qun_mx_local_of(qun_db_t *db, int64_t uid, char local[QUN_MX_LOCAL_MAX], qun_err_t *err);

/* The Matrix profile of user uid as caller may see it: {displayname} into *out, and
 * *shared: whether caller is uid or shares a group with uid (only then may the caller
 * be told).  QUN_USER_NOT_FOUND when uid does not exist. */
qun_rc qun_mx_profile(qun_db_t *db, int64_t caller, int64_t uid, json_t **out, bool *shared, qun_err_t *err);

/* Store a filter of user uid (json: its text) and give its id. */
qun_rc qun_mx_filter_put(qun_db_t *db, int64_t uid, const char *json, int64_t *id, qun_err_t *err);
/* The text of user uid's filter id into *json (malloc'd), or QUN_NOT_FOUND. */
qun_rc qun_mx_filter_get(qun_db_t *db, int64_t uid, int64_t id, char **json, qun_err_t *err);

/* Set user uid's account data of type (json: an object's text), global when group_id
 * is 0, else for that group, and append the per-user event `matrix.account_data`
 * {type, group?} so the user's syncs learn of it. */
qun_rc qun_mx_data_put(qun_db_t *db, int64_t uid, int64_t group_id, const char *type, const char *json,
                       qun_err_t *err);
/* The text of one account data entry into *json (malloc'd), or QUN_NOT_FOUND. */
qun_rc qun_mx_data_get(qun_db_t *db, int64_t uid, int64_t group_id, const char *type, char **json,
                       qun_err_t *err);
/* Every account data entry of user uid for group_id (0: the global ones) as Matrix
 * events [{type, content}] into *out. */
qun_rc qun_mx_data_list(qun_db_t *db, int64_t uid, int64_t group_id, json_t **out, qun_err_t *err);

/* Hide group_id from user uid's later initial syncs (POST /rooms/{id}/forget): only
 * a group the user is no longer a member of. */
qun_rc qun_mx_forget(qun_db_t *db, int64_t uid, int64_t group_id, qun_err_t *err);
/* Whether user uid forgot group_id. */
qun_rc qun_mx_forgotten(qun_db_t *db, int64_t uid, int64_t group_id, bool *yes, qun_err_t *err);

#endif
