/* SPDX-License-Identifier: MIT */
/* Unit tests of src/store/store.c, the front that picks a backend: the capability
 * questions callers ask instead of reading connection strings, and the readiness ping. */
#include "qun/store.h"
#include "unit.h"

/* Only a PostgreSQL URL names a backend with notifications between processes. */
static void test_listens(void) {
    static const struct {
        const char *conn;
        bool listens;
    } cases[] = {
        {"postgres://qun@localhost/qun", true},
        {"postgresql://qun@localhost/qun", true},
        {"sqlite:/var/lib/qun/qun.db", false},
        {"/var/lib/qun/qun.db", false},
        {":memory:", false},
        {"postgres:/not-a-url", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(qun_store_listens(cases[i].conn) == cases[i].listens);
}

static void test_ping(void) {
    qun_db_t *db;
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    CHECK(qun_db_ping(db, &err) == QUN_OK);
    qun_db_close(db);
}

int main(void) {
    qun_store_init();
    RUN(test_listens);
    RUN(test_ping);
    return unit_done("test_store_store");
}
