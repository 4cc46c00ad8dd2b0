/* SPDX-License-Identifier: MIT */
/* qun age: local age v1 key generation, encryption and decryption with qun's own
 * implementation (src/archive/age.c), so exports can be opened and tested without
 * the server.  Files written are compatible with age-keygen and age. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "client.h"
#include "qun/age.h"

int qun_cmd_age(qun_cli_t *c, int argc, char **argv);

static const char USAGE[] = "age keygen [-o FILE] | age encrypt -r RECIPIENT... [-o OUT] [IN] | "
                            "age decrypt -i IDENTITY_FILE [-o OUT] [IN]";

static int fail_rc(qun_rc rc, const qun_err_t *err) {
    return qun_cli_fail(QUN_EXIT_FAIL, qun_rc_name(rc), "%s",
                        qun_detail_words(qun_rc_name(rc), err->msg[0] ? err->msg : qun_rc_title(rc)));
}

static int keygen(int argc, char **argv) {
    char id[QUN_AGE_IDENTITY_LEN + 1], rcpt[QUN_AGE_RECIPIENT_LEN + 1], when[64];
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc)
            out = argv[++i];
        else
            return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", USAGE);
    }
    FILE *f = stdout;
    if (out) {
        /* The identity is a secret: the file is created private. */
        umask(077);
        f = fopen(out, "wx");
        if (!f) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", out, qun_errno_words(errno));
    }
    qun_age_keygen(id, rcpt);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "# created: %s\n# public key: %s\n%s\n", when, rcpt, id);
    sodium_memzero(id, sizeof id);
    if (out) {
        if (fclose(f) != 0) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.write_short", out);
        char line[200];
        fprintf(stderr, "%s\n", qun_wf(line, sizeof line, "cli.age_public_key", rcpt));
    }
    return QUN_EXIT_OK;
}

/* Open the output (stdout when NULL) and input (stdin when NULL). */
static int open_io(const char *in_path, const char *out_path, FILE **in, FILE **out) {
    *in = stdin;
    *out = stdout;
    if (in_path && !(*in = fopen(in_path, "rb")))
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.open", in_path, qun_errno_words(errno));
    if (out_path && !(*out = fopen(out_path, "wb"))) {
        if (in_path) fclose(*in);
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", out_path, qun_errno_words(errno));
    }
    return QUN_EXIT_OK;
}

static void close_io(const char *in_path, const char *out_path, FILE *in, FILE *out, bool *ok) {
    if (in_path) fclose(in);
    if (out_path && fclose(out) != 0) *ok = false;
}

static int crypt(int argc, char **argv, bool encrypt) {
    uint8_t(*keys)[32] = sodium_malloc(QUN_AGE_MAX_KEYS * 32);
    size_t nkeys = 0;
    const char *in_path = NULL, *out_path = NULL, *id_path = NULL;
    qun_err_t err = {0};
    qun_rc rc = QUN_OK;
    int xrc = QUN_EXIT_OK;
    char max[24];
    if (!keys) return qun_failw(QUN_EXIT_FAIL, "NOMEM", "cli.err.nomem");
    for (int i = 0; i < argc && xrc == QUN_EXIT_OK; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (encrypt && (strcmp(a, "-r") == 0 || strcmp(a, "--recipient") == 0) && has) {
            if (nkeys == QUN_AGE_MAX_KEYS)
                xrc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.age_max_recipients",
                                qun_fmt_int(QUN_AGE_MAX_KEYS, max));
            else if ((rc = qun_age_recipient_parse(argv[++i], keys[nkeys++], &err)) != QUN_OK)
                xrc = fail_rc(rc, &err);
        } else if (!encrypt && (strcmp(a, "-i") == 0 || strcmp(a, "--identity") == 0) && has) {
            id_path = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has) {
            out_path = argv[++i];
        } else if (a[0] != '-' && !in_path) {
            in_path = a;
        } else {
            xrc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", USAGE);
        }
    }
    if (xrc == QUN_EXIT_OK && encrypt && nkeys == 0)
        xrc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.age_no_recipient");
    if (xrc == QUN_EXIT_OK && !encrypt) {
        FILE *idf = id_path ? fopen(id_path, "r") : NULL;
        if (!id_path)
            xrc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.age_no_identity");
        else if (!idf)
            xrc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.open", id_path, qun_errno_words(errno));
        else {
            rc = qun_age_identities_load(idf, keys, QUN_AGE_MAX_KEYS, &nkeys, &err);
            fclose(idf);
            if (rc != QUN_OK) xrc = fail_rc(rc, &err);
        }
    }
    FILE *in = NULL, *out = NULL;
    if (xrc == QUN_EXIT_OK) xrc = open_io(in_path, out_path, &in, &out);
    if (xrc == QUN_EXIT_OK) {
        bool ok = true;
        rc = encrypt ? qun_age_encrypt_file(in, out, (const uint8_t(*)[32])keys, nkeys, &err)
                     : qun_age_decrypt_file(in, out, (const uint8_t(*)[32])keys, nkeys, &err);
        close_io(in_path, out_path, in, out, &ok);
        if (rc == QUN_OK && !ok) rc = qun_fail(&err, QUN_AGE_IO, "cannot write the output");
        if (rc != QUN_OK) xrc = fail_rc(rc, &err);
    }
    sodium_free(keys);
    return xrc;
}

int qun_cmd_age(qun_cli_t *c, int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "keygen") == 0) return keygen(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "encrypt") == 0) return crypt(argc - 1, argv + 1, true);
    if (argc >= 1 && strcmp(argv[0], "decrypt") == 0) return crypt(argc - 1, argv + 1, false);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", USAGE);
}
