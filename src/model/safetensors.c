/*
 * safetensors.c — memory-maps safetensors files and validates their headers before trusting a
 * byte of them (the format of huggingface/safetensors, also what its Rust reader checks).
 *
 * File layout, byte by byte:
 *   [0, 8)        N, the header length: unsigned 64-bit little-endian
 *   [8, 8+N)      the header: a UTF-8 JSON object
 *                   { "__metadata__": {string: string, ...}            (optional)
 *                     "<name>": {"dtype": "BF16", "shape": [d0, d1, ...],
 *                                "data_offsets": [begin, end]}, ... }
 *   [8+N, size)   the data buffer; a tensor's bytes are [8+N+begin, 8+N+end), row-major.
 * Checks: 2 <= N <= 100 MB and 8+N <= file size; the header is one JSON object without duplicate
 * keys; every entry has a known dtype, at most ST_MAX_DIMS non-negative dims, and
 * numel * dtype size == end - begin (with overflow checks); end lies inside the data buffer;
 * no two tensors' ranges overlap. A sharded model lists its files in
 * model.safetensors.index.json ("weight_map": {tensor: file}); shard names must be plain file
 * names, and every mapped tensor must be found in the file the index names.
 */
#include "model.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct st_dtype_info {
    const char *name;
    size_t size;
    bool usable;
    lg_dtype dt;
} st_dtype_info;

static const st_dtype_info st_dtypes[] = {
    {"BF16", 2, true, LG_DT_BF16},    {"F16", 2, true, LG_DT_F16},
    {"F32", 4, true, LG_DT_F32},      {"F64", 8, false, LG_DT_F32},
    {"I64", 8, false, LG_DT_F32},     {"U64", 8, false, LG_DT_F32},
    {"I32", 4, false, LG_DT_F32},     {"U32", 4, false, LG_DT_F32},
    {"I16", 2, false, LG_DT_F32},     {"U16", 2, false, LG_DT_F32},
    {"I8", 1, false, LG_DT_F32},      {"U8", 1, false, LG_DT_F32},
    {"BOOL", 1, false, LG_DT_F32},    {"F8_E4M3", 1, false, LG_DT_F32},
    {"F8_E5M2", 1, false, LG_DT_F32},
};

static const st_dtype_info *find_dtype(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

/* ---- one header entry ---- */

static lg_status parse_entry(const char *path, const char *name, json_t *v, const uint8_t *data,
                             uint64_t data_size, int file, st_tensor *t, lg_error *err) {
    if (!json_is_object(v))
        return lg_err_set(err, LG_E_FORMAT, "%s: tensor \"%s\": entry is not an object", path,
                          name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2)
        return lg_err_set(err, LG_E_FORMAT,
                          "%s: tensor \"%s\": needs \"dtype\", \"shape\" and two "
                          "\"data_offsets\"",
                          path, name);
    const st_dtype_info *di = find_dtype(json_string_value(jd));
    if (!di)
        return lg_err_set(err, LG_E_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.16s\"", path,
                          name, json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return lg_err_set(err, LG_E_FORMAT, "%s: tensor \"%s\": %zu dimensions (at most %d)", path,
                          name, nd, ST_MAX_DIMS);
    /* numel with overflow detection: a product above 2^62 can never fit in a file. */
    const uint64_t limit = (uint64_t)1 << 62;
    uint64_t numel = 1;
    bool zero = false, overflow = false;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return lg_err_set(err, LG_E_FORMAT,
                              "%s: tensor \"%s\": shape[%zu] is not a non-negative integer", path,
                              name, i);
        uint64_t dim = (uint64_t)json_integer_value(d);
        t->shape[i] = (int64_t)dim;
        if (dim == 0)
            zero = true;
        else if (numel > limit / dim)
            overflow = true;
        else
            numel *= dim;
    }
    if (zero) numel = 0, overflow = false;
    uint64_t off[2];
    for (int i = 0; i < 2; i++) {
        json_t *o = json_array_get(jo, (size_t)i);
        if (!json_is_integer(o) || json_integer_value(o) < 0)
            return lg_err_set(err, LG_E_FORMAT,
                              "%s: tensor \"%s\": data_offsets must be non-negative integers", path,
                              name);
        off[i] = (uint64_t)json_integer_value(o);
    }
    uint64_t begin = off[0], end = off[1];
    if (overflow || numel > limit / di->size)
        return lg_err_set(err, LG_E_FORMAT, "%s: tensor \"%s\": shape is impossibly large", path,
                          name);
    uint64_t nbytes = numel * di->size;
    if (end < begin || end - begin != nbytes)
        return lg_err_set(err, LG_E_FORMAT,
                          "%s: tensor \"%s\": %s x %llu elements need %llu bytes but "
                          "data_offsets [%llu, %llu] give %lld",
                          path, name, di->name, (unsigned long long)numel,
                          (unsigned long long)nbytes, (unsigned long long)begin,
                          (unsigned long long)end, end >= begin ? (long long)(end - begin) : -1LL);
    if (end > data_size)
        return lg_err_set(err, LG_E_FORMAT,
                          "%s: tensor \"%s\": data_offsets end %llu is beyond the %llu-byte data "
                          "buffer (truncated file?)",
                          path, name, (unsigned long long)end, (unsigned long long)data_size);
    t->name = lg_strdup(name);
    if (!t->name) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    snprintf(t->dtype, sizeof t->dtype, "%s", di->name);
    t->usable = di->usable;
    t->dt = di->dt;
    t->n_dims = (int)nd;
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)nbytes;
    t->data = nbytes ? data + begin : NULL;
    t->file = file;
    return LG_OK;
}

/* ---- one file ---- */

typedef struct range {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* No two non-empty ranges may share a byte. */
static lg_status check_overlaps(const char *path, const st_tensor *t, size_t n, const uint8_t *data,
                                lg_error *err) {
    range *r = lg_malloc(n * sizeof *r);
    if (!r) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].nbytes == 0) continue;
        r[m].begin = (uint64_t)(t[i].data - data);
        r[m].end = r[m].begin + t[i].nbytes;
        r[m].name = t[i].name;
        m++;
    }
    qsort(r, m, sizeof *r, cmp_range);
    lg_status s = LG_OK;
    for (size_t i = 1; i < m; i++)
        if (r[i].begin < r[i - 1].end) {
            s = lg_err_set(err, LG_E_FORMAT, "%s: tensors \"%s\" and \"%s\" overlap", path,
                           r[i - 1].name, r[i].name);
            break;
        }
    lg_free(r);
    return s;
}

static lg_status grow_tensors(st_set *set, size_t extra, lg_error *err) {
    size_t n = set->n_tensors + extra, bytes;
    if (!lg_mul_ok(n, sizeof *set->tensors, &bytes))
        return lg_err_set(err, LG_E_NOMEM, "too many tensors");
    st_tensor *t = lg_realloc(set->tensors, bytes);
    if (!t) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    set->tensors = t;
    return LG_OK;
}

static lg_status parse_header(st_set *set, int file, lg_error *err) {
    const char *path = set->paths[file];
    const lg_mmap *m = &set->files[file];
    if (m->size < 8)
        return lg_err_set(err, LG_E_FORMAT, "%s: %zu bytes, too short for a safetensors file", path,
                          m->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | m->data[i];
    if (n < 2 || n > ST_MAX_HEADER)
        return lg_err_set(err, LG_E_FORMAT, "%s: header length %llu is out of range [2, %llu]",
                          path, (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
    if (n > m->size - 8)
        return lg_err_set(err, LG_E_FORMAT,
                          "%s: header length %llu runs past the end of the %zu-byte file", path,
                          (unsigned long long)n, m->size);
    json_error_t je;
    json_t *root = json_loadb((const char *)m->data + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return lg_err_set(err, LG_E_FORMAT, "%s: header is not valid JSON (%s at byte %d)", path,
                          je.text, je.position);
    lg_status s = LG_OK;
    if (!json_is_object(root)) {
        s = lg_err_set(err, LG_E_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    const uint8_t *data = m->data + 8 + n;
    uint64_t data_size = m->size - 8 - n;
    s = grow_tensors(set, json_object_size(root), err);
    if (s != LG_OK) goto done;
    size_t first = set->n_tensors;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                s = lg_err_set(err, LG_E_FORMAT, "%s: __metadata__ is not an object", path);
                goto done;
            }
            continue;
        }
        st_tensor *t = &set->tensors[set->n_tensors];
        memset(t, 0, sizeof *t);
        s = parse_entry(path, key, v, data, data_size, file, t, err);
        if (s != LG_OK) goto done;
        set->n_tensors++;
    }
    s = check_overlaps(path, set->tensors + first, set->n_tensors - first, data, err);
done:
    json_decref(root);
    return s;
}

lg_status st_add_file(st_set *set, const char *path, lg_error *err) {
    int i = set->n_files;
    lg_mmap *f = lg_realloc(set->files, (size_t)(i + 1) * sizeof *f);
    if (!f) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    set->files = f;
    char **p = lg_realloc(set->paths, (size_t)(i + 1) * sizeof *p);
    if (!p) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    set->paths = p;
    set->paths[i] = lg_strdup(path);
    if (!set->paths[i]) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    memset(&set->files[i], 0, sizeof set->files[i]);
    set->n_files = i + 1;
    lg_status s = lg_mmap_open(path, &set->files[i], err);
    if (s != LG_OK) return s;
    return parse_header(set, i, err);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

lg_status st_finish(st_set *set, lg_error *err) {
    if (set->n_tensors > 1) qsort(set->tensors, set->n_tensors, sizeof *set->tensors, cmp_tensor);
    for (size_t i = 1; i < set->n_tensors; i++)
        if (strcmp(set->tensors[i].name, set->tensors[i - 1].name) == 0)
            return lg_err_set(err, LG_E_FORMAT, "tensor \"%s\" appears in %s and %s",
                              set->tensors[i].name, set->paths[set->tensors[i - 1].file],
                              set->paths[set->tensors[i].file]);
    return LG_OK;
}

const st_tensor *st_find(const st_set *set, const char *name) {
    size_t lo = 0, hi = set->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, set->tensors[mid].name);
        if (c == 0) return &set->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

void st_close(st_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n_tensors; i++) lg_free(set->tensors[i].name);
    lg_free(set->tensors);
    for (int i = 0; i < set->n_files; i++) {
        lg_mmap_close(&set->files[i]);
        lg_free(set->paths[i]);
    }
    lg_free(set->files);
    lg_free(set->paths);
    memset(set, 0, sizeof *set);
}

/* ---- a model folder ---- */

/* A shard name from the index must be a plain file name inside the folder. */
static bool plain_name(const char *s) {
    return s[0] != '\0' && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static lg_status open_sharded(const char *dir, const char *index_path, st_set *set, lg_error *err) {
    json_t *root = NULL;
    lg_status s = lg_json_load_file(index_path, &root, err);
    if (s != LG_OK) return s;
    json_t *map = json_object_get(root, "weight_map");
    const char **names = NULL;
    size_t n_names = 0;
    if (!json_is_object(map) || json_object_size(map) == 0) {
        s = lg_err_set(err, LG_E_FORMAT, "%s: \"weight_map\" must be a non-empty object",
                       index_path);
        goto done;
    }
    names = lg_calloc(json_object_size(map), sizeof *names);
    if (!names) {
        s = lg_err_set(err, LG_E_NOMEM, "out of memory");
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (!json_is_string(v) || !plain_name(json_string_value(v))) {
            s = lg_err_set(err, LG_E_FORMAT, "%s: tensor \"%s\" maps to a bad file name",
                           index_path, key);
            goto done;
        }
        const char *fn = json_string_value(v);
        bool seen = false;
        for (size_t i = 0; i < n_names && !seen; i++) seen = strcmp(names[i], fn) == 0;
        if (seen) continue;
        names[n_names++] = fn;
        char *path = lg_path_join(dir, fn);
        if (!path) {
            s = lg_err_set(err, LG_E_NOMEM, "out of memory");
            goto done;
        }
        s = st_add_file(set, path, err);
        lg_free(path);
        if (s != LG_OK) goto done;
    }
    s = st_finish(set, err);
    if (s != LG_OK) goto done;
    /* Every tensor the index names must be in the file it names. */
    json_object_foreach(map, key, v) {
        const st_tensor *t = st_find(set, key);
        const char *fn = json_string_value(v);
        const char *have = t ? strrchr(set->paths[t->file], '/') : NULL;
        have = have ? have + 1 : t ? set->paths[t->file] : NULL;
        if (!t || strcmp(have, fn) != 0) {
            s = lg_err_set(err, LG_E_FORMAT, "%s: tensor \"%s\" is not in %s", index_path, key, fn);
            goto done;
        }
    }
done:
    lg_free(names);
    json_decref(root);
    return s;
}

lg_status st_open_dir(const char *dir, st_set *out, lg_error *err) {
    memset(out, 0, sizeof *out);
    char *single = lg_path_join(dir, "model.safetensors");
    char *index = lg_path_join(dir, "model.safetensors.index.json");
    lg_status s;
    if (!single || !index) {
        s = lg_err_set(err, LG_E_NOMEM, "out of memory");
    } else if (lg_file_exists(single)) {
        s = st_add_file(out, single, err);
        if (s == LG_OK) s = st_finish(out, err);
    } else if (lg_file_exists(index)) {
        s = open_sharded(dir, index, out, err);
    } else {
        s = lg_err_set(err, LG_E_IO,
                       "%s: no model.safetensors or model.safetensors.index.json in the model "
                       "folder",
                       dir);
    }
    lg_free(single);
    lg_free(index);
    if (s != LG_OK) st_close(out);
    return s;
}
