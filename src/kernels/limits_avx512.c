/*
 * limits_avx512.c — the instruction-level ceilings of the AVX-512 units, for the benchmarks:
 * register-only loops of vfmadd (f32) and vdpbf16ps (bf16 pairs) with enough independent
 * accumulators to cover the latency, on every thread of the context. The figure is the
 * hardware's, not our kernels'. Returns 0 where the CPU lacks the instructions.
 */
#include "kern_impl.h"

#include <immintrin.h>
#include <time.h>

#define ITERS 4000000

typedef struct peak_job {
    int kind; /* 0 = fma, 1 = dpbf16 */
    float sink[KERN_MAX_THREADS];
    double secs[KERN_MAX_THREADS]; /* each thread times its own loop (no wake-up latency) */
} peak_job;

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 6 broadcast rows x 4 vectors = 24 independent accumulators, operands from a 1 KiB buffer that
 * stays in L1: the shape of a GEMM register tile. (A loop that only feeds accumulators back
 * into themselves with constant operands measured 3x slower on the AMD Zen 4 guest here, far
 * below what our own GEMM reaches, so it is not the ceiling.) */
static void peak_task(void *arg, int ith, int nth) {
    (void)nth;
    peak_job *j = arg;
    float buf[256] __attribute__((aligned(64)));
    for (int i = 0; i < 256; i++) buf[i] = 1e-4f * (float)(i % 17);
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_setzero_ps();
    double t0 = seconds();
    for (int it = 0; it < ITERS; it++) {
        const float *a = buf + (it & 3) * 16;
        __m512 b0 = _mm512_load_ps(a), b1 = _mm512_load_ps(a + 64);
        __m512 b2 = _mm512_load_ps(a + 128), b3 = _mm512_load_ps(a + 192);
        if (j->kind == 0) {
#pragma GCC unroll 6
            for (int r = 0; r < 6; r++) {
                __m512 av = _mm512_set1_ps(a[r + 1]);
                acc[r * 4] = _mm512_fmadd_ps(av, b0, acc[r * 4]);
                acc[r * 4 + 1] = _mm512_fmadd_ps(av, b1, acc[r * 4 + 1]);
                acc[r * 4 + 2] = _mm512_fmadd_ps(av, b2, acc[r * 4 + 2]);
                acc[r * 4 + 3] = _mm512_fmadd_ps(av, b3, acc[r * 4 + 3]);
            }
        } else {
#pragma GCC unroll 6
            for (int r = 0; r < 6; r++) {
                int32_t pair;
                memcpy(&pair, a + r + 1, 4);
                __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
                acc[r * 4] = _mm512_dpbf16_ps(acc[r * 4], av, (__m512bh)b0);
                acc[r * 4 + 1] = _mm512_dpbf16_ps(acc[r * 4 + 1], av, (__m512bh)b1);
                acc[r * 4 + 2] = _mm512_dpbf16_ps(acc[r * 4 + 2], av, (__m512bh)b2);
                acc[r * 4 + 3] = _mm512_dpbf16_ps(acc[r * 4 + 3], av, (__m512bh)b3);
            }
        }
    }
    j->secs[ith] = seconds() - t0;
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
    j->sink[ith] = _mm512_reduce_add_ps(s);
}

static double run_peak(kern_ctx *kc, int kind) {
    peak_job j = {.kind = kind};
    double best = 0.0, flop_per_insn = kind == 0 ? 32.0 : 64.0;
    int nth = kern_ctx_threads(kc);
    /* The sum of every thread's own rate: right whether the threads overlap on their own
     * cores or are time-sliced on fewer; best of a few passes (the machine is shared). */
    for (int pass = 0; pass < 5; pass++) {
        kern_pool_run(kern_ctx_pool(kc), peak_task, &j);
        double g = 0.0;
        for (int t = 0; t < nth; t++) g += ITERS * 24 * flop_per_insn / j.secs[t] / 1e9;
        if (g > best) best = g;
    }
    return best;
}

double kern_peak_fma_gflops(kern_ctx *kc) {
    return kern_cpu_get()->avx512 ? run_peak(kc, 0) : 0.0;
}

double kern_peak_dpbf16_gflops(kern_ctx *kc) {
    return kern_cpu_get()->avx512bf16 ? run_peak(kc, 1) : 0.0;
}
