/* SPDX-License-Identifier: MIT */
/* The CLI's words (words.def) and the language they are shown in: Simplified Chinese
 * when the locale the environment names (LC_ALL, else LC_MESSAGES, else LANG, as POSIX
 * orders them) starts with "zh", else English.  Server answers are rendered from their
 * codes through this table, never from the server's English `detail`. */
#include <stdarg.h>
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

const char *qun_w_or(const char *key, const char *fallback) {
    bool zh = qun_lang_zh();
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(words[i].key, key) == 0) return zh ? words[i].zh : words[i].en;
    return fallback;
}

const char *qun_w(const char *key) {
    return qun_w_or(key, key);
}

const char *qun_wf(char *out, size_t size, const char *key, ...) {
    const char *fmt = qun_w(key);
    va_list ap;
    size_t n = 0;
    va_start(ap, key);
    for (const char *p = fmt; *p && n + 1 < size; p++) {
        if (p[0] == '%' && p[1] == 's') {
            const char *arg = va_arg(ap, const char *);
            for (arg = arg ? arg : ""; *arg && n + 1 < size; arg++)
                out[n++] = *arg;
            p++;
        } else {
            out[n++] = *p;
        }
    }
    va_end(ap);
    out[n] = '\0';
    return out;
}
