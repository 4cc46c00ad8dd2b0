/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/notify.c (with notify_text.c) on an in-memory store: what
 * addresses and Accept-Language values are taken, an invitation notifies its invitee
 * only (row and event in one transaction, none for anyone else), mail is queued only
 * with SMTP configured and a verified address, reading up to a seq, and the words of
 * every kind in both languages carry the names and never "(null)"; a large group's
 * notice is written by the fan-out job's slices. */
#include "qun/core.h"
#include "qun/event.h"
#include "qun/notify.h"
#include "qun/policy.h"
#include "qun/queue.h"
#include "unit.h"
#include "unit_core.h"
#include "unit_store.h"

static qun_db_t *db;
static qun_actor_t owner, ann, bob;

static void user(const char *name, qun_actor_t *a) {
    unit_user(db, name, a);
}

static int64_t count(const char *sql, int64_t arg) {
    return unit_count_i(db, sql, arg);
}

static void inputs(void) {
    CHECK(qun_email_valid("ann@example.org"));
    CHECK(qun_email_valid("a.b+c@mail.example.cn"));
    const char *bad[] = {"",
                         "ann",
                         "@example.org",
                         "ann@",
                         "ann@example",
                         "a b@example.org",
                         "ann@@example.org",
                         "<ann@example.org>",
                         "ann@example.org,bob@example.org",
                         "ann@.org",
                         "ann@example.org."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!qun_email_valid(bad[i]));
    CHECK(strcmp(qun_lang_from_accept("zh-CN,zh;q=0.9,en;q=0.8"), "zh-CN") == 0);
    CHECK(strcmp(qun_lang_from_accept(" ZH-tw"), "zh-CN") == 0);
    CHECK(strcmp(qun_lang_from_accept("en-GB,zh;q=0.5"), "en") == 0);
    CHECK(strcmp(qun_lang_from_accept(NULL), "en") == 0);
}

static void invitation_notifies_the_invitee_only(void) {
    json_t *out = NULL;
    qun_err_t err;
    char gid[QUN_ID_MAX];
    CHECK(qun_group_create(db, &owner, "Book club 读书会", "standard", NULL, NULL, &out, &err) == QUN_OK);
    snprintf(gid, sizeof gid, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    int64_t events =
        count("SELECT COUNT(*) FROM events WHERE topic = 'notification.created' AND user_id = $1", ann.uid);
    CHECK(qun_invitation_create(db, &owner, gid, "ann", NULL, NULL, &out, &err) == QUN_OK);
    json_decref(out);
    CHECK(count("SELECT COUNT(*) FROM events WHERE topic = 'notification.created' AND user_id = $1",
                ann.uid) == events + 1);
    CHECK(count("SELECT COUNT(*) FROM events WHERE topic = 'notification.created' AND user_id != $1",
                ann.uid) == 0);
    CHECK(qun_notify_list(db, &ann, 0, 10, &out, &err) == QUN_OK);
    json_t *n = json_array_get(json_object_get(out, "items"), 0);
    CHECK(strcmp(json_string_value(json_object_get(n, "kind")), "invitation.received") == 0);
    json_t *p = json_object_get(n, "params");
    CHECK(strcmp(json_string_value(json_object_get(p, "group_name")), "Book club 读书会") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(p, "by"), "username")), "owner") == 0);
    CHECK(json_integer_value(json_object_get(out, "unread")) == 1);
    json_decref(out);
    CHECK(qun_notify_list(db, &bob, 0, 10, &out, &err) == QUN_OK);
    CHECK(json_array_size(json_object_get(out, "items")) == 0);
    json_decref(out);
    /* No SMTP: nothing for the mail thread. */
    CHECK(count("SELECT COUNT(*) FROM mail_outbox WHERE user_id = $1", ann.uid) == 0);
}

static void mail_needs_smtp_and_a_verified_address(void) {
    qun_err_t err;
    qun_notify_cfg.smtp_url = "smtp://127.0.0.1:9";
    qun_notify_cfg.smtp_from = "qun@example.test";
    CHECK(qun_notify_user(db, bob.uid, "dissolution.expired", json_pack("{s:s}", "group_name", "g"), &err) ==
          QUN_OK);
    CHECK(count("SELECT COUNT(*) FROM mail_outbox WHERE user_id = $1", bob.uid) == 0); /* no address */
    CHECK(qun_db_run(
              db, NULL, &err,
              "INSERT INTO email_addresses(user_id, address, created_at) VALUES ($1, 'bob@example.test', 1)",
              "i", bob.uid) == QUN_DONE);
    CHECK(qun_notify_user(db, bob.uid, "dissolution.expired", json_pack("{s:s}", "group_name", "g"), &err) ==
          QUN_OK);
    CHECK(count("SELECT COUNT(*) FROM mail_outbox WHERE user_id = $1", bob.uid) == 0); /* not verified */
    CHECK(qun_db_run(db, NULL, &err, "UPDATE email_addresses SET verified_at = 2 WHERE user_id = $1", "i",
                     bob.uid) == QUN_DONE);
    CHECK(qun_notify_user(db, bob.uid, "dissolution.expired", json_pack("{s:s}", "group_name", "g"), &err) ==
          QUN_OK);
    CHECK(count("SELECT COUNT(*) FROM mail_outbox WHERE user_id = $1 AND state = 'pending'", bob.uid) == 1);
    CHECK(qun_notify_user(db, bob.uid, "x", NULL, &err) == QUN_NOMEM);
    qun_notify_cfg.smtp_url = NULL;
    /* Reading up to a seq: the older ones only. */
    json_t *out = NULL;
    CHECK(qun_notify_list(db, &bob, 0, 10, &out, &err) == QUN_OK);
    CHECK(json_array_size(json_object_get(out, "items")) == 3);
    int64_t middle =
        json_integer_value(json_object_get(json_array_get(json_object_get(out, "items"), 1), "seq"));
    json_decref(out);
    CHECK(qun_notify_read(db, &bob, middle, &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "read")) == 2 &&
          json_integer_value(json_object_get(out, "unread")) == 1);
    json_decref(out);
    CHECK(qun_notify_read(db, &ann, 0, &out, &err) == QUN_OK); /* ann's reading marks only ann's */
    CHECK(json_integer_value(json_object_get(out, "read")) == 1);
    json_decref(out);
    CHECK(qun_notify_unread(db, &bob, &out, &err) == QUN_OK);
    CHECK(json_integer_value(json_object_get(out, "unread")) == 1);
    json_decref(out);
}

/* A group above QUN_NOTIFY_INLINE: the notice's own transaction only records it and
 * queues the job; the steps notify QUN_NOTIFY_SLICE members each, everyone once, the
 * one who caused it never; a step rolled back (a crash) notifies nobody and leaves the
 * cursor where it was, and a step after the last is a no-op. */
static void a_large_group_is_notified_by_slices(void) {
    json_t *out = NULL;
    qun_err_t err;
    CHECK(qun_group_create(db, &owner, "Parents 家长群", "standard", NULL, NULL, &out, &err) == QUN_OK);
    const char *gid = json_string_value(json_object_get(out, "id"));
    qun_q_t *q;
    CHECK(qun_db_run(db, &q, &err, "SELECT id FROM groups WHERE gid = $1", "s", gid) == QUN_ROW);
    int64_t group = qun_q_col_int(q, 0);
    qun_q_done(q);
    json_decref(out);
    const int64_t people = QUN_NOTIFY_SLICE + 88;
    CHECK(qun_db_run(
              db, NULL, &err,
              "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $1) "
              "INSERT INTO users(openid, username, username_key, pwhash, password_changed_at, created_at) "
              "SELECT printf('u_fan%05d', i), printf('fan%05d', i), printf('fan%05d', i), 'x', 1, 1 FROM c",
              "i", people) == QUN_DONE);
    CHECK(qun_db_run(db, NULL, &err,
                     "INSERT INTO members(group_id, user_id, role, joined_at) SELECT $1, id, 'member', 1 "
                     "FROM users WHERE username LIKE 'fan%'",
                     "i", group) == QUN_DONE);
    const char *mine =
        "SELECT COUNT(*) FROM notifications WHERE kind = 'dissolution.pending' AND params LIKE "
        "'%Parents%' AND user_id != $1";
    json_t *notice = json_pack("{s:s, s:I}", "by", owner.openid, "dissolves_at", (json_int_t)1000);
    CHECK(qun_notify_dissolution(db, group, "pending", notice, &err) == QUN_OK);
    json_decref(notice);
    CHECK(count(mine, 0) == 0);
    CHECK(count("SELECT COUNT(*) FROM notice_fanouts WHERE group_id = $1", group) == 1);
    CHECK(count("SELECT COUNT(*) FROM jobs WHERE kind = 'notify_fanout' AND group_id = $1", group) == 1);
    CHECK(qun_db_run(db, &q, &err, "SELECT id FROM notice_fanouts", "") == QUN_ROW);
    int64_t fid = qun_q_col_int(q, 0);
    qun_q_done(q);
    bool finished = false;
    CHECK(qun_db_exec(db, "BEGIN", &err) == QUN_OK);
    CHECK(qun_notify_fanout_step(db, fid, &finished, &err) == QUN_OK && !finished);
    CHECK(count(mine, 0) == QUN_NOTIFY_SLICE);
    CHECK(qun_db_exec(db, "ROLLBACK", &err) == QUN_OK);
    CHECK(count(mine, 0) == 0 && count("SELECT after_user_id FROM notice_fanouts WHERE id = $1", fid) == 0);
    CHECK(qun_notify_fanout_step(db, fid, &finished, &err) == QUN_OK && !finished);
    CHECK(count(mine, 0) == QUN_NOTIFY_SLICE);
    CHECK(qun_notify_fanout_step(db, fid, &finished, &err) == QUN_OK && finished);
    CHECK(count(mine, 0) == people);
    CHECK(
        count(
            "SELECT COUNT(DISTINCT user_id) FROM notifications WHERE kind = 'dissolution.pending' AND params "
            "LIKE '%Parents%' AND user_id != $1",
            0) == people);
    CHECK(count("SELECT COUNT(*) FROM notifications WHERE kind = 'dissolution.pending' AND user_id = $1",
                owner.uid) == 0);
    CHECK(count("SELECT COUNT(*) FROM events e JOIN users u ON u.id = e.user_id WHERE e.topic = "
                "'notification.created' AND u.username LIKE 'fan%' AND e.id > $1",
                0) == people);
    CHECK(count("SELECT COUNT(*) FROM notice_fanouts WHERE id = $1", fid) == 0);
    CHECK(qun_notify_fanout_step(db, fid, &finished, &err) == QUN_OK && finished);
    CHECK(count(mine, 0) == people);
    /* Each one reads it in their own inbox, with the group's name and who did it. */
    qun_actor_t last = {0};
    CHECK(qun_db_run(db, &q, &err, "SELECT id, openid FROM users WHERE username = 'fan00600'", "") ==
          QUN_ROW);
    last.uid = qun_q_col_int(q, 0);
    snprintf(last.openid, sizeof last.openid, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    CHECK(qun_notify_list(db, &last, 0, 10, &out, &err) == QUN_OK);
    json_t *p = json_object_get(json_array_get(json_object_get(out, "items"), 0), "params");
    CHECK(strcmp(json_string_value(json_object_get(p, "group_name")), "Parents 家长群") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(p, "by"), "username")), "owner") == 0);
    json_decref(out);
}

static void words_in_both_languages(void) {
    const char *kinds[] = {"approval.requested",  "transfer.offered",      "invitation.received",
                           "dissolution.pending", "dissolution.cancelled", "dissolution.rejected",
                           "dissolution.expired", "dissolution.dissolved", "dissolution.restored",
                           "email.verify",        "email.invite",          "something.new"};
    json_t *p =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:I, s:I, s:I, s:s}, s:s, s:s, "
                  "s:s, s:I, s:I, s:I}",
                  "group_name", "Hiking 徒步", "approval_kind", "guardian", "by", "username", "nora",
                  "display_name", "诺拉", "from", "username", "nora", "requested_by", "username", "tina",
                  "subject", "username", "kid", "impact", "members", (json_int_t)12, "messages",
                  (json_int_t)340, "files", (json_int_t)5, "messages_rule", "keep", "org_name", "Riverside",
                  "role", "guardian", "address", "ann@example.test", "expires_at", (json_int_t)86400,
                  "dissolves_at", (json_int_t)172800, "restorable_until", (json_int_t)777600);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        for (int zh = 0; zh < 2; zh++) {
            char *s = NULL, *b = NULL;
            CHECK(qun_mail_render(kinds[i], p, zh ? "zh-CN" : "en", "12345678", &s, &b));
            CHECK(s && b && *s && *b);
            CHECK(!strstr(s, "(null)") && !strstr(b, "(null)"));
            if (strncmp(kinds[i], "email.", 6) && strcmp(kinds[i], "something.new") &&
                strcmp(kinds[i], "transfer.offered") && strcmp(kinds[i], "invitation.received"))
                CHECK(strstr(s, "Hiking 徒步") || strstr(b, "Hiking 徒步"));
            if (strcmp(kinds[i], "email.verify") == 0) CHECK(strstr(s, "12345678") && strstr(b, "12345678"));
            if (strcmp(kinds[i], "approval.requested") == 0)
                CHECK(strstr(b, zh ? "12 名成员" : "12 members") &&
                      strstr(b, zh ? "kid 的监护人" : "guardian of kid"));
            if (strcmp(kinds[i], "dissolution.pending") == 0)
                CHECK(strstr(b, "1970-01-03 00:00 UTC") && strstr(b, "诺拉 (nora)"));
            free(s);
            free(b);
        }
    }
    json_decref(p);
}

int main(void) {
    qun_err_t err;
    qun_log_quiet = true;
    CHECK(qun_db_open(":memory:", false, true, &db, &err) == QUN_OK);
    qun_policy_t *policy = NULL;
    CHECK(qun_policy_builtin(&policy) == QUN_OK);
    qun_core_cfg.policy = policy;
    user("owner", &owner);
    user("ann", &ann);
    user("bob", &bob);
    RUN(inputs);
    RUN(invitation_notifies_the_invitee_only);
    RUN(mail_needs_smtp_and_a_verified_address);
    RUN(a_large_group_is_notified_by_slices);
    RUN(words_in_both_languages);
    qun_db_close(db);
    qun_policy_free(policy);
    return unit_done("core/notify");
}
