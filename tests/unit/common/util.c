/* SPDX-License-Identifier: MIT */
/* Unit tests of src/common/util.c: qun_copy, the copy hot paths use instead of
 * snprintf("%s"): whole when it fits, cut to the buffer when not, always terminated,
 * and nothing written past the buffer; qun_thread_start, whose thread has its name before
 * it first runs. */
#include <pthread.h>

#include "qun/util.h"
#include "unit.h"

static void copy_fits_or_is_cut(void) {
    char buf[8];
    memset(buf, 'x', sizeof buf);
    CHECK(qun_copy(buf, sizeof buf, "abc") == 3);
    CHECK_STR(buf, "abc");
    CHECK(qun_copy(buf, sizeof buf, "1234567") == 7); /* exactly fits with its NUL */
    CHECK_STR(buf, "1234567");
    CHECK(qun_copy(buf, sizeof buf, "123456789") == 7); /* cut as snprintf would */
    CHECK_STR(buf, "1234567");
    CHECK(qun_copy(buf, sizeof buf, "") == 0 && buf[0] == '\0');
    char guard[4] = {'a', 'b', 'c', 'd'};
    CHECK(qun_copy(guard, 2, "zzz") == 1); /* two bytes: one character and the NUL */
    CHECK(guard[0] == 'z' && guard[1] == '\0' && guard[2] == 'c' && guard[3] == 'd');
    CHECK(qun_copy(guard, 1, "zzz") == 0 && guard[0] == '\0' && guard[1] == '\0');
}

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static void *held(void *arg) {
    pthread_mutex_lock(&gate); /* waits until the test has looked */
    pthread_mutex_unlock(&gate);
    return arg;
}

/* The name is there when qun_thread_start returns, though the thread has not run a line
 * of its own yet (it waits on a lock the test holds): what a readiness check that looks
 * at a process's threads relies on. */
static void thread_named_before_it_runs(void) {
    pthread_t t;
    char name[16] = "";
    pthread_mutex_lock(&gate);
    CHECK(qun_thread_start(&t, "qun-unit-held", held, NULL) == 0);
    CHECK(pthread_getname_np(t, name, sizeof name) == 0);
    CHECK_STR(name, "qun-unit-held");
    pthread_mutex_unlock(&gate);
    CHECK(pthread_join(t, NULL) == 0);
}

int main(void) {
    RUN(copy_fits_or_is_cut);
    RUN(thread_named_before_it_runs);
    return unit_done("common/util");
}
