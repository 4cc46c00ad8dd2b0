/* SPDX-License-Identifier: MIT */
/* Group exports over HTTP: request an age-encrypted archive of a group (owner), read
 * its state and progress, and download the finished .age file (its requester only).
 * The work is the export_group job's (src/jobs/export.c).  Also storage grants
 * (src/core/grant.c): the owner issues, lists and revokes them; another application
 * lists and downloads the group's exports with one, without a session. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "qun/export.h"

/* Answer with the .age file at path, named after the export id in the URL. */
static qun_rc send_archive(qun_req_t *r, const char *path) {
    r->file_path = qun_xstrdup(path);
    snprintf(r->content_type, sizeof r->content_type, "application/age");
    snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"%s.age\"", r->params[0]);
    r->status = 200;
    return QUN_OK;
}

qun_rc h_export_create(qun_req_t *r) {
    /* recipients (age1... keys) or passphrase: exactly one, checked by the core. */
    static const qun_field_t f[] = {
        {"recipients", F_STRARR, false, 1, 128, NULL},
        {"passphrase", F_STR, false, 1, 1024, NULL}, /* QUN_EXPORT_PASSPHRASE_MAX */
        {"scope", F_STR, false, 1, 8, "group|self"},
        {"lang", F_STR, false, 1, 8, "en|zh-CN"},
        {"tz_offset", F_INT, false, -840, 840, NULL},
        {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL, *tz = json_object_get(r->json, "tz_offset");
    qun_export_opts_t o = {qun_jstr(r->json, "passphrase"), qun_jstr(r->json, "lang"), tz != NULL,
                           (int)json_integer_value(tz)};
    if (rc == QUN_OK)
        rc = qun_export_create(r->db, &r->actor, r->params[0], json_object_get(r->json, "recipients"),
                               qun_jstr(r->json, "scope"), &o, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 202, out) : rc;
}

qun_rc h_export_get(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_export_get(r->db, &r->actor, r->params[0], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_export_download(qun_req_t *r) {
    char path[1024];
    qun_rc rc = qun_export_file(r->db, &r->actor, r->params[0], path, sizeof path, &r->err);
    if (rc != QUN_OK) return rc;
    return send_archive(r, path);
}

/* ---- storage grants ---- */

qun_rc h_grant_issue(qun_req_t *r) {
    static const qun_field_t f[] = {{"expires_in", F_INT, true, 60, 366LL * 86400, NULL},
                                    {"scope", F_STR, false, 1, 16, "exports"},
                                    {"label", F_STR, false, 1, 200, NULL},
                                    {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK)
        rc = qun_grant_issue(r->db, &r->actor, r->params[0],
                             json_integer_value(json_object_get(r->json, "expires_in")),
                             qun_jstr(r->json, "label"), &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}

qun_rc h_grant_list(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_grant_list(r->db, &r->actor, r->params[0], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_grant_revoke(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_grant_revoke(r->db, &r->actor, r->params[0], r->params[1], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

/* A grant is presented as `Authorization: Bearer qgr_...`; the routes that take one
 * carry no R_AUTH (it is not a session).  Copied here, on the loop thread, so run()
 * may execute on the writer. */
qun_rc h_grant_token_prep(qun_req_t *r) {
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Authorization");
    if (!h)
        return qun_fail(&r->err, QUN_GRANT_INVALID,
                        "send Authorization: Bearer qgr_... (a storage grant token)");
    if (strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) > 200)
        return qun_fail(&r->err, QUN_GRANT_INVALID, "Authorization must be a Bearer grant token");
    r->scratch = qun_xstrdup(h + 7);
    return QUN_OK;
}

qun_rc h_grant_exports(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_grant_exports(r->db, r->scratch, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_grant_download(qun_req_t *r) {
    char path[1024];
    qun_rc rc = qun_grant_download(r->db, r->scratch, r->params[0], path, sizeof path, NULL, &r->err);
    if (rc != QUN_OK) return rc;
    return send_archive(r, path);
}
