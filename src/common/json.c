/* SPDX-License-Identifier: MIT */
/* Canonical JSON digests (include/qun/json.h). */
#include <stdlib.h>
#include <string.h>

#include "qun/json.h"
#include "qun/util.h"

bool qun_json_digest(json_t *v, char out[65]) {
    char *text = qun_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text) {
        out[0] = '\0';
        return false;
    }
    qun_sha256_hex(out, text, strlen(text));
    free(text);
    return true;
}
