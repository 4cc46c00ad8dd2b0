/* SPDX-License-Identifier: MIT */
/* GET /_matrix/client/v3/sync (docs/matrix.md "Reading: sync and rooms"; MATRIX.md 1.3,
 * 2.2, 2.5).  Positions are events row ids: next_batch is "s<id>" for the last row of
 * the answer's snapshot.  An initial sync renders every joined group from its rows
 * (state, the last messages); an incremental one renders the rows after `since` that
 * concern the user, grouped by room.  With nothing to say and a timeout, the request is
 * parked on its loop (events.c) and answered when a row reaching the user is fanned
 * out, or empty at the timeout. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "http.h"
#include "mx_render.h"
#include "qun/json.h"
#include "qun/matrix.h"
#include "qun/read.h"

#define TIMELINE_DEFAULT 10
#define TIMELINE_MAX 100
#define PARK_MAX_MS 30000 /* below evhttp's 60 s connection timeout (server.c) */
#define DELTA_MAX 1000    /* messages one room's incremental timeline reads at most */
#define WINDOW_KEEP 16    /* the widest window of messages kept for a snapshot's next answer */

/* What a sync answers for: kept across a park. */
typedef struct {
    int64_t uid;
    int64_t session_id;
    char local[QUN_MX_LOCAL_MAX];
    int64_t since;   /* -1: initial */
    uint64_t typing; /* typing changes up to this serial are told (the token's _<T>) */
    bool full_state;
    bool force_limited; /* a since we cannot serve: initial, limited */
    int limit;
} sync_args_t;

typedef struct {
    mx_ctx_t c;
    const sync_args_t *a;
    json_t *join, *leave, *invite;
    /* Receipts to show, by group row id ("<id>"): {"m.read": {"@u:srv": [seq, ts]},
     * "m.read.private": {...}}: every visible one on a full sync, the changed ones on
     * an incremental one. */
    json_t *receipts;
    /* Unread counts by group row id, read for every room at once on an initial sync;
     * a room not in it reads its own. */
    json_t *unread;
    uint64_t typing_now; /* the typing serial this answer renders up to */
    json_t *typing;      /* m.typing user ids by group row id, for the rooms to tell */
} sync_t;

static bool parse_pos(const char *s, char prefix, int64_t *v) {
    if (!s || s[0] != prefix || !s[1] || strlen(s) > 19) return false;
    int64_t x = 0;
    for (const char *p = s + 1; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        x = x * 10 + (*p - '0');
    }
    *v = x;
    return true;
}

static json_t *summary(const qun_mx_room_t *room, json_t *members, const char *me) {
    json_t *heroes = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *local = json_string_value(json_object_get(m, "local"));
        if (strcmp(local, me) == 0 || json_array_size(heroes) >= 5) continue;
        char uid[QUN_MX_ID_MAX];
        qun_mx_user_id(local, uid, sizeof uid);
        json_array_append_new(heroes, json_string(uid));
    }
    size_t joined = mx_locked(room) ? 1 : json_array_size(members);
    return json_pack("{s:o, s:I, s:i}", "m.heroes", heroes, "m.joined_member_count", (json_int_t)joined,
                     "m.invited_member_count", 0);
}

static json_t *tok(char prefix, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%c%lld", prefix, (long long)v);
    return json_string(b);
}

/* next_batch: s<N>, with _<T> (the typing serial) once anyone has typed. */
static json_t *batch(int64_t pos, uint64_t typing) {
    char b[64];
    if (typing)
        snprintf(b, sizeof b, "s%lld_%llu", (long long)pos, (unsigned long long)typing);
    else
        snprintf(b, sizeof b, "s%lld", (long long)pos);
    return json_string(b);
}

static void key_of(int64_t group_id, char key[24]) {
    snprintf(key, 24, "%lld", (long long)group_id);
}

/* Note a receipt of user local in group_id at message seq: a later one of the same
 * user and type replaces it. */
static void receipt_note(sync_t *s, int64_t group_id, const char *local, bool private_, int64_t seq,
                         int64_t ts) {
    char key[24], uid[QUN_MX_ID_MAX];
    key_of(group_id, key);
    qun_mx_user_id(local, uid, sizeof uid);
    json_t *g = json_object_get(s->receipts, key);
    if (!g) json_object_set_new(s->receipts, key, g = json_object());
    const char *type = private_ ? "m.read.private" : "m.read";
    json_t *t = json_object_get(g, type);
    if (!t) json_object_set_new(g, type, t = json_object());
    json_object_set_new(t, uid, json_pack("[I, I]", (json_int_t)seq, (json_int_t)ts));
}

/* The room's ephemeral events: m.receipt {"$event": {type: {"@u": {ts}}}} when any
 * receipt is to be shown (receipts on seq 0, before any message, have no event). */
static json_t *ephemeral(sync_t *s, const qun_mx_room_t *room) {
    char key[24];
    key_of(room->id, key);
    json_t *events = json_array(), *content = json_object(), *g = json_object_get(s->receipts, key);
    const char *type, *uid;
    json_t *t, *v;
    json_object_foreach(g, type, t) {
        json_object_foreach(t, uid, v) {
            int64_t seq = json_integer_value(json_array_get(v, 0));
            if (seq <= 0) continue;
            char eid[QUN_ID_MAX + 32];
            snprintf(eid, sizeof eid, "$%s.m%lld", room->gid, (long long)seq);
            json_t *e = json_object_get(content, eid);
            if (!e) json_object_set_new(content, eid, e = json_object());
            json_t *byt = json_object_get(e, type);
            if (!byt) json_object_set_new(e, type, byt = json_object());
            json_object_set_new(byt, uid, json_pack("{s:O}", "ts", json_array_get(v, 1)));
        }
    }
    if (json_object_size(content))
        json_array_append_new(events, json_pack("{s:s, s:o}", "type", "m.receipt", "content", content));
    else
        json_decref(content);
    json_t *typing = json_object_get(s->typing, key);
    if (typing)
        json_array_append_new(events,
                              json_pack("{s:s, s:{s:O}}", "type", "m.typing", "content", "user_ids", typing));
    return events;
}

/* The room's unread count for the user: from the initial sync's grouped read, or its own. */
static qun_rc unread_of(sync_t *s, const qun_mx_room_t *room, int64_t *unread) {
    char key[24];
    key_of(room->id, key);
    json_t *v = json_object_get(s->unread, key);
    *unread = 0;
    if (v) {
        *unread = json_integer_value(v);
        return QUN_OK;
    }
    qun_read_pos_t *pos = NULL;
    size_t n = 0;
    qun_err_t err;
    qun_rc rc = qun_read_positions(s->c.db, s->a->uid, room->id, &pos, &n, &err);
    if (rc == QUN_OK && n) *unread = pos[0].unread;
    free(pos);
    return rc;
}

/* A joined room's common members around its timeline and state. */
static qun_rc join_entry(sync_t *s, const qun_mx_room_t *room, json_t *members, json_t *timeline,
                         bool limited, int64_t prev_seq, json_t *state) {
    json_t *data;
    qun_err_t err;
    int64_t unread = 0;
    qun_rc rc = unread_of(s, room, &unread);
    if (rc == QUN_OK) rc = qun_mx_data_list(s->c.db, s->a->uid, room->id, &data, &err);
    if (rc != QUN_OK) {
        json_decref(timeline);
        json_decref(state);
        return rc;
    }
    json_t *tl = json_pack("{s:o, s:b}", "events", timeline, "limited", limited);
    if (prev_seq >= 0) json_object_set_new(tl, "prev_batch", tok('t', prev_seq));
    char rid[QUN_MX_ID_MAX];
    qun_mx_room_id(room->gid, rid, sizeof rid);
    json_t *entry =
        json_pack("{s:o, s:{s:o}, s:{s:o}, s:{s:o}, s:{s:I, s:i}}", "timeline", tl, "state", "events", state,
                  "ephemeral", "events", ephemeral(s, room), "account_data", "events", data,
                  "unread_notifications", "notification_count", (json_int_t)unread, "highlight_count", 0);
    if (entry && members) json_object_set_new(entry, "summary", summary(room, members, s->a->local));
    json_object_set_new(s->join, rid, entry);
    return QUN_OK;
}

/* A joined room with its full state: the last `limit` messages, or, when they reach the
 * room's start, its whole history with the state events first (a timeline is never
 * empty: hydrogen drops rooms whose initial timeline is). */
static qun_rc room_full(sync_t *s, const qun_mx_room_t *room, json_t *tail) {
    json_t *members = NULL, *diss = NULL;
    qun_mx_msg_t *msgs = NULL;
    int n = 0;
    qun_err_t err;
    qun_rc rc = qun_mx_view_members(s->c.db, room->id, &members, &err);
    if (rc == QUN_OK) rc = qun_mx_view_dissolution(s->c.db, room->id, &diss, &err);
    if (rc == QUN_OK) rc = qun_mx_view_messages(s->c.db, room->id, 0, -1, s->a->limit, true, &msgs, &n, &err);
    if (rc != QUN_OK) {
        json_decref(members);
        json_decref(diss);
        return rc;
    }
    json_t *state = mx_state(&s->c, room, members, diss), *timeline = json_array();
    bool from_start = n == 0 || msgs[0].seq <= 1;
    if (from_start) {
        json_array_extend(timeline, state);
        json_array_clear(state);
    }
    for (int i = 0; i < n; i++)
        json_array_append_new(timeline, mx_message(&s->c, room, &msgs[i]));
    if (tail) json_array_extend(timeline, tail);
    rc = join_entry(s, room, members, timeline, !from_start || s->a->force_limited,
                    from_start ? -1 : msgs[0].seq - 1, state);
    qun_mx_msgs_free(msgs, n);
    json_decref(members);
    json_decref(diss);
    return rc;
}

/* Whether row e ends user me's membership of room (its leave, kick or dissolution). */
static bool own_leave(const sync_t *s, const qun_mx_room_t *room, const qun_event_row_t *e) {
    bool owner = room->owner_id == s->a->uid;
    if (strcmp(e->topic, "member.removed") == 0 || strcmp(e->topic, "invitation.declined") == 0 ||
        strcmp(e->topic, "invitation.revoked") == 0)
        return e->user_id == s->a->uid;
    if (strcmp(e->topic, "group.dissolved") == 0) return !owner;
    if (strcmp(e->topic, "group.purged") == 0) return owner;
    return false;
}

/* An integer of an event's payload (0 when none), read without parsing the rest: a
 * message's seq comes before its text. */
static int64_t payload_int(const char *payload, const char *key) {
    int64_t v;
    qun_json_top_int(payload, key, &v);
    return v;
}

/* ---- the messages of one snapshot, shared by the answers of one wake ----
 * A post wakes every member's parked sync, and each answer reads and renders the same
 * new messages.  In one read snapshot (qun_db_read_snapshot: a wake answers all of its
 * syncs in one) they read alike, so the loop's connection keeps the last window of
 * messages read and their renderings for the next answer in the same snapshot.  A
 * rendering is shared only without a transaction id: the sending session's own answer
 * renders its message itself. */
typedef struct {
    uint64_t snap; /* the snapshot read in; 0: not kept */
    int64_t room_id, lo, hi;
    qun_mx_msg_t *msgs;
    int n;
    json_t **ev; /* the renderings without a transaction id, NULL until made */
} window_t;

static void window_clear(window_t *w) {
    for (int k = 0; w->ev && k < w->n; k++)
        json_decref(w->ev[k]);
    free(w->ev);
    qun_mx_msgs_free(w->msgs, w->n);
    *w = (window_t){0};
}

static void window_free(void *w) {
    window_clear(w);
    free(w);
}

/* The messages lo <= seq <= hi of room (DELTA_MAX of them at most): the kept window when
 * this snapshot read it already, else read now, into the kept one when there is a
 * snapshot and the window is narrow (what a post wakes), and else into *tmp (the caller
 * clears it): a loop keeps WINDOW_KEEP messages at most after its answers. */
static qun_rc window_get(sync_t *s, const qun_mx_room_t *room, int64_t lo, int64_t hi, window_t *tmp,
                         window_t **out, qun_err_t *err) {
    qun_db_t *db = s->c.db;
    uint64_t snap = qun_db_readonly(db) && hi - lo < WINDOW_KEEP ? qun_db_read_snapshot(db) : 0;
    window_t *w = snap ? qun_db_aux_zeroed(db, QUN_AUX_WINDOW, sizeof(window_t), window_free) : NULL;
    if (w && w->snap == snap && w->room_id == room->id && w->lo == lo && w->hi == hi) {
        *out = w;
        return QUN_OK;
    }
    if (!w) w = tmp;
    window_clear(w);
    int64_t want = hi - lo + 1;
    qun_rc rc = qun_mx_view_messages(db, room->id, lo - 1, hi, (int)(want > DELTA_MAX ? DELTA_MAX : want),
                                     true, &w->msgs, &w->n, err);
    if (rc == QUN_OK && w->n && !(w->ev = calloc((size_t)w->n, sizeof *w->ev)))
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
    if (rc != QUN_OK) {
        window_clear(w);
        return rc;
    }
    w->snap = snap;
    w->room_id = room->id;
    w->lo = lo;
    w->hi = hi;
    *out = w;
    return QUN_OK;
}

/* The window's message k as this answer shows it (a new reference). */
static json_t *window_render(sync_t *s, const qun_mx_room_t *room, window_t *w, int k) {
    const qun_mx_msg_t *m = &w->msgs[k];
    if (m->session_id && m->session_id == s->c.session_id && m->txn_id[0]) return mx_message(&s->c, room, m);
    if (!w->ev[k]) w->ev[k] = mx_message(&s->c, room, m);
    return json_incref(w->ev[k]);
}

/* The timeline rows[0..n) of room render into (messages read by seq), the last
 * `limit` of it; *limited when more, *prev_seq the token before its first message.
 * Its messages may be shared with other answers (window_t): nothing changes them. */
static qun_rc render_rows(sync_t *s, const qun_mx_room_t *room, json_t *members, qun_event_row_t *rows, int n,
                          json_t **timeline, bool *limited, int64_t *prev_seq) {
    json_t *items = json_array();
    int64_t lo = -1, hi = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(rows[i].topic, "message.created") == 0) {
            int64_t seq = payload_int(rows[i].payload, "seq");
            if (seq <= 0) continue;
            json_array_append_new(items, json_integer(seq));
            if (lo < 0 || seq < lo) lo = seq;
            if (seq > hi) hi = seq;
        } else {
            mx_row(&s->c, room, members, &rows[i], s->a->local, items);
        }
    }
    window_t tmp = {0}, *w = &tmp;
    qun_err_t err;
    if (lo > 0) {
        qun_rc rc = window_get(s, room, lo, hi, &tmp, &w, &err);
        if (rc != QUN_OK) {
            json_decref(items);
            return rc;
        }
    }
    json_t *out = json_array();
    size_t i;
    json_t *it;
    int64_t first_seq = -1;
    json_array_foreach(items, i, it) {
        if (!json_is_integer(it)) {
            json_array_append(out, it);
            continue;
        }
        int64_t seq = json_integer_value(it);
        for (int k = 0; k < w->n; k++)
            if (w->msgs[k].seq == seq) {
                json_array_append_new(out, window_render(s, room, w, k));
                break;
            }
    }
    json_decref(items);
    *limited = json_array_size(out) > (size_t)s->a->limit;
    while (json_array_size(out) > (size_t)s->a->limit)
        json_array_remove(out, 0);
    json_array_foreach(out, i, it) {
        mx_eid_t id;
        if (mx_eid_parse(json_string_value(json_object_get(it, "event_id")), &id) && id.kind == 'm') {
            first_seq = id.n;
            break;
        }
    }
    *prev_seq = first_seq > 0 ? first_seq - 1 : room->last_seq;
    window_clear(&tmp);
    *timeline = out;
    return QUN_OK;
}

static json_t *stripped(json_t *e) {
    return json_pack("{s:O, s:O, s:O, s:O}", "type", json_object_get(e, "type"), "state_key",
                     json_object_get(e, "state_key"), "sender", json_object_get(e, "sender"), "content",
                     json_object_get(e, "content"));
}

/* A room the user is invited into: its stripped state (create, name, join rules, the
 * inviter's and the invitation's member events), as clients show an invitation. */
static qun_rc invite_entry(sync_t *s, const qun_mx_room_t *room, const char *inviter_openid) {
    json_t *members = NULL, *diss = NULL;
    qun_err_t err;
    qun_rc rc = qun_mx_view_members(s->c.db, room->id, &members, &err);
    if (rc == QUN_OK) rc = qun_mx_view_dissolution(s->c.db, room->id, &diss, &err);
    if (rc != QUN_OK) {
        json_decref(members);
        return rc;
    }
    json_t *state = mx_state(&s->c, room, members, diss), *events = json_array();
    const char *inviter = mx_local(&s->c, inviter_openid);
    char inviter_id[QUN_MX_ID_MAX], me[QUN_MX_ID_MAX], rid[QUN_MX_ID_MAX];
    qun_mx_user_id(*inviter ? inviter : room->owner_local, inviter_id, sizeof inviter_id);
    qun_mx_user_id(s->a->local, me, sizeof me);
    size_t i;
    json_t *e;
    json_array_foreach(state, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        bool keep = strcmp(type, "m.room.create") == 0 || strcmp(type, "m.room.name") == 0 ||
                    strcmp(type, "m.room.join_rules") == 0 ||
                    (strcmp(type, "m.room.member") == 0 &&
                     strcmp(json_string_value(json_object_get(e, "state_key")), inviter_id) == 0);
        if (keep) json_array_append_new(events, stripped(e));
    }
    json_array_append_new(events, json_pack("{s:s, s:s, s:s, s:{s:s}}", "type", "m.room.member", "state_key",
                                            me, "sender", inviter_id, "content", "membership", "invite"));
    qun_mx_room_id(room->gid, rid, sizeof rid);
    json_object_set_new(s->invite, rid, json_pack("{s:{s:o}}", "invite_state", "events", events));
    json_decref(state);
    json_decref(members);
    json_decref(diss);
    return QUN_OK;
}

/* Whether the user, not a member of room, has a pending invitation into it that rows
 * announce; the inviter's openid into inviter. */
static bool invited(sync_t *s, const qun_mx_room_t *room, qun_event_row_t *rows, int n, char *inviter,
                    size_t size) {
    char iid[QUN_ID_MAX] = "";
    qun_err_t err;
    bool seen = false;
    inviter[0] = '\0';
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].topic, "member.invited") == 0 && rows[i].user_id == s->a->uid) {
            json_t *p = json_loads(rows[i].payload, 0, NULL);
            const char *by = json_string_value(json_object_get(p, "by"));
            snprintf(inviter, size, "%s", by ? by : "");
            json_decref(p);
            seen = true;
        }
    if (!seen || room->role[0]) return false;
    return qun_invitation_pending_for(s->c.db, room->id, s->a->uid, iid, &err) == QUN_OK && iid[0];
}

/* A room the rows after since touched: a delta when joined all along, full state when
 * joined after since, the timeline up to the leave when left. */
static qun_rc room_delta(sync_t *s, const qun_mx_room_t *room, qun_event_row_t *rows, int n,
                         bool joined_after) {
    const char *membership = mx_membership(room);
    json_t *members = NULL;
    qun_err_t err;
    /* Only new messages in a room the user stays in (what a post wakes every member's
     * parked sync with): they render from the message rows alone, and the member list,
     * one row per member for each of them, is not read.  The summary, which only needs
     * sending when it changes, is left out then. */
    bool only_messages = strcmp(membership, "join") == 0 && !joined_after;
    for (int i = 0; i < n && only_messages; i++)
        only_messages = strcmp(rows[i].topic, "message.created") == 0;
    qun_rc rc = only_messages ? QUN_OK : qun_mx_view_members(s->c.db, room->id, &members, &err);
    if (rc != QUN_OK) return rc;
    json_t *timeline = NULL;
    bool limited = false;
    int64_t prev = -1;
    if (strcmp(membership, "join") == 0) {
        if (joined_after) {
            /* Back or new: full state, plus what the rows of the (re)join say. */
            int from = 0;
            for (int i = 0; i < n; i++)
                if (strcmp(rows[i].topic, "group.restored") == 0) from = i;
            json_t *tail = json_array();
            for (int i = from; i < n; i++)
                if (strcmp(rows[i].topic, "group.restored") == 0)
                    mx_row(&s->c, room, members, &rows[i], s->a->local, tail);
            rc = room_full(s, room, tail);
            json_decref(tail);
            json_decref(members);
            return rc;
        }
        rc = render_rows(s, room, members, rows, n, &timeline, &limited, &prev);
        if (rc == QUN_OK) {
            json_t *state = json_array();
            if (limited) {
                json_t *diss;
                if (!members) rc = qun_mx_view_members(s->c.db, room->id, &members, &err);
                if (rc == QUN_OK) rc = qun_mx_view_dissolution(s->c.db, room->id, &diss, &err);
                if (rc == QUN_OK) {
                    json_decref(state);
                    state = mx_state(&s->c, room, members, diss);
                    json_decref(diss);
                }
            }
            if (rc == QUN_OK && json_array_size(timeline) == 0) { /* rows rendering nothing */
                json_decref(timeline);
                json_decref(state);
            } else if (rc == QUN_OK) {
                rc = join_entry(s, room, members, timeline, limited, prev, state);
            } else {
                json_decref(timeline);
                json_decref(state);
            }
        }
        json_decref(members);
        return rc;
    }
    /* Left: the timeline up to and including the user's own leave. */
    int end = -1;
    for (int i = 0; i < n; i++)
        if (own_leave(s, room, &rows[i])) end = i;
    if (end < 0) {
        json_decref(members);
        return QUN_OK;
    }
    rc = render_rows(s, room, members, rows, end + 1, &timeline, &limited, &prev);
    if (rc == QUN_OK) {
        json_t *tl = json_pack("{s:o, s:b}", "events", timeline, "limited", limited);
        if (prev >= 0) json_object_set_new(tl, "prev_batch", tok('t', prev));
        char rid[QUN_MX_ID_MAX];
        qun_mx_room_id(room->gid, rid, sizeof rid);
        json_object_set_new(s->leave, rid,
                            json_pack("{s:o, s:{s:[]}, s:{s:[]}}", "timeline", tl, "state", "events",
                                      "account_data", "events"));
    }
    json_decref(members);
    return rc;
}

static bool has_id(const int64_t *ids, int n, int64_t id) {
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

/* The incremental part: the rows after since, room by room. */
static qun_rc incremental(sync_t *s, int64_t upto, bool *global_data) {
    qun_event_row_t *rows = NULL;
    int n = 0;
    qun_err_t err;
    const sync_args_t *a = s->a;
    qun_rc rc = qun_mx_view_rows(s->c.db, a->uid, a->since, upto, &rows, &n, &err);
    if (rc != QUN_OK) return rc;
    int64_t *groups = calloc((size_t)n + 1, sizeof *groups), *joined = calloc((size_t)n + 1, sizeof *joined);
    int ng = 0, nj = 0;
    qun_event_row_t *sub = calloc((size_t)n + 1, sizeof *sub);
    if (!groups || !joined || !sub) rc = qun_fail(&err, QUN_NOMEM, "out of memory");
    for (int i = 0; rc == QUN_OK && i < n; i++) {
        qun_event_row_t *e = &rows[i];
        if (strcmp(e->topic, "matrix.account_data") == 0) {
            int64_t g = payload_int(e->payload, "group_id");
            if (!g)
                *global_data = true;
            else if (!has_id(groups, ng, g))
                groups[ng++] = g;
            continue;
        }
        if (strcmp(e->topic, "receipt.private") == 0 || strcmp(e->topic, "receipt.read") == 0) {
            /* Ephemeral: noted for the room's entry, not rendered in its timeline. */
            json_t *p = json_loads(e->payload, 0, NULL);
            bool private_ = e->topic[8] == 'p';
            int64_t g = private_ ? json_integer_value(json_object_get(p, "group_id")) : e->group_id;
            const char *who =
                private_ ? a->local : mx_local(&s->c, json_string_value(json_object_get(p, "user")));
            if (g && *who) {
                receipt_note(s, g, who, private_, json_integer_value(json_object_get(p, "seq")),
                             json_integer_value(json_object_get(p, "ts")));
                if (!has_id(groups, ng, g)) groups[ng++] = g;
            }
            json_decref(p);
            continue;
        }
        if (!e->group_id) continue;
        if (!has_id(groups, ng, e->group_id)) groups[ng++] = e->group_id;
        if (e->user_id == a->uid &&
            (strcmp(e->topic, "member.added") == 0 || strcmp(e->topic, "group.created") == 0))
            joined[nj++] = e->group_id;
        if (strcmp(e->topic, "group.restored") == 0) joined[nj++] = e->group_id;
        if (strcmp(e->topic, "group.dissolved") == 0) { /* the successor holds everyone already */
            int64_t succ = 0;
            if (qun_event_successor(s->c.db, e->payload, &succ, &err) == QUN_OK && succ) {
                if (!has_id(groups, ng, succ)) groups[ng++] = succ;
                joined[nj++] = succ;
            }
        }
    }
    for (int k = 0; rc == QUN_OK && k < ng; k++) {
        qun_mx_room_t room;
        rc = qun_mx_view_room(s->c.db, a->uid, groups[k], NULL, &room, &err);
        if (rc == QUN_GROUP_NOT_FOUND) {
            rc = QUN_OK;
            continue;
        }
        if (rc != QUN_OK) break;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (rows[i].group_id == groups[k] && strcmp(rows[i].topic, "receipt.read") != 0)
                sub[m++] = rows[i];
        bool after = has_id(joined, nj, groups[k]) && room.role[0];
        char inviter[QUN_ID_MAX];
        if (invited(s, &room, sub, m, inviter, sizeof inviter))
            rc = invite_entry(s, &room, inviter);
        else
            rc = room_delta(s, &room, sub, m, after);
        /* Room account data or receipts alone still make a joined room's entry. */
        char rid[QUN_MX_ID_MAX];
        qun_mx_room_id(room.gid, rid, sizeof rid);
        char key[24];
        key_of(room.id, key);
        if (rc == QUN_OK && (m == 0 || json_object_get(s->receipts, key)) &&
            strcmp(mx_membership(&room), "join") == 0 && !json_object_get(s->join, rid)) {
            json_t *none = json_array();
            rc = join_entry(s, &room, none, json_array(), false, -1, json_array());
            json_decref(none);
        }
    }
    free(sub);
    free(groups);
    free(joined);
    qun_event_rows_free(rows, n);
    free(rows);
    return rc;
}

/* Every visible receipt and every room's unread count, for a full sync. */
static qun_rc full_reads(sync_t *s) {
    qun_read_pos_t *pos = NULL;
    size_t n = 0;
    json_t *list = NULL;
    qun_err_t err;
    qun_rc rc = qun_read_positions(s->c.db, s->a->uid, 0, &pos, &n, &err);
    for (size_t i = 0; rc == QUN_OK && i < n; i++) {
        char key[24];
        key_of(pos[i].group_id, key);
        json_object_set_new(s->unread, key, json_integer(pos[i].unread));
    }
    free(pos);
    if (rc == QUN_OK) rc = qun_read_receipts(s->c.db, s->a->uid, 0, &list, &err);
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it) {
        bool private_ = json_is_true(json_object_get(it, "private"));
        receipt_note(s, json_integer_value(json_object_get(it, "group_id")), qun_jstr(it, "local"), private_,
                     json_integer_value(json_object_get(it, "seq")),
                     json_integer_value(json_object_get(it, "ts")));
    }
    json_decref(list);
    return rc;
}

/* The typists of the joined rooms to tell: on a full sync every room where someone types,
 * on an incremental one every room whose typists changed since the token (an entry of
 * its own when nothing else names the room). */
static qun_rc typing_rooms(sync_t *s, bool full) {
    if (!full && s->typing_now <= s->a->typing) return QUN_OK;
    qun_mx_room_t *rooms = NULL;
    size_t n = 0;
    qun_err_t err;
    qun_rc rc = qun_mx_view_rooms(s->c.db, s->a->uid, &rooms, &n, &err);
    for (size_t i = 0; rc == QUN_OK && i < n; i++) {
        if (strcmp(mx_membership(&rooms[i]), "join") != 0) continue;
        json_t *ids = qun_typing_users(rooms[i].id);
        bool tell = full ? json_array_size(ids) > 0 : qun_typing_changed(rooms[i].id, s->a->typing);
        char key[24], rid[QUN_MX_ID_MAX];
        key_of(rooms[i].id, key);
        qun_mx_room_id(rooms[i].gid, rid, sizeof rid);
        if (!tell) {
            json_decref(ids);
            continue;
        }
        json_object_set_new(s->typing, key, ids);
        json_t *entry = json_object_get(s->join, rid);
        if (entry) { /* already told: add to its ephemeral events */
            json_t *eph = json_object_get(json_object_get(entry, "ephemeral"), "events");
            json_array_append_new(
                eph, json_pack("{s:s, s:{s:O}}", "type", "m.typing", "content", "user_ids", ids));
        } else if (!full) {
            json_t *none = json_array();
            rc = join_entry(s, &rooms[i], none, json_array(), false, -1, json_array());
            json_decref(none);
        }
    }
    free(rooms);
    return rc;
}

/* The answer for a, in db's current snapshot: *out, and whether it says nothing. */
static qun_rc sync_build(qun_db_t *db, sync_args_t *a, json_t **out, bool *empty, qun_err_t *err) {
    int64_t pos;
    *out = NULL;
    qun_rc rc = qun_event_last_id(db, &pos, err);
    if (rc != QUN_OK) return rc;
    int64_t horizon = 0;
    rc = qun_event_horizon(db, &horizon, err);
    if (rc != QUN_OK) return rc;
    /* A position this server never gave, or one older than the rows housekeeping
     * deleted (what followed it is partly gone): start over. */
    if (a->since > pos || (a->since >= 0 && a->since < horizon)) {
        a->since = -1;
        a->force_limited = true;
    }
    sync_t s = {.a = a,
                .join = json_object(),
                .leave = json_object(),
                .invite = json_object(),
                .receipts = json_object(),
                .unread = json_object(),
                .typing_now = qun_typing_serial(),
                .typing = json_object()};
    mx_ctx_init(&s.c, db, a->session_id);
    bool global_data = false;
    if (a->since < 0 || a->full_state) {
        qun_mx_room_t *rooms;
        size_t n;
        global_data = true;
        rc = qun_mx_view_rooms(db, a->uid, &rooms, &n, err);
        /* Receipts and unread counts of every room, one query each; who is typing. */
        if (rc == QUN_OK) rc = full_reads(&s);
        if (rc == QUN_OK) rc = typing_rooms(&s, true);
        for (size_t i = 0; rc == QUN_OK && i < n; i++)
            if (strcmp(mx_membership(&rooms[i]), "join") == 0) rc = room_full(&s, &rooms[i], NULL);
        free(rooms);
        json_t *inv = NULL;
        if (rc == QUN_OK) rc = qun_invitations_of_user(db, a->uid, &inv, err);
        size_t i;
        json_t *it;
        json_array_foreach(inv, i, it) {
            qun_mx_room_t room;
            if (rc != QUN_OK) break;
            rc = qun_mx_view_room(db, a->uid, 0, json_string_value(json_object_get(it, "group")), &room, err);
            if (rc == QUN_OK) rc = invite_entry(&s, &room, json_string_value(json_object_get(it, "inviter")));
        }
        json_decref(inv);
    } else {
        rc = incremental(&s, pos, &global_data);
        if (rc == QUN_OK) rc = typing_rooms(&s, false);
    }
    json_t *data = NULL;
    if (rc == QUN_OK) rc = global_data ? qun_mx_data_list(db, a->uid, 0, &data, err) : QUN_OK;
    if (rc == QUN_OK) {
        *empty = json_object_size(s.join) == 0 && json_object_size(s.leave) == 0 &&
                 json_object_size(s.invite) == 0 && !global_data;
        a->typing = s.typing_now; /* a parked answer starts from what this one said */
        *out = json_pack("{s:o, s:{s:o, s:o, s:o}, s:{s:o}}", "next_batch", batch(pos, s.typing_now), "rooms",
                         "join", s.join, "leave", s.leave, "invite", s.invite, "account_data", "events",
                         data ? data : json_array());
        s.join = s.leave = s.invite = NULL;
    }
    json_decref(s.join);
    json_decref(s.leave);
    json_decref(s.invite);
    json_decref(s.receipts);
    json_decref(s.unread);
    json_decref(s.typing);
    mx_ctx_free(&s.c);
    return rc;
}

/* ---- long-poll ---- */
static void send_json(struct evhttp_request *ev, int status, const char *text) {
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    qun_mx_cors(ev);
    evhttp_send_reply(ev, status, NULL, b);
    evbuffer_free(b);
}

static bool sync_fire(struct evhttp_request *ev, qun_db_t *db, void *arg, bool timed_out) {
    sync_args_t *a = arg;
    json_t *out = NULL;
    bool empty = true;
    qun_err_t err = {{0}, {0}};
    int64_t expires;
    qun_rc rc = qun_db_read_begin(db, &err);
    if (rc == QUN_OK) {
        /* The session may have ended while the request waited: then it learns nothing more. */
        rc = qun_event_session_live(db, a->session_id, &expires, &err);
        if (rc == QUN_OK) rc = sync_build(db, a, &out, &empty, &err);
        qun_db_read_end(db);
    }
    if (rc == QUN_TOKEN_INVALID) {
        send_json(ev, 401,
                  "{\"errcode\":\"M_UNKNOWN_TOKEN\",\"error\":\"the access token is no longer valid\","
                  "\"soft_logout\":false}");
        return true;
    }
    if (rc != QUN_OK) {
        qun_log("warn", "matrix sync: %s", err.msg);
        send_json(ev, 500, "{\"errcode\":\"M_UNKNOWN\",\"error\":\"sync failed; retry\"}");
        json_decref(out);
        return true;
    }
    if (empty && !timed_out) {
        json_decref(out);
        return false;
    }
    char *text = qun_json_compact(out);
    send_json(ev, 200, text ? text : "{}");
    free(text);
    json_decref(out);
    return true;
}

/* The timeline limit a filter asks for (a stored filter's id or inline JSON). */
static qun_rc filter_limit(qun_req_t *r, const char *f, int *limit) {
    *limit = TIMELINE_DEFAULT;
    if (!f || !*f) return QUN_OK;
    char *text = NULL;
    json_t *j = NULL;
    if (f[0] == '{') {
        j = json_loads(f, 0, NULL);
        if (!j) return qun_mx_fail(r, QUN_FIELD_INVALID, "M_NOT_JSON", "filter is not JSON");
    } else {
        char *end;
        long long id = strtoll(f, &end, 10);
        /* An unknown or foreign filter id: the defaults (the filter is advice). */
        if (*end || id <= 0 || qun_mx_filter_get(r->db, r->actor.uid, id, &text, &r->err) != QUN_OK)
            return QUN_OK;
        j = json_loads(text, 0, NULL);
        free(text);
    }
    json_t *l = json_object_get(json_object_get(json_object_get(j, "room"), "timeline"), "limit");
    if (json_is_integer(l) && json_integer_value(l) > 0)
        *limit = json_integer_value(l) > TIMELINE_MAX ? TIMELINE_MAX : (int)json_integer_value(l);
    json_decref(j);
    return QUN_OK;
}

qun_rc h_mx_sync(qun_req_t *r) {
    sync_args_t *a = qun_xcalloc(1, sizeof *a);
    a->uid = r->actor.uid;
    a->session_id = r->actor.session_id;
    a->since = -1;
    qun_rc rc = qun_mx_view_local(r->db, r->actor.openid, a->local, &r->err);
    if (rc == QUN_OK) rc = filter_limit(r, qun_query(r, "filter"), &a->limit);
    if (rc != QUN_OK) {
        free(a);
        return rc;
    }
    const char *since = qun_query(r, "since"), *fs = qun_query(r, "full_state"),
               *to = qun_query(r, "timeout");
    char head[48] = "";
    if (since && *since) { /* s<N>[_<T>] */
        const char *us = strchr(since, '_');
        snprintf(head, sizeof head, "%.*s", us ? (int)(us - since) : (int)strlen(since), since);
        if (us) a->typing = strtoull(us + 1, NULL, 10);
        if (a->typing > qun_typing_serial()) a->typing = 0; /* from before a restart */
    }
    if (since && *since && !parse_pos(head, 's', &a->since)) {
        a->since = -1; /* not ours, or mangled: start over */
        a->force_limited = true;
    }
    a->full_state = fs && strcmp(fs, "true") == 0;
    int64_t timeout = 0;
    if (to && *to) {
        char *end;
        long long v = strtoll(to, &end, 10);
        if (!*end && v > 0) timeout = v > PARK_MAX_MS ? PARK_MAX_MS : v;
    }
    json_t *out;
    bool empty;
    rc = sync_build(r->db, a, &out, &empty, &r->err);
    if (rc != QUN_OK) {
        free(a);
        return rc;
    }
    if (!empty || timeout <= 0 || a->since < 0) {
        free(a);
        return qun_ok(r, 200, out);
    }
    int64_t pos = 0;
    char nb[48];
    snprintf(nb, sizeof nb, "%s", json_string_value(json_object_get(out, "next_batch")));
    if (strchr(nb, '_')) *strchr(nb, '_') = '\0';
    parse_pos(nb, 's', &pos);
    json_decref(out);
    /* Park: later answers start from the same since (nothing was said). */
    rc = qun_events_park(r, pos, (int)timeout, sync_fire, a, free);
    if (rc != QUN_OK) free(a);
    return rc;
}
