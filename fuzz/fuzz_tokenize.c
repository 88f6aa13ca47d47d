/*
 * fuzz_tokenize.c — the fixture model's tokenizer (Qwen2 byte-level BPE, PCRE2 pre-tokenizer,
 * added tokens) on arbitrary bytes: encode them as text (invalid UTF-8 must be refused, not
 * crash), decode them as ids (4 bytes each; out-of-range ids included), and stream the ids through
 * the detokenizer. LG_FUZZ_TOKENIZER overrides the tokenizer.json.
 */
#include "llavaguard.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lg_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("LG_FUZZ_TOKENIZER");
    if (!path) path = LG_FIXTURES_DIR "/llava-ov-tiny/tokenizer.json";
    lg_error e;
    if (lg_tokenizer_open(path, &tok, &e) != LG_OK) {
        fprintf(stderr, "fuzz_tokenize: %s\n", e.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (lg_tokenizer_encode(tok, (const char *)data, size, &ids, &n) == LG_OK) lg_free(ids);
    size_t m = size / 4;
    int32_t *raw = malloc((m + 1) * sizeof *raw);
    int32_t vocab = lg_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < m; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        raw[i] =
            (v & 0x80000000u) ? (int32_t)(v & 0x7fffffff) : (int32_t)(v % (uint32_t)(vocab + 64));
    }
    char *text = NULL;
    if (lg_tokenizer_decode(tok, raw, m, size & 1, &text, NULL) == LG_OK) lg_free(text);
    lg_detokenizer *d = NULL;
    if (lg_detokenizer_create(tok, 0, &d, NULL) == LG_OK) {
        const char *t;
        size_t len;
        for (size_t i = 0; i < m; i++)
            if (lg_detokenizer_push(d, raw[i], &t, &len) != LG_OK) break;
        lg_detokenizer_finish(d, &t, &len);
        lg_detokenizer_free(d);
    }
    free(raw);
    return 0;
}
