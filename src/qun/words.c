/* SPDX-License-Identifier: MIT */
/* The CLI's words (words.def) and the language they are shown in: Simplified Chinese
 * when the locale the environment names (LC_ALL, else LC_MESSAGES, else LANG, as POSIX
 * orders them) starts with "zh", else English.  Server answers are rendered from their
 * codes through this table, never from the server's English `detail`; the client's own
 * sentences, errors (qun_failw), labels and headers are rows of it too. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

typedef struct {
    const char *key, *en, *zh;
} word_t;

static const word_t words[] = {
#define W(key, en, zh) {key, en, zh},
#include "words.def"
#undef W
};

bool qun_lang_zh(void) {
    static const char *vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return strncmp(v, "zh", 2) == 0;
    }
    return false;
}

/* The words of key in one language; fallback when the table has no such key. */
static const char *lookup(const char *key, bool zh, const char *fallback) {
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(words[i].key, key) == 0) return zh ? words[i].zh : words[i].en;
    return fallback;
}

const char *qun_w_or(const char *key, const char *fallback) {
    return lookup(key, qun_lang_zh(), fallback);
}

const char *qun_w(const char *key) {
    return qun_w_or(key, key);
}

/* Where the pieces of a row go: a bounded buffer, or a stream. */
typedef struct {
    char *out;
    size_t size, n;
    FILE *f;
} sink_t;

static void put(sink_t *s, const char *p, size_t len) {
    if (s->f) {
        fwrite(p, 1, len, s->f);
        return;
    }
    for (size_t i = 0; i < len && s->n + 1 < s->size; i++)
        s->out[s->n++] = p[i];
}

/* The words p with each %s replaced by the next string argument (NULL is ""). */
static void fill_text(sink_t *s, const char *p, va_list ap) {
    const char *mark;
    while ((mark = strstr(p, "%s")) != NULL) {
        put(s, p, (size_t)(mark - p));
        const char *arg = va_arg(ap, const char *);
        if (arg) put(s, arg, strlen(arg));
        p = mark + 2;
    }
    put(s, p, strlen(p));
}

static void fill(sink_t *s, const char *key, va_list ap) {
    fill_text(s, qun_w(key), ap);
}

const char *qun_wf(char *out, size_t size, const char *key, ...) {
    sink_t s = {.out = out, .size = size};
    va_list ap;
    va_start(ap, key);
    fill(&s, key, ap);
    va_end(ap);
    out[s.n] = '\0';
    return out;
}

const char *qun_vwf(char *out, size_t size, bool english, const char *key, va_list ap) {
    sink_t s = {.out = out, .size = size};
    fill_text(&s, english ? lookup(key, false, key) : qun_w(key), ap);
    out[s.n] = '\0';
    return out;
}

const char *qun_wf_en(char *out, size_t size, const char *key, ...) {
    va_list ap;
    va_start(ap, key);
    qun_vwf(out, size, true, key, ap);
    va_end(ap);
    return out;
}

/* The words of key on f between prefix and a newline. */
static void vprint(FILE *f, const char *prefix, const char *key, va_list ap) {
    sink_t s = {.f = f};
    fputs(prefix, f);
    fill(&s, key, ap);
    fputc('\n', f);
}

void qun_say(const char *key, ...) {
    va_list ap;
    va_start(ap, key);
    vprint(stdout, "", key, ap);
    va_end(ap);
}

void qun_note(const char *key, ...) {
    va_list ap;
    va_start(ap, key);
    vprint(stderr, "qun: ", key, ap);
    va_end(ap);
}

void qun_hint(const char *key, ...) {
    va_list ap;
    va_start(ap, key);
    vprint(stderr, "qun:   ", key, ap);
    va_end(ap);
}

int qun_failw(int exit, const char *code, const char *key, ...) {
    sink_t s = {.f = stderr};
    va_list ap;
    fputs("qun: ", stderr);
    va_start(ap, key);
    fill(&s, key, ap);
    va_end(ap);
    fprintf(stderr, " (%s)\n", code);
    return exit;
}

const char *qun_errno_words(int e) {
    /* The errors a person meets with their own files; the rest as the C library says
     * them (English: qun does not switch the C library's locale). */
    static const struct {
        int e;
        const char *key;
    } known[] = {{ENOENT, "cli.errno.ENOENT"}, {EACCES, "cli.errno.EACCES"},
                 {EPERM, "cli.errno.EACCES"},  {EEXIST, "cli.errno.EEXIST"},
                 {EISDIR, "cli.errno.EISDIR"}, {ENOTDIR, "cli.errno.ENOTDIR"},
                 {ENOSPC, "cli.errno.ENOSPC"}, {EDQUOT, "cli.errno.ENOSPC"},
                 {EROFS, "cli.errno.EROFS"},   {ENAMETOOLONG, "cli.errno.ENAMETOOLONG"},
                 {EIO, "cli.errno.EIO"}};
    if (qun_lang_zh())
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (known[i].e == e) return qun_w(known[i].key);
    return strerror(e);
}

const char *qun_detail_words(const char *code, const char *detail) {
    static char key[96];
    if (!qun_lang_zh()) return detail;
    snprintf(key, sizeof key, "error.%s", code);
    return qun_w_or(key, detail);
}

size_t qun_label_width(const char *const keys[], size_t n, size_t min) {
    for (size_t i = 0; i < n; i++) {
        size_t w = qun_text_width(qun_w(keys[i])) + 1;
        if (w > min) min = w;
    }
    return min;
}

void qun_field(size_t width, const char *key, const char *value) {
    fputs("  ", stdout);
    qun_print_cell(qun_w(key), width);
    printf("%s\n", value);
}

const char *qun_fmt_int(int64_t v, char out[24]) {
    snprintf(out, 24, "%lld", (long long)v);
    return out;
}
