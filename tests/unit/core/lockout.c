/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/lockout.c on an in-memory store: networks of addresses, which
 * codes count, the account and network thresholds, the window, expiry on the clock,
 * the reset after a login, and the admins' list and clear (ledgered). */
#include "qun/ledger.h"
#include "qun/lockout.h"
#include "unit.h"

static qun_db_t *db;

static void test_networks(void) {
    char n[QUN_NET_MAX];
    qun_lockout_network("203.0.113.77", n);
    CHECK(strcmp(n, "203.0.113.0/24") == 0);
    qun_lockout_network("::ffff:203.0.113.9", n);
    CHECK(strcmp(n, "203.0.113.0/24") == 0);
    qun_lockout_network("2001:db8:1:2:3:4:5:6", n);
    CHECK(strcmp(n, "2001:db8:1:2::/64") == 0);
    qun_lockout_network("[2001:db8:1:2::9]", n);
    CHECK(strcmp(n, "2001:db8:1:2::/64") == 0);
    qun_lockout_network("fe80::1%eth0", n);
    CHECK(strcmp(n, "fe80::/64") == 0);
    qun_lockout_network("127.0.1.1", n);
    CHECK(strcmp(n, "127.0.1.0/24") == 0);
    qun_lockout_network("not an address", n);
    CHECK(n[0] == '\0');
    qun_lockout_network(NULL, n);
    CHECK(n[0] == '\0');
    CHECK(strcmp(qun_lockout_counts(QUN_BAD_CREDENTIALS), "password") == 0);
    CHECK(strcmp(qun_lockout_counts(QUN_TOTP_REPLAYED), "totp") == 0);
    CHECK(strcmp(qun_lockout_counts(QUN_SIGNATURE_INVALID), "signature") == 0);
    CHECK(qun_lockout_counts(QUN_FIELD_INVALID) == NULL && qun_lockout_counts(QUN_OK) == NULL);
}

static int64_t fail_n(const char *account, const char *ip, int n) {
    qun_err_t err;
    int64_t locked = 0, last = 0;
    for (int i = 0; i < n; i++) {
        json_t *info = NULL;
        CHECK(qun_lockout_fail(db, account, ip, "login", &locked, &info, &err) == QUN_OK);
        CHECK((locked > 0) == (info != NULL));
        json_decref(info);
        if (locked) last = locked;
    }
    return last;
}

static void test_account_lock_and_expiry(void) {
    qun_err_t err;
    int64_t retry;
    json_t *info;
    qun_lockout_cfg =
        (qun_lockout_cfg_t){.account_max = 3, .network_max = 100, .window = 60, .duration = 300};
    CHECK(fail_n("alice", "198.51.100.1", 2) == 0);
    CHECK(qun_lockout_check(db, "alice", "198.51.100.1", &retry, &info, &err) == QUN_OK && !info);
    CHECK(fail_n("alice", "198.51.100.1", 1) == 300); /* the third locks */
    CHECK(qun_lockout_check(db, "alice", "192.0.2.1", &retry, &info, &err) == QUN_LOCKED_OUT);
    CHECK(retry == 300 && strcmp(json_string_value(json_object_get(info, "scope")), "account") == 0);
    json_decref(info);
    CHECK(qun_lockout_check(db, "bob", "198.51.100.1", &retry, NULL, &err) ==
          QUN_OK); /* same network, other account */
    qun_clock_advance(200);
    CHECK(qun_lockout_check(db, "alice", NULL, &retry, NULL, &err) == QUN_LOCKED_OUT && retry == 100);
    qun_clock_advance(100);
    CHECK(qun_lockout_check(db, "alice", NULL, &retry, NULL, &err) == QUN_OK);
    /* The count started again at the lock: two more failures do not lock. */
    CHECK(fail_n("alice", "198.51.100.1", 2) == 0);
    /* Failures further apart than the window never add up. */
    CHECK(qun_lockout_reset(db, "alice", &err) == QUN_OK);
    for (int i = 0; i < 5; i++) {
        CHECK(fail_n("carol", "198.51.100.1", 1) == 0);
        qun_clock_advance(61);
    }
    CHECK(qun_lockout_check(db, "carol", NULL, &retry, NULL, &err) == QUN_OK);
    /* A reset after a login forgets the count. */
    CHECK(fail_n("dave", "198.51.100.1", 2) == 0);
    CHECK(qun_lockout_reset(db, "dave", &err) == QUN_OK);
    CHECK(fail_n("dave", "198.51.100.1", 2) == 0);
}

static void test_network_lock(void) {
    qun_err_t err;
    int64_t retry;
    qun_lockout_cfg = (qun_lockout_cfg_t){.account_max = 0, .network_max = 4, .window = 60, .duration = 60};
    char name[24];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "spray%d", i);
        CHECK(fail_n(name, "2001:db8:5:6::1", 1) == 0);
    }
    CHECK(fail_n("spray9", "2001:db8:5:6:ffff::2", 1) == 60); /* same /64 */
    CHECK(qun_lockout_check(db, "anyone", "2001:db8:5:6::77", &retry, NULL, &err) == QUN_LOCKED_OUT);
    CHECK(qun_lockout_check(db, "anyone", "2001:db8:5:7::77", &retry, NULL, &err) == QUN_OK);
    CHECK(qun_lockout_check(db, "spray0", "192.0.2.1", &retry, NULL, &err) ==
          QUN_OK); /* account_max 0: none */
    qun_clock_advance(61);
}

static void test_list_and_clear(void) {
    qun_err_t err;
    int64_t retry;
    json_t *out;
    qun_actor_t admin = {.uid = 1, .openid = "u_admin", .is_admin = true},
                user = {.uid = 2, .openid = "u_user"};
    qun_lockout_cfg = (qun_lockout_cfg_t){.account_max = 1, .network_max = 0, .window = 60, .duration = 600};
    CHECK(fail_n("erin", "192.0.2.5", 1) == 600);
    CHECK(qun_lockout_list(db, &user, false, 0, 50, &out, &err) == QUN_FORBIDDEN_ADMIN);
    CHECK(qun_lockout_list(db, &admin, false, 0, 50, &out, &err) == QUN_OK);
    json_t *items = json_object_get(out, "items");
    CHECK(json_array_size(items) == 1);
    json_t *l = json_array_get(items, 0);
    CHECK(strcmp(json_string_value(json_object_get(l, "subject")), "erin") == 0);
    CHECK(strcmp(json_string_value(json_object_get(l, "state")), "active") == 0);
    char lid[QUN_ID_MAX];
    snprintf(lid, sizeof lid, "%s", json_string_value(json_object_get(l, "id")));
    json_decref(out);
    CHECK(qun_lockout_list(db, &admin, true, 0, 50, &out, &err) == QUN_OK);
    CHECK(json_array_size(json_object_get(out, "items")) == 3); /* alice, the network, erin */
    json_decref(out);

    uint64_t size0, size1;
    unsigned char root[QUN_HASH];
    CHECK(qun_ledger_head(db, &size0, root, &err) == QUN_OK);
    CHECK(qun_lockout_clear(db, &user, lid, &out, &err) == QUN_FORBIDDEN_ADMIN);
    CHECK(qun_lockout_clear(db, &admin, "l_none", &out, &err) == QUN_LOCK_NOT_FOUND);
    CHECK(qun_lockout_clear(db, &admin, lid, &out, &err) == QUN_OK);
    CHECK(strcmp(json_string_value(json_object_get(out, "state")), "cleared") == 0);
    CHECK(strcmp(json_string_value(json_object_get(out, "cleared_by")), "u_admin") == 0);
    json_decref(out);
    CHECK(qun_ledger_head(db, &size1, root, &err) == QUN_OK && size1 == size0 + 1);
    CHECK(qun_lockout_check(db, "erin", "192.0.2.5", &retry, NULL, &err) == QUN_OK);
    /* Clearing again answers the lock as it is, without a second ledger entry. */
    CHECK(qun_lockout_clear(db, &admin, lid, &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(qun_ledger_head(db, &size1, root, &err) == QUN_OK && size1 == size0 + 1);
    CHECK(qun_lockout_list(db, &admin, false, 0, 50, &out, &err) == QUN_OK);
    CHECK(json_array_size(json_object_get(out, "items")) == 0);
    json_decref(out);
}

int main(void) {
    qun_err_t err;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    RUN(test_networks);
    RUN(test_account_lock_and_expiry);
    RUN(test_network_lock);
    RUN(test_list_and_clear);
    qun_db_close(db);
    return unit_done("core/lockout");
}
