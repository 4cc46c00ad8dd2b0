/* SPDX-License-Identifier: MIT */
/* Rendering qun rows as Matrix events (docs/matrix.md "Reading: sync and rooms";
 * MATRIX.md 1.5, 2.1, 2.3-2.5).  Every event is a deterministic rendering of committed
 * rows, so its id is stable:
 *   $<gid>.m<seq>                  a message
 *   $<gid>.e<N>[.<part>]           what events row N changed (.pl power levels,
 *                                  .k.<local> a kick, .j.<local> a rejoin, .d the
 *                                  org.qun.dissolution state, .t a withdrawn tombstone)
 *   $<gid>.create .pl0 .jr .hv .ga .name .grp .diss .tomb .j.<local>
 *                                  the current state, for groups older than the rows */
#ifndef QUN_MX_RENDER_H
#define QUN_MX_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/event.h"
#include "qun/matrix.h"

/* What one rendering pass needs: the connection (a read snapshot) and a cache of
 * openid -> localpart lookups. */
typedef struct {
    qun_db_t *db;
    json_t *locals;     /* owned */
    int64_t session_id; /* the viewing session: only its own messages carry a transaction_id */
} mx_ctx_t;

void mx_ctx_init(mx_ctx_t *c, qun_db_t *db, int64_t session_id);
void mx_ctx_free(mx_ctx_t *c);
/* The localpart of the user with public id openid ("" when unknown); borrowed from c. */
const char *mx_local(mx_ctx_t *c, const char *openid);

/* A Matrix event {event_id, sender, type, origin_server_ts, content, state_key?};
 * content stolen.  state_key NULL for a timeline-only event. */
json_t *mx_event(const char *type, const char *state_key, const char *event_id, const char *sender_local,
                 int64_t ts_s, json_t *content);
/* "join" or "leave": the Matrix membership of a user with role room->role in room (the
 * owner keeps a read-only join while dissolved). */
const char *mx_membership(const qun_mx_room_t *room);
/* Whether the room is locked read-only (dissolved, purging, purged). */
bool mx_locked(const qun_mx_room_t *room);
/* The m.room.power_levels content of room (members: qun_mx_view_members's array). */
json_t *mx_power_levels(const qun_mx_room_t *room, json_t *members, bool locked);
/* The current state of room as an array of state events (members as above, diss:
 * qun_mx_view_dissolution's object). */
json_t *mx_state(mx_ctx_t *c, const qun_mx_room_t *room, json_t *members, json_t *diss);
/* The content of a state event (type, state_key) of room, or NULL when there is none. */
json_t *mx_state_find(json_t *state, const char *type, const char *state_key);
/* The m.room.message event of message m in room. */
json_t *mx_message(mx_ctx_t *c, const qun_mx_room_t *room, const qun_mx_msg_t *m);
/* Append to out the events row e of room renders into (nothing for rows that change
 * no Matrix state; messages are the caller's, by seq).  viewer_local: whose kick goes
 * last in a dissolution batch.  Returns the number appended. */
int mx_row(mx_ctx_t *c, const qun_mx_room_t *room, json_t *members, const qun_event_row_t *e,
           const char *viewer_local, json_t *out);

/* An event id parsed: its group and what it names. */
typedef struct {
    char gid[QUN_ID_MAX];
    char kind; /* 'm' a message (n = seq), 'e' an events row (n = id), 's' synthetic state */
    int64_t n;
    char rest[64]; /* after the gid's dot, for 's' and parts of 'e' */
} mx_eid_t;
bool mx_eid_parse(const char *eid, mx_eid_t *out);

#endif
