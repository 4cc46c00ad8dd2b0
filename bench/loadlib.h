/* SPDX-License-Identifier: MIT */
/* What the C load generators of the benchmarks share (bench/fanout_load.c,
 * bench/mx_sync_load.c, bench/mx_media_load.c): a clock, blocking loopback connections and a growing receive
 * buffer.  Header-only: each load generator is one translation unit. */
#ifndef QUN_BENCH_LOADLIB_H
#define QUN_BENCH_LOADLIB_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *g_host; /* qund's address and port, from the command line */
static int g_port;

static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void die(const char *what) {
    perror(what);
    exit(1);
}

static inline void fail(const char *fmt, const char *detail) {
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
    exit(1);
}

/* A blocking connection to g_host:g_port with Nagle off (requests are small and
 * answered at once). */
static inline int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, g_host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* The unconsumed bytes of a connection, NUL-terminated for the string scans. */
#define BUF_APPEND(c, p, n) buf_append(&(c)->buf, &(c)->len, &(c)->cap, (p), (n))
#define BUF_CONSUME(c, n) buf_consume((c)->buf, &(c)->len, (n))

static inline void buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n) {
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf) die("realloc");
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = 0;
}

static inline void buf_consume(char *buf, size_t *len, size_t n) {
    if (!buf) return;
    memmove(buf, buf + n, *len - n);
    *len -= n;
    buf[*len] = 0;
}

#endif
