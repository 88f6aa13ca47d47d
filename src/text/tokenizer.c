/*
 * tokenizer.c — loading a Hugging Face tokenizer.json and the encode pipeline of the `tokenizers`
 * library (tokenizer/mod.rs encode_single_sequence, added_vocabulary.rs extract_and_normalize):
 * added tokens are split off the raw text first (leftmost-longest match, lstrip/rstrip), every
 * remaining segment is normalized on its own (so each Llama segment gets its own leading "▁"),
 * normalized added tokens are split off next, then pre-tokenization and the BPE model; the
 * post-processor's tokens are added only on request. Also the id/token lookups of the public API.
 */
#include "text.h"

#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

lg_status tok_fail(lg_tokenizer *tok, lg_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tok->errmsg, sizeof tok->errmsg, fmt, ap);
    va_end(ap);
    return st;
}

lg_status tok_fail_err(lg_tokenizer *tok, const lg_error *e) {
    snprintf(tok->errmsg, sizeof tok->errmsg, "%s", e->msg);
    return e->status;
}

const char *lg_tokenizer_errmsg(const lg_tokenizer *tok) {
    return tok ? tok->errmsg : "";
}

void lg_tokenizer_free(lg_tokenizer *tok) {
    if (!tok) return;
    norm_free(tok->norm, tok->n_norm);
    pretok_free(tok->pre, tok->n_pre);
    bpe_free(&tok->bpe);
    detok_spec_free(&tok->dec);
    for (size_t i = 0; i < tok->n_added; i++) {
        lg_free(tok->added[i].content);
        lg_free(tok->added[i].match);
    }
    lg_free(tok->added);
    lg_free(tok->by_first);
    lg_free(tok->prefix);
    lg_free(tok->suffix);
    lg_free(tok->tb);
    lg_free(tok->tb_off);
    lg_free(tok->tb_len);
    lg_free(tok->byte_val);
    lg_free(tok->special);
    bpe_cache_free(&tok->cache);
    pretok_scratch_free(&tok->ps);
    pcre2_match_context_free(tok->mctx);
    pcre2_jit_stack_free(tok->jit);
    lg_buf_free(&tok->nbuf);
    lg_free(tok);
}

/* ---- loading: added tokens ---- */

static lg_status parse_added(lg_tokenizer *tok, const json_t *arr, lg_error *err) {
    if (!arr || json_is_null(arr)) return LG_OK;
    if (!json_is_array(arr)) return lg_err_set(err, LG_E_FORMAT, "added_tokens: expected an array");
    size_t n = json_array_size(arr);
    if (n && !(tok->added = lg_calloc(n, sizeof *tok->added)))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    static const char *const keys[] = {"id",     "content",    "single_word", "lstrip",
                                       "rstrip", "normalized", "special",     NULL};
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%zu]", i);
        if (!json_is_object(e)) return lg_err_set(err, LG_E_FORMAT, "%s: expected an object", path);
        lg_status st = tj_check_keys(e, path, keys, err);
        if (st) return st;
        added_token *a = &tok->added[tok->n_added++];
        const json_t *id = json_object_get(e, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= INT32_MAX - 1)
            return lg_err_set(err, LG_E_FORMAT, "%s.id: expected an id >= 0", path);
        a->id = (int32_t)json_integer_value(id);
        const char *content;
        bool single_word;
        if ((st = tj_string(e, "content", path, true, &content, &a->len, err)) ||
            (st = tj_bool(e, "single_word", path, false, &single_word, err)) ||
            (st = tj_bool(e, "lstrip", path, false, &a->lstrip, err)) ||
            (st = tj_bool(e, "rstrip", path, false, &a->rstrip, err)) ||
            (st = tj_bool(e, "special", path, false, &a->special, err)) ||
            /* AddedToken's default: special tokens are not normalized, others are */
            (st = tj_bool(e, "normalized", path, !a->special, &a->normalized, err)))
            return st;
        if (single_word)
            return lg_err_set(err, LG_E_UNSUPPORTED, "%s.single_word: true is not supported", path);
        if (a->len == 0) return lg_err_set(err, LG_E_FORMAT, "%s.content: empty", path);
        if (!(a->content = lg_strndup(content, a->len)))
            return lg_err_set(err, LG_E_NOMEM, "out of memory");
        /* A normalized token is searched for in normalized text, as its normalized form. */
        lg_buf nb;
        lg_buf_init(&nb);
        if (a->normalized) {
            if ((st = norm_apply(tok->norm, tok->n_norm, content, a->len, &nb, err))) {
                lg_buf_free(&nb);
                return st;
            }
        } else {
            lg_buf_append(&nb, content, a->len);
        }
        if (nb.failed) return lg_err_set(err, LG_E_NOMEM, "out of memory");
        a->match = lg_buf_detach(&nb, &a->match_len);
        if (a->match_len == 0) return lg_err_set(err, LG_E_FORMAT, "%s.content: empty", path);
        if ((st = bpe_set_token(&tok->bpe, a->id, content, a->len, err))) return st;
    }
    return LG_OK;
}

/* Index of added tokens by first byte of their match text, longest first within each byte. */
static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const added_token *t = ctx;
    size_t la = t[*(const int32_t *)a].match_len, lb = t[*(const int32_t *)b].match_len;
    if (la != lb) return la > lb ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

static lg_status index_added(lg_tokenizer *tok, lg_error *err) {
    uint32_t count[256] = {0};
    for (size_t i = 0; i < tok->n_added; i++) count[(uint8_t)tok->added[i].match[0]]++;
    tok->first_off[0] = 0;
    for (int b = 0; b < 256; b++) tok->first_off[b + 1] = tok->first_off[b] + count[b];
    if (!(tok->by_first = lg_malloc((tok->n_added ? tok->n_added : 1) * sizeof *tok->by_first)))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    uint32_t fill[256];
    memcpy(fill, tok->first_off, sizeof fill);
    for (size_t i = 0; i < tok->n_added; i++)
        tok->by_first[fill[(uint8_t)tok->added[i].match[0]]++] = (int32_t)i;
    for (int b = 0; b < 256; b++)
        qsort_r(tok->by_first + tok->first_off[b], count[b], sizeof *tok->by_first, cmp_len_desc,
                tok->added);
    return LG_OK;
}

/* ---- loading: post-processor ---- */

static lg_status ids_append(int32_t **v, size_t *n, const json_t *ids, const char *path,
                            lg_error *err) {
    if (!json_is_array(ids)) return lg_err_set(err, LG_E_FORMAT, "%s.ids: expected an array", path);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const json_t *x = json_array_get(ids, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= INT32_MAX)
            return lg_err_set(err, LG_E_FORMAT, "%s.ids[%zu]: expected an id", path, i);
        int32_t *nv = lg_realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv) return lg_err_set(err, LG_E_NOMEM, "out of memory");
        *v = nv;
        nv[(*n)++] = (int32_t)json_integer_value(x);
    }
    return LG_OK;
}

static lg_status parse_template(lg_tokenizer *tok, const json_t *j, const char *path,
                                lg_error *err) {
    static const char *const keys[] = {"type", "single", "pair", "special_tokens", NULL};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    if (tok->prefix || tok->suffix)
        return lg_err_set(err, LG_E_UNSUPPORTED, "%s: a second TemplateProcessing", path);
    const json_t *single = json_object_get(j, "single"), *sp = json_object_get(j, "special_tokens");
    if (!json_is_array(single))
        return lg_err_set(err, LG_E_FORMAT, "%s.single: expected an array", path);
    bool seen_a = false;
    for (size_t i = 0; i < json_array_size(single); i++) {
        const json_t *item = json_array_get(single, i);
        const json_t *tokj = json_object_get(item, "SpecialToken");
        const json_t *seqj = json_object_get(item, "Sequence");
        char ipath[300];
        snprintf(ipath, sizeof ipath, "%s.single[%zu]", path, i);
        if (json_is_object(seqj)) {
            const char *sid;
            if ((st = tj_string(seqj, "id", ipath, true, &sid, NULL, err))) return st;
            if (strcmp(sid, "A") != 0 || seen_a)
                return lg_err_set(err, LG_E_UNSUPPORTED, "%s: only one Sequence \"A\" is supported",
                                  ipath);
            seen_a = true;
        } else if (json_is_object(tokj)) {
            const char *name;
            if ((st = tj_string(tokj, "id", ipath, true, &name, NULL, err))) return st;
            const json_t *def = json_object_get(sp, name);
            if (!json_is_object(def))
                return lg_err_set(err, LG_E_FORMAT, "%s: \"%s\" is not in %s.special_tokens", ipath,
                                  name, path);
            char spath[400];
            snprintf(spath, sizeof spath, "%s.special_tokens[\"%s\"]", path, name);
            st = seen_a ? ids_append(&tok->suffix, &tok->n_suffix, json_object_get(def, "ids"),
                                     spath, err)
                        : ids_append(&tok->prefix, &tok->n_prefix, json_object_get(def, "ids"),
                                     spath, err);
            if (st) return st;
        } else {
            return lg_err_set(err, LG_E_FORMAT, "%s: expected SpecialToken or Sequence", ipath);
        }
    }
    if (!seen_a) return lg_err_set(err, LG_E_FORMAT, "%s.single: no Sequence \"A\"", path);
    return LG_OK;
}

static lg_status parse_post(lg_tokenizer *tok, const json_t *j, const char *path, lg_error *err) {
    if (!j || json_is_null(j)) return LG_OK;
    if (!json_is_object(j)) return lg_err_set(err, LG_E_FORMAT, "%s: expected an object", path);
    const char *type = tj_type(j);
    if (!type) return lg_err_set(err, LG_E_FORMAT, "%s.type: missing", path);
    if (strcmp(type, "ByteLevel") == 0) { /* adds no tokens (only adjusts offsets) */
        static const char *const keys[] = {"type", "add_prefix_space", "trim_offsets", "use_regex",
                                           NULL};
        return tj_check_keys(j, path, keys, err);
    }
    if (strcmp(type, "TemplateProcessing") == 0) return parse_template(tok, j, path, err);
    if (strcmp(type, "Sequence") == 0) {
        static const char *const keys[] = {"type", "processors", NULL};
        lg_status st = tj_check_keys(j, path, keys, err);
        if (st) return st;
        const json_t *arr = json_object_get(j, "processors");
        if (!json_is_array(arr))
            return lg_err_set(err, LG_E_FORMAT, "%s.processors: expected an array", path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%zu]", path, i);
            if ((st = parse_post(tok, json_array_get(arr, i), sub, err))) return st;
        }
        return LG_OK;
    }
    return lg_err_set(err, LG_E_UNSUPPORTED, "%s.type: post-processor \"%s\" is not supported",
                      path, type);
}

/* ---- loading: per-id decoded bytes ---- */

static lg_status build_token_bytes(lg_tokenizer *tok, lg_error *err) {
    size_t n = (size_t)tok->bpe.n_ids;
    if (!(tok->tb_off = lg_malloc((n ? n : 1) * sizeof *tok->tb_off)) ||
        !(tok->tb_len = lg_calloc(n ? n : 1, sizeof *tok->tb_len)) ||
        !(tok->byte_val = lg_malloc((n ? n : 1) * sizeof *tok->byte_val)) ||
        !(tok->special = lg_calloc(n ? n : 1, 1)))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    lg_buf all, one;
    lg_buf_init(&all);
    lg_buf_init(&one);
    for (size_t id = 0; id < n; id++) {
        size_t len;
        const char *s = bpe_token_str(&tok->bpe, (int32_t)id, &len);
        tok->tb_off[id] = UINT32_MAX;
        tok->byte_val[id] = -1;
        if (!s) continue;
        int bv;
        detok_token_bytes(&tok->dec, s, len, &one, &bv);
        tok->byte_val[id] = (int16_t)bv;
        tok->tb_off[id] = (uint32_t)all.len;
        tok->tb_len[id] = (uint32_t)one.len;
        lg_buf_append(&all, one.data, one.len);
    }
    lg_buf_free(&one);
    for (size_t i = 0; i < tok->n_added; i++)
        tok->special[tok->added[i].id] = tok->added[i].special;
    if (all.failed || all.len > UINT32_MAX) {
        lg_buf_free(&all);
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    }
    size_t l;
    tok->tb = (uint8_t *)lg_buf_detach(&all, &l);
    if (!tok->tb && !(tok->tb = lg_malloc(1))) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    return LG_OK;
}

/* ---- loading: the whole file ---- */

static lg_status load_json(lg_tokenizer *tok, const json_t *root, lg_error *err) {
    if (!json_is_object(root)) return lg_err_set(err, LG_E_FORMAT, "expected a JSON object");
    static const char *const keys[] = {
        "version",       "truncation",     "padding", "added_tokens", "normalizer",
        "pre_tokenizer", "post_processor", "decoder", "model",        NULL};
    lg_status st = tj_check_keys(root, "tokenizer", keys, err);
    if (st) return st;
    const char *const off_fields[] = {"truncation", "padding"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(root, off_fields[i]);
        if (v && !json_is_null(v))
            return lg_err_set(err, LG_E_UNSUPPORTED, "%s: only null is supported", off_fields[i]);
    }
    if (!json_object_get(root, "model"))
        return lg_err_set(err, LG_E_FORMAT, "model: missing (not a tokenizer.json?)");
    bool byte_level;
    if ((st = norm_parse(json_object_get(root, "normalizer"), &tok->norm, &tok->n_norm, err)) ||
        (st = pretok_parse(json_object_get(root, "pre_tokenizer"), &tok->pre, &tok->n_pre,
                           &byte_level, err)) ||
        (st = detok_parse(json_object_get(root, "decoder"), &tok->dec, err)) ||
        (st = bpe_parse(json_object_get(root, "model"), byte_level, &tok->bpe, err)) ||
        (st = parse_added(tok, json_object_get(root, "added_tokens"), err)) ||
        (st = parse_post(tok, json_object_get(root, "post_processor"), "post_processor", err)) ||
        (st = index_added(tok, err)) || (st = build_token_bytes(tok, err)))
        return st;
    for (size_t i = 0; i < tok->n_prefix + tok->n_suffix; i++) {
        int32_t id = i < tok->n_prefix ? tok->prefix[i] : tok->suffix[i - tok->n_prefix];
        if (id >= tok->bpe.n_ids || tok->tb_off[id] == UINT32_MAX)
            return lg_err_set(err, LG_E_FORMAT, "post_processor: id %d has no token", id);
    }
    tok->mctx = pcre2_match_context_create(NULL);
    tok->jit = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!tok->mctx || !tok->jit) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    pcre2_jit_stack_assign(tok->mctx, NULL, tok->jit);
    return LG_OK;
}

static lg_status open_root(json_t *root, const char *name, lg_tokenizer **out, lg_error *err) {
    lg_tokenizer *tok = lg_calloc(1, sizeof *tok);
    if (!tok) {
        json_decref(root);
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    }
    lg_status st = load_json(tok, root, err);
    json_decref(root);
    if (st) {
        lg_err_prefix(err, "%s", name);
        lg_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return LG_OK;
}

lg_status lg_tokenizer_open_memory(const void *json, size_t size, const char *name,
                                   lg_tokenizer **out, lg_error *err) {
    if (!name) name = "tokenizer.json";
    if (!out || (!json && size)) return lg_err_set(err, LG_E_ARG, "%s: NULL argument", name);
    json_error_t je;
    json_t *root = json_loadb(json, size, JSON_ALLOW_NUL, &je);
    if (!root)
        return lg_err_set(err, LG_E_FORMAT, "%s:%d:%d: invalid JSON: %s", name, je.line, je.column,
                          je.text);
    return open_root(root, name, out, err);
}

lg_status lg_tokenizer_open(const char *path, lg_tokenizer **out, lg_error *err) {
    if (!path || !out) return lg_err_set(err, LG_E_ARG, "tokenizer: NULL argument");
    struct stat sb;
    char *file = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (!(file = lg_path_join(path, "tokenizer.json")))
            return lg_err_set(err, LG_E_NOMEM, "out of memory");
    }
    json_t *root = NULL;
    lg_status st = lg_json_load_file(file ? file : path, &root, err);
    if (!st) st = open_root(root, file ? file : path, out, err);
    lg_free(file);
    return st;
}

/* ---- encoding ---- */

typedef struct enc_ctx {
    lg_tokenizer *tok;
    int32_t *ids;
    size_t n, cap;
    lg_error err;
} enc_ctx;

static bool push_ids(enc_ctx *c, const int32_t *v, size_t n) {
    if (n == 0) return true;
    if (c->n + n > c->cap) {
        size_t nc = c->cap ? c->cap : 256;
        while (nc < c->n + n) nc *= 2;
        int32_t *ni = lg_realloc(c->ids, nc * sizeof *ni);
        if (!ni) {
            lg_err_set(&c->err, LG_E_NOMEM, "out of memory");
            return false;
        }
        c->ids = ni;
        c->cap = nc;
    }
    memcpy(c->ids + c->n, v, n * sizeof *v);
    c->n += n;
    return true;
}

static bool emit_piece(void *ctx, const char *s, size_t n) {
    enc_ctx *c = ctx;
    return bpe_encode_piece(&c->tok->bpe, &c->tok->cache, s, n, &c->ids, &c->n, &c->cap, &c->err) ==
           LG_OK;
}

/* Finds the leftmost-longest added token of this pass (normalized or raw) in s[from..n);
 * returns its index in tok->added or -1, and its start in *at. */
static int32_t find_added(const lg_tokenizer *tok, const char *s, size_t n, size_t from,
                          bool normalized_pass, size_t *at) {
    for (size_t i = from; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        for (uint32_t k = tok->first_off[b]; k < tok->first_off[b + 1]; k++) {
            const added_token *a = &tok->added[tok->by_first[k]];
            if (a->normalized != normalized_pass) continue;
            if (a->match_len <= n - i && memcmp(s + i, a->match, a->match_len) == 0) {
                *at = i;
                return tok->by_first[k];
            }
        }
    }
    return -1;
}

/* Start of the run of whitespace that ends s[0..n) (added_vocabulary.rs space_leftmost_at_end). */
static size_t ws_run_start(const char *s, size_t n) {
    size_t i = n;
    while (i > 0) {
        size_t j = i - 1;
        while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80) j--;
        size_t cl;
        if (!utf8_is_whitespace(utf8_decode((const uint8_t *)s + j, &cl))) break;
        i = j;
    }
    return i;
}

/* Length of the run of whitespace that starts s[0..n). */
static size_t ws_run_len(const char *s, size_t n) {
    size_t i = 0, cl;
    while (i < n && utf8_is_whitespace(utf8_decode((const uint8_t *)s + i, &cl))) i += cl;
    return i;
}

typedef lg_status (*segment_fn)(enc_ctx *c, const char *s, size_t n, bool at_start, unsigned flags);

/* Splits s at the added tokens of one pass; text between them goes to `text_fn`. */
static lg_status split_added(enc_ctx *c, const char *s, size_t n, bool at_start, unsigned flags,
                             bool normalized_pass, segment_fn text_fn) {
    const lg_tokenizer *tok = c->tok;
    size_t start_offset = 0, pos = 0, at;
    int32_t k;
    bool split_special = flags & LG_ENCODE_SPLIT_SPECIAL;
    while (tok->n_added && (k = find_added(tok, s, n, pos, normalized_pass, &at)) >= 0) {
        const added_token *a = &tok->added[k];
        size_t start = at, stop = at + a->match_len;
        if (split_special && a->special) {
            /* as HF's encode_special_tokens: the match is found, then left in the text */
            pos = stop;
            continue;
        }
        if (a->lstrip) {
            size_t ns = ws_run_start(s, start);
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) stop += ws_run_len(s + stop, n - stop);
        if (start > start_offset) {
            lg_status st = text_fn(c, s + start_offset, start - start_offset,
                                   at_start && start_offset == 0, flags);
            if (st) return st;
        }
        if (!push_ids(c, &a->id, 1)) return c->err.status;
        start_offset = pos = stop;
    }
    if (start_offset < n)
        return text_fn(c, s + start_offset, n - start_offset, at_start && start_offset == 0, flags);
    return LG_OK;
}

static lg_status pretokenize(enc_ctx *c, const char *s, size_t n, bool at_start, unsigned flags) {
    (void)flags;
    lg_tokenizer *tok = c->tok;
    if (tok->n_pre == 0) return emit_piece(c, s, n) ? LG_OK : c->err.status;
    return pretok_run(tok->pre, tok->n_pre, &tok->ps, tok->mctx, s, n, at_start, emit_piece, c,
                      &c->err);
}

static bool has_normalized_tokens(const lg_tokenizer *tok) {
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].normalized) return true;
    return false;
}

static bool norm_is_identity(const lg_tokenizer *tok, const char *s, size_t n) {
    for (size_t i = 0; i < tok->n_norm; i++)
        if (tok->norm[i].kind == NORM_PREPEND || tok->norm[i].kind == NORM_REPLACE) return false;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0x80) return false; /* the normal forms leave ASCII unchanged */
    return true;
}

/* One segment of raw text between added tokens: normalize, split off normalized added tokens,
 * pre-tokenize and run the model. */
static lg_status raw_segment(enc_ctx *c, const char *s, size_t n, bool at_start, unsigned flags) {
    lg_tokenizer *tok = c->tok;
    if (!norm_is_identity(tok, s, n)) {
        lg_status st = norm_apply(tok->norm, tok->n_norm, s, n, &tok->nbuf, &c->err);
        if (st) return st;
        s = tok->nbuf.data;
        n = tok->nbuf.len;
    }
    if (has_normalized_tokens(tok)) return split_added(c, s, n, at_start, flags, true, pretokenize);
    return pretokenize(c, s, n, at_start, flags);
}

lg_status lg_tokenizer_encode_ex(lg_tokenizer *tok, const char *text, size_t len, unsigned flags,
                                 int32_t **ids, size_t *n) {
    if (!tok) return LG_E_ARG;
    if ((!text && len) || !ids || !n) return tok_fail(tok, LG_E_ARG, "encode: NULL argument");
    if (flags & ~(LG_ENCODE_ADD_SPECIAL | LG_ENCODE_SPLIT_SPECIAL))
        return tok_fail(tok, LG_E_ARG, "encode: unknown flags 0x%x", flags);
    size_t bad = utf8_invalid_at((const uint8_t *)text, len);
    if (bad < len)
        return tok_fail(tok, LG_E_ARG, "encode: text is not valid UTF-8 at byte %zu", bad);
    enc_ctx c = {.tok = tok};
    lg_err_clear(&c.err);
    lg_status st = LG_OK;
    if ((flags & LG_ENCODE_ADD_SPECIAL) && !push_ids(&c, tok->prefix, tok->n_prefix))
        st = c.err.status;
    /* In the raw pass only non-normalized tokens are searched; the normalized ones come after
     * normalization (extract_and_normalize). */
    if (!st && len) st = split_added(&c, text, len, true, flags, false, raw_segment);
    if (!st && (flags & LG_ENCODE_ADD_SPECIAL) && !push_ids(&c, tok->suffix, tok->n_suffix))
        st = c.err.status;
    if (!st && !c.ids && !(c.ids = lg_malloc(sizeof *c.ids)))
        lg_err_set(&c.err, st = LG_E_NOMEM, "out of memory");
    if (st) {
        lg_free(c.ids);
        return tok_fail(tok, st, "encode: %s", c.err.msg);
    }
    *ids = c.ids;
    *n = c.n;
    return LG_OK;
}

lg_status lg_tokenizer_encode(lg_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                              size_t *n) {
    return lg_tokenizer_encode_ex(tok, text, len, 0, ids, n);
}

/* ---- lookups ---- */

int32_t lg_tokenizer_token_id(const lg_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    size_t n = strlen(token);
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == n && memcmp(tok->added[i].content, token, n) == 0)
            return tok->added[i].id;
    return bpe_vocab_find(&tok->bpe, token, n);
}

int32_t lg_tokenizer_vocab_size(const lg_tokenizer *tok) {
    return tok ? tok->bpe.n_ids : 0;
}

const uint8_t *lg_tokenizer_token_bytes(const lg_tokenizer *tok, int32_t id, size_t *len) {
    if (!tok || id < 0 || id >= tok->bpe.n_ids || tok->tb_off[id] == UINT32_MAX) return NULL;
    if (len) *len = tok->tb_len[id];
    return tok->tb + tok->tb_off[id];
}

const char *lg_tokenizer_token_str(const lg_tokenizer *tok, int32_t id) {
    size_t len;
    return tok ? bpe_token_str(&tok->bpe, id, &len) : NULL;
}

int lg_tokenizer_is_special(const lg_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->bpe.n_ids) return 0;
    return tok->special[id];
}

size_t lg_tokenizer_special_prefix(const lg_tokenizer *tok, const int32_t **ids) {
    if (ids) *ids = tok && tok->n_prefix ? tok->prefix : NULL;
    return tok ? tok->n_prefix : 0;
}

size_t lg_tokenizer_special_suffix(const lg_tokenizer *tok, const int32_t **ids) {
    if (ids) *ids = tok && tok->n_suffix ? tok->suffix : NULL;
    return tok ? tok->n_suffix : 0;
}
