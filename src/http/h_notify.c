/* SPDX-License-Identifier: MIT */
/* Notifications over HTTP: the inbox (/v1/me/notifications), the person's language
 * and mail address (/v1/me/language, /v1/me/email) and invitations by mail
 * (/v1/orgs/{id}/email-invites, /v1/email-invites/redeem).  Each handler is a field
 * check over one core call (core/notify.c, core/email.c). */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "qun/notify.h"

static qun_rc answer(qun_req_t *r, qun_rc rc, int status, json_t *out) {
    return rc == QUN_OK ? qun_ok(r, status, out) : rc;
}

qun_rc h_notify_list(qun_req_t *r) {
    int64_t before;
    int limit;
    json_t *out = NULL;
    qun_rc rc = qun_page_args(r, &before, &limit);
    if (rc == QUN_OK) rc = qun_notify_list(r->db, &r->actor, before, limit, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_notify_unread(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_notify_unread(r->db, &r->actor, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_notify_read(qun_req_t *r) {
    static const qun_field_t f[] = {{"upto", F_INT, false, 1, 1000000000000000000LL, NULL}, {0}};
    json_t *out = NULL;
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    json_t *upto = json_object_get(r->json, "upto");
    if (rc == QUN_OK)
        rc = qun_notify_read(r->db, &r->actor, upto ? json_integer_value(upto) : 0, &out, &r->err);
    return answer(r, rc, 200, out);
}

/* The language the request asks in (Accept-Language), read on the loop thread. */
qun_rc h_accept_lang_prep(qun_req_t *r) {
    const char *al = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Accept-Language");
    r->scratch = qun_xstrdup(qun_lang_from_accept(al));
    return QUN_OK;
}

qun_rc h_lang_get(qun_req_t *r) {
    const char *al = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Accept-Language");
    json_t *out = NULL;
    qun_rc rc = qun_lang_get(r->db, &r->actor, qun_lang_from_accept(al), &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_lang_set(qun_req_t *r) {
    static const qun_field_t f[] = {{"lang", F_STR, true, 2, 5, "en|zh-CN"}, {0}};
    json_t *out = NULL;
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK) rc = qun_lang_set(r->db, &r->actor, qun_jstr(r->json, "lang"), &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_email_get(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_email_get(r->db, &r->actor, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_email_set(qun_req_t *r) {
    static const qun_field_t f[] = {{"address", F_STR, true, 3, 254, NULL}, {0}};
    json_t *out = NULL;
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK)
        rc = qun_email_set(r->db, &r->actor, qun_jstr(r->json, "address"), r->scratch, &out, &r->err);
    /* 202: the code is on its way; an address already verified is answered as it is. */
    return answer(r, rc, out && json_is_true(json_object_get(out, "verified")) ? 200 : 202, out);
}

qun_rc h_email_verify(qun_req_t *r) {
    static const qun_field_t f[] = {{"code", F_STR, true, 1, 64, NULL}, {0}};
    json_t *out = NULL;
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK) rc = qun_email_verify(r->db, &r->actor, qun_jstr(r->json, "code"), &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_email_delete(qun_req_t *r) {
    json_t *out = NULL;
    qun_rc rc = qun_email_delete(r->db, &r->actor, &out, &r->err);
    return answer(r, rc, 200, out);
}

qun_rc h_email_invite(qun_req_t *r) {
    static const qun_field_t f[] = {{"address", F_STR, true, 3, 254, NULL},
                                    {"role", F_STR, true, 1, 16, "admin|guardian"},
                                    {"minor", F_STR, false, 1, 64, NULL},
                                    {"lang", F_STR, false, 2, 5, "en|zh-CN"},
                                    {0}};
    json_t *out = NULL;
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    const char *lang = qun_jstr(r->json, "lang");
    if (rc == QUN_OK)
        rc = qun_email_invite(r->db, &r->actor, r->params[0], qun_jstr(r->json, "address"),
                              qun_jstr(r->json, "role"), qun_jstr(r->json, "minor"), lang ? lang : r->scratch,
                              &out, &r->err);
    return answer(r, rc, 201, out);
}

qun_rc h_email_invite_redeem(qun_req_t *r) {
    static const qun_field_t f[] = {{"token", F_STR, true, 1, 128, NULL}, {0}};
    json_t *out = NULL;
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc == QUN_OK)
        rc = qun_email_invite_redeem(r->db, &r->actor, qun_jstr(r->json, "token"), &out, &r->err);
    return answer(r, rc, 200, out);
}
