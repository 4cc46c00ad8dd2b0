/* SPDX-License-Identifier: MIT */
/* qun admin: operator commands.  `qun admin migrate --from sqlite:PATH --to
 * postgres://...` works on the stores directly, not through qund: it moves an
 * installation from SQLite to PostgreSQL in one transaction on the target
 * (src/store/copy.c).  `qun admin username-collisions` asks qund (server admins) which
 * accounts' usernames were one name once folded (docs/accounts.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "qun/store.h"

int qun_cmd_admin(qun_cli_t *c, int argc, char **argv);

static const char USAGE[] =
    "admin migrate --from sqlite:PATH --to postgres://... | admin username-collisions";

typedef struct {
    bool json;
    json_t *tables;
    int64_t total;
} report_t;

static void on_table(void *arg, const char *table, int64_t rows) {
    report_t *r = arg;
    r->total += rows;
    if (r->json)
        json_object_set_new(r->tables, table, json_integer(rows));
    else
        printf("%-28s %12lld rows\n", table, (long long)rows);
    fflush(stdout);
}

static int migrate(qun_cli_t *c, int argc, char **argv) {
    const char *from = NULL, *to = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else
            return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "usage: qun %s", USAGE);
    }
    if (!from || !to) return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "usage: qun %s", USAGE);
    qun_store_init();
    report_t r = {c->json, json_object(), 0};
    qun_err_t err = {{0}, {0}};
    qun_rc rc = qun_store_copy(from, to, on_table, &r, &err);
    if (rc != QUN_OK) {
        json_decref(r.tables);
        return qun_cli_fail(rc == QUN_BAD_REQUEST ? QUN_EXIT_USAGE : QUN_EXIT_FAIL, qun_rc_name(rc), "%s",
                            err.msg[0] ? err.msg : qun_rc_title(rc));
    }
    if (r.json) {
        json_t *out = json_pack("{s:o, s:I}", "tables", r.tables, "rows", (json_int_t)r.total);
        char *text = json_dumps(out, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(out);
    } else {
        json_decref(r.tables);
        printf("migrated %lld rows in one transaction\n", (long long)r.total);
    }
    return QUN_EXIT_OK;
}

/* GET /v1/admin/username-collisions, every page: who logs in by exact username only. */
static int username_collisions(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL, *it;
    size_t i;
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "admin username-collisions", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, "/v1/admin/username-collisions", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else if (json_array_size(json_object_get(out, "items")) == 0) {
        printf("no username collisions\n");
    } else {
        json_array_foreach(json_object_get(out, "items"), i, it) {
            json_t *u = json_object_get(it, "user"), *h = json_object_get(it, "holder");
            printf("%s (%s) logs in by its exact name only; the older %s (%s) holds the name \"%s\"\n",
                   qun_jstr_or(u, "username", "?"), qun_jstr_or(u, "openid", "?"),
                   qun_jstr_or(h, "username", "?"), qun_jstr_or(h, "openid", "?"),
                   qun_jstr_or(it, "username_key", "?"));
        }
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_admin(qun_cli_t *c, int argc, char **argv) {
    if (argc > 0 && strcmp(argv[0], "migrate") == 0) return migrate(c, argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "username-collisions") == 0)
        return username_collisions(c, argc - 1, argv + 1);
    return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "usage: qun %s", USAGE);
}
