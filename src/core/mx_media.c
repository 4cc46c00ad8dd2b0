/* SPDX-License-Identifier: MIT */
/* Matrix media (docs/matrix.md "Media"), mapped onto qun's group files.  Matrix uploads
 * belong to a user until a message references them; qun's files belong to a group.
 * So an upload is staged: its bytes are a blob like any file's (content-addressed,
 * blobs.refcount +1 held by the mx_media row for as long as the row lives), under a
 * random media id that says nothing about the content.  A message that references
 * the media adds the file to its group with qun_file_add (the /v1 path: dedupe by
 * (group, digest)) and links the media to the group (mx_media_links).  Who may read
 * the bytes follows from the links: a member of a live group linked to the media, or
 * the uploader while nothing links it yet.  Staged media expire after a day; a
 * group's purge drops its links, and media that then have no link go too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qun/core.h"
#include "qun/matrix.h"

bool qun_mx_media_id_ok(const char *id) {
    size_t n = 0;
    for (; id && id[n]; n++) {
        char c = id[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return false;
    }
    return n > 0 && n < QUN_MX_MEDIA_ID_MAX;
}

/* Take one blob reference for sha (the row that holds it is inserted by the caller in
 * the same transaction): the blob must still be on disk, as qun_file_add checks. */
static qun_rc blob_ref(qun_db_t *db, const char *sha, int64_t size, qun_err_t *err) {
    char path[1024];
    struct stat st;
    qun_blob_path(sha, path, sizeof path);
    if (stat(path, &st) != 0 || st.st_size != size)
        return qun_fail(err, QUN_UNAVAILABLE, "the upload's bytes were reclaimed meanwhile; retry");
    qun_rc rc = qun_db_run(db, NULL, err,
                           "INSERT INTO blobs(sha256, size, refcount, created_at) VALUES ($1, $2, 1, $3) "
                           "ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1",
                           "sii", sha, size, qun_now());
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err, "DELETE FROM unlink_queue WHERE sha256 = $1", "s", sha);
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_blob_release(qun_db_t *db, const char *sha, const char *cdn_reason, bool *released,
                        qun_err_t *err) {
    qun_q_t *q;
    *released = false;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = $1 RETURNING refcount", "s", sha);
    if (rc == QUN_DONE) return QUN_OK; /* no row: nothing held */
    if (rc != QUN_ROW) return rc;
    bool last = qun_q_col_int(q, 0) == 0;
    qun_q_done(q);
    if (!last) return QUN_OK;
    rc = qun_db_run(db, NULL, err, "DELETE FROM blobs WHERE sha256 = $1", "s", sha);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO unlink_queue(sha256, queued_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        "si", sha, qun_now());
    if (rc == QUN_DONE && cdn_reason) {
        char payload[200];
        snprintf(payload, sizeof payload, "{\"digest\":\"%s\",\"reason\":\"%s\"}", sha, cdn_reason);
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO outbox(topic, payload, created_at) VALUES ('cdn.purge', $1, $2)", "si",
                        payload, qun_now());
    }
    if (rc != QUN_DONE) return rc;
    *released = true;
    return QUN_OK;
}

qun_rc qun_mx_media_stage(qun_db_t *db, int64_t uid, const char *sha, int64_t size, const char *name,
                          const char *content_type, char media_id[QUN_MX_MEDIA_ID_MAX], qun_err_t *err) {
    /* 24 random bytes as 32 characters of base64url: guessing one is hopeless, and it
     * is no function of the bytes (a digest would let anyone with the file find it). */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[QUN_MX_MEDIA_ID_LEN];
    qun_random(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        media_id[i] = alphabet[rnd[i] & 63];
    media_id[QUN_MX_MEDIA_ID_LEN] = '\0';
    qun_rc rc = blob_ref(db, sha, size, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO mx_media(media_id, sha256, size, uploader_id, content_type, name, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "ssiissi", media_id, sha, size, uid, content_type, name, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

#define MEDIA_COLS "m.media_id, m.sha256, m.size, m.uploader_id, m.content_type, m.name, m.created_at"

static void media_row(qun_q_t *q, qun_mx_media_t *m) {
    snprintf(m->media_id, sizeof m->media_id, "%s", qun_q_col_text(q, 0));
    snprintf(m->sha256, sizeof m->sha256, "%s", qun_q_col_text(q, 1));
    m->size = qun_q_col_int(q, 2);
    m->uploader_id = qun_q_col_int(q, 3);
    snprintf(m->content_type, sizeof m->content_type, "%s", qun_q_col_text(q, 4));
    snprintf(m->name, sizeof m->name, "%s", qun_q_col_text(q, 5));
    m->created_at = qun_q_col_int(q, 6);
}

static qun_rc not_found(qun_err_t *err, const char *media_id) {
    return qun_fail(err, QUN_FILE_NOT_FOUND, "no media %.64s that you may use", media_id);
}

qun_rc qun_mx_media_attach(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *media_id,
                           qun_mx_media_t *m, qun_err_t *err) {
    qun_q_t *q;
    if (!qun_mx_media_id_ok(media_id)) return not_found(err, "");
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT " MEDIA_COLS " FROM mx_media m WHERE m.media_id = $1", "s", media_id);
    if (rc == QUN_DONE) return not_found(err, media_id);
    if (rc != QUN_ROW) return rc;
    media_row(q, m);
    qun_q_done(q);
    /* The uploader attaches; anyone else may only reference media already linked to
     * this group (a forwarded message), which adds nothing. */
    bool linked = false;
    rc = qun_db_run(db, &q, err,
                    "SELECT 1 FROM mx_media_links l JOIN groups g ON g.id = l.group_id "
                    "WHERE l.media_id = $1 AND g.gid = $2",
                    "ss", media_id, gid);
    if (rc == QUN_ROW) {
        linked = true;
        qun_q_done(q);
    } else if (rc != QUN_DONE) {
        return rc;
    }
    if (!linked && m->uploader_id != a->uid) return not_found(err, media_id);
    json_t *file = NULL;
    rc = qun_file_add(db, a, gid, m->sha256, m->size, m->name, m->content_type, &file, err);
    if (rc == QUN_OK) { /* the group's row: the same bytes may be there under another name */
        snprintf(m->name, sizeof m->name, "%s", json_string_value(json_object_get(file, "name")));
        snprintf(m->content_type, sizeof m->content_type, "%s",
                 json_string_value(json_object_get(file, "content_type")));
    }
    json_decref(file);
    if (rc != QUN_OK || linked) return rc;
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO mx_media_links(media_id, group_id, linked_at) "
                    "SELECT $1, id, $3 FROM groups WHERE gid = $2",
                    "ssi", media_id, gid, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_mx_media_get(qun_db_t *db, int64_t uid, const char *media_id, qun_mx_media_t *m, qun_err_t *err) {
    qun_q_t *q;
    if (!qun_mx_media_id_ok(media_id)) return not_found(err, "");
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT " MEDIA_COLS " FROM mx_media m WHERE m.media_id = $1 AND ("
        "(m.uploader_id = $2 AND NOT EXISTS (SELECT 1 FROM mx_media_links l WHERE l.media_id = m.media_id)) "
        "OR EXISTS (SELECT 1 FROM mx_media_links l JOIN groups g ON g.id = l.group_id "
        "JOIN members b ON b.group_id = l.group_id AND b.user_id = $2 "
        "WHERE l.media_id = m.media_id AND g.state IN ('active', 'review', 'pending')))",
        "si", media_id, uid);
    if (rc == QUN_DONE) return not_found(err, media_id);
    if (rc != QUN_ROW) return rc;
    media_row(q, m);
    qun_q_done(q);
    return QUN_OK;
}

/* Delete media row media_id and release its blob reference; *released when that
 * dropped the blob (its unlink is queued, and a CDN purge when cdn_reason). */
static qun_rc drop_media(qun_db_t *db, const char *media_id, const char *sha, const char *cdn_reason,
                         bool *released, qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err, "DELETE FROM mx_media WHERE media_id = $1", "s", media_id);
    if (rc != QUN_DONE) return rc;
    return qun_blob_release(db, sha, cdn_reason, released, err);
}

typedef struct {
    char id[QUN_MX_MEDIA_ID_MAX];
    char sha[65];
} media_key_t;

#define MEDIA_BATCH 256

/* Up to MEDIA_BATCH (media_id, sha256) rows of sql (bound to a and the batch size) into
 * *keys (the caller frees it), their number into *n. */
static qun_rc read_keys(qun_db_t *db, const char *sql, int64_t a, media_key_t **keys, int *n,
                        qun_err_t *err) {
    qun_q_t *q;
    *n = 0;
    if (!(*keys = calloc(MEDIA_BATCH, sizeof **keys))) return qun_fail(err, QUN_NOMEM, "out of memory");
    qun_rc rc = qun_db_run(db, &q, err, sql, "ii", a, (int64_t)MEDIA_BATCH);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        snprintf((*keys)[*n].id, sizeof(*keys)[*n].id, "%s", qun_q_col_text(q, 0));
        snprintf((*keys)[*n].sha, sizeof(*keys)[*n].sha, "%s", qun_q_col_text(q, 1));
        (*n)++;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_mx_media_expire(qun_db_t *db, int64_t before, int64_t *expired, qun_err_t *err) {
    media_key_t *keys = NULL;
    int n;
    *expired = 0;
    qun_rc rc =
        read_keys(db,
                  "SELECT m.media_id, m.sha256 FROM mx_media m WHERE m.created_at < $1 AND NOT EXISTS "
                  "(SELECT 1 FROM mx_media_links l WHERE l.media_id = m.media_id) "
                  "ORDER BY m.created_at LIMIT $2",
                  before, &keys, &n, err);
    for (int i = 0; rc == QUN_OK && i < n; i++) {
        bool released;
        rc = drop_media(db, keys[i].id, keys[i].sha, NULL, &released, err);
        if (rc == QUN_OK) (*expired)++;
    }
    free(keys);
    return rc;
}

qun_rc qun_mx_media_purge_group(qun_db_t *db, int64_t group_id, qun_mx_media_purged_t *c, bool *more,
                                qun_err_t *err) {
    qun_q_t *q;
    media_key_t *keys = NULL;
    int n;
    *more = false;
    qun_rc rc = read_keys(db,
                          "SELECT l.media_id, m.sha256 FROM mx_media_links l JOIN mx_media m ON m.media_id = "
                          "l.media_id WHERE l.group_id = $1 ORDER BY l.media_id LIMIT $2",
                          group_id, &keys, &n, err);
    for (int i = 0; rc == QUN_OK && i < n; i++) {
        rc = qun_db_run(db, NULL, err, "DELETE FROM mx_media_links WHERE media_id = $1 AND group_id = $2",
                        "si", keys[i].id, group_id);
        if (rc != QUN_DONE) break;
        c->links_deleted++;
        /* Media another group still links stay there, downloadable by its members. */
        rc = qun_db_run(db, &q, err, "SELECT 1 FROM mx_media_links WHERE media_id = $1", "s", keys[i].id);
        if (rc == QUN_ROW) {
            qun_q_done(q);
            rc = QUN_OK;
            continue;
        }
        if (rc != QUN_DONE) break;
        bool released;
        rc = drop_media(db, keys[i].id, keys[i].sha, "dissolution", &released, err);
        if (rc != QUN_OK) break;
        c->media_deleted++;
        if (released) c->blobs_released++;
    }
    free(keys);
    *more = rc == QUN_OK && n == MEDIA_BATCH;
    return rc;
}
