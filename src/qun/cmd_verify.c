/* SPDX-License-Identifier: MIT */
/* Verification commands (docs/verification.md): a device key for this device
 * (`device key register`), approving a challenge with it (`approve`, how a second
 * device of the same user signs what another session's QR code shows), TOTP
 * enrollment (`totp enrol`, `totp confirm`), the passkeys registered in the console
 * (`passkeys list|remove`), reading a risk evaluation back
 * (`risk explain`), and for server admins the manual risk review queue (`review`) and
 * the brute-force locks (`locks list|clear`). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qrencode.h>

#include "client.h"

/* The byte string a challenge signature covers (docs/verification.md); the server's
 * copy is QUN_CHALLENGE_DOMAIN in include/qun/verify.h. */
#define CHALLENGE_DOMAIN "qun-challenge:v1"

/* ---- device keys ---- */

/* A device key file: JSON {format, device_id, public_key, secret_key}, keys in standard
 * base64 (the secret key is libsodium's 64 bytes: seed then public key), mode 0600. */
typedef struct {
    char device_id[80];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
} devkey_t;

static bool b64_decode(const char *s, unsigned char *out, size_t want) {
    size_t n = 0;
    return s &&
           sodium_base642bin(out, want, s, strlen(s), NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
           n == want;
}

static void b64_encode(char *out, size_t size, const unsigned char *in, size_t n) {
    sodium_bin2base64(out, size, in, n, sodium_base64_VARIANT_ORIGINAL);
}

/* Load path into k.  *missing tells that the file does not exist (no error printed). */
static int key_load(const char *path, devkey_t *k, bool *missing) {
    json_error_t je;
    *missing = false;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        *missing = true;
        return QUN_EXIT_FAIL;
    }
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return qun_failw(QUN_EXIT_FAIL, "KEY_FILE", "cli.err.key_file_read", path,
                         qun_lang_zh() ? qun_w("cli.json_invalid") : je.text);
    const char *dev = qun_jstr_or(j, "device_id", NULL);
    bool ok = dev && strlen(dev) < sizeof k->device_id &&
              b64_decode(qun_jstr_or(j, "public_key", NULL), k->pk, sizeof k->pk) &&
              b64_decode(qun_jstr_or(j, "secret_key", NULL), k->sk, sizeof k->sk) &&
              memcmp(k->sk + 32, k->pk, sizeof k->pk) == 0;
    if (ok) snprintf(k->device_id, sizeof k->device_id, "%s", dev);
    json_decref(j);
    if (!ok) return qun_failw(QUN_EXIT_FAIL, "KEY_FILE", "cli.err.not_key_file", path);
    return QUN_EXIT_OK;
}

/* Create path (it must not exist) with mode 0600 and write k into it, fsynced. */
static int key_save(const char *path, const devkey_t *k) {
    char pk[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    char sk[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
    b64_encode(pk, sizeof pk, k->pk, sizeof k->pk);
    b64_encode(sk, sizeof sk, k->sk, sizeof k->sk);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "format", "qun-device-key-v1", "device_id", k->device_id,
                          "public_key", pk, "secret_key", sk);
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    sodium_memzero(sk, sizeof sk);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && text && fchmod(fd, 0600) == 0 &&
              write(fd, text, strlen(text)) == (ssize_t)strlen(text) && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    int saved = errno;
    if (fd >= 0 && close(fd) != 0) ok = false;
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    if (!ok) {
        if (fd >= 0) unlink(path);
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", path, qun_errno_words(saved));
    }
    return QUN_EXIT_OK;
}

/* The device id of the session behind the token. */
static int current_device(qun_cli_t *c, char *out, size_t size) {
    json_t *devs = NULL, *d;
    size_t i;
    int rc = qun_cli_json(c, "GET", "/v1/me/devices", NULL, &devs);
    if (rc != QUN_EXIT_OK) return rc;
    out[0] = '\0';
    json_array_foreach(json_object_get(devs, "items"), i, d) if (json_is_true(json_object_get(d, "current")))
        snprintf(out, size, "%s", qun_jstr_or(d, "device_id", ""));
    json_decref(devs);
    return out[0] ? QUN_EXIT_OK : qun_failw(QUN_EXIT_FAIL, "DEVICE_NOT_FOUND", "cli.err.no_current_device");
}

/* The key is refused until a device of the account that has a key vouches for it:
 * ask for a qr challenge bound to the key (problem's params_digest), show it and say how
 * to finish.  stdout gets the code and the link, or with --json {challenge_id, uri}. */
static int ask_vouching(qun_cli_t *c, json_t *problem, const char *path) {
    json_t *ch = NULL;
    int rc = qun_cli_json(c, "POST", "/v1/challenges",
                          json_pack("{s:s, s:s, s:s}", "method", "qr", "action", "register_device_key",
                                    "params_digest", qun_jstr_or(problem, "params_digest", "")),
                          &ch);
    if (rc != QUN_EXIT_OK) return rc;
    char id[96], uri[600];
    snprintf(id, sizeof id, "%s", qun_jstr_or(ch, "id", "?"));
    if (json_is_string(json_object_get(ch, "approve_url"))) /* what the QR code shows: the approval page */
        snprintf(uri, sizeof uri, "%s", qun_jstr_or(ch, "approve_url", ""));
    else
        snprintf(uri, sizeof uri, "qun://challenge/%s?n=%s", id, qun_jstr_or(ch, "nonce", ""));
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "challenge_id", id, "uri", uri, "key_file", path);
        qun_print_json(o);
        json_decref(o);
    } else {
        char key[1100] = "";
        if (path[0]) snprintf(key, sizeof key, " --key %s", path);
        qun_say("cli.device_key_qr", uri);
        qun_print_qr(uri);
        printf("\n%s\n\n", uri);
        qun_say("cli.device_key_then", id, key);
    }
    json_decref(ch);
    return qun_failw(QUN_EXIT_FAIL, "QR_REQUIRED", "cli.err.key_waits", id);
}

/* device key register [--key FILE] [--challenge ID]: make (or reuse) this device's key
 * and register it; when another device of the account holds a key, that device
 * approves this one's first (ask_vouching), and --challenge sends the approval. */
static int device_key_register(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--key", NULL, true}, {"--challenge", NULL, true}, {0}};
    const char *usage = "device key register [--key FILE] [--challenge ID]";
    qun_args_t a;
    devkey_t k;
    char path[1100], dev[80];
    bool missing;
    int rc = qun_args_parse(argc, argv, opts, 0, 0, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (a.val[0])
        snprintf(path, sizeof path, "%s", a.val[0]);
    else
        snprintf(path, sizeof path, "%s/device_key", c->dir);
    if (!a.val[0] && mkdir(c->dir, 0700) != 0 && errno != EEXIST)
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", c->dir, qun_errno_words(errno));
    rc = current_device(c, dev, sizeof dev);
    if (rc != QUN_EXIT_OK) return rc;
    rc = key_load(path, &k, &missing);
    if (rc == QUN_EXIT_OK && strcmp(k.device_id, dev) != 0)
        rc = qun_failw(QUN_EXIT_FAIL, "KEY_FILE", "cli.err.key_other_device", path, k.device_id, dev);
    if (rc != QUN_EXIT_OK && !missing) return rc;
    if (missing) { /* saved before it is registered: a key the server knows is never lost */
        snprintf(k.device_id, sizeof k.device_id, "%s", dev);
        crypto_sign_keypair(k.pk, k.sk);
        rc = key_save(path, &k);
        if (rc != QUN_EXIT_OK) return rc;
    }
    char pk[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    b64_encode(pk, sizeof pk, k.pk, sizeof k.pk);
    sodium_memzero(k.sk, sizeof k.sk);
    json_t *body = json_pack("{s:s, s:s?}", "public_key", pk, "challenge_id", a.val[1]);
    qun_call_t call = {.method = "POST", .path = "/v1/me/devices/key", .body = body, .quiet = true};
    qun_resp_t resp;
    rc = qun_cli_call(c, &call, &resp);
    json_decref(body);
    if (rc != QUN_EXIT_OK) {
        bool vouch =
            !a.val[1] && resp.status == 428 && strcmp(qun_jstr_or(resp.json, "code", ""), "QR_REQUIRED") == 0;
        /* A transport failure was already reported; an HTTP refusal is reported here. */
        if (vouch)
            rc = ask_vouching(c, resp.json, a.val[0] ? a.val[0] : "");
        else if (resp.status)
            rc = qun_cli_report(&resp);
        qun_resp_free(&resp);
        return rc;
    }
    json_t *out = resp.json;
    resp.json = NULL;
    qun_resp_free(&resp);
    if (c->json) {
        json_object_set_new(out, "key_file", json_string(path));
        qun_print_json(out);
    } else {
        qun_say(missing ? "cli.device_key_new" : "cli.device_key_again", qun_jstr_or(out, "device_id", dev),
                pk, path);
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_device(qun_cli_t *c, int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[0], "key") == 0 && strcmp(argv[1], "register") == 0)
        return device_key_register(c, argc - 2, argv + 2);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage",
                     "device key register [--key FILE] [--challenge ID]");
}

/* ---- approve ---- */

/* The value of query parameter name in the query q ("a=1&b=2"), into out; false when it
 * is absent, empty or too long. */
static bool query_param(const char *q, const char *name, char *out, size_t size) {
    size_t n = strlen(name);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) != 0 || p[n] != '=') continue;
        const char *v = p + n + 1, *end = strchr(v, '&');
        size_t len = end ? (size_t)(end - v) : strlen(v);
        if (len == 0 || len >= size) return false;
        snprintf(out, size, "%.*s", (int)len, v);
        return true;
    }
    return false;
}

/* Split what a challenge's QR code shows into id and nonce ("" when the argument has
 * none): the console's approval page "http(s)://HOST/app/approve?c=<id>&n=<nonce>"
 * (its approve_url), the older "qun://challenge/<id>?n=<nonce>", or a bare id. */
static bool parse_challenge_ref(const char *arg, char *id, size_t id_size, char *nonce, size_t nonce_size) {
    static const char prefix[] = "qun://challenge/";
    nonce[0] = '\0';
    if (strncmp(arg, "http://", 7) == 0 || strncmp(arg, "https://", 8) == 0) {
        const char *path = strstr(arg, "/app/approve?");
        if (!path) return false;
        const char *q = path + strlen("/app/approve?");
        if (!query_param(q, "c", id, id_size)) return false;
        if (!query_param(q, "n", nonce, nonce_size)) nonce[0] = '\0';
        return true;
    }
    if (strncmp(arg, prefix, sizeof prefix - 1) != 0) {
        snprintf(id, id_size, "%s", arg);
        return strlen(arg) > 0 && strlen(arg) < id_size && !strchr(arg, '?');
    }
    const char *s = arg + sizeof prefix - 1, *q = strstr(s, "?n=");
    if (!q || q == s || (size_t)(q - s) >= id_size || strlen(q + 3) == 0 || strlen(q + 3) >= nonce_size)
        return false;
    snprintf(id, id_size, "%.*s", (int)(q - s), s);
    snprintf(nonce, nonce_size, "%s", q + 3);
    return true;
}

/* approve <challenge|URL of /app/approve?c=ID&n=NONCE|qun://challenge/ID?n=NONCE> --key FILE [--nonce N] */
int qun_cmd_approve(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--key", NULL, true}, {"--nonce", NULL, true}, {0}};
    const char *usage =
        "approve <challenge-id|approve URL|qun://challenge/ID?n=NONCE> --key FILE [--nonce N]";
    qun_args_t a;
    char id[130], nonce[130];
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (!a.val[0]) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.key_required", usage);
    if (!parse_challenge_ref(a.pos[0], id, sizeof id, nonce, sizeof nonce))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.not_challenge", a.pos[0]);
    if (a.val[1]) snprintf(nonce, sizeof nonce, "%s", a.val[1]);
    if (!nonce[0]) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.nonce");
    return qun_challenge_sign(c, id, nonce, a.val[0], false);
}

int qun_challenge_sign(qun_cli_t *c, const char *id, const char *nonce, const char *key_path, bool quiet) {
    char path[512], t[32];
    devkey_t k;
    bool missing;
    int rc = key_load(key_path, &k, &missing);
    if (missing) return qun_failw(QUN_EXIT_FAIL, "KEY_FILE", "cli.err.no_key_file", key_path);
    if (rc != QUN_EXIT_OK) return rc;
    /* What the signature approves comes from the server, not from the QR code. */
    json_t *ch = NULL;
    rc = qun_pathf(path, sizeof path, "/v1/challenges/%s", id);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &ch);
    if (rc != QUN_EXIT_OK) {
        sodium_memzero(k.sk, sizeof k.sk);
        return rc;
    }
    const char *action = qun_jstr_or(ch, "action", ""), *group = qun_jstr_or(ch, "group", "");
    const char *digest = qun_jstr_or(ch, "params_digest", "");
    if (!c->json && !quiet) {
        /* What is approved, in words: the action and the group by its name. */
        char key[96], on[300] = "", who[200], line[700];
        json_t *g = NULL;
        snprintf(key, sizeof key, "action.%s", action);
        if (*group && qun_pathf(path, sizeof path, "/v1/groups/%s", group) == QUN_EXIT_OK) {
            qun_call_t gc = {.method = "GET", .path = path, .quiet = true};
            qun_resp_t gr;
            if (qun_cli_call(c, &gc, &gr) == QUN_EXIT_OK) g = json_incref(gr.json);
            qun_resp_free(&gr);
            snprintf(who, sizeof who, "\u201c%s\u201d (%s)", qun_jstr_or(g, "name", "?"), group);
            qun_wf(on, sizeof on, "cli.on_group", g ? who : group);
        }
        json_decref(g);
        fprintf(stderr, "%s\n",
                qun_wf(line, sizeof line, "cli.approving", id, qun_w_or(key, action), on,
                       qun_fmt_time(qun_jint(ch, "expires_at"), t)));
    }
    char *msg = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&msg, &len);
    if (f) {
        fprintf(f, "%s\n%s\n%s\n%s\n%s\n%s", CHALLENGE_DOMAIN, id, nonce, action, group, digest);
        fclose(f);
    }
    json_decref(ch);
    if (!msg) {
        sodium_memzero(k.sk, sizeof k.sk);
        return qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem");
    }
    unsigned char sig[crypto_sign_BYTES];
    char sig64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    crypto_sign_detached(sig, NULL, (const unsigned char *)msg, len, k.sk);
    sodium_memzero(k.sk, sizeof k.sk);
    free(msg);
    b64_encode(sig64, sizeof sig64, sig, sizeof sig);
    json_t *out = NULL;
    rc = qun_pathf(path, sizeof path, "/v1/challenges/%s/approve", id);
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "POST", path,
                          json_pack("{s:s, s:s}", "device_id", k.device_id, "signature", sig64), &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json && !quiet)
        qun_print_json(out);
    else if (!quiet)
        qun_say("cli.challenge_approved", id, k.device_id);
    json_decref(out);
    return QUN_EXIT_OK;
}

/* ---- TOTP ---- */

/* Print text as a QR code of UTF-8 half blocks, two module rows per line, light
 * modules drawn (dark terminals show it dark on light), with a 2-module quiet zone. */
void qun_print_qr(const char *text) {
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr) {
        qun_say("cli.qr_cannot");
        return;
    }
    const int border = 2, w = qr->width;
    for (int y = -border; y < w + border; y += 2) {
        for (int x = -border; x < w + border; x++) {
            bool top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
            bool bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w && (qr->data[(y + 1) * w + x] & 1);
            fputs(!top && !bot ? "\u2588" : !top ? "\u2580" : !bot ? "\u2584" : " ", stdout);
        }
        putchar('\n');
    }
    QRcode_free(qr);
}

static int totp_confirm_code(qun_cli_t *c, const char *code) {
    json_t *out = NULL;
    int rc = qun_cli_json(c, "POST", "/v1/me/totp/confirm", json_pack("{s:s}", "code", code), &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        printf("%s\n", qun_w("cli.totp_active"));
    json_decref(out);
    return QUN_EXIT_OK;
}

/* totp enrol [--code C]: start an enrollment, show it (a QR code for the app and the
 * secret as text), confirm with a code: --code, else asked with no echo on a terminal,
 * else one line of stdin; at end of input, confirm later with totp confirm. */
static int totp_enroll(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--code", NULL, true}, {0}};
    qun_args_t a;
    json_t *out = NULL;
    char line[300];
    int rc = qun_args_parse(argc, argv, opts, 0, 0, "totp enrol [--code C]", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "POST", "/v1/me/totp", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    const char *uri = qun_jstr_or(out, "otpauth_uri", "");
    if (c->json) {
        json_object_del(out, "qr_svg");
        qun_print_json(out);
    } else {
        printf("%s\n\n", qun_wf(line, sizeof line, "cli.totp_scan", qun_jstr_or(out, "secret", "?")));
        qun_print_qr(uri);
        printf("\n%s\n\n", uri);
    }
    fflush(stdout);
    json_decref(out);
    char code[64] = "";
    if (a.val[0]) {
        snprintf(code, sizeof code, "%s", a.val[0]);
    } else if (isatty(STDIN_FILENO)) {
        if (qun_prompt_password(qun_w("cli.totp_code"), code, sizeof code) != QUN_EXIT_OK) code[0] = '\0';
    } else {
        char *got = qun_prompt_line(qun_w("cli.totp_code"));
        snprintf(code, sizeof code, "%s", got ? got : "");
        free(got);
    }
    if (!code[0]) {
        fprintf(stderr, "%s\n", qun_w("cli.totp_later"));
        return QUN_EXIT_OK;
    }
    return totp_confirm_code(c, code);
}

int qun_cmd_totp(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    if (argc >= 1 && (strcmp(argv[0], "enrol") == 0 || strcmp(argv[0], "enroll") == 0))
        return totp_enroll(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "confirm") == 0) {
        int rc = qun_args_parse(argc - 1, argv + 1, NULL, 1, 1, "totp confirm <code>", &a);
        return rc == QUN_EXIT_OK ? totp_confirm_code(c, a.pos[0]) : rc;
    }
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage",
                     "totp enrol [--code C] | qun totp confirm <code>");
}

/* ---- passkeys ---- */

/* passkeys [list] | passkeys remove <id> [--password P]: the caller's passkeys
 * (registered in the console; the CLI's own form of a device key is its key file).
 * Removing one takes away a way to approve, so the server asks the password again:
 * --password, else QUN_PASSWORD, else asked without echo. */
int qun_cmd_passkeys(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *out = NULL, *it;
    size_t i;
    char path[512], line[600], t1[32], t2[32];
    int rc;
    if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
        static const qun_opt_t opts[] = {{"--password", NULL, true}, {0}};
        rc = qun_args_parse(argc - 1, argv + 1, opts, 1, 1, "passkeys remove <id> [--password P]", &a);
        if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/me/passkeys/%s", a.pos[0]);
        qun_proofs_t proofs = {.password = a.val[0], .eager_password = true};
        if (rc == QUN_EXIT_OK) rc = qun_send_proved(c, "DELETE", path, json_object(), &proofs, &out);
        if (rc != QUN_EXIT_OK) return rc;
        if (c->json)
            qun_print_json(out ? out : json_object());
        else
            printf("%s\n", qun_wf(line, sizeof line, "cli.passkey_removed", a.pos[0]));
        json_decref(out);
        return QUN_EXIT_OK;
    }
    if (argc >= 1 && strcmp(argv[0], "list") != 0)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage",
                         "passkeys [list] | qun passkeys remove <id> [--password P]");
    rc = qun_args_parse(argc > 0 ? argc - 1 : 0, argv + (argc > 0), NULL, 0, 0, "passkeys [list]", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", "/v1/me/passkeys", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(out);
    } else if (json_array_size(json_object_get(out, "items")) == 0) {
        printf("%s\n", qun_w("cli.passkeys_none"));
    } else {
        json_array_foreach(json_object_get(out, "items"), i, it) {
            int64_t used = qun_jint(it, "last_used_at");
            const char *label = qun_jstr_or(it, "label", "");
            printf("%s\n",
                   qun_wf(line, sizeof line, "cli.passkey_line", qun_jstr_or(it, "id", "?"),
                          *label ? label : "-", qun_jstr_or(it, "device_id", "?"),
                          json_is_true(json_object_get(it, "current")) ? qun_w("cli.this_device") : "",
                          qun_fmt_time(qun_jint(it, "created_at"), t1),
                          used > 0 ? qun_fmt_time(used, t2) : qun_w("cli.never")));
        }
    }
    json_decref(out);
    return QUN_EXIT_OK;
}

/* ---- risk ---- */

static void print_risk(json_t *r) {
    json_t *why, *reasons = json_object_get(r, "reasons");
    size_t i;
    char n[24];
    qun_say("cli.risk", qun_jstr_or(r, "id", "?"), qun_jstr_or(r, "level", "?"),
            qun_fmt_int(qun_jint(r, "score"), n));
    if (json_array_size(reasons) == 0) qun_say("cli.risk_none");
    json_array_foreach(reasons, i, why) {
        char key[64];
        snprintf(key, sizeof key, "risk.rule.%s", qun_jstr_or(why, "rule", "?"));
        printf("  %-10s %-6s +%-3lld %s\n", qun_jstr_or(why, "rule", "?"), qun_jstr_or(why, "level", "?"),
               (long long)qun_jint(why, "points"), qun_w_or(key, qun_jstr_or(why, "rule", "?")));
    }
}

/* The evaluation id behind ref: itself (r_...), a group's current dissolution
 * (g_...), or the request an approval decides (a_...). */
static int risk_id_of(qun_cli_t *c, const char *ref, char *out, size_t size) {
    char path[512];
    json_t *j = NULL, *it;
    size_t i;
    int rc = QUN_EXIT_OK;
    out[0] = '\0';
    if (strncmp(ref, "r_", 2) == 0) {
        snprintf(out, size, "%s", ref);
    } else if (strncmp(ref, "g_", 2) == 0) {
        rc = qun_pathf(path, sizeof path, "/v1/groups/%s/dissolution", ref);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &j);
        if (rc == QUN_EXIT_OK) snprintf(out, size, "%s", qun_jstr_or(json_object_get(j, "risk"), "id", ""));
    } else if (strncmp(ref, "a_", 2) == 0) {
        rc = qun_cli_json(c, "GET", "/v1/approvals", NULL, &j);
        json_array_foreach(json_object_get(j, "items"), i,
                           it) if (strcmp(qun_jstr_or(it, "id", ""), ref) == 0)
            snprintf(out, size, "%s", qun_jstr_or(it, "risk_id", ""));
    } else {
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.risk_ref", ref);
    }
    json_decref(j);
    if (rc == QUN_EXIT_OK && !out[0]) rc = qun_failw(QUN_EXIT_FAIL, "RISK_NOT_FOUND", "cli.err.no_risk", ref);
    return rc;
}

static int risk_get(qun_cli_t *c, const char *rid, json_t **out) {
    char path[512];
    int rc = qun_pathf(path, sizeof path, "/v1/risk/evaluations/%s", rid);
    return rc == QUN_EXIT_OK ? qun_cli_json(c, "GET", path, NULL, out) : rc;
}

/* risk explain <r_...|g_...|a_...> */
int qun_cmd_risk(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    char rid[130];
    json_t *r = NULL;
    if (argc < 1 || strcmp(argv[0], "explain") != 0)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage",
                         "risk explain <evaluation|group|approval id>");
    int rc =
        qun_args_parse(argc - 1, argv + 1, NULL, 1, 1, "risk explain <evaluation|group|approval id>", &a);
    if (rc == QUN_EXIT_OK) rc = risk_id_of(c, a.pos[0], rid, sizeof rid);
    if (rc == QUN_EXIT_OK) rc = risk_get(c, rid, &r);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json) {
        qun_print_json(r);
    } else {
        print_risk(r);
        char t[32];
        qun_say("cli.risk_evaluated", qun_fmt_time(qun_jint(r, "created_at"), t),
                qun_jstr_or(r, "group", "-"), qun_jstr_or(r, "device_id", "-"));
    }
    json_decref(r);
    return QUN_EXIT_OK;
}

/* ---- the manual risk review queue ---- */

/* review list: the risk_review approvals waiting for a server admin, with their reasons. */
static int review_list(qun_cli_t *c, int argc, char **argv) {
    qun_args_t a;
    json_t *all = NULL, *it, *queue = json_array();
    size_t i;
    int rc = qun_args_parse(argc, argv, NULL, 0, 0, "review list", &a);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", "/v1/approvals", NULL, &all);
    json_array_foreach(json_object_get(all, "items"), i, it) {
        if (rc != QUN_EXIT_OK || strcmp(qun_jstr_or(it, "kind", ""), "risk_review") != 0) continue;
        json_t *r = NULL, *item = json_deep_copy(it);
        const char *rid = qun_jstr_or(it, "risk_id", NULL);
        if (rid) rc = risk_get(c, rid, &r);
        if (r) json_object_set_new(item, "risk", r);
        json_array_append_new(queue, item);
    }
    json_decref(all);
    if (rc != QUN_EXIT_OK) {
        json_decref(queue);
        return rc;
    }
    if (c->json) {
        json_t *o = json_pack("{s:O}", "items", queue);
        qun_print_json(o);
        json_decref(o);
    } else if (json_array_size(queue) == 0) {
        qun_say("cli.reviews_none");
    } else {
        char t[32];
        json_array_foreach(queue, i, it) {
            qun_say(
                "cli.review_item", qun_jstr_or(it, "id", "?"), qun_jstr_or(it, "group", "?"),
                qun_jstr_or(it, "group_name", ""),
                qun_jstr_or(it, "requested_by_display_name",
                            qun_jstr_or(it, "requested_by_username", qun_jstr_or(it, "requested_by", "?"))),
                qun_fmt_time(qun_jint(it, "expires_at"), t));
            json_t *r = json_object_get(it, "risk");
            if (r) print_risk(r);
        }
        qun_say("cli.review_decide");
    }
    json_decref(queue);
    return QUN_EXIT_OK;
}

static int review_decide(qun_cli_t *c, int argc, char **argv, bool approve) {
    static const qun_opt_t opts[] = {{"--reason", NULL, true}, {0}};
    const char *usage = approve ? "review approve <id> [--reason R]" : "review reject <id> --reason R";
    qun_args_t a;
    char path[512];
    json_t *out = NULL;
    int rc = qun_args_parse(argc, argv, opts, 1, 1, usage, &a);
    if (rc != QUN_EXIT_OK) return rc;
    if (!approve && (!a.val[0] || !*a.val[0]))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.reject_reason", usage);
    rc = qun_pathf(path, sizeof path, approve ? "/v1/approvals/%s/approve" : "/v1/approvals/%s/reject",
                   a.pos[0]);
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_json(c, "POST", path, a.val[0] ? json_pack("{s:s}", "reason", a.val[0]) : json_object(),
                          &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else
        qun_say(approve ? "cli.review_approved" : "cli.review_rejected", a.pos[0],
                qun_jstr_or(out, "group", "?"));
    json_decref(out);
    return QUN_EXIT_OK;
}

int qun_cmd_review(qun_cli_t *c, int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "list") == 0) return review_list(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "approve") == 0) return review_decide(c, argc - 1, argv + 1, true);
    if (argc >= 1 && strcmp(argv[0], "reject") == 0) return review_decide(c, argc - 1, argv + 1, false);
    return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage",
                     "review list | approve <id> [--reason R] | reject <id> --reason R");
}

/* ---- brute-force locks (server admins) ---- */

static void print_lock(json_t *l) {
    char t[32], n[24], line[600], cleared[200] = "";
    if (qun_jstr_or(l, "cleared_by", NULL))
        qun_wf(cleared, sizeof cleared, "cli.lock_cleared", qun_jstr_or(l, "cleared_by", ""));
    printf("%-24s %-7s %-7s %s\n", qun_jstr_or(l, "id", "?"), qun_jstr_or(l, "state", "?"),
           qun_jstr_or(l, "scope", "?"),
           qun_wf(line, sizeof line, "cli.lock_line", qun_jstr_or(l, "subject", "?"),
                  qun_fmt_int(qun_jint(l, "failures"), n), qun_jstr_or(l, "kind", "?"),
                  qun_fmt_time(qun_jint(l, "locked_until"), t), cleared));
}

/* locks list [--all] | locks clear <id> */
int qun_cmd_locks(qun_cli_t *c, int argc, char **argv) {
    static const qun_opt_t opts[] = {{"--all", NULL, false}, {0}};
    qun_args_t a;
    json_t *out = NULL, *it;
    size_t i;
    char path[512];
    int rc;
    if (argc >= 1 && strcmp(argv[0], "clear") == 0) {
        rc = qun_args_parse(argc - 1, argv + 1, NULL, 1, 1, "locks clear <id>", &a);
        if (rc == QUN_EXIT_OK) rc = qun_pathf(path, sizeof path, "/v1/admin/locks/%s", a.pos[0]);
        if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "DELETE", path, NULL, &out);
        if (rc != QUN_EXIT_OK) return rc;
        if (c->json)
            qun_print_json(out);
        else
            print_lock(out);
        json_decref(out);
        return QUN_EXIT_OK;
    }
    if (argc < 1 || strcmp(argv[0], "list") != 0)
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage",
                         "locks list [--all] | qun locks clear <id>");
    rc = qun_args_parse(argc - 1, argv + 1, opts, 0, 0, "locks list [--all]", &a);
    if (rc == QUN_EXIT_OK)
        rc = qun_cli_get_all(c, a.val[0] ? "/v1/admin/locks?state=all" : "/v1/admin/locks", NULL, &out);
    if (rc != QUN_EXIT_OK) return rc;
    if (c->json)
        qun_print_json(out);
    else if (json_array_size(json_object_get(out, "items")) == 0)
        qun_say(a.val[0] ? "cli.locks_none" : "cli.locks_none_active");
    else
        json_array_foreach(json_object_get(out, "items"), i, it) print_lock(it);
    json_decref(out);
    return QUN_EXIT_OK;
}
