/* SPDX-License-Identifier: MIT */
/* Bulk SHA-256 for archives (archive.h).  Exports hash every byte twice (each file
 * against its content address, and the .age output for the ledger), so the hash is on
 * the hot path: OpenSSL's SHA-256 uses the CPU's SHA extensions where there are some,
 * about four times libsodium's portable code on the benchmark machine (README.md,
 * "How it is built"; docs/design.md section 9).  libsodium stays the hash of everything
 * else. */
#include <openssl/evp.h>

#include "qun/archive.h"

qun_rc qun_sha256_init(qun_sha256_t *h, qun_err_t *err) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        h->ctx = NULL;
        return qun_fail(err, QUN_NOMEM, "cannot start a SHA-256");
    }
    h->ctx = c;
    return QUN_OK;
}

void qun_sha256_update(qun_sha256_t *h, const void *buf, size_t n) {
    if (h->ctx && n) EVP_DigestUpdate(h->ctx, buf, n);
}

void qun_sha256_final(qun_sha256_t *h, unsigned char out[32]) {
    unsigned int n = 0;
    if (h->ctx) EVP_DigestFinal_ex(h->ctx, out, &n);
    qun_sha256_free(h);
}

void qun_sha256_free(qun_sha256_t *h) {
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}
