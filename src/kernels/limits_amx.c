/*
 * limits_amx.c — the instruction-level ceiling of the AMX unit for the benchmarks: a
 * register-only loop of tdpbf16ps over four accumulator tiles (each 16x16x32 x2 = 16384 flop),
 * A and B tiles loaded once, on every thread. Returns 0 without AMX.
 */
#include "kern_impl.h"

#include <immintrin.h>
#include <time.h>

#define ITERS 1000000

typedef struct tilecfg {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) tilecfg;

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each thread times its own loop; the limit is the sum of the threads' rates. */
static void amx_task(void *arg, int ith, int nth) {
    (void)nth;
    double *secs = arg;
    volatile tilecfg cfg;
    volatile uint8_t *bytes = (volatile uint8_t *)&cfg;
    for (int i = 0; i < 64; i++) bytes[i] = 0;
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig((const void *)&cfg);
    uint16_t src[16 * 32] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++) src[i] = 0x3f80; /* 1.0 */
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    double t0 = seconds();
    for (int it = 0; it < ITERS; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float out[16 * 16] __attribute__((aligned(64)));
    _tile_stored(0, out, 64);
    secs[ith] = seconds() - t0;
    __asm__ volatile("" : : "r"(out) : "memory");
    _tile_release();
}

double kern_peak_amx_gflops(kern_ctx *kc) {
    if (!kern_cpu_get()->amx) return 0.0;
    double best = 0.0;
    int nth = kern_ctx_threads(kc);
    double secs[KERN_MAX_THREADS];
    for (int pass = 0; pass < 5; pass++) {
        kern_pool_run(kern_ctx_pool(kc), amx_task, secs);
        double g = 0.0;
        for (int t = 0; t < nth; t++) g += ITERS * 4 * 16384.0 / secs[t] / 1e9;
        if (g > best) best = g;
    }
    return best;
}
