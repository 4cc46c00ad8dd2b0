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

#include "qun/archive.h"
#include "qun/core.h"
#include "qun/writer.h"
#include "qun/errors.h"
#include "qun/store.h"

/* Most recipients one export may be encrypted to. */
#define QUN_EXPORT_MAX_RECIPIENTS 16
/* Version of the archive layout written to manifest.json ("format_version"). */
#define QUN_EXPORT_FORMAT_VERSION QUN_ARCHIVE_FORMAT_VERSION

/* Fewest characters (code points) and most bytes of an export passphrase. */
#define QUN_EXPORT_PASSPHRASE_MIN 10
#define QUN_EXPORT_PASSPHRASE_MAX 1024

/* How an export is protected and its transcript written (all optional). */
typedef struct {
    const char *passphrase; /* instead of recipients (exactly one of the two); borrowed */
    const char *lang;       /* the transcript's language, "en" or "zh-CN"; NULL: "en" */
    bool has_tz;            /* tz_offset is known; otherwise the transcript is in UTC */
    int tz_offset;          /* minutes east of UTC, -840..840 */
} qun_export_opts_t;

/* Request an export of group gid for the actor, encrypted to the age X25519
 * recipients in the JSON array recipients (borrowed; 1..16 strings, each checked:
 * AGE_KEY_INVALID with field "recipients[i]").  scope "group" (or NULL): the whole
 * group, for its owner.  scope "self": the actor's own copy (every message, the
 * group's files, only the payments they made or claimed from and only their own
 * claims), for any member while the group's dissolution is pending and for the owner
 * at any time (SELF_EXPORT_CLOSED otherwise).  The group's resolved policy must allow
 * export (EXPORT_FORBIDDEN otherwise).  Runs in a writer transaction: it inserts the
 * row and the job.  *out = {id, group, scope, state, progress} (caller owns). */
qun_rc qun_export_create(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *recipients,
                         const char *scope, const qun_export_opts_t *opts, json_t **out, qun_err_t *err);

/* Check a JSON array of age recipients (borrowed); errors name field ("recipients",
 * "archive.recipients") and the index of a bad one. */
qun_rc qun_export_check_recipients(json_t *recipients, const char *field, qun_err_t *err);

/* Queue an export of the loaded group g for a, after the policy check (the caller
 * has checked the actor's right and the recipients).  *id = the exports row id; *out
 * as qun_export_create's (may be NULL). */
qun_rc qun_export_queue(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, json_t *recipients,
                        bool self, const qun_export_opts_t *opts, int64_t *id, json_t **out, qun_err_t *err);
/* Check an export passphrase: QUN_EXPORT_PASSPHRASE_MIN code points at least
 * (PASSPHRASE_TOO_SHORT), no control characters (FIELD_INVALID), both naming field. */
qun_rc qun_export_check_passphrase(const char *pass, const char *field, qun_err_t *err);

/* The export xid as its requester sees it: {id, group, state, progress, created_at,
 * recipients, and digest, size, ledger_index, finished_at when done, error when
 * failed}.  Anyone but the requester gets EXPORT_NOT_FOUND. */
qun_rc qun_export_get(qun_db_t *db, const qun_actor_t *a, const char *xid, json_t **out, qun_err_t *err);

/* Path of the finished archive of export xid into path[size] for its requester;
 * EXPORT_NOT_READY while it runs or after it failed. */
qun_rc qun_export_file(qun_db_t *db, const qun_actor_t *a, const char *xid, char *path, size_t size,
                       qun_err_t *err);

/* Resolve the grant token (the whole Authorization bearer value, `qgr_<id>_<secret>`)
 * into its grant's row id and group.  GRANT_INVALID for a malformed or unknown token
 * (the secret is compared in constant time), GRANT_EXPIRED, GRANT_REVOKED. */
qun_rc qun_grant_auth(qun_db_t *db, const char *token, int64_t *grant_id, int64_t *group_id, qun_err_t *err);

/* Issue a storage grant on group gid (owner only): a token that lets another
 * application list and download the group's exports (scope "group") for expires_in
 * seconds (60 s .. 366 days), revocable.  Ledgered as `grant.issued`.  *out = {id,
 * group, scope, token, label, expires_at, created_at}; the token is shown only here. */
qun_rc qun_grant_issue(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t expires_in,
                       const char *label, json_t **out, qun_err_t *err);
/* The group's grants (owner only), without tokens: {items: [...]}. */
qun_rc qun_grant_list(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err);
/* Revoke grant grid of group gid (owner only); ledgered as `grant.revoked`.  Revoking
 * twice answers the revoked grant again.  GRANT_NOT_FOUND for another group's. */
qun_rc qun_grant_revoke(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *grid, json_t **out,
                        qun_err_t *err);
/* The finished whole-group exports the grant token may download: {group, grant, items}. */
qun_rc qun_grant_exports(qun_db_t *db, const char *token, json_t **out, qun_err_t *err);
/* Authorize a download of export xid with the grant token; on QUN_OK path[size] is the
 * .age file, *out = {id, digest, size}.  Counts and ledgers the use (`grant.used`):
 * call on the writer.  GRANT_SCOPE when the export belongs to another group,
 * EXPORT_NOT_FOUND for a member's own copy or an unknown id, EXPORT_NOT_READY. */
qun_rc qun_grant_download(qun_db_t *db, const char *token, const char *xid, char *path, size_t size,
                          json_t **out, qun_err_t *err);

/* The `export_group` job step (see qun_job_step_fn; ref_id is exports.id).  On the
 * writer thread: the first call starts the export thread and defers; later calls copy
 * its progress into the row and defer again, until the thread has ended, when the
 * step records `done` (with the ledger entry) or `failed` and finishes the job.  A job
 * found with no thread (the daemon restarted) starts the export over. */
qun_rc qun_export_group_step(qun_db_t *db, int64_t job_id, int64_t group_id, int64_t ref_id, bool *finished,
                             int64_t *defer, qun_err_t *err);

/* The writer export threads ledger their content seal through.  qun_jobs_start sets
 * it; NULL (from qun_jobs_stop, before the writer stops) waits until no export thread
 * is inside the writer, and an export sealing after that fails (its job, still
 * `running`, starts it over after the restart). */
void qun_export_use_writer(qun_writer_t *w);

#endif
