/* SPDX-License-Identifier: MIT */
/* Canonical JSON digests, a compact encoder, and one integer read from a text
 * (include/qun/json.h). */
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

/* ---- the compact encoder ---- */
typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
    if (o->failed) return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = true;
            return;
        }
        o->p = p, o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* A JSON string's text, escaped as jansson does (the short escapes, \u00XX for the
 * other control characters, nothing else). */
static void put_string(out_t *o, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(o, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: esc[1] = 'u'; break;
        }
        put(o, esc, esc[1] == 'u' ? 6 : 2);
    }
    put(o, s + run, n - run);
    put(o, "\"", 1);
}

static void put_int(out_t *o, json_int_t v) {
    char b[24], *e = b + sizeof b, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0) *--p = '-';
    put(o, p, (size_t)(e - p));
}

static void put_value(out_t *o, const json_t *v, int depth) {
    if (depth > 1000 || !v) {
        o->failed = true;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_NULL: put(o, "null", 4); break;
    case JSON_TRUE: put(o, "true", 4); break;
    case JSON_FALSE: put(o, "false", 5); break;
    case JSON_INTEGER: put_int(o, json_integer_value(v)); break;
    case JSON_STRING: put_string(o, json_string_value(v), json_string_length(v)); break;
    case JSON_REAL: {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (t)
            put(o, t, strlen(t));
        else
            o->failed = true;
        free(t);
        break;
    }
    case JSON_ARRAY: {
        put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) put(o, ",", 1);
            put_value(o, json_array_get(v, i), depth + 1);
        }
        put(o, "]", 1);
        break;
    }
    case JSON_OBJECT: {
        put(o, "{", 1);
        bool first = true;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) {
            if (!first) put(o, ",", 1);
            first = false;
            put_string(o, k, klen);
            put(o, ":", 1);
            put_value(o, x, depth + 1);
        }
        put(o, "}", 1);
        break;
    }
    }
}

char *qun_json_compact(const json_t *v) {
    out_t o = {NULL, 0, 0, false};
    put_value(&o, v, 0);
    if (!o.failed) put(&o, "", 0);
    if (o.failed || !o.p) {
        free(o.p);
        return NULL;
    }
    o.p[o.len] = '\0';
    return o.p;
}
