/* SPDX-License-Identifier: MIT */
/* A minimal unit-test harness: CHECK records failures and keeps going; RUN runs one
 * named case, so a failure names the case it happened in; the test binary exits
 * non-zero if any check failed. Tests live at tests/unit/<layer>/<file>.c for
 * src/<layer>/<file>.c. */
#ifndef QUN_UNIT_H
#define QUN_UNIT_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int unit_failures, unit_checks;
static const char *unit_case = "main";

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        unit_checks++;                                                                                       \
        if (!(cond)) {                                                                                       \
            unit_failures++;                                                                                 \
            fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__, unit_case, #cond);         \
        }                                                                                                    \
    } while (0)

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

/* CHECK for one row of a table-driven case: a failure also names the row. */
#define CHECKF(cond, row)                                                                                    \
    do {                                                                                                     \
        unit_checks++;                                                                                       \
        if (!(cond)) {                                                                                       \
            unit_failures++;                                                                                 \
            fprintf(stderr, "%s:%d: [%s / %s] CHECK failed: %s\n", __FILE__, __LINE__, unit_case, (row),     \
                    #cond);                                                                                  \
        }                                                                                                    \
    } while (0)

/* The number of rows of a table. */
#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* Run one named case: its failures are reported under its name. */
#define RUN(fn) unit_run(#fn, fn)
static inline void unit_run(const char *name, void (*fn)(void)) {
    int before = unit_failures;
    unit_case = name;
    fn();
    if (unit_failures != before) fprintf(stderr, "FAIL %s: %d checks failed\n", name, unit_failures - before);
    unit_case = "main";
}

static inline int unit_done(const char *name) {
    printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
    return unit_failures ? 1 : 0;
}

#endif
