/* SPDX-License-Identifier: MIT */
/* A minimal unit-test harness: CHECK records failures and keeps going; the test
 * binary exits non-zero if any check failed. */
#ifndef QUN_UNIT_H
#define QUN_UNIT_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int unit_failures, unit_checks;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        unit_checks++;                                                                 \
        if (!(cond)) {                                                                 \
            unit_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

static inline int unit_done(const char *name) {
    printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
    return unit_failures ? 1 : 0;
}

#endif
