/* SPDX-License-Identifier: MIT */
/* qun import: decrypt a group archive locally with qun's age reader (the identity
 * never leaves this machine), into an unlinked temporary file, every chunk
 * authenticated before it is kept; only a wholly verified plaintext is uploaded to
 * POST /v1/imports, where the server checks the manifest digests and the ledger proof
 * and rebuilds a new group.  Progress lines on a terminal for both phases. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "qun/age.h"

int qun_cmd_import(qun_cli_t *c, int argc, char **argv);

typedef struct {
    FILE *f;
    int64_t done, total, shown;
    bool tty;
} src_t;

static int src_read(void *arg, void *buf, size_t len, size_t *got) {
    src_t *s = arg;
    *got = fread(buf, 1, len, s->f);
    s->done += (int64_t)*got;
    /* A line per MiB, and the last one. */
    if (s->tty && *got > 0 && s->total > 0 && (s->done - s->shown >= (1 << 20) || s->done == s->total)) {
        s->shown = s->done;
        char n[3][24], line[160];
        fprintf(stderr, "\r%s ",
                qun_wf(line, sizeof line, "cli.progress.decrypt", qun_fmt_int(s->done, n[0]),
                       qun_fmt_int(s->total, n[1]), qun_fmt_int(s->done * 100 / s->total, n[2])));
    }
    return *got == 0 && ferror(s->f) ? -1 : 0;
}

static int fail_rc(qun_rc rc, const qun_err_t *err) {
    return qun_cli_fail(QUN_EXIT_FAIL, qun_rc_name(rc), "%s",
                        qun_detail_words(qun_rc_name(rc), err->msg[0] ? err->msg : qun_rc_title(rc)));
}

/* Decrypt in (an age file) with the identities of id_path into the temporary file out. */
static int decrypt(const char *in_path, const char *id_path, FILE *out, int64_t *plain) {
    uint8_t(*keys)[32] = sodium_malloc(QUN_AGE_MAX_KEYS * 32);
    if (!keys) return qun_failw(QUN_EXIT_FAIL, "NOMEM", "cli.err.nomem");
    size_t nkeys = 0;
    qun_err_t err = {0};
    int xrc = QUN_EXIT_OK;
    FILE *idf = fopen(id_path, "r");
    if (!idf) {
        xrc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.open", id_path, qun_errno_words(errno));
    } else {
        qun_rc rc = qun_age_identities_load(idf, keys, QUN_AGE_MAX_KEYS, &nkeys, &err);
        fclose(idf);
        if (rc != QUN_OK) xrc = fail_rc(rc, &err);
    }
    src_t s = {.tty = isatty(fileno(stderr))};
    struct stat st;
    if (xrc == QUN_EXIT_OK && !(s.f = fopen(in_path, "rb")))
        xrc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.open", in_path, qun_errno_words(errno));
    if (xrc == QUN_EXIT_OK && fstat(fileno(s.f), &st) == 0) s.total = st.st_size;
    qun_age_dec_t *d = NULL;
    if (xrc == QUN_EXIT_OK) {
        qun_rc rc = qun_age_dec_new((const uint8_t(*)[32])keys, nkeys, src_read, &s, &d, &err);
        static unsigned char buf[65536];
        size_t got = 1;
        while (rc == QUN_OK && got > 0) {
            rc = qun_age_dec_read(d, buf, sizeof buf, &got, &err);
            if (rc == QUN_OK && got && fwrite(buf, 1, got, out) != got)
                rc = qun_fail(&err, QUN_AGE_IO, "cannot write the decrypted archive: %s", strerror(errno));
            *plain += (int64_t)got;
        }
        if (s.tty) fputc('\n', stderr);
        if (rc == QUN_OK && fflush(out) != 0)
            rc = qun_fail(&err, QUN_AGE_IO, "cannot write the decrypted archive");
        if (rc != QUN_OK) xrc = fail_rc(rc, &err);
    }
    qun_age_dec_free(d);
    if (s.f) fclose(s.f);
    sodium_free(keys);
    return xrc;
}

int qun_cmd_import(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--identity", "-i", true}, {0}};
    const char *usage = "import <archive.age> --identity IDENTITY_FILE";
    qun_args_t a;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (!a.val[0] || !*a.val[0]) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", usage);
    /* The plaintext goes to an unlinked file: nothing of it is left behind. */
    FILE *plain = tmpfile();
    if (!plain) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.tmpfile", qun_errno_words(errno));
    int64_t size = 0;
    rc = decrypt(a.pos[0], a.val[0], plain, &size);
    if (rc == QUN_EXIT_OK && fseek(plain, 0, SEEK_SET) != 0)
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.rewind", qun_errno_words(errno));
    json_t *out = NULL;
    if (rc == QUN_EXIT_OK) {
        qun_resp_t resp;
        memset(&resp, 0, sizeof resp);
        qun_call_t call = {.method = "POST",
                           .path = "/v1/imports",
                           .upload = plain,
                           .upload_size = size,
                           .content_type = "application/zstd",
                           .progress = "upload"};
        rc = qun_cli_call(c, &call, &resp);
        out = resp.json;
        resp.json = NULL;
        qun_resp_free(&resp);
    }
    fclose(plain);
    if (rc != QUN_EXIT_OK) {
        json_decref(out);
        return rc;
    }
    if (c->json) {
        qun_print_json(out);
    } else {
        json_t *n = json_object_get(out, "counts");
        char f[6][24];
        qun_say("cli.imported", qun_jstr_or(out, "group", "?"), qun_jstr_or(out, "name", ""),
                qun_fmt_int(qun_jint(n, "members"), f[0]), qun_fmt_int(qun_jint(n, "messages"), f[1]),
                qun_fmt_int(qun_jint(n, "files"), f[2]), qun_fmt_int(qun_jint(n, "payments"), f[3]),
                qun_fmt_int(qun_jint(json_object_get(out, "source"), "ledger_index"), f[4]),
                qun_fmt_int(qun_jint(out, "ledger_index"), f[5]));
        /* Who of the archive was not added, and why (no account here, or no longer a
         * member of the archived group). */
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(out, "skipped"), i, e)
            qun_say(strcmp(qun_jstr_or(e, "reason", ""), "no_account") == 0 ? "cli.import_no_account"
                                                                            : "cli.import_left",
                    qun_jstr_or(e, "openid", "?"));
    }
    json_decref(out);
    return QUN_EXIT_OK;
}
