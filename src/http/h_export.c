/* SPDX-License-Identifier: MIT */
/* Group exports over HTTP: request an age-encrypted archive of a group (owner), read
 * its state and progress, and download the finished .age file (its requester only).
 * The work is the export_group job's (src/jobs/export.c). */
#include <stdio.h>

#include "http.h"
#include "qun/export.h"

qun_rc h_export_create(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"recipients", F_STRARR, true, 1, 128, NULL},
        {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK)
        rc = qun_export_create(r->db, &r->actor, r->params[0], json_object_get(r->json, "recipients"), &out, &r->err);
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
    r->file_path = qun_xstrdup(path);
    snprintf(r->content_type, sizeof r->content_type, "application/age");
    snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"%s.age\"", r->params[0]);
    r->status = 200;
    return QUN_OK;
}
