/* SPDX-License-Identifier: MIT */
/* Unit tests of src/archive/writer.c: an archive written by qun is decrypted by
 * Debian's age, decompressed by zstd and listed and extracted by tar (skipped when
 * the tools are missing), members staged compressed (their own zstd frames between
 * the stream's) and pieces of file data stored raw (frames of raw blocks) beside
 * compressed ones included; its digest is the SHA-256 of the bytes written. */
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/archive.h"
#include "qun/stage.h"
#include "unit.h"

static int file_write(void *arg, const void *buf, size_t len) {
    return fwrite(buf, 1, len, arg) == len ? 0 : -1;
}

/* Run cmd and return its whole standard output (owned), or NULL. */
static char *run(const char *cmd) {
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 20, n = 0, got;
    char *out = malloc(cap + 1);
    if (!p || !out) return NULL;
    while ((got = fread(out + n, 1, cap - n, p)) > 0)
        n += got;
    out[n] = '\0';
    if (pclose(p) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static char dir[] = "/tmp/qun-archive-XXXXXX", digest[65];
static int64_t bytes;
static const char manifest[] = "{\"format\":1}\n";

/* Stage n lines of text compressed and add them as name; the same bytes go to
 * dir/name for cmp. */
static void add_staged(qun_archive_t *a, const char *name, int n) {
    char path[1024], hex[65], line[64];
    qun_stage_t s;
    qun_err_t err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *want = fopen(path, "w");
    CHECK(want && qun_stage_open_zst(&s, dir, &err) == QUN_OK);
    for (int i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "{\"seq\":%d,\"text\":\"line %d\"}\n", i, i * 7919 % 1000);
        CHECK(qun_stage_put(&s, line, (size_t)len, &err) == QUN_OK);
        fputs(line, want);
    }
    fclose(want);
    CHECK(qun_stage_finish(&s, a, name, 1700000000, hex, &err) == QUN_OK);
}

/* files/photo, in pieces as the export's file streamer adds them: random bytes that
 * zstd cannot shrink (300 KiB: three raw blocks, the last short; exactly 64 KiB, the
 * smallest piece tried; 128 KiB, one full block that is also the last; 1000 bytes, too
 * few to try) between text that compresses (200 KiB, and 100 KiB whose first 16 KiB
 * are random, so it is stored raw).  The same bytes go to dir/files/photo for cmp. */
static const size_t photo_piece[] = {300 << 10, 200 << 10, 64 << 10, 1000, 128 << 10, 100 << 10};
static const bool photo_random[] = {true, false, true, true, true, false};
#define PHOTO_PIECES (sizeof photo_piece / sizeof photo_piece[0])

static void add_photo(qun_archive_t *a) {
    char path[1024];
    qun_err_t err;
    size_t total = 0;
    for (size_t i = 0; i < PHOTO_PIECES; i++)
        total += photo_piece[i];
    snprintf(path, sizeof path, "%s/files", dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/files/photo", dir);
    FILE *want = fopen(path, "w");
    uint8_t *buf = malloc(300 << 10);
    CHECK(want && buf && qun_archive_add_begin(a, "files/photo", (int64_t)total, 1700000000, &err) == QUN_OK);
    for (size_t i = 0; i < PHOTO_PIECES; i++) {
        size_t n = photo_piece[i];
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)('a' + (j / 7) % 26);
        if (photo_random[i])
            randombytes_buf(buf, n);
        else if (n == (100 << 10))
            randombytes_buf(buf, 16 << 10);
        CHECK(qun_archive_add_data(a, buf, n, &err) == QUN_OK);
        CHECK(fwrite(buf, 1, n, want) == n);
    }
    fclose(want);
    free(buf);
}

/* A file of 200000 bytes streamed from disk, small ones from memory, two staged
 * compressed (one empty) and files/photo, for a fresh age key written where Debian's
 * age finds it. */
static void write_archive(void) {
    char id[QUN_AGE_IDENTITY_LEN + 1], rcpt[QUN_AGE_RECIPIENT_LEN + 1], cmd[1024];
    uint8_t pk[1][32];
    qun_err_t err;
    qun_archive_t *a = NULL;
    qun_age_keygen(id, rcpt);
    CHECK(qun_age_recipient_parse(rcpt, pk[0], &err) == QUN_OK);
    snprintf(cmd, sizeof cmd, "%s/key.txt", dir);
    FILE *k = fopen(cmd, "w");
    fprintf(k, "# public key: %s\n%s\n", rcpt, id);
    fclose(k);

    snprintf(cmd, sizeof cmd, "%s/blob", dir);
    FILE *blob = fopen(cmd, "w+");
    for (int i = 0; i < 200000; i++)
        fputc('a' + i % 26, blob);
    rewind(blob);
    snprintf(cmd, sizeof cmd, "%s/out.age", dir);
    FILE *out = fopen(cmd, "wb");
    CHECK(qun_archive_new((const uint8_t(*)[32])pk, 1, file_write, out, &a, &err) == QUN_OK);
    CHECK(qun_archive_add(a, "manifest.json", manifest, strlen(manifest), 1700000000, &err) == QUN_OK);
    CHECK(qun_archive_add(a, "members.json", "[]", 2, 1700000000, &err) == QUN_OK);
    add_staged(a, "lines.jsonl", 50000);
    CHECK(qun_archive_add_stream(a, "files/blob", blob, 200000, 1700000000, &err) == QUN_OK);
    add_photo(a);
    add_staged(a, "empty.jsonl", 0);
    CHECK(qun_archive_add(a, "messages.jsonl", "", 0, 1700000000, &err) == QUN_OK);
    CHECK(qun_archive_finish(a, digest, &bytes, &err) == QUN_OK);
    qun_archive_free(a);
    fclose(out);
    fclose(blob);
}

/* The digest is the SHA-256 of the file written, and the size its length: the bytes
 * of files/photo stored raw (593 KiB) and the rest compressed (a text piece stored raw
 * would add 200 KiB). */
static void digest_and_size(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sha256sum %s/out.age", dir);
    char *sum = run(cmd);
    CHECK(sum && strncmp(sum, digest, 64) == 0);
    free(sum);
    snprintf(cmd, sizeof cmd, "wc -c < %s/out.age", dir);
    char *wc = run(cmd);
    CHECK(wc && atoll(wc) == bytes);
    CHECKF(bytes > 593 << 10 && bytes < 660 << 10, "the archive has the wrong size");
    free(wc);
}

/* age -d | zstd -d | tar lists and extracts exactly what was written. */
static void interop_age_zstd_tar(void) {
    char cmd[1024];
    if (system("command -v age >/dev/null && command -v zstd >/dev/null") != 0) {
        printf("archive/writer: age or zstd missing, interop skipped\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "age -d -i %s/key.txt %s/out.age | zstd -dq | tar tf -", dir, dir);
    char *list = run(cmd);
    CHECK(list &&
          strcmp(list,
                 "manifest.json\nmembers.json\nlines.jsonl\nfiles/blob\nfiles/photo\nempty.jsonl\nmessages."
                 "jsonl\n") == 0);
    const char *staged[] = {"lines.jsonl", "empty.jsonl", "files/photo"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "age -d -i %s/key.txt %s/out.age | zstd -dq | tar xOf - %s | cmp - %s/%s",
                 dir, dir, staged[i], dir, staged[i]);
        char *c = run(cmd);
        CHECKF(c != NULL, staged[i]);
        free(c);
    }
    free(list);
    snprintf(cmd, sizeof cmd, "age -d -i %s/key.txt %s/out.age | zstd -dq | tar xOf - manifest.json", dir,
             dir);
    char *m = run(cmd);
    CHECK(m && strcmp(m, manifest) == 0);
    free(m);
    snprintf(cmd, sizeof cmd,
             "age -d -i %s/key.txt %s/out.age | zstd -dq | tar xOf - files/blob | cmp - %s/blob", dir, dir,
             dir);
    char *c = run(cmd);
    CHECK(c != NULL);
    free(c);
}

int main(void) {
    char cmd[1024];
    if (sodium_init() < 0 || !mkdtemp(dir)) return 1;
    RUN(write_archive);
    RUN(digest_and_size);
    RUN(interop_age_zstd_tar);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return unit_done("archive/writer");
}
