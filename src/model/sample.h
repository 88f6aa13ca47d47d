/*
 * sample.h — choosing the next token from logits (sample.c), shared by the session's generation
 * loop and the verdict decoder (src/decode), which keep an smp_work across their token loops.
 */
#ifndef LG_SAMPLE_H
#define LG_SAMPLE_H

#include "core/core.h"

#include <stdint.h>

/* One step of splitmix64: the sampler's random source (seeded, reproducible, no global state). */
uint64_t smp_next(uint64_t *state);
/* Index of the largest value (the first one on ties, as torch.argmax). */
int64_t smp_argmax(const float *x, int64_t n);

/* Reusable memory for sampling: a generation keeps one so that its token loop allocates
 * nothing after the first draw. Zero-initialise; smp_work_free releases it. */
typedef struct smp_work {
    struct smp_cand *cand;
    double *prob;
    size_t cap;
} smp_work;

/* lg_sample with caller-kept memory (w may be NULL: allocated and freed per call). */
lg_status smp_sample(const float *logits, int64_t n, const lg_sampler_params *p,
                     uint64_t *rng_state, smp_work *w, int32_t *id, lg_error *err);
void smp_work_free(smp_work *w);

#endif /* LG_SAMPLE_H */
