/* SPDX-License-Identifier: MIT */
/* libFuzzer target for JSON request bodies: the router's parse of an R_JSON body
 * (qun_body_parse) and the validation of src/http/fields.c against the field tables
 * the handlers declare.  scripts/fuzz.sh copies every table out of src/http/h_*.c into
 * build/fuzz/gen/fuzz_fields.c; the first input byte picks the table, the rest is the
 * body.  Besides memory safety it checks what a handler relies on after a pass: every
 * required field is present, every member is a known field of the right type within
 * its bounds, and an optional null has been removed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

extern const qun_field_t *const fuzz_tables[];
extern const char *const fuzz_table_names[];
extern const int fuzz_table_count;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_passed(json_t *body, const qun_field_t *fields) {
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        const qun_field_t *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name || json_is_null(v)) abort();
        switch (f->type) {
        case F_STR: {
            if (!json_is_string(v)) abort();
            int64_t n = (int64_t)json_string_length(v);
            if (n < f->min || (f->max && n > f->max) || strlen(json_string_value(v)) != (size_t)n) abort();
            break;
        }
        case F_INT:
            if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max)
                abort();
            break;
        case F_BOOL:
            if (!json_is_boolean(v)) abort();
            break;
        case F_OBJ:
            if (!json_is_object(v)) abort();
            break;
        case F_STRARR:
            if (!json_is_array(v) || json_array_size(v) > 64) abort();
            break;
        }
        if (f->type == F_STR && qun_jstr(body, key) != json_string_value(v)) abort();
    }
    for (const qun_field_t *f = fields; f->name; f++)
        if (f->required && !json_object_get(body, f->name)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const qun_field_t *fields = fuzz_tables[data[0] % fuzz_table_count];
    /* An exact-size copy: the router hands a NUL-terminated buffer, but the parse must
     * not rely on it. */
    size_t n = size - 1;
    char *body = malloc(n ? n : 1);
    if (!body) return 0;
    memcpy(body, data + 1, n);
    json_t *j = NULL;
    qun_err_t err = {0};
    qun_rc rc = qun_body_parse(body, n, &j, &err);
    if (rc == QUN_OK) {
        if (!json_is_object(j)) abort();
        rc = qun_fields_check(j, fields, &err);
        if (rc == QUN_OK)
            check_passed(j, fields);
        else if (rc != QUN_FIELD_INVALID && rc != QUN_FIELD_UNKNOWN && rc != QUN_FIELD_MISSING)
            abort();
        else if (!err.field[0] && rc != QUN_FIELD_UNKNOWN)
            abort();
    } else if (rc != QUN_BAD_JSON || !err.msg[0]) {
        abort();
    }
    json_decref(j);
    free(body);
    return 0;
}
