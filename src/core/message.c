/* SPDX-License-Identifier: MIT */
/* Group messages with a gap-free per-group sequence number taken from the group row
 * in the same transaction as the insert. */
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"

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

qun_rc qun_message_post_ex(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text,
                           const qun_msg_opts_t *opts, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
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
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err,
                    "UPDATE groups SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq - 1", "i",
                    g.id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t seq = qun_q_col_int(q, 0), now = qun_now();
    qun_q_done(q);
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO messages(group_id, seq, author_id, body, created_at, msgtype, session_id, txn_id, "
        "file_sha256, media_id, media_msgtype) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        "iiisiszssss", g.id, seq, a->uid, text, now, msgtype, a->session_id, txn_id,
        file ? file->sha256 : NULL, file ? opts->media_id : NULL, media_type);
    if (rc != QUN_DONE) return rc;
    rc = qun_db_run(db, &q, err, "SELECT display_name FROM users WHERE id = $1", "i", a->uid);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = json_pack("{s:s, s:I, s:s, s:s?, s:s, s:s, s:I, s:s*}", "group", g.gid, "seq", (json_int_t)seq,
                     "author", a->openid, "author_display_name",
                     qun_q_col_null(q, 0) ? NULL : qun_q_col_text(q, 0), "kind", "text", "text", text,
                     "created_at", (json_int_t)now, "msgtype", media_type ? media_type : msgtype);
    qun_q_done(q);
    if (*out && file &&
        json_object_set_new(*out, "file",
                            file_json(file->sha256, file->name, file->content_type, file->size))) {
        json_decref(*out);
        *out = NULL;
    }
    if (!*out) return qun_fail(err, QUN_NOMEM, "out of memory");
    int64_t id;
    rc = qun_event_emit_id(db, "message.created", g.id, 0, json_incref(*out), &id, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err, "UPDATE messages SET stream_id = $3 WHERE group_id = $1 AND seq = $2",
                        "iii", g.id, seq, id);
    if (rc == QUN_DONE) rc = QUN_OK;
    if (rc != QUN_OK) json_decref(*out), *out = NULL;
    return rc;
}

qun_rc qun_message_post(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *text, json_t **out,
                        qun_err_t *err) {
    return qun_message_post_ex(db, a, gid, text, NULL, out, err);
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
        "SELECT m.seq, u.openid, m.kind, m.body, m.created_at, COALESCE(m.msgtype, m.media_msgtype), "
        "u.display_name, f.sha256, f.name, f.content_type, f.size FROM messages m "
        "JOIN users u ON u.id = m.author_id "
        "LEFT JOIN group_files f ON f.group_id = m.group_id AND f.sha256 = m.file_sha256 "
        "WHERE m.group_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
        "iii", g.id, after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_t *item = json_pack(
            "{s:I, s:s, s:s?, s:s, s:s, s:I, s:s*}", "seq", (json_int_t)last, "author", qun_q_col_text(q, 1),
            "author_display_name", qun_q_col_null(q, 6) ? NULL : qun_q_col_text(q, 6), "kind",
            qun_q_col_text(q, 2), "text", qun_q_col_text(q, 3), "created_at", (json_int_t)qun_q_col_int(q, 4),
            "msgtype", qun_q_col_null(q, 5) ? NULL : qun_q_col_text(q, 5));
        /* A file message shows its file while the group still has it. */
        if (item && !qun_q_col_null(q, 7))
            json_object_set_new(item, "file",
                                file_json(qun_q_col_text(q, 7), qun_q_col_text(q, 8), qun_q_col_text(q, 9),
                                          qun_q_col_int(q, 10)));
        json_array_append_new(items, item);
    }
    return qun_page(rc, items, last, limit, out);
}
