/* SPDX-License-Identifier: MIT */
/* The archive writer of archive.h: libarchive writes a pax tar through its zstd
 * filter into a callback that feeds the age encryptor, whose output is hashed on its
 * way to the caller's sink.  Each layer holds one block or chunk, so memory stays
 * flat whatever the archive's size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>

#include "qun/archive.h"

struct qun_archive {
    struct archive *ar;
    qun_age_enc_t *enc;
    qun_age_write_fn write;
    void *arg;
    crypto_hash_sha256_state sha;
    int64_t bytes;
    qun_rc enc_rc; /* the first error of the age layer, reported by the tar calls */
    qun_err_t enc_err;
};

/* The sink under age: hash, count, pass on. */
static int hashed_write(void *arg, const void *buf, size_t len) {
    qun_archive_t *a = arg;
    crypto_hash_sha256_update(&a->sha, buf, len);
    a->bytes += (int64_t)len;
    return a->write(a->arg, buf, len);
}

/* libarchive's output callback: compressed tar bytes into the age encryptor. */
static la_ssize_t ar_write(struct archive *ar, void *arg, const void *buf, size_t len) {
    qun_archive_t *a = arg;
    qun_rc rc = qun_age_enc_write(a->enc, buf, len, &a->enc_err);
    if (rc != QUN_OK) {
        a->enc_rc = rc;
        archive_set_error(ar, EIO, "%s", a->enc_err.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

static qun_rc ar_fail(qun_archive_t *a, qun_err_t *err, const char *what) {
    if (a->enc_rc != QUN_OK) return qun_fail(err, a->enc_rc, "%s", a->enc_err.msg);
    return qun_fail(err, QUN_INTERNAL, "%s: %s", what, archive_error_string(a->ar));
}

qun_rc qun_archive_new(const uint8_t (*pks)[32], size_t n, qun_age_write_fn write, void *arg,
                       qun_archive_t **out, qun_err_t *err) {
    qun_archive_t *a = calloc(1, sizeof *a);
    qun_rc rc;
    *out = NULL;
    if (!a) return qun_fail(err, QUN_NOMEM, "out of memory");
    a->write = write;
    a->arg = arg;
    crypto_hash_sha256_init(&a->sha);
    rc = qun_age_enc_new(pks, n, hashed_write, a, &a->enc, err);
    if (rc != QUN_OK) goto error;
    a->ar = archive_write_new();
    if (!a->ar) {
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
        goto error;
    }
    /* pax restricted: plain ustar unless a name or size needs an extension. */
    if (archive_write_set_format_pax_restricted(a->ar) != ARCHIVE_OK ||
        archive_write_add_filter_zstd(a->ar) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a->ar, 1) != ARCHIVE_OK ||
        archive_write_open(a->ar, a, NULL, ar_write, NULL) != ARCHIVE_OK) {
        rc = ar_fail(a, err, "cannot start the tar stream");
        goto error;
    }
    *out = a;
    return QUN_OK;
error:
    qun_archive_free(a);
    return rc;
}

static qun_rc add_header(qun_archive_t *a, const char *name, int64_t size, int64_t mtime,
                         qun_err_t *err) {
    struct archive_entry *e = archive_entry_new();
    if (!e) return qun_fail(err, QUN_NOMEM, "out of memory");
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    int r = archive_write_header(a->ar, e);
    archive_entry_free(e);
    return r == ARCHIVE_OK ? QUN_OK : ar_fail(a, err, "cannot write a tar header");
}

static qun_rc add_data(qun_archive_t *a, const void *buf, size_t len, qun_err_t *err) {
    const uint8_t *p = buf;
    while (len > 0) {
        la_ssize_t w = archive_write_data(a->ar, p, len);
        if (w <= 0) return ar_fail(a, err, "cannot write tar data");
        p += w;
        len -= (size_t)w;
    }
    return QUN_OK;
}

qun_rc qun_archive_add(qun_archive_t *a, const char *name, const void *buf, size_t len,
                       int64_t mtime, qun_err_t *err) {
    qun_rc rc = add_header(a, name, (int64_t)len, mtime, err);
    if (rc == QUN_OK) rc = add_data(a, buf, len, err);
    return rc;
}

qun_rc qun_archive_add_stream(qun_archive_t *a, const char *name, FILE *f, int64_t size,
                              int64_t mtime, qun_err_t *err) {
    uint8_t *buf = malloc(QUN_AGE_CHUNK);
    int64_t left = size;
    qun_rc rc = buf ? add_header(a, name, size, mtime, err) : qun_fail(err, QUN_NOMEM, "out of memory");
    while (rc == QUN_OK && left > 0) {
        size_t want = left < QUN_AGE_CHUNK ? (size_t)left : QUN_AGE_CHUNK;
        size_t got = fread(buf, 1, want, f);
        if (got != want) {
            rc = qun_fail(err, QUN_AGE_IO, "%s is shorter than its %lld bytes", name, (long long)size);
            break;
        }
        rc = add_data(a, buf, got, err);
        left -= (int64_t)got;
    }
    free(buf);
    return rc;
}

qun_rc qun_archive_finish(qun_archive_t *a, char digest[65], int64_t *bytes, qun_err_t *err) {
    uint8_t sum[crypto_hash_sha256_BYTES];
    if (archive_write_close(a->ar) != ARCHIVE_OK) return ar_fail(a, err, "cannot close the tar stream");
    qun_rc rc = qun_age_enc_finish(a->enc, err);
    if (rc != QUN_OK) return rc;
    crypto_hash_sha256_final(&a->sha, sum);
    if (digest) sodium_bin2hex(digest, 65, sum, sizeof sum);
    if (bytes) *bytes = a->bytes;
    return QUN_OK;
}

void qun_archive_free(qun_archive_t *a) {
    if (!a) return;
    if (a->ar) archive_write_free(a->ar);
    qun_age_enc_free(a->enc);
    free(a);
}
