/*
 * selftest.c — a start-up check of a kernel table against the reference before "auto" trusts it.
 * The AMX path is chosen first wherever the CPU has AMX, but it could only be tested through its
 * plain-C twin (amx-emu) on the machines it was written on; a wrong tile configuration or stride
 * on real hardware would give wrong verdicts silently. So, once per process, "auto" runs one
 * small product through the candidate table — bf16 weights packed by the table, a bias, odd
 * tails, enough rows for the tile path, both precisions — compares it with ref.c within the
 * tolerances tests/test_kernels.c uses, and falls back to the next table if it disagrees.
 * Costs well under a millisecond.
 */
#include "kern_impl.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>

enum { ST_M = 48, ST_IN = 100, ST_OUT = 40 }; /* m >= 32: the AMX block loop; tails everywhere */

static float next_value(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 40) / (double)(1u << 24) - 0.5);
}

/* Worst |got - want| / (eps * sum_k |x_k w_k| + 1e-6) over the outputs. */
static double worst_ratio(const float *got, const float *want, const float *x, const uint16_t *w,
                          double eps) {
    double worst = 0;
    for (int i = 0; i < ST_M; i++)
        for (int o = 0; o < ST_OUT; o++) {
            double absdot = 0;
            for (int k = 0; k < ST_IN; k++)
                absdot += fabs((double)x[i * ST_IN + k] * lg_bf16_to_f32(w[o * ST_IN + k]));
            double err = fabs((double)got[i * ST_OUT + o] - want[i * ST_OUT + o]);
            double r = isnan(err) ? INFINITY : err / (eps * absdot + 1e-6);
            worst = r > worst ? r : worst;
        }
    return worst;
}

bool kern_table_selftest(const lg_kernels *t) {
    kern_ctx *kc = kern_ctx_create_with(1, t), *kr = kern_ctx_create_with(1, kern_ref_table());
    float *x = malloc(sizeof(float) * (ST_M * ST_IN + ST_OUT + 2 * ST_M * ST_OUT));
    uint16_t *wd = malloc(sizeof(uint16_t) * ST_OUT * ST_IN);
    bool ok = kc && kr && x && wd;
    if (ok) {
        float *bias = x + ST_M * ST_IN, *got = bias + ST_OUT, *want = got + ST_M * ST_OUT;
        uint64_t s = 42;
        for (int i = 0; i < ST_M * ST_IN; i++) x[i] = next_value(&s);
        for (int i = 0; i < ST_OUT * ST_IN; i++) wd[i] = lg_f32_to_bf16(next_value(&s));
        for (int i = 0; i < ST_OUT; i++) bias[i] = next_value(&s);
        kern_weight w = {.dtype = LG_DT_BF16, .n_out = ST_OUT, .n_in = ST_IN, .data = wd};
        kern_prepare(kc, &w);
        kern_matmul(kr, want, x, &w, bias, ST_M);
        /* accurate keeps ~16 bits of each activation; bf16 rounds them (relative 2^-9) */
        static const double eps[2] = {4e-6, 1.0 / 256};
        for (int p = 0; p < 2 && ok; p++) {
            kern_ctx_set_precision(kc, (kern_precision)p);
            for (int i = 0; i < ST_M * ST_OUT; i++) got[i] = NAN;
            kern_matmul(kc, got, x, &w, bias, ST_M);
            ok = worst_ratio(got, want, x, wd, eps[p]) <= 1.0;
        }
        kern_weight_release(&w);
    }
    free(x);
    free(wd);
    kern_ctx_free(kc);
    kern_ctx_free(kr);
    return ok;
}
