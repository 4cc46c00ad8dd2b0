/* SPDX-License-Identifier: MIT */
/* The HTTP layer: worker threads each running an evhttp loop on a shared
 * SO_REUSEPORT port, the router that owns the shared checks (404/405, size caps,
 * JSON parsing, authentication, idempotency), and the handlers, one h_<area>.c per
 * API area.  Only this directory includes libevent's HTTP headers. */
#ifndef QUN_HTTP_H
#define QUN_HTTP_H

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qun/core.h"
#include "qun/store.h"
#include "qun/writer.h"

#define QUN_JSON_MAX (1u << 20)  /* JSON bodies are capped at 1 MiB */
#define QUN_HEAD_MAX (64 * 1024) /* a request line and its header fields */
#define QUN_MAX_PARAMS 3

enum {
    R_AUTH = 1 << 0,          /* bearer token required */
    R_WRITE = 1 << 1,         /* run() executes on the group-commit writer */
    R_JSON = 1 << 2,          /* body is a JSON object (empty body reads as {}) */
    R_RAW = 1 << 3,           /* body is raw bytes up to the upload limit */
    R_NOIDEM = 1 << 4,        /* POST whose answer holds a secret: Idempotency-Key not replayed */
    R_TICKET = 1 << 5,        /* with R_AUTH: without an Authorization header, ?ticket= (an event
                               * ticket, spent on the writer) authenticates instead */
    R_LOCKOUT = 1 << 6,       /* takes a password, code or signature: brute-force locks apply (lockout.h) */
    R_MATRIX = 1 << 7,        /* a Matrix client-server route (matrix_routes.def, h_matrix*.c): token also as
                               * ?access_token=, Matrix errors, CORS, percent-decoded path parameters */
    R_TXN = 1 << 8,           /* with R_MATRIX and R_WRITE: the last path parameter is a Matrix txnId, made
                               * the request's idempotency key per session */
    R_CHECKS_FIRST = 1 << 9,  /* with R_WRITE: run() makes every check before its first write, and
                               * after it fails only if the store does: the writer runs it without a
                               * savepoint (qun_wop_t.unguarded, writer.h) */
    R_ACTOR_CACHED = 1 << 10, /* with R_CHECKS_FIRST: run() checks the session in its own write
                               * (qun_actor_t.cached), so the loop may take the caller from its
                               * cache of sessions (actors.c) without a read of its own */
};

typedef struct qun_req qun_req_t;
typedef qun_rc (*qun_handler_fn)(qun_req_t *r);

/* The pools of work too slow for a loop (slow.c). */
typedef enum {
    QUN_SLOW_PASSWORD, /* argon2id */
    QUN_SLOW_FILE,     /* an upload's bytes written and fsynced; an import staged */
    QUN_SLOW_KINDS
} qun_slow_kind_t;

typedef struct {
    const char *method;
    const char *pattern; /* "/v1/groups/:/members/:" - ':' matches one segment, a final '*' the rest */
    qun_handler_fn prep; /* optional, on the loop thread before run */
    qun_handler_fn run;
    int flags;
} qun_route_t;

typedef struct qun_worker qun_worker_t;

struct qun_req {
    struct evhttp_request *ev;
    qun_worker_t *w;
    const qun_route_t *route;
    int route_index;
    char *params[QUN_MAX_PARAMS]; /* path parameters, owned */
    struct evkeyvalq query;
    bool has_query;
    bool authed;
    bool reading;           /* a read transaction is open on the loop's connection */
    bool streaming;         /* run() took over ev as an open stream (events.c): send nothing */
    bool matrix;            /* a /_matrix path: Matrix error bodies and CORS (h_matrix.c) */
    const char *mx_errcode; /* a Matrix errcode overriding the one mapped from rc, or NULL */
    char mx_user[256];      /* qun_mx_login_user's answer, once computed */
    qun_actor_t actor;
    unsigned char *body; /* owned, NUL-terminated */
    size_t body_len;
    json_t *json; /* parsed body (R_JSON), owned */
    char idem_key[129];
    char idem_digest[65];
    char ip[64];
    qun_db_t *db; /* connection run() uses */
    /* The answer. */
    qun_rc rc;
    qun_err_t err;
    json_t *problem_extra; /* extra members merged into a problem answer, owned */
    int status;
    json_t *out;     /* owned */
    char *out_text;  /* serialized out (set by the writer for idempotency), owned */
    char *file_path; /* answer is this file's bytes, owned */
    char content_type[96];
    char disposition[700];        /* room for a percent-encoded UTF-8 file name */
    void *scratch;                /* handler state carried from prep to run, freed with free() */
    void (*scratch_free)(void *); /* frees scratch instead of free() when set */
    bool lockout;                 /* an R_LOCKOUT route was sent a secret: failures are counted */
    int64_t retry_after;          /* seconds for Retry-After on LOCKED_OUT */
    int64_t t0_ms;
    qun_wop_t wop;
    void (*resume)(qun_req_t *r); /* after a write, continue on the loop instead of answering */
    bool reauth;    /* the write refused a cached caller: look the session up and run it again */
    qun_q_t *ahead; /* what run() reads, sent ahead by the writer's batch (h_message_post_ahead) */
    /* Set by prep: work too slow for the loop (argon2id, a file's fsync, an import's
     * staging), run on the pool of its kind before run() (slow.c).  It may use only json,
     * body, actor, scratch and err, and on a file thread db (the thread's own); its result
     * is slow_rc. */
    qun_handler_fn slow;
    qun_slow_kind_t slow_kind;
    qun_rc slow_rc;
    bool slow_out;        /* handed to a pool of slow.c, not back on the loop yet */
    qun_req_t *slow_next; /* that pool's queue */
};

/* ---- server.c ---- */
typedef struct {
    const char *host;
    int port;
    int threads;
    size_t upload_limit;
    bool log_requests;
    int argon2_queue; /* requests that may wait for a password thread (slow.c); more get 503 */
    int upload_queue; /* uploads that may wait for a file thread (slow.c); more get 503 */
    bool test_clock;
    bool bench_hello; /* serve GET /bench/hello, the benchmarks' baseline */
    const char *db_path;
    const struct qun_note_key *ledger_key; /* signs checkpoints */
    const char *web_root;                  /* the web console's files; NULL means "web" */
    const char *tls_cert;                  /* PEM certificate chain; with tls_key, qund speaks HTTPS */
    const char *tls_key;                   /* PEM private key */
    bool log_json;                         /* log_format = json: one JSON object per line */
    /* What the service manager hears (src/qund/main.c sets these; NULL: nothing).  All run
     * on the first loop's thread: on_ready once every loop listens, on_tick every tick_usec
     * microseconds while that loop turns (the jobs' patience, the watchdog), on_reload on SIGHUP, on_stopping
     * on SIGINT/SIGTERM before the loops wind down. */
    void (*on_ready)(void);
    void (*on_tick)(void);
    uint64_t tick_usec;
    void (*on_reload)(void);
    void (*on_stopping)(void);
} qun_server_cfg_t;
extern qun_server_cfg_t qun_server_cfg;

/* Run the server until SIGINT/SIGTERM (SIGHUP calls on_reload).  Takes over writer. */
qun_rc qun_server_run(qun_writer_t *writer, qun_err_t *err);
qun_writer_t *qun_server_writer(void);
bool qun_server_ready(void);
/* A stop began: requests that arrive now are answered 503 UNAVAILABLE, Connection: close. */
bool qun_server_stopping(void);

/* ---- slow.c: pools for work too slow for a loop (argon2id, a file's fsync) ---- */
/* Start `threads` threads per pool (qun-passwords, qun-files; each file thread with a
 * read-only connection of its own) / stop them once every request handed to them came
 * back (after the loops settled). */
qun_rc qun_slow_start(int threads, qun_err_t *err);
void qun_slow_stop(void);
/* Queue r (r->slow, r->slow_kind set); false when its pool's queue is full (argon2_queue,
 * upload_queue) or the pool stopped. */
bool qun_slow_submit(qun_req_t *r);
/* A pool's requests worked on, refused for a full queue, and waiting now (for /metrics). */
void qun_slow_stats(qun_slow_kind_t kind, uint64_t *done, uint64_t *refused, int *waiting);

/* ---- proxy.c: the client's address behind trusted reverse proxies ---- */
/* Set the trusted proxies from a comma-separated list of CIDRs (IPv4 and IPv6; a bare
 * address is a /32 or /128).  Refuses the whole list, naming the bad entry, when one is
 * not a CIDR.  Call before the loops start. */
qun_rc qun_proxy_set(const char *list, qun_err_t *err);
/* How many CIDRs are trusted. */
int qun_proxy_count(void);
/* The client's address for a request from TCP peer `peer` with header fields headers:
 * peer itself unless it is a trusted proxy, else the rightmost X-Forwarded-For hop (or,
 * without that field, Forwarded for=) that is not a trusted proxy.  Into out. */
void qun_proxy_client(const char *peer, struct evkeyvalq *headers, char *out, size_t size);

/* ---- tls.c: HTTPS on qund's own port ---- */
/* Load tls_cert and tls_key (qun_server_cfg) into the context new connections use,
 * once, before qun_server_run; refuses an unreadable file or a key that does not match
 * the certificate.  Without either setting, does nothing (plain HTTP). */
qun_rc qun_tls_init(qun_err_t *err);
/* Load the pair again (SIGHUP): new connections use the new pair; on failure the old
 * one stays and the reason is logged. */
void qun_tls_reload(void);
/* The bufferevent of a new TLS connection (evhttp_set_bevcb), gated like qun_gate_bev. */
struct bufferevent *qun_tls_bev(struct event_base *base, void *arg);
/* Free the context at exit. */
void qun_tls_free(void);

/* ---- actors.c: a loop's cache of the sessions it authenticated (R_ACTOR_CACHED) ---- */
typedef struct qun_actor_cache qun_actor_cache_t;
qun_actor_cache_t *qun_actor_cache_new(void);
void qun_actor_cache_free(qun_actor_cache_t *c);
/* The caller whose token has the hex SHA-256 hash, with a->cached set, while its session
 * has not expired; false when the cache does not hold it. */
bool qun_actor_cache_get(qun_actor_cache_t *c, const char *hash, qun_actor_t *a);
/* Remember a freshly authenticated caller (not one that must set a new password). */
void qun_actor_cache_put(qun_actor_cache_t *c, const char *hash, const qun_actor_t *a);
void qun_actor_cache_drop(qun_actor_cache_t *c, const char *hash);

/* ---- h_content.c ---- */
/* A message post's qun_wop_t.ahead (the router sets it on posts the writer runs unguarded). */
void h_message_post_ahead(qun_req_t *r, qun_db_t *db);

/* ---- router.c ---- */
extern const qun_route_t qun_routes[];
extern const int qun_routes_count;
/* Match method+path: returns the route index, -1 for no path match, -2 when the path
 * matches with another method.  Path parameters go to params (owned by the caller). */
int qun_route_match(const char *method, const char *path, char *params[QUN_MAX_PARAMS]);
/* Entry point for every request (the evhttp generic callback). */
void qun_router_dispatch(struct evhttp_request *ev, void *worker);
/* Back on the loop after the writer refused r's cached caller (r->reauth): look the
 * session up and run the write again, or answer the lookup's refusal. */
void qun_router_reauth(qun_req_t *r);
/* Back on the loop from a pool of slow.c: carry on after prep with r->slow_rc. */
void qun_router_slow_done(qun_req_t *r);
/* Finish a request on its loop thread: send the answer, log, count, free. */
void qun_req_finish(qun_req_t *r);
/* Metrics text for /metrics into out (owned by caller, free()). */
char *qun_metrics_render(void);

/* ---- gate.c: what stands between each connection's socket and evhttp ---- */
typedef struct qun_gate_loop qun_gate_loop_t;
/* One loop's gate state (owned by the caller: qun_gate_loop_free after the loop ends). */
qun_gate_loop_t *qun_gate_loop_new(void);
void qun_gate_loop_free(qun_gate_loop_t *l);
/* The bufferevent of a new connection (evhttp_set_bevcb, arg: the loop's
 * qun_gate_loop_t): a socket bufferevent whose input passes through the gate, so that
 * evhttp parses only requests whose framing is unambiguous (RFC 9112). */
struct bufferevent *qun_gate_bev(struct event_base *base, void *arg);
/* Put the gate in front of bev's input (any bufferevent, TLS ones too); returns bev. */
struct bufferevent *qun_gate_attach(struct bufferevent *bev, void *arg);
/* When the gate refused ev's request, the refusal's code (its detail goes to err),
 * else QUN_OK.  A refused request is answered and its connection closed. */
qun_rc qun_gate_refusal(struct evhttp_request *ev, qun_err_t *err);

/* ---- h_matrix.c: the Matrix client-server adapter's shared parts (docs/matrix.md) ---- */
typedef struct {
    bool enabled;          /* setting `matrix` (on/off) */
    char server_name[256]; /* setting `matrix_server_name`: the :domain of Matrix ids */
    char base_url[512];    /* setting `matrix_base_url`: what /.well-known/matrix/client names */
} qun_mx_cfg_t;
extern qun_mx_cfg_t qun_mx_cfg;
/* Whether path is one the adapter answers (/_matrix/..., /.well-known/matrix/...). */
bool qun_mx_path(const char *path);
/* The path as matrix_routes.def spells it: both client prefixes (r0, v3) map to v3 and
 * both media prefixes to media/v3.  Into out (size bytes). */
void qun_mx_normalize(const char *path, char *out, size_t size);
/* Add the CORS headers every /_matrix answer carries, errors and OPTIONS included. */
void qun_mx_cors(struct evhttp_request *ev);
/* The body of a Matrix error answer for r (r->rc, r->err, r->mx_errcode), and its
 * status into *status.  Caller frees the text. */
char *qun_mx_error_body(qun_req_t *r, int *status);
/* The account a Matrix login names (identifier.user or the legacy user: a username, a
 * localpart or @localpart:server), as its username when it exists; "" when it names
 * none.  Brute-force locks count against it.  Kept in r (scratch-free storage). */
const char *qun_mx_login_user(qun_req_t *r);
/* Refuse r with rc and a Matrix errcode of the handler's choosing (M_UNSUPPORTED_ROOM_VERSION
 * ...); the detail becomes the answer's `error`.  Returns rc. */
qun_rc qun_mx_fail(qun_req_t *r, qun_rc rc, const char *errcode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define QUN_MX_ID_MAX 400 /* a rendered Matrix user or room id, NUL included */
/* The group id of a room id !<gid>:<our server name>; false for anything else. */
bool qun_mx_room_gid(const char *room_id, char gid[QUN_ID_MAX]);
void qun_mx_room_id(const char *gid, char *out, size_t size);
/* The localpart of a user id @<local>:<our server name> (QUN_MX_LOCAL_MAX bytes, from
 * qun/matrix.h); false for anything else. */
bool qun_mx_user_local(const char *user_id, char *local);
void qun_mx_user_id(const char *local, char *out, size_t size);
/* Whether id names another server (federation is not supported). */
bool qun_mx_remote(const char *id);

/* ---- events.c: GET /v1/events (server-sent events) ---- */
/* Set up each worker's wake and heartbeat events and hook the writer's commits. */
void qun_events_start(qun_writer_t *writer, qun_worker_t *workers, int n);
/* Stop waking the loops (after they stopped, before their evhttp is freed). */
void qun_events_quiesce(void);
/* Free worker index's events (after its evhttp_free closed its streams). */
void qun_events_loop_free(int index);
/* Free what is left, after every loop is freed. */
void qun_events_stop(void);
/* The events counters for /metrics. */
void qun_events_metrics(FILE *f);

/* ---- typing (events.c; docs/matrix.md "Receipts, unread counts and typing") ----
 * In memory, shared by every loop, never stored.  A change (start, stop, expiry) is
 * told to the group's members' event streams as `member.typing` {group, user,
 * display_name, typing} and wakes their parked syncs. */
/* User uid (its openid, display name and Matrix localpart) starts typing in group_id
 * (public id gid) for timeout_ms, or stops (typing false).  Thread-safe. */
void qun_typing_set(int64_t group_id, const char *gid, int64_t uid, const char *openid, const char *name,
                    const char *local, bool typing, int64_t timeout_ms);
/* The serial of the latest typing change anywhere (0: none since the start). */
uint64_t qun_typing_serial(void);
/* The Matrix user ids typing in group_id now (a JSON array, owned by the caller). */
json_t *qun_typing_users(int64_t group_id);
/* Whether group_id's typists changed after serial since (true when since is too old
 * to tell). */
bool qun_typing_changed(int64_t group_id, uint64_t since);

/* ---- long-polls parked on the loops (events.c), for the Matrix /sync ----
 * A parked request waits on its loop, holding no read transaction, until an event row
 * that reaches its user is fanned out (the same wake and membership maps as the event
 * streams: one read per loop per wake, never one query per parked request), or until
 * its timeout.  fire runs on the loop thread: woken, inside the read transaction its
 * wake's answers share (a read fire begins nests in it, qun_db_read_begin); timed out,
 * outside any.  It answers ev and returns true, or returns false to keep waiting (the
 * rows said nothing it renders); with timed_out it must answer. */
typedef bool (*qun_park_fn)(struct evhttp_request *ev, qun_db_t *db, void *arg, bool timed_out);
/* Park r, whose answer was computed in a snapshot whose last event id is position (rows
 * up to it never wake it), for timeout_ms.  On QUN_OK the park owns arg (freed with
 * arg_free) and r is marked streaming (the router sends nothing); otherwise the caller
 * keeps arg and answers r. */
qun_rc qun_events_park(qun_req_t *r, int64_t position, int timeout_ms, qun_park_fn fire, void *arg,
                       void (*arg_free)(void *));

/* ---- helpers for handlers (reply.c / fields.c) ---- */
/* Set a JSON answer (steals out). */
qun_rc qun_ok(qun_req_t *r, int status, json_t *out);
/* A query-string parameter, or NULL. */
const char *qun_query(qun_req_t *r, const char *name);
/* An integer query parameter in 0..max; dflt when absent (dflt < 0: required). */
qun_rc qun_query_int(qun_req_t *r, const char *name, int64_t dflt, int64_t max, int64_t *out);
/* Parse cursor/limit query parameters (after >= 0; 1 <= limit <= 200, default 50). */
qun_rc qun_page_args(qun_req_t *r, int64_t *after, int *limit);

typedef enum { F_STR, F_INT, F_BOOL, F_STRARR, F_OBJ } qun_ftype_t;
typedef struct {
    const char *name;
    qun_ftype_t type;
    bool required;
    int64_t min, max;  /* UTF-8 byte length bounds for strings, value bounds for ints */
    const char *oneof; /* "a|b|c": allowed string values */
} qun_field_t;
/* Parse the request body body[len] as the router does for every R_JSON route: an
 * empty body is an empty object; otherwise JSON with no duplicate keys whose top
 * level is an object, else QUN_BAD_JSON (detail in err).  *out is set whenever a
 * value was parsed, even on error, and is the caller's to json_decref. */
qun_rc qun_body_parse(const char *body, size_t len, json_t **out, qun_err_t *err);
/* Check body against a NULL-terminated field table: types, bounds, required fields,
 * no unknown members. */
qun_rc qun_fields_check(json_t *body, const qun_field_t *fields, qun_err_t *err);
/* Borrow a string member, or NULL. */
const char *qun_jstr(json_t *o, const char *key);

#endif
