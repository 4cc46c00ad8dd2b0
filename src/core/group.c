/* SPDX-License-Identifier: MIT */
/* Groups and memberships, with the permission table of docs/design.md section 2:
 *
 *   action                         owner  admin          member
 *   add / remove members           yes    members only   no
 *   promote / demote admins        yes    no             no
 *   rename                         yes    yes            no
 *   transfer ownership             yes    no             no
 *   leave                          after transfer  yes   yes
 *   post, read history, files      yes    yes            yes
 *
 * Invariants: a group has exactly one member with role owner, and it is owner_id;
 * member_count equals the number of members rows. */
#include <stdlib.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/ledger.h"
#include "qun/notify.h"
#include "qun/policy.h"
#include "qun/stage.h"
#include "qun/verify.h"

const char *qun_role_name(qun_role_t r) {
    switch (r) {
    case QUN_ROLE_OWNER: return "owner";
    case QUN_ROLE_ADMIN: return "admin";
    case QUN_ROLE_MEMBER: return "member";
    default: return "none";
    }
}

static qun_role_t role_parse(const char *s) {
    if (strcmp(s, "owner") == 0) return QUN_ROLE_OWNER;
    if (strcmp(s, "admin") == 0) return QUN_ROLE_ADMIN;
    if (strcmp(s, "member") == 0) return QUN_ROLE_MEMBER;
    return QUN_ROLE_NONE;
}

static bool live_state(const char *state) {
    return qun_group_state_live(qun_group_state_parse(state));
}

#define ROW_COLS                                                                                             \
    "SELECT g.id, g.gid, g.name, g.kind, g.state, g.owner_id, g.member_count, m.role, COALESCE(g.org_id, 0)"
#define ROW_FROM "FROM groups g LEFT JOIN members m ON m.group_id = g.id AND m.user_id = $2 "

/* The current row of q (ROW_COLS) into g. */
static void row_from(qun_q_t *q, qun_group_t *g) {
    memset(g, 0, sizeof *g);
    g->id = qun_q_col_int(q, 0);
    qun_copy(g->gid, sizeof g->gid, qun_q_col_text(q, 1));
    qun_copy(g->name, sizeof g->name, qun_q_col_text(q, 2));
    qun_copy(g->kind, sizeof g->kind, qun_q_col_text(q, 3));
    qun_copy(g->state, sizeof g->state, qun_q_col_text(q, 4));
    g->owner_id = qun_q_col_int(q, 5);
    g->member_count = qun_q_col_int(q, 6);
    g->role = qun_q_col_null(q, 7) ? QUN_ROLE_NONE : role_parse(qun_q_col_text(q, 7));
    g->org_id = qun_q_col_int(q, 8);
}

/* The group row and uid's role in it (QUN_ROLE_NONE for uid 0), no access decision. */
static qun_rc load_row(qun_db_t *db, int64_t uid, const char *gid, qun_group_t *g, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, ROW_COLS " " ROW_FROM "WHERE g.gid = $1", "si", gid, uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_GROUP_NOT_FOUND, "no group %.40s", gid);
    if (rc != QUN_ROW) return rc;
    row_from(q, g);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_group_load(qun_db_t *db, const char *gid, qun_group_t *g, qun_err_t *err) {
    return load_row(db, 0, gid, g, err);
}

/* The access decision on a loaded row g (the tombstone read only when it is gone). */
static qun_rc decide(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_role_t need, qun_group_t *g,
                     qun_err_t *err) {
    qun_q_t *q;
    if (!live_state(g->state)) {
        /* Members lose access at dissolution (their rows go with the purge); the owner
         * keeps a read-only view. */
        if (g->owner_id == a->uid) g->role = QUN_ROLE_OWNER;
        /* The handle is a tombstone answering "gone" for its tombstone period, then
         * it is simply unknown (to everyone but the owner). */
        if (g->role != QUN_ROLE_OWNER &&
            qun_db_run(db, &q, NULL,
                       "SELECT tombstone_until FROM dissolutions WHERE group_id = $1 "
                       "AND tombstone_until IS NOT NULL ORDER BY id DESC LIMIT 1",
                       "i", g->id) == QUN_ROW) {
            bool expired = qun_q_col_int(q, 0) < qun_now();
            qun_q_done(q);
            if (expired) return qun_fail(err, QUN_GROUP_NOT_FOUND, "no group %.40s", gid);
        }
        return qun_fail(err, QUN_GROUP_GONE, "group %s is %s", g->gid, g->state);
    }
    if (g->role == QUN_ROLE_NONE) return qun_fail(err, QUN_GROUP_NOT_FOUND, "no group %.40s", gid);
    if (g->role < need)
        return qun_fail(err, QUN_FORBIDDEN_ROLE, "this needs role %s; you are %s", qun_role_name(need),
                        qun_role_name(g->role));
    return QUN_OK;
}

qun_rc qun_group_access(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_role_t need, qun_group_t *g,
                        qun_err_t *err) {
    qun_rc rc = load_row(db, a->uid, gid, g, err);
    return rc == QUN_OK ? decide(db, a, gid, need, g, err) : rc;
}

/* The access row with the group's next sequence number, the poster's name, and whether
 * the session still stands (always 1 unless the caller was taken from a loop's cache,
 * qun_actor_t.cached: then it must not be revoked or expired, nor its user disabled,
 * reset or renamed); on a store that locks rows, the group's row locked: the post's
 * UPDATE of next_seq follows. */
#define POST_COLS ROW_COLS ", g.next_seq, u.display_name, "
#define POST_FROM ROW_FROM "JOIN users u ON u.id = $2 WHERE g.gid = $1"
#define SESSION_CHECK(uname, sid, uid, now)                                                                  \
    "u.disabled_at IS NULL AND u.password_reset = 0 AND u.username = " uname " AND EXISTS (SELECT 1 FROM "   \
    "sessions se WHERE se.id = " sid " AND se.user_id = " uid " AND se.revoked_at IS NULL AND "              \
    "se.expires_at > " now ")"
#define SESSION_OK "CASE WHEN " SESSION_CHECK("$4", "$3", "$2", "$5") " THEN 1 ELSE 0 END"
#define POST_SQL(session, lock) POST_COLS session " " POST_FROM lock
/* The same row sent ahead (PostgreSQL), the sequence number taken in the same statement
 * when the post's checks pass (a live group, a member, the session standing: what
 * decide() allows), and as last column whether it was. */
#define POST_AHEAD_SQL(session)                                                                              \
    "WITH r AS (" POST_COLS session " AS session_ok " POST_FROM " FOR UPDATE OF g), "                        \
    "s AS (UPDATE groups SET next_seq = groups.next_seq + 1 FROM r WHERE groups.id = r.id AND "              \
    "r.role IS NOT NULL AND r.state IN (" QUN_GROUP_LIVE_SQL ") AND r.session_ok = 1 RETURNING 1) "          \
    "SELECT r.*, (SELECT COUNT(*) FROM s) FROM r"
/* ---- the posts of a shared transaction: their rows read together ----
 * In a batch of posts alone (qun_db_txn_shared, PostgreSQL) the posts whose reads the
 * writer sends ahead register here instead, and the first of them to run reads the rows
 * of all registered so far in one statement (RUN_SQL), sent behind the ids and locks
 * sent ahead, in their round trip: one statement for a run of posts, not one each.  It
 * locks the group rows in gid order, takes no number (the post does,
 * qun_message_post_text) and answers, for each post in order, what POST_SQL answers for
 * one.  State of the writer's thread, valid for one transaction of one connection
 * (qun_db_txn_serial). */
#define RUN_MAX 64
#define RUN_SESSION_OK                                                                                       \
    "CASE WHEN p.cached = 0 THEN 1 WHEN " SESSION_CHECK("p.uname", "p.sid", "p.uid",                         \
                                                        "$6") " THEN 1 ELSE 0 END"
#define RUN_SQL                                                                                              \
    "WITH p AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::int8[]) "           \
    "WITH ORDINALITY AS p(gid, uid, sid, uname, cached, ord)), "                                             \
    "l AS MATERIALIZED (SELECT g.id, g.gid, g.name, g.kind, g.state, g.owner_id, g.member_count, g.org_id, " \
    "g.next_seq FROM groups g WHERE g.gid IN (SELECT gid FROM p) ORDER BY g.gid FOR UPDATE) "                \
    "SELECT l.id, l.gid, l.name, l.kind, l.state, l.owner_id, l.member_count, m.role, "                      \
    "COALESCE(l.org_id, 0), l.next_seq, u.display_name, " RUN_SESSION_OK ", p.ord, "                         \
    "CASE WHEN l.id IS NULL OR u.id IS NULL THEN 0 ELSE 1 END "                                              \
    "FROM p LEFT JOIN l ON l.gid = p.gid LEFT JOIN members m ON m.group_id = l.id AND m.user_id = p.uid "    \
    "LEFT JOIN users u ON u.id = p.uid ORDER BY p.ord"

typedef struct {
    char gid[QUN_ID_MAX];
    int64_t uid, sid;
    char uname[sizeof((qun_actor_t *)0)->username];
    bool cached;
    bool read, used;             /* its row was read; a post took it */
    bool found, ended, has_name; /* the row: group and user found, session ended */
    qun_group_t g;
    int64_t next_seq;
    char name[QUN_DISPLAY_NAME_MAX];
} run_post_t;

static _Thread_local struct {
    qun_db_t *db; /* the connection and transaction the registrations belong to */
    uint64_t txn;
    int n;
    run_post_t p[RUN_MAX];
} run;

/* Register a post of db's shared transaction; false when there is no room (it then reads
 * its row itself). */
static bool run_register(qun_db_t *db, const qun_actor_t *a, const char *gid) {
    uint64_t txn = qun_db_txn_serial(db);
    if (run.db != db || run.txn != txn) run.db = db, run.txn = txn, run.n = 0;
    bool spent = true; /* every registered post took its row: start over */
    for (int i = 0; i < run.n && spent; i++)
        spent = run.p[i].used;
    if (spent) run.n = 0;
    if (run.n == RUN_MAX || strlen(gid) >= QUN_ID_MAX) return false;
    run_post_t *p = &run.p[run.n++];
    memset(p, 0, sizeof *p);
    snprintf(p->gid, sizeof p->gid, "%s", gid);
    snprintf(p->uname, sizeof p->uname, "%s", a->username);
    p->uid = a->uid;
    p->sid = a->session_id;
    p->cached = a->cached;
    return true;
}

/* s as an element of a PostgreSQL array literal: quoted, `"` and `\` escaped. */
static void array_text(qun_line_t *l, const char *s) {
    qun_line_put(l, "\"", 1);
    while (*s) {
        size_t plain = strcspn(s, "\"\\");
        qun_line_put(l, s, plain);
        s += plain;
        if (*s) {
            qun_line_put(l, "\\", 1);
            qun_line_put(l, s++, 1);
        }
    }
    qun_line_put(l, "\"", 1);
}

/* Read the rows of the registered posts not read yet, in one statement. */
static qun_rc run_read(qun_db_t *db, qun_err_t *err) {
    int first = 0;
    while (first < run.n && run.p[first].read)
        first++;
    qun_line_t col[5] = {{0}};
    for (int c = 0; c < 5; c++)
        qun_line_put(&col[c], "{", 1);
    for (int i = first; i < run.n; i++) {
        const char *sep = i > first ? "," : "";
        for (int c = 0; c < 5; c++)
            qun_line_put(&col[c], sep, strlen(sep));
        array_text(&col[0], run.p[i].gid);
        qun_line_printf(&col[1], "%lld", (long long)run.p[i].uid);
        qun_line_printf(&col[2], "%lld", (long long)run.p[i].sid);
        array_text(&col[3], run.p[i].uname);
        qun_line_printf(&col[4], "%lld", (long long)run.p[i].cached);
    }
    bool oom = false;
    for (int c = 0; c < 5; c++) {
        qun_line_put(&col[c], "}", 2); /* with the NUL */
        oom |= col[c].oom;
    }
    qun_q_t *q;
    qun_rc rc = oom ? qun_fail(err, QUN_NOMEM, "out of memory")
                    : qun_db_run(db, &q, err, RUN_SQL, "sssssi", col[0].p, col[1].p, col[2].p, col[3].p,
                                 col[4].p, qun_now());
    for (int c = 0; c < 5; c++)
        free(col[c].p);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        int64_t i = first + qun_q_col_int(q, 12) - 1;
        if (i < first || i >= run.n) continue;
        run_post_t *p = &run.p[i];
        p->read = true;
        p->found = qun_q_col_int(q, 13) != 0;
        if (!p->found) continue;
        row_from(q, &p->g);
        p->next_seq = qun_q_col_int(q, 9);
        p->has_name = !qun_q_col_null(q, 10);
        snprintf(p->name, sizeof p->name, "%s", p->has_name ? qun_q_col_text(q, 10) : "");
        p->ended = qun_q_col_int(q, 11) == 0;
    }
    if (rc != QUN_DONE) return rc;
    for (int i = first; i < run.n; i++) /* a row the statement did not give: not found */
        run.p[i].read = true;
    return QUN_OK;
}

/* The registered post of a (the first not taken), its row read; NULL when a did not
 * register one in this transaction. */
static qun_rc run_take(qun_db_t *db, const qun_actor_t *a, const char *gid, run_post_t **out,
                       qun_err_t *err) {
    *out = NULL;
    if (run.db != db || run.txn != qun_db_txn_serial(db)) return QUN_OK;
    for (int i = 0; i < run.n; i++) {
        run_post_t *p = &run.p[i];
        if (p->used || p->uid != a->uid || p->sid != a->session_id || strcmp(p->gid, gid) != 0) continue;
        if (!p->read) {
            qun_rc rc = run_read(db, err);
            if (rc != QUN_OK) return rc;
        }
        p->used = true;
        *out = p;
        return QUN_OK;
    }
    return QUN_OK;
}

bool qun_group_access_post_ahead(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_q_t **ahead) {
    *ahead = NULL;
    if (qun_db_txn_shared(db)) return run_register(db, a, gid);
    qun_rc rc = !a->cached ? qun_db_run_ahead(db, ahead, NULL, POST_AHEAD_SQL("1"), "si", gid, a->uid)
                           : qun_db_run_ahead(db, ahead, NULL, POST_AHEAD_SQL(SESSION_OK), "siisi", gid,
                                              a->uid, a->session_id, a->username, qun_now());
    if (rc != QUN_OK) *ahead = NULL; /* the post reads its row itself, and finds out */
    return *ahead != NULL;
}

qun_rc qun_group_access_post(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_q_t *ahead,
                             qun_group_t *g, int64_t *next_seq, char name[QUN_DISPLAY_NAME_MAX],
                             bool *has_name, bool *seq_taken, qun_err_t *err) {
    qun_q_t *q = ahead;
    qun_rc rc;
    *seq_taken = false;
    run_post_t *reg = NULL;
    if (!ahead && qun_db_txn_shared(db) && (rc = run_take(db, a, gid, &reg, err)) != QUN_OK) return rc;
    if (reg) {
        if (!reg->found) return qun_fail(err, QUN_GROUP_NOT_FOUND, "no group %.40s", gid);
        *g = reg->g;
        *next_seq = reg->next_seq;
        *has_name = reg->has_name;
        snprintf(name, QUN_DISPLAY_NAME_MAX, "%s", reg->name);
        return reg->ended
                   ? qun_fail(err, QUN_TOKEN_INVALID, "the bearer token is invalid, expired or revoked")
                   : decide(db, a, gid, QUN_ROLE_MEMBER, g, err);
    }
    if (ahead)
        rc = qun_q_step(ahead, err);
    else if (!a->cached)
        rc = qun_db_run(db, &q, err,
                        qun_db_locks_rows(db) ? POST_SQL("1", " FOR UPDATE OF g") : POST_SQL("1", ""), "si",
                        gid, a->uid);
    else
        rc = qun_db_run(db, &q, err,
                        qun_db_locks_rows(db) ? POST_SQL(SESSION_OK, " FOR UPDATE OF g")
                                              : POST_SQL(SESSION_OK, ""),
                        "siisi", gid, a->uid, a->session_id, a->username, qun_now());
    if (rc == QUN_DONE) return qun_fail(err, QUN_GROUP_NOT_FOUND, "no group %.40s", gid);
    if (rc != QUN_ROW) return rc;
    row_from(q, g);
    *next_seq = qun_q_col_int(q, 9);
    *has_name = !qun_q_col_null(q, 10);
    snprintf(name, QUN_DISPLAY_NAME_MAX, "%s", *has_name ? qun_q_col_text(q, 10) : "");
    bool ended = qun_q_col_int(q, 11) == 0;
    *seq_taken = ahead && qun_q_col_int(q, 12) > 0;
    qun_q_done(q);
    rc = ended ? qun_fail(err, QUN_TOKEN_INVALID, "the bearer token is invalid, expired or revoked")
               : decide(db, a, gid, QUN_ROLE_MEMBER, g, err);
    /* The statement sent ahead took the number exactly when decide() allows the post. */
    if (ahead && (rc == QUN_OK) != *seq_taken)
        return qun_fail(err, QUN_INTERNAL, "the post's access statement and its checks disagree on %.40s",
                        gid);
    return rc;
}

qun_rc qun_group_successor(qun_db_t *db, const char *gid, char out[QUN_ID_MAX], qun_err_t *err) {
    qun_q_t *q;
    out[0] = '\0';
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT s.gid FROM groups g JOIN dissolutions d ON d.group_id = g.id "
                   "JOIN groups s ON s.id = d.successor_group_id WHERE g.gid = $1 ORDER BY d.id DESC LIMIT 1",
                   "s", gid);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    snprintf(out, QUN_ID_MAX, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return QUN_OK;
}

/* A group as answers show it, with the row's own columns (ROW_COLS) first. */
#define GROUP_JSON_SQL(where)                                                                                \
    ROW_COLS                                                                                                 \
    ", o.oid, g.regions, u.openid, g.created_at, g.updated_at, g.next_seq - 1, u.display_name " ROW_FROM     \
    "JOIN users u ON u.id = g.owner_id LEFT JOIN orgs o ON o.id = g.org_id WHERE " where

/* The current row of q (GROUP_JSON_SQL) as JSON; NULL when memory is short. */
static json_t *group_row_json(qun_q_t *q) {
    json_t *regions = json_loads(qun_q_col_text(q, 10), 0, NULL);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:o, s:s, s:s, s:I, s:I, s:I, s:s?, s:I}", "id",
                          qun_q_col_text(q, 1), "name", qun_q_col_text(q, 2), "kind", qun_q_col_text(q, 3),
                          "org", qun_q_col_null(q, 9) ? NULL : qun_q_col_text(q, 9), "regions",
                          regions ? regions : json_array(), "owner", qun_q_col_text(q, 11), "state",
                          qun_q_col_text(q, 4), "member_count", (json_int_t)qun_q_col_int(q, 6), "created_at",
                          (json_int_t)qun_q_col_int(q, 12), "updated_at", (json_int_t)qun_q_col_int(q, 13),
                          "my_role", qun_q_col_null(q, 7) ? NULL : qun_q_col_text(q, 7), "last_seq",
                          (json_int_t)qun_q_col_int(q, 14));
    if (o)
        json_object_set_new(o, "owner_display_name",
                            qun_q_col_null(q, 15) ? json_null() : json_string(qun_q_col_text(q, 15)));
    return o;
}

static json_t *group_json(qun_db_t *db, int64_t id, int64_t uid, qun_err_t *err) {
    qun_q_t *q;
    if (qun_db_run(db, &q, err, GROUP_JSON_SQL("g.id = $1"), "ii", id, uid) != QUN_ROW) return NULL;
    json_t *o = group_row_json(q);
    qun_q_done(q);
    return o;
}

qun_rc qun_group_create(qun_db_t *db, const qun_actor_t *a, const char *name, const char *kind,
                        const char *org, json_t *regions, json_t **out, qun_err_t *err) {
    int64_t org_id = 0;
    qun_rc rc = QUN_OK;
    if (org) rc = qun_org_admin_id(db, a, org, &org_id, err);
    if (rc != QUN_OK) return rc;
    bool needs_org = strcmp(kind, "enterprise") == 0 || strcmp(kind, "education") == 0;
    if (needs_org && !org)
        return qun_fail_field(err, QUN_FIELD_MISSING, "org", "%s groups belong to an org", kind);
    if (strcmp(kind, "cross_border") == 0 && (!regions || json_array_size(regions) < 2))
        return qun_fail_field(err, QUN_FIELD_MISSING, "regions",
                              "cross_border groups list at least two regions");
    size_t ri;
    json_t *re;
    json_array_foreach(
        regions, ri,
        re) if (qun_core_cfg.policy &&
                !qun_policy_has_region(
                    qun_core_cfg.policy,
                    json_string_value(re))) return qun_fail_field(err, QUN_POLICY_UNKNOWN_REGION, "regions",
                                                                  "no policy pack defines region \"%.20s\"",
                                                                  json_string_value(re));
    char gid[QUN_ID_MAX];
    qun_id_new(gid, "g");
    char *regs = regions ? json_dumps(regions, JSON_COMPACT) : strdup("[]");
    int64_t now = qun_now();
    qun_q_t *q;
    rc = qun_db_run(db, &q, err,
                    "INSERT INTO groups(gid, name, kind, org_id, regions, owner_id, member_count, "
                    "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) RETURNING id",
                    "ssszsii", gid, name, kind, org_id, regs, a->uid, now);
    free(regs);
    if (rc != QUN_ROW) return rc;
    int64_t id = qun_q_col_int(q, 0);
    qun_q_done(q);
    rc = qun_member_insert(db, id, a->uid, "owner", now, err);
    if (rc != QUN_OK) return rc;
    json_t *f = json_pack("{s:s, s:s, s:s?}", "name", name, "kind", kind, "org", org);
    rc = qun_ledger_append(db, "group.created", gid, a->openid, NULL, QUN_GROUP_NAME(ACTIVE), f, NULL, err);
    json_decref(f);
    if (rc == QUN_OK) rc = qun_event_member(db, "group.created", id, a->uid, err);
    if (rc != QUN_OK) return rc;
    *out = group_json(db, id, a->uid, err);
    return *out ? QUN_OK : QUN_STORE;
}

/* The open ownership offer, shown to the two people it concerns (the owner who made it
 * and the member it is made to) as `transfer` {from, to, their names, created_at}. */
static qun_rc pending_transfer(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, json_t *out,
                               qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT fu.openid, fu.username, fu.display_name, tu.openid, tu.username, "
                   "tu.display_name, t.created_at FROM transfers t JOIN users fu ON fu.id = t.from_id "
                   "JOIN users tu ON tu.id = t.to_id WHERE t.group_id = $1 AND (t.from_id = $2 OR "
                   "t.to_id = $2)",
                   "ii", g->id, a->uid);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    json_t *t = json_pack(
        "{s:s, s:s, s:s?, s:s, s:s, s:s?, s:I}", "from", qun_q_col_text(q, 0), "from_username",
        qun_q_col_text(q, 1), "from_display_name", qun_q_col_null(q, 2) ? NULL : qun_q_col_text(q, 2), "to",
        qun_q_col_text(q, 3), "to_username", qun_q_col_text(q, 4), "to_display_name",
        qun_q_col_null(q, 5) ? NULL : qun_q_col_text(q, 5), "created_at", (json_int_t)qun_q_col_int(q, 6));
    qun_q_done(q);
    if (!t) return qun_fail(err, QUN_NOMEM, "out of memory");
    json_object_set_new(out, "transfer", t);
    return QUN_OK;
}

qun_rc qun_group_get(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
    /* The access row and the answer's in one read (what qun_group_access and group_json
     * read apart elsewhere). */
    qun_rc rc = qun_db_run(db, &q, err, GROUP_JSON_SQL("g.gid = $1"), "si", gid, a->uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_GROUP_NOT_FOUND, "no group %.40s", gid);
    if (rc != QUN_ROW) return rc;
    row_from(q, &g);
    *out = group_row_json(q);
    qun_q_done(q);
    rc = decide(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK; /* the owner sees the outcome */
    if (rc == QUN_OK && !*out) rc = qun_fail(err, QUN_NOMEM, "out of memory");
    /* The recall window clients offer the author's Recall for (the server decides), by
     * the regions the row holds. */
    qun_policy_view_t v;
    if (rc == QUN_OK) rc = qun_group_policy_of(&g, json_object_get(*out, "regions"), &v, err);
    if (rc == QUN_OK) {
        json_object_set_new(*out, "recall_window_seconds",
                            json_integer(v.rule[QUN_POLICY_RECALL_WINDOW].value));
        rc = pending_transfer(db, a, &g, *out, err);
    }
    if (rc != QUN_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

qun_rc qun_group_list(qun_db_t *db, const qun_actor_t *a, int64_t after, int limit, json_t **out,
                      qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = 0;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT g.id, g.gid, g.name, g.kind, g.state, g.member_count, m.role, COALESCE(r.seq, 0), "
                   "(SELECT COUNT(*) FROM messages x WHERE x.group_id = g.id AND x.seq > COALESCE(r.seq, 0) "
                   "AND x.author_id != m.user_id) FROM members m JOIN groups g ON g.id = m.group_id "
                   "LEFT JOIN read_marks r ON r.user_id = m.user_id AND r.group_id = m.group_id "
                   "WHERE m.user_id = $1 AND g.id > $2 ORDER BY g.id LIMIT $3",
                   "iii", a->uid, after, (int64_t)limit);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I}", "id", qun_q_col_text(q, 1), "name",
                             qun_q_col_text(q, 2), "kind", qun_q_col_text(q, 3), "state",
                             qun_q_col_text(q, 4), "member_count", (json_int_t)qun_q_col_int(q, 5), "my_role",
                             qun_q_col_text(q, 6), "read_seq", (json_int_t)qun_q_col_int(q, 7), "unread",
                             (json_int_t)qun_q_col_int(q, 8)));
    }
    return qun_page(rc, items, last, limit, out);
}

qun_rc qun_group_rename(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *name, json_t **out,
                        qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_ADMIN, &g, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err, "UPDATE groups SET name = $2, updated_at = $3 WHERE id = $1", "isi",
                        g.id, name, qun_now());
    if (rc != QUN_DONE) return rc;
    /* A rename to the same name changes nothing and says nothing. */
    if (strcmp(g.name, name) != 0 &&
        (rc = qun_event_group(db, "group.renamed", g.id, 0,
                              json_pack("{s:s, s:s, s:s}", "name", name, "old_name", g.name, "by", a->openid),
                              err)) != QUN_OK)
        return rc;
    *out = group_json(db, g.id, a->uid, err);
    return *out ? QUN_OK : QUN_STORE;
}

qun_rc qun_member_list(qun_db_t *db, const qun_actor_t *a, const char *gid, int64_t after, int limit,
                       json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    json_t *items = json_array();
    int64_t last = 0;
    rc = qun_db_run(
        db, &q, err,
        "SELECT u.id, u.openid, u.username, m.role, m.joined_at, u.is_minor, u.display_name, "
        /* Whether the caller may know this member is a minor: a guardian of theirs, an
         * admin of the group's school, or the member themselves. */
        "CASE WHEN u.id = $4 OR EXISTS (SELECT 1 FROM guardians gu WHERE gu.minor_id = u.id "
        "AND gu.guardian_id = $4) OR EXISTS (SELECT 1 FROM org_admins oa JOIN orgs o ON o.id = oa.org_id "
        "WHERE o.id = $5 "
        "AND o.kind = 'school' AND oa.user_id = $4) THEN 1 ELSE 0 END FROM members m "
        "JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 AND u.id > $2 ORDER BY u.id LIMIT $3",
        "iiiii", g.id, after, (int64_t)limit, a->uid, g.org_id);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        last = qun_q_col_int(q, 0);
        json_t *m = json_pack("{s:s, s:s, s:s?, s:s, s:I}", "openid", qun_q_col_text(q, 1), "username",
                              qun_q_col_text(q, 2), "display_name",
                              qun_q_col_null(q, 6) ? NULL : qun_q_col_text(q, 6), "role",
                              qun_q_col_text(q, 3), "joined_at", (json_int_t)qun_q_col_int(q, 4));
        /* `minor` is told only to those who may know it; to the rest it is absent. */
        if (m && qun_q_col_int(q, 7)) json_object_set_new(m, "minor", json_boolean(qun_q_col_int(q, 5)));
        json_array_append_new(items, m);
    }
    return qun_page(rc, items, last, limit, out);
}

static json_t *member_json(qun_db_t *db, int64_t group_id, int64_t uid) {
    qun_q_t *q;
    if (qun_db_run(
            db, &q, NULL,
            "SELECT u.openid, u.username, m.role, m.joined_at, u.display_name FROM members m JOIN users u "
            "ON u.id = m.user_id WHERE m.group_id = $1 AND m.user_id = $2",
            "ii", group_id, uid) != QUN_ROW)
        return NULL;
    json_t *o =
        json_pack("{s:s, s:s, s:s?, s:s, s:I}", "openid", qun_q_col_text(q, 0), "username",
                  qun_q_col_text(q, 1), "display_name", qun_q_col_null(q, 4) ? NULL : qun_q_col_text(q, 4),
                  "role", qun_q_col_text(q, 2), "joined_at", (json_int_t)qun_q_col_int(q, 3));
    qun_q_done(q);
    return o;
}

qun_rc qun_member_role(qun_db_t *db, int64_t group_id, int64_t uid, qun_role_t *role, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT role FROM members WHERE group_id = $1 AND user_id = $2", "ii",
                           group_id, uid);
    *role = QUN_ROLE_NONE;
    if (rc == QUN_ROW) {
        *role = role_parse(qun_q_col_text(q, 0));
        qun_q_done(q);
        rc = QUN_DONE;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

static qun_rc count_delta(qun_db_t *db, int64_t group_id, int delta, qun_err_t *err) {
    qun_rc rc = qun_db_run(
        db, NULL, err, "UPDATE groups SET member_count = member_count + $2, updated_at = $3 WHERE id = $1",
        "iii", group_id, (int64_t)delta, qun_now());
    return rc == QUN_DONE ? QUN_OK : rc;
}

qun_rc qun_member_insert(qun_db_t *db, int64_t group_id, int64_t uid, const char *role, int64_t joined_at,
                         qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err,
                           "INSERT INTO members(group_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
                           "iisi", group_id, uid, role, joined_at);
    return rc == QUN_DONE ? count_delta(db, group_id, 1, err) : rc == QUN_OK ? QUN_STORE : rc;
}

qun_rc qun_member_add(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *openid,
                      const char *role, json_t **out, qun_err_t *err) {
    qun_group_t g;
    int64_t uid;
    qun_role_t cur;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_ADMIN, &g, err);
    if (rc == QUN_OK && strcmp(role, "admin") == 0 && g.role != QUN_ROLE_OWNER)
        rc = qun_fail(err, QUN_FORBIDDEN_ROLE, "only the owner appoints admins");
    if (rc == QUN_OK) rc = qun_user_id(db, openid, &uid, err);
    if (rc == QUN_OK) rc = qun_member_role(db, g.id, uid, &cur, err);
    if (rc == QUN_OK && cur != QUN_ROLE_NONE)
        rc = qun_fail(err, QUN_ALREADY_MEMBER, "%s is already a %s", openid, qun_role_name(cur));
    /* Where the policy asks for consent, people join only by accepting an invitation. */
    if (rc == QUN_OK) rc = qun_invitation_consent_check(db, &g, err);
    if (rc == QUN_OK) rc = qun_member_insert(db, g.id, uid, role, qun_now(), err);
    if (rc == QUN_OK) rc = qun_event_member(db, "member.added", g.id, uid, err);
    if (rc != QUN_OK) return rc;
    *out = member_json(db, g.id, uid);
    return *out ? QUN_OK : QUN_STORE;
}

/* `member.role_changed` for member uid of group_id, to the group and to the member:
 * {group, group_name, openid, role (now), old_role, by}. */
static qun_rc role_changed(qun_db_t *db, int64_t group_id, int64_t uid, const char *old_role, const char *by,
                           qun_err_t *err) {
    return qun_event_member_with(db, "member.role_changed", group_id, uid,
                                 json_pack("{s:s, s:s}", "old_role", old_role, "by", by), err);
}

qun_rc qun_member_set_role(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *openid,
                           const char *role, json_t **out, qun_err_t *err) {
    qun_group_t g;
    int64_t uid;
    qun_role_t cur;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc == QUN_OK) rc = qun_user_id(db, openid, &uid, err);
    if (rc == QUN_OK) rc = qun_member_role(db, g.id, uid, &cur, err);
    if (rc == QUN_OK && cur == QUN_ROLE_NONE)
        rc = qun_fail(err, QUN_MEMBER_NOT_FOUND, "%s is not a member", openid);
    if (rc == QUN_OK && cur == QUN_ROLE_OWNER)
        rc = qun_fail(err, QUN_FORBIDDEN_ROLE, "the owner's role changes only by transfer");
    if (rc == QUN_OK) {
        rc = qun_db_run(db, NULL, err, "UPDATE members SET role = $3 WHERE group_id = $1 AND user_id = $2",
                        "iis", g.id, uid, role);
        rc = rc == QUN_DONE ? QUN_OK : rc;
    }
    if (rc == QUN_OK && role_parse(role) != cur)
        rc = role_changed(db, g.id, uid, qun_role_name(cur), a->openid, err);
    if (rc != QUN_OK) return rc;
    *out = member_json(db, g.id, uid);
    return *out ? QUN_OK : QUN_STORE;
}

/* Remove member uid; the member.removed event names who removed it (by, an openid: the
 * member itself on leave) and why (reason, when given). */
static qun_rc remove_member(qun_db_t *db, int64_t group_id, int64_t uid, const char *by, const char *reason,
                            qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err, "DELETE FROM members WHERE group_id = $1 AND user_id = $2", "ii",
                           group_id, uid);
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err, "DELETE FROM transfers WHERE group_id = $1 AND to_id = $2", "ii",
                        group_id, uid);
    if (rc == QUN_DONE) rc = count_delta(db, group_id, -1, err);
    return rc == QUN_OK ? qun_event_member_with(db, "member.removed", group_id, uid,
                                                json_pack("{s:s, s:s*}", "by", by, "reason", reason), err)
                        : rc;
}

qun_rc qun_group_leave(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *reason,
                       qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    if (g.role == QUN_ROLE_OWNER)
        return qun_fail(err, QUN_OWNER_MUST_TRANSFER,
                        "the owner cannot leave: POST /v1/groups/%s/transfer {\"to\": openid} first, "
                        "or dissolve the group",
                        g.gid);
    return remove_member(db, g.id, a->uid, a->openid, reason, err);
}

/* ---- destructive actions: the platform's verification (policy) ---- */

/* Issue the confirmation token of action on g for params and add what the session must
 * present to view: {confirmation_token, expires_at, params_digest, platform, requirements}. */
static qun_rc action_preview(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, const char *action,
                             json_t *params, json_t *view, qun_err_t *err) {
    char token[64], digest[65];
    int64_t expires;
    qun_verify_need_t need;
    qun_rc rc = qun_verify_need(db, a, QUN_RISK_ALLOW, &need, err);
    if (rc == QUN_OK) rc = qun_confirm_issue(db, a, g->id, action, params, token, &expires, err);
    if (rc != QUN_OK) return rc;
    qun_json_digest(params, digest);
    json_object_set_new(view, "confirmation_token", json_string(token));
    json_object_set_new(view, "expires_at", json_integer(expires));
    json_object_set_new(view, "params_digest", json_string(digest));
    json_object_set_new(view, "platform", json_string(a->platform));
    json_object_set_new(view, "requirements", qun_verify_requirements(need.all));
    return QUN_OK;
}

/* Check the proofs of action on g against what the session needs (the platform's
 * methods from the verification policy, and a key's proof once the account enrolled
 * one: qun_verify_need); needed false accepts the request without proofs, but still
 * checks (and uses up) any that were presented. */
static qun_rc action_verify(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, const char *action,
                            json_t *params, const qun_action_proof_t *proof, bool needed, qun_err_t *err) {
    qun_rc rc = QUN_OK;
    if (proof->token) rc = qun_confirm_consume(db, a, g->id, action, params, proof->token, err);
    if (rc != QUN_OK) return rc;
    char digest[65];
    qun_json_digest(params, digest);
    qun_verify_proof_t p = {.action = action,
                            .group = g->gid,
                            .group_name = g->name,
                            .params_digest = digest,
                            .confirmed = proof->token != NULL,
                            .typed_name = proof->typed_name,
                            .challenges = {proof->challenge_id, NULL},
                            .totp_code = proof->totp_code};
    qun_verify_need_t need = {0};
    if (needed) rc = qun_verify_need(db, a, QUN_RISK_ALLOW, &need, err);
    return rc == QUN_OK ? qun_verify_check(db, a, need, &p, proof->problem, err) : rc;
}

/* ---- the ownership / dissolution exclusion ---- */

qun_rc qun_lifecycle_lock(qun_db_t *db, qun_err_t *err) {
    /* The ledger's lock: every lifecycle change appends to the ledger, so its transaction
     * takes this lock before it commits anyway.  Taking it before the checks makes check
     * and change one step for every instance sharing a database, and adds no second lock
     * that other writers could take in the opposite order (a deadlock). */
    return qun_db_xlock(db, QUN_LEDGER_LOCK, err);
}

qun_rc qun_lifecycle_no_transfer(qun_db_t *db, const qun_group_t *g, json_t **problem, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT u.openid FROM transfers t JOIN users u ON u.id = t.to_id WHERE t.group_id = $1",
        "i", g->id);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    char to[QUN_ID_MAX];
    snprintf(to, sizeof to, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    if (problem)
        *problem = json_pack("{s:s, s:s, s:s}", "open", "transfer", "transfer_to", to, "group_name", g->name);
    return qun_fail(err, QUN_LIFECYCLE_CONFLICT,
                    "group %s has an ownership transfer to %s waiting for an answer; withdraw it "
                    "(DELETE /v1/groups/%s/transfer) or wait until it is declined before dissolving",
                    g->gid, to, g->gid);
}

/* LIFECYCLE_CONFLICT when g has a dissolution open: in review or pending (the group's
 * state says so), or archiving (the group stays active until its archive is done). */
static qun_rc no_dissolution(qun_db_t *db, const qun_group_t *g, const char *doing, json_t **problem,
                             qun_err_t *err) {
    char state[16] = "";
    qun_q_t *q;
    qun_group_state_t st = qun_group_state_parse(g->state);
    if (st == QUN_GROUP_REVIEW || st == QUN_GROUP_PENDING) {
        snprintf(state, sizeof state, "%s", g->state);
    } else {
        qun_rc rc = qun_db_run(db, &q, err,
                               "SELECT state FROM dissolutions WHERE group_id = $1 AND state IN "
                               "($2, $3, $4) ORDER BY id DESC LIMIT 1",
                               "isss", g->id, QUN_DISS_NAME(ARCHIVING), QUN_DISS_NAME(REVIEW),
                               QUN_DISS_NAME(PENDING));
        if (rc == QUN_DONE) return QUN_OK;
        if (rc != QUN_ROW) return rc;
        snprintf(state, sizeof state, "%s", qun_q_col_text(q, 0));
        qun_q_done(q);
    }
    if (problem)
        *problem = json_pack("{s:s, s:s, s:s}", "open", "dissolution", "dissolution_state", state,
                             "group_name", g->name);
    return qun_fail(
        err, QUN_LIFECYCLE_CONFLICT,
        "group %s has a dissolution in %s; the owner must cancel it (DELETE /v1/groups/%s/dissolution) "
        "before %s",
        g->gid, state, g->gid, doing);
}

/* ---- ownership transfer ---- */

static int64_t col_int(qun_db_t *db, const char *sql, int64_t id) {
    qun_q_t *q;
    int64_t v = 0;
    if (qun_db_run(db, &q, NULL, sql, "i", id) == QUN_ROW) {
        v = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return v;
}

/* Completed transfers of a group (by_group) or to a new owner since now - window: how
 * many, and when the oldest of them leaves the window.  (Two literal statements: the
 * store caches prepared statements by their text's address.) */
static qun_rc transfers_since(qun_db_t *db, bool by_group, int64_t id, int64_t window, int64_t *n,
                              int64_t *frees_at, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = by_group ? qun_db_run(db, &q, err,
                                      "SELECT COUNT(*), COALESCE(MIN(accepted_at), 0) FROM transfer_log "
                                      "WHERE group_id = $1 AND accepted_at > $2",
                                      "ii", id, qun_now() - window)
                         : qun_db_run(db, &q, err,
                                      "SELECT COUNT(*), COALESCE(MIN(accepted_at), 0) FROM transfer_log "
                                      "WHERE to_id = $1 AND accepted_at > $2",
                                      "ii", id, qun_now() - window);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *n = qun_q_col_int(q, 0);
    *frees_at = qun_q_col_int(q, 1) + window;
    qun_q_done(q);
    return QUN_OK;
}

/* The caps of the verification policy: transfers per group and per new owner. */
static qun_rc transfer_caps(qun_db_t *db, const qun_group_t *g, int64_t to, json_t **problem,
                            qun_err_t *err) {
    const qun_policy_verify_t *pv = qun_policy_verification(qun_core_cfg.policy);
    int64_t n, frees;
    qun_rc rc = transfers_since(db, true, g->id, pv->transfer_group_window, &n, &frees, err);
    if (rc != QUN_OK) return rc;
    if (n >= pv->transfer_group_max) {
        if (problem)
            *problem =
                json_pack("{s:I, s:I, s:I}", "limit", (json_int_t)pv->transfer_group_max, "window_seconds",
                          (json_int_t)pv->transfer_group_window, "retry_at", (json_int_t)frees);
        return qun_fail(err, QUN_TRANSFER_LIMIT_GROUP,
                        "group %s changed owner %lld times in the last %lld days (the limit)", g->gid,
                        (long long)n, (long long)(pv->transfer_group_window / 86400));
    }
    rc = transfers_since(db, false, to, pv->transfer_owner_window, &n, &frees, err);
    if (rc != QUN_OK) return rc;
    if (n >= pv->transfer_owner_max) {
        if (problem)
            *problem =
                json_pack("{s:I, s:I, s:I}", "limit", (json_int_t)pv->transfer_owner_max, "window_seconds",
                          (json_int_t)pv->transfer_owner_window, "retry_at", (json_int_t)frees);
        return qun_fail(err, QUN_TRANSFER_LIMIT_OWNER,
                        "the new owner received %lld groups in the last %lld hours (the limit)", (long long)n,
                        (long long)(pv->transfer_owner_window / 3600));
    }
    return QUN_OK;
}

/* Everything a transfer from a checks before any proof: the group, the new owner, no
 * pending transfer, a session and a password old enough, and the caps. */
static qun_rc transfer_checks(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *to,
                              qun_group_t *g, int64_t *uid, json_t **problem, qun_err_t *err) {
    qun_role_t cur;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, g, err);
    if (rc == QUN_OK) rc = no_dissolution(db, g, "its ownership can be offered", problem, err);
    if (rc == QUN_OK && qun_group_state_parse(g->state) != QUN_GROUP_ACTIVE)
        rc = qun_fail(err, QUN_GROUP_NOT_ACTIVE, "group is %s", g->state);
    if (rc == QUN_OK) rc = qun_user_id(db, to, uid, err);
    if (rc == QUN_OK) rc = qun_member_role(db, g->id, *uid, &cur, err);
    if (rc == QUN_OK && (cur == QUN_ROLE_NONE || *uid == a->uid))
        rc = qun_fail_field(err, QUN_MEMBER_NOT_FOUND, "to", "the new owner must be another member");
    if (rc == QUN_OK && col_int(db, "SELECT COUNT(*) FROM transfers WHERE group_id = $1", g->id) > 0)
        rc = qun_fail(err, QUN_TRANSFER_PENDING, "a transfer is already pending");
    if (rc != QUN_OK) return rc;
    const qun_policy_verify_t *pv = qun_policy_verification(qun_core_cfg.policy);
    int64_t now = qun_now();
    int64_t session_at = col_int(db, "SELECT created_at FROM sessions WHERE id = $1", a->session_id);
    int64_t password_at = col_int(db, "SELECT password_changed_at FROM users WHERE id = $1", a->uid);
    if (now - session_at < pv->transfer_session_age) {
        if (problem)
            *problem =
                json_pack("{s:I, s:I}", "min_session_age_seconds", (json_int_t)pv->transfer_session_age,
                          "retry_at", (json_int_t)(session_at + pv->transfer_session_age));
        return qun_fail(err, QUN_SESSION_TOO_NEW,
                        "this session is %llds old; transfers need a session at least %llds old",
                        (long long)(now - session_at), (long long)pv->transfer_session_age);
    }
    if (now - password_at < pv->transfer_password_age) {
        if (problem)
            *problem = json_pack("{s:I, s:I}", "password_change_cooldown_seconds",
                                 (json_int_t)pv->transfer_password_age, "retry_at",
                                 (json_int_t)(password_at + pv->transfer_password_age));
        return qun_fail(err, QUN_PASSWORD_TOO_RECENT,
                        "your password was set %llds ago; transfers wait %llds after a change",
                        (long long)(now - password_at), (long long)pv->transfer_password_age);
    }
    return transfer_caps(db, g, *uid, problem, err);
}

qun_rc qun_transfer_preview(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *to, json_t **out,
                            json_t **problem, qun_err_t *err) {
    qun_group_t g;
    int64_t uid;
    qun_rc rc = transfer_checks(db, a, gid, to, &g, &uid, problem, err);
    if (rc != QUN_OK) return rc;
    json_t *params = json_pack("{s:s}", "to", to);
    *out = json_pack("{s:s, s:s, s:s, s:O}", "group", g.gid, "name", g.name, "to", to, "params", params);
    rc = *out ? action_preview(db, a, &g, "transfer", params, *out, err)
              : qun_fail(err, QUN_NOMEM, "out of memory");
    json_decref(params);
    return rc;
}

qun_rc qun_transfer_propose(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *to,
                            const qun_action_proof_t *proof, json_t **out, qun_err_t *err) {
    qun_group_t g;
    int64_t uid;
    qun_rc rc = qun_lifecycle_lock(db, err);
    if (rc == QUN_OK) rc = transfer_checks(db, a, gid, to, &g, &uid, proof->problem, err);
    json_t *params = json_pack("{s:s}", "to", to);
    if (rc == QUN_OK) rc = action_verify(db, a, &g, "transfer", params, proof, true, err);
    json_decref(params);
    qun_q_t *q;
    if (rc == QUN_OK) {
        rc = qun_db_run(db, &q, err,
                        "INSERT INTO transfers(group_id, from_id, to_id, created_at) VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (group_id) DO NOTHING RETURNING group_id",
                        "iiii", g.id, a->uid, uid, qun_now());
        if (rc == QUN_DONE) return qun_fail(err, QUN_TRANSFER_PENDING, "a transfer is already pending");
        if (rc == QUN_ROW) qun_q_done(q), rc = QUN_OK;
    }
    char methods[96];
    qun_verify_need_t need = {0};
    if (rc == QUN_OK) rc = qun_verify_need(db, a, QUN_RISK_ALLOW, &need, err);
    qun_verify_mask_text(need.all, NULL, methods, sizeof methods);
    json_t *f = json_pack("{s:s, s:s, s:s}", "to", to, "platform", a->platform, "verification", methods);
    if (rc == QUN_OK)
        rc = qun_ledger_append(db, "transfer.proposed", g.gid, a->openid, g.state, g.state, f, NULL, err);
    json_decref(f);
    if (rc == QUN_OK)
        rc = qun_event_emit(db, "transfer.proposed", 0, uid,
                            json_pack("{s:s, s:s, s:s, s:s}", "group", g.gid, "group_name", g.name, "from",
                                      a->openid, "to", to),
                            err);
    if (rc == QUN_OK) rc = qun_notify_transfer(db, g.id, a->uid, uid, err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "group", g.gid, "from", a->openid, "to", to, "state",
                     "proposed", "verification", methods);
    rc = qun_display_name_put(db, *out, "from_display_name", a->uid, err);
    if (rc == QUN_OK) rc = qun_display_name_put(db, *out, "to_display_name", uid, err);
    return rc;
}

qun_rc qun_transfer_answer(qun_db_t *db, const qun_actor_t *a, const char *gid, bool accept, json_t **out,
                           qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
    qun_rc rc = qun_lifecycle_lock(db, err);
    if (rc == QUN_OK) rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err, "DELETE FROM transfers WHERE group_id = $1 AND to_id = $2 RETURNING from_id",
                    "ii", g.id, a->uid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_TRANSFER_NOT_FOUND, "no transfer to you is pending");
    if (rc != QUN_ROW) return rc;
    int64_t from = qun_q_col_int(q, 0);
    qun_q_done(q);
    /* The caps hold when the transfer completes too: other transfers may have completed
     * since this one was proposed.  Refused, the proposal stays pending. */
    if (accept && (rc = transfer_caps(db, &g, a->uid, NULL, err)) != QUN_OK) return rc;
    /* Nor does ownership change while a dissolution is open; refused, the offer stays
     * open too (a decline always goes through). */
    if (accept && (rc = no_dissolution(db, &g, "ownership can change hands; the offer stays open", NULL,
                                       err)) != QUN_OK)
        return rc;
    if (accept) {
        rc = qun_db_run(
            db, NULL, err,
            "INSERT INTO transfer_log(group_id, from_id, to_id, accepted_at) VALUES ($1, $2, $3, $4)", "iiii",
            g.id, from, a->uid, qun_now());
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err,
                            "UPDATE members SET role = 'admin' WHERE group_id = $1 AND user_id = $2", "ii",
                            g.id, from);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err,
                            "UPDATE members SET role = 'owner' WHERE group_id = $1 AND user_id = $2", "ii",
                            g.id, a->uid);
        if (rc == QUN_DONE)
            rc = qun_db_run(db, NULL, err, "UPDATE groups SET owner_id = $2, updated_at = $3 WHERE id = $1",
                            "iii", g.id, a->uid, qun_now());
        if (rc == QUN_DONE) rc = qun_db_run(db, &q, err, "SELECT openid FROM users WHERE id = $1", "i", from);
        if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
        json_t *f = json_pack("{s:s, s:s}", "from", qun_q_col_text(q, 0), "to", a->openid);
        qun_q_done(q);
        rc = qun_ledger_append(db, "group.ownership_transferred", g.gid, a->openid, g.state, g.state, f, NULL,
                               err);
        json_decref(f);
        /* Both roles changed: the new owner's first, then the old owner's (now admin);
         * by is the new owner, whose acceptance made the change. */
        if (rc == QUN_OK) rc = role_changed(db, g.id, a->uid, qun_role_name(g.role), a->openid, err);
        if (rc == QUN_OK) rc = role_changed(db, g.id, from, qun_role_name(QUN_ROLE_OWNER), a->openid, err);
        if (rc != QUN_OK) return rc;
    } else {
        rc = qun_ledger_append(db, "transfer.declined", g.gid, a->openid, g.state, g.state, NULL, NULL, err);
        if (rc != QUN_OK) return rc;
    }
    rc = qun_event_emit(db, accept ? "transfer.accepted" : "transfer.declined", accept ? g.id : 0, from,
                        json_pack("{s:s, s:s}", "group", g.gid, "to", a->openid), err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:s}", "group", g.gid, "state", accept ? "accepted" : "declined");
    if (!accept) return QUN_OK;
    json_object_set_new(*out, "owner", json_string(a->openid));
    return qun_display_name_put(db, *out, "owner_display_name", a->uid, err);
}

qun_rc qun_transfer_withdraw(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out,
                             qun_err_t *err) {
    qun_group_t g;
    qun_q_t *q;
    qun_rc rc = qun_lifecycle_lock(db, err);
    if (rc == QUN_OK) rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err, "DELETE FROM transfers WHERE group_id = $1 RETURNING to_id", "i", g.id);
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_TRANSFER_NOT_FOUND, "group %s has no transfer offer open", g.gid);
    if (rc != QUN_ROW) return rc;
    int64_t to = qun_q_col_int(q, 0);
    qun_q_done(q);
    rc = qun_db_run(db, &q, err, "SELECT openid FROM users WHERE id = $1", "i", to);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    char to_openid[QUN_ID_MAX];
    snprintf(to_openid, sizeof to_openid, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    json_t *f = json_pack("{s:s}", "to", to_openid);
    rc = qun_ledger_append(db, "transfer.withdrawn", g.gid, a->openid, g.state, g.state, f, NULL, err);
    json_decref(f);
    if (rc == QUN_OK)
        rc = qun_event_emit(db, "transfer.withdrawn", 0, to,
                            json_pack("{s:s, s:s, s:s}", "group", g.gid, "from", a->openid, "to", to_openid),
                            err);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:s, s:s}", "group", g.gid, "to", to_openid, "state", "withdrawn");
    if (!*out) return qun_fail(err, QUN_NOMEM, "out of memory");
    return qun_display_name_put(db, *out, "to_display_name", to, err);
}

/* ---- member removal, one by one or in bulk ---- */

/* The members openids names, checked as a whole before anything is removed: each must
 * be a member the actor may remove (admins remove members only; nobody removes the
 * owner), none twice.  ids[] receives their user ids; *admins counts the admins. */
static qun_rc bulk_targets(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, json_t *openids,
                           int64_t *ids, int64_t *admins, qun_err_t *err) {
    size_t i, n = json_array_size(openids);
    json_t *e;
    *admins = 0;
    if (n == 0) return qun_fail_field(err, QUN_FIELD_INVALID, "openids", "name at least one member");
    json_array_foreach(openids, i, e) {
        char field[40];
        snprintf(field, sizeof field, "openids[%zu]", i);
        const char *openid = json_string_value(e);
        qun_role_t cur;
        qun_rc rc = qun_user_id(db, openid, &ids[i], err);
        if (rc == QUN_USER_NOT_FOUND)
            return qun_fail_field(err, rc, field, "no user has openid %.40s", openid);
        if (rc == QUN_OK) rc = qun_member_role(db, g->id, ids[i], &cur, err);
        if (rc != QUN_OK) return rc;
        for (size_t k = 0; k < i; k++)
            if (ids[k] == ids[i])
                return qun_fail_field(err, QUN_FIELD_INVALID, field, "%.40s is listed twice", openid);
        if (cur == QUN_ROLE_NONE)
            return qun_fail_field(err, QUN_MEMBER_NOT_FOUND, field, "%.40s is not a member", openid);
        if (cur == QUN_ROLE_OWNER)
            return qun_fail_field(err, QUN_FORBIDDEN_ROLE, field, "the owner cannot be removed");
        if (cur == QUN_ROLE_ADMIN && g->role != QUN_ROLE_OWNER)
            return qun_fail_field(err, QUN_FORBIDDEN_ROLE, field,
                                  "admins remove members only; ask the owner");
        if (cur == QUN_ROLE_ADMIN) (*admins)++;
    }
    return QUN_OK;
}

/* The group (active; the actor an admin or the owner) and the checked targets. */
static qun_rc bulk_prepare(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *openids,
                           qun_group_t *g, int64_t ids[QUN_BULK_MAX], int64_t *admins, qun_err_t *err) {
    if (json_array_size(openids) > QUN_BULK_MAX)
        return qun_fail_field(err, QUN_FIELD_INVALID, "openids", "at most %d members at once", QUN_BULK_MAX);
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_ADMIN, g, err);
    if (rc == QUN_OK && qun_group_state_parse(g->state) != QUN_GROUP_ACTIVE)
        rc = qun_fail(err, QUN_GROUP_NOT_ACTIVE, "group is %s", g->state);
    return rc == QUN_OK ? bulk_targets(db, a, g, openids, ids, admins, err) : rc;
}

/* Members the actor removed from g over the last day, by either route (their
 * members.removed ledger entries): the threshold counts a rolling day, so splitting a
 * large removal into small requests, or into single removals, does not get around the
 * verification. */
#define BULK_WINDOW 86400
static qun_rc bulk_recent(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, int64_t *n,
                          qun_err_t *err) {
    qun_q_t *q;
    *n = 0;
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT entry FROM ledger_entries WHERE group_openid = $1 AND event = 'members.removed' "
                   "AND actor_openid = $2 AND created_at > $3",
                   "ssi", g->gid, a->openid, qun_now() - BULK_WINDOW);
    for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
        json_t *e = json_loads(qun_q_col_text(q, 0), 0, NULL);
        *n += json_integer_value(json_object_get(e, "removed"));
        json_decref(e);
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Whether removing n more members needs the platform's verification. */
static qun_rc bulk_needs_verification(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, int64_t n,
                                      bool *needed, int64_t *recent, qun_err_t *err) {
    qun_rc rc = bulk_recent(db, a, g, recent, err);
    *needed = n + *recent > qun_policy_verification(qun_core_cfg.policy)->bulk_verify_above;
    return rc;
}

/* The members.removed ledger entry of a removal of n members (admins of them admins)
 * whose parameters are params, by either route; methods receives what it was verified
 * with ("none" when nothing was needed). */
static qun_rc removal_ledgered(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, int64_t n,
                               int64_t admins, json_t *params, bool verified, char methods[96],
                               qun_err_t *err) {
    char digest[65];
    qun_json_digest(params, digest);
    snprintf(methods, 96, "none");
    qun_verify_need_t need = {0};
    if (verified) {
        /* What the account has enrolled raises the platform's proofs (qun_verify_need). */
        qun_rc nrc = qun_verify_need(db, a, QUN_RISK_ALLOW, &need, err);
        if (nrc != QUN_OK) return nrc;
        qun_verify_mask_text(need.all, NULL, methods, 96);
    }
    json_t *f = json_pack("{s:I, s:I, s:I, s:I, s:s, s:s, s:s}", "removed", (json_int_t)n, "admins",
                          (json_int_t)admins, "members", (json_int_t)(n - admins), "member_count",
                          (json_int_t)(g->member_count - n), "request_digest", digest, "platform",
                          a->platform, "verification", methods);
    qun_rc rc =
        f ? qun_ledger_append(db, "members.removed", g->gid, a->openid, g->state, g->state, f, NULL, err)
          : qun_fail(err, QUN_NOMEM, "out of memory");
    json_decref(f);
    return rc;
}

qun_rc qun_member_remove(qun_db_t *db, const qun_actor_t *a, const char *gid, const char *openid,
                         const char *reason, const qun_action_proof_t *proof, qun_err_t *err) {
    qun_group_t g;
    int64_t uid, recent;
    qun_role_t cur;
    bool needed = false;
    char methods[96];
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_ADMIN, &g, err);
    if (rc == QUN_OK) rc = qun_user_id(db, openid, &uid, err);
    if (rc == QUN_OK) rc = qun_member_role(db, g.id, uid, &cur, err);
    if (rc == QUN_OK && cur == QUN_ROLE_NONE)
        rc = qun_fail(err, QUN_MEMBER_NOT_FOUND, "%s is not a member", openid);
    if (rc == QUN_OK && cur == QUN_ROLE_OWNER)
        rc = qun_fail(err, QUN_FORBIDDEN_ROLE, "the owner cannot be removed");
    if (rc == QUN_OK && cur == QUN_ROLE_ADMIN && g.role != QUN_ROLE_OWNER)
        rc = qun_fail(err, QUN_FORBIDDEN_ROLE, "admins remove members only; ask the owner");
    if (rc != QUN_OK) return rc;
    /* One removal is a bulk removal of one: the same window, the same proof, bound to
     * the same parameters, so the bulk preview issues its token. */
    json_t *params = json_pack("{s:[s]}", "openids", openid);
    if (!params) return qun_fail(err, QUN_NOMEM, "out of memory");
    rc = bulk_needs_verification(db, a, &g, 1, &needed, &recent, err);
    if (rc == QUN_OK) rc = action_verify(db, a, &g, "bulk_remove", params, proof, needed, err);
    if (rc != QUN_OK && proof->problem && *proof->problem) {
        json_object_set(*proof->problem, "params", params);
        json_object_set_new(*proof->problem, "removed_last_day", json_integer(recent));
    }
    if (rc == QUN_OK) rc = remove_member(db, g.id, uid, a->openid, reason, err);
    if (rc == QUN_OK)
        rc = removal_ledgered(db, a, &g, 1, cur == QUN_ROLE_ADMIN, params, needed, methods, err);
    json_decref(params);
    return rc;
}

qun_rc qun_member_remove_bulk_preview(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *openids,
                                      json_t **out, qun_err_t *err) {
    qun_group_t g;
    int64_t ids[QUN_BULK_MAX], admins;
    qun_rc rc = bulk_prepare(db, a, gid, openids, &g, ids, &admins, err);
    if (rc != QUN_OK) return rc;
    int64_t n = (int64_t)json_array_size(openids), recent;
    bool needed;
    rc = bulk_needs_verification(db, a, &g, n, &needed, &recent, err);
    if (rc != QUN_OK) return rc;
    json_t *params = json_pack("{s:O}", "openids", openids);
    *out = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:O}", "group", g.gid, "name", g.name, "count",
                     (json_int_t)n, "admins", (json_int_t)admins, "members_after",
                     (json_int_t)(g.member_count - n), "verification_required", needed, "removed_last_day",
                     (json_int_t)recent, "params", params);
    rc = *out ? action_preview(db, a, &g, "bulk_remove", params, *out, err)
              : qun_fail(err, QUN_NOMEM, "out of memory");
    json_decref(params);
    return rc;
}

qun_rc qun_member_remove_bulk(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *openids,
                              const char *reason, const qun_action_proof_t *proof, json_t **out,
                              qun_err_t *err) {
    qun_group_t g;
    int64_t ids[QUN_BULK_MAX], admins;
    qun_rc rc = bulk_prepare(db, a, gid, openids, &g, ids, &admins, err);
    if (rc != QUN_OK) return rc;
    size_t n = json_array_size(openids);
    int64_t recent;
    bool needed;
    rc = bulk_needs_verification(db, a, &g, (int64_t)n, &needed, &recent, err);
    if (rc != QUN_OK) return rc;
    json_t *params = json_pack("{s:O}", "openids", openids);
    rc = action_verify(db, a, &g, "bulk_remove", params, proof, needed, err);
    /* One transaction: the writer runs this operation in its own savepoint, so a failure
     * part-way leaves every member in place. */
    for (size_t i = 0; rc == QUN_OK && i < n; i++)
        rc = remove_member(db, g.id, ids[i], a->openid, reason, err);
    char methods[96];
    if (rc == QUN_OK) rc = removal_ledgered(db, a, &g, (int64_t)n, admins, params, needed, methods, err);
    json_decref(params);
    if (rc != QUN_OK) return rc;
    *out = json_pack("{s:s, s:I, s:I, s:I, s:s}", "group", g.gid, "removed", (json_int_t)n, "admins",
                     (json_int_t)admins, "member_count", (json_int_t)(g.member_count - (int64_t)n),
                     "verification", methods);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}
