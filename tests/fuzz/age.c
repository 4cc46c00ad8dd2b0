/* SPDX-License-Identifier: MIT */
/* libFuzzer target for src/archive/age.c: the age v1 header (version line, recipient
 * stanzas, canonical base64, the header MAC) and the STREAM payload, decrypted with a
 * fixed identity so that inputs made for it (the seeds, encrypted with the real `age`
 * tool or with qun's encryptor) reach the payload.  The first byte picks the form:
 *   'K'    the rest is key text: recipient, identity, Bech32 and an identity file;
 *   'R'    flags, a 16-bit position, a byte, then plaintext: encrypted with qun's own
 *          encryptor to the fixed recipient (and a second one when flags & 1),
 *          optionally damaged (flags >> 1 & 3: none, flip a byte, cut, append one),
 *          then decrypted: undamaged it must give the plaintext back, damaged it may
 *          fail but never give other bytes;
 *   other  the whole input is an age file, read in pieces of varying size.
 * A decryption that fails must keep failing, and one that succeeds must end only at
 * the authenticated end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "qun/age.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The identity the seeds are encrypted to (public:
 * age1efzjegvdaapfswl2zwx3u2x7zq8cj0enzn4fskqyj2g0lmh6mssqve6wue). */
static const char IDENTITY[] = "AGE-SECRET-KEY-1HYQS2LDX8V84CWANEWCNTRRFY7HYCW560NV5UN84TTE26ES8F5NSWMHVMG";
static uint8_t keys[2][32]; /* another identity first, then the fixed one */
static uint8_t pks[2][32];

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    unsigned calls;
} src_t;

static int mem_read(void *arg, void *buf, size_t len, size_t *got) {
    src_t *s = arg;
    size_t piece = (size_t)(s->calls++ * 997u % 5003u) + 1; /* short reads are legal */
    size_t left = s->n - s->pos;
    if (piece > len) piece = len;
    if (piece > left) piece = left;
    memcpy(buf, s->p + s->pos, piece);
    s->pos += piece;
    *got = piece;
    return 0;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} sink_t;

static int mem_write(void *arg, const void *buf, size_t len) {
    sink_t *s = arg;
    if (s->n + len > s->cap) {
        size_t cap = (s->n + len) * 2;
        uint8_t *p = realloc(s->p, cap);
        if (!p) return -1;
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->n, buf, len);
    s->n += len;
    return 0;
}

/* Decrypt in[n]; returns the rc and the plaintext in *out (caller frees). */
static qun_rc decrypt(const uint8_t *in, size_t n, size_t nkeys, sink_t *out) {
    src_t src = {in, n, 0, 0};
    qun_age_dec_t *d = NULL;
    qun_err_t err = {0};
    qun_rc rc = qun_age_dec_new((const uint8_t(*)[32])keys + (2 - nkeys), nkeys, mem_read, &src, &d, &err);
    if (rc != QUN_OK) {
        if (d || !err.msg[0]) abort();
        if (rc != QUN_AGE_HEADER_INVALID && rc != QUN_AGE_NO_MATCH && rc != QUN_AGE_HMAC_INVALID) abort();
        return rc;
    }
    uint8_t buf[70000];
    for (unsigned i = 0;; i++) {
        size_t want = (size_t)(i * 7919u % sizeof buf) + 1, got = 0;
        rc = qun_age_dec_read(d, buf, want, &got, &err);
        if (rc != QUN_OK) {
            if (got != 0 || rc != QUN_AGE_PAYLOAD_INVALID) abort();
            size_t again = 1;
            if (qun_age_dec_read(d, buf, 1, &again, &err) == QUN_OK || again != 0) abort();
            break;
        }
        if (got > want) abort();
        if (got == 0) break;
        if (mem_write(out, buf, got) != 0) abort();
    }
    qun_age_dec_free(d);
    return rc;
}

static void keys_form(const uint8_t *data, size_t size) {
    char *s = strndup((const char *)data, size);
    if (!s) return;
    uint8_t k[32], bytes[100];
    char hrp[100], rcpt[QUN_AGE_RECIPIENT_LEN + 1];
    size_t n;
    qun_err_t err = {0};
    if (qun_age_recipient_parse(s, k, &err) == QUN_OK && strlen(s) != QUN_AGE_RECIPIENT_LEN) abort();
    if (qun_age_identity_parse(s, k, &err) == QUN_OK) {
        if (qun_age_identity_recipient(s, rcpt, &err) != QUN_OK) abort();
        uint8_t pk[32];
        if (qun_age_recipient_parse(rcpt, pk, &err) != QUN_OK) abort();
    }
    for (int limit = 0; limit < 2; limit++) {
        if (qun_bech32_decode(s, limit, hrp, sizeof hrp, bytes, sizeof bytes, &n) != QUN_OK) continue;
        if (n > sizeof bytes || strlen(hrp) >= sizeof hrp) abort();
        char again[400];
        /* Decoding and encoding again gives the string back, in lower case. */
        if (qun_bech32_encode(hrp, bytes, n, false, again, sizeof again) == QUN_OK) {
            for (char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
            if (strcmp(again, s) != 0) abort();
        }
    }
    FILE *f = fmemopen((void *)data, size ? size : 1, "r");
    if (f) {
        uint8_t sks[4][32];
        size_t got = 99;
        if (size && qun_age_identities_load(f, sks, 4, &got, &err) == QUN_OK && (got == 0 || got > 4))
            abort();
        fclose(f);
    }
    free(s);
}

static void roundtrip_form(const uint8_t *data, size_t size) {
    if (size < 4) return;
    unsigned flags = data[0], pos = (unsigned)data[1] | (unsigned)data[2] << 8;
    uint8_t val = data[3];
    const uint8_t *plain = data + 4;
    size_t plen = size - 4, nr = flags & 1 ? 2 : 1;
    sink_t file = {0}, back = {0};
    qun_age_enc_t *e = NULL;
    qun_err_t err = {0};
    /* The fixed recipient last, so the decryptor also walks a stanza it cannot open. */
    qun_rc rc = qun_age_enc_new((const uint8_t(*)[32])pks + (2 - nr), nr, mem_write, &file, &e, &err);
    for (size_t off = 0, i = 0; rc == QUN_OK && off < plen; i++) {
        size_t piece = (i * 4099 + pos) % 70001 + 1;
        if (piece > plen - off) piece = plen - off;
        rc = qun_age_enc_write(e, plain + off, piece, &err);
        off += piece;
    }
    if (rc == QUN_OK) rc = qun_age_enc_finish(e, &err);
    qun_age_enc_free(e);
    if (rc != QUN_OK) abort();
    int damage = (flags >> 1) & 3;
    if (damage == 1)
        file.p[pos % file.n] ^= val ? val : 1;
    else if (damage == 2)
        file.n = pos % file.n;
    else if (damage == 3 && mem_write(&file, &val, 1) != 0)
        abort();
    rc = decrypt(file.p, file.n, 2, &back);
    if (damage == 0 && rc != QUN_OK) abort();
    if (rc == QUN_OK && (back.n != plen || (plen && memcmp(back.p, plain, plen) != 0))) abort();
    if (rc != QUN_OK && (back.n > plen || (back.n && memcmp(back.p, plain, back.n) != 0))) abort();
    free(file.p);
    free(back.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] == 'K') {
        keys_form(data + 1, size - 1);
    } else if (data[0] == 'R') {
        roundtrip_form(data + 1, size - 1);
    } else {
        sink_t out = {0};
        decrypt(data, size, 2, &out);
        decrypt(data, size, 1, &out);
        free(out.p);
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    qun_err_t err;
    if (sodium_init() < 0) abort(); /* as qund and qun do first: sodium_malloc needs it */
    char other[QUN_AGE_IDENTITY_LEN + 1], rcpt[QUN_AGE_RECIPIENT_LEN + 1];
    /* The other identity: fixed too, so a run is reproducible. */
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(0xA5 ^ i);
    if (qun_bech32_encode("age-secret-key-", seed, 32, true, other, sizeof other) != QUN_OK ||
        qun_age_identity_parse(other, keys[0], &err) != QUN_OK ||
        qun_age_identity_parse(IDENTITY, keys[1], &err) != QUN_OK)
        abort();
    for (int i = 0; i < 2; i++) {
        const char *id = i ? IDENTITY : other;
        if (qun_age_identity_recipient(id, rcpt, &err) != QUN_OK ||
            qun_age_recipient_parse(rcpt, pks[i], &err) != QUN_OK)
            abort();
    }
    return 0;
}
