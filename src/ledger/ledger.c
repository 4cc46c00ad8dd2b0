/* SPDX-License-Identifier: MIT */
/* The stored ledger.  An append writes the entry, its leaf hash (level 0) and every
 * perfect subtree it completes (at most log2(n) parents), in the caller's transaction
 * so an event and the state change it records commit together.  Appends are
 * serialized by the single writer. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

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
 * only collects the perfect subtrees it needs; those not in the cache are then read in
 * a few multi-row queries (CHUNK nodes each) instead of one query per node; the second
 * pass computes the answer from them.  Both passes ask for the same nodes, since which
 * subtrees a proof needs depends on (index, size) alone.
 *
 * The cache.  A stored node (level, idx) is the hash of a complete subtree; it is
 * written once, by the append that completes the subtree, and never updated or
 * deleted (0002_ledger.sql; no statement of qun's changes ledger_nodes but the
 * INSERT in node_put).  Once committed it is therefore the same for every connection
 * and every later snapshot, whichever qund on a shared PostgreSQL database appended
 * it.  Only a writer's own uncommitted append could be rolled back, so only read-only
 * connections (which never hold uncommitted writes) use the cache: every node they
 * read was committed.  All the read-only connections of a process to one database
 * (the same connection string) share one cache, made by the first and freed with the
 * last, so that the memory is spent once and a node read by one loop serves them all.
 *
 * What it keeps: nodes of level CACHE_LOW and up (subtrees of 8 leaves and more),
 * read BLOCK adjacent nodes of a level at a time when a proof first needs one of them:
 * memory only for the parts of the tree proofs ask about.  All of it is one 32-byte
 * hash per 4 entries, 8 MiB per million entries; levels below CACHE_MID are kept for
 * the first 2^CACHE_LOW_SPAN entries (124 MiB at most), levels CACHE_MID and up for
 * the first 2^CACHE_SPAN (64 MiB at most).  A typical inclusion proof then reads its
 * 3 lowest nodes in one query.  Each node read is a B-tree descent, at 10M entries
 * about 6 us of cache misses (bench/README.md, "Proofs at 10M").  The levels are kept
 * in pieces of PIECE nodes allocated on first use; a piece, and the bit of a hash in
 * it, are published with release stores after the hash is written, under the cache's
 * lock, so readers take no lock. */
#define CACHE_LOW 3
#define CACHE_MID 8
#define CACHE_LOW_SPAN 24
#define CACHE_SPAN 28
#define PIECE 4096   /* nodes per piece of a level */
#define BLOCK 1024   /* nodes of one level the cache reads at once */
#define CHUNK 12     /* (level, idx) pairs per query: 24 parameters, the SQLite store's most */
#define WANT_MAX 256 /* perfect subtrees one proof may need (2 log2 n is far fewer) */

typedef struct {
    _Atomic uint64_t have[PIECE / 64]; /* which hashes are in */
    unsigned char hash[][QUN_HASH];    /* level_nodes(level) of them at most */
} piece_t;

typedef struct cache {
    struct cache *next; /* in caches, under caches_lock */
    char *name;         /* the database's connection string */
    int refs;           /* the connections using it, under caches_lock */
    pthread_mutex_t lock;
    _Atomic(piece_t *) *pieces[CACHE_SPAN + 1]; /* per level, NULL below CACHE_LOW */
} cache_t;

static pthread_mutex_t caches_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_t *caches;

/* How many nodes of level the cache keeps, from index 0. */
static uint64_t level_nodes(int level) {
    return (uint64_t)1 << ((level < CACHE_MID ? CACHE_LOW_SPAN : CACHE_SPAN) - level);
}

static uint64_t piece_nodes(int level) {
    uint64_t n = level_nodes(level);
    return n < PIECE ? n : PIECE;
}

static void cache_free(cache_t *c) {
    for (int l = CACHE_LOW; l <= CACHE_SPAN; l++) {
        if (!c->pieces[l]) continue;
        for (uint64_t i = 0; i < (level_nodes(l) + PIECE - 1) / PIECE; i++)
            free(atomic_load_explicit(&c->pieces[l][i], memory_order_relaxed));
        free((void *)c->pieces[l]);
    }
    pthread_mutex_destroy(&c->lock);
    free(c->name);
    free(c);
}

static cache_t *cache_new(const char *name) {
    cache_t *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name)) || pthread_mutex_init(&c->lock, NULL) != 0) {
        if (c) free(c->name);
        free(c);
        return NULL;
    }
    for (int l = CACHE_LOW; l <= CACHE_SPAN; l++)
        if (!(c->pieces[l] = calloc((level_nodes(l) + PIECE - 1) / PIECE, sizeof *c->pieces[l]))) {
            cache_free(c);
            return NULL;
        }
    return c;
}

/* A connection's reference, dropped when it closes: the last one frees the cache. */
static void cache_release(void *p) {
    cache_t *c = p;
    pthread_mutex_lock(&caches_lock);
    bool last = --c->refs == 0;
    if (last) {
        cache_t **pp = &caches;
        while (*pp != c)
            pp = &(*pp)->next;
        *pp = c->next;
    }
    pthread_mutex_unlock(&caches_lock);
    if (last) cache_free(c);
}

/* The cache of a read-only connection (found or made on its first use), NULL for any
 * other, for an in-memory or temporary database (each is its own: ":memory:", ""), or
 * when memory is short (then proofs just read every node). */
static cache_t *cache_of(qun_db_t *db) {
    if (!qun_db_readonly(db)) return NULL;
    cache_t *c = qun_db_aux_get(db, QUN_AUX_LEDGER);
    const char *name = qun_db_name(db);
    if (c || !name || !*name || strstr(name, ":memory:")) return c;
    pthread_mutex_lock(&caches_lock);
    for (c = caches; c && strcmp(c->name, name) != 0; c = c->next)
        ;
    if (!c && (c = cache_new(name)) != NULL) {
        c->next = caches;
        caches = c;
    }
    if (c) c->refs++;
    pthread_mutex_unlock(&caches_lock);
    if (c) qun_db_aux_set(db, QUN_AUX_LEDGER, c, cache_release);
    return c;
}

/* Whether (level, idx) is a node the cache keeps (when it has the memory). */
static bool cache_cacheable(const cache_t *c, int level, uint64_t idx) {
    return c && level >= CACHE_LOW && level <= CACHE_SPAN && idx < level_nodes(level);
}

static bool cache_get(cache_t *c, int level, uint64_t idx, unsigned char out[QUN_HASH]) {
    if (!cache_cacheable(c, level, idx)) return false;
    piece_t *p = atomic_load_explicit(&c->pieces[level][idx / PIECE], memory_order_acquire);
    uint64_t i = idx % PIECE;
    if (!p || !(atomic_load_explicit(&p->have[i / 64], memory_order_acquire) >> (i % 64) & 1)) return false;
    memcpy(out, p->hash[i], QUN_HASH);
    return true;
}

static void cache_put(cache_t *c, int level, uint64_t idx, const unsigned char h[QUN_HASH]) {
    if (!cache_cacheable(c, level, idx)) return;
    _Atomic(piece_t *) *slot = &c->pieces[level][idx / PIECE];
    uint64_t i = idx % PIECE, bit = (uint64_t)1 << (i % 64);
    pthread_mutex_lock(&c->lock);
    piece_t *p = atomic_load_explicit(slot, memory_order_relaxed);
    if (!p && (p = calloc(1, sizeof *p + (size_t)piece_nodes(level) * QUN_HASH)) != NULL)
        atomic_store_explicit(slot, p, memory_order_release);
    /* A hash is written once: a reader may be copying it as soon as its bit is set. */
    if (p && !(atomic_load_explicit(&p->have[i / 64], memory_order_relaxed) & bit)) {
        memcpy(p->hash[i], h, QUN_HASH);
        atomic_fetch_or_explicit(&p->have[i / 64], bit, memory_order_release);
    }
    pthread_mutex_unlock(&c->lock);
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

/* The query for m (level, idx) pairs, 1 <= m <= CHUNK: one statement each, as a
 * pair repeated to fill a longer one still costs its index search. */
#define PAIR(l, i) "(level = $" #l " AND idx = $" #i ")"
#define SEL "SELECT level, idx, hash FROM ledger_nodes WHERE "
#define P2 PAIR(1, 2)
#define P4 P2 " OR " PAIR(3, 4)
#define P6 P4 " OR " PAIR(5, 6)
#define P8 P6 " OR " PAIR(7, 8)
#define P10 P8 " OR " PAIR(9, 10)
#define P12 P10 " OR " PAIR(11, 12)
#define P14 P12 " OR " PAIR(13, 14)
#define P16 P14 " OR " PAIR(15, 16)
#define P18 P16 " OR " PAIR(17, 18)
#define P20 P18 " OR " PAIR(19, 20)
#define P22 P20 " OR " PAIR(21, 22)
#define P24 P22 " OR " PAIR(23, 24)
static const char *const pairs_sql[CHUNK] = {SEL P2,  SEL P4,  SEL P6,  SEL P8,  SEL P10, SEL P12,
                                             SEL P14, SEL P16, SEL P18, SEL P20, SEL P22, SEL P24};

/* Read the collected nodes: the cacheable ones by blocks into the cache, the others
 * up to CHUNK per query. */
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
        int m = f->n - base < CHUNK ? f->n - base : CHUNK;
        qun_q_t *q;
        qun_rc rc = qun_q_prepare(f->db, pairs_sql[m - 1], &q, err);
        if (rc != QUN_OK) return rc;
        for (int k = 0; k < m; k++) {
            const want_t *w = &f->want[base + k];
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
