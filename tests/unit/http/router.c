/* SPDX-License-Identifier: MIT */
/* Unit tests of the router's path matching (src/http/router.c) and of the
 * declarative field checks (src/http/fields.c). */
#include <stdlib.h>

#include "../../src/http/http.h"
#include "unit.h"

static int match(const char *m, const char *p, char *params[QUN_MAX_PARAMS]) {
    for (int i = 0; i < QUN_MAX_PARAMS; i++) params[i] = NULL;
    return qun_route_match(m, p, params);
}

static void clear(char *params[QUN_MAX_PARAMS]) {
    for (int i = 0; i < QUN_MAX_PARAMS; i++) free(params[i]);
}

int main(void) {
    char *p[QUN_MAX_PARAMS];
    int i = match("GET", "/v1/groups/g_abc/members", p);
    CHECK(i >= 0 && strcmp(qun_routes[i].pattern, "/v1/groups/:/members") == 0);
    CHECK(p[0] && strcmp(p[0], "g_abc") == 0);
    clear(p);
    i = match("PATCH", "/v1/groups/g1/members/u2", p);
    CHECK(i >= 0 && p[0] && p[1] && strcmp(p[1], "u2") == 0);
    clear(p);
    CHECK(match("PUT", "/v1/groups", p) == -2);     /* path exists, method does not */
    CHECK(match("GET", "/v1/nothing", p) == -1);
    CHECK(match("GET", "/v1/groups//members", p) == -1); /* empty segment */
    CHECK(match("GET", "/v1/groups/g1/members/", p) == -1);
    CHECK(match("POST", "/v1/groups/g1/dissolution/preview", p) >= 0);
    clear(p);

    /* Every route is unique. */
    for (int a = 0; a < qun_routes_count; a++)
        for (int b = a + 1; b < qun_routes_count; b++)
            CHECK(!(strcmp(qun_routes[a].method, qun_routes[b].method) == 0 &&
                    strcmp(qun_routes[a].pattern, qun_routes[b].pattern) == 0));

    static const qun_field_t f[] = {
        {"name", F_STR, true, 1, 5, NULL},
        {"kind", F_STR, false, 1, 16, "a|bb"},
        {"n", F_INT, false, 1, 10, NULL},
        {0}};
    qun_err_t err;
    json_t *b = json_loads("{\"name\":\"abc\",\"kind\":\"bb\",\"n\":3}", 0, NULL);
    CHECK(qun_fields_check(b, f, &err) == QUN_OK);
    json_decref(b);
    b = json_loads("{\"name\":\"abcdef\"}", 0, NULL);
    CHECK(qun_fields_check(b, f, &err) == QUN_FIELD_INVALID && strcmp(err.field, "name") == 0);
    json_decref(b);
    b = json_loads("{\"kind\":\"a\"}", 0, NULL);
    CHECK(qun_fields_check(b, f, &err) == QUN_FIELD_MISSING && strcmp(err.field, "name") == 0);
    json_decref(b);
    b = json_loads("{\"name\":\"a\",\"kind\":\"b\"}", 0, NULL);
    CHECK(qun_fields_check(b, f, &err) == QUN_FIELD_INVALID);
    json_decref(b);
    b = json_loads("{\"name\":\"a\",\"extra\":1}", 0, NULL);
    CHECK(qun_fields_check(b, f, &err) == QUN_FIELD_UNKNOWN && strcmp(err.field, "extra") == 0);
    json_decref(b);
    b = json_loads("{\"name\":\"a\",\"n\":11}", 0, NULL);
    CHECK(qun_fields_check(b, f, &err) == QUN_FIELD_INVALID);
    json_decref(b);
    b = json_loads("{\"name\":\"a\",\"n\":\"3\"}", 0, NULL);
    CHECK(qun_fields_check(b, f, &err) == QUN_FIELD_INVALID);
    json_decref(b);

    /* Every error code has a 4xx/5xx status and an upper-snake name. */
    for (int rc = 1; rc < QUN__COUNT; rc++) {
        CHECK(qun_rc_status(rc) >= 400 && qun_rc_status(rc) < 600);
        for (const char *s = qun_rc_name(rc); *s; s++) CHECK((*s >= 'A' && *s <= 'Z') || *s == '_');
    }
    return unit_done("http_router");
}
