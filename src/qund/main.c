/* SPDX-License-Identifier: MIT */
/* qund, the qun server: reads its config, opens (and migrates) the store, and runs
 * the group-commit writer, the job scheduler and the HTTP loops until TERM/INT.
 * Under systemd (Type=notify, debian/qund.service) it says READY=1 once listening,
 * pings the watchdog from the first loop and reloads what it can on SIGHUP. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "../http/http.h"
#include "config.h"
#include "qun/core.h"
#include "qun/jobs.h"
#include "qun/ledger.h"
#include "qun/policy.h"
#include "qun/outbox.h"
#include "qun/mail.h"
#include "qun/notify.h"
#include "qun/util.h"
#include "qun/version.h"
#include "qun/writer.h"

int qund_purge_pause_ms = 5;
bool qund_background_idle = true;
char qund_data_dir[512] = "var/data";
char qund_policy_dir[512] = "policies";
/* The store's connection string (`store`); empty means sqlite:<data>/qun.db. */
char qund_store[1024] = "";
/* How job claims name this process (`instance`); empty means <hostname>:<port>. */
char qund_instance[128] = "";
int qund_job_lease = 60;
/* `ledger_origin`; empty means matrix_server_name when set, else qun.local (first start only). */
char qund_ledger_origin[QUN_LEDGER_ORIGIN_MAX + 1] = "";

static void usage(FILE *f) {
    fprintf(f, "usage: qund [--config FILE] [--listen HOST:PORT] [--data DIR] [--threads N]\n"
               "            [--set KEY=VALUE]... | --version | --help\n"
               "The qun group-chat server.  Flags override the config file (default: $QUND_CONFIG,\n"
               "else none); the file holds `key = value` lines (see qund.conf.default).\n"
               "Signals: TERM or INT stop qund; HUP reloads the policy packs.\n"
               "Under systemd (Type=notify) qund reports readiness and pings the watchdog.\n");
}

/* ---- the service manager: sd_notify(3) does nothing without $NOTIFY_SOCKET ---- */
static void notify_ready(void) {
    sd_notify(0, "READY=1\nSTATUS=serving");
}

/* The first loop's tick: the job scheduler's patience (qun_jobs_watch) every
 * TICK_USEC, and the service manager's watchdog at half its interval. */
#define TICK_USEC 250000
static qun_jobs_t *g_jobs;
static uint64_t g_watchdog_ticks, g_ticks; /* ticks per watchdog notice; ticks so far */

static void tick(void) {
    qun_jobs_watch(g_jobs);
    if (g_watchdog_ticks && ++g_ticks % g_watchdog_ticks == 0) sd_notify(0, "WATCHDOG=1");
}

static void notify_stopping(void) {
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

/* Policy tables replaced by a reload.  A request may still be reading one (the core reads
 * qun_core_cfg.policy without a lock), so they are freed only when qund exits; a reload
 * costs one table's memory, which a handful of reloads a day makes nothing. */
static qun_policy_t **retired_policies;
static size_t retired_count;

/* Load the policy packs into a new table and swap it in whole; a pack that does not load
 * leaves the running table in place and the log says why. */
static void reload_policies(void) {
    qun_err_t err = {{0}, {0}};
    qun_policy_t *fresh;
    if (qun_policy_load_dir(qund_policy_dir, &fresh, &err) != QUN_OK) {
        qun_log("warn", "reload: policies in %s not reloaded, the running ones stay: %s", qund_policy_dir,
                err.msg);
        return;
    }
    qun_policy_t *old = (qun_policy_t *)qun_core_cfg.policy;
    qun_policy_t **grown = realloc(retired_policies, (retired_count + 1) * sizeof *grown);
    if (grown) { /* without memory the old table stays allocated, unreachable */
        retired_policies = grown;
        retired_policies[retired_count++] = old;
    }
    __atomic_store_n(&qun_core_cfg.policy, fresh, __ATOMIC_RELEASE);
    qun_log("info", "reload: policies from %s", qun_policy_origin(fresh));
}

/* SIGHUP (systemctl reload qund): everything qund can take up again without a restart is
 * reloaded here, one call per kind, on the first loop's thread. */
static void reload(void) {
    sd_notify(0, "RELOADING=1\nSTATUS=reloading");
    reload_policies();
    sd_notify(0, "READY=1\nSTATUS=serving");
}

static int die(const char *what, const qun_err_t *err) {
    fprintf(stderr, "qund: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv) {
    const char *config = getenv("QUND_CONFIG");
    qun_err_t err = {{0}, {0}};
    for (int i = 1; i < argc; i++) /* the config file first, so flags win */
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[++i];
    /* Replies built on the writer are freed on the loop threads; without a high trim
     * threshold glibc keeps shrinking and regrowing the writer's arena (madvise storms). */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    qun_store_init();
    if (sodium_init() < 0) {
        fprintf(stderr, "qund: libsodium failed to initialise\n");
        return 1;
    }
    if (config && qund_config_load(config, true, &err) != QUN_OK) return die("config", &err);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        qun_rc rc = QUN_OK;
        if (strcmp(a, "--version") == 0) {
            printf("qund %s\n", QUN_VERSION);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--config") == 0 && v) {
            i++;
        } else if (strcmp(a, "--listen") == 0 && v) {
            rc = qund_config_set("listen", v, &err), i++;
        } else if (strcmp(a, "--data") == 0 && v) {
            rc = qund_config_set("data", v, &err), i++;
        } else if (strcmp(a, "--threads") == 0 && v) {
            rc = qund_config_set("threads", v, &err), i++;
        } else if (strcmp(a, "--set") == 0 && v && strchr(v, '=')) {
            char key[64];
            size_t n = (size_t)(strchr(v, '=') - v);
            snprintf(key, sizeof key, "%.*s", (int)(n < 63 ? n : 63), v);
            rc = qund_config_set(key, strchr(v, '=') + 1, &err), i++;
        } else {
            usage(stderr);
            return 2;
        }
        if (rc != QUN_OK) return die(a, &err);
    }
    qund_config_log();
    const char *tc = getenv("QUN_TEST_CLOCK");
    qun_server_cfg.test_clock = tc && strcmp(tc, "1") == 0;
    if (qun_server_cfg.test_clock) qun_log("warn", "QUN_TEST_CLOCK=1: POST /v1/test/clock can move time");

    if (qun_outbox_cfg_check(&err) != QUN_OK) return die("config", &err);
    if (qun_mail_cfg_check(&err) != QUN_OK) return die("config", &err);
    if (qun_tls_init(&err) != QUN_OK) return die("TLS", &err);

    if (mkdir(qund_data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "qund: cannot create data directory %s: %s\n", qund_data_dir, strerror(errno));
        return 1;
    }
    static char db_path[1100];
    if (qund_store[0])
        snprintf(db_path, sizeof db_path, "%s", qund_store);
    else
        snprintf(db_path, sizeof db_path, "sqlite:%s/qun.db", qund_data_dir);
    /* Logs name the store without a password a postgres:// URL may carry. */
    char shown[1100];
    const char *at = strchr(db_path, '@'), *scheme = strstr(db_path, "://");
    if (at && scheme && scheme < at)
        snprintf(shown, sizeof shown, "%.*s://…%s", (int)(scheme - db_path), db_path, at);
    else
        snprintf(shown, sizeof shown, "%s", db_path);
    qun_core_cfg.data_dir = qund_data_dir;
    qun_server_cfg.db_path = db_path;
    qun_core_cfg.store = db_path;

    qun_policy_t *policy;
    if (qun_policy_load_dir(qund_policy_dir, &policy, &err) != QUN_OK) return die("policy", &err);
    qun_core_cfg.policy = policy;
    qun_log("info", "policies from %s", qun_policy_origin(policy));
    qun_db_t *wdb;
    if (qun_db_open(db_path, false, true, &wdb, &err) != QUN_OK) return die(shown, &err);
    qun_log("info", "store %s at schema %d", shown, qun_db_schema_version(wdb));
    /* Usernames' keys need Unicode folding, which SQL lacks, so accounts created before
     * keys existed get theirs here; their collisions are logged one by one. */
    int64_t keyed, collisions;
    if (qun_username_backfill(wdb, &keyed, &collisions, &err) != QUN_OK) return die("username keys", &err);
    if (keyed) qun_log("info", "gave %lld existing usernames their case-insensitive key", (long long)keyed);
    if (collisions)
        qun_log(
            "warn",
            "%lld accounts share their username's key with an older account and log in by their exact "
            "username only; list them with GET /v1/admin/username-collisions (qun admin username-collisions)",
            (long long)collisions);
    /* Migration 0023 gave every account its Matrix localpart; a row written since by
     * something other than qund (SQLite cannot make the column NOT NULL) gets one here. */
    int64_t localparts;
    if (qun_mx_localpart_backfill(wdb, &localparts, &err) != QUN_OK) return die("Matrix localparts", &err);
    if (localparts) qun_log("info", "gave %lld accounts their Matrix localpart", (long long)localparts);
    /* The origin names the log in every checkpoint, so the first start fixes it (in the
     * name of ledger.key) and a later `ledger_origin` that differs stops qund here. */
    static qun_note_key_t ledger_key;
    char key_path[600], origin[160];
    snprintf(key_path, sizeof key_path, "%s/ledger.key", qund_data_dir);
    const char *first_origin = qund_ledger_origin[0]                        ? qund_ledger_origin
                               : qun_note_origin_ok(qun_mx_cfg.server_name) ? qun_mx_cfg.server_name
                                                                            : NULL;
    if (qun_note_key_load_or_create(key_path, first_origin, &ledger_key, &err) != QUN_OK)
        return die("ledger key", &err);
    qun_note_origin_of(&ledger_key, origin, sizeof origin);
    if (qund_ledger_origin[0] && strcmp(origin, qund_ledger_origin) != 0) {
        fprintf(
            stderr,
            "qund: ledger_origin is \"%s\" but this ledger's origin, fixed at its first start in %s, is "
            "\"%s\"; set ledger_origin = %s (or remove the setting), or start a new log under the new origin "
            "with the key-rotation steps in docs/ledger.md (\"Changing the origin\")\n",
            qund_ledger_origin, key_path, origin, origin);
        return 1;
    }
    qun_log("info", "ledger origin %s (checkpoints signed by %s)", origin, ledger_key.name);
    qun_server_cfg.ledger_key = &ledger_key;
    qun_writer_t *writer;
    if (qun_writer_start(wdb, 512, &writer, &err) != QUN_OK) return die("writer", &err);
    if (!qun_writer_yield(writer, qund_background_idle) && qund_background_idle)
        qun_log("info", "background work (purges, fan-outs) runs at normal CPU priority: this process may "
                        "not return a thread from SCHED_IDLE (RLIMIT_NICE below 20, no CAP_SYS_NICE)");
    qun_jobs_t *jobs;
    if (!qund_instance[0]) {
        char host[64] = "qund";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(qund_instance, sizeof qund_instance, "%s:%d", host, qun_server_cfg.port);
    }
    if (qun_jobs_start(db_path, writer, qund_purge_pause_ms, qund_instance, qund_job_lease, &jobs, &err) !=
        QUN_OK)
        return die("jobs", &err);
    qun_outbox_t *outbox;
    if (qun_outbox_start(db_path, writer, &outbox, &err) != QUN_OK) return die("webhooks", &err);
    qun_mail_t *mail;
    if (qun_mail_start(db_path, writer, &mail, &err) != QUN_OK) return die("mail", &err);
    if (qun_mx_cfg.enabled) { /* Matrix clients: defaults from where qund listens */
        const char *h = qun_server_cfg.host;
        bool any = strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
        bool v6 = strchr(h, ':') != NULL;
        if (!qun_mx_cfg.server_name[0])
            snprintf(qun_mx_cfg.server_name, sizeof qun_mx_cfg.server_name, "%s%s%s", v6 && !any ? "[" : "",
                     any ? "localhost" : h, v6 && !any ? "]" : "");
        if (!qun_mx_cfg.base_url[0])
            snprintf(qun_mx_cfg.base_url, sizeof qun_mx_cfg.base_url, "%s://%s%s%s:%d",
                     qun_server_cfg.tls_cert ? "https" : "http", v6 && !any ? "[" : "", any ? "localhost" : h,
                     v6 && !any ? "]" : "", qun_server_cfg.port);
        qun_log("info", "matrix: point Matrix clients at %s (user ids look like @name:%s)",
                qun_mx_cfg.base_url, qun_mx_cfg.server_name);
    }
    uint64_t watchdog_usec = 0;
    qun_server_cfg.tick_usec = TICK_USEC;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
        if (watchdog_usec / 2 < TICK_USEC)
            qun_server_cfg.tick_usec = watchdog_usec / 2 ? watchdog_usec / 2 : 1;
        g_watchdog_ticks = watchdog_usec / 2 / qun_server_cfg.tick_usec;
        if (!g_watchdog_ticks) g_watchdog_ticks = 1;
    }
    g_jobs = jobs;
    qun_server_cfg.on_tick = tick;
    qun_server_cfg.on_ready = notify_ready;
    qun_server_cfg.on_reload = reload;
    qun_server_cfg.on_stopping = notify_stopping;
    qun_rc rc = qun_server_run(writer, &err);
    qun_jobs_stop(jobs);
    qun_outbox_stop(outbox);
    qun_mail_stop(mail);
    qun_writer_stop(writer);
    if (rc != QUN_OK) return die("server", &err);
    qun_policy_free((qun_policy_t *)qun_core_cfg.policy);
    for (size_t i = 0; i < retired_count; i++)
        qun_policy_free(retired_policies[i]);
    free(retired_policies);
    qun_log("info", "qund stopped");
    return 0;
}
