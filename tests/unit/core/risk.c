/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/risk.c on an in-memory store with crafted rows: each rule
 * fires when its condition holds and stays quiet just below it; levels combine,
 * points add up, evaluations are stored and read back by their owner only. */
#include <stdarg.h>

#include "qun/risk.h"
#include "unit.h"
#include "unit_core.h"

static qun_db_t *db;
static int64_t now0;
static int64_t gid_row; /* one group every crafted dissolution points at */

static void sql(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    qun_err_t err;
    qun_rc rc = qun_db_exec(db, buf, &err);
    if (rc != QUN_OK) fprintf(stderr, "%s: %s\n", buf, err.msg);
    CHECK(rc == QUN_OK);
}

static int64_t user(const char *name) {
    return unit_user_id(db, name);
}

/* A session of uid on device from ip; the device row is first seen `age` seconds ago. */
static void session(int64_t uid, const char *device, const char *ip, int64_t age, qun_actor_t *a) {
    static int n;
    char sid[32];
    snprintf(sid, sizeof sid, "s_%d", ++n);
    sql("INSERT INTO devices(user_id, device_id, platform, first_seen, last_seen) VALUES (%lld, '%s', 'ios', "
        "%lld, %lld) "
        "ON CONFLICT (user_id, device_id) DO NOTHING",
        (long long)uid, device, (long long)(now0 - age), (long long)now0);
    sql("INSERT INTO sessions(sid, user_id, token_hash, device_id, platform, ip, created_at, expires_at) "
        "VALUES ('%s', %lld, 'h%s', '%s', 'ios', '%s', %lld, %lld)",
        sid, (long long)uid, sid, device, ip, (long long)now0, (long long)now0 + 86400);
    if (a) {
        memset(a, 0, sizeof *a);
        a->uid = uid;
        qun_q_t *q;
        qun_err_t err;
        CHECK(qun_db_run(db, &q, &err, "SELECT id FROM sessions WHERE sid = $1", "s", sid) == QUN_ROW);
        a->session_id = qun_q_col_int(q, 0);
        qun_q_done(q);
        snprintf(a->device_id, sizeof a->device_id, "%s", device);
        snprintf(a->platform, sizeof a->platform, "ios");
    }
}

static void dissolution(int64_t uid, int64_t ago) {
    sql("INSERT INTO dissolutions(group_id, requested_by, messages, state, requested_at) "
        "VALUES (%lld, %lld, 'keep', 'cancelled', %lld)",
        (long long)gid_row, (long long)uid, (long long)(now0 - ago));
}

/* The reason of rule in an evaluation, or NULL. */
static json_t *reason_of(const qun_risk_t *r, const char *rule) {
    size_t i;
    json_t *e;
    json_array_foreach(r->reasons, i,
                       e) if (strcmp(json_string_value(json_object_get(e, "rule")), rule) == 0) return e;
    return NULL;
}

static void eval(const qun_actor_t *a, const char *ip, qun_risk_t *r) {
    qun_err_t err;
    qun_risk_clear(r);
    CHECK(qun_risk_evaluate(db, a, gid_row, ip, r, &err) == QUN_OK);
}

static void test_frequency(void) {
    int64_t u = user("freq");
    qun_actor_t a;
    session(u, "freq-phone", "198.51.100.1", 30 * 86400, &a);
    qun_risk_t r = {0};
    dissolution(u, 25 * 3600); /* outside the rolling 24 h */
    dissolution(u, 3600);
    dissolution(u, 7200);
    eval(&a, "198.51.100.1", &r);
    CHECK(r.level == QUN_RISK_ALLOW && r.score == 0 && json_array_size(r.reasons) == 0);
    dissolution(u, 60); /* the next request is the 4th in 24 h */
    eval(&a, "198.51.100.1", &r);
    json_t *why = reason_of(&r, "frequency");
    CHECK(r.level == QUN_RISK_VERIFY && why != NULL);
    CHECK(r.score == qun_risk_cfg.freq_points);
    CHECK(why && strstr(json_string_value(json_object_get(why, "detail")), "dissolution 4") != NULL);
    CHECK(why && strcmp(json_string_value(json_object_get(why, "level")), "verify") == 0);
    /* The same figures as params, for clients that word the reason themselves. */
    json_t *params = json_object_get(why, "params");
    CHECK(json_integer_value(json_object_get(params, "count")) == 4);
    CHECK(json_integer_value(json_object_get(params, "window_hours")) == qun_risk_cfg.freq_window / 3600);
    CHECK(json_integer_value(json_object_get(params, "max")) == qun_risk_cfg.freq_max);
    for (int i = 0; i < 17; i++)
        dissolution(u, 100 + i); /* 21st: denied */
    eval(&a, "198.51.100.1", &r);
    CHECK(r.level == QUN_RISK_DENY);
    /* risk_rules switches rules off: none runs, the evaluation is still stored. */
    qun_risk_cfg.rules = QUN_RISK_RULES_ALL & ~QUN_RISK_RULE_FREQUENCY;
    eval(&a, "198.51.100.1", &r);
    CHECK(r.level == QUN_RISK_ALLOW && reason_of(&r, "frequency") == NULL && r.id[0] == 'r');
    qun_risk_cfg.rules = QUN_RISK_RULES_ALL;
    qun_risk_clear(&r);
}

static void test_new_device(void) {
    int64_t u = user("newdev"), lone = user("lone");
    qun_actor_t old, fresh, only;
    session(u, "nd-old", "100.65.1.2", 60 * 86400, &old);
    session(u, "nd-new", "100.65.1.2", 2 * 86400, &fresh);
    session(lone, "lone-new", "100.66.1.3", 86400, &only);
    qun_risk_t r = {0};
    eval(&fresh, NULL, &r);
    CHECK(r.level == QUN_RISK_VERIFY && reason_of(&r, "new_device") != NULL);
    eval(&old, NULL, &r);
    CHECK(r.level == QUN_RISK_ALLOW && reason_of(&r, "new_device") == NULL);
    eval(&only, NULL, &r); /* new, but the account's only device */
    CHECK(r.level == QUN_RISK_ALLOW);
    qun_actor_t week;
    session(u, "nd-week", "100.65.1.2", 8 * 86400, &week); /* older than 7 days */
    eval(&week, NULL, &r);
    CHECK(reason_of(&r, "new_device") == NULL);
    /* A new account's second device: the first is young too, so nothing is established
     * to compare with, whether the two arrived a second or three days apart. */
    int64_t young = user("young");
    qun_actor_t first, second;
    session(young, "young-1", "203.0.113.7", 3 * 86400, &first);
    session(young, "young-2", "203.0.113.7", 3600, &second);
    eval(&second, NULL, &r);
    CHECK(reason_of(&r, "new_device") == NULL);
    qun_risk_clear(&r);
}

static void test_linked(void) {
    qun_risk_t r = {0};
    /* Five accounts sharing a device id: the fifth dissolution in the hour is reviewed. */
    int64_t u[5];
    qun_actor_t a[5];
    for (int i = 0; i < 5; i++) {
        char name[32], dev[32];
        snprintf(name, sizeof name, "dev%d", i);
        snprintf(dev, sizeof dev, "own-%d", i);
        u[i] = user(name);
        session(u[i], dev, "203.0.113.7", 90 * 86400, &a[i]);
        session(u[i], "shared-phone", i == 0 ? "10.9.0.1" : "172.16.5.5", 90 * 86400, NULL);
    }
    for (int i = 1; i < 4; i++)
        dissolution(u[i], 600);
    /* 3 linked + this one = 4: not over the threshold. */
    eval(&a[0], "10.9.0.1", &r);
    CHECK(reason_of(&r, "linked") == NULL && r.level == QUN_RISK_ALLOW);
    dissolution(u[4], 300);
    eval(&a[0], "10.9.0.1", &r);
    json_t *why = reason_of(&r, "linked");
    CHECK(r.level == QUN_RISK_REVIEW && why != NULL);
    CHECK(why &&
          strstr(json_string_value(json_object_get(why, "detail")), "4 linked account(s) (device") != NULL);
    CHECK(r.score == qun_risk_cfg.linked_points);
    /* Older than the window: not counted. */
    int64_t v = user("stale");
    qun_actor_t va;
    session(v, "stale-own", "10.77.0.1", 90 * 86400, &va);
    session(v, "shared-x", "10.77.0.2", 90 * 86400, NULL);
    int64_t w[4];
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "stale%d", i);
        w[i] = user(name);
        session(w[i], "shared-x", "10.78.0.1", 90 * 86400, NULL);
        dissolution(w[i], 2 * 3600);
    }
    eval(&va, "10.77.0.1", &r);
    CHECK(reason_of(&r, "linked") == NULL);

    /* The same /24: linked by network; another /24 is not; loopback links nobody. */
    int64_t n[5];
    qun_actor_t na;
    for (int i = 0; i < 5; i++) {
        char name[32], dev[32], ip[32];
        snprintf(name, sizeof name, "net%d", i);
        snprintf(dev, sizeof dev, "net-dev-%d", i);
        snprintf(ip, sizeof ip, "192.0.2.%d", 10 + i);
        n[i] = user(name);
        session(n[i], dev, ip, 90 * 86400, i == 0 ? &na : NULL);
        if (i) dissolution(n[i], 120);
    }
    eval(&na, "192.0.2.10", &r);
    why = reason_of(&r, "linked");
    CHECK(why && strstr(json_string_value(json_object_get(why, "detail")), "network") != NULL);
    eval(&na, "192.0.22.10", &r); /* not the peers' /24 */
    CHECK(reason_of(&r, "linked") == NULL);
    /* IPv6 /64. */
    int64_t s6[5];
    qun_actor_t a6;
    for (int i = 0; i < 5; i++) {
        char name[32], dev[32], ip[64];
        snprintf(name, sizeof name, "six%d", i);
        snprintf(dev, sizeof dev, "six-dev-%d", i);
        snprintf(ip, sizeof ip, "2001:db8:1:2::%x", 0x10 + i);
        s6[i] = user(name);
        session(s6[i], dev, ip, 90 * 86400, i == 0 ? &a6 : NULL);
        if (i) dissolution(s6[i], 120);
    }
    eval(&a6, "2001:db8:1:2:ffff::1", &r);
    CHECK(reason_of(&r, "linked") != NULL);
    eval(&a6, "2001:db8:1:3::1", &r);
    CHECK(reason_of(&r, "linked") == NULL);

    /* Loopback: five accounts all on 127.0.0.1 are not linked by it. */
    qun_actor_t la;
    for (int i = 0; i < 5; i++) {
        char name[32], dev[32];
        snprintf(name, sizeof name, "loop%d", i);
        snprintf(dev, sizeof dev, "loop-dev-%d", i);
        int64_t l = user(name);
        session(l, dev, "127.0.0.1", 90 * 86400, i == 0 ? &la : NULL);
        if (i) dissolution(l, 120);
    }
    eval(&la, "127.0.0.1", &r);
    why = reason_of(&r, "linked");
    /* Other test accounts dissolved in the window too, but none is linked to la. */
    CHECK(why == NULL);

    /* Declared links and org links. */
    int64_t d0 = user("decl0");
    qun_actor_t da;
    session(d0, "decl-dev-0", "198.18.0.1", 90 * 86400, &da);
    for (int i = 1; i < 5; i++) {
        char name[32], dev[32];
        snprintf(name, sizeof name, "decl%d", i);
        snprintf(dev, sizeof dev, "decl-dev-%d", i);
        int64_t d = user(name);
        session(d, dev, "198.19.0.1", 90 * 86400, NULL);
        dissolution(d, 120);
        if (i % 2)
            sql("INSERT INTO account_links(user_a, user_b, reason, created_at) VALUES (%lld, %lld, 'sock "
                "puppet', 0)",
                (long long)d0, (long long)d);
        else {
            sql("INSERT INTO orgs(oid, name, kind, created_at) VALUES ('o_t%d', 'acme', 'enterprise', 0)", i);
            sql("INSERT INTO org_admins(org_id, user_id) SELECT id, %lld FROM orgs WHERE oid = 'o_t%d'",
                (long long)d0, i);
            sql("INSERT INTO org_admins(org_id, user_id) SELECT id, %lld FROM orgs WHERE oid = 'o_t%d'",
                (long long)d, i);
        }
    }
    eval(&da, "198.18.0.1", &r);
    why = reason_of(&r, "linked");
    CHECK(why && strstr(json_string_value(json_object_get(why, "detail")), "org, declared") != NULL);
    qun_risk_clear(&r);
}

static void test_anomaly(void) {
    int64_t u = user("daytime");
    qun_actor_t a;
    session(u, "day-phone", "100.67.1.9", 90 * 86400, &a);
    qun_risk_t r = {0};
    int64_t day0 = now0 - now0 % 86400 - 30 * 86400, hour_now = now0 % 86400 / 3600;
    int64_t busy = (hour_now + 12) % 24; /* the user's active hour: twelve hours away */
    for (int i = 0; i < 49; i++)
        sql("INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (%lld, %d, %lld, 'hi', "
            "%lld)",
            (long long)gid_row, 1000 + i, (long long)u,
            (long long)(day0 + (i % 28) * 86400 + busy * 3600 + i));
    eval(&a, NULL, &r); /* 49 messages: too little history */
    CHECK(reason_of(&r, "anomaly") == NULL);
    sql("INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (%lld, 1049, %lld, 'hi', "
        "%lld)",
        (long long)gid_row, (long long)u, (long long)(day0 + busy * 3600));
    eval(&a, NULL, &r);
    json_t *why = reason_of(&r, "anomaly");
    CHECK(r.level == QUN_RISK_WARN && why != NULL && r.score == qun_risk_cfg.anomaly_points);
    CHECK(why &&
          strstr(json_string_value(json_object_get(why, "detail")), "0.0% of your last 50 messages") != NULL);
    /* One message at this hour is exactly 1/51 < 2%: still warns; two make 3.8%: quiet. */
    for (int i = 0; i < 2; i++) {
        sql("INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (%lld, %d, %lld, 'hi', "
            "%lld)",
            (long long)gid_row, 1100 + i, (long long)u, (long long)(day0 + hour_now * 3600 + i));
        eval(&a, NULL, &r);
        CHECK((reason_of(&r, "anomaly") != NULL) == (i == 0));
    }
    qun_risk_clear(&r);
}

static void test_combined_and_stored(void) {
    int64_t u = user("combo"), other = user("nosy");
    qun_actor_t a, o;
    session(u, "combo-old", "100.68.1.20", 90 * 86400, NULL);
    session(u, "combo-new", "100.68.1.20", 3600, &a);
    session(other, "nosy-dev", "100.69.1.21", 90 * 86400, &o);
    for (int i = 0; i < 3; i++)
        dissolution(u, 60 + i);
    qun_risk_t r = {0};
    eval(&a, "100.68.1.20", &r);
    CHECK(r.level == QUN_RISK_VERIFY && reason_of(&r, "frequency") && reason_of(&r, "new_device"));
    CHECK(r.score == qun_risk_cfg.freq_points + qun_risk_cfg.new_device_points);
    CHECK(strncmp(r.id, "r_", 2) == 0);
    json_t *j = qun_risk_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "level")), "verify");
    CHECK(json_array_size(json_object_get(j, "reasons")) == 2);
    json_decref(j);
    qun_err_t err;
    json_t *out;
    CHECK(qun_risk_get(db, &a, r.id, &out, &err) == QUN_OK);
    CHECK_STR(json_string_value(json_object_get(out, "level")), "verify");
    CHECK(json_integer_value(json_object_get(out, "score")) == r.score);
    CHECK(json_array_size(json_object_get(out, "reasons")) == 2);
    CHECK_STR(json_string_value(json_object_get(out, "device_id")), "combo-new");
    json_decref(out);
    CHECK(qun_risk_get(db, &o, r.id, &out, &err) == QUN_RISK_NOT_FOUND);
    o.is_admin = true;
    CHECK(qun_risk_get(db, &o, r.id, &out, &err) == QUN_OK);
    json_decref(out);
    /* A lower deny score turns the same facts into a denial. */
    int saved = qun_risk_cfg.deny_score;
    qun_risk_cfg.deny_score = 60;
    eval(&a, "100.68.1.20", &r);
    CHECK(r.level == QUN_RISK_DENY && reason_of(&r, "score") != NULL);
    qun_risk_cfg.deny_score = saved;
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "SELECT count(*), max(level) FROM risk_evaluations WHERE user_id = $1",
                     "i", u) == QUN_ROW);
    CHECK(qun_q_col_int(q, 0) == 2);
    qun_q_done(q);
    CHECK_STR(qun_risk_level_name(QUN_RISK_REVIEW), "review");
    qun_risk_clear(&r);
    qun_risk_clear(&r); /* twice is fine */
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    now0 = qun_now();
    int64_t owner = user("owner");
    sql("INSERT INTO groups(gid, name, kind, owner_id, created_at, updated_at) VALUES ('g_risk', 'r', "
        "'standard', %lld, 0, 0)",
        (long long)owner);
    gid_row = 1;
    RUN(test_frequency);
    RUN(test_new_device);
    RUN(test_linked);
    RUN(test_anomaly);
    RUN(test_combined_and_stored);
    qun_db_close(db);
    return unit_done("core/risk");
}
