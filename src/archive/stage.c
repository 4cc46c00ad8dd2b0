/* SPDX-License-Identifier: MIT */
/* Staged archive members, hand-written JSON lines and the staging helper thread
 * (include/qun/stage.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "qun/stage.h"
#include "qun/util.h"

#define ZBUF_CAP (1 << 17) /* compressed bytes gathered per write to a compressed stage */

qun_rc qun_stage_open(qun_stage_t *s, const char *dir, qun_err_t *err) {
    char path[720];
    snprintf(path, sizeof path, "%.700s/.stage-XXXXXX", dir);
    memset(s, 0, sizeof *s);
    int fd = mkstemp(path);
    if (fd < 0)
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot create a staging file in %s: %s", dir,
                        strerror(errno));
    unlink(path);
    s->f = fdopen(fd, "w+");
    if (!s->f) {
        close(fd);
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot open a staging file: %s",
                        strerror(errno));
    }
    return qun_sha256_init(&s->h, err);
}

qun_rc qun_stage_open_zst(qun_stage_t *s, const char *dir, qun_err_t *err) {
    qun_rc rc = qun_stage_open(s, dir, err);
    if (rc != QUN_OK) return rc;
    s->zc = ZSTD_createCCtx();
    s->zbuf = malloc(ZBUF_CAP);
    if (!s->zc || !s->zbuf ||
        ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, QUN_ARCHIVE_ZSTD_LEVEL))) {
        qun_stage_close(s);
        return qun_fail(err, QUN_NOMEM, "cannot start zstd");
    }
    return QUN_OK;
}

void qun_stage_close(qun_stage_t *s) {
    if (s->f) fclose(s->f);
    s->f = NULL;
    qun_sha256_free(&s->h);
    ZSTD_freeCCtx(s->zc);
    s->zc = NULL;
    free(s->zbuf);
    s->zbuf = NULL;
}

/* Compress buf[n] into the file; end: and end the frame. */
static qun_rc put_zst(qun_stage_t *s, const void *buf, size_t n, bool end, qun_err_t *err) {
    ZSTD_inBuffer in = {buf, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {s->zbuf, ZBUF_CAP, 0};
        size_t r = ZSTD_compressStream2(s->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(r)) return qun_fail(err, QUN_INTERNAL, "zstd: %s", ZSTD_getErrorName(r));
        if (out.pos && fwrite(s->zbuf, 1, out.pos, s->f) != out.pos)
            return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot write a staging file: %s",
                            strerror(errno));
        s->zsize += (int64_t)out.pos;
        if (end ? r == 0 : in.pos == in.size) return QUN_OK;
    }
}

qun_rc qun_stage_put(qun_stage_t *s, const void *buf, size_t n, qun_err_t *err) {
    if (!n) return QUN_OK;
    if (s->zc) {
        qun_rc rc = put_zst(s, buf, n, false, err);
        if (rc != QUN_OK) return rc;
    } else if (fwrite(buf, 1, n, s->f) != n) {
        return qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot write a staging file: %s",
                        strerror(errno));
    }
    qun_sha256_update(&s->h, buf, n);
    s->size += (int64_t)n;
    return QUN_OK;
}

qun_rc qun_stage_str(qun_stage_t *s, const char *str, qun_err_t *err) {
    return qun_stage_put(s, str, strlen(str), err);
}

qun_rc qun_stage_json(qun_stage_t *s, json_t *o, qun_err_t *err) {
    char *t = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!t) return qun_fail(err, QUN_NOMEM, "cannot encode a line");
    qun_rc rc = qun_stage_str(s, t, err);
    free(t);
    return rc;
}

qun_rc qun_stage_line(qun_stage_t *s, json_t *o, qun_err_t *err) {
    qun_rc rc = qun_stage_json(s, o, err);
    return rc == QUN_OK ? qun_stage_str(s, "\n", err) : rc;
}

qun_rc qun_stage_finish(qun_stage_t *s, qun_archive_t *a, const char *name, int64_t mtime, char hex[65],
                        qun_err_t *err) {
    unsigned char h[32];
    qun_sha256_final(&s->h, h);
    qun_hex(hex, h, sizeof h);
    qun_rc rc = s->zc ? put_zst(s, NULL, 0, true, err) : QUN_OK;
    if (rc == QUN_OK && (fflush(s->f) != 0 || fseek(s->f, 0, SEEK_SET) != 0))
        rc = qun_fail(err, qun_rc_errno(errno, QUN_STORE), "cannot rewind a staging file: %s",
                      strerror(errno));
    if (rc == QUN_OK)
        rc = s->zc ? qun_archive_add_zst(a, name, s->size, s->f, s->zsize, mtime, err)
                   : qun_archive_add_stream(a, name, s->f, s->size, mtime, err);
    qun_stage_close(s);
    return rc;
}

/* ---- the staging helper thread ---- */

static void *bg_main(void *arg) {
    qun_stage_bg_t *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->pending && !b->done)
            pthread_cond_wait(&b->cv, &b->mu);
        if (!b->pending) break;
        qun_line_t *l = b->pending;
        qun_rc failed = b->rc;
        pthread_mutex_unlock(&b->mu);
        qun_rc rc = failed == QUN_OK ? qun_stage_put(b->s, l->p, l->len, &b->err) : QUN_OK;
        pthread_mutex_lock(&b->mu);
        if (rc != QUN_OK) b->rc = rc;
        l->len = 0;
        b->pending = NULL;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

qun_rc qun_stage_bg_start(qun_stage_bg_t *b, qun_stage_t *s, qun_err_t *err) {
    memset(b, 0, sizeof *b);
    b->s = s;
    b->rc = QUN_OK;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    if (pthread_create(&b->th, NULL, bg_main, b) != 0) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        return qun_fail(err, QUN_INTERNAL, "cannot start the staging thread");
    }
    return QUN_OK;
}

qun_rc qun_stage_bg_hand(qun_stage_bg_t *b, qun_line_t *l) {
    pthread_mutex_lock(&b->mu);
    while (b->pending)
        pthread_cond_wait(&b->cv, &b->mu);
    qun_rc rc = b->rc;
    if (rc == QUN_OK && l->len) {
        b->pending = l;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

qun_rc qun_stage_bg_finish(qun_stage_bg_t *b, qun_err_t *err) {
    pthread_mutex_lock(&b->mu);
    while (b->pending)
        pthread_cond_wait(&b->cv, &b->mu);
    b->done = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->th, NULL);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    if (b->rc != QUN_OK) *err = b->err;
    return b->rc;
}
