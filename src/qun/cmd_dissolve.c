/* SPDX-License-Identifier: MIT */
/* Dissolution commands.  `dissolve` shows the server's impact preview (with the delay
 * and the approvals it will need), makes the user type the group's name, and only on
 * an exact match sends the request with the preview's confirmation token, answering
 * whatever else a 428 asks for (proofs.c); then it follows the purge job.
 * `status` shows a dissolution and its jobs, `cancel` withdraws one before it is
 * carried out, and `restore` brings a dissolved group back within the purge grace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "qun/queue.h"
#include "qun/states.h"

/* One count of a receipt or progress in words, "messages deleted 12" (key=value for a
 * count without a words row); after the first, the language's separator. */
static void print_count(FILE *f, const char *k, json_int_t n, bool *first) {
    char key[96];
    snprintf(key, sizeof key, "cli.receipt.%s", k);
    const char *word = qun_w_or(key, NULL);
    fprintf(f, "%s%s%s%lld", *first ? "" : qun_w("cli.receipt.sep"), word ? word : k, word ? " " : "=",
            (long long)n);
    *first = false;
}

/* A purge's progress or receipt in the reader's words: its phase ("phase: memberships"),
 * the messages, files and memberships, then whatever else it counted that is not 0.  A
 * phase or a count without a words row ("cli.phase.<p>", "cli.receipt.<key>") keeps its
 * API name. */
static void print_counts(FILE *f, json_t *o) {
    static const char *const main_counts[] = {"messages_deleted", "files_removed", "members_removed"};
    const char *k, *phase = qun_jstr_or(o, "phase", NULL);
    json_t *v;
    char key[96], line[160];
    bool first = true;
    if (phase) {
        snprintf(key, sizeof key, "cli.phase.%s", phase);
        fputs(qun_wf(line, sizeof line, "cli.receipt.phase", qun_w_or(key, phase)), f);
        first = false;
    }
    for (size_t i = 0; i < sizeof main_counts / sizeof main_counts[0]; i++)
        if (json_is_integer(v = json_object_get(o, main_counts[i])))
            print_count(f, main_counts[i], json_integer_value(v), &first);
    json_object_foreach(o, k, v) {
        bool shown = false; /* among main_counts, printed above */
        for (size_t i = 0; i < sizeof main_counts / sizeof main_counts[0]; i++)
            shown |= strcmp(k, main_counts[i]) == 0;
        if (!shown && json_is_integer(v) && json_integer_value(v) != 0)
            print_count(f, k, json_integer_value(v), &first);
    }
    if (first) fputs("-", f);
}

/* s on f padded with spaces to width columns (CJK counts two), then one space. */
static void col(FILE *f, const char *s, size_t width) {
    fputs(s, f);
    for (size_t w = qun_text_width(s); w < width; w++)
        fputc(' ', f);
    fputc(' ', f);
}

/* One "label: value" line of the status: the label padded to width columns. */
static void field(FILE *f, size_t width, const char *key, const char *value) {
    fputs("  ", f);
    col(f, qun_w(key), width - 1);
    fprintf(f, "%s\n", value);
}

static void print_impact_line(FILE *f, const char *key, json_t *e) {
    char label[40], lkey[64], line[200], n[24];
    snprintf(label, sizeof label, "%s:", key);
    for (char *p = label; *p; p++)
        if (*p == '_') *p = ' ';
    /* The label in words for the counts qun knows; a newer server's as its key says. */
    snprintf(lkey, sizeof lkey, "cli.impact.%s", key);
    fputs("  ", f);
    col(f, qun_w_or(lkey, label), 12);
    fprintf(f, "%6lld", (long long)qun_jint(e, "count"));
    if (json_is_integer(json_object_get(e, "bytes")))
        fputs(qun_wf(line, sizeof line, "cli.impact_bytes", qun_fmt_int(qun_jint(e, "bytes"), n)), f);
    /* The rule in words from its code; an older server's English rule as it is. */
    char rkey[64];
    snprintf(rkey, sizeof rkey, "diss.rule.%s", qun_jstr_or(e, "rule_code", "-"));
    const char *rule = qun_w_or(rkey, qun_jstr_or(e, "rule", NULL));
    if (rule) fprintf(f, "  %s", rule);
    int64_t keep = qun_jint(e, "retention_seconds");
    if (keep > 0) fputs(qun_wf(line, sizeof line, "cli.impact_retention", qun_fmt_int(keep / 86400, n)), f);
    fputc('\n', f);
}

/* A duration the way timers are read: "48h", "72h 30m", "7d", "7d 2h", "5m", "30s".
 * Hours up to three days, because the notice periods are stated in hours.  From a minute
 * on, to the nearest minute: a 48 h timer read a second after it started is "48h", not
 * "47h 59m". */
static void fmt_duration(int64_t s, char out[32]) {
    if (s >= 60) s = (s + 30) / 60 * 60;
    long long d = s / 86400, h = s % 86400 / 3600, hh = s / 3600, m = s % 3600 / 60;
    if (s < 0)
        snprintf(out, 32, "0s");
    else if (s > 72 * 3600)
        snprintf(out, 32, h ? "%lldd %lldh" : "%lldd", d, h);
    else if (s >= 3600)
        snprintf(out, 32, m ? "%lldh %02lldm" : "%lldh", hh, m);
    else if (s >= 60)
        snprintf(out, 32, "%lldm", m);
    else
        snprintf(out, 32, "%llds", (long long)s);
}

/* Where a policy value comes from ("default", "kind:family", "region:cn") in words. */
static const char *source_words(const char *src) {
    static char out[200];
    const char *colon = strchr(src, ':');
    char key[64];
    snprintf(key, sizeof key, "cli.diss.source.%.*s", colon ? (int)(colon - src) : 40, src);
    if (!colon) return qun_w_or(key, src);
    if (!qun_w_or(key, NULL)) return src;
    return qun_wf(out, sizeof out, key, colon + 1);
}

/* The delay between the request and the dissolution, and the rules behind it. */
static void print_timing(FILE *f, json_t *timing) {
    char d[32], line[600];
    size_t i;
    json_t *r;
    if (!json_is_integer(json_object_get(timing, "delay_seconds"))) return;
    fmt_duration(qun_jint(timing, "delay_seconds"), d);
    json_t *why = json_object_get(timing, "delay_reasons");
    fprintf(f, "%s\n",
            qun_wf(line, sizeof line,
                   json_array_size(why) > 0 ? "cli.diss.timing_because" : "cli.diss.timing", d));
    json_array_foreach(why, i, r) {
        char key[64];
        fmt_duration(qun_jint(r, "seconds"), d);
        snprintf(key, sizeof key, "diss.rule_name.%s", qun_jstr_or(r, "rule", "?"));
        fputs("  ", f);
        col(f, qun_w_or(key, qun_jstr_or(r, "rule", "?")), 12);
        fputs(d, f);
        const char *src = qun_jstr_or(r, "source", NULL);
        if (src) fputs(qun_wf(line, sizeof line, "cli.diss.source", source_words(src)), f);
        fputc('\n', f);
    }
    json_t *rules = json_object_get(timing, "rules");
    if (json_is_integer(json_object_get(rules, "purge_grace_seconds"))) {
        fmt_duration(qun_jint(rules, "purge_grace_seconds"), d);
        fprintf(f, "%s\n", qun_wf(line, sizeof line, "cli.diss.grace", d));
    }
    /* What can still be undone, and until when (counted from now: the request follows). */
    json_t *grace =
        json_object_get(json_object_get(json_object_get(timing, "policy"), "purge_grace_seconds"), "value");
    int64_t now = (int64_t)time(NULL), due = now + qun_jint(timing, "delay_seconds");
    char t1[32], t2[32];
    qun_fmt_time(due, t1);
    if (json_is_integer(grace)) {
        fmt_duration(json_integer_value(grace), d);
        qun_wf(line, sizeof line, "cli.diss.undo_restore", t1, d,
               qun_fmt_time(due + json_integer_value(grace), t2));
    } else {
        qun_wf(line, sizeof line, "cli.diss.undo", t1);
    }
    fprintf(f, "%s\n", line);
}

/* The approvals a dissolution needs (preview) or waits for (status); title is the words'
 * key of the line above them. */
static void print_approvals(FILE *f, const char *title, json_t *approvals) {
    size_t i;
    json_t *a;
    if (json_array_size(approvals) == 0) return;
    fprintf(f, "%s\n", qun_w(title));
    json_array_foreach(approvals, i, a) {
        /* The approver in words from the kind, people by their names where the answer
         * has them (an openid only when it has none). */
        char key[64], line[400];
        const char *kind = qun_jstr_or(a, "kind", "?");
        const char *who = qun_jstr_or(a, "from_name", qun_jstr_or(a, "approver_name", NULL));
        const char *minor = qun_jstr_or(a, "for_minor_name", qun_jstr_or(a, "subject_name", NULL));
        if (!minor) minor = qun_jstr_or(a, "for_minor", qun_jstr_or(a, "subject", "?"));
        snprintf(key, sizeof key, "approval.kind.%s", kind);
        /* A preview's `from_code` says who decides in the reader's language (`from` is
         * the server's pinned English). */
        const char *code = qun_jstr_or(a, "from_code", NULL);
        json_t *fp = json_object_get(a, "from_params");
        char fkey[64];
        if (code) snprintf(fkey, sizeof fkey, "approval.from.%s", code);
        if (code && strcmp(code, "guardian") == 0)
            fprintf(f, "  %s",
                    qun_wf(line, sizeof line, fkey, qun_jstr_or(fp, "guardian", who ? who : "?"),
                           qun_jstr_or(fp, "minor", minor)));
        else if (code && qun_w_or(fkey, NULL))
            fprintf(f, "  %s", qun_wf(line, sizeof line, fkey, qun_jstr_or(fp, "org", "?")));
        else if (strcmp(kind, "guardian") == 0 && who)
            fprintf(f, "  %s", qun_wf(line, sizeof line, key, who, minor));
        else if (strcmp(kind, "guardian") == 0)
            fprintf(f, "  %s", qun_wf(line, sizeof line, "approval.kind.guardian_of", minor));
        else
            fprintf(f, "  %s", qun_w_or(key, kind));
        if (json_object_get(a, "state")) fprintf(f, " [%s]", qun_jstr_or(a, "state", "?"));
        const char *decider = qun_jstr_or(a, "decided_by_name", NULL);
        if (decider) fprintf(f, "%s", qun_wf(line, sizeof line, "cli.approval_from", decider));
        const char *id = qun_jstr_or(a, "id", NULL);
        if (id) fprintf(f, "  [%s]", id);
        fputc('\n', f);
    }
}

/* The preview, in a fixed order first and then anything newer servers add. */
static void print_preview(FILE *f, json_t *p) {
    static const char *order[] = {"members", "messages", "files", "payments", "bill_lines"};
    json_t *impact = json_object_get(p, "impact"), *e;
    const char *k;
    char t[32], line[600], mkey[64];
    const char *m = qun_jstr_or(json_object_get(p, "params"), "messages", "?");
    snprintf(mkey, sizeof mkey, "cli.notice.messages.%s", m);
    fprintf(f, "%s\n",
            qun_wf(line, sizeof line, "cli.diss.dissolving", qun_jstr_or(p, "name", ""),
                   qun_jstr_or(p, "group", "?"), qun_w_or(mkey, m)));
    fprintf(f, "%s\n", qun_w("cli.diss.impact"));
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((e = json_object_get(impact, order[i]))) print_impact_line(f, order[i], e);
    json_object_foreach(impact, k, e) {
        bool known = false;
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
            known = known || strcmp(k, order[i]) == 0;
        if (!known) print_impact_line(f, k, e);
    }
    const char *succ = qun_jstr_or(json_object_get(p, "params"), "successor_name", NULL);
    if (succ) fprintf(f, "%s\n", qun_wf(line, sizeof line, "cli.diss.successor", succ));
    print_timing(f, json_object_get(p, "timing"));
    print_approvals(f, "cli.diss.approvals_needed", json_object_get(p, "approvals"));
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(p, "requirements"), i,
                       r) if (strcmp(qun_jstr_or(r, "method", ""), "password") == 0)
        fprintf(f, "%s\n", qun_w("cli.diss.step_up"));
    fprintf(f, "%s\n",
            qun_wf(line, sizeof line, "cli.diss.expires", qun_fmt_time(qun_jint(p, "expires_at"), t)));
}

static void print_status(FILE *f, json_t *s) {
    static const char *const labels[] = {
        "cli.status.messages",  "cli.status.requested", "cli.status.dissolves", "cli.status.successor",
        "cli.status.dissolved", "cli.status.purged",    "cli.status.receipt"};
    size_t w = qun_label_width(labels, sizeof labels / sizeof labels[0], 12);
    char t[32], v[700], left[32];
    json_t *job;
    size_t i;
    const char *gid = qun_jstr_or(s, "group", "?");
    fprintf(f, "%s\n", qun_wf(v, sizeof v, "cli.status.group", gid, qun_jstr_or(s, "state", "?")));
    /* Only what the answer holds: the fallback of fetch_status has the state alone, and
     * times not reached yet are null. */
    if (json_object_get(s, "messages")) {
        const char *m = qun_jstr_or(s, "messages", "?");
        char key[64];
        snprintf(key, sizeof key, "cli.notice.messages.%s", m);
        field(f, w, "cli.status.messages", qun_w_or(key, m));
    }
    if (json_object_get(s, "requested_at"))
        field(f, w, "cli.status.requested",
              qun_wf(
                  v, sizeof v, "cli.status.requested_by", qun_fmt_time(qun_jint(s, "requested_at"), t),
                  qun_jstr_or(s, "requested_by_display_name",
                              qun_jstr_or(s, "requested_by_username", qun_jstr_or(s, "requested_by", "?")))));
    if (json_is_integer(json_object_get(s, "due_at")) &&
        qun_group_state_parse(qun_jstr_or(s, "state", "")) == QUN_GROUP_PENDING) {
        fmt_duration(qun_jint(s, "seconds_left"), left);
        field(f, w, "cli.status.dissolves",
              qun_wf(v, sizeof v, "cli.status.dissolves_at", qun_fmt_time(qun_jint(s, "due_at"), t), left,
                     gid));
    }
    if (qun_group_state_parse(qun_jstr_or(s, "state", "")) == QUN_GROUP_REVIEW) {
        fprintf(f, "  %s\n", qun_wf(v, sizeof v, "cli.status.waiting", gid));
        print_approvals(f, "cli.status.approvals", json_object_get(s, "approvals"));
    }
    const char *ds = qun_jstr_or(s, "dissolution_state", NULL);
    if (ds && strcmp(ds, qun_jstr_or(s, "state", "")) != 0) {
        size_t wd = qun_text_width(qun_w("cli.status.dissolution")) + 1;
        field(f, wd > w ? wd : w, "cli.status.dissolution", ds);
    }
    if (json_is_string(json_object_get(s, "successor_name")))
        field(f, w, "cli.status.successor",
              json_is_string(json_object_get(s, "successor"))
                  ? qun_wf(v, sizeof v, "cli.status.successor_id", qun_jstr_or(s, "successor_name", ""),
                           qun_jstr_or(s, "successor", ""))
                  : qun_wf(v, sizeof v, "cli.status.successor_name", qun_jstr_or(s, "successor_name", "")));
    if (json_is_true(json_object_get(s, "held"))) fprintf(f, "  %s\n", qun_w("cli.status.held"));
    if (json_is_integer(json_object_get(s, "dissolved_at")))
        field(f, w, "cli.status.dissolved", qun_fmt_time(qun_jint(s, "dissolved_at"), t));
    if (json_is_integer(json_object_get(s, "grace_until")) &&
        qun_group_state_parse(qun_jstr_or(s, "state", "")) == QUN_GROUP_DISSOLVED)
        fprintf(f, "  %s\n",
                qun_wf(v, sizeof v, "cli.status.restorable", qun_fmt_time(qun_jint(s, "grace_until"), t)));
    if (json_is_integer(json_object_get(s, "purged_at")))
        field(f, w, "cli.status.purged", qun_fmt_time(qun_jint(s, "purged_at"), t));
    json_t *receipt = json_object_get(s, "receipt");
    if (json_object_size(receipt) > 0) {
        fputs("  ", f);
        col(f, qun_w("cli.status.receipt"), w - 1);
        print_counts(f, receipt);
        fputc('\n', f);
    }
    json_t *jobs = json_object_get(s, "jobs");
    if (json_array_size(jobs) > 0) fprintf(f, "  %s\n", qun_w("cli.status.jobs"));
    json_array_foreach(jobs, i, job) {
        const char *state = qun_jstr_or(job, "state", "?");
        fprintf(f, "    %-15s %-8s", qun_jstr_or(job, "kind", "?"), state);
        if (strcmp(state, "queued") == 0 && qun_jint(job, "due_at") > time(NULL))
            fputs(qun_wf(v, sizeof v, "cli.status.due", qun_fmt_time(qun_jint(job, "due_at"), t)), f);
        fputc(' ', f);
        print_counts(f, json_object_get(job, "progress"));
        fputc('\n', f);
    }
}

/* GET the dissolution status of gid into *out.  When the server answers 2xx with an
 * empty body (qund 0.1.0 does, see docs/cli.md), fall back to the group's own state so
 * the user still learns where the dissolution stands. */
static int fetch_status(qun_cli_t *c, const char *gid, bool quiet, json_t **out) {
    char path[512];
    json_t *g = NULL;
    *out = NULL;
    int rc = qun_pathf(path, sizeof path, "/v1/groups/%s/dissolution", gid);
    if (rc != QUN_EXIT_OK) return rc;
    qun_call_t call = {.method = "GET", .path = path, .quiet = quiet};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    *out = resp.json;
    resp.json = NULL;
    qun_resp_free(&resp);
    if (rc != QUN_EXIT_OK) { /* a problem's JSON is not a status: not for the caller */
        json_decref(*out);
        *out = NULL;
        return rc;
    }
    if (json_is_object(*out)) return rc;
    json_decref(*out);
    *out = NULL;
    if (!quiet) qun_note("cli.status_empty");
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s", gid);
    if (rc != QUN_EXIT_OK) return rc;
    qun_call_t gcall = {.method = "GET", .path = path, .quiet = quiet};
    rc = qun_cli_call(c, &gcall, &resp);
    g = resp.json;
    resp.json = NULL;
    qun_resp_free(&resp);
    if (rc == QUN_EXIT_OK)
        *out = json_pack("{s:s, s:s, s:[]}", "group", qun_jstr_or(g, "id", gid), "state",
                         qun_jstr_or(g, "state", "?"), "jobs");
    json_decref(g);
    return rc;
}

/* Whether the purge is over: its job finished, or (without job details) the group
 * reached a final state.  *progress borrows the job's counters when known. */
static bool purge_over(json_t *s, json_t **progress, const char **state) {
    json_t *job;
    size_t i;
    *progress = NULL;
    json_array_foreach(
        json_object_get(s, "jobs"), i,
        job) if (strcmp(qun_jstr_or(job, "kind", ""), qun_job_kind_name(QUN_JOB_PURGE_GROUP)) == 0) {
        *progress = json_object_get(job, "progress");
        *state = qun_jstr_or(job, "state", "?");
        /* A purge that waits for the grace period (or a hold) is not worth watching. */
        return strcmp(*state, "done") == 0 || strcmp(*state, "failed") == 0 ||
               (strcmp(*state, "queued") == 0 && qun_jint(job, "due_at") > qun_jint(s, "now"));
    }
    *state = qun_jstr_or(s, "state", "?");
    qun_group_state_t st = qun_group_state_parse(*state);
    return st != QUN_GROUP_DISSOLVED && st != QUN_GROUP_PURGING;
}

/* Poll the status until the purge finishes or a minute passes, redrawing its
 * progress on a terminal.  *status is replaced by the latest answer. */
static void follow_purge(qun_cli_t *c, const char *gid, json_t **status) {
    bool tty = isatty(STDERR_FILENO), drew = false;
    for (int i = 0; i < 200; i++) {
        json_t *progress, *next = NULL;
        const char *state;
        if (purge_over(*status, &progress, &state)) break;
        if (tty) {
            char line[200];
            fprintf(stderr, "\r%s ", qun_wf(line, sizeof line, "cli.progress.purging", state));
            print_counts(stderr, progress);
            fputs("   ", stderr);
            fflush(stderr);
            drew = true;
        }
        usleep(300 * 1000);
        if (fetch_status(c, gid, true, &next) == QUN_EXIT_OK && next) {
            json_decref(*status);
            *status = next;
        } else {
            json_decref(next);
        }
    }
    if (drew) fputc('\n', stderr);
}

int qun_cmd_dissolve(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--messages", NULL, true}, {"--confirm-name", NULL, true},
                                     {"--no-wait", NULL, false}, {"--successor", NULL, true},
                                     {"--password", NULL, true}, {"--totp-code", NULL, true},
                                     {"--key", NULL, true},      {0}};
    static const char usage[] =
        "dissolve <group> --messages keep|delete [--successor NAME] [--confirm-name NAME] "
        "[--password P] [--totp-code C] [--key FILE] [--no-wait]";
    qun_args_t a;
    json_t *preview = NULL, *status = NULL, *params = NULL;
    char ppath[512], path[512];
    char *typed = NULL;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    const char *messages = a.val[0];
    if (!messages || (strcmp(messages, "keep") != 0 && strcmp(messages, "delete") != 0))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.messages_choice");
    rc = qun_pathf(ppath, sizeof ppath, "/v1/groups/%s/dissolution/preview", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/dissolution", a.pos[0]);
    /* The token is bound to the parameters, so the preview and the request carry the
     * same ones: messages and, when given, successor_name. */
    params = json_pack("{s:s}", "messages", messages);
    if (a.val[3]) json_object_set_new(params, "successor_name", json_string(a.val[3]));
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", ppath, json_deep_copy(params), &preview);
    if (rc != QUN_EXIT_OK) goto out;
    const char *name = qun_jstr_or(preview, "name", NULL);
    const char *token = qun_jstr_or(preview, "confirmation_token", NULL);
    if (!name || !token) {
        rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.preview_incomplete");
        goto out;
    }
    /* With --json, stdout carries only the final JSON answer, so the preview a person
     * must read before confirming goes to stderr. */
    FILE *f = c->json ? stderr : stdout;
    print_preview(f, preview);
    fflush(f);

    const char *confirm = a.val[1];
    if (!confirm) {
        typed = qun_prompt_line(qun_w("cli.dissolve_prompt"));
        confirm = typed ? typed : "";
    }
    if (strcmp(confirm, name) != 0) {
        rc = qun_failw(QUN_EXIT_FAIL, "CONFIRMATION_MISMATCH", "cli.err.mismatch_dissolve", name);
        goto out;
    }
    bool step_up = a.val[4] != NULL;
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(preview, "requirements"), i, req) step_up =
        step_up || strcmp(qun_jstr_or(req, "method", ""), "password") == 0;
    json_t *body = json_deep_copy(params);
    json_object_set_new(body, "confirmation_token", json_string(token));
    /* The server checks the typed name too: a cli session's policy asks for it. */
    json_object_set_new(body, "typed_name", json_string(confirm));
    qun_proofs_t proofs = {.password = a.val[4],
                           .totp_code = a.val[5],
                           .key_file = a.val[6],
                           .eager_password = step_up,
                           .step_up_field = true};
    rc = qun_send_proved(c, "POST", path, body, &proofs, &status);
    if (rc != QUN_EXIT_OK) goto out;
    if (!json_is_object(status)) {
        json_decref(status);
        rc = fetch_status(c, a.pos[0], false, &status);
        if (rc != QUN_EXIT_OK) goto out;
    }
    if (!a.val[2]) follow_purge(c, a.pos[0], &status);
    if (c->json)
        qun_print_json(status);
    else
        print_status(stdout, status);
out:
    free(typed);
    json_decref(params);
    json_decref(preview);
    json_decref(status);
    return rc;
}

int qun_cmd_status(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "status <group>", &a);
    if (rc == QUN_EXIT_OK) rc = fetch_status(c, a.pos[0], false, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        print_status(stdout, out);
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_cancel(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL;
    char path[512];
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "cancel <group>", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/dissolution", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "DELETE", path, NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else {
        qun_say("cli.diss_cancelled", qun_jstr_or(out, "group", a.pos[0]), qun_jstr_or(out, "state", "?"));
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_restore(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {
        {"--password", NULL, true}, {"--totp-code", NULL, true}, {"--key", NULL, true}, {0}};
    qun_args_t a;
    json_t *out = NULL;
    char path[512];
    int rc = qun_args_parse(argc, argv, opts, 1, 1,
                            "restore <group> [--password P] [--totp-code C] [--key FILE]", &a);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/restore", a.pos[0]);
    /* Server admins restore without a step-up, so the password is asked for only when
     * the server wants it (or sent at once when given on the command line). */
    qun_proofs_t proofs = {.password = a.val[0],
                           .totp_code = a.val[1],
                           .key_file = a.val[2],
                           .eager_password = a.val[0] != NULL};
    if (rc == QUN_EXIT_OK) rc = qun_send_proved(c, "POST", path, json_object(), &proofs, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say("cli.group_restored", qun_jstr_or(out, "id", a.pos[0]), qun_jstr_or(out, "name", ""),
                qun_jstr_or(out, "state", "?"));
    json_decref(out);
    return QUN_EXIT_OK;
}
