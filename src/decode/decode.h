/*
 * decode.h — the verdict decoder (internal): a token-level state machine that makes any model
 * answer with a valid LlavaGuard verdict.
 *
 * The answer has the fixed form the models were trained on (json.dumps(indent=4)):
 *     {\n    "rating": "<Safe|Unsafe>",\n    "category": "<option>",\n    "rationale": "<text>"\n}
 * The skeleton is forced (fed as the canonical tokenization of the whole answer so far, in one
 * batch); the rating and the category are chosen among their options by full token-sequence
 * probability; the rationale is generated under a byte-level JSON-string automaton compiled into
 * a per-token transition table, so each step costs one table lookup per candidate token.
 *
 * The decoder sees the language model and the tokenizer only through the two small interfaces
 * below, so it is tested with scripted stand-ins as well as with the real model.
 */
#ifndef LG_DECODE_H
#define LG_DECODE_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

/* The language model as the decoder needs it. The context already holds the prompt. */
struct vd_eval;
typedef struct vd_lm {
    void *ctx;
    size_t n_vocab; /* logits per position */
    /* Appends n ids; *logits receives n_vocab floats for the last position (or n rows when
     * `all`), valid until the next call. */
    lg_status (*eval)(void *ctx, const int32_t *ids, size_t n, bool all, const float **logits);
    /* Rolls the context back to its first n_past tokens. */
    lg_status (*truncate)(void *ctx, size_t n_past);
    const char *(*errmsg)(void *ctx);
    /* Optional: several continuations in one model pass. Equivalent to, for each eval in order,
     * truncate(pos) then eval(ids, n, all); the context ends as the last one leaves it. Every
     * eval's logits stay valid until the next call. NULL: the decoder does exactly that. */
    lg_status (*eval_multi)(void *ctx, struct vd_eval *evals, size_t n);
} vd_lm;

/* One continuation for vd_lm.eval_multi. */
typedef struct vd_eval {
    size_t pos;
    const int32_t *ids;
    size_t n;
    bool all;
    const float *logits; /* out: n (all) or 1 rows of n_vocab */
} vd_eval;

/* The tokenizer as the decoder needs it. */
typedef struct vd_tok {
    void *ctx;
    size_t n_tokens; /* ids 0..n_tokens-1 may have bytes */
    /* Canonical tokenization of `text` (nothing added around it); *ids freed with lg_free. */
    lg_status (*encode)(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n);
    /* The bytes id stands for, or NULL for special tokens and ids without a token. */
    const char *(*token_bytes)(void *ctx, int32_t id, size_t *len);
} vd_tok;

/* ---- the JSON-string automaton (jsonfsm.c) ---- */

/* Live states inside the rationale string; a token may end in one of these, or close the string
 * (FSM_CLOSED), or be rejected (FSM_REJECT). */
enum {
    FSM_STR = 0, /* ordinary content */
    FSM_ESC,     /* after a backslash */
    FSM_U4,      /* after \u, 4 hex digits to go */
    FSM_U3,
    FSM_U2,
    FSM_U1,
    FSM_N_LIVE,
    FSM_CLOSED = FSM_N_LIVE, /* the closing quote was read (maybe followed by a prefix of "\n}") */
    FSM_REJECT = -1
};

/* Runs the automaton over bytes from `state`; returns the end state, FSM_CLOSED or FSM_REJECT.
 * Only printable ASCII may appear unescaped: the training targets were written by Python's
 * json.dumps with ensure_ascii, so anything else reached the model as an escape. */
int fsm_run(int state, const char *bytes, size_t n);

/* next[state * n_vocab + id]: the state after token id from `state` (int8). */
typedef struct fsm_table {
    size_t n_vocab;
    int8_t *next;
} fsm_table;

/* The allowed token (from `state`) with the largest logit, first on ties; -1 when none. This is
 * the whole per-token cost of the constraint in greedy decoding: one pass over the logits. */
int32_t fsm_best_allowed(const fsm_table *t, int state, const float *logits, size_t n_logits);

lg_status fsm_table_build(fsm_table *t, const vd_tok *tok, size_t n_vocab, lg_error *err);
void fsm_table_free(fsm_table *t);

/* Decodes JSON string content (no quotes) to UTF-8, resolving escapes and surrogate pairs (a
 * lone surrogate becomes U+FFFD). Returns NULL on malformed input or no memory. */
char *fsm_unescape(const char *s, size_t n, size_t *out_len);

/* ---- the verdict decoder (verdict.c) ---- */

typedef enum vd_rationale {
    VD_RATIONALE_ALWAYS = 0,
    VD_RATIONALE_NEVER,
    VD_RATIONALE_UNSAFE
} vd_rationale;

typedef struct vd_params {
    vd_rationale rationale;
    float temperature; /* <= 0: greedy */
    int top_k;         /* <= 0: off */
    float top_p;       /* >= 1: off */
    uint64_t seed;
    int max_rationale_tokens; /* the string is closed by the decoder when reached */
    bool sequential_options;  /* score options one model call each even when eval_multi is
                                 there (the old way: for benchmarks and tests) */
    /* Optional: called with each new piece of the answer text as it is decided (the rating,
     * the category, each rationale token; bytes of an unfinished escape held back), so the
     * pieces concatenated are the final answer. */
    void (*on_text)(void *user, const char *text, size_t len);
    void *on_text_user;
} vd_params;

/* The options of one policy, compiled against one tokenizer (reusable for many images). */
typedef struct vd_schema {
    char **categories; /* option strings as the model writes them, "NA: None applying" last */
    int n_categories;
    fsm_table fsm;
} vd_schema;

lg_status vd_schema_build(vd_schema *s, const char *const *categories, int n_categories,
                          const vd_tok *tok, size_t n_vocab, lg_error *err);
void vd_schema_free(vd_schema *s);

typedef struct vd_result {
    bool unsafe;
    double p_unsafe;        /* P(Unsafe) among the two rating options */
    int category;           /* index into schema->categories */
    double *category_probs; /* n_categories probabilities (conditioned on the rating), lg_free */
    char *rationale;        /* unescaped UTF-8, or NULL when not generated; lg_free */
    bool rationale_truncated;
    char *answer;        /* the answer text as the model wrote it (JSON), lg_free */
    int64_t n_forced;    /* tokens fed as forced skeleton or chosen options */
    int64_t n_sampled;   /* rationale tokens chosen one by one */
    int32_t *answer_ids; /* the ids of the answer as the model saw them, lg_free */
    size_t n_answer_ids;
} vd_result;

/* Decodes one verdict. The model context must hold exactly prompt_ids (n_prompt of them); on
 * return it holds the prompt followed by some answer tokens (callers that reuse the context
 * truncate it back to n_prompt). Fails only on model/tokenizer errors (message in err). */
lg_status vd_decode(const vd_schema *schema, const vd_lm *lm, const vd_tok *tok,
                    const int32_t *prompt_ids, size_t n_prompt, const vd_params *params,
                    vd_result *out, lg_error *err);
void vd_result_clear(vd_result *r);

#endif
