/*
 * json.c — loading JSON files with jansson, with errors that name the file, line and column.
 */
#include "core.h"

#include <jansson.h>

lg_status lg_json_load_file(const char *path, json_t **out, lg_error *err) {
    uint8_t *data = NULL;
    size_t size = 0;
    lg_status s = lg_read_file(path, (size_t)1 << 30, &data, &size, err);
    if (s != LG_OK) return s;
    json_error_t je;
    json_t *root = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &je);
    lg_free(data);
    if (!root)
        return lg_err_set(err, LG_E_FORMAT, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column,
                          je.text);
    *out = root;
    return LG_OK;
}
