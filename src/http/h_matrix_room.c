/* SPDX-License-Identifier: MIT */
/* The Matrix room read routes (docs/matrix.md "Reading: sync and rooms"; MATRIX.md 1.4
 * rows 25-32): /messages pages through a group's messages by seq (tokens t<seq>, or a
 * sync's s<N>), /state, /members, /joined_members, /joined_rooms, /event and /context
 * render the group's rows as /sync does (mx_render.c).  A room is readable by its
 * members while the group lives and by its owner after a dissolution (read-only, as
 * GET /v1/groups/{id}); anyone else is "not in this room", a dissolved group's members
 * GROUP_GONE with its successor. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "mx_render.h"
#include "qun/matrix.h"

#define PAGE_DEFAULT 10
#define PAGE_MAX 100

/* The room params[0] names, if the caller may read it. */
static qun_rc room_open(qun_req_t *r, qun_mx_room_t *room) {
    char gid[QUN_ID_MAX];
    if (!qun_mx_room_gid(r->params[0], gid))
        return qun_mx_fail(r, QUN_NOT_A_MEMBER, "M_FORBIDDEN", "You are not in this room");
    qun_group_t g;
    qun_rc rc = qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK; /* the owner's read-only view */
    if (rc == QUN_GROUP_NOT_FOUND) return qun_mx_fail(r, rc, "M_FORBIDDEN", "You are not in this room");
    if (rc != QUN_OK) return rc;
    return qun_mx_view_room(r->db, r->actor.uid, g.id, NULL, room, &r->err);
}

/* The current state of room into *state (and its members into *members when asked). */
static qun_rc room_state(qun_req_t *r, mx_ctx_t *c, const qun_mx_room_t *room, json_t **state,
                         json_t **members_out) {
    json_t *members = NULL, *diss = NULL;
    qun_rc rc = qun_mx_view_members(r->db, room->id, &members, &r->err);
    if (rc == QUN_OK) rc = qun_mx_view_dissolution(r->db, room->id, &diss, &r->err);
    if (rc == QUN_OK) *state = mx_state(c, room, members, diss);
    json_decref(diss);
    if (rc == QUN_OK && members_out)
        *members_out = members;
    else
        json_decref(members);
    return rc;
}

static json_t *tok(char prefix, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%c%lld", prefix, (long long)v);
    return json_string(b);
}

/* A pagination token as a seq: t<seq>, or s<N> (a sync position) mapped to the last
 * message committed by then. */
static bool token_seq(qun_req_t *r, const qun_mx_room_t *room, const char *token, int64_t *seq) {
    char t[24];
    /* A sync position may end in _<typing serial> (h_matrix_sync.c): not a position. */
    if (!token || strcspn(token, "_") >= sizeof t) return false;
    snprintf(t, sizeof t, "%.*s", (int)strcspn(token, "_"), token);
    if ((t[0] != 't' && t[0] != 's') || !t[1] || strlen(t) > 19 || (t[0] == 't' && token[strlen(t)]))
        return false;
    int64_t v = 0;
    for (const char *p = t + 1; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
    }
    if (t[0] == 't') {
        *seq = v > room->last_seq ? room->last_seq : v;
        return true;
    }
    qun_err_t err;
    return qun_mx_view_seq_at(r->db, room->id, v, seq, &err) == QUN_OK;
}

static int page_limit(qun_req_t *r) {
    const char *l = qun_query(r, "limit");
    char *end;
    long long v = l ? strtoll(l, &end, 10) : 0;
    if (!l || *end || v <= 0) return PAGE_DEFAULT;
    return v > PAGE_MAX ? PAGE_MAX : (int)v;
}

/* The page's chunk: messages msgs[0..n) (ascending) and the room's state changes with
 * stream positions in (after, upto], merged by position (newest first when back). */
static qun_rc page_chunk(qun_req_t *r, mx_ctx_t *c, const qun_mx_room_t *room, const qun_mx_msg_t *msgs,
                         int n, int64_t after, int64_t upto, bool back, json_t *chunk) {
    qun_event_row_t *rows = NULL;
    int nr = 0;
    json_t *members = NULL, *changes = json_array(), *pos = json_array();
    qun_rc rc = qun_mx_view_group_rows(r->db, room->id, after, upto, &rows, &nr, &r->err);
    if (rc == QUN_OK && nr) rc = qun_mx_view_members(r->db, room->id, &members, &r->err);
    for (int i = 0; rc == QUN_OK && i < nr; i++) {
        int k = mx_row(c, room, members, &rows[i], NULL, changes);
        for (int j = 0; j < k; j++)
            json_array_append_new(pos, json_integer(rows[i].id));
    }
    /* Both lists ascend by position; walk them from the chosen end. */
    int im = back ? n - 1 : 0, ir = back ? (int)json_array_size(changes) - 1 : 0,
        nc = (int)json_array_size(changes);
    while (rc == QUN_OK && (back ? (im >= 0 || ir >= 0) : (im < n || ir < nc))) {
        bool take_msg;
        if (back)
            take_msg = ir < 0 ||
                       (im >= 0 && msgs[im].stream_id > json_integer_value(json_array_get(pos, (size_t)ir)));
        else
            take_msg = ir >= nc ||
                       (im < n && msgs[im].stream_id < json_integer_value(json_array_get(pos, (size_t)ir)));
        if (take_msg) {
            json_array_append_new(chunk, mx_message(c, room, &msgs[im]));
            im += back ? -1 : 1;
        } else {
            json_array_append(chunk, json_array_get(changes, (size_t)ir));
            ir += back ? -1 : 1;
        }
    }
    json_decref(changes);
    json_decref(pos);
    json_decref(members);
    qun_event_rows_free(rows, nr);
    free(rows);
    return rc;
}

qun_rc h_mx_room_messages(qun_req_t *r) {
    qun_mx_room_t room;
    int64_t below;
    /* The page's messages and the feed position it may end at, in one snapshot. */
    qun_rc rc = qun_db_event_frontier(r->db, &below, &r->err);
    if (rc == QUN_OK) rc = room_open(r, &room);
    if (rc != QUN_OK) return rc;
    const char *dir = qun_query(r, "dir"), *from = qun_query(r, "from"), *to = qun_query(r, "to");
    bool back = !dir || strcmp(dir, "b") == 0;
    if (dir && !back && strcmp(dir, "f") != 0)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "dir must be b or f");
    int64_t from_seq = back ? room.last_seq : 0, to_seq = -1;
    if (from && *from && !token_seq(r, &room, from, &from_seq))
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "from is not a pagination token");
    if (to && *to && !token_seq(r, &room, to, &to_seq))
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "to is not a pagination token");
    int limit = page_limit(r);
    qun_mx_msg_t *msgs = NULL;
    int n = 0;
    rc = back ? qun_mx_view_messages(r->db, room.id, to_seq > 0 ? to_seq : 0, from_seq, limit, true, &msgs,
                                     &n, &r->err)
              : qun_mx_view_messages(r->db, room.id, from_seq, to_seq, limit, false, &msgs, &n, &r->err);
    if (rc != QUN_OK) return rc;
    mx_ctx_t c;
    mx_ctx_init(&c, r->db, r->actor.session_id);
    json_t *chunk = json_array();
    /* The state changes between the page's messages: a page holds those after its
     * oldest message's predecessor up to its newest message (up to now for the newest
     * page), so that consecutive pages neither repeat nor skip one. */
    int64_t after = 0, upto = 0, lowest_seq = n ? msgs[0].seq : from_seq + 1;
    if (back) {
        if (lowest_seq > 1) rc = qun_mx_view_stream_of(r->db, room.id, lowest_seq - 1, &after, &r->err);
        if (rc == QUN_OK && from_seq >= room.last_seq)
            rc = qun_event_last_id(r->db, &upto, &r->err);
        else if (rc == QUN_OK && from_seq > 0)
            rc = qun_mx_view_stream_of(r->db, room.id, from_seq, &upto, &r->err);
    } else if (n > 0) {
        if (from_seq > 0) rc = qun_mx_view_stream_of(r->db, room.id, from_seq, &after, &r->err);
        if (rc == QUN_OK) upto = msgs[n - 1].stream_id;
    }
    if (rc == QUN_OK) rc = page_chunk(r, &c, &room, msgs, n, after, upto, back, chunk);
    json_t *out = json_pack("{s:o, s:o}", "chunk", chunk, "start",
                            from && *from ? json_string(from) : tok('t', from_seq));
    if (back) {
        int64_t lowest = n ? msgs[0].seq : from_seq + 1;
        if (lowest > 1 && n > 0 && (to_seq < 0 || lowest - 1 > to_seq)) {
            json_object_set_new(out, "end", tok('t', lowest - 1));
        } else if (rc == QUN_OK && (lowest <= 1 || (n == 0 && from_seq == 0))) {
            /* The room's start: its creation state closes the history (newest first). */
            json_t *state = NULL;
            rc = room_state(r, &c, &room, &state, NULL);
            if (rc == QUN_OK) {
                for (size_t i = json_array_size(state); i > 0; i--)
                    json_array_append(chunk, json_array_get(state, i - 1));
                json_decref(state);
            }
        }
    } else if (n > 0) {
        json_object_set_new(out, "end", tok('t', msgs[n - 1].seq));
    }
    qun_mx_msgs_free(msgs, n);
    mx_ctx_free(&c);
    if (rc != QUN_OK) {
        json_decref(out);
        return rc;
    }
    return qun_ok(r, 200, out);
}

qun_rc h_mx_room_state(qun_req_t *r) {
    qun_mx_room_t room;
    json_t *state = NULL;
    mx_ctx_t c;
    qun_rc rc = room_open(r, &room);
    if (rc != QUN_OK) return rc;
    mx_ctx_init(&c, r->db, r->actor.session_id);
    rc = room_state(r, &c, &room, &state, NULL);
    mx_ctx_free(&c);
    return rc == QUN_OK ? qun_ok(r, 200, state) : rc;
}

static qun_rc state_one(qun_req_t *r, const char *type, const char *key) {
    qun_mx_room_t room;
    json_t *state = NULL;
    mx_ctx_t c;
    qun_rc rc = room_open(r, &room);
    if (rc != QUN_OK) return rc;
    mx_ctx_init(&c, r->db, r->actor.session_id);
    rc = room_state(r, &c, &room, &state, NULL);
    mx_ctx_free(&c);
    if (rc != QUN_OK) return rc;
    json_t *content = mx_state_find(state, type, key ? key : "");
    if (!content) {
        json_decref(state);
        return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no %s state with that key in this room", type);
    }
    json_incref(content);
    json_decref(state);
    return qun_ok(r, 200, content);
}

qun_rc h_mx_room_state_key(qun_req_t *r) {
    return state_one(r, r->params[1], r->params[2]);
}

qun_rc h_mx_room_state_type(qun_req_t *r) {
    return state_one(r, r->params[1], "");
}

qun_rc h_mx_room_members(qun_req_t *r) {
    qun_mx_room_t room;
    json_t *state = NULL;
    mx_ctx_t c;
    qun_rc rc = room_open(r, &room);
    if (rc != QUN_OK) return rc;
    mx_ctx_init(&c, r->db, r->actor.session_id);
    rc = room_state(r, &c, &room, &state, NULL);
    mx_ctx_free(&c);
    if (rc != QUN_OK) return rc;
    const char *want = qun_query(r, "membership"), *not = qun_query(r, "not_membership");
    json_t *chunk = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(state, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "type")), "m.room.member") != 0) continue;
        const char *m = json_string_value(json_object_get(json_object_get(e, "content"), "membership"));
        if ((want && strcmp(m, want) != 0) || (not &&strcmp(m, not ) == 0)) continue;
        json_array_append(chunk, e);
    }
    json_decref(state);
    return qun_ok(r, 200, json_pack("{s:o}", "chunk", chunk));
}

qun_rc h_mx_room_joined_members(qun_req_t *r) {
    qun_mx_room_t room;
    json_t *members = NULL;
    qun_rc rc = room_open(r, &room);
    if (rc == QUN_OK) rc = qun_mx_view_members(r->db, room.id, &members, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *joined = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *local = json_string_value(json_object_get(m, "local"));
        if (mx_locked(&room) && strcmp(local, room.owner_local) != 0) continue; /* kicked at dissolution */
        char uid[QUN_MX_ID_MAX];
        qun_mx_user_id(local, uid, sizeof uid);
        json_object_set_new(joined, uid,
                            json_pack("{s:s, s:n}", "display_name",
                                      json_string_value(json_object_get(m, "name")), "avatar_url"));
    }
    json_decref(members);
    return qun_ok(r, 200, json_pack("{s:o}", "joined", joined));
}

qun_rc h_mx_joined_rooms(qun_req_t *r) {
    qun_mx_room_t *rooms;
    size_t n;
    qun_rc rc = qun_mx_view_rooms(r->db, r->actor.uid, &rooms, &n, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++) {
        if (strcmp(mx_membership(&rooms[i]), "join") != 0) continue;
        char rid[QUN_MX_ID_MAX];
        qun_mx_room_id(rooms[i].gid, rid, sizeof rid);
        json_array_append_new(ids, json_string(rid));
    }
    free(rooms);
    return qun_ok(r, 200, json_pack("{s:o}", "joined_rooms", ids));
}

/* The event params[1] names in room, rendered, into *out (NULL when none). */
static qun_rc find_event(qun_req_t *r, mx_ctx_t *c, const qun_mx_room_t *room, mx_eid_t *id, json_t **out) {
    *out = NULL;
    if (!mx_eid_parse(r->params[1], id) || strcmp(id->gid, room->gid) != 0) return QUN_OK;
    if (id->kind == 'm') {
        qun_mx_msg_t *msgs;
        int n;
        qun_rc rc = qun_mx_view_messages(r->db, room->id, id->n - 1, id->n, 1, false, &msgs, &n, &r->err);
        if (rc != QUN_OK) return rc;
        if (n) *out = mx_message(c, room, &msgs[0]);
        qun_mx_msgs_free(msgs, n);
        return QUN_OK;
    }
    json_t *events = NULL, *members = NULL;
    qun_rc rc = QUN_OK;
    if (id->kind == 'e') {
        qun_event_row_t row;
        rc = qun_mx_view_row(r->db, room->id, id->n, &row, &r->err);
        if (rc == QUN_NOT_FOUND) return QUN_OK;
        if (rc == QUN_OK) rc = qun_mx_view_members(r->db, room->id, &members, &r->err);
        if (rc == QUN_OK) {
            events = json_array();
            mx_row(c, room, members, &row, NULL, events);
        }
        qun_event_rows_free(&row, 1);
        json_decref(members);
    } else {
        rc = room_state(r, c, room, &events, NULL);
    }
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "event_id")), r->params[1]) == 0) {
            *out = json_incref(e);
            break;
        }
    }
    json_decref(events);
    return rc;
}

qun_rc h_mx_room_event(qun_req_t *r) {
    qun_mx_room_t room;
    mx_eid_t id;
    json_t *e = NULL;
    mx_ctx_t c;
    qun_rc rc = room_open(r, &room);
    if (rc != QUN_OK) return rc;
    mx_ctx_init(&c, r->db, r->actor.session_id);
    rc = find_event(r, &c, &room, &id, &e);
    mx_ctx_free(&c);
    if (rc != QUN_OK) return rc;
    if (!e) return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no such event in this room");
    return qun_ok(r, 200, e);
}

qun_rc h_mx_room_context(qun_req_t *r) {
    qun_mx_room_t room;
    mx_eid_t id;
    json_t *e = NULL, *state = NULL;
    mx_ctx_t c;
    qun_rc rc = room_open(r, &room);
    if (rc != QUN_OK) return rc;
    mx_ctx_init(&c, r->db, r->actor.session_id);
    rc = find_event(r, &c, &room, &id, &e);
    if (rc == QUN_OK && e) rc = room_state(r, &c, &room, &state, NULL);
    if (rc != QUN_OK || !e) {
        mx_ctx_free(&c);
        json_decref(e);
        return rc != QUN_OK ? rc : qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no such event in this room");
    }
    int limit = page_limit(r), half = limit / 2 > 0 ? limit / 2 : 1;
    int64_t at = id.kind == 'm' ? id.n : room.last_seq;
    json_t *before = json_array(), *after = json_array();
    qun_mx_msg_t *msgs = NULL;
    int n = 0;
    int64_t lowest = at + (id.kind == 'm' ? 0 : 1), highest = at;
    rc = qun_mx_view_messages(r->db, room.id, 0, at - (id.kind == 'm' ? 1 : 0), half, true, &msgs, &n,
                              &r->err);
    for (int i = n - 1; rc == QUN_OK && i >= 0; i--) {
        json_array_append_new(before, mx_message(&c, &room, &msgs[i]));
        lowest = msgs[i].seq;
    }
    qun_mx_msgs_free(msgs, n);
    n = 0;
    msgs = NULL;
    if (rc == QUN_OK) rc = qun_mx_view_messages(r->db, room.id, at, -1, half, false, &msgs, &n, &r->err);
    for (int i = 0; rc == QUN_OK && i < n; i++) {
        json_array_append_new(after, mx_message(&c, &room, &msgs[i]));
        highest = msgs[i].seq;
    }
    qun_mx_msgs_free(msgs, n);
    mx_ctx_free(&c);
    if (rc != QUN_OK) {
        json_decref(e);
        json_decref(state);
        json_decref(before);
        json_decref(after);
        return rc;
    }
    return qun_ok(r, 200,
                  json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "event", e, "events_before", before,
                            "events_after", after, "start", tok('t', lowest > 0 ? lowest - 1 : 0), "end",
                            tok('t', highest), "state", state));
}
