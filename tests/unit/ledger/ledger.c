/* SPDX-License-Identifier: MIT */
/* Unit tests of src/ledger/ledger.c on an in-memory store: the empty tree, the exact
 * canonical entry an append stores, indexes without gaps (also after a rolled-back
 * append), the stored subtree hashes, earlier roots that never change as the ledger
 * grows, consistency proofs between every two heads, and inclusion proofs of every
 * entry against a signed checkpoint; and, on a file with read-only connections (which
 * share a cache of the upper subtree hashes), proofs and roots identical to those read
 * one stored node at a time, as the ledger grows across completed subtrees, one cache
 * per database, and two threads filling one cache at once. */
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
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

/* Today's way, the reference: every perfect subtree hash read with its own query. */
static qun_rc one_node_src(void *ctx, uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH], qun_err_t *err) {
    int level = 0;
    while (((uint64_t)1 << level) < hi - lo)
        level++;
    qun_q_t *q;
    qun_rc rc = qun_db_run(ctx, &q, err, "SELECT hash FROM ledger_nodes WHERE level = $1 AND idx = $2", "ii",
                           (int64_t)level, (int64_t)(lo >> level));
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    size_t n;
    const void *p = qun_q_col_blob(q, 0, &n);
    memcpy(out, p, n == QUN_HASH ? QUN_HASH : 0);
    qun_q_done(q);
    return n == QUN_HASH ? QUN_OK : QUN_STORE;
}

static void grow_with(qun_db_t *w, uint64_t size, const char *event) {
    qun_err_t err;
    uint64_t now;
    unsigned char root[QUN_HASH];
    CHECK(qun_ledger_head(w, &now, root, &err) == QUN_OK);
    CHECK(qun_db_exec(w, "BEGIN", &err) == QUN_OK);
    for (; now < size; now++) {
        json_t *f = json_pack("{s:I}", "n", (json_int_t)now);
        CHECK(qun_ledger_append(w, event, "g_c", "u_c", NULL, NULL, f, NULL, &err) == QUN_OK);
        json_decref(f);
    }
    CHECK(qun_db_exec(w, "COMMIT", &err) == QUN_OK);
}

static void grow_to(qun_db_t *w, uint64_t size) {
    grow_with(w, size, "test.cache");
}

/* A ledger file in a new directory: dir is the mkdtemp template, path gets the file. */
static void temp_ledger(char *dir, char path[128]) {
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, 128, "%s/ledger.db", dir);
}

static void remove_ledger(const char *dir, const char *path) {
    char side[160];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    rmdir(dir);
}

/* Proofs and roots on reader r (cached, batched reads) against the reference on w for
 * many (index, size) and (old, size) pairs up to size; the number that differ. */
static int compare_upto(qun_db_t *w, qun_db_t *r, uint64_t size) {
    static const uint64_t sizes[] = {1,    2,    3,    5,    1023, 1024, 1025, 1536, 2047, 2048,
                                     2049, 3071, 3072, 3073, 4095, 4096, 4097, 5000, 6143, 6144};
    qun_err_t err;
    int bad = 0;
    unsigned char a[QUN_PROOF_MAX][QUN_HASH], b[QUN_PROOF_MAX][QUN_HASH], ra[QUN_HASH], rb[QUN_HASH];
    int na, nb;
    CHECK(qun_db_read_begin(r, &err) == QUN_OK);
    for (size_t s = 0; s < NROWS(sizes) + 1; s++) {
        uint64_t n = s < NROWS(sizes) ? sizes[s] : size;
        if (n > size) continue;
        if (qun_ledger_root_at(r, n, ra, &err) != QUN_OK ||
            qun_merkle_range(one_node_src, w, 0, n, rb, &err) != QUN_OK || memcmp(ra, rb, QUN_HASH) != 0)
            bad++;
        uint64_t picks[] = {0, 1, n / 2, n - 1, n - 2, 1023, 1024, 2047, 2048, 4095, (n * 7919) % n};
        for (size_t k = 0; k < NROWS(picks); k++) {
            uint64_t i = picks[k];
            if (i >= n) continue;
            if (qun_ledger_inclusion(r, i, n, a, &na, &err) != QUN_OK ||
                qun_merkle_inclusion(one_node_src, w, i, n, b, &nb, &err) != QUN_OK || na != nb ||
                memcmp(a, b, (size_t)na * QUN_HASH) != 0)
                bad++;
            uint64_t old = i + 1; /* 1 <= old <= n */
            if (qun_ledger_consistency(r, old, n, a, &na, &err) != QUN_OK ||
                qun_merkle_consistency(one_node_src, w, old, n, b, &nb, &err) != QUN_OK || na != nb ||
                memcmp(a, b, (size_t)na * QUN_HASH) != 0)
                bad++;
        }
    }
    qun_db_read_end(r);
    return bad;
}

/* Read-only connections keep the hashes of complete subtrees of 8 leaves and more
 * once read.  Their proofs and roots stay byte-identical to the reference as the
 * ledger grows past subtrees it completes (1024, 2048, 4096 ...), with reads first
 * made at sizes where those subtrees were incomplete; and a cached node is really
 * served from memory (a stored hash changed behind the reader's back does not reach
 * it, where one below the cached levels does). */
static void cached_proofs_identical(void) {
    char dir[] = "/tmp/qun-unit-ledger-cache-XXXXXX", path[128];
    temp_ledger(dir, path);
    qun_err_t err;
    qun_db_t *w = NULL, *r = NULL;
    CHECK(qun_db_open(path, false, true, &w, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &r, &err) == QUN_OK);
    if (!w || !r) return;
    static const uint64_t steps[] = {1,    3,    1000, 1023, 1024, 1025, 2047,
                                     2048, 2100, 3072, 4095, 4097, 6144, 6150};
    int bad = 0;
    for (size_t s = 0; s < NROWS(steps); s++) {
        grow_to(w, steps[s]);
        bad += compare_upto(w, r, steps[s]);
    }
    CHECK(bad == 0);
    CHECK(qun_db_aux_get(r, QUN_AUX_LEDGER) != NULL); /* the reader found its cache */
    CHECK(qun_db_aux_get(w, QUN_AUX_LEDGER) == NULL); /* the writer never does */

    /* (10, 0) covers entries 0..1023: the sibling at the top of entry 1500's path in
     * the tree of 2048.  (3, 124), the lowest cached level, is the fourth hash of entry
     * 1000's; (2, 251), below it, the third. */
    unsigned char a[QUN_PROOF_MAX][QUN_HASH], b[QUN_PROOF_MAX][QUN_HASH];
    int na, nb;
    CHECK(qun_ledger_inclusion(r, 1500, 2048, a, &na, &err) == QUN_OK);
    CHECK(qun_db_exec(w, "UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 10 AND idx = 0", &err) ==
          QUN_OK);
    CHECK(qun_ledger_inclusion(r, 1500, 2048, b, &nb, &err) == QUN_OK);
    CHECK(na == 11 && na == nb && memcmp(a, b, (size_t)na * QUN_HASH) == 0);
    CHECK(qun_ledger_inclusion(r, 1000, 2048, a, &na, &err) == QUN_OK);
    CHECK(qun_db_exec(w,
                      "UPDATE ledger_nodes SET hash = zeroblob(32) WHERE (level = 3 AND idx = 124) OR "
                      "(level = 2 AND idx = 251)",
                      &err) == QUN_OK);
    CHECK(qun_ledger_inclusion(r, 1000, 2048, b, &nb, &err) == QUN_OK);
    CHECK(na == 11 && na == nb);
    for (int i = 0; i < na && na == nb; i++)
        CHECK((memcmp(a[i], b[i], QUN_HASH) != 0) == (i == 2)); /* (2, 251): read again, changed */
    qun_db_close(r);
    qun_db_close(w);
    remove_ledger(dir, path);
}

/* The inclusion proof of every entry of the tree of size on r, each compared with the
 * reference on w: the number that differ. */
static int compare_all(qun_db_t *w, qun_db_t *r, uint64_t size) {
    qun_err_t err;
    unsigned char a[QUN_PROOF_MAX][QUN_HASH], b[QUN_PROOF_MAX][QUN_HASH];
    int na, nb, bad = 0;
    CHECK(qun_db_read_begin(r, &err) == QUN_OK);
    for (uint64_t i = 0; i < size; i++)
        if (qun_ledger_inclusion(r, i, size, a, &na, &err) != QUN_OK ||
            qun_merkle_inclusion(one_node_src, w, i, size, b, &nb, &err) != QUN_OK || na != nb ||
            memcmp(a, b, (size_t)na * QUN_HASH) != 0)
            bad++;
    qun_db_read_end(r);
    return bad;
}

/* The read-only connections of one database share its cache; another database has
 * its own; and the cache goes with the last connection, so a new database made at
 * the same path (every hash different) is never answered from the old one. */
static void one_cache_per_database(void) {
    char dir[] = "/tmp/qun-unit-ledger-share-XXXXXX", path[128];
    char dir2[] = "/tmp/qun-unit-ledger-other-XXXXXX", path2[128];
    temp_ledger(dir, path);
    temp_ledger(dir2, path2);
    qun_err_t err;
    qun_db_t *w = NULL, *r1 = NULL, *r2 = NULL, *w2 = NULL, *r3 = NULL;
    CHECK(qun_db_open(path, false, true, &w, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &r1, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &r2, &err) == QUN_OK);
    CHECK(qun_db_open(path2, false, true, &w2, &err) == QUN_OK);
    CHECK(qun_db_open(path2, true, false, &r3, &err) == QUN_OK);
    if (!w || !r1 || !r2 || !w2 || !r3) return;
    grow_with(w, 300, "test.one");
    grow_with(w2, 300, "test.two");
    CHECK(compare_all(w, r1, 300) == 0);
    CHECK(compare_all(w, r2, 300) == 0);
    CHECK(compare_all(w2, r3, 300) == 0);
    CHECK(qun_db_aux_get(r1, QUN_AUX_LEDGER) != NULL &&
          qun_db_aux_get(r1, QUN_AUX_LEDGER) == qun_db_aux_get(r2, QUN_AUX_LEDGER));
    CHECK(qun_db_aux_get(r3, QUN_AUX_LEDGER) != NULL &&
          qun_db_aux_get(r3, QUN_AUX_LEDGER) != qun_db_aux_get(r1, QUN_AUX_LEDGER));
    qun_db_close(r1);
    CHECK(compare_all(w, r2, 300) == 0); /* still there for the other reader */
    qun_db_close(r2);
    qun_db_close(w);
    remove_ledger(dir, path);

    CHECK(mkdir(dir, 0700) == 0);
    CHECK(qun_db_open(path, false, true, &w, &err) == QUN_OK);
    CHECK(qun_db_open(path, true, false, &r1, &err) == QUN_OK);
    if (w && r1) {
        grow_with(w, 300, "test.again");
        CHECK(compare_all(w, r1, 300) == 0);
    }
    qun_db_close(r1);
    qun_db_close(w);
    qun_db_close(r3);
    qun_db_close(w2);
    remove_ledger(dir, path);
    remove_ledger(dir2, path2);
}

/* Two threads, each with its own read-only connection to one database, fill and read
 * the shared cache at once, in opposite orders; every proof matches the reference
 * taken before on the writer. */
#define RACE_SIZE 5000
#define RACE_PICKS 400
static unsigned char race_ref[RACE_PICKS][QUN_PROOF_MAX][QUN_HASH];
static int race_n[RACE_PICKS];

typedef struct {
    const char *path;
    bool backwards;
    int bad;
} racer_t;

static uint64_t race_pick(int k) {
    return (uint64_t)k * 7919 % RACE_SIZE;
}

static void *race(void *arg) {
    racer_t *t = arg;
    qun_err_t err;
    qun_db_t *r;
    if (qun_db_open(t->path, true, false, &r, &err) != QUN_OK) {
        t->bad = -1;
        return NULL;
    }
    unsigned char a[QUN_PROOF_MAX][QUN_HASH];
    int na;
    for (int j = 0; j < RACE_PICKS; j++) {
        int k = t->backwards ? RACE_PICKS - 1 - j : j;
        if (qun_db_read_begin(r, &err) != QUN_OK ||
            qun_ledger_inclusion(r, race_pick(k), RACE_SIZE, a, &na, &err) != QUN_OK || na != race_n[k] ||
            memcmp(a, race_ref[k], (size_t)na * QUN_HASH) != 0)
            t->bad++;
        qun_db_read_end(r);
    }
    qun_db_close(r);
    return NULL;
}

static void shared_cache_two_threads(void) {
    char dir[] = "/tmp/qun-unit-ledger-race-XXXXXX", path[128];
    temp_ledger(dir, path);
    qun_err_t err;
    qun_db_t *w = NULL;
    CHECK(qun_db_open(path, false, true, &w, &err) == QUN_OK);
    if (!w) return;
    grow_with(w, RACE_SIZE, "test.race");
    for (int k = 0; k < RACE_PICKS; k++)
        CHECK(qun_merkle_inclusion(one_node_src, w, race_pick(k), RACE_SIZE, race_ref[k], &race_n[k], &err) ==
              QUN_OK);
    racer_t t[2] = {{path, false, 0}, {path, true, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, race, &t[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(t[0].bad == 0 && t[1].bad == 0);
    qun_db_close(w);
    remove_ledger(dir, path);
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
    RUN(cached_proofs_identical);
    RUN(one_cache_per_database);
    RUN(shared_cache_two_threads);
    qun_db_close(db);
    return unit_done("ledger/ledger");
}
