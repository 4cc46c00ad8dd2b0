/* SPDX-License-Identifier: MIT */
/* qun admin backup DIR and qun admin restore DIR DATA_DIR (docs/admin.md): an online
 * copy of a data directory while qund serves, and its restoration.
 *
 * The backup works on the data directory itself (run it on the server, as the user qund
 * runs as), not through qund: the database first, as one consistent snapshot (SQLite's
 * online backup, its pages copied in one step and so in one read transaction: the
 * database as of one commit while qund keeps writing through WAL), then the blobs and the finished exports
 * that snapshot references, the ledger and TOTP keys, and the config file when there is one. Blobs are named
 * by their SHA-256 and never change, so a copy taken after the snapshot is the snapshot's; one deleted in
 * between (its group was being purged) is listed in the manifest as gone, and the restored qund's purge,
 * resumed from the snapshot, finishes it.  manifest.json lists every file with its size and SHA-256; the
 * restore checks them all before it writes anything, and refuses a backup that does not match.
 *
 * On PostgreSQL the database is pg_dump's; the command copies the rest, referenced as of
 * a REPEATABLE READ snapshot taken after the dump (docs/admin.md gives the order). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "qun/ledger.h"
#include "qun/store.h"
#include "qun/util.h"

int qun_cmd_admin_backup(qun_cli_t *c, int argc, char **argv);
int qun_cmd_admin_restore(qun_cli_t *c, int argc, char **argv);

#define FORMAT "qun-backup-1"

/* Copy src to dst (created 0600), hashing what was copied into hex (65 bytes).  Not
 * fsynced one by one: flush() syncs the whole file system once at the end. */
static int copy_file(const char *src, const char *dst, char *hex, int64_t *size) {
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    if (in < 0) return errno == ENOENT ? 1 : -1;
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out >= 0) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        unsigned char buf[1 << 16], md[32];
        ssize_t n;
        *size = 0;
        while ((n = read(in, buf, sizeof buf)) > 0) {
            if (write(out, buf, (size_t)n) != n) break;
            crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
            *size += n;
        }
        if (n == 0) {
            crypto_hash_sha256_final(&st, md);
            qun_hex(hex, md, sizeof md);
            rc = 0;
        }
        close(out);
    }
    close(in);
    return rc;
}

/* Copy src to dst (created 0600) in the kernel (copy_file_range: no trip through user
 * space, a reflink where the file system shares extents), falling back to copy_file
 * when the kernel cannot; for blobs, whose name is their digest already. */
static int clone_file(const char *src, const char *dst, int64_t *size) {
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    if (in < 0) return errno == ENOENT ? 1 : -1;
    struct stat st;
    if (fstat(in, &st) == 0 && (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0) {
        off_t left = st.st_size;
        ssize_t n = 1;
        while (left > 0 && (n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0)) > 0)
            left -= n;
        close(out);
        if (left == 0) {
            *size = st.st_size;
            rc = 0;
        } else if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
            char hex[65];
            unlink(dst);
            rc = copy_file(src, dst, hex, size);
        }
    }
    close(in);
    return rc;
}

/* The SHA-256 of a file into hex; -1 when it cannot be read. */
static int hash_file(const char *path, char *hex, int64_t *size) {
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[1 << 16], md[32];
    ssize_t n;
    *size = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        *size += n;
    }
    close(in);
    if (n < 0) return -1;
    crypto_hash_sha256_final(&st, md);
    qun_hex(hex, md, sizeof md);
    return 0;
}

static int mkdirs(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

typedef struct {
    const char *from, *to; /* the data directory, the backup directory */
    json_t *files, *gone;
} job_t;

/* Copy rel from the data directory into the backup and list it; a file that is gone is
 * listed in gone when optional, and fails the backup otherwise.  A blob is listed under
 * its name, digest (content-addressed: a blob that no longer matches its name is then
 * refused by the restore, which hashes everything); any other file is hashed as it is
 * copied. */
static int take(job_t *j, const char *rel, bool optional, const char *digest) {
    char src[1024], dst[1024], hex[65], dir[1024];
    int64_t size = 0;
    snprintf(src, sizeof src, "%s/%s", j->from, rel);
    snprintf(dst, sizeof dst, "%s/%s", j->to, rel);
    snprintf(dir, sizeof dir, "%s", dst);
    *strrchr(dir, '/') = '\0';
    if (mkdirs(dir) != 0)
        return qun_failw(QUN_EXIT_FAIL, "BACKUP_FAILED", "cli.err.create", dir, qun_errno_words(errno));
    int rc = digest ? clone_file(src, dst, &size) : copy_file(src, dst, hex, &size);
    if (digest) snprintf(hex, sizeof hex, "%s", digest);
    if (rc == 1 && optional) {
        json_array_append_new(j->gone, json_string(rel));
        return QUN_EXIT_OK;
    }
    if (rc != 0)
        return qun_failw(QUN_EXIT_FAIL, "BACKUP_FAILED", "cli.err.copy", src, qun_errno_words(errno));
    json_array_append_new(j->files,
                          json_pack("{s:s, s:I, s:s}", "path", rel, "size", (json_int_t)size, "sha256", hex));
    return QUN_EXIT_OK;
}

/* The blobs and finished exports db references, copied in. */
static int take_referenced(job_t *j, qun_db_t *db, int64_t *blobs, int64_t *exports) {
    qun_err_t err = {{0}, {0}};
    qun_q_t *q;
    json_t *rels = json_array(), *v;
    size_t i;
    char rel[256];
    qun_rc rc = qun_db_run(db, &q, &err, "SELECT sha256 FROM blobs WHERE refcount > 0 ORDER BY sha256", "");
    for (; rc == QUN_ROW; rc = qun_q_step(q, &err)) {
        const char *sha = qun_q_col_text(q, 0);
        if (strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64) continue; /* never a path */
        snprintf(rel, sizeof rel, "blobs/%.2s/%s", sha, sha);
        json_array_append_new(rels, json_string(rel));
        (*blobs)++;
    }
    if (rc == QUN_DONE)
        rc = qun_db_run(db, &q, &err, "SELECT xid FROM exports WHERE state = 'done' ORDER BY xid", "");
    for (; rc == QUN_ROW; rc = qun_q_step(q, &err)) {
        const char *xid = qun_q_col_text(q, 0);
        if (strchr(xid, '/') || xid[0] == '.') continue;
        snprintf(rel, sizeof rel, "exports/%s.age", xid);
        json_array_append_new(rels, json_string(rel));
        (*exports)++;
    }
    if (rc != QUN_DONE) {
        json_decref(rels);
        return qun_failw(QUN_EXIT_FAIL, qun_rc_name(rc), "cli.err.snapshot_read",
                         qun_detail_words(qun_rc_name(rc), err.msg));
    }
    int out = QUN_EXIT_OK;
    json_array_foreach(rels, i, v) {
        const char *path = json_string_value(v);
        bool blob = strncmp(path, "blobs/", 6) == 0;
        if ((out = take(j, path, true, blob ? strrchr(path, '/') + 1 : NULL)) != QUN_EXIT_OK) break;
    }
    json_decref(rels);
    return out;
}

/* Make what was written to dir durable: one syncfs instead of an fsync per file. */
static int flush(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && syncfs(fd) == 0 ? 0 : -1;
    if (fd >= 0) close(fd);
    return rc;
}

static bool dir_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty;
}

/* qun admin backup DIR [--data DATA_DIR] [--config FILE] [--store URL] */
int qun_cmd_admin_backup(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {
        {"--data", NULL, true}, {"--config", NULL, true}, {"--store", NULL, true}, {0}};
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, opts, 1, 1,
                            "admin backup DIR [--data DATA_DIR] [--config FILE] [--store URL]", &a);
    if (rc != QUN_EXIT_OK) return rc;
    const char *data = a.val[0] ? a.val[0] : getenv("QUN_DATA") ? getenv("QUN_DATA") : "var/data";
    const char *config = a.val[1] ? a.val[1] : getenv("QUND_CONFIG");
    const char *store = a.val[2];
    const char *dir = a.pos[0];
    if (!dir_empty(dir))
        return qun_failw(QUN_EXIT_USAGE, "BACKUP_DIR_NOT_EMPTY", "cli.err.backup_dir_not_empty", dir);
    char dbpath[1024], snap[1024];
    snprintf(dbpath, sizeof dbpath, "%s/qun.db", data);
    struct stat st;
    if (!store && stat(dbpath, &st) != 0)
        return qun_failw(QUN_EXIT_USAGE, "NO_DATA_DIR", "cli.err.no_data_dir", data);
    if (mkdirs(dir) != 0)
        return qun_failw(QUN_EXIT_FAIL, "BACKUP_FAILED", "cli.err.create", dir, qun_errno_words(errno));
    qun_store_init();
    job_t j = {data, dir, json_array(), json_array()};
    qun_err_t err = {{0}, {0}};
    qun_db_t *live = NULL, *db = NULL;
    int64_t blobs = 0, exports = 0;
    uint64_t size = 0;
    unsigned char root[QUN_HASH];
    char rooth[2 * QUN_HASH + 1] = "";
    qun_rc qrc;
    if (!store) {
        /* The snapshot: one read transaction, however long qund keeps writing. */
        snprintf(snap, sizeof snap, "%s/qun.db", dir);
        qrc = qun_db_open(dbpath, true, false, &live, &err);
        if (qrc == QUN_OK) qrc = qun_db_copy_to(live, snap, &err);
        qun_db_close(live);
        if (qrc == QUN_OK) qrc = qun_db_open(snap, true, false, &db, &err);
    } else {
        qrc = qun_db_open(store, true, false, &db, &err);
        if (qrc == QUN_OK) qrc = qun_db_read_begin(db, &err);
    }
    if (qrc == QUN_OK) qrc = qun_ledger_head(db, &size, root, &err);
    if (qrc != QUN_OK) {
        qun_db_close(db);
        json_decref(j.files);
        json_decref(j.gone);
        return qun_failw(QUN_EXIT_FAIL, qun_rc_name(qrc), "cli.err.snapshot_failed",
                         qun_detail_words(qun_rc_name(qrc), err.msg));
    }
    qun_hex(rooth, root, sizeof root);
    rc = take_referenced(&j, db, &blobs, &exports);
    qun_db_close(db);
    if (rc == QUN_EXIT_OK && !store) {
        /* Hashed once closed: opening the copy may have set its journal mode. */
        int64_t n = 0;
        char hex[65];
        if (hash_file(snap, hex, &n) == 0)
            json_array_insert_new(
                j.files, 0,
                json_pack("{s:s, s:I, s:s}", "path", "qun.db", "size", (json_int_t)n, "sha256", hex));
        else
            rc = qun_failw(QUN_EXIT_FAIL, "BACKUP_FAILED", "cli.err.snapshot_unreadable", snap);
    }
    if (rc == QUN_EXIT_OK) rc = take(&j, "ledger.key", false, NULL);
    char totp[1024];
    snprintf(totp, sizeof totp, "%s/totp.key", data);
    if (rc == QUN_EXIT_OK && access(totp, F_OK) == 0)
        rc = take(&j, "totp.key", false, NULL); /* none before TOTP */
    if (rc == QUN_EXIT_OK && config) {
        char hex[65];
        int64_t n = 0;
        char dst[1024];
        snprintf(dst, sizeof dst, "%s/qund.conf", dir);
        if (copy_file(config, dst, hex, &n) != 0)
            rc = qun_failw(QUN_EXIT_FAIL, "BACKUP_FAILED", "cli.err.copy_config", config,
                           qun_errno_words(errno));
        else
            json_array_append_new(j.files, json_pack("{s:s, s:I, s:s}", "path", "qund.conf", "size",
                                                     (json_int_t)n, "sha256", hex));
    }
    if (rc != QUN_EXIT_OK) {
        json_decref(j.files);
        json_decref(j.gone);
        return rc;
    }
    json_t *m =
        json_pack("{s:s, s:I, s:s, s:s, s:{s:I, s:s}, s:I, s:I, s:o, s:o}", "format", FORMAT, "created_at",
                  (json_int_t)time(NULL), "store", store ? "postgres" : "sqlite", "database",
                  store ? "not included: back it up with pg_dump (docs/admin.md)" : "qun.db", "ledger",
                  "size", (json_int_t)size, "root", rooth, "blobs", (json_int_t)blobs, "exports",
                  (json_int_t)exports, "files", j.files, "gone", j.gone);
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    if (json_dump_file(m, mpath, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || flush(dir) != 0) {
        json_decref(m);
        return qun_failw(QUN_EXIT_FAIL, "BACKUP_FAILED", "cli.err.write_short", mpath);
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:O, s:I, s:I, s:I}", "dir", dir, "ledger", json_object_get(m, "ledger"),
                              "blobs", (json_int_t)blobs, "exports", (json_int_t)exports, "gone",
                              (json_int_t)json_array_size(j.gone));
        qun_print_json(o);
        json_decref(o);
    } else {
        char n[4][24];
        qun_say("cli.backed_up", data, dir, qun_fmt_int((int64_t)json_array_size(j.files), n[0]),
                qun_fmt_int(blobs, n[1]), qun_fmt_int(exports, n[2]), qun_fmt_int((int64_t)size, n[3]));
        if (json_array_size(j.gone))
            qun_say("cli.backup_gone", qun_fmt_int((int64_t)json_array_size(j.gone), n[0]));
    }
    json_decref(m);
    return QUN_EXIT_OK;
}

/* qun admin restore DIR DATA_DIR: check every digest, then copy into a new data directory. */
int qun_cmd_admin_restore(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, NULL, 2, 2, "admin restore DIR DATA_DIR", &a);
    if (rc != QUN_EXIT_OK) return rc;
    const char *dir = a.pos[0], *data = a.pos[1];
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    json_error_t je;
    json_t *m = json_load_file(mpath, 0, &je), *f;
    if (!m || strcmp(qun_jstr_or(m, "format", ""), FORMAT) != 0 ||
        !json_is_array(json_object_get(m, "files"))) {
        json_decref(m);
        return qun_failw(QUN_EXIT_FAIL, "BACKUP_INVALID", "cli.err.not_manifest", mpath);
    }
    if (!dir_empty(data)) {
        json_decref(m);
        return qun_failw(QUN_EXIT_USAGE, "DATA_DIR_NOT_EMPTY", "cli.err.data_dir_not_empty", data);
    }
    size_t i;
    /* Every file first: nothing is written unless the whole backup is intact. */
    json_array_foreach(json_object_get(m, "files"), i, f) {
        const char *rel = qun_jstr_or(f, "path", "");
        char path[1024], hex[65];
        int64_t n = 0;
        if (!rel[0] || rel[0] == '/' || strstr(rel, "..")) {
            json_decref(m);
            return qun_failw(QUN_EXIT_FAIL, "BACKUP_INVALID", "cli.err.unsafe_path");
        }
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        if (hash_file(path, hex, &n) != 0 || n != qun_jint(f, "size") ||
            strcmp(hex, qun_jstr_or(f, "sha256", "")) != 0) {
            int e = QUN_EXIT_FAIL;
            qun_failw(e, "BACKUP_DIGEST_MISMATCH", "cli.err.backup_digest", rel);
            json_decref(m);
            return e;
        }
    }
    if (mkdirs(data) != 0) {
        json_decref(m);
        return qun_failw(QUN_EXIT_FAIL, "RESTORE_FAILED", "cli.err.create", data, qun_errno_words(errno));
    }
    job_t j = {dir, data, json_array(), json_array()};
    json_array_foreach(json_object_get(m, "files"), i, f) {
        if ((rc = take(&j, qun_jstr_or(f, "path", ""), false, NULL)) != QUN_EXIT_OK) break;
    }
    json_decref(j.files);
    json_decref(j.gone);
    if (rc == QUN_EXIT_OK && flush(data) != 0)
        rc = qun_failw(QUN_EXIT_FAIL, "RESTORE_FAILED", "cli.err.sync", data, qun_errno_words(errno));
    if (rc == QUN_EXIT_OK) {
        json_t *l = json_object_get(m, "ledger");
        char n[24];
        if (c->json)
            qun_print_json(l);
        else
            qun_say("cli.backup_restored", dir, data, qun_fmt_int(qun_jint(l, "size"), n),
                    qun_jstr_or(l, "root", "?"));
    }
    json_decref(m);
    return rc;
}
