/*
 * fuzz_tokenizer_json.c — loading tokenizer.json from arbitrary bytes (models, pre-tokenizer
 * regexes compiled by PCRE2, normalisers, added tokens, decoders); a loaded tokenizer then
 * encodes and decodes a fixed sample.
 */
#include "llavaguard.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lg_tokenizer *tok = NULL;
    if (lg_tokenizer_open_memory(data, size, "fuzz.json", &tok, NULL) != LG_OK) return 0;
    static const char sample[] = "Hello, world! <image>\n  Ünïcödé 123 \xe2\x96\x81x";
    int32_t *ids = NULL;
    size_t n = 0;
    if (lg_tokenizer_encode(tok, sample, sizeof sample - 1, &ids, &n) == LG_OK) {
        char *text = NULL;
        if (lg_tokenizer_decode(tok, ids, n, 0, &text, NULL) == LG_OK) lg_free(text);
        lg_free(ids);
    }
    int32_t some[] = {0, 1, 2, 3, 100, 1000, lg_tokenizer_vocab_size(tok) - 1};
    char *text = NULL;
    if (lg_tokenizer_decode(tok, some, sizeof some / sizeof some[0], 0, &text, NULL) == LG_OK)
        lg_free(text);
    lg_tokenizer_free(tok);
    return 0;
}
