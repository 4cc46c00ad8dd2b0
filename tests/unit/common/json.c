/* SPDX-License-Identifier: MIT */
/* Unit tests of src/common/json.c's qun_json_top_int: the same integer jansson reads
 * from the same text, on the payloads qun writes and on texts built to mislead a
 * scanner (the key inside strings and nested values, escapes, limits). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qun/json.h"
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
    const char *bad[] = {"", "[1,2]", "\"seq\"", "{\"seq\"", "{\"seq\":", "{\"a\":\"unterminated",
                         "{\"a\":{\"b\":1", "{\"a\":1 \"seq\":2}", "{\"seq\":99999999999999999999}",
                         "{\"seq\":-}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 1;
        CHECK(!qun_json_top_int(bad[i], "seq", &v) && v == 0);
    }
}

int main(void) {
    RUN(test_payloads);
    RUN(test_not_objects);
    return unit_done("test_common_json");
}
