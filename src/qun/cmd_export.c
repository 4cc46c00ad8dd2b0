/* SPDX-License-Identifier: MIT */
/* qun export: ask the server for an age-encrypted archive of a group, follow the
 * export job with a progress line, then download the .age file into a temporary file
 * next to the target (a progress bar on stderr while the job runs), check its SHA-256 against the digest the
 * server ledgered, and only then give it its name.  With --passphrase the archive is
 * protected by a passphrase (asked twice on the terminal, or QUN_PASSPHRASE) that
 * `age -d` asks for, instead of age recipients. */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

int qun_cmd_export(qun_cli_t *c, int argc, char **argv);

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A progress bar for export x on stderr: done / total of the messages and file bytes
 * the job counted in its snapshot (the totals appear once the job has counted). */
static void draw(const char *xid, json_t *x) {
    json_t *p = json_object_get(x, "progress"), *t = json_object_get(p, "total");
    double total = (double)qun_jint(t, "messages") + (double)qun_jint(t, "file_bytes") / 1024.0;
    double done = (double)qun_jint(p, "messages") + (double)qun_jint(p, "file_bytes") / 1024.0;
    double f = total > 0 ? done / total : 0;
    if (strcmp(qun_jstr_or(x, "state", "running"), "done") == 0) f = 1;
    if (f > 1) f = 1;
    char bar[31];
    int fill = (int)(f * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    char pct[8], n[4][24], mib[32], line[300];
    snprintf(pct, sizeof pct, "%3d", (int)(f * 100));
    snprintf(mib, sizeof mib, "%.1f", (double)qun_jint(p, "bytes") / 1048576.0);
    fprintf(stderr, "\r%s ",
            qun_wf(line, sizeof line, "cli.progress.export", xid, bar, pct,
                   qun_fmt_int(qun_jint(p, "messages"), n[0]), qun_fmt_int(qun_jint(t, "messages"), n[1]),
                   qun_fmt_int(qun_jint(p, "files"), n[2]), qun_fmt_int(qun_jint(t, "files"), n[3]), mib));
}

/* Follow export xid until it is no longer running, drawing the bar when stderr is a
 * terminal or bar is set (--progress); *out is its last state (owned). */
static int follow(qun_cli_t *c, const char *xid, bool bar, json_t **out) {
    char path[256];
    int rc = qun_pathf(path, sizeof path, "/v1/exports/%s", xid);
    bool tty = bar || isatty(fileno(stderr));
    for (;;) {
        json_t *x = NULL;
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &x);
        if (rc != QUN_EXIT_OK) return rc;
        if (tty) draw(xid, x);
        if (strcmp(qun_jstr_or(x, "state", "running"), "running") != 0) {
            if (tty) fputc('\n', stderr);
            *out = x;
            return QUN_EXIT_OK;
        }
        json_decref(x);
        nap_ms(250);
    }
}

int qun_cmd_export(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--to", "-r", true},          {"--output", "-o", true},
                                     {"--self", NULL, false},       {"--progress", NULL, false},
                                     {"--passphrase", NULL, false}, {0}};
    const char *usage =
        "export <group> (--to RECIPIENT[,RECIPIENT...] | --passphrase) -o FILE [--self] [--progress]";
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    bool pass = a.val[4] != NULL, to = a.val[0] && *a.val[0];
    if (pass == to || !a.val[1] || !*a.val[1])
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", usage);
    json_t *body = json_pack("{s:s}", "scope", a.val[2] ? "self" : "group");
    if (pass) {
        /* The transcript in this terminal's language and time zone. */
        char secret[1100];
        rc = qun_read_passphrase(secret, sizeof secret);
        if (rc != QUN_EXIT_OK) {
            json_decref(body);
            return rc;
        }
        json_object_set_new(body, "passphrase", json_string(secret));
        sodium_memzero(secret, sizeof secret);
        json_object_set_new(body, "lang", json_string(qun_lang_zh() ? "zh-CN" : "en"));
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm)) json_object_set_new(body, "tz_offset", json_integer(tm.tm_gmtoff / 60));
    } else {
        json_t *recipients = json_array();
        char *list = strdup(a.val[0]), *save = NULL;
        for (char *r = strtok_r(list, ",", &save); r; r = strtok_r(NULL, ",", &save))
            json_array_append_new(recipients, json_string(r));
        free(list);
        json_object_set_new(body, "recipients", recipients);
    }
    char path[512], tmp[1100], dir[1024], got[65];
    rc = qun_pathf(path, sizeof path, "/v1/groups/%s/exports", a.pos[0]);
    json_t *x = NULL, *done = NULL;
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "POST", path, body, &x);
    else
        json_decref(body);
    if (rc != QUN_EXIT_OK) goto out;
    char xid[64];
    snprintf(xid, sizeof xid, "%s", qun_jstr_or(x, "id", ""));
    rc = follow(c, xid, a.val[3] != NULL, &done);
    if (rc != QUN_EXIT_OK) goto out;
    if (strcmp(qun_jstr_or(done, "state", ""), "done") != 0) {
        /* The job's error is "CODE: detail": the code's words in Chinese. */
        const char *why = qun_jstr_or(done, "error", "?");
        char code[64];
        snprintf(code, sizeof code, "%.*s", (int)strcspn(why, ":"), why);
        rc = qun_failw(QUN_EXIT_FAIL, "EXPORT_FAILED", "cli.err.export_failed", xid,
                       qun_detail_words(code, why));
        goto out;
    }
    /* Download next to the target and verify before naming it. */
    const char *output = a.val[1];
    snprintf(dir, sizeof dir, "%s", output);
    snprintf(tmp, sizeof tmp, "%s/.qun-export-XXXXXX", dirname(dir));
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create_next_to", output, qun_errno_words(errno));
        goto out;
    }
    FILE *sink = fdopen(fd, "wb");
    if (!sink) {
        close(fd);
        unlink(tmp);
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.write", tmp, qun_errno_words(errno));
        goto out;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    rc = qun_pathf(path, sizeof path, "/v1/exports/%s/download", xid);
    qun_resp_t resp;
    memset(&resp, 0, sizeof resp);
    if (rc == QUN_EXIT_OK) {
        qun_call_t call = {
            .method = "GET", .path = path, .sink = sink, .sink_hash = &st, .progress = "download"};
        rc = qun_cli_call(c, &call, &resp);
    }
    int64_t bytes = resp.sink_bytes;
    qun_resp_free(&resp);
    bool written = fflush(sink) == 0 && fsync(fileno(sink)) == 0;
    fclose(sink);
    unsigned char sum[32];
    crypto_hash_sha256_final(&st, sum);
    sodium_bin2hex(got, sizeof got, sum, sizeof sum);
    const char *want = qun_jstr_or(done, "digest", "");
    if (rc == QUN_EXIT_OK && !written)
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.write", tmp, qun_errno_words(errno));
    if (rc == QUN_EXIT_OK && strcmp(got, want) != 0)
        rc = qun_failw(QUN_EXIT_FAIL, "DIGEST_MISMATCH", "cli.err.archive_digest", got, want);
    if (rc == QUN_EXIT_OK && rename(tmp, output) != 0)
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", output, qun_errno_words(errno));
    if (rc != QUN_EXIT_OK) {
        unlink(tmp);
        goto out;
    }
    if (c->json) {
        json_object_set_new(done, "path", json_string(output));
        qun_print_json(done);
    } else {
        char n1[24], n2[24];
        qun_say("cli.export_saved", output, qun_fmt_int(bytes, n1), got,
                qun_fmt_int(qun_jint(done, "ledger_index"), n2));
        if (pass) qun_say("cli.export_open", output);
    }
out:
    json_decref(x);
    json_decref(done);
    return rc;
}
