/* SPDX-License-Identifier: MIT */
/* raw_sqlite DIR [SECONDS]: the baseline of the HTTP post benchmark.  Inserts message
 * rows into fresh files under DIR, first 64 rows per transaction (the baseline), then
 * one row per transaction (one fsync per row, for context), and prints one
 * `key=value` line per mode for bench/run.sh to parse. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

static int run(const char *dir, const char *name, int batch, double seconds) {
    char path[1024], err[512];
    raw_result_t r;
    snprintf(path, sizeof path, "%s/raw_%s.db", dir, name);
    if (raw_insert_run(path, batch, seconds, &r, err, sizeof err) != 0) {
        fprintf(stderr, "raw_sqlite: %s: %s\n", path, err);
        return 1;
    }
    printf("%s rows=%lld commits=%lld seconds=%.3f rows_per_s=%.0f\n", name, (long long)r.rows,
           (long long)r.commits, r.seconds, (double)r.rows / r.seconds);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: raw_sqlite DIR [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    if (run(argv[1], "batch64", 64, seconds) != 0) return 1;
    return run(argv[1], "batch1", 1, seconds);
}
