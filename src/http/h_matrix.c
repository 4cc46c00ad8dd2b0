/* SPDX-License-Identifier: MIT */
/* The Matrix client-server adapter's shared parts (docs/matrix.md): its settings, the
 * paths and prefixes it answers, CORS, the Matrix error body every refusal on those
 * paths becomes, and the codec between qun ids and Matrix ids:
 *   user  @<localpart>:<server_name>   (users.mx_localpart, fixed at registration)
 *   room  !<group id>:<server_name>
 * The handlers are h_matrix_<area>.c; their routes are matrix_routes.def. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "http.h"
#include "qun/matrix.h"
#include "worker.h"

qun_mx_cfg_t qun_mx_cfg;

bool qun_mx_path(const char *path) {
    return strncmp(path, "/_matrix/", 9) == 0 || strncmp(path, "/.well-known/matrix/", 20) == 0;
}

void qun_mx_normalize(const char *path, char *out, size_t size) {
    static const struct {
        const char *from, *to;
    } map[] = {{"/_matrix/client/r0/", "/_matrix/client/v3/"}, {"/_matrix/media/r0/", "/_matrix/media/v3/"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t n = strlen(map[i].from);
        if (strncmp(path, map[i].from, n) == 0) {
            snprintf(out, size, "%s%s", map[i].to, path + n);
            return;
        }
    }
    snprintf(out, size, "%s", path);
}

void qun_mx_cors(struct evhttp_request *ev) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
    evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
    evhttp_add_header(h, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    evhttp_add_header(h, "Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization");
}

/* qun's refusal rc as a Matrix status and errcode (MATRIX.md 1.1). */
static const char *errcode_of(qun_req_t *r, int *status) {
    int s = qun_rc_status(r->rc);
    *status = s;
    switch (r->rc) {
    case QUN_UNAUTHENTICATED: return "M_MISSING_TOKEN";
    case QUN_TOKEN_INVALID: return "M_UNKNOWN_TOKEN";
    case QUN_BAD_CREDENTIALS: *status = 403; return "M_FORBIDDEN";
    case QUN_NOT_FOUND:
    case QUN_METHOD_NOT_ALLOWED: return r->route_index < 0 ? "M_UNRECOGNIZED" : "M_NOT_FOUND";
    case QUN_USER_NOT_FOUND:
    case QUN_FILE_NOT_FOUND: /* Matrix media (h_matrix_media.c) */
    case QUN_MEMBER_NOT_FOUND:
    case QUN_MESSAGE_NOT_FOUND: /* a redaction's event (h_matrix_rooms.c) */
        *status = 404;
        return "M_NOT_FOUND";
    case QUN_BAD_JSON: *status = 400; return "M_NOT_JSON";
    case QUN_FIELD_MISSING: *status = 400; return "M_MISSING_PARAM";
    case QUN_FIELD_INVALID:
    case QUN_CURSOR_INVALID:
    case QUN_IDEMPOTENCY_KEY_INVALID:
    case QUN_IDEMPOTENCY_KEY_REUSED: *status = 400; return "M_INVALID_PARAM";
    case QUN_FIELD_UNKNOWN:
    case QUN_BAD_REQUEST: *status = 400; return "M_BAD_JSON";
    case QUN_BODY_TOO_LARGE: return "M_TOO_LARGE";
    case QUN_LOCKED_OUT: return "M_LIMIT_EXCEEDED";
    default: break;
    }
    if (s >= 500) return "M_UNKNOWN";
    /* Not in this room, not allowed, gone, conflicting: Matrix says forbidden, and an
     * unknown room reads the same as someone else's (no disclosure). */
    if (s == 401 || s == 403 || s == 404 || s == 409 || s == 410 || s == 428 || s == 422) {
        *status = 403;
        return "M_FORBIDDEN";
    }
    return "M_UNKNOWN";
}

char *qun_mx_error_body(qun_req_t *r, int *status) {
    const char *code = errcode_of(r, status);
    if (r->mx_errcode) code = r->mx_errcode;
    json_t *o = json_object();
    json_object_set_new(o, "errcode", json_string(code));
    const char *text = r->err.msg[0] ? r->err.msg : NULL;
    if (r->route_index < 0 && r->rc == QUN_NOT_FOUND) /* end-to-end encryption, federation, unknown */
        text = strstr(r->err.msg, "/keys/") || strstr(r->err.msg, "/room_keys/") ||
                       strstr(r->err.msg, "/sendToDevice/") || strstr(r->err.msg, "dehydrated_device")
                   ? "this server does not offer end-to-end encryption: qun keeps messages readable to "
                     "the server for retention, legal holds and archives"
                   : "Unrecognized request";
    json_t *msg = text ? json_string(text) : NULL;
    json_object_set_new(o, "error", msg ? msg : json_string(qun_rc_title(r->rc)));
    json_object_set_new(o, "org.qun.code", json_string(qun_rc_name(r->rc)));
    if (r->rc == QUN_TOKEN_INVALID) json_object_set_new(o, "soft_logout", json_false());
    if (r->rc == QUN_LOCKED_OUT && r->retry_after > 0)
        json_object_set_new(o, "retry_after_ms", json_integer(r->retry_after * 1000));
    if (r->problem_extra) json_object_update(o, r->problem_extra);
    char gid[QUN_ID_MAX], succ[QUN_ID_MAX];
    qun_err_t ignore;
    if (r->rc == QUN_GROUP_GONE && r->params[0] && qun_mx_room_gid(r->params[0], gid) &&
        qun_group_successor(r->w->db, gid, succ, &ignore) == QUN_OK && succ[0]) {
        char room[QUN_MX_ID_MAX];
        qun_mx_room_id(succ, room, sizeof room);
        json_object_set_new(o, "org.qun.successor", json_string(room));
    }
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return body ? body : strdup("{\"errcode\":\"M_UNKNOWN\",\"error\":\"out of memory\"}");
}

qun_rc qun_mx_fail(qun_req_t *r, qun_rc rc, const char *errcode, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err.msg, sizeof r->err.msg, fmt, ap);
    va_end(ap);
    r->err.field[0] = '\0';
    r->mx_errcode = errcode;
    return rc;
}

/* ---- ids ---- */

/* The part of id after its sigil when id is <sigil><local>:<our server name>, else NULL. */
static const char *ours(const char *id, char sigil, size_t *len) {
    if (!id || id[0] != sigil) return NULL;
    const char *colon = strchr(id + 1, ':');
    if (!colon || colon == id + 1 || strcmp(colon + 1, qun_mx_cfg.server_name) != 0) return NULL;
    *len = (size_t)(colon - id - 1);
    return id + 1;
}

bool qun_mx_room_gid(const char *room_id, char gid[QUN_ID_MAX]) {
    size_t n;
    const char *s = ours(room_id, '!', &n);
    if (!s || n >= QUN_ID_MAX || n < 3 || strncmp(s, "g_", 2) != 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-';
        if (!ok) return false;
    }
    memcpy(gid, s, n);
    gid[n] = '\0';
    return true;
}

void qun_mx_room_id(const char *gid, char *out, size_t size) {
    snprintf(out, size, "!%s:%s", gid, qun_mx_cfg.server_name);
}

bool qun_mx_user_local(const char *user_id, char *local) {
    size_t n;
    const char *s = ours(user_id, '@', &n);
    if (!s || n >= QUN_MX_LOCAL_MAX) return false;
    memcpy(local, s, n);
    local[n] = '\0';
    return true;
}

void qun_mx_user_id(const char *local, char *out, size_t size) {
    snprintf(out, size, "@%s:%s", local, qun_mx_cfg.server_name);
}

bool qun_mx_remote(const char *id) {
    const char *colon = id ? strchr(id, ':') : NULL;
    return colon && strcmp(colon + 1, qun_mx_cfg.server_name) != 0;
}
