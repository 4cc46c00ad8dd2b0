/* SPDX-License-Identifier: MIT */
/* Unit tests of the router's path matching (src/http/router.c) and of the
 * declarative field checks (src/http/fields.c). */
#include <stdlib.h>

#include "../../src/http/http.h"
#include "unit.h"

static int match(const char *m, const char *p, char *params[QUN_MAX_PARAMS]) {
    for (int i = 0; i < QUN_MAX_PARAMS; i++)
        params[i] = NULL;
    return qun_route_match(m, p, params);
}

static void clear(char *params[QUN_MAX_PARAMS]) {
    for (int i = 0; i < QUN_MAX_PARAMS; i++)
        free(params[i]);
}

/* A path and method either match a route (its pattern and captured parameters) or
 * answer -1 (no such path) or -2 (the path exists, the method does not). */
static void route_matching(void) {
    static const struct {
        const char *name, *method, *path;
        int rc;              /* 0: a route matched; else the exact answer */
        const char *pattern; /* of the matched route, or NULL not to check it */
        const char *p0, *p1; /* captured parameters, or NULL not to check them */
    } rows[] = {
        {"members of a group", "GET", "/v1/groups/g_abc/members", 0, "/v1/groups/:/members", "g_abc", NULL},
        {"one member", "PATCH", "/v1/groups/g1/members/u2", 0, NULL, "g1", "u2"},
        {"method not allowed", "PUT", "/v1/groups", -2, NULL, NULL, NULL},
        {"unknown path", "GET", "/v1/nothing", -1, NULL, NULL, NULL},
        {"empty segment", "GET", "/v1/groups//members", -1, NULL, NULL, NULL},
        {"trailing slash", "GET", "/v1/groups/g1/members/", -1, NULL, NULL, NULL},
        {"dissolution preview", "POST", "/v1/groups/g1/dissolution/preview", 0, NULL, NULL, NULL},
    };
    for (size_t r = 0; r < NROWS(rows); r++) {
        char *p[QUN_MAX_PARAMS];
        int i = match(rows[r].method, rows[r].path, p);
        if (rows[r].rc) {
            CHECKF(i == rows[r].rc, rows[r].name);
        } else {
            CHECKF(i >= 0, rows[r].name);
            if (rows[r].pattern)
                CHECKF(i >= 0 && strcmp(qun_routes[i].pattern, rows[r].pattern) == 0, rows[r].name);
            if (rows[r].p0) CHECKF(p[0] && strcmp(p[0], rows[r].p0) == 0, rows[r].name);
            if (rows[r].p1) CHECKF(p[1] && strcmp(p[1], rows[r].p1) == 0, rows[r].name);
        }
        clear(p);
    }
}

/* Every route is unique. */
static void routes_unique(void) {
    for (int a = 0; a < qun_routes_count; a++)
        for (int b = a + 1; b < qun_routes_count; b++)
            CHECKF(!(strcmp(qun_routes[a].method, qun_routes[b].method) == 0 &&
                     strcmp(qun_routes[a].pattern, qun_routes[b].pattern) == 0),
                   qun_routes[b].pattern);
}

/* A body is checked against a field table: the first offending field is named. */
static void field_checks(void) {
    static const qun_field_t f[] = {{"name", F_STR, true, 1, 5, NULL},
                                    {"kind", F_STR, false, 1, 16, "a|bb"},
                                    {"n", F_INT, false, 1, 10, NULL},
                                    {0}};
    static const struct {
        const char *name, *body;
        qun_rc rc;
        const char *field; /* err.field on a refusal, or NULL not to check it */
    } rows[] = {
        {"all fields good", "{\"name\":\"abc\",\"kind\":\"bb\",\"n\":3}", QUN_OK, NULL},
        {"string too long", "{\"name\":\"abcdef\"}", QUN_FIELD_INVALID, "name"},
        {"required field missing", "{\"kind\":\"a\"}", QUN_FIELD_MISSING, "name"},
        {"value not in the set", "{\"name\":\"a\",\"kind\":\"b\"}", QUN_FIELD_INVALID, NULL},
        {"unknown field", "{\"name\":\"a\",\"extra\":1}", QUN_FIELD_UNKNOWN, "extra"},
        {"integer too big", "{\"name\":\"a\",\"n\":11}", QUN_FIELD_INVALID, NULL},
        {"integer as a string", "{\"name\":\"a\",\"n\":\"3\"}", QUN_FIELD_INVALID, NULL},
    };
    for (size_t r = 0; r < NROWS(rows); r++) {
        qun_err_t err = {{0}, {0}};
        json_t *b = json_loads(rows[r].body, 0, NULL);
        qun_rc rc = qun_fields_check(b, f, &err);
        if (rows[r].field)
            CHECKF(rc == rows[r].rc && strcmp(err.field, rows[r].field) == 0, rows[r].name);
        else
            CHECKF(rc == rows[r].rc, rows[r].name);
        json_decref(b);
    }
}

/* Every error code has a 4xx/5xx status and an upper-snake name. */
static void error_table(void) {
    for (int rc = 1; rc < QUN__COUNT; rc++) {
        CHECKF(qun_rc_status(rc) >= 400 && qun_rc_status(rc) < 600, qun_rc_name(rc));
        for (const char *s = qun_rc_name(rc); *s; s++)
            CHECKF((*s >= 'A' && *s <= 'Z') || *s == '_', qun_rc_name(rc));
    }
}

int main(void) {
    RUN(route_matching);
    RUN(routes_unique);
    RUN(field_checks);
    RUN(error_table);
    return unit_done("http/router");
}
