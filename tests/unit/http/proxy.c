/* SPDX-License-Identifier: MIT */
/* Unit tests of the client address behind trusted proxies (src/http/proxy.c): the
 * trusted_proxies list is refused whole on a bad CIDR, and X-Forwarded-For and
 * Forwarded are read from the right, only from a trusted peer. */
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>

#include "../../src/http/http.h"
#include "unit.h"

/* Good lists are taken; a bad entry anywhere refuses the whole list, naming it. */
static void cidr_lists(void) {
    static const struct {
        const char *list;
        bool ok;
        int count;
    } rows[] = {
        {"127.0.0.1/32", true, 1},
        {"203.0.113.0/24, 198.51.100.0/24 ,::1/128", true, 3},
        {"2001:db8:aa::/48,2001:db8::1", true, 2},
        {"203.0.113.77/24", true, 1}, /* host bits ignored */
        {"0.0.0.0/0,::/0", true, 2},
        {"", true, 0},
        {"203.0.113.0/24,", true, 1},
        {"203.0.113.0/33", false, 0},
        {"::1/129", false, 0},
        {"203.0.113.0/", false, 0},
        {"203.0.113.0/-1", false, 0},
        {"203.0.113.0/24x", false, 0},
        {"203.0.113/24", false, 0},
        {"example.com", false, 0},
        {"127.0.0.1/32, nonsense", false, 0},
        {"[::1]/128", false, 0},
        {"203.0.113.256", false, 0},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        qun_proxy_set("203.0.113.9/32", NULL); /* a list in place before each row */
        qun_err_t err = {{0}, {0}};
        qun_rc rc = qun_proxy_set(rows[i].list, &err);
        CHECKF((rc == QUN_OK) == rows[i].ok, rows[i].list);
        if (rows[i].ok) CHECKF(qun_proxy_count() == rows[i].count, rows[i].list);
        if (!rows[i].ok) {
            CHECKF(strstr(err.msg, "trusted_proxies") != NULL, rows[i].list);
            CHECKF(qun_proxy_count() == 1, rows[i].list); /* the old list stays */
        }
    }
}

/* Header fields as a request would carry them: "Name: value" strings, NULL-ended. */
static const char *resolve(const char *peer, const char *const *fields) {
    static char out[64];
    struct evkeyvalq h;
    TAILQ_INIT(&h);
    for (int i = 0; fields && fields[i]; i++) {
        char name[64];
        const char *colon = strchr(fields[i], ':');
        snprintf(name, sizeof name, "%.*s", (int)(colon - fields[i]), fields[i]);
        evhttp_add_header(&h, name, colon + 2);
    }
    qun_proxy_client(peer, &h, out, sizeof out);
    evhttp_clear_headers(&h);
    return out;
}

#define F(...) ((const char *const[]){__VA_ARGS__, NULL})

static void client_address(void) {
    qun_err_t err;
    CHECK(qun_proxy_set("127.0.0.1/32, 203.0.113.0/24, ::1, 2001:db8:aa::/48", &err) == QUN_OK);
    const struct {
        const char *name, *peer;
        const char *const *fields;
        const char *want;
    } rows[] = {
        {"no header", "127.0.0.1", NULL, "127.0.0.1"},
        {"untrusted peer: header ignored", "192.0.2.7", F("X-Forwarded-For: 198.51.100.1"), "192.0.2.7"},
        {"untrusted peer: Forwarded ignored", "192.0.2.7", F("Forwarded: for=198.51.100.1"), "192.0.2.7"},
        {"one hop", "127.0.0.1", F("X-Forwarded-For: 198.51.100.1"), "198.51.100.1"},
        {"forged left hops skipped", "127.0.0.1", F("X-Forwarded-For: 192.0.2.66, 198.51.100.1"),
         "198.51.100.1"},
        {"trusted hops skipped", "127.0.0.1", F("X-Forwarded-For: 198.51.100.1, 203.0.113.11, 203.0.113.22"),
         "198.51.100.1"},
        {"all hops trusted: the leftmost", "127.0.0.1", F("X-Forwarded-For: 203.0.113.33, 203.0.113.11"),
         "203.0.113.33"},
        {"several fields, in order", "127.0.0.1",
         F("X-Forwarded-For: 192.0.2.66", "X-Forwarded-For: 198.51.100.2"), "198.51.100.2"},
        {"IPv6 hop", "::1", F("X-Forwarded-For: 2001:db8::5"), "2001:db8::5"},
        {"IPv4 with a port", "127.0.0.1", F("X-Forwarded-For: 198.51.100.1:5555"), "198.51.100.1"},
        {"bracketed IPv6 with a port", "127.0.0.1", F("X-Forwarded-For: [2001:db8::5]:443"), "2001:db8::5"},
        {"garbage hop: the proxy's word stops there", "127.0.0.1", F("X-Forwarded-For: 192.0.2.66, garbage"),
         "127.0.0.1"},
        {"garbage left of the client", "127.0.0.1", F("X-Forwarded-For: <script>, 198.51.100.1"),
         "198.51.100.1"},
        {"empty field", "127.0.0.1", F("X-Forwarded-For: "), "127.0.0.1"},
        {"IPv4-mapped peer", "::ffff:127.0.0.1", F("X-Forwarded-For: 198.51.100.1"), "198.51.100.1"},
        {"Forwarded", "127.0.0.1", F("Forwarded: for=198.51.100.3;proto=https;by=203.0.113.1"),
         "198.51.100.3"},
        {"Forwarded quoted IPv6 with a port", "127.0.0.1", F("Forwarded: for=\"[2001:db8:cafe::17]:4711\""),
         "2001:db8:cafe::17"},
        {"Forwarded case and spaces", "127.0.0.1", F("Forwarded: proto=http; For=198.51.100.4"),
         "198.51.100.4"},
        {"Forwarded list, from the right", "127.0.0.1",
         F("Forwarded: for=192.0.2.66, for=198.51.100.5, for=203.0.113.9"), "198.51.100.5"},
        {"Forwarded over two fields", "127.0.0.1",
         F("Forwarded: for=192.0.2.66", "Forwarded: for=198.51.100.6"), "198.51.100.6"},
        {"Forwarded unknown", "127.0.0.1", F("Forwarded: for=unknown"), "127.0.0.1"},
        {"Forwarded obfuscated", "127.0.0.1", F("Forwarded: for=_hidden, for=198.51.100.7"), "198.51.100.7"},
        {"Forwarded quoted comma", "127.0.0.1", F("Forwarded: for=\"192.0.2.66,x\";by=a, for=198.51.100.8"),
         "198.51.100.8"},
        {"Forwarded without for", "127.0.0.1", F("Forwarded: proto=https"), "127.0.0.1"},
        {"X-Forwarded-For wins over Forwarded", "127.0.0.1",
         F("Forwarded: for=192.0.2.66", "X-Forwarded-For: 198.51.100.9"), "198.51.100.9"},
        {"peer not an address", "unix", F("X-Forwarded-For: 198.51.100.1"), "unix"},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        const char *got = resolve(rows[i].peer, rows[i].fields);
        CHECKF(strcmp(got, rows[i].want) == 0, rows[i].name);
        if (strcmp(got, rows[i].want) != 0) fprintf(stderr, "  got %s, want %s\n", got, rows[i].want);
    }
    /* Without trusted proxies nothing is read. */
    CHECK(qun_proxy_set("", &err) == QUN_OK);
    CHECK_STR(resolve("127.0.0.1", F("X-Forwarded-For: 198.51.100.1")), "127.0.0.1");
}

int main(void) {
    RUN(cidr_lists);
    RUN(client_address);
    return unit_done("http/proxy");
}
