/* LAYERS: core text */
/*
 * test_tokenizer_files.c — the tokenizer on small hand-written tokenizer.json files: each
 * supported component (Prepend/Replace normalizer, byte fallback, unk fusing, added tokens with
 * lstrip/rstrip and normalized matching, Split behaviours, Metaspace, ByteLevel with the GPT-2
 * pattern, ignore_merges, post-processor) against ids worked out by hand from the `tokenizers`
 * semantics; the lookup API; and clear errors for malformed or unsupported files.
 */
#include "testutil.h"

#include "text/text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A small SentencePiece-style tokenizer in the Llama-2 layout. */
static const char base_json[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
    "\"added_tokens\":["
    "{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
    "\"normalized\":false,\"special\":true},"
    "{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
    "\"normalized\":false,\"special\":true},"
    "{\"id\":20,\"content\":\"<x>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
    "\"normalized\":false,\"special\":false}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":"
    "\"\\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]},"
    "\"pre_tokenizer\":null,"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":"
    "\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],"
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{"
    "\"String\":\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
    "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
    "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":true,"
    "\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"<0xC3>\":3,"
    "\"<0xA9>\":4,\"\\u2581\":5,\"a\":6,\"b\":7,\"c\":8,\"ab\":9,\"\\u2581ab\":10,\"-\":11,"
    "\"a-\":12,\"-b\":13,\"--\":14,\"\\u2581c\":15,\"abc\":16},"
    "\"merges\":[\"a b\",\"\\u2581 ab\",\"a -\",\"- b\",\"- -\",\"\\u2581 c\"]}}";

static json_t *base(void) {
    json_error_t je;
    json_t *j = json_loads(base_json, 0, &je);
    if (!j) fail_msg("base tokenizer: %s at %d", je.text, je.position);
    return j;
}

static json_t *model_of(json_t *root) {
    return json_object_get(root, "model");
}

/* Opens a tokenizer from a JSON tree (consumed). */
static lg_status open_tree(json_t *root, lg_tokenizer **tok, lg_error *e) {
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    assert_non_null(s);
    lg_status st = lg_tokenizer_open_memory(s, strlen(s), "test.json", tok, e);
    free(s);
    return st;
}

static lg_tokenizer *open_ok(json_t *root) {
    lg_tokenizer *tok = NULL;
    lg_error e;
    if (open_tree(root, &tok, &e)) fail_msg("open: %s", e.msg);
    return tok;
}

static void expect_ids(lg_tokenizer *tok, const char *text, unsigned flags, const int32_t *want,
                       size_t wn) {
    int32_t *ids = NULL;
    size_t n = 0;
    lg_status st = lg_tokenizer_encode_ex(tok, text, strlen(text), flags, &ids, &n);
    if (st) fail_msg("encode \"%s\": %s", text, lg_tokenizer_errmsg(tok));
    bool same = n == wn && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        char got[512] = "";
        for (size_t i = 0; i < n && strlen(got) < 480; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
        fail_msg("encode \"%s\": got [%s] (%zu ids, want %zu)", text, got, n, wn);
    }
    lg_free(ids);
}

#define EXPECT(tok, text, flags, ...)                                                              \
    do {                                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                                     \
        expect_ids(tok, text, flags, want_, sizeof want_ / sizeof want_[0]);                       \
    } while (0)

static void expect_decode(lg_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
                          const char *want) {
    char *text = NULL;
    assert_int_equal(lg_tokenizer_decode(tok, ids, n, flags, &text, NULL), LG_OK);
    assert_string_equal(text, want);
    lg_free(text);
}

/* ---- SentencePiece-style behaviour ---- */

static void test_sentencepiece_basics(void **state) {
    (void)state;
    lg_tokenizer *tok = open_ok(base());
    EXPECT(tok, "ab c", 0, 10, 15);                         /* "▁ab▁c": ▁ab ▁c */
    EXPECT(tok, "ab c", LG_ENCODE_ADD_SPECIAL, 1, 10, 15);  /* <s> from the post-processor */
    EXPECT(tok, "\xC3\xA9", 0, 5, 3, 4);                    /* é: byte fallback <0xC3> <0xA9> */
    EXPECT(tok, "xy", 0, 5, 0);                             /* two unknown characters, fused */
    EXPECT(tok, "<s>ab", 0, 1, 10);                         /* each segment gets its own ▁ */
    EXPECT(tok, "<s>ab", LG_ENCODE_SPLIT_SPECIAL, 5, 0, 9); /* "<s>" as text: unk, fused */
    EXPECT(tok, "a <x> b", 0, 5, 6, 5, 20, 5, 5, 7);        /* non-special added token */
    EXPECT(tok, "<x>", LG_ENCODE_SPLIT_SPECIAL, 20);        /* not special: still recognised */
    int32_t *ids = NULL;
    size_t n = 99;
    assert_int_equal(lg_tokenizer_encode(tok, "", 0, &ids, &n), LG_OK);
    assert_int_equal(n, 0);
    assert_non_null(ids);
    lg_free(ids);
    EXPECT(tok, "", LG_ENCODE_ADD_SPECIAL, 1);

    const int32_t d1[] = {1, 10, 15};
    expect_decode(tok, d1, 3, 0, "<s> ab c");
    expect_decode(tok, d1, 3, LG_DECODE_SKIP_SPECIAL, "ab c");
    const int32_t d2[] = {5, 3, 4, 17, 19, 5, 8}; /* ids 17, 19: no token, left out */
    expect_decode(tok, d2, 7, 0, "\xC3\xA9 c");
    const int32_t d3[] = {3, 6}; /* a cut-off byte run: U+FFFD per byte */
    expect_decode(tok, d3, 2, 0,
                  "\xEF\xBF\xBD"
                  "a");
    const int32_t bad[] = {6, -1};
    char *text;
    assert_int_equal(lg_tokenizer_decode(tok, bad, 2, 0, &text, NULL), LG_E_ARG);
    assert_non_null(strstr(lg_tokenizer_errmsg(tok), "negative id"));

    /* invalid UTF-8 input is refused with its offset */
    assert_int_equal(lg_tokenizer_encode(tok, "ab\xC3(", 4, &ids, &n), LG_E_ARG);
    assert_non_null(strstr(lg_tokenizer_errmsg(tok), "byte 2"));

    /* lookups */
    assert_int_equal(lg_tokenizer_vocab_size(tok), 21);
    assert_int_equal(lg_tokenizer_token_id(tok, "<x>"), 20);
    assert_int_equal(lg_tokenizer_token_id(tok, "\xE2\x96\x81"
                                                "ab"),
                     10);
    assert_int_equal(lg_tokenizer_token_id(tok, "zz"), -1);
    size_t len;
    const uint8_t *b = lg_tokenizer_token_bytes(tok, 10, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(b, " ab", 3);
    b = lg_tokenizer_token_bytes(tok, 3, &len);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], 0xC3);
    assert_null(lg_tokenizer_token_bytes(tok, 18, &len));
    assert_null(lg_tokenizer_token_bytes(tok, 21, &len));
    assert_null(lg_tokenizer_token_bytes(tok, -1, &len));
    assert_string_equal(lg_tokenizer_token_str(tok, 20), "<x>");
    assert_int_equal(lg_tokenizer_is_special(tok, 1), 1);
    assert_int_equal(lg_tokenizer_is_special(tok, 20), 0);
    assert_int_equal(lg_tokenizer_is_special(tok, 10), 0);
    const int32_t *pre;
    assert_int_equal(lg_tokenizer_special_prefix(tok, &pre), 1);
    assert_int_equal(pre[0], 1);
    assert_int_equal(lg_tokenizer_special_suffix(tok, &pre), 0);
    assert_null(pre);
    lg_tokenizer_free(tok);
}

static void test_unk_variants(void **state) {
    (void)state;
    json_t *j = base();
    json_object_set_new(model_of(j), "fuse_unk", json_false());
    lg_tokenizer *tok = open_ok(j);
    EXPECT(tok, "xy", 0, 5, 0, 0);
    lg_tokenizer_free(tok);
    j = base();
    json_object_set_new(model_of(j), "unk_token", json_null());
    tok = open_ok(j);
    EXPECT(tok, "xay", 0, 5, 6); /* without unk_token, unknown characters are dropped */
    lg_tokenizer_free(tok);
    j = base();
    json_object_set_new(model_of(j), "unk_token", json_string("<nope>"));
    tok = open_ok(j);
    EXPECT(tok, "ab", 0, 10);
    int32_t *ids;
    size_t n;
    assert_int_equal(lg_tokenizer_encode(tok, "x", 1, &ids, &n), LG_E_FORMAT);
    assert_non_null(strstr(lg_tokenizer_errmsg(tok), "unk_token"));
    lg_tokenizer_free(tok);
}

static json_t *added(int id, const char *content, bool special, bool normalized, bool lstrip,
                     bool rstrip) {
    return json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", id, "content", content, "single_word",
                     0, "lstrip", lstrip, "rstrip", rstrip, "normalized", normalized, "special",
                     special);
}

static void test_added_token_options(void **state) {
    (void)state;
    json_t *j = base();
    json_t *arr = json_object_get(j, "added_tokens");
    json_array_set_new(arr, 2, added(20, "<x>", false, false, true, true));
    lg_tokenizer *tok = open_ok(j);
    EXPECT(tok, "a <x> b", 0, 5, 6, 20, 5, 7); /* the spaces around are absorbed */
    EXPECT(tok, "a \t<x>", 0, 5, 6, 20);
    lg_tokenizer_free(tok);

    /* a normalized added token is matched in normalized text ("c" -> "▁c") */
    j = base();
    json_array_append_new(json_object_get(j, "added_tokens"),
                          added(21, "c", false, true, false, false));
    tok = open_ok(j);
    EXPECT(tok, "ab c", 0, 10, 21);
    lg_tokenizer_free(tok);

    /* leftmost-longest matching among overlapping added tokens */
    j = base();
    arr = json_object_get(j, "added_tokens");
    json_array_append_new(arr, added(22, "<x><x>", true, false, false, false));
    json_array_append_new(arr, added(23, "x>", true, false, false, false));
    tok = open_ok(j);
    EXPECT(tok, "<x><x><x>", 0, 22, 20);
    /* HF finds "<x><x>" first, then leaves it as text: "▁<x><x>" -> ▁ + one fused unk */
    EXPECT(tok, "<x><x><x>", LG_ENCODE_SPLIT_SPECIAL, 5, 0, 20);
    lg_tokenizer_free(tok);
}

/* ---- pre-tokenizers ---- */

static json_t *plain_with_pre(json_t *pre) {
    json_t *j = base();
    json_object_set_new(j, "normalizer", json_null());
    json_object_set_new(j, "pre_tokenizer", pre);
    return j;
}

static json_t *split(const char *kind, const char *pattern, const char *behavior, bool invert) {
    return json_pack("{s:s,s:{s:s},s:s,s:b}", "type", "Split", "pattern", kind, pattern, "behavior",
                     behavior, "invert", invert);
}

static void test_split_behaviors(void **state) {
    (void)state;
    lg_tokenizer *tok = open_ok(plain_with_pre(split("String", "-", "Isolated", false)));
    EXPECT(tok, "a-b", 0, 6, 11, 7);
    EXPECT(tok, "a--b", 0, 6, 11, 11, 7);
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(split("String", "-", "Removed", false)));
    EXPECT(tok, "a-b", 0, 6, 7);
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(split("String", "-", "Removed", true)));
    EXPECT(tok, "a-b", 0, 11);
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(split("String", "-", "MergedWithPrevious", false)));
    EXPECT(tok, "a-b", 0, 12, 7);
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(split("String", "-", "MergedWithNext", false)));
    EXPECT(tok, "a-b", 0, 6, 13);
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(split("String", "-", "Contiguous", false)));
    EXPECT(tok, "a--b", 0, 6, 14, 7);
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(split("Regex", "-+", "Isolated", false)));
    EXPECT(tok, "a--b-ab", 0, 6, 14, 7, 11, 9);
    lg_tokenizer_free(tok);
    /* the model merges across pieces only without a pre-tokenizer */
    tok = open_ok(plain_with_pre(json_null()));
    EXPECT(tok, "a-b", 0, 12, 7);
    lg_tokenizer_free(tok);
}

static json_t *metaspace(const char *scheme, bool do_split) {
    return json_pack("{s:s,s:s,s:s,s:b}", "type", "Metaspace", "replacement", "\xE2\x96\x81",
                     "prepend_scheme", scheme, "split", do_split);
}

static void test_metaspace(void **state) {
    (void)state;
    json_t *j = plain_with_pre(metaspace("first", true));
    json_object_set_new(j, "decoder", metaspace("always", true));
    lg_tokenizer *tok = open_ok(j);
    EXPECT(tok, "ab c", 0, 10, 15);
    EXPECT(tok, " ab", 0, 10);     /* already starts with ▁ after replacing: no second one */
    EXPECT(tok, "<s>ab", 0, 1, 9); /* "first": only at the start of the text */
    const int32_t d[] = {10, 15};
    expect_decode(tok, d, 2, 0, "ab c"); /* the decoder drops the first token's space */
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(metaspace("always", true)));
    EXPECT(tok, "<s>ab", 0, 1, 10);
    lg_tokenizer_free(tok);
    tok = open_ok(plain_with_pre(metaspace("never", false)));
    EXPECT(tok, "ab c", 0, 9, 15);
    lg_tokenizer_free(tok);
}

static void test_ignore_merges(void **state) {
    (void)state;
    lg_tokenizer *tok = open_ok(plain_with_pre(json_null()));
    EXPECT(tok, "abc", 0, 9, 8);
    lg_tokenizer_free(tok);
    json_t *j = plain_with_pre(json_null());
    json_object_set_new(model_of(j), "ignore_merges", json_true());
    tok = open_ok(j);
    EXPECT(tok, "abc", 0, 16);
    lg_tokenizer_free(tok);
}

/* A byte-level tokenizer: the 256 GPT-2 byte characters, "Ġa" and "Ġ" + "a" merged. */
static json_t *byte_level_tree(bool add_prefix_space) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        uint8_t s[8];
        size_t n = lg_utf8_encode(utf8_bytelevel_char((uint8_t)b), s);
        s[n] = '\0';
        json_object_set_new(vocab, (const char *)s, json_integer(b));
    }
    json_object_set_new(vocab,
                        "\xC4\xA0"
                        "a",
                        json_integer(256));
    json_t *bl = json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space",
                           add_prefix_space, "trim_offsets", 1, "use_regex", 1);
    return json_pack("{s:n,s:n,s:[],s:n,s:o,s:n,s:{s:s},s:{s:s,s:o,s:[s]}}", "truncation",
                     "padding", "added_tokens", "normalizer", "pre_tokenizer", bl, "post_processor",
                     "decoder", "type", "ByteLevel", "model", "type", "BPE", "vocab", vocab,
                     "merges", "\xC4\xA0 a");
}

static void test_byte_level_gpt2(void **state) {
    (void)state;
    lg_tokenizer *tok = open_ok(byte_level_tree(true));
    EXPECT(tok, "a a", 0, 256, 256);
    EXPECT(tok, "a\n", 0, 256, 10);
    size_t len;
    const uint8_t *b = lg_tokenizer_token_bytes(tok, 256, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(b, " a", 2);
    b = lg_tokenizer_token_bytes(tok, 0, &len);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], 0);
    const int32_t d[] = {256, 256, 0xE2, 0x82};
    expect_decode(tok, d, 4, 0, " a a\xEF\xBF\xBD"); /* lossy: one U+FFFD for the cut-off € */
    lg_tokenizer_free(tok);
    tok = open_ok(byte_level_tree(false));
    EXPECT(tok, "a a", 0, 'a', 256);
    lg_tokenizer_free(tok);
}

/* The exact word split of SentencePiece-style input gives the ids of the unsplit merge loop. */
static void test_word_split_equivalence(void **state) {
    (void)state;
    char *dir = tu_fixture("llava-1.5-tiny");
    lg_tokenizer *tok;
    lg_error e;
    if (lg_tokenizer_open(dir, &tok, &e)) fail_msg("%s", e.msg);
    free(dir);
    assert_true(tok->bpe.word_split);
    size_t n;
    char *text = (char *)tu_read_fixture("reference/prompt_text.txt", &n);
    const char extra[] =
        "  spaces   and\ttabs \xE2\x96\x81\xE2\x96\x81 literal, x\xC3\xA9 \xF0\x9F\x98\x80!";
    text = realloc(text, n + sizeof extra);
    memcpy(text + n, extra, sizeof extra);
    n += sizeof extra - 1;
    int32_t *a, *b;
    size_t na, nb;
    assert_int_equal(lg_tokenizer_encode(tok, text, n, &a, &na), LG_OK);
    tok->bpe.word_split = false;
    bpe_cache_free(&tok->cache); /* start from an empty word cache */
    assert_int_equal(lg_tokenizer_encode(tok, text, n, &b, &nb), LG_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    lg_free(a);
    lg_free(b);
    free(text);
    lg_tokenizer_free(tok);
}

/* ---- errors ---- */

static void expect_error(json_t *root, lg_status want, const char *needle) {
    lg_tokenizer *tok = NULL;
    lg_error e;
    lg_status st = open_tree(root, &tok, &e);
    if (st != want || !strstr(e.msg, needle))
        fail_msg("want status %d with \"%s\", got %d: %s", want, needle, st, e.msg);
    assert_null(tok);
    assert_non_null(strstr(e.msg, "test.json")); /* messages name the file */
}

static void test_malformed_files(void **state) {
    (void)state;
    lg_tokenizer *tok = NULL;
    lg_error e;
    assert_int_equal(lg_tokenizer_open_memory("{\"model\": ", 10, "x.json", &tok, &e), LG_E_FORMAT);
    assert_non_null(strstr(e.msg, "invalid JSON"));
    assert_int_equal(lg_tokenizer_open("/nonexistent/dir/tokenizer.json", &tok, &e), LG_E_IO);
    char *dir = tu_tmpdir();
    assert_int_equal(lg_tokenizer_open(dir, &tok, &e), LG_E_IO); /* folder without the file */
    assert_null(tok);
    free(dir);

    json_t *j = base();
    json_object_del(j, "model");
    expect_error(j, LG_E_FORMAT, "model: missing");
    expect_error(json_loads("[1]", 0, NULL), LG_E_FORMAT, "expected a JSON object");

    j = base();
    json_array_append_new(json_object_get(model_of(j), "merges"), json_string("a zz"));
    expect_error(j, LG_E_FORMAT, "model.merges[6]: token \"zz\" is not in model.vocab");
    j = base();
    json_array_append_new(json_object_get(model_of(j), "merges"), json_string("b c"));
    expect_error(j, LG_E_FORMAT, "token \"bc\" is not in model.vocab");
    j = base();
    json_array_set_new(json_object_get(model_of(j), "merges"), 0, json_string("abc"));
    expect_error(j, LG_E_FORMAT, "model.merges[0]: expected two tokens");
    j = base();
    json_object_set_new(json_object_get(model_of(j), "vocab"), "zz", json_integer(6));
    expect_error(j, LG_E_FORMAT, "id 6 is given to two tokens");
    j = base();
    json_object_set_new(json_object_get(model_of(j), "vocab"), "zz", json_string("6"));
    expect_error(j, LG_E_FORMAT, "model.vocab[\"zz\"]");
    j = base();
    json_object_del(model_of(j), "vocab");
    expect_error(j, LG_E_FORMAT, "model.vocab: expected an object");
    j = base();
    json_object_set_new(json_array_get(json_object_get(j, "added_tokens"), 1), "content",
                        json_integer(3));
    expect_error(j, LG_E_FORMAT, "added_tokens[1].content: expected a string");
}

static void test_unsupported_files(void **state) {
    (void)state;
    json_t *j = base();
    json_object_set_new(j, "normalizer", json_pack("{s:s}", "type", "Lowercase"));
    expect_error(j, LG_E_UNSUPPORTED, "normalizer.type: normalizer \"Lowercase\"");
    j = base();
    json_object_set_new(j, "normalizer",
                        json_pack("{s:s,s:[{s:s},{s:s}]}", "type", "Sequence", "normalizers",
                                  "type", "NFC", "type", "BertNormalizer"));
    expect_error(j, LG_E_UNSUPPORTED, "normalizer.normalizers[1].type");
    j = base();
    json_object_set_new(model_of(j), "type", json_string("Unigram"));
    expect_error(j, LG_E_UNSUPPORTED, "model.type: \"Unigram\"");
    j = base();
    json_object_set_new(model_of(j), "foo", json_integer(1));
    expect_error(j, LG_E_UNSUPPORTED, "model.foo: unsupported field");
    j = base();
    json_object_set_new(j, "extra", json_true());
    expect_error(j, LG_E_UNSUPPORTED, "tokenizer.extra: unsupported field");
    j = base();
    json_object_set_new(j, "truncation", json_pack("{s:i}", "max_length", 8));
    expect_error(j, LG_E_UNSUPPORTED, "truncation");
    j = base();
    json_object_set_new(model_of(j), "dropout", json_real(0.1));
    expect_error(j, LG_E_UNSUPPORTED, "model.dropout");
    j = base();
    json_object_set_new(model_of(j), "continuing_subword_prefix", json_string("##"));
    expect_error(j, LG_E_UNSUPPORTED, "model.continuing_subword_prefix");
    expect_error(plain_with_pre(json_pack("{s:s}", "type", "Whitespace")), LG_E_UNSUPPORTED,
                 "pre_tokenizer.type: pre-tokenizer \"Whitespace\"");
    expect_error(plain_with_pre(split("Regex", "(a", "Isolated", false)), LG_E_UNSUPPORTED,
                 "pre_tokenizer.pattern.Regex: regex not supported by PCRE2");
    expect_error(plain_with_pre(split("String", "-", "Sideways", false)), LG_E_UNSUPPORTED,
                 "pre_tokenizer.behavior");
    j = base();
    json_object_set_new(j, "decoder", json_pack("{s:s}", "type", "WordPiece"));
    expect_error(j, LG_E_UNSUPPORTED, "decoder.type: decoder \"WordPiece\"");
    j = base();
    json_object_set_new(j, "decoder", json_null());
    expect_error(j, LG_E_UNSUPPORTED, "decoder");
    j = base();
    json_object_set_new(j, "decoder",
                        json_pack("{s:s,s:[{s:s,s:s,s:i,s:i}]}", "type", "Sequence", "decoders",
                                  "type", "Strip", "content", " ", "start", 1, "stop", 0));
    expect_error(j, LG_E_UNSUPPORTED, "decoder.decoders[0]: decoder \"Strip\" in this position");
    j = base();
    json_object_set_new(json_array_get(json_object_get(j, "added_tokens"), 2), "single_word",
                        json_true());
    expect_error(j, LG_E_UNSUPPORTED, "added_tokens[2].single_word");
    j = base();
    json_object_set_new(j, "post_processor", json_pack("{s:s}", "type", "RobertaProcessing"));
    expect_error(j, LG_E_UNSUPPORTED, "post_processor.type: post-processor \"RobertaProcessing\"");
    /* a ByteLevel pre-tokenizer needs a token for each of the 256 bytes */
    j = base();
    json_object_set_new(
        j, "pre_tokenizer",
        json_pack("{s:s,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "use_regex", 0));
    expect_error(j, LG_E_FORMAT, "no token for byte 0x00");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentencepiece_basics),
        cmocka_unit_test(test_unk_variants),
        cmocka_unit_test(test_added_token_options),
        cmocka_unit_test(test_split_behaviors),
        cmocka_unit_test(test_metaspace),
        cmocka_unit_test(test_ignore_merges),
        cmocka_unit_test(test_byte_level_gpt2),
        cmocka_unit_test(test_word_split_equivalence),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_unsupported_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
