/* SPDX-License-Identifier: MIT */
/* Unit tests of src/archive/age.c: HKDF-SHA256 against RFC 5869's test cases, Bech32
 * against BIP-173's valid and invalid strings, key strings, and in-memory round trips
 * of the streaming encryptor and decryptor at the chunk boundaries; passphrase files
 * (scrypt stanza) in a round trip and against a file made by age itself. */
#include <sodium.h>

#include "qun/age.h"
#include "unit.h"

static size_t unhex(const char *h, uint8_t *out) {
    size_t n = 0;
    sodium_hex2bin(out, 512, h, strlen(h), NULL, &n, NULL);
    return n;
}

static void test_hkdf(void) {
    static const struct {
        const char *name, *ikm, *salt, *info, *okm;
    } cases[] = {
        {"RFC 5869 A.1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
         "f0f1f2f3f4f5f6f7f8f9",
         "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
        {"RFC 5869 A.2",
         "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
         "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
         "404142434445464748494a4b4c4d4e4f",
         "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
         "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
         "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
         "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
         "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
         "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
         "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
         "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
         "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
        {"RFC 5869 A.3: empty salt and info", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t ikm[128], salt[128], info[128], want[128], got[128];
        size_t ni = unhex(cases[i].ikm, ikm), ns = unhex(cases[i].salt, salt),
               nf = unhex(cases[i].info, info), nw = unhex(cases[i].okm, want);
        CHECKF(qun_hkdf_sha256(ns ? salt : NULL, ns, ikm, ni, info, nf, got, nw) == QUN_OK, cases[i].name);
        CHECKF(memcmp(got, want, nw) == 0, cases[i].name);
    }
    uint8_t big[1];
    CHECK(qun_hkdf_sha256(NULL, 0, big, 1, NULL, 0, big, 255 * 32 + 1) == QUN_BAD_REQUEST);
}

static void test_bech32(void) {
    static const char *valid[] = {
        "A12UEL5L",
        "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    };
    static const char *invalid[] = {
        "\x20"
        "1nwldj5", /* HRP character out of range */
        "\x7f"
        "1axkwrx", /* HRP character out of range */
        "\x80"
        "1eym55h", /* HRP character out of range */
        "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
        "pzry9x0s0muk",  /* no separator */
        "1pzry9x0s0muk", /* empty HRP */
        "x1b4n0q5v",     /* invalid data character */
        "li1dgmt3",      /* too short checksum */
        "de1lg7wt\xff",  /* invalid character in checksum */
        "A1G7SGD8",      /* checksum calculated with uppercase HRP */
        "10a06t8",       /* empty HRP */
        "1qzzfhee",      /* empty HRP */
        "A12uEL5L",      /* mixed case */
    };
    char hrp[100];
    uint8_t data[100];
    size_t n;
    /* Each valid string decodes, and re-encoding its bytes gives it back. */
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        char re[120];
        CHECKF(qun_bech32_decode(valid[i], true, hrp, sizeof hrp, data, sizeof data, &n) == QUN_OK, valid[i]);
        CHECKF(qun_bech32_encode(hrp, data, n, valid[i][0] == 'A', re, sizeof re) == QUN_OK, valid[i]);
        CHECKF(strcmp(re, valid[i]) == 0, valid[i]);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        CHECKF(qun_bech32_decode(invalid[i], true, hrp, sizeof hrp, data, sizeof data, &n) ==
                   QUN_FIELD_INVALID,
               invalid[i]);
}

static void test_keys(void) {
    char id[QUN_AGE_IDENTITY_LEN + 1], rcpt[QUN_AGE_RECIPIENT_LEN + 1], back[QUN_AGE_RECIPIENT_LEN + 1];
    uint8_t sk[32], pk[32], pk2[32];
    qun_err_t err;
    CHECK(qun_age_keygen(id, rcpt) == QUN_OK);
    CHECK(strlen(id) == QUN_AGE_IDENTITY_LEN && strncmp(id, "AGE-SECRET-KEY-1", 16) == 0);
    CHECK(strlen(rcpt) == QUN_AGE_RECIPIENT_LEN && strncmp(rcpt, "age1", 4) == 0);
    CHECK(qun_age_identity_parse(id, sk, &err) == QUN_OK);
    CHECK(qun_age_recipient_parse(rcpt, pk, &err) == QUN_OK);
    crypto_scalarmult_base(pk2, sk);
    CHECK(memcmp(pk, pk2, 32) == 0);
    CHECK(qun_age_identity_recipient(id, back, &err) == QUN_OK);
    CHECK_STR(back, rcpt);
    /* A recipient from age-keygen (the age README's example). */
    CHECK(qun_age_recipient_parse("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", pk,
                                  &err) == QUN_OK);
    /* Wrong case, wrong HRP, identity as recipient and a bad checksum are refused. */
    CHECK(qun_age_recipient_parse("AGE1QL3Z7HJY54PW3HYWW5AYYFG7ZQGVC7W3J2ELW8ZMRJ2KG5SFN9AQMCAC8P", pk,
                                  &err) == QUN_AGE_KEY_INVALID);
    CHECK(qun_age_recipient_parse(id, pk, &err) == QUN_AGE_KEY_INVALID);
    CHECK(qun_age_recipient_parse("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8q", pk,
                                  &err) == QUN_AGE_KEY_INVALID);
    CHECK(qun_age_identity_parse(rcpt, sk, &err) == QUN_AGE_KEY_INVALID);
}

/* A growable in-memory sink and a source over it. */
typedef struct {
    uint8_t *buf;
    size_t len, cap, pos;
} mem_t;

static int mem_write(void *arg, const void *p, size_t n) {
    mem_t *m = arg;
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->buf = realloc(m->buf, m->cap);
    }
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    return 0;
}

static int mem_read(void *arg, void *p, size_t n, size_t *got) {
    mem_t *m = arg;
    /* Hand out odd-sized pieces to exercise the reader's buffering. */
    if (n > 1000) n = 1000 + (m->pos % 7);
    if (n > m->len - m->pos) n = m->len - m->pos;
    memcpy(p, m->buf + m->pos, n);
    m->pos += n;
    *got = n;
    return 0;
}

static void test_roundtrip(size_t size, bool whole) {
    uint8_t sk[2][32], pk[2][32];
    mem_t m = {0};
    qun_err_t err;
    qun_age_enc_t *e = NULL;
    qun_age_dec_t *d = NULL;
    uint8_t *plain = malloc(size + 1), *out = malloc(size + 1);
    randombytes_buf(plain, size);
    for (int i = 0; i < 2; i++) {
        randombytes_buf(sk[i], 32);
        crypto_scalarmult_base(pk[i], sk[i]);
    }
    CHECK(qun_age_enc_new((const uint8_t(*)[32])pk, 2, mem_write, &m, &e, &err) == QUN_OK);
    /* Write in uneven pieces, or all at once (whole chunks are then sealed in place). */
    for (size_t at = 0; at < size;) {
        size_t n = whole ? size : 3000 + at % 5000;
        if (n > size - at) n = size - at;
        CHECK(qun_age_enc_write(e, plain + at, n, &err) == QUN_OK);
        at += n;
    }
    CHECK(qun_age_enc_finish(e, &err) == QUN_OK);
    qun_age_enc_free(e);
    for (int k = 0; k < 2; k++) {
        size_t have = 0, got = 0;
        m.pos = 0;
        CHECK(qun_age_dec_new((const uint8_t(*)[32])sk[k], 1, mem_read, &m, &d, &err) == QUN_OK);
        qun_rc rc;
        while ((rc = qun_age_dec_read(d, out + have, size + 1 - have > 4096 ? 4096 : size + 1 - have, &got,
                                      &err)) == QUN_OK &&
               got > 0)
            have += got;
        CHECK(rc == QUN_OK);
        CHECK(have == size && memcmp(out, plain, size) == 0);
        qun_age_dec_free(d);
    }
    /* Truncating the last byte is a payload error. */
    m.pos = 0;
    m.len--;
    CHECK(qun_age_dec_new((const uint8_t(*)[32])sk[0], 1, mem_read, &m, &d, &err) == QUN_OK);
    size_t got = 0;
    qun_rc rc;
    while ((rc = qun_age_dec_read(d, out, 4096, &got, &err)) == QUN_OK && got > 0) {
    }
    CHECK(rc == QUN_AGE_PAYLOAD_INVALID);
    qun_age_dec_free(d);
    free(m.buf);
    free(plain);
    free(out);
}

/* Round trips at the chunk boundaries (64 KiB), written in small pieces and in one:
 * a failing size is named. */
static void roundtrip_sizes(void) {
    static const size_t sizes[] = {0, 1, 65535, 65536, 65537, 2 * 65536, 2 * 65536 + 1, 300000};
    for (int whole = 0; whole < 2; whole++)
        for (size_t i = 0; i < NROWS(sizes); i++) {
            int before = unit_failures;
            test_roundtrip(sizes[i], whole);
            if (unit_failures != before)
                fprintf(stderr, "[roundtrip_sizes / %zu bytes%s] failed\n", sizes[i],
                        whole ? ", one write" : "");
        }
}

/* Decrypt all of m with a passphrase into out[cap]; *have bytes. */
static qun_rc pass_open(mem_t *m, const char *pass, int max_log_n, uint8_t *out, size_t cap, size_t *have) {
    qun_err_t err;
    qun_age_dec_t *d = NULL;
    size_t got = 0;
    m->pos = 0;
    *have = 0;
    qun_rc rc = qun_age_dec_new_passphrase(pass, strlen(pass), max_log_n, mem_read, m, &d, &err);
    while (rc == QUN_OK && (rc = qun_age_dec_read(d, out + *have, cap - *have, &got, &err)) == QUN_OK && got)
        *have += got;
    qun_age_dec_free(d);
    return rc;
}

/* A passphrase file (one scrypt stanza, C2SP age) round trip at a low work factor, a
 * wrong passphrase, an over-limit work factor, and the stanza's text. */
static void scrypt_roundtrip(void) {
    mem_t m = {0};
    qun_err_t err;
    qun_age_enc_t *e = NULL;
    uint8_t plain[70000], out[70001];
    size_t have = 0;
    randombytes_buf(plain, sizeof plain);
    CHECK(qun_age_enc_new_passphrase("correct horse", 13, 10, mem_write, &m, &e, &err) == QUN_OK);
    CHECK(qun_age_enc_write(e, plain, sizeof plain, &err) == QUN_OK);
    CHECK(qun_age_enc_finish(e, &err) == QUN_OK);
    qun_age_enc_free(e);
    /* The header: the version line, then "-> scrypt <22 base64 characters> 10". */
    CHECK(m.len > 60 && memcmp(m.buf, "age-encryption.org/v1\n-> scrypt ", 32) == 0);
    CHECK(memcmp(m.buf + 32 + 22, " 10\n", 4) == 0);
    CHECK(pass_open(&m, "correct horse", 22, out, sizeof out, &have) == QUN_OK);
    CHECK(have == sizeof plain && memcmp(out, plain, sizeof plain) == 0);
    CHECK(pass_open(&m, "correct horsf", 22, out, sizeof out, &have) == QUN_AGE_NO_MATCH);
    CHECK(pass_open(&m, "correct horse", 9, out, sizeof out, &have) == QUN_AGE_HEADER_INVALID);
    /* An X25519 identity does not open it. */
    uint8_t sk[32];
    qun_age_dec_t *d = NULL;
    randombytes_buf(sk, sizeof sk);
    m.pos = 0;
    CHECK(qun_age_dec_new((const uint8_t(*)[32])sk, 1, mem_read, &m, &d, &err) == QUN_AGE_NO_MATCH);
    /* Out-of-range work factors are refused when writing. */
    char st[QUN_AGE_SCRYPT_STANZA_MAX];
    uint8_t fk[16] = {0};
    CHECK(qun_age_scrypt_stanza("x", 1, 23, fk, st, sizeof st, &err) != QUN_OK);
    CHECK(qun_age_scrypt_stanza("x", 1, 0, fk, st, sizeof st, &err) != QUN_OK);
    CHECK(qun_age_scrypt_stanza("x", 1, 10, fk, st, sizeof st, &err) == QUN_OK);
    CHECK(strncmp(st, "-> scrypt ", 10) == 0 && strlen(st) == 10 + 22 + 4 + 43 + 1);
    free(m.buf);
}

/* A file made by Debian's age 1.1 (`age -e -p`, work factor 18) with the passphrase
 * "correct horse battery staple" opens to its known plaintext; a header with the
 * scrypt stanza next to another stanza is refused. */
static void scrypt_known_answer(void) {
    static const char b64[] =
        "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+"
        "IHNjcnlwdCA3QWJEVXMyQ25RdTM5YUNha1JHaHNRIDE4ClhRWUczTEFpSHg2OVJZaCtsclIxa3UvTFNkZWZJK1pPT01zRGFZZ1Jm"
        "N00KLS0tIEl1ZGthL0pOZEJuWHRHZTBubS9tdDU5SGpKMnpiek9WZjNTaTh2U21vS1UK1BYhlgc+ea+6cDk/"
        "+1LPo6c5af6njUlfrkldKcaUtuf6xUUhQ4n9aAN43KOlqq8KAA==";
    uint8_t file[512], out[64];
    size_t n = 0, have = 0;
    CHECK(sodium_base642bin(file, sizeof file, b64, strlen(b64), NULL, &n, NULL,
                            sodium_base64_VARIANT_ORIGINAL) == 0);
    mem_t m = {file, n, n, 0};
    CHECK(pass_open(&m, "correct horse battery staple", 22, out, sizeof out, &have) == QUN_OK);
    CHECK(have == 17 && memcmp(out, "qun known answer\n", 17) == 0);
    CHECK(pass_open(&m, "correct horse battery stapler", 22, out, sizeof out, &have) == QUN_AGE_NO_MATCH);
    /* Its work factor 18 is above a limit of 17. */
    CHECK(pass_open(&m, "correct horse battery staple", 17, out, sizeof out, &have) ==
          QUN_AGE_HEADER_INVALID);
    /* Two stanzas: the scrypt one and a copy of it (any second stanza). */
    const char *hdr_end = strstr((const char *)file, "\n---");
    const char *first = strstr((const char *)file, "-> scrypt");
    CHECK(hdr_end && first);
    if (hdr_end && first) {
        uint8_t two[700];
        size_t at = (size_t)(hdr_end + 1 - (const char *)file);
        size_t sl = at - (size_t)(first - (const char *)file);
        memcpy(two, file, at);
        memcpy(two + at, first, sl);
        memcpy(two + at + sl, file + at, n - at);
        mem_t m2 = {two, n + sl, n + sl, 0};
        CHECK(pass_open(&m2, "correct horse battery staple", 22, out, sizeof out, &have) ==
              QUN_AGE_HEADER_INVALID);
    }
}

int main(void) {
    if (sodium_init() < 0) return 1;
    RUN(test_hkdf);
    RUN(test_bech32);
    RUN(test_keys);
    RUN(roundtrip_sizes);
    RUN(scrypt_roundtrip);
    RUN(scrypt_known_answer);
    return unit_done("archive/age");
}
