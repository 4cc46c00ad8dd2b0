/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for src/core/desensitize.c.  Message text is outside input, so
 * the pass must never read outside it, and whatever it finds it may only turn ASCII
 * digits into '*', keep the length, and mask between 4 and 15 digits per item it
 * counts.  The in-place form must agree with the allocating one.  `make fuzz` builds
 * it, with tests/fuzz/desensitize.dict as its dictionary (docs/fuzzing.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qun/desensitize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *out = NULL;
    qun_mask_counts_t c = {0};
    qun_err_t err;
    /* Copy into an exact-size heap block so AddressSanitizer catches a read one past
     * the end; libFuzzer's own buffer is already exact, but this keeps it so if the
     * harness changes. */
    char *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    if (qun_desensitize(in, size, &out, &c, &err) != QUN_OK) abort();

    size_t stars = 0;
    for (size_t i = 0; i < size; i++) {
        if (out[i] == in[i]) continue;
        if (out[i] != '*' || in[i] < '0' || in[i] > '9') abort();
        stars++;
    }
    size_t items = c.phones + c.national_ids + c.bank_cards;
    if (out[size] != '\0' || stars < 4 * items || stars > 15 * items) abort();

    qun_mask_counts_t c2 = {0};
    qun_desensitize_inplace(in, size, &c2);
    if (memcmp(in, out, size) != 0 || memcmp(&c, &c2, sizeof c) != 0) abort();

    json_t *j = qun_mask_counts_json(&c);
    json_decref(j);
    free(out);
    free(in);
    return 0;
}
