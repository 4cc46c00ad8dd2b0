/* SPDX-License-Identifier: MIT */
/* Group content: messages, files (raw-body upload, content-addressed bytes) and
 * payments. */
#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define GID r->params[0]

static qun_rc answer(qun_req_t *r, qun_rc rc, int status, json_t *out) {
    return rc == QUN_OK ? qun_ok(r, status, out) : rc;
}

static const qun_field_t post_fields[] = {{"text", F_STR, true, 1, 16384, NULL}, {0}};

/* The post's qun_wop_t.ahead: its access statement, sent with those of the posts queued
 * beside it (one round trip for all on PostgreSQL), once its body is known to be good. */
void h_message_post_ahead(qun_req_t *r, qun_db_t *db) {
    qun_err_t ignore;
    if (qun_fields_check(r->json, post_fields, &ignore) == QUN_OK)
        qun_message_post_ahead(db, &r->actor, GID, &r->ahead);
}

qun_rc h_message_post(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, post_fields, &r->err);
    char *out = NULL;
    qun_msg_opts_t opts = {.ahead = r->ahead};
    r->ahead = NULL; /* the transaction's, and used once */
    if (rc == QUN_OK)
        rc = qun_message_post_text(r->db, &r->actor, GID, qun_jstr(r->json, "text"), &opts, &out, &r->err);
    if (rc != QUN_OK) return rc;
    /* The answer is the event's bytes, encoded once on the writer (not again on the loop). */
    free(r->out_text);
    r->out_text = out;
    r->status = 201;
    return QUN_OK;
}

qun_rc h_message_list(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_message_list(r->db, &r->actor, GID, after, limit, &out, &r->err);
    return answer(r, rc, 200, out);
}

/* DELETE /v1/groups/{id}/messages/{seq}: recall or remove (core/message.c); an
 * optional body {"reason"}.  A seq that is not a positive decimal is no message. */
qun_rc h_message_recall(qun_req_t *r) {
    static const qun_field_t f[] = {{"reason", F_STR, false, 1, 500, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    const char *p = r->params[1];
    int64_t seq = 0;
    for (; rc == QUN_OK && *p; p++) {
        if (*p < '0' || *p > '9' || seq > (INT64_MAX - 9) / 10) {
            seq = 0;
            break;
        }
        seq = seq * 10 + (*p - '0');
    }
    json_t *out = NULL;
    if (rc == QUN_OK && seq < 1) rc = qun_fail(&r->err, QUN_MESSAGE_NOT_FOUND, "no such message");
    if (rc == QUN_OK)
        rc = qun_message_recall(r->db, &r->actor, GID, seq, qun_jstr(r->json, "reason"), &out, &r->err);
    return answer(r, rc, 200, out);
}

typedef struct {
    char sha[65];
    char name[129];
    char ctype[97];
} upload_t;

static bool printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\') return false;
    return true;
}

/* On a file thread (slow.c): the bytes hashed, written and fsynced. */
static qun_rc upload_store(qun_req_t *r) {
    upload_t *u = r->scratch;
    return qun_blob_put(r->body, r->body_len, u->sha, &r->err);
}

/* The checks here; writing the bytes (and their fsync) on a file thread, so that a large
 * upload holds neither the other connections of the loop nor, since the writer only
 * records the reference, other writes. */
qun_rc h_file_upload_prep(qun_req_t *r) {
    const char *name = qun_query(r, "name");
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Content-Type");
    if (!name || !*name || strlen(name) > 128 || !printable(name))
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "name",
                              "give the file a name of 1 to 128 printable characters: ?name=");
    if (!ct) ct = "application/octet-stream";
    if (strlen(ct) > 96 || !printable(ct))
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "Content-Type", "bad Content-Type");
    if (r->body_len == 0) return qun_fail_field(&r->err, QUN_FIELD_INVALID, "body", "the file is empty");
    /* Check membership before storing anything. */
    qun_group_t g;
    qun_rc rc = qun_group_access(r->db, &r->actor, GID, QUN_ROLE_MEMBER, &g, &r->err);
    if (rc != QUN_OK) return rc;
    upload_t *u = qun_xcalloc(1, sizeof *u);
    r->scratch = u;
    snprintf(u->name, sizeof u->name, "%s", name);
    snprintf(u->ctype, sizeof u->ctype, "%s", ct);
    r->slow = upload_store;
    r->slow_kind = QUN_SLOW_FILE;
    return QUN_OK;
}

qun_rc h_file_upload(qun_req_t *r) {
    upload_t *u = r->scratch;
    json_t *out = NULL;
    qun_rc rc = qun_file_upload(r->db, &r->actor, GID, u->sha, (int64_t)r->body_len, u->name, u->ctype, &out,
                                &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_file_list(qun_req_t *r) {
    int64_t after;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &after, &limit);
    if (rc == QUN_OK) rc = qun_file_list(r->db, &r->actor, GID, after, limit, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_file_download(qun_req_t *r) {
    char name[129];
    qun_rc rc = qun_file_get(r->db, &r->actor, GID, r->params[1], r->content_type, sizeof r->content_type,
                             name, sizeof name, &r->err);
    if (rc != QUN_OK) return rc;
    char path[1024];
    qun_blob_path(r->params[1], path, sizeof path);
    r->file_path = qun_xstrdup(path);
    snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"%s\"", name);
    r->status = 200;
    return QUN_OK;
}

qun_rc h_payment_create(qun_req_t *r) {
    static const qun_field_t f[] = {{"kind", F_STR, false, 1, 16, "red_packet"},
                                    {"amount", F_INT, true, 1, 100000000, NULL},
                                    {"shares", F_INT, true, 1, 1000, NULL},
                                    {"memo", F_STR, false, 0, 200, NULL},
                                    {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    const char *memo = qun_jstr(r->json, "memo");
    if (rc == QUN_OK)
        rc = qun_payment_create(
            r->db, &r->actor, GID, "red_packet", json_integer_value(json_object_get(r->json, "amount")),
            json_integer_value(json_object_get(r->json, "shares")), memo ? memo : "", &out, &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_payment_list(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_payment_list(r->db, &r->actor, GID, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_payment_claim(qun_req_t *r) {
    static const qun_field_t f[] = {{0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *out = NULL;
    if (rc == QUN_OK) rc = qun_payment_claim(r->db, &r->actor, GID, r->params[1], &out, &r->err);
    return answer(r, rc, 201, out);
}
