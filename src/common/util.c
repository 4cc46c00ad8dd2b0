/* SPDX-License-Identifier: MIT */
/* The clock, logging, allocation, ids and hashing helpers of util.h. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "qun/util.h"

static _Atomic int64_t clock_offset; /* seconds added by the test clock */
bool qun_log_quiet;

int64_t qun_now(void) {
    return (int64_t)time(NULL) + atomic_load(&clock_offset);
}

int64_t qun_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&clock_offset) * 1000;
}

int64_t qun_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void qun_clock_advance(int64_t seconds) {
    atomic_fetch_add(&clock_offset, seconds);
}

void *qun_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "qun: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *qun_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "qun: out of memory allocating %zu bytes\n", n * size);
        abort();
    }
    return p;
}

char *qun_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(qun_xmalloc(n), s, n);
}

typedef struct {
    char *p;
    size_t len, cap;
    bool failed; /* sticky: a write after a failed one would splice the text */
} dump_buf_t;

static int dump_put(const char *b, size_t n, void *arg) {
    dump_buf_t *d = arg;
    if (d->failed) return -1;
    if (d->len + n + 1 > d->cap) {
        size_t cap = (d->len + n + 1) * 2;
        char *p = realloc(d->p, cap);
        if (!p) {
            d->failed = true;
            return -1;
        }
        d->p = p, d->cap = cap;
    }
    memcpy(d->p + d->len, b, n);
    d->len += n;
    d->p[d->len] = '\0';
    return 0;
}

char *qun_json_dumps(const json_t *j, size_t flags) {
    dump_buf_t d = {NULL, 0, 0, false};
    if (!j || json_dump_callback(j, dump_put, &d, flags) != 0 || d.failed || !d.p) {
        free(d.p);
        return NULL;
    }
    return d.p;
}

void qun_log(const char *level, const char *fmt, ...) {
    if (qun_log_quiet && strcmp(level, "info") == 0) return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr); /* one write per line: lines of threads never interleave */
}

void qun_random(void *buf, size_t n) {
    randombytes_buf(buf, n);
}

void qun_id_new(char *out, const char *prefix) {
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    size_t p = strlen(prefix);
    memcpy(out, prefix, p);
    out[p++] = '_';
    sodium_bin2base64(out + p, QUN_ID_MAX - p, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void qun_hex(char *out, const void *in, size_t n) {
    sodium_bin2hex(out, n * 2 + 1, in, n);
}

void qun_sha256(unsigned char out[32], const void *data, size_t n) {
    crypto_hash_sha256(out, data, n);
}

void qun_sha256_hex(char out[65], const void *data, size_t n) {
    unsigned char h[32];
    crypto_hash_sha256(h, data, n);
    qun_hex(out, h, 32);
}

bool qun_ct_equal(const void *a, const void *b, size_t n) {
    return sodium_memcmp(a, b, n) == 0;
}
