/* SPDX-License-Identifier: MIT */
/* The CLI's shared layer (client.h): where configuration lives, how arguments are
 * parsed, how one HTTP exchange with qund runs and retries, and how answers and
 * errors are printed, so every command behaves the same way. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "client.h"
#include "qun/version.h"

/* The invocation whose names qun_pathf resolves; set by qun_cli_init. */
static qun_cli_t *names_cli;

#define DEFAULT_URL "http://127.0.0.1:8080"
/* Answers kept in memory are JSON or problems; anything larger is not one of ours. */
#define MAX_ANSWER (64u << 20)

int qun_cli_fail(int exit, const char *code, const char *fmt, ...) {
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    fprintf(stderr, "qun: %s (%s)\n", detail, code);
    return exit;
}

/* ---- configuration ---- */

static int config_dir(char *out, size_t size) {
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    /* The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored. */
    if (xdg && xdg[0] == '/') {
        n = snprintf(out, size, "%s/qun", xdg);
    } else {
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home) return qun_failw(QUN_EXIT_FAIL, "CONFIG", "cli.err.no_home");
        n = snprintf(out, size, "%s/.config/qun", home);
    }
    if (n < 0 || (size_t)n >= size) return qun_failw(QUN_EXIT_FAIL, "CONFIG", "cli.err.config_path_long");
    return QUN_EXIT_OK;
}

/* Create dir and its missing parents; the last component gets mode 0700 because it
 * holds the bearer token. */
static int make_dirs(const char *dir) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", tmp, qun_errno_words(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", tmp, qun_errno_words(errno));
    return QUN_EXIT_OK;
}

/* Read a whole small file into a new string with trailing whitespace removed;
 * NULL when it does not exist or cannot be read. */
static char *slurp_trimmed(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    return buf;
}

/* The value of "url = ..." in the config file into out; false when not set. */
static bool config_url(const char *dir, char *out, size_t size) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[1200];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || strncmp(p, "url", 3) != 0) continue;
        p += 3;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p++ != '=') continue;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            p[--n] = '\0';
        if (n > 0 && n < size) {
            memcpy(out, p, n + 1);
            found = true;
        }
    }
    fclose(f);
    return found;
}

int qun_cli_init(qun_cli_t *c, const char *url_flag) {
    memset(c, 0, sizeof *c);
    names_cli = c;
    int rc = config_dir(c->dir, sizeof c->dir);
    if (rc != QUN_EXIT_OK) return rc;
    const char *env_url = getenv("QUN_URL");
    if (url_flag && *url_flag)
        c->url = url_flag;
    else if (env_url && *env_url)
        c->url = env_url;
    else if (config_url(c->dir, c->url_buf, sizeof c->url_buf))
        c->url = c->url_buf;
    else
        c->url = DEFAULT_URL;
    /* Paths start with '/', so drop the base URL's trailing slashes. */
    if (c->url != c->url_buf) snprintf(c->url_buf, sizeof c->url_buf, "%s", c->url);
    size_t n = strlen(c->url_buf);
    while (n > 0 && c->url_buf[n - 1] == '/')
        c->url_buf[--n] = '\0';
    c->url = c->url_buf;

    const char *env_token = getenv("QUN_TOKEN");
    if (env_token && *env_token) {
        c->token = strdup(env_token);
        c->token_from_env = true;
    } else {
        char path[1100];
        snprintf(path, sizeof path, "%s/token", c->dir);
        c->token = slurp_trimmed(path);
        if (c->token && !*c->token) {
            free(c->token);
            c->token = NULL;
        }
    }
    return QUN_EXIT_OK;
}

void qun_cli_free(qun_cli_t *c) {
    if (names_cli == c) names_cli = NULL;
    if (c->curl) curl_easy_cleanup(c->curl);
    if (c->token) sodium_memzero(c->token, strlen(c->token));
    free(c->token);
    c->curl = NULL;
    c->token = NULL;
}

/* Write data to <dir>/<name> with mode 0600 through a temporary file and a rename,
 * so a crash never leaves a half-written token behind. */
static int write_private(qun_cli_t *c, const char *name, const char *data) {
    int rc = make_dirs(c->dir);
    if (rc != QUN_EXIT_OK) return rc;
    char path[1100], tmp[1200];
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.create", tmp, qun_errno_words(errno));
    size_t len = strlen(data);
    /* O_CREAT does not change the mode of a leftover file; make sure it is private. */
    bool ok = fchmod(fd, 0600) == 0 && write(fd, data, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.write", path, qun_errno_words(saved));
    }
    return QUN_EXIT_OK;
}

int qun_cli_token_save(qun_cli_t *c, const char *token) {
    return write_private(c, "token", token);
}

int qun_cli_token_remove(qun_cli_t *c) {
    char path[1100];
    snprintf(path, sizeof path, "%s/token", c->dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.remove", path, qun_errno_words(errno));
    return QUN_EXIT_OK;
}

/* The key of a device secret in <dir>/device_secrets: a secret belongs to one device
 * record, which is one account's on one server. */
static char *secret_key(const qun_cli_t *c, const char *username, const char *device) {
    char *key = NULL;
    if (asprintf(&key, "%s %s %s", c->url, username, device) < 0) return NULL;
    /* Usernames are compared without case (they are ASCII): one account, one entry. */
    for (char *p = key + strlen(c->url) + 1; *p && *p != ' '; p++)
        *p = (char)tolower((unsigned char)*p);
    return key;
}

int qun_cli_device_secret(qun_cli_t *c, const char *username, const char *device, char *out, size_t size) {
    char path[1100];
    snprintf(path, sizeof path, "%s/device_secrets", c->dir);
    out[0] = '\0';
    json_t *all = json_load_file(path, 0, NULL);
    char *key = secret_key(c, username, device);
    const char *secret = key ? json_string_value(json_object_get(all, key)) : NULL;
    if (secret) snprintf(out, size, "%s", secret);
    free(key);
    json_decref(all);
    return QUN_EXIT_OK;
}

int qun_cli_device_secret_save(qun_cli_t *c, const char *username, const char *device, const char *secret) {
    char path[1100];
    snprintf(path, sizeof path, "%s/device_secrets", c->dir);
    json_t *all = json_load_file(path, 0, NULL);
    if (!json_is_object(all)) {
        json_decref(all);
        all = json_object();
    }
    char *key = secret_key(c, username, device), *text = NULL;
    if (key && json_object_set_new(all, key, json_string(secret)) == 0)
        text = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
    int rc = text ? write_private(c, "device_secrets", text)
                  : qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.device_secret");
    if (text) sodium_memzero(text, strlen(text));
    free(text);
    free(key);
    json_decref(all);
    return rc;
}

int qun_cli_device_id(qun_cli_t *c, char *out, size_t size) {
    char path[1100];
    snprintf(path, sizeof path, "%s/device_id", c->dir);
    char *id = slurp_trimmed(path);
    if (id && *id && strlen(id) <= 64) {
        snprintf(out, size, "%s", id);
        free(id);
        return QUN_EXIT_OK;
    }
    free(id);
    /* A random id rather than the hostname: it names this client, and reveals nothing. */
    unsigned char raw[8];
    char hex[17];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    snprintf(out, size, "cli-%s", hex);
    return write_private(c, "device_id", out);
}

/* ---- arguments ---- */

bool qun_parse_uint(const char *s, int64_t *out) {
    if (!s || !*s || strlen(s) > 18) return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

int qun_args_parse(int argc, char **argv, const qun_opt_t *opts, int min_pos, int max_pos, const char *usage,
                   qun_args_t *a) {
    memset(a, 0, sizeof *a);
    bool opts_done = false;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (opts_done || s[0] != '-' || s[1] == '\0') {
            if (a->npos == QUN_MAX_POS)
                return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.too_many_args", usage);
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            opts_done = true;
            continue;
        }
        const char *eq = strchr(s, '=');
        size_t nlen = eq ? (size_t)(eq - s) : strlen(s);
        int k = 0;
        for (; opts && opts[k].name; k++) {
            const qun_opt_t *o = &opts[k];
            if ((strlen(o->name) == nlen && strncmp(o->name, s, nlen) == 0) ||
                (o->alias && strlen(o->alias) == nlen && strncmp(o->alias, s, nlen) == 0))
                break;
        }
        if (!opts || !opts[k].name)
            return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.unknown_option", s, usage);
        if (!opts[k].has_value) {
            if (eq) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.no_value", opts[k].name);
            a->val[k] = "";
        } else if (eq) {
            a->val[k] = eq + 1;
        } else if (i + 1 < argc) {
            a->val[k] = argv[++i];
        } else {
            return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.needs_value", opts[k].name, usage);
        }
    }
    if (a->npos < min_pos || (max_pos >= 0 && a->npos > max_pos))
        return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.usage", usage);
    return QUN_EXIT_OK;
}

/* ---- paths ---- */

static bool unreserved(unsigned char ch) {
    /* '.' is escaped too: a segment of "." or ".." would otherwise be folded away
     * by URL normalization and reach another route. */
    return isalnum(ch) || ch == '-' || ch == '_' || ch == '~';
}

int qun_pathf(char *out, size_t size, const char *fmt, ...) {
    va_list ap;
    size_t n = 0;
    int rc = QUN_EXIT_OK, nth = 0;
    char gid[128] = "", uid[128];
    bool by_name = names_cli && strncmp(fmt, "/v1/groups/%s", 13) == 0,
         member = by_name && strncmp(fmt, "/v1/groups/%s/members/%s", 24) == 0;
    va_start(ap, fmt);
    for (const char *p = fmt; *p && rc == QUN_EXIT_OK; p++) {
        char piece[32];
        const char *lit = NULL;
        if (p[0] == '%' && p[1] == 's') {
            const unsigned char *s = va_arg(ap, const unsigned char *);
            nth++;
            if (by_name && nth == 1) {
                if (qun_group_ref(names_cli, (const char *)s, gid, sizeof gid) != QUN_EXIT_OK) {
                    va_end(ap);
                    return QUN_EXIT_FAIL;
                }
                s = (const unsigned char *)gid;
            } else if (member && nth == 2) {
                if (qun_member_ref(names_cli, gid, (const char *)s, uid, sizeof uid) != QUN_EXIT_OK) {
                    va_end(ap);
                    return QUN_EXIT_FAIL;
                }
                s = (const unsigned char *)uid;
            }
            for (; *s && n + 4 < size; s++) {
                if (unreserved(*s)) {
                    out[n++] = (char)*s;
                } else {
                    snprintf(out + n, 4, "%%%02X", *s);
                    n += 3;
                }
            }
            if (*s) rc = QUN_EXIT_USAGE;
            p++;
            continue;
        }
        if (p[0] == '%' && p[1] == 'I') {
            snprintf(piece, sizeof piece, "%lld", (long long)va_arg(ap, int64_t));
            lit = piece;
            p++;
        } else {
            piece[0] = *p;
            piece[1] = '\0';
            lit = piece;
        }
        size_t len = strlen(lit);
        if (n + len + 1 > size)
            rc = QUN_EXIT_USAGE;
        else
            memcpy(out + n, lit, len), n += len;
    }
    va_end(ap);
    out[n < size ? n : size - 1] = '\0';
    if (rc != QUN_EXIT_OK) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.arg_long");
    return QUN_EXIT_OK;
}

/* ---- HTTP ---- */

typedef struct {
    const qun_call_t *call;
    qun_resp_t *resp;
    CURL *h;
    size_t cap;
    bool too_big, sink_failed;
    bool bar;  /* draw a progress bar */
    bool drew; /* something is on the bar's line */
    int64_t last_ms;
} xfer_t;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg) {
    xfer_t *x = arg;
    size_t len = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    if (x->call->sink && status >= 200 && status < 300) {
        if (fwrite(p, 1, len, x->call->sink) != len) {
            x->sink_failed = true;
            return 0;
        }
        if (x->call->sink_hash) crypto_hash_sha256_update(x->call->sink_hash, (unsigned char *)p, len);
        x->resp->sink_bytes += (int64_t)len;
        return len;
    }
    qun_resp_t *r = x->resp;
    if (r->raw_len + len + 1 > MAX_ANSWER) {
        x->too_big = true;
        return 0;
    }
    if (r->raw_len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < r->raw_len + len + 1)
            cap *= 2;
        char *grown = realloc(r->raw, cap);
        if (!grown) return 0;
        r->raw = grown;
        x->cap = cap;
    }
    memcpy(r->raw + r->raw_len, p, len);
    r->raw_len += len;
    r->raw[r->raw_len] = '\0';
    return len;
}

/* Remember the file name the server gives a download (Content-Disposition). */
static size_t on_header(char *p, size_t size, size_t nmemb, void *arg) {
    xfer_t *x = arg;
    size_t len = size * nmemb;
    static const char key[] = "content-disposition:";
    if (len > sizeof key && strncasecmp(p, key, sizeof key - 1) == 0) {
        const char *end = p + len;
        const char *f = memmem(p, len, "filename=\"", 10);
        if (f) {
            f += 10;
            const char *q = memchr(f, '"', (size_t)(end - f));
            size_t n = q ? (size_t)(q - f) : 0;
            if (n > 0 && n < sizeof x->resp->filename) {
                memcpy(x->resp->filename, f, n);
                x->resp->filename[n] = '\0';
            }
        }
    }
    return len;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *arg) {
    xfer_t *x = arg;
    size_t n = fread(p, 1, size * nmemb, x->call->upload);
    if (n == 0 && ferror(x->call->upload)) return CURL_READFUNC_ABORT;
    return n;
}

static void human_size(double v, char out[32]) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(out, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void draw_bar(xfer_t *x, curl_off_t now, curl_off_t total) {
    char a[32], b[32], bar[31];
    int pct = total > 0 ? (int)(now * 100 / total) : 0;
    if (pct > 100) pct = 100;
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    human_size((double)now, a);
    human_size((double)total, b);
    fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  ", x->call->progress, bar, pct, a, b);
    fflush(stderr);
    x->drew = true;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    xfer_t *x = arg;
    int64_t t = mono_ms();
    if (t - x->last_ms < 100) return 0;
    x->last_ms = t;
    if (x->call->upload) {
        if (ultotal > 0) draw_bar(x, ulnow, ultotal);
    } else if (dltotal > 0) {
        long status = 0;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) draw_bar(x, dlnow, dltotal);
    }
    return 0;
}

/* What a transfer failure means: in Chinese for the failures people meet (nothing
 * listening, a wrong host name, a timeout, TLS), else as libcurl says it (English). */
static const char *curl_words(CURLcode res) {
    static const struct {
        CURLcode res;
        const char *key;
    } known[] = {{CURLE_COULDNT_CONNECT, "cli.curl.connect"},
                 {CURLE_COULDNT_RESOLVE_HOST, "cli.curl.resolve"},
                 {CURLE_COULDNT_RESOLVE_PROXY, "cli.curl.resolve"},
                 {CURLE_OPERATION_TIMEDOUT, "cli.curl.timeout"},
                 {CURLE_GOT_NOTHING, "cli.curl.nothing"},
                 {CURLE_SEND_ERROR, "cli.curl.lost"},
                 {CURLE_RECV_ERROR, "cli.curl.lost"},
                 {CURLE_PARTIAL_FILE, "cli.curl.lost"},
                 {CURLE_SSL_CONNECT_ERROR, "cli.curl.tls"},
                 {CURLE_PEER_FAILED_VERIFICATION, "cli.curl.tls"},
                 {CURLE_UNSUPPORTED_PROTOCOL, "cli.curl.protocol"},
                 {CURLE_URL_MALFORMAT, "cli.curl.url"}};
    if (qun_lang_zh())
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (known[i].res == res) return qun_w(known[i].key);
    return curl_easy_strerror(res);
}

static bool retryable(CURLcode res) {
    switch (res) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE: return true;
    default: return false;
    }
}

/* Clear the answer of a failed attempt and rewind the request's files before retrying. */
static bool reset_attempt(const qun_call_t *call, qun_resp_t *resp, xfer_t *x) {
    if (call->upload && fseek(call->upload, 0, SEEK_SET) != 0) return false;
    if (call->sink && resp->sink_bytes > 0) {
        /* Bytes already written can be taken back only from a regular file. */
        if (fflush(call->sink) != 0 || ftruncate(fileno(call->sink), 0) != 0 ||
            fseek(call->sink, 0, SEEK_SET) != 0)
            return false;
        if (call->sink_hash) crypto_hash_sha256_init(call->sink_hash);
    }
    free(resp->raw);
    resp->raw = NULL;
    resp->raw_len = 0;
    resp->sink_bytes = 0;
    resp->filename[0] = '\0';
    x->cap = 0;
    return true;
}

/* A verification method's words; an unknown one is named as it is. */
static const char *method_words(const char *m, char *buf, size_t size) {
    snprintf(buf, size, "req.method.%s", m);
    return qun_w_or(buf, m);
}

/* The requirements of a 428 answer, in each shape the API documents: [{method, how}]
 * (the platform's missing methods) or {all, any_of, review, denied} (a risk step-up),
 * in words from the methods' codes (`how` is developer text, never shown). */
static void report_requirements(json_t *reqs) {
    size_t i;
    json_t *r;
    char key[64];
    if (json_is_array(reqs)) {
        fprintf(stderr, "qun:   %s\n", qun_w("req.title"));
        json_array_foreach(reqs, i, r)
            fprintf(stderr, "qun:   - %s\n", method_words(qun_jstr_or(r, "method", "?"), key, sizeof key));
    } else if (json_is_object(reqs)) {
        static const char *const parts[][2] = {{"all", "req.all"}, {"any_of", "req.any_of"}};
        fprintf(stderr, "qun:   %s\n", qun_w("req.title"));
        for (size_t k = 0; k < 2; k++) {
            json_t *names = json_object_get(reqs, parts[k][0]);
            if (!json_array_size(names)) continue;
            char list[600] = "", line[800];
            size_t n = 0;
            json_array_foreach(names, i, r) {
                const char *w = method_words(json_is_string(r) ? json_string_value(r) : "?", key, sizeof key);
                n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                                      i ? (qun_lang_zh() ? "、" : "; ") : "", w);
                if (n >= sizeof list) break;
            }
            fprintf(stderr, "qun:   - %s\n", qun_wf(line, sizeof line, parts[k][1], list));
        }
        if (json_is_true(json_object_get(reqs, "review")))
            fprintf(stderr, "qun:   - %s\n", qun_w("req.review"));
        if (json_is_true(json_object_get(reqs, "denied")))
            fprintf(stderr, "qun:   - %s\n", qun_w("req.denied"));
    } else if (reqs) {
        fprintf(stderr, "qun:   %s\n", qun_w("req.unexpected"));
    }
}

/* name as one shell word for a hint to copy: as it is when it is plain, else in single
 * quotes (a quote inside written '\'' as sh reads it). */
static void shell_word(const char *name, char *out, size_t size) {
    bool plain = *name != '\0';
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-_.,/+@:%", *p) || (unsigned char)*p >= 0x80))
            plain = false;
    if (plain || size < 8) {
        snprintf(out, size, "%s", name);
        return;
    }
    size_t n = 0;
    out[n++] = '\'';
    for (const char *p = name; *p && n + 6 < size; p++) {
        if (*p == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *p;
        }
    }
    out[n++] = '\'';
    out[n] = '\0';
}

/* Print a problem answer in the one error format, with hints the answer carries. */
static int report_problem(qun_resp_t *resp) {
    json_t *p = resp->json;
    const char *code = qun_jstr_or(p, "code", NULL);
    if (!code) {
        char snippet[160] = "", status[24];
        if (resp->raw) snprintf(snippet, sizeof snippet, "%.150s", resp->raw);
        char hc[16];
        snprintf(hc, sizeof hc, "HTTP_%ld", resp->status);
        qun_fmt_int(resp->status, status);
        return resp->raw ? qun_failw(QUN_EXIT_FAIL, hc, "cli.err.http_body", status, snippet)
                         : qun_failw(QUN_EXIT_FAIL, hc, "cli.err.http", status);
    }
    /* The code's words in the user's language; the server's English detail is for
     * developers and logs, and never reaches the screen. */
    char key[96], line[400], t[32];
    snprintf(key, sizeof key, "error.%s", code);
    const char *words = qun_w_or(key, NULL);
    qun_cli_fail(QUN_EXIT_FAIL, code, "%s", words ? words : qun_wf(line, sizeof line, "cli.failed", code));
    const char *reason = qun_jstr_or(p, "reason", NULL);
    if (reason && strcmp(code, "PASSKEY_INVALID") == 0) {
        snprintf(key, sizeof key, "passkey.reason.%s", reason);
        fprintf(stderr, "qun:   %s\n", qun_w_or(key, reason));
    }
    if (qun_jstr_or(p, "field", NULL))
        fprintf(stderr, "qun:   %s\n", qun_wf(line, sizeof line, "cli.field", qun_jstr_or(p, "field", "")));
    int64_t retry = qun_jint(p, "retry_at") > 0 ? qun_jint(p, "retry_at") : qun_jint(p, "locked_until");
    if (retry > 0)
        fprintf(stderr, "qun:   %s\n", qun_wf(line, sizeof line, "cli.retry_at", qun_fmt_time(retry, t)));
    report_requirements(json_object_get(p, "requirements"));
    if (strcmp(code, "TOKEN_INVALID") == 0 || strcmp(code, "UNAUTHENTICATED") == 0)
        qun_hint("cli.login_again");
    if (strcmp(code, "GROUP_GONE") == 0) {
        /* Where the group went: the successor's name (told to its former members), else its id. */
        json_t *gone = json_object_get(p, "gone");
        const char *succ = qun_jstr_or(gone, "successor_name", qun_jstr_or(p, "successor", NULL));
        const char *name = qun_jstr_or(gone, "name", NULL);
        char when[32];
        if (succ && name)
            qun_hint("cli.gone_named", name, succ);
        else if (succ)
            qun_hint("cli.gone_continued", succ);
        else if (name)
            qun_hint("cli.gone", name);
        if (qun_jint(gone, "purge_after") > 0 && strcmp(qun_jstr_or(gone, "state", ""), "dissolved") == 0)
            qun_hint("cli.gone_restore", qun_fmt_time(qun_jint(gone, "purge_after"), when));
    }
    if (strcmp(code, "LIFECYCLE_CONFLICT") == 0) {
        const char *open = qun_jstr_or(p, "open", "");
        char ref[300];
        if (qun_jstr_or(p, "group_name", NULL))
            shell_word(qun_jstr_or(p, "group_name", ""), ref, sizeof ref);
        else
            snprintf(ref, sizeof ref, "<group>");
        if (strcmp(open, "transfer") == 0)
            qun_hint("cli.conflict_transfer", ref);
        else if (strcmp(open, "dissolution") == 0)
            qun_hint("cli.conflict_dissolution", ref);
        else
            qun_hint("cli.conflict_other", ref, ref);
    }
    return QUN_EXIT_FAIL;
}

int qun_cli_call(qun_cli_t *c, const qun_call_t *call, qun_resp_t *resp) {
    memset(resp, 0, sizeof *resp);
    if (!call->no_auth && !c->token)
        return qun_failw(QUN_EXIT_FAIL, "NOT_LOGGED_IN", "cli.err.not_logged_in");
    if (!c->curl && !(c->curl = curl_easy_init()))
        return qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.libcurl");
    CURL *h = c->curl;
    char url[3072], auth[512], idem[64];
    struct curl_slist *hdrs = NULL;
    char *text = NULL;
    int rc = QUN_EXIT_FAIL;
    xfer_t x = {.call = call, .resp = resp, .h = h};
    x.bar = call->progress && isatty(STDERR_FILENO);

    if (snprintf(url, sizeof url, "%s%s", c->url, call->path) >= (int)sizeof url) {
        rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.url_long");
        goto out;
    }
    curl_easy_reset(h); /* keeps the connection cache, drops the last call's options */
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "User-Agent: qun/" QUN_VERSION);
    /* evhttp answers 100-continue, but a round trip less is still faster. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (!call->no_auth) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    bool post = strcmp(call->method, "POST") == 0;
    if (post) {
        /* One key per logical request: the retry below reuses it, so a request whose
         * answer was lost is replayed by the server instead of run twice. */
        unsigned char raw[16];
        char hex[33];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
        snprintf(idem, sizeof idem, "Idempotency-Key: qun-%s", hex);
        hdrs = curl_slist_append(hdrs, idem);
    }
    if (call->upload) {
        char ct[160];
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 call->content_type ? call->content_type : "application/octet-stream");
        hdrs = curl_slist_append(hdrs, ct);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->upload_size);
    } else if (call->body || post) {
        text = call->body ? json_dumps(call->body, JSON_COMPACT) : strdup("");
        if (!text) {
            rc = qun_failw(QUN_EXIT_FAIL, "INTERNAL", "cli.err.nomem");
            goto out;
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    }
    if (!post) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (x.bar) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    }

    CURLcode res = CURLE_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt > 0) {
            if (!reset_attempt(call, resp, &x)) break;
            usleep(300 * 1000); /* a busy server gets a moment before the one retry */
        }
        res = curl_easy_perform(h);
        resp->status = 0;
        if (res == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        bool again = (res != CURLE_OK && retryable(res)) || resp->status == 503;
        if (!again) break;
    }
    if (x.drew) {
        if (res == CURLE_OK && resp->status >= 200 && resp->status < 300) {
            curl_off_t total = 0;
            curl_easy_getinfo(h, call->upload ? CURLINFO_SIZE_UPLOAD_T : CURLINFO_SIZE_DOWNLOAD_T, &total);
            draw_bar(&x, total, total);
        }
        fputc('\n', stderr);
    }
    if (x.sink_failed) {
        rc = qun_failw(QUN_EXIT_FAIL, "IO", "cli.err.write_download", qun_errno_words(errno));
        goto out;
    }
    if (x.too_big) {
        rc = qun_failw(QUN_EXIT_FAIL, "BAD_ANSWER", "cli.err.answer_large");
        goto out;
    }
    if (res != CURLE_OK) {
        rc = qun_failw(QUN_EXIT_FAIL, "NETWORK", "cli.err.network", c->url, curl_words(res));
        goto out;
    }
    if (resp->raw_len > 0) resp->json = json_loadb(resp->raw, resp->raw_len, 0, NULL);
    if (resp->status >= 200 && resp->status < 300)
        rc = QUN_EXIT_OK;
    else
        rc = call->quiet ? QUN_EXIT_FAIL : report_problem(resp);
out:
    curl_slist_free_all(hdrs);
    free(text);
    return rc;
}

int qun_cli_report(qun_resp_t *resp) {
    return report_problem(resp);
}

void qun_resp_free(qun_resp_t *resp) {
    json_decref(resp->json);
    free(resp->raw);
    resp->json = NULL;
    resp->raw = NULL;
}

int qun_cli_json(qun_cli_t *c, const char *method, const char *path, json_t *body, json_t **out) {
    qun_call_t call = {.method = method, .path = path, .body = body};
    qun_resp_t resp;
    *out = NULL;
    int rc = qun_cli_call(c, &call, &resp);
    if (rc == QUN_EXIT_OK) {
        *out = resp.json;
        resp.json = NULL;
    }
    qun_resp_free(&resp);
    json_decref(body);
    return rc;
}

int qun_cli_get_all(qun_cli_t *c, const char *path, const char *after, json_t **out) {
    json_t *all = json_array(), *page = NULL;
    char cursor[64] = "", full[2048];
    int rc = QUN_EXIT_OK;
    *out = NULL;
    if (after) snprintf(cursor, sizeof cursor, "%s", after);
    for (;;) {
        char query[128];
        if (cursor[0])
            rc = qun_pathf(query, sizeof query, "limit=200&after=%s", cursor);
        else
            snprintf(query, sizeof query, "limit=200");
        if (rc != QUN_EXIT_OK) break;
        if (snprintf(full, sizeof full, "%s%c%s", path, strchr(path, '?') ? '&' : '?', query) >=
            (int)sizeof full) {
            rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.path_long");
            break;
        }
        rc = qun_cli_json(c, "GET", full, NULL, &page);
        if (rc != QUN_EXIT_OK) break;
        json_array_extend(all, json_object_get(page, "items"));
        const char *next = qun_jstr_or(page, "next_cursor", NULL);
        /* A cursor that does not move would loop forever; stop instead. */
        if (!next || !*next || strlen(next) >= sizeof cursor || strcmp(next, cursor) == 0) break;
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(page);
        page = NULL;
    }
    json_decref(page);
    if (rc != QUN_EXIT_OK) {
        json_decref(all);
        return rc;
    }
    *out = json_pack("{s:o, s:n}", "items", all, "next_cursor");
    return QUN_EXIT_OK;
}

/* ---- output ---- */

void qun_print_json(json_t *j) {
    if (!j) {
        puts("null");
        return;
    }
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    putchar('\n');
}

const char *qun_jstr_or(json_t *o, const char *key, const char *fallback) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : fallback;
}

int64_t qun_jint(json_t *o, const char *key) {
    return (int64_t)json_integer_value(json_object_get(o, key));
}

const char *qun_fmt_time(int64_t t, char out[32]) {
    if (t <= 0) return strcpy(out, "-");
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M", &tm);
    return out;
}

/* Prompt on the terminal with echo off; the terminal is restored on every path. */
static int prompt_noecho(FILE *tty, const char *prompt, char *out, size_t size) {
    struct termios old, quiet;
    int fd = fileno(tty);
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fputs(prompt, tty);
    fflush(tty);
    bool got = fgets(out, (int)size, tty) != NULL;
    if (restore) tcsetattr(fd, TCSAFLUSH, &old);
    fputc('\n', tty);
    if (!got) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.no_password_given");
    out[strcspn(out, "\r\n")] = '\0';
    return QUN_EXIT_OK;
}

int qun_prompt_password(const char *prompt, char *out, size_t size) {
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.tty_password");
    int rc = prompt_noecho(tty, prompt, out, size);
    fclose(tty);
    return rc;
}

int qun_read_password(const char *flag, bool confirm, char *out, size_t size) {
    const char *env = getenv("QUN_PASSWORD");
    const char *given = flag ? flag : (env && *env ? env : NULL);
    if (given) {
        if (strlen(given) >= size) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.password_long");
        snprintf(out, size, "%s", given);
        return QUN_EXIT_OK;
    }
    /* Only prompt when a person is there; a script without a password fails fast. */
    if (!isatty(STDIN_FILENO)) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.no_password");
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.tty_password");
    char again[512];
    int rc = prompt_noecho(tty, qun_w("cli.password_prompt"), out, size);
    if (rc == QUN_EXIT_OK && confirm) {
        rc = prompt_noecho(tty, qun_w("cli.password_repeat_prompt"), again, sizeof again);
        if (rc == QUN_EXIT_OK && strcmp(out, again) != 0)
            rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.passwords_differ");
    }
    sodium_memzero(again, sizeof again);
    fclose(tty);
    return rc;
}

int qun_read_passphrase(char *out, size_t size) {
    const char *env = getenv("QUN_PASSPHRASE");
    if (env && *env) {
        if (strlen(env) >= size) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.passphrase_long");
        snprintf(out, size, "%s", env);
        return QUN_EXIT_OK;
    }
    if (!isatty(STDIN_FILENO)) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.no_passphrase");
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty) return qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.tty_passphrase");
    char again[1100];
    int rc = prompt_noecho(tty, qun_w("cli.passphrase_prompt"), out, size);
    if (rc == QUN_EXIT_OK) rc = prompt_noecho(tty, qun_w("cli.passphrase_repeat"), again, sizeof again);
    if (rc == QUN_EXIT_OK && strcmp(out, again) != 0)
        rc = qun_failw(QUN_EXIT_USAGE, "USAGE", "cli.err.passphrases_differ");
    sodium_memzero(again, sizeof again);
    fclose(tty);
    return rc;
}

char *qun_prompt_line(const char *prompt) {
    char *line = NULL;
    size_t cap = 0;
    fputs(prompt, stderr);
    fflush(stderr);
    ssize_t n = getline(&line, &cap, stdin);
    /* Piped answers are not echoed; end the prompt's line so what follows is readable. */
    if (n < 0 || !isatty(STDIN_FILENO)) fputc('\n', stderr);
    if (n < 0) n = 0;
    if (!line) return strdup("");
    line[n] = '\0';
    if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    if (n > 0 && line[n - 1] == '\r') line[--n] = '\0';
    return line;
}
