/* SPDX-License-Identifier: MIT */
/* Parsing of qund.conf.  Lines are `key = value`; '#' starts a comment.  Every key
 * is documented in README.md; qund.conf.default shows the common ones. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http/http.h"
#include "config.h"
#include "qun/core.h"
#include "qun/ledger.h"
#include "qun/lockout.h"
#include "qun/notify.h"
#include "qun/risk.h"
#include "qun/outbox.h"
#include "qun/passkey.h"
#include "qun/util.h"

extern int qund_purge_pause_ms;
extern bool qund_background_idle;
extern char qund_data_dir[512];
extern char qund_policy_dir[512];
extern char qund_store[1024];
extern char qund_instance[128];
extern int qund_job_lease;
extern char qund_ledger_origin[QUN_LEDGER_ORIGIN_MAX + 1];

static bool to_i64(const char *s, int64_t lo, int64_t hi, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return false;
    *v = x;
    return true;
}

static qun_rc set_listen(const char *value, qun_err_t *err) {
    const char *colon = strrchr(value, ':');
    int64_t port;
    if (!colon || colon == value || !to_i64(colon + 1, 1, 65535, &port))
        return qun_fail(err, QUN_BAD_REQUEST, "listen: expected HOST:PORT, got \"%s\"", value);
    static char host[256];
    size_t n = (size_t)(colon - value);
    if (n >= sizeof host) return qun_fail(err, QUN_BAD_REQUEST, "listen: host too long");
    memcpy(host, value, n);
    host[n] = '\0';
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') { /* [::1]:8080 */
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    qun_server_cfg.host = host;
    qun_server_cfg.port = (int)port;
    return QUN_OK;
}

/* ---- what was set, for the startup log ----
 * Each key once, with its last value, and whether that value is the default; secrets
 * (and passwords inside URLs) are masked as they are recorded. */
#define MAX_NOTED 128
static struct {
    char key[64];
    char value[256];
    bool is_default;
    bool have_initial; /* integer settings: the value before the first set, the default */
    int64_t initial;
} g_noted[MAX_NOTED];
static int g_nnoted;

/* Defaults of the settings that are not in the integer table. */
static const struct {
    const char *key, *value;
} g_defaults[] = {
    {"listen", "127.0.0.1:8080"},
    {"data", "var/data"},
    {"policies", "policies"},
    {"matrix", "off"},
    {"log_format", "text"},
    {"background_priority", "idle"},
    {"log_requests", "true"},
    {"bench_hello", "false"},
    {"web_root", "web"},
    {"trusted_proxies", ""},
    {"webauthn_rp_id", "localhost"},
    {"webauthn_origin", "http://localhost:8080"},
};

static int noted(const char *key) {
    for (int i = 0; i < g_nnoted; i++)
        if (strcmp(g_noted[i].key, key) == 0) return i;
    if (g_nnoted == MAX_NOTED || strlen(key) >= sizeof g_noted[0].key) return -1;
    snprintf(g_noted[g_nnoted].key, sizeof g_noted[0].key, "%s", key);
    return g_nnoted++;
}

static void note(const char *key, const char *value) {
    int i = noted(key);
    if (i < 0) return;
    char *out = g_noted[i].value;
    size_t size = sizeof g_noted[i].value;
    const char *scheme = strstr(value, "://"), *at = strchr(value, '@');
    const char *colon = scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (strstr(key, "secret") || strstr(key, "password"))
        snprintf(out, size, "***");
    else if (colon) /* scheme://user:password@host */
        snprintf(out, size, "%.*s***%s", (int)(colon + 1 - value), value, at);
    else
        snprintf(out, size, "%s", value);
    g_noted[i].is_default = false;
    for (size_t k = 0; k < sizeof g_defaults / sizeof g_defaults[0]; k++)
        if (strcmp(g_defaults[k].key, key) == 0)
            g_noted[i].is_default = strcmp(g_defaults[k].value, value) == 0;
}

void qund_config_log(void) {
    qun_log_field_t f[MAX_NOTED];
    size_t n = 0;
    for (int i = 0; i < g_nnoted; i++)
        if (!g_noted[i].is_default) f[n++] = (qun_log_field_t){g_noted[i].key, g_noted[i].value, 0};
    const char *msg = n ? "settings that differ from their defaults:" : "every setting at its default";
    qun_log_fields("info", msg, f, n);
}

static qun_rc config_set(const char *key, const char *value, qun_err_t *err);

qun_rc qund_config_set(const char *key, const char *value, qun_err_t *err) {
    qun_rc rc = config_set(key, value, err);
    if (rc != QUN_OK) return rc;
    note(key, value);
    int i = noted(key);
    int64_t v;
    if (i >= 0 && g_noted[i].have_initial && to_i64(value, INT64_MIN, INT64_MAX, &v))
        g_noted[i].is_default = v == g_noted[i].initial;
    return rc;
}

static qun_rc config_set(const char *key, const char *value, qun_err_t *err) {
    int64_t v;
    if (strcmp(key, "listen") == 0) return set_listen(value, err);
    if (strcmp(key, "tls_cert") == 0 || strcmp(key, "tls_key") == 0) {
        const char **slot = key[4] == 'c' ? &qun_server_cfg.tls_cert : &qun_server_cfg.tls_key;
        *slot = *value ? qun_xstrdup(value) : NULL; /* checked when the server starts (tls.c) */
        return QUN_OK;
    }
    if (strcmp(key, "trusted_proxies") == 0) return qun_proxy_set(value, err);
    if (strcmp(key, "background_priority") == 0) {
        if (strcmp(value, "idle") && strcmp(value, "normal"))
            return qun_fail(err, QUN_BAD_REQUEST, "background_priority: expected idle or normal, got \"%s\"",
                            value);
        qund_background_idle = strcmp(value, "idle") == 0;
        return QUN_OK;
    }
    if (strcmp(key, "log_format") == 0) {
        if (strcmp(value, "text") && strcmp(value, "json"))
            return qun_fail(err, QUN_BAD_REQUEST, "log_format: expected text or json, got \"%s\"", value);
        qun_log_json = strcmp(value, "json") == 0;
        return QUN_OK;
    }
    if (strcmp(key, "data") == 0) {
        if (strlen(value) >= sizeof qund_data_dir)
            return qun_fail(err, QUN_BAD_REQUEST, "data: path too long");
        snprintf(qund_data_dir, sizeof qund_data_dir, "%s", value);
        return QUN_OK;
    }
    if (strcmp(key, "store") == 0) {
        if (strlen(value) >= sizeof qund_store) return qun_fail(err, QUN_BAD_REQUEST, "store: too long");
        snprintf(qund_store, sizeof qund_store, "%s", value);
        return QUN_OK;
    }
    if (strcmp(key, "instance") == 0) {
        if (strlen(value) >= sizeof qund_instance)
            return qun_fail(err, QUN_BAD_REQUEST, "instance: too long");
        snprintf(qund_instance, sizeof qund_instance, "%s", value);
        return QUN_OK;
    }
    if (strcmp(key, "ledger_origin") == 0) { /* fixed at first start: src/qund/main.c, docs/ledger.md */
        if (!qun_note_origin_ok(value))
            return qun_fail(
                err, QUN_BAD_REQUEST,
                "ledger_origin: expected a host name (letters, digits, \".-:[]_/\", up to %d), got \"%s\"",
                QUN_LEDGER_ORIGIN_MAX, value);
        snprintf(qund_ledger_origin, sizeof qund_ledger_origin, "%s", value);
        return QUN_OK;
    }
    if (strcmp(key, "policies") == 0) {
        if (strlen(value) >= sizeof qund_policy_dir)
            return qun_fail(err, QUN_BAD_REQUEST, "policies: path too long");
        snprintf(qund_policy_dir, sizeof qund_policy_dir, "%s", value);
        return QUN_OK;
    }
    if (strcmp(key, "admins") == 0) {
        qun_core_cfg.admins = qun_xstrdup(value);
        return QUN_OK;
    }
    if (strcmp(key, "compliance") == 0) {
        qun_core_cfg.compliance = qun_xstrdup(value);
        return QUN_OK;
    }
    if (strcmp(key, "webhook_url") == 0) {
        qun_outbox_cfg.urls = qun_xstrdup(value);
        return QUN_OK;
    }
    if (strcmp(key, "smtp_url") == 0 || strcmp(key, "smtp_from") == 0 || strcmp(key, "console_url") == 0) {
        const char **slot = key[0] == 'c'   ? &qun_notify_cfg.console_url
                            : key[5] == 'u' ? &qun_notify_cfg.smtp_url
                                            : &qun_notify_cfg.smtp_from;
        if (strlen(value) > 1000) return qun_fail(err, QUN_BAD_REQUEST, "%s: too long", key);
        if (key[0] == 'c' && *value && strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
            return qun_fail(err, QUN_BAD_REQUEST, "console_url: expected an http(s):// URL, got \"%s\"",
                            value);
        *slot = *value ? qun_xstrdup(value) : NULL; /* checked as a whole at startup (qun_mail_cfg_check) */
        return QUN_OK;
    }
    if (strcmp(key, "webhook_secret") == 0) {
        qun_outbox_cfg.secret = qun_xstrdup(value);
        return QUN_OK;
    }
    if (strcmp(key, "web_root") == 0) {
        qun_server_cfg.web_root = qun_xstrdup(value);
        return QUN_OK;
    }
    if (strcmp(key, "bench_hello") == 0) {
        qun_server_cfg.bench_hello = strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        return QUN_OK;
    }
    if (strcmp(key, "matrix") == 0) {
        bool on = strcmp(value, "on") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        if (!on && strcmp(value, "off") && strcmp(value, "false") && strcmp(value, "0"))
            return qun_fail(err, QUN_BAD_REQUEST, "matrix: expected on or off, got \"%s\"", value);
        qun_mx_cfg.enabled = on;
        return QUN_OK;
    }
    if (strcmp(key, "matrix_server_name") == 0) {
        /* The :domain of every Matrix id: a host name, an IP literal, an optional port. */
        size_t n = strlen(value);
        bool ok = n > 0 && n < sizeof qun_mx_cfg.server_name;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)value[i]) || strchr(".-:[]", value[i]);
        if (!ok)
            return qun_fail(err, QUN_BAD_REQUEST, "matrix_server_name: expected a host name, got \"%s\"",
                            value);
        snprintf(qun_mx_cfg.server_name, sizeof qun_mx_cfg.server_name, "%s", value);
        return QUN_OK;
    }
    if (strcmp(key, "matrix_base_url") == 0) {
        if ((strncmp(value, "http://", 7) && strncmp(value, "https://", 8)) ||
            strlen(value) >= sizeof qun_mx_cfg.base_url)
            return qun_fail(err, QUN_BAD_REQUEST, "matrix_base_url: expected an http(s):// URL");
        snprintf(qun_mx_cfg.base_url, sizeof qun_mx_cfg.base_url, "%s", value);
        return QUN_OK;
    }
    if (strcmp(key, "webauthn_rp_id") == 0) {
        /* A registrable host name: WebAuthn allows no IP address, port or scheme here. */
        size_t n = strlen(value);
        bool ok = n > 0 && n < 254 && value[0] != '.' && value[0] != '-';
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)value[i]) || value[i] == '.' || value[i] == '-';
        if (!ok)
            return qun_fail(err, QUN_BAD_REQUEST, "webauthn_rp_id: expected a host name, got \"%s\"", value);
        qun_passkey_cfg.rp_id = qun_xstrdup(value);
        return QUN_OK;
    }
    if (strcmp(key, "webauthn_origin") == 0) {
        /* Compared with the browser's clientDataJSON.origin byte for byte: no path. */
        const char *host = strstr(value, "://");
        if ((strncmp(value, "http://", 7) && strncmp(value, "https://", 8)) || !host || !host[3] ||
            strchr(host + 3, '/') || strlen(value) > 255)
            return qun_fail(err, QUN_BAD_REQUEST,
                            "webauthn_origin: expected scheme://host[:port] without a path, got \"%s\"",
                            value);
        qun_passkey_cfg.origin = qun_xstrdup(value);
        return QUN_OK;
    }
    if (strcmp(key, "log_requests") == 0) {
        qun_server_cfg.log_requests = strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        return QUN_OK;
    }
    /* Integer settings: name, bounds, and where the value goes. */
    static const struct {
        const char *key;
        int64_t lo, hi;
        int64_t *i64;
        int *i32;
    } ints[] = {
        {"threads", 1, 64, NULL, &qun_server_cfg.threads},
        {"argon2_queue", 1, 100000, NULL, &qun_server_cfg.argon2_queue},
        {"upload_queue", 1, 100000, NULL, &qun_server_cfg.upload_queue},
        {"upload_limit", 1, (int64_t)1 << 34, NULL, NULL},
        {"argon2_opslimit", 1, 10, NULL, NULL},
        {"argon2_memlimit_kib", 8, 1 << 22, NULL, NULL},
        {"session_ttl", 60, 3650LL * 86400, &qun_core_cfg.session_ttl, NULL},
        {"confirm_ttl", 10, 86400, &qun_core_cfg.confirm_ttl, NULL},
        {"payment_retention", 0, 3650LL * 86400, &qun_core_cfg.payment_retention, NULL},
        {"purge_batch", 1, 100000, NULL, &qun_core_cfg.purge_batch},
        {"purge_batch_busy", 1, 100000, NULL, &qun_core_cfg.purge_batch_busy},
        {"purge_pause_ms", 0, 60000, NULL, &qund_purge_pause_ms},
        {"search_batch", 1, 100000, NULL, &qun_search_batch},
        {"job_lease", 5, 86400, NULL, &qund_job_lease},
        {"idempotency_ttl", 86400, 365LL * 86400, &qun_core_cfg.idempotency_ttl, NULL},
        {"cooling_off", 0, 3650LL * 86400, &qun_core_cfg.cooling_off, NULL},
        {"notice", 0, 3650LL * 86400, &qun_core_cfg.notice, NULL},
        {"notice_threshold", 0, 100000000, &qun_core_cfg.notice_threshold, NULL},
        {"purge_grace", 0, 3650LL * 86400, &qun_core_cfg.purge_grace, NULL},
        {"tombstone", 0, 3650LL * 86400, &qun_core_cfg.tombstone, NULL},
        {"approval_expiry", 60, 3650LL * 86400, &qun_core_cfg.approval_expiry, NULL},
        {"event_ticket_ttl", 5, 3600, &qun_core_cfg.event_ticket_ttl, NULL},
        {"import_limit", 1, (int64_t)1 << 40, &qun_core_cfg.import_limit, NULL},
        {"webhook_timeout_ms", 100, 600000, NULL, &qun_outbox_cfg.timeout_ms},
        {"webhook_max_attempts", 1, 100, NULL, &qun_outbox_cfg.max_attempts},
        {"webhook_backoff_base", 1, 86400, NULL, &qun_outbox_cfg.backoff_base},
        {"smtp_timeout_ms", 100, 600000, NULL, &qun_notify_cfg.timeout_ms},
        {"smtp_max_attempts", 1, 100, NULL, &qun_notify_cfg.max_attempts},
        {"smtp_backoff_base", 1, 86400, NULL, &qun_notify_cfg.backoff_base},
        {"email_code_ttl", 60, 86400, &qun_notify_cfg.code_ttl, NULL},
        {"risk_frequency_max", 0, 1000000, NULL, &qun_risk_cfg.freq_max},
        {"risk_frequency_deny", 0, 1000000, NULL, &qun_risk_cfg.freq_deny_max},
        {"risk_rules", 0, 15, NULL, &qun_risk_cfg.rules},
        {"lockout_account_max", 0, 1000000, NULL, &qun_lockout_cfg.account_max},
        {"lockout_network_max", 0, 1000000, NULL, &qun_lockout_cfg.network_max},
        {"lockout_window", 1, 30LL * 86400, &qun_lockout_cfg.window, NULL},
        {"lockout_duration", 1, 30LL * 86400, &qun_lockout_cfg.duration, NULL},
        {"export_quota_bytes", 0, (int64_t)1 << 50, &qun_core_cfg.export_quota_bytes, NULL},
        {"export_retention", 3600, 3650LL * 86400, &qun_core_cfg.export_retention, NULL},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(key, ints[i].key) != 0) continue;
        if (!to_i64(value, ints[i].lo, ints[i].hi, &v))
            return qun_fail(err, QUN_BAD_REQUEST, "%s: expected an integer from %lld to %lld, got \"%s\"",
                            key, (long long)ints[i].lo, (long long)ints[i].hi, value);
        int64_t before = ints[i].i64                           ? *ints[i].i64
                         : ints[i].i32                         ? *ints[i].i32
                         : strcmp(key, "upload_limit") == 0    ? (int64_t)qun_server_cfg.upload_limit
                         : strcmp(key, "argon2_opslimit") == 0 ? (int64_t)qun_core_cfg.pw_opslimit
                                                               : (int64_t)(qun_core_cfg.pw_memlimit / 1024);
        int k = noted(key);
        if (k >= 0 && !g_noted[k].have_initial) {
            g_noted[k].have_initial = true;
            g_noted[k].initial = before;
        }
        if (ints[i].i64)
            *ints[i].i64 = v;
        else if (ints[i].i32)
            *ints[i].i32 = (int)v;
        else if (strcmp(key, "upload_limit") == 0)
            qun_server_cfg.upload_limit = (size_t)v;
        else if (strcmp(key, "argon2_opslimit") == 0)
            qun_core_cfg.pw_opslimit = (unsigned long long)v;
        else if (strcmp(key, "argon2_memlimit_kib") == 0)
            qun_core_cfg.pw_memlimit = (size_t)v * 1024;
        return QUN_OK;
    }
    return qun_fail(err, QUN_BAD_REQUEST, "unknown setting \"%s\"", key);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

qun_rc qund_config_load(const char *path, bool required, qun_err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f)
        return required ? qun_fail(err, QUN_BAD_REQUEST, "cannot read %s: %s", path, strerror(errno))
                        : QUN_OK;
    char line[1024];
    int lineno = 0;
    qun_rc rc = QUN_OK;
    while (rc == QUN_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = qun_fail(err, QUN_BAD_REQUEST, "%s:%d: expected key = value", path, lineno);
            break;
        }
        *eq = '\0';
        qun_err_t e;
        rc = qund_config_set(trim(s), trim(eq + 1), &e);
        if (rc != QUN_OK) qun_fail(err, rc, "%s:%d: %s", path, lineno, e.msg);
    }
    fclose(f);
    return rc;
}
