/* SPDX-License-Identifier: MIT */
/* Fault injection for tests, after SQLite's fault simulation: fail the Nth statement,
 * the Nth COMMIT or the Nth allocation (jansson's and SQLite's) with a chosen error.
 *
 * The seam is a hook in store.c rather than a `fault` backend that wraps SQLite's ops
 * table: a wrapper would have to re-implement the backend's transaction loop, its
 * statement cache and the savepoints the writer uses, because store_sqlite.c calls back
 * into store.c with its own connection.  The hook is compiled into every build and
 * costs one relaxed atomic load and a branch per statement while disarmed (always, in
 * qund); only tests arm it, through store_internal.h, so src/store is the only code
 * that knows it exists.  ROLLBACK (and ROLLBACK TO) is never failed, nor is the COMMIT
 * that ends a read transaction: SQLite does not fail them in practice, and a failed
 * rollback would test the simulator instead of qun.
 *
 * A fault is one-shot: the Nth event of its kind fails once, every other succeeds.
 * Counting is process-wide (an export's own thread counts too). */
#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "qun/store.h"
#include "store_internal.h"

atomic_bool qun_fault_on;

static _Atomic long seen[QUN_FAULT_KINDS], target[QUN_FAULT_KINDS];
static _Atomic int fault_rc[QUN_FAULT_KINDS];
static atomic_bool fired;

static const char *const kind_name[QUN_FAULT_KINDS] = {"statement", "commit", "allocation"};

void qun_fault_arm(qun_fault_kind kind, long n, qun_rc rc) {
    for (int k = 0; k < QUN_FAULT_KINDS; k++) {
        atomic_store(&seen[k], 0);
        atomic_store(&target[k], 0);
    }
    atomic_store(&fired, false);
    atomic_store(&target[kind], n);
    atomic_store(&fault_rc[kind], (int)rc);
    atomic_store(&qun_fault_on, true);
}

void qun_fault_clear(void) {
    atomic_store(&qun_fault_on, false);
    for (int k = 0; k < QUN_FAULT_KINDS; k++)
        atomic_store(&target[k], 0);
}

bool qun_fault_fired(void) {
    return atomic_load(&fired);
}

long qun_fault_seen(qun_fault_kind kind) {
    return atomic_load(&seen[kind]);
}

static _Thread_local int paused; /* this thread's events are not counted */

void qun_fault_pause(bool pause) {
    paused += pause ? 1 : -1;
}

/* Count one event of kind; true when it is the one to fail. */
static bool hit(qun_fault_kind kind) {
    if (paused) return false;
    long n = atomic_fetch_add(&seen[kind], 1) + 1;
    if (n != atomic_load(&target[kind])) return false;
    atomic_store(&fired, true);
    return true;
}

qun_rc qun_fault_check(qun_fault_kind kind, qun_err_t *err) {
    if (!hit(kind)) return QUN_OK;
    qun_rc rc = (qun_rc)atomic_load(&fault_rc[kind]);
    return qun_fail(err, rc, "injected %s fault (%s)", kind_name[kind], qun_rc_name(rc));
}

/* ---- allocations ---- */

static sqlite3_mem_methods sqlite_mem;
static _Thread_local int json_paused;

void qun_fault_json_pause(bool pause) {
    json_paused += pause ? 1 : -1;
}

static void *j_malloc(size_t n) {
    if (atomic_load_explicit(&qun_fault_on, memory_order_relaxed) && !json_paused && hit(QUN_FAULT_ALLOC))
        return NULL;
    return malloc(n);
}

static void *sq_malloc(int n) {
    if (atomic_load_explicit(&qun_fault_on, memory_order_relaxed) && hit(QUN_FAULT_ALLOC)) return NULL;
    return sqlite_mem.xMalloc(n);
}

static void *sq_realloc(void *p, int n) {
    if (atomic_load_explicit(&qun_fault_on, memory_order_relaxed) && hit(QUN_FAULT_ALLOC)) return NULL;
    return sqlite_mem.xRealloc(p, n);
}

bool qun_fault_alloc_install(void) {
    json_set_alloc_funcs(j_malloc, free);
    if (sqlite3_shutdown() != SQLITE_OK) return false;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_mem) != SQLITE_OK) return false;
    sqlite3_mem_methods m = sqlite_mem;
    m.xMalloc = sq_malloc;
    m.xRealloc = sq_realloc;
    /* Lookaside slots would hide most small allocations from the count. */
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK) return false;
    if (sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK) return false;
    return sqlite3_initialize() == SQLITE_OK;
}
