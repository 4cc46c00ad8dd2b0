/* SPDX-License-Identifier: MIT */
/* Import over HTTP: POST /v1/imports takes the plaintext of a group archive (the
 * zstd-compressed tar `age -d` yields; the client decrypts, so no identity reaches
 * the server) as a raw body.  Reading, staging and verifying happen on a file thread
 * (src/http/slow.c), like an upload's bytes; the writer only rebuilds the group, in one
 * transaction (src/core/import.c). */
#include "http.h"
#include "qun/import.h"

static void import_free(void *p) {
    qun_import_free(p);
}

/* On a file thread, with its own read-only connection as r->db. */
static qun_rc import_stage(qun_req_t *r) {
    qun_import_t *imp = NULL;
    qun_rc rc = qun_import_stage(r->db, &r->actor, r->body, r->body_len, &imp, &r->err);
    if (rc != QUN_OK) return rc;
    r->scratch = imp;
    r->scratch_free = import_free;
    return QUN_OK;
}

qun_rc h_import_prep(qun_req_t *r) {
    if (r->body_len == 0)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "body",
                              "send the archive's plaintext (age -d of the .age file) as the body");
    r->slow = import_stage;
    r->slow_kind = QUN_SLOW_FILE;
    return QUN_OK;
}

qun_rc h_import(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_import_rebuild(r->db, &r->actor, r->scratch, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}
