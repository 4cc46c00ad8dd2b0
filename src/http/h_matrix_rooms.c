/* SPDX-License-Identifier: MIT */
/* The write side of the Matrix rooms API (MATRIX.md 1.4, docs/matrix.md "Rooms: writing"):
 * createRoom, invite, join, leave, forget, kick, send, the two state types qun maps
 * (m.room.name and the users of m.room.power_levels), and the honest refusals (bans,
 * upgrades, redactions, tombstones, encryption).  Invitations are qun's: pending until
 * the invitee joins (accepts) or leaves (declines).  Every change goes through the same
 * core function as its /v1 route, with the same role checks, ledger entries and events;
 * these handlers only translate ids and bodies.  Bodies are lenient as Matrix's are:
 * unknown members are ignored, a known member of the wrong type is 400 M_BAD_JSON. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "mx_render.h"
#include "qun/event.h"
#include "qun/matrix.h"
#include "qun/read.h"

#define ROOM r->params[0]
#define REASON_MAX 500      /* bytes of a kick or leave reason, as /v1 has it */
#define NAME_MAX 128        /* bytes of a group name, as /v1 has it */
#define TEXT_MAX 16384      /* bytes of a message, as /v1 has it */
#define TYPING_MAX_MS 30000 /* a typing notice lasts at most this long */

enum { ACCEPT, DECLINE, REVOKE }; /* what becomes of a pending invitation */

/* ---- shared checks ---- */

/* A member a body may carry and the JSON type it must have when present (JSON_TRUE
 * stands for either boolean).  A null member reads as absent. */
typedef struct {
    const char *name;
    json_type type;
} mx_member_t;

static const char *type_name(json_type t) {
    switch (t) {
    case JSON_STRING: return "a string";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
    case JSON_INTEGER: return "an integer";
    default: return "a boolean";
    }
}

/* Matrix's leniency: members not in the table are ignored; a member of the table with
 * another type is M_BAD_JSON. */
static qun_rc check_types(qun_req_t *r, json_t *o, const mx_member_t *t) {
    for (; t->name; t++) {
        json_t *v = json_object_get(o, t->name);
        if (!v || json_is_null(v)) continue;
        bool ok = t->type == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == t->type;
        if (!ok)
            return qun_mx_fail(r, QUN_FIELD_INVALID, "M_BAD_JSON", "%s must be %s", t->name,
                               type_name(t->type));
    }
    return QUN_OK;
}

/* The group id of the room the path names: any other id (another server's room, an
 * alias, garbage) reads as a room the caller is not in. */
static qun_rc room_gid(qun_req_t *r, const char *room_id, char gid[QUN_ID_MAX]) {
    if (qun_mx_room_gid(room_id, gid)) return QUN_OK;
    return qun_mx_fail(r, QUN_NOT_A_MEMBER, "M_FORBIDDEN", "You are not in this room");
}

/* A core refusal as Matrix words it: a group the caller is not in, or that does not
 * exist, is "not in this room" (no disclosure). */
static qun_rc room_rc(qun_req_t *r, qun_rc rc) {
    if (rc == QUN_GROUP_NOT_FOUND)
        return qun_mx_fail(r, QUN_NOT_A_MEMBER, "M_FORBIDDEN", "You are not in this room");
    return rc;
}

/* The account a Matrix user id names: its row id and openid.  Other servers' users are
 * refused (no federation), malformed ids are M_INVALID_PARAM, unknown local users
 * M_NOT_FOUND. */
static qun_rc user_of(qun_req_t *r, const char *user_id, int64_t *uid, char openid[QUN_ID_MAX]) {
    char local[QUN_MX_LOCAL_MAX], username[QUN_USERNAME_MAX];
    if (!user_id) return qun_mx_fail(r, QUN_FIELD_MISSING, "M_MISSING_PARAM", "user_id is required");
    if (user_id[0] == '@' && qun_mx_remote(user_id))
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "federation is not supported");
    if (!qun_mx_user_local(user_id, local))
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "%.80s is not a user id", user_id);
    qun_rc rc = qun_mx_user_by_local(r->db, local, uid, openid, username, &r->err);
    if (rc == QUN_USER_NOT_FOUND)
        return qun_mx_fail(r, QUN_USER_NOT_FOUND, "M_NOT_FOUND", "no user %.80s on this server", user_id);
    return rc;
}

/* The optional reason of a kick or leave (NULL when absent). */
static qun_rc reason_of(qun_req_t *r, const char **reason) {
    static const mx_member_t t[] = {{"reason", JSON_STRING}, {0}};
    qun_rc rc = check_types(r, r->json, t);
    *reason = qun_jstr(r->json, "reason");
    if (rc == QUN_OK && *reason && strlen(*reason) > REASON_MAX)
        rc = qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "a reason is at most %d bytes", REASON_MAX);
    return rc;
}

static qun_rc empty(qun_req_t *r) {
    return qun_ok(r, 200, json_object());
}

static qun_rc room_answer(qun_req_t *r, const char *gid) {
    char room[QUN_MX_ID_MAX];
    qun_mx_room_id(gid, room, sizeof room);
    return qun_ok(r, 200, json_pack("{s:s}", "room_id", room));
}

/* {"event_id": "$<gid>.e<N>"}, N the last events row, which the change just appended
 * (the writer's transaction sees its own rows). */
static qun_rc state_answer(qun_req_t *r, const char *gid) {
    int64_t id;
    qun_rc rc = qun_event_last_id(r->db, &id, &r->err);
    if (rc != QUN_OK) return rc;
    char event[QUN_MX_ID_MAX];
    snprintf(event, sizeof event, "$%s.e%lld", gid, (long long)id);
    return qun_ok(r, 200, json_pack("{s:s}", "event_id", event));
}

/* ---- invitations ---- */

/* Invite user openid to group gid (admins and the owner, the core checks): a pending
 * invitation (POST /v1/groups/{id}/invitations) the user accepts with /join or declines
 * with /leave.  Inviting again while one is pending answers that one. */
static qun_rc invite(qun_req_t *r, const char *gid, const char *openid) {
    json_t *out = NULL;
    qun_rc rc = qun_invitation_create(r->db, &r->actor, gid, NULL, openid, "member", &out, &r->err);
    json_decref(out);
    return rc;
}

/* What becomes of user uid's pending invitation into group g: the caller (uid) accepts
 * or declines it, or revokes it (an inviter).  *found false when there is none. */
static qun_rc answer_invitation(qun_req_t *r, const qun_group_t *g, int64_t uid, int how, bool *found) {
    char iid[QUN_ID_MAX];
    json_t *out = NULL;
    qun_rc rc = qun_invitation_pending_for(r->db, g->id, uid, iid, &r->err);
    *found = rc == QUN_OK && iid[0];
    if (!*found) return rc;
    if (how == REVOKE)
        rc = qun_invitation_revoke(r->db, &r->actor, iid, &out, &r->err);
    else
        rc = qun_invitation_respond(r->db, &r->actor, iid, how == ACCEPT, &out, &r->err);
    json_decref(out);
    return rc;
}

/* ---- createRoom ---- */

/* The invitees of a createRoom as openids, checked before anything is created: no
 * other server's users, no unknown ones; the creator and repeats are dropped. */
static qun_rc invitees(qun_req_t *r, json_t *list, json_t *openids) {
    size_t i;
    json_t *e;
    if (json_array_size(list) > QUN_BULK_MAX)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "at most %d invitees", QUN_BULK_MAX);
    json_array_foreach(list, i, e) {
        int64_t uid;
        char openid[QUN_ID_MAX];
        if (!json_is_string(e))
            return qun_mx_fail(r, QUN_FIELD_INVALID, "M_BAD_JSON", "invite holds user ids");
        qun_rc rc = user_of(r, json_string_value(e), &uid, openid);
        if (rc != QUN_OK) return rc;
        bool seen = uid == r->actor.uid;
        size_t k;
        json_t *o;
        json_array_foreach(openids, k, o) {
            if (strcmp(json_string_value(o), openid) == 0) seen = true;
        }
        if (!seen) json_array_append_new(openids, json_string(openid));
    }
    return QUN_OK;
}

/* What qun cannot make of a createRoom body, refused before anything is created. */
static qun_rc create_refusals(qun_req_t *r) {
    const char *version = qun_jstr(r->json, "room_version");
    if (version && strcmp(version, "10") != 0)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_UNSUPPORTED_ROOM_VERSION",
                           "this server has room version 10 only");
    json_t *alias = json_object_get(r->json, "room_alias_name");
    if (alias && !json_is_null(alias))
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_UNKNOWN", "aliases not supported");
    json_t *cc = json_object_get(r->json, "creation_content");
    json_t *type = json_is_object(cc) ? json_object_get(cc, "type") : NULL;
    if (type && !json_is_null(type)) {
        if (!json_is_string(type))
            return qun_mx_fail(r, QUN_FIELD_INVALID, "M_BAD_JSON", "creation_content.type must be a string");
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_UNKNOWN",
                           "%s rooms are not supported: qun has plain groups only",
                           strcmp(json_string_value(type), "m.space") == 0 ? "space" : "typed");
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r->json, "initial_state"), i, e) {
        const char *t = json_is_object(e) ? qun_jstr(e, "type") : NULL;
        if (!t) return qun_mx_fail(r, QUN_FIELD_INVALID, "M_BAD_JSON", "initial_state holds state events");
        if (strcmp(t, "m.room.encryption") == 0)
            return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                               "qun does not support end-to-end encryption: exports, desensitization and "
                               "purge receipts need messages the server can read");
    }
    if (json_array_size(json_object_get(r->json, "invite_3pid")) > 0)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                           "invitations by e-mail or phone are not supported");
    const char *name = qun_jstr(r->json, "name");
    if (name && strlen(name) > NAME_MAX)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "a room name is at most %d bytes",
                           NAME_MAX);
    return QUN_OK;
}

/* POST /createRoom: a standard group (every preset makes an invite-only group) with the
 * creator as owner and each invitee invited, in this one writer step: a refusal of
 * any invitee creates nothing.  No name stores "" (and renders no m.room.name). */
qun_rc h_mx_create_room(qun_req_t *r) {
    static const mx_member_t t[] = {{"name", JSON_STRING},
                                    {"topic", JSON_STRING},
                                    {"invite", JSON_ARRAY},
                                    {"invite_3pid", JSON_ARRAY},
                                    {"preset", JSON_STRING},
                                    {"visibility", JSON_STRING},
                                    {"is_direct", JSON_TRUE},
                                    {"room_version", JSON_STRING},
                                    {"creation_content", JSON_OBJECT},
                                    {"initial_state", JSON_ARRAY},
                                    {"power_level_content_override", JSON_OBJECT},
                                    {"room_alias_name", JSON_STRING},
                                    {0}};
    qun_rc rc = check_types(r, r->json, t);
    if (rc == QUN_OK) rc = create_refusals(r);
    json_t *openids = json_array(), *out = NULL;
    if (rc == QUN_OK) rc = invitees(r, json_object_get(r->json, "invite"), openids);
    const char *name = qun_jstr(r->json, "name");
    if (rc == QUN_OK)
        rc = qun_group_create(r->db, &r->actor, name ? name : "", "standard", NULL, NULL, &out, &r->err);
    char gid[QUN_ID_MAX] = "";
    if (rc == QUN_OK) snprintf(gid, sizeof gid, "%s", qun_jstr(out, "id"));
    size_t i;
    json_t *e;
    json_array_foreach(openids, i, e) {
        if (rc == QUN_OK) rc = invite(r, gid, json_string_value(e));
    }
    json_decref(openids);
    json_decref(out);
    return rc == QUN_OK ? room_answer(r, gid) : rc;
}

/* ---- membership ---- */

/* POST /rooms/{roomId}/invite {user_id, reason?}. */
qun_rc h_mx_invite(qun_req_t *r) {
    static const mx_member_t t[] = {{"user_id", JSON_STRING}, {0}};
    char gid[QUN_ID_MAX], openid[QUN_ID_MAX];
    int64_t uid;
    const char *reason;
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = check_types(r, r->json, t);
    if (rc == QUN_OK) rc = reason_of(r, &reason);
    if (rc == QUN_OK) rc = user_of(r, qun_jstr(r->json, "user_id"), &uid, openid);
    if (rc == QUN_OK) rc = room_rc(r, invite(r, gid, openid));
    return rc == QUN_OK ? empty(r) : rc;
}

/* POST /join/{roomIdOrAlias} and /rooms/{roomId}/join: a member joins again at no
 * cost (matrix-nio invites and then joins); a pending invitation is accepted; every
 * group is invite-only, so anything else is refused. */
qun_rc h_mx_join(qun_req_t *r) {
    char gid[QUN_ID_MAX];
    qun_group_t g;
    bool found = false;
    if (ROOM[0] == '#') return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "room aliases are not supported");
    if (ROOM[0] == '!' && qun_mx_remote(ROOM))
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "federation is not supported");
    if (!qun_mx_room_gid(ROOM, gid))
        return qun_mx_fail(r, QUN_NOT_A_MEMBER, "M_FORBIDDEN", "You are not invited to this room");
    qun_rc rc = qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err);
    if (rc == QUN_OK) return room_answer(r, gid);
    if (rc != QUN_GROUP_NOT_FOUND) return rc;
    rc = qun_group_load(r->db, gid, &g, &r->err);
    if (rc == QUN_OK) rc = answer_invitation(r, &g, r->actor.uid, ACCEPT, &found);
    if (rc != QUN_OK && rc != QUN_GROUP_NOT_FOUND) return rc;
    if (!found) return qun_mx_fail(r, QUN_NOT_A_MEMBER, "M_FORBIDDEN", "You are not invited to this room");
    return room_answer(r, gid);
}

/* POST /rooms/{roomId}/leave {reason?}: leave the group (the owner cannot: ownership
 * moves first, through qun's transfer), or decline a pending invitation. */
qun_rc h_mx_leave(qun_req_t *r) {
    char gid[QUN_ID_MAX];
    const char *reason;
    qun_group_t g;
    bool found = false;
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = reason_of(r, &reason);
    if (rc == QUN_OK) rc = qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err);
    if (rc == QUN_OK && g.role == QUN_ROLE_OWNER)
        return qun_mx_fail(r, QUN_OWNER_MUST_TRANSFER, "M_FORBIDDEN",
                           "the owner cannot leave; transfer ownership first (in qun's own apps)");
    if (rc == QUN_OK) rc = qun_group_leave(r->db, &r->actor, gid, reason, &r->err);
    if (rc == QUN_OK) return empty(r);
    if (rc != QUN_GROUP_NOT_FOUND) return rc;
    rc = qun_group_load(r->db, gid, &g, &r->err);
    if (rc == QUN_OK) rc = answer_invitation(r, &g, r->actor.uid, DECLINE, &found);
    if (rc != QUN_OK && rc != QUN_GROUP_NOT_FOUND) return rc;
    return found ? empty(r) : qun_mx_fail(r, QUN_NOT_A_MEMBER, "M_FORBIDDEN", "You are not in this room");
}

/* POST /rooms/{roomId}/forget: hide a room the caller is no longer in from later
 * initial syncs.  A room that does not exist is forgotten too (nothing to record), so
 * the answer tells nothing about other people's groups. */
qun_rc h_mx_forget(qun_req_t *r) {
    char gid[QUN_ID_MAX];
    qun_group_t g;
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err);
    if (rc == QUN_OK)
        return qun_mx_fail(r, QUN_ALREADY_MEMBER, "M_FORBIDDEN",
                           "You are still in this room: leave it first");
    if (rc != QUN_GROUP_NOT_FOUND && rc != QUN_GROUP_GONE) return rc;
    rc = qun_group_load(r->db, gid, &g, &r->err);
    if (rc == QUN_OK) rc = qun_mx_forget(r->db, r->actor.uid, g.id, &r->err);
    return rc == QUN_OK || rc == QUN_GROUP_NOT_FOUND ? empty(r) : rc;
}

/* POST /rooms/{roomId}/kick {user_id, reason?}: the removal of DELETE
 * /v1/groups/{id}/members/{openid} (owner; admins remove members only), which counts
 * against the same daily bulk-removal window; someone invited and not yet a member has
 * the invitation revoked.  Past the window's threshold a removal needs proofs a Matrix
 * client cannot give: refused with qun's flow named. */
qun_rc h_mx_kick(qun_req_t *r) {
    static const mx_member_t t[] = {{"user_id", JSON_STRING}, {0}};
    char gid[QUN_ID_MAX], openid[QUN_ID_MAX];
    int64_t uid;
    const char *reason;
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = check_types(r, r->json, t);
    if (rc == QUN_OK) rc = reason_of(r, &reason);
    if (rc == QUN_OK) rc = user_of(r, qun_jstr(r->json, "user_id"), &uid, openid);
    if (rc != QUN_OK) return rc;
    json_t *problem = NULL;
    qun_action_proof_t proof = {.problem = &problem};
    rc = room_rc(r, qun_member_remove(r->db, &r->actor, gid, openid, reason, &proof, &r->err));
    if (rc == QUN_MEMBER_NOT_FOUND) { /* a Matrix kick withdraws an invitation too */
        qun_group_t g;
        bool found = false;
        qun_err_t refusal = r->err;
        qun_rc irc = qun_group_load(r->db, gid, &g, &r->err);
        if (irc == QUN_OK) irc = answer_invitation(r, &g, uid, REVOKE, &found);
        if (irc != QUN_OK || found) rc = irc;
        if (irc == QUN_OK && !found) r->err = refusal;
    }
    if (rc == QUN_MATRIX_FORBIDDEN) {
        json_decref(r->problem_extra);
        r->problem_extra = problem;
        return qun_mx_fail(r, rc, "M_FORBIDDEN",
                           "more than %lld members removed from this group within a day: further removals "
                           "need qun's bulk-removal verification (preview, then proofs) in qun's own apps",
                           (long long)qun_policy_verification(qun_core_cfg.policy)->bulk_verify_above);
    }
    json_decref(problem);
    return rc == QUN_OK ? empty(r) : rc;
}

/* ---- refusals naming qun's own flows ---- */

qun_rc h_mx_ban(qun_req_t *r) {
    char gid[QUN_ID_MAX];
    qun_rc rc = room_gid(r, ROOM, gid);
    return rc == QUN_OK
               ? qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "qun has no bans; remove the member")
               : rc;
}

qun_rc h_mx_upgrade(qun_req_t *r) {
    char gid[QUN_ID_MAX];
    qun_rc rc = room_gid(r, ROOM, gid);
    return rc == QUN_OK ? qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                                      "rooms are not upgraded: use qun's dissolve-and-rebuild (successor)")
                        : rc;
}

/* PUT /rooms/{roomId}/redact/{eventId}/{txnId}: a recall or removal of a message, the
 * same core call as DELETE /v1/groups/{id}/messages/{seq} (window and roles enforced
 * there).  Only message events ("$<gid>.m<seq>") are redacted; the answer's event id
 * is the redaction's, the same on every repeat. */
qun_rc h_mx_redact(qun_req_t *r) {
    static const mx_member_t t[] = {{"reason", JSON_STRING}, {0}};
    char gid[QUN_ID_MAX];
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = check_types(r, r->json, t);
    if (rc != QUN_OK) return rc;
    const char *reason = qun_jstr(r->json, "reason");
    if (reason && strlen(reason) > 500)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "a reason is at most 500 bytes");
    mx_eid_t e;
    if (!mx_eid_parse(r->params[1], &e) || e.kind != 'm' || strcmp(e.gid, gid) != 0)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                           "only messages of this room can be redacted");
    json_t *out = NULL;
    rc = room_rc(
        r, qun_message_recall(r->db, &r->actor, gid, e.n, reason && *reason ? reason : NULL, &out, &r->err));
    json_decref(out);
    if (rc == QUN_RECALL_WINDOW_PASSED || rc == QUN_FORBIDDEN_ROLE || rc == QUN_MESSAGE_NOT_RECALLABLE ||
        rc == QUN_FIELD_MISSING) {
        char why[sizeof r->err.msg];
        snprintf(why, sizeof why, "%s", r->err.msg);
        return qun_mx_fail(r, rc, "M_FORBIDDEN", "%s", why);
    }
    if (rc != QUN_OK) return rc;
    char id[QUN_MX_ID_MAX];
    snprintf(id, sizeof id, "$%s.r%lld", gid, (long long)e.n);
    return qun_ok(r, 200, json_pack("{s:s}", "event_id", id));
}

/* ---- messages ---- */

/* Why an event type other than m.room.message is refused. */
static const char *event_refusal(const char *type) {
    if (strcmp(type, "m.room.encrypted") == 0) return "qun does not support end-to-end encryption";
    if (strcmp(type, "m.reaction") == 0) return "qun has no reactions";
    if (strcmp(type, "m.sticker") == 0) return "qun has no stickers";
    if (strncmp(type, "m.call.", 7) == 0) return "qun has no calls";
    return "qun accepts m.room.message events only";
}

/* The answer to a posted message: its event id. */
static qun_rc sent(qun_req_t *r, const char *gid, json_t *out) {
    char event[QUN_MX_ID_MAX];
    snprintf(event, sizeof event, "$%s.m%lld", gid,
             (long long)json_integer_value(json_object_get(out, "seq")));
    json_decref(out);
    return qun_ok(r, 200, json_pack("{s:s}", "event_id", event));
}

/* An m.image, m.file, m.audio or m.video whose url is mxc://<our server>/<media id>:
 * in this one transaction the media is attached to the group (core/mx_media.c: the
 * file joins the group's files as a /v1 upload would) and the message is stored with
 * a reference to the file.  Its body is the client's, or the file's name. */
static qun_rc send_media(qun_req_t *r, const char *gid, const char *msgtype, const char *body) {
    static const mx_member_t t[] = {{"url", JSON_STRING}, {0}};
    qun_rc rc = check_types(r, r->json, t);
    if (rc != QUN_OK) return rc;
    const char *url = qun_jstr(r->json, "url");
    if (!url || strncmp(url, "mxc://", 6) != 0 || !strchr(url + 6, '/'))
        return qun_mx_fail(
            r, QUN_FIELD_INVALID, "M_INVALID_PARAM",
            "a media message has a url mxc://<server>/<media id> (encrypted media are not supported)");
    const char *server = url + 6, *slash = strchr(server, '/');
    size_t sn = strlen(qun_mx_cfg.server_name);
    if ((size_t)(slash - server) != sn || strncmp(server, qun_mx_cfg.server_name, sn) != 0)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                           "federation is not supported: only this server's media can be sent");
    if (strlen(body) > TEXT_MAX)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "a message body is at most %d bytes",
                           TEXT_MAX);
    qun_mx_media_t m;
    rc = room_rc(r, qun_mx_media_attach(r->db, &r->actor, gid, slash + 1, &m, &r->err));
    if (rc == QUN_FILE_NOT_FOUND)
        return qun_mx_fail(r, rc, "M_NOT_FOUND", "no media %.64s of yours on this server", slash + 1);
    if (rc != QUN_OK) return rc;
    qun_msg_file_t file = {m.sha256, m.name, m.content_type, m.size};
    qun_msg_opts_t opts = {.msgtype = msgtype, .txn_id = r->params[2], .file = &file, .media_id = m.media_id};
    json_t *out = NULL;
    rc = room_rc(r, qun_message_post_ex(r->db, &r->actor, gid, *body ? body : m.name, &opts, &out, &r->err));
    return rc == QUN_OK ? sent(r, gid, out) : rc;
}

/* PUT /rooms/{roomId}/send/{eventType}/{txnId}: a text message (m.text, m.notice,
 * m.emote; its plain body only), or a media message (send_media), posted as POST /v1/groups/{id}/messages
 * does, with its msgtype and txnId kept (the sender's sync echoes the txnId).  The router made the txnId the
 * idempotency key of this session, so a retry gets the first event id back, even once the group is gone. */
qun_rc h_mx_send(qun_req_t *r) {
    static const mx_member_t t[] = {{"msgtype", JSON_STRING}, {"body", JSON_STRING}, {0}};
    char gid[QUN_ID_MAX];
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc != QUN_OK) return rc;
    if (strcmp(r->params[1], "m.room.message") != 0)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "%s", event_refusal(r->params[1]));
    rc = check_types(r, r->json, t);
    const char *msgtype = qun_jstr(r->json, "msgtype"), *body = qun_jstr(r->json, "body");
    if (rc == QUN_OK && (!msgtype || !body))
        rc = qun_mx_fail(r, QUN_FIELD_MISSING, "M_BAD_JSON", "a message has a msgtype and a body");
    if (rc != QUN_OK) return rc;
    static const char *media[] = {"m.image", "m.file", "m.audio", "m.video"};
    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++)
        if (strcmp(msgtype, media[i]) == 0) return send_media(r, gid, msgtype, body);
    if (strcmp(msgtype, "m.text") != 0 && strcmp(msgtype, "m.notice") != 0 && strcmp(msgtype, "m.emote") != 0)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                           "qun stores m.text, m.notice and m.emote messages");
    size_t n = strlen(body);
    if (n == 0 || n > TEXT_MAX)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "a message body is 1 to %d bytes",
                           TEXT_MAX);
    json_t *out = NULL;
    qun_msg_opts_t opts = {.msgtype = msgtype, .txn_id = r->params[2]};
    rc = room_rc(r, qun_message_post_ex(r->db, &r->actor, gid, body, &opts, &out, &r->err));
    return rc == QUN_OK ? sent(r, gid, out) : rc;
}

/* ---- state ---- */

/* m.room.name {name}: PATCH /v1/groups/{id}'s rename (owner and admins). */
static qun_rc put_name(qun_req_t *r, const char *gid) {
    static const mx_member_t t[] = {{"name", JSON_STRING}, {0}};
    qun_rc rc = check_types(r, r->json, t);
    const char *name = qun_jstr(r->json, "name");
    if (rc == QUN_OK && (!name || !*name || strlen(name) > NAME_MAX))
        rc = qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "a room name is 1 to %d bytes", NAME_MAX);
    json_t *out = NULL;
    if (rc == QUN_OK) rc = room_rc(r, qun_group_rename(r->db, &r->actor, gid, name, &out, &r->err));
    json_decref(out);
    return rc == QUN_OK ? state_answer(r, gid) : rc;
}

/* The power levels an active room has (mx_render.c, MATRIX.md 2.3) but for `users`. */
static json_t *levels_base(void) {
    json_t *none = json_array(), *b = mx_power_levels(NULL, none, false);
    json_decref(none);
    json_object_del(b, "users");
    return b;
}

/* Whether a key of content that is not `users` changes what base has: 403 when it
 * does, M_BAD_JSON for a level that is not an integer.  Keys qun does not know are
 * ignored, as are the ones content leaves out (they stay as they are). */
static qun_rc levels_unchanged(qun_req_t *r, json_t *content, json_t *base) {
    const char *key;
    json_t *v;
    json_object_foreach(content, key, v) {
        json_t *b = json_object_get(base, key);
        if (!b || strcmp(key, "users") == 0) continue;
        if (json_is_object(b) != json_is_object(v) || (!json_is_object(v) && !json_is_integer(v)))
            return qun_mx_fail(r, QUN_FIELD_INVALID, "M_BAD_JSON", "%.40s must be %s", key,
                               json_is_object(b) ? "an object" : "an integer");
        bool same = !json_is_integer(v) || json_integer_value(v) == json_integer_value(b);
        const char *k2;
        json_t *v2;
        json_object_foreach(json_is_object(v) ? v : NULL, k2, v2) {
            json_t *b2 = json_object_get(b, k2);
            if (!json_is_integer(v2))
                return qun_mx_fail(r, QUN_FIELD_INVALID, "M_BAD_JSON", "levels are integers");
            same = same && b2 && json_integer_value(b2) == json_integer_value(v2);
        }
        if (!same)
            return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                               "qun's power levels are fixed but for its roles: only `users` may change "
                               "(%.40s differs)",
                               key);
    }
    return QUN_OK;
}

static int level_of(const char *role) {
    return strcmp(role, "owner") == 0 ? 100 : strcmp(role, "admin") == 0 ? 50 : 0;
}

/* The role change from level `from` to level `to`: "admin" or "member", or a refusal. */
static qun_rc role_change(qun_req_t *r, const char *who, json_int_t from, json_int_t to, const char **role) {
    if (from == 100 || to == 100)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                           "ownership moves only through qun's transfer (preview, proofs, acceptance)");
    if (to != 0 && to != 50)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                           "qun's levels are 0 (member), 50 (admin) and 100 (owner); %.80s cannot have %lld",
                           who, (long long)to);
    *role = to == 50 ? "admin" : "member";
    return QUN_OK;
}

/* Every member of gid as {openid: role} into *out (pages of qun_member_list). */
static qun_rc member_roles(qun_req_t *r, const char *gid, json_t **out) {
    int64_t after = 0;
    *out = json_object();
    for (;;) {
        json_t *page = NULL;
        qun_rc rc = qun_member_list(r->db, &r->actor, gid, after, 200, &page, &r->err);
        if (rc != QUN_OK) return rc;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(page, "items"), i, m)
            json_object_set_new(*out, qun_jstr(m, "openid"), json_string(qun_jstr(m, "role")));
        const char *next = qun_jstr(page, "next_cursor");
        after = next ? strtoll(next, NULL, 10) : 0;
        json_decref(page);
        if (!next) return QUN_OK;
    }
}

/* m.room.power_levels: only the users' levels may change, and only between 0 and 50
 * (PATCH /v1/groups/{id}/members/{openid} {role}, the owner's); ownership never moves
 * here.  A member content leaves out has users_default (0). */
static qun_rc put_levels(qun_req_t *r, const char *gid) {
    static const mx_member_t t[] = {{"users", JSON_OBJECT}, {0}};
    qun_group_t g;
    qun_rc rc = room_rc(r, qun_group_access(r->db, &r->actor, gid, QUN_ROLE_OWNER, &g, &r->err));
    if (rc == QUN_OK) rc = check_types(r, r->json, t);
    json_t *base = levels_base(), *roles = NULL, *wanted = NULL;
    if (rc == QUN_OK) rc = levels_unchanged(r, r->json, base);
    json_decref(base);
    /* No users at all leaves every level as it is (only they may change). */
    if (rc == QUN_OK && !json_object_get(r->json, "users")) return state_answer(r, gid);
    if (rc == QUN_OK) rc = member_roles(r, gid, &roles);
    wanted = json_object();
    /* The level content gives each user it names, by openid. */
    const char *uid_text;
    json_t *v;
    json_object_foreach(json_object_get(r->json, "users"), uid_text, v) {
        int64_t uid;
        char openid[QUN_ID_MAX];
        if (rc != QUN_OK) break;
        if (!json_is_integer(v)) rc = qun_mx_fail(r, QUN_FIELD_INVALID, "M_BAD_JSON", "levels are integers");
        if (rc == QUN_OK) rc = user_of(r, uid_text, &uid, openid);
        if (rc == QUN_USER_NOT_FOUND && json_integer_value(v) == 0) { /* a stale entry: nothing to change */
            rc = QUN_OK;
            r->mx_errcode = NULL;
            continue;
        }
        if (rc == QUN_OK && !json_object_get(roles, openid) && json_integer_value(v) != 0)
            rc = qun_mx_fail(r, QUN_MEMBER_NOT_FOUND, "M_FORBIDDEN", "%.80s is not in this room", uid_text);
        if (rc == QUN_OK) json_object_set(wanted, openid, v);
    }
    /* Then every member whose level changes, in one writer step: all or nothing. */
    const char *openid;
    json_t *role;
    json_object_foreach(roles, openid, role) {
        if (rc != QUN_OK) break;
        json_int_t from = level_of(json_string_value(role));
        json_t *w = json_object_get(wanted, openid);
        json_int_t to = w ? json_integer_value(w) : 0;
        const char *new_role = NULL;
        json_t *out = NULL;
        if (from == to) continue;
        rc = role_change(r, openid, from, to, &new_role);
        if (rc == QUN_OK) rc = qun_member_set_role(r->db, &r->actor, gid, openid, new_role, &out, &r->err);
        json_decref(out);
    }
    json_decref(roles);
    json_decref(wanted);
    return rc == QUN_OK ? state_answer(r, gid) : rc;
}

/* Why a state type other than the two above is refused. */
static const char *state_refusal(const char *type) {
    if (strcmp(type, "m.room.tombstone") == 0)
        return "rooms are not replaced here: use qun's dissolve-and-rebuild (successor)";
    if (strcmp(type, "m.room.encryption") == 0)
        return "qun does not support end-to-end encryption: exports, desensitization and purge receipts need "
               "messages the server can read";
    if (strcmp(type, "m.room.join_rules") == 0 || strcmp(type, "m.room.history_visibility") == 0 ||
        strcmp(type, "m.room.guest_access") == 0)
        return "every qun group is invite-only and shows its members the whole history";
    return "qun keeps only the room name and its members' roles as state";
}

/* PUT /rooms/{roomId}/state/{eventType}[/{stateKey}]: m.room.name and the users of
 * m.room.power_levels, both with the empty state key; everything else is refused. */
qun_rc h_mx_state_put(qun_req_t *r) {
    char gid[QUN_ID_MAX];
    const char *type = r->params[1], *key = r->params[2] ? r->params[2] : "";
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc != QUN_OK) return rc;
    bool name = strcmp(type, "m.room.name") == 0, levels = strcmp(type, "m.room.power_levels") == 0;
    if ((name || levels) && *key)
        return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "%s has the empty state key only", type);
    if (name) return put_name(r, gid);
    if (levels) return put_levels(r, gid);
    return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "%s", state_refusal(type));
}

/* ---- receipts, read markers, typing (docs/matrix.md "Receipts, unread counts and typing") ---- */

/* The message seq event id eid of group g stands for, for a receipt: a message is its
 * own seq; a state change (an events row) the newest message at or before its stream
 * position; the current-state events no message.  Anything else, or an event of another
 * room, is M_NOT_FOUND. */
static qun_rc event_seq(qun_req_t *r, const qun_group_t *g, const char *eid, int64_t *seq) {
    mx_eid_t id;
    qun_mx_room_t room;
    *seq = 0;
    if (!eid || !mx_eid_parse(eid, &id) || strcmp(id.gid, g->gid) != 0)
        return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no such event in this room");
    if (id.kind == 'm') {
        qun_rc rc = qun_mx_view_room(r->db, r->actor.uid, g->id, NULL, &room, &r->err);
        if (rc != QUN_OK) return room_rc(r, rc);
        if (id.n > room.last_seq)
            return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no such event in this room");
        *seq = id.n;
        return QUN_OK;
    }
    if (id.kind == 'e') {
        qun_event_row_t row;
        qun_rc rc = qun_mx_view_row(r->db, g->id, id.n, &row, &r->err);
        if (rc == QUN_NOT_FOUND)
            return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no such event in this room");
        if (rc != QUN_OK) return rc;
        qun_event_rows_free(&row, 1);
        return qun_mx_view_seq_at(r->db, g->id, id.n, seq, &r->err);
    }
    static const char *const state[] = {"create", "pl0", "jr",   "hv",   "ga",
                                        "name",   "grp", "diss", "tomb", NULL};
    for (int i = 0; state[i]; i++)
        if (strcmp(id.rest, state[i]) == 0) return QUN_OK;
    if (strncmp(id.rest, "j.", 2) == 0 && id.rest[2]) return QUN_OK;
    return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no such event in this room");
}

/* One receipt or marker of type on event eid of group g: m.read and m.read.private move
 * the read position (include/qun/read.h), m.fully_read is the room's account data. */
static qun_rc mark(qun_req_t *r, const qun_group_t *g, const char *type, const char *eid) {
    int64_t seq;
    qun_rc rc = event_seq(r, g, eid, &seq);
    if (rc != QUN_OK) return rc;
    if (strcmp(type, "m.fully_read") == 0) {
        json_t *c = json_pack("{s:s}", "event_id", eid);
        char *text = json_dumps(c, JSON_COMPACT);
        json_decref(c);
        if (!text) return qun_fail(&r->err, QUN_NOMEM, "out of memory");
        rc = qun_mx_data_put(r->db, r->actor.uid, g->id, "m.fully_read", text, &r->err);
        free(text);
        return rc;
    }
    bool public_ = strcmp(type, "m.read") == 0;
    return qun_read_mark(r->db, r->actor.uid, g, seq, public_, qun_now_ms(), NULL, &r->err);
}

static bool receipt_type(const char *type) {
    return strcmp(type, "m.read") == 0 || strcmp(type, "m.read.private") == 0 ||
           strcmp(type, "m.fully_read") == 0;
}

/* POST /rooms/{roomId}/receipt/{receiptType}/{eventId} {thread_id?}: threads are not
 * kept apart (every receipt is the room's). */
qun_rc h_mx_receipt(qun_req_t *r) {
    static const mx_member_t t[] = {{"thread_id", JSON_STRING}, {0}};
    char gid[QUN_ID_MAX];
    qun_group_t g;
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = check_types(r, r->json, t);
    if (rc == QUN_OK && !receipt_type(r->params[1]))
        rc = qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "unknown receipt type %.80s", r->params[1]);
    if (rc == QUN_OK) rc = room_rc(r, qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err));
    if (rc == QUN_OK) rc = mark(r, &g, r->params[1], r->params[2]);
    return rc == QUN_OK ? empty(r) : rc;
}

/* POST /rooms/{roomId}/read_markers {m.fully_read?, m.read?, m.read.private?}. */
qun_rc h_mx_read_markers(qun_req_t *r) {
    static const mx_member_t t[] = {
        {"m.fully_read", JSON_STRING}, {"m.read", JSON_STRING}, {"m.read.private", JSON_STRING}, {0}};
    char gid[QUN_ID_MAX];
    qun_group_t g;
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = check_types(r, r->json, t);
    if (rc == QUN_OK) rc = room_rc(r, qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err));
    for (int i = 0; rc == QUN_OK && t[i].name; i++) {
        const char *eid = json_string_value(json_object_get(r->json, t[i].name));
        if (eid) rc = mark(r, &g, t[i].name, eid);
    }
    return rc == QUN_OK ? empty(r) : rc;
}

/* PUT /rooms/{roomId}/typing/{userId} {typing, timeout?}: only for oneself. */
qun_rc h_mx_typing(qun_req_t *r) {
    static const mx_member_t t[] = {{"typing", JSON_TRUE}, {"timeout", JSON_INTEGER}, {0}};
    char gid[QUN_ID_MAX], local[QUN_MX_LOCAL_MAX], mine[QUN_MX_LOCAL_MAX];
    qun_group_t g;
    qun_rc rc = room_gid(r, ROOM, gid);
    if (rc == QUN_OK) rc = check_types(r, r->json, t);
    if (rc == QUN_OK && !json_is_boolean(json_object_get(r->json, "typing")))
        rc = qun_mx_fail(r, QUN_FIELD_MISSING, "M_MISSING_PARAM", "typing is required");
    if (rc == QUN_OK) rc = qun_mx_view_local(r->db, r->actor.openid, mine, &r->err);
    if (rc == QUN_OK && (!qun_mx_user_local(r->params[1], local) || strcmp(local, mine) != 0))
        rc = qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "you may only set your own typing state");
    if (rc == QUN_OK) rc = room_rc(r, qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err));
    json_t *profile = NULL;
    bool shared;
    if (rc == QUN_OK) rc = qun_mx_profile(r->db, r->actor.uid, r->actor.uid, &profile, &shared, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *to = json_object_get(r->json, "timeout");
    int64_t ms = json_is_integer(to) ? json_integer_value(to) : TYPING_MAX_MS;
    if (ms <= 0 || ms > TYPING_MAX_MS) ms = TYPING_MAX_MS;
    qun_typing_set(g.id, g.gid, r->actor.uid, r->actor.openid,
                   json_string_value(json_object_get(profile, "displayname")), mine,
                   json_is_true(json_object_get(r->json, "typing")), ms);
    json_decref(profile);
    return empty(r);
}
