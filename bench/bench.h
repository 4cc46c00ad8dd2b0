/* SPDX-License-Identifier: MIT */
/* Shared pieces of the C benchmarks: the raw SQLite insert baseline every store
 * figure is divided by, the message text all benchmarks write (post_message.lua
 * sends the same bytes), and a monotonic clock. */
#ifndef QUN_BENCH_H
#define QUN_BENCH_H

#include <stdint.h>
#include <stddef.h>

/* Kept identical to the body in post_message.lua so every benchmark writes the same rows. */
#define BENCH_TEXT "benchmark message: the quick brown fox jumps over the lazy dog"

typedef struct {
    int64_t rows;    /* rows inserted and committed */
    int64_t commits; /* durable COMMITs made */
    double seconds;  /* wall time spent inserting, open and schema excluded */
} raw_result_t;

/* Insert message rows into a fresh SQLite file at path (any old file and its -wal/-shm
 * are removed first): WAL, synchronous=FULL, `batch` rows per transaction, for about
 * `seconds` of wall time.  Returns 0, or -1 with a reason in err. */
int raw_insert_run(const char *path, int batch, double seconds, raw_result_t *out, char *err,
                   size_t err_size);

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

#endif
