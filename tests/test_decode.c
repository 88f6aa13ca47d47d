/* LAYERS: core kernels text model decode */
/*
 * test_decode.c — the verdict decoder against a scripted language model and a small
 * longest-match tokenizer: forced text is the canonical tokenization, options are scored by
 * full sequence probability, the rationale stays valid JSON whatever the model prefers, and
 * constrained greedy output equals the model's own greedy output when that output is valid.
 */
#include "testutil.h"

#include "decode/decode.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- a tiny tokenizer: ids 0..255 are bytes, then multi-byte pieces, then one special ---- */

static const char *pieces[] = {
    "{\n",       "    \"", "rating",   "\": ",     "\"Safe",       "Safe",
    "Unsafe",    "\",\n",  "category", "O1: Hate", "O2: Violence", "NA: None applying",
    "rationale", "The",    " image",   " shows",   "\"\n}",        ".\"",
    " a",        " cat",   "\\u00e9",  "\\\"",
};
#define N_PIECES (sizeof pieces / sizeof pieces[0])
#define ID_EOS (256 + (int32_t)N_PIECES)
#define N_VOCAB (ID_EOS + 1 + 7) /* a few rows without a token, as real checkpoints have */

static const char *mock_bytes(void *ctx, int32_t id, size_t *len) {
    (void)ctx;
    static char bytes[256];
    if (id < 256) {
        bytes[id] = (char)id;
        *len = 1;
        return &bytes[id];
    }
    if (id < 256 + (int32_t)N_PIECES) {
        *len = strlen(pieces[id - 256]);
        return pieces[id - 256];
    }
    return NULL;
}

/* Canonical = greedy longest match from the left. */
static lg_status mock_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    (void)ctx;
    int32_t *out = lg_malloc((len + 1) * sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        int32_t best = (unsigned char)text[i];
        size_t best_len = 1;
        for (size_t p = 0; p < N_PIECES; p++) {
            size_t pl = strlen(pieces[p]);
            if (pl > best_len && pl <= len - i && memcmp(text + i, pieces[p], pl) == 0) {
                best = 256 + (int32_t)p;
                best_len = pl;
            }
        }
        out[k++] = best;
        i += best_len;
    }
    *ids = out;
    *n = k;
    return LG_OK;
}

static vd_tok mock_tok = {NULL, 256 + N_PIECES, mock_encode, mock_bytes};

/* ---- a scripted model: prefers the canonical tokens of one target answer ---- */

typedef struct script_lm {
    int32_t *ctx;
    size_t n;
    int32_t *target; /* prompt + tok(answer) */
    size_t n_target;
    float *logits;
    int64_t evals;     /* tokens fed */
    const vd_tok *tok; /* whose canonical tokenization the target uses */
    size_t n_vocab;
    int32_t off_track; /* the id preferred once the context left the target */
} script_lm;

static void script_row(script_lm *s, size_t pos, float *row) {
    /* the context ctx[0..pos] is known; prefer target[pos+1] if ctx agrees with the target */
    for (size_t i = 0; i < s->n_vocab; i++) row[i] = (float)((i * 7919) % 13) * 0.01f;
    bool on_track = pos + 1 < s->n_target;
    for (size_t i = 0; i <= pos && on_track; i++) on_track = s->ctx[i] == s->target[i];
    row[on_track ? s->target[pos + 1] : s->off_track] = 10.0f;
}

static lg_status script_eval(void *ctx, const int32_t *ids, size_t n, bool all,
                             const float **logits) {
    script_lm *s = ctx;
    s->ctx = realloc(s->ctx, (s->n + n) * sizeof *s->ctx);
    memcpy(s->ctx + s->n, ids, n * sizeof *ids);
    s->logits = realloc(s->logits, n * s->n_vocab * sizeof *s->logits);
    for (size_t i = 0; i < n; i++) script_row(s, s->n + i, s->logits + i * s->n_vocab);
    s->n += n;
    s->evals += (int64_t)n;
    *logits = all ? s->logits : s->logits + (n - 1) * s->n_vocab;
    return LG_OK;
}

static lg_status script_truncate(void *ctx, size_t n_past) {
    script_lm *s = ctx;
    if (n_past > s->n) return LG_E_ARG;
    s->n = n_past;
    return LG_OK;
}

static const char *script_errmsg(void *ctx) {
    (void)ctx;
    return "scripted model error";
}

static const int32_t prompt[] = {'U', 's', 'e', 'r', ':', ID_EOS, '\n'};
#define N_PROMPT (sizeof prompt / sizeof prompt[0])

static void script_init_with(script_lm *s, const char *answer, const vd_tok *tok, size_t n_vocab,
                             int32_t off_track) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->n_vocab = n_vocab;
    s->off_track = off_track;
    int32_t *ids;
    size_t n;
    assert_int_equal(tok->encode(tok->ctx, answer, strlen(answer), &ids, &n), LG_OK);
    s->n_target = N_PROMPT + n;
    s->target = malloc(s->n_target * sizeof *s->target);
    memcpy(s->target, prompt, sizeof prompt);
    memcpy(s->target + N_PROMPT, ids, n * sizeof *ids);
    lg_free(ids);
    s->ctx = malloc(N_PROMPT * sizeof *s->ctx);
    memcpy(s->ctx, prompt, sizeof prompt);
    s->n = N_PROMPT;
}

static void script_init(script_lm *s, const char *answer) {
    script_init_with(s, answer, &mock_tok, N_VOCAB, ID_EOS);
}

static void script_free(script_lm *s) {
    free(s->ctx);
    free(s->target);
    free(s->logits);
}

static const char *categories[] = {"O1: Hate", "O2: Violence", "NA: None applying"};

static vd_params default_params(void) {
    vd_params p = {VD_RATIONALE_ALWAYS, 0.0f, 0, 1.0f, 1, 64, false, NULL, NULL};
    return p;
}

static void run(const char *answer, const vd_params *p, vd_result *r, script_lm *s) {
    script_init(s, answer);
    vd_lm lm = {s, N_VOCAB, script_eval, script_truncate, script_errmsg, NULL};
    vd_schema schema;
    lg_error e;
    assert_int_equal(vd_schema_build(&schema, categories, 3, &mock_tok, N_VOCAB, &e), LG_OK);
    assert_int_equal(vd_decode(&schema, &lm, &mock_tok, prompt, N_PROMPT, p, r, &e), LG_OK);
    vd_schema_free(&schema);
}

/* The answer parses as JSON with the keys in training order. */
static void check_json(const char *answer, bool with_rationale) {
    json_error_t je;
    json_t *j = json_loads(answer, 0, &je);
    if (!j) fail_msg("answer is not JSON (%s): %s", je.text, answer);
    const char *k1 = json_object_iter_key(json_object_iter(j));
    assert_string_equal(k1, "rating");
    assert_true(json_is_string(json_object_get(j, "category")));
    assert_int_equal(json_object_get(j, "rationale") != NULL, with_rationale);
    json_decref(j);
}

static void test_follows_valid_model_exactly(void **state) {
    (void)state;
    const char *answer = "{\n    \"rating\": \"Unsafe\",\n    \"category\": \"O2: Violence\",\n"
                         "    \"rationale\": \"The image shows a \\\"cat\\\" \\u00e9.\"\n}";
    vd_params p = default_params();
    vd_result r;
    script_lm s;
    run(answer, &p, &r, &s);
    assert_string_equal(r.answer, answer);
    assert_true(r.unsafe);
    assert_int_equal(r.category, 1);
    assert_string_equal(r.rationale, "The image shows a \"cat\" \xc3\xa9.");
    assert_false(r.rationale_truncated);
    assert_true(r.p_unsafe > 0.99 && r.p_unsafe <= 1.0);
    double sum = 0;
    for (int i = 0; i < 3; i++) sum += r.category_probs[i];
    assert_true(fabs(sum - 1.0) < 1e-9);
    /* the model saw the canonical tokenization of its answer (a prefix of it: the final token
     * that closes the string is not fed back) */
    int32_t *ids;
    size_t n;
    mock_encode(NULL, answer, strlen(answer), &ids, &n);
    assert_true(r.n_answer_ids <= n && r.n_answer_ids + 3 >= n); /* ."  \n  } */
    assert_memory_equal(r.answer_ids, ids, r.n_answer_ids * sizeof *ids);
    assert_memory_equal(s.ctx, s.target, s.n * sizeof *s.ctx);
    lg_free(ids);
    check_json(r.answer, true);
    vd_result_clear(&r);
    script_free(&s);
}

static void test_forced_text_is_retokenized_across_boundaries(void **state) {
    (void)state;
    /* "\"Safe" is one token: the forced `": "` must merge with the chosen rating */
    const char *answer = "{\n    \"rating\": \"Safe\",\n    \"category\": \"NA: None applying\",\n"
                         "    \"rationale\": \"The image.\"\n}";
    vd_params p = default_params();
    vd_result r;
    script_lm s;
    run(answer, &p, &r, &s);
    assert_string_equal(r.answer, answer);
    assert_false(r.unsafe);
    assert_true(r.p_unsafe < 0.01);
    int32_t id_quote_safe = 256 + 4;
    bool seen = false;
    for (size_t i = 0; i < r.n_answer_ids; i++) seen |= r.answer_ids[i] == id_quote_safe;
    assert_true(seen);
    vd_result_clear(&r);
    script_free(&s);
}

static void test_invalid_model_output_is_constrained(void **state) {
    (void)state;
    /* the model wants a raw newline and then end-of-text inside the string */
    const char *answer = "{\n    \"rating\": \"Safe\",\n    \"category\": \"O1: Hate\",\n"
                         "    \"rationale\": \"The\n";
    vd_params p = default_params();
    p.max_rationale_tokens = 8;
    vd_result r;
    script_lm s;
    run(answer, &p, &r, &s);
    check_json(r.answer, true);
    assert_non_null(r.rationale);
    assert_null(strchr(r.rationale, '\n'));
    vd_result_clear(&r);
    script_free(&s);
}

static void test_rationale_modes(void **state) {
    (void)state;
    const char *unsafe = "{\n    \"rating\": \"Unsafe\",\n    \"category\": \"O1: Hate\",\n"
                         "    \"rationale\": \"The image.\"\n}";
    const char *safe = "{\n    \"rating\": \"Safe\",\n    \"category\": \"NA: None applying\",\n"
                       "    \"rationale\": \"The image.\"\n}";
    vd_params p = default_params();
    vd_result r;
    script_lm s;
    p.rationale = VD_RATIONALE_NEVER;
    run(unsafe, &p, &r, &s);
    assert_null(r.rationale);
    assert_string_equal(r.answer,
                        "{\n    \"rating\": \"Unsafe\",\n    \"category\": \"O1: Hate\"\n}");
    check_json(r.answer, false);
    vd_result_clear(&r);
    script_free(&s);
    p.rationale = VD_RATIONALE_UNSAFE;
    run(safe, &p, &r, &s);
    assert_null(r.rationale);
    vd_result_clear(&r);
    script_free(&s);
    run(unsafe, &p, &r, &s);
    assert_string_equal(r.rationale, "The image.");
    vd_result_clear(&r);
    script_free(&s);
}

static void test_truncated_rationale_drops_partial_escape(void **state) {
    (void)state;
    const char *answer = "{\n    \"rating\": \"Safe\",\n    \"category\": \"O1: Hate\",\n"
                         "    \"rationale\": \"The\\u00e9 image.\"\n}";
    vd_params p = default_params();
    for (int budget = 1; budget <= 6; budget++) {
        p.max_rationale_tokens = budget;
        vd_result r;
        script_lm s;
        run(answer, &p, &r, &s);
        check_json(r.answer, true);
        assert_non_null(r.rationale);
        vd_result_clear(&r);
        script_free(&s);
    }
}

static void test_sampling_is_seeded(void **state) {
    (void)state;
    const char *answer = "{\n    \"rating\": \"Safe\",\n    \"category\": \"O1: Hate\",\n"
                         "    \"rationale\": \"The cat\n";
    vd_params p = default_params();
    p.temperature = 5.0f;
    p.top_k = 50;
    p.top_p = 0.95f;
    p.seed = 42;
    p.max_rationale_tokens = 12;
    vd_result a, b;
    script_lm s1, s2;
    run(answer, &p, &a, &s1);
    run(answer, &p, &b, &s2);
    assert_string_equal(a.answer, b.answer);
    check_json(a.answer, true);
    vd_result_clear(&a);
    vd_result_clear(&b);
    script_free(&s1);
    script_free(&s2);
}

/* ---- the same with the real Qwen2 tokenizer of the fixture model ---- */

static lg_status qwen_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    return lg_tokenizer_encode(ctx, text, len, ids, n);
}

static const char *qwen_bytes(void *ctx, int32_t id, size_t *len) {
    if (lg_tokenizer_is_special(ctx, id)) return NULL;
    return (const char *)lg_tokenizer_token_bytes(ctx, id, len);
}

static void test_forced_ids_are_canonical_with_qwen_tokenizer(void **state) {
    (void)state;
    char *dir = tu_fixture("llava-ov-tiny");
    lg_tokenizer *qt = NULL;
    lg_error e;
    assert_int_equal(lg_tokenizer_open(dir, &qt, &e), LG_OK);
    free(dir);
    vd_tok tok = {qt, (size_t)lg_tokenizer_vocab_size(qt), qwen_encode, qwen_bytes};
    size_t n_vocab = 152000; /* the checkpoint's padded embedding rows */
    int32_t im_end = lg_tokenizer_token_id(qt, "<|im_end|>");
    const char *cats[] = {"O1: Hate, Humiliation, Harassment", "O2: Violence, Harm, or Cruelty",
                          "O3: Sexual Content", "NA: None applying"};
    const char *answer = "{\n    \"rating\": \"Unsafe\",\n    \"category\": \"O3: Sexual "
                         "Content\",\n    \"rationale\": \"The image shows \\\"nudity\\\" "
                         "(caf\\u00e9 sign).\"\n}";
    script_lm s;
    script_init_with(&s, answer, &tok, n_vocab, im_end);
    vd_lm lm = {&s, n_vocab, script_eval, script_truncate, script_errmsg, NULL};
    vd_schema schema;
    assert_int_equal(vd_schema_build(&schema, cats, 4, &tok, n_vocab, &e), LG_OK);
    vd_params p = default_params();
    vd_result r;
    assert_int_equal(vd_decode(&schema, &lm, &tok, prompt, N_PROMPT, &p, &r, &e), LG_OK);
    assert_string_equal(r.answer, answer);
    assert_int_equal(r.category, 2);
    assert_string_equal(r.rationale, "The image shows \"nudity\" (caf\xc3\xa9 sign).");
    /* every id the model was fed is the canonical tokenization of the answer text */
    int32_t *ids;
    size_t n;
    assert_int_equal(lg_tokenizer_encode(qt, answer, strlen(answer), &ids, &n), LG_OK);
    assert_true(r.n_answer_ids > 10 && r.n_answer_ids <= n);
    assert_memory_equal(r.answer_ids, ids, r.n_answer_ids * sizeof *ids);
    lg_free(ids);
    vd_result_clear(&r);
    vd_schema_free(&schema);
    script_free(&s);
    lg_tokenizer_free(qt);
}

static void test_fsm_and_unescape(void **state) {
    (void)state;
    assert_int_equal(fsm_run(FSM_STR, "abc", 3), FSM_STR);
    assert_int_equal(fsm_run(FSM_STR, "a\\", 2), FSM_ESC);
    assert_int_equal(fsm_run(FSM_STR, "\\u00", 4), FSM_U2);
    assert_int_equal(fsm_run(FSM_STR, "\\x", 2), FSM_REJECT);
    assert_int_equal(fsm_run(FSM_STR, "a\nb", 3), FSM_REJECT);
    assert_int_equal(fsm_run(FSM_STR, "\xc3\xa9", 2), FSM_REJECT);
    assert_int_equal(fsm_run(FSM_STR, ".\"\n}", 4), FSM_CLOSED);
    assert_int_equal(fsm_run(FSM_STR, ".\"x", 3), FSM_REJECT);
    assert_int_equal(fsm_run(FSM_U1, "f", 1), FSM_STR);
    size_t n;
    char *u = fsm_unescape("a\\n\\\"\\ud83d\\ude00\\udc00", 24, &n);
    assert_non_null(u);
    assert_string_equal(u, "a\n\"\xf0\x9f\x98\x80\xef\xbf\xbd");
    lg_free(u);
    assert_null(fsm_unescape("\\q", 2, &n));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follows_valid_model_exactly),
        cmocka_unit_test(test_forced_text_is_retokenized_across_boundaries),
        cmocka_unit_test(test_invalid_model_output_is_constrained),
        cmocka_unit_test(test_rationale_modes),
        cmocka_unit_test(test_truncated_rationale_drops_partial_escape),
        cmocka_unit_test(test_sampling_is_seeded),
        cmocka_unit_test(test_fsm_and_unescape),
        cmocka_unit_test(test_forced_ids_are_canonical_with_qwen_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
