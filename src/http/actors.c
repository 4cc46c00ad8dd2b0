/* SPDX-License-Identifier: MIT */
/* A loop's memory of the sessions it authenticated, for the routes whose write checks
 * the session again in its own transaction (R_ACTOR_CACHED, http.h; today a message
 * post): such a request needs no session lookup on the loop and no read transaction.
 *
 * Nothing here decides access.  An entry may be stale (its session revoked, its user
 * renamed, on this instance or another); the write then refuses it, and the router
 * looks the session up afresh and runs the request again (router.c), so every answer
 * is the one the request would have had without the cache.  Entries are keyed by the
 * token's SHA-256, never the token, compared in constant time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "qun/util.h"

#define SLOTS 512 /* direct-mapped by the hash's first bits: a collision only evicts */

typedef struct {
    char hash[64]; /* hex SHA-256 of the token */
    bool used;
    int64_t expires_at; /* the session's end */
    qun_actor_t actor;
} slot_t;

struct qun_actor_cache {
    slot_t slot[SLOTS];
};

qun_actor_cache_t *qun_actor_cache_new(void) {
    return qun_xcalloc(1, sizeof(qun_actor_cache_t));
}

void qun_actor_cache_free(qun_actor_cache_t *c) {
    free(c);
}

/* The slot of a hex hash: its first 32 bits, which a SHA-256 spreads evenly. */
static slot_t *slot_of(qun_actor_cache_t *c, const char *hash) {
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char ch = hash[i];
        v = v << 4 | (uint32_t)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    return &c->slot[v % SLOTS];
}

bool qun_actor_cache_get(qun_actor_cache_t *c, const char *hash, qun_actor_t *a) {
    slot_t *s = slot_of(c, hash);
    if (!s->used || !qun_ct_equal(s->hash, hash, sizeof s->hash)) return false;
    if (s->expires_at <= qun_now()) {
        s->used = false;
        return false;
    }
    *a = s->actor;
    a->cached = true;
    return true;
}

void qun_actor_cache_put(qun_actor_cache_t *c, const char *hash, const qun_actor_t *a) {
    slot_t *s = slot_of(c, hash);
    /* A session that may only set a new password is refused on every cached route. */
    if (a->must_change_password) {
        qun_actor_cache_drop(c, hash);
        return;
    }
    memcpy(s->hash, hash, sizeof s->hash);
    s->actor = *a;
    s->actor.cached = false;
    s->expires_at = a->session_expires_at;
    s->used = true;
}

void qun_actor_cache_drop(qun_actor_cache_t *c, const char *hash) {
    slot_t *s = slot_of(c, hash);
    if (s->used && qun_ct_equal(s->hash, hash, sizeof s->hash)) s->used = false;
}
