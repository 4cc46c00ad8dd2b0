/* SPDX-License-Identifier: MIT */
/* The risk engine (docs/design.md section 5): four explainable rules over the store
 * (frequency, new device, linked accounts, anomaly), combined into a level and a
 * score, stored in risk_evaluations.  Each rule's reason names the rule, the level it
 * asks for, its points and a sentence a person can read.  Every query is bounded by
 * an index (migration 0006) and a row limit, so an evaluation costs the same with a
 * million rows of history. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qun/risk.h"

qun_risk_cfg_t qun_risk_cfg = {
    .freq_max = 3,
    .freq_deny_max = 20,
    .freq_window = 24 * 3600,
    .freq_points = 30,
    .new_device_age = 7 * 86400,
    .new_device_points = 30,
    .linked_max = 4,
    .linked_window = 3600,
    .linked_points = 50,
    .linked_candidates = 500,
    .anomaly_share = 0.02,
    .anomaly_min_history = 50,
    .anomaly_history = 10000,
    .anomaly_points = 20,
    .deny_score = 150,
    .rules = QUN_RISK_RULES_ALL,
};

static const char *level_names[] = {"allow", "warn", "verify", "review", "deny"};

const char *qun_risk_level_name(qun_risk_level_t level) {
    return level >= QUN_RISK_ALLOW && level <= QUN_RISK_DENY ? level_names[level] : "deny";
}

void qun_risk_clear(qun_risk_t *r) {
    if (!r) return;
    json_decref(r->reasons);
    r->reasons = NULL;
}

/* One fired rule: its code (rule), level and points, the numbers behind it as params
 * (stolen; clients word the reason from rule and params in their own language) and the
 * same as an English sentence (detail, for logs and developers). */
static void reason(qun_risk_t *r, const char *rule, qun_risk_level_t level, int points, json_t *params,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void reason(qun_risk_t *r, const char *rule, qun_risk_level_t level, int points, json_t *params,
                   const char *fmt, ...) {
    char detail[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_array_append_new(r->reasons, json_pack("{s:s, s:s, s:s, s:i, s:o}", "rule", rule, "level",
                                                qun_risk_level_name(level), "detail", detail, "points",
                                                points, "params", params ? params : json_object()));
    if (level > r->level) r->level = level;
    r->score += points;
}

static qun_rc count1(qun_db_t *db, qun_err_t *err, int64_t *n, const char *sql, const char *types, int64_t a,
                     int64_t b) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, sql, types, a, b);
    *n = 0;
    if (rc == QUN_ROW) {
        *n = qun_q_col_int(q, 0);
        qun_q_done(q);
        return QUN_OK;
    }
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* frequency: this request would be the (n+1)th in the window. */
static qun_rc rule_frequency(qun_db_t *db, const qun_actor_t *a, int64_t now, qun_risk_t *r, qun_err_t *err) {
    int64_t n;
    qun_rc rc =
        count1(db, err, &n, "SELECT count(*) FROM dissolutions WHERE requested_by = $1 AND requested_at > $2",
               "ii", a->uid, now - qun_risk_cfg.freq_window);
    if (rc != QUN_OK || n + 1 <= qun_risk_cfg.freq_max) return rc;
    bool deny = n + 1 > qun_risk_cfg.freq_deny_max;
    reason(r, "frequency", deny ? QUN_RISK_DENY : QUN_RISK_VERIFY, qun_risk_cfg.freq_points,
           json_pack("{s:I, s:I, s:i}", "count", (json_int_t)(n + 1), "window_hours",
                     (json_int_t)(qun_risk_cfg.freq_window / 3600), "max",
                     deny ? qun_risk_cfg.freq_deny_max : qun_risk_cfg.freq_max),
           "this would be dissolution %lld by you in %lld hours; more than %d needs %s", (long long)(n + 1),
           (long long)(qun_risk_cfg.freq_window / 3600),
           deny ? qun_risk_cfg.freq_deny_max : qun_risk_cfg.freq_max,
           deny ? "nothing: it is refused" : "verification");
    return QUN_OK;
}

/* new_device: the request's device is young while an established device (itself
 * older than new_device_age) exists. A new account's first devices are all young and
 * say nothing about a takeover; counting them would make the rule depend on whether
 * two registrations fell in the same second. */
static qun_rc rule_new_device(qun_db_t *db, const qun_actor_t *a, int64_t now, qun_risk_t *r,
                              qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT first_seen FROM devices WHERE user_id = $1 AND device_id = $2", "is",
                   a->uid, a->device_id);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    int64_t first = qun_q_col_int(q, 0);
    qun_q_done(q);
    if (now - first >= qun_risk_cfg.new_device_age) return QUN_OK;
    rc = qun_db_run(db, &q, err,
                    "SELECT count(*), COALESCE(min(first_seen), 0) FROM devices WHERE user_id = $1 "
                    "AND device_id <> $2 AND first_seen <= $3",
                    "isi", a->uid, a->device_id, now - qun_risk_cfg.new_device_age);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_OK : rc;
    int64_t others = qun_q_col_int(q, 0), oldest = qun_q_col_int(q, 1);
    qun_q_done(q);
    if (others == 0) return QUN_OK;
    reason(
        r, "new_device", QUN_RISK_VERIFY, qun_risk_cfg.new_device_points,
        json_pack("{s:s, s:I, s:I, s:I, s:I}", "device_id", a->device_id, "age_hours",
                  (json_int_t)((now - first) / 3600), "min_age_days",
                  (json_int_t)(qun_risk_cfg.new_device_age / 86400), "other_devices", (json_int_t)others,
                  "oldest_days", (json_int_t)((now - oldest) / 86400)),
        "device %.64s was first seen %lld hours ago (less than %lld days), while the account has used %lld "
        "other device(s) since %lld days ago",
        a->device_id, (long long)((now - first) / 3600), (long long)(qun_risk_cfg.new_device_age / 86400),
        (long long)others, (long long)((now - oldest) / 86400));
    return QUN_OK;
}

/* The network of an address: /24 for IPv4 (and IPv4-mapped IPv6), /64 for IPv6.
 * Loopback and unparsable addresses have none: behind one host every client would
 * otherwise look linked. */
typedef struct {
    int family;
    unsigned char b[8];
} net_t;

static bool net_of(const char *ip, net_t *n) {
    char buf[64];
    if (!ip || !*ip) return false;
    snprintf(buf, sizeof buf, "%s", ip[0] == '[' ? ip + 1 : ip);
    buf[strcspn(buf, "]%")] = '\0';
    unsigned char a[16];
    memset(n, 0, sizeof *n);
    if (inet_pton(AF_INET, buf, a) == 1) {
        if (a[0] == 127) return false;
        n->family = 4;
        memcpy(n->b, a, 3);
        return true;
    }
    if (inet_pton(AF_INET6, buf, a) != 1) return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(a, loop6, 16) == 0) return false;
    if (memcmp(a, mapped, 12) == 0) {
        if (a[12] == 127) return false;
        n->family = 4;
        memcpy(n->b, a + 12, 3);
        return true;
    }
    n->family = 6;
    memcpy(n->b, a, 8);
    return true;
}

static bool net_eq(const net_t *x, const net_t *y) {
    return x->family == y->family && memcmp(x->b, y->b, 8) == 0;
}

enum { LINK_DEVICE = 1, LINK_NETWORK = 2, LINK_ORG = 4, LINK_DECLARED = 8 };

/* Which links join users u and v (a mask of LINK_*). */
static qun_rc links_between(qun_db_t *db, int64_t u, int64_t v, const net_t *net, unsigned *mask,
                            qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc;
    *mask = 0;
    rc = qun_db_run(db, &q, err,
                    "SELECT 1 FROM devices x JOIN devices y ON y.user_id = $2 AND y.device_id = x.device_id "
                    "WHERE x.user_id = $1 LIMIT 1",
                    "ii", u, v);
    if (rc == QUN_ROW)
        *mask |= LINK_DEVICE, qun_q_done(q);
    else if (rc != QUN_DONE)
        return rc;
    if (net) {
        rc = qun_db_run(db, &q, err, "SELECT ip FROM sessions WHERE user_id = $1 ORDER BY id DESC LIMIT 50",
                        "i", v);
        for (; rc == QUN_ROW; rc = qun_q_step(q, err)) {
            net_t other;
            if (net_of(qun_q_col_text(q, 0), &other) && net_eq(net, &other)) {
                *mask |= LINK_NETWORK;
                qun_q_done(q);
                rc = QUN_DONE;
                break;
            }
        }
        if (rc != QUN_DONE) return rc;
    }
    rc = qun_db_run(db, &q, err,
                    "SELECT 1 FROM org_admins x JOIN org_admins y ON y.org_id = x.org_id AND y.user_id = $2 "
                    "WHERE x.user_id = $1 UNION ALL "
                    "SELECT 1 FROM groups x JOIN groups y ON y.org_id = x.org_id AND y.owner_id = $2 "
                    "WHERE x.owner_id = $1 AND x.org_id IS NOT NULL LIMIT 1",
                    "ii", u, v);
    if (rc == QUN_ROW)
        *mask |= LINK_ORG, qun_q_done(q);
    else if (rc != QUN_DONE)
        return rc;
    rc = qun_db_run(
        db, &q, err,
        "SELECT 1 FROM account_links WHERE (user_a = $1 AND user_b = $2) OR (user_a = $2 AND user_b = $1)",
        "ii", u, v);
    if (rc == QUN_ROW)
        *mask |= LINK_DECLARED, qun_q_done(q);
    else if (rc != QUN_DONE)
        return rc;
    return QUN_OK;
}

/* linked: dissolutions in the window by accounts linked to the actor, plus the actor's
 * own and this one, over linked_max.  Candidates are the window's other requesters,
 * so the cost follows recent activity, not the size of the history. */
static qun_rc rule_linked(qun_db_t *db, const qun_actor_t *a, const char *ip, int64_t now, qun_risk_t *r,
                          qun_err_t *err) {
    int64_t since = now - qun_risk_cfg.linked_window;
    int cap = qun_risk_cfg.linked_candidates > 0 ? qun_risk_cfg.linked_candidates : 1;
    int64_t *cand = calloc((size_t)cap, sizeof *cand);
    if (!cand) return qun_fail(err, QUN_NOMEM, "out of memory");
    int nc = 0;
    qun_q_t *q;
    /* Grouping by +requested_by (not the bare column) keeps SQLite from answering the
     * GROUP BY with a scan of the whole (requested_by, requested_at) index, which grows
     * with the history; the window's range on requested_at is what must drive it
     * (bench/risk_bench.c measured 2.7 ms against 50 000 past dissolutions). */
    qun_rc rc =
        qun_db_run(db, &q, err,
                   "SELECT +requested_by FROM dissolutions WHERE requested_at > $1 AND requested_by <> $2 "
                   "GROUP BY +requested_by ORDER BY max(requested_at) DESC LIMIT $3",
                   "iii", since, a->uid, (int64_t)cap);
    for (; rc == QUN_ROW && nc < cap; rc = qun_q_step(q, err))
        cand[nc++] = qun_q_col_int(q, 0);
    if (rc == QUN_ROW) qun_q_done(q), rc = QUN_DONE;
    if (rc != QUN_DONE) goto out;
    rc = QUN_OK;
    if (nc == 0) goto out;
    char sip[64] = "";
    if (!ip || !*ip) {
        if (qun_db_run(db, &q, err, "SELECT ip FROM sessions WHERE id = $1", "i", a->session_id) == QUN_ROW) {
            snprintf(sip, sizeof sip, "%s", qun_q_col_text(q, 0));
            qun_q_done(q);
        }
        ip = sip;
    }
    net_t net;
    bool have_net = net_of(ip, &net);
    int64_t total = 0, accounts = 0;
    unsigned kinds = 0;
    for (int i = 0; i < nc && rc == QUN_OK; i++) {
        unsigned mask;
        rc = links_between(db, a->uid, cand[i], have_net ? &net : NULL, &mask, err);
        if (rc != QUN_OK || !mask) continue;
        int64_t n;
        rc = count1(db, err, &n,
                    "SELECT count(*) FROM dissolutions WHERE requested_by = $1 AND requested_at > $2", "ii",
                    cand[i], since);
        total += n;
        accounts++;
        kinds |= mask;
    }
    if (rc != QUN_OK || accounts == 0) goto out;
    int64_t own;
    rc = count1(db, err, &own,
                "SELECT count(*) FROM dissolutions WHERE requested_by = $1 AND requested_at > $2", "ii",
                a->uid, since);
    if (rc != QUN_OK) goto out;
    total += own + 1;
    if (total <= qun_risk_cfg.linked_max) goto out;
    char how[64] = "";
    static const char *names[] = {"device", "network", "org", "declared"};
    for (int k = 0; k < 4; k++)
        if (kinds & (1u << k))
            snprintf(how + strlen(how), sizeof how - strlen(how), "%s%s", how[0] ? ", " : "", names[k]);
    reason(r, "linked", QUN_RISK_REVIEW, qun_risk_cfg.linked_points,
           json_pack("{s:I, s:I, s:I, s:s, s:i}", "count", (json_int_t)total, "window_minutes",
                     (json_int_t)(qun_risk_cfg.linked_window / 60), "accounts", (json_int_t)accounts, "links",
                     how, "max", qun_risk_cfg.linked_max),
           "%lld dissolutions in %lld minutes by you and %lld linked account(s) (%s); more than %d goes to "
           "manual review",
           (long long)total, (long long)(qun_risk_cfg.linked_window / 60), (long long)accounts, how,
           qun_risk_cfg.linked_max);
out:
    free(cand);
    return rc;
}

/* anomaly: the hour of day (UTC) of the request against the user's own message hours. */
static qun_rc rule_anomaly(qun_db_t *db, const qun_actor_t *a, int64_t now, qun_risk_t *r, qun_err_t *err) {
    int h = (int)(((now % 86400) + 86400) % 86400 / 3600);
    qun_q_t *q;
    /* Counted inside SQL: one answer row instead of up to anomaly_history rows stepped
     * through the store's API (a third of the rule's cost in bench/risk_bench.c). */
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT count(*), COALESCE(sum(CASE WHEN created_at % 86400 / 3600 = $3 THEN 1 ELSE 0 END), 0) "
        "FROM (SELECT created_at FROM messages WHERE author_id = $1 ORDER BY created_at DESC LIMIT $2) m",
        "iii", a->uid, (int64_t)qun_risk_cfg.anomaly_history, (int64_t)h);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_OK : rc;
    int64_t total = qun_q_col_int(q, 0), at_h = qun_q_col_int(q, 1);
    qun_q_done(q);
    if (total < qun_risk_cfg.anomaly_min_history) return QUN_OK;
    double share = (double)at_h / (double)total;
    if (share >= qun_risk_cfg.anomaly_share) return QUN_OK;
    reason(
        r, "anomaly", QUN_RISK_WARN, qun_risk_cfg.anomaly_points,
        json_pack("{s:i, s:f, s:I, s:f}", "hour_utc", h, "share_percent", share * 100.0, "messages",
                  (json_int_t)total, "threshold_percent", qun_risk_cfg.anomaly_share * 100.0),
        "requested at %02d:00-%02d:59 UTC, an hour holding %.1f%% of your last %lld messages (under %.1f%%)",
        h, h, share * 100.0, (long long)total, qun_risk_cfg.anomaly_share * 100.0);
    return QUN_OK;
}

json_t *qun_risk_json(const qun_risk_t *r) {
    return json_pack("{s:s, s:s, s:i, s:o}", "id", r->id, "level", qun_risk_level_name(r->level), "score",
                     r->score, "reasons", r->reasons ? json_deep_copy(r->reasons) : json_array());
}

qun_rc qun_risk_evaluate(qun_db_t *db, const qun_actor_t *a, int64_t group_id, const char *ip,
                         qun_risk_t *out, qun_err_t *err) {
    memset(out, 0, sizeof *out);
    out->reasons = json_array();
    if (!out->reasons) return qun_fail(err, QUN_NOMEM, "out of memory");
    int64_t now = qun_now();
    unsigned on = (unsigned)qun_risk_cfg.rules;
    qun_rc rc = QUN_OK;
    if (on & QUN_RISK_RULE_FREQUENCY) rc = rule_frequency(db, a, now, out, err);
    if (rc == QUN_OK && (on & QUN_RISK_RULE_NEW_DEVICE)) rc = rule_new_device(db, a, now, out, err);
    if (rc == QUN_OK && (on & QUN_RISK_RULE_LINKED)) rc = rule_linked(db, a, ip, now, out, err);
    if (rc == QUN_OK && (on & QUN_RISK_RULE_ANOMALY)) rc = rule_anomaly(db, a, now, out, err);
    if (rc == QUN_OK && out->score >= qun_risk_cfg.deny_score && out->level < QUN_RISK_DENY)
        reason(out, "score", QUN_RISK_DENY, 0,
               json_pack("{s:i, s:i}", "score", out->score, "deny_score", qun_risk_cfg.deny_score),
               "the total score %d reaches %d", out->score, qun_risk_cfg.deny_score);
    if (rc != QUN_OK) goto error;
    qun_id_new(out->id, "r");
    char *reasons = json_dumps(out->reasons, JSON_COMPACT);
    if (!reasons) {
        rc = qun_fail(err, QUN_NOMEM, "out of memory");
        goto error;
    }
    rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO risk_evaluations(rid, user_id, group_id, session_id, device_id, ip, level, score, "
        "reasons, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        "sizzsssisi", out->id, a->uid, group_id, a->session_id, a->device_id, ip ? ip : "",
        qun_risk_level_name(out->level), (int64_t)out->score, reasons, now);
    free(reasons);
    if (rc == QUN_DONE) return QUN_OK;
error:
    qun_risk_clear(out);
    return rc;
}

qun_rc qun_risk_get(qun_db_t *db, const qun_actor_t *a, const char *rid, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT e.rid, e.level, e.score, e.reasons, g.gid, e.device_id, e.created_at "
                           "FROM risk_evaluations e LEFT JOIN groups g ON g.id = e.group_id "
                           "WHERE e.rid = $1 AND (e.user_id = $2 OR $3 = 1)",
                           "sii", rid, a->uid, (int64_t)a->is_admin);
    if (rc == QUN_DONE) return qun_fail(err, QUN_RISK_NOT_FOUND, "no risk evaluation %.40s of yours", rid);
    if (rc != QUN_ROW) return rc;
    json_t *reasons = json_loads(qun_q_col_text(q, 3), 0, NULL);
    *out =
        json_pack("{s:s, s:s, s:I, s:o, s:s, s:I}", "id", qun_q_col_text(q, 0), "level", qun_q_col_text(q, 1),
                  "score", (json_int_t)qun_q_col_int(q, 2), "reasons", reasons ? reasons : json_array(),
                  "device_id", qun_q_col_text(q, 5), "created_at", (json_int_t)qun_q_col_int(q, 6));
    if (*out)
        json_object_set_new(*out, "group",
                            qun_q_col_null(q, 4) ? json_null() : json_string(qun_q_col_text(q, 4)));
    qun_q_done(q);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "out of memory");
}
