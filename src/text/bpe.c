/*
 * bpe.c — the BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocabulary and merge
 * tables in open-addressing hash tables, the merge loop (a binary heap of candidate pairs ordered
 * by merge rank, then position, with stale entries skipped — the algorithm of the `tokenizers`
 * library's models/bpe/word.rs merge_all), byte-level input (GPT-2 / Qwen2) or per-character
 * input with <0xNN> byte fallback and unk fusing (SentencePiece-style, model.rs merge_word), and
 * a cache of recently tokenized words.
 */
#include "text.h"

#include <jansson.h>
#include <string.h>

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0x100000001B3ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w) + 0x9E3779B97F4A7C15ULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix64(h ^ w ^ ((uint64_t)n << 56));
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* ---- vocabulary and merges ---- */

static bool merge_find(const bpe_model *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = (size_t)mix64(key) & m->mhash_mask;
    for (;;) {
        uint64_t k = m->mkeys[i];
        if (k == key) {
            *rank = (uint32_t)(m->mvals[i] >> 32);
            *id = (int32_t)(uint32_t)m->mvals[i];
            return true;
        }
        if (!k) return false;
        i = (i + 1) & m->mhash_mask;
    }
}

/* Appends a NUL-terminated copy of s to the string arena; offsets stay valid across growth. */
static bool arena_add(bpe_model *m, const char *s, size_t n, uint32_t *off) {
    if (m->strs_len + n + 1 > m->strs_cap) {
        size_t nc = m->strs_cap ? m->strs_cap : (size_t)1 << 16;
        while (nc < m->strs_len + n + 1) nc *= 2;
        if (nc > UINT32_MAX) return false;
        char *ns = lg_realloc(m->strs, nc);
        if (!ns) return false;
        m->strs = ns;
        m->strs_cap = nc;
    }
    memcpy(m->strs + m->strs_len, s, n);
    m->strs[m->strs_len + n] = '\0';
    *off = (uint32_t)m->strs_len;
    m->strs_len += n + 1;
    return true;
}

static bool ids_reserve(bpe_model *m, size_t n) {
    if (n <= m->ids_cap) return true;
    size_t nc = m->ids_cap ? m->ids_cap : 1024;
    while (nc < n) nc *= 2;
    uint32_t *a = lg_realloc(m->str_off, nc * sizeof *a);
    if (!a) return false;
    m->str_off = a;
    uint32_t *b = lg_realloc(m->str_len, nc * sizeof *b);
    if (!b) return false;
    m->str_len = b;
    for (size_t i = m->ids_cap; i < nc; i++) {
        m->str_off[i] = UINT32_MAX;
        m->str_len[i] = 0;
    }
    m->ids_cap = nc;
    return true;
}

lg_status bpe_set_token(bpe_model *m, int32_t id, const char *s, size_t n, lg_error *err) {
    if (id < 0 || id == INT32_MAX)
        return lg_err_set(err, LG_E_FORMAT, "token id %d out of range", id);
    uint32_t off;
    if (!ids_reserve(m, (size_t)id + 1) || !arena_add(m, s, n, &off))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    m->str_off[id] = off;
    m->str_len[id] = (uint32_t)n;
    if (id >= m->n_ids) m->n_ids = id + 1;
    return LG_OK;
}

void bpe_free(bpe_model *m) {
    lg_free(m->strs);
    lg_free(m->str_off);
    lg_free(m->str_len);
    lg_free(m->voff);
    lg_free(m->vlen);
    lg_free(m->vhash);
    lg_free(m->mkeys);
    lg_free(m->mvals);
    lg_free(m->cpkeys);
    memset(m, 0, sizeof *m);
}

int32_t bpe_vocab_find(const bpe_model *m, const char *s, size_t n) {
    if (!m->vhash) return -1;
    size_t i = (size_t)hash_bytes(s, n) & m->vhash_mask;
    for (;;) {
        uint32_t e = m->vhash[i];
        if (!e) return -1;
        int32_t id = (int32_t)(e - 1);
        if (m->vlen[id] == n && memcmp(m->strs + m->voff[id], s, n) == 0) return id;
        i = (i + 1) & m->vhash_mask;
    }
}

/* ---- parsing ---- */

static lg_status parse_vocab(const json_t *vocab, bpe_model *m, lg_error *err) {
    if (!json_is_object(vocab))
        return lg_err_set(err, LG_E_FORMAT, "model.vocab: expected an object");
    const char *key;
    json_t *v;
    json_int_t max_id = -1;
    json_object_foreach((json_t *)vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= INT32_MAX - 1)
            return lg_err_set(err, LG_E_FORMAT, "model.vocab[\"%s\"]: expected an id >= 0", key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t n = json_object_size(vocab), nid = (size_t)(max_id + 1);
    if (!ids_reserve(m, nid) || !(m->voff = lg_malloc((nid ? nid : 1) * sizeof *m->voff)) ||
        !(m->vlen = lg_calloc(nid ? nid : 1, sizeof *m->vlen)))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    size_t hsize = pow2_at_least(2 * n + 1);
    if (!(m->vhash = lg_calloc(hsize, sizeof *m->vhash)))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    m->vhash_mask = hsize - 1;
    m->n_vocab_ids = (int32_t)nid;
    m->n_ids = (int32_t)nid;
    json_object_foreach((json_t *)vocab, key, v) {
        int32_t id = (int32_t)json_integer_value(v);
        /* jansson object keys are NUL-terminated; a key holding \u0000 would be cut short. */
        size_t len = strlen(key);
        if (m->str_off[id] != UINT32_MAX)
            return lg_err_set(err, LG_E_FORMAT,
                              "model.vocab: id %d is given to two tokens (\"%s\")", id, key);
        uint32_t off;
        if (!arena_add(m, key, len, &off)) return lg_err_set(err, LG_E_NOMEM, "out of memory");
        m->str_off[id] = m->voff[id] = off;
        m->str_len[id] = m->vlen[id] = (uint32_t)len;
        size_t i = (size_t)hash_bytes(key, len) & m->vhash_mask;
        while (m->vhash[i]) i = (i + 1) & m->vhash_mask;
        m->vhash[i] = (uint32_t)id + 1;
    }
    return LG_OK;
}

static lg_status merge_tokens(const json_t *e, size_t i, const char **a, size_t *alen,
                              const char **b, size_t *blen, lg_error *err) {
    if (json_is_string(e)) {
        /* "a b": exactly two parts separated by one space (model.rs convert_merges_to_hashmap) */
        const char *s = json_string_value(e);
        size_t n = json_string_length(e);
        const char *sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp - s) - 1))
            return lg_err_set(err, LG_E_FORMAT,
                              "model.merges[%zu]: expected two tokens separated by one space", i);
        *a = s;
        *alen = (size_t)(sp - s);
        *b = sp + 1;
        *blen = n - *alen - 1;
        return LG_OK;
    }
    if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
        json_is_string(json_array_get(e, 1))) {
        *a = json_string_value(json_array_get(e, 0));
        *alen = json_string_length(json_array_get(e, 0));
        *b = json_string_value(json_array_get(e, 1));
        *blen = json_string_length(json_array_get(e, 1));
        return LG_OK;
    }
    return lg_err_set(err, LG_E_FORMAT, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
}

static lg_status parse_merges(const json_t *merges, bpe_model *m, lg_error *err) {
    if (!json_is_array(merges))
        return lg_err_set(err, LG_E_FORMAT, "model.merges: expected an array");
    size_t n = json_array_size(merges);
    size_t hsize = pow2_at_least(2 * n + 1);
    if (!(m->mkeys = lg_calloc(hsize, sizeof *m->mkeys)) ||
        !(m->mvals = lg_malloc(hsize * sizeof *m->mvals)))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    m->mhash_mask = hsize - 1;
    m->n_merges = n;
    lg_buf cat;
    lg_buf_init(&cat);
    lg_status st = LG_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        if ((st = merge_tokens(json_array_get(merges, i), i, &a, &alen, &b, &blen, err))) break;
        int32_t ia = bpe_vocab_find(m, a, alen), ib = bpe_vocab_find(m, b, blen);
        cat.len = 0;
        lg_buf_append(&cat, a, alen);
        lg_buf_append(&cat, b, blen);
        if (cat.failed) {
            st = lg_err_set(err, LG_E_NOMEM, "out of memory");
            break;
        }
        int32_t ic = bpe_vocab_find(m, cat.data, cat.len);
        const char *missing = ia < 0 ? a : ib < 0 ? b : ic < 0 ? cat.data : NULL;
        if (missing) {
            size_t ml = ia < 0 ? alen : ib < 0 ? blen : cat.len;
            st = lg_err_set(err, LG_E_FORMAT,
                            "model.merges[%zu]: token \"%.*s\" is not in model.vocab", i,
                            (int)(ml > 200 ? 200 : ml), missing);
            break;
        }
        uint64_t key = (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1;
        size_t h = (size_t)mix64(key) & m->mhash_mask;
        while (m->mkeys[h] && m->mkeys[h] != key) h = (h + 1) & m->mhash_mask;
        /* a repeated pair keeps its last rank, as HF's HashMap collect does */
        m->mkeys[h] = key;
        m->mvals[h] = ((uint64_t)i << 32) | (uint32_t)ic;
    }
    lg_buf_free(&cat);
    return st;
}

static lg_status check_empty_string(const json_t *j, const char *key, lg_error *err) {
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) return LG_OK;
    return lg_err_set(err, LG_E_UNSUPPORTED, "model.%s: only null or \"\" is supported", key);
}

static lg_status byte_tables(bpe_model *m, lg_error *err) {
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t n;
        if (m->byte_level) {
            n = lg_utf8_encode(utf8_bytelevel_char((uint8_t)b), (uint8_t *)s);
            m->byte_ids[b] = bpe_vocab_find(m, s, n);
            if (m->byte_ids[b] < 0)
                return lg_err_set(err, LG_E_FORMAT,
                                  "model.vocab: no token for byte 0x%02X (\"%.*s\"), which the "
                                  "ByteLevel pre-tokenizer needs",
                                  b, (int)n, s);
        } else {
            n = (size_t)snprintf(s, sizeof s, "<0x%02X>", b);
            m->byte_ids[b] = bpe_vocab_find(m, s, n);
        }
    }
    return LG_OK;
}

#define META "\xE2\x96\x81" /* U+2581, SentencePiece's space */

static int32_t cp_find(const bpe_model *m, uint32_t cp) {
    if (cp < 128) return m->ascii_ids[cp];
    size_t i = (size_t)mix64(cp) & m->cp_mask;
    for (;;) {
        uint64_t e = m->cpkeys[i];
        if (!e) return -1;
        if ((uint32_t)(e >> 32) == cp + 1) return (int32_t)(uint32_t)e;
        i = (i + 1) & m->cp_mask;
    }
}

/* Tables of the one-character tokens, and the word-split check (see bpe_model.word_split). */
static lg_status char_tables(bpe_model *m, const json_t *merges, lg_error *err) {
    for (int c = 0; c < 128; c++) m->ascii_ids[c] = -1;
    size_t count = 0;
    for (int32_t id = 0; id < m->n_vocab_ids; id++) count += m->vlen[id] > 0 && m->vlen[id] <= 4;
    size_t hsize = pow2_at_least(2 * count + 1);
    if (!(m->cpkeys = lg_calloc(hsize, sizeof *m->cpkeys)))
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    m->cp_mask = hsize - 1;
    for (int32_t id = 0; id < m->n_vocab_ids; id++) {
        const uint8_t *s = (const uint8_t *)m->strs + m->voff[id];
        size_t n = m->vlen[id], cl;
        if (n == 0 || n > 4 || utf8_seq_len(s[0]) != n || utf8_invalid_at(s, n) != n) continue;
        uint32_t cp = utf8_decode(s, &cl);
        if (cp < 128) {
            m->ascii_ids[cp] = id;
            continue;
        }
        size_t i = (size_t)mix64(cp) & m->cp_mask;
        while (m->cpkeys[i]) i = (i + 1) & m->cp_mask;
        m->cpkeys[i] = ((uint64_t)(cp + 1) << 32) | (uint32_t)id;
    }
    m->word_split = bpe_vocab_find(m, META, 3) >= 0;
    for (size_t i = 0; m->word_split && i < json_array_size(merges); i++) {
        const char *a, *b;
        size_t alen, blen;
        merge_tokens(json_array_get(merges, i), i, &a, &alen, &b, &blen, NULL);
        if (blen >= 3 && memcmp(b, META, 3) == 0 &&
            !(alen >= 3 && memcmp(a + alen - 3, META, 3) == 0))
            m->word_split = false;
    }
    return LG_OK;
}

lg_status bpe_parse(const json_t *j, bool byte_level, bpe_model *m, lg_error *err) {
    memset(m, 0, sizeof *m);
    if (!json_is_object(j)) return lg_err_set(err, LG_E_FORMAT, "model: missing or not an object");
    static const char *const keys[] = {"type",
                                       "dropout",
                                       "unk_token",
                                       "continuing_subword_prefix",
                                       "end_of_word_suffix",
                                       "fuse_unk",
                                       "byte_fallback",
                                       "ignore_merges",
                                       "vocab",
                                       "merges",
                                       NULL};
    const char *type = tj_type(j);
    if (!type && !json_object_get(j, "merges"))
        return lg_err_set(err, LG_E_FORMAT, "model.type: missing");
    if (type && strcmp(type, "BPE") != 0)
        return lg_err_set(err, LG_E_UNSUPPORTED, "model.type: \"%s\" is not supported (only BPE)",
                          type);
    lg_status st = tj_check_keys(j, "model", keys, err);
    if (st) return st;
    const json_t *dropout = json_object_get(j, "dropout");
    if (dropout && !json_is_null(dropout) &&
        !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return lg_err_set(err, LG_E_UNSUPPORTED, "model.dropout: BPE dropout is not supported");
    if ((st = check_empty_string(j, "continuing_subword_prefix", err)) ||
        (st = check_empty_string(j, "end_of_word_suffix", err)))
        return st;
    if ((st = tj_bool(j, "fuse_unk", "model", false, &m->fuse_unk, err)) ||
        (st = tj_bool(j, "byte_fallback", "model", false, &m->byte_fallback, err)) ||
        (st = tj_bool(j, "ignore_merges", "model", false, &m->ignore_merges, err)))
        return st;
    const char *unk;
    size_t unk_len;
    if ((st = tj_string(j, "unk_token", "model", false, &unk, &unk_len, err))) return st;
    m->byte_level = byte_level;
    if ((st = parse_vocab(json_object_get(j, "vocab"), m, err))) return st;
    if ((st = parse_merges(json_object_get(j, "merges"), m, err))) return st;
    m->unk_id = -1;
    if (unk) {
        m->unk_id = bpe_vocab_find(m, unk, unk_len);
        if (m->unk_id < 0) m->unk_id = -2; /* HF fails only when an unknown character occurs */
    }
    if ((st = byte_tables(m, err))) return st;
    return byte_level ? LG_OK : char_tables(m, json_object_get(j, "merges"), err);
}

/* ---- the merge loop ---- */

typedef struct heap_ent {
    uint32_t rank;
    uint32_t pos;
    int32_t id;
} heap_ent;

static inline bool heap_less(const heap_ent *a, const heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static bool workspace(bpe_cache *c, size_t n) {
    if (n <= c->cap) return true;
    size_t nc = c->cap ? c->cap : 64;
    while (nc < n) nc *= 2;
    int32_t *a = lg_realloc(c->sym, nc * sizeof *a);
    if (!a) return false;
    c->sym = a;
    if (!(a = lg_realloc(c->prev, nc * sizeof *a))) return false;
    c->prev = a;
    if (!(a = lg_realloc(c->next, nc * sizeof *a))) return false;
    c->next = a;
    heap_ent *h = lg_realloc(c->heap, 3 * nc * sizeof *h);
    if (!h) return false;
    c->heap = h;
    c->cap = nc;
    return true;
}

/* Merges the symbols c->sym[0..n) in place (linked through prev/next); returns the head. */
static void merge_all(const bpe_model *m, bpe_cache *c, size_t n) {
    int32_t *sym = c->sym, *prev = c->prev, *next = c->next;
    heap_ent *h = c->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    uint32_t rank;
    int32_t id;
    for (size_t i = 0; i + 1 < n; i++)
        if (merge_find(m, sym[i], sym[i + 1], &rank, &id))
            heap_push(h, &hn, (heap_ent){rank, (uint32_t)i, id});
    while (hn) {
        heap_ent t = heap_pop(h, &hn);
        int32_t p = (int32_t)t.pos;
        if (sym[p] < 0 || next[p] < 0) continue; /* removed, or now the last symbol */
        int32_t q = next[p];
        /* stale entry: the pair at p changed since it was queued */
        if (!merge_find(m, sym[p], sym[q], &rank, &id) || id != t.id) continue;
        sym[p] = t.id;
        sym[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0 && merge_find(m, sym[prev[p]], sym[p], &rank, &id))
            heap_push(h, &hn, (heap_ent){rank, (uint32_t)prev[p], id});
        if (next[p] >= 0 && merge_find(m, sym[p], sym[next[p]], &rank, &id))
            heap_push(h, &hn, (heap_ent){rank, (uint32_t)p, id});
    }
}

/* ---- initial symbols ---- */

static void unk_add(const bpe_model *m, bpe_cache *c, size_t *n) {
    c->sym[(*n)++] = m->unk_id;
}

/* Per-character symbols with byte fallback and unk (model.rs merge_word). Returns the count. */
static lg_status char_symbols(const bpe_model *m, bpe_cache *c, const char *s, size_t len,
                              size_t *count, lg_error *err) {
    size_t n = 0;
    bool unk_pending = false;
    for (size_t i = 0; i < len;) {
        size_t cl;
        int32_t id = cp_find(m, utf8_decode((const uint8_t *)s + i, &cl));
        if (id >= 0) {
            if (unk_pending) unk_add(m, c, &n);
            unk_pending = false;
            c->sym[n++] = id;
            i += cl;
            continue;
        }
        if (m->byte_fallback) {
            bool all = true;
            for (size_t k = 0; k < cl; k++) all = all && m->byte_ids[(uint8_t)s[i + k]] >= 0;
            if (all) {
                /* HF adds the bytes before a pending unk (it does not flush it here) */
                for (size_t k = 0; k < cl; k++) c->sym[n++] = m->byte_ids[(uint8_t)s[i + k]];
                i += cl;
                continue;
            }
        }
        if (m->unk_id == -2)
            return lg_err_set(err, LG_E_FORMAT, "model.unk_token is not in model.vocab");
        if (m->unk_id >= 0) {
            if (unk_pending && !m->fuse_unk) unk_add(m, c, &n);
            unk_pending = true;
        }
        /* without an unk_token, HF drops the character */
        i += cl;
    }
    if (unk_pending) unk_add(m, c, &n);
    *count = n;
    return LG_OK;
}

/* ---- the word cache ---- */

#define CACHE_SLOTS ((size_t)1 << 16)
#define CACHE_MAX_KEY 256 /* as HF's MAX_LENGTH */

void bpe_cache_free(bpe_cache *c) {
    lg_free(c->slots);
    lg_buf_free(&c->keys);
    lg_free(c->ids);
    lg_free(c->ent);
    lg_free(c->sym);
    lg_free(c->prev);
    lg_free(c->next);
    lg_free(c->heap);
    memset(c, 0, sizeof *c);
}

static void cache_clear(bpe_cache *c) {
    memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    c->keys.len = 0;
    c->ids_len = 0;
    c->n_ent = 0;
}

static bool cache_get(const bpe_cache *c, uint64_t h, const char *s, size_t n, const int32_t **ids,
                      size_t *nids) {
    if (!c->slots) return false;
    size_t i = (size_t)h & c->mask;
    for (;;) {
        uint64_t e = c->slots[i];
        if (!e) return false;
        if ((uint32_t)(e >> 32) == (uint32_t)h) {
            const uint32_t *ent = c->ent + 4 * ((uint32_t)e - 1);
            if (ent[1] == n && memcmp(c->keys.data + ent[0], s, n) == 0) {
                *ids = c->ids + ent[2];
                *nids = ent[3];
                return true;
            }
        }
        i = (i + 1) & c->mask;
    }
}

static void cache_put(bpe_cache *c, uint64_t h, const char *s, size_t n, const int32_t *ids,
                      size_t nids) {
    if (!c->slots) {
        if (!(c->slots = lg_calloc(CACHE_SLOTS, sizeof *c->slots))) return;
        c->mask = CACHE_SLOTS - 1;
    }
    if (c->n_ent >= CACHE_SLOTS / 2 || c->keys.len > ((size_t)8 << 20)) cache_clear(c);
    if (c->n_ent == c->ent_cap) {
        size_t nc = c->ent_cap ? 2 * c->ent_cap : 1024;
        uint32_t *ne = lg_realloc(c->ent, 4 * nc * sizeof *ne);
        if (!ne) return;
        c->ent = ne;
        c->ent_cap = nc;
    }
    if (c->ids_len + nids > c->ids_cap) {
        size_t nc = c->ids_cap ? c->ids_cap : 4096;
        while (nc < c->ids_len + nids) nc *= 2;
        int32_t *ni = lg_realloc(c->ids, nc * sizeof *ni);
        if (!ni) return;
        c->ids = ni;
        c->ids_cap = nc;
    }
    size_t koff = c->keys.len;
    if (!lg_buf_append(&c->keys, s, n)) {
        c->keys.failed = false;
        cache_clear(c);
        return;
    }
    if (nids) memcpy(c->ids + c->ids_len, ids, nids * sizeof *ids);
    uint32_t *ent = c->ent + 4 * c->n_ent;
    ent[0] = (uint32_t)koff;
    ent[1] = (uint32_t)n;
    ent[2] = (uint32_t)c->ids_len;
    ent[3] = (uint32_t)nids;
    c->ids_len += nids;
    size_t i = (size_t)h & c->mask;
    while (c->slots[i]) i = (i + 1) & c->mask;
    c->slots[i] = ((uint64_t)(uint32_t)h << 32) | (uint32_t)(++c->n_ent);
}

/* ---- one piece ---- */

static bool out_append(int32_t **ids, size_t *nids, size_t *cap, const int32_t *v, size_t n) {
    if (n == 0) return true;
    if (*nids + n > *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc < *nids + n) nc *= 2;
        int32_t *ni = lg_realloc(*ids, nc * sizeof *ni);
        if (!ni) return false;
        *ids = ni;
        *cap = nc;
    }
    memcpy(*ids + *nids, v, n * sizeof *v);
    *nids += n;
    return true;
}

static int32_t whole_word_id(const bpe_model *m, const char *s, size_t n) {
    if (!m->byte_level) return bpe_vocab_find(m, s, n);
    char buf[4 * CACHE_MAX_KEY];
    if (n > CACHE_MAX_KEY) return -1; /* no vocabulary entry is that long */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += lg_utf8_encode(utf8_bytelevel_char((uint8_t)s[i]), (uint8_t *)buf + k);
    return bpe_vocab_find(m, buf, k);
}

/* BPE of one word (no further splitting), through the cache. */
static lg_status encode_word(const bpe_model *m, bpe_cache *c, const char *s, size_t n,
                             int32_t **ids, size_t *nids, size_t *cap, lg_error *err) {
    uint64_t h = 0;
    if (n <= CACHE_MAX_KEY) {
        h = hash_bytes(s, n);
        const int32_t *hit;
        size_t nhit;
        if (cache_get(c, h, s, n, &hit, &nhit))
            return out_append(ids, nids, cap, hit, nhit)
                       ? LG_OK
                       : lg_err_set(err, LG_E_NOMEM, "out of memory");
    }
    /* at most one symbol per input byte (byte fallback gives one per byte) */
    if (!workspace(c, n + 1)) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    size_t count = 0;
    if (m->byte_level) {
        for (size_t i = 0; i < n; i++) c->sym[i] = m->byte_ids[(uint8_t)s[i]];
        count = n;
    } else {
        lg_status st = char_symbols(m, c, s, n, &count, err);
        if (st) return st;
    }
    size_t k = count;
    if (count > 1) {
        merge_all(m, c, count);
        /* collect the surviving symbols in order, compacting into sym[] (k <= i throughout) */
        k = 0;
        for (int32_t i = 0; i >= 0; i = c->next[i]) c->sym[k++] = c->sym[i];
    }
    if (!out_append(ids, nids, cap, c->sym, k)) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    if (n <= CACHE_MAX_KEY) cache_put(c, h, s, n, c->sym, k);
    return LG_OK;
}

lg_status bpe_encode_piece(const bpe_model *m, bpe_cache *c, const char *s, size_t n, int32_t **ids,
                           size_t *nids, size_t *cap, lg_error *err) {
    if (n == 0) return LG_OK;
    if (m->ignore_merges) {
        int32_t id = whole_word_id(m, s, n);
        if (id >= 0)
            return out_append(ids, nids, cap, &id, 1)
                       ? LG_OK
                       : lg_err_set(err, LG_E_NOMEM, "out of memory");
    }
    if (!m->word_split) return encode_word(m, c, s, n, ids, nids, cap, err);
    /* cut before every "▁" that follows a character other than "▁" */
    size_t start = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if (memcmp(s + i, META, 3) != 0) continue;
        /* (a byte 0xE2 three back starts a character: then it is the "▁" before this one) */
        if (i >= 3 && memcmp(s + i - 3, META, 3) == 0) {
            i += 2;
            continue;
        }
        lg_status st = encode_word(m, c, s + start, i - start, ids, nids, cap, err);
        if (st) return st;
        start = i;
        i += 2;
    }
    return encode_word(m, c, s + start, n - start, ids, nids, cap, err);
}
