/* SPDX-License-Identifier: MIT */
/* The audit ledger as the API shows it (GET /v1/ledger/..., GET /v1/groups/{id}/history):
 * pages of entries and stored subtree hashes, proofs with their leaf hash, and a
 * group's history, with the rule of who reads what.
 *
 * Who reads what: every authenticated user gets every leaf hash and stored node (so
 * anyone can recompute roots and check proofs), but an entry's text (and the event and
 * group shown from it) only when the entry is about a group the user belongs to or
 * owns, or the user is its actor; server admins read every entry.  What is shown of an
 * entry comes from its hashed text, never from the side columns of ledger_entries
 * (event, group_openid, actor_openid), which only index the text and which no hash
 * covers: a row whose columns disagree with its text is shown to server admins only.
 *
 * Every function answers a JSON object the caller owns (*out), or an error with the
 * detail in err (QUN_FIELD_INVALID naming the parameter for a range outside the tree).
 * A range end or tree size given as -1 means "not given": the default applies. */
#ifndef QUN_LEDGER_VIEW_H
#define QUN_LEDGER_VIEW_H

#include <jansson.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/errors.h"
#include "qun/store.h"

/* Most entries or nodes one page holds. */
#define QUN_LEDGER_PAGE_MAX 1000

/* Entries [start, end) of the tree (end -1: up to QUN_LEDGER_PAGE_MAX of them, no
 * further than the tree's size), as actor a may see them.  *out = {start, end,
 * tree_size, items: [{index, leaf_hash, entry?, event?, group?}]}, entry (the hashed
 * text) and the event and group read from it only where a may read the entry.
 * FIELD_INVALID ("end") unless start <= end <= tree size and the page is at most
 * QUN_LEDGER_PAGE_MAX. */
qun_rc qun_ledger_view_entries(qun_db_t *db, const qun_actor_t *a, int64_t start, int64_t end, json_t **out,
                               qun_err_t *err);
/* The stored hashes of the complete subtrees of level (0..62; level 0 are the leaves)
 * with index in [start, end) (end -1: as many as a page holds).  *out = {level, start,
 * end, tree_size, items: [{index, hash}]}.  FIELD_INVALID ("end") beyond the level's
 * complete subtrees or past a page. */
qun_rc qun_ledger_view_nodes(qun_db_t *db, int64_t level, int64_t start, int64_t end, json_t **out,
                             qun_err_t *err);
/* The inclusion proof of entry index in the tree of size entries (size -1: the current
 * tree).  *out = {index, tree_size, leaf_hash, proof: [hex]}.  FIELD_INVALID ("index")
 * unless index < size <= the current size. */
qun_rc qun_ledger_view_inclusion(qun_db_t *db, int64_t index, int64_t size, json_t **out, qun_err_t *err);
/* The consistency proof from the tree of old entries to that of size entries (size -1:
 * the current tree).  *out = {old, new, proof: [hex]}.  FIELD_INVALID ("old") unless
 * 1 <= old <= size <= the current size. */
qun_rc qun_ledger_view_consistency(qun_db_t *db, int64_t old, int64_t size, json_t **out, qun_err_t *err);
/* The ledger entries of group gid, oldest first, a page of limit rows from the cursor
 * after (an entry index + 1; 0: from the start).  Members may read it, and the owner
 * still after the group is gone; others get qun_group_access's refusal.  *out = {group,
 * items: [{index, entry, leaf_hash, event?}], next_cursor}.  A row whose indexed group
 * column disagrees with its hashed text is left out, yet still moves the cursor. */
qun_rc qun_ledger_view_history(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                               json_t **out, qun_err_t *err);

#endif
