/* SPDX-License-Identifier: MIT */
/* The error table of errors.def: names, titles and HTTP statuses. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qun/errors.h"

static const struct {
    const char *name;
    const char *title;
    int status;
} table[] = {
#define QUN_E(name, status, title) {#name, title, status},
#include "qun/errors.def"
#undef QUN_E
};

const char *qun_rc_name(qun_rc rc) {
    return (unsigned)rc < QUN__COUNT ? table[rc].name : "INTERNAL";
}

const char *qun_rc_title(qun_rc rc) {
    return (unsigned)rc < QUN__COUNT ? table[rc].title : "internal error";
}

int qun_rc_status(qun_rc rc) {
    return (unsigned)rc < QUN__COUNT ? table[rc].status : 500;
}

qun_rc qun_rc_errno(int e, qun_rc otherwise) {
    if (e == ENOSPC || e == EDQUOT) return QUN_STORAGE_FULL;
    if (e == EMFILE || e == ENFILE) return QUN_DESCRIPTORS_EXHAUSTED;
    return otherwise;
}

qun_rc qun_fail(qun_err_t *err, qun_rc rc, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->field[0] = '\0';
    }
    return rc;
}

qun_rc qun_fail_field(qun_err_t *err, qun_rc rc, const char *field, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        snprintf(err->field, sizeof err->field, "%s", field);
    }
    return rc;
}
