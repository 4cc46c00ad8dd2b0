/* SPDX-License-Identifier: MIT */
/* Orgs (enterprise or school tenants), their admins, and the minor flag with
 * guardian links that school admins maintain. */
#include <string.h>

#include "qun/core.h"
#include "qun/ledger.h"

qun_rc qun_org_admin_id(qun_db_t *db, const qun_actor_t *a, const char *oid, int64_t *org_id,
                        qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT o.id, a.user_id FROM orgs o LEFT JOIN org_admins a "
                           "ON a.org_id = o.id AND a.user_id = $2 WHERE o.oid = $1",
                           "si", oid, a->uid);
    if (rc == QUN_DONE) return qun_fail_field(err, QUN_ORG_NOT_FOUND, "org", "no org %.40s", oid);
    if (rc != QUN_ROW) return rc;
    *org_id = qun_q_col_int(q, 0);
    bool admin = !qun_q_col_null(q, 1);
    qun_q_done(q);
    return admin ? QUN_OK : qun_fail(err, QUN_FORBIDDEN_ORG, "you are not an admin of org %s", oid);
}

static json_t *org_json(qun_db_t *db, int64_t id) {
    qun_q_t *q;
    if (qun_db_run(db, &q, NULL,
                   "SELECT oid, name, kind, dissolve_protection, created_at FROM orgs WHERE id = $1", "i",
                   id) != QUN_ROW)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:I, s:[]}", "id", qun_q_col_text(q, 0), "name",
                          qun_q_col_text(q, 1), "kind", qun_q_col_text(q, 2), "dissolve_protection",
                          (int)qun_q_col_int(q, 3), "created_at", (json_int_t)qun_q_col_int(q, 4), "admins");
    qun_q_done(q);
    qun_rc rc = qun_db_run(db, &q, NULL,
                           "SELECT u.openid FROM org_admins a JOIN users u ON u.id = a.user_id "
                           "WHERE a.org_id = $1 ORDER BY u.id",
                           "i", id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, NULL))
        json_array_append_new(json_object_get(o, "admins"), json_string(qun_q_col_text(q, 0)));
    return o;
}

qun_rc qun_org_create(qun_db_t *db, const qun_actor_t *a, const char *name, const char *kind, json_t **out,
                      qun_err_t *err) {
    char oid[QUN_ID_MAX];
    qun_id_new(oid, "o");
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "INSERT INTO orgs(oid, name, kind, dissolve_protection, created_at) "
                           "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                           "sssii", oid, name, kind, (int64_t)(strcmp(kind, "enterprise") == 0), qun_now());
    if (rc != QUN_ROW) return rc;
    int64_t id = qun_q_col_int(q, 0);
    qun_q_done(q);
    rc = qun_db_run(db, NULL, err, "INSERT INTO org_admins(org_id, user_id) VALUES ($1, $2)", "ii", id,
                    a->uid);
    if (rc != QUN_DONE) return rc;
    *out = org_json(db, id);
    return *out ? QUN_OK : QUN_STORE;
}

qun_rc qun_org_get(qun_db_t *db, const qun_actor_t *a, const char *oid, json_t **out, qun_err_t *err) {
    int64_t id;
    qun_rc rc = qun_org_admin_id(db, a, oid, &id, err);
    if (rc == QUN_FORBIDDEN_ORG) rc = qun_fail(err, QUN_ORG_NOT_FOUND, "no org %.40s", oid);
    if (rc != QUN_OK) return rc;
    *out = org_json(db, id);
    return *out ? QUN_OK : QUN_STORE;
}

qun_rc qun_org_list(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                    qun_err_t *err) {
    int64_t ids[200], last = after;
    int n = 0;
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT o.id FROM orgs o WHERE o.id > $3 AND ($2 = 1 OR EXISTS "
                           "(SELECT 1 FROM org_admins a WHERE a.org_id = o.id AND a.user_id = $1)) "
                           "ORDER BY o.id LIMIT $4",
                           "iiii", a->uid, (int64_t)a->is_admin, after, (int64_t)limit);
    for (; rc == QUN_ROW && n < limit && n < 200; rc = qun_q_step(q, err))
        ids[n++] = qun_q_col_int(q, 0);
    if (rc == QUN_ROW) {
        qun_q_done(q);
        rc = QUN_DONE;
    }
    json_t *items = json_array();
    for (int i = 0; rc == QUN_DONE && i < n; i++) { /* after the listing: one statement open at a time */
        json_t *o = org_json(db, ids[i]);
        if (!o)
            rc = QUN_STORE;
        else
            json_array_append_new(items, o);
        last = ids[i];
    }
    return qun_page(rc, items, last, limit, out);
}

qun_rc qun_org_add_admin(qun_db_t *db, const qun_actor_t *a, const char *oid, const char *openid,
                         qun_err_t *err) {
    int64_t id, uid;
    qun_rc rc = qun_org_admin_id(db, a, oid, &id, err);
    if (rc == QUN_OK) rc = qun_user_id(db, openid, &uid, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO org_admins(org_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        "ii", id, uid);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_org_guardian_link(qun_db_t *db, const qun_actor_t *a, const char *oid, const char *minor,
                             const char *guardian, qun_err_t *err) {
    int64_t id, mid, gid;
    qun_q_t *q;
    qun_rc rc = qun_org_admin_id(db, a, oid, &id, err);
    if (rc == QUN_OK) {
        rc = qun_db_run(db, &q, err, "SELECT kind FROM orgs WHERE id = $1", "i", id);
        if (rc == QUN_ROW) {
            bool school = strcmp(qun_q_col_text(q, 0), "school") == 0;
            qun_q_done(q);
            rc = school ? QUN_OK : qun_fail(err, QUN_FORBIDDEN_ORG, "only school orgs manage minors");
        }
    }
    if (rc == QUN_OK) rc = qun_user_id(db, minor, &mid, err);
    if (rc == QUN_OK) rc = qun_user_id(db, guardian, &gid, err);
    if (rc == QUN_OK && mid == gid)
        rc = qun_fail_field(err, QUN_FIELD_INVALID, "guardian", "a user cannot be their own guardian");
    if (rc == QUN_OK) rc = qun_db_run(db, NULL, err, "UPDATE users SET is_minor = 1 WHERE id = $1", "i", mid);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO guardians(minor_id, guardian_id, created_at) VALUES ($1, $2, $3) "
                        "ON CONFLICT DO NOTHING",
                        "iii", mid, gid, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_org_set_protection(qun_db_t *db, const qun_actor_t *a, const char *oid, bool on, json_t **out,
                              qun_err_t *err) {
    int64_t id;
    qun_q_t *q;
    qun_rc rc = qun_org_admin_id(db, a, oid, &id, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err, "SELECT kind, dissolve_protection FROM orgs WHERE id = $1", "i", id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    bool enterprise = strcmp(qun_q_col_text(q, 0), "enterprise") == 0, was = qun_q_col_int(q, 1) != 0;
    qun_q_done(q);
    if (!enterprise)
        return qun_fail_field(err, QUN_FIELD_INVALID, "enabled",
                              "only enterprise orgs have dissolve protection");
    rc = qun_db_run(db, NULL, err, "UPDATE orgs SET dissolve_protection = $2 WHERE id = $1", "ii", id,
                    (int64_t)on);
    if (rc != QUN_DONE) return rc;
    json_t *f = json_pack("{s:s, s:b, s:b}", "org", oid, "from", was, "to", on);
    rc = qun_ledger_append(db, "org.protection_switched", NULL, a->openid, NULL, NULL, f, NULL, err);
    json_decref(f);
    if (rc != QUN_OK) return rc;
    *out = org_json(db, id);
    return *out ? QUN_OK : QUN_STORE;
}
