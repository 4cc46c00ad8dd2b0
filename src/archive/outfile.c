/* SPDX-License-Identifier: MIT */
/* The output file of outfile.h: the producer fills one aligned buffer while the
 * writing thread writes the full ones in order (OF_BUFS in all), with O_DIRECT where
 * the filesystem takes it.  Measured on the 2-core machine (bench/README.md,
 * benchmark 10): copying a 1 GiB archive into the page cache cost the encrypting
 * thread one to two seconds of CPU; written direct, about a tenth of that. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qun/outfile.h"
#include "qun/util.h"

#define OF_BUFS 4
#define OF_CAP (1 << 20)
#define OF_ALIGN 4096 /* O_DIRECT wants buffers, sizes and offsets in logical blocks */

typedef struct {
    uint8_t *p;
    size_t len;
} ofbuf_t;

struct qun_outfile {
    int fd;
    bool direct;
    int64_t size;    /* appended by the producer */
    int64_t written; /* the offset of the next buffer; the thread's until it is joined */
    pthread_t th;
    bool started, closing;
    int failed_errno; /* the first write error, 0 while none */
    pthread_mutex_t mu;
    pthread_cond_t data, space;
    ofbuf_t cur, full[OF_BUFS], spare[OF_BUFS];
    int fhead, nfull, nspare;
};

/* Write buf[len] at the file's end.  A filesystem that took O_DIRECT at open but
 * refuses it for a write gets the page cache from then on.  0 or an errno. */
static int write_at(qun_outfile_t *f, const uint8_t *buf, size_t len) {
    while (len > 0) {
        ssize_t n = pwrite(f->fd, buf, len, f->written);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EINVAL && f->direct) {
            int fl = fcntl(f->fd, F_GETFL);
            if (fl < 0 || fcntl(f->fd, F_SETFL, fl & ~O_DIRECT) != 0) return errno;
            f->direct = false;
            continue;
        }
        if (n < 0) return errno;
        if (n == 0) return EIO;
        buf += n;
        len -= (size_t)n;
        f->written += n;
    }
    return 0;
}

/* The writing thread: full buffers to the file, until closing and drained.  After an
 * error it only recycles buffers, so the producer never waits forever. */
static void *write_main(void *arg) {
    qun_outfile_t *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->nfull == 0 && !f->closing)
            pthread_cond_wait(&f->data, &f->mu);
        if (f->nfull == 0) break;
        ofbuf_t b = f->full[f->fhead];
        f->fhead = (f->fhead + 1) % OF_BUFS;
        f->nfull--;
        bool failed = f->failed_errno != 0;
        pthread_mutex_unlock(&f->mu);
        int e = failed ? 0 : write_at(f, b.p, b.len);
        pthread_mutex_lock(&f->mu);
        if (e && !f->failed_errno) f->failed_errno = e;
        b.len = 0;
        f->spare[f->nspare++] = b;
        pthread_cond_signal(&f->space);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void stop_thread(qun_outfile_t *f) {
    if (!f->started) return;
    pthread_mutex_lock(&f->mu);
    f->closing = true;
    pthread_cond_broadcast(&f->data);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    f->started = false;
}

static void outfile_free(qun_outfile_t *f) {
    stop_thread(f);
    if (f->fd >= 0) close(f->fd);
    free(f->cur.p);
    for (int i = 0; i < f->nspare; i++)
        free(f->spare[i].p);
    for (int i = 0; i < f->nfull; i++)
        free(f->full[(f->fhead + i) % OF_BUFS].p);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->data);
    pthread_cond_destroy(&f->space);
    free(f);
}

static qun_rc fail_errno(qun_err_t *err, int e, const char *what) {
    return qun_fail(err, qun_rc_errno(e, QUN_STORE), "cannot %s the archive file: %s", what, strerror(e));
}

qun_rc qun_outfile_open(const char *path, bool direct, qun_outfile_t **out, qun_err_t *err) {
    *out = NULL;
    qun_outfile_t *f = calloc(1, sizeof *f);
    if (!f) return qun_fail(err, QUN_NOMEM, "out of memory");
    f->fd = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->data, NULL);
    pthread_cond_init(&f->space, NULL);
    if (posix_memalign((void **)&f->cur.p, OF_ALIGN, OF_CAP) != 0) {
        f->cur.p = NULL;
        outfile_free(f);
        return qun_fail(err, QUN_NOMEM, "out of memory");
    }
    for (; f->nspare < OF_BUFS - 1; f->nspare++)
        if (posix_memalign((void **)&f->spare[f->nspare].p, OF_ALIGN, OF_CAP) != 0) {
            outfile_free(f);
            return qun_fail(err, QUN_NOMEM, "out of memory");
        }
    int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    f->fd = open(path, direct ? flags | O_DIRECT : flags, 0600);
    f->direct = direct && f->fd >= 0;
    if (f->fd < 0 && direct && errno == EINVAL) f->fd = open(path, flags, 0600);
    if (f->fd < 0) {
        int e = errno;
        outfile_free(f);
        return fail_errno(err, e, "create");
    }
    if (pthread_create(&f->th, NULL, write_main, f) != 0) {
        outfile_free(f);
        return qun_fail(err, QUN_INTERNAL, "cannot start the archive writing thread");
    }
    f->started = true;
    *out = f;
    return QUN_OK;
}

/* Queue the full current buffer and take an empty one. */
static qun_rc hand_over(qun_outfile_t *f, qun_err_t *err) {
    pthread_mutex_lock(&f->mu);
    while (f->nspare == 0 && !f->failed_errno)
        pthread_cond_wait(&f->space, &f->mu);
    int e = f->failed_errno;
    if (!e) {
        f->full[(f->fhead + f->nfull) % OF_BUFS] = f->cur;
        f->nfull++;
        f->cur = f->spare[--f->nspare];
        pthread_cond_signal(&f->data);
    }
    pthread_mutex_unlock(&f->mu);
    return e ? fail_errno(err, e, "write") : QUN_OK;
}

qun_rc qun_outfile_write(qun_outfile_t *f, const void *buf, size_t len, qun_err_t *err) {
    const uint8_t *p = buf;
    while (len > 0) {
        size_t n = OF_CAP - f->cur.len < len ? OF_CAP - f->cur.len : len;
        memcpy(f->cur.p + f->cur.len, p, n);
        f->cur.len += n;
        f->size += (int64_t)n;
        p += n;
        len -= n;
        if (f->cur.len == OF_CAP) {
            qun_rc rc = hand_over(f, err);
            if (rc != QUN_OK) return rc;
        }
    }
    return QUN_OK;
}

qun_rc qun_outfile_close(qun_outfile_t *f, qun_err_t *err) {
    stop_thread(f); /* drains the queue: written == size - cur.len, unless it failed */
    int e = f->failed_errno;
    if (!e && f->cur.len > 0) {
        /* The whole blocks of the tail still go direct; the rest through the cache. */
        size_t whole = f->direct ? f->cur.len & ~(size_t)(OF_ALIGN - 1) : 0;
        e = whole ? write_at(f, f->cur.p, whole) : 0;
        if (!e && f->direct) {
            int fl = fcntl(f->fd, F_GETFL);
            if (fl < 0 || fcntl(f->fd, F_SETFL, fl & ~O_DIRECT) != 0) e = errno;
            f->direct = false;
        }
        if (!e) e = write_at(f, f->cur.p + whole, f->cur.len - whole);
    }
    if (!e && fsync(f->fd) != 0) e = errno;
    int closed = close(f->fd);
    if (!e && closed != 0) e = errno;
    f->fd = -1;
    outfile_free(f);
    return e ? fail_errno(err, e, "write") : QUN_OK;
}

void qun_outfile_abandon(qun_outfile_t *f) {
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    if (!f->failed_errno) f->failed_errno = ECANCELED; /* the queue is dropped, not written */
    pthread_mutex_unlock(&f->mu);
    outfile_free(f);
}

int64_t qun_outfile_size(const qun_outfile_t *f) {
    return f->size;
}

bool qun_outfile_direct(const qun_outfile_t *f) {
    return f->direct;
}
