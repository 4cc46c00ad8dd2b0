/* SPDX-License-Identifier: MIT */
/* qun admin: operator commands.  `qun admin migrate --from sqlite:PATH --to
 * postgres://...` works on the stores directly, not through qund: it moves an
 * installation from SQLite to PostgreSQL in one transaction on the target
 * (src/store/copy.c).  `qun admin username-collisions` asks qund (server admins) which
 * accounts' usernames were one name once folded (docs/accounts.md).  `qun admin users`,
 * `user`, `disable`, `enable` and `reset-password` administer accounts through
 * /v1/admin/users (server admins; docs/admin.md); USER is a username or an openid. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "qun/store.h"

int qun_cmd_admin(qun_cli_t *c, int argc, char **argv);
int qun_cmd_admin_backup(qun_cli_t *c, int argc, char **argv);
int qun_cmd_admin_restore(qun_cli_t *c, int argc, char **argv);

static const char USAGE[] =
    "admin migrate --from sqlite:PATH --to postgres://... | admin username-collisions | admin users [PREFIX] "
    "| "
    "admin user USER | admin disable USER | admin enable USER | admin reset-password USER | "
    "admin backup DIR [--data DATA_DIR] [--config FILE] [--store URL] | admin restore DIR DATA_DIR";

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
    else {
        char n[24], line[80];
        snprintf(n, sizeof n, "%12lld", (long long)rows);
        qun_print_col(table, 28);
        printf("%s\n", qun_wf(line, sizeof line, "cli.migrate_rows", n));
    }
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
            return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", USAGE);
    }
    if (!from || !to) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", USAGE);
    qun_store_init();
    report_t r = {c->json, json_object(), 0};
    qun_err_t err = {{0}, {0}};
    qun_rc rc = qun_store_copy(from, to, on_table, &r, &err);
    if (rc != QUN_OK) {
        json_decref(r.tables);
        return qun_cli_fail(rc == QUN_BAD_REQUEST ? QUN_EXIT_USAGE : QUN_EXIT_FAIL, qun_rc_name(rc), "%s",
                            qun_detail_words(qun_rc_name(rc), err.msg[0] ? err.msg : qun_rc_title(rc)));
    }
    if (r.json) {
        json_t *out = json_pack("{s:o, s:I}", "tables", r.tables, "rows", (json_int_t)r.total);
        char *text = json_dumps(out, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(out);
    } else {
        json_decref(r.tables);
        char n[24];
        qun_say("cli.migrated", qun_fmt_int(r.total, n));
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
        qun_say("cli.collisions_none");
    } else {
        json_array_foreach(json_object_get(out, "items"), i, it) {
            json_t *u = json_object_get(it, "user"), *h = json_object_get(it, "holder");
            qun_say("cli.collision", qun_jstr_or(u, "username", "?"), qun_jstr_or(u, "openid", "?"),
                    qun_jstr_or(h, "username", "?"), qun_jstr_or(h, "openid", "?"),
                    qun_jstr_or(it, "username_key", "?"));
        }
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

/* The openid of USER: an exact username among the accounts it prefixes, else USER
 * itself when it is an openid (u_...). */
static int user_openid(qun_cli_t *c, const char *user, char *openid, size_t size) {
    char path[512];
    json_t *out = NULL, *it;
    size_t i;
    int rc = qun_pathf(path, sizeof path, "/v1/admin/users?prefix=%s", user);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    bool found = false;
    json_array_foreach(json_object_get(out, "items"), i, it) {
        if (strcmp(qun_jstr_or(it, "username", ""), user) == 0) {
            snprintf(openid, size, "%s", qun_jstr_or(it, "openid", ""));
            found = true;
            break;
        }
    }
    json_decref(out);
    if (found) return QUN_EXIT_OK;
    if (strncmp(user, "u_", 2) == 0 && strlen(user) < size) {
        snprintf(openid, size, "%s", user);
        return QUN_EXIT_OK;
    }
    return qun_failw(QUN_EXIT_FAIL, "USER_NOT_FOUND", "cli.err.no_account", user);
}

static const char *state_of(json_t *u) {
    if (json_is_true(json_object_get(u, "disabled"))) return qun_w("cli.user_state.disabled");
    if (json_is_true(json_object_get(u, "password_change_required")))
        return qun_w("cli.user_state.must_change");
    return qun_w("cli.user_state.active");
}

/* GET /v1/admin/users, every page. */
static int users(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL, *it;
    size_t i;
    char path[512] = "/v1/admin/users", t1[32], t2[32];
    int rc = qun_args_parse(argc, argv, NULL, 0, 1, "admin users [PREFIX]", &a);
    if (rc == QUN_EXIT_OK && a.npos == 1)
        rc = qun_pathf(path, sizeof path, "/v1/admin/users?prefix=%s", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_get_all(c, path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else if (json_array_size(json_object_get(out, "items")) == 0) {
        qun_say("cli.accounts_none");
    } else {
        static const char *const cols[] = {"cli.col.username", "cli.col.display_name", "cli.col.created",
                                           "cli.col.last_seen", "cli.col.state"};
        size_t w[] = {24, 24, 16, 16, 0};
        qun_print_header(cols, w, 5);
        json_array_foreach(json_object_get(out, "items"), i, it) {
            const char *cells[] = {qun_jstr_or(it, "username", "?"), qun_jstr_or(it, "display_name", "-"),
                                   qun_fmt_time(qun_jint(it, "created_at"), t1),
                                   qun_fmt_time(qun_jint(it, "last_seen"), t2), state_of(it)};
            qun_print_row(cells, w, 5);
        }
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

/* admin user|disable|enable|reset-password USER */
static int one_user(qun_cli_t *c, const char *verb, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL, *g;
    size_t i;
    char usage[64], openid[128], path[256], t[32];
    snprintf(usage, sizeof usage, "admin %s USER", verb);
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, usage, &a);
    if (rc == QUN_EXIT_OK) rc = user_openid(c, a.pos[0], openid, sizeof openid);
    bool get = strcmp(verb, "user") == 0, reset = strcmp(verb, "reset-password") == 0;
    if (rc == QUN_EXIT_OK)
        rc = get ? qun_pathf(path, sizeof path, "/v1/admin/users/%s", openid)
                 : qun_pathf(path, sizeof path,
                             reset ? "/v1/admin/users/%s/password-reset" : "/v1/admin/users/%s/%s", openid,
                             verb);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, get ? "GET" : "POST", path, get ? NULL : json_object(), &out);
    if (rc != QUN_EXIT_OK) return rc;
    const char *name = qun_jstr_or(out, "username", "?");
    if (c->json) {
        qun_print_json(out);
    } else if (reset) {
        qun_say("cli.reset_done", name);
        qun_say("cli.reset_code", qun_jstr_or(out, "code", "?"));
        qun_say("cli.reset_next", name);
    } else if (!get) {
        char line[300], more[80] = "", n[24];
        if (qun_jint(out, "sessions_revoked") > 0)
            qun_wf(more, sizeof more, "cli.sessions_revoked",
                   qun_fmt_int(qun_jint(out, "sessions_revoked"), n));
        printf("%s%s\n", qun_wf(line, sizeof line, "cli.user_state", name, state_of(out)), more);
    } else {
        static const char *const labels[] = {"cli.label.openid",  "cli.label.display_name",
                                             "cli.label.created", "cli.label.last_seen",
                                             "cli.label.state",   "cli.label.groups"};
        size_t w = qun_label_width(labels, sizeof labels / sizeof labels[0], 11);
        printf("%s\n", name);
        qun_field(w, "cli.label.openid", qun_jstr_or(out, "openid", "?"));
        qun_field(w, "cli.label.display_name", qun_jstr_or(out, "display_name", qun_w("cli.value.none")));
        qun_field(w, "cli.label.created", qun_fmt_time(qun_jint(out, "created_at"), t));
        qun_field(w, "cli.label.last_seen", qun_fmt_time(qun_jint(out, "last_seen"), t));
        qun_field(w, "cli.label.state", state_of(out));
        json_t *groups = json_object_get(out, "groups");
        qun_field(w, "cli.label.groups", json_array_size(groups) ? "" : qun_w("cli.value.none"));
        static const size_t gw[] = {32, 8, 0};
        json_array_foreach(groups, i, g) {
            const char *cells[] = {qun_jstr_or(g, "name", "?"), qun_jstr_or(g, "role", "?"),
                                   qun_jstr_or(g, "state", "?")};
            fputs("    ", stdout);
            qun_print_row(cells, gw, 3);
        }
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_admin(qun_cli_t *c, int argc, char **argv) {
    if (argc > 0 && strcmp(argv[0], "backup") == 0) return qun_cmd_admin_backup(c, argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "restore") == 0) return qun_cmd_admin_restore(c, argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "users") == 0) return users(c, argc - 1, argv + 1);
    static const char *verbs[] = {"user", "disable", "enable", "reset-password"};
    for (size_t i = 0; argc > 0 && i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(argv[0], verbs[i]) == 0) return one_user(c, verbs[i], argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "migrate") == 0) return migrate(c, argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "username-collisions") == 0)
        return username_collisions(c, argc - 1, argv + 1);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", USAGE);
}
