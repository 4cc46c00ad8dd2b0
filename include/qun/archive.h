/* SPDX-License-Identifier: MIT */
/* The archive writer: a pax tar stream (libarchive), zstd-compressed and age-encrypted
 * on the fly, so an archive of any size is made with flat memory and opened by
 * `age -d -i key | zstd -d | tar x`.  Also the SHA-256 of the encrypted bytes, the
 * digest an export ledgers.  See docs/archive-format.md. */
#ifndef QUN_ARCHIVE_H
#define QUN_ARCHIVE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qun/age.h"

typedef struct qun_archive qun_archive_t;

/* Streaming SHA-256 for bulk bytes (src/archive/sha256.c).  init may fail with NOMEM
 * (h->ctx stays NULL, and update/final/free accept that); final writes the digest and
 * frees; free abandons (accepts a freed or failed h). */
typedef struct {
    void *ctx;
} qun_sha256_t;
qun_rc qun_sha256_init(qun_sha256_t *h, qun_err_t *err);
void qun_sha256_update(qun_sha256_t *h, const void *buf, size_t n);
void qun_sha256_final(qun_sha256_t *h, unsigned char out[32]);
void qun_sha256_free(qun_sha256_t *h);

/* Start an archive encrypted to the X25519 public keys pks[n], its bytes handed to
 * write(arg, ...).  On success *out is owned by the caller (qun_archive_free). */
qun_rc qun_archive_new(const uint8_t (*pks)[32], size_t n, qun_age_write_fn write, void *arg,
                       qun_archive_t **out, qun_err_t *err);
/* Start an archive encrypted to a passphrase (age's scrypt stanza, work factor
 * QUN_AGE_SCRYPT_LOG_N: the scrypt runs here, about a second); otherwise as
 * qun_archive_new. */
qun_rc qun_archive_new_passphrase(const char *pass, size_t pass_len, qun_age_write_fn write, void *arg,
                                  qun_archive_t **out, qun_err_t *err);
/* Add name as a hard link to target, a member added before (no bytes repeated). */
qun_rc qun_archive_add_link(qun_archive_t *a, const char *name, const char *target, int64_t mtime,
                            qun_err_t *err);
/* Add a regular file name (a relative path, e.g. "messages.jsonl") holding buf[len]. */
qun_rc qun_archive_add(qun_archive_t *a, const char *name, const void *buf, size_t len, int64_t mtime,
                       qun_err_t *err);
/* Add a regular file name of exactly size bytes, given in pieces: begin, then
 * add_data until size bytes have been given (the caller's count).  A piece of 64 KiB
 * or more that zstd would not shrink is stored raw (docs/archive-format.md, "Writer"). */
qun_rc qun_archive_add_begin(qun_archive_t *a, const char *name, int64_t size, int64_t mtime, qun_err_t *err);
qun_rc qun_archive_add_data(qun_archive_t *a, const void *buf, size_t len, qun_err_t *err);
/* Add a regular file name of exactly size bytes read from f in 64 KiB pieces. */
qun_rc qun_archive_add_stream(qun_archive_t *a, const char *name, FILE *f, int64_t size, int64_t mtime,
                              qun_err_t *err);
/* Add a regular file name of size bytes whose zstd compression (whole frames,
 * zsize bytes) is read from zf: it goes into the stream as it is. */
qun_rc qun_archive_add_zst(qun_archive_t *a, const char *name, int64_t size, FILE *zf, int64_t zsize,
                           int64_t mtime, qun_err_t *err);
/* The zstd level of the archive stream, and of members compressed beforehand
 * (libarchive's default, and zstd's). */
#define QUN_ARCHIVE_ZSTD_LEVEL 3
/* Close the tar and zstd layers and write the final age chunk.  On QUN_OK the hex
 * SHA-256 of every byte written through write goes to digest (may be NULL) and the
 * count to *bytes (may be NULL). */
qun_rc qun_archive_finish(qun_archive_t *a, char digest[65], int64_t *bytes, qun_err_t *err);
/* Free; accepts NULL.  An unfinished archive is abandoned (its output is incomplete). */
void qun_archive_free(qun_archive_t *a);

/* Most bytes manifest.json may have (it lists one digest per file). */
#define QUN_ARCHIVE_MANIFEST_MAX (64 << 20)
/* Version of the archive layout in manifest.json ("format_version"). */
#define QUN_ARCHIVE_FORMAT_VERSION 1

/* ---- reading an archive (src/archive/import.c) ---- */

/* The JSON members of a group archive, in the order of qun_archive_read_t.part. */
enum {
    QUN_ARCHIVE_MEMBERS,
    QUN_ARCHIVE_MESSAGES,
    QUN_ARCHIVE_FILES,
    QUN_ARCHIVE_PAYMENTS,
    QUN_ARCHIVE_PARTS
};

/* An archive read, staged and checked against its own manifest. */
typedef struct {
    char dir[700];                 /* the staging directory; removed by qun_archive_read_free */
    FILE *part[QUN_ARCHIVE_PARTS]; /* the staged JSON members (unlinked files) */
    json_t *manifest;              /* manifest.json, parsed (owned) */
    struct {
        char sha[65];
        int64_t size;
    } * blobs; /* files/<sha256>, staged as <dir>/<sha256> */
    size_t nblobs, cap;
    bool keep_blobs;         /* the caller moved the blobs away: free leaves them */
    char content_digest[65]; /* over "<hex>  <name>\n" per listed member */
} qun_archive_read_t;

/* Read the archive plaintext buf[len] (a zstd-compressed tar): stage every member in
 * dir (an empty directory the reader owns from now on, removed on failure too), check
 * each member's SHA-256 against manifest.json both ways and compute the content
 * digest.  Members may expand to at most limit bytes (IMPORT_TOO_LARGE, checked while
 * reading).  Errors: IMPORT_ARCHIVE_INVALID, IMPORT_NOT_ZSTD, IMPORT_DIGEST_MISMATCH,
 * IMPORT_TOO_LARGE.  On QUN_OK *out is owned by the caller (qun_archive_read_free). */
qun_rc qun_archive_read(const void *buf, size_t len, const char *dir, int64_t limit, qun_archive_read_t **out,
                        qun_err_t *err);
/* Close the staged files and remove what is left of them; accepts NULL. */
void qun_archive_read_free(qun_archive_read_t *r);

#endif
