/* SPDX-License-Identifier: MIT */
/* Staged archive members: a member of variable length (members.json, a .jsonl file,
 * manifest.json) is written to an unlinked temporary file and hashed on the way,
 * because a tar header carries the size before the bytes; then it streams into the
 * archive.  Also a growing line buffer for JSON lines written by hand, and a helper
 * thread that writes and hashes one buffer of lines while the caller fills the other.
 * Used by the export job (jobs/export.c). */
#ifndef QUN_STAGE_H
#define QUN_STAGE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qun/archive.h"
#include "qun/errors.h"
#include "qun/json.h" /* qun_line_t */

typedef struct {
    FILE *f;
    qun_sha256_t h;
    int64_t size;
    int64_t items; /* JSON array members written (a caller's count, e.g. members.json) */
    void *zc;      /* a ZSTD_CCtx when the file holds the bytes compressed */
    uint8_t *zbuf; /* its output buffer */
    int64_t zsize; /* compressed bytes in the file */
} qun_stage_t;

/* Open an empty staged member in directory dir (an unlinked temporary file). */
qun_rc qun_stage_open(qun_stage_t *s, const char *dir, qun_err_t *err);
/* The same, the bytes compressed as they are put (one zstd frame at the archive's
 * level) and added to the archive as they are: the compression is done by whoever
 * puts the bytes, e.g. a staging helper thread, rather than by the archive's writer
 * when the member is added, and the file is a fraction of the size. */
qun_rc qun_stage_open_zst(qun_stage_t *s, const char *dir, qun_err_t *err);
/* Close it without adding it (accepts a closed one). */
void qun_stage_close(qun_stage_t *s);
/* Append buf[n] / a string / o (stolen) as compact sorted JSON / o (stolen) as one line. */
qun_rc qun_stage_put(qun_stage_t *s, const void *buf, size_t n, qun_err_t *err);
qun_rc qun_stage_str(qun_stage_t *s, const char *str, qun_err_t *err);
qun_rc qun_stage_json(qun_stage_t *s, json_t *o, qun_err_t *err);
qun_rc qun_stage_line(qun_stage_t *s, json_t *o, qun_err_t *err);
/* Add the staged bytes to archive a as member name with mtime, put their hex SHA-256
 * in hex[65], and close the stage (also on error). */
qun_rc qun_stage_finish(qun_stage_t *s, qun_archive_t *a, const char *name, int64_t mtime, char hex[65],
                        qun_err_t *err);

/* A helper thread staging buffers of lines into s. */
typedef struct {
    qun_stage_t *s;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qun_line_t *pending; /* handed over, not written yet */
    bool done;
    qun_rc rc; /* the helper's first error (only it writes rc and err) */
    qun_err_t err;
} qun_stage_bg_t;

/* Start the helper for s. */
qun_rc qun_stage_bg_start(qun_stage_bg_t *b, qun_stage_t *s, qun_err_t *err);
/* Hand l over once the helper is done with the previous buffer (the caller keeps
 * filling the other one; l is emptied once written); the helper's error so far. */
qun_rc qun_stage_bg_hand(qun_stage_bg_t *b, qun_line_t *l);
/* Wait for the last buffer and end the helper; its error goes to err. */
qun_rc qun_stage_bg_finish(qun_stage_bg_t *b, qun_err_t *err);

#endif
