/* SPDX-License-Identifier: MIT */
/* The notification inbox (include/qun/notify.h): rows written in the transaction of
 * what they announce, each with the `notification.created` event to its person and,
 * when mail is on and the person has a verified address, the mail to send later.
 *
 * Invariants:
 *   1. A notification reaches exactly one person: its row, its event (user_id only, no
 *      group) and its mail are that person's, and every read filters on the caller.
 *   2. Parameters carry names as they were when the row was written (a group renamed
 *      later keeps the name the notice was about), beside the public ids clients link to.
 *   3. A mail row exists only if its notification row exists: both are written by
 *      qun_notify_user in one transaction. */
#include <stdlib.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/notify.h"
#include "qun/queue.h"
#include "qun/util.h"

qun_notify_cfg_t qun_notify_cfg = {NULL, NULL, NULL, 10000, 12, 30, 900};

bool qun_mail_enabled(void) {
    return qun_notify_cfg.smtp_url && qun_notify_cfg.smtp_url[0];
}

bool qun_email_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    const char *at = s ? strchr(s, '@') : NULL;
    if (n < 3 || n > 254 || !at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.')) return false;
    if (at[1] == '.' || s[n - 1] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 127 || strchr("<>\"(),;:\\[]", c)) return false;
    }
    return true;
}

qun_rc qun_mail_cfg_check(qun_err_t *err) {
    const char *u = qun_notify_cfg.smtp_url;
    if (!qun_mail_enabled()) return QUN_OK;
    if (strncmp(u, "smtp://", 7) && strncmp(u, "smtps://", 8))
        return qun_fail(err, QUN_BAD_REQUEST, "smtp_url: expected smtp:// or smtps://, got \"%.100s\"", u);
    if (!qun_email_valid(qun_notify_cfg.smtp_from))
        return qun_fail(err, QUN_BAD_REQUEST, "smtp_url is set: smtp_from must be a mail address");
    return QUN_OK;
}

const char *qun_lang_from_accept(const char *al) {
    if (!al) return "en";
    while (*al == ' ')
        al++;
    return (al[0] == 'z' || al[0] == 'Z') && (al[1] == 'h' || al[1] == 'H') ? "zh-CN" : "en";
}

/* ---- names ---- */

/* {openid, username, display_name?} of user uid, or NULL. */
static json_t *person(qun_db_t *db, int64_t uid) {
    qun_q_t *q;
    if (qun_db_run(db, &q, NULL, "SELECT openid, username, display_name FROM users WHERE id = $1", "i",
                   uid) != QUN_ROW)
        return NULL;
    json_t *p =
        json_pack("{s:s, s:s, s:s?}", "openid", qun_q_col_text(q, 0), "username", qun_q_col_text(q, 1),
                  "display_name", qun_q_col_null(q, 2) ? NULL : qun_q_col_text(q, 2));
    qun_q_done(q);
    return p;
}

static int64_t uid_of_openid(qun_db_t *db, const char *openid) {
    qun_q_t *q;
    int64_t id = 0;
    if (openid &&
        qun_db_run(db, &q, NULL, "SELECT id FROM users WHERE openid = $1", "s", openid) == QUN_ROW) {
        id = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return id;
}

/* {group, group_name, group_kind} of group_id, or NULL. */
static json_t *group_params(qun_db_t *db, int64_t group_id) {
    qun_q_t *q;
    if (qun_db_run(db, &q, NULL, "SELECT gid, name, kind FROM groups WHERE id = $1", "i", group_id) !=
        QUN_ROW)
        return NULL;
    json_t *p = json_pack("{s:s, s:s, s:s}", "group", qun_q_col_text(q, 0), "group_name",
                          qun_q_col_text(q, 1), "group_kind", qun_q_col_text(q, 2));
    qun_q_done(q);
    return p;
}

static int64_t count_of(qun_db_t *db, const char *sql, int64_t a) {
    qun_q_t *q;
    int64_t n = 0;
    if (qun_db_run(db, &q, NULL, sql, "i", a) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

/* ---- writing ---- */

static json_t *item_json(int64_t seq, const char *kind, int64_t created_at, bool read, json_t *params) {
    return json_pack("{s:I, s:s, s:I, s:b, s:o}", "seq", (json_int_t)seq, "kind", kind, "created_at",
                     (json_int_t)created_at, "read", read, "params", params);
}

qun_rc qun_notify_user(qun_db_t *db, int64_t uid, const char *kind, json_t *params, qun_err_t *err) {
    if (!params) return qun_fail(err, QUN_NOMEM, "cannot build the %s notification", kind);
    char *text = qun_json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        json_decref(params);
        return qun_fail(err, QUN_NOMEM, "cannot serialize the %s notification", kind);
    }
    int64_t now = qun_now();
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "INSERT INTO notifications(user_id, kind, params, created_at) VALUES ($1, $2, $3, $4) "
                   "RETURNING id",
                   "issi", uid, kind, text, now);
    if (rc != QUN_ROW) {
        free(text);
        json_decref(params);
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no id for the %s notification", kind) : rc;
    }
    int64_t seq = qun_q_col_int(q, 0);
    qun_q_done(q);
    /* Invariant 1: the event names the person, never a group. */
    rc = qun_event_emit(db, "notification.created", 0, uid, item_json(seq, kind, now, false, params), err);
    if (rc == QUN_OK && qun_mail_enabled()) {
        rc = qun_db_run(db, &q, err,
                        "SELECT e.address, COALESCE(u.lang, 'en') FROM email_addresses e "
                        "JOIN users u ON u.id = e.user_id WHERE e.user_id = $1 AND e.verified_at IS NOT NULL "
                        "AND u.disabled_at IS NULL",
                        "i", uid);
        if (rc == QUN_ROW) {
            char addr[256], lang[8], mid[QUN_ID_MAX];
            snprintf(addr, sizeof addr, "%s", qun_q_col_text(q, 0));
            snprintf(lang, sizeof lang, "%s", qun_q_col_text(q, 1));
            qun_q_done(q);
            qun_id_new(mid, "m");
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO mail_outbox(mid, user_id, to_addr, lang, kind, params, next_at, "
                            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                            "sissssi", mid, uid, addr, lang, kind, text, now);
        }
        rc = rc == QUN_DONE ? QUN_OK : rc;
    }
    free(text);
    return rc;
}

qun_rc qun_notify_approval(qun_db_t *db, const char *aid, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT a.kind, a.group_id, COALESCE(a.approver_id, 0), COALESCE(a.org_id, 0), "
                   "d.requested_by, COALESCE(a.subject_id, 0), a.expires_at, d.messages, "
                   "COALESCE(o.name, '') FROM approvals a "
                   "JOIN dissolutions d ON d.id = a.dissolution_id LEFT JOIN orgs o ON o.id = a.org_id "
                   "WHERE a.aid = $1",
                   "s", aid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "approval %s vanished", aid) : rc;
    char kind[16], messages[8], org_name[256];
    snprintf(kind, sizeof kind, "%s", qun_q_col_text(q, 0));
    snprintf(messages, sizeof messages, "%s", qun_q_col_text(q, 7));
    snprintf(org_name, sizeof org_name, "%s", qun_q_col_text(q, 8));
    int64_t group_id = qun_q_col_int(q, 1), approver = qun_q_col_int(q, 2), org = qun_q_col_int(q, 3);
    int64_t requester = qun_q_col_int(q, 4), subject = qun_q_col_int(q, 5), expires = qun_q_col_int(q, 6);
    qun_q_done(q);
    json_t *base = group_params(db, group_id);
    if (!base) return qun_fail(err, QUN_STORE, "approval %s: no group", aid);
    json_object_set_new(base, "approval", json_string(aid));
    json_object_set_new(base, "approval_kind", json_string(kind));
    json_object_set_new(base, "expires_at", json_integer(expires));
    json_object_set_new(base, "requested_by", person(db, requester));
    if (subject) json_object_set_new(base, "subject", person(db, subject));
    if (org_name[0]) json_object_set_new(base, "org_name", json_string(org_name));
    json_object_set_new(
        base, "impact",
        json_pack("{s:I, s:I, s:I, s:s}", "members",
                  (json_int_t)count_of(db, "SELECT member_count FROM groups WHERE id = $1", group_id),
                  "messages",
                  (json_int_t)count_of(
                      db, "SELECT COUNT(*) FROM messages WHERE group_id = $1 AND kind != 'system'", group_id),
                  "files",
                  (json_int_t)count_of(db, "SELECT COUNT(*) FROM group_files WHERE group_id = $1", group_id),
                  "messages_rule", messages));
    /* Whoever may decide: the named approver, the org's admins, or the server admins. */
    int64_t to[64];
    int n = 0;
    if (approver) {
        to[n++] = approver;
    } else if (org) {
        rc = qun_db_run(db, &q, err, "SELECT user_id FROM org_admins WHERE org_id = $1 ORDER BY user_id", "i",
                        org);
        for (; rc == QUN_ROW; rc = qun_q_step(q, err))
            if (n < 64) to[n++] = qun_q_col_int(q, 0);
        if (rc != QUN_DONE) {
            json_decref(base);
            return rc;
        }
    } else if (strcmp(kind, "risk_review") == 0 && qun_core_cfg.admins) {
        char list[1024];
        snprintf(list, sizeof list, "%s", qun_core_cfg.admins);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t && n < 64;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            size_t l = strlen(t);
            while (l && t[l - 1] == ' ')
                t[--l] = '\0';
            if (qun_db_run(db, &q, NULL, "SELECT id FROM users WHERE username = $1", "s", t) == QUN_ROW) {
                to[n++] = qun_q_col_int(q, 0);
                qun_q_done(q);
            }
        }
    }
    rc = QUN_OK;
    for (int i = 0; i < n && rc == QUN_OK; i++)
        if (to[i] != requester) /* nobody decides their own request */
            rc = qun_notify_user(db, to[i], "approval.requested", json_deep_copy(base), err);
    json_decref(base);
    return rc;
}

/* Notify, one by one, the people of query q (its first column: their ids), params
 * (borrowed) to each; the ids to *last, their number to *n. */
static qun_rc notify_each(qun_db_t *db, qun_q_t *q, qun_rc rc, const char *kind, const json_t *params,
                          int64_t *last, int64_t *n, qun_err_t *err) {
    int64_t *uids = NULL;
    size_t cap = 0;
    *n = 0;
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        if ((size_t)*n == cap) {
            cap = cap ? cap * 2 : 64;
            int64_t *g = realloc(uids, cap * sizeof *uids);
            if (!g) {
                qun_q_done(q);
                rc = qun_fail(err, QUN_NOMEM, "cannot list whom to notify");
                break;
            }
            uids = g;
        }
        uids[(*n)++] = qun_q_col_int(q, 0);
    }
    rc = rc == QUN_DONE ? QUN_OK : rc;
    /* The query is done before the first insert: SQLite would see the rows it adds. */
    for (int64_t i = 0; i < *n && rc == QUN_OK; i++)
        rc = qun_notify_user(db, uids[i], kind, json_deep_copy(params), err);
    if (*n) *last = uids[*n - 1];
    free(uids);
    return rc;
}

/* Notify the members of group_id but skip (0: none): at once when they are few; else
 * record the notice and queue the job that notifies them a moment after the commit.  One
 * notification row and event per person in a single transaction held the writer for
 * seconds in a group of 100 000, and in SQLite each statement of such a transaction
 * walks the savepoint journal it has grown: the cost per person rose with the group. */
static qun_rc notify_members(qun_db_t *db, int64_t group_id, int64_t skip, const char *kind,
                             const json_t *params, qun_err_t *err) {
    int64_t n = count_of(db, "SELECT COUNT(*) FROM members WHERE group_id = $1", group_id), last;
    qun_q_t *q;
    qun_rc rc;
    if (n <= QUN_NOTIFY_INLINE) {
        rc = qun_db_run(db, &q, err,
                        "SELECT user_id FROM members WHERE group_id = $1 AND user_id != $2 ORDER BY user_id",
                        "ii", group_id, skip);
        return notify_each(db, q, rc, kind, params, &last, &n, err);
    }
    char *text = qun_json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) return qun_fail(err, QUN_NOMEM, "cannot serialize the %s notification", kind);
    rc = qun_db_run(db, &q, err,
                    "INSERT INTO notice_fanouts(group_id, kind, params, skip_user_id, created_at) "
                    "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    "issii", group_id, kind, text, skip, qun_now());
    free(text);
    if (rc != QUN_ROW)
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "no id for the %s fan-out", kind) : rc;
    int64_t fid = qun_q_col_int(q, 0);
    qun_q_done(q);
    return qun_queue_add(db, QUN_JOB_NOTIFY_FANOUT, group_id, fid, qun_now() + QUN_NOTIFY_DEFER, NULL, err);
}

qun_rc qun_notify_fanout_step(qun_db_t *db, int64_t fid, bool *finished, qun_err_t *err) {
    *finished = true;
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT kind, params, group_id, skip_user_id, after_user_id FROM notice_fanouts WHERE id = $1", "i",
        fid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_OK : rc; /* done before a crash */
    char kind[32];
    snprintf(kind, sizeof kind, "%s", qun_q_col_text(q, 0));
    json_t *params = json_loads(qun_q_col_text(q, 1), 0, NULL);
    int64_t group_id = qun_q_col_int(q, 2), skip = qun_q_col_int(q, 3), after = qun_q_col_int(q, 4);
    qun_q_done(q);
    if (!params) return qun_fail(err, QUN_STORE, "fan-out %lld: unreadable parameters", (long long)fid);
    int64_t n = 0, last = after;
    rc = qun_db_run(db, &q, err,
                    "SELECT user_id FROM members WHERE group_id = $1 AND user_id > $2 AND user_id != $3 "
                    "ORDER BY user_id LIMIT $4",
                    "iiii", group_id, after, skip, (int64_t)QUN_NOTIFY_SLICE);
    rc = notify_each(db, q, rc, kind, params, &last, &n, err);
    json_decref(params);
    *finished = rc == QUN_OK && n < QUN_NOTIFY_SLICE;
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err,
                        *finished ? "DELETE FROM notice_fanouts WHERE id = $1"
                                  : "UPDATE notice_fanouts SET after_user_id = $2 WHERE id = $1",
                        *finished ? "i" : "ii", fid, last) == QUN_DONE
                 ? QUN_OK
                 : QUN_STORE;
    return rc;
}

qun_rc qun_notify_dissolution(qun_db_t *db, int64_t group_id, const char *stage, const json_t *notice,
                              qun_err_t *err) {
    static const char *stages[] = {"pending", "cancelled", "rejected", "expired", "dissolved", "restored"};
    bool known = false;
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
        known |= strcmp(stage, stages[i]) == 0;
    if (!known) return QUN_OK; /* other stages (review, archiving) tell the owner only */
    json_t *base = group_params(db, group_id);
    if (!base) return qun_fail(err, QUN_STORE, "dissolution notice: no group %lld", (long long)group_id);
    static const char *copied[] = {"dissolves_at", "restorable_until", "messages", "successor_name",
                                   "reason"};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        json_t *v = json_object_get(notice, copied[i]);
        if (v && !json_is_null(v)) json_object_set(base, copied[i], v);
    }
    const char *by = json_string_value(json_object_get(notice, "by"));
    int64_t by_uid = uid_of_openid(db, by);
    if (by_uid) json_object_set_new(base, "by", person(db, by_uid));
    /* The one who caused it knows; a timer's completion or an approver's answer is news
     * to everyone. */
    bool skip_actor =
        strcmp(stage, "pending") == 0 || strcmp(stage, "cancelled") == 0 || strcmp(stage, "restored") == 0;
    char kind[32];
    snprintf(kind, sizeof kind, "dissolution.%s", stage);
    int64_t skip = skip_actor ? by_uid : 0;
    qun_rc rc = notify_members(db, group_id, skip, kind, base, err);
    json_decref(base);
    return rc;
}

qun_rc qun_notify_transfer(qun_db_t *db, int64_t group_id, int64_t from, int64_t to, qun_err_t *err) {
    json_t *p = group_params(db, group_id);
    if (p) json_object_set_new(p, "from", person(db, from));
    return qun_notify_user(db, to, "transfer.offered", p, err);
}

qun_rc qun_notify_invitation(qun_db_t *db, const char *iid, int64_t group_id, int64_t inviter,
                             int64_t invitee, const char *role, qun_err_t *err) {
    json_t *p = group_params(db, group_id);
    if (p) {
        json_object_set_new(p, "invitation", json_string(iid));
        json_object_set_new(p, "role", json_string(role));
        json_object_set_new(p, "by", person(db, inviter));
    }
    return qun_notify_user(db, invitee, "invitation.received", p, err);
}

/* ---- the inbox ---- */

static qun_rc unread_of(qun_db_t *db, int64_t uid, int64_t *n, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", "i", uid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *n = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_notify_list(qun_db_t *db, const qun_actor_t *a, int64_t before, int limit, json_t **out,
                       qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = 0;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT id, kind, params, created_at, read_at FROM notifications WHERE user_id = $1 "
                   "AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
                   "iii", a->uid, before, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_t *params = json_loads(qun_q_col_text(q, 2), 0, NULL);
        json_t *it = item_json(last, qun_q_col_text(q, 1), qun_q_col_int(q, 3), !qun_q_col_null(q, 4),
                               params ? params : json_object());
        if (!it || json_array_append_new(items, it) != 0) {
            qun_q_done(q);
            rc = qun_fail(err, QUN_NOMEM, "cannot build the notifications");
            break;
        }
    }
    int64_t unread = 0;
    if (rc == QUN_DONE) rc = unread_of(db, a->uid, &unread, err);
    if (rc != QUN_OK) {
        json_decref(items);
        return rc == QUN_DONE ? QUN_OK : rc;
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)last);
    *out = json_pack("{s:o, s:s?, s:I}", "items", items, "next_cursor",
                     (int)json_array_size(items) == limit && last > 1 ? cur : NULL, "unread",
                     (json_int_t)unread);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the notifications");
}

qun_rc qun_notify_read(qun_db_t *db, const qun_actor_t *a, int64_t upto, json_t **out, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err,
                           "UPDATE notifications SET read_at = $3 WHERE user_id = $1 AND read_at IS NULL "
                           "AND ($2 = 0 OR id <= $2)",
                           "iii", a->uid, upto, qun_now());
    if (rc != QUN_DONE) return rc;
    int64_t marked = qun_db_changes(db), unread = 0;
    rc = unread_of(db, a->uid, &unread, err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:I, s:I}", "read", (json_int_t)marked, "unread", (json_int_t)unread);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}

qun_rc qun_notify_unread(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    int64_t unread = 0;
    qun_rc rc = unread_of(db, a->uid, &unread, err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:I}", "unread", (json_int_t)unread);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the answer");
}
