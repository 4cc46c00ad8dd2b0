/* SPDX-License-Identifier: MIT */
/* GET /v1/events: server-sent events (docs/events.md).
 *
 * The core appends each event to the `events` table in the transaction of its change
 * (core/event.c).  After every commit that appended one, the writer's commit hook
 * wakes every HTTP loop; a loop with open streams then reads the new rows once
 * (one query per wake per loop, never per subscriber) and appends each frame to the
 * output of every stream whose user is in the audience.  The audience of a group event
 * is resolved in memory: each loop keeps, per connected user, the sorted ids of the
 * user's groups, loaded with one query when the user's first stream on the loop opens
 * and kept current by the membership events themselves (member.added, group.created,
 * member.removed, group.dissolved with a successor, group.purged).  So one message to a
 * 500-member group is one row written, at most one read per loop, and 500 buffered
 * socket writes.
 *
 * A stream belongs to the session that opened it (with a bearer token, or with an event
 * ticket, which stands for the session that asked for it) and lives no longer than
 * that session.  Revoking sessions appends an internal `session.revoked` row (no
 * audience; core/event.h) in the revoking transaction, so the same wake and the same
 * one read per loop that deliver messages also end, on every instance, the streams of
 * the sessions it names: the stream gets `session.ended` and its response ends, and
 * nothing after the revocation reaches it.  Expiry is a time, not a write: a loop with
 * streams compares their sessions' expires_at with the clock twice a second.
 * Losing a group (member.removed) needs nothing more: the user leaves the loop's map
 * of that group before any later event of it is fanned out.
 *
 * Every read of the table (new rows, a replay and its audience, a user's groups, a
 * successor, the opening session) is the core's (include/qun/event.h); this file only
 * delivers.
 *
 * Every structure here belongs to one loop and is touched only on its thread, except
 * the per-user stream counts and the "live" switch, guarded by g_mu.
 *
 * Invariants: (E1) a loop's last_id is the highest event id it has fanned out, or
 * stale when it has no stream (it then skips the reads and refreshes last_id from
 * MAX(id) when a stream opens); (E2) a stream is sent exactly the events of its
 * audience with id > its last_id, in id order, each once: a replay covers
 * (Last-Event-ID, loop last_id] in the opening request's snapshot and live delivery
 * covers the rest; (E3) a stream is freed exactly once: by close_cb when the client
 * goes (or at shutdown), or by drop() or finish(), which unhook close_cb first; (E4) a
 * stream opens only after its session was found live in the opening request's
 * snapshot, so a revocation it did not see commits after that snapshot, has an id
 * above the loop's last_id and is still to be read; and from the row that ends its
 * session on, a stream is sent nothing but the final session.ended.
 *
 * Several instances on one PostgreSQL database: events written by another qund wake
 * the loops through a listener thread (its own connection, LISTEN qun_events; every
 * event insert NOTIFYs at commit, core/event.c).  After the listener had to reconnect
 * it wakes the loops anyway, since notifications sent meanwhile were lost. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "http.h"
#include "qun/event.h"
#include "qun/matrix.h"
#include "worker.h"

#define STREAMS_PER_USER 8 /* open streams per user, across loops */
#define REPLAY_MAX 1000    /* events a resume replays; beyond: stream.resync */
#define OUT_MAX (1u << 20) /* bytes queued to a stream before it counts as too slow */
#define HEARTBEAT_S 15
#define WRITE_TIMEOUT_S 60 /* queued bytes not drained for this long: disconnect */
#define FETCH_BATCH 256
#define BUCKETS 256
#define EXPIRY_CHECK_MS 500 /* how often a loop with streams looks for expired sessions */

typedef struct user user_t;
typedef struct stream stream_t;
typedef struct loop loop_t;
typedef struct parked parked_t;

/* A user with at least one stream on a loop. */
struct user {
    int64_t uid;
    int64_t *groups; /* sorted group row ids */
    size_t ngroups, cap;
    int nstreams;
    user_t *next; /* hash chain */
};

struct stream {
    loop_t *loop;
    user_t *user;
    int64_t session_id; /* the session the stream belongs to (E4) */
    int64_t expires_at; /* that session's expiry */
    const char *ended;  /* why its session ended (a static string), or NULL while it lives */
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct evbuffer *pending; /* frames of the current wake, sent as one chunk */
    int64_t last_id;
    stream_t *prev, *next;
};

/* A long-poll (a Matrix /sync) parked until an event reaches its user (http.h). */
struct parked {
    loop_t *loop;
    user_t *user;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    int64_t last_id;    /* rows up to this one are already in its answer's snapshot */
    int64_t session_id; /* the session that asked: its revocation wakes it (to refuse) */
    bool woken;
    qun_park_fn fire;
    void *arg;
    void (*arg_free)(void *);
    parked_t *prev, *next;
};

struct loop {
    qun_worker_t *w;
    struct event *wake, *beat, *expiry, *typing;
    uint64_t typing_seen; /* typing changes up to this serial are delivered */
    stream_t *streams;
    parked_t *parked;
    user_t *users[BUCKETS];
    int64_t last_id;
    bool stale;
};

static loop_t *g_loops;
static int g_nloops;
static qun_writer_t *g_writer;

/* Open streams per user across loops (the per-user bound), and whether waking is allowed. */
typedef struct ucount {
    int64_t uid;
    int n;
    struct ucount *next;
} ucount_t;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ucount_t *g_counts[BUCKETS];
static bool g_live;

static _Atomic uint64_t m_streams, m_opened, m_fetched, m_delivered, m_slow, m_wakes, m_ended;
static _Atomic uint64_t m_parked, m_parked_total, m_park_woken;
static _Atomic uint64_t m_park_woken_ns; /* the loops' CPU time answering woken parked requests */

/* ---- per-user stream counts ---- */
static bool count_take(int64_t uid) {
    pthread_mutex_lock(&g_mu);
    ucount_t **pp = &g_counts[(uint64_t)uid % BUCKETS], *c = *pp;
    while (c && c->uid != uid)
        c = c->next;
    if (!c) {
        c = qun_xcalloc(1, sizeof *c);
        c->uid = uid;
        c->next = *pp;
        *pp = c;
    }
    bool ok = c->n < STREAMS_PER_USER;
    if (ok) c->n++;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

static void count_give(int64_t uid) {
    pthread_mutex_lock(&g_mu);
    ucount_t **pp = &g_counts[(uint64_t)uid % BUCKETS];
    while (*pp && (*pp)->uid != uid)
        pp = &(*pp)->next;
    if (*pp && --(*pp)->n == 0) {
        ucount_t *c = *pp;
        *pp = c->next;
        free(c);
    }
    pthread_mutex_unlock(&g_mu);
}

/* ---- the membership map of a loop ---- */
static user_t *user_find(loop_t *l, int64_t uid) {
    user_t *u = l->users[(uint64_t)uid % BUCKETS];
    while (u && u->uid != uid)
        u = u->next;
    return u;
}

static size_t group_pos(const user_t *u, int64_t gid) {
    size_t lo = 0, hi = u->ngroups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (u->groups[mid] < gid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool user_in(const user_t *u, int64_t gid) {
    size_t i = group_pos(u, gid);
    return i < u->ngroups && u->groups[i] == gid;
}

static void user_join(user_t *u, int64_t gid) {
    size_t i = group_pos(u, gid);
    if (i < u->ngroups && u->groups[i] == gid) return;
    if (u->ngroups == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 8;
        int64_t *g = realloc(u->groups, u->cap * sizeof *g);
        if (!g) abort();
        u->groups = g;
    }
    memmove(u->groups + i + 1, u->groups + i, (u->ngroups - i) * sizeof *u->groups);
    u->groups[i] = gid;
    u->ngroups++;
}

static void user_leave(user_t *u, int64_t gid) {
    size_t i = group_pos(u, gid);
    if (i == u->ngroups || u->groups[i] != gid) return;
    memmove(u->groups + i, u->groups + i + 1, (u->ngroups - i - 1) * sizeof *u->groups);
    u->ngroups--;
}

/* The user's entry on l, loading the user's groups (one query) when it is new. */
static qun_rc user_get(loop_t *l, qun_db_t *db, int64_t uid, user_t **out, qun_err_t *err) {
    user_t *u = user_find(l, uid);
    if (!u) {
        int64_t *ids;
        size_t n;
        qun_rc rc = qun_event_user_groups(db, uid, &ids, &n, err);
        if (rc != QUN_OK) return rc;
        u = qun_xcalloc(1, sizeof *u);
        u->uid = uid;
        u->groups = ids; /* ascending, as user_join keeps them */
        u->ngroups = u->cap = n;
        u->next = l->users[(uint64_t)uid % BUCKETS];
        l->users[(uint64_t)uid % BUCKETS] = u;
    }
    *out = u;
    return QUN_OK;
}

static void user_unref(loop_t *l, user_t *u) {
    if (--u->nstreams > 0) return;
    user_t **pp = &l->users[(uint64_t)u->uid % BUCKETS];
    while (*pp != u)
        pp = &(*pp)->next;
    *pp = u->next;
    free(u->groups);
    free(u);
}

/* ---- streams ---- */
/* Unlink and free s; the evhttp request and connection are the caller's business. */
static void stream_free(stream_t *s) {
    loop_t *l = s->loop;
    if (s->prev)
        s->prev->next = s->next;
    else
        l->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    if (!l->streams) {
        if (!l->parked) l->stale = true; /* (E1) */
        event_del(l->expiry);
    }
    count_give(s->user->uid);
    user_unref(l, s->user);
    evbuffer_free(s->pending);
    free(s);
    atomic_fetch_sub(&m_streams, 1);
}

/* The client went away (or the server is stopping).  When evhttp detached the request
 * from the dying connection, the request is ours to free; otherwise evhttp frees it
 * with the connection. */
static void close_cb(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    stream_t *s = arg;
    struct evhttp_request *req = s->req;
    bool detached = evhttp_request_get_connection(req) == NULL;
    stream_free(s);
    if (detached) evhttp_send_reply_end(req); /* frees a request without a connection */
}

/* Disconnect a stream from the server side (a consumer too slow to keep up). */
static void drop(stream_t *s) {
    struct evhttp_connection *evcon = s->evcon;
    evhttp_connection_set_closecb(evcon, NULL, NULL); /* (E3) */
    stream_free(s);
    evhttp_connection_free(evcon); /* frees the request too */
}

/* End the response of a stream whose session ended, once its last frames are queued:
 * the terminating chunk goes out, then the connection closes (E3). */
static void finish(stream_t *s) {
    struct evhttp_request *req = s->req;
    evhttp_connection_set_closecb(s->evcon, NULL, NULL);
    /* The status line went out long ago; this only tells evhttp to close, not keep
     * alive, once the end of the body is written. */
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    stream_free(s);
    atomic_fetch_add(&m_ended, 1);
    evhttp_send_reply_end(req);
}

/* A stream's session ended: queue session.ended and stop every other delivery (E4). */
static void end_stream(stream_t *s, const char *reason) {
    if (s->ended) return;
    s->ended = reason;
    evbuffer_add_printf(s->pending, "event: session.ended\ndata: {\"reason\":\"%s\"}\n\n", reason);
}

/* Send each stream's pending frames as one chunk, dropping streams that fell too far
 * behind and ending those whose session ended. */
static void flush(loop_t *l) {
    stream_t *next;
    for (stream_t *s = l->streams; s; s = next) {
        next = s->next;
        size_t n = evbuffer_get_length(s->pending);
        if (!n) continue;
        struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
        if (evbuffer_get_length(bufferevent_get_output(bev)) + n > OUT_MAX) {
            qun_log("warn", "events: dropping a stream of user %lld: %zu bytes not yet read by the client",
                    (long long)s->user->uid, evbuffer_get_length(bufferevent_get_output(bev)));
            atomic_fetch_add(&m_slow, 1);
            drop(s);
            continue;
        }
        evhttp_send_reply_chunk(s->req, s->pending); /* moves the bytes, leaving pending empty */
        if (s->ended) finish(s);
    }
}

/* ---- parked long-polls ---- */
static void park_free(parked_t *p) {
    loop_t *l = p->loop;
    if (p->prev)
        p->prev->next = p->next;
    else
        l->parked = p->next;
    if (p->next) p->next->prev = p->prev;
    if (!l->parked && !l->streams) l->stale = true; /* (E1) */
    user_unref(l, p->user);
    event_free(p->timer);
    if (p->arg_free) p->arg_free(p->arg);
    free(p);
    atomic_fetch_sub(&m_parked, 1);
}

/* The client went away (or the server is stopping): as close_cb for streams. */
static void park_close_cb(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    parked_t *p = arg;
    struct evhttp_request *req = p->req;
    bool detached = evhttp_request_get_connection(req) == NULL;
    park_free(p);
    if (detached) evhttp_send_reply_end(req); /* frees a request without a connection */
}

/* Let p answer; it is freed when it did. */
static void park_fire(parked_t *p, bool timed_out) {
    p->woken = false;
    p->last_id = p->loop->last_id > p->last_id ? p->loop->last_id : p->last_id;
    if (!p->fire(p->req, p->loop->w->db, p->arg, timed_out)) return;
    /* Answered (the bytes leave later, from the loop): the connection is evhttp's again. */
    evhttp_connection_set_closecb(p->evcon, NULL, NULL);
    bufferevent_setwatermark(evhttp_connection_get_bufferevent(p->evcon), EV_READ, 0, 0);
    park_free(p);
}

static void park_timeout_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    park_fire(arg, true);
}

/* After a wake's rows were fanned out: the parked requests they reach answer now, all
 * in one read transaction (begun after the rows were read, so it sees them): one
 * snapshot for the many answers one post wakes, not one each (qun_db_read_begin). */
static void wake_parked(loop_t *l) {
    parked_t *next;
    bool firing = false, reading = false;
    struct timespec t0, t1;
    for (parked_t *p = l->parked; p; p = next) {
        next = p->next;
        if (!p->woken) {
            p->last_id = l->last_id;
            continue;
        }
        atomic_fetch_add(&m_park_woken, 1);
        if (!firing) {
            firing = true;
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
            reading = qun_db_read_begin(l->w->db, &(qun_err_t){{0}, {0}}) == QUN_OK;
        }
        park_fire(p, false);
    }
    if (reading) qun_db_read_end(l->w->db);
    if (firing) {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        int64_t ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        atomic_fetch_add(&m_park_woken_ns, (uint64_t)(ns > 0 ? ns : 0));
    }
}

/* ---- typing (docs/matrix.md "Receipts, unread counts and typing") ----
 * Who is typing where lives in memory only, shared by every loop under g_ty_mu: it is
 * never stored and a restart forgets it.  Each change (a start, a stop, an expiry) gets
 * a serial and a log entry with its SSE frame; on a wake every loop queues the frames
 * after its typing_seen to the streams of the group's members and wakes their parked
 * syncs, which render m.typing for the groups changed since their token's serial. */
#define TYPING_MAX 4096 /* typists at once; more are not shown */
#define TYPING_LOG 512  /* recent changes kept for the loops and the syncs */
#define TYPING_CHECK_MS 500

typedef struct {
    int64_t group_id, uid, expires_ms;
    char gid[QUN_ID_MAX], openid[QUN_ID_MAX], name[128], local[QUN_MX_LOCAL_MAX];
} typist_t;
typedef struct {
    uint64_t serial;
    int64_t group_id;
    char *frame; /* "event: member.typing\ndata: {...}\n\n" */
} typing_change_t;

static pthread_mutex_t g_ty_mu = PTHREAD_MUTEX_INITIALIZER;
static typist_t g_typists[TYPING_MAX];
static int g_ntypists;
static typing_change_t g_ty_log[TYPING_LOG];
static uint64_t g_ty_serial;
static _Atomic uint64_t g_ty_serial_pub; /* g_ty_serial, for readers without the lock */
static _Atomic int64_t g_ty_next_expiry; /* the earliest expires_ms, 0: none */

static void wake_all(void);

/* Log a change of t (typing or not) under g_ty_mu. */
static void typing_log(const typist_t *t, bool typing) {
    json_t *p = json_pack("{s:s, s:s, s:s, s:b}", "group", t->gid, "user", t->openid, "display_name", t->name,
                          "typing", typing);
    char *data = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    char *frame = NULL;
    if (!data || asprintf(&frame, "event: member.typing\ndata: %s\n\n", data) < 0) abort();
    free(data);
    typing_change_t *c = &g_ty_log[++g_ty_serial % TYPING_LOG];
    free(c->frame);
    c->serial = g_ty_serial;
    c->group_id = t->group_id;
    c->frame = frame;
    atomic_store(&g_ty_serial_pub, g_ty_serial);
}

static void typing_next_expiry(void) {
    int64_t next = 0;
    for (int i = 0; i < g_ntypists; i++)
        if (!next || g_typists[i].expires_ms < next) next = g_typists[i].expires_ms;
    atomic_store(&g_ty_next_expiry, next);
}

void qun_typing_set(int64_t group_id, const char *gid, int64_t uid, const char *openid, const char *name,
                    const char *local, bool typing, int64_t timeout_ms) {
    bool changed = false;
    pthread_mutex_lock(&g_ty_mu);
    int i = 0;
    while (i < g_ntypists && !(g_typists[i].group_id == group_id && g_typists[i].uid == uid))
        i++;
    if (typing && i == g_ntypists && g_ntypists < TYPING_MAX) { /* starts */
        typist_t *t = &g_typists[g_ntypists++];
        memset(t, 0, sizeof *t);
        t->group_id = group_id;
        t->uid = uid;
        snprintf(t->gid, sizeof t->gid, "%s", gid);
        snprintf(t->openid, sizeof t->openid, "%s", openid);
        snprintf(t->name, sizeof t->name, "%s", name);
        snprintf(t->local, sizeof t->local, "%s", local);
        t->expires_ms = qun_now_ms() + timeout_ms;
        typing_log(t, true);
        changed = true;
    } else if (typing && i < g_ntypists) { /* goes on: only the expiry moves */
        g_typists[i].expires_ms = qun_now_ms() + timeout_ms;
    } else if (!typing && i < g_ntypists) { /* stops */
        typing_log(&g_typists[i], false);
        g_typists[i] = g_typists[--g_ntypists];
        changed = true;
    }
    typing_next_expiry();
    pthread_mutex_unlock(&g_ty_mu);
    if (changed) wake_all();
}

uint64_t qun_typing_serial(void) {
    return atomic_load(&g_ty_serial_pub);
}

json_t *qun_typing_users(int64_t group_id) {
    json_t *out = json_array();
    pthread_mutex_lock(&g_ty_mu);
    for (int i = 0; i < g_ntypists; i++)
        if (g_typists[i].group_id == group_id) {
            char id[QUN_MX_ID_MAX];
            qun_mx_user_id(g_typists[i].local, id, sizeof id);
            json_array_append_new(out, json_string(id));
        }
    pthread_mutex_unlock(&g_ty_mu);
    return out;
}

bool qun_typing_changed(int64_t group_id, uint64_t since) {
    bool yes = false;
    pthread_mutex_lock(&g_ty_mu);
    if (since < g_ty_serial && g_ty_serial - since >= TYPING_LOG) { /* older than the log: say so */
        yes = true;
    } else {
        for (uint64_t k = since + 1; k <= g_ty_serial && !yes; k++)
            yes = g_ty_log[k % TYPING_LOG].group_id == group_id;
    }
    pthread_mutex_unlock(&g_ty_mu);
    return yes;
}

/* Expiry is a time: the first loop's timer stops the typists whose time is up. */
static void typing_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    int64_t next = atomic_load(&g_ty_next_expiry), now = qun_now_ms();
    if (!next || next > now) return;
    bool changed = false;
    pthread_mutex_lock(&g_ty_mu);
    for (int i = 0; i < g_ntypists;)
        if (g_typists[i].expires_ms <= now) {
            typing_log(&g_typists[i], false);
            g_typists[i] = g_typists[--g_ntypists];
            changed = true;
        } else {
            i++;
        }
    typing_next_expiry();
    pthread_mutex_unlock(&g_ty_mu);
    if (changed) wake_all();
}

/* The typing changes after the loop's typing_seen: frames to the streams of the group's
 * members, and a wake for their parked syncs. */
static void deliver_typing(loop_t *l) {
    pthread_mutex_lock(&g_ty_mu);
    uint64_t from = l->typing_seen + 1;
    if (g_ty_serial >= TYPING_LOG && from <= g_ty_serial - TYPING_LOG) from = g_ty_serial - TYPING_LOG + 1;
    for (uint64_t k = from; k <= g_ty_serial; k++) {
        const typing_change_t *c = &g_ty_log[k % TYPING_LOG];
        for (stream_t *st = l->streams; st; st = st->next)
            if (!st->ended && user_in(st->user, c->group_id))
                evbuffer_add(st->pending, c->frame, strlen(c->frame));
        for (parked_t *p = l->parked; p; p = p->next)
            if (user_in(p->user, c->group_id)) p->woken = true;
    }
    l->typing_seen = g_ty_serial;
    pthread_mutex_unlock(&g_ty_mu);
}

/* ---- fan-out ---- */
typedef qun_event_row_t row_t;

/* Dissolve and rebuild: the successor has the members of the dissolved group. */
static void follow_successor(loop_t *l, const row_t *e) {
    int64_t sid;
    qun_err_t err;
    if (qun_event_successor(l->w->db, e->payload, &sid, &err) != QUN_OK || !sid) return;
    for (int b = 0; b < BUCKETS; b++)
        for (user_t *u = l->users[b]; u; u = u->next)
            if (user_in(u, e->group_id)) user_join(u, sid);
}

/* session.revoked: end the streams of the sessions it names, wherever they were opened. */
static void revoked(loop_t *l, const row_t *e) {
    json_t *p = json_loads(e->payload, 0, NULL);
    json_t *ids = json_object_get(p, "sessions");
    const char *reason = json_string_value(json_object_get(p, "reason"));
    reason = reason && strcmp(reason, "password_changed") == 0 ? "password_changed" : "revoked";
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        for (stream_t *s = l->streams; s; s = s->next)
            if (s->session_id == json_integer_value(v)) end_stream(s, reason);
        for (parked_t *k = l->parked; k; k = k->next)
            if (k->session_id == json_integer_value(v)) k->woken = true;
    }
    json_decref(p);
}

static void fan_out(loop_t *l, const row_t *e) {
    qun_event_effect_t effect = qun_event_effect(e);
    if (!e->group_id && !e->user_id) { /* internal rows reach no client */
        if (effect == QUN_EVENT_ENDS_SESSIONS) revoked(l, e);
        return;
    }
    user_t *target = e->user_id ? user_find(l, e->user_id) : NULL;
    if (target && effect == QUN_EVENT_JOINS) user_join(target, e->group_id);
    char *frame;
    int n = asprintf(&frame, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)e->id, e->topic, e->payload);
    if (n < 0) abort();
    for (stream_t *s = l->streams; s; s = s->next) {
        if (e->id <= s->last_id || s->ended) continue; /* (E2), (E4) */
        if (qun_event_reaches(e, s->user->uid, e->group_id && user_in(s->user, e->group_id))) {
            evbuffer_add(s->pending, frame, (size_t)n);
            s->last_id = e->id;
            atomic_fetch_add(&m_delivered, 1);
        }
    }
    free(frame);
    for (parked_t *p = l->parked; p; p = p->next)
        if (e->id > p->last_id &&
            qun_event_reaches(e, p->user->uid, e->group_id && user_in(p->user, e->group_id)))
            p->woken = true;
    if (target && effect == QUN_EVENT_LEAVES) user_leave(target, e->group_id);
    if (effect == QUN_EVENT_MOVES) follow_successor(l, e);
    if (effect == QUN_EVENT_ENDS)
        for (int b = 0; b < BUCKETS; b++)
            for (user_t *u = l->users[b]; u; u = u->next)
                user_leave(u, e->group_id);
}

/* Read the events after the loop's last_id, in batches, and fan each out. */
static void deliver_new(loop_t *l) {
    row_t rows[FETCH_BATCH];
    for (;;) {
        int n = 0;
        qun_err_t err = {{0}, {0}};
        qun_rc rc = qun_event_fetch(l->w->db, l->last_id, rows, FETCH_BATCH, &n, &err);
        if (rc != QUN_OK) /* kept rows go out; the rest waits for the next wake */
            qun_log("warn", "events: reading new events failed: %s", err.msg);
        atomic_fetch_add(&m_fetched, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            fan_out(l, &rows[i]);
            l->last_id = rows[i].id;
        }
        qun_event_rows_free(rows, n);
        if (n < FETCH_BATCH || rc != QUN_OK) break;
    }
    flush(l);
    wake_parked(l);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    loop_t *l = arg;
    if (!l->streams && !l->parked) { /* stale (E1): nothing to read for */
        l->typing_seen = qun_typing_serial();
        return;
    }
    atomic_fetch_add(&m_wakes, 1);
    deliver_typing(l);
    deliver_new(l);
}

/* Expiry is a time, not a write, so no row announces it: compare in memory. */
static void expiry_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    loop_t *l = arg;
    int64_t now = qun_now();
    bool any = false;
    for (stream_t *s = l->streams; s; s = s->next)
        if (s->expires_at <= now && !s->ended) {
            end_stream(s, "expired");
            any = true;
        }
    if (any) flush(l);
}

static void beat_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    loop_t *l = arg;
    for (stream_t *s = l->streams; s; s = s->next)
        evbuffer_add(s->pending, ":\n\n", 3);
    flush(l);
}

static void wake_all(void) {
    pthread_mutex_lock(&g_mu);
    if (g_live)
        for (int i = 0; i < g_nloops; i++)
            event_active(g_loops[i].wake, EV_READ, 0);
    pthread_mutex_unlock(&g_mu);
}

/* The writer's commit hook (writer thread): wake every loop when events were appended. */
static void on_commit(void *arg) {
    (void)arg;
    if (qun_event_take_pending()) wake_all();
}

/* ---- other instances' events (PostgreSQL) ---- */
static pthread_t g_listener;
static atomic_bool g_listening, g_listen_stop;
static int g_listen_pipe[2] = {-1, -1}; /* a byte on it stops the listener's wait at once */

static void *listener_main(void *arg) {
    qun_db_t *db = arg;
    qun_err_t err = {{0}, {0}};
    bool warned = false;
    if (qun_db_listen(db, QUN_EVENTS_CHANNEL, &err) != QUN_OK)
        qun_log("warn", "events: LISTEN failed (will retry): %s", err.msg);
    while (!atomic_load(&g_listen_stop)) {
        bool woken;
        qun_rc rc = qun_db_wait_notify(db, 250, g_listen_pipe[0], &woken, &err);
        if (rc != QUN_OK && !warned) qun_log("warn", "events: listener: %s", err.msg);
        warned = rc != QUN_OK;
        /* Also when the wait timed out: a transaction that rolled back, or whose qund
         * died, held the event frontier without a NOTIFY at its end, and the rows
         * committed above it wait for a look (store.h, qun_db_event_frontier). */
        wake_all();
    }
    qun_db_close(db);
    return NULL;
}

static void listen_pipe_close(void) {
    for (int i = 0; i < 2; i++) {
        if (g_listen_pipe[i] >= 0) close(g_listen_pipe[i]);
        g_listen_pipe[i] = -1;
    }
}

static void listener_start(void) {
    const char *path = qun_server_cfg.db_path;
    if (!qun_store_listens(path)) return; /* one process owns the database: nobody else writes */
    qun_db_t *db;
    qun_err_t err = {{0}, {0}};
    if (qun_db_open(path, true, false, &db, &err) != QUN_OK) {
        qun_log("warn", "events: no listener, other instances' events arrive late: %s", err.msg);
        return;
    }
    atomic_store(&g_listen_stop, false);
    if (pipe2(g_listen_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        g_listen_pipe[0] = g_listen_pipe[1] = -1; /* then the listener stops within 250 ms */
    }
    if (qun_thread_start(&g_listener, "qun-listen", listener_main, db) != 0) {
        qun_db_close(db);
        listen_pipe_close();
        return;
    }
    atomic_store(&g_listening, true);
}

static void listener_stop(void) {
    if (!atomic_exchange(&g_listening, false)) return;
    atomic_store(&g_listen_stop, true);
    if (g_listen_pipe[1] >= 0) (void)!write(g_listen_pipe[1], "", 1);
    pthread_join(g_listener, NULL);
    listen_pipe_close();
}

/* ---- opening a stream ---- */
static bool parse_id(const char *s, int64_t *v) {
    if (!s || !*s || strlen(s) > 18) return false;
    int64_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        x = x * 10 + (*s - '0');
    }
    *v = x;
    return true;
}

static void resync(struct evbuffer *out, int64_t id, const char *reason) {
    evbuffer_add_printf(out, "id: %lld\nevent: stream.resync\ndata: {\"reason\":\"%s\"}\n\n", (long long)id,
                        reason);
}

/* Replay the events of (after, upto] the user may see, oldest first, into out; or a
 * stream.resync when they cannot all be replayed (too many, or partly past retention). */
static qun_rc replay(qun_db_t *db, int64_t uid, int64_t after, int64_t upto, struct evbuffer *out,
                     qun_err_t *err) {
    qun_event_row_t *rows;
    int n;
    qun_event_replay_t how;
    qun_rc rc = qun_event_replay(db, uid, after, upto, REPLAY_MAX, &rows, &n, &how, err);
    if (rc != QUN_OK) return rc;
    if (how != QUN_REPLAY_COMPLETE) resync(out, upto, how == QUN_REPLAY_EXPIRED ? "expired" : "too_many");
    for (int i = 0; i < n; i++)
        evbuffer_add_printf(out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)rows[i].id, rows[i].topic,
                            rows[i].payload);
    qun_event_rows_free(rows, n);
    free(rows);
    return QUN_OK;
}

/* The stream was opened with an event ticket (the router takes the ticket only when no
 * Authorization header came). */
static bool by_ticket(qun_req_t *r) {
    return qun_query(r, "ticket") &&
           !evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Authorization");
}

/* (E4): the session is live in this snapshot (after a ticket, the snapshot is newer than
 * the writer's check, and a revocation may have been read by the loop in between);
 * *expires_at: when it expires. */
static qun_rc session_live(qun_req_t *r, int64_t *expires_at) {
    qun_rc rc = qun_event_session_live(r->db, r->actor.session_id, expires_at, &r->err);
    if (rc == QUN_TOKEN_INVALID && by_ticket(r))
        return qun_fail(&r->err, QUN_TICKET_INVALID, "the session that asked for the ticket has ended");
    return rc;
}

qun_rc h_events(qun_req_t *r) {
    loop_t *l = &g_loops[r->w->index];
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);
    const char *h = evhttp_find_header(in, "Last-Event-ID");
    const char *field = "Last-Event-ID";
    if (!h) h = qun_query(r, field = "last_event_id");
    int64_t cursor = -1;
    if (h && !parse_id(h, &cursor))
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, field,
                              "%s must be an event id (the id: of an event)", field);
    if (evhttp_request_get_command(r->ev) == EVHTTP_REQ_HEAD) { /* headers only; nothing to stream */
        snprintf(r->content_type, sizeof r->content_type, "text/event-stream");
        r->status = 200;
        return QUN_OK;
    }
    if (!count_take(r->actor.uid))
        return qun_fail(&r->err, QUN_UNAVAILABLE, "at most %d event streams per user may be open; close one",
                        STREAMS_PER_USER);
    /* Everything below runs in the request's read snapshot, on the loop's thread (E2). */
    int64_t max, expires = 0;
    qun_rc rc = qun_event_last_id(r->db, &max, &r->err);
    if (rc == QUN_OK) rc = session_live(r, &expires);
    user_t *u = NULL;
    if (rc == QUN_OK) rc = user_get(l, r->db, r->actor.uid, &u, &r->err);
    if (rc != QUN_OK) {
        count_give(r->actor.uid);
        return rc;
    }
    u->nstreams++;
    if (l->stale) { /* (E1) */
        l->last_id = max;
        l->stale = false;
    }
    struct evbuffer *out = evbuffer_new();
    /* A ticket is spent by this request, so EventSource's own reconnect (the same URL)
     * can only be refused; the console closes the source on error and reconnects with
     * a new ticket.  A day's retry keeps the browser from trying first when the page is
     * too busy to run its error handler within the usual 3 s. */
    evbuffer_add_printf(out, "retry: %d\n: stream open\n\n", by_ticket(r) ? 86400000 : 3000);
    if (cursor > max) cursor = max; /* an id this server never gave: start from now */
    rc = cursor >= 0 ? replay(r->db, r->actor.uid, cursor, l->last_id, out, &r->err) : QUN_OK;
    if (rc != QUN_OK) {
        evbuffer_free(out);
        user_unref(l, u);
        count_give(r->actor.uid);
        return rc;
    }
    stream_t *s = qun_xcalloc(1, sizeof *s);
    s->loop = l;
    s->user = u;
    s->req = r->ev;
    s->evcon = evhttp_request_get_connection(r->ev);
    s->pending = evbuffer_new();
    s->last_id = cursor > l->last_id ? cursor : l->last_id;
    s->session_id = r->actor.session_id;
    s->expires_at = expires;
    if (!l->streams) {
        struct timeval every = {0, EXPIRY_CHECK_MS * 1000};
        event_add(l->expiry, &every);
    }
    s->next = l->streams;
    if (l->streams) l->streams->prev = s;
    l->streams = s;
    atomic_fetch_add(&m_streams, 1);
    atomic_fetch_add(&m_opened, 1);

    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(oh, "Content-Type", "text/event-stream");
    evhttp_add_header(oh, "Cache-Control", "no-store");
    evhttp_add_header(oh, "X-Accel-Buffering", "no");
    evhttp_connection_set_closecb(s->evcon, close_cb, s);
    evhttp_send_reply_start(r->ev, 200, "OK");
    /* evhttp stops reading once a request is in; read again (into a small bounded
     * buffer nobody consumes) only to learn at once when the client closes, and keep
     * no read timeout on a stream that is idle by nature.  A write timeout stays:
     * output nobody drains for WRITE_TIMEOUT_S seconds ends the connection. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    struct timeval wtv = {WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(bev, NULL, &wtv);
    bufferevent_setwatermark(bev, EV_READ, 0, 4096);
    bufferevent_enable(bev, EV_READ);
    evhttp_send_reply_chunk(r->ev, out);
    evbuffer_free(out);
    r->streaming = true;
    r->status = 200;
    return QUN_OK;
}

qun_rc qun_events_park(qun_req_t *r, int64_t position, int timeout_ms, qun_park_fn fire, void *arg,
                       void (*arg_free)(void *)) {
    loop_t *l = &g_loops[r->w->index];
    user_t *u = NULL;
    /* In the request's snapshot, on the loop's thread: every row after position commits
     * later and wakes this loop later, so nothing between the answer's snapshot and the
     * registration is missed (E2's argument, for a waiter). */
    qun_rc rc = user_get(l, r->db, r->actor.uid, &u, &r->err);
    if (rc != QUN_OK) return rc;
    u->nstreams++;
    if (l->stale) { /* (E1) */
        l->last_id = position;
        l->stale = false;
    }
    parked_t *p = qun_xcalloc(1, sizeof *p);
    p->loop = l;
    p->user = u;
    p->req = r->ev;
    p->evcon = evhttp_request_get_connection(r->ev);
    p->last_id = position;
    p->session_id = r->actor.session_id;
    p->fire = fire;
    p->arg = arg;
    p->arg_free = arg_free;
    p->timer = evtimer_new(l->w->base, park_timeout_cb, p);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
    p->next = l->parked;
    if (l->parked) l->parked->prev = p;
    l->parked = p;
    atomic_fetch_add(&m_parked, 1);
    atomic_fetch_add(&m_parked_total, 1);
    evhttp_connection_set_closecb(p->evcon, park_close_cb, p);
    /* As for streams: read again (a small bounded buffer) only to learn at once when
     * the client closes. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(p->evcon);
    bufferevent_setwatermark(bev, EV_READ, 0, 4096);
    bufferevent_enable(bev, EV_READ);
    r->streaming = true;
    r->status = 200;
    return QUN_OK;
}

/* ---- life cycle and metrics ---- */
void qun_events_start(qun_writer_t *writer, qun_worker_t *workers, int n) {
    g_loops = qun_xcalloc((size_t)n, sizeof *g_loops);
    g_nloops = n;
    g_writer = writer;
    struct timeval beat = {HEARTBEAT_S, 0};
    for (int i = 0; i < n; i++) {
        loop_t *l = &g_loops[i];
        l->w = &workers[i];
        l->stale = true;
        l->wake = event_new(l->w->base, -1, EV_PERSIST | EV_READ, wake_cb, l);
        l->beat = event_new(l->w->base, -1, EV_PERSIST, beat_cb, l);
        l->expiry = event_new(l->w->base, -1, EV_PERSIST, expiry_cb, l);
        event_add(l->beat, &beat);
        if (i == 0) {
            struct timeval every = {0, TYPING_CHECK_MS * 1000};
            l->typing = event_new(l->w->base, -1, EV_PERSIST, typing_cb, l);
            event_add(l->typing, &every);
        }
    }
    pthread_mutex_lock(&g_mu);
    g_live = true;
    pthread_mutex_unlock(&g_mu);
    qun_writer_on_commit(writer, on_commit, NULL);
    listener_start();
}

void qun_events_quiesce(void) {
    listener_stop();
    qun_writer_on_commit(g_writer, NULL, NULL);
    pthread_mutex_lock(&g_mu);
    g_live = false;
    pthread_mutex_unlock(&g_mu);
}

void qun_events_loop_free(int index) {
    loop_t *l = &g_loops[index];
    while (l->streams)
        drop(l->streams); /* normally none left: evhttp_free closed them */
    while (l->parked) {
        parked_t *p = l->parked;
        struct evhttp_connection *evcon = p->evcon;
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        park_free(p);
        evhttp_connection_free(evcon);
    }
    event_free(l->wake);
    event_free(l->beat);
    event_free(l->expiry);
    if (l->typing) event_free(l->typing);
}

void qun_events_stop(void) {
    pthread_mutex_lock(&g_ty_mu);
    for (int i = 0; i < TYPING_LOG; i++) {
        free(g_ty_log[i].frame);
        g_ty_log[i].frame = NULL;
    }
    pthread_mutex_unlock(&g_ty_mu);
    free(g_loops);
    g_loops = NULL;
    g_nloops = 0;
}

void qun_events_metrics(FILE *f) {
    fprintf(
        f,
        "# HELP qun_events_emitted_total Events appended to the events table.\n"
        "# TYPE qun_events_emitted_total counter\nqun_events_emitted_total %llu\n"
        "# HELP qun_events_fetched_total Event rows read by the HTTP loops (once per loop with streams).\n"
        "# TYPE qun_events_fetched_total counter\nqun_events_fetched_total %llu\n"
        "# HELP qun_events_delivered_total Event frames queued to subscribers' streams.\n"
        "# TYPE qun_events_delivered_total counter\nqun_events_delivered_total %llu\n"
        "# HELP qun_events_wakes_total Loop wake-ups that read new events.\n"
        "# TYPE qun_events_wakes_total counter\nqun_events_wakes_total %llu\n"
        "# HELP qun_events_streams Open event streams.\n"
        "# TYPE qun_events_streams gauge\nqun_events_streams %llu\n"
        "# HELP qun_events_streams_opened_total Event streams opened.\n"
        "# TYPE qun_events_streams_opened_total counter\nqun_events_streams_opened_total %llu\n"
        "# HELP qun_events_slow_dropped_total Streams disconnected for not reading fast enough.\n"
        "# TYPE qun_events_slow_dropped_total counter\nqun_events_slow_dropped_total %llu\n"
        "# HELP qun_events_session_ended_total Streams ended because their session was revoked or expired.\n"
        "# TYPE qun_events_session_ended_total counter\nqun_events_session_ended_total %llu\n"
        "# HELP qun_mx_sync_parked Matrix /sync long-polls waiting for an event.\n"
        "# TYPE qun_mx_sync_parked gauge\nqun_mx_sync_parked %llu\n"
        "# HELP qun_mx_sync_parked_total Matrix /sync long-polls parked.\n"
        "# TYPE qun_mx_sync_parked_total counter\nqun_mx_sync_parked_total %llu\n"
        "# HELP qun_mx_sync_woken_total Parked /sync long-polls woken by an event reaching their user.\n"
        "# TYPE qun_mx_sync_woken_total counter\nqun_mx_sync_woken_total %llu\n"
        "# HELP qun_mx_sync_woken_cpu_seconds_total CPU time of the loops answering woken /sync long-polls.\n"
        "# TYPE qun_mx_sync_woken_cpu_seconds_total counter\nqun_mx_sync_woken_cpu_seconds_total %.6f\n",
        (unsigned long long)qun_event_emitted(), (unsigned long long)atomic_load(&m_fetched),
        (unsigned long long)atomic_load(&m_delivered), (unsigned long long)atomic_load(&m_wakes),
        (unsigned long long)atomic_load(&m_streams), (unsigned long long)atomic_load(&m_opened),
        (unsigned long long)atomic_load(&m_slow), (unsigned long long)atomic_load(&m_ended),
        (unsigned long long)atomic_load(&m_parked), (unsigned long long)atomic_load(&m_parked_total),
        (unsigned long long)atomic_load(&m_park_woken), (double)atomic_load(&m_park_woken_ns) / 1e9);
}
