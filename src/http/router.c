/* SPDX-License-Identifier: MIT */
/* The router: matches a request against routes.def and runs the shared checks every
 * route relies on, in this order, before any handler sees the request:
 *   the gate's refusal (gate.c)  ->  query string syntax  ->  404 / 405
 *   ->  bearer authentication (or, on R_TICKET routes, an event ticket)
 *   ->  body size caps  ->  JSON parsing  ->  Idempotency-Key replay
 *   ->  brute-force lock (R_LOCKOUT)  ->  prep (loop thread)  ->  run (reader or writer).
 * It also sends every answer (JSON, problem+json or a file), logs and counts it. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>

#include "http.h"
#include "qun/json.h"
#include "qun/idempotency.h"
#include "qun/jobs.h"
#include "qun/lockout.h"
#include "qun/mail.h"
#include "qun/outbox.h"
#include "worker.h"

#define ROUTE(m, p, prep, run, f) qun_rc run(qun_req_t *r);
#include "matrix_routes.def"
#include "routes.def"
#undef ROUTE
#define ROUTE(m, p, prep, run, f) qun_rc prep(qun_req_t *r);
#include "matrix_routes.def"
#include "routes.def"
#undef ROUTE

const qun_route_t qun_routes[] = {
#define ROUTE(m, p, prep, run, f) {m, p, prep, run, f},
#include "routes.def"
#include "matrix_routes.def"
#undef ROUTE
};
const int qun_routes_count = sizeof qun_routes / sizeof qun_routes[0];

static const char *method_name(enum evhttp_cmd_type cmd);

/* ---- metrics ---- */
#define MAX_ROUTES 256
static _Atomic uint64_t m_count[MAX_ROUTES + 1][6]; /* by route and status class */
static _Atomic uint64_t m_ms[MAX_ROUTES + 1];
_Static_assert(sizeof qun_routes / sizeof qun_routes[0] <= MAX_ROUTES,
               "raise MAX_ROUTES for the route table");
static _Atomic uint64_t m_replays;

/* ---- matching ---- */
int qun_route_match(const char *method, const char *path, char *params[QUN_MAX_PARAMS]) {
    int path_hit = -1;
    for (int i = 0; i < qun_routes_count; i++) {
        const char *p = qun_routes[i].pattern, *s = path;
        int np = 0;
        char *got[QUN_MAX_PARAMS] = {0};
        bool ok = true;
        while (*p && ok) {
            if (*p == '*' && p[1] == '\0') { /* a final '*' takes the rest of the path, at least one byte */
                size_t n = strlen(s);
                if (n == 0 || np == QUN_MAX_PARAMS)
                    ok = false;
                else
                    got[np++] = strndup(s, n);
                s += n;
                p++;
            } else if (*p == ':') {
                const char *end = strchr(s, '/');
                size_t n = end ? (size_t)(end - s) : strlen(s);
                if (n == 0 || n > 128 || np == QUN_MAX_PARAMS)
                    ok = false;
                else
                    got[np++] = strndup(s, n);
                s += n;
                p++;
            } else if (*p++ != *s++) {
                ok = false;
            }
        }
        ok = ok && *s == '\0';
        if (ok && strcmp(qun_routes[i].method, method) == 0) {
            for (int k = 0; k < QUN_MAX_PARAMS; k++)
                params[k] = got[k];
            return i;
        }
        for (int k = 0; k < np; k++)
            free(got[k]);
        if (ok) path_hit = -2;
    }
    return path_hit;
}

/* ---- helpers for handlers ---- */
qun_rc qun_ok(qun_req_t *r, int status, json_t *out) {
    if (!out) /* a json_pack format or allocation failure: never answer an empty 200 */
        return qun_fail(&r->err, QUN_INTERNAL, "the answer could not be built");
    json_decref(r->out);
    r->status = status;
    r->out = out;
    return QUN_OK;
}

const char *qun_query(qun_req_t *r, const char *name) {
    return r->has_query ? evhttp_find_header(&r->query, name) : NULL;
}

static bool parse_i64(const char *s, int64_t *v) {
    if (!s || !*s || strlen(s) > 18) return false;
    int64_t x = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) return false;
        x = x * 10 + (*s - '0');
    }
    *v = x;
    return true;
}

qun_rc qun_query_int(qun_req_t *r, const char *name, int64_t dflt, int64_t max, int64_t *out) {
    const char *s = qun_query(r, name);
    *out = dflt;
    if (!s)
        return dflt >= 0
                   ? QUN_OK
                   : qun_fail_field(&r->err, QUN_FIELD_MISSING, name, "query parameter %s is required", name);
    if (!parse_i64(s, out) || *out > max)
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, name, "%s must be an integer from 0 to %lld", name,
                              (long long)max);
    return QUN_OK;
}

qun_rc qun_page_args(qun_req_t *r, int64_t *after, int *limit) {
    const char *a = qun_query(r, "after"), *l = qun_query(r, "limit");
    int64_t v;
    *after = 0;
    *limit = 50;
    if (a && !parse_i64(a, after))
        return qun_fail_field(&r->err, QUN_CURSOR_INVALID, "after",
                              "after must be a cursor from next_cursor");
    if (l) {
        if (!parse_i64(l, &v) || v < 1 || v > 200)
            return qun_fail_field(&r->err, QUN_FIELD_INVALID, "limit", "limit must be 1 to 200");
        *limit = (int)v;
    }
    return QUN_OK;
}

/* ---- answering ---- */
static void add_header(qun_req_t *r, const char *k, const char *v) {
    evhttp_add_header(evhttp_request_get_output_headers(r->ev), k, v);
}

/* A JSON string of s, or NULL when s is not UTF-8.  Details and field names are cut to
 * fit their buffers, sometimes inside a multi-byte character: such a cut tail is dropped. */
static json_t *utf8_string(const char *s) {
    size_t n = strlen(s);
    json_t *v = json_stringn(s, n);
    for (int cut = 0; !v && cut < 3 && n > 0; cut++)
        v = json_stringn(s, --n);
    return v;
}

/* A dissolved group's id answers gone and names its successor, if it has one, so
 * clients can follow the group to its new home (like XMPP's alternate venue). */
static void add_successor(qun_req_t *r, json_t *p) {
    char succ[QUN_ID_MAX];
    qun_err_t err;
    if (qun_group_successor(r->w->db, r->params[0], succ, &err) == QUN_OK && succ[0])
        json_object_set_new(p, "successor", json_string(succ));
    /* Someone who was in the group also learns its name, when it went and what became of
     * their data (the console's "after a dissolution" page). */
    if (r->actor.uid) (void)qun_diss_gone_view(r->w->db, &r->actor, r->params[0], p, &err);
}

/* The request's URI for the logs, with the values of the ticket= and access_token=
 * query parameters masked: an event ticket is a credential (if a short-lived, single-use
 * one), and Matrix clients such as matrix-nio send their bearer token that way. */
static const char *log_uri(qun_req_t *r, char *buf, size_t size) {
    const char *uri = evhttp_request_get_uri(r->ev);
    const char *q = strchr(uri, '?');
    if (!q || (!strstr(q, "ticket=") && !strstr(q, "access_token="))) return uri;
    size_t n = 0;
    for (const char *p = uri; *p && n + 1 < size;) {
        bool at_param = p > q && (p[-1] == '?' || p[-1] == '&');
        size_t klen = !at_param                              ? 0
                      : strncmp(p, "ticket=", 7) == 0        ? 7
                      : strncmp(p, "access_token=", 13) == 0 ? 13
                                                             : 0;
        if (klen) {
            int k = snprintf(buf + n, size - n, "%.*s***", (int)klen, p);
            n = (size_t)k < size - n ? n + (size_t)k : size - 1;
            p += klen;
            while (*p && *p != '&')
                p++;
            continue;
        }
        buf[n++] = *p++;
    }
    buf[n] = '\0';
    return buf;
}

static void send_problem(qun_req_t *r, struct evbuffer *buf) {
    if (r->matrix) {
        char *text = qun_mx_error_body(r, &r->status);
        evbuffer_add(buf, text, strlen(text));
        free(text);
        add_header(r, "Content-Type", "application/json");
        if (r->status >= 500 && r->status != 503 && r->rc != QUN_STORAGE_FULL) {
            char ub[1200];
            qun_log("error", "%s -> %s: %s", log_uri(r, ub, sizeof ub), qun_rc_name(r->rc), r->err.msg);
        }
        return;
    }
    json_t *p = json_object();
    char type[96];
    snprintf(type, sizeof type, "urn:qun:problem:%s", qun_rc_name(r->rc));
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(qun_rc_title(r->rc)));
    json_object_set_new(p, "status", json_integer(qun_rc_status(r->rc)));
    json_t *detail = r->err.msg[0] ? utf8_string(r->err.msg) : NULL;
    json_object_set_new(p, "detail", detail ? detail : json_string(qun_rc_title(r->rc)));
    json_object_set_new(p, "code", json_string(qun_rc_name(r->rc)));
    json_t *field = r->err.field[0] ? utf8_string(r->err.field) : NULL;
    if (field) json_object_set_new(p, "field", field);
    if (r->problem_extra) json_object_update(p, r->problem_extra);
    if (r->rc == QUN_GROUP_GONE && r->params[0] &&
        strncmp(qun_routes[r->route_index].pattern, "/v1/groups/:", 12) == 0)
        add_successor(r, p);
    char *text = qun_json_compact(p);
    if (text) evbuffer_add(buf, text, strlen(text));
    free(text);
    json_decref(p);
    r->status = qun_rc_status(r->rc);
    add_header(r, "Content-Type", "application/problem+json");
    if (r->rc == QUN_STORAGE_FULL)
        add_header(r, "Retry-After", "5");
    else if (r->status == 503)
        add_header(r, "Retry-After", "1");
    if (r->rc == QUN_LOCKED_OUT && r->retry_after > 0) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)r->retry_after);
        add_header(r, "Retry-After", secs);
    }
    if (r->status >= 500 && r->status != 503 && r->rc != QUN_STORAGE_FULL) {
        char ub[1200];
        qun_log("error", "%s %s -> %s: %s", qun_routes[r->route_index].method, log_uri(r, ub, sizeof ub),
                qun_rc_name(r->rc), r->err.msg);
    }
}

static bool send_file(qun_req_t *r, struct evbuffer *buf) {
    int fd = open(r->file_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        r->rc =
            qun_fail(&r->err, qun_rc_errno(e, QUN_INTERNAL), "cannot open the file's bytes: %s", strerror(e));
        return false;
    }
    if (st.st_size > 0)
        evbuffer_add_file(buf, fd, 0, st.st_size);
    else
        close(fd);
    add_header(r, "Content-Type", r->content_type[0] ? r->content_type : "application/octet-stream");
    if (r->disposition[0]) add_header(r, "Content-Disposition", r->disposition);
    return true;
}

static void read_end(qun_req_t *r) {
    if (!r->reading) return;
    qun_db_read_end(r->w->db);
    r->reading = false;
}

void qun_req_finish(qun_req_t *r) {
    if (r->streaming) { /* events.c owns r->ev now and answers on it */
        read_end(r);
        goto count;
    }
    struct evbuffer *buf = evbuffer_new();
    if (r->rc == QUN_OK && r->file_path && !send_file(r, buf)) {
        /* falls through to the problem answer */
    } else if (r->rc == QUN_OK && !r->file_path) {
        if (!r->out_text && r->out) r->out_text = qun_json_compact(r->out);
        if (r->out_text && !*r->out_text) { /* a replayed 204 */
            free(r->out_text);
            r->out_text = NULL;
        }
        if (r->out_text) {
            evbuffer_add(buf, r->out_text, strlen(r->out_text));
            add_header(r, "Content-Type", r->content_type[0] ? r->content_type : "application/json");
        } else if (r->content_type[0]) {
            add_header(r, "Content-Type", r->content_type);
        }
        if (!r->status) r->status = r->out_text ? 200 : 204;
    }
    if (r->rc != QUN_OK) send_problem(r, buf);
    add_header(r, "Cache-Control", "no-store");
    if (r->matrix) qun_mx_cors(r->ev);
    read_end(r); /* after the problem answer's successor lookup */
    evhttp_send_reply(r->ev, r->status, NULL, buf);
    evbuffer_free(buf);

count:;
    int64_t ms = qun_mono_ms() - r->t0_ms;
    int ri = r->route_index >= 0 ? r->route_index : MAX_ROUTES;
    int cls = r->status / 100;
    atomic_fetch_add(&m_count[ri][cls >= 1 && cls <= 5 ? cls : 0], 1);
    atomic_fetch_add(&m_ms[ri], (uint64_t)(ms > 0 ? ms : 0));
    if (qun_server_cfg.log_requests) {
        /* The user by name, never by token; the route by its pattern, so lines group by
         * endpoint; the URI (credentials masked) for the rest. */
        char ub[1200];
        const qun_route_t *rt = r->route_index >= 0 ? &qun_routes[r->route_index] : NULL;
        qun_log_field_t f[] = {
            {"client", r->ip[0] ? r->ip : "-", 0},
            {"user", r->authed && r->actor.username[0] ? r->actor.username : "-", 0},
            {"method", rt ? rt->method : method_name(evhttp_request_get_command(r->ev)), 0},
            {"route", rt ? rt->pattern : "-", 0},
            {"status", NULL, r->status},
            {"code", r->rc != QUN_OK ? qun_rc_name(r->rc) : "-", 0},
            {"ms", NULL, (long long)ms},
            {"uri", log_uri(r, ub, sizeof ub), 0},
        };
        qun_log_fields("info", "request", f, sizeof f / sizeof f[0]);
    }
    for (int k = 0; k < QUN_MAX_PARAMS; k++)
        free(r->params[k]);
    if (r->has_query) evhttp_clear_headers(&r->query);
    free(r->body);
    json_decref(r->json);
    json_decref(r->out);
    json_decref(r->problem_extra);
    free(r->out_text);
    free(r->file_path);
    if (r->scratch_free)
        r->scratch_free(r->scratch);
    else
        free(r->scratch);
    free(r);
}

/* ---- shared checks ---- */
/* The hex SHA-256 of r's bearer token into hash, or the refusal of a missing or
 * malformed one. */
static qun_rc bearer_hash(qun_req_t *r, char hash[65]) {
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Authorization");
    const char *token = h ? h + 7 : NULL;
    /* Matrix clients may send the token in the query instead (matrix-nio only does). */
    if (!h && (qun_routes[r->route_index].flags & R_MATRIX)) token = qun_query(r, "access_token");
    if (!token) return qun_fail(&r->err, QUN_UNAUTHENTICATED, "send Authorization: Bearer <token>");
    if ((h && strncasecmp(h, "Bearer ", 7) != 0) || strlen(token) > 200)
        return qun_fail(&r->err, QUN_TOKEN_INVALID, "Authorization must be a Bearer token");
    qun_sha256_hex(hash, token, strlen(token));
    return QUN_OK;
}

/* The caller of an R_ACTOR_CACHED route from the loop's cache, when it holds the token
 * and the request carries no Idempotency-Key (a replay answers before the write that
 * checks the session). */
static bool cached_caller(qun_req_t *r) {
    char hash[65];
    if (evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Idempotency-Key") ||
        bearer_hash(r, hash) != QUN_OK || !qun_actor_cache_get(r->w->actors, hash, &r->actor))
        return false;
    r->authed = true;
    return true;
}

static qun_rc authenticate(qun_req_t *r) {
    char hash[65];
    qun_rc rc = bearer_hash(r, hash);
    if (rc != QUN_OK) return rc;
    rc = qun_session_auth(r->w->db, hash, &r->actor, &r->err);
    r->authed = rc == QUN_OK;
    if (qun_routes[r->route_index].flags & R_ACTOR_CACHED) {
        if (rc == QUN_OK)
            qun_actor_cache_put(r->w->actors, hash, &r->actor);
        else
            qun_actor_cache_drop(r->w->actors, hash);
    }
    /* A session opened with an admin's one-time code sets a new password first; it may
     * still read who it is and log out. */
    qun_handler_fn run = qun_routes[r->route_index].run;
    if (rc == QUN_OK && r->actor.must_change_password && run != h_me && run != h_password &&
        run != h_session_delete)
        rc = qun_fail(&r->err, QUN_PASSWORD_CHANGE_REQUIRED,
                      "this session was opened with a one-time code: set a new password first");
    return rc;
}

static qun_rc read_body(qun_req_t *r) {
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t n = evbuffer_get_length(in);
    int f = qun_routes[r->route_index].flags;
    if ((f & R_JSON) && n > QUN_JSON_MAX)
        return qun_fail(&r->err, QUN_BODY_TOO_LARGE, "JSON bodies are limited to %u bytes", QUN_JSON_MAX);
    if (!(f & (R_JSON | R_RAW))) return QUN_OK;
    r->body = malloc(n + 1);
    if (!r->body) return qun_fail(&r->err, QUN_NOMEM, "out of memory");
    evbuffer_remove(in, r->body, n);
    r->body[n] = '\0';
    r->body_len = n;
    if (!(f & R_JSON)) return QUN_OK;
    return qun_body_parse((const char *)r->body, n, &r->json, &r->err);
}

/* The caller of r as the idempotency store keys it: 0 before authentication. */
static int64_t idem_uid(const qun_req_t *r) {
    return r->authed ? r->actor.uid : 0;
}

/* A replay: the answer stored under r's Idempotency-Key becomes r's answer (*hit). */
static qun_rc idem_lookup(qun_req_t *r, qun_db_t *db, bool *hit) {
    qun_idem_answer_t a;
    qun_rc rc = qun_idem_get(db, idem_uid(r), r->idem_key, r->idem_digest, hit, &a, &r->err);
    if (rc != QUN_OK || !*hit) return rc;
    r->status = a.status;
    free(r->out_text);
    r->out_text = a.body;
    add_header(r, "Idempotent-Replayed", "true");
    atomic_fetch_add(&m_replays, 1);
    return QUN_OK;
}

/* A Matrix PUT .../{txnId}: the transaction id is an idempotency key scoped to the
 * session (a Matrix device), so a client that retries gets the first answer back. */
static const char *txn_key(qun_req_t *r, char *buf, size_t size) {
    const char *txn = NULL;
    for (int k = 0; k < QUN_MAX_PARAMS; k++)
        if (r->params[k]) txn = r->params[k];
    if (!txn || !r->authed) return NULL;
    int n = snprintf(buf, size, "mx:%lld:%s", (long long)r->actor.session_id, txn);
    return n > 0 && (size_t)n < size ? buf : "";
}

static qun_rc idem_prepare(qun_req_t *r) {
    char txn[160];
    const char *k = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Idempotency-Key");
    if (qun_routes[r->route_index].flags & R_TXN) {
        k = txn_key(r, txn, sizeof txn);
        if (k && !*k) return qun_fail(&r->err, QUN_IDEMPOTENCY_KEY_INVALID, "the transaction id is too long");
        if (k) goto keyed;
    }
    if (!k || strcmp(qun_routes[r->route_index].method, "POST") != 0 ||
        (qun_routes[r->route_index].flags & R_NOIDEM))
        return QUN_OK;
keyed:;
    size_t n = strlen(k);
    if (n == 0 || n > 128)
        return qun_fail(&r->err, QUN_IDEMPOTENCY_KEY_INVALID, "Idempotency-Key must be 1 to 128 characters");
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return qun_fail(&r->err, QUN_IDEMPOTENCY_KEY_INVALID, "Idempotency-Key must be printable ASCII");
    memcpy(r->idem_key, k, n + 1);
    crypto_hash_sha256_state st;
    unsigned char h[32];
    const char *uri = evhttp_request_get_uri(r->ev);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)uri, strlen(uri) + 1);
    if (r->body) crypto_hash_sha256_update(&st, r->body, r->body_len);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Content-Type");
    if (ct && (qun_routes[r->route_index].flags & R_RAW)) /* a raw upload's type is part of the request */
        crypto_hash_sha256_update(&st, (const unsigned char *)ct, strlen(ct));
    crypto_hash_sha256_final(&st, h);
    qun_hex(r->idem_digest, h, 32);
    return QUN_OK;
}

/* ---- brute-force locks (R_LOCKOUT, core/lockout.c) ---- */

/* The account an attempt is against: the caller's, or a login's username. */
static const char *lock_account(qun_req_t *r) {
    if (!r->authed && r->matrix) return qun_mx_login_user(r);
    return r->authed ? r->actor.username : qun_jstr(r->json, "username");
}

/* A request to an R_LOCKOUT route that presents a secret is refused while its account
 * or network is locked, before any secret is checked: during a lock even the right
 * password fails, so a lock answers nothing about a guess. */
static qun_rc lockout_gate(qun_req_t *r) {
    static const char *secrets[] = {"password", "old_password", "code", "totp_code", "signature"};
    if (!(qun_routes[r->route_index].flags & R_LOCKOUT) || !r->json) return QUN_OK;
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0] && !r->lockout; i++)
        r->lockout = json_object_get(r->json, secrets[i]) != NULL;
    if (!r->lockout) return QUN_OK;
    json_t *info = NULL;
    qun_rc rc = qun_lockout_check(r->db, lock_account(r), r->ip, &r->retry_after, &info, &r->err);
    if (info) {
        json_decref(r->problem_extra);
        r->problem_extra = info;
    }
    return rc;
}

/* On the writer, after r failed with r->rc: count the failure when it is one that
 * counts; the failing attempt that engages a lock is answered LOCKED_OUT. */
static qun_rc count_failure(qun_req_t *r, qun_db_t *db) {
    const char *kind = r->lockout ? qun_lockout_counts(r->rc) : NULL;
    if (!kind) return r->rc;
    if (r->rc == QUN_BAD_CREDENTIALS && !r->authed) kind = "login";
    json_t *info = NULL;
    qun_err_t e = {{0}, {0}};
    int64_t locked_for = 0;
    qun_rc rc = qun_lockout_fail(db, lock_account(r), r->ip, kind, &locked_for, &info, &e);
    if (rc != QUN_OK) {
        qun_log("error", "cannot count a failed attempt: %s", e.msg);
        return rc;
    }
    if (locked_for > 0) {
        r->rc = qun_fail(&r->err, QUN_LOCKED_OUT, "too many failed attempts; try again in %lld seconds",
                         (long long)locked_for);
        r->retry_after = locked_for;
        json_decref(r->problem_extra);
        r->problem_extra = info;
    }
    return QUN_OK; /* keep the count; r->rc still carries the refusal */
}

/* A write that only counts the failure of a prep (a wrong login or step-up password). */
static qun_rc run_count_failure(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)err;
    return count_failure(arg, db);
}

/* Runs on the writer: replay or run, and remember a successful answer under its key.
 * When failures count (r->lockout), the handler runs in a savepoint of its own, so a
 * refusal rolls back its work but not the count of the failure. */
static qun_rc run_write(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)err;
    qun_req_t *r = arg;
    bool hit = false;
    r->db = db;
    if (r->idem_key[0]) {
        /* Several instances: the first to take the key's lock runs; the others wait
         * for its commit and then find its answer (READ COMMITTED reads it). */
        r->rc = qun_idem_lock(db, idem_uid(r), r->idem_key, &r->err);
        if (r->rc == QUN_OK) r->rc = idem_lookup(r, db, &hit);
        if (r->rc != QUN_OK || hit) return r->rc;
    }
    if (r->lockout) {
        qun_err_t e = {{0}, {0}};
        r->rc = qun_db_savepoint(db, &r->err);
        if (r->rc != QUN_OK) return r->rc;
        r->rc = qun_routes[r->route_index].run(r);
        qun_rc rel = qun_db_release(db, r->rc == QUN_OK, &e);
        if (rel != QUN_OK) {
            r->err = e;
            return r->rc = rel;
        }
        if (r->rc != QUN_OK) return count_failure(r, db);
    } else {
        r->rc = qun_routes[r->route_index].run(r);
    }
    /* A cached caller's refusal may come from a stale cache: the loop looks the session up
     * and runs the request again (qun_router_reauth).  Nothing was written: the route makes
     * every check first (R_CHECKS_FIRST), and a 4xx is a check's. */
    if (r->rc != QUN_OK && r->actor.cached && qun_rc_status(r->rc) < 500) r->reauth = true;
    if (r->rc != QUN_OK) return r->rc;
    if (!r->idem_key[0]) return QUN_OK; /* serializing happens on the loop thread, off the writer */
    if (!r->out_text && r->out) r->out_text = qun_json_compact(r->out);
    if (!r->status) r->status = r->out_text ? 200 : 204;
    r->rc = qun_idem_put(db, idem_uid(r), r->idem_key, r->idem_digest, r->status, r->out_text, &r->err);
    return r->rc;
}

/* A 405 must say what is allowed (RFC 9110, 15.5.6): every method a route accepts on path. */
static void add_allow(qun_req_t *r, const char *path) {
    static const char *methods[] = {"GET", "POST", "PATCH", "DELETE"};
    char allow[64] = "";
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        char *params[QUN_MAX_PARAMS] = {0};
        if (qun_route_match(methods[k], path, params) < 0) continue;
        for (int p = 0; p < QUN_MAX_PARAMS; p++)
            free(params[p]);
        size_t n = strlen(allow);
        snprintf(allow + n, sizeof allow - n, "%s%s%s", n ? ", " : "", methods[k], k == 0 ? ", HEAD" : "");
    }
    add_header(r, "Allow", allow);
}

static const char *method_name(enum evhttp_cmd_type c) {
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PATCH: return "PATCH";
    case EVHTTP_REQ_HEAD: return "GET"; /* evhttp sends no body on HEAD */
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    default: return "OTHER";
    }
}

static void proceed(qun_req_t *r, qun_rc rc);

/* Matrix ids in paths arrive percent-encoded (!g_x%3Aserver): decode each parameter on
 * its own, after matching, so an encoded '/' never splits a segment. */
static bool decode_params(qun_req_t *r) {
    for (int k = 0; k < QUN_MAX_PARAMS; k++) {
        if (!r->params[k] || !strchr(r->params[k], '%')) continue;
        size_t n = 0;
        char *d = evhttp_uridecode(r->params[k], 0, &n);
        json_t *utf8 = d && n > 0 && strlen(d) == n ? json_stringn(d, n) : NULL; /* NULL unless UTF-8 */
        json_decref(utf8);
        if (!utf8) {
            free(d);
            return false;
        }
        free(r->params[k]);
        r->params[k] = d;
    }
    return true;
}

/* On the writer: spend the request's event ticket and take its session's identity. */
static qun_rc ticket_write(qun_db_t *db, void *arg, qun_err_t *err) {
    (void)err;
    qun_req_t *r = arg;
    const char *ticket = qun_query(r, "ticket");
    char hash[65];
    qun_sha256_hex(hash, ticket, strlen(ticket));
    r->rc = qun_event_ticket_redeem(db, hash, &r->actor, &r->err);
    return r->rc;
}

/* Back on the loop once the ticket is spent durably: a fresh snapshot, then as usual. */
static void ticket_resume(qun_req_t *r) {
    r->authed = true;
    r->db = r->w->db;
    r->reading = qun_db_read_begin(r->db, &r->err) == QUN_OK;
    proceed(r, QUN_OK);
}

/* A Matrix query string as lenient clients need it: hydrogen sends `?&_cacheBuster=…`
   (an empty pair), which libevent's parser refuses.  Empty pairs and pairs with an empty
   key are dropped and a bare key gets an empty value.  Returns a malloc'd copy, or NULL
   when the query is fine as it is. */
static char *mx_lenient_query(const char *q) {
    bool clean = true;
    for (const char *p = q;; p = strchr(p, '&') + 1) {
        size_t n = strcspn(p, "&");
        if (n == 0 || p[0] == '=' || !memchr(p, '=', n)) clean = false;
        if (!p[n]) break;
    }
    if (clean) return NULL;
    char *out = qun_xmalloc(2 * strlen(q) + 1), *o = out;
    for (const char *p = q;; p = strchr(p, '&') + 1) {
        size_t n = strcspn(p, "&");
        if (n > 0 && p[0] != '=') {
            if (o > out) *o++ = '&';
            memcpy(o, p, n);
            o += n;
            if (!memchr(p, '=', n)) *o++ = '=';
        }
        if (!p[n]) break;
    }
    *o = '\0';
    return out;
}

void qun_router_dispatch(struct evhttp_request *ev, void *arg) {
    qun_req_t *r = qun_xcalloc(1, sizeof *r);
    r->ev = ev;
    r->w = arg;
    r->route_index = -1;
    r->t0_ms = qun_mono_ms();
    /* The client as the lockout, the risk engine and the logs know it (proxy.c). */
    char *peer = NULL;
    ev_uint16_t port;
    evhttp_connection_get_peer(evhttp_request_get_connection(ev), &peer, &port);
    qun_proxy_client(peer, evhttp_request_get_input_headers(ev), r->ip, sizeof r->ip);
    r->rc = qun_gate_refusal(ev, &r->err);
    if (r->rc != QUN_OK) { /* what follows on the connection cannot be trusted to be a request */
        add_header(r, "Connection", "close");
        qun_req_finish(r);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!path || strlen(path) > 1024) {
        r->rc = qun_fail(&r->err, QUN_NOT_FOUND, "no such path");
        qun_req_finish(r);
        return;
    }
    r->matrix = qun_mx_cfg.enabled && qun_mx_path(path);
    if (qun_server_stopping()) { /* on a kept-alive connection, during a stop */
        r->rc = qun_fail(&r->err, QUN_UNAVAILABLE, "the server is stopping");
        add_header(r, "Connection", "close");
        qun_req_finish(r);
        return;
    }
    const char *method = method_name(evhttp_request_get_command(ev));
    if (r->matrix && strcmp(method, "OPTIONS") == 0) { /* a CORS preflight: every Matrix path allows it */
        r->status = 204;
        qun_req_finish(r);
        return;
    }
    char *lenient = r->matrix && query ? mx_lenient_query(query) : NULL;
    if (lenient) query = lenient;
    if (query) {
        r->has_query = true;
        int bad = evhttp_parse_query_str(query, &r->query);
        free(lenient);
        if (bad != 0) {
            r->rc = qun_fail(&r->err, QUN_BAD_REQUEST, "malformed query string");
            qun_req_finish(r);
            return;
        }
    }
    char mpath[1100];
    if (r->matrix) {
        qun_mx_normalize(path, mpath, sizeof mpath);
        path = mpath;
    }
    int i = qun_route_match(method, path, r->params);
    if (i >= 0 && (qun_routes[i].flags & R_MATRIX) && !r->matrix) { /* the adapter is off */
        for (int k = 0; k < QUN_MAX_PARAMS; k++) {
            free(r->params[k]);
            r->params[k] = NULL;
        }
        i = -1;
    }
    if (i >= 0 && r->matrix && !decode_params(r)) {
        r->rc = qun_fail(&r->err, QUN_NOT_FOUND, "a path segment is not valid percent-encoded UTF-8");
        qun_req_finish(r);
        return;
    }
    if (i < 0) {
        if (i == -2) add_allow(r, path);
        r->rc = i == -2 ? qun_fail(&r->err, QUN_METHOD_NOT_ALLOWED, "method not allowed on %s", path)
                        : qun_fail(&r->err, QUN_NOT_FOUND, "no route for %s", path);

        qun_req_finish(r);
        return;
    }
    r->route_index = i;
    r->db = r->w->db;
    const qun_route_t *rt = &qun_routes[i];
    const char *ticket = (rt->flags & R_TICKET) ? qun_query(r, "ticket") : NULL;
    if (ticket && !evhttp_find_header(evhttp_request_get_input_headers(ev), "Authorization")) {
        if (strlen(ticket) > 200) {
            r->rc = qun_fail(&r->err, QUN_TICKET_INVALID, "no such event ticket");
            qun_req_finish(r);
            return;
        }
        r->resume = ticket_resume;
        qun_worker_submit_write(r, ticket_write);
        return;
    }
    /* A caller the loop knows needs no read here: its write checks the session. */
    if ((rt->flags & R_ACTOR_CACHED) && cached_caller(r)) {
        proceed(r, QUN_OK);
        return;
    }
    r->reading = qun_db_read_begin(r->db, &r->err) == QUN_OK;
    qun_rc rc = QUN_OK;
    if (rt->flags & R_AUTH) rc = authenticate(r);
    proceed(r, rc);
}

/* The writer's qun_wop_t.ahead of a message post. */
static void post_ahead(qun_db_t *db, void *arg) {
    h_message_post_ahead(arg, db);
}

/* Hand r's run() to the writer, the loop's snapshot ended first. */
static void submit(qun_req_t *r) {
    read_end(r); /* the loop's snapshot must not outlive the hand-over to the writer */
    /* A counted failure needs the handler's own savepoint (run_write). */
    r->wop.unguarded = (qun_routes[r->route_index].flags & R_CHECKS_FIRST) && !r->lockout;
    /* Its read sent ahead with its neighbours' (not with a key: a replay writes nothing). */
    r->wop.ahead = r->wop.unguarded && !r->idem_key[0] && qun_routes[r->route_index].run == h_message_post &&
                           qun_db_runs_ahead(r->w->db)
                       ? post_ahead
                       : NULL;
    /* Such a post locks only its group's row: its batch may run beside other qund's. */
    r->wop.shares_key = r->wop.ahead ? r->params[0] : NULL;
    r->ahead = NULL;
    qun_worker_submit_write(r, run_write);
}

/* r's session looked up in a read transaction of its own, for a caller the cache gave. */
static qun_rc reauthenticate(qun_req_t *r) {
    r->db = r->w->db;
    r->reading = qun_db_read_begin(r->db, &r->err) == QUN_OK;
    return authenticate(r); /* not cached now: the write will not send it back again */
}

void qun_router_reauth(qun_req_t *r) {
    r->reauth = false;
    r->rc = QUN_OK;
    r->err = (qun_err_t){{0}, {0}};
    r->status = 0;
    qun_rc rc = reauthenticate(r);
    if (rc != QUN_OK) {
        r->rc = rc;
        qun_req_finish(r);
        return;
    }
    submit(r); /* body, key and prep are the first attempt's */
}

static void after_prep(qun_req_t *r, qun_rc rc, bool hit);

/* Everything after authentication: body, idempotency, prep, then run (here or on the writer). */
static void proceed(qun_req_t *r, qun_rc rc) {
    const qun_route_t *rt = &qun_routes[r->route_index];
    if (rc == QUN_OK) rc = read_body(r);
    if (rc == QUN_OK) rc = idem_prepare(r);
    bool hit = false;
    if (rc == QUN_OK && r->idem_key[0]) rc = idem_lookup(r, r->w->db, &hit);
    if (rc == QUN_OK && !hit) rc = lockout_gate(r);
    if (rc == QUN_OK && !hit) rc = rt->prep(r);
    if (rc == QUN_OK && !hit && r->slow) { /* the rest of prep is too slow for the loop */
        read_end(r);
        if (qun_worker_submit_slow(r)) return;
        rc = qun_fail(&r->err, QUN_UNAVAILABLE, "too many %s are waiting; retry",
                      r->slow_kind == QUN_SLOW_FILE ? "uploads" : "password checks");
    }
    after_prep(r, rc, hit);
}

void qun_router_slow_done(qun_req_t *r) {
    if (r->slow_rc == QUN_OK && !(qun_routes[r->route_index].flags & R_WRITE))
        r->reading = qun_db_read_begin(r->db, &r->err) == QUN_OK; /* run() reads on the loop */
    after_prep(r, r->slow_rc, false);
}

/* prep's outcome: count a wrong secret, hand the write over, or run and answer. */
static void after_prep(qun_req_t *r, qun_rc rc, bool hit) {
    const qun_route_t *rt = &qun_routes[r->route_index];
    /* A cached caller refused before the writer (a bad body): its session is looked up
     * now, and a session's refusal comes first, as it does without the cache. */
    if (rc != QUN_OK && r->actor.cached) {
        qun_err_t why = r->err;
        qun_rc auth = reauthenticate(r);
        if (auth == QUN_OK) r->err = why;
        rc = auth == QUN_OK ? rc : auth;
    }
    if (r->lockout && qun_lockout_counts(rc)) { /* a wrong password in prep: count it on the writer */
        r->rc = rc;
        read_end(r);
        qun_worker_submit_write(r, run_count_failure);
        return;
    }
    if (rc == QUN_OK && !hit && (rt->flags & R_WRITE)) {
        submit(r);
        return;
    }
    if (rc == QUN_OK && !hit) rc = rt->run(r);
    r->rc = rc;
    qun_req_finish(r);
}

char *qun_metrics_render(void) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    static const char *cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    fprintf(f, "# HELP qun_http_requests_total HTTP requests answered, by route and status class.\n"
               "# TYPE qun_http_requests_total counter\n");
    for (int i = 0; i <= MAX_ROUTES; i++) {
        if (i >= qun_routes_count && i != MAX_ROUTES) continue;
        for (int c = 0; c < 6; c++) {
            uint64_t n = atomic_load(&m_count[i][c]);
            if (!n) continue;
            if (i == MAX_ROUTES)
                fprintf(f, "qun_http_requests_total{route=\"unmatched\",status=\"%s\"} %llu\n", cls[c],
                        (unsigned long long)n);
            else
                fprintf(f, "qun_http_requests_total{route=\"%s %s\",status=\"%s\"} %llu\n",
                        qun_routes[i].method, qun_routes[i].pattern, cls[c], (unsigned long long)n);
        }
    }
    fprintf(f, "# HELP qun_http_request_milliseconds_total Time spent answering, by route.\n"
               "# TYPE qun_http_request_milliseconds_total counter\n");
    for (int i = 0; i < qun_routes_count; i++) {
        uint64_t ms = atomic_load(&m_ms[i]);
        if (ms)
            fprintf(f, "qun_http_request_milliseconds_total{route=\"%s %s\"} %llu\n", qun_routes[i].method,
                    qun_routes[i].pattern, (unsigned long long)ms);
    }
    uint64_t commits, ops, failed;
    qun_writer_stats(qun_server_writer(), &commits, &ops, &failed);
    fprintf(f,
            "# HELP qun_store_commits_total Durable commits made by the group-commit writer.\n"
            "# TYPE qun_store_commits_total counter\nqun_store_commits_total %llu\n"
            "# HELP qun_store_write_ops_total Write operations run by the writer.\n"
            "# TYPE qun_store_write_ops_total counter\nqun_store_write_ops_total %llu\n"
            "# HELP qun_store_write_ops_failed_total Write operations that failed.\n"
            "# TYPE qun_store_write_ops_failed_total counter\nqun_store_write_ops_failed_total %llu\n"
            "# HELP qun_idempotent_replays_total POSTs answered from the idempotency store.\n"
            "# TYPE qun_idempotent_replays_total counter\nqun_idempotent_replays_total %llu\n"
            "# HELP qun_background_yields 1 when purges and other background work run at SCHED_IDLE.\n"
            "# TYPE qun_background_yields gauge\nqun_background_yields %d\n"
            "# HELP qun_background_hurries_total Times background work starved at SCHED_IDLE was run at nice "
            "10.\n"
            "# TYPE qun_background_hurries_total counter\nqun_background_hurries_total %llu\n"
            "# HELP qun_search_hidden_commits Commits whose removed text the search index hides.\n"
            "# TYPE qun_search_hidden_commits gauge\nqun_search_hidden_commits %lld\n",
            (unsigned long long)commits, (unsigned long long)ops, (unsigned long long)failed,
            (unsigned long long)atomic_load(&m_replays), qun_writer_yields(qun_server_writer()) ? 1 : 0,
            (unsigned long long)qun_jobs_hurries(), (long long)qun_jobs_search_hidden());
    static const struct {
        const char *name, *what, *queue;
    } pools[QUN_SLOW_KINDS] = {
        [QUN_SLOW_PASSWORD] = {"password_checks", "Password checks and hashes (argon2id)", "argon2_queue"},
        [QUN_SLOW_FILE] = {"file_writes", "Uploads' bytes written and synced", "upload_queue"},
    };
    for (int k = 0; k < QUN_SLOW_KINDS; k++) {
        uint64_t done, refused;
        int waiting;
        qun_slow_stats((qun_slow_kind_t)k, &done, &refused, &waiting);
        fprintf(
            f,
            "# HELP qun_%s_total %s run off the HTTP loops.\n# TYPE qun_%s_total counter\nqun_%s_total %llu\n"
            "# HELP qun_%s_refused_total Requests answered 503 because %s others waited.\n"
            "# TYPE qun_%s_refused_total counter\nqun_%s_refused_total %llu\n"
            "# HELP qun_%s_waiting Requests waiting for a thread.\n# TYPE qun_%s_waiting gauge\n"
            "qun_%s_waiting %d\n",
            pools[k].name, pools[k].what, pools[k].name, pools[k].name, (unsigned long long)done,
            pools[k].name, pools[k].queue, pools[k].name, pools[k].name, (unsigned long long)refused,
            pools[k].name, pools[k].name, pools[k].name, waiting);
    }
    uint64_t delivered, wfailed, dead;
    qun_outbox_stats(&delivered, &wfailed, &dead);
    fprintf(f,
            "# HELP qun_webhook_deliveries_total Webhook attempts answered 2xx.\n"
            "# TYPE qun_webhook_deliveries_total counter\nqun_webhook_deliveries_total %llu\n"
            "# HELP qun_webhook_failures_total Webhook attempts that failed (non-2xx, timeout, error).\n"
            "# TYPE qun_webhook_failures_total counter\nqun_webhook_failures_total %llu\n"
            "# HELP qun_webhook_dead_total Webhook deliveries that ran out of attempts.\n"
            "# TYPE qun_webhook_dead_total counter\nqun_webhook_dead_total %llu\n",
            (unsigned long long)delivered, (unsigned long long)wfailed, (unsigned long long)dead);
    qun_mail_stats(&delivered, &wfailed, &dead);
    fprintf(f,
            "# HELP qun_mail_sent_total Notification mails the SMTP relay accepted.\n"
            "# TYPE qun_mail_sent_total counter\nqun_mail_sent_total %llu\n"
            "# HELP qun_mail_failures_total Mail attempts that failed (refused, timeout, relay down).\n"
            "# TYPE qun_mail_failures_total counter\nqun_mail_failures_total %llu\n"
            "# HELP qun_mail_dead_total Mails that ran out of attempts.\n"
            "# TYPE qun_mail_dead_total counter\nqun_mail_dead_total %llu\n",
            (unsigned long long)delivered, (unsigned long long)wfailed, (unsigned long long)dead);
    uint64_t hk[QUN_HK_KINDS];
    qun_housekeeping_stats(hk);
    fprintf(f, "# HELP qun_housekeeping_deleted_total What housekeeping deleted past its life, by kind.\n"
               "# TYPE qun_housekeeping_deleted_total counter\n");
    for (int i = 0; i < QUN_HK_KINDS; i++)
        fprintf(f, "qun_housekeeping_deleted_total{kind=\"%s\"} %llu\n", qun_housekeeping_kinds[i],
                (unsigned long long)hk[i]);
    qun_events_metrics(f);
    fclose(f);
    return text;
}
