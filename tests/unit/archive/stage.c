/* SPDX-License-Identifier: MIT */
/* Unit tests of src/archive/stage.c's hand-written JSON lines: for fixed and random
 * UTF-8 strings, qun_line_jstr writes the very bytes jansson's encoder writes, and a
 * whole message line equals json_dumps(JSON_COMPACT | JSON_SORT_KEYS) of the same
 * object plus a newline (docs/archive-format.md promises the same bytes). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "qun/stage.h"

#include "unit.h"

static void same_as_jansson(const char *s) {
    qun_line_t l = {NULL, 0, 0, false};
    qun_line_jstr(&l, s);
    qun_line_put(&l, "", 1); /* NUL */
    json_t *j = json_string(s);
    char *want = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    CHECK(want != NULL && !l.oom);
    if (want && l.p && strcmp(l.p, want) != 0) {
        fprintf(stderr, "line_jstr: got %s, jansson %s\n", l.p, want);
        CHECK(0);
    }
    free(want);
    json_decref(j);
    free(l.p);
}

/* A random valid UTF-8 string of up to n code points, biased to the characters that
 * need escaping. */
static void random_utf8(char *out, size_t n) {
    size_t k = 0, len = randombytes_uniform((uint32_t)n + 1);
    for (size_t i = 0; i < len; i++) {
        uint32_t cls = randombytes_uniform(6), c;
        if (cls == 0)
            c = 1 + randombytes_uniform(0x1f); /* control */
        else if (cls == 1)
            c = "\"\\/\x7f"[randombytes_uniform(4)];
        else if (cls == 2)
            c = 0x20 + randombytes_uniform(0x5f); /* printable ASCII */
        else if (cls == 3)
            c = 0x80 + randombytes_uniform(0x780); /* 2 bytes */
        else if (cls == 4) {
            c = 0x800 + randombytes_uniform(0xf800 - 0x800); /* 3 bytes, no surrogates */
            if (c >= 0xd800 && c <= 0xdfff) c = 0x4e2d;
        } else
            c = 0x10000 + randombytes_uniform(0x100000); /* 4 bytes */
        if (c < 0x80)
            out[k++] = (char)c;
        else if (c < 0x800)
            out[k++] = (char)(0xc0 | c >> 6), out[k++] = (char)(0x80 | (c & 63));
        else if (c < 0x10000)
            out[k++] = (char)(0xe0 | c >> 12), out[k++] = (char)(0x80 | (c >> 6 & 63)),
            out[k++] = (char)(0x80 | (c & 63));
        else
            out[k++] = (char)(0xf0 | c >> 18), out[k++] = (char)(0x80 | (c >> 12 & 63)),
            out[k++] = (char)(0x80 | (c >> 6 & 63)), out[k++] = (char)(0x80 | (c & 63));
    }
    out[k] = '\0';
}

/* Strings that need every kind of escaping, one row each. */
static void fixed_strings(void) {
    static const char *fixed[] = {"",
                                  "plain",
                                  "\"quoted\"",
                                  "back\\slash",
                                  "new\nline\ttab\r\b\f",
                                  "\x01\x1f\x7f",
                                  "a/b",
                                  "é✓😀 中文",
                                  "m0 by u1 \"q\" \\ \n\x01"};
    for (size_t i = 0; i < NROWS(fixed); i++)
        same_as_jansson(fixed[i]);
}

/* 20000 random UTF-8 strings biased to the characters that need escaping. */
static void random_strings(void) {
    char buf[64 * 4 + 1];
    for (int i = 0; i < 20000; i++) {
        random_utf8(buf, 64);
        same_as_jansson(buf);
    }
}

/* A whole message line, as the export job builds it. */
static void message_line(void) {
    qun_line_t l = {NULL, 0, 0, false};
    const char *text = "hello \"world\"\n✓";
    qun_line_put(&l, "{\"author\":", 10);
    qun_line_jstr(&l, "u_abc");
    qun_line_printf(&l, ",\"created_at\":%lld,\"kind\":", 1700000000LL);
    qun_line_jstr(&l, "text");
    qun_line_printf(&l, ",\"seq\":%lld,\"text\":", 42LL);
    qun_line_jstr(&l, text);
    qun_line_put(&l, "}\n", 3); /* with the NUL */
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:I}", "seq", (json_int_t)42, "author", "u_abc", "kind",
                          "text", "text", text, "created_at", (json_int_t)1700000000);
    char *want = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    size_t wl = strlen(want);
    CHECK(l.len == wl + 2 && memcmp(l.p, want, wl) == 0 && l.p[wl] == '\n');
    free(want);
    json_decref(o);
    free(l.p);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    RUN(fixed_strings);
    RUN(random_strings);
    RUN(message_line);
    return unit_done("archive/stage");
}
