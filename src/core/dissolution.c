/* SPDX-License-Identifier: MIT */
/* The dissolution lifecycle of docs/design.md section 3.  Its states, their group states and
 * edges are the table include/qun/diss_states.def; every edge is taken by
 * qun_diss_transition (below, with each edge's caller):
 *
 *  request -+-(archive)-> archiving -+-(archive ledgered: on as below)-+
 *           |                        +-(export failed)-> failed         |
 *           |                        +-(cancel)--------> cancelled      |
 *           |<----------------------------------------------------------+
 *           +-(approvals)-> review -(all approved)-+
 *           +-(none)-------------------------------+-> pending -timer-> dissolved -grace-> purging -> purged
 *                             |                            |                |
 *                             +-(cancel, reject, expire)---+                +-(restore)-> restored
 *                                            |
 *                                            v
 *                             cancelled | rejected | expired
 *
 *  The group is `active` while it has no dissolution, while its latest one is archiving
 *  and after that one ended (cancelled, rejected, expired, restored, failed); otherwise
 *  it is in its dissolution's state (review, pending, dissolved, purging, purged).
 *
 * Phase 1, authorize (qun_diss_request): owner only; the proofs the session's platform
 * needs by the verification policy (a single-use confirmation token from the preview,
 * bound to user, group and the digest of the parameters; the typed name; a device_key
 * or qr challenge bound the same way); a risk step-up; password re-entry where the
 * rules demand it; approvals where the group's kind and
 * org demand them (state `review`).  Phase 2, mark (qun_diss_mark_due, run by the
 * timer job when the cooling-off / notice delay is over): the group becomes
 * `dissolved` in one transaction with its ledger entry and members lose access at
 * once.  Phase 3, reclaim: jobs/purge.c after the purge grace, unless a legal hold
 * stops it.
 *
 * Invariants: (I1) a token is used at most once (used_at is set in the transaction
 * that uses it); (I2) a group has at most one open dissolution (archiving, review,
 * pending, dissolved or purging); (I3) the group's state is the group state of its
 * latest dissolution (diss_states.def; active when it has none), so it mirrors the
 * open one's; (I4) every transition appends a ledger entry with actor, old and new
 * group state in the same transaction (except entering archiving: the request is
 * ledgered once its archive is).  qun_diss_transition asserts its edge, I2 and I3. */
#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "qun/core.h"
#include "qun/event.h"
#include "qun/export.h"
#include "qun/ledger.h"
#include "qun/notify.h"
#include "qun/policy.h"
#include "qun/queue.h"
#include "qun/risk.h"
#include "qun/verify.h"

/* The rules that decide a group's dissolution: the policy packs' view for the group's
 * kind and regions (each value with the source that set it), with the operator's
 * overriding settings on top. */
typedef struct {
    qun_policy_view_t v;
    int64_t cooling_off, notice, notice_threshold, grace, tombstone, approval_expiry;
    int64_t retain_messages, retain_files, retain_payments;
    bool step_up, desensitize, notice_applies;
    qun_approval_needs_t need;
} rules_t;

static void override(qun_policy_value_t *v, int64_t setting) {
    if (setting < 0) return;
    v->value = setting;
    snprintf(v->source, sizeof v->source, "config");
}

qun_rc qun_group_policy_of(const qun_group_t *g, const json_t *regions, qun_policy_view_t *v,
                           qun_err_t *err) {
    const char *names[16];
    int n = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(regions, i, e) if (n < 16 && json_is_string(e)) names[n++] = json_string_value(e);
    return qun_core_cfg.policy ? qun_policy_resolve(qun_core_cfg.policy, g->kind, names, n, v, err)
                               : qun_fail(err, QUN_INTERNAL, "no policy loaded");
}

qun_rc qun_group_policy(qun_db_t *db, const qun_group_t *g, qun_policy_view_t *v, qun_err_t *err) {
    qun_q_t *q;
    json_t *regions = NULL;
    if (qun_db_run(db, &q, err, "SELECT regions FROM groups WHERE id = $1", "i", g->id) == QUN_ROW) {
        regions = json_loads(qun_q_col_text(q, 0), 0, NULL);
        qun_q_done(q);
    }
    qun_rc rc = qun_group_policy_of(g, regions, v, err);
    json_decref(regions);
    return rc;
}

static qun_rc rules_for(qun_db_t *db, const qun_group_t *g, rules_t *r, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_group_policy(db, g, &r->v, err);
    if (rc != QUN_OK) return rc;
    qun_policy_value_t *R = r->v.rule;
    override(&R[QUN_POLICY_COOLING_OFF], qun_core_cfg.cooling_off);
    override(&R[QUN_POLICY_NOTICE], qun_core_cfg.notice);
    override(&R[QUN_POLICY_NOTICE_THRESHOLD], qun_core_cfg.notice_threshold);
    override(&R[QUN_POLICY_PURGE_GRACE], qun_core_cfg.purge_grace);
    override(&R[QUN_POLICY_TOMBSTONE], qun_core_cfg.tombstone);
    override(&R[QUN_POLICY_APPROVAL_EXPIRY], qun_core_cfg.approval_expiry);
    override(&R[QUN_POLICY_RETAIN_GROUP_PAYMENTS], qun_core_cfg.payment_retention);
    r->cooling_off = R[QUN_POLICY_COOLING_OFF].value;
    r->notice = R[QUN_POLICY_NOTICE].value;
    r->notice_threshold = R[QUN_POLICY_NOTICE_THRESHOLD].value;
    r->grace = R[QUN_POLICY_PURGE_GRACE].value;
    r->tombstone = R[QUN_POLICY_TOMBSTONE].value;
    r->approval_expiry = R[QUN_POLICY_APPROVAL_EXPIRY].value;
    r->retain_messages = R[QUN_POLICY_RETAIN_MESSAGES].value;
    r->retain_files = R[QUN_POLICY_RETAIN_FILES].value;
    r->retain_payments = R[QUN_POLICY_RETAIN_GROUP_PAYMENTS].value;
    r->step_up = R[QUN_POLICY_STEP_UP].value != 0;
    r->desensitize = R[QUN_POLICY_DESENSITIZE].value != 0;
    r->notice_applies = g->member_count > r->notice_threshold;
    int64_t bits = R[QUN_POLICY_APPROVALS].value;
    bool protected_org = false;
    if ((bits & (1 << QUN_APPROVAL_ORG_ADMIN_IF_PROTECTED)) && g->org_id &&
        qun_db_run(db, &q, NULL, "SELECT dissolve_protection FROM orgs WHERE id = $1", "i", g->org_id) ==
            QUN_ROW) {
        protected_org = qun_q_col_int(q, 0) != 0;
        qun_q_done(q);
    }
    r->need.org_admin = (bits & (1 << QUN_APPROVAL_ORG_ADMIN)) || protected_org;
    r->need.school_admin = (bits & (1 << QUN_APPROVAL_SCHOOL_ADMIN)) != 0;
    r->need.guardians = (bits & (1 << QUN_APPROVAL_GUARDIANS)) != 0;
    r->need.guardian_quorum = R[QUN_POLICY_GUARDIAN_QUORUM].value;
    return QUN_OK;
}

static int64_t delay_of(const rules_t *r) {
    int64_t notice = r->notice_applies ? r->notice : 0;
    return notice > r->cooling_off ? notice : r->cooling_off;
}

/* A retention minimum counted from the dissolution; "forever" never purges. */
static int64_t after(int64_t from, int64_t seconds) {
    return seconds == QUN_POLICY_FOREVER || seconds > INT64_MAX - from ? INT64_MAX : from + seconds;
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

static json_t *rules_json(const rules_t *r) {
    const qun_policy_value_t *R = r->v.rule;
    json_t *why = json_array();
    json_array_append_new(why,
                          json_pack("{s:s, s:I, s:s}", "rule", "cooling_off", "seconds",
                                    (json_int_t)r->cooling_off, "source", R[QUN_POLICY_COOLING_OFF].source));
    if (r->notice_applies)
        json_array_append_new(why, json_pack("{s:s, s:I, s:s, s:I}", "rule", "notice", "seconds",
                                             (json_int_t)r->notice, "source", R[QUN_POLICY_NOTICE].source,
                                             "because_members_over", (json_int_t)r->notice_threshold));
    json_t *guardian_quorum = r->need.guardian_quorum == QUN_POLICY_QUORUM_ALL
                                  ? json_string("all")
                                  : json_integer(r->need.guardian_quorum);
    return json_pack("{s:I, s:o, s:o, s:o}", "delay_seconds", (json_int_t)delay_of(r), "delay_reasons", why,
                     "policy", qun_policy_view_json(&r->v), "guardian_quorum", guardian_quorum);
}

static int64_t count(qun_db_t *db, const char *sql, int64_t id) {
    qun_q_t *q;
    int64_t n = 0;
    if (qun_db_run(db, &q, NULL, sql, "i", id) == QUN_ROW) {
        n = qun_q_col_int(q, 0);
        qun_q_done(q);
    }
    return n;
}

static json_t *impact(qun_db_t *db, const qun_group_t *g, const char *messages, const rules_t *r) {
    int64_t files = count(db, "SELECT COUNT(*) FROM group_files WHERE group_id = $1", g->id);
    int64_t bytes = count(db, "SELECT COALESCE(SUM(size), 0) FROM group_files WHERE group_id = $1", g->id);
    int64_t msgs = count(db, "SELECT COUNT(*) FROM messages WHERE group_id = $1", g->id);
    int64_t pays = count(db, "SELECT COUNT(*) FROM payments WHERE group_id = $1", g->id);
    int64_t lines = count(db,
                          "SELECT COUNT(*) FROM bill_lines b JOIN payments p ON p.pid = b.payment_openid "
                          "WHERE p.group_id = $1",
                          g->id);
    int64_t exports =
        count(db, "SELECT COUNT(*) FROM exports WHERE group_id = $1 AND purged_at IS NULL", g->id);
    int64_t export_bytes = count(
        db, "SELECT COALESCE(SUM(size), 0) FROM exports WHERE group_id = $1 AND purged_at IS NULL", g->id);
    int64_t grants = count(db, "SELECT COUNT(*) FROM export_grants WHERE group_id = $1", g->id);
    bool held =
        count(db, "SELECT COUNT(*) FROM holds WHERE group_id = $1 AND released_at IS NULL", g->id) > 0;
    bool del = strcmp(messages, "delete") == 0;
    /* Every export holds the group's messages and file bytes, so its server copy goes
     * with the purge, which waits for the messages' and files' retention and for any
     * legal hold; a copy a member downloaded is theirs. */
    json_t *x =
        json_pack("{s:{s:I, s:I, s:s, s:s, s:b, s:s}, s:{s:I, s:s, s:b, s:s}}", "exports", "count",
                  (json_int_t)exports, "bytes", (json_int_t)export_bytes, "rule",
                  "server copies (whole-group archives and members' own copies) deleted with the purge; "
                  "copies already downloaded stay with whoever holds them",
                  "kept_by",
                  held                                    ? "legal_hold"
                  : r->retain_messages || r->retain_files ? "retention"
                                                          : "none",
                  "held", held, "rule_code", "exports", "grants", "count", (json_int_t)grants, "rule",
                  "storage grants deleted with the purge", "held", held, "rule_code", "grants");
    json_t *o = json_pack(
        "{s:{s:I}, s:{s:I, s:s}, s:{s:I, s:I, s:s}, s:{s:I, s:s, s:I}, s:{s:I, s:s}}", "members", "count",
        (json_int_t)g->member_count, "messages", "count", (json_int_t)msgs, "rule",
        del              ? "purged after the purge grace"
        : r->desensitize ? "kept read-only, visible to the owner only; phone, ID and card numbers masked "
                           "when the purge starts, after the grace (unmasked until then: restores are exact)"
                         : "kept read-only, visible to the owner only",
        "files", "count", (json_int_t)files, "bytes", (json_int_t)bytes, "rule",
        "members lose access at dissolution; bytes purged after the grace unless another group references "
        "them",
        "payments", "count", (json_int_t)pays, "rule", "group payment records retained, then purged",
        "retention_seconds", (json_int_t)r->retain_payments, "bill_lines", "count", (json_int_t)lines, "rule",
        "personal bill lines are never purged");
    if (o && x) json_object_update(o, x);
    json_decref(x);
    /* Each rule also as a code (rule_code), so clients word it in their own language:
     * the English `rule` is for developers. */
    static const char *const rule_codes[] = {"files", "payments", "bill_lines"};
    for (size_t i = 0; o && i < sizeof rule_codes / sizeof rule_codes[0]; i++)
        json_object_set_new(json_object_get(o, rule_codes[i]), "rule_code", json_string(rule_codes[i]));
    if (o)
        json_object_set_new(json_object_get(o, "messages"), "rule_code",
                            json_string(del              ? "messages_delete"
                                        : r->desensitize ? "messages_masked"
                                                         : "messages_keep"));
    /* Kept messages of a finance group are masked by the purge (jobs/purge.c), not at
     * dissolution: the grace keeps everything restorable as it was. */
    if (o && !del && r->desensitize)
        json_object_set_new(json_object_get(o, "messages"), "masked_at_purge", json_true());
    /* Recalled and removed messages (core/message.c) count among the messages; their
     * text is already gone. */
    if (o)
        json_object_set_new(json_object_get(o, "messages"), "recalled",
                            json_integer(count(db,
                                               "SELECT COUNT(*) FROM messages WHERE group_id = $1 "
                                               "AND recalled_at IS NOT NULL",
                                               g->id)));
    return o;
}

static qun_rc preview_group(qun_db_t *db, const qun_actor_t *a, const char *gid, qun_group_t *g,
                            qun_err_t *err) {
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, g, err);
    if (rc != QUN_OK) return rc;
    qun_group_state_t st = qun_group_state_parse(g->state);
    if (st != QUN_GROUP_ACTIVE)
        return qun_fail(err,
                        st == QUN_GROUP_REVIEW || st == QUN_GROUP_PENDING ? QUN_DISSOLUTION_PENDING
                                                                          : QUN_GROUP_NOT_ACTIVE,
                        "group is %s", g->state);
    return qun_lifecycle_no_transfer(db, g, NULL, err);
}

qun_rc qun_diss_impact(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params, json_t **out,
                       qun_err_t *err) {
    qun_group_t g;
    rules_t r;
    json_t *approvals = NULL;
    qun_rc rc = preview_group(db, a, gid, &g, err);
    if (rc == QUN_OK) rc = rules_for(db, &g, &r, err);
    if (rc == QUN_OK) rc = qun_approvals_needed(db, &g, &r.need, &approvals, err);
    if (rc != QUN_OK) return rc;
    qun_verify_need_t need;
    rc = qun_verify_need(db, a, QUN_RISK_ALLOW, &need, err);
    if (rc != QUN_OK) {
        json_decref(approvals);
        return rc;
    }
    const char *messages = json_string_value(json_object_get(params, "messages"));
    json_t *requirements = qun_verify_requirements(need.all);
    if (r.step_up)
        json_array_append_new(requirements, json_pack("{s:s, s:s}", "method", "password", "how",
                                                      "send your password again as `password`"));
    char digest[65];
    qun_json_digest(params, digest);
    *out = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:s}", "group", g.gid, "name", g.name,
                     "state", g.state, "impact", impact(db, &g, messages, &r), "timing", rules_json(&r),
                     "approvals", approvals, "requirements", requirements, "params", json_deep_copy(params),
                     "params_digest", digest, "platform", a->platform);
    return *out ? QUN_OK : qun_fail(err, QUN_NOMEM, "cannot build the preview");
}

qun_rc qun_diss_preview(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params, json_t *view,
                        json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = preview_group(db, a, gid, &g, err);
    if (rc == QUN_OK && !view)
        rc = qun_diss_impact(db, a, gid, params, &view, err);
    else if (view)
        json_incref(view);
    if (rc != QUN_OK) return rc;
    char token[64];
    int64_t expires;
    rc = qun_confirm_issue(db, a, g.id, "dissolve", params, token, &expires, err);
    if (rc != QUN_OK) {
        json_decref(view);
        return rc;
    }
    json_object_set_new(view, "confirmation_token", json_string(token));
    json_object_set_new(view, "expires_at", json_integer(expires));
    *out = view;
    return QUN_OK;
}

static qun_rc set_group_state(qun_db_t *db, int64_t group_id, qun_group_state_t from, qun_group_state_t to,
                              qun_err_t *err) {
    qun_rc rc = qun_db_run(db, NULL, err,
                           "UPDATE groups SET state = $3, updated_at = $4 WHERE id = $1 AND state = $2",
                           "issi", group_id, qun_group_state_name(from), qun_group_state_name(to), qun_now());
    if (rc != QUN_DONE) return rc;
    return qun_db_changes(db) == 1
               ? QUN_OK
               : qun_fail(err, QUN_GROUP_NOT_ACTIVE, "the group is no longer %s", qun_group_state_name(from));
}

#ifndef NDEBUG
/* I2 and I3 for group_id, read back in the transaction that just moved it.  A query
 * that fails checks nothing: its caller meets the store's trouble soon enough. */
static void assert_invariants(qun_db_t *db, int64_t group_id) {
    qun_q_t *q;
    qun_diss_state_t latest = QUN_DISS_NONE; /* a group with no dissolution is active */
    int open = 0;
    qun_rc rc = qun_db_run(
        db, &q, NULL, "SELECT state FROM dissolutions WHERE group_id = $1 ORDER BY id DESC", "i", group_id);
    for (int n = 0; rc == QUN_ROW; rc = qun_q_step(q, NULL), n++) {
        qun_diss_state_t s = qun_diss_state_parse(qun_q_col_text(q, 0));
        assert(s != QUN_DISS_INVALID); /* every stored state is in the table */
        if (n == 0) latest = s;
        open += qun_diss_open(s);
    }
    if (rc != QUN_DONE) return;
    assert(open <= 1); /* I2 */
    if (qun_db_run(db, &q, NULL, "SELECT state FROM groups WHERE id = $1", "i", group_id) != QUN_ROW) return;
    qun_group_state_t g = qun_group_state_parse(qun_q_col_text(q, 0));
    qun_q_done(q);
    assert(g == qun_diss_group_state(latest)); /* I3 */
    (void)g;
}
#endif

/* Every change of a dissolution's state, and so of its group's, comes here.  The
 * edges, with the function that takes each (the ledger entry of I4 is that caller's,
 * appended in the same transaction with the group states of `from` and `to`):
 *
 *   none      -> archiving  qun_diss_request (archive then dissolve; no entry until
 *                           the archive is ledgered, then dissolution.requested)
 *   none      -> review     proceed, from qun_diss_request   dissolution.requested
 *   none      -> pending    proceed, from qun_diss_request   dissolution.requested
 *   archiving -> review     proceed, from qun_diss_archived  dissolution.requested
 *   archiving -> pending    proceed, from qun_diss_archived  dissolution.requested
 *   archiving -> failed     qun_diss_archived                dissolution.archive_failed
 *   archiving -> cancelled  qun_diss_end                     dissolution.cancelled
 *   review    -> pending    qun_diss_approved                dissolution.approved
 *   review    -> cancelled | rejected | expired  qun_diss_end  dissolution.<state>
 *   pending   -> cancelled | rejected | expired  qun_diss_end  dissolution.<state>
 *   pending   -> dissolved  qun_diss_mark_due                group.dissolved
 *   dissolved -> restored   qun_diss_restore                 group.restored
 *   dissolved -> purging    qun_purge_group_step (jobs)      group.purging
 *   purging   -> purged     qun_purge_group_step (jobs)      group.purged
 *
 * Asserted here: the edge is in diss_states.def; afterwards (without NDEBUG) I2, at
 * most one open dissolution per group, and I3, the group's state is the group state
 * of its latest dissolution.  I1 belongs to the confirmation token (qun_confirm_consume). */
qun_rc qun_diss_transition(qun_db_t *db, int64_t did, qun_diss_state_t from, qun_diss_state_t to,
                           qun_err_t *err) {
    assert(qun_diss_allowed(from, to));
    qun_q_t *q;
    qun_rc rc =
        from == QUN_DISS_NONE
            ? qun_db_run(db, &q, err, "UPDATE dissolutions SET state = $2 WHERE id = $1 RETURNING group_id",
                         "is", did, qun_diss_state_name(to))
            : qun_db_run(db, &q, err,
                         "UPDATE dissolutions SET state = $3 WHERE id = $1 AND state = $2 RETURNING group_id",
                         "iss", did, qun_diss_state_name(from), qun_diss_state_name(to));
    if (rc == QUN_DONE)
        return qun_fail(err, QUN_GROUP_NOT_ACTIVE, "the dissolution is no longer %s",
                        from == QUN_DISS_NONE ? "new" : qun_diss_state_name(from));
    if (rc != QUN_ROW) return rc;
    int64_t group_id = qun_q_col_int(q, 0);
    qun_q_done(q);
    qun_group_state_t gfrom = qun_diss_group_state(from), gto = qun_diss_group_state(to);
    rc = gfrom == gto ? QUN_OK : set_group_state(db, group_id, gfrom, gto, err);
#ifndef NDEBUG
    if (rc == QUN_OK) assert_invariants(db, group_id);
#endif
    return rc;
}

static qun_rc group_openid(qun_db_t *db, int64_t group_id, char gid[QUN_ID_MAX], qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT gid FROM groups WHERE id = $1", "i", group_id);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    snprintf(gid, QUN_ID_MAX, "%s", qun_q_col_text(q, 0));
    qun_q_done(q);
    return QUN_OK;
}

/* Post a dissolution notice to group_id: a system message whose author is the group's
 * owner and whose text is the JSON object notice (stolen), {"notice":
 * "dissolution.<stage>", "group": gid, ...} with the stage's own fields (docs/events.md),
 * followed by its message.created event.  Every stage a member should know about
 * posts one, so the group's history tells the whole story in order. */
static qun_rc post_notice(qun_db_t *db, int64_t group_id, const char *stage, json_t *notice, qun_err_t *err) {
    if (!notice) return qun_fail(err, QUN_NOMEM, "cannot build the dissolution.%s notice", stage);
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "UPDATE groups SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq - 1, owner_id, gid", "i",
        group_id);
    if (rc != QUN_ROW) {
        json_decref(notice);
        return rc == QUN_DONE ? QUN_STORE : rc;
    }
    int64_t seq = qun_q_col_int(q, 0), owner = qun_q_col_int(q, 1), now = qun_now();
    char kind[64];
    snprintf(kind, sizeof kind, "dissolution.%s", stage);
    /* "notice" and "group" first, whatever the stage adds. */
    json_t *full = json_pack("{s:s, s:s}", "notice", kind, "group", qun_q_col_text(q, 2));
    qun_q_done(q);
    if (full && json_object_update_missing(full, notice) != 0) json_decref(full), full = NULL;
    json_decref(notice);
    /* Who did it by name too (display name, else username): a reader who no longer sees
     * the members (the owner of a dissolved group) still has a name to show. */
    const char *by = full ? json_string_value(json_object_get(full, "by")) : NULL;
    if (by &&
        (rc = qun_db_run(db, &q, err, "SELECT COALESCE(display_name, username) FROM users WHERE openid = $1",
                         "s", by)) == QUN_ROW) {
        json_object_set_new(full, "by_name", json_string(qun_q_col_text(q, 0)));
        qun_q_done(q);
    } else if (by && rc != QUN_DONE) {
        json_decref(full);
        return rc;
    }
    char *text = full ? qun_json_dumps(full, JSON_COMPACT) : NULL;
    if (!text) {
        json_decref(full);
        return qun_fail(err, QUN_NOMEM, "cannot build the %s notice", kind);
    }
    rc = qun_db_run(db, NULL, err,
                    "INSERT INTO messages(group_id, seq, author_id, kind, body, created_at) VALUES ($1, $2, "
                    "$3, 'system', $4, $5)",
                    "iiisi", group_id, seq, owner, text, now);
    free(text);
    if (rc == QUN_DONE) rc = qun_event_message(db, group_id, seq, err);
    if (rc == QUN_OK) rc = qun_notify_dissolution(db, group_id, stage, full, err);
    json_decref(full);
    return rc == QUN_DONE ? QUN_OK : rc;
}

/* The dissolution has entered `pending`: the delay starts, a timer job is queued and a
 * system message tells the members when the group goes. */
static qun_rc enter_pending(qun_db_t *db, int64_t did, int64_t group_id, const rules_t *r, qun_err_t *err) {
    int64_t now = qun_now(), due = now + delay_of(r);
    qun_rc rc =
        qun_db_run(db, NULL, err, "UPDATE dissolutions SET due_at = $2 WHERE id = $1", "ii", did, due);
    if (rc == QUN_DONE &&
        (rc = qun_queue_add(db, QUN_JOB_DISSOLVE_DUE, group_id, did, due, NULL, err)) == QUN_OK)
        rc = QUN_DONE;
    qun_q_t *q;
    if (rc == QUN_DONE)
        rc = qun_db_run(
            db, &q, err,
            "SELECT u.openid, d.messages FROM dissolutions d JOIN users u ON u.id = d.requested_by "
            "WHERE d.id = $1",
            "i", did);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    /* notice_seconds is the advance notice this group gets (0 when it is not over the
     * threshold); the cooling-off has its own field and the delay is the larger. */
    json_int_t notice_s = r->notice_applies ? (json_int_t)r->notice : 0;
    json_int_t cooling_s = (json_int_t)r->cooling_off, delay_s = (json_int_t)(due - now);
    /* `export` is the old English sentence, kept for older clients; `export_code` says the
     * same as a code (its time is `dissolves_at`) for clients to render in their language. */
    json_t *notice =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s}", "by", qun_q_col_text(q, 0), "dissolves_at",
                  (json_int_t)due, "delay_seconds", delay_s, "notice_seconds", notice_s,
                  "cooling_off_seconds", cooling_s, "export", "members may export their own copy until then",
                  "export_code", "SELF_EXPORT_UNTIL_DUE", "messages", qun_q_col_text(q, 1));
    qun_q_done(q);
    rc = post_notice(db, group_id, "pending", notice, err);
    if (rc == QUN_OK)
        rc = qun_event_group(db, "dissolution.pending", group_id, 0,
                             json_pack("{s:s, s:I, s:I, s:I, s:I}", "state", QUN_GROUP_NAME(PENDING),
                                       "dissolves_at", (json_int_t)due, "delay_seconds", delay_s,
                                       "notice_seconds", notice_s, "cooling_off_seconds", cooling_s),
                             err);
    return rc;
}

static qun_rc open_dissolution(qun_db_t *db, int64_t group_id, int64_t *did, char *state, size_t state_size,
                               qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err,
                           "SELECT id, state FROM dissolutions WHERE group_id = $1 AND state IN "
                           "($2, $3, $4, $5, $6) ORDER BY id DESC LIMIT 1",
                           "isssss", group_id, QUN_DISS_NAME(ARCHIVING), QUN_DISS_NAME(REVIEW),
                           QUN_DISS_NAME(PENDING), QUN_DISS_NAME(DISSOLVED), QUN_DISS_NAME(PURGING));
    if (rc == QUN_DONE) return qun_fail(err, QUN_DISSOLUTION_NOT_FOUND, "no dissolution is in progress");
    if (rc != QUN_ROW) return rc;
    *did = qun_q_col_int(q, 0);
    snprintf(state, state_size, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    return QUN_OK;
}

/* Phase 1's verification: evaluate the risk, refuse outright at deny, then check the
 * proofs against what the session's platform needs (the verification policy) plus, at
 * verify, a step-up; a review level only notes that a manual review approval is needed.
 * The confirmation token, when presented, is used up here (I1). */
static qun_rc verify_gate(qun_db_t *db, const qun_actor_t *a, const qun_group_t *g, json_t *params,
                          const qun_diss_proof_t *proof, qun_risk_t *risk, bool *review, qun_err_t *err) {
    *review = false;
    qun_rc rc = qun_risk_evaluate(db, a, g->id, proof->ip, risk, err);
    if (rc != QUN_OK) return rc;
    if (risk->level == QUN_RISK_DENY) {
        if (proof->problem) *proof->problem = json_pack("{s:o}", "risk", qun_risk_json(risk));
        return qun_fail(err, QUN_RISK_DENIED, "the risk engine refuses this dissolution (score %d)",
                        risk->score);
    }
    *review = risk->level == QUN_RISK_REVIEW;
    if (proof->token) rc = qun_confirm_consume(db, a, g->id, "dissolve", params, proof->token, err);
    if (rc != QUN_OK) return rc;
    char digest[65];
    qun_json_digest(params, digest);
    qun_verify_proof_t p = {.action = "dissolve",
                            .group = g->gid,
                            .group_name = g->name,
                            .params_digest = digest,
                            .confirmed = proof->token != NULL,
                            .typed_name = proof->typed_name,
                            .challenges = {proof->challenge_id, proof->step_up_challenge_id},
                            .totp_code = proof->totp_code};
    qun_verify_need_t need;
    rc = qun_verify_need(db, a, risk->level, &need, err);
    if (rc != QUN_OK) return rc;
    /* At review the manual review is the extra gate; a step-up is asked at verify. */
    if (risk->level != QUN_RISK_VERIFY) need.any = 0;
    rc = qun_verify_check(db, a, need, &p, proof->problem, err);
    if (rc != QUN_OK && proof->problem && *proof->problem)
        json_object_set_new(*proof->problem, "risk", qun_risk_json(risk));
    return rc;
}

/* After authorization: the approvals, the move from `from` (none: a row inserted by
 * this request; or archiving) to `review` or `pending`, the event and the
 * `dissolution.requested` ledger entry.  risk and archive (the archive's export, digest
 * and ledger index, or NULL) are stolen into the entry's fields. */
static qun_rc proceed(qun_db_t *db, int64_t did, qun_diss_state_t from, const qun_group_t *g,
                      const rules_t *r, bool review, const char *actor, const char *messages,
                      const char *successor, json_t *risk, json_t *archive, json_t *verified,
                      qun_err_t *err) {
    int64_t now = qun_now();
    int napprovals = 0;
    qun_approval_needs_t need = r->need;
    need.risk_review = review;
    qun_rc rc = qun_approvals_create(db, did, g, &need, now + r->approval_expiry, &napprovals, err);
    qun_diss_state_t next = napprovals ? QUN_DISS_REVIEW : QUN_DISS_PENDING;
    const char *to = qun_group_state_name(qun_diss_group_state(next));
    if (rc == QUN_OK) rc = qun_diss_transition(db, did, from, next, err);
    if (rc == QUN_OK)
        rc = qun_event_group(db, "dissolution.requested", g->id, 0,
                             json_pack("{s:s, s:s, s:s, s:i}", "state", to, "requested_by", actor, "messages",
                                       messages, "approvals", napprovals),
                             err);
    if (rc == QUN_OK && !napprovals) rc = enter_pending(db, did, g->id, r, err);
    if (rc == QUN_OK && napprovals)
        rc = post_notice(db, g->id, QUN_DISS_NAME(REVIEW),
                         json_pack("{s:s, s:s, s:i, s:I}", "by", actor, "messages", messages, "approvals",
                                   napprovals, "approvals_expire_at", (json_int_t)(now + r->approval_expiry)),
                         err);
    if (rc == QUN_OK && napprovals)
        rc = qun_queue_add(db, QUN_JOB_APPROVAL_EXPIRY, g->id, did, now + r->approval_expiry, NULL, err);
    /* verified: {"confirmation": the methods presented, "platform"} of the request */
    json_t *f = json_pack("{s:s, s:i, s:I, s:b, s:s?, s:o, s:o?}", "messages", messages, "approvals",
                          napprovals, "delay_seconds", (json_int_t)delay_of(r), "notice", r->notice_applies,
                          "successor_name", successor, "risk", risk, "archive", archive);
    if (f && verified) json_object_update(f, verified);
    if (rc == QUN_OK)
        rc = qun_ledger_append(db, "dissolution.requested", g->gid, actor,
                               qun_group_state_name(qun_diss_group_state(from)), to, f, NULL, err);
    json_decref(f);
    return rc;
}

qun_rc qun_diss_request(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *params,
                        const qun_diss_proof_t *proof, json_t **out, qun_err_t *err) {
    const char *token = proof->token;
    bool stepped_up = proof->stepped_up;
    qun_group_t g;
    /* Locked before the group is read: no transfer offer can open between the check
     * below and this request's change of state (core.h, the exclusion). */
    qun_rc rc = qun_lifecycle_lock(db, err);
    if (rc == QUN_OK) rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc != QUN_OK) return rc;
    qun_group_state_t st = qun_group_state_parse(g.state);
    if (st == QUN_GROUP_REVIEW || st == QUN_GROUP_PENDING)
        return qun_fail(err, QUN_DISSOLUTION_PENDING, "group %s already has a dissolution in %s", g.gid,
                        g.state);
    if (st != QUN_GROUP_ACTIVE) return qun_fail(err, QUN_GROUP_NOT_ACTIVE, "group is %s", g.state);
    qun_q_t *q;
    rc = qun_db_run(db, &q, err, "SELECT 1 FROM dissolutions WHERE group_id = $1 AND state = $2 LIMIT 1",
                    "is", g.id, QUN_DISS_NAME(ARCHIVING));
    if (rc == QUN_ROW) {
        qun_q_done(q);
        return qun_fail(err, QUN_DISSOLUTION_PENDING,
                        "group %s already has a dissolution waiting for its archive", g.gid);
    }
    if (rc != QUN_DONE) return rc;
    rc = qun_lifecycle_no_transfer(db, &g, proof->problem, err);
    if (rc != QUN_OK) return rc;
    /* Archive then dissolve: the archive's recipients and the export policy are checked
     * before anything is spent. */
    json_t *archive = json_object_get(params, "archive");
    json_t *recipients = json_object_get(archive, "recipients");
    if (archive) {
        const char *k;
        json_t *v;
        json_object_foreach(archive, k, v) if (strcmp(k, "recipients") != 0) return qun_fail_field(
            err, QUN_FIELD_UNKNOWN, "archive", "archive takes only recipients, not %.40s", k);
        rc = qun_export_check_recipients(recipients, "archive.recipients", err);
        qun_policy_view_t v2;
        if (rc == QUN_OK) rc = qun_group_policy(db, &g, &v2, err);
        if (rc != QUN_OK) return rc;
        if (!v2.rule[QUN_POLICY_EXPORT].value)
            return qun_fail(err, QUN_EXPORT_FORBIDDEN, "this group's policy does not allow export (%s)",
                            v2.rule[QUN_POLICY_EXPORT].source);
    }
    rules_t r;
    rc = rules_for(db, &g, &r, err);
    if (rc != QUN_OK) return rc;
    qun_verify_need_t base;
    rc = qun_verify_need(db, a, QUN_RISK_ALLOW, &base, err);
    if (rc != QUN_OK) return rc;
    bool need_token = base.all & QUN_VM_CONFIRM;
    if (!token && need_token)
        return qun_fail(err, QUN_CONFIRMATION_REQUIRED,
                        "preview the dissolution and send its confirmation_token");
    if (r.step_up && !stepped_up) /* checked before the token is spent, so a retry can reuse it */
        return qun_fail_field(err, QUN_STEP_UP_REQUIRED, "password", "%s groups need your password again",
                              g.kind);
    qun_risk_t risk = {.reasons = NULL};
    bool review;
    rc = verify_gate(db, a, &g, params, proof, &risk, &review, err);
    if (rc != QUN_OK) {
        qun_risk_clear(&risk);
        return rc;
    }
    const char *messages = json_string_value(json_object_get(params, "messages"));
    const char *successor = json_string_value(json_object_get(params, "successor_name"));
    int64_t now = qun_now(), export_id = 0;
    /* How the request was verified, for its ledger entry (now, or once its archive is
     * ledgered: so it is kept with the rules). */
    char methods[96];
    qun_verify_mask_text(base.all, r.step_up ? "password" : NULL, methods, sizeof methods);
    json_t *verified = json_pack("{s:s, s:s}", "confirmation", methods, "platform", a->platform);
    json_t *rj = rules_json(&r);
    json_object_set(rj, "verified", verified);
    char *rtext = qun_json_dumps(rj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(rj);
    if (archive) rc = qun_export_queue(db, a, &g, recipients, false, NULL, &export_id, NULL, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, &q, err,
                        "INSERT INTO dissolutions(group_id, requested_by, messages, state, requested_at, "
                        "rules, successor_name, "
                        "risk_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                        "iississs", g.id, a->uid, messages,
                        archive ? QUN_DISS_NAME(ARCHIVING) : QUN_DISS_NAME(REVIEW), now, rtext, successor,
                        risk.id);
    free(rtext);
    if (rc != QUN_ROW) {
        json_decref(verified);
        qun_risk_clear(&risk);
        return rc == QUN_DONE ? QUN_STORE : rc;
    }
    int64_t did = qun_q_col_int(q, 0);
    qun_q_done(q);
    if (archive) {
        /* The group stays `active` until the archive is ledgered (qun_diss_archived). */
        rc = qun_db_run(db, NULL, err, "UPDATE dissolutions SET export_id = $2 WHERE id = $1", "ii", did,
                        export_id);
        rc = rc == QUN_DONE ? qun_diss_transition(db, did, QUN_DISS_NONE, QUN_DISS_ARCHIVING, err) : rc;
        if (rc == QUN_OK)
            rc = qun_event_group(db, "dissolution.archiving", g.id, QUN_EVENT_OWNER,
                                 json_pack("{s:s, s:s}", "state", QUN_GROUP_NAME(ACTIVE), "dissolution_state",
                                           QUN_DISS_NAME(ARCHIVING)),
                                 err);
    } else {
        rc = proceed(db, did, QUN_DISS_NONE, &g, &r, review, a->openid, messages, successor,
                     qun_risk_json(&risk), NULL, verified, err);
    }
    json_decref(verified);
    qun_risk_clear(&risk);
    if (rc != QUN_OK) return rc;
    return qun_diss_status(db, a, gid, out, err);
}

qun_rc qun_diss_archived(qun_db_t *db, int64_t export_id, bool ok, const char *digest, int64_t ledger_index,
                         const char *error, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT d.id, d.group_id, d.messages, d.successor_name, u.openid, e.xid, "
        "(SELECT r.level FROM risk_evaluations r WHERE r.rid = d.risk_id), "
        "(SELECT r.score FROM risk_evaluations r WHERE r.rid = d.risk_id), d.risk_id, d.rules "
        "FROM dissolutions d JOIN users u ON u.id = d.requested_by JOIN exports e ON e.id = d.export_id "
        "WHERE d.export_id = $1 AND d.state = $2",
        "is", export_id, QUN_DISS_NAME(ARCHIVING));
    if (rc == QUN_DONE) return QUN_OK; /* nothing waits for this export */
    if (rc != QUN_ROW) return rc;
    int64_t did = qun_q_col_int(q, 0), group_id = qun_q_col_int(q, 1);
    char messages[8], successor[130], actor[QUN_ID_MAX], xid[QUN_ID_MAX], gid[QUN_ID_MAX];
    snprintf(messages, sizeof messages, "%s", qun_q_col_text(q, 2));
    snprintf(successor, sizeof successor, "%s", qun_q_col_text(q, 3));
    bool has_successor = !qun_q_col_null(q, 3),
         review =
             !qun_q_col_null(q, 6) && strcmp(qun_q_col_text(q, 6), qun_risk_level_name(QUN_RISK_REVIEW)) == 0;
    snprintf(actor, sizeof actor, "%s", qun_q_col_text(q, 4));
    snprintf(xid, sizeof xid, "%s", qun_q_col_text(q, 5));
    json_t *risk = qun_q_col_null(q, 8) ? json_object()
                                        : json_pack("{s:s, s:s, s:I}", "id", qun_q_col_text(q, 8), "level",
                                                    qun_q_col_null(q, 6) ? qun_risk_level_name(QUN_RISK_ALLOW)
                                                                         : qun_q_col_text(q, 6),
                                                    "score", (json_int_t)qun_q_col_int(q, 7));
    json_t *rules = json_loads(qun_q_col_text(q, 9), 0, NULL);
    qun_q_done(q);
    rc = group_openid(db, group_id, gid, err);
    if (rc == QUN_OK && !ok) {
        json_decref(risk);
        json_decref(rules);
        if (rc == QUN_OK) rc = qun_diss_transition(db, did, QUN_DISS_ARCHIVING, QUN_DISS_FAILED, err);
        if (rc == QUN_OK)
            rc = qun_db_run(db, NULL, err,
                            "UPDATE dissolutions SET ended_reason = 'archive_failed', cancelled_at = $2 "
                            "WHERE id = $1",
                            "ii", did, qun_now()) == QUN_DONE
                     ? QUN_OK
                     : QUN_STORE;
        const char *gstate =
            qun_group_state_name(qun_diss_group_state(QUN_DISS_FAILED)); /* active, as before */
        json_t *f = json_pack("{s:s, s:s}", "export", xid, "error", error ? error : "");
        if (rc == QUN_OK)
            rc =
                qun_ledger_append(db, "dissolution.archive_failed", gid, actor, gstate, gstate, f, NULL, err);
        json_decref(f);
        if (rc == QUN_OK)
            rc = qun_event_group(db, "dissolution.archive_failed", group_id, QUN_EVENT_OWNER,
                                 json_pack("{s:s, s:s, s:s, s:s}", "state", gstate, "dissolution_state",
                                           QUN_DISS_NAME(FAILED), "export", xid, "error", error ? error : ""),
                                 err);
        return rc;
    }
    qun_group_t g;
    rules_t r;
    if (rc == QUN_OK) rc = qun_group_load(db, gid, &g, err);
    if (rc == QUN_OK) rc = rules_for(db, &g, &r, err);
    if (rc != QUN_OK) {
        json_decref(risk);
        json_decref(rules);
        return rc;
    }
    json_t *archive = json_pack("{s:s, s:s, s:I}", "export", xid, "digest", digest, "ledger_index",
                                (json_int_t)ledger_index);
    rc = proceed(db, did, QUN_DISS_ARCHIVING, &g, &r, review, actor, messages,
                 has_successor ? successor : NULL, risk, archive, json_object_get(rules, "verified"), err);
    json_decref(rules);
    return rc;
}

qun_rc qun_diss_approved(qun_db_t *db, int64_t did, int64_t decided_by, qun_err_t *err) {
    qun_q_t *q;
    qun_rc rc =
        qun_db_run(db, &q, err, "SELECT d.group_id, d.state FROM dissolutions d WHERE d.id = $1", "i", did);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t group_id = qun_q_col_int(q, 0);
    bool review = qun_diss_state_parse(qun_q_col_text(q, 1)) == QUN_DISS_REVIEW;
    qun_q_done(q);
    if (!review) return QUN_OK;
    qun_group_t g;
    char gid[QUN_ID_MAX];
    rc = group_openid(db, group_id, gid, err);
    if (rc == QUN_OK) rc = qun_group_load(db, gid, &g, err);
    if (rc != QUN_OK) return rc;
    rules_t r;
    rc = rules_for(db, &g, &r, err);
    if (rc == QUN_OK) rc = qun_diss_transition(db, did, QUN_DISS_REVIEW, QUN_DISS_PENDING, err);
    if (rc == QUN_OK) rc = enter_pending(db, did, group_id, &r, err);
    if (rc != QUN_OK) return rc;
    char actor[QUN_ID_MAX] = "";
    if (qun_db_run(db, &q, NULL, "SELECT openid FROM users WHERE id = $1", "i", decided_by) == QUN_ROW) {
        snprintf(actor, sizeof actor, "%s", qun_q_col_text(q, 0));
        qun_q_done(q);
    }
    json_t *f = json_pack("{s:I}", "delay_seconds", (json_int_t)delay_of(&r));
    rc = qun_ledger_append(db, "dissolution.approved", gid, actor[0] ? actor : NULL, QUN_GROUP_NAME(REVIEW),
                           QUN_GROUP_NAME(PENDING), f, NULL, err);
    json_decref(f);
    if (rc == QUN_OK)
        rc = qun_event_group(
            db, "dissolution.approved", group_id, 0,
            json_pack("{s:s, s:s?}", "state", QUN_GROUP_NAME(PENDING), "by", actor[0] ? actor : NULL), err);
    return rc;
}

qun_rc qun_diss_end(qun_db_t *db, int64_t did, qun_diss_state_t why, const char *actor_openid, json_t *fields,
                    qun_err_t *err) {
    assert(why == QUN_DISS_CANCELLED || why == QUN_DISS_REJECTED || why == QUN_DISS_EXPIRED);
    qun_q_t *q;
    qun_rc rc = qun_db_run(db, &q, err, "SELECT group_id, state FROM dissolutions WHERE id = $1", "i", did);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t group_id = qun_q_col_int(q, 0);
    char stored[16];
    snprintf(stored, sizeof stored, "%s", qun_q_col_text(q, 1));
    qun_q_done(q);
    qun_diss_state_t from = qun_diss_state_parse(stored);
    if (!qun_diss_cancellable(from))
        return qun_fail(err, QUN_DISSOLUTION_NOT_CANCELLABLE, "the dissolution is %s", stored);
    char gid[QUN_ID_MAX], event[48];
    rc = qun_diss_transition(db, did, from, why, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE dissolutions SET ended_reason = $2, cancelled_at = $3 WHERE id = $1", "isi",
                        did, qun_diss_state_name(why), qun_now());
    if (rc == QUN_DONE)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE approvals SET state = 'cancelled', decided_at = $2 WHERE dissolution_id = $1 "
                        "AND state = 'pending'",
                        "ii", did, qun_now());
    rc = rc == QUN_DONE ? QUN_OK : rc;
    if (rc == QUN_OK) rc = group_openid(db, group_id, gid, err);
    if (rc != QUN_OK) return rc;
    /* An archiving dissolution's group was active all along: active to active. */
    const char *gfrom = qun_group_state_name(qun_diss_group_state(from));
    const char *gto = qun_group_state_name(qun_diss_group_state(why));
    snprintf(event, sizeof event, "dissolution.%s", qun_diss_state_name(why));
    rc = qun_ledger_append(db, event, gid, actor_openid, gfrom, gto, fields, NULL, err);
    if (rc == QUN_OK)
        rc = post_notice(db, group_id, qun_diss_state_name(why),
                         json_pack("{s:s*, s:O*}", "by", actor_openid, "reason",
                                   json_string_length(json_object_get(fields, "reason")) > 0
                                       ? json_object_get(fields, "reason")
                                       : NULL),
                         err);
    return rc == QUN_OK ? qun_event_group(db, event, group_id, 0,
                                          json_pack("{s:s, s:s?}", "state", gto, "by", actor_openid), err)
                        : rc;
}

qun_rc qun_diss_mark_due(qun_db_t *db, int64_t did, bool *marked, qun_err_t *err) {
    qun_q_t *q;
    *marked = false;
    qun_rc rc = qun_db_run(
        db, &q, err,
        "SELECT d.group_id, d.state, d.due_at, d.messages, d.successor_name, d.requested_by, g.member_count "
        "FROM dissolutions d JOIN groups g ON g.id = d.group_id WHERE d.id = $1",
        "i", did);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    int64_t group_id = qun_q_col_int(q, 0), due = qun_q_col_int(q, 2), owner = qun_q_col_int(q, 5);
    int64_t members = qun_q_col_int(q, 6);
    bool pending = qun_diss_state_parse(qun_q_col_text(q, 1)) == QUN_DISS_PENDING;
    char messages[8], successor[130];
    snprintf(messages, sizeof messages, "%s", qun_q_col_text(q, 3));
    snprintf(successor, sizeof successor, "%s", qun_q_col_text(q, 4));
    bool has_successor = !qun_q_col_null(q, 4);
    qun_q_done(q);
    if (!pending || due > qun_now()) return QUN_OK; /* cancelled meanwhile, or not yet */
    char gid0[QUN_ID_MAX];
    qun_group_t g;
    rules_t r;
    rc = group_openid(db, group_id, gid0, err);
    if (rc == QUN_OK) rc = qun_group_load(db, gid0, &g, err);
    if (rc == QUN_OK) rc = rules_for(db, &g, &r, err);
    if (rc != QUN_OK) return rc;
    /* Nothing is purged within the grace, nor before a retention minimum has passed. */
    int64_t now = qun_now(), grace_until = after(now, r.grace);
    int64_t purge_at = max64(grace_until, max64(after(now, r.retain_messages), after(now, r.retain_files)));
    int64_t payments_at = max64(grace_until, after(now, r.retain_payments));
    rc = qun_diss_transition(db, did, QUN_DISS_PENDING, QUN_DISS_DISSOLVED, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE dissolutions SET dissolved_at = $2, grace_until = $3, "
                        "tombstone_until = $4 WHERE id = $1",
                        "iiii", did, now, grace_until, after(purge_at, r.tombstone)) == QUN_DONE
                 ? QUN_OK
                 : QUN_STORE;
    if (rc == QUN_OK) rc = qun_queue_add(db, QUN_JOB_PURGE_GROUP, group_id, did, purge_at, NULL, err);
    if (rc == QUN_OK) rc = qun_queue_add(db, QUN_JOB_PURGE_PAYMENTS, group_id, did, payments_at, NULL, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err, "DELETE FROM transfers WHERE group_id = $1", "i", group_id) == QUN_DONE
                 ? QUN_OK
                 : QUN_STORE;
    char gid[QUN_ID_MAX], succ_gid[QUN_ID_MAX] = "";
    if (rc == QUN_OK) rc = group_openid(db, group_id, gid, err);
    if (rc == QUN_OK && has_successor) {
        /* Dissolve and rebuild: the successor takes the members with their roles. */
        qun_id_new(succ_gid, "g");
        rc = qun_db_run(db, &q, err,
                        "INSERT INTO groups(gid, name, kind, org_id, regions, owner_id, member_count, "
                        "created_at, updated_at) "
                        "SELECT $2, $3, kind, org_id, regions, owner_id, member_count, $4, $4 FROM groups "
                        "WHERE id = $1 RETURNING id",
                        "issi", group_id, succ_gid, successor, now);
        if (rc == QUN_ROW) {
            int64_t sid = qun_q_col_int(q, 0);
            qun_q_done(q);
            rc = qun_db_run(
                db, NULL, err,
                "INSERT INTO members(group_id, user_id, role, joined_at) SELECT $2, user_id, role, $3 "
                "FROM members WHERE group_id = $1",
                "iii", group_id, sid, now);
            if (rc == QUN_DONE)
                rc =
                    qun_db_run(db, NULL, err, "UPDATE dissolutions SET successor_group_id = $2 WHERE id = $1",
                               "ii", did, sid);
            rc = rc == QUN_DONE ? QUN_OK : rc;
        }
        char owner_openid[QUN_ID_MAX] = "";
        if (rc == QUN_OK &&
            qun_db_run(db, &q, NULL, "SELECT openid FROM users WHERE id = $1", "i", owner) == QUN_ROW) {
            snprintf(owner_openid, sizeof owner_openid, "%s", qun_q_col_text(q, 0));
            qun_q_done(q);
        }
        json_t *f = json_pack("{s:s, s:s, s:s}", "name", successor, "predecessor", gid, "kind", "successor");
        if (rc == QUN_OK)
            rc = qun_ledger_append(db, "group.created", succ_gid, owner_openid, NULL, QUN_GROUP_NAME(ACTIVE),
                                   f, NULL, err);
        json_decref(f);
    }
    /* The last message the members can read, before the group.dissolved event takes
     * them out. */
    char by[QUN_ID_MAX] = "";
    if (rc == QUN_OK &&
        qun_db_run(db, &q, NULL, "SELECT openid FROM users WHERE id = $1", "i", owner) == QUN_ROW) {
        snprintf(by, sizeof by, "%s", qun_q_col_text(q, 0));
        qun_q_done(q);
    }
    if (rc == QUN_OK)
        rc = post_notice(db, group_id, QUN_DISS_NAME(DISSOLVED),
                         json_pack("{s:s*, s:s, s:I, s:s*, s:s*}", "by", by[0] ? by : NULL, "messages",
                                   messages, "restorable_until", (json_int_t)grace_until, "successor",
                                   succ_gid[0] ? succ_gid : NULL, "successor_name",
                                   succ_gid[0] ? successor : NULL),
                         err);
    if (rc != QUN_OK) return rc;
    /* The receipt counts the messages recalled or removed before the dissolution. */
    int64_t recalled = 0;
    rc = qun_message_recalled_count(db, group_id, &recalled, err);
    if (rc != QUN_OK) return rc;
    json_t *f =
        json_pack("{s:s, s:I, s:I, s:I, s:s?, s:I}", "messages", messages, "members", (json_int_t)members,
                  "purge_after", (json_int_t)purge_at, "payments_purge_after", (json_int_t)payments_at,
                  "successor", succ_gid[0] ? succ_gid : NULL, "messages_recalled", (json_int_t)recalled);
    rc = qun_ledger_append(db, "group.dissolved", gid, NULL, QUN_GROUP_NAME(PENDING),
                           QUN_GROUP_NAME(DISSOLVED), f, NULL, err);
    json_decref(f);
    if (rc == QUN_OK)
        rc = qun_event_group(db, "group.dissolved", group_id, 0,
                             json_pack("{s:s, s:s, s:I, s:s?, s:s*}", "state", QUN_GROUP_NAME(DISSOLVED),
                                       "messages", messages, "restorable_until", (json_int_t)grace_until,
                                       "successor", succ_gid[0] ? succ_gid : NULL, "successor_name",
                                       succ_gid[0] ? successor : NULL),
                             err);
    if (rc == QUN_OK) {
        f = json_pack("{s:s, s:s?}", "group", gid, "successor", succ_gid[0] ? succ_gid : NULL);
        char *payload = qun_json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(f);
        rc = qun_db_run(db, NULL, err,
                        "INSERT INTO outbox(topic, payload, created_at) VALUES ('group.dissolved', $1, $2)",
                        "si", payload, now) == QUN_DONE
                 ? QUN_OK
                 : QUN_STORE;
        free(payload);
    }
    *marked = rc == QUN_OK;
    return rc;
}

qun_rc qun_diss_purgeable(qun_db_t *db, int64_t did, int64_t group_id, bool *ok, bool *held, qun_err_t *err) {
    qun_q_t *q;
    *ok = *held = false;
    qun_rc rc = qun_db_run(
        db, &q, err, "SELECT state, COALESCE(grace_until, 0) FROM dissolutions WHERE id = $1", "i", did);
    if (rc != QUN_ROW) return rc == QUN_DONE ? QUN_STORE : rc;
    qun_diss_state_t st = qun_diss_state_parse(qun_q_col_text(q, 0));
    bool live = st == QUN_DISS_DISSOLVED || st == QUN_DISS_PURGING || st == QUN_DISS_PURGED;
    qun_q_done(q);
    if (!live) return QUN_OK; /* restored: nothing to purge */
    *held = count(db, "SELECT COUNT(*) FROM holds WHERE group_id = $1 AND released_at IS NULL", group_id) > 0;
    *ok = !*held;
    return QUN_OK;
}

qun_rc qun_diss_status(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_MEMBER, &g, err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER) rc = QUN_OK;
    if (rc != QUN_OK) return rc;
    qun_q_t *q;
    rc = qun_db_run(
        db, &q, err,
        "SELECT d.id, d.messages, d.state, d.requested_at, d.dissolved_at, d.purged_at, d.receipt, u.openid, "
        "d.due_at, d.grace_until, d.tombstone_until, d.rules, s.gid, d.successor_name, d.cancelled_at, "
        "u.username, u.display_name "
        "FROM dissolutions d JOIN users u ON u.id = d.requested_by LEFT JOIN groups s ON s.id = "
        "d.successor_group_id "
        "WHERE d.group_id = $1 ORDER BY d.id DESC LIMIT 1",
        "i", g.id);
    if (rc == QUN_DONE) return qun_fail(err, QUN_DISSOLUTION_NOT_FOUND, "group %s has no dissolution", g.gid);
    if (rc != QUN_ROW) return rc;
    int64_t did = qun_q_col_int(q, 0), now = qun_now();
    json_t *receipt = json_loads(qun_q_col_text(q, 6), 0, NULL),
           *rules = json_loads(qun_q_col_text(q, 11), 0, NULL);
#define OPT_INT(c) (qun_q_col_null(q, c) ? NULL : json_integer(qun_q_col_int(q, c)))
    *out = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:o?, s:o?, s:o?, s:o?, s:o?, s:o?, s:o, s:o, s:s?, s:s?, s:I, s:[]}",
        "group", g.gid, "state", g.state, "dissolution_state", qun_q_col_text(q, 2), "messages",
        qun_q_col_text(q, 1), "requested_by", qun_q_col_text(q, 7), "requested_at",
        (json_int_t)qun_q_col_int(q, 3), "due_at", OPT_INT(8), "dissolved_at", OPT_INT(4), "grace_until",
        OPT_INT(9), "tombstone_until", OPT_INT(10), "purged_at", OPT_INT(5), "ended_at", OPT_INT(14),
        "receipt", receipt ? receipt : json_object(), "timing", rules ? rules : json_object(), "successor",
        qun_q_col_null(q, 12) ? NULL : qun_q_col_text(q, 12), "successor_name",
        qun_q_col_null(q, 13) ? NULL : qun_q_col_text(q, 13), "now", (json_int_t)now, "jobs");
#undef OPT_INT
    /* Who asked, by name: clients show no bare openid where a name exists. */
    if (*out) {
        json_object_set_new(*out, "requested_by_username", json_string(qun_q_col_text(q, 15)));
        if (!qun_q_col_null(q, 16))
            json_object_set_new(*out, "requested_by_display_name", json_string(qun_q_col_text(q, 16)));
    }
    if (!qun_q_col_null(q, 8) && qun_diss_state_parse(qun_q_col_text(q, 2)) == QUN_DISS_PENDING) {
        int64_t left = qun_q_col_int(q, 8) - now;
        json_object_set_new(*out, "seconds_left", json_integer(left > 0 ? left : 0));
    }
    qun_q_done(q);
    if (!*out) return qun_fail(err, QUN_INTERNAL, "cannot build the dissolution status");
    json_t *approvals = json_array();
    rc = qun_db_run(db, &q, err,
                    "SELECT a.aid, a.kind, a.state, su.openid, a.reason, a.expires_at, su.username, o.name "
                    "FROM approvals a "
                    "LEFT JOIN users su ON su.id = a.subject_id LEFT JOIN orgs o ON o.id = a.org_id "
                    "WHERE a.dissolution_id = $1 ORDER BY a.id",
                    "i", did);
    /* org_name: the org whose admins decide, named as the preview names it. */
    for (; rc == QUN_ROW; rc = qun_q_step(q, err))
        json_array_append_new(
            approvals, json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:I, s:s?}", "id", qun_q_col_text(q, 0),
                                 "kind", qun_q_col_text(q, 1), "state", qun_q_col_text(q, 2), "subject",
                                 qun_q_col_null(q, 3) ? NULL : qun_q_col_text(q, 3), "subject_name",
                                 qun_q_col_null(q, 6) ? NULL : qun_q_col_text(q, 6), "reason",
                                 qun_q_col_text(q, 4), "expires_at", (json_int_t)qun_q_col_int(q, 5),
                                 "org_name", qun_q_col_null(q, 7) ? NULL : qun_q_col_text(q, 7)));
    json_object_set_new(*out, "approvals", approvals);
    /* Archive then dissolve: the export the dissolution waits for (or waited for). */
    if (rc == QUN_DONE &&
        qun_db_run(db, &q, NULL,
                   "SELECT e.xid, e.state, e.progress, e.digest, e.ledger_index, e.error FROM dissolutions d "
                   "JOIN exports e ON e.id = d.export_id WHERE d.id = $1",
                   "i", did) == QUN_ROW) {
        json_t *progress = json_loads(qun_q_col_text(q, 2), 0, NULL);
        json_t *x = json_pack("{s:s, s:s, s:o}", "export", qun_q_col_text(q, 0), "state",
                              qun_q_col_text(q, 1), "progress", progress ? progress : json_object());
        if (!qun_q_col_null(q, 3)) json_object_set_new(x, "digest", json_string(qun_q_col_text(q, 3)));
        if (!qun_q_col_null(q, 4)) json_object_set_new(x, "ledger_index", json_integer(qun_q_col_int(q, 4)));
        if (!qun_q_col_null(q, 5)) json_object_set_new(x, "error", json_string(qun_q_col_text(q, 5)));
        json_object_set_new(*out, "archive", x);
        qun_q_done(q);
    }
    if (qun_db_run(db, &q, NULL,
                   "SELECT e.level, e.score, e.reasons, e.rid FROM dissolutions d "
                   "JOIN risk_evaluations e ON e.rid = d.risk_id WHERE d.id = $1",
                   "i", did) == QUN_ROW) {
        json_t *reasons = json_loads(qun_q_col_text(q, 2), 0, NULL);
        json_object_set_new(*out, "risk",
                            json_pack("{s:s, s:s, s:I, s:o}", "id", qun_q_col_text(q, 3), "level",
                                      qun_q_col_text(q, 0), "score", (json_int_t)qun_q_col_int(q, 1),
                                      "reasons", reasons ? reasons : json_array()));
        qun_q_done(q);
    }
    if (rc == QUN_DONE && (rc = qun_queue_list_purges(db, did, json_object_get(*out, "jobs"), err)) == QUN_OK)
        rc = QUN_DONE;
    json_object_set_new(
        *out, "held",
        json_boolean(
            count(db, "SELECT COUNT(*) FROM holds WHERE group_id = $1 AND released_at IS NULL", g.id) > 0));
    if (rc != QUN_DONE) {
        json_decref(*out);
        return rc;
    }
    return QUN_OK;
}

qun_rc qun_diss_gone_view(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t *problem,
                          qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_load(db, gid, &g, err);
    if (rc != QUN_OK) return rc == QUN_GROUP_NOT_FOUND ? QUN_OK : rc;
    qun_group_state_t st = qun_group_state_parse(g.state);
    if (st != QUN_GROUP_DISSOLVED && st != QUN_GROUP_PURGING && st != QUN_GROUP_PURGED) return QUN_OK;
    /* Only someone who was in the group learns more than that it is gone: its members
     * keep their rows until the purge, the owner for good. */
    qun_q_t *q;
    bool was_in = g.owner_id == a->uid;
    if (!was_in) {
        rc = qun_db_run(db, &q, err, "SELECT 1 FROM members WHERE group_id = $1 AND user_id = $2", "ii", g.id,
                        a->uid);
        if (rc == QUN_ROW) qun_q_done(q);
        if (rc != QUN_ROW && rc != QUN_DONE) return rc;
        was_in = rc == QUN_ROW;
    }
    if (!was_in) return QUN_OK;
    rc = qun_db_run(db, &q, err,
                    "SELECT d.dissolved_at, d.grace_until, d.messages, d.successor_name FROM dissolutions d "
                    "WHERE d.group_id = $1 AND d.dissolved_at IS NOT NULL ORDER BY d.id DESC LIMIT 1",
                    "i", g.id);
    if (rc == QUN_DONE) return QUN_OK;
    if (rc != QUN_ROW) return rc;
    bool keep = strcmp(qun_q_col_text(q, 2), "keep") == 0;
    json_t *gone = json_pack("{s:s, s:s, s:I, s:s}", "name", g.name, "state", g.state, "dissolved_at",
                             (json_int_t)qun_q_col_int(q, 0), "messages", qun_q_col_text(q, 2));
    if (gone && !qun_q_col_null(q, 1))
        json_object_set_new(gone, "purge_after", json_integer(qun_q_col_int(q, 1)));
    if (gone && !qun_q_col_null(q, 3))
        json_object_set_new(gone, "successor_name", json_string(qun_q_col_text(q, 3)));
    qun_q_done(q);
    if (!gone) return qun_fail(err, QUN_NOMEM, "cannot describe the dissolved group");
    bool held = count(db, "SELECT COUNT(*) FROM holds WHERE group_id = $1 AND released_at IS NULL", g.id) > 0;
    int64_t pays = count(db, "SELECT COUNT(*) FROM payments WHERE group_id = $1", g.id);
    /* What outlives the purge, and why: codes a client renders in its own words. */
    json_t *kept = json_array();
    if (held) json_array_append_new(kept, json_pack("{s:s, s:s}", "what", "everything", "why", "legal_hold"));
    if (keep)
        json_array_append_new(kept, json_pack("{s:s, s:s}", "what", "messages", "why", "owner_read_only"));
    if (pays > 0)
        json_array_append_new(kept, json_pack("{s:s, s:s}", "what", "payments", "why", "retention"));
    json_array_append_new(kept, json_pack("{s:s, s:s}", "what", "bill_lines", "why", "personal_record"));
    json_object_set_new(gone, "held", json_boolean(held));
    json_object_set_new(gone, "kept", kept);
    json_object_set_new(problem, "gone", gone);
    return QUN_OK;
}

qun_rc qun_diss_cancel(qun_db_t *db, const qun_actor_t *a, const char *gid, json_t **out, qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc == QUN_GROUP_GONE && g.role == QUN_ROLE_OWNER)
        return qun_fail(
            err, QUN_DISSOLUTION_NOT_CANCELLABLE,
            "group %s is already %s; the cancel window has passed (restore it within the purge grace)", g.gid,
            g.state);
    if (rc != QUN_OK) return rc;
    int64_t did;
    char state[16];
    rc = open_dissolution(db, g.id, &did, state, sizeof state, err);
    if (rc != QUN_OK) return rc;
    rc = qun_diss_end(db, did, QUN_DISS_CANCELLED, a->openid, NULL, err);
    return rc == QUN_OK ? qun_diss_status(db, a, gid, out, err) : rc;
}

qun_rc qun_diss_restore(qun_db_t *db, const qun_actor_t *a, const char *gid, bool stepped_up, json_t **out,
                        qun_err_t *err) {
    qun_group_t g;
    qun_rc rc = qun_group_access(db, a, gid, QUN_ROLE_OWNER, &g, err);
    if (rc == QUN_OK)
        return qun_fail(err, QUN_NOT_RESTORABLE, "group %s is %s, not dissolved", g.gid, g.state);
    if (rc == QUN_GROUP_NOT_FOUND && a->is_admin) { /* admins restore groups they are not in */
        rc = qun_group_load(db, gid, &g, err);
        if (rc != QUN_OK) return rc;
        qun_group_state_t st = qun_group_state_parse(g.state);
        if (st == QUN_GROUP_DISSOLVED || st == QUN_GROUP_PURGING || st == QUN_GROUP_PURGED)
            rc = QUN_GROUP_GONE;
        else
            return qun_fail(err, QUN_NOT_RESTORABLE, "group %s is %s, not dissolved", g.gid, g.state);
    }
    if (rc != QUN_GROUP_GONE) return rc;
    if (g.role != QUN_ROLE_OWNER && !a->is_admin) return rc; /* gone, as every route says */
    if (!a->is_admin && !stepped_up)
        return qun_fail_field(err, QUN_STEP_UP_REQUIRED, "password", "restoring needs your password again");
    if (qun_group_state_parse(g.state) != QUN_GROUP_DISSOLVED)
        return qun_fail(err, QUN_NOT_RESTORABLE, "group %s is %s; the purge grace has ended", g.gid, g.state);
    int64_t did;
    char state[16];
    rc = open_dissolution(db, g.id, &did, state, sizeof state, err);
    if (rc != QUN_OK) return rc;
    rc = qun_diss_transition(db, did, QUN_DISS_DISSOLVED, QUN_DISS_RESTORED, err);
    if (rc == QUN_OK)
        rc = qun_db_run(db, NULL, err,
                        "UPDATE dissolutions SET ended_reason = $3, cancelled_at = $2 WHERE id = $1", "iis",
                        did, qun_now(), QUN_DISS_NAME(RESTORED)) == QUN_DONE
                 ? QUN_OK
                 : QUN_STORE;
    if (rc == QUN_OK) rc = qun_queue_end_purges(db, did, QUN_DISS_NAME(RESTORED), err);
    json_t *f = json_pack("{s:s}", "by", a->is_admin && g.role != QUN_ROLE_OWNER ? "server_admin" : "owner");
    if (rc == QUN_OK)
        rc = qun_ledger_append(db, "group.restored", g.gid, a->openid, QUN_GROUP_NAME(DISSOLVED),
                               QUN_GROUP_NAME(ACTIVE), f, NULL, err);
    if (rc == QUN_OK)
        rc = post_notice(db, g.id, QUN_DISS_NAME(RESTORED),
                         json_pack("{s:s, s:s}", "by", a->openid, "restored_by",
                                   json_string_value(json_object_get(f, "by"))),
                         err);
    if (rc == QUN_OK)
        rc = qun_event_group(db, "group.restored", g.id, 0,
                             json_pack("{s:s, s:s}", "state", QUN_GROUP_NAME(ACTIVE), "by",
                                       json_string_value(json_object_get(f, "by"))),
                             err);
    json_decref(f);
    if (rc != QUN_OK) return rc;
    qun_actor_t owner_view = *a;
    owner_view.uid = g.owner_id;
    return qun_group_get(db, &owner_view, gid, out, err);
}
