/* SPDX-License-Identifier: MIT */
/* Approvals: the generic "who must say yes" of a dissolution in `review`.  Each row is
 * one required decision: an org admin of an enterprise group whose org has
 * dissolve_protection on (kind org_admin: any admin of the org may decide), a school
 * admin of an education group (school_admin), each guardian of each minor member
 * (guardian: that guardian decides, for that minor), and a manual review when the risk
 * engine asks for one (risk_review: any server admin decides).  Every row but the
 * guardians' must be approved, and at least the policy's guardian_quorum of the
 * guardians' (default all); one rejection ends the dissolution; open rows expire with
 * the request.  Nobody approves their own request.  Each decision is ledgered. */
#include <stdio.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/ledger.h"
#include "qun/notify.h"

static qun_rc add(qun_db_t *db, int64_t did, int64_t group_id, const char *kind, int64_t approver,
                  int64_t org, int64_t subject, int64_t expires_at, qun_err_t *err) {
    char aid[QUN_ID_MAX];
    qun_id_new(aid, "a");
    qun_rc rc = qun_db_run(
        db, NULL, err,
        "INSERT INTO approvals(aid, dissolution_id, group_id, kind, approver_id, org_id, subject_id, "
        "created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        "siiszzzii", aid, did, group_id, kind, approver, org, subject, qun_now(), expires_at);
    if (rc == QUN_DONE) rc = qun_event_approval_requested(db, aid, err);
    if (rc == QUN_OK) rc = qun_notify_approval(db, aid, err);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* Guardians of the group's minor members: (guardian, minor) pairs. */
#define GUARDIANS_SQL                                                                                        \
    "SELECT gd.guardian_id, gd.minor_id, gu.openid, mu.openid, gu.username, mu.username FROM members m "     \
    "JOIN users mu ON mu.id = m.user_id AND mu.is_minor = 1 "                                                \
    "JOIN guardians gd ON gd.minor_id = m.user_id JOIN users gu ON gu.id = gd.guardian_id "                  \
    "WHERE m.group_id = $1 ORDER BY gd.minor_id, gd.guardian_id"

qun_rc qun_approvals_create(qun_db_t *db, int64_t did, const qun_group_t *g, const qun_approval_needs_t *need,
                            int64_t expires_at, int *n, qun_err_t *err) {
    qun_rc rc = QUN_OK;
    *n = 0;
    if (need->org_admin && g->org_id) {
        rc = add(db, did, g->id, "org_admin", 0, g->org_id, 0, expires_at, err);
        (*n)++;
    }
    if (rc == QUN_OK && need->school_admin && g->org_id) {
        rc = add(db, did, g->id, "school_admin", 0, g->org_id, 0, expires_at, err);
        (*n)++;
    }
    if (rc == QUN_OK && need->risk_review) { /* any server admin decides */
        rc = add(db, did, g->id, "risk_review", 0, 0, 0, expires_at, err);
        (*n)++;
    }
    if (rc == QUN_OK && need->guardians) {
        int64_t pairs[256][2];
        int np = 0;
        qun_q_t *q;
        qun_rc r2 = qun_db_run(db, &q, err, GUARDIANS_SQL, "i", g->id);
        for (; r2 == QUN_ROW; r2 = qun_q_step(q, err))
            if (np < 256) pairs[np][0] = qun_q_col_int(q, 0), pairs[np++][1] = qun_q_col_int(q, 1);
        if (r2 != QUN_DONE) return r2;
        for (int i = 0; rc == QUN_OK && i < np; i++, (*n)++)
            rc = add(db, did, g->id, "guardian", pairs[i][0], 0, pairs[i][1], expires_at, err);
    }
    return rc;
}

qun_rc qun_approvals_needed(qun_db_t *db, const qun_group_t *g, const qun_approval_needs_t *need,
                            json_t **out, qun_err_t *err) {
    json_t *a = json_array();
    qun_q_t *q;
    qun_rc rc = QUN_DONE;
    /* `from` is the pinned English (or the guardian's openid); clients say it from
     * `from_code` and `from_params` in the reader's language. */
    char org[256] = "";
    if ((need->org_admin || need->school_admin) && g->org_id) {
        rc = qun_db_run(db, &q, err, "SELECT name FROM orgs WHERE id = $1", "i", g->org_id);
        if (rc == QUN_ROW) {
            snprintf(org, sizeof org, "%s", qun_q_col_text(q, 0));
            qun_q_done(q);
        } else if (rc != QUN_DONE) {
            json_decref(a);
            return rc;
        }
        rc = QUN_DONE;
    }
    if (need->org_admin && g->org_id)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:{s:s}}", "kind", "org_admin", "from",
                                           "any admin of the org", "from_code", "org_admins", "from_params",
                                           "org", org));
    if (need->school_admin && g->org_id)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:{s:s}}", "kind", "school_admin", "from",
                                           "any admin of the school", "from_code", "school_admins",
                                           "from_params", "org", org));
    if (need->guardians) {
        rc = qun_db_run(db, &q, err, GUARDIANS_SQL, "i", g->id);
        for (; rc == QUN_ROW; rc = qun_q_step(q, err))
            json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "kind",
                                               "guardian", "from", qun_q_col_text(q, 2), "for_minor",
                                               qun_q_col_text(q, 3), "from_name", qun_q_col_text(q, 4),
                                               "for_minor_name", qun_q_col_text(q, 5), "from_code",
                                               "guardian", "from_params", "guardian", qun_q_col_text(q, 4),
                                               "minor", qun_q_col_text(q, 5)));
    }
    if (rc != QUN_DONE) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return QUN_OK;
}

#define APPROVAL_COLS                                                                                        \
    "SELECT a.aid, a.kind, a.state, g.gid, g.name, g.kind, su.openid, ru.openid, a.created_at, "             \
    "a.expires_at, a.reason, a.id, a.dissolution_id, a.approver_id, COALESCE(a.org_id, 0), d.requested_by, " \
    "COALESCE(d.risk_id, ''), su.display_name, ru.display_name, su.username, ru.username, g.id, "            \
    "g.member_count, d.messages, o.name "                                                                    \
    "FROM approvals a JOIN groups g ON g.id = a.group_id JOIN dissolutions d ON d.id = a.dissolution_id "    \
    "JOIN users ru ON ru.id = d.requested_by LEFT JOIN users su ON su.id = a.subject_id "                    \
    "LEFT JOIN orgs o ON o.id = a.org_id "

static json_t *approval_json(qun_q_t *q) {
    /* risk_id: the risk evaluation of the request, which a risk_review decides on. */
    const char *risk = qun_q_col_text(q, 16);
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:I, s:I, s:s, s:s?}", "id",
                          qun_q_col_text(q, 0), "kind", qun_q_col_text(q, 1), "state", qun_q_col_text(q, 2),
                          "group", qun_q_col_text(q, 3), "group_name", qun_q_col_text(q, 4), "group_kind",
                          qun_q_col_text(q, 5), "subject", qun_q_col_null(q, 6) ? NULL : qun_q_col_text(q, 6),
                          "subject_display_name", qun_q_col_null(q, 17) ? NULL : qun_q_col_text(q, 17),
                          "requested_by", qun_q_col_text(q, 7), "requested_by_display_name",
                          qun_q_col_null(q, 18) ? NULL : qun_q_col_text(q, 18), "created_at",
                          (json_int_t)qun_q_col_int(q, 8), "expires_at", (json_int_t)qun_q_col_int(q, 9),
                          "reason", qun_q_col_text(q, 10), "risk_id", *risk ? risk : NULL);
    json_object_set_new(a, "requested_by_username", json_string(qun_q_col_text(q, 20)));
    if (!qun_q_col_null(q, 19))
        json_object_set_new(a, "subject_username", json_string(qun_q_col_text(q, 19)));
    if (!qun_q_col_null(q, 24)) /* the org whose admins decide, by name */
        json_object_set_new(a, "org_name", json_string(qun_q_col_text(q, 24)));
    return a;
}

/* The group's messages, files (and their bytes) and payments into impact: what an
 * approver sees before deciding (the members count comes with the row). */
static qun_rc impact_counts(qun_db_t *db, int64_t group_id, json_t *impact, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT (SELECT COUNT(*) FROM messages WHERE group_id = $1), "
                           "(SELECT COUNT(*) FROM group_files WHERE group_id = $1), "
                           "(SELECT COALESCE(SUM(size), 0) FROM group_files WHERE group_id = $1), "
                           "(SELECT COUNT(*) FROM payments WHERE group_id = $1)",
                           "i", group_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    json_object_set_new(impact, "messages", json_integer(qun_q_col_int(q, 0)));
    json_object_set_new(impact, "files", json_integer(qun_q_col_int(q, 1)));
    json_object_set_new(impact, "file_bytes", json_integer(qun_q_col_int(q, 2)));
    json_object_set_new(impact, "payments", json_integer(qun_q_col_int(q, 3)));
    qun_q_done(q);
    return QUN_DONE;
}

/* What the caller may decide: never their own request, which qun_approval_decide refuses
 * (an owner who is also the org admin would otherwise find it in their inbox). */
qun_rc qun_approval_list(qun_db_t *db, const qun_actor_t *a, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    json_t *items = json_array();
    qun_rc rc = qun_db_run(
        db, &q, err,
        APPROVAL_COLS
        "WHERE a.state = 'pending' AND d.requested_by != $1 AND (a.approver_id = $1 OR a.org_id IN "
        "(SELECT org_id FROM org_admins WHERE user_id = $1) OR (a.kind = 'risk_review' AND $2 = 1)) "
        "ORDER BY a.id LIMIT 200",
        "ii", a->uid, (int64_t)a->is_admin);
    int64_t ids[200];
    size_t n = 0;
    for (; rc == QUN_ROW && n < 200; rc = qun_q_step(q, err)) {
        json_t *it = approval_json(q);
        json_object_set_new(it, "messages", json_string(qun_q_col_text(q, 23)));
        json_object_set_new(it, "impact", json_pack("{s:I}", "members", (json_int_t)qun_q_col_int(q, 22)));
        ids[n++] = qun_q_col_int(q, 21);
        json_array_append_new(items, it);
    }
    if (rc == QUN_ROW) qun_q_done(q), rc = QUN_DONE;
    /* What the approver decides on, in figures: counted after the list's cursor closed. */
    for (size_t i = 0; rc == QUN_DONE && i < n; i++)
        rc = impact_counts(db, ids[i], json_object_get(json_array_get(items, i), "impact"), err);
    if (rc != QUN_DONE) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o}", "items", items);
    return QUN_OK;
}

static int64_t count_of(qun_db_t *db, const char *sql, int64_t a) {
    qun_q_t *q;
    int64_t n = 0;
    if (qun_db_run(db, &q, NULL, sql, "i", a) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

static int64_t count1(qun_db_t *db, const char *sql, int64_t a, int64_t b) {
    qun_q_t *q;
    int64_t n = 0;
    if (qun_db_run(db, &q, NULL, sql, "ii", a, b) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

/* Whether a dissolution has every approval it needs: all but the guardians' approved,
 * and at least guardian_quorum guardians (the quorum the dissolution recorded). */
static bool complete(qun_db_t *db, int64_t did) {
    if (count_of(db,
                 "SELECT COUNT(*) FROM approvals WHERE dissolution_id = $1 AND kind != 'guardian' "
                 "AND state != 'approved'",
                 did) > 0)
        return false;
    int64_t total =
        count_of(db, "SELECT COUNT(*) FROM approvals WHERE dissolution_id = $1 AND kind = 'guardian'", did);
    int64_t yes = count_of(db,
                           "SELECT COUNT(*) FROM approvals WHERE dissolution_id = $1 AND kind = 'guardian' "
                           "AND state = 'approved'",
                           did);
    qun_q_t *q;
    int64_t quorum = INT64_MAX;
    if (qun_db_run(db, &q, NULL, "SELECT rules FROM dissolutions WHERE id = $1", "i", did) == QUN_ROW) {
        json_t *r = json_loads(qun_q_col_text(q, 0), 0, NULL);
        json_t *v = json_object_get(r, "guardian_quorum");
        if (json_is_integer(v)) quorum = json_integer_value(v);
        json_decref(r);
        qun_q_done(q);
    }
    return yes >= (quorum < total ? quorum : total);
}

qun_rc qun_approval_decide(qun_db_t *db, const qun_actor_t *a, const char *aid, bool approve,
                           const char *reason, json_t **out, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, APPROVAL_COLS "WHERE a.aid = $1", "s", aid);
    if (rc == QUN_DONE) return qun_fail(err, QUN_APPROVAL_NOT_FOUND, "no approval %.40s", aid);
    if (rc != QUN_ROW) return rc;
    int64_t id = qun_q_col_int(q, 11), did = qun_q_col_int(q, 12), approver = qun_q_col_int(q, 13);
    int64_t org = qun_q_col_int(q, 14), requester = qun_q_col_int(q, 15), expires = qun_q_col_int(q, 9);
    char state[16], gid[QUN_ID_MAX], kind[16];
    snprintf(state, sizeof state, "%s", qun_q_col_text(q, 2));
    snprintf(gid, sizeof gid, "%s", qun_q_col_text(q, 3));
    snprintf(kind, sizeof kind, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    bool mine = approver ? approver == a->uid
                : org ? count1(db, "SELECT COUNT(*) FROM org_admins WHERE org_id = $1 AND user_id = $2", org,
                               a->uid) > 0
                      : strcmp(kind, "risk_review") == 0 && a->is_admin;
    /* Outsiders learn nothing: the approval does not exist for them. */
    if (!mine) return qun_fail(err, QUN_APPROVAL_NOT_FOUND, "no approval %.40s", aid);
    if (requester == a->uid)
        return qun_fail(err, QUN_FORBIDDEN_APPROVER, "you cannot approve your own request");
    if (strcmp(state, "pending") != 0 || expires <= qun_now())
        return qun_fail(err, QUN_APPROVAL_CLOSED, "approval %s is %s", aid,
                        expires <= qun_now() ? "expired" : state);
    rc = qun_db_run(
        db, NULL, err,
        "UPDATE approvals SET state = $2, reason = $3, decided_by = $4, decided_at = $5 WHERE id = $1",
        "issii", id, approve ? "approved" : "rejected", reason ? reason : "", a->uid, qun_now());
    if (rc != QUN_DONE) return rc;
    json_t *f = json_pack("{s:s, s:s, s:s}", "approval", aid, "kind", kind, "reason", reason ? reason : "");
    rc = qun_ledger_append(db, approve ? "approval.approved" : "approval.rejected", gid, a->openid,
                           QUN_GROUP_NAME(REVIEW), QUN_GROUP_NAME(REVIEW), f, NULL, err);
    if (rc == QUN_OK)
        rc = qun_event_emit(db, approve ? "approval.approved" : "approval.rejected", 0, requester,
                            json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", aid, "kind", kind, "group", gid,
                                      "by", a->openid, "reason", reason ? reason : ""),
                            err);
    if (rc == QUN_OK) {
        if (!approve)
            rc = qun_diss_end(db, did, QUN_DISS_REJECTED, a->openid, f, err);
        else if (complete(db, did))
            rc = qun_diss_approved(db, did, a->uid, err);
    }
    json_decref(f);
    if (rc != QUN_OK) return rc;
    rc = qun_db_run(db, &q, err, APPROVAL_COLS "WHERE a.id = $1", "i", id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    *out = approval_json(q);
    qun_q_done(q);
    return QUN_OK;
}

qun_rc qun_approvals_expire(qun_db_t *db, int64_t did, qun_err_t *err) {
    if (count1(db,
               "SELECT COUNT(*) FROM approvals WHERE dissolution_id = $1 AND state = 'pending' AND "
               "expires_at <= $2",
               did, qun_now()) == 0)
        return QUN_OK;
    qun_rc rc = qun_db_run(db, NULL, err,
                           "UPDATE approvals SET state = 'expired', decided_at = $2 WHERE dissolution_id = "
                           "$1 AND state = 'pending'",
                           "ii", did, qun_now());
    if (rc != QUN_DONE) return rc;
    return qun_diss_end(db, did, QUN_DISS_EXPIRED, NULL, NULL, err);
}
