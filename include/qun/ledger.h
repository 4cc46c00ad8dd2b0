/* SPDX-License-Identifier: MIT */
/* The audit ledger: an RFC 6962 / RFC 9162 Merkle tree (SHA-256; leaf = H(0x00 ||
 * entry), node = H(0x01 || left || right)) over canonical JSON entries of governance
 * events, checkpoints in the C2SP tlog-checkpoint format signed as C2SP signed notes
 * with Ed25519, and inclusion and consistency proofs.
 *
 * Storage keeps every complete perfect subtree hash (level, index), so any subtree
 * hash, proof or root needs O(log n) reads and an append O(log n) writes. */
#ifndef QUN_LEDGER_H
#define QUN_LEDGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "qun/errors.h"
#include "qun/store.h"

#define QUN_HASH 32
#define QUN_PROOF_MAX 128 /* hashes in any proof of a tree below 2^63 leaves */

/* ---- pure Merkle math (ledger/merkle.c) ---- */
void qun_merkle_leaf(unsigned char out[QUN_HASH], const void *entry, size_t n);
void qun_merkle_node(unsigned char out[QUN_HASH], const unsigned char l[QUN_HASH],
                     const unsigned char r[QUN_HASH]);
/* Largest power of two strictly below n (n >= 2). */
uint64_t qun_merkle_split(uint64_t n);

/* A source of subtree hashes: fills out with MTH(D[lo:hi]) for a perfect, aligned
 * range (hi - lo a power of two, lo a multiple of it). */
typedef qun_rc (*qun_perfect_fn)(void *ctx, uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH],
                                 qun_err_t *err);
/* MTH(D[lo:hi]) of any range, from perfect subtrees. */
qun_rc qun_merkle_range(qun_perfect_fn src, void *ctx, uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH],
                        qun_err_t *err);
/* PATH(index, D[0:size]) into proof (*n hashes). */
qun_rc qun_merkle_inclusion(qun_perfect_fn src, void *ctx, uint64_t index, uint64_t size,
                            unsigned char proof[][QUN_HASH], int *n, qun_err_t *err);
/* PROOF(old, D[0:size]) into proof (*n hashes); 0 < old <= size. */
qun_rc qun_merkle_consistency(qun_perfect_fn src, void *ctx, uint64_t old, uint64_t size,
                              unsigned char proof[][QUN_HASH], int *n, qun_err_t *err);
/* RFC 9162 section 2.1.3.2: does proof show leaf at index in the tree of root? */
bool qun_merkle_verify_inclusion(const unsigned char leaf[QUN_HASH], uint64_t index, uint64_t size,
                                 const unsigned char proof[][QUN_HASH], int n,
                                 const unsigned char root[QUN_HASH]);
/* RFC 9162 section 2.1.4.2: does proof show tree (old, old_root) is a prefix of (size, root)? */
bool qun_merkle_verify_consistency(uint64_t old, uint64_t size, const unsigned char old_root[QUN_HASH],
                                   const unsigned char root[QUN_HASH], const unsigned char proof[][QUN_HASH],
                                   int n);

/* ---- signed checkpoints (ledger/note.c) ---- */
typedef struct qun_note_key {
    char name[128]; /* key name, also the checkpoint origin */
    unsigned char pk[32];
    unsigned char sk[64]; /* empty in a verifier */
    unsigned char key_id[4];
} qun_note_key_t;

/* The origin of a log nobody named (`ledger_origin` unset), and the longest one allowed. */
#define QUN_LEDGER_ORIGIN_DEFAULT "qun.local"
#define QUN_LEDGER_ORIGIN_MAX 100

/* Load the signer key from path, or create it (mode 0600) named "<origin>/ledger/<12 random
 * hex digits>"; origin NULL means QUN_LEDGER_ORIGIN_DEFAULT.  An existing key keeps the name
 * it was made with, whatever origin says: compare with qun_note_origin_of. */
qun_rc qun_note_key_load_or_create(const char *path, const char *origin, qun_note_key_t *key, qun_err_t *err);

/* Whether origin may name a log: 1..QUN_LEDGER_ORIGIN_MAX letters, digits and ".-:[]_/". */
bool qun_note_origin_ok(const char *origin);

/* The origin part of key's name (what precedes "/ledger/") into out. */
void qun_note_origin_of(const qun_note_key_t *key, char *out, size_t size);
/* The verifier key text "<name>+<hex key id>+<base64(0x01 || pk)>" into out. */
void qun_note_verifier(const qun_note_key_t *key, char *out, size_t size);
/* Parse a verifier key text. */
qun_rc qun_note_verifier_parse(const char *text, qun_note_key_t *key, qun_err_t *err);
/* Signed checkpoint text for (size, root) into a malloc'd string. */
char *qun_note_checkpoint(const qun_note_key_t *key, uint64_t size, const unsigned char root[QUN_HASH]);
/* Verify a signed checkpoint with key; on success fill size and root. */
qun_rc qun_note_verify(const qun_note_key_t *key, const char *note, uint64_t *size,
                       unsigned char root[QUN_HASH], qun_err_t *err);

/* ---- the stored ledger (ledger/ledger.c) ---- */
/* Append a governance event in the caller's (writer) transaction.  fields (borrowed)
 * holds event-specific members; group/actor may be NULL.  *index receives the entry's
 * index. */
qun_rc qun_ledger_append(qun_db_t *db, const char *event, const char *group, const char *actor,
                         const char *old_state, const char *new_state, json_t *fields, int64_t *index,
                         qun_err_t *err);
/* Current tree size and root. */
qun_rc qun_ledger_head(qun_db_t *db, uint64_t *size, unsigned char root[QUN_HASH], qun_err_t *err);
/* Root of the tree at an earlier size. */
qun_rc qun_ledger_root_at(qun_db_t *db, uint64_t size, unsigned char root[QUN_HASH], qun_err_t *err);
qun_rc qun_ledger_inclusion(qun_db_t *db, uint64_t index, uint64_t size, unsigned char proof[][QUN_HASH],
                            int *n, qun_err_t *err);
qun_rc qun_ledger_consistency(qun_db_t *db, uint64_t old, uint64_t size, unsigned char proof[][QUN_HASH],
                              int *n, qun_err_t *err);

#endif
