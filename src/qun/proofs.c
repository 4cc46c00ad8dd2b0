/* SPDX-License-Identifier: MIT */
/* Answering a 428: a protected action (dissolve, restore, transfer, a removal past the
 * day's threshold) is sent, and whatever its `requirements` name is collected and the
 * request sent again with it.  Every method a policy can ask for has a CLI form: the
 * preview's confirmation (the commands send it from the start), the group's name typed
 * back, the password again (asked with no echo), a TOTP code (asked with no echo on a
 * terminal, else read from a line of stdin), device_key (a challenge signed with this
 * device's key file: the CLI's form of a passkey) and qr (a challenge shown as a QR
 * code and approved on another device of the user, while this one waits).  A shape or a
 * method this qun does not know is said so, and nothing is sent. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

/* The body member that carries the proof of method m; NULL for an unknown method. */
static const char *member_of(const char *m) {
    static const char *const map[][2] = {
        {"confirm", "confirmation_token"}, {"typed_name", "typed_name"},   {"totp", "totp_code"},
        {"password", "password"},          {"device_key", "challenge_id"}, {"qr", "challenge_id"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], m) == 0) return map[i][1];
    return NULL;
}

static int unexpected(void) {
    return qun_cli_fail(QUN_EXIT_FAIL, "VERIFICATION_REQUIRED", "%s", qun_w("req.unexpected"));
}

static void key_path(qun_cli_t *c, const qun_proofs_t *o, char *out, size_t size) {
    if (o->key_file)
        snprintf(out, size, "%s", o->key_file);
    else
        snprintf(out, size, "%s/device_key", c->dir);
}

/* Ask for a TOTP code: the flag, QUN_TOTP_CODE, a no-echo prompt on a terminal, else
 * one line of stdin (scripts pipe it). */
static int read_totp(const qun_proofs_t *o, char *out, size_t size) {
    const char *env = getenv("QUN_TOTP_CODE");
    const char *given = o->totp_code ? o->totp_code : env && *env ? env : NULL;
    if (given) {
        snprintf(out, size, "%s", given);
        return QUN_EXIT_OK;
    }
    if (isatty(STDIN_FILENO)) {
        int rc = qun_prompt_password(qun_w("cli.totp_prompt"), out, size);
        if (rc != QUN_EXIT_OK) return rc;
    } else {
        char *line = qun_prompt_line(qun_w("cli.totp_prompt"));
        snprintf(out, size, "%s", line ? line : "");
        if (line) sodium_memzero(line, strlen(line));
        free(line);
    }
    if (!out[0]) return qun_cli_fail(QUN_EXIT_FAIL, "TOTP_REQUIRED", "%s", qun_w("cli.totp_none"));
    return QUN_EXIT_OK;
}

/* The group's name typed back; the name is fetched to say which group it is. */
static int read_typed_name(qun_cli_t *c, const char *gid, char **out) {
    char path[512], prompt[600];
    json_t *g = NULL;
    *out = NULL;
    if (!gid) return unexpected();
    int rc = qun_pathf(path, sizeof path, "/v1/groups/%s", gid);
    if (rc == QUN_EXIT_OK) rc = qun_cli_json(c, "GET", path, NULL, &g);
    if (rc != QUN_EXIT_OK) return rc;
    qun_wf(prompt, sizeof prompt, "cli.typed_name_prompt", qun_jstr_or(g, "name", ""));
    json_decref(g);
    *out = qun_prompt_line(prompt);
    return *out ? QUN_EXIT_OK : qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem");
}

/* A challenge of method for what the problem binds (action, group, params_digest). */
static int new_challenge(qun_cli_t *c, json_t *problem, const char *method, json_t **ch) {
    return qun_cli_json(c, "POST", "/v1/challenges",
                        json_pack("{s:s, s:s, s:s?, s:s?}", "method", method, "action",
                                  qun_jstr_or(problem, "action", ""), "group",
                                  qun_jstr_or(problem, "group", NULL), "params_digest",
                                  qun_jstr_or(problem, "params_digest", NULL)),
                        ch);
}

/* device_key: this device signs a challenge with its key file. */
static int prove_device_key(qun_cli_t *c, const qun_proofs_t *o, json_t *problem, char *id, size_t size) {
    char path[1100], line[1300];
    json_t *ch = NULL;
    key_path(c, o, path, sizeof path);
    if (access(path, R_OK) != 0)
        return qun_cli_fail(QUN_EXIT_FAIL, "DEVICE_KEY_REQUIRED", "%s",
                            qun_wf(line, sizeof line, "cli.key_missing", path));
    int rc = new_challenge(c, problem, "device_key", &ch);
    if (rc == QUN_EXIT_OK) {
        snprintf(id, size, "%s", qun_jstr_or(ch, "id", ""));
        rc = qun_challenge_sign(c, id, qun_jstr_or(ch, "nonce", ""), path, true);
    }
    json_decref(ch);
    if (rc == QUN_EXIT_OK) fprintf(stderr, "%s\n", qun_wf(line, sizeof line, "cli.key_signed", path));
    return rc;
}

/* qr: show the challenge as a QR code (and the text `qun approve` takes) and wait until
 * another device approves it, or it expires. */
static int prove_qr(qun_cli_t *c, json_t *problem, char *id, size_t size) {
    json_t *ch = NULL;
    char uri[300], line[700], path[512], t[32];
    int rc = new_challenge(c, problem, "qr", &ch);
    if (rc != QUN_EXIT_OK) return rc;
    snprintf(id, size, "%s", qun_jstr_or(ch, "id", ""));
    snprintf(uri, sizeof uri, "qun://challenge/%s?n=%s", id, qun_jstr_or(ch, "nonce", ""));
    int64_t expires = qun_jint(ch, "expires_at");
    const char *url = qun_jstr_or(ch, "approve_url", NULL);
    fprintf(stderr, "%s\n\n", qun_wf(line, sizeof line, "cli.qr_scan", uri));
    fflush(stderr);
    /* The QR code goes where a person looks; with --json stdout carries only the answer. */
    if (!c->json) {
        qun_print_qr(url ? url : uri);
        printf("\n%s\n", uri);
        if (url) printf("%s\n", url);
        fflush(stdout);
    }
    json_decref(ch);
    fprintf(stderr, "%s\n", qun_wf(line, sizeof line, "cli.qr_waiting", qun_fmt_time(expires, t)));
    rc = qun_pathf(path, sizeof path, "/v1/challenges/%s", id);
    /* The server's clock decides expiry; a generous local bound only stops a wait that
     * nothing can end. */
    for (int i = 0; rc == QUN_EXIT_OK && i < 600; i++) {
        json_t *st = NULL;
        rc = qun_cli_json(c, "GET", path, NULL, &st);
        const char *state = qun_jstr_or(st, "state", "");
        bool approved = strcmp(state, "approved") == 0, over = strcmp(state, "pending") != 0;
        json_decref(st);
        if (rc != QUN_EXIT_OK || approved) return rc;
        if (over) return qun_cli_fail(QUN_EXIT_FAIL, "CHALLENGE_EXPIRED", "%s", qun_w("cli.qr_expired"));
        usleep(500 * 1000);
    }
    return rc == QUN_EXIT_OK ? qun_cli_fail(QUN_EXIT_FAIL, "CHALLENGE_EXPIRED", "%s", qun_w("cli.qr_expired"))
                             : rc;
}

/* Whether the body already carries the proof of method m. */
static bool proven(json_t *body, const char *m) {
    const char *k = member_of(m);
    return k && json_object_get(body, k) != NULL;
}

/* The one method of any_of this CLI offers first: QUN_STEP_UP names it; else a given
 * TOTP code, then this device's key file, then a TOTP prompt, a QR code, the password. */
static const char *pick_any(qun_cli_t *c, const qun_proofs_t *o, json_t *any) {
    size_t i;
    json_t *m;
    char path[1100];
    const char *want = getenv("QUN_STEP_UP");
    bool totp_given = o->totp_code || (getenv("QUN_TOTP_CODE") && *getenv("QUN_TOTP_CODE"));
    key_path(c, o, path, sizeof path);
    const char *order[] = {want && *want ? want : "-",
                           totp_given ? "totp" : "-",
                           access(path, R_OK) == 0 ? "device_key" : "-",
                           "totp",
                           "qr",
                           "password"};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        json_array_foreach(any, i, m) if (json_is_string(m) &&
                                          strcmp(json_string_value(m), order[k]) == 0) return order[k];
    return NULL;
}

/* Collect the proof of method m into body.  step_up: a second challenge goes into
 * step_up_challenge_id when the body holds the platform's already. */
static int prove(qun_cli_t *c, const qun_proofs_t *o, json_t *problem, json_t *body, const char *m,
                 bool step_up) {
    char secret[512], id[130];
    int rc;
    if (strcmp(m, "password") == 0) {
        fprintf(stderr, "%s\n", qun_w("cli.password_again"));
        rc = qun_read_password(o->password, false, secret, sizeof secret);
        if (rc == QUN_EXIT_OK) json_object_set_new(body, "password", json_string(secret));
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    if (strcmp(m, "totp") == 0) {
        rc = read_totp(o, secret, sizeof secret);
        if (rc == QUN_EXIT_OK) json_object_set_new(body, "totp_code", json_string(secret));
        sodium_memzero(secret, sizeof secret);
        return rc;
    }
    if (strcmp(m, "typed_name") == 0) {
        char *typed = NULL;
        rc = read_typed_name(c, qun_jstr_or(problem, "group", NULL), &typed);
        if (rc == QUN_EXIT_OK) json_object_set_new(body, "typed_name", json_string(typed));
        free(typed);
        return rc;
    }
    if (strcmp(m, "confirm") == 0) /* the commands send the preview's token from the start */
        return qun_cli_fail(QUN_EXIT_FAIL, "CONFIRMATION_REQUIRED", "%s",
                            qun_w("error.CONFIRMATION_REQUIRED"));
    if (strcmp(m, "device_key") == 0 || strcmp(m, "qr") == 0) {
        rc = m[0] == 'd' ? prove_device_key(c, o, problem, id, sizeof id)
                         : prove_qr(c, problem, id, sizeof id);
        const char *k = step_up && o->step_up_field && json_object_get(body, "challenge_id")
                            ? "step_up_challenge_id"
                            : "challenge_id";
        if (rc == QUN_EXIT_OK) json_object_set_new(body, k, json_string(id));
        return rc;
    }
    return unexpected();
}

/* Add to body what the 428 problem asks for.  *added tells whether anything was. */
static int answer_428(qun_cli_t *c, const qun_proofs_t *o, json_t *problem, json_t *body, bool *added) {
    json_t *reqs = json_object_get(problem, "requirements"), *r;
    size_t i;
    int rc = QUN_EXIT_OK;
    *added = false;
    if (json_is_array(reqs)) { /* [{method, how}]: the platform's missing methods */
        json_array_foreach(reqs, i, r) {
            const char *m = qun_jstr_or(r, "method", "");
            if (!member_of(m)) return unexpected();
        }
        json_array_foreach(reqs, i, r) {
            const char *m = qun_jstr_or(r, "method", "");
            /* A challenge of the wrong kind is replaced; other proofs are asked once. */
            if (proven(body, m) && strcmp(member_of(m), "challenge_id") != 0) continue;
            if (rc == QUN_EXIT_OK) rc = prove(c, o, problem, body, m, false);
            *added = rc == QUN_EXIT_OK;
        }
        return rc;
    }
    if (!json_is_object(reqs)) return unexpected();
    json_t *all = json_object_get(reqs, "all"), *any = json_object_get(reqs, "any_of");
    if ((all && !json_is_array(all)) || (any && !json_is_array(any))) return unexpected();
    if (json_is_true(json_object_get(reqs, "denied")))
        return qun_cli_fail(QUN_EXIT_FAIL, "RISK_DENIED", "%s", qun_w("req.denied"));
    if (json_is_true(json_object_get(reqs, "review"))) fprintf(stderr, "qun: %s\n", qun_w("cli.review_wait"));
    json_array_foreach(all, i,
                       r) if (!json_is_string(r) || !member_of(json_string_value(r))) return unexpected();
    json_array_foreach(any, i,
                       r) if (!json_is_string(r) || !member_of(json_string_value(r))) return unexpected();
    json_array_foreach(all, i, r) {
        if (rc != QUN_EXIT_OK || proven(body, json_string_value(r))) continue;
        rc = prove(c, o, problem, body, json_string_value(r), false);
        *added = rc == QUN_EXIT_OK;
    }
    if (rc == QUN_EXIT_OK && json_array_size(any) > 0) {
        const char *m = pick_any(c, o, any);
        if (!m) return unexpected();
        /* A challenge in the body may be the platform's own proof: a step-up adds one. */
        if (!proven(body, m) || strcmp(member_of(m), "challenge_id") == 0) {
            rc = prove(c, o, problem, body, m, true);
            *added = rc == QUN_EXIT_OK;
        }
    }
    return rc;
}

int qun_send_proved(qun_cli_t *c, const char *method, const char *path, json_t *body, const qun_proofs_t *o,
                    json_t **out) {
    int rc = QUN_EXIT_OK;
    bool answered = false;
    *out = NULL;
    if (o->eager_password) {
        char pw[512];
        rc = qun_read_password(o->password, false, pw, sizeof pw);
        if (rc == QUN_EXIT_OK) json_object_set_new(body, "password", json_string(pw));
        sodium_memzero(pw, sizeof pw);
    }
    /* Each round answers what the server still asks; one that adds nothing stops. */
    for (int round = 0; rc == QUN_EXIT_OK && round < 5; round++) {
        qun_call_t call = {.method = method, .path = path, .body = body, .quiet = true};
        qun_resp_t resp;
        bool added = false;
        rc = qun_cli_call(c, &call, &resp);
        if (rc == QUN_EXIT_OK) {
            *out = resp.json;
            resp.json = NULL;
            answered = true;
        } else if (resp.status == 428) {
            rc = answer_428(c, o, resp.json, body, &added);
            if (rc == QUN_EXIT_OK && !added) {
                qun_cli_report(&resp);
                rc = qun_cli_fail(QUN_EXIT_FAIL, qun_jstr_or(resp.json, "code", "VERIFICATION_REQUIRED"),
                                  "%s", qun_w("cli.no_progress"));
            } else if (rc == QUN_EXIT_OK) {
                qun_resp_free(&resp);
                continue;
            }
        } else if (resp.status != 0) {
            rc = qun_cli_report(&resp);
        }
        /* A transport failure was already reported by qun_cli_call (status 0). */
        qun_resp_free(&resp);
        break;
    }
    if (rc == QUN_EXIT_OK && !answered)
        rc = qun_cli_fail(QUN_EXIT_FAIL, "VERIFICATION_REQUIRED", "%s", qun_w("cli.no_progress"));
    /* The body may hold the password or a code: wipe them before it is freed. */
    const char *secrets[] = {"password", "totp_code"};
    for (size_t i = 0; i < 2; i++) {
        const char *s = json_string_value(json_object_get(body, secrets[i]));
        if (s) sodium_memzero((char *)s, strlen(s));
    }
    json_decref(body);
    return rc;
}
