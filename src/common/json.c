/* SPDX-License-Identifier: MIT */
/* Canonical JSON digests, and one integer read from a text (include/qun/json.h). */
#include <stdlib.h>
#include <string.h>

#include "qun/json.h"
#include "qun/util.h"

bool qun_json_digest(json_t *v, char out[65]) {
    char *text = qun_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text) {
        out[0] = '\0';
        return false;
    }
    qun_sha256_hex(out, text, strlen(text));
    free(text);
    return true;
}

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Past the string that starts at p (its opening quote), NULL if it never ends. */
static const char *past_string(const char *p) {
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p) return NULL;
    return *p ? p + 1 : NULL;
}

/* Past the value at p: a string, an object or an array (whose strings may hold any
 * bracket), or a number or literal up to the next separator; NULL on an early end. */
static const char *past_value(const char *p) {
    if (*p == '"') return past_string(p);
    if (*p != '{' && *p != '[') {
        while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' &&
               *p != '\r')
            p++;
        return p;
    }
    int depth = 0;
    do {
        if (*p == '"') {
            if (!(p = past_string(p))) return NULL;
            continue;
        }
        if (*p == '{' || *p == '[') depth++;
        if (*p == '}' || *p == ']') depth--;
        if (!*p) return NULL;
        p++;
    } while (depth > 0);
    return p;
}

bool qun_json_top_int(const char *text, const char *key, int64_t *v) {
    *v = 0;
    size_t klen = strlen(key);
    const char *p = ws(text);
    if (*p++ != '{') return false;
    for (p = ws(p); *p == '"'; p = ws(p + 1)) {
        const char *end = past_string(p);
        if (!end) return false;
        /* A key written with escapes is never one of ours: compared as it stands. */
        bool match = (size_t)(end - p - 2) == klen && memcmp(p + 1, key, klen) == 0;
        p = ws(end);
        if (*p++ != ':') return false;
        p = ws(p);
        if (match) {
            bool neg = *p == '-';
            const char *d = p + neg;
            if (*d < '0' || *d > '9') return false;
            uint64_t n = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
            for (; *d >= '0' && *d <= '9'; d++) {
                if (n > (lim - (uint64_t)(*d - '0')) / 10) return false;
                n = n * 10 + (uint64_t)(*d - '0');
            }
            if (*d == '.' || *d == 'e' || *d == 'E') return false;
            *v = neg ? (int64_t)(0 - n) : (int64_t)n;
            return true;
        }
        if (!(p = past_value(p))) return false;
        p = ws(p);
        if (*p != ',') return false;
    }
    return false;
}
