/* SPDX-License-Identifier: MIT */
/* Unit tests of src/common/json.c: qun_json_dumps (util.c, on json.c's line buffer)
 * writes jansson's text; qun_json_compact writes what jansson's compact
 * encoder writes, byte for byte (every escape, order after deletions, limits, random
 * trees); qun_json_top_int reads the same integer jansson reads from the same text, on
 * the payloads qun writes and on texts built to mislead a scanner (the key inside
 * strings and nested values, escapes, limits). */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "qun/json.h"
#include "qun/util.h"
#include "unit.h"

/* What jansson says: found (an integer at key) and its value. */
static bool by_jansson(const char *text, const char *key, int64_t *v) {
    json_t *o = json_loads(text, JSON_DECODE_ANY, NULL);
    json_t *x = json_object_get(o, key);
    bool found = json_is_integer(x);
    *v = found ? json_integer_value(x) : 0;
    json_decref(o);
    return found;
}

static void agrees(const char *text, const char *key) {
    int64_t mine = -7, theirs = -7;
    bool found = qun_json_top_int(text, key, &mine);
    bool jfound = by_jansson(text, key, &theirs);
    CHECK(found == jfound && mine == theirs);
    if (found != jfound || mine != theirs)
        fprintf(stderr, "  %s in %s: %d %lld, jansson %d %lld\n", key, text, found, (long long)mine, jfound,
                (long long)theirs);
}

static void test_payloads(void) {
    const char *msg = "{\"group\":\"g_1\",\"seq\":42,\"author\":\"u_2\",\"author_display_name\":null,"
                      "\"kind\":\"text\",\"text\":\"hi \\\"seq\\\":7 }\",\"created_at\":1700000000}";
    agrees(msg, "seq");
    agrees(msg, "created_at");
    agrees(msg, "author"); /* a string: not found */
    agrees(msg, "author_display_name");
    agrees(msg, "missing");
    agrees("{\"type\":\"x\",\"group_id\":9}", "group_id");
    agrees("{\"file\":{\"seq\":5,\"size\":3},\"seq\":6}", "seq");
    agrees("{\"a\":[1,{\"seq\":2},\"]}\"],\"seq\":3}", "seq");
    agrees("{\"a\":\"\\\\\",\"seq\":4}", "seq"); /* a string ending in an escaped backslash */
    agrees(" { \"seq\" : -12 , \"b\" : true } ", "seq");
    agrees("{\"seq\":9223372036854775807}", "seq");
    agrees("{\"seq\":-9223372036854775808}", "seq");
    agrees("{\"seq\":1.5}", "seq");
    agrees("{\"seq\":1e3}", "seq");
    agrees("{\"seq\":\"3\"}", "seq");
    agrees("{\"seq\":true}", "seq");
    agrees("{}", "seq");
    agrees("{\"se\":1,\"seqq\":2}", "seq");
}

static void test_not_objects(void) {
    int64_t v = 1;
    const char *bad[] = {"",
                         "[1,2]",
                         "\"seq\"",
                         "{\"seq\"",
                         "{\"seq\":",
                         "{\"a\":\"unterminated",
                         "{\"a\":{\"b\":1",
                         "{\"a\":1 \"seq\":2}",
                         "{\"seq\":99999999999999999999}",
                         "{\"seq\":-}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 1;
        CHECK(!qun_json_top_int(bad[i], "seq", &v) && v == 0);
    }
}

static int same_as_jansson(const json_t *v) {
    char *mine = qun_json_compact(v), *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int same = mine && theirs && strcmp(mine, theirs) == 0;
    if (!same)
        fprintf(stderr, "  compact: %s\n  jansson: %s\n", mine ? mine : "(null)", theirs ? theirs : "(null)");
    free(mine);
    free(theirs);
    return same;
}

static uint32_t rnd_state = 7;
static uint32_t rnd(uint32_t n) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

/* A random string: ASCII, every control character, quotes, backslashes, slashes, DEL,
 * two- to four-byte UTF-8, and NUL. */
static json_t *rnd_string(void) {
    static const char *const parts[] = {"a",
                                        "Zz",
                                        " ",
                                        "\"",
                                        "\\",
                                        "/",
                                        "\x7f",
                                        "\xc3\xa9",
                                        "\xe8\xaf\xbe",
                                        "\xf0\x9f\x98\x80",
                                        "\xe2\x80\xa8",
                                        "seq"};
    char buf[128];
    size_t n = 0, k = rnd(8);
    for (size_t i = 0; i < k; i++) {
        if (rnd(4) == 0) {
            buf[n++] = (char)rnd(0x20); /* a control character, NUL included */
            continue;
        }
        const char *p = parts[rnd(sizeof parts / sizeof parts[0])];
        memcpy(buf + n, p, strlen(p));
        n += strlen(p);
    }
    return json_stringn(buf, n);
}

static json_t *rnd_value(int depth) {
    switch (rnd(depth > 3 ? 6 : 8)) {
    case 0: return json_null();
    case 1: return json_boolean(rnd(2));
    case 2: {
        static const json_int_t ints[] = {0, 1, -1, 9, 10, -10, 1700000000123, INT64_MAX, INT64_MIN};
        return json_integer(rnd(2) ? ints[rnd(9)] : (json_int_t)rnd(1u << 31) - (1 << 30));
    }
    case 3: {
        static const double reals[] = {0.5, -0.0, 1e300, 3.0, 0.1, 123456.789, -2.5e-7};
        return json_real(reals[rnd(7)]);
    }
    case 4:
    case 5: return rnd_string();
    case 6: {
        json_t *a = json_array();
        for (uint32_t i = rnd(5); i > 0; i--)
            json_array_append_new(a, rnd_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (uint32_t i = rnd(6); i > 0; i--) {
            json_t *k = rnd_string();
            json_object_setn_new(o, json_string_value(k), json_string_length(k), rnd_value(depth + 1));
            json_decref(k);
        }
        if (json_object_size(o) > 2 && rnd(2)) { /* a deletion, then one more key */
            void *it = json_object_iter(o);
            json_object_del(o, json_object_iter_key(it));
            json_object_set_new(o, "after", json_integer(1));
        }
        return o;
    }
    }
}

static void test_compact(void) {
    json_t *v =
        json_pack("{s:s, s:I, s:[i, b, n, {}], s:{}, s:[], s:f}", "text", "line\n\t\"q\" \\ / \x01\x1f\x7f",
                  "ts", (json_int_t)1700000000123, "a", 1, 1, "empty", "none", "pi", 3.25);
    CHECK(same_as_jansson(v));
    json_decref(v);
    for (int c = 0; c < 0x80; c++) { /* every ASCII character alone */
        char s[1] = {(char)c};
        v = json_stringn(s, 1);
        CHECK(same_as_jansson(v));
        json_decref(v);
    }
    int differ = 0;
    for (int i = 0; i < 3000; i++) {
        v = rnd_value(0);
        if (!same_as_jansson(v)) differ++;
        json_decref(v);
    }
    CHECK(differ == 0);
    /* Deeper than the limit: refused, as jansson refuses a cycle. */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < 1100; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    char *t = qun_json_compact(deep);
    CHECK(t == NULL);
    free(t);
    json_decref(deep);
}

/* qun_json_dumps (src/common/util.c), jansson's encoder into the same line buffer: its
 * text, sorted keys included, and NULL where jansson refuses. */
static void test_dumps(void) {
    int differ = 0;
    for (int i = 0; i < 300; i++) {
        json_t *v = rnd_value(0);
        char *mine = qun_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *theirs = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!mine || !theirs || strcmp(mine, theirs) != 0) differ++;
        free(mine);
        free(theirs);
        json_decref(v);
    }
    CHECK(differ == 0);
    json_t *n = json_integer(3);
    CHECK(qun_json_dumps(n, JSON_COMPACT) == NULL); /* not a container, no JSON_ENCODE_ANY */
    json_decref(n);
    CHECK(qun_json_dumps(NULL, JSON_COMPACT) == NULL);
}

int main(void) {
    RUN(test_compact);
    RUN(test_dumps);
    RUN(test_payloads);
    RUN(test_not_objects);
    return unit_done("test_common_json");
}
