/* SPDX-License-Identifier: MIT */
/* The archive writer of archive.h: libarchive writes a pax tar, unblocked, into a
 * callback that compresses it with zstd into 1 MiB buffers for an encrypting thread:
 * it feeds the age encryptor, whose output is hashed on its way to the caller's sink.
 * So taring and compressing run at the same time as encrypting, hashing and writing,
 * much as `tar | zstd | age` runs its processes side by side.  A member whose bytes
 * come already compressed (qun_archive_add_zst, a stage compressed while it was
 * written) goes in as a zstd frame of its own between frames of the rest: a zstd
 * stream may be any number of frames, and a reader sees one tar.  So does a piece of
 * file data that zstd would not shrink (photos, videos: most of an export's bytes),
 * as a frame of raw blocks, without the compressor's pass over it.  Each layer holds a
 * few blocks or chunks (OUT_BUFS buffers between the threads), so memory stays flat
 * whatever the archive's size. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>
#include <zstd.h>

#include "qun/archive.h"

#define OUT_BUFS 4
#define OUT_CAP (1 << 20)
/* Pieces of file data of RAW_MIN bytes and more are first tried: their first RAW_PROBE
 * bytes compressed at zstd's fastest level (~10 us).  If that saves less than 1/32,
 * the piece goes in raw, in blocks of zstd's largest size. */
#define RAW_MIN (64 << 10)
#define RAW_PROBE (16 << 10)
#define RAW_BLOCK (128 << 10)

typedef struct {
    uint8_t *p;
    size_t len;
} obuf_t;

struct qun_archive {
    struct archive *ar;
    ZSTD_CCtx *zc;
    bool in_frame;  /* zc has been given bytes since its last frame ended */
    ZSTD_CCtx *pc;  /* the probe's, made for the first piece tried */
    uint8_t *probe; /* its output, ZSTD_COMPRESSBOUND(RAW_PROBE) bytes */
    int64_t skip;   /* tar bytes to drop: data that went in compressed, or raw */
    qun_age_enc_t *enc;
    qun_age_write_fn write;
    void *arg;
    qun_sha256_t sha;  /* the encrypting thread's until it is joined */
    int64_t bytes;     /* likewise */
    qun_rc enc_rc;     /* the first error of the age layer, reported by the tar calls */
    qun_err_t enc_err; /* set by the encrypting thread before it sets failed */
    /* Between libarchive's callback (the caller's thread) and the encrypting thread,
     * under mu: full buffers queue in full[], empty ones wait in spare[]; cur is the
     * one being filled. */
    pthread_t th;
    bool started, closing, failed;
    pthread_mutex_t mu;
    pthread_cond_t data, space;
    obuf_t cur, full[OUT_BUFS], spare[OUT_BUFS];
    int fhead, nfull, nspare;
};

/* The sink under age: hash, count, pass on. */
static int hashed_write(void *arg, const void *buf, size_t len) {
    qun_archive_t *a = arg;
    qun_sha256_update(&a->sha, buf, len);
    a->bytes += (int64_t)len;
    return a->write(a->arg, buf, len);
}

/* The encrypting thread: full buffers through age, until closing and drained.  After
 * an error it only recycles buffers, so the producer never waits forever. */
static void *encrypt_main(void *arg) {
    qun_archive_t *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (a->nfull == 0 && !a->closing)
            pthread_cond_wait(&a->data, &a->mu);
        if (a->nfull == 0) break;
        obuf_t b = a->full[a->fhead];
        a->fhead = (a->fhead + 1) % OUT_BUFS;
        a->nfull--;
        bool failed = a->failed;
        pthread_mutex_unlock(&a->mu);
        qun_rc rc = failed ? QUN_OK : qun_age_enc_write(a->enc, b.p, b.len, &a->enc_err);
        pthread_mutex_lock(&a->mu);
        if (rc != QUN_OK && !a->failed) {
            a->enc_rc = rc;
            a->failed = true;
        }
        b.len = 0;
        a->spare[a->nspare++] = b;
        pthread_cond_signal(&a->space);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Hand the current buffer to the encrypting thread and take an empty one; false once
 * the thread has failed. */
static bool hand_over(qun_archive_t *a) {
    pthread_mutex_lock(&a->mu);
    while (a->nspare == 0 && !a->failed)
        pthread_cond_wait(&a->space, &a->mu);
    bool ok = !a->failed;
    if (ok) {
        a->full[(a->fhead + a->nfull) % OUT_BUFS] = a->cur;
        a->nfull++;
        a->cur = a->spare[--a->nspare];
        pthread_cond_signal(&a->data);
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

/* Bytes as they are into the current buffer, handing full ones over. */
static bool put_raw(qun_archive_t *a, const uint8_t *p, size_t len) {
    while (len > 0) {
        size_t n = OUT_CAP - a->cur.len < len ? OUT_CAP - a->cur.len : len;
        memcpy(a->cur.p + a->cur.len, p, n);
        a->cur.len += n;
        p += n;
        len -= n;
        if (a->cur.len == OUT_CAP && !hand_over(a)) return false;
    }
    return true;
}

/* Compress in[len] into the current buffer; end: and end the frame.  False on a zstd
 * error (its name in zerr) or when the encrypting thread has failed. */
static bool put_zst(qun_archive_t *a, const uint8_t *p, size_t len, bool end, const char **zerr) {
    ZSTD_inBuffer in = {p, len, 0};
    if (len) a->in_frame = true;
    if (end && !a->in_frame) return true; /* no empty frames */
    for (;;) {
        ZSTD_outBuffer out = {a->cur.p, OUT_CAP, a->cur.len};
        size_t r = ZSTD_compressStream2(a->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        a->cur.len = out.pos;
        if (ZSTD_isError(r)) {
            *zerr = ZSTD_getErrorName(r);
            return false;
        }
        if (a->cur.len == OUT_CAP && !hand_over(a)) return false;
        if (end ? r == 0 : in.pos == in.size) break;
    }
    if (end) a->in_frame = false;
    return true;
}

/* libarchive's output callback: tar bytes, compressed for the encrypting thread
 * (the data of a member that went in compressed is dropped). */
static la_ssize_t ar_write(struct archive *ar, void *arg, const void *buf, size_t len) {
    qun_archive_t *a = arg;
    const uint8_t *p = buf;
    size_t drop = a->skip < (int64_t)len ? (size_t)a->skip : len;
    a->skip -= (int64_t)drop;
    const char *zerr = NULL;
    if (!put_zst(a, p + drop, len - drop, false, &zerr)) {
        archive_set_error(ar, EIO, "%s", zerr ? zerr : a->enc_err.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

/* Stop the encrypting thread after it has drained the queue (abandon: drop what is
 * queued).  Afterwards the thread's fields are the caller's again. */
static void stop_thread(qun_archive_t *a, bool abandon) {
    if (!a->started) return;
    pthread_mutex_lock(&a->mu);
    a->closing = true;
    if (abandon) a->failed = true;
    pthread_cond_broadcast(&a->data);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    a->started = false;
}

static qun_rc ar_fail(qun_archive_t *a, qun_err_t *err, const char *what) {
    if (a->enc_rc != QUN_OK) return qun_fail(err, a->enc_rc, "%s", a->enc_err.msg);
    return qun_fail(err, QUN_INTERNAL, "%s: %s", what, archive_error_string(a->ar));
}

/* End the zstd frame under way, if any: what follows goes in as a frame of its own. */
static qun_rc end_frame(qun_archive_t *a, qun_err_t *err) {
    const char *zerr = NULL;
    if (put_zst(a, NULL, 0, true, &zerr)) return QUN_OK;
    return zerr ? qun_fail(err, QUN_INTERNAL, "zstd: %s", zerr) : ar_fail(a, err, "cannot encrypt");
}

/* Start an archive for the X25519 keys pks[n], or for the passphrase pass when it is
 * not NULL. */
static qun_rc archive_start(const uint8_t (*pks)[32], size_t n, const char *pass, size_t pass_len,
                            qun_age_write_fn write, void *arg, qun_archive_t **out, qun_err_t *err) {
    qun_archive_t *a = calloc(1, sizeof *a);
    qun_rc rc;
    *out = NULL;
    if (!a) return qun_fail(err, QUN_NOMEM, "out of memory");
    a->write = write;
    a->arg = arg;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->data, NULL);
    pthread_cond_init(&a->space, NULL);
    rc = qun_sha256_init(&a->sha, err);
    if (rc != QUN_OK) goto error;
    if (!(a->cur.p = malloc(OUT_CAP))) {
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
        goto error;
    }
    for (; a->nspare < OUT_BUFS; a->nspare++)
        if (!(a->spare[a->nspare].p = malloc(OUT_CAP))) {
            rc = qun_fail(err, QUN_NOMEM, "out of memory");
            goto error;
        }
    rc = pass
             ? qun_age_enc_new_passphrase(pass, pass_len, QUN_AGE_SCRYPT_LOG_N, hashed_write, a, &a->enc, err)
             : qun_age_enc_new(pks, n, hashed_write, a, &a->enc, err);
    if (rc != QUN_OK) goto error;
    a->ar = archive_write_new();
    if (!a->ar) {
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
        goto error;
    }
    /* Single-threaded zstd at libarchive's level: a zstd worker made exports of
     * incompressible files slower and tripled the RSS (bench/README.md, benchmark 10);
     * the text members are compressed while they are staged, on their own threads. */
    a->zc = ZSTD_createCCtx();
    if (!a->zc ||
        ZSTD_isError(ZSTD_CCtx_setParameter(a->zc, ZSTD_c_compressionLevel, QUN_ARCHIVE_ZSTD_LEVEL))) {
        rc = qun_fail(err, QUN_NOMEM, "cannot start zstd");
        goto error;
    }
    /* pax restricted: plain ustar unless a name or size needs an extension; unblocked
     * (block size 0), so each write reaches ar_write at once and as it is, which is
     * what lets qun_archive_add_zst drop a member's data exactly. */
    if (archive_write_set_format_pax_restricted(a->ar) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a->ar, 0) != ARCHIVE_OK ||
        archive_write_open(a->ar, a, NULL, ar_write, NULL) != ARCHIVE_OK) {
        rc = ar_fail(a, err, "cannot start the tar stream");
        goto error;
    }
    if (pthread_create(&a->th, NULL, encrypt_main, a) != 0) {
        rc = qun_fail(err, QUN_INTERNAL, "cannot start the encrypting thread");
        goto error;
    }
    a->started = true;
    *out = a;
    return QUN_OK;
error:
    qun_archive_free(a);
    return rc;
}

qun_rc qun_archive_new(const uint8_t (*pks)[32], size_t n, qun_age_write_fn write, void *arg,
                       qun_archive_t **out, qun_err_t *err) {
    return archive_start(pks, n, NULL, 0, write, arg, out, err);
}

qun_rc qun_archive_new_passphrase(const char *pass, size_t pass_len, qun_age_write_fn write, void *arg,
                                  qun_archive_t **out, qun_err_t *err) {
    return archive_start(NULL, 0, pass, pass_len, write, arg, out, err);
}

qun_rc qun_archive_add_link(qun_archive_t *a, const char *name, const char *target, int64_t mtime,
                            qun_err_t *err) {
    struct archive_entry *e = archive_entry_new();
    if (!e) return qun_fail(err, QUN_NOMEM, "out of memory");
    archive_entry_set_pathname(e, name);
    archive_entry_set_hardlink(e, target);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 0);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    int r = archive_write_header(a->ar, e);
    archive_entry_free(e);
    return r == ARCHIVE_OK ? QUN_OK : ar_fail(a, err, "cannot write a tar link");
}

static qun_rc add_header(qun_archive_t *a, const char *name, int64_t size, int64_t mtime, qun_err_t *err) {
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

qun_rc qun_archive_add_begin(qun_archive_t *a, const char *name, int64_t size, int64_t mtime,
                             qun_err_t *err) {
    return add_header(a, name, size, mtime, err);
}

/* Whether zstd would shrink p[len] (len >= RAW_PROBE) by 1/32 or more, judged on its
 * first RAW_PROBE bytes; a probe that cannot run says yes (compress as usual). */
static bool shrinks(qun_archive_t *a, const uint8_t *p) {
    if (!a->pc && (a->pc = ZSTD_createCCtx()) == NULL) return true;
    if (!a->probe && (a->probe = malloc(ZSTD_COMPRESSBOUND(RAW_PROBE))) == NULL) return true;
    size_t n = ZSTD_compressCCtx(a->pc, a->probe, ZSTD_COMPRESSBOUND(RAW_PROBE), p, RAW_PROBE, 1);
    return ZSTD_isError(n) || n < RAW_PROBE - RAW_PROBE / 32;
}

/* p[len] as one zstd frame of raw blocks (RFC 8878, section 3.1.1): the magic number,
 * a descriptor byte of 0 (no content size, checksum or dictionary), a window of
 * 128 KiB (exponent 7), then blocks of at most that size, each after its 3-byte header
 * (bit 0: last block; bits 1-2: type 0, raw; bits 3-23: size). */
static bool put_raw_frame(qun_archive_t *a, const uint8_t *p, size_t len) {
    static const uint8_t head[6] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3};
    if (!put_raw(a, head, sizeof head)) return false;
    do {
        size_t n = len < RAW_BLOCK ? len : RAW_BLOCK;
        uint32_t bh = (uint32_t)n << 3 | (n == len);
        uint8_t b[3] = {(uint8_t)bh, (uint8_t)(bh >> 8), (uint8_t)(bh >> 16)};
        if (!put_raw(a, b, sizeof b) || !put_raw(a, p, n)) return false;
        p += n;
        len -= n;
    } while (len > 0);
    return true;
}

qun_rc qun_archive_add_data(qun_archive_t *a, const void *buf, size_t len, qun_err_t *err) {
    if (len < RAW_MIN || shrinks(a, buf)) return add_data(a, buf, len, err);
    /* End the frame before (the member's header), put the piece in raw, and let
     * libarchive count the same bytes, which ar_write drops. */
    qun_rc rc = end_frame(a, err);
    if (rc != QUN_OK) return rc;
    if (!put_raw_frame(a, buf, len)) return ar_fail(a, err, "cannot encrypt");
    a->skip = (int64_t)len;
    rc = add_data(a, buf, len, err);
    if (rc == QUN_OK && a->skip != 0)
        rc = qun_fail(err, QUN_INTERNAL, "libarchive held back %lld bytes", (long long)a->skip);
    a->skip = 0;
    return rc;
}

qun_rc qun_archive_add(qun_archive_t *a, const char *name, const void *buf, size_t len, int64_t mtime,
                       qun_err_t *err) {
    qun_rc rc = add_header(a, name, (int64_t)len, mtime, err);
    if (rc == QUN_OK) rc = add_data(a, buf, len, err);
    return rc;
}

qun_rc qun_archive_add_stream(qun_archive_t *a, const char *name, FILE *f, int64_t size, int64_t mtime,
                              qun_err_t *err) {
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

qun_rc qun_archive_add_zst(qun_archive_t *a, const char *name, int64_t size, FILE *zf, int64_t zsize,
                           int64_t mtime, qun_err_t *err) {
    static const uint8_t zeros[1 << 16];
    qun_rc rc = add_header(a, name, size, mtime, err);
    if (rc != QUN_OK) return rc;
    /* The header ends the frame; the member's frame follows as it is. */
    if ((rc = end_frame(a, err)) != QUN_OK) return rc;
    uint8_t *buf = malloc(QUN_AGE_CHUNK);
    if (!buf) return qun_fail(err, QUN_NOMEM, "out of memory");
    for (int64_t left = zsize; left > 0 && rc == QUN_OK;) {
        size_t want = left < QUN_AGE_CHUNK ? (size_t)left : QUN_AGE_CHUNK;
        if (fread(buf, 1, want, zf) != want)
            rc = qun_fail(err, QUN_AGE_IO, "%s is shorter than its %lld compressed bytes", name,
                          (long long)zsize);
        else if (!put_raw(a, buf, want))
            rc = ar_fail(a, err, "cannot encrypt");
        left -= (int64_t)want;
    }
    free(buf);
    /* libarchive counts the member's bytes and pads after them: it gets as many
     * zeros, which ar_write drops. */
    a->skip = size;
    for (int64_t left = size; left > 0 && rc == QUN_OK;) {
        size_t n = left < (int64_t)sizeof zeros ? (size_t)left : sizeof zeros;
        rc = add_data(a, zeros, n, err);
        left -= (int64_t)n;
    }
    if (rc == QUN_OK && a->skip != 0)
        rc = qun_fail(err, QUN_INTERNAL, "libarchive held back %lld bytes of %s", (long long)a->skip, name);
    a->skip = 0;
    return rc;
}

qun_rc qun_archive_finish(qun_archive_t *a, char digest[65], int64_t *bytes, qun_err_t *err) {
    uint8_t sum[32];
    if (archive_write_close(a->ar) != ARCHIVE_OK) return ar_fail(a, err, "cannot close the tar stream");
    qun_rc rc = end_frame(a, err);
    if (rc != QUN_OK) return rc;
    if (a->cur.len > 0 && !hand_over(a)) return ar_fail(a, err, "cannot encrypt");
    stop_thread(a, false);
    if (a->failed) return ar_fail(a, err, "cannot encrypt");
    rc = qun_age_enc_finish(a->enc, err);
    if (rc != QUN_OK) return rc;
    qun_sha256_final(&a->sha, sum);
    if (digest) sodium_bin2hex(digest, 65, sum, sizeof sum);
    if (bytes) *bytes = a->bytes;
    return QUN_OK;
}

void qun_archive_free(qun_archive_t *a) {
    if (!a) return;
    stop_thread(a, true);
    a->failed = true; /* an unfinished archive's last flush goes nowhere */
    if (a->ar) archive_write_free(a->ar);
    ZSTD_freeCCtx(a->zc);
    ZSTD_freeCCtx(a->pc);
    free(a->probe);
    qun_age_enc_free(a->enc);
    qun_sha256_free(&a->sha);
    free(a->cur.p);
    for (int i = 0; i < a->nspare; i++)
        free(a->spare[i].p);
    for (int i = 0; i < a->nfull; i++)
        free(a->full[(a->fhead + i) % OUT_BUFS].p);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->data);
    pthread_cond_destroy(&a->space);
    free(a);
}
