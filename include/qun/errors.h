/* SPDX-License-Identifier: MIT */
/* Error codes of qun, expanded from errors.def, and the detail buffer that carries
 * a human sentence alongside a code.  Functions return a qun_rc; QUN_OK is 0. */
#ifndef QUN_ERRORS_H
#define QUN_ERRORS_H

#include <stddef.h>

typedef enum {
#define QUN_E(name, status, title) QUN_##name,
#include "qun/errors.def"
#undef QUN_E
    QUN__COUNT,
    /* Not errors: results of stepping a query. */
    QUN_ROW = 1000,
    QUN_DONE = 1001,
} qun_rc;

/* Detail of an error, filled by the function that failed.  Caller-owned. */
typedef struct {
    char msg[256];
    char field[64]; /* the offending field, if any */
} qun_err_t;

/* Stable upper-snake name of rc, e.g. "GROUP_NOT_FOUND". */
const char *qun_rc_name(qun_rc rc);
/* Short human title of rc. */
const char *qun_rc_title(qun_rc rc);
/* HTTP status an rc maps to. */
int qun_rc_status(qun_rc rc);

/* The code for a system call that failed with errno e: a full disk or quota is
 * STORAGE_FULL and no free descriptor (EMFILE, ENFILE) DESCRIPTORS_EXHAUSTED -
 * conditions that pass, so a client should retry later - anything else otherwise. */
qun_rc qun_rc_errno(int e, qun_rc otherwise);

/* Set err (may be NULL) to a printf-style message and return rc. */
qun_rc qun_fail(qun_err_t *err, qun_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like qun_fail, naming the field at fault. */
qun_rc qun_fail_field(qun_err_t *err, qun_rc rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
