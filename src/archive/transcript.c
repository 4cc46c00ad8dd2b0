/* SPDX-License-Identifier: MIT */
/* The human-readable side of a group archive (include/qun/transcript.h): sentences in
 * English and Simplified Chinese, local times, HTML escaping and safe file names.  The
 * export job (jobs/export.c) writes messages.html with them. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "qun/transcript.h"

static const char *const EN[QUN_TR_COUNT] = {
    [QUN_TR_TITLE] = "Messages of %s",
    [QUN_TR_EXPORTED] = "Exported on %s.",
    [QUN_TR_TIMES] = "Times are in %s.",
    [QUN_TR_FILE] = "sent a file:",
    [QUN_TR_RECALLED] = "message recalled",
    [QUN_TR_NOTICE] = "Group notice:",
    [QUN_TR_FILES] = "Files",
    [QUN_TR_FILES_DIR] = "Each file is in the folder files/ under the name shown here.",
    [QUN_TR_MESSAGES] = "Messages",
    [QUN_TR_NONE] = "(none)",
    [QUN_TR_DISSOLUTION] = "dissolution",
};

static const char *const ZH[QUN_TR_COUNT] = {
    [QUN_TR_TITLE] = "%s 的聊天记录", [QUN_TR_EXPORTED] = "导出时间：%s。",
    [QUN_TR_TIMES] = "时间为 %s。",   [QUN_TR_FILE] = "发送了文件：",
    [QUN_TR_RECALLED] = "消息已撤回", [QUN_TR_NOTICE] = "群通知：",
    [QUN_TR_FILES] = "文件",          [QUN_TR_FILES_DIR] = "每个文件都在 files/ 文件夹中，文件名如下所示。",
    [QUN_TR_MESSAGES] = "消息",       [QUN_TR_NONE] = "（无）",
    [QUN_TR_DISSOLUTION] = "解散",
};

const char *qun_tr_str(const char *lang, qun_tr_id_t id) {
    if (id < 0 || id >= QUN_TR_COUNT) return "";
    return lang && strcmp(lang, "zh-CN") == 0 ? ZH[id] : EN[id];
}

void qun_tr_time(int64_t t, bool has_tz, int tz_offset, char *out, size_t size) {
    time_t local = (time_t)(t + (has_tz ? (int64_t)tz_offset * 60 : 0));
    struct tm tm;
    if (!gmtime_r(&local, &tm) || strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, size, "%lld", (long long)t);
}

void qun_tr_zone(bool has_tz, int tz_offset, char *out, size_t size) {
    if (!has_tz || tz_offset == 0) {
        snprintf(out, size, "UTC");
        return;
    }
    int a = tz_offset < 0 ? -tz_offset : tz_offset;
    snprintf(out, size, "UTC%c%02d:%02d", tz_offset < 0 ? '-' : '+', a / 60, a % 60);
}

/* qun_line_put of n > 0 bytes (an empty buffer has no pointer to copy to). */
static void put(qun_line_t *l, const char *b, size_t n) {
    if (n) qun_line_put(l, b, n);
}

void qun_tr_html(qun_line_t *l, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        put(l, run, (size_t)(s - run));
        put(l, rep, strlen(rep));
        run = s + 1;
    }
    put(l, run, (size_t)(s - run));
}

static bool is_hex64(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n])) return false;
    return n == 64;
}

/* Lower-case ASCII copy of s, the key of used. */
static void fold(const char *s, char *out, size_t size) {
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

void qun_tr_safe_name(const char *name, json_t *used, char *out, size_t size) {
    enum { MAX_BYTES = 180 };
    char base[MAX_BYTES + 8];
    size_t n = 0;
    if (size > sizeof base) size = sizeof base;
    for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p && n < MAX_BYTES; p++) {
        unsigned char c = *p;
        /* Keep whole UTF-8 sequences only: stop before one that does not fit. */
        if (c >= 0xc0) {
            size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (n + len > MAX_BYTES) break;
        }
        if (c < 0x20 || c == 0x7f || strchr("/\\:*?\"<>|", c)) c = '_';
        base[n++] = (char)c;
    }
    /* Windows drops trailing dots and spaces (so "." and ".." become empty). */
    while (n > 0 && (base[n - 1] == ' ' || base[n - 1] == '.'))
        n--;
    base[n] = '\0';
    if (base[0] == '.') { /* no hidden files */
        memmove(base + 1, base, n + 1);
        base[0] = '_';
    }
    if (n == 0) snprintf(base, sizeof base, "file");
    if (is_hex64(base)) {
        memmove(base + 5, base, 65);
        memcpy(base, "file-", 5);
    }
    /* The extension: from the last dot after the first character, if short. */
    const char *dot = strrchr(base + 1, '.');
    size_t stem = dot && strlen(dot) <= 16 ? (size_t)(dot - base) : strlen(base);
    char key[sizeof base + 16];
    snprintf(out, size, "%s", base);
    for (int i = 2;; i++) {
        fold(out, key, sizeof key);
        if (!used || !json_object_get(used, key)) break;
        snprintf(out, size, "%.*s (%d)%s", (int)stem, base, i, base + stem);
    }
    if (used) json_object_set_new(used, key, json_true());
}
