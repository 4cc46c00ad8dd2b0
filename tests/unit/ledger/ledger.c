/* SPDX-License-Identifier: MIT */
/* Unit tests of src/ledger/ledger.c on an in-memory store: the empty tree, the exact
 * canonical entry an append stores, indexes without gaps (also after a rolled-back
 * append), the stored subtree hashes, earlier roots that never change as the ledger
 * grows, consistency proofs between every two heads, and inclusion proofs of every
 * entry against a signed checkpoint. */
#include <sodium.h>
#include <unistd.h>

#include "qun/ledger.h"
#include "qun/util.h"
#include "unit.h"
#include "unit_store.h"

static qun_db_t *db;

/* The stored entry text at idx into out (size bytes); false when there is none. */
static bool entry_at(int64_t idx, char *out, size_t size) {
    qun_q_t *q;
    qun_err_t err;
    if (qun_db_run(db, &q, &err, "SELECT entry FROM ledger_entries WHERE idx = $1", "i", idx) != QUN_ROW)
        return false;
    snprintf(out, size, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return true;
}

static void sha256_hex_of(const char *s, char out[65]) {
    qun_sha256_hex(out, s, strlen(s));
}

/* An empty ledger has size 0 and the hash of the empty string as its root (RFC 6962). */
static void empty_tree(void) {
    qun_err_t err;
    uint64_t size = 99;
    unsigned char root[QUN_HASH], want[QUN_HASH];
    CHECK(qun_ledger_head(db, &size, root, &err) == QUN_OK);
    CHECK(size == 0);
    sodium_hex2bin(want, sizeof want, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 64,
                   NULL, NULL, NULL);
    CHECK(memcmp(root, want, QUN_HASH) == 0);
    CHECK(qun_ledger_root_at(db, 0, root, &err) == QUN_OK && memcmp(root, want, QUN_HASH) == 0);
}

/* Each append stores exactly this canonical entry (compact JSON, sorted keys): the
 * event's own fields, then seq, time, event, group, actor, the states and the
 * SHA-256 of the canonical fields.  Rows walked in order: seq is the row number. */
static void canonical_entries(void) {
    static const struct {
        const char *name, *event, *group, *actor, *old_state, *new_state;
        const char *fields; /* JSON, or NULL for none */
        const char *canon;  /* the canonical fields the digest is of */
        const char *want;   /* the entry, with %s for the digest and %lld for the time */
    } rows[] = {
        {"all members set", "group.created", "g_1", "u_1", NULL, "active",
         "{\"name\":\"n\",\"kind\":\"standard\"}", "{\"kind\":\"standard\",\"name\":\"n\"}",
         "{\"actor\":\"u_1\",\"event\":\"group.created\",\"group\":\"g_1\",\"kind\":\"standard\",\"name\":"
         "\"n\","
         "\"new_state\":\"active\",\"old_state\":null,\"params_digest\":\"%s\",\"seq\":0,\"time\":%lld}"},
        {"no fields, no group, no actor", "server.note", NULL, NULL, NULL, NULL, NULL, "{}",
         "{\"actor\":null,\"event\":\"server.note\",\"group\":null,\"new_state\":null,\"old_state\":null,"
         "\"params_digest\":\"%s\",\"seq\":1,\"time\":%lld}"},
        {"nested and unicode fields", "dissolution.requested", "g_2", "u_2", "active", "pending",
         "{\"z\":[1,2],\"a\":{\"y\":\"中文\",\"b\":true}}", "{\"a\":{\"b\":true,\"y\":\"中文\"},\"z\":[1,2]}",
         "{\"a\":{\"b\":true,\"y\":\"中文\"},\"actor\":\"u_2\",\"event\":\"dissolution.requested\",\"group\":"
         "\"g_2\","
         "\"new_state\":\"pending\",\"old_state\":\"active\",\"params_digest\":\"%s\",\"seq\":2,\"time\":%"
         "lld,"
         "\"z\":[1,2]}"},
    };
    for (size_t r = 0; r < NROWS(rows); r++) {
        qun_err_t err;
        json_t *f = rows[r].fields ? json_loads(rows[r].fields, 0, NULL) : NULL;
        int64_t idx = -1, t0 = qun_now();
        CHECKF(qun_ledger_append(db, rows[r].event, rows[r].group, rows[r].actor, rows[r].old_state,
                                 rows[r].new_state, f, &idx, &err) == QUN_OK,
               rows[r].name);
        int64_t t1 = qun_now();
        json_decref(f);
        CHECKF(idx == (int64_t)r, rows[r].name);
        char got[1024] = "", want[1024], digest[65];
        CHECKF(entry_at(idx, got, sizeof got), rows[r].name);
        json_t *e = json_loads(got, 0, NULL);
        long long t = (long long)json_integer_value(json_object_get(e, "time"));
        json_decref(e);
        CHECKF(t >= t0 && t <= t1, rows[r].name);
        sha256_hex_of(rows[r].canon, digest);
        snprintf(want, sizeof want, rows[r].want, digest, t);
        if (strcmp(got, want) != 0) fprintf(stderr, "  got  %s\n  want %s\n", got, want);
        CHECKF(strcmp(got, want) == 0, rows[r].name);
        /* The leaf stored for it is H(0x00 || entry). */
        unsigned char leaf[QUN_HASH];
        qun_merkle_leaf(leaf, got, strlen(got));
        qun_q_t *q;
        size_t n = 0;
        CHECKF(qun_db_run(db, &q, &err, "SELECT hash FROM ledger_nodes WHERE level = 0 AND idx = $1", "i",
                          idx) == QUN_ROW,
               rows[r].name);
        const void *h = qun_q_col_blob(q, 0, &n);
        CHECKF(n == QUN_HASH && memcmp(h, leaf, QUN_HASH) == 0, rows[r].name);
        qun_q_done(q);
    }
}

/* An append rolled back with its transaction leaves no trace: the next one takes the
 * same index, and the head is as before. */
static void rolled_back_append(void) {
    qun_err_t err;
    uint64_t before, after;
    unsigned char r0[QUN_HASH], r1[QUN_HASH];
    int64_t idx;
    CHECK(qun_ledger_head(db, &before, r0, &err) == QUN_OK);
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_ledger_append(db, "test.rolled_back", NULL, NULL, NULL, NULL, NULL, &idx, &err) == QUN_OK);
    CHECK(idx == (int64_t)before);
    CHECK(qun_db_exec(db, "ROLLBACK", &err) == QUN_OK);
    CHECK(qun_ledger_head(db, &after, r1, &err) == QUN_OK);
    CHECK(after == before && memcmp(r0, r1, QUN_HASH) == 0);
    CHECK(qun_ledger_append(db, "test.kept", NULL, NULL, NULL, NULL, NULL, &idx, &err) == QUN_OK);
    CHECK(idx == (int64_t)before);
    CHECK(unit_count(db, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'test.rolled_back'") == 0);
}

static int popcount64(uint64_t v) {
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

/* Growing the ledger to 100 entries one append at a time: every earlier root stays
 * what it was, each head is consistent with every earlier head, and the store holds
 * exactly the complete perfect subtrees (2n - popcount(n) nodes). */
static void consistency_across_appends(void) {
    enum { GROW = 100 };
    qun_err_t err;
    static unsigned char heads[GROW + 1][QUN_HASH];
    uint64_t start, size;
    CHECK(qun_ledger_head(db, &start, heads[0], &err) == QUN_OK);
    CHECK(start == 4);
    int bad_roots = 0, bad_proofs = 0, bad_nodes = 0;
    for (int i = 1; i <= GROW; i++) {
        json_t *f = json_pack("{s:i}", "i", i);
        CHECK(qun_ledger_append(db, "test.grow", "g_x", "u_x", NULL, NULL, f, NULL, &err) == QUN_OK);
        json_decref(f);
        CHECK(qun_ledger_head(db, &size, heads[i], &err) == QUN_OK);
        CHECK(size == start + (uint64_t)i);
        if (unit_count(db, "SELECT COUNT(*) FROM ledger_nodes") !=
            (int64_t)(2 * size - (uint64_t)popcount64(size)))
            bad_nodes++;
        for (int k = 0; k < i; k++) {
            unsigned char then[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
            int n = 0;
            uint64_t old = start + (uint64_t)k;
            if (qun_ledger_root_at(db, old, then, &err) != QUN_OK || memcmp(then, heads[k], QUN_HASH) != 0)
                bad_roots++;
            if (qun_ledger_consistency(db, old, size, proof, &n, &err) != QUN_OK ||
                !qun_merkle_verify_consistency(old, size, heads[k], heads[i], proof, n))
                bad_proofs++;
        }
    }
    CHECK(bad_roots == 0);
    CHECK(bad_proofs == 0);
    CHECK(bad_nodes == 0);
}

/* A checkpoint of the head, signed and verified with the verifier key text; every
 * entry's inclusion proof verifies against its root, and a changed entry does not. */
static void entries_verifiable_against_signed_head(void) {
    qun_err_t err;
    char path[] = "/tmp/qun-unit-ledger-key-XXXXXX";
    close(mkstemp(path));
    unlink(path);
    qun_note_key_t key, ver;
    CHECK(qun_note_key_load_or_create(path, NULL, &key, &err) == QUN_OK);
    char vtext[256];
    qun_note_verifier(&key, vtext, sizeof vtext);
    CHECK(qun_note_verifier_parse(vtext, &ver, &err) == QUN_OK);
    uint64_t size, signed_size = 0;
    unsigned char root[QUN_HASH], signed_root[QUN_HASH];
    CHECK(qun_ledger_head(db, &size, root, &err) == QUN_OK);
    char *note = qun_note_checkpoint(&key, size, root);
    CHECK(note != NULL);
    CHECK(qun_note_verify(&ver, note, &signed_size, signed_root, &err) == QUN_OK);
    CHECK(signed_size == size && memcmp(signed_root, root, QUN_HASH) == 0);
    free(note);
    int bad = 0;
    for (uint64_t i = 0; i < size; i++) {
        char e[1024];
        unsigned char leaf[QUN_HASH], proof[QUN_PROOF_MAX][QUN_HASH];
        int n = 0;
        if (!entry_at((int64_t)i, e, sizeof e)) {
            bad++;
            continue;
        }
        qun_merkle_leaf(leaf, e, strlen(e));
        if (qun_ledger_inclusion(db, i, size, proof, &n, &err) != QUN_OK) bad++;
        if (!qun_merkle_verify_inclusion(leaf, i, size, proof, n, signed_root)) bad++;
        e[strlen(e) - 2] ^= 1; /* a digit of the time */
        qun_merkle_leaf(leaf, e, strlen(e));
        if (qun_merkle_verify_inclusion(leaf, i, size, proof, n, signed_root)) bad++;
    }
    CHECK(size == 104);
    CHECK(bad == 0);
    unlink(path);
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(empty_tree);
    RUN(canonical_entries);
    RUN(rolled_back_append);
    RUN(consistency_across_appends);
    RUN(entries_verifiable_against_signed_head);
    qun_db_close(db);
    return unit_done("ledger/ledger");
}
