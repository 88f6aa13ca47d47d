/*
 * bench_tokenizer.c — tokenizer throughput: opening tokenizer.json, then encoding a mixed corpus
 * (the LlavaGuard policy prompts + the 64 Qwen2 corpus strings, repeated to a few MB) with the
 * Qwen2 byte-level tokenizer and the Llama SentencePiece-style one, cold (fresh word cache) and
 * warm; prints MB/s. Usage: bench_tokenizer [fixtures_dir] [shared_dir] [repeats]
 */
#include "llavaguard.h"

#include "core/core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool append_file(lg_buf *b, const char *dir, const char *rel) {
    char *p = lg_path_join(dir, rel);
    uint8_t *data;
    size_t n;
    lg_error e;
    lg_status st = lg_read_file(p, (size_t)1 << 26, &data, &n, &e);
    lg_free(p);
    if (st) {
        fprintf(stderr, "bench_tokenizer: %s\n", e.msg);
        return false;
    }
    lg_buf_append(b, data, n);
    lg_buf_putc(b, '\n');
    lg_free(data);
    return true;
}

static bool build_corpus(lg_buf *b, const char *fixtures, const char *shared, int repeats) {
    lg_buf one;
    lg_buf_init(&one);
    if (!append_file(&one, fixtures, "reference/prompt_text.txt") ||
        !append_file(&one, shared, "reference/prompts/prompt_v1.0.txt"))
        return false;
    char *p = lg_path_join(fixtures, "tokenizer/qwen2_cases.json");
    json_error_t je;
    json_t *cases = json_load_file(p, JSON_ALLOW_NUL, &je);
    lg_free(p);
    if (!cases) {
        fprintf(stderr, "bench_tokenizer: qwen2_cases.json: %s\n", je.text);
        return false;
    }
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const json_t *t = json_object_get(c, "text");
        /* the special-token strings of the corpus mean other things to the Llama tokenizer */
        if (strchr(json_string_value(t), '<')) continue;
        lg_buf_append(&one, json_string_value(t), json_string_length(t));
        lg_buf_putc(&one, '\n');
    }
    json_decref(cases);
    for (int r = 0; r < repeats; r++) lg_buf_append(b, one.data, one.len);
    lg_buf_free(&one);
    return !b->failed;
}

static void bench_model(const char *fixtures, const char *model, const lg_buf *corpus) {
    char *dir = lg_path_join(fixtures, model);
    lg_tokenizer *tok;
    lg_error e;
    double t0 = now();
    if (lg_tokenizer_open(dir, &tok, &e)) {
        fprintf(stderr, "bench_tokenizer: %s\n", e.msg);
        lg_free(dir);
        return;
    }
    double t_open = now() - t0;
    lg_free(dir);
    double mb = (double)corpus->len / 1e6;
    for (int pass = 0; pass < 3; pass++) {
        int32_t *ids;
        size_t n;
        t0 = now();
        if (lg_tokenizer_encode(tok, corpus->data, corpus->len, &ids, &n)) {
            fprintf(stderr, "bench_tokenizer: %s\n", lg_tokenizer_errmsg(tok));
            break;
        }
        double t = now() - t0;
        char *text;
        double t1 = now();
        lg_status st = lg_tokenizer_decode(tok, ids, n, 0, &text, NULL);
        double td = now() - t1;
        printf("%-16s open %6.1f ms  encode %s %7.2f MB/s (%.2f MB -> %zu ids, %.1f ms)  "
               "decode %7.1f MB/s\n",
               model, 1e3 * t_open, pass == 0 ? "cold" : "warm", mb / t, mb, n, 1e3 * t,
               st ? 0.0 : mb / td);
        if (!st) lg_free(text);
        lg_free(ids);
    }
    lg_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    const char *fixtures = argc > 1 ? argv[1] : "../shared/fixtures";
    const char *shared = argc > 2 ? argv[2] : "../shared";
    int repeats = argc > 3 ? atoi(argv[3]) : 200;
    lg_buf corpus;
    lg_buf_init(&corpus);
    if (!build_corpus(&corpus, fixtures, shared, repeats)) return 1;
    printf("corpus: %.2f MB (policy prompts v1.0 + v1.2 and the Qwen2 corpus strings, x%d)\n",
           (double)corpus.len / 1e6, repeats);
    bench_model(fixtures, "llava-ov-tiny", &corpus);
    bench_model(fixtures, "llava-1.5-tiny", &corpus);
    lg_buf_free(&corpus);
    return 0;
}
