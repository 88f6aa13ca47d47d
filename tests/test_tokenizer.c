/* LAYERS: core text */
/*
 * test_tokenizer.c — tokenizer parity with the shared fixtures: the 64 Qwen2 corpus strings
 * (ids, token strings, decode round trip to the NFC text), every reference prompt of
 * llava-ov-tiny, llava-1.5-tiny, llava-1.6-tiny and qwen2.5-vl-tiny rendered with its chat
 * template and tokenized to the exact input_ids, decoding of the reference generations, and the
 * streaming decoder on characters split across tokens.
 */
#include "testutil.h"

#include "text/text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static json_t *load_json_fixture(const char *rel) {
    char *p = tu_fixture(rel);
    json_error_t je;
    json_t *j = json_load_file(p, JSON_ALLOW_NUL, &je);
    if (!j) fail_msg("%s: %s", p, je.text);
    free(p);
    return j;
}

static lg_tokenizer *open_model(const char *model) {
    char *dir = tu_fixture(model);
    lg_tokenizer *tok = NULL;
    lg_error e;
    lg_status st = lg_tokenizer_open(dir, &tok, &e);
    if (st) fail_msg("open %s: %s", dir, e.msg);
    free(dir);
    return tok;
}

/* Compares ids with a JSON array (or an int64 array), reporting the first difference. */
static void check_ids(const int32_t *got, size_t n, const int64_t *want, size_t wn,
                      const char *label) {
    size_t m = n < wn ? n : wn;
    for (size_t i = 0; i < m; i++)
        if (got[i] != want[i])
            fail_msg("%s: ids differ at %zu: got %d, want %lld (lengths %zu / %zu)", label, i,
                     got[i], (long long)want[i], n, wn);
    if (n != wn) fail_msg("%s: got %zu ids, want %zu", label, n, wn);
}

static int64_t *json_ids(const json_t *arr, size_t *n) {
    assert_true(json_is_array(arr));
    *n = json_array_size(arr);
    int64_t *v = malloc((*n + 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = json_integer_value(json_array_get(arr, i));
    return v;
}

static void encode_check(lg_tokenizer *tok, const char *text, size_t len, unsigned flags,
                         const json_t *want_arr, const char *label) {
    int32_t *ids = NULL;
    size_t n = 0;
    lg_status st = lg_tokenizer_encode_ex(tok, text, len, flags, &ids, &n);
    if (st) fail_msg("%s: encode failed: %s", label, lg_tokenizer_errmsg(tok));
    size_t wn;
    int64_t *want = json_ids(want_arr, &wn);
    check_ids(ids, n, want, wn, label);
    free(want);
    lg_free(ids);
}

/* ---- the Qwen2 corpus ---- */

static void test_qwen2_cases(void **state) {
    (void)state;
    lg_tokenizer *tok = open_model("llava-ov-tiny");
    json_t *cases = load_json_fixture("tokenizer/qwen2_cases.json");
    assert_int_equal(json_array_size(cases), 64);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const json_t *t = json_object_get(c, "text");
        const char *text = json_string_value(t);
        size_t len = json_string_length(t);
        char label[64];
        snprintf(label, sizeof label, "qwen2 case %zu", i);
        encode_check(tok, text, len, 0, json_object_get(c, "ids"), label);
        /* the token strings as spelled in the vocabulary */
        const json_t *toks = json_object_get(c, "tokens");
        const json_t *ids = json_object_get(c, "ids");
        for (size_t k = 0; k < json_array_size(ids); k++) {
            const char *s =
                lg_tokenizer_token_str(tok, (int32_t)json_integer_value(json_array_get(ids, k)));
            assert_non_null(s);
            assert_string_equal(s, json_string_value(json_array_get(toks, k)));
        }
        /* decoding gives back the NFC form of the text */
        size_t wn;
        int64_t *want = json_ids(ids, &wn);
        int32_t *ids32 = malloc((wn + 1) * sizeof *ids32);
        for (size_t k = 0; k < wn; k++) ids32[k] = (int32_t)want[k];
        char *dec = NULL;
        size_t dlen = 0;
        assert_int_equal(lg_tokenizer_decode(tok, ids32, wn, 0, &dec, &dlen), LG_OK);
        utf8proc_uint8_t *nfc = utf8proc_NFC((const utf8proc_uint8_t *)text);
        if (strlen(text) == len) { /* utf8proc_NFC stops at NUL */
            if (strcmp((char *)nfc, dec) != 0) fail_msg("%s: decode gives \"%s\"", label, dec);
            assert_int_equal(dlen, strlen(dec));
        }
        free(nfc);
        lg_free(dec);
        free(ids32);
        free(want);
    }
    json_decref(cases);
    lg_tokenizer_free(tok);
}

/* ---- reference prompts ---- */

/* The user text: the conversation's (llava-ov-tiny) or the index's prompt_text (llava-1.x). */
static const char *conversation_text(const json_t *prompt, const json_t *index) {
    const json_t *conv = json_object_get(prompt, "conversation");
    if (!conv) {
        assert_non_null(json_object_get(index, "prompt_text"));
        return json_string_value(json_object_get(index, "prompt_text"));
    }
    const json_t *content = json_object_get(json_array_get(conv, 0), "content");
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        if (strcmp(json_string_value(json_object_get(part, "type")), "text") == 0)
            return json_string_value(json_object_get(part, "text"));
    }
    fail_msg("no text in the conversation");
    return NULL;
}

/* Renders and tokenizes one llava-style reference case (case.json -> prompt). */
static void check_llava_case(lg_tokenizer *tok, const char *tmpl, const char *user_text,
                             const json_t *prompt, unsigned flags, const char *label) {
    const json_t *before = json_object_get(prompt, "input_ids_before_image_expansion");
    bool has_image = before != NULL;
    const char *want_prompt = json_string_value(json_object_get(prompt, "rendered_prompt"));
    char *rendered = NULL;
    size_t rlen = 0;
    lg_error e;
    assert_int_equal(
        lg_chat_render(tmpl, user_text, strlen(user_text), has_image, 1, 1, &rendered, &rlen, &e),
        LG_OK);
    if (strcmp(rendered, want_prompt) != 0)
        fail_msg("%s: rendered prompt differs from the reference", label);
    encode_check(tok, rendered, rlen, flags,
                 has_image ? before : json_object_get(prompt, "input_ids"), label);
    lg_free(rendered);
    if (!has_image) return;
    /* with the placeholder expanded to the image tokens: the ids the model gets */
    int64_t nimg = json_integer_value(json_object_get(prompt, "num_image_tokens"));
    assert_int_equal(
        lg_chat_render(tmpl, user_text, strlen(user_text), 1, nimg, 1, &rendered, &rlen, &e),
        LG_OK);
    char label2[300];
    snprintf(label2, sizeof label2, "%s (expanded)", label);
    encode_check(tok, rendered, rlen, flags, json_object_get(prompt, "input_ids"), label2);
    lg_free(rendered);
}

static void check_llava_model(const char *model, const char *tmpl, unsigned flags) {
    lg_tokenizer *tok = open_model(model);
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/index.json", model);
    json_t *index = load_json_fixture(rel);
    const json_t *cases = json_object_get(index, "cases");
    assert_true(json_array_size(cases) >= 9);
    size_t i;
    json_t *name;
    json_array_foreach(cases, i, name) {
        snprintf(rel, sizeof rel, "reference/%s/%s/case.json", model, json_string_value(name));
        json_t *c = load_json_fixture(rel);
        const json_t *prompt = json_object_get(c, "prompt");
        char label[200];
        snprintf(label, sizeof label, "%s/%s", model, json_string_value(name));
        check_llava_case(tok, tmpl, conversation_text(prompt, index), prompt, flags, label);
        json_decref(c);
    }
    json_decref(index);
    lg_tokenizer_free(tok);
}

static void test_llava_ov_prompts(void **state) {
    (void)state;
    check_llava_model("llava-ov-tiny", "llava_onevision_hf", 0);
}

static void test_llava_15_prompts(void **state) {
    (void)state;
    check_llava_model("llava-1.5-tiny", "vicuna_v1", LG_ENCODE_ADD_SPECIAL);
}

static void test_llava_16_prompts(void **state) {
    (void)state;
    check_llava_model("llava-1.6-tiny", "chatml_direct", LG_ENCODE_ADD_SPECIAL);
}

static void test_qwen25_vl_prompts(void **state) {
    (void)state;
    lg_tokenizer *tok = open_model("qwen2.5-vl-tiny");
    json_t *man = load_json_fixture("reference/qwen2.5-vl-tiny/manifest.json");
    char *ppath = tu_shared("reference/prompts/prompt_v1.2.txt");
    size_t plen;
    char *policy = (char *)tu_read(ppath, &plen);
    free(ppath);
    json_t *cases = json_object_get(man, "cases");
    assert_int_equal(json_object_size(cases), 6);
    const char *key;
    json_t *c;
    json_object_foreach(cases, key, c) {
        int image_first = strstr(key, "image_first") != NULL;
        const char *want = json_string_value(json_object_get(c, "chat_text"));
        char *rendered = NULL;
        size_t rlen;
        lg_error e;
        assert_int_equal(
            lg_chat_render("qwen2_vl", policy, plen, 1, 1, image_first, &rendered, &rlen, &e),
            LG_OK);
        if (strcmp(rendered, want) != 0) fail_msg("%s: rendered prompt differs", key);
        lg_free(rendered);
        int64_t npad = json_integer_value(json_object_get(c, "num_image_pad_tokens"));
        assert_int_equal(
            lg_chat_render("qwen2_vl", policy, plen, 1, npad, image_first, &rendered, &rlen, &e),
            LG_OK);
        char rel[300];
        const char *file =
            json_string_value(json_object_get(json_object_get(c, "input_ids"), "file"));
        char folder[200];
        snprintf(folder, sizeof folder, "%.*s", (int)(strchr(key, '/') - key), key);
        snprintf(rel, sizeof rel, "reference/qwen2.5-vl-tiny/%s/%s", folder, file);
        size_t bytes;
        int64_t *want_ids = (int64_t *)tu_read_fixture(rel, &bytes);
        int32_t *ids;
        size_t n;
        assert_int_equal(
            lg_tokenizer_encode_ex(tok, rendered, rlen, LG_ENCODE_ADD_SPECIAL, &ids, &n), LG_OK);
        check_ids(ids, n, want_ids, bytes / 8, key);
        assert_int_equal(n, json_integer_value(json_object_get(c, "num_tokens")));
        lg_free(ids);
        free(want_ids);
        lg_free(rendered);
    }
    free(policy);
    json_decref(man);
    lg_tokenizer_free(tok);
}

/* ---- decoding the reference generations ---- */

static int32_t *ids32_of(const json_t *arr, size_t *n) {
    size_t wn;
    int64_t *v = json_ids(arr, &wn);
    int32_t *r = malloc((wn + 1) * sizeof *r);
    for (size_t i = 0; i < wn; i++) r[i] = (int32_t)v[i];
    free(v);
    *n = wn;
    return r;
}

/* Streams ids through a detokenizer; every chunk must be whole UTF-8; returns the text. */
static char *stream_decode(const lg_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags) {
    lg_detokenizer *d;
    lg_error e;
    assert_int_equal(lg_detokenizer_create(tok, flags, &d, &e), LG_OK);
    lg_buf all;
    lg_buf_init(&all);
    for (size_t i = 0; i <= n; i++) {
        const char *chunk;
        size_t len;
        if (i < n)
            assert_int_equal(lg_detokenizer_push(d, ids[i], &chunk, &len), LG_OK);
        else
            assert_int_equal(lg_detokenizer_finish(d, &chunk, &len), LG_OK);
        assert_int_equal(utf8_invalid_at((const uint8_t *)chunk, len), len);
        assert_int_equal(strlen(chunk), len);
        lg_buf_append(&all, chunk, len);
    }
    lg_buf_append(&all, "", 0);
    lg_detokenizer_free(d);
    size_t l;
    return lg_buf_detach(&all, &l);
}

static void check_generation_decode(const char *model) {
    lg_tokenizer *tok = open_model(model);
    const char *cases[] = {"p01_rgb_384x384", "p04_rgb_wide_1920x1080", "text_only"};
    for (size_t i = 0; i < 3; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "reference/%s/%s/case.json", model, cases[i]);
        json_t *c = load_json_fixture(rel);
        const json_t *g = json_object_get(c, "generation");
        size_t n;
        int32_t *ids = ids32_of(json_object_get(g, "new_token_ids"), &n);
        const char *want = json_string_value(json_object_get(g, "text"));
        const char *want_skip = json_string_value(json_object_get(g, "text_skip_special_tokens"));
        char *text;
        assert_int_equal(lg_tokenizer_decode(tok, ids, n, 0, &text, NULL), LG_OK);
        if (strcmp(text, want) != 0) fail_msg("%s: decode \"%s\" != \"%s\"", rel, text, want);
        lg_free(text);
        assert_int_equal(lg_tokenizer_decode(tok, ids, n, LG_DECODE_SKIP_SPECIAL, &text, NULL),
                         LG_OK);
        assert_string_equal(text, want_skip);
        lg_free(text);
        char *streamed = stream_decode(tok, ids, n, 0);
        assert_string_equal(streamed, want);
        lg_free(streamed);
        free(ids);
        json_decref(c);
    }
    lg_tokenizer_free(tok);
}

static void test_decode_generations(void **state) {
    (void)state;
    check_generation_decode("llava-ov-tiny");
    check_generation_decode("llava-1.5-tiny");
    check_generation_decode("llava-1.6-tiny");
}

/* ---- streaming over split characters ---- */

static void check_stream_roundtrip(lg_tokenizer *tok, const char *text, bool want_split,
                                   unsigned flags) {
    int32_t *ids;
    size_t n;
    assert_int_equal(lg_tokenizer_encode_ex(tok, text, strlen(text), flags, &ids, &n), LG_OK);
    /* some token must end inside a character for the test to mean anything */
    bool split = false;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *b = lg_tokenizer_token_bytes(tok, ids[i], &len);
        assert_non_null(b);
        if (utf8_invalid_at(b, len) != len) split = true;
    }
    if (want_split) assert_true(split);
    char *one;
    assert_int_equal(lg_tokenizer_decode(tok, ids, n, LG_DECODE_SKIP_SPECIAL, &one, NULL), LG_OK);
    char *streamed = stream_decode(tok, ids, n, LG_DECODE_SKIP_SPECIAL);
    assert_string_equal(streamed, one);
    lg_free(streamed);
    lg_free(one);
    lg_free(ids);
}

static void test_stream_split_characters(void **state) {
    (void)state;
    lg_tokenizer *qwen = open_model("llava-ov-tiny");
    check_stream_roundtrip(
        qwen,
        "emoji: 😀😃😄 👍🏽 ❤️ 🇩🇪 family 👨‍👩‍👧‍👦 and 蚪 "
        "金钱",
        true, 0);
    check_stream_roundtrip(qwen, "नमस्ते दुनिया สวัสดีชาวโลก", true, 0);
    lg_tokenizer *llama = open_model("llava-1.5-tiny");
    /* byte-fallback pieces: characters outside the Llama vocabulary become <0xNN> bytes */
    check_stream_roundtrip(llama, "Hi 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 蚪", true, LG_ENCODE_ADD_SPECIAL);

    /* a character held back until its last byte arrives, and U+FFFD for a cut-off one */
    int32_t b0 = lg_tokenizer_token_id(llama, "<0xF0>"),
            b1 = lg_tokenizer_token_id(llama, "<0x9F>"),
            b2 = lg_tokenizer_token_id(llama, "<0x98>"),
            b3 = lg_tokenizer_token_id(llama, "<0x80>");
    assert_true(b0 >= 0 && b1 >= 0 && b2 >= 0 && b3 >= 0);
    lg_detokenizer *d;
    lg_error e;
    assert_int_equal(lg_detokenizer_create(llama, 0, &d, &e), LG_OK);
    const char *t;
    size_t len;
    int32_t seq[] = {b0, b1, b2};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(lg_detokenizer_push(d, seq[i], &t, &len), LG_OK);
        assert_int_equal(len, 0);
    }
    assert_int_equal(lg_detokenizer_push(d, b3, &t, &len), LG_OK);
    assert_string_equal(t, "\xF0\x9F\x98\x80");
    assert_int_equal(lg_detokenizer_push(d, b0, &t, &len), LG_OK);
    assert_int_equal(len, 0);
    assert_int_equal(lg_detokenizer_finish(d, &t, &len), LG_OK);
    assert_string_equal(t, "\xEF\xBF\xBD");
    assert_int_equal(lg_detokenizer_push(d, -3, &t, &len), LG_E_ARG);
    lg_detokenizer_free(d);
    lg_tokenizer_free(llama);
    lg_tokenizer_free(qwen);
}

/* ---- randomized round trips ---- */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random valid UTF-8 string from a mix of scripts, marks, whitespace and controls (no '<',
 * so no special-token strings, and no U+2581). */
static size_t random_text(uint64_t *rng, char *out, size_t cap) {
    static const uint32_t pool[] = {
        'a',    'Z',     '0',     '7',     ' ',     ' ',    ' ',    '\n',   '\t',   '\r',
        '.',    '\'',    '"',     '{',     '-',     0x01,   0x7F,   0xE9,   0xDF,   0x301,
        0x308,  0x3B1,   0x416,   0x5D0,   0x627,   0x915,  0x94D,  0xE2A,  0x3042, 0x4E2D,
        0x6587, 0xAC00,  0x1100,  0x1161,  0x200D,  0x200B, 0xFEFF, 0x3000, 0x00A0, 0x2028,
        0xFF21, 0x1F600, 0x1F3FD, 0x1F1E9, 0x10348, 0x2764, 0xFE0F};
    size_t n = 0, len = rng_next(rng) % 40;
    for (size_t i = 0; i < len && n + 4 < cap; i++) {
        uint32_t cp = pool[rng_next(rng) % (sizeof pool / sizeof pool[0])];
        n += lg_utf8_encode(cp, (uint8_t *)out + n);
    }
    out[n] = '\0';
    return n;
}

static void test_random_roundtrip(void **state) {
    (void)state;
    lg_tokenizer *qwen = open_model("llava-ov-tiny"), *llama = open_model("llava-1.5-tiny");
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    char text[256];
    for (int iter = 0; iter < 400; iter++) {
        size_t n = random_text(&rng, text, sizeof text);
        for (int which = 0; which < 2; which++) {
            lg_tokenizer *tok = which ? llama : qwen;
            int32_t *ids;
            size_t nids;
            assert_int_equal(lg_tokenizer_encode(tok, text, n, &ids, &nids), LG_OK);
            char *dec;
            assert_int_equal(lg_tokenizer_decode(tok, ids, nids, 0, &dec, NULL), LG_OK);
            /* Qwen2: decoding gives the NFC text; Llama: the text itself */
            char *want =
                which ? strdup(text) : (char *)utf8proc_NFC((const utf8proc_uint8_t *)text);
            if (strcmp(dec, want) != 0)
                fail_msg("%s round trip of \"%s\" gave \"%s\"", which ? "llama" : "qwen2", text,
                         dec);
            char *streamed = stream_decode(tok, ids, nids, 0);
            assert_string_equal(streamed, dec);
            lg_free(streamed);
            free(want);
            lg_free(dec);
            lg_free(ids);
        }
    }
    /* random bytes: refused (invalid UTF-8) or tokenized, never a crash */
    for (int iter = 0; iter < 200; iter++) {
        uint8_t raw[32];
        size_t n = rng_next(&rng) % sizeof raw;
        for (size_t i = 0; i < n; i++) raw[i] = (uint8_t)rng_next(&rng);
        int32_t *ids;
        size_t nids;
        lg_status st = lg_tokenizer_encode(qwen, (const char *)raw, n, &ids, &nids);
        assert_true(st == LG_OK || st == LG_E_ARG);
        if (st == LG_OK) lg_free(ids);
    }
    lg_tokenizer_free(llama);
    lg_tokenizer_free(qwen);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen2_cases),
        cmocka_unit_test(test_llava_ov_prompts),
        cmocka_unit_test(test_llava_15_prompts),
        cmocka_unit_test(test_llava_16_prompts),
        cmocka_unit_test(test_qwen25_vl_prompts),
        cmocka_unit_test(test_decode_generations),
        cmocka_unit_test(test_stream_split_characters),
        cmocka_unit_test(test_random_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
