/* SPDX-License-Identifier: MIT */
/* Small shared helpers: the one clock, logging, allocation, random opaque ids, hex. */
#ifndef QUN_UTIL_H
#define QUN_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <pthread.h>

/* The one clock of qun: Unix time in seconds.  Every timestamp the server stores or
 * compares comes from here, so a test clock can move it (qun_clock_advance). */
int64_t qun_now(void);
/* Milliseconds on the same clock, for durations and logs. */
int64_t qun_now_ms(void);
/* Milliseconds of a monotonic clock the test clock does not move: for measuring durations. */
int64_t qun_mono_ms(void);
/* Move the clock forward by seconds (test clock only; callers check the config). */
void qun_clock_advance(int64_t seconds);

/* Allocation that aborts on exhaustion; for the daemon's own bookkeeping only. */
void *qun_xmalloc(size_t n);
void *qun_xcalloc(size_t n, size_t size);
char *qun_xstrdup(const char *s);
/* Copy src into dst of size bytes (size >= 1), cut to fit, always NUL-terminated:
 * snprintf(dst, size, "%s", src) without the format parsing, for hot paths.  Returns
 * the length written. */
size_t qun_copy(char *dst, size_t size, const char *src);
/* pthread_create, then the thread's name (at most 15 bytes: top -H, perf, gdb and /proc
 * show it) set by the creator before it goes on, so whatever the creator does next (such
 * as saying the server is ready) comes after the name, however late the thread first
 * runs.  0 or pthread_create's error. */
int qun_thread_start(pthread_t *t, const char *name, void *(*fn)(void *), void *arg);

/* json_dumps(j, flags) (caller frees), or NULL when memory ran out.  jansson's own
 * json_dumps can return a corrupt text instead (it ignores a failed write of an object
 * key and goes on); this one stops at the first failed write. */
typedef struct json_t json_t;
char *qun_json_dumps(const json_t *j, size_t flags);

/* Log a line to stderr with a level tag ("info", "warn", "error"). */
void qun_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern bool qun_log_quiet; /* suppress "info" lines */
extern bool qun_log_json;  /* log_format = json: each line one JSON object {ts, level, msg, ...} */
/* One field of a structured log line: a string s, or the integer i when s is NULL. */
typedef struct {
    const char *key;
    const char *s;
    long long i;
} qun_log_field_t;
/* Log msg with fields kept apart: `msg key=value ...` as text (values quoted when they
 * hold a space, a quote or '=' or are empty), or the fields as members of the line's
 * JSON object. */
void qun_log_fields(const char *level, const char *msg, const qun_log_field_t *f, size_t n);

/* Write a new opaque public id "<prefix>_<22 url-safe chars>" (128 random bits) to
 * out, which must hold at least QUN_ID_MAX bytes. */
#define QUN_ID_MAX 32
void qun_id_new(char *out, const char *prefix);

/* Random bytes (libsodium). */
void qun_random(void *buf, size_t n);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void qun_hex(char *out, const void *in, size_t n);
/* SHA-256 of data into out[32]. */
void qun_sha256(unsigned char out[32], const void *data, size_t n);
/* Hex SHA-256 of a NUL-terminated string into out[65]. */
void qun_sha256_hex(char out[65], const void *data, size_t n);
/* Constant-time equality of two equal-length buffers. */
bool qun_ct_equal(const void *a, const void *b, size_t n);

#endif
