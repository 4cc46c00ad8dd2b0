/* SPDX-License-Identifier: MIT */
/* libFuzzer target for policy packs (src/core/policy.c): the first input byte picks
 * the file (kinds.json, regions.json or verification.json), the rest is its content.
 * It is written into a scratch directory and loaded with qun_policy_load_dir, as qund
 * loads policy_dir at start-up, so the directory scan, the JSON parse and every rule's
 * validation run as they do for an operator's pack.  A pack that loads is then used:
 * rendered, resolved for every kind against each of its regions and pairs of them,
 * and its verification section checked against the header's promises. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qun/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static const char *const files[] = {"kinds.json", "regions.json", "verification.json"};
static const char *const kinds[] = {"standard", "enterprise", "education", "finance", "cross_border", "nope"};

static void cleanup(void) {
    char path[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void use(const qun_policy_t *p) {
    json_t *j = qun_policy_json(p);
    if (!j) abort();
    /* The region names the pack defines, plus one it does not. */
    const char *names[10];
    int n = 0;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(j, "regions"), name, v) {
        if (n == 9) break;
        if (!qun_policy_has_region(p, name)) abort();
        names[n++] = name;
    }
    names[n] = "zz-unknown";
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int a = -1; a <= n; a++) {
            const char *regs[2] = {a >= 0 ? names[a] : NULL, names[(a + 1) % (n + 1)]};
            int nr = a < 0 ? 0 : (a % 2 ? 2 : 1);
            qun_policy_view_t view;
            qun_err_t err = {0};
            qun_rc rc = qun_policy_resolve(p, kinds[k], regs, nr, &view, &err);
            if (rc != QUN_OK) {
                if (rc != QUN_POLICY_UNKNOWN_KIND && rc != QUN_POLICY_UNKNOWN_REGION &&
                    rc != QUN_FIELD_MISSING)
                    abort();
                continue;
            }
            json_t *vj = qun_policy_view_json(&view);
            if (!vj) abort();
            json_decref(vj);
            bool notice;
            for (int64_t m = 0; m < 2000; m = m * 3 + 1) {
                int64_t d = qun_policy_delay(&view, m, &notice);
                if (d < 0) abort();
            }
        }
    }
    const qun_policy_verify_t *vf = qun_policy_verification(p);
    for (int i = 0; i < QUN_PLATFORM__COUNT; i++)
        if (vf->platform[i] == 0) abort();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/dev/shm/qun-fuzz-policy-XXXXXX");
        if (!mkdtemp(dir)) {
            snprintf(dir, sizeof dir, "/tmp/qun-fuzz-policy-XXXXXX");
            if (!mkdtemp(dir)) abort();
        }
        atexit(cleanup);
    }
    if (size < 1) return 0;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, files[data[0] % 3]);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
    if (fclose(f) != 0) abort();
    qun_policy_t *p = NULL;
    qun_err_t err = {0};
    qun_rc rc = qun_policy_load_dir(dir, &p, &err);
    unlink(path);
    if (rc == QUN_OK) {
        if (!p) abort();
        use(p);
    } else if (rc != QUN_POLICY_INVALID || p || !err.msg[0]) {
        abort();
    }
    qun_policy_free(p);
    return 0;
}
