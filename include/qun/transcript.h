/* SPDX-License-Identifier: MIT */
/* The human-readable side of a group archive (docs/archive-format.md): the strings,
 * times and escaping of messages.html, in English or Simplified Chinese, and the safe,
 * unique names under which files are shown in files/. */
#ifndef QUN_TRANSCRIPT_H
#define QUN_TRANSCRIPT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qun/stage.h"

/* The transcript's sentences. */
typedef enum {
    QUN_TR_TITLE,       /* "Messages of %s" (the group's name) */
    QUN_TR_EXPORTED,    /* "Exported on %s." */
    QUN_TR_TIMES,       /* "Times are in %s." */
    QUN_TR_FILE,        /* "sent a file:" */
    QUN_TR_RECALLED,    /* "message recalled" */
    QUN_TR_NOTICE,      /* "Group notice:" */
    QUN_TR_FILES,       /* "Files" (a heading) */
    QUN_TR_FILES_DIR,   /* "Each file is in the folder files/ under the name shown." */
    QUN_TR_MESSAGES,    /* "Messages" (a heading) */
    QUN_TR_NONE,        /* "(none)" */
    QUN_TR_DISSOLUTION, /* "dissolution" (of a notice's kind) */
    QUN_TR_COUNT
} qun_tr_id_t;

/* The sentence id in lang ("zh-CN", otherwise English). */
const char *qun_tr_str(const char *lang, qun_tr_id_t id);

/* The local time of t (seconds since the epoch), "YYYY-MM-DD HH:MM:SS", at tz_offset
 * minutes east of UTC when has_tz, else UTC, into out[size]. */
void qun_tr_time(int64_t t, bool has_tz, int tz_offset, char *out, size_t size);
/* The name of the time zone: "UTC" or "UTC+08:00". */
void qun_tr_zone(bool has_tz, int tz_offset, char *out, size_t size);

/* Append s to l with &, <, >, " and ' escaped for HTML text and attributes. */
void qun_tr_html(qun_line_t *l, const char *s);

/* A safe, unique file name for name into out[size] (at least 16 bytes): no '/', '\\',
 * control characters or characters Windows refuses, no leading dot, never empty,
 * never 64 hexadecimal digits (the content-addressed names beside it), at most 180
 * bytes of UTF-8; when used (a JSON object of the names given so far, compared
 * without case) already holds it, " (2)", " (3)"... goes before the extension.  The
 * name is added to used. */
void qun_tr_safe_name(const char *name, json_t *used, char *out, size_t size);

#endif
