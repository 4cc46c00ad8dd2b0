/* SPDX-License-Identifier: MIT */
/* The web console's static files: `GET /` answers <web_root>/index.html and
 * `GET /app/<path>` a file under <web_root>.  Only regular files inside the directory
 * are served, only with a known extension, and only through names made of plain
 * characters, so neither "..", percent-encoded tricks, hidden files nor symbolic links
 * pointing elsewhere can reach anything outside it. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http.h"

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".webmanifest", "application/manifest+json"},
};

static const char *type_of(const char *name) {
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return NULL;
}

/* A relative name is acceptable when every segment is non-empty, does not start with
 * a dot, and uses only letters, digits, '-', '_' and '.'.  The path arrives
 * undecoded, so '%' (and with it every encoded form of "..") is refused here too. */
static bool name_ok(const char *rel) {
    size_t n = strlen(rel);
    if (n == 0 || n > 255) return false;
    bool seg_start = true;
    for (const char *c = rel; *c; c++) {
        if (*c == '/') {
            if (seg_start) return false; /* empty segment */
            seg_start = true;
            continue;
        }
        if (seg_start && *c == '.') return false; /* "..", "." and hidden files */
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                     *c == '-' || *c == '_' || *c == '.';
        if (!plain) return false;
        seg_start = false;
    }
    return !seg_start;
}

static qun_rc serve(qun_req_t *r, const char *rel) {
    const char *root = qun_server_cfg.web_root ? qun_server_cfg.web_root : "web";
    const char *type = type_of(rel);
    if (!name_ok(rel) || !type)
        return qun_fail(&r->err, QUN_FILE_NOT_FOUND, "the web console has no file %.200s", rel);
    char real_root[PATH_MAX], want[PATH_MAX + 256], real[PATH_MAX];
    if (!realpath(root, real_root))
        return qun_fail(&r->err, QUN_FILE_NOT_FOUND, "the web console is not installed (web_root %.200s)",
                        root);
    snprintf(want, sizeof want, "%s/%s", real_root, rel);
    struct stat st;
    size_t n = strlen(real_root);
    /* realpath resolves symbolic links: the file must still be inside the root. */
    if (!realpath(want, real) || strncmp(real, real_root, n) != 0 || real[n] != '/' || stat(real, &st) != 0 ||
        !S_ISREG(st.st_mode))
        return qun_fail(&r->err, QUN_FILE_NOT_FOUND, "the web console has no file %.200s", rel);
    r->file_path = strdup(real);
    if (!r->file_path) return qun_fail(&r->err, QUN_NOMEM, "out of memory");
    snprintf(r->content_type, sizeof r->content_type, "%s", type);
    r->status = 200;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (strcmp(type, types[0].type) == 0) {
        /* The console only ever talks to its own origin and runs only its own modules;
         * blob: images are file previews it fetched itself (views/files.js). */
        evhttp_add_header(h, "Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                          "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
        evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    }
    return QUN_OK;
}

qun_rc h_web_index(qun_req_t *r) {
    return serve(r, "index.html");
}

qun_rc h_web_asset(qun_req_t *r) {
    return serve(r, r->params[0]);
}
