/* SPDX-License-Identifier: MIT */
/* Import: rebuild a new group from a group archive this server exported
 * (docs/archive-format.md).  The input is the archive's plaintext, the zstd-compressed
 * tar that `age -d` yields: the client decrypts, so an identity never reaches the
 * server.  Two phases:
 *
 *  1. qun_import_stage (outside the writer): read the tar, stage the JSON members in
 *     unlinked temporary files and the files under <data>/imports/, and refuse the
 *     archive unless every member's SHA-256 matches manifest.json, the manifest lists
 *     nothing that is missing, the content digest recomputed from the members is the
 *     one the manifest's `export.content` ledger entry commits to, that entry's
 *     inclusion proof verifies, and the entry is in this server's own ledger under the
 *     same root.  Only then are the staged files moved into the blob store.
 *  2. qun_import_rebuild (one writer transaction): a new group owned by the importer,
 *     the original members, every message with its author, time and seq, the files
 *     and payments, and an `import.made` ledger entry.
 *
 * Nothing of the database changes unless both succeed. */
#ifndef QUN_IMPORT_H
#define QUN_IMPORT_H

#include <jansson.h>
#include <stddef.h>

#include "qun/archive.h"
#include "qun/core.h"
#include "qun/errors.h"
#include "qun/store.h"

typedef struct qun_import qun_import_t;

/* Most bytes manifest.json may have (it lists one digest per file). */
#define QUN_IMPORT_MANIFEST_MAX QUN_ARCHIVE_MANIFEST_MAX

/* Phase 1 over the archive plaintext buf[len], for actor a, checking the proof
 * against db's ledger (a read connection is enough).  Errors:
 * IMPORT_ARCHIVE_INVALID (not a zstd tar, corrupted or truncated, an unexpected or
 * repeated member, no or a malformed manifest), IMPORT_DIGEST_MISMATCH (a member
 * differs from the manifest, or a listed member is missing), IMPORT_PROOF_INVALID
 * (the ledger proof does not hold on this server), IMPORT_TOO_LARGE (the members
 * add up to more than qun_core_cfg.import_limit bytes: checked while reading, so a
 * small compressed body cannot fill the disk), IMPORT_FORBIDDEN (the actor is
 * not an owner or admin in the archive's members.json).  On QUN_OK *out is
 * owned by the caller (qun_import_free). */
qun_rc qun_import_stage(qun_db_t *db, const qun_actor_t *a, const void *buf, size_t len, qun_import_t **out,
                        qun_err_t *err);

/* Phase 2, in the caller's writer transaction; may run again if it is retried.
 * *out = {group, name, kind, source {group, export, content_digest, ledger_index},
 * counts {members, messages, files, payments}, skipped_members [openid...],
 * ledger_index} (caller owns). */
qun_rc qun_import_rebuild(qun_db_t *db, const qun_actor_t *a, qun_import_t *imp, json_t **out,
                          qun_err_t *err);

/* Close the staged files and remove what is left of them; accepts NULL. */
void qun_import_free(qun_import_t *imp);
/* Whether an import is staged now (between qun_import_stage and qun_import_free): the
 * housekeeping sweep of staged imports waits for none to be (jobs/scheduler.c). */
bool qun_import_staging(void);

#endif
