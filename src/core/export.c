/* SPDX-License-Identifier: MIT */
/* Export requests (include/qun/export.h, docs/archive-format.md): who may ask for an
 * archive of a group, to which age recipients, under which policy; the `exports` row
 * and its `export_group` job, written in the request's transaction; and an export as
 * its requester sees it.  The archive itself is made by the job (jobs/export.c). */
#include <stdlib.h>
#include <string.h>

#include "qun/age.h"
#include "qun/core.h"
#include "qun/export.h"
#include "qun/policy.h"
#include "qun/queue.h"
#include "qun/verify.h"

qun_rc qun_export_check_recipients(json_t *recipients, const char *field, qun_err_t *err) {
    size_t n = json_array_size(recipients), i;
    if (!json_is_array(recipients) || n < 1 || n > QUN_EXPORT_MAX_RECIPIENTS)
        return qun_fail_field(err, QUN_FIELD_INVALID, field, "%s must list 1 to %d age recipients", field,
                              QUN_EXPORT_MAX_RECIPIENTS);
    json_t *e;
    json_array_foreach(recipients, i, e) {
        uint8_t pk[32];
        char name[sizeof err->field];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        if (!json_is_string(e))
            return qun_fail_field(err, QUN_FIELD_INVALID, name, "a recipient is a string");
        if (qun_age_recipient_parse(json_string_value(e), pk, err) != QUN_OK) {
            snprintf(err->field, sizeof err->field, "%s", name);
            return QUN_AGE_KEY_INVALID;
        }
    }
    return QUN_OK;
}

qun_rc qun_export_check_passphrase(const char *pass, const char *field, qun_err_t *err) {
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)pass; *p; p++) {
        /* A passphrase is typed at age's prompt: no line breaks or other controls. */
        if (*p < 0x20 || *p == 0x7f)
            return qun_fail_field(err, QUN_FIELD_INVALID, field, "%s must not contain control characters",
                                  field);
        if ((*p & 0xc0) != 0x80) chars++;
    }
    if (chars < QUN_EXPORT_PASSPHRASE_MIN)
        return qun_fail_field(err, QUN_PASSPHRASE_TOO_SHORT, field, "%s needs at least %d characters", field,
                              QUN_EXPORT_PASSPHRASE_MIN);
    return QUN_OK;
}

qun_rc qun_export_queue(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, json_t *recipients,
                        bool self, const qun_export_opts_t *opts, int64_t *id, json_t **out, qun_err_t *err) {
    static const qun_export_opts_t none = {NULL, NULL, false, 0};
    if (!opts) opts = &none;
    qun_policy_view_t v;
    qun_rc rc = qun_group_policy(db, g, &v, err);
    if (rc != QUN_OK) return rc;
    if (!v.rule[QUN_POLICY_EXPORT].value)
        return qun_fail(err, QUN_EXPORT_FORBIDDEN, "export of this group is not allowed (%s)",
                        v.rule[QUN_POLICY_EXPORT].source);
    bool mask = v.rule[QUN_POLICY_DESENSITIZE].value != 0;
    char xid[QUN_ID_MAX];
    qun_id_new(xid, "x");
    char *rtext = opts->passphrase ? strdup("[]") : json_dumps(recipients, JSON_COMPACT);
    if (!rtext) return qun_fail(err, QUN_NOMEM, "out of memory");
    /* The passphrase is kept only sealed, and only until the job ends. */
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    if (opts->passphrase) {
        rc = qun_secret_seal(opts->passphrase, strlen(opts->passphrase), &sealed, &sealed_len, err);
        if (rc != QUN_OK) {
            free(rtext);
            return rc;
        }
    }
    int64_t now = qun_now();
    const char *scope = self ? "self" : "group";
    const char *lang = opts->lang && strcmp(opts->lang, "zh-CN") == 0 ? "zh-CN" : "en";
    qun_q_t *q;
    rc = qun_q_prepare(db,
                       "INSERT INTO exports(xid, group_id, requester_id, recipients, desensitize, "
                       "created_at, scope, passphrase_sealed, lang, tz_offset) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                       &q, err);
    if (rc == QUN_OK) {
        qun_q_text(q, 1, xid);
        qun_q_int(q, 2, g->id);
        qun_q_int(q, 3, a->uid);
        qun_q_text(q, 4, rtext);
        qun_q_int(q, 5, (int64_t)mask);
        qun_q_int(q, 6, now);
        qun_q_text(q, 7, scope);
        if (sealed)
            qun_q_blob(q, 8, sealed, sealed_len);
        else
            qun_q_null(q, 8);
        qun_q_text(q, 9, lang);
        if (opts->has_tz)
            qun_q_int(q, 10, opts->tz_offset);
        else
            qun_q_null(q, 10);
        rc = qun_q_step(q, err);
    }
    free(rtext);
    free(sealed);
    if (rc != QUN_ROW) return rc == QUN_DONE || rc == QUN_OK ? QUN_STORE : rc;
    *id = qun_q_col_int(q, 0);
    qun_q_done(q);
    rc = qun_queue_add(db, QUN_JOB_EXPORT_GROUP, g->id, *id, now, NULL, err);
    if (rc != QUN_OK) return rc;
    if (out) {
        *out = json_pack("{s:s, s:s, s:s, s:s, s:{s:i, s:i, s:i}, s:b, s:I}", "id", xid, "group", g->gid,
                         "scope", scope, "state", "running", "progress", "messages", 0, "files", 0, "bytes",
                         0, "desensitized", mask, "created_at", (json_int_t)now);
        if (*out)
            json_object_set_new(*out, "protection",
                                json_string(opts->passphrase ? "passphrase" : "recipients"));
    }
    return QUN_OK;
}

qun_rc qun_export_create(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *recipients,
                         const char *scope, const qun_export_opts_t *opts, json_t **out, qun_err_t *err) {
    const char *pass = opts ? opts->passphrase : NULL;
    /* Exactly one protection: age recipients, or a passphrase (checked before any
     * lookup, so a bad request is told so whatever the group). */
    if (pass && recipients)
        return qun_fail_field(err, QUN_EXPORT_PROTECTION_CONFLICT, "passphrase",
                              "give either recipients or a passphrase, not both");
    if (!pass && !recipients)
        return qun_fail_field(err, QUN_FIELD_MISSING, "recipients",
                              "give recipients (age1... keys) or a passphrase");
    qun_rc prc = pass ? qun_export_check_passphrase(pass, "passphrase", err) : QUN_OK;
    if (prc != QUN_OK) return prc;
    bool self = scope && strcmp(scope, "self") == 0;
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, self ? QUN_ROLE_MEMBER : QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    /* A member's own copy: during a dissolution's notice (any member), or any time
     * for the owner. */
    if (self && g.role != QUN_ROLE_OWNER && qun_group_state_parse(g.state) != QUN_GROUP_PENDING)
        return qun_fail(err, QUN_SELF_EXPORT_CLOSED,
                        "members export their own copy while a dissolution is pending; group %s is %s", g.gid,
                        g.state);
    if (!pass) rc = qun_export_check_recipients(recipients, "recipients", err);
    int64_t id;
    return rc == QUN_OK ? qun_export_queue(db, a, &g, recipients, self, opts, &id, out, err) : rc;
}

/* Load the export row xid for its requester. */
static qun_rc load(qun_db_t *db, const qun_actor_t *a, const char *xid, qun_q_t **q, qun_err_t *err) {
    qun_rc rc = qun_db_run(
        db, q, err,
        "SELECT e.xid, g.gid, e.state, e.progress, e.digest, e.size, e.ledger_index, e.error, "
        "e.created_at, e.finished_at, e.requester_id, e.recipients, e.desensitize, e.scope, e.purged_at, "
        "e.lang, e.tz_offset FROM exports e JOIN groups g ON g.id = e.group_id WHERE e.xid = $1",
        "s", xid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_EXPORT_NOT_FOUND, "no export %s of yours", xid);
    if (rc != QUN_ROW) return rc;
    if (qun_q_col_int(*q, 10) != a->uid) {
        qun_q_done(*q);
        return qun_fail(err, QUN_EXPORT_NOT_FOUND, "no export %s of yours", xid);
    }
    return QUN_OK;
}

qun_rc qun_export_get(qun_db_t *db, const qun_actor_t *a, const char *xid, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = load(db, a, xid, &q, err);
    if (rc != QUN_OK) return rc;
    json_t *progress = json_loads(qun_q_col_text(q, 3), 0, NULL);
    json_t *recips = json_loads(qun_q_col_text(q, 11), 0, NULL);
    const char *state = qun_q_col_text(q, 2);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:I}", "id", qun_q_col_text(q, 0), "group",
                  qun_q_col_text(q, 1), "state", state, "progress", progress ? progress : json_object(),
                  "recipients", recips ? recips : json_array(), "desensitized", qun_q_col_int(q, 12) != 0,
                  "created_at", (json_int_t)qun_q_col_int(q, 8));
    if (strcmp(state, "done") == 0) {
        json_object_set_new(o, "digest", json_string(qun_q_col_text(q, 4)));
        json_object_set_new(o, "size", json_integer(qun_q_col_int(q, 5)));
        json_object_set_new(o, "ledger_index", json_integer(qun_q_col_int(q, 6)));
    }
    if (strcmp(state, "failed") == 0) json_object_set_new(o, "error", json_string(qun_q_col_text(q, 7)));
    json_object_set_new(o, "scope", json_string(qun_q_col_text(q, 13)));
    json_object_set_new(o, "protection", json_string(json_array_size(recips) ? "recipients" : "passphrase"));
    json_object_set_new(o, "lang", json_string(qun_q_col_text(q, 15)));
    if (!qun_q_col_null(q, 9)) json_object_set_new(o, "finished_at", json_integer(qun_q_col_int(q, 9)));
    if (!qun_q_col_null(q, 14)) json_object_set_new(o, "purged_at", json_integer(qun_q_col_int(q, 14)));
    qun_q_done(q);
    *out = o;
    return QUN_OK;
}

qun_rc qun_export_file(qun_db_t *db, const qun_actor_t *a, const char *xid, char *path, size_t size,
                       qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = load(db, a, xid, &q, err);
    if (rc != QUN_OK) return rc;
    bool done = strcmp(qun_q_col_text(q, 2), "done") == 0, purged = !qun_q_col_null(q, 14);
    char state[16];
    snprintf(state, sizeof state, "%s", qun_q_col_text(q, 2));
    qun_q_done(q);
    if (purged) return qun_fail(err, QUN_EXPORT_PURGED, "export %s was deleted with its group's purge", xid);
    if (!done) return qun_fail(err, QUN_EXPORT_NOT_READY, "export %s is %s", xid, state);
    snprintf(path, size, "%s/exports/%s.age", qun_core_cfg.data_dir, xid);
    return QUN_OK;
}
