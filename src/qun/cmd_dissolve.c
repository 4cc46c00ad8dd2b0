/* SPDX-License-Identifier: MIT */
/* Dissolution commands.  `dissolve` shows the server's impact preview, makes the user
 * type the group's name, and only on an exact match sends the request with the
 * preview's confirmation token; then it follows the purge job.  `status` shows a
 * dissolution and its jobs. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

/* Print a JSON object of counters or words as "k=v k=v". */
static void print_pairs(FILE *f, json_t *o) {
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(o, k, v) {
        fprintf(f, "%s%s=", first ? "" : " ", k);
        if (json_is_string(v)) fputs(json_string_value(v), f);
        else if (json_is_integer(v)) fprintf(f, "%lld", (long long)json_integer_value(v));
        else fputs(json_is_true(v) ? "true" : json_is_false(v) ? "false" : "?", f);
        first = false;
    }
    if (first) fputs("-", f);
}

static void print_impact_line(FILE *f, const char *key, json_t *e) {
    char label[40];
    snprintf(label, sizeof label, "%s:", key);
    for (char *p = label; *p; p++)
        if (*p == '_') *p = ' ';
    fprintf(f, "  %-12s %6lld", label, (long long)qun_jint(e, "count"));
    if (json_is_integer(json_object_get(e, "bytes"))) fprintf(f, " (%lld bytes)", (long long)qun_jint(e, "bytes"));
    const char *rule = qun_jstr_or(e, "rule", NULL);
    if (rule) fprintf(f, "  %s", rule);
    int64_t keep = qun_jint(e, "retention_seconds");
    if (keep > 0) fprintf(f, " (retention %lld days)", (long long)(keep / 86400));
    fputc('\n', f);
}

/* The preview, in a fixed order first and then anything newer servers add. */
static void print_preview(FILE *f, json_t *p) {
    static const char *order[] = {"members", "messages", "files", "payments", "bill_lines"};
    json_t *impact = json_object_get(p, "impact"), *e;
    const char *k;
    char t[32];
    fprintf(f, "Dissolving group \"%s\" (%s), messages: %s\n", qun_jstr_or(p, "name", ""),
            qun_jstr_or(p, "group", "?"), qun_jstr_or(json_object_get(p, "params"), "messages", "?"));
    fprintf(f, "Impact:\n");
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((e = json_object_get(impact, order[i]))) print_impact_line(f, order[i], e);
    json_object_foreach(impact, k, e) {
        bool known = false;
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) known = known || strcmp(k, order[i]) == 0;
        if (!known) print_impact_line(f, k, e);
    }
    fprintf(f, "The confirmation expires at %s.\n", qun_fmt_time(qun_jint(p, "expires_at"), t));
}

static void print_status(FILE *f, json_t *s) {
    char t[32];
    json_t *job;
    size_t i;
    fprintf(f, "group %s: %s\n", qun_jstr_or(s, "group", "?"), qun_jstr_or(s, "state", "?"));
    /* Only what the answer holds: the fallback of fetch_status has the state alone. */
    if (json_object_get(s, "messages")) fprintf(f, "  messages:   %s\n", qun_jstr_or(s, "messages", "?"));
    if (json_object_get(s, "requested_at"))
        fprintf(f, "  requested:  %s by %s\n", qun_fmt_time(qun_jint(s, "requested_at"), t),
                qun_jstr_or(s, "requested_by", "?"));
    if (json_object_get(s, "due_at") && strcmp(qun_jstr_or(s, "state", ""), "pending") == 0) {
        int64_t left = qun_jint(s, "seconds_left");
        fprintf(f, "  dissolves:  %s (in %lldh %02lldm); cancel with: qun cancel %s\n",
                qun_fmt_time(qun_jint(s, "due_at"), t), (long long)(left / 3600), (long long)(left % 3600 / 60),
                qun_jstr_or(s, "group", "?"));
    }
    if (strcmp(qun_jstr_or(s, "state", ""), "review") == 0) fprintf(f, "  waiting for approvals\n");
    if (json_object_get(s, "dissolved_at")) fprintf(f, "  dissolved:  %s\n", qun_fmt_time(qun_jint(s, "dissolved_at"), t));
    if (json_object_get(s, "grace_until") && strcmp(qun_jstr_or(s, "state", ""), "dissolved") == 0)
        fprintf(f, "  restorable until %s\n", qun_fmt_time(qun_jint(s, "grace_until"), t));
    if (json_object_get(s, "purged_at")) fprintf(f, "  purged:     %s\n", qun_fmt_time(qun_jint(s, "purged_at"), t));
    json_t *receipt = json_object_get(s, "receipt");
    if (json_object_size(receipt) > 0) {
        fprintf(f, "  receipt:    ");
        print_pairs(f, receipt);
        fputc('\n', f);
    }
    json_t *jobs = json_object_get(s, "jobs");
    if (json_array_size(jobs) > 0) fprintf(f, "  jobs:\n");
    json_array_foreach(jobs, i, job) {
        const char *state = qun_jstr_or(job, "state", "?");
        fprintf(f, "    %-15s %-8s", qun_jstr_or(job, "kind", "?"), state);
        if (strcmp(state, "queued") == 0 && qun_jint(job, "due_at") > time(NULL))
            fprintf(f, " due %s", qun_fmt_time(qun_jint(job, "due_at"), t));
        fputc(' ', f);
        print_pairs(f, json_object_get(job, "progress"));
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
    if (rc != QUN_EXIT_OK || json_is_object(*out)) return rc;
    json_decref(*out);
    *out = NULL;
    if (!quiet) fprintf(stderr, "qun: warning: the server's dissolution answer was empty; showing the group's state\n");
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
    json_array_foreach(json_object_get(s, "jobs"), i, job)
        if (strcmp(qun_jstr_or(job, "kind", ""), "purge_group") == 0) {
            *progress = json_object_get(job, "progress");
            *state = qun_jstr_or(job, "state", "?");
            /* A purge that waits for the grace period (or a hold) is not worth watching. */
            return strcmp(*state, "done") == 0 || strcmp(*state, "failed") == 0 ||
                   (strcmp(*state, "queued") == 0 && qun_jint(job, "due_at") > qun_jint(s, "now"));
        }
    *state = qun_jstr_or(s, "state", "?");
    return strcmp(*state, "dissolved") != 0 && strcmp(*state, "purging") != 0;
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
            fprintf(stderr, "\rpurging: %s ", state);
            print_pairs(stderr, progress);
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
    static const qun_opt_t opts[] = {
        {"--messages", NULL, true}, {"--confirm-name", NULL, true}, {"--no-wait", NULL, false}, {0}};
    static const char usage[] = "dissolve <gid> --messages keep|delete [--confirm-name NAME] [--no-wait]";
    qun_args_t a;
    json_t *preview = NULL, *status = NULL;
    char ppath[512], path[512];
    char *typed = NULL;
    size_t cap = 0;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    const char *messages = a.val[0];
    if (!messages || (strcmp(messages, "keep") != 0 && strcmp(messages, "delete") != 0))
        return qun_cli_fail(QUN_EXIT_USAGE, "USAGE", "say what happens to the messages: --messages keep|delete");
    rc = qun_pathf(ppath, sizeof ppath, "/v1/groups/%s/dissolution/preview", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/groups/%s/dissolution", a.pos[0]);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", ppath, json_pack("{s:s}", "messages", messages), &preview);
    if (rc != QUN_EXIT_OK) goto out;
    const char *name = qun_jstr_or(preview, "name", NULL);
    const char *token = qun_jstr_or(preview, "confirmation_token", NULL);
    if (!name || !token) {
        rc = qun_cli_fail(QUN_EXIT_FAIL, "BAD_ANSWER", "the preview has no group name or confirmation token");
        goto out;
    }
    /* With --json, stdout carries only the final JSON answer, so the preview a person
     * must read before confirming goes to stderr. */
    FILE *f = c->json ? stderr : stdout;
    print_preview(f, preview);
    fflush(f);

    const char *confirm = a.val[1];
    if (!confirm) {
        fprintf(stderr, "This cannot be undone. Type the group's name to confirm: ");
        fflush(stderr);
        ssize_t n = getline(&typed, &cap, stdin);
        /* Piped answers are not echoed; end the prompt's line so what follows is readable. */
        if (n < 0 || !isatty(STDIN_FILENO)) fputc('\n', stderr);
        if (n < 0) n = 0;
        if (typed) {
            if (n > 0 && typed[n - 1] == '\n') typed[--n] = '\0';
            if (n > 0 && typed[n - 1] == '\r') typed[--n] = '\0';
        }
        confirm = typed ? typed : "";
    }
    if (strcmp(confirm, name) != 0) {
        rc = qun_cli_fail(QUN_EXIT_FAIL, "CONFIRMATION_MISMATCH",
                          "the name typed does not match \"%s\"; nothing was dissolved", name);
        goto out;
    }
    rc = qun_cli_json(c, "POST", path,
                      json_pack("{s:s, s:s}", "confirmation_token", token, "messages", messages), &status);
    if (rc != QUN_EXIT_OK) goto out;
    if (!json_is_object(status)) {
        json_decref(status);
        rc = fetch_status(c, a.pos[0], false, &status);
        if (rc != QUN_EXIT_OK) goto out;
    }
    if (!a.val[2]) follow_purge(c, a.pos[0], &status);
    if (c->json) qun_print_json(status);
    else print_status(stdout, status);
out:
    free(typed);
    json_decref(preview);
    json_decref(status);
    return rc;
}

int qun_cmd_status(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out;
    int rc = qun_args_parse(argc, argv, NULL, 1, 1, "status <gid>", &a);
    if (rc == QUN_EXIT_OK) rc = fetch_status(c, a.pos[0], false, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) qun_print_json(out);
    else print_status(stdout, out);
    json_decref(out);
    return QUN_EXIT_OK;
}
