/*
 * decode.c — tokenizer.json "decoder" and ids -> text: ByteLevel (GPT-2 alphabet -> bytes, then
 * String::from_utf8_lossy over the whole text), Replace (string patterns), ByteFallback (<0xNN>
 * pieces; a run of them that is not valid UTF-8 becomes one U+FFFD per byte), Fuse, Strip (after
 * Fuse: leading characters of the whole text) and Metaspace, as in the `tokenizers` library's
 * decoders module. Also the streaming decoder, which holds back unfinished UTF-8 characters.
 */
#include "text.h"

#include <jansson.h>
#include <string.h>

void detok_spec_free(detok_spec *d) {
    for (size_t i = 0; i < d->n_rep; i++) {
        lg_free(d->rep[i].from);
        lg_free(d->rep[i].to);
    }
    lg_free(d->rep);
    memset(d, 0, sizeof *d);
}

/* What the chain parsed so far allows next: the supported chains are
 * [ByteLevel] [Fuse] or [Replace|Metaspace]* [ByteFallback] [Fuse] [Strip]. */
typedef struct chain_state {
    bool byte_level, byte_fallback, fuse, strip;
} chain_state;

static lg_status add_rep(detok_spec *d, const char *from, size_t flen, const char *to, size_t tlen,
                         lg_error *err) {
    detok_replace *nr = lg_realloc(d->rep, (d->n_rep + 1) * sizeof *nr);
    if (!nr) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    d->rep = nr;
    detok_replace *r = &d->rep[d->n_rep];
    r->from = lg_strndup(from, flen);
    r->to = lg_strndup(to, tlen);
    r->from_len = flen;
    r->to_len = tlen;
    d->n_rep++;
    if (!r->from || !r->to) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    return LG_OK;
}

static lg_status order_error(const char *path, const char *type, lg_error *err) {
    return lg_err_set(err, LG_E_UNSUPPORTED, "%s: decoder \"%s\" in this position is not supported",
                      path, type);
}

static lg_status parse_one(const json_t *j, const char *path, detok_spec *d, chain_state *cs,
                           lg_error *err);

static lg_status parse_strip(const json_t *j, const char *path, detok_spec *d, chain_state *cs,
                             lg_error *err) {
    static const char *const keys[] = {"type", "content", "start", "stop", NULL};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    if (!cs->fuse || cs->strip) return order_error(path, "Strip", err);
    const char *content;
    size_t clen, ulen;
    if ((st = tj_string(j, "content", path, true, &content, &clen, err))) return st;
    if (clen == 0 || utf8_invalid_at((const uint8_t *)content, clen) != clen)
        return lg_err_set(err, LG_E_FORMAT, "%s.content: expected one character", path);
    uint32_t cp = utf8_decode((const uint8_t *)content, &ulen);
    const json_t *start = json_object_get(j, "start"), *stop = json_object_get(j, "stop");
    if (ulen != clen || !json_is_integer(start) || json_integer_value(start) < 0 ||
        json_integer_value(start) > 1000)
        return lg_err_set(err, LG_E_FORMAT, "%s: expected one content character and a start count",
                          path);
    if (stop && !(json_is_integer(stop) && json_integer_value(stop) == 0))
        return lg_err_set(err, LG_E_UNSUPPORTED, "%s.stop: only 0 is supported", path);
    d->strip_char = cp;
    d->strip_count = (size_t)json_integer_value(start);
    cs->strip = true;
    return LG_OK;
}

static lg_status parse_metaspace(const json_t *j, const char *path, detok_spec *d, lg_error *err) {
    static const char *const keys[] = {
        "type", "replacement", "prepend_scheme", "split", "str_rep", "add_prefix_space", NULL};
    lg_status st = tj_check_keys(j, path, keys, err);
    if (st) return st;
    const char *rep, *scheme;
    size_t rlen;
    if ((st = tj_string(j, "replacement", path, true, &rep, &rlen, err))) return st;
    if ((st = tj_string(j, "prepend_scheme", path, false, &scheme, NULL, err))) return st;
    bool strip_first;
    if (scheme)
        strip_first = strcmp(scheme, "never") != 0;
    else if ((st = tj_bool(j, "add_prefix_space", path, true, &strip_first, err)))
        return st;
    if ((st = add_rep(d, rep, rlen, " ", 1, err))) return st;
    if (strip_first) { /* metaspace.rs removes the leading space of the first token */
        d->strip_char = ' ';
        d->strip_count = 1;
    }
    return LG_OK;
}

static lg_status parse_one(const json_t *j, const char *path, detok_spec *d, chain_state *cs,
                           lg_error *err) {
    if (!json_is_object(j)) return lg_err_set(err, LG_E_FORMAT, "%s: expected an object", path);
    const char *type = tj_type(j);
    if (!type) return lg_err_set(err, LG_E_FORMAT, "%s.type: missing", path);
    static const char *const type_only[] = {"type", NULL};
    lg_status st;
    if (strcmp(type, "Sequence") == 0) {
        static const char *const keys[] = {"type", "decoders", NULL};
        if ((st = tj_check_keys(j, path, keys, err))) return st;
        const json_t *arr = json_object_get(j, "decoders");
        if (!json_is_array(arr))
            return lg_err_set(err, LG_E_FORMAT, "%s.decoders: expected an array", path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", path, i);
            if ((st = parse_one(json_array_get(arr, i), sub, d, cs, err))) return st;
        }
        return LG_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        static const char *const keys[] = {"type", "add_prefix_space", "trim_offsets", "use_regex",
                                           NULL};
        if ((st = tj_check_keys(j, path, keys, err))) return st;
        if (cs->byte_level || cs->byte_fallback || cs->fuse || cs->strip || d->n_rep)
            return order_error(path, type, err);
        cs->byte_level = d->byte_level = true;
        return LG_OK;
    }
    if (strcmp(type, "Fuse") == 0) {
        if ((st = tj_check_keys(j, path, type_only, err))) return st;
        if (cs->fuse || cs->strip) return order_error(path, type, err);
        cs->fuse = true;
        return LG_OK;
    }
    if (strcmp(type, "Strip") == 0) return parse_strip(j, path, d, cs, err);
    if (cs->byte_level || cs->fuse || cs->strip || cs->byte_fallback)
        return order_error(path, type, err);
    if (strcmp(type, "ByteFallback") == 0) {
        if ((st = tj_check_keys(j, path, type_only, err))) return st;
        cs->byte_fallback = d->byte_fallback = true;
        return LG_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        static const char *const keys[] = {"type", "pattern", "content", NULL};
        if ((st = tj_check_keys(j, path, keys, err))) return st;
        const char *pat, *content;
        size_t plen, clen;
        bool is_re;
        if ((st = tj_pattern(j, "pattern", path, &pat, &plen, &is_re, err))) return st;
        if (is_re)
            return lg_err_set(err, LG_E_UNSUPPORTED,
                              "%s.pattern: Regex patterns are not supported "
                              "in the decoder",
                              path);
        if ((st = tj_string(j, "content", path, true, &content, &clen, err))) return st;
        return add_rep(d, pat, plen, content, clen, err);
    }
    if (strcmp(type, "Metaspace") == 0) {
        if (d->strip_count) return order_error(path, type, err);
        return parse_metaspace(j, path, d, err);
    }
    return lg_err_set(err, LG_E_UNSUPPORTED, "%s.type: decoder \"%s\" is not supported", path,
                      type);
}

lg_status detok_parse(const json_t *j, detok_spec *d, lg_error *err) {
    memset(d, 0, sizeof *d);
    if (!j || json_is_null(j))
        return lg_err_set(err, LG_E_UNSUPPORTED,
                          "decoder: a tokenizer without a decoder is not "
                          "supported");
    chain_state cs = {0};
    lg_status st = parse_one(j, "decoder", d, &cs, err);
    if (st) detok_spec_free(d);
    return st;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void replace_all(lg_buf *out, const char *s, size_t n, const detok_replace *r) {
    size_t run = 0;
    const char *p = s, *end = s + n, *hit;
    while (r->from_len && (size_t)(end - p) >= r->from_len &&
           (hit = memmem(p, (size_t)(end - p), r->from, r->from_len))) {
        lg_buf_append(out, s + run, (size_t)(hit - s) - run);
        lg_buf_append(out, r->to, r->to_len);
        run = (size_t)(hit - s) + r->from_len;
        p = s + run;
    }
    lg_buf_append(out, s + run, n - run);
}

bool detok_token_bytes(const detok_spec *d, const char *s, size_t n, lg_buf *out, int *byte_value) {
    out->len = 0;
    *byte_value = -1;
    if (d->byte_level) {
        /* byte_level.rs: every character maps to its byte, or the token is kept as it is */
        for (size_t i = 0; i < n;) {
            size_t cl;
            int b = utf8_bytelevel_byte(utf8_decode((const uint8_t *)s + i, &cl));
            if (b < 0) {
                out->len = 0;
                return lg_buf_append(out, s, n);
            }
            lg_buf_putc(out, (char)b);
            i += cl;
        }
        return lg_buf_append(out, "", 0);
    }
    lg_buf tmp;
    lg_buf_init(&tmp);
    lg_buf_append(out, s, n);
    for (size_t i = 0; i < d->n_rep; i++) {
        tmp.len = 0;
        replace_all(&tmp, out->data, out->len, &d->rep[i]);
        lg_buf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    lg_buf_free(&tmp);
    const char *t = out->data;
    if (d->byte_fallback && out->len == 6 && memcmp(t, "<0x", 3) == 0 && t[5] == '>' &&
        hexval(t[3]) >= 0 && hexval(t[4]) >= 0) {
        *byte_value = hexval(t[3]) * 16 + hexval(t[4]);
        out->len = 0;
        lg_buf_putc(out, (char)*byte_value);
    }
    return lg_buf_append(out, "", 0);
}

/* ---- one-shot decode ---- */

static bool token_usable(const lg_tokenizer *tok, int32_t id, unsigned flags) {
    if (id >= tok->bpe.n_ids || tok->tb_off[id] == UINT32_MAX) return false;
    return !((flags & LG_DECODE_SKIP_SPECIAL) && tok->special[id]);
}

static void flush_group(lg_buf *out, lg_buf *group) {
    if (group->len == 0) return;
    if (utf8_invalid_at((const uint8_t *)group->data, group->len) == group->len)
        lg_buf_append(out, group->data, group->len);
    else
        for (size_t i = 0; i < group->len; i++) lg_buf_append(out, "\xEF\xBF\xBD", 3);
    group->len = 0;
}

/* Length in bytes of the leading strip characters of s (at most `max` of them, Strip after
 * Fuse); *nchars receives how many. */
static size_t strip_prefix(const detok_spec *d, const char *s, size_t n, size_t max,
                           size_t *nchars) {
    uint8_t enc[4];
    size_t el = lg_utf8_encode(d->strip_char, enc), off = 0, k = 0;
    while (k < max && n - off >= el && memcmp(s + off, enc, el) == 0) {
        off += el;
        k++;
    }
    *nchars = k;
    return off;
}

lg_status lg_tokenizer_decode(lg_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
                              char **text, size_t *len) {
    if (!tok || (!ids && n) || !text) return LG_E_ARG;
    lg_buf raw, group;
    lg_buf_init(&raw);
    lg_buf_init(&group);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0) {
            lg_buf_free(&raw);
            lg_buf_free(&group);
            return tok_fail(tok, LG_E_ARG, "decode: negative id %d at index %zu", id, i);
        }
        if (!token_usable(tok, id, flags)) continue;
        if (tok->byte_val[id] >= 0) {
            lg_buf_putc(&group, (char)tok->byte_val[id]);
            continue;
        }
        flush_group(&raw, &group);
        lg_buf_append(&raw, tok->tb + tok->tb_off[id], tok->tb_len[id]);
    }
    flush_group(&raw, &group);
    lg_buf_free(&group);
    lg_buf out;
    lg_buf_init(&out);
    if (tok->dec.byte_level)
        utf8_append_lossy(&out, (const uint8_t *)raw.data, raw.len, true);
    else
        lg_buf_append(&out, raw.data, raw.len);
    lg_buf_free(&raw);
    size_t k, off = strip_prefix(&tok->dec, out.data, out.len, tok->dec.strip_count, &k);
    if (off) {
        memmove(out.data, out.data + off, out.len - off);
        out.len -= off;
    }
    lg_buf_append(&out, "", 0);
    if (out.failed) {
        lg_buf_free(&out);
        return tok_fail(tok, LG_E_NOMEM, "decode: out of memory");
    }
    size_t l;
    *text = lg_buf_detach(&out, &l);
    if (len) *len = l;
    return LG_OK;
}

/* ---- streaming ---- */

struct lg_detokenizer {
    const lg_tokenizer *tok;
    unsigned flags;
    lg_buf pending; /* bytes of an unfinished character */
    lg_buf out;
    size_t strip_left;
    char errmsg[LG_ERROR_MSG_MAX];
};

lg_status lg_detokenizer_create(const lg_tokenizer *tok, unsigned flags, lg_detokenizer **out,
                                lg_error *err) {
    if (!tok || !out) return lg_err_set(err, LG_E_ARG, "detokenizer: NULL argument");
    lg_detokenizer *d = lg_calloc(1, sizeof *d);
    if (!d) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    d->tok = tok;
    d->flags = flags;
    d->strip_left = tok->dec.strip_count;
    *out = d;
    return LG_OK;
}

void lg_detokenizer_free(lg_detokenizer *d) {
    if (!d) return;
    lg_buf_free(&d->pending);
    lg_buf_free(&d->out);
    lg_free(d);
}

const char *lg_detokenizer_errmsg(const lg_detokenizer *d) {
    return d ? d->errmsg : "";
}

static lg_status detok_result(lg_detokenizer *d, const char **text, size_t *len) {
    lg_buf_append(&d->out, "", 0);
    if (d->out.failed || d->pending.failed) {
        snprintf(d->errmsg, sizeof d->errmsg, "out of memory");
        return LG_E_NOMEM;
    }
    *text = d->out.data;
    if (len) *len = d->out.len;
    return LG_OK;
}

lg_status lg_detokenizer_push(lg_detokenizer *d, int32_t id, const char **text, size_t *len) {
    if (!d || !text) return LG_E_ARG;
    d->out.len = 0;
    if (id < 0) {
        snprintf(d->errmsg, sizeof d->errmsg, "negative id %d", id);
        return LG_E_ARG;
    }
    const lg_tokenizer *tok = d->tok;
    if (token_usable(tok, id, d->flags)) {
        const char *b = (const char *)tok->tb + tok->tb_off[id];
        size_t n = tok->tb_len[id];
        if (d->strip_left) {
            size_t k, off = strip_prefix(&tok->dec, b, n, d->strip_left, &k);
            /* stripping ends at the first character that is not stripped */
            d->strip_left = off < n ? 0 : d->strip_left - k;
            b += off;
            n -= off;
        }
        lg_buf_append(&d->pending, b, n);
        size_t used =
            utf8_append_lossy(&d->out, (const uint8_t *)d->pending.data, d->pending.len, false);
        memmove(d->pending.data, d->pending.data + used, d->pending.len - used);
        d->pending.len -= used;
    }
    return detok_result(d, text, len);
}

lg_status lg_detokenizer_finish(lg_detokenizer *d, const char **text, size_t *len) {
    if (!d || !text) return LG_E_ARG;
    d->out.len = 0;
    utf8_append_lossy(&d->out, (const uint8_t *)d->pending.data, d->pending.len, true);
    d->pending.len = 0;
    d->strip_left = d->tok->dec.strip_count;
    return detok_result(d, text, len);
}
