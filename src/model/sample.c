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

typedef struct smp_cand {
    float score;
    int32_t id;
} cand;

/* True when x sorts before y: descending score, then ascending id (ids are unique, so this is
 * a strict total order and equal scores order deterministically). */
static inline bool before(const cand *x, const cand *y) {
    return x->score != y->score ? x->score > y->score : x->id < y->id;
}

static int cmp_desc(const void *a, const void *b) {
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

static inline void swap_cand(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Rearranges c[0..n) so that c[t] is what a full sort would put there, with everything that
 * sorts before it in c[0..t) (Hoare's selection, median-of-three pivot; expected O(n)). Why
 * not qsort: sorting 152K logits per token took ~15 ms, half a 0.5B decode step, to find the
 * top 50. */
static void select_nth(cand *c, int64_t n, int64_t t) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (before(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
        if (before(&c[hi], &c[lo])) swap_cand(&c[hi], &c[lo]);
        if (before(&c[hi], &c[mid])) swap_cand(&c[hi], &c[mid]);
        cand piv = c[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (before(&c[i], &piv)) i++;
            while (before(&piv, &c[j])) j--;
            if (i <= j) swap_cand(&c[i++], &c[j--]);
        }
        if (t <= j)
            hi = j;
        else if (t >= i)
            lo = i;
        else
            return;
    }
}

/* Top-k with ties: moves the k best (and every score equal to the k-th) to the front; returns
 * how many that is. */
static int64_t keep_top_k(cand *c, int64_t n, int64_t k) {
    select_nth(c, n, k - 1);
    float kth = c[k - 1].score;
    int64_t keep = k;
    for (int64_t i = k; i < n; i++)
        if (c[i].score == kth) swap_cand(&c[keep++], &c[i]);
    return keep;
}

/* Before top-p: candidates whose probability is below cut / n can never survive it (every
 * token sorted at or after one of them has at most its probability, so their combined tail
 * mass is below cut), so they are moved behind the rest unsorted. e[i] is exp(score - max) of
 * c[i] and moves with it. Returns the count kept in front; *tail gets the dropped mass
 * (relative to `total`, the sum of e). */
static int64_t drop_unlikely(cand *c, double *e, int64_t n, double total, double cut,
                             double *tail) {
    double thresh = cut * total / (double)n, dropped = 0;
    int64_t keep = 0;
    for (int64_t i = 0; i < n; i++) {
        if (e[i] >= thresh) {
            swap_cand(&c[keep], &c[i]);
            double t = e[keep];
            e[keep++] = e[i], e[i] = t;
        } else {
            dropped += e[i];
        }
    }
    *tail = dropped / total;
    return keep > 0 ? keep : 1;
}

static lg_status reserve(smp_work *w, size_t n) {
    if (n <= w->cap) return LG_OK;
    cand *c = lg_realloc(w->cand, n * sizeof *c);
    if (!c) return LG_E_NOMEM;
    w->cand = c;
    double *p = lg_realloc(w->prob, n * sizeof *p);
    if (!p) return LG_E_NOMEM;
    w->prob = p;
    w->cap = n;
    return LG_OK;
}

void smp_work_free(smp_work *w) {
    if (!w) return;
    lg_free(w->cand);
    lg_free(w->prob);
    *w = (smp_work){0};
}

lg_sampler_params lg_sampler_params_default(void) {
    return (lg_sampler_params){
        .greedy = 1, .temperature = 1.0f, .top_k = 50, .top_p = 1.0f, .seed = 0};
}

/* The draw itself, over c[0..n) with work memory w (n <= w->cap). */
static int32_t draw(const lg_sampler_params *p, uint64_t *rng_state, smp_work *w, int64_t n) {
    cand *c = w->cand;
    int64_t keep = n;
    if (p->top_k > 0 && p->top_k < n) keep = keep_top_k(c, n, p->top_k);
    float mx = c[0].score;
    for (int64_t i = 1; i < keep; i++) mx = c[i].score > mx ? c[i].score : mx;
    if (!isfinite(mx)) { /* nothing finite to weigh: the first best, deterministically */
        select_nth(c, keep, 0);
        return c[0].id;
    }
    double *prob = w->prob, tail = 0, total = 0, sum = 0, cut = 1.0 - (double)p->top_p;
    if (p->top_p < 1) { /* each candidate's exp once here; again below only for the survivors */
        for (int64_t i = 0; i < keep; i++) total += prob[i] = exp((double)c[i].score - mx);
        keep = drop_unlikely(c, prob, keep, total, cut, &tail);
    }
    qsort(c, (size_t)keep, sizeof *c, cmp_desc);
    for (int64_t i = 0; i < keep; i++) sum += prob[i] = exp((double)c[i].score - mx);
    /* with top-p the mass drop_unlikely set aside still counts in the walk below */
    double all = p->top_p < 1 ? total : sum;
    for (int64_t i = 0; i < keep; i++) prob[i] /= all;
    if (p->top_p < 1) {
        /* Walk from the least likely: drop while the cumulative mass stays <= 1 - top_p. */
        double cum = tail;
        int64_t k = keep;
        for (int64_t i = keep - 1; i >= 1; i--) {
            cum += prob[i];
            if (cum > cut) break;
            k = i;
        }
        keep = k;
    }
    sum = 0;
    for (int64_t i = 0; i < keep; i++) sum += prob[i];
    double u = (double)(smp_next(rng_state) >> 11) * (1.0 / 9007199254740992.0) * sum;
    double acc = 0;
    for (int64_t i = 0; i < keep; i++) {
        acc += prob[i];
        if (u < acc) return c[i].id;
    }
    return c[keep - 1].id;
}

lg_status smp_sample(const float *logits, int64_t n, const lg_sampler_params *p,
                     uint64_t *rng_state, smp_work *w, int32_t *id, lg_error *err) {
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
    smp_work local = {0};
    smp_work *ws = w ? w : &local;
    if (reserve(ws, (size_t)n) != LG_OK) {
        smp_work_free(&local);
        return lg_err_set(err, LG_E_NOMEM, "out of memory sampling");
    }
    for (int64_t i = 0; i < n; i++) {
        float s = logits[i] / p->temperature;
        ws->cand[i] = (cand){isnan(s) ? -INFINITY : s, (int32_t)i};
    }
    *id = draw(p, rng_state, ws, n);
    smp_work_free(&local);
    return LG_OK;
}

lg_status lg_sample(const float *logits, int64_t n, const lg_sampler_params *p, uint64_t *rng_state,
                    int32_t *id, lg_error *err) {
    return smp_sample(logits, n, p, rng_state, NULL, id, err);
}
