/* SPDX-License-Identifier: MIT */
/* Unit tests of src/ledger: the RFC 6962 reference vectors (the certificate-
 * transparency test corpus), and, for every tree size 1..300, roots and every
 * inclusion and consistency proof of the stored ledger against a naive recursive
 * implementation written here from the RFC's definitions; plus tamper detection and
 * signed checkpoints round-tripping. */
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qun/ledger.h"
#include "unit.h"

#define N 300

static unsigned char leaves[N][QUN_HASH];
static unsigned char memo[N + 1][N + 1][QUN_HASH]; /* ref_mth results, to keep the test fast */
static bool memo_ok[N + 1][N + 1];

/* MTH(D[lo:hi]) straight from the RFC definition, over leaf hashes. */
static void ref_mth(uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH]) {
    if (memo_ok[lo][hi]) {
        memcpy(out, memo[lo][hi], QUN_HASH);
        return;
    }
    if (hi - lo == 1) {
        memcpy(out, leaves[lo], QUN_HASH);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    unsigned char l[QUN_HASH], r[QUN_HASH];
    ref_mth(lo, lo + k, l);
    ref_mth(lo + k, hi, r);
    qun_merkle_node(out, l, r);
    memcpy(memo[lo][hi], out, QUN_HASH);
    memo_ok[lo][hi] = true;
}

static void ref_path(uint64_t m, uint64_t lo, uint64_t hi, unsigned char p[][QUN_HASH], int *n) {
    if (hi - lo == 1) return;
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    if (m < k) {
        ref_path(m, lo, lo + k, p, n);
        ref_mth(lo + k, hi, p[(*n)++]);
    } else {
        ref_path(m - k, lo + k, hi, p, n);
        ref_mth(lo, lo + k, p[(*n)++]);
    }
}

static void ref_sub(uint64_t m, uint64_t lo, uint64_t hi, int b, unsigned char p[][QUN_HASH], int *n) {
    if (m == hi - lo) {
        if (!b) ref_mth(lo, hi, p[(*n)++]);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    if (m <= k) {
        ref_sub(m, lo, lo + k, b, p, n);
        ref_mth(lo + k, hi, p[(*n)++]);
    } else {
        ref_sub(m - k, lo + k, hi, 0, p, n);
        ref_mth(lo, lo + k, p[(*n)++]);
    }
}

static void hex2bin(unsigned char *out, const char *hex) {
    sodium_hex2bin(out, QUN_HASH, hex, 64, NULL, NULL, NULL);
}

static void rfc_vectors(void) {
    static const char *in[8] = {"",
                                "\x00",
                                "\x10",
                                "\x20\x21",
                                "\x30\x31",
                                "\x40\x41\x42\x43",
                                "\x50\x51\x52\x53\x54\x55\x56\x57",
                                "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
    static const size_t len[8] = {0, 1, 1, 2, 2, 4, 8, 16};
    static const char *roots[8] = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                                   "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                                   "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                                   "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                                   "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                                   "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                                   "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                                   "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
    for (int i = 0; i < 8; i++)
        qun_merkle_leaf(leaves[i], in[i], len[i]);
    for (int n = 1; n <= 8; n++) {
        unsigned char got[QUN_HASH], want[QUN_HASH];
        ref_mth(0, (uint64_t)n, got);
        hex2bin(want, roots[n - 1]);
        CHECK(memcmp(got, want, QUN_HASH) == 0);
    }
    /* PATH(0, D[8]) and PROOF(1, D[8]), PROOF(6, D[8]), PROOF(2, D[5]) from the corpus. */
    unsigned char p[QUN_PROOF_MAX][QUN_HASH], w[QUN_HASH];
    int n = 0;
    ref_sub(6, 0, 8, 1, p, &n);
    CHECK(n == 3);
    hex2bin(w, "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a");
    CHECK(memcmp(p[0], w, QUN_HASH) == 0);
    hex2bin(w, "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0");
    CHECK(memcmp(p[1], w, QUN_HASH) == 0);
    hex2bin(w, "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7");
    CHECK(memcmp(p[2], w, QUN_HASH) == 0);
    n = 0;
    ref_sub(2, 0, 5, 1, p, &n);
    CHECK(n == 2);
    hex2bin(w, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
    CHECK(memcmp(p[0], w, QUN_HASH) == 0);
    hex2bin(w, "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b");
    CHECK(memcmp(p[1], w, QUN_HASH) == 0);
    n = 0;
    ref_path(0, 0, 8, p, &n);
    hex2bin(w, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7");
    CHECK(n == 3 && memcmp(p[0], w, QUN_HASH) == 0);
}

static qun_db_t *db;
static unsigned char roots[N + 1][QUN_HASH]; /* of the stored ledger, per size */

/* N entries appended; each size's stored root equals the reference MTH. */
static void stored_roots(void) {
    qun_err_t err;
    memset(memo_ok, 0, sizeof memo_ok); /* the vectors used other leaves */
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    for (int i = 0; i < N; i++) {
        json_t *f = json_pack("{s:i}", "n", i);
        int64_t idx;
        CHECK(qun_ledger_append(db, "test.event", "g_x", "u_y", "a", "b", f, &idx, &err) == QUN_OK);
        CHECK(idx == i);
        json_decref(f);
        qun_q_t *q;
        CHECK(qun_db_run(db, &q, &err, "SELECT entry FROM ledger_entries WHERE idx = $1", "i", (int64_t)i) ==
              QUN_ROW);
        const char *e = qun_q_col_text(q, 0);
        qun_merkle_leaf(leaves[i], e, strlen(e));
        qun_q_done(q);
    }
    CHECK(qun_db_exec(db, "COMMIT", &err) == QUN_OK);

    for (uint64_t size = 1; size <= N; size++) {
        unsigned char want[QUN_HASH];
        ref_mth(0, size, want);
        CHECK(qun_ledger_root_at(db, size, roots[size], &err) == QUN_OK);
        CHECK(memcmp(roots[size], want, QUN_HASH) == 0);
    }
    uint64_t head;
    unsigned char hroot[QUN_HASH];
    CHECK(qun_ledger_head(db, &head, hroot, &err) == QUN_OK && head == N &&
          memcmp(hroot, roots[N], QUN_HASH) == 0);
}

/* Every inclusion and consistency proof of every size equals the reference and
 * verifies; a wrong leaf, index, root or hash fails. */
static void proofs_against_reference(void) {
    qun_err_t err;
    unsigned char p[QUN_PROOF_MAX][QUN_HASH], r[QUN_PROOF_MAX][QUN_HASH];
    int bad = 0;
    for (uint64_t size = 1; size <= N; size++) {
        for (uint64_t m = 0; m < size; m++) {
            int n = 0, rn = 0;
            if (qun_ledger_inclusion(db, m, size, p, &n, &err) != QUN_OK) bad++;
            ref_path(m, 0, size, r, &rn);
            if (n != rn || memcmp(p, r, (size_t)n * QUN_HASH) != 0) bad++;
            if (!qun_merkle_verify_inclusion(leaves[m], m, size, p, n, roots[size])) bad++;
            /* A wrong leaf, index or root must fail. */
            if (qun_merkle_verify_inclusion(leaves[(m + 1) % N], m, size, p, n, roots[size])) bad++;
            if (size > 1 && qun_merkle_verify_inclusion(leaves[m], (m + 1) % size, size, p, n, roots[size]))
                bad++;
        }
        for (uint64_t old = 1; old <= size; old++) {
            int n = 0, rn = 0;
            if (qun_ledger_consistency(db, old, size, p, &n, &err) != QUN_OK) bad++;
            ref_sub(old, 0, size, 1, r, &rn);
            if (n != rn || memcmp(p, r, (size_t)n * QUN_HASH) != 0) bad++;
            if (!qun_merkle_verify_consistency(old, size, roots[old], roots[size], p, n)) bad++;
            if (old < size && qun_merkle_verify_consistency(old, size, roots[size], roots[size], p, n)) bad++;
            if (n > 0) {
                p[n - 1][0] ^= 1;
                if (qun_merkle_verify_consistency(old, size, roots[old], roots[size], p, n)) bad++;
            }
        }
    }
    CHECK(bad == 0);
}

/* Proofs of impossible ranges are refused. */
static void bad_proof_ranges(void) {
    qun_err_t err;
    unsigned char p[QUN_PROOF_MAX][QUN_HASH];
    CHECK(qun_ledger_inclusion(db, 5, 5, p, &(int){0}, &err) == QUN_FIELD_INVALID);
    CHECK(qun_ledger_consistency(db, 0, 5, p, &(int){0}, &err) == QUN_FIELD_INVALID);
}

/* Signed checkpoints: sign, verify with the verifier text, reject tampering. */
static void signed_checkpoints(void) {
    qun_err_t err;
    char path[] = "/tmp/qun-ledger-key-XXXXXX";
    close(mkstemp(path));
    unlink(path);
    qun_note_key_t key, again, ver;
    CHECK(qun_note_key_load_or_create(path, NULL, &key, &err) == QUN_OK);
    CHECK(qun_note_key_load_or_create(path, NULL, &again, &err) == QUN_OK);
    CHECK(memcmp(key.pk, again.pk, 32) == 0 && strcmp(key.name, again.name) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    char vtext[256];
    qun_note_verifier(&key, vtext, sizeof vtext);
    CHECK(qun_note_verifier_parse(vtext, &ver, &err) == QUN_OK);
    char *note = qun_note_checkpoint(&key, N, roots[N]);
    uint64_t size;
    unsigned char root[QUN_HASH];
    CHECK(qun_note_verify(&ver, note, &size, root, &err) == QUN_OK);
    CHECK(size == N && memcmp(root, roots[N], QUN_HASH) == 0);
    char *nl = strchr(strchr(note, '\n') + 1, '\n');
    nl[-1] = nl[-1] == '0' ? '1' : '0'; /* change the tree size */
    CHECK(qun_note_verify(&ver, note, &size, root, &err) == QUN_FIELD_INVALID);
    free(note);
    unlink(path);
}

/* A named origin begins the key's name and stays with the key; a bad one is refused. */
static void named_origin(void) {
    qun_err_t err;
    char path[] = "/tmp/qun-ledger-key-XXXXXX", origin[128];
    close(mkstemp(path));
    unlink(path);
    qun_note_key_t key, again;
    CHECK(qun_note_key_load_or_create(path, "chat.example.org", &key, &err) == QUN_OK);
    CHECK(strncmp(key.name, "chat.example.org/ledger/", 24) == 0 && strlen(key.name) == 24 + 12);
    CHECK(qun_note_key_load_or_create(path, "other.example.org", &again, &err) == QUN_OK);
    qun_note_origin_of(&again, origin, sizeof origin);
    CHECK(strcmp(origin, "chat.example.org") == 0);
    unlink(path);
    CHECK(qun_note_key_load_or_create(path, "two words", &key, &err) == QUN_FIELD_INVALID);
    CHECK(qun_note_key_load_or_create(path, "a+b", &key, &err) == QUN_FIELD_INVALID);
    CHECK(access(path, F_OK) != 0);
    CHECK(qun_note_origin_ok("qun.local") && qun_note_origin_ok("[::1]:8448") && !qun_note_origin_ok(""));
}

int main(void) {
    qun_err_t err;
    RUN(rfc_vectors);
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(stored_roots);
    RUN(proofs_against_reference);
    RUN(bad_proof_ranges);
    RUN(signed_checkpoints);
    RUN(named_origin);
    qun_db_close(db);
    return unit_done("ledger/merkle");
}
