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

#include "qun/json.h"
#include "qun/util.h"

static _Atomic int64_t clock_offset; /* seconds added by the test clock */
bool qun_log_quiet;
bool qun_log_json;

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

size_t qun_copy(char *dst, size_t size, const char *src) {
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

char *qun_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(qun_xmalloc(n), s, n);
}

/* jansson's writes into a line buffer, which ignores every write after a failed one
 * (a later write would splice the text). */
static int dump_put(const char *b, size_t n, void *arg) {
    qun_line_t *l = arg;
    qun_line_put(l, b, n);
    return l->oom ? -1 : 0;
}

char *qun_json_dumps(const json_t *j, size_t flags) {
    qun_line_t l = {NULL, 0, 0, false};
    bool done = j && json_dump_callback(j, dump_put, &l, flags) == 0 && l.len;
    if (done) qun_line_put(&l, "", 1); /* its NUL */
    if (!done || l.oom) {
        free(l.p);
        return NULL;
    }
    return l.p;
}

/* Append s to line (at *n, capacity size) as a JSON string's contents or, for text,
 * as is; quote wraps it in double quotes. */
static void put_str(char *line, size_t size, size_t *n, const char *s, bool escape, bool quote) {
    if (quote && *n + 1 < size) line[(*n)++] = '"';
    for (; *s && *n + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (escape && (c == '"' || c == '\\')) {
            line[(*n)++] = '\\';
            line[(*n)++] = (char)c;
        } else if (escape && c < 0x20) {
            *n += (size_t)snprintf(line + *n, size - *n, "\\u%04x", c);
        } else {
            line[(*n)++] = (char)c;
        }
    }
    if (quote && *n + 1 < size) line[(*n)++] = '"';
    line[*n] = '\0';
}

/* The line's head: the time and level, as text or as the opening JSON members. */
static size_t log_head(char *line, size_t size, const char *level) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    const char *fmt = qun_log_json ? "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\""
                                   : "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ";
    return (size_t)snprintf(line, size, fmt, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level);
}

static void log_end(char *line, size_t size, size_t n) {
    if (n > size - 3) n = size - 3;
    if (qun_log_json) line[n++] = '}';
    line[n++] = '\n';
    fwrite(line, 1, n, stderr); /* one write per line: lines of threads never interleave */
}

void qun_log(const char *level, const char *fmt, ...) {
    if (qun_log_quiet && strcmp(level, "info") == 0) return;
    char line[1024], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = log_head(line, sizeof line, level);
    if (qun_log_json) n += (size_t)snprintf(line + n, sizeof line - n, ",\"msg\":");
    put_str(line, sizeof line, &n, msg, qun_log_json, qun_log_json);
    log_end(line, sizeof line, n);
}

void qun_log_fields(const char *level, const char *msg, const qun_log_field_t *f, size_t nf) {
    if (qun_log_quiet && strcmp(level, "info") == 0) return;
    char line[2048];
    size_t n = log_head(line, sizeof line, level);
    if (qun_log_json) n += (size_t)snprintf(line + n, sizeof line - n, ",\"msg\":");
    put_str(line, sizeof line, &n, msg, qun_log_json, qun_log_json);
    for (size_t i = 0; i < nf && n + 8 < sizeof line; i++) {
        n += (size_t)snprintf(line + n, sizeof line - n, qun_log_json ? ",\"%s\":" : " %s=", f[i].key);
        if (n >= sizeof line) break;
        if (!f[i].s) {
            n += (size_t)snprintf(line + n, sizeof line - n, "%lld", f[i].i);
            if (n >= sizeof line) n = sizeof line - 1;
            continue;
        }
        bool quote = qun_log_json || !*f[i].s || strpbrk(f[i].s, " \"=\\") != NULL;
        put_str(line, sizeof line, &n, f[i].s, quote, quote);
    }
    log_end(line, sizeof line, n);
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

int qun_thread_start(pthread_t *t, const char *name, void *(*fn)(void *), void *arg) {
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc == 0) pthread_setname_np(*t, name);
    return rc;
}
