/*
 * pretok.c — tokenizer.json "pre_tokenizer": Split (the pattern read from the file, run with
 * PCRE2 JIT in UTF + UCP mode; String patterns as literals), ByteLevel and Metaspace, and
 * Sequences of them, with the split behaviours of the `tokenizers` library
 * (normalizer.rs NormalizedString::split, pre_tokenizers/{split,byte_level,metaspace}.rs).
 * Empty pieces are dropped, as PreTokenizedString::split does.
 */
#include "text.h"

#include <jansson.h>
#include <string.h>

/* The split pattern the ByteLevel pre-tokenizer uses when "use_regex" is true: part of that
 * pre-tokenizer's definition (byte_level.rs), not of any one model's file. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

#define MAX_STEPS 8 /* the scratch has one level per step */

lg_status pretok_compile(const char *pattern, size_t len, const char *field, pcre2_code **out,
                         lg_error *err) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return lg_err_set(err, LG_E_UNSUPPORTED,
                          "%s: regex not supported by PCRE2 at offset %zu: %s", field, (size_t)eo,
                          (const char *)msg);
    }
    /* Without JIT (e.g. a platform PCRE2 lacks it for) the interpreter gives the same matches. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return LG_OK;
}

bool pretok_next_match(const pcre2_code *re, pcre2_match_data *md, pcre2_match_context *mctx,
                       const char *s, size_t n, size_t *pos, size_t *ms, size_t *me) {
    while (*pos <= n) {
        /* The text was validated as UTF-8 once; re-checking on every call would be quadratic. */
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, *pos, PCRE2_NO_UTF_CHECK, md, mctx);
        if (rc < 0) return false;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *ms = ov[0];
        *me = ov[1];
        if (*me > *ms) {
            *pos = *me;
            return true;
        }
        /* An empty match: report it and step over one character so the search moves on. */
        *pos = *me < n ? *me + utf8_seq_len((uint8_t)s[*me]) : n + 1;
        return true;
    }
    return false;
}

void pretok_free(pre_step *steps, size_t n) {
    if (!steps) return;
    for (size_t i = 0; i < n; i++) {
        pcre2_code_free(steps[i].re);
        lg_free(steps[i].literal);
    }
    lg_free(steps);
}

void pretok_scratch_free(pretok_scratch *ps) {
    for (size_t i = 0; i < MAX_STEPS; i++) {
        lg_buf_free(&ps->bufs[i]);
        lg_free(ps->marks[i]);
    }
    pcre2_match_data_free(ps->md);
    memset(ps, 0, sizeof *ps);
}

/* ---- parsing ---- */

typedef struct pre_list {
    pre_step v[MAX_STEPS];
    size_t n;
} pre_list;

static lg_status add_step(pre_list *l, const char *path, pre_step **out, lg_error *err) {
    if (l->n == MAX_STEPS)
        return lg_err_set(err, LG_E_UNSUPPORTED, "%s: more than %d pre-tokenizers", path,
                          MAX_STEPS);
    *out = &l->v[l->n++];
    memset(*out, 0, sizeof **out);
    return LG_OK;
}

static lg_status parse_split(const json_t *j, const char *path, pre_list *l, lg_error *err) {
    static const char *const keys[] = {"type", "pattern", "behavior", "invert", NULL};
    static const struct {
        const char *name;
        split_behavior b;
    } behaviors[] = {{"Removed", SPLIT_REMOVED},
                     {"Isolated", SPLIT_ISOLATED},
                     {"MergedWithPrevious", SPLIT_MERGED_PREV},
                     {"MergedWithNext", SPLIT_MERGED_NEXT},
                     {"Contiguous", SPLIT_CONTIGUOUS}};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    pre_step *s = NULL;
    if ((st = add_step(l, path, &s, err))) return st;
    s->kind = PRE_SPLIT;
    const char *pat, *beh;
    size_t plen;
    bool is_re;
    if ((st = tj_pattern(j, "pattern", path, &pat, &plen, &is_re, err))) return st;
    if ((st = tj_string(j, "behavior", path, true, &beh, NULL, err))) return st;
    if ((st = tj_bool(j, "invert", path, false, &s->invert, err))) return st;
    bool found = false;
    for (size_t i = 0; i < sizeof behaviors / sizeof behaviors[0]; i++)
        if (strcmp(beh, behaviors[i].name) == 0) {
            s->behavior = behaviors[i].b;
            found = true;
        }
    if (!found)
        return lg_err_set(err, LG_E_UNSUPPORTED, "%s.behavior: \"%s\" is not supported", path, beh);
    if (is_re) {
        char field[300];
        snprintf(field, sizeof field, "%s.pattern.Regex", path);
        return pretok_compile(pat, plen, field, &s->re, err);
    }
    if (plen == 0) return lg_err_set(err, LG_E_UNSUPPORTED, "%s.pattern.String: empty", path);
    s->literal = lg_strndup(pat, plen);
    s->literal_len = plen;
    return s->literal ? LG_OK : lg_err_set(err, LG_E_NOMEM, "out of memory");
}

static lg_status parse_bytelevel(const json_t *j, const char *path, pre_list *l, lg_error *err) {
    static const char *const keys[] = {"type", "add_prefix_space", "trim_offsets", "use_regex",
                                       NULL};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    pre_step *s = NULL;
    if ((st = add_step(l, path, &s, err))) return st;
    s->kind = PRE_BYTELEVEL;
    bool use_regex;
    if ((st = tj_bool(j, "add_prefix_space", path, true, &s->add_prefix_space, err))) return st;
    if ((st = tj_bool(j, "use_regex", path, true, &use_regex, err))) return st;
    if (use_regex) {
        char field[300];
        snprintf(field, sizeof field, "%s (GPT-2 pattern)", path);
        return pretok_compile(gpt2_pattern, sizeof gpt2_pattern - 1, field, &s->re, err);
    }
    return LG_OK;
}

static lg_status parse_metaspace(const json_t *j, const char *path, pre_list *l, lg_error *err) {
    static const char *const keys[] = {
        "type", "replacement", "prepend_scheme", "split", "str_rep", "add_prefix_space", NULL};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    pre_step *s = NULL;
    if ((st = add_step(l, path, &s, err))) return st;
    s->kind = PRE_METASPACE;
    const char *rep, *scheme;
    size_t rlen;
    if ((st = tj_string(j, "replacement", path, true, &rep, &rlen, err))) return st;
    size_t clen;
    if (rlen == 0 || rlen >= sizeof s->replacement ||
        utf8_invalid_at((const uint8_t *)rep, rlen) != rlen ||
        (utf8_decode((const uint8_t *)rep, &clen), clen != rlen))
        return lg_err_set(err, LG_E_FORMAT, "%s.replacement: expected one character", path);
    memcpy(s->replacement, rep, rlen);
    s->replacement_len = rlen;
    if ((st = tj_bool(j, "split", path, true, &s->split, err))) return st;
    if ((st = tj_string(j, "prepend_scheme", path, false, &scheme, NULL, err))) return st;
    if (scheme) {
        if (strcmp(scheme, "always") == 0)
            s->scheme = PREPEND_ALWAYS;
        else if (strcmp(scheme, "first") == 0)
            s->scheme = PREPEND_FIRST;
        else if (strcmp(scheme, "never") == 0)
            s->scheme = PREPEND_NEVER;
        else
            return lg_err_set(err, LG_E_UNSUPPORTED, "%s.prepend_scheme: \"%s\" is not supported",
                              path, scheme);
    } else {
        bool aps; /* files written before prepend_scheme existed */
        if ((st = tj_bool(j, "add_prefix_space", path, true, &aps, err))) return st;
        s->scheme = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    }
    return LG_OK;
}

static lg_status parse_one(const json_t *j, const char *path, pre_list *l, lg_error *err) {
    if (!json_is_object(j)) return lg_err_set(err, LG_E_FORMAT, "%s: expected an object", path);
    const char *type = tj_type(j);
    if (!type) return lg_err_set(err, LG_E_FORMAT, "%s.type: missing", path);
    if (strcmp(type, "Sequence") == 0) {
        static const char *const keys[] = {"type", "pretokenizers", NULL};
        lg_status st = tj_check_keys(j, path, keys, err);
        if (st) return st;
        const json_t *arr = json_object_get(j, "pretokenizers");
        if (!json_is_array(arr))
            return lg_err_set(err, LG_E_FORMAT, "%s.pretokenizers: expected an array", path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", path, i);
            if ((st = parse_one(json_array_get(arr, i), sub, l, err))) return st;
        }
        return LG_OK;
    }
    if (l->n > 0 && l->v[l->n - 1].kind == PRE_BYTELEVEL)
        return lg_err_set(err, LG_E_UNSUPPORTED,
                          "%s: a pre-tokenizer after ByteLevel is not supported", path);
    if (strcmp(type, "Split") == 0) return parse_split(j, path, l, err);
    if (strcmp(type, "ByteLevel") == 0) return parse_bytelevel(j, path, l, err);
    if (strcmp(type, "Metaspace") == 0) return parse_metaspace(j, path, l, err);
    return lg_err_set(err, LG_E_UNSUPPORTED, "%s.type: pre-tokenizer \"%s\" is not supported", path,
                      type);
}

lg_status pretok_parse(const json_t *j, pre_step **steps, size_t *n, bool *byte_level,
                       lg_error *err) {
    *steps = NULL;
    *n = 0;
    *byte_level = false;
    if (!j || json_is_null(j)) return LG_OK;
    pre_list l;
    l.n = 0;
    lg_status st = parse_one(j, "pre_tokenizer", &l, err);
    if (!st && l.n > 0 && !(*steps = lg_malloc(l.n * sizeof **steps)))
        st = lg_err_set(err, LG_E_NOMEM, "out of memory");
    if (st) {
        for (size_t i = 0; i < l.n; i++) {
            pcre2_code_free(l.v[i].re);
            lg_free(l.v[i].literal);
        }
        return st;
    }
    if (l.n) memcpy(*steps, l.v, l.n * sizeof **steps);
    *n = l.n;
    *byte_level = l.n > 0 && l.v[l.n - 1].kind == PRE_BYTELEVEL;
    return LG_OK;
}

/* ---- running ---- */

typedef struct run_ctx {
    const pre_step *steps;
    size_t nsteps;
    pretok_scratch *ps;
    pcre2_match_context *mctx;
    pretok_emit_fn emit;
    void *ectx;
    lg_error *err;
} run_ctx;

static lg_status run_level(run_ctx *c, size_t k, const char *s, size_t n, bool at_start);

static bool mark_push(pretok_scratch *ps, size_t k, size_t *nm, size_t a, size_t b, size_t m) {
    if (*nm + 3 > ps->mark_cap[k]) {
        size_t nc = ps->mark_cap[k] ? 2 * ps->mark_cap[k] : 96;
        size_t *nv = lg_realloc(ps->marks[k], nc * sizeof *nv);
        if (!nv) return false;
        ps->marks[k] = nv;
        ps->mark_cap[k] = nc;
    }
    size_t *v = ps->marks[k] + *nm;
    v[0] = a;
    v[1] = b;
    v[2] = m;
    *nm += 3;
    return true;
}

/* find_matches (pattern.rs): alternating non-match / match spans covering s[0..n). */
static lg_status find_matches(run_ctx *c, size_t k, const pcre2_code *re, const char *lit,
                              size_t litlen, const char *s, size_t n, size_t *nm) {
    pretok_scratch *ps = c->ps;
    *nm = 0;
    size_t prev = 0;
    if (re) {
        if (!ps->md && !(ps->md = pcre2_match_data_create(16, NULL)))
            return lg_err_set(c->err, LG_E_NOMEM, "out of memory");
        size_t pos = 0, ms, me;
        while (pretok_next_match(re, ps->md, c->mctx, s, n, &pos, &ms, &me)) {
            if (ms > prev && !mark_push(ps, k, nm, prev, ms, 0)) goto oom;
            if (!mark_push(ps, k, nm, ms, me, 1)) goto oom;
            prev = me;
        }
    } else {
        const char *p = s, *end = s + n;
        const char *hit;
        while ((size_t)(end - p) >= litlen && (hit = memmem(p, (size_t)(end - p), lit, litlen))) {
            size_t ms = (size_t)(hit - s), me = ms + litlen;
            if (ms > prev && !mark_push(ps, k, nm, prev, ms, 0)) goto oom;
            if (!mark_push(ps, k, nm, ms, me, 1)) goto oom;
            prev = me;
            p = s + me;
        }
    }
    if (prev < n && !mark_push(ps, k, nm, prev, n, 0)) goto oom;
    return LG_OK;
oom:
    return lg_err_set(c->err, LG_E_NOMEM, "out of memory");
}

/* Applies a split behaviour in place: afterwards each triple is (start, end, remove). */
static size_t apply_behavior(size_t *v, size_t nm, split_behavior b, bool invert) {
    if (invert)
        for (size_t i = 0; i < nm; i += 3) v[i + 2] = !v[i + 2];
    size_t out = 0;
    bool prev_match = false;
    switch (b) {
    case SPLIT_REMOVED:
        return nm;
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < nm; i += 3) v[i + 2] = 0;
        return nm;
    case SPLIT_CONTIGUOUS:
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < nm; i += 3) {
            bool m = v[i + 2];
            bool merge = b == SPLIT_CONTIGUOUS ? m == prev_match : (m && !prev_match);
            if (merge && out > 0) {
                v[out - 2] = v[i + 1];
            } else {
                v[out] = v[i];
                v[out + 1] = v[i + 1];
                v[out + 2] = 0;
                out += 3;
            }
            prev_match = m;
        }
        return out;
    case SPLIT_MERGED_NEXT: {
        /* Walk backwards, merging a match into the piece after it; pieces are collected from
         * the end of the array towards the front, then moved down. */
        size_t w = nm;
        for (size_t i = nm; i > 0; i -= 3) {
            size_t a = v[i - 3], e = v[i - 2];
            bool m = v[i - 1];
            if (m && !prev_match && w < nm) {
                v[w] = a;
            } else {
                w -= 3;
                v[w] = a;
                v[w + 1] = e;
                v[w + 2] = 0;
            }
            prev_match = m;
        }
        if (nm > w) memmove(v, v + w, (nm - w) * sizeof *v);
        return nm - w;
    }
    }
    return nm;
}

static lg_status run_pieces(run_ctx *c, size_t k, const char *s, size_t nm, bool at_start) {
    const size_t *v = c->ps->marks[k];
    for (size_t i = 0; i < nm; i += 3) {
        if (v[i + 2] || v[i + 1] == v[i]) continue;
        lg_status st = run_level(c, k + 1, s + v[i], v[i + 1] - v[i], at_start && v[i] == 0);
        if (st) return st;
    }
    return LG_OK;
}

static lg_status run_split(run_ctx *c, size_t k, const pre_step *st, const char *s, size_t n,
                           bool at_start, split_behavior b, bool invert) {
    size_t nm;
    lg_status r = find_matches(c, k, st->re, st->literal, st->literal_len, s, n, &nm);
    if (r) return r;
    nm = apply_behavior(c->ps->marks[k], nm, b, invert);
    return run_pieces(c, k, s, nm, at_start);
}

static lg_status run_metaspace(run_ctx *c, size_t k, const pre_step *st, const char *s, size_t n,
                               bool at_start) {
    lg_buf *b = &c->ps->bufs[k];
    b->len = 0;
    bool starts = n >= st->replacement_len && memcmp(s, st->replacement, st->replacement_len) == 0;
    bool prepend = st->scheme == PREPEND_ALWAYS || (st->scheme == PREPEND_FIRST && at_start);
    /* metaspace.rs replaces the spaces first, then tests for a leading replacement character */
    if (prepend && !(starts || (n > 0 && s[0] == ' ')))
        lg_buf_append(b, st->replacement, st->replacement_len);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            lg_buf_append(b, st->replacement, st->replacement_len);
        else
            lg_buf_putc(b, s[i]);
    }
    if (b->failed) return lg_err_set(c->err, LG_E_NOMEM, "out of memory");
    if (!st->split) return run_level(c, k + 1, b->data, b->len, at_start);
    size_t nm;
    lg_status r =
        find_matches(c, k, NULL, st->replacement, st->replacement_len, b->data, b->len, &nm);
    if (r) return r;
    nm = apply_behavior(c->ps->marks[k], nm, SPLIT_MERGED_NEXT, false);
    return run_pieces(c, k, b->data, nm, at_start);
}

static lg_status run_level(run_ctx *c, size_t k, const char *s, size_t n, bool at_start) {
    if (n == 0) return LG_OK;
    if (k == c->nsteps) {
        if (!c->emit(c->ectx, s, n)) return c->err->status ? c->err->status : LG_E_INTERNAL;
        return LG_OK;
    }
    const pre_step *st = &c->steps[k];
    switch (st->kind) {
    case PRE_SPLIT:
        return run_split(c, k, st, s, n, at_start, st->behavior, st->invert);
    case PRE_BYTELEVEL:
        if (st->add_prefix_space && s[0] != ' ') {
            lg_buf *b = &c->ps->bufs[k];
            b->len = 0;
            lg_buf_putc(b, ' ');
            lg_buf_append(b, s, n);
            if (b->failed) return lg_err_set(c->err, LG_E_NOMEM, "out of memory");
            s = b->data;
            n = b->len;
        }
        if (st->re) return run_split(c, k, st, s, n, at_start, SPLIT_ISOLATED, false);
        return run_level(c, k + 1, s, n, at_start);
    case PRE_METASPACE:
        return run_metaspace(c, k, st, s, n, at_start);
    }
    return LG_E_INTERNAL;
}

lg_status pretok_run(const pre_step *steps, size_t nsteps, pretok_scratch *ps,
                     pcre2_match_context *mctx, const char *s, size_t n, bool at_start,
                     pretok_emit_fn emit, void *ctx, lg_error *err) {
    run_ctx c = {steps, nsteps, ps, mctx, emit, ctx, err};
    return run_level(&c, 0, s, n, at_start);
}
