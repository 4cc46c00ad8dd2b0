/* SPDX-License-Identifier: MIT */
/* Canonical JSON digests (include/qun/json.h). */
#include <stdlib.h>
#include <string.h>

#include "qun/json.h"
#include "qun/util.h"

void qun_json_digest(json_t *v, char out[65]) {
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text) {
        qun_log("error", "out of memory while encoding JSON for a digest");
        abort();
    }
    qun_sha256_hex(out, text, strlen(text));
    free(text);
}
