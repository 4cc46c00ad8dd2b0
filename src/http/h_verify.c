/* SPDX-License-Identifier: MIT */
/* Verification over HTTP: device keys, challenges (create, approve with a signature,
 * poll, consume, render as a QR code in SVG or PNG), TOTP enrollment and step-up, and
 * stored risk evaluations.  The rules live in core/verify.c and core/risk.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "qun/risk.h"
#include "qun/verify.h"

#define CID (r->params[0])

static const qun_field_t no_fields[] = {{0}};

/* Decode base64 in any of the four common alphabets/paddings into exactly want bytes. */
static bool b64_exact(const char *s, unsigned char *out, size_t want) {
    static const int variants[] = {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                   sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        size_t n = 0;
        if (sodium_base642bin(out, want, s, strlen(s), NULL, &n, NULL, variants[i]) == 0 && n == want)
            return true;
    }
    return false;
}

/* Actions are short lower-case words such as "dissolve" or "transfer". */
static qun_rc check_action(qun_req_t *r, const char *action) {
    for (const char *p = action; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
            return qun_fail_field(&r->err, QUN_FIELD_INVALID, "action",
                                  "action may hold a-z, 0-9, '_', '.' and '-'");
    return QUN_OK;
}

static qun_rc check_digest(qun_req_t *r, const char *d) {
    for (const char *p = d; p && *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return qun_fail_field(&r->err, QUN_FIELD_INVALID, "params_digest",
                                  "params_digest must be lower-case hex");
    return QUN_OK;
}

/* ---- devices ---- */

qun_rc h_device_list(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_device_list(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_device_key(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"public_key", F_STR, true, 1, 64, NULL}, {"challenge_id", F_STR, false, 1, 64, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc != QUN_OK) return rc;
    unsigned char pk[32];
    if (!b64_exact(qun_jstr(r->json, "public_key"), pk, sizeof pk))
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "public_key",
                              "public_key must be base64 of 32 bytes");
    json_t *out = NULL, *problem = NULL;
    rc = qun_device_key_register(r->db, &r->actor, pk, qun_jstr(r->json, "challenge_id"), &out, &problem,
                                 &r->err);
    if (rc == QUN_OK) {
        json_decref(problem);
        return qun_ok(r, 201, out);
    }
    /* A refusal for want of a vouching device says what to present, as actions do. */
    json_decref(r->problem_extra);
    r->problem_extra = problem;
    return rc;
}

/* ---- challenges ---- */

static const qun_field_t challenge_fields[] = {{"action", F_STR, true, 1, 64, NULL},
                                               {"group", F_STR, false, 1, 64, NULL},
                                               {"params_digest", F_STR, false, 64, 64, NULL},
                                               {"method", F_STR, true, 1, 16, "device_key|qr"},
                                               {0}};

qun_rc h_challenge_create(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, challenge_fields, &r->err);
    if (rc == QUN_OK) rc = check_action(r, qun_jstr(r->json, "action"));
    if (rc == QUN_OK) rc = check_digest(r, qun_jstr(r->json, "params_digest"));
    if (rc != QUN_OK) return rc;
    json_t *out;
    rc = qun_challenge_create(r->db, &r->actor, qun_jstr(r->json, "method"), qun_jstr(r->json, "action"),
                              qun_jstr(r->json, "group"), qun_jstr(r->json, "params_digest"), &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}

qun_rc h_challenge_get(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_challenge_status(r->db, &r->actor, CID, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_challenge_approve(qun_req_t *r) {
    static const qun_field_t f[] = {
        {"device_id", F_STR, true, 1, 64, NULL}, {"signature", F_STR, true, 1, 128, NULL}, {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc != QUN_OK) return rc;
    unsigned char sig[crypto_sign_BYTES];
    if (!b64_exact(qun_jstr(r->json, "signature"), sig, sizeof sig))
        return qun_fail_field(&r->err, QUN_FIELD_INVALID, "signature",
                              "signature must be base64 of 64 bytes");
    json_t *out;
    rc = qun_challenge_approve(r->db, &r->actor, CID, qun_jstr(r->json, "device_id"), sig, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_challenge_decline(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *out;
    rc = qun_challenge_decline(r->db, &r->actor, CID, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}

qun_rc h_challenge_consume(qun_req_t *r) {
    static const qun_field_t f[] = {{"action", F_STR, true, 1, 64, NULL},
                                    {"group", F_STR, false, 1, 64, NULL},
                                    {"params_digest", F_STR, false, 64, 64, NULL},
                                    {0}};
    qun_rc rc = qun_fields_check(r->json, f, &r->err);
    if (rc != QUN_OK) return rc;
    const char *method = NULL;
    rc = qun_challenge_consume(r->db, &r->actor, CID, qun_jstr(r->json, "action"), qun_jstr(r->json, "group"),
                               qun_jstr(r->json, "params_digest"), &method, &r->err);
    if (rc != QUN_OK) return rc;
    return qun_ok(r, 200, json_pack("{s:s, s:s, s:s}", "id", CID, "state", "used", "method", method));
}

qun_rc h_challenge_qr_svg(qun_req_t *r) {
    char uri[512];
    qun_rc rc = qun_challenge_uri(r->db, &r->actor, CID, uri, sizeof uri, &r->err);
    if (rc != QUN_OK) return rc;
    r->out_text = qun_qr_svg(uri);
    if (!r->out_text) return qun_fail(&r->err, QUN_NOMEM, "cannot render the QR code");
    r->status = 200;
    snprintf(r->content_type, sizeof r->content_type, "image/svg+xml");
    return QUN_OK;
}

/* Old QR images are removed as new ones are written: a challenge lives two minutes. */
static void prune_qr(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    time_t cutoff = time(NULL) - 600;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) && st.st_mtime < cutoff)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* The router sends text answers up to their first NUL, so a PNG goes out as a file:
 * <data>/qr/<sha256>.png, written to a temporary name and renamed. */
qun_rc h_challenge_qr_png(qun_req_t *r) {
    char uri[512];
    qun_rc rc = qun_challenge_uri(r->db, &r->actor, CID, uri, sizeof uri, &r->err);
    if (rc != QUN_OK) return rc;
    size_t n;
    unsigned char *png = qun_qr_png(uri, &n);
    if (!png) return qun_fail(&r->err, QUN_NOMEM, "cannot render the QR code");
    char dir[4200], path[4400], tmp[4500], hex[65];
    snprintf(dir, sizeof dir, "%s/qr", qun_core_cfg.data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        free(png);
        return qun_fail(&r->err, QUN_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    }
    prune_qr(dir);
    qun_sha256_hex(hex, png, n);
    char rnd[QUN_ID_MAX];
    qun_id_new(rnd, "t");
    snprintf(path, sizeof path, "%s/%s.png", dir, hex);
    snprintf(tmp, sizeof tmp, "%s/.%s.%s", dir, hex, rnd);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, png, n) == (ssize_t)n;
    int e = errno;
    if (fd >= 0) close(fd);
    free(png);
    if (!ok || rename(tmp, path) != 0) {
        e = ok ? errno : e;
        unlink(tmp);
        return qun_fail(&r->err, qun_rc_errno(e, QUN_INTERNAL), "cannot write %s: %s", path, strerror(e));
    }
    r->file_path = strdup(path);
    if (!r->file_path) return qun_fail(&r->err, QUN_NOMEM, "out of memory");
    r->status = 200;
    snprintf(r->content_type, sizeof r->content_type, "image/png");
    return QUN_OK;
}

/* ---- TOTP ---- */

/* The answer holds the secret: the route is R_NOIDEM, so it is never stored. */
qun_rc h_totp_enroll(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, no_fields, &r->err);
    if (rc != QUN_OK) return rc;
    json_t *out;
    rc = qun_totp_enroll(r->db, &r->actor, &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 201, out) : rc;
}

static const qun_field_t code_fields[] = {{"code", F_STR, true, 1, 10, NULL}, {0}};

qun_rc h_totp_confirm(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, code_fields, &r->err);
    if (rc == QUN_OK) rc = qun_totp_confirm(r->db, &r->actor, qun_jstr(r->json, "code"), &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, json_pack("{s:s}", "state", "active")) : rc;
}

qun_rc h_totp_verify(qun_req_t *r) {
    qun_rc rc = qun_fields_check(r->json, code_fields, &r->err);
    if (rc == QUN_OK) rc = qun_totp_check(r->db, &r->actor, qun_jstr(r->json, "code"), &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, json_pack("{s:b}", "verified", 1)) : rc;
}

/* ---- risk ---- */

qun_rc h_risk_get(qun_req_t *r) {
    json_t *out;
    qun_rc rc = qun_risk_get(r->db, &r->actor, r->params[0], &out, &r->err);
    return rc == QUN_OK ? qun_ok(r, 200, out) : rc;
}
