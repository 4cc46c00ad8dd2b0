/* SPDX-License-Identifier: MIT */
/* qun rows as Matrix events (mx_render.h): state, power levels, messages and notices,
 * and the state changes the events rows describe, dissolution included (MATRIX.md 2.5). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "mx_render.h"

void mx_ctx_init(mx_ctx_t *c, qun_db_t *db, int64_t session_id) {
    c->db = db;
    c->locals = json_object();
    c->session_id = session_id;
}

void mx_ctx_free(mx_ctx_t *c) {
    json_decref(c->locals);
    c->locals = NULL;
}

const char *mx_local(mx_ctx_t *c, const char *openid) {
    if (!openid || !*openid) return "";
    const char *have = json_string_value(json_object_get(c->locals, openid));
    if (have) return have;
    char local[QUN_MX_LOCAL_MAX];
    qun_err_t err;
    if (qun_mx_view_local(c->db, openid, local, &err) != QUN_OK) local[0] = '\0';
    json_object_set_new(c->locals, openid, json_string(local));
    return json_string_value(json_object_get(c->locals, openid));
}

json_t *mx_event(const char *type, const char *state_key, const char *event_id, const char *sender_local,
                 int64_t ts_s, json_t *content) {
    char sender[QUN_MX_ID_MAX];
    qun_mx_user_id(sender_local, sender, sizeof sender);
    json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:o, s:{}}", "event_id", event_id, "sender", sender, "type",
                          type, "origin_server_ts", (json_int_t)ts_s * 1000, "content",
                          content ? content : json_object(), "unsigned");
    if (e && state_key) json_object_set_new(e, "state_key", json_string(state_key));
    return e;
}

static bool gone_state(const char *state) {
    return strcmp(state, "dissolved") == 0 || strcmp(state, "purging") == 0 || strcmp(state, "purged") == 0;
}

bool mx_locked(const qun_mx_room_t *room) {
    return gone_state(room->state);
}

const char *mx_membership(const qun_mx_room_t *room) {
    if (!room->role[0]) return "leave";
    if (!gone_state(room->state)) return "join";
    /* The owner keeps a read-only view until the purge ends it. */
    return strcmp(room->role, "owner") == 0 && strcmp(room->state, "purged") != 0 ? "join" : "leave";
}

json_t *mx_power_levels(const qun_mx_room_t *room, json_t *members, bool locked) {
    json_t *users = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        int level = strcmp(role, "owner") == 0 ? 100 : strcmp(role, "admin") == 0 ? 50 : 0;
        if (!level) continue;
        char uid[QUN_MX_ID_MAX];
        qun_mx_user_id(json_string_value(json_object_get(m, "local")), uid, sizeof uid);
        json_object_set_new(users, uid, json_integer(level));
    }
    (void)room;
    int change = locked ? 101 : 50, pl = locked ? 101 : 100;
    return json_pack("{s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, "
                     "s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:{s:i}}",
                     "users", users, "users_default", 0, "events_default", locked ? 101 : 0, "state_default",
                     100, "invite", change, "kick", change, "ban", 101, "redact", change, "events",
                     "m.room.name", change, "m.room.power_levels", pl, "m.room.message", locked ? 101 : 0,
                     "m.room.tombstone", 101, "m.room.encryption", 101, "m.room.topic", 101, "m.room.avatar",
                     101, "m.room.join_rules", 101, "m.room.history_visibility", 101, "m.room.pinned_events",
                     101, "m.room.server_acl", 101, "m.reaction", 101, "m.room.redaction", locked ? 101 : 0,
                     "m.sticker", 101, "m.call.invite", 101, "org.qun.dissolution", 101, "org.qun.group", 101,
                     "notifications", "room", 50);
}

static void eid(char *out, size_t size, const char *gid, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void eid(char *out, size_t size, const char *gid, const char *fmt, ...) {
    int n = snprintf(out, size, "$%s.", gid);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < size) vsnprintf(out + n, size - (size_t)n, fmt, ap);
    va_end(ap);
}

static json_t *member_content(const char *membership, const char *name, const char *reason) {
    json_t *c = json_pack("{s:s}", "membership", membership);
    if (name && *name) json_object_set_new(c, "displayname", json_string(name));
    if (reason && *reason) json_object_set_new(c, "reason", json_string(reason));
    return c;
}

static json_t *group_content(const qun_mx_room_t *room) {
    json_t *regions = json_loads(room->regions, 0, NULL);
    return json_pack("{s:s, s:s?, s:o, s:s}", "kind", room->kind, "org", room->org[0] ? room->org : NULL,
                     "regions", regions ? regions : json_array(), "openid_of_group", room->gid);
}

/* The org.qun.dissolution content of a dissolution row (diss, from the core). */
static json_t *diss_content(const json_t *diss) {
    json_t *c = json_object();
    static const char *keys[] = {"state", "messages", "dissolves_at", "dissolved_at", "restorable_until"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(diss, keys[i]);
        if (v) json_object_set(c, keys[i], v);
    }
    const char *succ = json_string_value(json_object_get(diss, "successor"));
    if (succ) {
        char room[QUN_MX_ID_MAX];
        qun_mx_room_id(succ, room, sizeof room);
        json_object_set_new(c, "successor", json_string(room));
    }
    return c;
}

static json_t *tombstone_content(const char *succ_gid) {
    char room[QUN_MX_ID_MAX];
    qun_mx_room_id(succ_gid, room, sizeof room);
    return json_pack("{s:s, s:s}", "body", "This group was dissolved; it continues in a successor group.",
                     "replacement_room", room);
}

json_t *mx_state(mx_ctx_t *c, const qun_mx_room_t *room, json_t *members, json_t *diss) {
    (void)c;
    json_t *s = json_array();
    char id[QUN_MX_ID_MAX], creator[QUN_MX_ID_MAX];
    const char *g = room->gid;
    int64_t ts = room->created_at;
    qun_mx_user_id(room->owner_local, creator, sizeof creator);
    json_t *create = json_pack("{s:s, s:s, s:b}", "creator", creator, "room_version", "10", "m.federate", 0);
    const char *pred = json_string_value(json_object_get(diss, "predecessor"));
    if (pred) {
        char prid[QUN_MX_ID_MAX], pev[QUN_MX_ID_MAX];
        qun_mx_room_id(pred, prid, sizeof prid);
        int64_t pe = json_integer_value(json_object_get(diss, "predecessor_event"));
        if (pe)
            eid(pev, sizeof pev, pred, "e%lld", (long long)pe);
        else
            eid(pev, sizeof pev, pred, "tomb");
        json_object_set_new(create, "predecessor", json_pack("{s:s, s:s}", "room_id", prid, "event_id", pev));
    }
    eid(id, sizeof id, g, "create");
    json_array_append_new(s, mx_event("m.room.create", "", id, room->owner_local, ts, create));
    /* The creator's membership first, as a homeserver's history would have it. */
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *local = json_string_value(json_object_get(m, "local"));
        if (strcmp(local, room->owner_local) != 0) continue;
        eid(id, sizeof id, g, "j.%s", local);
        json_array_append_new(
            s, mx_event("m.room.member", "@", id, local, ts,
                        member_content("join", json_string_value(json_object_get(m, "name")), NULL)));
    }
    eid(id, sizeof id, g, "pl0");
    json_array_append_new(s, mx_event("m.room.power_levels", "", id, room->owner_local, ts,
                                      mx_power_levels(room, members, mx_locked(room))));
    eid(id, sizeof id, g, "jr");
    json_array_append_new(s, mx_event("m.room.join_rules", "", id, room->owner_local, ts,
                                      json_pack("{s:s}", "join_rule", "invite")));
    eid(id, sizeof id, g, "hv");
    json_array_append_new(s, mx_event("m.room.history_visibility", "", id, room->owner_local, ts,
                                      json_pack("{s:s}", "history_visibility", "shared")));
    eid(id, sizeof id, g, "ga");
    json_array_append_new(s, mx_event("m.room.guest_access", "", id, room->owner_local, ts,
                                      json_pack("{s:s}", "guest_access", "forbidden")));
    if (room->name[0]) {
        eid(id, sizeof id, g, "name");
        json_array_append_new(s, mx_event("m.room.name", "", id, room->owner_local, ts,
                                          json_pack("{s:s}", "name", room->name)));
    }
    eid(id, sizeof id, g, "grp");
    json_array_append_new(s, mx_event("org.qun.group", "", id, room->owner_local, ts, group_content(room)));
    json_array_foreach(members, i, m) {
        const char *local = json_string_value(json_object_get(m, "local"));
        if (strcmp(local, room->owner_local) == 0) continue;
        eid(id, sizeof id, g, "j.%s", local);
        json_array_append_new(
            s, mx_event("m.room.member", "@", id, local, json_integer_value(json_object_get(m, "joined_at")),
                        member_content("join", json_string_value(json_object_get(m, "name")), NULL)));
    }
    /* mx_event took "@" as a placeholder state key: the member's user id. */
    json_array_foreach(s, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "state_key")), "@") == 0)
            json_object_set(m, "state_key", json_object_get(m, "sender"));
    }
    const char *dstate = json_string_value(json_object_get(diss, "state"));
    if (dstate) {
        eid(id, sizeof id, g, "diss");
        json_array_append_new(
            s, mx_event("org.qun.dissolution", "", id, room->owner_local, ts, diss_content(diss)));
        const char *succ = json_string_value(json_object_get(diss, "successor"));
        if (succ && mx_locked(room)) {
            eid(id, sizeof id, g, "tomb");
            json_array_append_new(
                s, mx_event("m.room.tombstone", "", id, room->owner_local, ts, tombstone_content(succ)));
        }
    }
    return s;
}

json_t *mx_state_find(json_t *state, const char *type, const char *state_key) {
    size_t i;
    json_t *e;
    json_array_foreach(state, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0 &&
            strcmp(json_string_value(json_object_get(e, "state_key")), state_key) == 0)
            return json_object_get(e, "content");
    }
    return NULL;
}

/* ---- messages and notices ---- */
static void fmt_time(int64_t t, char *out, size_t size) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm);
}

/* A readable English line for a system notice (its JSON n). */
static char *notice_body(mx_ctx_t *c, json_t *n) {
    const char *what = json_string_value(json_object_get(n, "notice"));
    const char *by = mx_local(c, json_string_value(json_object_get(n, "by")));
    const char *reason = json_string_value(json_object_get(n, "reason"));
    const char *succ = json_string_value(json_object_get(n, "successor"));
    const char *msgs = json_string_value(json_object_get(n, "messages"));
    json_t *due = json_object_get(n, "dissolves_at"), *until = json_object_get(n, "restorable_until");
    char when[64] = "", until_s[64] = "", byp[QUN_MX_ID_MAX + 8] = "", *text = NULL;
    if (due) fmt_time(json_integer_value(due), when, sizeof when);
    if (until) fmt_time(json_integer_value(until), until_s, sizeof until_s);
    if (*by) snprintf(byp, sizeof byp, " by @%s", by);
    if (!what) what = "";
    int rc;
    if (strcmp(what, "dissolution") == 0 || strcmp(what, "dissolution.pending") == 0) {
        /* delay_seconds; notices posted before it existed held the delay in notice_seconds */
        json_t *d = json_object_get(n, "delay_seconds");
        int64_t left = json_integer_value(d ? d : json_object_get(n, "notice_seconds"));
        char in[64] = "";
        if (left > 0)
            snprintf(in, sizeof in, " (in %lld h %lld min)", (long long)(left / 3600),
                     (long long)(left % 3600 / 60));
        rc =
            asprintf(&text,
                     "This group will be dissolved on %s%s. The owner can still cancel. Export your own copy "
                     "before then.",
                     when[0] ? when : "a date still to come", in);
    } else if (strcmp(what, "dissolution.review") == 0) {
        rc = asprintf(&text, "@%s asked to dissolve this group; waiting for approvals.",
                      *by ? by : "the owner");
    } else if (strcmp(what, "dissolution.cancelled") == 0) {
        rc = asprintf(&text, "Dissolution cancelled%s.", byp);
    } else if (strcmp(what, "dissolution.rejected") == 0) {
        rc = asprintf(&text, "Dissolution rejected%s%s%s.", byp, reason ? ": " : "", reason ? reason : "");
    } else if (strcmp(what, "dissolution.expired") == 0) {
        rc = asprintf(&text, "The dissolution request expired.");
    } else if (strcmp(what, "dissolution.dissolved") == 0) {
        rc = asprintf(&text, "Group dissolved%s; messages %s%s%s%s%s.", byp,
                      msgs && strcmp(msgs, "delete") == 0 ? "deleted" : "kept",
                      until_s[0] ? "; restorable until " : "", until_s,
                      succ ? "; continues in a successor group" : "", "");
    } else if (strcmp(what, "dissolution.restored") == 0) {
        rc = asprintf(&text, "Group restored%s.", byp);
    } else {
        char *raw = json_dumps(n, JSON_COMPACT);
        rc = asprintf(&text, "System notice: %s", raw ? raw : "");
        free(raw);
    }
    return rc < 0 ? NULL : text;
}

json_t *mx_message(mx_ctx_t *c, const qun_mx_room_t *room, const qun_mx_msg_t *m) {
    char id[QUN_MX_ID_MAX];
    eid(id, sizeof id, room->gid, "m%lld", (long long)m->seq);
    json_t *content = NULL;
    if (m->recalled) { /* redacted: an m.room.message keeps no content at all */
        content = json_object();
    } else if (strcmp(m->kind, "system") == 0) {
        json_t *n = json_loads(m->body, 0, NULL);
        char *body = n ? notice_body(c, n) : NULL;
        content = json_pack("{s:s, s:s}", "msgtype", "m.notice", "body", body ? body : m->body);
        free(body);
        if (n && json_is_object(n)) json_object_set(content, "org.qun.dissolution", n);
        json_decref(n);
    } else if (m->media_msgtype[0] && m->media_id[0]) {
        /* A file message sent through Matrix: rendered from the group file's row.  One
         * uploaded through /v1 has no media id and reads as its file's name. */
        char url[QUN_MX_ID_MAX];
        snprintf(url, sizeof url, "mxc://%s/%s", qun_mx_cfg.server_name, m->media_id);
        content = json_pack("{s:s, s:s, s:s}", "msgtype", m->media_msgtype, "body", m->body, "url", url);
        if (content && m->file_type[0])
            json_object_set_new(
                content, "info",
                json_pack("{s:s, s:I}", "mimetype", m->file_type, "size", (json_int_t)m->file_size));
    } else {
        content = json_pack("{s:s, s:s}", "msgtype", m->msgtype[0] ? m->msgtype : "m.text", "body", m->body);
    }
    json_t *e = mx_event("m.room.message", NULL, id, m->author_local, m->created_at, content);
    if (m->recalled) { /* the redaction event's id is its message's: mx_row's message.recalled */
        char rid[QUN_MX_ID_MAX];
        eid(rid, sizeof rid, room->gid, "r%lld", (long long)m->seq);
        json_object_set_new(
            json_object_get(e, "unsigned"), "redacted_because",
            json_pack("{s:s, s:s, s:s}", "type", "m.room.redaction", "event_id", rid, "redacts", id));
    }
    if (m->session_id && m->session_id == c->session_id && m->txn_id[0])
        json_object_set_new(json_object_get(e, "unsigned"), "transaction_id", json_string(m->txn_id));
    return e;
}

/* ---- state changes from events rows ---- */
static bool topic_is(const qun_event_row_t *e, const char *t) {
    return strcmp(e->topic, t) == 0;
}

static const char *member_name(json_t *members, const char *local) {
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "local")), local) == 0)
            return json_string_value(json_object_get(m, "name"));
    }
    return local;
}

static int add(json_t *out, json_t *e) {
    json_array_append_new(out, e);
    return 1;
}

static json_t *member_event(const char *id, const char *sender, const char *target, int64_t ts,
                            json_t *content) {
    char uid[QUN_MX_ID_MAX];
    qun_mx_user_id(target, uid, sizeof uid);
    return mx_event("m.room.member", uid, id, sender, ts, content);
}

int mx_row(mx_ctx_t *c, const qun_mx_room_t *room, json_t *members, const qun_event_row_t *e,
           const char *viewer_local, json_t *out) {
    json_t *p = json_loads(e->payload, 0, NULL);
    if (!p) return 0;
    char id[QUN_MX_ID_MAX];
    const char *g = room->gid;
    int64_t ts = json_integer_value(json_object_get(p, "created_at"));
    if (!ts) ts = qun_now();
    int k = 0;
    const char *openid = json_string_value(json_object_get(p, "openid"));
    const char *who = mx_local(c, openid);
    eid(id, sizeof id, g, "e%lld", (long long)e->id);
    if ((topic_is(e, "member.added") || topic_is(e, "group.created")) && *who) {
        k +=
            add(out, member_event(id, who, who, ts, member_content("join", member_name(members, who), NULL)));
        const char *role = json_string_value(json_object_get(p, "role"));
        if (role && strcmp(role, "member") != 0 && topic_is(e, "member.added")) {
            eid(id, sizeof id, g, "e%lld.pl", (long long)e->id);
            k += add(out, mx_event("m.room.power_levels", "", id, room->owner_local, ts,
                                   mx_power_levels(room, members, mx_locked(room))));
        }
    } else if (topic_is(e, "member.removed") && *who) {
        const char *by = mx_local(c, json_string_value(json_object_get(p, "by")));
        const char *reason = json_string_value(json_object_get(p, "reason"));
        k += add(out, member_event(id, *by ? by : who, who, ts, member_content("leave", NULL, reason)));
    } else if (topic_is(e, "member.invited") && *who) {
        const char *by = mx_local(c, json_string_value(json_object_get(p, "by")));
        k += add(out, member_event(id, *by ? by : room->owner_local, who, ts,
                                   member_content("invite", NULL, NULL)));
    } else if ((topic_is(e, "invitation.declined") || topic_is(e, "invitation.revoked")) && *who) {
        const char *by = mx_local(c, json_string_value(json_object_get(p, "by")));
        k += add(out, member_event(id, *by ? by : who, who, ts, member_content("leave", NULL, NULL)));
    } else if (topic_is(e, "member.display_name_changed") && *who) {
        k += add(out, member_event(id, who, who, ts,
                                   member_content(
                                       "join", json_string_value(json_object_get(p, "display_name")), NULL)));
    } else if (topic_is(e, "member.role_changed") || topic_is(e, "transfer.accepted")) {
        k += add(out, mx_event("m.room.power_levels", "", id, room->owner_local, ts,
                               mx_power_levels(room, members, mx_locked(room))));
    } else if (topic_is(e, "group.renamed")) {
        const char *by = mx_local(c, json_string_value(json_object_get(p, "by")));
        const char *name = json_string_value(json_object_get(p, "name"));
        k += add(out, mx_event("m.room.name", "", id, *by ? by : room->owner_local, ts,
                               name && *name ? json_pack("{s:s}", "name", name) : json_object()));
    } else if (strncmp(e->topic, "dissolution.", 12) == 0) {
        json_t *content = json_deep_copy(p);
        json_object_del(content, "group");
        const char *stage = e->topic + 12;
        json_object_set_new(content, "state",
                            json_string(strcmp(stage, "requested") == 0 ? "review" : stage));
        k += add(out, mx_event("org.qun.dissolution", "", id, room->owner_local, ts, content));
    } else if (topic_is(e, "group.dissolved") || topic_is(e, "group.restored")) {
        bool dissolved = topic_is(e, "group.dissolved");
        const char *succ = json_string_value(json_object_get(p, "successor"));
        json_t *content = json_deep_copy(p);
        json_object_del(content, "group");
        json_object_set_new(content, "state", json_string(dissolved ? "dissolved" : "restored"));
        if (succ) {
            char rid[QUN_MX_ID_MAX];
            qun_mx_room_id(succ, rid, sizeof rid);
            json_object_set_new(content, "successor", json_string(rid));
        }
        eid(id, sizeof id, g, "e%lld.d", (long long)e->id);
        k += add(out, mx_event("org.qun.dissolution", "", id, room->owner_local, ts, content));
        eid(id, sizeof id, g, "e%lld.pl", (long long)e->id);
        k += add(out, mx_event("m.room.power_levels", "", id, room->owner_local, ts,
                               mx_power_levels(room, members, dissolved)));
        if (dissolved && succ) {
            eid(id, sizeof id, g, "e%lld", (long long)e->id);
            k += add(out,
                     mx_event("m.room.tombstone", "", id, room->owner_local, ts, tombstone_content(succ)));
        }
        char reason[600], when[64], until[64] = "";
        fmt_time(ts, when, sizeof when);
        json_t *ru = json_object_get(p, "restorable_until");
        if (ru) fmt_time(json_integer_value(ru), until, sizeof until);
        const char *msgs = json_string_value(json_object_get(p, "messages"));
        if (dissolved)
            snprintf(reason, sizeof reason, "Group dissolved by @%s (owner) on %s; messages %s%s%s%s%s",
                     room->owner_local, when, msgs && strcmp(msgs, "delete") == 0 ? "deleted" : "kept",
                     until[0] ? "; restorable until " : "", until, succ ? "; continues in " : "",
                     succ ? "a successor group" : "");
        else
            snprintf(reason, sizeof reason, "group restored by %s",
                     json_string_value(json_object_get(p, "by")) ? json_string_value(json_object_get(p, "by"))
                                                                 : "owner");
        /* Each member but the owner: kicked by the owner, or back in; the viewer last. */
        json_t *mine = NULL;
        size_t i;
        json_t *m;
        json_array_foreach(members, i, m) {
            const char *local = json_string_value(json_object_get(m, "local"));
            if (strcmp(local, room->owner_local) == 0) continue;
            eid(id, sizeof id, g, "e%lld.%c.%s", (long long)e->id, dissolved ? 'k' : 'j', local);
            json_t *ev =
                dissolved
                    ? member_event(id, room->owner_local, local, ts, member_content("leave", NULL, reason))
                    : member_event(
                          id, local, local, ts,
                          member_content("join", json_string_value(json_object_get(m, "name")), reason));
            if (viewer_local && strcmp(local, viewer_local) == 0)
                mine = ev;
            else
                k += add(out, ev);
        }
        if (mine) k += add(out, mine);
        if (!dissolved && succ) { /* a tombstone cannot be withdrawn: an empty one says so */
            eid(id, sizeof id, g, "e%lld.t", (long long)e->id);
            k += add(out, mx_event("m.room.tombstone", "", id, room->owner_local, ts, json_object()));
        }
    } else if (topic_is(e, "message.recalled")) {
        /* A recall or removal (core/message.c) is an m.room.redaction of the message's
         * event; its id derives from the seq, so a repeated redact answers the same. */
        int64_t seq = json_integer_value(json_object_get(p, "seq"));
        const char *by = mx_local(c, json_string_value(json_object_get(p, "by")));
        const char *reason = json_string_value(json_object_get(p, "reason"));
        char target[QUN_MX_ID_MAX];
        eid(target, sizeof target, g, "m%lld", (long long)seq);
        eid(id, sizeof id, g, "r%lld", (long long)seq);
        json_t *content = json_pack("{s:s}", "redacts", target);
        if (content && reason) json_object_set_new(content, "reason", json_string(reason));
        ts = json_integer_value(json_object_get(p, "recalled_at"));
        json_t *ev = mx_event("m.room.redaction", NULL, id, *by ? by : room->owner_local, ts ? ts : qun_now(),
                              content);
        if (ev) json_object_set_new(ev, "redacts", json_string(target)); /* room versions before 11 */
        k += add(out, ev);
    } else if (topic_is(e, "group.purged")) {
        k += add(out, member_event(id, room->owner_local, room->owner_local, ts,
                                   member_content("leave", NULL, "purged")));
    }
    json_decref(p);
    return k;
}

bool mx_eid_parse(const char *eid_s, mx_eid_t *out) {
    memset(out, 0, sizeof *out);
    if (!eid_s || eid_s[0] != '$') return false;
    const char *dot = strchr(eid_s + 1, '.');
    if (!dot || dot == eid_s + 1 || (size_t)(dot - eid_s - 1) >= sizeof out->gid) return false;
    memcpy(out->gid, eid_s + 1, (size_t)(dot - eid_s - 1));
    const char *t = dot + 1;
    if (strlen(t) >= sizeof out->rest) return false;
    snprintf(out->rest, sizeof out->rest, "%s", t);
    if ((t[0] == 'm' || t[0] == 'e') && t[1] >= '0' && t[1] <= '9') {
        char *end;
        long long v = strtoll(t + 1, &end, 10);
        if (v <= 0 || (t[0] == 'm' && *end)) return false;
        if (*end && *end != '.') return false;
        out->kind = t[0];
        out->n = v;
        return true;
    }
    out->kind = 's';
    return true;
}
