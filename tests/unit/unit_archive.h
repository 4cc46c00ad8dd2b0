/* SPDX-License-Identifier: MIT */
/* Building archive plaintexts in unit tests: a growing byte buffer, and pax tar members
 * written into one through libarchive (tests/unit/archive/import.c and
 * tests/unit/store/store_fault.c build the archives they import with these). */
#ifndef QUN_UNIT_ARCHIVE_H
#define QUN_UNIT_ARCHIVE_H

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "qun/util.h"
#include "unit.h"

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf_t;

static inline void put(buf_t *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void puts_(buf_t *b, const char *s) {
    put(b, s, strlen(s));
}

/* libarchive's write callback: the archive's bytes go to the buf_t arg. */
static inline la_ssize_t ar_write(struct archive *a, void *arg, const void *p, size_t n) {
    (void)a;
    put(arg, p, n);
    return (la_ssize_t)n;
}

/* A regular file member name holding b's bytes. */
static inline void ar_add(struct archive *ar, const char *name, const buf_t *b) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)b->n);
    CHECK(archive_write_header(ar, e) == ARCHIVE_OK);
    if (b->n) CHECK(archive_write_data(ar, b->p, b->n) == (la_ssize_t)b->n);
    archive_entry_free(e);
}

static inline void hex_of(const buf_t *b, char out[65]) {
    qun_sha256_hex(out, b->p ? (const void *)b->p : "", b->n);
}

#endif
