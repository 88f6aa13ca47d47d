/*
 * policy_file.c — the hand-written policy file: JSON read with jansson, validated field by field
 * with errors that name the file, the line and the field ("policy.json:12: categories[2].name:
 * expected a string, got a number"). The format is specified in docs/policy-format.md and
 * docs/policy.schema.json; in short:
 *
 *   { "$schema": str, "$comment": str, "description": str,      (optional, ignored)
 *     "base": "v1.2" | "v1.0" | "v1.0-modelcard",               (optional, default "v1.2")
 *     "categories": { "<id>": CATEGORY, ... }                    (extends the base taxonomy)
 *                 | [ { "id": "<id>", ...CATEGORY }, ... ] }     (the complete ordered list)
 *   CATEGORY = { "name": str, "should_not": [str], "can": [str],
 *                "state": "default" | "non-violating" | "sensitive", "$comment": str }
 *
 * A category whose id is built into the base inherits every field it does not set; any other id
 * must set name, should_not and can. jansson keeps no positions of values, so the line of a field
 * is found by re-scanning the (already valid) JSON text along the field's path.
 */
#include "policy.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* ---- locating a field's line in the JSON text ---- */

/* One step of a path into the document: an object key, or an array index when key is NULL. */
typedef struct pstep {
    const char *key;
    size_t index;
} pstep;

typedef struct scan {
    const char *p, *end;
    int line;
} scan;

static bool sc_at(const scan *s, char c) {
    return s->p < s->end && *s->p == c;
}

static void sc_ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) {
        if (*s->p == '\n') s->line++;
        s->p++;
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static long sc_hex4(scan *s) {
    if (s->end - s->p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    s->p += 4;
    return v;
}

/* Reads the \u escape whose 'u' s->p is past, joining a surrogate pair. */
static void sc_unicode(scan *s, lg_buf *out) {
    long cp = sc_hex4(s);
    if (cp >= 0xD800 && cp < 0xDC00 && s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u') {
        s->p += 2;
        long lo = sc_hex4(s);
        if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp >= 0 && out) lg_buf_put_utf8(out, (uint32_t)cp);
}

/* Skips the string at s->p (which is '"'), decoding it into `out` when not NULL. */
static void sc_string(scan *s, lg_buf *out) {
    static const char from[] = "bfnrt\"\\/", to[] = "\b\f\n\r\t\"\\/";
    s->p++;
    while (s->p < s->end && *s->p != '"') {
        char c = *s->p++;
        if (c == '\\' && s->p < s->end) {
            char e = *s->p++;
            if (e == 'u') {
                sc_unicode(s, out);
                continue;
            }
            const char *k = strchr(from, e);
            c = k && e ? to[k - from] : e;
        }
        if (out) lg_buf_putc(out, c);
    }
    if (s->p < s->end) s->p++;
}

/* Skips one value (object, array, string or scalar), counting lines. */
static void sc_skip(scan *s) {
    sc_ws(s);
    if (sc_at(s, '"')) {
        sc_string(s, NULL);
        return;
    }
    if (!sc_at(s, '{') && !sc_at(s, '[')) {
        while (s->p < s->end && !strchr(",}] \t\r\n", *s->p)) s->p++;
        return;
    }
    int depth = 0;
    while (s->p < s->end) {
        char c = *s->p;
        if (c == '"') {
            sc_string(s, NULL);
            continue;
        }
        if (c == '\n') s->line++;
        s->p++;
        if (c == '{' || c == '[') depth++;
        if ((c == '}' || c == ']') && --depth == 0) return;
    }
}

/* Returns the line of the value at `steps` (of an object key: the key's line), or -1. */
static int sc_locate(scan *s, const pstep *steps, size_t n) {
    sc_ws(s);
    if (n == 0) return s->line;
    bool is_key = steps[0].key != NULL;
    if (!sc_at(s, is_key ? '{' : '[')) return -1;
    s->p++;
    for (size_t i = 0;; i++) {
        sc_ws(s);
        if (sc_at(s, is_key ? '}' : ']')) return -1;
        if (is_key) {
            int key_line = s->line;
            lg_buf k;
            lg_buf_init(&k);
            sc_string(s, &k);
            bool match = strcmp(k.data ? k.data : "", steps[0].key) == 0;
            lg_buf_free(&k);
            sc_ws(s);
            if (!sc_at(s, ':')) return -1;
            s->p++;
            if (match) return n == 1 ? key_line : sc_locate(s, steps + 1, n - 1);
        } else if (i == steps[0].index) {
            return sc_locate(s, steps + 1, n - 1);
        }
        sc_skip(s);
        sc_ws(s);
        if (!sc_at(s, ',')) return -1;
        s->p++;
    }
}

/* ---- the loader ---- */

#define MAX_DEPTH 6

typedef struct loader {
    const char *name; /* the file name in messages */
    const char *text;
    size_t len;
    pstep path[MAX_DEPTH];
    size_t depth;
    lg_error *err;
    lg_policy *pol;
} loader;

static void push_key(loader *ld, const char *key) {
    LG_ASSERT(ld->depth < MAX_DEPTH);
    ld->path[ld->depth++] = (pstep){key, 0};
}

static void push_index(loader *ld, size_t i) {
    LG_ASSERT(ld->depth < MAX_DEPTH);
    ld->path[ld->depth++] = (pstep){NULL, i};
}

static void pop(loader *ld) {
    ld->depth--;
}

/* The line of the current path; falls back to the nearest ancestor that exists in the text. */
static int ld_line(const loader *ld) {
    for (size_t d = ld->depth + 1; d-- > 0;) {
        scan s = {ld->text, ld->text + ld->len, 1};
        int line = sc_locate(&s, ld->path, d);
        if (line > 0) return line;
    }
    return 1;
}

static bool plain_key(const char *k) {
    if (!*k) return false;
    for (; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
              *k == '_' || *k == '$' || *k == '-'))
            return false;
    return true;
}

/* Writes the current path as "categories[2].name" (odd keys as ["a.b"]). */
static void ld_path_str(const loader *ld, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ld->depth && used < size; i++) {
        const pstep *st = &ld->path[i];
        int n;
        if (!st->key)
            n = snprintf(buf + used, size - used, "[%zu]", st->index);
        else if (plain_key(st->key))
            n = snprintf(buf + used, size - used, "%s%s", i ? "." : "", st->key);
        else
            n = snprintf(buf + used, size - used, "[\"%.40s\"]", st->key);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static lg_status ld_fail(loader *ld, const char *fmt, ...) LG_PRINTF(2, 3);
static lg_status ld_fail(loader *ld, const char *fmt, ...) {
    char msg[320], path[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ld_path_str(ld, path, sizeof path);
    int line = ld_line(ld);
    if (path[0])
        return lg_err_set(ld->err, LG_E_FORMAT, "%s:%d: %s: %s", ld->name, line, path, msg);
    return lg_err_set(ld->err, LG_E_FORMAT, "%s:%d: %s", ld->name, line, msg);
}

static lg_status ld_nomem(loader *ld) {
    return lg_err_set(ld->err, LG_E_NOMEM, "%s: out of memory reading the policy", ld->name);
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

/* Checks that the value at the current path is a string; on failure reports it. */
static lg_status want_string(loader *ld, const json_t *v) {
    if (json_is_string(v)) return LG_OK;
    return ld_fail(ld, "expected a string, got %s", type_name(v));
}

/* Fails on the first key of `obj` not in the NULL-terminated `allowed` list. */
static lg_status check_keys(loader *ld, json_t *obj, const char *const *allowed, const char *list) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0) i++;
        if (allowed[i]) continue;
        push_key(ld, key);
        return ld_fail(ld, "unknown key (expected %s)", list);
    }
    return LG_OK;
}

/* Fails unless the optional key `key` of `obj` is absent or a string. */
static lg_status optional_string(loader *ld, json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    if (!v) return LG_OK;
    push_key(ld, key);
    lg_status s = want_string(ld, v);
    pop(ld);
    return s;
}

/* ---- text checks ---- */

static bool has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static lg_status check_name(loader *ld, const char *s) {
    size_t n = strlen(s);
    if (n == 0) return ld_fail(ld, "the name is empty");
    if (n > POL_MAX_NAME) return ld_fail(ld, "the name is longer than %d bytes", POL_MAX_NAME);
    if (has_control(s)) return ld_fail(ld, "the name contains a control character (line break?)");
    if (strpbrk(s, "\"\\|"))
        return ld_fail(ld, "the name may not contain '\"', '\\' or '|' (they would break the "
                           "answer template)");
    if (s[0] == ' ' || s[n - 1] == ' ')
        return ld_fail(ld, "the name has leading or trailing spaces");
    return LG_OK;
}

static lg_status check_bullet(loader *ld, const char *s) {
    size_t n = strlen(s);
    if (n == 0) return ld_fail(ld, "the bullet is empty");
    if (n > POL_MAX_BULLET)
        return ld_fail(ld, "the bullet is longer than %d bytes", POL_MAX_BULLET);
    if (has_control(s))
        return ld_fail(ld, "the bullet contains a control character (a line break? write one "
                           "bullet per string)");
    return LG_OK;
}

/* ---- categories ---- */

static lg_status read_bullets(loader *ld, json_t *obj, const char *key, pol_strlist *out) {
    json_t *v = json_object_get(obj, key);
    push_key(ld, key);
    if (!json_is_array(v)) return ld_fail(ld, "expected an array of strings, got %s", type_name(v));
    size_t n = json_array_size(v);
    if (n > POL_MAX_BULLETS) return ld_fail(ld, "more than %d bullets", POL_MAX_BULLETS);
    const char *items[POL_MAX_BULLETS];
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(v, i);
        push_index(ld, i);
        lg_status s = want_string(ld, it);
        if (s == LG_OK) s = check_bullet(ld, json_string_value(it));
        if (s != LG_OK) return s;
        pop(ld);
        items[i] = json_string_value(it);
    }
    pop(ld);
    return pol_strlist_set(out, items, n) ? LG_OK : ld_nomem(ld);
}

static lg_status read_state(loader *ld, json_t *v, lg_category_state *out) {
    push_key(ld, "state");
    lg_status s = want_string(ld, v);
    if (s != LG_OK) return s;
    const char *name = json_string_value(v);
    static const lg_category_state all[] = {LG_CATEGORY_DEFAULT, LG_CATEGORY_NONVIOLATING,
                                            LG_CATEGORY_SENSITIVE};
    for (size_t i = 0; i < 3; i++)
        if (strcmp(name, lg_category_state_str(all[i])) == 0) {
            *out = all[i];
            pop(ld);
            return LG_OK;
        }
    return ld_fail(ld,
                   "unknown state \"%.40s\" (expected \"default\", \"non-violating\" or "
                   "\"sensitive\")",
                   name);
}

/* Fills category `c` from `obj` (whose keys were checked). `bc` is the built-in category of the
 * same id, or NULL, in which case name, should_not and can are required. */
static lg_status read_fields(loader *ld, json_t *obj, pol_category *c,
                             const pol_builtin_category *bc) {
    static const char *const required[] = {"name", "should_not", "can"};
    for (size_t i = 0; !bc && i < 3; i++)
        if (!json_object_get(obj, required[i]))
            return ld_fail(ld,
                           "missing required key \"%s\" (category %s is not built into %s, so it "
                           "needs name, should_not and can)",
                           required[i], c->id, ld->pol->gen->name);
    lg_status s = optional_string(ld, obj, "$comment");
    json_t *name = json_object_get(obj, "name");
    if (s == LG_OK && name) {
        push_key(ld, "name");
        s = want_string(ld, name);
        if (s == LG_OK) s = check_name(ld, json_string_value(name));
        if (s != LG_OK) return s;
        pop(ld);
        if (!pol_category_set_name(c, json_string_value(name))) return ld_nomem(ld);
    }
    if (s == LG_OK && json_object_get(obj, "should_not"))
        s = read_bullets(ld, obj, "should_not", &c->should_not);
    if (s == LG_OK && json_object_get(obj, "can")) s = read_bullets(ld, obj, "can", &c->can);
    json_t *state = json_object_get(obj, "state");
    if (s == LG_OK && state) s = read_state(ld, state, &c->state);
    if (s != LG_OK) return s;
    /* The built-in declared-form bullets stand for the built-in bullets only. */
    if (c->declared.n && bc &&
        !(pol_strlist_equals(&c->should_not, bc->should_not, bc->n_should_not) &&
          pol_strlist_equals(&c->can, bc->can, bc->n_can)))
        pol_strlist_clear(&c->declared);
    return LG_OK;
}

static const char *const array_keys[] = {"id",  "name",     "state", "should_not",
                                         "can", "$comment", NULL};
static const char *const object_keys[] = {"name", "state", "should_not", "can", "$comment", NULL};
#define ARRAY_KEYS_LIST "id, name, state, should_not, can or $comment"
#define OBJECT_KEYS_LIST "name, state, should_not, can or $comment"

static lg_status check_id(loader *ld, const char *id) {
    if (strcmp(id, "NA") == 0)
        return ld_fail(ld, "the id \"NA\" is reserved for \"NA: None applying\"");
    if (!pol_id_valid(id))
        return ld_fail(
            ld,
            "invalid category id \"%.40s\" (1-%d ASCII letters, digits, '_', '-' or '.', "
            "starting with a letter or digit)",
            id, POL_MAX_ID);
    return LG_OK;
}

/* Adds a category of the given id: a copy of the built-in one when there is one. */
static pol_category *add_category(loader *ld, const char *id, const pol_builtin_category *bc) {
    if (ld->pol->n_cats >= POL_MAX_CATEGORIES) return NULL;
    return bc ? pol_add_builtin(ld->pol, bc) : pol_add_category(ld->pol, id);
}

static lg_status too_many_or_nomem(loader *ld) {
    if (ld->pol->n_cats >= POL_MAX_CATEGORIES)
        return ld_fail(ld, "more than %d categories", POL_MAX_CATEGORIES);
    return ld_nomem(ld);
}

/* One element of the array form (current path: categories[i]). */
static lg_status read_array_entry(loader *ld, json_t *obj) {
    if (!json_is_object(obj)) return ld_fail(ld, "expected an object, got %s", type_name(obj));
    lg_status s = check_keys(ld, obj, array_keys, ARRAY_KEYS_LIST);
    if (s != LG_OK) return s;
    json_t *idv = json_object_get(obj, "id");
    if (!idv) return ld_fail(ld, "missing required key \"id\"");
    push_key(ld, "id");
    s = want_string(ld, idv);
    const char *id = json_string_value(idv);
    if (s == LG_OK) s = check_id(ld, id);
    if (s != LG_OK) return s;
    for (size_t i = 0; i < ld->pol->n_cats; i++)
        if (strcmp(ld->pol->cats[i].id, id) == 0)
            return ld_fail(ld, "duplicate category id \"%s\" (also categories[%zu])", id, i);
    pop(ld);
    const pol_builtin_category *bc = pol_builtin_find(ld->pol->gen, id);
    pol_category *c = add_category(ld, id, bc);
    if (!c) return too_many_or_nomem(ld);
    return read_fields(ld, obj, c, bc);
}

/* One member of the object form (current path: categories.<id>). */
static lg_status read_object_member(loader *ld, const char *id, json_t *obj) {
    lg_status s = check_id(ld, id);
    if (s != LG_OK) return s;
    if (!json_is_object(obj)) return ld_fail(ld, "expected an object, got %s", type_name(obj));
    s = check_keys(ld, obj, object_keys, OBJECT_KEYS_LIST);
    if (s != LG_OK) return s;
    const pol_builtin_category *bc = pol_builtin_find(ld->pol->gen, id);
    pol_category *c = pol_find(ld->pol, id);
    if (!c) c = add_category(ld, id, bc);
    if (!c) return too_many_or_nomem(ld);
    return read_fields(ld, obj, c, bc);
}

static lg_status add_all_builtins(loader *ld) {
    const pol_generation *gen = ld->pol->gen;
    for (size_t i = 0; i < gen->n_categories; i++)
        if (!pol_add_builtin(ld->pol, &gen->categories[i])) return ld_nomem(ld);
    return LG_OK;
}

static lg_status read_categories(loader *ld, json_t *cats) {
    if (!cats) return add_all_builtins(ld);
    push_key(ld, "categories");
    lg_status s = LG_OK;
    if (json_is_array(cats)) {
        if (json_array_size(cats) == 0) return ld_fail(ld, "a policy needs at least one category");
        for (size_t i = 0; s == LG_OK && i < json_array_size(cats); i++) {
            push_index(ld, i);
            s = read_array_entry(ld, json_array_get(cats, i));
            if (s == LG_OK) pop(ld);
        }
    } else if (json_is_object(cats)) {
        s = add_all_builtins(ld);
        const char *id;
        json_t *v;
        json_object_foreach(cats, id, v) {
            if (s != LG_OK) break;
            push_key(ld, id);
            s = read_object_member(ld, id, v);
            if (s == LG_OK) pop(ld);
        }
    } else {
        return ld_fail(ld,
                       "expected an array (the complete list) or an object (changes to the base), "
                       "got %s",
                       type_name(cats));
    }
    if (s == LG_OK) pop(ld);
    return s;
}

static lg_status read_base(loader *ld, json_t *root, const pol_generation **gen) {
    json_t *v = json_object_get(root, "base");
    *gen = pol_generation_find("v1.2");
    if (!v) return LG_OK;
    push_key(ld, "base");
    lg_status s = want_string(ld, v);
    if (s != LG_OK) return s;
    *gen = pol_generation_find(json_string_value(v));
    if (!*gen) {
        char names[128];
        pol_generation_names(names, sizeof names);
        return ld_fail(ld, "unknown base \"%.40s\" (expected %s)", json_string_value(v), names);
    }
    pop(ld);
    return LG_OK;
}

static const char *const top_keys[] = {"$schema", "$comment",   "description",
                                       "base",    "categories", NULL};

static lg_status read_root(loader *ld, json_t *root) {
    if (!json_is_object(root))
        return ld_fail(ld, "expected a JSON object at the top level, got %s", type_name(root));
    lg_status s =
        check_keys(ld, root, top_keys, "base, categories, description, $schema or $comment");
    for (size_t i = 0; s == LG_OK && i < 3; i++) s = optional_string(ld, root, top_keys[i]);
    const pol_generation *gen = NULL;
    if (s == LG_OK) s = read_base(ld, root, &gen);
    if (s != LG_OK) return s;
    ld->pol = pol_new(gen);
    if (!ld->pol) return ld_nomem(ld);
    s = read_categories(ld, json_object_get(root, "categories"));
    if (s == LG_OK && pol_refresh(ld->pol) != LG_OK) s = ld_nomem(ld);
    return s;
}

lg_status lg_policy_load_memory(const void *data, size_t size, const char *name, lg_policy **out,
                                lg_error *err) {
    if (!name) name = "<policy>";
    if (!data || !out) return lg_err_set(err, LG_E_ARG, "lg_policy_load_memory: NULL argument");
    if (size > POL_MAX_FILE_BYTES)
        return lg_err_set(err, LG_E_LIMIT, "%s: policy file larger than %zu bytes", name,
                          POL_MAX_FILE_BYTES);
    json_error_t je;
    json_t *root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return lg_err_set(err, LG_E_FORMAT, "%s:%d:%d: invalid JSON: %s", name, je.line, je.column,
                          je.text);
    loader ld = {.name = name, .text = data, .len = size, .err = err};
    lg_status s = read_root(&ld, root);
    json_decref(root);
    if (s != LG_OK) {
        lg_policy_free(ld.pol);
        return s;
    }
    *out = ld.pol;
    return LG_OK;
}

lg_status lg_policy_load_file(const char *path, lg_policy **out, lg_error *err) {
    if (!path || !out) return lg_err_set(err, LG_E_ARG, "lg_policy_load_file: NULL argument");
    uint8_t *data = NULL;
    size_t size = 0;
    lg_status s = lg_read_file(path, POL_MAX_FILE_BYTES, &data, &size, err);
    if (s != LG_OK) return s;
    s = lg_policy_load_memory(data, size, path, out, err);
    lg_free(data);
    return s;
}
