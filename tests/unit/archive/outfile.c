/* SPDX-License-Identifier: MIT */
/* Unit tests of src/archive/outfile.c: whatever the sizes and the pieces they come in,
 * the file holds exactly the bytes written, mode 0600, written direct and through the
 * page cache; a full disk is reported as QUN_STORAGE_FULL, and an abandoned file is
 * left to its caller. */
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/outfile.h"

#include "unit.h"

static char dir[] = "/tmp/qun-outfile-unit-XXXXXX";

/* Write n random bytes to dir/out in random pieces of up to max_piece bytes, then
 * read the file back and compare. */
static void round_trip(size_t n, size_t max_piece, bool direct) {
    char path[200], row[80];
    snprintf(path, sizeof path, "%s/out", dir);
    snprintf(row, sizeof row, "%s, %zu bytes in pieces up to %zu", direct ? "direct" : "cached", n,
             max_piece);
    uint8_t *want = malloc(n + 1);
    randombytes_buf(want, n);
    qun_outfile_t *f;
    qun_err_t err;
    CHECKF(qun_outfile_open(path, direct, &f, &err) == QUN_OK, row);
    if (!f) {
        free(want);
        return;
    }
    if (!direct) CHECKF(!qun_outfile_direct(f), row);
    bool ok = true;
    for (size_t at = 0; at < n;) {
        size_t k = 1 + randombytes_uniform((uint32_t)max_piece);
        if (k > n - at) k = n - at;
        ok &= qun_outfile_write(f, want + at, k, &err) == QUN_OK;
        at += k;
    }
    CHECKF(ok, row);
    CHECKF(qun_outfile_size(f) == (int64_t)n, row);
    CHECKF(qun_outfile_close(f, &err) == QUN_OK, row);
    struct stat st;
    CHECKF(stat(path, &st) == 0 && st.st_size == (off_t)n && (st.st_mode & 0777) == 0600, row);
    FILE *in = fopen(path, "rb");
    uint8_t *got = malloc(n + 1);
    size_t r = in ? fread(got, 1, n + 1, in) : 0;
    CHECKF(r == n && memcmp(got, want, n) == 0, row);
    if (in) fclose(in);
    unlink(path);
    free(got);
    free(want);
}

static void sizes(void) {
    qun_outfile_t *f;
    qun_err_t err;
    char path[200];
    snprintf(path, sizeof path, "%s/probe", dir);
    if (qun_outfile_open(path, true, &f, &err) == QUN_OK) {
        fprintf(stderr, "outfile: %s takes O_DIRECT: %s\n", dir, qun_outfile_direct(f) ? "yes" : "no");
        qun_outfile_abandon(f);
        unlink(path);
    }
    static const size_t ns[] = {
        0, 1, 4095, 4096, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (3 << 20) + 4096, (5 << 20) + 12345};
    for (size_t i = 0; i < NROWS(ns); i++) {
        round_trip(ns[i], 200000, true);
        round_trip(ns[i], 17, true);
        round_trip(ns[i], 200000, false);
    }
}

/* An archive as the export writes it: age chunks of 64 KiB + 16 after a header. */
static void age_shaped(void) {
    round_trip(237 + 40 * 65552 + 1000, 65552, true);
    round_trip(237 + 40 * 65552 + 1000, 65552, false);
}

/* /dev/full takes the open and refuses every write with ENOSPC. */
static void full_disk(void) {
    qun_outfile_t *f;
    qun_err_t err;
    if (access("/dev/full", W_OK) != 0 || qun_outfile_open("/dev/full", true, &f, &err) != QUN_OK) {
        fprintf(stderr, "outfile: no writable /dev/full, the full-disk case is not run\n");
        return;
    }
    static uint8_t buf[1 << 16];
    qun_rc rc = QUN_OK;
    for (int i = 0; i < 200 && rc == QUN_OK; i++) /* 12.5 MiB, more than the queue holds */
        rc = qun_outfile_write(f, buf, sizeof buf, &err);
    if (rc == QUN_OK)
        rc = qun_outfile_close(f, &err);
    else
        qun_outfile_abandon(f);
    CHECK(rc == QUN_STORAGE_FULL);
}

static void abandoned(void) {
    char path[200];
    snprintf(path, sizeof path, "%s/gone", dir);
    qun_outfile_t *f;
    qun_err_t err;
    CHECK(qun_outfile_open(path, true, &f, &err) == QUN_OK);
    static uint8_t buf[1 << 16];
    for (int i = 0; f && i < 40; i++)
        CHECK(qun_outfile_write(f, buf, sizeof buf, &err) == QUN_OK);
    qun_outfile_abandon(f);
    CHECK(access(path, F_OK) == 0); /* the caller's to unlink */
    unlink(path);
    qun_outfile_abandon(NULL);
}

static void no_directory(void) {
    char path[200];
    snprintf(path, sizeof path, "%s/missing/out", dir);
    qun_outfile_t *f = (qun_outfile_t *)1;
    qun_err_t err;
    CHECK(qun_outfile_open(path, true, &f, &err) == QUN_STORE && f == NULL);
}

int main(void) {
    if (sodium_init() < 0 || !mkdtemp(dir)) return 1;
    RUN(sizes);
    RUN(age_shaped);
    RUN(full_disk);
    RUN(abandoned);
    RUN(no_directory);
    rmdir(dir);
    return unit_done("archive/outfile");
}
