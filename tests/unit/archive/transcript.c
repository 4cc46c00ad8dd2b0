/* SPDX-License-Identifier: MIT */
/* Unit tests of src/archive/transcript.c: HTML escaping, local times and zone names,
 * the two languages, and safe, unique file names for hostile originals. */
#include "qun/transcript.h"
#include "unit.h"

static void html_escaping(void) {
    qun_line_t l = {NULL, 0, 0, false};
    qun_tr_html(&l, "<script>alert('x & \"y\"')</script>");
    qun_line_put(&l, "", 1);
    CHECK(!l.oom);
    CHECK_STR(l.p, "&lt;script&gt;alert(&#39;x &amp; &quot;y&quot;&#39;)&lt;/script&gt;");
    free(l.p);
}

static void times_and_zones(void) {
    char t[40], z[16];
    qun_tr_time(0, false, 0, t, sizeof t);
    CHECK_STR(t, "1970-01-01 00:00:00");
    qun_tr_time(0, true, 480, t, sizeof t);
    CHECK_STR(t, "1970-01-01 08:00:00");
    qun_tr_zone(false, 0, z, sizeof z);
    CHECK_STR(z, "UTC");
    qun_tr_zone(true, 480, z, sizeof z);
    CHECK_STR(z, "UTC+08:00");
    qun_tr_zone(true, -330, z, sizeof z);
    CHECK_STR(z, "UTC-05:30");
    CHECK_STR(qun_tr_str("zh-CN", QUN_TR_RECALLED), "消息已撤回");
    CHECK_STR(qun_tr_str("en", QUN_TR_RECALLED), "message recalled");
    CHECK_STR(qun_tr_str(NULL, QUN_TR_FILES), "Files");
}

static void safe_names(void) {
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"report.pdf", "report.pdf"},
        {"report.pdf", "report (2).pdf"},
        {"REPORT.PDF", "REPORT (3).PDF"},
        {"../x", "_.._x"},
        {"/etc/passwd", "_etc_passwd"},
        {"", "file"},
        {"..", "file (2)"},
        {".", "file (3)"},
        {"a\nb\tc\x01.txt", "a_b_c_.txt"},
        {"C:\\win?.txt", "C__win_.txt"},
        {".bashrc", "_.bashrc"},
        {"照片.jpg", "照片.jpg"},
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "file-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"noext", "noext"},
        {"noext", "noext (2)"},
    };
    json_t *used = json_object();
    char out[200];
    for (size_t i = 0; i < NROWS(rows); i++) {
        qun_tr_safe_name(rows[i].in, used, out, sizeof out);
        CHECKF(strcmp(out, rows[i].out) == 0, rows[i].out);
    }
    /* Long names are cut at a character boundary. */
    char longname[700] = "";
    for (int i = 0; i < 200; i++)
        strcat(longname, "文");
    qun_tr_safe_name(longname, used, out, sizeof out);
    CHECK(strlen(out) <= 180 && strlen(out) % 3 == 0);
    json_decref(used);
}

int main(void) {
    RUN(html_escaping);
    RUN(times_and_zones);
    RUN(safe_names);
    return unit_done("archive/transcript");
}
