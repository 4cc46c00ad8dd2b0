/* SPDX-License-Identifier: MIT */
/* Matrix media (docs/matrix.md "Media", MATRIX.md 1.6): upload to a staging area,
 * authenticated download and thumbnail, and the upload limit.  The bytes are stored
 * as /v1 uploads store theirs (qun_blob_put on a file thread, the same upload
 * limit and the same full-disk answer); the rows are core/mx_media.c's.  Downloads
 * are served from the blob's file like GET /v1/groups/{id}/files/{digest}, with the
 * headers that keep a browser from running what it fetched. */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "qun/matrix.h"

#define THUMB_MAX (4 << 20) /* /thumbnail serves originals up to this size */

typedef struct {
    char sha[65];
    char name[129];
    char ctype[97];
} mx_upload_t;

/* A file name as qun stores it: valid UTF-8 of 1 to 128 bytes, cut at a character
 * boundary, with control characters, quotes, backslashes and slashes made '_'.
 * False when name is not UTF-8. */
static bool clean_name(const char *name, char out[129]) {
    json_t *utf8 = json_string(name);
    if (!utf8) return false;
    json_decref(utf8);
    size_t n = strlen(name);
    if (n > 128) {
        n = 128;
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80) /* not inside a character */
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '/' ? '_' : (char)c;
    }
    out[n] = '\0';
    return n > 0;
}

static bool printable_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\') return false;
    return true;
}

/* On a file thread (slow.c): the bytes hashed, written and fsynced. */
static qun_rc mx_upload_store(qun_req_t *r) {
    mx_upload_t *u = r->scratch;
    return qun_blob_put(r->body, r->body_len, u->sha, &r->err);
}

/* POST /_matrix/media/v3/upload?filename=: the checks on the loop thread, the bytes
 * stored on a file thread; the writer only records the staged row (h_mx_upload). */
qun_rc h_mx_upload_prep(qun_req_t *r) {
    const char *name = qun_query(r, "filename");
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Content-Type");
    mx_upload_t *u = qun_xcalloc(1, sizeof *u);
    r->scratch = u;
    if (!name || !*name) name = "upload";
    if (!clean_name(name, u->name))
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "filename must be UTF-8");
    if (!ct || !*ct) ct = "application/octet-stream";
    if (strlen(ct) > 95 || !printable_ascii(ct))
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "bad Content-Type");
    snprintf(u->ctype, sizeof u->ctype, "%s", ct);
    if (r->body_len == 0) return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "the file is empty");
    r->slow = mx_upload_store;
    r->slow_kind = QUN_SLOW_FILE;
    return QUN_OK;
}

qun_rc h_mx_upload(qun_req_t *r) {
    mx_upload_t *u = r->scratch;
    char id[QUN_MX_MEDIA_ID_MAX], uri[QUN_MX_ID_MAX];
    qun_rc rc =
        qun_mx_media_stage(r->db, r->actor.uid, u->sha, (int64_t)r->body_len, u->name, u->ctype, id, &r->err);
    if (rc != QUN_OK) return rc;
    snprintf(uri, sizeof uri, "mxc://%s/%s", qun_mx_cfg.server_name, id);
    return qun_ok(r, 200, json_pack("{s:s}", "content_uri", uri));
}

/* GET /_matrix/client/v1/media/config, /_matrix/media/v3/config. */
qun_rc h_mx_media_config(qun_req_t *r) {
    return qun_ok(r, 200, json_pack("{s:I}", "m.upload.size", (json_int_t)qun_server_cfg.upload_limit));
}

/* Types a browser shows without running anything: served inline. */
static bool safe_inline(const char *ct) {
    static const char *ok[] = {"image/png",  "image/jpeg", "image/gif",
                               "image/webp", "image/apng", "image/avif"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcasecmp(ct, ok[i]) == 0) return true;
    return false;
}

/* Content-Disposition (RFC 6266): filename="..." with only printable ASCII (others
 * '_'), and filename*=UTF-8''... percent-encoded when the name is not plain ASCII. */
static void disposition(qun_req_t *r, bool inline_, const char *name) {
    char ascii[129];
    bool plain = true;
    size_t n = 0;
    for (; name[n] && n < sizeof ascii - 1; n++) {
        unsigned char c = (unsigned char)name[n];
        bool ok = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != ';' && c != '%';
        if (!ok) plain = false;
        ascii[n] = ok ? (char)c : '_';
    }
    ascii[n] = '\0';
    int k = snprintf(r->disposition, sizeof r->disposition, "%s; filename=\"%s\"",
                     inline_ ? "inline" : "attachment", ascii);
    if (plain || k < 0) return;
    char *enc = evhttp_uriencode(name, -1, 0);
    if (enc && (size_t)k + strlen(enc) + 20 < sizeof r->disposition)
        snprintf(r->disposition + k, sizeof r->disposition - (size_t)k, "; filename*=UTF-8''%s", enc);
    free(enc);
}

/* The media a download or thumbnail names (server, media id), if the caller may read it. */
static qun_rc media_of(qun_req_t *r, qun_mx_media_t *m) {
    if (strcmp(r->params[0], qun_mx_cfg.server_name) != 0)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                           "federation is not supported: this server holds only its own media");
    qun_rc rc = qun_mx_media_get(r->db, r->actor.uid, r->params[1], m, &r->err);
    if (rc == QUN_FILE_NOT_FOUND) return qun_mx_fail(r, rc, "M_NOT_FOUND", "Media not found");
    return rc;
}

/* Serve m's bytes from its blob, with headers that keep them inert in a browser. */
static qun_rc serve(qun_req_t *r, const qun_mx_media_t *m, const char *name) {
    char path[1024];
    qun_blob_path(m->sha256, path, sizeof path);
    r->file_path = qun_xstrdup(path);
    size_t n = strnlen(m->content_type, sizeof r->content_type - 1); /* uploads keep to this length */
    memcpy(r->content_type, m->content_type, n);
    r->content_type[n] = '\0';
    disposition(r, safe_inline(m->content_type), name);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "Content-Security-Policy",
                      "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
                      "style-src 'unsafe-inline'; object-src 'self';");
    evhttp_add_header(h, "Cross-Origin-Resource-Policy", "cross-origin");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    r->status = 200;
    return QUN_OK;
}

/* GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}] and the
 * legacy /_matrix/media/v3/download/... (token required all the same). */
qun_rc h_mx_media_download(qun_req_t *r) {
    qun_mx_media_t m;
    qun_rc rc = media_of(r, &m);
    if (rc != QUN_OK) return rc;
    char name[129];
    const char *want = r->params[2] && clean_name(r->params[2], name) ? name : m.name;
    return serve(r, &m, want);
}

/* GET .../thumbnail/{serverName}/{mediaId}: qun has no image scaler, so the original
 * for a raster image up to THUMB_MAX, else 404 (clients then show no preview). */
qun_rc h_mx_media_thumbnail(qun_req_t *r) {
    qun_mx_media_t m;
    qun_rc rc = media_of(r, &m);
    if (rc != QUN_OK) return rc;
    if (!safe_inline(m.content_type) || m.size > THUMB_MAX)
        return qun_mx_fail(r, QUN_FILE_NOT_FOUND, "M_NOT_FOUND", "no thumbnail for this media");
    return serve(r, &m, m.name);
}
