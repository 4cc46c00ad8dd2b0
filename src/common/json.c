/* SPDX-License-Identifier: MIT */
/* Canonical JSON digests, a compact encoder, and one integer read from a text
 * (include/qun/json.h). */
#include <stdio.h>
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

/* ---- lines ---- */

void qun_line_put(qun_line_t *l, const char *b, size_t n) {
    if (l->oom) return;
    if (l->len + n > l->cap) {
        size_t cap = (l->len + n) * 2 + 256;
        char *p = realloc(l->p, cap);
        if (!p) {
            l->oom = true;
            return;
        }
        l->p = p;
        l->cap = cap;
    }
    memcpy(l->p + l->len, b, n);
    l->len += n;
}

void qun_line_printf(qun_line_t *l, const char *fmt, long long v) {
    char b[96];
    int n = snprintf(b, sizeof b, fmt, v);
    if (n > 0) qun_line_put(l, b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
}

void qun_line_jstrn(qun_line_t *l, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    qun_line_put(l, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        qun_line_put(l, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0};
        size_t k = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default: e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15]; k = 6;
        }
        qun_line_put(l, e, k);
    }
    qun_line_put(l, s + run, n - run);
    qun_line_put(l, "\"", 1);
}

void qun_line_jstr(qun_line_t *l, const char *s) {
    qun_line_jstrn(l, s, strlen(s));
}

/* ---- the compact encoder ---- */

static void put_int(qun_line_t *o, json_int_t v) {
    char b[24], *e = b + sizeof b, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0) *--p = '-';
    qun_line_put(o, p, (size_t)(e - p));
}

static void put_value(qun_line_t *o, const json_t *v, int depth) {
    if (depth > 1000 || !v) {
        o->oom = true;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_NULL: qun_line_put(o, "null", 4); break;
    case JSON_TRUE: qun_line_put(o, "true", 4); break;
    case JSON_FALSE: qun_line_put(o, "false", 5); break;
    case JSON_INTEGER: put_int(o, json_integer_value(v)); break;
    case JSON_STRING: qun_line_jstrn(o, json_string_value(v), json_string_length(v)); break;
    case JSON_REAL: {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (t)
            qun_line_put(o, t, strlen(t));
        else
            o->oom = true;
        free(t);
        break;
    }
    case JSON_ARRAY: {
        qun_line_put(o, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) qun_line_put(o, ",", 1);
            put_value(o, json_array_get(v, i), depth + 1);
        }
        qun_line_put(o, "]", 1);
        break;
    }
    case JSON_OBJECT: {
        qun_line_put(o, "{", 1);
        bool first = true;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) {
            if (!first) qun_line_put(o, ",", 1);
            first = false;
            qun_line_jstrn(o, k, klen);
            qun_line_put(o, ":", 1);
            put_value(o, x, depth + 1);
        }
        qun_line_put(o, "}", 1);
        break;
    }
    }
}

char *qun_json_compact(const json_t *v) {
    qun_line_t o = {NULL, 0, 0, false};
    put_value(&o, v, 0);
    qun_line_put(&o, "", 1); /* its NUL */
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
