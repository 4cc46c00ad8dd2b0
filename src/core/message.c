/* SPDX-License-Identifier: MIT */
/* Group messages with a gap-free per-group sequence number taken from the group row
 * in the same transaction as the insert. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/stage.h"

static bool msgtype_ok(const char *t) {
    return !t || strcmp(t, "m.text") == 0 || strcmp(t, "m.notice") == 0 || strcmp(t, "m.emote") == 0;
}

static bool media_msgtype(const char *t) {
    return t && (strcmp(t, "m.image") == 0 || strcmp(t, "m.file") == 0 || strcmp(t, "m.audio") == 0 ||
                 strcmp(t, "m.video") == 0);
}

/* The `file` member of a message's JSON. */
static json_t *file_json(const char *sha, const char *name, const char *type, int64_t size) {
    return json_pack("{s:s, s:s, s:s, s:I}", "sha256", sha, "name", name, "content_type", type, "size",
                     (json_int_t)size);
}

/* The message's JSON as the answer and its message.created event carry it, written
 * once by hand in the bytes jansson's compact encoder gives for the same object (the
 * recall rewrites stored answers found by their `{"group":…,"seq":…,` prefix).
 * author_name NULL is null; msgtype NULL is left out; so is file when NULL. */
static void message_text(qun_line_t *l, const char *gid, int64_t seq, const char *author,
                         const char *author_name, const char *text, int64_t now, const char *msgtype,
                         const qun_msg_file_t *file) {
#define PUT(lit) qun_line_put(l, lit, sizeof lit - 1)
    PUT("{\"group\":");
    qun_line_jstr(l, gid);
    qun_line_printf(l, ",\"seq\":%lld", (long long)seq);
    PUT(",\"author\":");
    qun_line_jstr(l, author);
    PUT(",\"author_display_name\":");
    if (author_name)
        qun_line_jstr(l, author_name);
    else
        PUT("null");
    PUT(",\"kind\":\"text\",\"text\":");
    qun_line_jstr(l, text);
    qun_line_printf(l, ",\"created_at\":%lld", (long long)now);
    if (msgtype) {
        PUT(",\"msgtype\":");
        qun_line_jstr(l, msgtype);
    }
    if (file) {
        PUT(",\"file\":{\"sha256\":");
        qun_line_jstr(l, file->sha256);
        PUT(",\"name\":");
        qun_line_jstr(l, file->name);
        PUT(",\"content_type\":");
        qun_line_jstr(l, file->content_type);
        qun_line_printf(l, ",\"size\":%lld}", (long long)file->size);
    }
    qun_line_put(l, "}", 2); /* with the terminating NUL */
#undef PUT
}

/* The message row, its parameters numbered from $n (n 1 or 7: a literal). */
#define MESSAGE_INSERT(n)                                                                                    \
    "INSERT INTO messages(group_id, seq, author_id, body, created_at, msgtype, session_id, txn_id, "         \
    "file_sha256, media_id, media_msgtype, stream_id) VALUES " MESSAGE_PARAMS_##n
#define MESSAGE_PARAMS_1 "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
#define MESSAGE_PARAMS_7 "($7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
#define MESSAGE_TYPES "iiisiszssssi"

/* A group's next number, set once for a transaction of posts (qun_db_set_later). */
static const char NEXT_SEQ_SET[] = "UPDATE groups SET next_seq = $2 WHERE id = $1";

qun_rc qun_message_post_text(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text,
                             const qun_msg_opts_t *opts, char **out, qun_err_t *err) {
    qun_group_t g;
    const char *msgtype = opts ? opts->msgtype : NULL, *txn_id = opts ? opts->txn_id : NULL;
    const qun_msg_file_t *file = opts ? opts->file : NULL;
    const char *media_type = NULL; /* messages.media_msgtype */
    *out = NULL;
    if (file && media_msgtype(msgtype)) {
        media_type = msgtype;
        msgtype = NULL;
    } else if (!msgtype_ok(msgtype)) {
        return qun_fail(err, QUN_FIELD_INVALID, "msgtype must be m.text, m.notice or m.emote");
    }
    if (msgtype && strcmp(msgtype, "m.text") == 0) msgtype = NULL; /* stored as NULL */
    int64_t seq, now = qun_now();
    char name[QUN_DISPLAY_NAME_MAX];
    bool has_name;
    bool taken;
    qun_rc rc =
        qun_group_access_post(db, a, gid, opts ? opts->ahead : NULL, &g, &seq, name, &has_name, &taken, err);
    if (rc != QUN_OK) return rc;
    if (qun_db_txn_shared(db)) {
        /* Posts alone (PostgreSQL): the number after this transaction's last post to the
         * group, or the row's; the row, locked since the access read, is written once. */
        int64_t next;
        if (qun_db_later_value(db, NEXT_SEQ_SET, g.id, &next)) seq = next;
        rc = qun_db_set_later(db, NEXT_SEQ_SET, g.id, seq + 1, err);
    } else if (!taken) { /* sent without waiting on PostgreSQL: answered with the next statement */
        rc = qun_db_run_nowait(db, err, "UPDATE groups SET next_seq = next_seq + 1 WHERE id = $1", "i", g.id);
    }
    if (rc != QUN_OK) return rc;
    size_t cap = strlen(text) + 384; /* the rest of the object fits; escapes may grow it */
    qun_line_t l = {.p = malloc(cap), .cap = cap};
    l.oom = !l.p;
    message_text(&l, g.gid, seq, a->openid, has_name ? name : NULL, text, now,
                 media_type ? media_type : msgtype, file);
    if (l.oom) {
        free(l.p);
        return qun_fail(err, QUN_NOMEM, "out of memory");
    }
    /* The event first, so the message row is written once, with its stream_id: on
     * PostgreSQL both rows in one statement.  Sent without waiting: its answer comes with
     * the next statement's (the next post's, or the COMMIT's), and a failure there fails
     * the batch, as it would here (the post runs unguarded, docs/architecture.md). */
    int64_t id;
    const char *media_id = file ? opts->media_id : NULL, *sha = file ? file->sha256 : NULL;
    rc = qun_event_reserve(db, &id, err);
    if (rc == QUN_OK && id)
        rc = qun_db_run_nowait(db, err, QUN_EVENT_ROW_CTE MESSAGE_INSERT(7), "iszzsi" MESSAGE_TYPES, id,
                               "message.created", g.id, (int64_t)0, l.p, now, g.id, seq, a->uid, text, now,
                               msgtype, a->session_id, txn_id, sha, media_id, media_type, id);
    else if (rc == QUN_OK && (rc = qun_event_insert(db, "message.created", g.id, 0, l.p, &id, err)) == QUN_OK)
        rc = qun_db_run_nowait(db, err, MESSAGE_INSERT(1), MESSAGE_TYPES, g.id, seq, a->uid, text, now,
                               msgtype, a->session_id, txn_id, sha, media_id, media_type, id);
    if (rc != QUN_OK) {
        free(l.p);
        return rc;
    }
    *out = l.p;
    return QUN_OK;
}

void qun_message_post_ahead(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_q_t **ahead) {
    if (qun_group_access_post_ahead(db, a, gid, ahead)) qun_event_expect(db, 1);
}

qun_rc qun_message_post_ex(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text,
                           const qun_msg_opts_t *opts, json_t **out, qun_err_t *err) {
    char *t;
    *out = NULL;
    qun_rc rc = qun_message_post_text(db, a, gid, text, opts, &t, err);
    if (rc != QUN_OK) return rc;
    *out = json_loads(t, 0, NULL);
    free(t);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

qun_rc qun_message_post(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text, json_t **out,
                        qun_err_t *err) {
    return qun_message_post_ex(db, a, gid, text, NULL, out, err);
}

/* A recalled message as lists show it: no text, no file; who recalled it, when, and
 * the reason given.  removed: someone other than the author took it down. */
typedef struct {
    int64_t seq, created_at, recalled_at;
    const char *author, *author_name, *kind, *by, *by_username, *by_name, *reason;
    bool removed;
} recalled_t;

static json_t *recalled_json(const recalled_t *m) {
    /* by is null for a removal restored from an archive, which names no one. */
    return json_pack("{s:I, s:s, s:s?, s:s, s:I, s:b, s:b, s:I, s:s?, s:s?, s:s?, s:s*}", "seq",
                     (json_int_t)m->seq, "author", m->author, "author_display_name", m->author_name, "kind",
                     m->kind, "created_at", (json_int_t)m->created_at, "recalled", 1, "removed", m->removed,
                     "recalled_at", (json_int_t)m->recalled_at, "by", m->by, "by_username", m->by_username,
                     "by_display_name", m->by_name, "reason", m->reason);
}

#define OPT_TEXT(q, c) (qun_q_col_null(q, c) ? NULL : qun_q_col_text(q, c))

/* The author by username too: the owner reading a dissolved group's kept messages has no
 * member list to name them from.  A file message shows its file while the group still
 * has it. */
json_t *qun_message_item(qun_q_t *q) {
    json_t *item = json_pack(
        "{s:I, s:s, s:s?, s:s, s:s, s:I, s:s*, s:s}", "seq", (json_int_t)qun_q_col_int(q, 0), "author",
        qun_q_col_text(q, 1), "author_display_name", qun_q_col_null(q, 6) ? NULL : qun_q_col_text(q, 6),
        "kind", qun_q_col_text(q, 2), "text", qun_q_col_text(q, 3), "created_at",
        (json_int_t)qun_q_col_int(q, 4), "msgtype", qun_q_col_null(q, 5) ? NULL : qun_q_col_text(q, 5),
        "author_username", qun_q_col_text(q, 11));
    if (item && !qun_q_col_null(q, 7))
        json_object_set_new(item, "file",
                            file_json(qun_q_col_text(q, 7), qun_q_col_text(q, 8), qun_q_col_text(q, 9),
                                      qun_q_col_int(q, 10)));
    return item;
}

qun_rc qun_message_list(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                        json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    /* After a dissolution that kept messages, the owner still reads them. */
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK;
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = after;
    rc = qun_db_run(
        db, &q, err,
        "SELECT " QUN_MESSAGE_ITEM_COLS ", m.recalled_at, ru.openid, ru.username, ru.display_name, "
        "m.recall_reason, CASE WHEN m.recalled_by = m.author_id THEN 1 ELSE 0 END FROM messages m "
        "JOIN users u ON u.id = m.author_id "
        "LEFT JOIN group_files f ON f.group_id = m.group_id AND f.sha256 = m.file_sha256 "
        "LEFT JOIN users ru ON ru.id = m.recalled_by "
        "WHERE m.group_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
        "iii", g.id, after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        if (!qun_q_col_null(q, 12)) {
            recalled_t m = {last,
                            qun_q_col_int(q, 4),
                            qun_q_col_int(q, 12),
                            qun_q_col_text(q, 1),
                            OPT_TEXT(q, 6),
                            qun_q_col_text(q, 2),
                            OPT_TEXT(q, 13),
                            OPT_TEXT(q, 14),
                            OPT_TEXT(q, 15),
                            OPT_TEXT(q, 16),
                            qun_q_col_int(q, 17) == 0};
            json_t *r = recalled_json(&m);
            if (r) json_object_set_new(r, "author_username", json_string(qun_q_col_text(q, 11)));
            json_array_append_new(items, r);
            continue;
        }
        json_array_append_new(items, qun_message_item(q));
    }
    return qun_page(rc, items, last, limit, out);
}

/* ---- recall and removal ---- */

/* The recalled form of message seq of group g into *out (group added), read back after
 * the UPDATE. */
static qun_rc recalled_read(qun_db_t *db, const qun_group_t *g, int64_t seq, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT m.seq, m.created_at, m.recalled_at, u.openid, u.display_name, m.kind, "
                           "ru.openid, ru.username, ru.display_name, m.recall_reason, "
                           "CASE WHEN m.recalled_by = m.author_id THEN 1 ELSE 0 END FROM messages m JOIN "
                           "users u ON u.id = m.author_id "
                           "JOIN users ru ON ru.id = m.recalled_by WHERE m.group_id = $1 AND m.seq = $2",
                           "ii", g->id, seq);
    if (rc != QUN_ROW)
        return rc == QUN_DONE ? qun_fail(err, QUN_STORE, "recalled message %lld vanished", (long long)seq)
                              : rc;
    recalled_t m = {qun_q_col_int(q, 0), qun_q_col_int(q, 1),  qun_q_col_int(q, 2),      qun_q_col_text(q, 3),
                    OPT_TEXT(q, 4),      qun_q_col_text(q, 5), qun_q_col_text(q, 6),     qun_q_col_text(q, 7),
                    OPT_TEXT(q, 8),      OPT_TEXT(q, 9),       qun_q_col_int(q, 10) == 0};
    *out = recalled_json(&m);
    qun_q_done(q);
    if (*out && json_object_set_new(*out, "group", json_string(g->gid)) != 0) json_decref(*out), *out = NULL;
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}

/* Rewrite the copies of a message's text outside its row: the payload of its
 * message.created event (SSE replays it) and the stored answer of the request that
 * posted it (an Idempotency-Key replay returns it).  Both become the recalled form. */
static qun_rc scrub_copies(qun_db_t *db, const qun_group_t *g, int64_t author, int64_t stream_id, int64_t seq,
                           const json_t *recalled, qun_err_t *err) {
    char *text = qun_json_dumps(recalled, JSON_COMPACT);
    if (!text) return qun_fail(err, QUN_NOMEM, "out of memory");
    qun_rc rc = QUN_DONE;
    if (stream_id)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE events SET payload = $2 WHERE id = $1 AND topic = 'message.created'", "is",
                        stream_id, text);
    /* A posted message's answer starts with its group and seq (qun_message_post_ex). */
    char prefix[QUN_ID_MAX + 64];
    snprintf(prefix, sizeof prefix, "{\"group\":\"%s\",\"seq\":%lld,%%", g->gid, (long long)seq);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err, "UPDATE idempotency SET body = $3 WHERE user_id = $1 AND body LIKE $2",
                        "iss", author, prefix, text);
    free(text);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_message_recall(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t seq,
                          const char *reason, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
    *out = NULL;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    if (seq < 1) return qun_fail(err, QUN_MESSAGE_NOT_FOUND, "no message %lld in this group", (long long)seq);
    rc = qun_db_run(db, &q, err,
                    "SELECT author_id, created_at, kind, CASE WHEN recalled_at IS NULL THEN 0 ELSE 1 END, "
                    "COALESCE(stream_id, 0) "
                    "FROM messages WHERE group_id = $1 AND seq = $2",
                    "ii", g.id, seq);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_MESSAGE_NOT_FOUND, "no message %lld in this group", (long long)seq);
    if (rc != QUN_ROW) return rc;
    int64_t author = qun_q_col_int(q, 0), created = qun_q_col_int(q, 1), stream_id = qun_q_col_int(q, 4);
    bool system = strcmp(qun_q_col_text(q, 2), "text") != 0, done = qun_q_col_int(q, 3) != 0;
    qun_q_done(q);
    if (system)
        return qun_fail(err, QUN_MESSAGE_NOT_RECALLABLE, "message %lld is a system message", (long long)seq);
    if (done) return recalled_read(db, &g, seq, out, err); /* idempotent: the same state again */
    bool own = author == a->uid;
    if (own && g.role == QUN_ROLE_MEMBER) {
        qun_policy_view_t v;
        rc = qun_group_policy(db, &g, &v, err);
        if (rc != QUN_OK) return rc;
        int64_t window = v.rule[QUN_POLICY_RECALL_WINDOW].value;
        if (qun_now() - created > window)
            return qun_fail(err, QUN_RECALL_WINDOW_PASSED,
                            "message %lld is older than the %lld-second window", (long long)seq,
                            (long long)window);
    } else if (!own) {
        /* The author's role now; someone who left ranks as a member. */
        qun_role_t ar;
        qun_member_role(db, g.id, author, &ar, NULL); /* QUN_ROLE_NONE when unreadable, as before */
        if (ar < QUN_ROLE_MEMBER) ar = QUN_ROLE_MEMBER;
        if (g.role < QUN_ROLE_ADMIN || g.role <= ar)
            return qun_fail(err, QUN_FORBIDDEN_ROLE, "a %s cannot remove a %s's message",
                            qun_role_name(g.role), qun_role_name(ar));
        if (!reason || !*reason)
            return qun_fail_field(err, QUN_FIELD_MISSING, "reason",
                                  "removing someone's message needs a reason");
    }
    /* One UPDATE deletes the text and the links (a search index kept by triggers on
     * messages follows it in this transaction). */
    int64_t now = qun_now();
    rc = qun_db_run(
        db, NULL, err,
        "UPDATE messages SET body = '', file_sha256 = NULL, media_id = NULL, media_msgtype = NULL, "
        "recalled_at = $3, recalled_by = $4, recall_reason = $5 WHERE group_id = $1 AND seq = $2 "
        "AND recalled_at IS NULL",
        "iiiis", g.id, seq, now, a->uid, reason && *reason ? reason : NULL);
    if (rc != QUN_DONE) return rc;
    rc = recalled_read(db, &g, seq, out, err);
    if (rc == QUN_OK) rc = scrub_copies(db, &g, author, stream_id, seq, *out, err);
    if (rc == QUN_OK) qun_db_scrub_later(); /* the old rows' page images in the WAL */
    if (rc == QUN_OK) rc = qun_event_emit(db, "message.recalled", g.id, 0, json_incref(*out), err);
    if (rc != QUN_OK) json_decref(*out), *out = NULL;
    return rc;
}

qun_rc qun_message_recalled_count(qun_db_t *db, int64_t group_id, int64_t *n, qun_err_t *err) {
    qun_q_t *q;
    *n = 0;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT COUNT(*) FROM messages WHERE group_id = $1 AND recalled_at IS NOT NULL",
                           "i", group_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_OK : rc;
    *n = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}
