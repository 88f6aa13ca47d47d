/*
 * limits.c — this machine's memory read bandwidth, measured in place for the benchmarks (the
 * bound a weight-streaming decode is judged against): every thread sums its slice of a buffer
 * larger than the caches with eight independent accumulators, so the loop itself is never the
 * bottleneck; best of a few passes. Plain C (the compiler vectorizes it for any target).
 */
#include "kern_impl.h"

#include "core/core.h"

#include <time.h>

typedef struct bw_job {
    const uint64_t *buf;
    size_t n; /* words */
    uint64_t sink[KERN_MAX_THREADS];
} bw_job;

static void bw_task(void *arg, int ith, int nth) {
    bw_job *j = arg;
    int64_t lo, hi;
    kern_split((int64_t)j->n / 8, ith, nth, &lo, &hi);
    uint64_t a[8] = {0};
    for (int64_t i = lo * 8; i < hi * 8; i += 8)
        for (int u = 0; u < 8; u++) a[u] += j->buf[i + u];
    j->sink[ith] = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double kern_read_bandwidth_gbps(kern_ctx *kc, size_t bytes) {
    if (bytes == 0) bytes = (size_t)1 << 30;
    bw_job j = {.n = bytes / 64 * 8};
    uint64_t *buf = lg_aligned_alloc(j.n * 8);
    if (!buf) return 0.0;
    for (size_t i = 0; i < j.n; i++) buf[i] = i; /* touch every page before timing */
    j.buf = buf;
    double best = 0.0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = seconds();
        kern_pool_run(kern_ctx_pool(kc), bw_task, &j);
        double gbps = (double)(j.n * 8) / (seconds() - t0) / 1e9;
        if (gbps > best) best = gbps;
    }
    lg_aligned_free(buf);
    return best;
}

/* ---- the public entry point (include/llavaguard.h, "machine limits") ---- */

lg_status lg_machine_limits_measure(int n_threads, lg_machine_limits *out, lg_error *err) {
    kern_ctx *kc = kern_ctx_create(n_threads, "auto");
    if (!kc) return lg_err_set(err, LG_E_NOMEM, "machine limits: cannot create the threads");
    lg_machine_limits r = {0};
    double amx = kern_peak_amx_gflops(kc), dp = kern_peak_dpbf16_gflops(kc);
    r.fma_gflops = kern_peak_fma_gflops(kc);
    r.gemm_gflops = amx > 0 ? amx : dp > 0 ? dp : r.fma_gflops;
    r.gemm_unit = amx > 0            ? "amx-bf16"
                  : dp > 0           ? "avx512-bf16"
                  : r.fma_gflops > 0 ? "avx512-fma"
                                     : "none";
    r.bandwidth_gbps = kern_read_bandwidth_gbps(kc, 0);
    r.n_threads = kern_ctx_threads(kc);
    r.cpu = kern_cpu_name();
    r.kernels = kern_ctx_table(kc)->name;
    r.kernels_note = kern_auto_note();
    kern_ctx_free(kc);
    if (r.bandwidth_gbps <= 0.0)
        return lg_err_set(err, LG_E_NOMEM, "machine limits: cannot allocate the bandwidth buffer");
    *out = r;
    return LG_OK;
}
