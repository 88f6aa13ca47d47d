/*
 * bench_verdict.c — what the verdict constraint costs next to the model: the time to compile a
 * policy's decoder schema (the per-token JSON automaton table), the per-token cost of the
 * constraint (one masked argmax over the logits), the sampler (LlavaGuard's reference settings
 * and top-p alone, next to the full sort of the vocabulary it used to do), and a decode step of
 * the model, in one run.
 *
 * Usage: bench_verdict [MODEL_DIR]   (default ../shared/fixtures/llava-ov-tiny)
 */
#include "decode/decode.h"
#include "model/sample.h"
#include "llavaguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static int cmp_cand(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static lg_status tok_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    return lg_tokenizer_encode(ctx, text, len, ids, n);
}

static const char *tok_bytes(void *ctx, int32_t id, size_t *len) {
    if (lg_tokenizer_is_special(ctx, id)) return NULL;
    return (const char *)lg_tokenizer_token_bytes(ctx, id, len);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "../shared/fixtures/llava-ov-tiny";
    lg_error e;
    lg_tokenizer *tok = NULL;
    lg_model *model = NULL;
    lg_session *s = NULL;
    lg_policy *pol = NULL;
    if (lg_tokenizer_open(dir, &tok, &e) != LG_OK ||
        lg_model_open(dir, NULL, &model, &e) != LG_OK ||
        lg_session_create(model, &s, &e) != LG_OK ||
        lg_policy_create_default("v1.2", &pol, &e) != LG_OK) {
        fprintf(stderr, "bench_verdict: %s\n", e.msg);
        return 1;
    }
    size_t n_vocab = (size_t)lg_model_n_vocab(model);
    vd_tok vt = {tok, (size_t)lg_tokenizer_vocab_size(tok), tok_encode, tok_bytes};
    size_t n_cat = lg_policy_n_categories(pol);
    const char *opts[65];
    for (size_t i = 0; i < n_cat; i++) opts[i] = lg_policy_category_option(pol, i);
    opts[n_cat] = lg_policy_na_option(pol);

    enum { REPS = 15 };
    double t[200];
    vd_schema schema;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        if (vd_schema_build(&schema, opts, (int)n_cat + 1, &vt, n_vocab, &e) != LG_OK) {
            fprintf(stderr, "bench_verdict: %s\n", e.msg);
            return 1;
        }
        t[r] = now_s() - t0;
        vd_schema_free(&schema);
    }
    double t_schema = median(t, 5);
    vd_schema_build(&schema, opts, (int)n_cat + 1, &vt, n_vocab, &e);

    float *logits = malloc(n_vocab * sizeof *logits);
    uint64_t x = 1;
    for (size_t i = 0; i < n_vocab; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)(x >> 40) / (float)(1 << 24);
    }
    volatile int32_t sink = 0;
    for (int r = 0; r < 200; r++) {
        double t0 = now_s();
        sink += fsm_best_allowed(&schema.fsm, r % FSM_N_LIVE, logits, n_vocab);
        t[r] = now_s() - t0;
    }
    double t_mask = median(t, 200);

    /* sampling, on LM-like logits (roughly normal, sd ~2.5) */
    float *peaked = malloc(n_vocab * sizeof *peaked);
    for (size_t i = 0; i < n_vocab; i++) {
        double u = 0;
        for (int k = 0; k < 4; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            u += (double)(x >> 40) / (double)(1 << 24) - 0.5;
        }
        peaked[i] = (float)(u * 4.3);
    }
    static const struct {
        const char *name;
        float t, top_p;
        int top_k;
    } smp_cfg[] = {{"sample T0.2 top-p 0.95 top-k 50", 0.2f, 0.95f, 50},
                   {"sample T0.2 top-p 0.95", 0.2f, 0.95f, 0},
                   {"sample T1 top-p 0.9", 1.0f, 0.9f, 0}};
    double t_smp[3];
    smp_work work = {0};
    uint64_t rng = 1;
    for (int c = 0; c < 3; c++) {
        lg_sampler_params sp = lg_sampler_params_default();
        sp.greedy = 0, sp.temperature = smp_cfg[c].t, sp.top_p = smp_cfg[c].top_p;
        sp.top_k = smp_cfg[c].top_k;
        for (int r = 0; r < 31; r++) {
            int32_t id;
            double t0 = now_s();
            smp_sample(peaked, (int64_t)n_vocab, &sp, &rng, &work, &id, NULL);
            t[r] = now_s() - t0;
            sink += id;
        }
        t_smp[c] = median(t, 31);
    }
    smp_work_free(&work);
    /* what each draw used to cost: sorting every candidate */
    typedef struct {
        float s;
        int32_t id;
    } cand;
    cand *all = malloc(n_vocab * sizeof *all);
    for (int r = 0; r < 9; r++) {
        for (size_t i = 0; i < n_vocab; i++) all[i] = (cand){peaked[i] / 0.2f, (int32_t)i};
        double t0 = now_s();
        qsort(all, n_vocab, sizeof *all, cmp_cand);
        t[r] = now_s() - t0;
    }
    double t_sort = median(t, 9);
    free(all);
    free(peaked);

    /* a decode step after a short prompt */
    int32_t prompt[64];
    for (int i = 0; i < 64; i++) prompt[i] = 100 + i;
    const float *lg = NULL;
    if (lg_session_eval(s, prompt, 64, NULL, 0, 0, &lg) != LG_OK) {
        fprintf(stderr, "bench_verdict: %s\n", lg_session_errmsg(s));
        return 1;
    }
    for (int r = 0; r < REPS; r++) {
        int32_t id = 200 + r;
        double t0 = now_s();
        lg_session_eval(s, &id, 1, NULL, 0, 0, &lg);
        t[r] = now_s() - t0;
    }
    double t_step = median(t, REPS);

    printf("model: %s (%zu logits per position)\n", dir, n_vocab);
    printf("%-36s %12s\n", "stage", "median");
    printf("%-36s %9.3f ms\n", "schema build (per policy)", t_schema * 1e3);
    printf("%-36s %9.3f ms\n", "constraint per token (masked argmax)", t_mask * 1e3);
    for (int c = 0; c < 3; c++) printf("%-36s %9.3f ms\n", smp_cfg[c].name, t_smp[c] * 1e3);
    printf("%-36s %9.3f ms\n", "(full sort of the vocabulary)", t_sort * 1e3);
    printf("%-36s %9.3f ms\n", "model decode step", t_step * 1e3);
    printf("constraint / decode step: %.2f%%\n", 100.0 * t_mask / t_step);
    (void)sink;
    free(logits);
    vd_schema_free(&schema);
    lg_policy_free(pol);
    lg_session_free(s);
    lg_model_free(model);
    lg_tokenizer_free(tok);
    return 0;
}
