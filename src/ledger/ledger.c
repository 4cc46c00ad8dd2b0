/* SPDX-License-Identifier: MIT */
/* The stored ledger.  An append writes the entry, its leaf hash (level 0) and every
 * perfect subtree it completes (at most log2(n) parents), in the caller's transaction
 * so an event and the state change it records commit together.  Appends are
 * serialized by the single writer. */
#include <string.h>

#include <sodium.h>
#include <stdlib.h>

#include "qun/json.h"
#include "qun/ledger.h"
#include "qun/util.h"

static qun_rc node_get(qun_db_t *db, int level, uint64_t idx, unsigned char out[QUN_HASH], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT hash FROM ledger_nodes WHERE level = $1 AND idx = $2", "ii",
                           (int64_t)level, (int64_t)idx);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_STORE, "ledger node (%d, %llu) is missing", level, (unsigned long long)idx);
    if (rc != QUN_ROW) return rc;
    size_t n;
    const void *p = qun_q_col_blob(q, 0, &n);
    if (n == QUN_HASH) memcpy(out, p, QUN_HASH);
    qun_q_done(q);
    return n == QUN_HASH ? QUN_OK
                         : qun_fail(err, QUN_STORE, "ledger node (%d, %llu) is corrupt", level,
                                    (unsigned long long)idx);
}

static qun_rc node_put(qun_db_t *db, int level, uint64_t idx, const unsigned char h[QUN_HASH],
                       qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_q_prepare(db, "INSERT INTO ledger_nodes(level, idx, hash) VALUES ($1, $2, $3)", &q, err);
    if (rc != QUN_OK) return rc;
    qun_q_int(q, 1, level);
    qun_q_int(q, 2, (int64_t)idx);
    qun_q_blob(q, 3, h, QUN_HASH);
    rc = qun_q_step(q, err);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* ---- reading subtree hashes for roots and proofs ----
 *
 * A proof or root is computed twice over the pure math of merkle.c.  The first pass
 * only collects the perfect subtrees it needs; those not in the connection's cache are
 * then read in a few multi-row queries (CHUNK nodes each) instead of one query per
 * node; the second pass computes the answer from them.  Both passes ask for the same
 * nodes, since which subtrees a proof needs depends on (index, size) alone.
 *
 * The cache.  A stored node (level, idx) is the hash of a complete subtree; it is
 * written once, by the append that completes the subtree, and never updated or
 * deleted (0002_ledger.sql; no statement of qun's changes ledger_nodes but the
 * INSERT in node_put).  Once committed it is therefore the same for every connection
 * and every later snapshot, whichever qund on a shared PostgreSQL database appended
 * it.  Only a writer's own uncommitted append could be rolled back, so only read-only
 * connections (which never hold uncommitted writes) keep a cache: every node they read
 * was committed.  Nodes of level CACHE_LOW and up (subtrees of 256 leaves and more)
 * are kept for the first 2^CACHE_SPAN entries, read BLOCK adjacent nodes of a level at
 * a time when a proof first needs one of them: one 32-byte hash (and a bit) per 128
 * entries, about 2.5 MiB at 10M entries and 64 MiB at most, per read-only connection.
 * The nodes below (8 for a typical inclusion proof) are read in one query. */
#define CACHE_LOW 8
#define CACHE_SPAN 28
#define BLOCK 1024   /* nodes of one level the cache reads at once */
#define CHUNK 12     /* (level, idx) pairs per query: 24 parameters, the SQLite store's most */
#define WANT_MAX 256 /* perfect subtrees one proof may need (2 log2 n is far fewer) */

typedef struct {
    unsigned char (*hash[CACHE_SPAN + 1])[QUN_HASH]; /* per level; NULL until used */
    uint64_t *have[CACHE_SPAN + 1];                  /* bitmaps of the hashes held */
    uint64_t cap[CACHE_SPAN + 1];                    /* nodes allocated per level */
} cache_t;

static void cache_free(void *p) {
    cache_t *c = p;
    if (!c) return;
    for (int l = 0; l <= CACHE_SPAN; l++) {
        free(c->hash[l]);
        free(c->have[l]);
    }
    free(c);
}

/* The cache of a read-only connection (made on first use), NULL for any other, or
 * when memory is short (then proofs just read every node). */
static cache_t *cache_of(qun_db_t *db) {
    if (!qun_db_readonly(db)) return NULL;
    cache_t *c = qun_db_aux_get(db);
    if (!c && (c = calloc(1, sizeof *c)) != NULL) qun_db_aux_set(db, c, cache_free);
    return c;
}

/* Whether (level, idx) is a node the cache keeps (when it has the memory). */
static bool cache_cacheable(const cache_t *c, int level, uint64_t idx) {
    return c && level >= CACHE_LOW && level <= CACHE_SPAN && idx < (uint64_t)1 << (CACHE_SPAN - level);
}

static bool cache_get(const cache_t *c, int level, uint64_t idx, unsigned char out[QUN_HASH]) {
    if (!c || level < CACHE_LOW || level > CACHE_SPAN || idx >= c->cap[level]) return false;
    if (!(c->have[level][idx / 64] >> (idx % 64) & 1)) return false;
    memcpy(out, c->hash[level][idx], QUN_HASH);
    return true;
}

static void cache_put(cache_t *c, int level, uint64_t idx, const unsigned char h[QUN_HASH]) {
    if (!c || level < CACHE_LOW || level > CACHE_SPAN) return;
    uint64_t most = (uint64_t)1 << (CACHE_SPAN - level); /* nodes of this level in 2^CACHE_SPAN leaves */
    if (idx >= most) return;
    if (idx >= c->cap[level]) { /* grow by doubling, in whole bitmap words, to at most `most` */
        uint64_t cap = c->cap[level] ? c->cap[level] : 64;
        while (cap <= idx)
            cap *= 2;
        if (cap > most) cap = most < 64 ? 64 : most;
        void *h2 = realloc(c->hash[level], (size_t)cap * QUN_HASH);
        if (!h2) return;
        c->hash[level] = h2;
        uint64_t *b2 = realloc(c->have[level], (size_t)(cap / 64) * sizeof *b2);
        if (!b2) return;
        memset(b2 + c->cap[level] / 64, 0, (size_t)((cap - c->cap[level]) / 64) * sizeof *b2);
        c->have[level] = b2;
        c->cap[level] = cap;
    }
    memcpy(c->hash[level][idx], h, QUN_HASH);
    c->have[level][idx / 64] |= (uint64_t)1 << (idx % 64);
}

typedef struct {
    int level;
    uint64_t idx;
    bool found;
    unsigned char hash[QUN_HASH];
} want_t;

typedef struct {
    qun_db_t *db;
    cache_t *cache;
    bool collect; /* first pass: note the nodes needed, answer zeros */
    int n;
    want_t want[WANT_MAX];
} fetch_t;

static int level_of(uint64_t lo, uint64_t hi) {
    int level = 0;
    while (((uint64_t)1 << level) < hi - lo)
        level++;
    return level;
}

static qun_rc fetch_src(void *ctx, uint64_t lo, uint64_t hi, unsigned char out[QUN_HASH], qun_err_t *err) {
    fetch_t *f = ctx;
    int level = level_of(lo, hi);
    uint64_t idx = lo >> level;
    if (cache_get(f->cache, level, idx, out)) return QUN_OK;
    for (int i = 0; i < f->n; i++)
        if (f->want[i].level == level && f->want[i].idx == idx) {
            if (f->collect) break;
            if (!f->want[i].found) break; /* read below, for its error */
            memcpy(out, f->want[i].hash, QUN_HASH);
            return QUN_OK;
        }
    if (f->collect) {
        memset(out, 0, QUN_HASH);
        bool known = false;
        for (int i = 0; i < f->n && !known; i++)
            known = f->want[i].level == level && f->want[i].idx == idx;
        if (!known && f->n < WANT_MAX) f->want[f->n++] = (want_t){.level = level, .idx = idx};
        return QUN_OK;
    }
    /* Not collected (a proof past WANT_MAX) or not found: one read, which names a
     * missing node in its error. */
    qun_rc rc = node_get(f->db, level, idx, out, err);
    if (rc == QUN_OK) cache_put(f->cache, level, idx, out);
    return rc;
}

/* Fill the cache with the stored nodes of level in the aligned block of BLOCK around
 * idx: one range read of adjacent rows, so that the cache warms after a few proofs
 * rather than one node per proof (random proofs seldom ask for the same node twice). */
static qun_rc fill_block(fetch_t *f, int level, uint64_t idx, qun_err_t *err) {
    uint64_t lo = idx / BLOCK * BLOCK;
    qun_q_t *q;
    qun_rc rc = qun_db_run(f->db, &q, err,
                           "SELECT idx, hash FROM ledger_nodes WHERE level = $1 AND idx >= $2 AND idx < $3",
                           "iii", (int64_t)level, (int64_t)lo, (int64_t)(lo + BLOCK));
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        size_t n;
        const void *p = qun_q_col_blob(q, 1, &n);
        if (n == QUN_HASH) cache_put(f->cache, level, (uint64_t)qun_q_col_int(q, 0), p);
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Read the collected nodes: the cacheable ones by blocks into the cache, the others
 * CHUNK per query (a short chunk repeats its last pair). */
static qun_rc fetch_all(fetch_t *f, qun_err_t *err) {
    int kept = 0;
    for (int i = 0; i < f->n; i++) {
        const want_t *w = &f->want[i];
        unsigned char h[QUN_HASH];
        if (cache_cacheable(f->cache, w->level, w->idx)) {
            qun_rc rc =
                cache_get(f->cache, w->level, w->idx, h) ? QUN_OK : fill_block(f, w->level, w->idx, err);
            if (rc != QUN_OK) return rc;
            if (cache_get(f->cache, w->level, w->idx, h)) continue; /* else: read with the rest */
        }
        f->want[kept++] = *w;
    }
    f->n = kept;
    for (int base = 0; base < f->n; base += CHUNK) {
        qun_q_t *q;
        qun_rc rc = qun_q_prepare(f->db,
                                  "SELECT level, idx, hash FROM ledger_nodes WHERE "
                                  "(level = $1 AND idx = $2) OR (level = $3 AND idx = $4) OR "
                                  "(level = $5 AND idx = $6) OR (level = $7 AND idx = $8) OR "
                                  "(level = $9 AND idx = $10) OR (level = $11 AND idx = $12) OR "
                                  "(level = $13 AND idx = $14) OR (level = $15 AND idx = $16) OR "
                                  "(level = $17 AND idx = $18) OR (level = $19 AND idx = $20) OR "
                                  "(level = $21 AND idx = $22) OR (level = $23 AND idx = $24)",
                                  &q, err);
        if (rc != QUN_OK) return rc;
        for (int k = 0; k < CHUNK; k++) {
            const want_t *w = &f->want[base + k < f->n ? base + k : f->n - 1];
            qun_q_int(q, 2 * k + 1, w->level);
            qun_q_int(q, 2 * k + 2, (int64_t)w->idx);
        }
        while ((rc = qun_q_step(q, err)) == QUN_ROW) {
            int level = (int)qun_q_col_int(q, 0);
            uint64_t idx = (uint64_t)qun_q_col_int(q, 1);
            size_t n;
            const void *p = qun_q_col_blob(q, 2, &n);
            if (n != QUN_HASH) continue; /* left unfound: node_get reports it */
            for (int i = base; i < f->n && i < base + CHUNK; i++)
                if (f->want[i].level == level && f->want[i].idx == idx) {
                    memcpy(f->want[i].hash, p, QUN_HASH);
                    f->want[i].found = true;
                    cache_put(f->cache, level, idx, p);
                }
        }
        if (rc != QUN_DONE) return rc;
    }
    return QUN_OK;
}

typedef enum { OP_ROOT, OP_INCLUSION, OP_CONSISTENCY } op_t;

static qun_rc run_op(fetch_t *f, op_t op, uint64_t a, uint64_t b, unsigned char proof[][QUN_HASH], int *n,
                     qun_err_t *err) {
    switch (op) {
    case OP_ROOT: return qun_merkle_range(fetch_src, f, 0, b, proof[0], err);
    case OP_INCLUSION: return qun_merkle_inclusion(fetch_src, f, a, b, proof, n, err);
    case OP_CONSISTENCY: return qun_merkle_consistency(fetch_src, f, a, b, proof, n, err);
    }
    return QUN_INTERNAL;
}

/* op over the tree of b entries (a: the index or old size), both passes. */
static qun_rc with_nodes(qun_db_t *db, op_t op, uint64_t a, uint64_t b, unsigned char proof[][QUN_HASH],
                         int *n, qun_err_t *err) {
    fetch_t *f = malloc(sizeof *f);
    if (!f) return qun_fail(err, QUN_NOMEM, "out of memory");
    f->db = db;
    f->cache = cache_of(db);
    f->collect = true;
    f->n = 0;
    qun_rc rc = run_op(f, op, a, b, proof, n, err);
    if (rc == QUN_OK) rc = fetch_all(f, err);
    f->collect = false;
    if (rc == QUN_OK) rc = run_op(f, op, a, b, proof, n, err);
    free(f);
    return rc;
}

qun_rc qun_ledger_head(qun_db_t *db, uint64_t *size, unsigned char root[QUN_HASH], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries", "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *size = (uint64_t)qun_q_col_int(q, 0);
    qun_q_done(q);
    return qun_ledger_root_at(db, *size, root, err);
}

qun_rc qun_ledger_root_at(qun_db_t *db, uint64_t size, unsigned char root[QUN_HASH], qun_err_t *err) {
    if (size == 0) {
        crypto_hash_sha256(root, (const unsigned char *)"", 0);
        return QUN_OK;
    }
    return with_nodes(db, OP_ROOT, 0, size, (unsigned char(*)[QUN_HASH])root, NULL, err);
}

qun_rc qun_ledger_inclusion(qun_db_t *db, uint64_t index, uint64_t size, unsigned char proof[][QUN_HASH],
                            int *n, qun_err_t *err) {
    return with_nodes(db, OP_INCLUSION, index, size, proof, n, err);
}

qun_rc qun_ledger_consistency(qun_db_t *db, uint64_t old, uint64_t size, unsigned char proof[][QUN_HASH],
                              int *n, qun_err_t *err) {
    return with_nodes(db, OP_CONSISTENCY, old, size, proof, n, err);
}

qun_rc qun_ledger_append(qun_db_t *db, const char *event, const char *group, const char *actor,
                         const char *old_state, const char *new_state, json_t *fields, int64_t *index,
                         qun_err_t *err) {
    qun_q_t *q;
    /* Several qund on one PostgreSQL: one appender at a time keeps the tree one sequence. */
    qun_rc rc = qun_db_xlock(db, QUN_LEDGER_LOCK, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, &q, err, "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries", "");
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    uint64_t idx = (uint64_t)qun_q_col_int(q, 0);
    qun_q_done(q);
    int64_t now = qun_now();
    char digest[65];
    json_t *params = fields ? json_incref(fields) : json_object();
    bool digested = qun_json_digest(params, digest);
    json_t *e = digested ? json_deep_copy(params) : NULL;
    json_decref(params);
    if (!e) return qun_fail(err, QUN_NOMEM, "cannot build the %s entry", event);
    /* A field lost for want of memory would ledger a wrong entry: count the failures. */
    int bad = 0;
    bad |= json_object_set_new(e, "seq", json_integer((json_int_t)idx));
    bad |= json_object_set_new(e, "time", json_integer(now));
    bad |= json_object_set_new(e, "event", json_string(event));
    bad |= json_object_set_new(e, "group", group ? json_string(group) : json_null());
    bad |= json_object_set_new(e, "actor", actor ? json_string(actor) : json_null());
    bad |= json_object_set_new(e, "old_state", old_state ? json_string(old_state) : json_null());
    bad |= json_object_set_new(e, "new_state", new_state ? json_string(new_state) : json_null());
    bad |= json_object_set_new(e, "params_digest", json_string(digest));
    char *text = bad ? NULL : qun_json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(e);
    if (!text) return qun_fail(err, QUN_NOMEM, "cannot encode a ledger entry");
    unsigned char h[QUN_HASH];
    qun_merkle_leaf(h, text, strlen(text));
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO ledger_entries(idx, event, group_openid, actor_openid, entry, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    "issssi", (int64_t)idx, event, group, actor, text, now);
    free(text);
    if (rc != QUN_DONE) return rc;
    rc = node_put(db, 0, idx, h, err);
    /* Each trailing 1 bit of idx completes one more perfect subtree. */
    for (int level = 0; rc == QUN_OK && ((idx >> level) & 1); level++) {
        unsigned char left[QUN_HASH];
        rc = node_get(db, level, (idx >> level) - 1, left, err);
        if (rc == QUN_OK) {
            qun_merkle_node(h, left, h);
            rc = node_put(db, level + 1, idx >> (level + 1), h, err);
        }
    }
    if (rc == QUN_OK && index) *index = (int64_t)idx;
    return rc;
}
