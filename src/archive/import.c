/* SPDX-License-Identifier: MIT */
/* Import of a group archive (include/qun/import.h, docs/archive-format.md): read the
 * zstd-compressed tar with libarchive, stage and hash every member, check the digests
 * against manifest.json and the manifest's ledger proof against this server's own
 * ledger, then rebuild a new group in one writer transaction.  The JSON members are
 * staged in unlinked temporary files and read back a line at a time, and files stream
 * to disk in 64 KiB pieces, so memory does not grow with the number of messages. */
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

#include "qun/core.h"
#include "qun/event.h"
#include "qun/export.h"
#include "qun/import.h"
#include "qun/ledger.h"

enum { P_MEMBERS, P_MESSAGES, P_FILES, P_PAYMENTS, NPARTS };
static const char *const part_names[NPARTS] = {"members.json", "messages.jsonl", "files.jsonl", "payments.jsonl"};

typedef struct {
    char sha[65];
    int64_t size;
} blob_t;

struct qun_import {
    char dir[700];       /* staging directory of the files; removed by qun_import_free */
    FILE *part[NPARTS];  /* the staged JSON members (unlinked) */
    json_t *manifest;
    json_t *members;     /* members.json, parsed */
    blob_t *blobs;
    size_t nblobs, cap;
    bool adopted;        /* the blobs moved into the blob store */
    char content_digest[65];
    int64_t source_index;
    int64_t source_id;   /* the archived group's row here (its id is ledger-proven) */
    bool by_owner;       /* the importer owns the archived group now (else: an admin) */
};

void qun_import_free(qun_import_t *imp) {
    if (!imp) return;
    for (int i = 0; i < NPARTS; i++)
        if (imp->part[i]) fclose(imp->part[i]);
    for (size_t i = 0; !imp->adopted && i < imp->nblobs; i++) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s", imp->dir, imp->blobs[i].sha);
        unlink(path);
    }
    if (imp->dir[0]) rmdir(imp->dir);
    json_decref(imp->manifest);
    json_decref(imp->members);
    free(imp->blobs);
    free(imp);
}

static bool is_hex64(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 64;
}

static bool unhex32(const char *s, unsigned char out[QUN_HASH]) {
    size_t n = 0;
    return s && is_hex64(s) && sodium_hex2bin(out, QUN_HASH, s, 64, NULL, &n, NULL) == 0 && n == QUN_HASH;
}

/* ---- phase 1: read and stage ---- */

static int64_t jint(json_t *o, const char *k) {
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}


typedef struct {
    struct archive *ar;
    qun_import_t *imp;
    json_t *seen;        /* member name -> hex digest, in archive order */
    crypto_hash_sha256_state content;
    char *manifest;      /* manifest.json's bytes */
    size_t manifest_len, manifest_cap;
    int64_t expanded;    /* tar member bytes read so far, against import_limit */
    unsigned char *buf;  /* COPY_BUF bytes */
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
        if ((rd->expanded += n) > qun_core_cfg.import_limit)
            return qun_fail(err, QUN_IMPORT_TOO_LARGE, "the archive expands beyond %lld bytes (setting import_limit)",
                            (long long)qun_core_cfg.import_limit);
        if (manifest) {
            if (total > QUN_IMPORT_MANIFEST_MAX)
                return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "manifest.json is larger than %d bytes",
                                QUN_IMPORT_MANIFEST_MAX);
            if ((size_t)total + 1 > rd->manifest_cap) {
                size_t ncap = rd->manifest_cap * 2 > (size_t)total + 1 ? rd->manifest_cap * 2 : (size_t)total + 1;
                char *p = realloc(rd->manifest, ncap);
                if (!p) return qun_fail(err, QUN_NOMEM, "out of memory for manifest.json");
                rd->manifest = p;
                rd->manifest_cap = ncap;
            }
            memcpy(rd->manifest + total - n, buf, (size_t)n);
            rd->manifest[total] = '\0';
            rd->manifest_len = (size_t)total;
        } else if (f && fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
            return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot stage %s: %s", name, strerror(errno));
        }
    }
    if (total != size)
        return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "%s holds %lld bytes, its tar header says %lld", name,
                        (long long)total, (long long)size);
    unsigned char d[32];
    crypto_hash_sha256_final(&h, d);
    qun_hex(hex, d, sizeof d);
    return QUN_OK;
}

static qun_rc stage_file(qun_import_t *imp, FILE **out, qun_err_t *err) {
    char path[760];
    snprintf(path, sizeof path, "%s/.part-XXXXXX", imp->dir);
    int fd = mkstemp(path);
    if (fd < 0) return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot create a staging file: %s", strerror(errno));
    unlink(path);
    *out = fdopen(fd, "w+");
    if (!*out) {
        close(fd);
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot open a staging file: %s", strerror(errno));
    }
    return QUN_OK;
}

/* One member of the tar. */
static qun_rc read_member(reader_t *rd, struct archive_entry *e, qun_err_t *err) {
    qun_import_t *imp = rd->imp;
    const char *name = archive_entry_pathname(e);
    if (!name) return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "a member has no name");
    if (archive_entry_filetype(e) != AE_IFREG || !archive_entry_size_is_set(e))
        return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "member %.100s is not a regular file", name);
    int64_t size = archive_entry_size(e);
    if (size < 0 || size > qun_core_cfg.import_limit - rd->expanded)
        return qun_fail(err, QUN_IMPORT_TOO_LARGE, "member %.100s would take the archive beyond %lld bytes (setting import_limit)",
                        name, (long long)qun_core_cfg.import_limit);
    bool manifest = strcmp(name, "manifest.json") == 0;
    if (json_object_get(rd->seen, name) || (manifest && rd->manifest))
        return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "member %.100s appears twice", name);
    int part = -1;
    for (int i = 0; i < NPARTS; i++)
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
            blob_t *p = realloc(imp->blobs, ncap * sizeof *p);
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
            return qun_fail(err, QUN_IMPORT_DIGEST_MISMATCH, "the manifest does not list member %.100s", name);
        if (strcmp(want, json_string_value(v)) != 0)
            return qun_fail(err, QUN_IMPORT_DIGEST_MISMATCH, "%.100s hashes to %s, the manifest lists %.64s", name,
                            json_string_value(v), want);
    }
    json_object_foreach(digests, name, v)
        if (!json_object_get(rd->seen, name))
            return qun_fail(err, QUN_IMPORT_DIGEST_MISMATCH, "the manifest lists %.100s, which the archive lacks", name);
    for (int i = 0; i < NPARTS; i++)
        if (!rd->imp->part[i]) return qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "the archive has no %s", part_names[i]);
    return QUN_OK;
}

/* The manifest's `ledger` object: the entry commits to our content digest and this
 * export, its proof verifies, and this server's ledger holds it under that root. */
static qun_rc check_proof(qun_db_t *db, qun_import_t *imp, const char *content, qun_err_t *err) {
    json_t *m = imp->manifest, *l = json_object_get(m, "ledger");
    const char *xid = json_string_value(json_object_get(m, "export"));
    const char *gid = json_string_value(json_object_get(json_object_get(m, "group"), "id"));
    if (!json_is_object(l))
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "the manifest carries no ledger proof of its export");
    const char *entry = json_string_value(json_object_get(l, "entry"));
    json_t *proof = json_object_get(l, "proof");
    json_int_t index = json_integer_value(json_object_get(l, "index"));
    json_int_t size = json_integer_value(json_object_get(l, "tree_size"));
    unsigned char root[QUN_HASH], leaf[QUN_HASH], path[QUN_PROOF_MAX][QUN_HASH];
    if (!entry || !json_is_array(proof) || json_array_size(proof) > QUN_PROOF_MAX || index < 0 || size <= index ||
        !unhex32(json_string_value(json_object_get(l, "root")), root))
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "the manifest's ledger proof is malformed");
    size_t i;
    json_t *h;
    json_array_foreach(proof, i, h)
        if (!unhex32(json_string_value(h), path[i]))
            return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "the manifest's ledger proof is malformed");
    if (strcmp(jstr(m, "content_digest"), content) != 0)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "the members hash to content digest %s, the manifest says %.64s",
                        content, jstr(m, "content_digest"));
    json_t *e = json_loads(entry, JSON_REJECT_DUPLICATES, NULL);
    bool fits = e && strcmp(jstr(e, "event"), "export.content") == 0 &&
                strcmp(jstr(e, "content_digest"), content) == 0 &&
                xid && strcmp(jstr(e, "export"), xid) == 0 &&
                gid && strcmp(jstr(e, "group"), gid) == 0;
    json_decref(e);
    if (!fits)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID,
                        "the ledgered entry is not the export.content of this export and content digest");
    qun_merkle_leaf(leaf, entry, strlen(entry));
    if (!qun_merkle_verify_inclusion(leaf, (uint64_t)index, (uint64_t)size, (const unsigned char(*)[QUN_HASH])path,
                                     (int)json_array_size(proof), root))
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "the inclusion proof of entry %lld in a tree of %lld does not verify",
                        (long long)index, (long long)size);
    /* Against our own ledger: the same root at that size, and the same entry text. */
    uint64_t head;
    unsigned char ours[QUN_HASH];
    qun_rc rc = qun_ledger_head(db, &head, ours, err);
    if (rc == QUN_OK && (uint64_t)size > head)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "this server's ledger has %llu entries, the proof is for %lld",
                        (unsigned long long)head, (long long)size);
    if (rc == QUN_OK) rc = qun_ledger_root_at(db, (uint64_t)size, ours, err);
    if (rc != QUN_OK) return rc;
    if (sodium_memcmp(ours, root, QUN_HASH) != 0)
        return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "this server's ledger has another root at size %lld",
                        (long long)size);
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, "SELECT entry FROM ledger_entries WHERE idx = $1", "i", (int64_t)index);
    if (rc != QUN_ROW) return rc == QUN_DONE ? qun_fail(err, QUN_IMPORT_PROOF_INVALID, "no ledger entry %lld", (long long)index) : rc;
    bool same = strcmp(qun_q_col_text(q, 0), entry) == 0;
    qun_q_done(q);
    if (!same) return qun_fail(err, QUN_IMPORT_PROOF_INVALID, "ledger entry %lld differs from the manifest's", (long long)index);
    imp->source_index = index;
    return QUN_OK;
}

/* The importer's right is judged on the archived group as it is now, never on the
 * roles the archive recorded (docs/archive-format.md, "Who may import"): an admin
 * removed since the export, or a member of a self-export, has no standing.  The group
 * is found by the id its `export.content` entry names (check_proof holds, so the id
 * is this server's).  A group that is dissolved (or purging, purged) is not rebuilt:
 * its content follows the disposition, and the owner restores it within the grace.
 * While a dissolution is open only the owner, who could cancel it, may import. */
static qun_rc check_importer(qun_db_t *db, qun_import_t *imp, const qun_actor_t *a, qun_err_t *err) {
    const char *gid = jstr(json_object_get(imp->manifest, "group"), "id");
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT g.id, g.state, COALESCE(m.role, '') FROM groups g LEFT JOIN members m "
                           "ON m.group_id = g.id AND m.user_id = $2 WHERE g.gid = $1", "si", gid, a->uid);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_IMPORT_FORBIDDEN, "the archived group %.40s is not on this server", gid);
    if (rc != QUN_ROW) return rc;
    char state[16], role[16];
    imp->source_id = qun_q_col_int(q, 0);
    snprintf(state, sizeof state, "%s", qun_q_col_text(q, 1));
    snprintf(role, sizeof role, "%s", qun_q_col_text(q, 2));
    qun_q_done(q);
    qun_group_state_t st = qun_group_state_parse(state);
    if (st == QUN_GROUP_DISSOLVED || st == QUN_GROUP_PURGING || st == QUN_GROUP_PURGED)
        return qun_fail(err, QUN_IMPORT_SOURCE_GONE,
                        "group %s is %s: what an archive of it holds follows its dissolution's disposition%s", gid, state,
                        st == QUN_GROUP_DISSOLVED ? " (its owner may restore it within the purge grace)" : "");
    imp->by_owner = strcmp(role, "owner") == 0;
    if (!imp->by_owner && strcmp(role, "admin") != 0)
        return qun_fail(err, QUN_IMPORT_FORBIDDEN, "only a current owner or admin of group %s may import it; you are %s",
                        gid, role[0] ? role : "not a member");
    if (!imp->by_owner && st != QUN_GROUP_ACTIVE)
        return qun_fail(err, QUN_IMPORT_FORBIDDEN, "group %s has a dissolution in %s: only its owner may import it now",
                        gid, state);
    return QUN_OK;
}

qun_rc qun_import_stage(qun_db_t *db, const qun_actor_t *a, const void *buf, size_t len, qun_import_t **out,
                        qun_err_t *err) {
    qun_import_t *imp = qun_xcalloc(1, sizeof *imp);
    reader_t rd = {.imp = imp, .seen = json_object(), .buf = qun_xmalloc(COPY_BUF)};
    crypto_hash_sha256_init(&rd.content);
    char top[700], rnd[QUN_ID_MAX];
    snprintf(top, sizeof top, "%s/imports", qun_core_cfg.data_dir);
    qun_id_new(rnd, "i");
    qun_rc rc = QUN_OK;
    if (mkdir(top, 0700) != 0 && errno != EEXIST)
        rc = qun_fail(err, QUN_STORE, "cannot create %s: %s", top, strerror(errno));
    if (rc == QUN_OK) {
        snprintf(imp->dir, sizeof imp->dir, "%.600s/%s", top, rnd);
        if (mkdir(imp->dir, 0700) != 0) {
            rc = qun_fail(err, QUN_STORE, "cannot create %s: %s", imp->dir, strerror(errno));
            imp->dir[0] = '\0';
        }
    }
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
            for (int i = 0; i < archive_filter_count(rd.ar); i++) zstd |= archive_filter_code(rd.ar, i) == ARCHIVE_FILTER_ZSTD;
            if (!zstd) {
                rc = qun_fail(err, QUN_IMPORT_NOT_ZSTD,
                              "the body is a tar that is not zstd-compressed: send the plaintext `age -d` yields "
                              "from the .age file, which is the zstd-compressed tar");
                break;
            }
            zstd_checked = true;
        }
        rc = read_member(&rd, e, err);
    }
    if (rc == QUN_OK && !rd.manifest) rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "the archive has no manifest.json");
    if (rc == QUN_OK) {
        json_error_t je;
        imp->manifest = json_loadb(rd.manifest, rd.manifest_len, JSON_REJECT_DUPLICATES, &je);
        json_t *m = imp->manifest, *g = json_object_get(m, "group");
        if (!json_is_object(m) || strcmp(jstr(m, "format"), "qun-group-archive") != 0)
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "manifest.json is not a qun group archive manifest");
        else if (json_integer_value(json_object_get(m, "format_version")) != QUN_EXPORT_FORMAT_VERSION)
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "manifest.json has format_version %lld, this server reads %d",
                          (long long)json_integer_value(json_object_get(m, "format_version")), QUN_EXPORT_FORMAT_VERSION);
        else if (!json_is_object(json_object_get(m, "digests")) || !json_string_value(json_object_get(g, "name")) ||
                 !json_string_value(json_object_get(g, "kind")))
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "manifest.json lacks its digests or group");
    }
    if (rc == QUN_OK) rc = check_digests(&rd, json_object_get(imp->manifest, "digests"), err);
    unsigned char cd[32];
    crypto_hash_sha256_final(&rd.content, cd);
    qun_hex(imp->content_digest, cd, sizeof cd);
    if (rc == QUN_OK) rc = check_proof(db, imp, imp->content_digest, err);
    if (rc == QUN_OK) { /* the entry is this server's own (check_proof): its scope is trusted */
        json_t *e = json_loads(jstr(json_object_get(imp->manifest, "ledger"), "entry"), 0, NULL);
        const char *scope = json_string_value(json_object_get(e, "scope"));
        if (scope && strcmp(scope, "self") == 0)
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID,
                          "this archive is one member's own copy (scope self): it lacks the others' payment lines "
                          "and cannot rebuild the group");
        json_decref(e);
    }
    if (rc == QUN_OK) {
        rewind(imp->part[P_MEMBERS]);
        imp->members = json_loadf(imp->part[P_MEMBERS], JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_array(imp->members))
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "members.json is not a JSON array");
    }
    if (rc == QUN_OK) rc = check_importer(db, imp, a, err); /* early, before any byte is adopted */
    /* Verified: the bytes move into the blob store (as an upload's do before its row). */
    for (size_t i = 0; rc == QUN_OK && i < imp->nblobs; i++) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s", imp->dir, imp->blobs[i].sha);
        rc = qun_blob_adopt(path, imp->blobs[i].sha, imp->blobs[i].size, err);
    }
    if (rc == QUN_OK) imp->adopted = true;
    if (rd.ar) archive_read_free(rd.ar);
    json_decref(rd.seen);
    free(rd.manifest);
    free(rd.buf);
    if (rc != QUN_OK) {
        qun_import_free(imp);
        return rc;
    }
    *out = imp;
    return QUN_OK;
}

/* ---- phase 2: rebuild ---- */

/* Row id of the user openid into *uid; 0 when there is none. */
static qun_rc user_id(qun_db_t *db, const char *openid, int64_t *uid, qun_err_t *err) {
    qun_q_t *q;
    *uid = 0;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT id FROM users WHERE openid = $1", "s", openid ? openid : "");
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    *uid = qun_q_col_int(q, 0);
    qun_q_done(q);
    return QUN_OK;
}

/* The author of a line, who must be a user here (the archive came from this server). */
static qun_rc known_user(qun_db_t *db, const char *openid, int64_t *uid, qun_err_t *err) {
    qun_rc rc = user_id(db, openid, uid, err);
    if (rc == QUN_OK && !*uid)
        rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "%.40s is not a user of this server", openid ? openid : "(none)");
    return rc;
}

/* The next line of a staged .jsonl member as a JSON object into *o (NULL at the end). */
static qun_rc next_line(FILE *f, const char *name, char **line, size_t *cap, json_t **o, qun_err_t *err) {
    *o = NULL;
    ssize_t n = getline(line, cap, f);
    if (n < 0) return QUN_OK;
    *o = json_loadb(*line, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    return json_is_object(*o) ? QUN_OK : qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "a line of %s is not a JSON object", name);
}

/* Why an archived member is not added (the "skipped" list of the answer). */
static void skip(json_t *skipped, const char *openid, const char *reason) {
    json_array_append_new(skipped, json_pack("{s:s, s:s}", "openid", openid, "reason", reason));
}

/* The members of the rebuilt group, added by today's rules for adding members
 * (qun_member_add): only people who are members of the archived group now (someone who
 * left or was removed since the export is not put back; someone who joined since was
 * never in the archive), each with the role the importer may give today: their current
 * role when the importer owns the group (its owner's seat is the importer's), and
 * `member` when an admin imports, since admins appoint no admins. */
static qun_rc add_members(qun_db_t *db, const qun_actor_t *a, qun_import_t *imp, int64_t gid_id, json_t *skipped,
                          int64_t *count, qun_err_t *err) {
    size_t i;
    json_t *m;
    qun_rc rc = QUN_OK;
    *count = 1; /* the importer, owner since the group was created */
    json_array_foreach(imp->members, i, m) {
        const char *openid = jstr(m, "openid");
        if (strcmp(openid, a->openid) == 0) {
            rc = qun_db_run(db, NULL, err, "UPDATE members SET joined_at = $3 WHERE group_id = $1 AND user_id = $2",
                            "iii", gid_id, a->uid, jint(m, "joined_at"));
            if (rc != QUN_DONE) return rc;
            continue;
        }
        int64_t uid;
        rc = user_id(db, openid, &uid, err);
        if (rc != QUN_OK) return rc;
        if (!uid) {
            skip(skipped, openid, "no_account");
            continue;
        }
        qun_q_t *q;
        char role[16];
        rc = qun_db_run(db, &q, err, "SELECT role FROM members WHERE group_id = $1 AND user_id = $2", "ii", imp->source_id,
                        uid);
        if (rc == QUN_DONE) {
            skip(skipped, openid, "not_a_member_now");
            continue;
        }
        if (rc != QUN_ROW) return rc;
        snprintf(role, sizeof role, "%s", imp->by_owner && strcmp(qun_q_col_text(q, 0), "admin") == 0 ? "admin" : "member");
        qun_q_done(q);
        rc = qun_db_run(db, NULL, err, "INSERT INTO members(group_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
                        "iisi", gid_id, uid, role, jint(m, "joined_at"));
        if (rc == QUN_DONE) rc = qun_event_member(db, "member.added", gid_id, uid, err);
        else if (rc == QUN_OK) rc = QUN_STORE;
        if (rc != QUN_OK) return rc;
        (*count)++;
    }
    rc = qun_db_run(db, NULL, err, "UPDATE groups SET member_count = $2 WHERE id = $1", "ii", gid_id, *count);
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc add_messages(qun_db_t *db, qun_import_t *imp, int64_t gid_id, int64_t *count, qun_err_t *err) {
    char *line = NULL, last[QUN_ID_MAX] = "";
    size_t cap = 0;
    int64_t last_uid = 0, max_seq = 0;
    json_t *o;
    qun_rc rc;
    *count = 0;
    while ((rc = next_line(imp->part[P_MESSAGES], "messages.jsonl", &line, &cap, &o, err)) == QUN_OK && o) {
        const char *author = jstr(o, "author");
        int64_t seq = jint(o, "seq");
        if (strcmp(author, last) != 0) {
            rc = known_user(db, author, &last_uid, err);
            snprintf(last, sizeof last, "%s", author);
        }
        if (rc == QUN_OK && (seq <= max_seq || !json_is_string(json_object_get(o, "text"))))
            rc = qun_fail(err, QUN_IMPORT_ARCHIVE_INVALID, "messages.jsonl is not in increasing seq order with text");
        if (rc == QUN_OK) {
            const char *kind = json_string_value(json_object_get(o, "kind"));
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO messages(group_id, seq, author_id, kind, body, created_at) "
                            "VALUES ($1, $2, $3, $4, $5, $6)", "iiissi", gid_id, seq, last_uid, kind ? kind : "text",
                            jstr(o, "text"), jint(o, "created_at"));
            rc = rc == QUN_DONE ? QUN_OK : rc == QUN_OK ? QUN_STORE : rc;
        }
        json_decref(o);
        if (rc != QUN_OK) break;
        max_seq = seq;
        (*count)++;
    }
    free(line);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, NULL, err, "UPDATE groups SET next_seq = $2 WHERE id = $1", "ii", gid_id, max_seq + 1);
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc add_files(qun_db_t *db, qun_import_t *imp, int64_t gid_id, int64_t *count, qun_err_t *err) {
    char *line = NULL;
    size_t cap = 0;
    json_t *o;
    qun_rc rc;
    int64_t now = qun_now();
    *count = 0;
    while ((rc = next_line(imp->part[P_FILES], "files.jsonl", &line, &cap, &o, err)) == QUN_OK && o) {
        const char *sha = jstr(o, "sha256");
        int64_t size = jint(o, "size"), uid = 0;
        char path[1024];
        struct stat st;
        rc = known_user(db, jstr(o, "uploader"), &uid, err);
        qun_blob_path(sha, path, sizeof path);
        /* Unlinks of dropped blobs run on this writer, so this check cannot race one. */
        if (rc == QUN_OK && (stat(path, &st) != 0 || st.st_size != size))
            rc = qun_fail(err, QUN_UNAVAILABLE, "the bytes of %s were reclaimed meanwhile; retry the import", sha);
        if (rc == QUN_OK)
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO blobs(sha256, size, refcount, created_at) VALUES ($1, $2, 1, $3) "
                            "ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1", "sii", sha, size, now);
        if (rc == QUN_DONE) rc = qun_db_run(db, NULL, err, "DELETE FROM unlink_queue WHERE sha256 = $1", "s", sha);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err,
                            "INSERT INTO group_files(group_id, sha256, name, content_type, size, uploader_id, created_at) "
                            "VALUES ($1, $2, $3, $4, $5, $6, $7)", "isssiii", gid_id, sha, jstr(o, "name"),
                            jstr(o, "content_type"), size, uid, jint(o, "created_at"));
        json_decref(o);
        if (rc != QUN_DONE && rc != QUN_OK) break;
        rc = QUN_OK;
        (*count)++;
    }
    free(line);
    return rc;
}

static qun_rc add_payments(qun_db_t *db, qun_import_t *imp, int64_t gid_id, int64_t *count, qun_err_t *err) {
    char *line = NULL;
    size_t cap = 0;
    json_t *o;
    qun_rc rc;
    *count = 0;
    while ((rc = next_line(imp->part[P_PAYMENTS], "payments.jsonl", &line, &cap, &o, err)) == QUN_OK && o) {
        int64_t uid = 0, pid_id = 0;
        char pid[QUN_ID_MAX];
        qun_id_new(pid, "p");
        qun_q_t *q;
        rc = known_user(db, jstr(o, "creator"), &uid, err);
        if (rc == QUN_OK) {
            rc = qun_db_run(db, &q, err,
                            "INSERT INTO payments(pid, group_id, creator_id, kind, amount, shares, claimed_amount, "
                            "claimed_shares, memo, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                            "RETURNING id", "siisiiiisi", pid, gid_id, uid, jstr(o, "kind"), jint(o, "amount"),
                            jint(o, "shares"), jint(o, "claimed_amount"), jint(o, "claimed_shares"), jstr(o, "memo"),
                            jint(o, "created_at"));
            if (rc == QUN_ROW) {
                pid_id = qun_q_col_int(q, 0);
                qun_q_done(q);
                rc = QUN_OK;
            } else if (rc == QUN_DONE) {
                rc = QUN_STORE;
            }
        }
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(o, "claims"), i, c) {
            int64_t cuid = 0;
            if (rc == QUN_OK) rc = known_user(db, jstr(c, "openid"), &cuid, err);
            if (rc == QUN_OK)
                rc = qun_db_run(db, NULL, err,
                                "INSERT INTO payment_claims(payment_id, user_id, amount, created_at) VALUES ($1, $2, $3, $4)",
                                "iiii", pid_id, cuid, jint(c, "amount"), jint(c, "created_at"));
            if (rc == QUN_DONE) rc = QUN_OK;
        }
        json_decref(o);
        if (rc != QUN_OK) break;
        (*count)++;
    }
    free(line);
    return rc;
}

qun_rc qun_import_rebuild(qun_db_t *db, const qun_actor_t *a, qun_import_t *imp, json_t **out, qun_err_t *err) {
    for (int i = 0; i < NPARTS; i++) rewind(imp->part[i]); /* a retried transaction reads them again */
    /* The importer's standing again, on the writer: it may have changed since staging. */
    qun_rc rc = check_importer(db, imp, a, err);
    if (rc != QUN_OK) return rc;
    json_t *m = imp->manifest, *g = json_object_get(m, "group");
    const char *kind = jstr(g, "kind");
    /* Kinds that need an org or regions come back as standard groups. */
    const char *new_kind = strcmp(kind, "finance") == 0 ? "finance" : "standard";
    json_t *group = NULL, *skipped = json_array();
    rc = qun_group_create(db, a, jstr(g, "name"), new_kind, NULL, NULL, &group, err);
    char gid[QUN_ID_MAX] = "";
    int64_t gid_id = 0, members = 0, messages = 0, files = 0, payments = 0, index = -1;
    if (rc == QUN_OK) {
        snprintf(gid, sizeof gid, "%s", jstr(group, "id"));
        qun_q_t *q;
        rc = qun_db_run(db, &q, err, "SELECT id FROM groups WHERE gid = $1", "s", gid);
        if (rc == QUN_ROW) {
            gid_id = qun_q_col_int(q, 0);
            qun_q_done(q);
            rc = QUN_OK;
        } else if (rc == QUN_DONE) {
            rc = QUN_STORE;
        }
    }
    json_decref(group);
    if (rc == QUN_OK) rc = add_members(db, a, imp, gid_id, skipped, &members, err);
    if (rc == QUN_OK) rc = add_messages(db, imp, gid_id, &messages, err);
    if (rc == QUN_OK) rc = add_files(db, imp, gid_id, &files, err);
    if (rc == QUN_OK) rc = add_payments(db, imp, gid_id, &payments, err);
    json_t *counts = json_pack("{s:I, s:I, s:I, s:I}", "members", (json_int_t)members, "messages", (json_int_t)messages,
                               "files", (json_int_t)files, "payments", (json_int_t)payments);
    json_t *source = json_pack("{s:s, s:s, s:s, s:I}", "group", jstr(g, "id"), "export", jstr(m, "export"),
                               "content_digest", imp->content_digest, "ledger_index", (json_int_t)imp->source_index);
    if (rc == QUN_OK) {
        json_t *f = json_pack("{s:O, s:O, s:I}", "source", source, "counts", counts, "skipped_members",
                              (json_int_t)json_array_size(skipped));
        rc = qun_ledger_append(db, "import.made", gid, a->openid, QUN_GROUP_NAME(ACTIVE), QUN_GROUP_NAME(ACTIVE), f,
                               &index, err);
        json_decref(f);
    }
    if (rc != QUN_OK) {
        json_decref(counts);
        json_decref(source);
        json_decref(skipped);
        return rc;
    }
    json_t *openids = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(skipped, i, e) json_array_append(openids, json_object_get(e, "openid"));
    *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I}", "group", gid, "name", jstr(g, "name"), "kind",
                     new_kind, "original_kind", kind, "source", source, "counts", counts, "skipped_members", openids,
                     "skipped", skipped, "ledger_index", (json_int_t)index);
    return QUN_OK;
}
