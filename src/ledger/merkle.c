/* SPDX-License-Identifier: MIT */
/* RFC 6962 / RFC 9162 Merkle tree math: hashing, proofs built from perfect-subtree
 * hashes, and the RFC 9162 verification algorithms.  Pure functions, no storage. */
#include <sodium.h>
#include <string.h>

#include "qun/ledger.h"

void qun_merkle_leaf(unsigned char out[QUN_HASH], const void *entry, size_t n) {
    crypto_hash_sha256_state st;
    unsigned char prefix = 0x00;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    crypto_hash_sha256_update(&st, entry, n);
    crypto_hash_sha256_final(&st, out);
}

void qun_merkle_node(unsigned char out[QUN_HASH], const unsigned char l[QUN_HASH],
                     const unsigned char r[QUN_HASH]) {
    unsigned char buf[1 + 2 * QUN_HASH];
    buf[0] = 0x01;
    memcpy(buf + 1, l, QUN_HASH);
    memcpy(buf + 1 + QUN_HASH, r, QUN_HASH);
    crypto_hash_sha256(out, buf, sizeof buf);
}

uint64_t qun_merkle_split(uint64_t n) {
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

static bool perfect(uint64_t lo, uint64_t hi) {
    uint64_t n = hi - lo;
    return n && (n & (n - 1)) == 0 && lo % n == 0;
}

qun_rc qun_merkle_range(qun_perfect_fn src, void *ctx, uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH],
                        qun_err_t *err) {
    if (perfect(lo, hi)) return src(ctx, lo, hi, out, err);
    /* The left part is always perfect and aligned; only the right edge recurses. */
    uint64_t k = qun_merkle_split(hi - lo);
    unsigned char l[QUN_HASH], r[QUN_HASH];
    qun_rc rc = src(ctx, lo, lo + k, l, err);
    if (rc == QUN_OK) rc = qun_merkle_range(src, ctx, lo + k, hi, r, err);
    if (rc == QUN_OK) qun_merkle_node(out, l, r);
    return rc;
}

static qun_rc path(qun_perfect_fn src, void *ctx, uint64_t m, uint64_t lo, uint64_t hi,
                   unsigned char proof[][QUN_HASH], int *n, qun_err_t *err) {
    if (hi - lo == 1) return QUN_OK;
    uint64_t k = qun_merkle_split(hi - lo);
    qun_rc rc;
    if (m < k) {
        rc = path(src, ctx, m, lo, lo + k, proof, n, err);
        if (rc == QUN_OK) rc = qun_merkle_range(src, ctx, lo + k, hi, proof[(*n)++], err);
    } else {
        rc = path(src, ctx, m - k, lo + k, hi, proof, n, err);
        if (rc == QUN_OK) rc = qun_merkle_range(src, ctx, lo, lo + k, proof[(*n)++], err);
    }
    return rc;
}

qun_rc qun_merkle_inclusion(qun_perfect_fn src, void *ctx, uint64_t index, uint64_t size,
                            unsigned char proof[][QUN_HASH], int *n, qun_err_t *err) {
    *n = 0;
    if (index >= size) return qun_fail_field(err, QUN_FIELD_INVALID, "index", "index must be below size");
    return path(src, ctx, index, 0, size, proof, n, err);
}

static qun_rc subproof(qun_perfect_fn src, void *ctx, uint64_t m, uint64_t lo, uint64_t hi, bool b,
                       unsigned char proof[][QUN_HASH], int *n, qun_err_t *err) {
    uint64_t size = hi - lo;
    if (m == size) return b ? QUN_OK : qun_merkle_range(src, ctx, lo, hi, proof[(*n)++], err);
    uint64_t k = qun_merkle_split(size);
    qun_rc rc;
    if (m <= k) {
        rc = subproof(src, ctx, m, lo, lo + k, b, proof, n, err);
        if (rc == QUN_OK) rc = qun_merkle_range(src, ctx, lo + k, hi, proof[(*n)++], err);
    } else {
        rc = subproof(src, ctx, m - k, lo + k, hi, false, proof, n, err);
        if (rc == QUN_OK) rc = qun_merkle_range(src, ctx, lo, lo + k, proof[(*n)++], err);
    }
    return rc;
}

qun_rc qun_merkle_consistency(qun_perfect_fn src, void *ctx, uint64_t old, uint64_t size,
                              unsigned char proof[][QUN_HASH], int *n, qun_err_t *err) {
    *n = 0;
    if (old == 0 || old > size) return qun_fail_field(err, QUN_FIELD_INVALID, "old", "need 0 < old <= new");
    return subproof(src, ctx, old, 0, size, true, proof, n, err);
}

bool qun_merkle_verify_inclusion(const unsigned char leaf[QUN_HASH], uint64_t index, uint64_t size,
                                 const unsigned char proof[][QUN_HASH], int n,
                                 const unsigned char root[QUN_HASH]) {
    if (index >= size) return false;
    uint64_t fn = index, sn = size - 1;
    unsigned char r[QUN_HASH];
    memcpy(r, leaf, QUN_HASH);
    for (int i = 0; i < n; i++) {
        if (sn == 0) return false;
        if ((fn & 1) || fn == sn) {
            qun_merkle_node(r, proof[i], r);
            while (!(fn & 1) && fn != 0)
                fn >>= 1, sn >>= 1;
        } else {
            qun_merkle_node(r, r, proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp(r, root, QUN_HASH) == 0;
}

bool qun_merkle_verify_consistency(uint64_t old, uint64_t size, const unsigned char old_root[QUN_HASH],
                                   const unsigned char root[QUN_HASH], const unsigned char proof[][QUN_HASH],
                                   int n) {
    if (old == 0 || old > size) return false;
    if (old == size) return n == 0 && sodium_memcmp(old_root, root, QUN_HASH) == 0;
    const unsigned char *first = NULL;
    int i = 0;
    if ((old & (old - 1)) == 0)
        first = old_root; /* old is a power of two: it is its own subtree */
    else if (n > 0)
        first = proof[i++];
    else
        return false;
    uint64_t fn = old - 1, sn = size - 1;
    while (fn & 1)
        fn >>= 1, sn >>= 1;
    unsigned char fr[QUN_HASH], sr[QUN_HASH];
    memcpy(fr, first, QUN_HASH);
    memcpy(sr, first, QUN_HASH);
    for (; i < n; i++) {
        if (sn == 0) return false;
        if ((fn & 1) || fn == sn) {
            qun_merkle_node(fr, proof[i], fr);
            qun_merkle_node(sr, proof[i], sr);
            while (!(fn & 1) && fn != 0)
                fn >>= 1, sn >>= 1;
        } else {
            qun_merkle_node(sr, sr, proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp(fr, old_root, QUN_HASH) == 0 && sodium_memcmp(sr, root, QUN_HASH) == 0;
}
