/* SPDX-License-Identifier: MIT */
/* Reading a group archive (include/qun/archive.h, docs/archive-format.md): the
 * zstd-compressed tar is read with libarchive, every member staged and hashed, and
 * the digests checked against manifest.json both ways.  The JSON members are staged in
 * unlinked temporary files and read back a line at a time by the importer, and files
 * stream to disk in 64 KiB pieces, so memory does not grow with the number of
 * messages.  What the bytes mean on this server — the ledger proof, the importer's
 * standing, the rebuilt group — is core/import.c's. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/archive.h"
#include "qun/util.h"

static const char *const part_names[QUN_ARCHIVE_PARTS] = {"members.json", "messages.jsonl", "files.jsonl",
                                                          "payments.jsonl"};

void qun_archive_read_free(qun_archive_read_t *r) {
    if (!r) return;
    for (int i = 0; i < QUN_ARCHIVE_PARTS; i++)
        if (r->part[i]) fclose(r->part[i]);
    for (size_t i = 0; !r->keep_blobs && i < r->nblobs; i++) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s", r->dir, r->blobs[i].sha);
        unlink(path);
    }
    if (r->dir[0]) rmdir(r->dir);
    json_decref(r->manifest);
    free(r->blobs);
    free(r);
}

static bool is_hex64(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 64;
}

static const char *jstr(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

typedef struct {
    struct archive *ar;
    qun_archive_read_t *imp;
    json_t *seen; /* member name -> hex digest, in archive order */
    crypto_hash_sha256_state content;
    char *manifest; /* manifest.json's bytes */
    size_t manifest_len, manifest_cap;
    int64_t expanded; /* tar member bytes read so far, against limit */
    int64_t limit;
    unsigned char *buf; /* COPY_BUF bytes */
} reader_t;

#define COPY_BUF 65536

static qun_rc bad(qun_err_t *err, const char *what, struct archive *ar) {
    const char *why = ar ? archive_error_string(ar) : NULL;
    return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "%s%s%s", what, why ? ": " : "", why ? why : "");
}

/* Copy the data of the current member into f (may be NULL) or the manifest buffer,
 * hashing it; checks it has exactly size bytes. */
static qun_rc copy_member(reader_t *rd, const char *name, FILE *f, bool manifest, int64_t size, char hex[65],
                          qun_err_t *err) {
    unsigned char *buf = rd->buf;
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    int64_t total = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(rd->ar, buf, COPY_BUF);
        if (n < 0) {
            char what[200];
            snprintf(what, sizeof what, "cannot read %s from the archive", name);
            return bad(err, what, rd->ar);
        }
        if (n == 0) break;
        crypto_hash_sha256_update(&h, buf, (size_t)n);
        total += n;
        if ((rd->expanded += n) > rd->limit)
            return qun_fail(err, QUN_IMPORT_TOO_LARGE,
                            "the archive expands beyond %lld bytes (setting import_limit)",
                            (long long)rd->limit);
        if (manifest) {
            if (total > QUN_ARCHIVE_MANIFEST_MAX)
                return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "manifest.json is larger than %d bytes",
                                QUN_ARCHIVE_MANIFEST_MAX);
            if ((size_t)total + 1 > rd->manifest_cap) {
                size_t ncap =
                    rd->manifest_cap * 2 > (size_t)total + 1 ? rd->manifest_cap * 2 : (size_t)total + 1;
                char *p = realloc(rd->manifest, ncap);
                if (!p) return qun_fail(err, QUN_NOMEM, "out of memory for manifest.json");
                rd->manifest = p;
                rd->manifest_cap = ncap;
            }
            memcpy(rd->manifest + total - n, buf, (size_t)n);
            rd->manifest[total] = '\0';
            rd->manifest_len = (size_t)total;
        } else if (f && fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
            return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot stage %s: %s", name,
                            strerror(errno));
        }
    }
    if (total != size)
        return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "%s holds %lld bytes, its tar header says %lld",
                        name, (long long)total, (long long)size);
    unsigned char d[32];
    crypto_hash_sha256_final(&h, d);
    qun_hex(hex, d, sizeof d);
    return QUN_OK;
}

static qun_rc stage_file(qun_archive_read_t *imp, FILE **out, qun_err_t *err) {
    char path[760];
    snprintf(path, sizeof path, "%s/.part-XXXXXX", imp->dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot create a staging file: %s",
                        strerror(errno));
    unlink(path);
    *out = fdopen(fd, "w+");
    if (!*out) {
        close(fd);
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot open a staging file: %s",
                        strerror(errno));
    }
    return QUN_OK;
}

/* One member of the tar. */
static qun_rc read_member(reader_t *rd, struct archive_entry *e, qun_err_t *err) {
    qun_archive_read_t *imp = rd->imp;
    const char *name = archive_entry_pathname(e);
    if (!name) return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "a member has no name");
    /* The human-readable views (docs/archive-format.md) are derived from the listed
     * members and carry nothing to import: the transcript, and the files under their
     * original names, hard links to files/<sha256>. */
    if (strcmp(name, "messages.html") == 0 && archive_entry_filetype(e) == AE_IFREG) return QUN_OK;
    if (archive_entry_hardlink(e) && strncmp(name, "files/", 6) == 0 && !is_hex64(name + 6)) return QUN_OK;
    if (archive_entry_filetype(e) != AE_IFREG || !archive_entry_size_is_set(e))
        return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "member %.100s is not a regular file", name);
    int64_t size = archive_entry_size(e);
    if (size < 0 || size > rd->limit - rd->expanded)
        return qun_fail(err, QUN_IMPORT_TOO_LARGE,
                        "member %.100s would take the archive beyond %lld bytes (setting import_limit)", name,
                        (long long)rd->limit);
    bool manifest = strcmp(name, "manifest.json") == 0;
    if (json_object_get(rd->seen, name) || (manifest && rd->manifest))
        return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "member %.100s appears twice", name);
    int part = -1;
    for (int i = 0; i < QUN_ARCHIVE_PARTS; i++)
        if (strcmp(name, part_names[i]) == 0) part = i;
    bool blob = strncmp(name, "files/", 6) == 0 && is_hex64(name + 6);
    if (part < 0 && !blob && !manifest)
        return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "unexpected member %.100s", name);
    FILE *f = NULL;
    char path[800] = "";
    qun_rc rc = QUN_OK;
    if (part >= 0) {
        rc = stage_file(imp, &imp->part[part], err);
        f = imp->part[part];
    } else if (blob) {
        snprintf(path, sizeof path, "%s/%s", imp->dir, name + 6);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        f = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (!f) {
            if (fd >= 0) close(fd);
            return qun_fail(err, QUN_STORE, "cannot stage %s: %s", name, strerror(errno));
        }
        if (imp->nblobs == imp->cap) {
            size_t ncap = imp->cap ? imp->cap * 2 : 64;
            void *p = realloc(imp->blobs, ncap * sizeof *imp->blobs);
            if (!p) {
                fclose(f);
                unlink(path);
                return qun_fail(err, QUN_NOMEM, "out of memory");
            }
            imp->blobs = p;
            imp->cap = ncap;
        }
        snprintf(imp->blobs[imp->nblobs].sha, 65, "%s", name + 6);
        imp->blobs[imp->nblobs++].size = size;
    } else {
        rd->manifest = qun_xcalloc(1, 1);
        rd->manifest_cap = 1;
    }
    char hex[65];
    if (rc == QUN_OK) rc = copy_member(rd, name, f, manifest, size, hex, err);
    if (blob) {
        bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
        if (fclose(f) != 0) ok = false;
        if (rc == QUN_OK && !ok) rc = qun_fail(err, QUN_STORE, "cannot stage %s: %s", name, strerror(errno));
        if (rc == QUN_OK && strcmp(hex, name + 6) != 0)
            rc = qun_fail(err, QUN_IMPORT_DIGEST_MISMATCH, "%s holds bytes whose SHA-256 is %s", name, hex);
    }
    if (rc != QUN_OK || manifest) return rc;
    char line[400];
    int n = snprintf(line, sizeof line, "%s  %s\n", hex, name);
    crypto_hash_sha256_update(&rd->content, (const unsigned char *)line, (size_t)n);
    json_object_set_new(rd->seen, name, json_string(hex));
    return QUN_OK;
}

/* Every member against the manifest's digests, both ways. */
static qun_rc check_digests(reader_t *rd, json_t *digests, qun_err_t *err) {
    const char *name;
    json_t *v;
    json_object_foreach(rd->seen, name, v) {
        const char *want = json_string_value(json_object_get(digests, name));
        if (!want)
            return qun_fail(err, QUN_IMPORT_DIGEST_MISMATCH, "the manifest does not list member %.100s",
                            name);
        if (strcmp(want, json_string_value(v)) != 0)
            return qun_fail(err, QUN_IMPORT_DIGEST_MISMATCH, "%.100s hashes to %s, the manifest lists %.64s",
                            name, json_string_value(v), want);
    }
    json_object_foreach(digests, name, v) if (!json_object_get(rd->seen, name)) return qun_fail(
        err, QUN_IMPORT_DIGEST_MISMATCH, "the manifest lists %.100s, which the archive lacks", name);
    for (int i = 0; i < QUN_ARCHIVE_PARTS; i++)
        if (!rd->imp->part[i])
            return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "the archive has no %s", part_names[i]);
    return QUN_OK;
}

qun_rc qun_archive_read(const void *buf, size_t len, const char *dir, int64_t limit, qun_archive_read_t **out,
                        qun_err_t *err) {
    qun_archive_read_t *imp = qun_xcalloc(1, sizeof *imp);
    snprintf(imp->dir, sizeof imp->dir, "%s", dir);
    reader_t rd = {.imp = imp, .seen = json_object(), .buf = qun_xmalloc(COPY_BUF), .limit = limit};
    crypto_hash_sha256_init(&rd.content);
    qun_rc rc = QUN_OK;
    if (rc == QUN_OK) {
        rd.ar = archive_read_new();
        if (!rd.ar || archive_read_support_filter_zstd(rd.ar) != ARCHIVE_OK ||
            archive_read_support_format_tar(rd.ar) != ARCHIVE_OK)
            rc = qun_fail(err, QUN_INTERNAL, "libarchive cannot read zstd tar streams");
        else if (archive_read_open_memory(rd.ar, buf, len) != ARCHIVE_OK)
            rc = bad(err, "not a zstd-compressed tar archive", rd.ar);
    }
    bool zstd_checked = false;
    while (rc == QUN_OK) {
        struct archive_entry *e;
        int r = archive_read_next_header(rd.ar, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK) {
            rc = bad(err, "the archive is corrupted or truncated", rd.ar);
            break;
        }
        if (!zstd_checked) {
            /* libarchive reads a plain tar as readily as a compressed one; the format
             * is zstd, and a client sending anything else has the wrong bytes. */
            bool zstd = false;
            for (int i = 0; i < archive_filter_count(rd.ar); i++)
                zstd |= archive_filter_code(rd.ar, i) == ARCHIVE_FILTER_ZSTD;
            if (!zstd) {
                rc = qun_fail(
                    err, QUN_IMPORT_NOT_ZSTD,
                    "the body is a tar that is not zstd-compressed: send the plaintext `age -d` yields "
                    "from the .age file, which is the zstd-compressed tar");
                break;
            }
            zstd_checked = true;
        }
        rc = read_member(&rd, e, err);
    }
    if (rc == QUN_OK && !rd.manifest)
        rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "the archive has no manifest.json");
    if (rc == QUN_OK) {
        json_error_t je;
        imp->manifest = json_loadb(rd.manifest, rd.manifest_len, JSON_REJECT_DUPLICATES, &je);
        json_t *m = imp->manifest, *g = json_object_get(m, "group");
        if (!json_is_object(m) || strcmp(jstr(m, "format"), "qun-group-archive") != 0)
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID,
                          "manifest.json is not a qun group archive manifest");
        else if (json_integer_value(json_object_get(m, "format_version")) != QUN_ARCHIVE_FORMAT_VERSION)
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID,
                          "manifest.json has format_version %lld, this server reads %d",
                          (long long)json_integer_value(json_object_get(m, "format_version")),
                          QUN_ARCHIVE_FORMAT_VERSION);
        else if (!json_is_object(json_object_get(m, "digests")) ||
                 !json_string_value(json_object_get(g, "name")) ||
                 !json_string_value(json_object_get(g, "kind")))
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "manifest.json lacks its digests or group");
    }
    if (rc == QUN_OK) rc = check_digests(&rd, json_object_get(imp->manifest, "digests"), err);
    unsigned char cd[32];
    crypto_hash_sha256_final(&rd.content, cd);
    qun_hex(imp->content_digest, cd, sizeof cd);
    if (rd.ar) archive_read_free(rd.ar);
    json_decref(rd.seen);
    free(rd.manifest);
    free(rd.buf);
    if (rc != QUN_OK) {
        qun_archive_read_free(imp);
        return rc;
    }
    *out = imp;
    return QUN_OK;
}
