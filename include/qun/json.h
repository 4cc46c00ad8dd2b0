/* SPDX-License-Identifier: MIT */
/* JSON beside jansson: the canonical serialization qun hashes (compact, keys sorted),
 * so a digest of the same value is the same wherever it is taken — a confirmation
 * token bound to a request's parameters, a ledger entry's params, a QR challenge; the
 * compact encoder answers are written with; a buffer for JSON written by hand; one
 * integer read from a text without parsing all of it. */
#ifndef QUN_JSON_H
#define QUN_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Hex SHA-256 of v's canonical text (compact, sorted keys) into out[65]; v is
 * borrowed.  False, with out set to "" (which matches no digest), when the text could
 * not be encoded for want of memory. */
bool qun_json_digest(json_t *v, char out[65]);

/* A growing buffer of JSON written by hand (a million lines through jansson's encoder
 * cost a third of an export).  oom is set, and later writes ignored, when it cannot
 * grow; the caller checks it. */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} qun_line_t;

void qun_line_put(qun_line_t *l, const char *b, size_t n);
/* fmt formats one long long. */
void qun_line_printf(qun_line_t *l, const char *fmt, long long v);
/* A JSON string as jansson's encoder writes it: quote, backslash and control
 * characters escaped, UTF-8 passed through; _jstrn takes n bytes (NULs too). */
void qun_line_jstr(qun_line_t *l, const char *s);
void qun_line_jstrn(qun_line_t *l, const char *s, size_t n);

/* json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), byte for byte, for the answers the
 * server sends (caller frees): jansson's encoder formats every object's and array's
 * address with snprintf to look for cycles, a fifth of a woken /sync answer's time.
 * Reals are jansson's own.  NULL when memory ran out, or for a value nested deeper
 * than 1 000 levels (as a cycle would be).  A string jansson would refuse (made by
 * json_string_nocheck from bytes that are not UTF-8; qun makes none) goes out as its
 * bytes. */
char *qun_json_compact(const json_t *v);

/* The integer at key in the top level of the JSON object text, into *v: what
 * json_integer_value(json_object_get(json_loads(text), key)) gives, without building
 * the object, and reading only up to that key (an event's seq, first in its payload).
 * False, *v 0, when text is not an object up to there, the key is missing, or its
 * value is not an integer (a real, a string, one that overflows). */
bool qun_json_top_int(const char *text, const char *key, int64_t *v);

#endif
