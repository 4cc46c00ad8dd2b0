/* SPDX-License-Identifier: MIT */
/* Group exports: an owner asks for an age-encrypted archive of a group (members,
 * messages in seq order, files, payments and a manifest of their digests; the format
 * is in docs/archive-format.md).  The request writes an `exports` row and queues an
 * `export_group` job; the job runs the archive on a thread of its own over a
 * read-only connection inside one read transaction (one consistent snapshot, and the
 * writer is never held while bytes are compressed and encrypted), and records its
 * progress and its end through the writer: the row's state, the digest of the .age
 * file and the index of its `export.made` ledger entry. */
#ifndef QUN_EXPORT_H
#define QUN_EXPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/errors.h"
#include "qun/store.h"

/* Most recipients one export may be encrypted to. */
#define QUN_EXPORT_MAX_RECIPIENTS 16
/* Version of the archive layout written to manifest.json ("format_version"). */
#define QUN_EXPORT_FORMAT_VERSION 1

/* Request an export of group gid for the actor, who must own it, encrypted to the age
 * X25519 recipients in the JSON array recipients (borrowed; 1..16 strings, each
 * checked: AGE_KEY_INVALID with field "recipients[i]").  The group's resolved policy
 * must allow export (EXPORT_FORBIDDEN otherwise).  Runs in a writer transaction: it
 * inserts the row and the job.  *out = {id, group, state, progress} (caller owns). */
qun_rc qun_export_create(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *recipients,
                         json_t **out, qun_err_t *err);

/* The export xid as its requester sees it: {id, group, state, progress, created_at,
 * recipients, and digest, size, ledger_index, finished_at when done, error when
 * failed}.  Anyone but the requester gets EXPORT_NOT_FOUND. */
qun_rc qun_export_get(qun_db_t *db, const qun_actor_t *a, const char *xid, json_t **out,
                      qun_err_t *err);

/* Path of the finished archive of export xid into path[size] for its requester;
 * EXPORT_NOT_READY while it runs or after it failed. */
qun_rc qun_export_file(qun_db_t *db, const qun_actor_t *a, const char *xid, char *path, size_t size,
                       qun_err_t *err);

/* The `export_group` job step (see qun_job_step_fn; ref_id is exports.id).  On the
 * writer thread: the first call starts the export thread and defers; later calls copy
 * its progress into the row and defer again, until the thread has ended, when the
 * step records `done` (with the ledger entry) or `failed` and finishes the job.  A job
 * found with no thread (the daemon restarted) starts the export over. */
qun_rc qun_export_group_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id,
                             bool *finished, int64_t *defer, qun_err_t *err);

#endif
