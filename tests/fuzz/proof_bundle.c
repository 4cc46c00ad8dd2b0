/* SPDX-License-Identifier: MIT */
/* libFuzzer target for ledger proof bundles, the files `qun audit prove` writes and
 * `qun audit check` verifies offline (src/qun/cmd_audit.c): the bundle JSON, its
 * verifier key, the C2SP tlog-proof text inside it, the signed checkpoint (signed
 * note) and the RFC 9162 inclusion proof.  The verifier lives in the CLI, so this file
 * includes cmd_audit.c to reach bundle_verify and tlog_proof_parse.
 *
 * Inputs come in two forms:
 *   '{' ...   a bundle as a file holds it, checked as `audit check` does, with the key
 *             the bundle names and with the fixed key below (as with --key);
 *   other     byte 0, then the tree size (8 bytes, little-endian), the root (32 bytes)
 *             and a bundle whose checkpoint the target signs anew with the fixed key
 *             for that size and root, so the proof arithmetic behind the signature is
 *             reached with any index, size and path.
 * Run with QUN_FUZZ_SEEDS=DIR to write the seed corpus (a ledger of 7 fixed entries,
 * a bundle for each, and broken variants) into DIR and exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/qun/cmd_audit.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static qun_note_key_t signer;
static char verifier[256];

/* A fixed Ed25519 key, its id computed as note.c (and the C2SP spec) define it. */
static void make_key(void) {
    unsigned char seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (unsigned char)(i * 7 + 1);
    memset(&signer, 0, sizeof signer);
    snprintf(signer.name, sizeof signer.name, "fuzz.qun.example");
    crypto_sign_seed_keypair(signer.pk, signer.sk, seed);
    crypto_hash_sha256_state st;
    unsigned char h[32], type = 0x01, nl = '\n';
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)signer.name, strlen(signer.name));
    crypto_hash_sha256_update(&st, &nl, 1);
    crypto_hash_sha256_update(&st, &type, 1);
    crypto_hash_sha256_update(&st, signer.pk, 32);
    crypto_hash_sha256_final(&st, h);
    memcpy(signer.key_id, h, 4);
    qun_note_verifier(&signer, verifier, sizeof verifier);
}

/* Both verifications `audit check` can make of one bundle text. */
static void check_text(const char *text, const qun_note_key_t *fixed) {
    json_t *b = json_loads(text, 0, NULL);
    if (!json_is_object(b)) {
        json_decref(b);
        return;
    }
    json_t *facts = NULL;
    char why[300];
    const char *bkey = qun_jstr_or(b, "verifier_key", NULL);
    qun_note_key_t key;
    qun_err_t err = {0};
    if (bkey && qun_note_verifier_parse(bkey, &key, &err) == QUN_OK) {
        /* The key renders to a text that parses to the same key (the text given may
         * differ: upper-case hex in the id is accepted, as Go's note package does). */
        char again[256];
        qun_note_key_t key2;
        qun_note_verifier(&key, again, sizeof again);
        if (qun_note_verifier_parse(again, &key2, &err) != QUN_OK || strcmp(key.name, key2.name) != 0 ||
            memcmp(key.pk, key2.pk, 32) != 0 || memcmp(key.key_id, key2.key_id, 4) != 0)
            abort();
        if (bundle_verify(b, &key, &facts, why) != (facts != NULL)) abort();
        json_decref(facts);
        facts = NULL;
    }
    bool ok = bundle_verify(b, fixed, &facts, why);
    if (ok != (facts != NULL)) abort();
    if (ok && json_integer_value(json_object_get(facts, "index")) >=
                  json_integer_value(json_object_get(facts, "tree_size")))
        abort();
    json_decref(facts);
    json_decref(b);
}

/* The re-signed form: the bundle's checkpoint replaced by a fresh one for (size, root). */
static void check_resigned(const uint8_t *data, size_t size) {
    if (size < 1 + 8 + 32) return;
    uint64_t tree = 0;
    for (int i = 0; i < 8; i++)
        tree |= (uint64_t)data[1 + i] << (8 * i);
    const unsigned char *root = data + 9;
    char *text = strndup((const char *)data + 41, size - 41);
    json_t *b = text ? json_loads(text, 0, NULL) : NULL;
    const char *tlog = qun_jstr_or(b, "tlog_proof", NULL);
    uint64_t index;
    unsigned char proof[QUN_PROOF_MAX][QUN_HASH];
    int n;
    const char *cp, *why;
    if (json_is_object(b) && tlog && tlog_proof_parse(tlog, &index, proof, &n, &cp, &why)) {
        char *note = qun_note_checkpoint(&signer, tree, root);
        char *fresh = note ? tlog_proof_text(index, (const unsigned char(*)[QUN_HASH])proof, n, note) : NULL;
        if (!fresh) abort();
        json_object_set_new(b, "tlog_proof", json_string(fresh));
        char w[300];
        json_t *facts = NULL;
        bool ok = bundle_verify(b, &signer, &facts, w);
        if (ok != (facts != NULL) || (ok && index >= tree)) abort();
        json_decref(facts);
        free(fresh);
        free(note);
    }
    json_decref(b);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > (1u << 20) || memchr(data, '\0', size)) return 0; /* read_text refuses NUL */
    if (data[0] == '{') {
        char *text = strndup((const char *)data, size);
        if (!text) return 0;
        check_text(text, &signer);
        free(text);
    } else {
        check_resigned(data, size);
    }
    return 0;
}

/* ---- the seed corpus ---- */

static void put(const char *dir, const char *name, const void *p, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static char *bundle_text(const char *group, uint64_t index, const char *entry, const char *tlog,
                         const char *vk) {
    json_t *b = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "format", BUNDLE_FORMAT, "group", group, "index",
                          (json_int_t)index, "entry", entry, "verifier_key", vk, "tlog_proof", tlog);
    char *t = json_dumps(b, JSON_INDENT(2));
    json_decref(b);
    return t;
}

static void write_seeds(const char *dir) {
    enum { N = 7 };
    static const char *const events[N] = {"group.created",  "member.added",   "dissolution.requested",
                                          "export.content", "member.removed", "dissolution.cancelled",
                                          "group.created"};
    char *entries[N];
    unsigned char leaves[N][QUN_HASH];
    for (int i = 0; i < N; i++) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:I, s:I}", "actor", "u_owner", "event",
                              events[i], "group", i == 6 ? "g_other" : "g_fuzz", "old_state",
                              i ? "active" : NULL, "new_state", "active", "params_digest",
                              "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "seq",
                              (json_int_t)i, "time", (json_int_t)1700000000 + i);
        entries[i] = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(e);
        qun_merkle_leaf(leaves[i], entries[i], strlen(entries[i]));
    }
    leaves_t t = {(const unsigned char(*)[QUN_HASH])leaves};
    static const struct {
        uint64_t index, size;
        const char *name;
    } cases[] = {{0, 1, "one_entry"}, {0, 7, "first_of_7"}, {3, 7, "middle_of_7"},
                 {5, 6, "last_of_6"}, {6, 7, "last_of_7"},  {2, 4, "perfect_4"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint64_t idx = cases[c].index, sz = cases[c].size;
        unsigned char root[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
        int n = 0;
        qun_err_t err;
        root_of((const unsigned char(*)[QUN_HASH])leaves, sz, root);
        if (qun_merkle_inclusion(perfect_from_leaves, &t, idx, sz, proof, &n, &err) != QUN_OK) exit(1);
        char *note = qun_note_checkpoint(&signer, sz, root);
        char *tlog = tlog_proof_text(idx, (const unsigned char(*)[QUN_HASH])proof, n, note);
        char *b = bundle_text(idx == 6 ? "g_other" : "g_fuzz", idx, entries[idx], tlog, verifier);
        put(dir, cases[c].name, b, strlen(b));
        /* The re-signed form of the same bundle. */
        size_t bl = strlen(b);
        unsigned char *r = malloc(41 + bl);
        r[0] = 0x01;
        for (int i = 0; i < 8; i++)
            r[1 + i] = (unsigned char)(sz >> (8 * i));
        memcpy(r + 9, root, 32);
        memcpy(r + 41, b, bl);
        char name[64];
        snprintf(name, sizeof name, "resigned_%s", cases[c].name);
        put(dir, name, r, 41 + bl);
        free(r);
        if (c == 2) { /* broken variants of the middle entry */
            char *v;
            v = bundle_text("g_other", idx, entries[idx], tlog, verifier);
            put(dir, "wrong_group", v, strlen(v));
            free(v);
            v = bundle_text("g_fuzz", idx, entries[idx + 1], tlog, verifier);
            put(dir, "wrong_entry", v, strlen(v));
            free(v);
            char *bad = strdup(tlog);
            char *line = strstr(bad, "index 3\n") + 8;
            line[5] = '!';
            v = bundle_text("g_fuzz", idx, entries[idx], bad, verifier);
            put(dir, "bad_base64_line", v, strlen(v));
            free(v);
            free(bad);
            char *ext = NULL;
            if (asprintf(&ext, "%s\nextra opaque-data\n%s", TLOG_PROOF_HEADER,
                         tlog + strlen(TLOG_PROOF_HEADER) + 1) < 0)
                exit(1);
            v = bundle_text("g_fuzz", idx, entries[idx], ext, verifier);
            put(dir, "extra_line", v, strlen(v));
            free(v);
            free(ext);
            v = bundle_text("g_fuzz", idx, entries[idx], tlog,
                            "other.example+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
            put(dir, "other_key", v, strlen(v));
            free(v);
        }
        free(b);
        free(tlog);
        free(note);
    }
    for (int i = 0; i < N; i++)
        free(entries[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (sodium_init() < 0) abort();
    make_key();
    const char *seeds = getenv("QUN_FUZZ_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}
