/*
 * tjson.c — small typed accessors for tokenizer.json (jansson) whose errors name the JSON path
 * of the offending field ("model.merges[12]"), and the unknown-key check that makes the loader
 * refuse options it would otherwise silently ignore.
 */
#include "text.h"

#include <jansson.h>
#include <string.h>

lg_status tj_check_keys(const json_t *obj, const char *path, const char *const *allowed,
                        lg_error *err) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        (void)v;
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) {
                ok = true;
                break;
            }
        if (!ok) return lg_err_set(err, LG_E_UNSUPPORTED, "%s.%s: unsupported field", path, key);
    }
    return LG_OK;
}

const char *tj_type(const json_t *obj) {
    const json_t *t = json_object_get(obj, "type");
    return json_is_string(t) ? json_string_value(t) : NULL;
}

lg_status tj_string(const json_t *obj, const char *key, const char *path, bool required,
                    const char **s, size_t *len, lg_error *err) {
    const json_t *v = json_object_get(obj, key);
    *s = NULL;
    if (len) *len = 0;
    if (!v || json_is_null(v)) {
        if (required) return lg_err_set(err, LG_E_FORMAT, "%s.%s: missing", path, key);
        return LG_OK;
    }
    if (!json_is_string(v))
        return lg_err_set(err, LG_E_FORMAT, "%s.%s: expected a string", path, key);
    *s = json_string_value(v);
    if (len) *len = json_string_length(v);
    return LG_OK;
}

lg_status tj_bool(const json_t *obj, const char *key, const char *path, bool dflt, bool *out,
                  lg_error *err) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return LG_OK;
    }
    if (!json_is_boolean(v))
        return lg_err_set(err, LG_E_FORMAT, "%s.%s: expected true or false", path, key);
    *out = json_is_true(v);
    return LG_OK;
}

lg_status tj_pattern(const json_t *obj, const char *key, const char *path, const char **s,
                     size_t *len, bool *is_regex, lg_error *err) {
    const json_t *p = json_object_get(obj, key);
    if (!json_is_object(p))
        return lg_err_set(err, LG_E_FORMAT, "%s.%s: expected {\"String\": ...} or {\"Regex\": ...}",
                          path, key);
    const json_t *str = json_object_get(p, "String"), *re = json_object_get(p, "Regex");
    if (json_object_size(p) != 1 || (!json_is_string(str) && !json_is_string(re)))
        return lg_err_set(err, LG_E_FORMAT, "%s.%s: expected {\"String\": ...} or {\"Regex\": ...}",
                          path, key);
    const json_t *v = str ? str : re;
    *s = json_string_value(v);
    *len = json_string_length(v);
    *is_regex = re != NULL;
    return LG_OK;
}
