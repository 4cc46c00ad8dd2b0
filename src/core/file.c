/* SPDX-License-Identifier: MIT */
/* Group files.  Bytes are stored once by SHA-256 under <data>/blobs/ab/<digest>,
 * written to a temporary name, fsynced and renamed before any row points at them;
 * `blobs.refcount` counts the groups referencing a digest.  When a purge drops the
 * count to zero the digest goes to unlink_queue in the same transaction, and the
 * bytes are unlinked after commit (qun_blob_unlink_queued), idempotently. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/core.h"

void qun_blob_path(const char *sha_hex, char *out, size_t size) {
    snprintf(out, size, "%s/blobs/%.2s/%s", qun_core_cfg.data_dir, sha_hex, sha_hex);
}

static bool is_digest(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 64;
}

/* A failed file operation on errno: a full disk or quota is STORAGE_FULL and no free
 * descriptor DESCRIPTORS_EXHAUSTED (the client should wait), anything else a storage
 * error. */
static qun_rc io_fail(qun_err_t *err, const char *what, const char *path) {
    int e = errno;
    return qun_fail(err, qun_rc_errno(e, QUN_STORE), "%s %s: %s", what, path, strerror(e));
}

static qun_rc fsync_dir(const char *path, qun_err_t *err) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_fail(err, "cannot open", path);
    int rc = fsync(fd) == 0 ? QUN_OK : io_fail(err, "cannot sync", path);
    close(fd);
    return rc;
}

/* Create the directories of blob sha_hex; its directory's path goes to dir[900]. */
static qun_rc blob_dirs(const char *sha_hex, char dir[900], qun_err_t *err) {
    char top[900];
    snprintf(dir, 900, "%s/blobs/%.2s", qun_core_cfg.data_dir, sha_hex);
    snprintf(top, sizeof top, "%s/blobs", qun_core_cfg.data_dir);
    if ((mkdir(top, 0700) != 0 && errno != EEXIST) || (mkdir(dir, 0700) != 0 && errno != EEXIST))
        return io_fail(err, "cannot create", dir);
    return QUN_OK;
}

qun_rc qun_blob_adopt(const char *tmp, const char *sha_hex, int64_t size, qun_err_t *err) {
    char dir[900], path[1024];
    qun_blob_path(sha_hex, path, sizeof path);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size == size) { /* already stored */
        unlink(tmp);
        return QUN_OK;
    }
    qun_rc rc = blob_dirs(sha_hex, dir, err);
    if (rc != QUN_OK) return rc;
    if (rename(tmp, path) != 0) return io_fail(err, "cannot store blob", sha_hex);
    return fsync_dir(dir, err);
}

qun_rc qun_blob_put(const void *data, size_t n, char sha_hex[65], qun_err_t *err) {
    qun_sha256_hex(sha_hex, data, n);
    char dir[900], path[1024], tmp[1100];
    qun_blob_path(sha_hex, path, sizeof path);
    struct stat st;
    if (stat(path, &st) == 0 && (size_t)st.st_size == n) return QUN_OK; /* already stored */
    qun_rc drc = blob_dirs(sha_hex, dir, err);
    if (drc != QUN_OK) return drc;
    unsigned char rnd[6];
    char rhex[13];
    qun_random(rnd, sizeof rnd);
    qun_hex(rhex, rnd, sizeof rnd);
    snprintf(tmp, sizeof tmp, "%s.tmp.%s", path, rhex);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return io_fail(err, "cannot create", tmp);
    const unsigned char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = ENOSPC; /* a regular file that takes nothing more */
            qun_rc rc = io_fail(err, "cannot write", tmp);
            close(fd);
            unlink(tmp);
            return rc;
        }
        p += w;
        left -= (size_t)w;
    }
    int synced = fsync(fd) == 0 ? 0 : errno;
    if (close(fd) != 0 && !synced) synced = errno;
    if (synced || rename(tmp, path) != 0) {
        if (synced) errno = synced;
        qun_rc rc = io_fail(err, "cannot store blob", sha_hex);
        unlink(tmp);
        return rc;
    }
    return fsync_dir(dir, err);
}

/* A row of FILE_COLS. */
static json_t *file_json(qun_q_t *q) {
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:I}", "digest", qun_q_col_text(q, 0), "name",
                     qun_q_col_text(q, 1), "content_type", qun_q_col_text(q, 2), "size",
                     (json_int_t)qun_q_col_int(q, 3), "uploader", qun_q_col_text(q, 4),
                     "uploader_display_name", qun_q_col_null(q, 7) ? NULL : qun_q_col_text(q, 7),
                     "created_at", (json_int_t)qun_q_col_int(q, 5));
}

#define FILE_COLS "f.sha256, f.name, f.content_type, f.size, u.openid, f.created_at, f.id, u.display_name"

qun_rc qun_file_add(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *sha_hex, int64_t size,
                    const char *name, const char *content_type, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
    int64_t now = qun_now();
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err,
                    "SELECT " FILE_COLS " FROM group_files f JOIN users u ON u.id = f.uploader_id "
                    "WHERE f.group_id = $1 AND f.sha256 = $2",
                    "is", g.id, sha_hex);
    if (rc == QUN_ROW) { /* the same bytes are already in this group */
        *out = file_json(q);
        qun_q_done(q);
        return QUN_OK;
    }
    if (rc != QUN_DONE) return rc;
    /* Unlinks of dropped blobs run on this same writer, so this check cannot race one. */
    char path[1024];
    struct stat st;
    qun_blob_path(sha_hex, path, sizeof path);
    if (stat(path, &st) != 0 || st.st_size != size)
        return qun_fail(err, QUN_UNAVAILABLE, "the upload's bytes were reclaimed meanwhile; retry");
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO blobs(sha256, size, refcount, created_at) VALUES ($1, $2, 1, $3) "
                    "ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1",
                    "sii", sha_hex, size, now);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err, "DELETE FROM unlink_queue WHERE sha256 = $1", "s", sha_hex);
    if (rc == QUN_DONE)
        rc = qun_db_run(
            db, NULL, err,
            "INSERT INTO group_files(group_id, sha256, name, content_type, size, uploader_id, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            "isssiii", g.id, sha_hex, name, content_type, size, a->uid, now);
    if (rc != QUN_DONE) return rc;
    rc = qun_db_run(db, &q, err,
                    "SELECT " FILE_COLS " FROM group_files f JOIN users u ON u.id = f.uploader_id "
                    "WHERE f.group_id = $1 AND f.sha256 = $2",
                    "is", g.id, sha_hex);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = file_json(q);
    qun_q_done(q);
    return QUN_OK;
}

/* The media msgtype a file message gets from its content type. */
static const char *file_msgtype(const char *content_type) {
    if (strncmp(content_type, "image/", 6) == 0) return "m.image";
    if (strncmp(content_type, "audio/", 6) == 0) return "m.audio";
    if (strncmp(content_type, "video/", 6) == 0) return "m.video";
    return "m.file";
}

qun_rc qun_file_upload(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *sha_hex, int64_t size,
                       const char *name, const char *content_type, json_t **out, qun_err_t *err) {
    json_t *file = NULL, *msg = NULL;
    *out = NULL;
    qun_rc rc = qun_file_add(db, a, gid, sha_hex, size, name, content_type, &file, err);
    if (rc != QUN_OK) return rc;
    /* The group's row names the file: the same bytes may be there under another name. */
    const char *gname = json_string_value(json_object_get(file, "name"));
    const char *gtype = json_string_value(json_object_get(file, "content_type"));
    qun_msg_file_t f = {sha_hex, gname, gtype, size};
    qun_msg_opts_t opts = {.msgtype = file_msgtype(gtype), .file = &f};
    rc = qun_message_post_ex(db, a, gid, gname, &opts, &msg, err);
    json_t *seq = json_object_get(msg, "seq");
    if (rc == QUN_OK && json_object_set_new(file, "message_seq", json_incref(seq)) != 0)
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
    json_decref(msg);
    if (rc != QUN_OK) {
        json_decref(file);
        return rc;
    }
    *out = file;
    return QUN_OK;
}

qun_rc qun_file_list(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                     json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = 0;
    rc = qun_db_run(db, &q, err,
                    "SELECT " FILE_COLS " FROM group_files f JOIN users u ON u.id = f.uploader_id "
                    "WHERE f.group_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3",
                    "iii", g.id, after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 6);
        json_array_append_new(items, file_json(q));
    }
    return qun_page(rc, items, last, limit, out);
}

qun_rc qun_file_get(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *sha_hex,
                    char *content_type, size_t ct_size, char *name, size_t name_size, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    if (!is_digest(sha_hex))
        return qun_fail(err, QUN_FILE_NOT_FOUND, "a file is named by its lower-case SHA-256");
    qun_q_t *q;
    rc = qun_db_run(db, &q, err,
                    "SELECT content_type, name FROM group_files WHERE group_id = $1 AND sha256 = $2", "is",
                    g.id, sha_hex);
    if (rc == QUN_DONE) return qun_fail(err, QUN_FILE_NOT_FOUND, "no file %s in this group", sha_hex);
    if (rc != QUN_ROW) return rc;
    snprintf(content_type, ct_size, "%s", qun_q_col_text(q, 0));
    snprintf(name, name_size, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    return QUN_OK;
}
