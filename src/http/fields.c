/* SPDX-License-Identifier: MIT */
/* JSON request bodies: the router's parse of every R_JSON body, and the declarative
 * validation against the field table each endpoint describes, so every endpoint
 * rejects bad input the same way and with the same codes. */
#include <string.h>

#include "http.h"

static bool in_oneof(const char *oneof, const char *v) {
    size_t n = strlen(v);
    for (const char *p = oneof; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, v, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static qun_rc check_str(const qun_field_t *f, const char *s, size_t len, qun_err_t *err) {
    if ((int64_t)len < f->min || (f->max && (int64_t)len > f->max))
        return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must be %lld to %lld bytes of UTF-8",
                              f->name, (long long)f->min, (long long)f->max);
    if (memchr(s, '\0', len))
        return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must not contain NUL", f->name);
    if (f->oneof && !in_oneof(f->oneof, s))
        return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must be one of %s", f->name, f->oneof);
    return QUN_OK;
}

static qun_rc check_one(const qun_field_t *f, json_t *v, qun_err_t *err) {
    switch (f->type) {
    case F_STR:
        if (!json_is_string(v))
            return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must be a string", f->name);
        return check_str(f, json_string_value(v), json_string_length(v), err);
    case F_INT:
        if (!json_is_integer(v))
            return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must be an integer", f->name);
        if (json_integer_value(v) < f->min || json_integer_value(v) > f->max)
            return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must be %lld to %lld", f->name,
                                  (long long)f->min, (long long)f->max);
        return QUN_OK;
    case F_BOOL:
        if (!json_is_boolean(v))
            return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must be true or false", f->name);
        return QUN_OK;
    case F_OBJ:
        if (!json_is_object(v))
            return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must be an object", f->name);
        return QUN_OK;
    case F_STRARR: {
        if (!json_is_array(v) || json_array_size(v) > 64)
            return qun_fail_field(err, QUN_FIELD_INVALID, f->name,
                                  "%s must be an array of at most 64 strings", f->name);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e))
                return qun_fail_field(err, QUN_FIELD_INVALID, f->name, "%s must hold only strings", f->name);
            qun_rc rc = check_str(f, json_string_value(e), json_string_length(e), err);
            if (rc != QUN_OK) return rc;
        }
        return QUN_OK;
    }
    }
    return QUN_INTERNAL;
}

qun_rc qun_body_parse(const char *body, size_t len, json_t **out, qun_err_t *err) {
    if (len == 0) {
        *out = json_object();
        return QUN_OK;
    }
    json_error_t je;
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!*out) return qun_fail(err, QUN_BAD_JSON, "line %d column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(*out)) return qun_fail(err, QUN_BAD_JSON, "the body must be a JSON object");
    return QUN_OK;
}

qun_rc qun_fields_check(json_t *body, const qun_field_t *fields, qun_err_t *err) {
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(body, tmp, key, v) {
        const qun_field_t *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name) return qun_fail_field(err, QUN_FIELD_UNKNOWN, key, "unknown field \"%.60s\"", key);
        if (json_is_null(v) && !f->required) { /* an optional null is the same as absent */
            json_object_del(body, key);
            continue;
        }
        qun_rc rc = check_one(f, v, err);
        if (rc != QUN_OK) return rc;
    }
    for (const qun_field_t *f = fields; f->name; f++)
        if (f->required && !json_object_get(body, f->name))
            return qun_fail_field(err, QUN_FIELD_MISSING, f->name, "%s is required", f->name);
    return QUN_OK;
}

const char *qun_jstr(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}
