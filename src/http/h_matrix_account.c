/* SPDX-License-Identifier: MIT */
/* Matrix discovery, login and the account-level routes (MATRIX.md 1.2): versions,
 * .well-known, login/logout, whoami, capabilities, push rules, filters, account data,
 * profiles, devices, and the honest refusals (registration, pushers).  A Matrix login
 * is a qun session of platform `matrix`: the same bearer token, usable on /v1 too, but
 * never for a destructive action (qun_verify_need). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "qun/lockout.h"
#include "qun/matrix.h"

static qun_rc answer(qun_req_t *r, json_t *out) {
    return qun_ok(r, 200, out);
}

qun_rc h_mx_well_known(qun_req_t *r) {
    return answer(r, json_pack("{s:{s:s}}", "m.homeserver", "base_url", qun_mx_cfg.base_url));
}

/* r0.6.1 for matrix-nio and hydrogen, v1.1 to v1.11 for matrix-js-sdk; v1.11 tells
 * clients to fetch media through the authenticated routes. */
qun_rc h_mx_versions(qun_req_t *r) {
    json_t *v = json_pack("[s]", "r0.6.1");
    char name[16];
    for (int i = 1; i <= 11; i++) {
        snprintf(name, sizeof name, "v1.%d", i);
        json_array_append_new(v, json_string(name));
    }
    return answer(r, json_pack("{s:o, s:{}}", "versions", v, "unstable_features"));
}

qun_rc h_mx_login_flows(qun_req_t *r) {
    return answer(r, json_pack("{s:[{s:s}]}", "flows", "type", "m.login.password"));
}

/* The user a login names: identifier.user (m.id.user) or the legacy top-level user. */
static const char *login_name(json_t *body) {
    json_t *id = json_object_get(body, "identifier");
    const char *u = json_is_object(id) ? qun_jstr(id, "user") : NULL;
    return u ? u : qun_jstr(body, "user");
}

const char *qun_mx_login_user(qun_req_t *r) {
    if (r->mx_user[0]) return r->mx_user;
    const char *u = login_name(r->json);
    char local[QUN_MX_LOCAL_MAX], openid[QUN_ID_MAX], username[QUN_USERNAME_MAX];
    int64_t uid;
    qun_err_t ignore;
    if (!u || strlen(u) >= QUN_MX_LOCAL_MAX) return "";
    if (u[0] == '@') {
        if (!qun_mx_user_local(u, local)) return "";
    } else {
        snprintf(local, sizeof local, "%s", u);
    }
    /* A localpart first (Matrix's own name for the account), then a qun username. */
    if (qun_mx_user_by_local(r->db, local, &uid, openid, username, &ignore) == QUN_OK)
        snprintf(r->mx_user, sizeof r->mx_user, "%s", username);
    else
        snprintf(r->mx_user, sizeof r->mx_user, "%s", local);
    return r->mx_user;
}

typedef struct {
    int64_t uid;
    qun_rc found; /* QUN_OK, or QUN_USER_NOT_FOUND: the password is hashed all the same */
    char hash[crypto_pwhash_STRBYTES];
    char token[64];
    char device_id[65];
} mx_login_t;

static void random_token(char *out, size_t size, const char *prefix, size_t nbytes) {
    unsigned char raw[32];
    qun_random(raw, nbytes);
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    sodium_bin2base64(out + n, size - n, raw, nbytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* On a password thread (slow.c): password hashing is slow on purpose. */
static qun_rc mx_login_check(qun_req_t *r) {
    mx_login_t *l = r->scratch;
    if (!qun_password_login_ok(l->found == QUN_OK, l->hash, qun_jstr(r->json, "password")))
        return qun_fail(&r->err, QUN_BAD_CREDENTIALS, "Invalid username or password");
    random_token(l->token, sizeof l->token, "qun_", 32);
    if (!l->device_id[0]) random_token(l->device_id, sizeof l->device_id, "MX", 9);
    return QUN_OK;
}

/* The user's stored hash read here; the password checked on a password thread. */
qun_rc h_mx_login_prep(qun_req_t *r) {
    const char *type = qun_jstr(r->json, "type");
    if (!type || strcmp(type, "m.login.password") != 0)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_UNKNOWN", "only m.login.password is supported");
    json_t *id = json_object_get(r->json, "identifier");
    const char *idtype = json_is_object(id) ? qun_jstr(id, "type") : NULL;
    if (idtype && strcmp(idtype, "m.id.user") != 0)
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_UNKNOWN", "only m.id.user identifiers are supported");
    const char *user = login_name(r->json), *password = qun_jstr(r->json, "password");
    const char *device = qun_jstr(r->json, "device_id");
    if (!user || !password)
        return qun_mx_fail(r, QUN_FIELD_MISSING, "M_MISSING_PARAM", "send the user and the password");
    if (user[0] == '@' && qun_mx_remote(user))
        return qun_mx_fail(r, QUN_BAD_CREDENTIALS, "M_FORBIDDEN", "this server has only its own users");
    if (strlen(password) > 256 || (device && (strlen(device) == 0 || strlen(device) > 64)))
        return qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "password or device_id too long");
    mx_login_t *l = qun_xcalloc(1, sizeof *l);
    r->scratch = l;
    const char *username = qun_mx_login_user(r);
    qun_rc rc = username[0] ? qun_user_credentials(r->db, username, &l->uid, l->hash, sizeof l->hash, &r->err)
                            : qun_fail(&r->err, QUN_USER_NOT_FOUND, "no such user");
    if (rc != QUN_OK && rc != QUN_USER_NOT_FOUND) return rc;
    l->found = rc;
    if (device) snprintf(l->device_id, sizeof l->device_id, "%s", device);
    r->slow = mx_login_check;
    return QUN_OK;
}

qun_rc h_mx_login(qun_req_t *r) {
    mx_login_t *l = r->scratch;
    char hash[65], new_secret[65], secret[64];
    qun_sha256_hex(hash, l->token, strlen(l->token));
    /* qun stores a device secret for every device; a Matrix client never learns it. */
    random_token(secret, sizeof secret, "qds_", 32);
    qun_sha256_hex(new_secret, secret, strlen(secret));
    json_t *out = NULL;
    qun_rc rc = qun_session_create(r->db, l->uid, hash, l->device_id, "matrix", NULL, new_secret, r->ip, &out,
                                   &r->err);
    if (rc == QUN_DEVICE_SECRET_REQUIRED || rc == QUN_DEVICE_PLATFORM_MISMATCH)
        rc = qun_mx_fail(r, QUN_DEVICE_PLATFORM_MISMATCH, "M_FORBIDDEN",
                         "device %s belongs to one of qun's own apps; log in without a device_id",
                         l->device_id);
    if (rc == QUN_OK) rc = qun_lockout_reset(r->db, qun_mx_login_user(r), &r->err);
    json_decref(out);
    if (rc != QUN_OK) return rc;
    char local[QUN_MX_LOCAL_MAX], uid[QUN_MX_ID_MAX];
    rc = qun_mx_local_of(r->db, l->uid, local, &r->err);
    if (rc != QUN_OK) return rc;
    qun_mx_user_id(local, uid, sizeof uid);
    return answer(r, json_pack("{s:s, s:s, s:s, s:s, s:{s:{s:s}}}", "user_id", uid, "access_token", l->token,
                               "device_id", l->device_id, "home_server", qun_mx_cfg.server_name, "well_known",
                               "m.homeserver", "base_url", qun_mx_cfg.base_url));
}

static qun_rc logout(qun_req_t *r, bool all) {
    int64_t n;
    qun_rc rc = qun_session_revoke_own(r->db, &r->actor, all, &n, &r->err);
    return rc == QUN_OK ? answer(r, json_object()) : rc;
}

qun_rc h_mx_logout(qun_req_t *r) {
    return logout(r, false);
}

qun_rc h_mx_logout_all(qun_req_t *r) {
    return logout(r, true);
}

/* The caller's Matrix user id into out. */
static qun_rc own_id(qun_req_t *r, char out[QUN_MX_ID_MAX]) {
    char local[QUN_MX_LOCAL_MAX];
    qun_rc rc = qun_mx_local_of(r->db, r->actor.uid, local, &r->err);
    if (rc == QUN_OK) qun_mx_user_id(local, out, QUN_MX_ID_MAX);
    return rc;
}

qun_rc h_mx_whoami(qun_req_t *r) {
    char me[QUN_MX_ID_MAX];
    qun_rc rc = own_id(r, me);
    if (rc != QUN_OK) return rc;
    return answer(
        r, json_pack("{s:s, s:s, s:b}", "user_id", me, "device_id", r->actor.device_id, "is_guest", 0));
}

qun_rc h_mx_capabilities(qun_req_t *r) {
    return answer(r, json_pack("{s:{s:{s:s, s:{s:s}}, s:{s:b}, s:{s:b}, s:{s:b}, s:{s:b}}}", "capabilities",
                               "m.room_versions", "default", "10", "available", "10", "stable",
                               "m.change_password", "enabled", 0, "m.set_displayname", "enabled", 0,
                               "m.set_avatar_url", "enabled", 0, "m.3pid_changes", "enabled", 0));
}

/* No push gateway: an empty rule set (clients fill in the defaults). */
qun_rc h_mx_pushrules(qun_req_t *r) {
    return answer(r, json_pack("{s:{s:[], s:[], s:[], s:[], s:[]}}", "global", "override", "content", "room",
                               "sender", "underride"));
}

qun_rc h_mx_pushrules_change(qun_req_t *r) {
    return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "this server sends no push notifications");
}

qun_rc h_mx_pushers(qun_req_t *r) {
    return answer(r, json_pack("{s:[]}", "pushers"));
}

qun_rc h_mx_pushers_set(qun_req_t *r) {
    return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "this server sends no push notifications");
}

qun_rc h_mx_register(qun_req_t *r) {
    return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN",
                       "create your account in qun's app or console, then log in here");
}

qun_rc h_mx_public_rooms(qun_req_t *r) {
    return answer(r, json_pack("{s:[], s:i}", "chunk", "total_room_count_estimate", 0));
}

/* Routes under /user/{userId}/... act on the caller's own data only. */
static qun_rc own_user(qun_req_t *r, const char *user_id) {
    char me[QUN_MX_ID_MAX];
    qun_rc rc = own_id(r, me);
    if (rc != QUN_OK) return rc;
    if (strcmp(user_id, me) != 0)
        return qun_mx_fail(r, QUN_FORBIDDEN_ROLE, "M_FORBIDDEN", "you can only change your own data");
    return QUN_OK;
}

/* A JSON body as text within the size limit for stored client data. */
static qun_rc body_text(qun_req_t *r, char **text) {
    *text = json_dumps(r->json, JSON_COMPACT);
    if (!*text) return qun_fail(&r->err, QUN_NOMEM, "out of memory");
    if (strlen(*text) > QUN_MX_DATA_MAX) {
        free(*text);
        return qun_mx_fail(r, QUN_BODY_TOO_LARGE, "M_TOO_LARGE", "at most %d bytes of JSON", QUN_MX_DATA_MAX);
    }
    return QUN_OK;
}

qun_rc h_mx_filter_post(qun_req_t *r) {
    char *text;
    int64_t id;
    qun_rc rc = own_user(r, r->params[0]);
    if (rc == QUN_OK) rc = body_text(r, &text);
    if (rc != QUN_OK) return rc;
    rc = qun_mx_filter_put(r->db, r->actor.uid, text, &id, &r->err);
    free(text);
    if (rc != QUN_OK) return rc;
    char sid[24];
    snprintf(sid, sizeof sid, "%lld", (long long)id);
    return answer(r, json_pack("{s:s}", "filter_id", sid));
}

/* Answer a stored JSON text as the body, or M_NOT_FOUND. */
static qun_rc stored(qun_req_t *r, qun_rc rc, char *text) {
    if (rc == QUN_NOT_FOUND) return qun_mx_fail(r, rc, "M_NOT_FOUND", "not found");
    if (rc != QUN_OK) return rc;
    json_t *v = json_loads(text, 0, NULL);
    free(text);
    return v ? answer(r, v) : qun_fail(&r->err, QUN_INTERNAL, "stored JSON is unreadable");
}

qun_rc h_mx_filter_get(qun_req_t *r) {
    char *text = NULL, *end;
    qun_rc rc = own_user(r, r->params[0]);
    if (rc != QUN_OK) return rc;
    long long id = strtoll(r->params[1], &end, 10);
    if (*end || id <= 0) return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "no such filter");
    rc = qun_mx_filter_get(r->db, r->actor.uid, id, &text, &r->err);
    return stored(r, rc, text);
}

/* The group row id of room room_id for account data: 0 for none (global), or a group
 * the caller is a member of. */
static qun_rc data_room(qun_req_t *r, const char *room_id, int64_t *group_id) {
    char gid[QUN_ID_MAX];
    qun_group_t g;
    *group_id = 0;
    if (!room_id) return QUN_OK;
    if (!qun_mx_room_gid(room_id, gid))
        return qun_mx_fail(r, QUN_NOT_A_MEMBER, "M_FORBIDDEN", "You are not in this room");
    qun_rc rc = qun_group_access(r->db, &r->actor, gid, QUN_ROLE_MEMBER, &g, &r->err);
    if (rc == QUN_OK) *group_id = g.id;
    return rc;
}

static qun_rc data_get(qun_req_t *r, const char *room, const char *type) {
    int64_t gid;
    char *text = NULL;
    qun_rc rc = own_user(r, r->params[0]);
    if (rc == QUN_OK) rc = data_room(r, room, &gid);
    if (rc != QUN_OK) return rc;
    rc = qun_mx_data_get(r->db, r->actor.uid, gid, type, &text, &r->err);
    return stored(r, rc, text);
}

static qun_rc data_put(qun_req_t *r, const char *room, const char *type) {
    int64_t gid;
    char *text;
    qun_rc rc = own_user(r, r->params[0]);
    if (rc == QUN_OK) rc = data_room(r, room, &gid);
    if (rc == QUN_OK && strlen(type) > 255)
        rc = qun_mx_fail(r, QUN_FIELD_INVALID, "M_INVALID_PARAM", "the type is too long");
    if (rc == QUN_OK) rc = body_text(r, &text);
    if (rc != QUN_OK) return rc;
    rc = qun_mx_data_put(r->db, r->actor.uid, gid, type, text, &r->err);
    free(text);
    return rc == QUN_OK ? answer(r, json_object()) : rc;
}

qun_rc h_mx_data_get(qun_req_t *r) {
    return data_get(r, NULL, r->params[1]);
}

qun_rc h_mx_data_put(qun_req_t *r) {
    return data_put(r, NULL, r->params[1]);
}

qun_rc h_mx_room_data_get(qun_req_t *r) {
    return data_get(r, r->params[1], r->params[2]);
}

qun_rc h_mx_room_data_put(qun_req_t *r) {
    return data_put(r, r->params[1], r->params[2]);
}

/* A profile: the display name of the caller or of someone who shares a group with them
 * (anyone else reads as unknown: the directory of users is not public). */
static qun_rc profile(qun_req_t *r, json_t **out) {
    char local[QUN_MX_LOCAL_MAX], openid[QUN_ID_MAX], username[QUN_USERNAME_MAX];
    int64_t uid;
    bool shared = false;
    if (!qun_mx_user_local(r->params[0], local))
        return qun_mx_fail(r, QUN_USER_NOT_FOUND, "M_NOT_FOUND", "no such user on this server");
    qun_rc rc = qun_mx_user_by_local(r->db, local, &uid, openid, username, &r->err);
    if (rc == QUN_OK) rc = qun_mx_profile(r->db, r->actor.uid, uid, out, &shared, &r->err);
    if (rc == QUN_USER_NOT_FOUND || (rc == QUN_OK && !shared)) {
        json_decref(rc == QUN_OK ? *out : NULL);
        return qun_mx_fail(r, QUN_USER_NOT_FOUND, "M_NOT_FOUND", "no such user on this server");
    }
    return rc;
}

qun_rc h_mx_profile(qun_req_t *r) {
    json_t *p;
    qun_rc rc = profile(r, &p);
    return rc == QUN_OK ? answer(r, p) : rc;
}

qun_rc h_mx_profile_displayname(qun_req_t *r) {
    json_t *p;
    qun_rc rc = profile(r, &p);
    if (rc != QUN_OK) return rc;
    json_object_del(p, "avatar_url");
    return answer(r, p);
}

qun_rc h_mx_profile_avatar(qun_req_t *r) {
    json_t *p;
    qun_rc rc = profile(r, &p);
    if (rc != QUN_OK) return rc;
    json_decref(p);
    return qun_mx_fail(r, QUN_NOT_FOUND, "M_NOT_FOUND", "qun has no avatars");
}

qun_rc h_mx_profile_set(qun_req_t *r) {
    return qun_mx_fail(r, QUN_MATRIX_FORBIDDEN, "M_FORBIDDEN", "change your name in qun's app or console");
}

/* Devices: the account's devices with a live session, from qun's session list. */
static qun_rc devices(qun_req_t *r, json_t **out) {
    json_t *list;
    qun_rc rc = qun_session_list(r->db, &r->actor, &list, &r->err);
    if (rc != QUN_OK) return rc;
    *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(list, "items"), i, s) {
        const char *id = qun_jstr(s, "device_id");
        bool seen = false;
        size_t k;
        json_t *d;
        json_array_foreach(*out, k, d) seen = seen || strcmp(qun_jstr(d, "device_id"), id) == 0;
        if (!seen)
            json_array_append_new(
                *out, json_pack("{s:s, s:s, s:I}", "device_id", id, "display_name", qun_jstr(s, "platform"),
                                "last_seen_ts",
                                (json_int_t)json_integer_value(json_object_get(s, "created_at")) * 1000));
    }
    json_decref(list);
    return QUN_OK;
}

qun_rc h_mx_devices(qun_req_t *r) {
    json_t *d;
    qun_rc rc = devices(r, &d);
    return rc == QUN_OK ? answer(r, json_pack("{s:o}", "devices", d)) : rc;
}

qun_rc h_mx_device(qun_req_t *r) {
    json_t *d, *e;
    qun_rc rc = devices(r, &d);
    if (rc != QUN_OK) return rc;
    size_t i;
    json_array_foreach(d, i, e) if (strcmp(qun_jstr(e, "device_id"), r->params[0]) == 0) {
        json_incref(e);
        json_decref(d);
        return answer(r, e);
    }
    json_decref(d);
    return qun_mx_fail(r, QUN_DEVICE_NOT_FOUND, "M_NOT_FOUND", "no such device");
}

/* Presence is not tracked: everyone reads as online, and setting it changes nothing. */
qun_rc h_mx_presence_get(qun_req_t *r) {
    return answer(r, json_pack("{s:s}", "presence", "online"));
}

qun_rc h_mx_presence_put(qun_req_t *r) {
    return answer(r, json_object());
}
