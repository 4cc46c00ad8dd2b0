/* SPDX-License-Identifier: MIT */
/* The client's address behind reverse proxies.  The `trusted_proxies` setting names
 * the proxies (CIDRs); only a request whose TCP peer is one of them has its
 * X-Forwarded-For (or, without one, its Forwarded: for=) read, from the right: each
 * proxy appends the address it saw, so the rightmost hop that is not a trusted proxy
 * is the client, and everything left of it is whatever the client chose to send.  The
 * table is written once at startup, before the loops run, and only read after. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "http.h"

#define MAX_PROXIES 64
#define MAX_HOPS 32 /* hops read from the right; further left is the client's to choose */

typedef struct {
    unsigned char addr[16]; /* IPv4 in the first 4 bytes */
    int v6;
    int bits;
} cidr_t;

static cidr_t g_cidrs[MAX_PROXIES];
static int g_ncidrs;

/* An address, as text, into 16 bytes; IPv4-mapped IPv6 (::ffff:a.b.c.d) reads as IPv4. */
static bool parse_ip(const char *s, unsigned char out[16], int *v6) {
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1) {
        *v6 = 0;
        return true;
    }
    if (inet_pton(AF_INET6, s, out) != 1) return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out, mapped, 12) == 0) {
        memmove(out, out + 12, 4);
        memset(out + 4, 0, 12);
        *v6 = 0;
        return true;
    }
    *v6 = 1;
    return true;
}

static bool in_cidr(const cidr_t *c, const unsigned char a[16], int v6) {
    if (c->v6 != v6) return false;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

static bool trusted(const unsigned char a[16], int v6) {
    for (int i = 0; i < g_ncidrs; i++)
        if (in_cidr(&g_cidrs[i], a, v6)) return true;
    return false;
}

qun_rc qun_proxy_set(const char *list, qun_err_t *err) {
    cidr_t cidrs[MAX_PROXIES];
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[80];
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len >= sizeof item)
            return qun_fail(err, QUN_BAD_REQUEST, "trusted_proxies: \"%.*s\" is not a CIDR", (int)len, p);
        memcpy(item, p, len);
        item[len] = '\0';
        p = end ? end + 1 : p + strlen(p);
        if (!len) continue; /* "a, b," */
        if (n == MAX_PROXIES)
            return qun_fail(err, QUN_BAD_REQUEST, "trusted_proxies: more than %d entries", MAX_PROXIES);
        cidr_t *c = &cidrs[n];
        char *slash = strchr(item, '/');
        if (slash) *slash = '\0';
        bool ok = parse_ip(item, c->addr, &c->v6);
        int max = c->v6 ? 128 : 32;
        c->bits = max;
        if (ok && slash) {
            char *e;
            long b = strtol(slash + 1, &e, 10);
            ok = slash[1] && isdigit((unsigned char)slash[1]) && !*e && b >= 0 && b <= max;
            c->bits = (int)b;
        }
        if (!ok) {
            if (slash) *slash = '/';
            return qun_fail(err, QUN_BAD_REQUEST,
                            "trusted_proxies: \"%s\" is not a CIDR (like 203.0.113.0/24 or 2001:db8::/32)",
                            item);
        }
        /* Host bits below the prefix are ignored: 203.0.113.77/24 means 203.0.113.0/24. */
        for (int bit = c->bits; bit < 128; bit++)
            c->addr[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
        n++;
    }
    memcpy(g_cidrs, cidrs, sizeof cidrs);
    g_ncidrs = n;
    return QUN_OK;
}

int qun_proxy_count(void) {
    return g_ncidrs;
}

/* One hop as a proxy wrote it: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]" or "[v6]:port",
 * perhaps quoted (Forwarded).  Into a (16 bytes) and its text form; false for anything
 * else ("unknown", "_hidden", garbage). */
static bool parse_hop(const char *s, size_t n, unsigned char a[16], int *v6) {
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    char buf[64];
    if (n == 0 || n >= sizeof buf) return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return false;
        size_t rest = n - (size_t)(close - s) - 1;
        if (rest && close[1] != ':') return false;
        for (size_t i = 2; i <= rest; i++)
            if (!isdigit((unsigned char)close[i])) return false;
        n = (size_t)(close - s) - 1;
        memcpy(buf, s + 1, n);
        buf[n] = '\0';
        return parse_ip(buf, a, v6) && *v6;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *colon = strchr(buf, ':');
    if (colon && !strchr(colon + 1, ':')) { /* IPv4 with a port */
        for (char *d = colon + 1; *d; d++)
            if (!isdigit((unsigned char)*d)) return false;
        *colon = '\0';
        return colon[1] && parse_ip(buf, a, v6) && !*v6;
    }
    return parse_ip(buf, a, v6);
}

typedef struct {
    const char *s;
    size_t n;
} span_t;

/* The hops of every X-Forwarded-For field, in order. */
static int xff_hops(struct evkeyvalq *h, span_t *hops) {
    int n = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        if (strcasecmp(kv->key, "X-Forwarded-For") != 0) continue;
        for (const char *p = kv->value;; p++) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (n == MAX_HOPS) memmove(hops, hops + 1, --n * sizeof *hops);
            hops[n++] = (span_t){p, len};
            if (!end) break;
            p = end;
        }
    }
    return n;
}

/* The for= of every element of every Forwarded field, in order; an element without
 * one counts as an unreadable hop. */
static int forwarded_hops(struct evkeyvalq *h, span_t *hops) {
    int n = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        if (strcasecmp(kv->key, "Forwarded") != 0) continue;
        const char *p = kv->value;
        while (*p) {
            span_t f = {"", 0};
            bool quoted = false;
            const char *q = p; /* one element: pairs up to an unquoted ',' */
            for (; *q && (quoted || *q != ','); q++)
                if (*q == '"') quoted = !quoted;
            for (const char *pair = p; pair < q;) {
                const char *pe = pair;
                quoted = false;
                for (; pe < q && (quoted || *pe != ';'); pe++)
                    if (*pe == '"') quoted = !quoted;
                while (pair < pe && isspace((unsigned char)*pair))
                    pair++;
                if (pe - pair > 4 && strncasecmp(pair, "for=", 4) == 0)
                    f = (span_t){pair + 4, (size_t)(pe - pair - 4)};
                pair = pe < q ? pe + 1 : pe;
            }
            if (n == MAX_HOPS) memmove(hops, hops + 1, --n * sizeof *hops);
            hops[n++] = f;
            p = *q ? q + 1 : q;
        }
    }
    return n;
}

static void ip_text(const unsigned char a[16], int v6, char *out, size_t size) {
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, a, out, (socklen_t)size)) snprintf(out, size, "-");
}

void qun_proxy_client(const char *peer, struct evkeyvalq *headers, char *out, size_t size) {
    unsigned char a[16];
    int v6;
    if (!peer || !parse_ip(peer, a, &v6)) {
        snprintf(out, size, "%s", peer ? peer : "");
        return;
    }
    if (g_ncidrs && trusted(a, v6) && headers) {
        span_t hops[MAX_HOPS];
        int n = xff_hops(headers, hops);
        if (n == 0) n = forwarded_hops(headers, hops);
        /* From the right: past trusted proxies to the first hop that is not one.  An
         * unreadable hop stops the walk at the last address a trusted proxy vouched for. */
        for (int i = n - 1; i >= 0; i--) {
            unsigned char h[16];
            int hv6;
            if (!parse_hop(hops[i].s, hops[i].n, h, &hv6)) break;
            memcpy(a, h, 16);
            v6 = hv6;
            if (!trusted(a, v6)) break;
        }
    }
    ip_text(a, v6, out, size);
}
