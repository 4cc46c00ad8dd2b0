/* SPDX-License-Identifier: MIT */
/* Checkpoints in the C2SP tlog-checkpoint format (origin, tree size, base64 root
 * hash, one per line) signed as C2SP signed notes: the text, a blank line, then
 * "— <key name> <base64(key id || Ed25519 signature)>".  The key id is the first four
 * bytes of SHA-256(key name || 0x0A || 0x01 || public key), as the spec and Go's
 * sumdb/note compute it, so their verifiers accept our notes.  The signer key is kept
 * in Go's text form "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>", mode 0600. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/ledger.h"
#include "qun/util.h"

static const char EM_DASH[] = "\xe2\x80\x94 ";

static void key_id(qun_note_key_t *k) {
    crypto_hash_sha256_state st;
    unsigned char h[32], type = 0x01, nl = '\n';
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)k->name, strlen(k->name));
    crypto_hash_sha256_update(&st, &nl, 1);
    crypto_hash_sha256_update(&st, &type, 1);
    crypto_hash_sha256_update(&st, k->pk, 32);
    crypto_hash_sha256_final(&st, h);
    memcpy(k->key_id, h, 4);
}

static bool name_ok(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == '+') return false;
    return true;
}

bool qun_note_origin_ok(const char *origin) {
    size_t n = strlen(origin);
    if (n == 0 || n > QUN_LEDGER_ORIGIN_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)origin[i]) && !strchr(".-:[]_/", origin[i])) return false;
    return true;
}

void qun_note_origin_of(const qun_note_key_t *key, char *out, size_t size) {
    const char *tail = strstr(key->name, "/ledger/");
    size_t n = tail ? (size_t)(tail - key->name) : strlen(key->name);
    snprintf(out, size, "%.*s", (int)n, key->name);
}

/* Parse "<name>+<hex id>+<base64(0x01 || 32 bytes)>" into name and the 32 bytes. */
static qun_rc parse_key_text(const char *text, qun_note_key_t *k, unsigned char bytes[32], qun_err_t *err) {
    const char *p1 = strchr(text, '+'), *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
    if (!p1 || !p2 || (size_t)(p1 - text) >= sizeof k->name || p2 - p1 - 1 != 8)
        return qun_fail(err, QUN_FIELD_INVALID, "key is not <name>+<hex id>+<base64 key>");
    memcpy(k->name, text, (size_t)(p1 - text));
    k->name[p1 - text] = '\0';
    unsigned char raw[64], id[4];
    size_t n;
    const char *end;
    if (sodium_hex2bin(id, 4, p1 + 1, 8, NULL, NULL, NULL) != 0 ||
        sodium_base642bin(raw, sizeof raw, p2 + 1, strcspn(p2 + 1, "\r\n"), NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != 33 || raw[0] != 0x01 || !name_ok(k->name))
        return qun_fail(err, QUN_FIELD_INVALID, "key has a bad id, encoding or name");
    memcpy(bytes, raw + 1, 32);
    memcpy(k->key_id, id, 4);
    return QUN_OK;
}

qun_rc qun_note_key_load_or_create(const char *path, const char *origin, qun_note_key_t *key,
                                   qun_err_t *err) {
    memset(key, 0, sizeof *key);
    if (!origin) origin = QUN_LEDGER_ORIGIN_DEFAULT;
    if (!qun_note_origin_ok(origin))
        return qun_fail(err, QUN_FIELD_INVALID,
                        "\"%s\" is not a ledger origin (a host name, up to %d characters)", origin,
                        QUN_LEDGER_ORIGIN_MAX);
    char text[512];
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        if (strncmp(text, "PRIVATE+KEY+", 12) != 0)
            return qun_fail(err, QUN_STORE, "%s is not a ledger signer key", path);
        unsigned char seed[32], want[4];
        if (parse_key_text(text + 12, key, seed, err) != QUN_OK) return QUN_STORE;
        memcpy(want, key->key_id, 4);
        crypto_sign_seed_keypair(key->pk, key->sk, seed);
        sodium_memzero(seed, sizeof seed);
        key_id(key);
        if (memcmp(want, key->key_id, 4) != 0)
            return qun_fail(err, QUN_STORE, "%s: key id does not match the key", path);
        return QUN_OK;
    }
    if (errno != ENOENT) return qun_fail(err, QUN_STORE, "cannot read %s: %s", path, strerror(errno));
    unsigned char rnd[6], seed[32];
    char hex[13];
    randombytes_buf(rnd, sizeof rnd);
    qun_hex(hex, rnd, sizeof rnd);
    snprintf(key->name, sizeof key->name, "%s/ledger/%s", origin, hex);
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(key->pk, key->sk, seed);
    key_id(key);
    unsigned char raw[33] = {0x01};
    memcpy(raw + 1, seed, 32);
    char b64[64], idhex[9];
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    qun_hex(idhex, key->key_id, 4);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(raw, sizeof raw);
    int n = snprintf(text, sizeof text, "PRIVATE+KEY+%s+%s+%s\n", key->name, idhex, b64);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, (size_t)n) != n || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, path) != 0) {
        if (fd >= 0) close(fd);
        sodium_memzero(text, sizeof text);
        return qun_fail(err, QUN_STORE, "cannot write %s: %s", path, strerror(errno));
    }
    sodium_memzero(text, sizeof text);
    return QUN_OK;
}

void qun_note_verifier(const qun_note_key_t *key, char *out, size_t size) {
    unsigned char raw[33] = {0x01};
    memcpy(raw + 1, key->pk, 32);
    char b64[64], idhex[9];
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    qun_hex(idhex, key->key_id, 4);
    snprintf(out, size, "%s+%s+%s", key->name, idhex, b64);
}

qun_rc qun_note_verifier_parse(const char *text, qun_note_key_t *key, qun_err_t *err) {
    memset(key, 0, sizeof *key);
    unsigned char want[4];
    qun_rc rc = parse_key_text(text, key, key->pk, err);
    if (rc != QUN_OK) return rc;
    memcpy(want, key->key_id, 4);
    key_id(key);
    if (memcmp(want, key->key_id, 4) != 0)
        return qun_fail(err, QUN_FIELD_INVALID, "verifier key id does not match its key");
    return QUN_OK;
}

char *qun_note_checkpoint(const qun_note_key_t *key, uint64_t size, const unsigned char root[QUN_HASH]) {
    char b64root[64], text[512], sigb64[128];
    sodium_bin2base64(b64root, sizeof b64root, root, QUN_HASH, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(text, sizeof text, "%s\n%llu\n%s\n", key->name, (unsigned long long)size, b64root);
    unsigned char sig[4 + crypto_sign_BYTES];
    memcpy(sig, key->key_id, 4);
    crypto_sign_detached(sig + 4, NULL, (const unsigned char *)text, (size_t)n, key->sk);
    sodium_bin2base64(sigb64, sizeof sigb64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    char *out = NULL;
    if (asprintf(&out, "%s\n%s%s %s\n", text, EM_DASH, key->name, sigb64) < 0) return NULL;
    return out;
}

qun_rc qun_note_verify(const qun_note_key_t *key, const char *note, uint64_t *size,
                       unsigned char root[QUN_HASH], qun_err_t *err) {
    const char *sep = NULL;
    for (const char *p = strstr(note, "\n\n"); p; p = strstr(p + 1, "\n\n"))
        sep = p;
    if (!sep) return qun_fail(err, QUN_FIELD_INVALID, "not a signed note: no blank line");
    size_t text_len = (size_t)(sep - note) + 1;
    bool verified = false;
    for (const char *line = sep + 2; *line;) {
        const char *nl = strchr(line, '\n');
        if (!nl) return qun_fail(err, QUN_FIELD_INVALID, "signature line without newline");
        size_t dl = sizeof EM_DASH - 1, nlen = strlen(key->name);
        if ((size_t)(nl - line) > dl + nlen + 1 && memcmp(line, EM_DASH, dl) == 0 &&
            memcmp(line + dl, key->name, nlen) == 0 && line[dl + nlen] == ' ') {
            unsigned char sig[128];
            size_t n;
            const char *b = line + dl + nlen + 1;
            if (sodium_base642bin(sig, sizeof sig, b, (size_t)(nl - b), NULL, &n, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) == 0 &&
                n == 4 + crypto_sign_BYTES && memcmp(sig, key->key_id, 4) == 0) {
                if (crypto_sign_verify_detached(sig + 4, (const unsigned char *)note, text_len, key->pk) != 0)
                    return qun_fail(err, QUN_FIELD_INVALID, "the checkpoint's signature does not verify");
                verified = true;
                break;
            }
        }
        line = nl + 1;
    }
    if (!verified) return qun_fail(err, QUN_FIELD_INVALID, "no signature by %s on the checkpoint", key->name);
    /* The text: origin, size, root. */
    char origin[160], b64[80];
    unsigned long long sz;
    if (sscanf(note, "%159[^\n]\n%llu\n%79[^\n]\n", origin, &sz, b64) != 3 || strcmp(origin, key->name) != 0)
        return qun_fail(err, QUN_FIELD_INVALID, "the checkpoint text is not origin, size, root");
    size_t n;
    if (sodium_base642bin(root, QUN_HASH, b64, strlen(b64), NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        n != QUN_HASH)
        return qun_fail(err, QUN_FIELD_INVALID, "the checkpoint's root hash is not 32 bytes of base64");
    *size = sz;
    return QUN_OK;
}
