/*
 * normalize.c — tokenizer.json "normalizer": the Unicode normalization forms (through utf8proc,
 * not home-made tables), Prepend and Replace, and Sequences of them, with the semantics of the
 * `tokenizers` library (normalizers/unicode.rs, prepend.rs, replace.rs). Prepend adds its prefix
 * only to non-empty text; Replace replaces every non-overlapping match left to right.
 */
#include "text.h"

#include <jansson.h>
#include <string.h>
#include <utf8proc.h>

void norm_free(norm_step *steps, size_t n) {
    if (!steps) return;
    for (size_t i = 0; i < n; i++) {
        lg_free(steps[i].str);
        lg_free(steps[i].pattern);
        pcre2_code_free(steps[i].re);
    }
    lg_free(steps);
}

typedef struct norm_list {
    norm_step *v;
    size_t n, cap;
} norm_list;

static norm_step *list_add(norm_list *l) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 4;
        norm_step *nv = lg_realloc(l->v, nc * sizeof *nv);
        if (!nv) return NULL;
        l->v = nv;
        l->cap = nc;
    }
    norm_step *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    return s;
}

static lg_status parse_one(const json_t *j, const char *path, norm_list *l, lg_error *err);

static lg_status parse_sequence(const json_t *j, const char *path, norm_list *l, lg_error *err) {
    static const char *const keys[] = {"type", "normalizers", NULL};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    const json_t *arr = json_object_get(j, "normalizers");
    if (!json_is_array(arr))
        return lg_err_set(err, LG_E_FORMAT, "%s.normalizers: expected an array", path);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.normalizers[%zu]", path, i);
        if ((st = parse_one(json_array_get(arr, i), sub, l, err))) return st;
    }
    return LG_OK;
}

static lg_status parse_replace(const json_t *j, const char *path, norm_step *s, lg_error *err) {
    static const char *const keys[] = {"type", "pattern", "content", NULL};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    const char *pat, *content;
    size_t plen, clen;
    bool is_re;
    if ((st = tj_pattern(j, "pattern", path, &pat, &plen, &is_re, err))) return st;
    if ((st = tj_string(j, "content", path, true, &content, &clen, err))) return st;
    s->kind = NORM_REPLACE;
    s->str = lg_strndup(content, clen);
    s->str_len = clen;
    if (!s->str) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    if (is_re) {
        char field[300];
        snprintf(field, sizeof field, "%s.pattern.Regex", path);
        return pretok_compile(pat, plen, field, &s->re, err);
    }
    s->pattern = lg_strndup(pat, plen);
    s->pattern_len = plen;
    return s->pattern ? LG_OK : lg_err_set(err, LG_E_NOMEM, "out of memory");
}

static lg_status parse_one(const json_t *j, const char *path, norm_list *l, lg_error *err) {
    if (!json_is_object(j)) return lg_err_set(err, LG_E_FORMAT, "%s: expected an object", path);
    const char *type = tj_type(j);
    if (!type) return lg_err_set(err, LG_E_FORMAT, "%s.type: missing", path);
    if (strcmp(type, "Sequence") == 0) return parse_sequence(j, path, l, err);
    static const char *const type_only[] = {"type", NULL};
    static const struct {
        const char *name;
        norm_kind kind;
    } forms[] = {{"NFC", NORM_NFC}, {"NFD", NORM_NFD}, {"NFKC", NORM_NFKC}, {"NFKD", NORM_NFKD}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (strcmp(type, forms[i].name) == 0) {
            lg_status st = tj_check_keys(j, path, type_only, err);
            if (st) return st;
            norm_step *s = list_add(l);
            if (!s) return lg_err_set(err, LG_E_NOMEM, "out of memory");
            s->kind = forms[i].kind;
            return LG_OK;
        }
    if (strcmp(type, "Prepend") == 0) {
        static const char *const keys[] = {"type", "prepend", NULL};
        lg_status st = tj_check_keys(j, path, keys, err);
        const char *p;
        size_t plen;
        if (st || (st = tj_string(j, "prepend", path, true, &p, &plen, err))) return st;
        norm_step *s = list_add(l);
        if (!s || !(s->str = lg_strndup(p, plen)))
            return lg_err_set(err, LG_E_NOMEM, "out of memory");
        s->kind = NORM_PREPEND;
        s->str_len = plen;
        return LG_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        norm_step *s = list_add(l);
        if (!s) return lg_err_set(err, LG_E_NOMEM, "out of memory");
        return parse_replace(j, path, s, err);
    }
    return lg_err_set(err, LG_E_UNSUPPORTED, "%s.type: normalizer \"%s\" is not supported", path,
                      type);
}

lg_status norm_parse(const json_t *j, norm_step **steps, size_t *n, lg_error *err) {
    *steps = NULL;
    *n = 0;
    if (!j || json_is_null(j)) return LG_OK;
    norm_list l = {0};
    lg_status st = parse_one(j, "normalizer", &l, err);
    if (st) {
        norm_free(l.v, l.n);
        return st;
    }
    *steps = l.v;
    *n = l.n;
    return LG_OK;
}

static lg_status map_region(utf8proc_option_t opt, const char *s, size_t n, lg_buf *out,
                            lg_error *err) {
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, opt);
    if (r < 0) return lg_err_set(err, LG_E_ARG, "normalization failed: %s", utf8proc_errmsg(r));
    bool ok = lg_buf_append(out, dst, (size_t)r);
    free(dst); /* utf8proc allocates with malloc */
    return ok ? LG_OK : lg_err_set(err, LG_E_NOMEM, "out of memory");
}

/* Normalizes only the stretches holding non-ASCII characters, each with the ASCII character
 * before it: a cut before an ASCII character never changes any normal form (ASCII characters
 * are starters that no canonical or compatibility mapping composes with a preceding character,
 * and they block reordering), so mostly-ASCII text costs one pass of copying. */
static lg_status apply_form(norm_kind kind, const char *s, size_t n, lg_buf *out, lg_error *err) {
    utf8proc_option_t opt = UTF8PROC_STABLE;
    if (kind == NORM_NFC || kind == NORM_NFKC)
        opt |= UTF8PROC_COMPOSE;
    else
        opt |= UTF8PROC_DECOMPOSE;
    if (kind == NORM_NFKC || kind == NORM_NFKD) opt |= UTF8PROC_COMPAT;
    size_t done = 0, i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t start = i > done ? i - 1 : i, end = i;
        while (end < n && (unsigned char)s[end] >= 0x80) end++;
        lg_buf_append(out, s + done, start - done);
        lg_status st = map_region(opt, s + start, end - start, out, err);
        if (st) return st;
        done = i = end;
    }
    lg_buf_append(out, s + done, n - done);
    return out->failed ? lg_err_set(err, LG_E_NOMEM, "out of memory") : LG_OK;
}

static lg_status apply_replace(const norm_step *st, const char *s, size_t n, lg_buf *out,
                               lg_error *err) {
    size_t run = 0;
    if (st->re) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(st->re, NULL);
        if (!md) return lg_err_set(err, LG_E_NOMEM, "out of memory");
        size_t pos = 0, ms, me;
        while (pretok_next_match(st->re, md, NULL, s, n, &pos, &ms, &me)) {
            lg_buf_append(out, s + run, ms - run);
            lg_buf_append(out, st->str, st->str_len);
            run = me;
        }
        pcre2_match_data_free(md);
    } else if (st->pattern_len > 0) {
        const char *p = s, *end = s + n;
        while ((size_t)(end - p) >= st->pattern_len) {
            const char *hit = memmem(p, (size_t)(end - p), st->pattern, st->pattern_len);
            if (!hit) break;
            lg_buf_append(out, s + run, (size_t)(hit - s) - run);
            lg_buf_append(out, st->str, st->str_len);
            run = (size_t)(hit - s) + st->pattern_len;
            p = s + run;
        }
    }
    lg_buf_append(out, s + run, n - run);
    return out->failed ? lg_err_set(err, LG_E_NOMEM, "out of memory") : LG_OK;
}

lg_status norm_apply(const norm_step *steps, size_t nsteps, const char *s, size_t n, lg_buf *out,
                     lg_error *err) {
    lg_buf tmp;
    lg_buf_init(&tmp);
    out->len = 0;
    if (!lg_buf_append(out, s, n)) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    lg_status st = LG_OK;
    for (size_t i = 0; i < nsteps && !st; i++) {
        const norm_step *k = &steps[i];
        tmp.len = 0;
        switch (k->kind) {
        case NORM_PREPEND:
            if (out->len == 0) continue;
            lg_buf_append(&tmp, k->str, k->str_len);
            lg_buf_append(&tmp, out->data, out->len);
            if (tmp.failed) st = lg_err_set(err, LG_E_NOMEM, "out of memory");
            break;
        case NORM_REPLACE:
            st = apply_replace(k, out->data, out->len, &tmp, err);
            break;
        default:
            st = apply_form(k->kind, out->data, out->len, &tmp, err);
            break;
        }
        lg_buf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    lg_buf_free(&tmp);
    if (!st && !lg_buf_append(out, "", 0)) st = lg_err_set(err, LG_E_NOMEM, "out of memory");
    return st;
}
