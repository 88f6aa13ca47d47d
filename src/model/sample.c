/*
 * sample.c — choosing the next token from logits. Greedy is argmax (the first maximum, as
 * torch.argmax). Sampling applies the logits warpers of transformers' generate() in its order
 * — TemperatureLogitsWarper (scores / t), TopKLogitsWarper (drop scores below the k-th largest,
 * ties kept), TopPLogitsWarper (sort ascending, drop tokens whose cumulative probability is
 * <= 1 - top_p, keep at least one) — then draws from the softmax of what is left with a seeded
 * splitmix64 source. The draws cannot equal torch's RNG; a seed makes our runs reproducible.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>

uint64_t smp_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int64_t smp_argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct cand {
    float score;
    int32_t id;
} cand;

/* Descending by score, then ascending id, so equal scores order deterministically. */
static int cmp_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

lg_sampler_params lg_sampler_params_default(void) {
    return (lg_sampler_params){
        .greedy = 1, .temperature = 1.0f, .top_k = 50, .top_p = 1.0f, .seed = 0};
}

lg_status lg_sample(const float *logits, int64_t n, const lg_sampler_params *p, uint64_t *rng_state,
                    int32_t *id, lg_error *err) {
    if (!logits || n < 1 || n > INT32_MAX || !p || !id)
        return lg_err_set(err, LG_E_ARG, "lg_sample: bad arguments");
    if (p->greedy) {
        *id = (int32_t)smp_argmax(logits, n);
        return LG_OK;
    }
    if (!rng_state || !(p->temperature > 0) || !isfinite(p->temperature) || p->top_k < 0 ||
        !(p->top_p > 0 && p->top_p <= 1))
        return lg_err_set(err, LG_E_ARG,
                          "sampling needs temperature > 0, top_k >= 0, 0 < top_p <= 1 and a "
                          "random state");
    cand *c = lg_malloc((size_t)n * sizeof *c);
    if (!c) return lg_err_set(err, LG_E_NOMEM, "out of memory sampling");
    for (int64_t i = 0; i < n; i++) c[i] = (cand){logits[i] / p->temperature, (int32_t)i};
    qsort(c, (size_t)n, sizeof *c, cmp_desc);
    int64_t keep = n;
    if (p->top_k > 0 && p->top_k < n) {
        float kth = c[p->top_k - 1].score;
        keep = p->top_k;
        while (keep < n && c[keep].score >= kth) keep++; /* ties with the k-th stay */
    }
    double mx = c[0].score, sum = 0;
    double *prob = lg_malloc((size_t)keep * sizeof *prob);
    if (!prob) {
        lg_free(c);
        return lg_err_set(err, LG_E_NOMEM, "out of memory sampling");
    }
    for (int64_t i = 0; i < keep; i++) sum += prob[i] = exp((double)c[i].score - mx);
    for (int64_t i = 0; i < keep; i++) prob[i] /= sum;
    if (p->top_p < 1) {
        /* Walk from the least likely: drop while the cumulative mass stays <= 1 - top_p. */
        double cum = 0, cut = 1.0 - (double)p->top_p;
        int64_t k = keep;
        for (int64_t i = keep - 1; i >= 1; i--) {
            cum += prob[i];
            if (cum > cut) break;
            k = i;
        }
        keep = k;
        sum = 0;
        for (int64_t i = 0; i < keep; i++) sum += prob[i];
        for (int64_t i = 0; i < keep; i++) prob[i] /= sum;
    }
    double u = (double)(smp_next(rng_state) >> 11) * (1.0 / 9007199254740992.0);
    int64_t pick = keep - 1;
    double acc = 0;
    for (int64_t i = 0; i < keep; i++) {
        acc += prob[i];
        if (u < acc) {
            pick = i;
            break;
        }
    }
    *id = c[pick].id;
    lg_free(prob);
    lg_free(c);
    return LG_OK;
}
