/* SPDX-License-Identifier: MIT */
/* A large output file written behind its producer: the bytes gather in aligned 1 MiB
 * buffers that a thread of its own writes with O_DIRECT, straight from the buffer to
 * the disk, so the producer never pays for copying into the page cache, and at close
 * only the tail and the metadata are left to sync.  Where the filesystem refuses
 * O_DIRECT (tmpfs before Linux 6.6) the thread writes through the page cache and close
 * fsyncs.  Used
 * for export archives (jobs/export.c), which are written once and read later. */
#ifndef QUN_OUTFILE_H
#define QUN_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qun/errors.h"

typedef struct qun_outfile qun_outfile_t;

/* Create path (mode 0600, truncated) and its writing thread; direct: try O_DIRECT. */
qun_rc qun_outfile_open(const char *path, bool direct, qun_outfile_t **out, qun_err_t *err);
/* Append len bytes; an error of an earlier write is reported here or at close. */
qun_rc qun_outfile_write(qun_outfile_t *f, const void *buf, size_t len, qun_err_t *err);
/* Write what is left, make the file durable (fsync) and free f, also on failure.  The
 * file holds exactly the bytes written. */
qun_rc qun_outfile_close(qun_outfile_t *f, qun_err_t *err);
/* Stop and free f without syncing; the caller unlinks the file (accepts NULL). */
void qun_outfile_abandon(qun_outfile_t *f);
/* Bytes appended so far. */
int64_t qun_outfile_size(const qun_outfile_t *f);
/* Whether the file is written direct (false when not asked for or refused). */
bool qun_outfile_direct(const qun_outfile_t *f);

#endif
