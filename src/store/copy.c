/* SPDX-License-Identifier: MIT */
/* Moving an installation from SQLite to PostgreSQL (`qun admin migrate`): every row
 * of every table of the SQLite database, read in one snapshot, written in one
 * transaction on the PostgreSQL database, which must be at the same schema version
 * and empty.  Values keep their bytes (integers and text as text, blobs as bytea), so
 * the ledger's entries, leaves and nodes hash to the same root; identity sequences
 * are moved past the highest id ever handed out (SQLite's sqlite_sequence included,
 * so event ids keep increasing after the move).  Virtual tables and their shadow tables
 * (the FTS5 message search index, messages_fts*) and its queues search_pending,
 * search_gone and search_state are derived data and are not copied: PostgreSQL builds
 * its own search index as the message rows arrive.
 *
 * Statements here are built at run time (one per table), and the statement caches
 * are keyed by the SQL text's address, so every text lives until both connections
 * are closed: this file opens and closes them itself. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/store.h"
#include "qun/util.h"

typedef struct {
    char **sql; /* built statements, freed after the connections close */
    size_t n, cap;
} texts_t;

/* printf into a string kept in t until the end of the copy. */
__attribute__((format(printf, 2, 3))) static const char *keep(texts_t *t, const char *fmt, ...) {
    if (t->n == t->cap) {
        char **grown = qun_xcalloc(t->cap ? 2 * t->cap : 64, sizeof *grown);
        if (t->n) memcpy(grown, t->sql, t->n * sizeof *grown);
        free(t->sql);
        t->sql = grown;
        t->cap = t->cap ? 2 * t->cap : 64;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) abort(); /* out of memory, as qun_xmalloc */
    va_end(ap);
    t->sql[t->n++] = s;
    return s;
}

/* A table or column name as it appears in our DDL: lower case, digits, underscores. */
static bool plain_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

#define MAX_COLS 63

typedef struct {
    char name[64];
    bool bytea, identity;
} col_t;

/* The columns of table on the source, with the target's type of each. */
static qun_rc columns(qun_db_t *src, qun_db_t *dst, const char *table, col_t *cols, int *ncols,
                      qun_err_t *err) {
    qun_q_t *q;
    *ncols = 0;
    qun_rc rc = qun_db_run(src, &q, err, "SELECT name FROM pragma_table_info($1) ORDER BY cid", "s", table);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        const char *name = qun_q_col_text(q, 0);
        if (*ncols == MAX_COLS || !plain_name(name)) {
            qun_q_done(q);
            return qun_fail(err, QUN_BAD_REQUEST, "table %s: unexpected column %s", table, name);
        }
        col_t *c = &cols[(*ncols)++];
        snprintf(c->name, sizeof c->name, "%s", name);
        c->bytea = c->identity = false;
    }
    if (rc != QUN_DONE) return rc;
    for (int i = 0; i < *ncols; i++) {
        rc = qun_db_run(dst, &q, err,
                        "SELECT data_type, is_identity FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
                        "ss", table, cols[i].name);
        if (rc == QUN_DONE)
            return qun_fail(err, QUN_BAD_REQUEST, "the target has no column %s.%s", table, cols[i].name);
        if (rc != QUN_ROW) return rc;
        cols[i].bytea = strcmp(qun_q_col_text(q, 0), "bytea") == 0;
        cols[i].identity = strcmp(qun_q_col_text(q, 1), "YES") == 0;
        qun_q_done(q);
    }
    return QUN_OK;
}

/* The highest id SQLite ever handed out for table (AUTOINCREMENT), or 0. */
static int64_t sqlite_seq(qun_db_t *src, const char *table) {
    qun_q_t *q;
    qun_err_t ignore;
    int64_t v = 0;
    if (qun_db_run(src, &q, &ignore, "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'", "") !=
        QUN_ROW)
        return 0;
    qun_q_done(q);
    if (qun_db_run(src, &q, &ignore, "SELECT seq FROM sqlite_sequence WHERE name = $1", "s", table) ==
        QUN_ROW) {
        v = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return v;
}

static qun_rc copy_table(qun_db_t *src, qun_db_t *dst, const char *table, bool rowid, texts_t *t,
                         int64_t *rows, qun_err_t *err) {
    col_t cols[MAX_COLS];
    int n;
    *rows = 0;
    qun_rc rc = columns(src, dst, table, cols, &n, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    rc = qun_db_run(dst, &q, err, keep(t, "SELECT 1 FROM %s LIMIT 1", table), "");
    if (rc == QUN_ROW) {
        qun_q_done(q);
        return qun_fail(err, QUN_BAD_REQUEST,
                        "the target's table %s is not empty: migrate into a new database", table);
    }
    if (rc != QUN_DONE) return rc;
    char list[MAX_COLS * 66] = "", params[MAX_COLS * 5] = "";
    for (int i = 0; i < n; i++) {
        size_t l = strlen(list), p = strlen(params);
        snprintf(list + l, sizeof list - l, "%s%.63s", i ? ", " : "", cols[i].name);
        snprintf(params + p, sizeof params - p, "%s$%d", i ? ", " : "", i + 1);
    }
    const char *sel = keep(t, "SELECT %s FROM %s%s", list, table, rowid ? " ORDER BY rowid" : "");
    const char *ins = keep(t, "INSERT INTO %s(%s) VALUES (%s)", table, list, params);
    qun_q_t *in;
    rc = qun_q_prepare(src, sel, &q, err);
    if (rc == QUN_OK) rc = qun_q_step(q, err);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        qun_rc wrc = qun_q_prepare(dst, ins, &in, err);
        for (int i = 0; wrc == QUN_OK && i < n; i++) {
            size_t len;
            if (qun_q_col_null(q, i))
                qun_q_null(in, i + 1);
            else if (cols[i].bytea) {
                const void *b = qun_q_col_blob(q, i, &len);
                qun_q_blob(in, i + 1, b ? b : "", len);
            } else
                qun_q_text(in, i + 1, qun_q_col_text(q, i));
        }
        if (wrc == QUN_OK) wrc = qun_q_step(in, err);
        if (wrc != QUN_DONE) {
            qun_q_done(q);
            char why[200];
            snprintf(why, sizeof why, "%.190s", err->msg);
            return qun_fail(err, wrc == QUN_OK ? QUN_STORE : wrc, "%s, row %lld: %s", table,
                            (long long)*rows + 1, why);
        }
        (*rows)++;
    }
    if (rc != QUN_DONE) return rc;
    for (int i = 0; i < n; i++) {
        if (!cols[i].identity) continue;
        int64_t floor = sqlite_seq(src, table);
        const char *sv = keep(t,
                              "SELECT setval(pg_get_serial_sequence($1, $2), "
                              "GREATEST(COALESCE(MAX(%s), 0), $3) + 1, false) FROM %s",
                              cols[i].name, table);
        rc = qun_db_run(dst, &q, err, sv, "ssi", table, cols[i].name, floor);
        if (rc == QUN_ROW)
            qun_q_done(q);
        else
            return rc;
    }
    return QUN_OK;
}

static qun_rc copy_all(qun_db_t *src, qun_db_t *dst, qun_copy_report_fn report, void *arg, texts_t *t,
                       qun_err_t *err) {
    int vs = qun_db_schema_version(src), vd = qun_db_schema_version(dst);
    if (vs != vd)
        return qun_fail(err, QUN_BAD_REQUEST,
                        "the source is at schema %d and the target at %d: start this version's qund once on "
                        "the source (it migrates it) before moving it",
                        vs, vd);
    /* Table names first: the copy then runs on statements of its own. */
    char names[128][64];
    bool rowid[128];
    int nt = 0;
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(src, &q, err,
                   "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM sqlite_master t WHERE type = 'table' "
                   "AND name NOT LIKE 'sqlite_%' AND name NOT IN ('schema_migrations', 'search_pending', "
                   "'search_gone', 'search_state') AND NOT EXISTS "
                   "(SELECT 1 FROM sqlite_master v WHERE v.type = 'table' AND v.sql LIKE "
                   "'CREATE VIRTUAL TABLE%' AND (t.name = v.name OR t.name LIKE v.name || '\\_%' "
                   "ESCAPE '\\')) ORDER BY rowid",
                   "");
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        const char *name = qun_q_col_text(q, 0);
        if (nt == 128 || !plain_name(name)) {
            qun_q_done(q);
            return qun_fail(err, QUN_BAD_REQUEST, "unexpected table %s in the source", name);
        }
        snprintf(names[nt], sizeof names[nt], "%s", name);
        rowid[nt++] = qun_q_col_int(q, 1) == 0;
    }
    if (rc != QUN_DONE) return rc;
    /* Tables were created in dependency order (foreign keys point backwards), so
     * copying them in creation order satisfies every constraint as it goes. */
    for (int i = 0; i < nt; i++) {
        int64_t rows;
        rc = copy_table(src, dst, names[i], rowid[i], t, &rows, err);
        if (rc != QUN_OK) return rc;
        if (report) report(arg, names[i], rows);
    }
    return QUN_OK;
}

qun_rc qun_store_copy(const char *from, const char *to, qun_copy_report_fn report, void *arg,
                      qun_err_t *err) {
    qun_db_t *src = NULL, *dst = NULL;
    texts_t t = {0};
    if (strncmp(from, "sqlite:", 7) != 0) return qun_fail(err, QUN_BAD_REQUEST, "--from must be sqlite:PATH");
    if (strncmp(to, "postgres://", 11) != 0 && strncmp(to, "postgresql://", 13) != 0)
        return qun_fail(err, QUN_BAD_REQUEST, "--to must be a postgres:// URL");
    /* The source read-only and as it is; the target migrated to this version. */
    qun_rc rc = qun_db_open(from, true, false, &src, err);
    if (rc == QUN_OK) rc = qun_db_open(to, false, true, &dst, err);
    if (rc == QUN_OK) rc = qun_db_read_begin(src, err); /* one snapshot of a live installation */
    if (rc == QUN_OK) {
        rc = qun_db_exec(dst, "BEGIN", err);
        if (rc == QUN_OK) rc = copy_all(src, dst, report, arg, &t, err);
        if (rc == QUN_OK) rc = qun_db_exec(dst, "COMMIT", err);
        if (rc != QUN_OK) qun_db_exec(dst, "ROLLBACK", &(qun_err_t){{0}, {0}});
        qun_db_read_end(src);
    }
    qun_db_close(src);
    qun_db_close(dst);
    for (size_t i = 0; i < t.n; i++)
        free(t.sql[i]);
    free(t.sql);
    return rc;
}
