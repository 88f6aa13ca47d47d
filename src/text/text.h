/*
 * text.h — internals of the tokenizer (src/text/): the parsed tokenizer.json pipeline
 * (added tokens -> normalizer -> pre-tokenizer -> BPE model -> post-processor, and the decoder)
 * shared by tokenizer.c (loading, public API), normalize.c, pretok.c, bpe.c, decode.c, utf8.c.
 * Semantics follow the Hugging Face `tokenizers` library (Rust), which produced the reference ids.
 */
#ifndef LG_TEXT_H
#define LG_TEXT_H

#include "core/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- UTF-8 (utf8.c) ---- */

/* Returns the offset of the first invalid byte, or n when all of s is valid UTF-8. */
size_t utf8_invalid_at(const uint8_t *s, size_t n);
/* Length of the UTF-8 sequence starting with byte c (1 for invalid lead bytes). */
static inline size_t utf8_seq_len(uint8_t c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Decodes one code point from valid UTF-8; stores its length in *len. */
uint32_t utf8_decode(const uint8_t *s, size_t *len);
/* Unicode White_Space (Rust char::is_whitespace). */
bool utf8_is_whitespace(uint32_t cp);
/* Appends `n` bytes to b replacing every maximal invalid subsequence by U+FFFD (Rust
 * String::from_utf8_lossy). With `final` false, an incomplete sequence at the end is not
 * appended; the number of bytes consumed is returned. */
size_t utf8_append_lossy(lg_buf *b, const uint8_t *s, size_t n, bool final);

/* GPT-2 byte-level alphabet: the character standing for byte b, and the byte of a character
 * (-1 when cp is not one of the 256). */
uint32_t utf8_bytelevel_char(uint8_t b);
int utf8_bytelevel_byte(uint32_t cp);

/* ---- tokenizer.json access (tjson.c): every error names the JSON path of the field ---- */

/* Fails with LG_E_UNSUPPORTED naming the first key of `obj` not in the NULL-terminated `allowed`
 * list, so that options this implementation would ignore are never ignored silently. */
lg_status tj_check_keys(const json_t *obj, const char *path, const char *const *allowed,
                        lg_error *err);
/* The "type" string of an object, or NULL. */
const char *tj_type(const json_t *obj);
/* Reads a string member. Missing or null: *s = NULL (LG_E_FORMAT when `required`). */
lg_status tj_string(const json_t *obj, const char *key, const char *path, bool required,
                    const char **s, size_t *len, lg_error *err);
/* Reads a boolean member; missing or null gives `dflt`. */
lg_status tj_bool(const json_t *obj, const char *key, const char *path, bool dflt, bool *out,
                  lg_error *err);
/* Reads a pattern object {"String": s} or {"Regex": s}. */
lg_status tj_pattern(const json_t *obj, const char *key, const char *path, const char **s,
                     size_t *len, bool *is_regex, lg_error *err);

/* ---- normalizers (normalize.c) ---- */

typedef enum norm_kind {
    NORM_NFC,
    NORM_NFD,
    NORM_NFKC,
    NORM_NFKD,
    NORM_PREPEND,
    NORM_REPLACE
} norm_kind;

typedef struct norm_step {
    norm_kind kind;
    char *str; /* PREPEND: the prefix; REPLACE: the content that replaces each match */
    size_t str_len;
    char *pattern; /* REPLACE with a String pattern (literal); NULL for a Regex pattern */
    size_t pattern_len;
    pcre2_code *re; /* REPLACE with a Regex pattern */
} norm_step;

/* Parses tokenizer.json "normalizer" (null, a normalizer or a Sequence). */
lg_status norm_parse(const json_t *j, norm_step **steps, size_t *n, lg_error *err);
void norm_free(norm_step *steps, size_t n);
/* Applies the steps to s[0..n) and writes the result to out (cleared first). */
lg_status norm_apply(const norm_step *steps, size_t nsteps, const char *s, size_t n, lg_buf *out,
                     lg_error *err);

/* ---- pre-tokenizers (pretok.c) ---- */

typedef enum pre_kind { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE } pre_kind;

typedef enum split_behavior {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_PREV,
    SPLIT_MERGED_NEXT,
    SPLIT_CONTIGUOUS
} split_behavior;

typedef enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } prepend_scheme;

typedef struct pre_step {
    pre_kind kind;
    /* SPLIT (and BYTELEVEL with use_regex: the GPT-2 pattern) */
    pcre2_code *re;
    char *literal; /* SPLIT with a String pattern */
    size_t literal_len;
    split_behavior behavior;
    bool invert;
    /* BYTELEVEL */
    bool add_prefix_space;
    /* METASPACE */
    char replacement[8]; /* UTF-8 of the replacement character ("▁") */
    size_t replacement_len;
    prepend_scheme scheme;
    bool split;
} pre_step;

/* Parses "pre_tokenizer". Sets *byte_level when a ByteLevel pre-tokenizer (which must come last)
 * is present: the model then works on bytes. */
lg_status pretok_parse(const json_t *j, pre_step **steps, size_t *n, bool *byte_level,
                       lg_error *err);
void pretok_free(pre_step *steps, size_t n);

/* Called for every final piece (bytes of the normalized text). Returns false to stop (error). */
typedef bool (*pretok_emit_fn)(void *ctx, const char *s, size_t n);

/* Scratch space of the pre-tokenizer, one level per step (reused across calls). */
typedef struct pretok_scratch {
    lg_buf bufs[8];
    size_t *marks[8]; /* triples (start, end, is_match) */
    size_t mark_cap[8];
    pcre2_match_data *md;
} pretok_scratch;

void pretok_scratch_free(pretok_scratch *ps);
/* Runs the steps on s[0..n) (`at_start`: the segment begins the original text) and emits the
 * final pieces in order. */
lg_status pretok_run(const pre_step *steps, size_t nsteps, pretok_scratch *ps,
                     pcre2_match_context *mctx, const char *s, size_t n, bool at_start,
                     pretok_emit_fn emit, void *ctx, lg_error *err);
/* Finds successive regex matches (start, end) from *pos; used by pretok and normalize. Returns
 * false when there is no further match. Empty matches advance by one character. */
bool pretok_next_match(const pcre2_code *re, pcre2_match_data *md, pcre2_match_context *mctx,
                       const char *s, size_t n, size_t *pos, size_t *ms, size_t *me);
/* Compiles a pattern for UTF-8 + Unicode properties with JIT (falling back to the interpreter);
 * `field` names the JSON field in error messages. */
lg_status pretok_compile(const char *pattern, size_t len, const char *field, pcre2_code **out,
                         lg_error *err);

/* ---- BPE model (bpe.c) ---- */

typedef struct bpe_model {
    int32_t n_ids; /* 1 + the largest id with a token (vocab or added) */
    char *strs;    /* all token strings, each NUL-terminated */
    size_t strs_len, strs_cap;
    uint32_t *str_off; /* per id: the token's string (added tokens override the vocab's, as HF's
                          id_to_token does); UINT32_MAX for an id without a token */
    uint32_t *str_len;
    uint32_t *voff, *vlen; /* per model-vocab id: its vocab string (what vhash compares) */
    int32_t n_vocab_ids;   /* 1 + the largest model-vocab id */
    size_t ids_cap;        /* allocated length of the per-id arrays */
    uint32_t *vhash;       /* model vocab: open addressing, id+1 (0 = empty) */
    size_t vhash_mask;
    uint64_t *mkeys; /* merges: key (a<<32|b)+1 (0 = empty) */
    uint64_t *mvals; /* rank<<32 | new id */
    size_t mhash_mask;
    size_t n_merges;
    int32_t byte_ids[256]; /* byte-level: id of each byte's character; else <0xNN> ids or -1 */
    bool byte_level;
    bool byte_fallback;
    bool fuse_unk;
    bool ignore_merges;
    int32_t unk_id; /* -1: no unk_token; -2: unk_token not in the vocabulary */
    /* per-character input: ids of the one-character tokens (ASCII directly, others hashed) */
    int32_t ascii_ids[128];
    uint64_t *cpkeys; /* (code point + 1) << 32 | id; 0 = empty */
    size_t cp_mask;
    /* SentencePiece-style words may be cut before each "▁" that follows another character:
     * set at load only when no merge joins a token to a following "▁..." token, which makes
     * the cut exact (and lets long segments use the word cache). */
    bool word_split;
} bpe_model;

/* Parses "model" (type BPE). `byte_level` tells how the pre-tokenizer hands text over. The
 * added tokens are registered afterwards with bpe_set_token. */
lg_status bpe_parse(const json_t *j, bool byte_level, bpe_model *m, lg_error *err);
void bpe_free(bpe_model *m);
/* Looks a string up in the model vocabulary; -1 when absent. */
int32_t bpe_vocab_find(const bpe_model *m, const char *s, size_t n);
/* Assigns (or overrides, as HF's added vocabulary does for id -> token) the string of an id. */
lg_status bpe_set_token(bpe_model *m, int32_t id, const char *s, size_t n, lg_error *err);
static inline const char *bpe_token_str(const bpe_model *m, int32_t id, size_t *len) {
    if (id < 0 || id >= m->n_ids || m->str_off[id] == UINT32_MAX) return NULL;
    *len = m->str_len[id];
    return m->strs + m->str_off[id];
}

/* Word cache and merge workspace (per tokenizer). */
typedef struct bpe_cache {
    uint64_t *slots; /* hash<<32 | entry index+1 */
    size_t mask;
    size_t used;
    lg_buf keys;  /* key bytes */
    int32_t *ids; /* cached ids */
    size_t ids_len, ids_cap;
    uint32_t *ent; /* per entry: key_off, key_len, ids_off, ids_n */
    size_t n_ent, ent_cap;
    /* merge workspace */
    int32_t *sym;
    int32_t *prev, *next;
    void *heap;
    size_t cap, heap_cap;
} bpe_cache;

void bpe_cache_free(bpe_cache *c);
/* Tokenizes one pre-tokenized piece and appends its ids to *ids (growable int32 vector). */
lg_status bpe_encode_piece(const bpe_model *m, bpe_cache *c, const char *s, size_t n, int32_t **ids,
                           size_t *nids, size_t *cap, lg_error *err);

/* ---- decoder (decode.c) ---- */

typedef struct detok_replace {
    char *from, *to;
    size_t from_len, to_len;
} detok_replace;

typedef struct detok_spec {
    bool byte_level;    /* ByteLevel: token chars -> bytes, lossy UTF-8 over the whole text */
    bool byte_fallback; /* ByteFallback: <0xNN> tokens -> bytes (groups; invalid -> U+FFFD each) */
    detok_replace *rep; /* per-token replacements in order (Replace, Metaspace) */
    size_t n_rep;
    uint32_t strip_char; /* leading characters stripped from the whole text (Strip after Fuse, */
    size_t strip_count;  /* or Metaspace's prefix space) */
} detok_spec;

lg_status detok_parse(const json_t *j, detok_spec *d, lg_error *err);
void detok_spec_free(detok_spec *d);
/* Computes the per-token bytes of one token string (no context), into out (cleared first). Sets
 * *byte_value to the byte of a <0xNN> byte-fallback piece, else -1. */
bool detok_token_bytes(const detok_spec *d, const char *s, size_t n, lg_buf *out, int *byte_value);

/* ---- the tokenizer (tokenizer.c) ---- */

typedef struct added_token {
    int32_t id;
    char *content; /* as in the file */
    size_t len;
    char *match; /* what is searched for: the content, normalized when "normalized" is true */
    size_t match_len;
    bool special, lstrip, rstrip, normalized;
} added_token;

struct lg_tokenizer {
    char errmsg[LG_ERROR_MSG_MAX];
    norm_step *norm;
    size_t n_norm;
    pre_step *pre;
    size_t n_pre;
    bpe_model bpe;
    detok_spec dec;
    added_token *added;
    size_t n_added;
    /* per first byte: indices into `added`, longest match text first, -1 terminated lists */
    int32_t *by_first;
    uint32_t first_off[257];
    int32_t *prefix, *suffix; /* post-processor ids around a single sequence */
    size_t n_prefix, n_suffix;
    /* per id: decoded bytes (lg_tokenizer_token_bytes), byte-fallback value, special flag */
    uint8_t *tb;
    uint32_t *tb_off, *tb_len;
    int16_t *byte_val;
    uint8_t *special;
    /* scratch reused by encode (hence one thread at a time) */
    bpe_cache cache;
    pretok_scratch ps;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    lg_buf nbuf;
};

/* Records a message in the handle (the printf-style message) and returns st. */
lg_status tok_fail(lg_tokenizer *tok, lg_status st, const char *fmt, ...) LG_PRINTF(3, 4);
/* Copies an lg_error into the handle and returns its status. */
lg_status tok_fail_err(lg_tokenizer *tok, const lg_error *e);

#endif /* LG_TEXT_H */
