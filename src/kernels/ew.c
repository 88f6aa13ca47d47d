/*
 * ew.c — the context-dispatched element-wise and row-wise helpers (kern_op_*): in "ref" mode the
 * plain loops of ref.c (the --exact path, bit for bit), otherwise the AVX-512 versions of
 * ew_avx512.c (or ref.c's loops where the CPU has no AVX-512), split across the context's threads
 * when the tensor is large enough that a fork/join costs less than it saves.
 */
#include "kern_impl.h"

#include <string.h>

#define MIN_PARALLEL 32768 /* elements below which one thread does it all */

typedef struct ew_job {
    int op;
    float *y;
    const float *x, *g, *b, *other;
    int64_t rows, n;
    float eps;
    bool simd;
} ew_job;

static void unary_range(const ew_job *j, int64_t lo, int64_t hi) {
    float *x = j->y + lo;
    const float *o = j->other ? j->other + lo : NULL;
    int64_t n = hi - lo;
    if (j->simd) {
        kern_avx512_unary(j->op, x, o, n);
        return;
    }
    switch (j->op) {
    case KERN_EW_GELU_TANH:
        kern_gelu_tanh(x, n);
        break;
    case KERN_EW_GELU_ERF:
        kern_gelu_erf(x, n);
        break;
    case KERN_EW_QUICK_GELU:
        kern_quick_gelu(x, n);
        break;
    case KERN_EW_SILU_MUL:
        kern_silu_mul(x, o, n);
        break;
    default:
        kern_add(x, o, n);
        break;
    }
}

static void rows_range(const ew_job *j, int64_t r0, int64_t r1) {
    const float *x = j->x + r0 * j->n;
    float *y = j->y + r0 * j->n;
    if (j->op == KERN_EW_RMSNORM) {
        if (j->simd)
            kern_avx512_rmsnorm(y, x, j->g, r1 - r0, j->n, j->eps);
        else
            kern_rmsnorm(y, x, j->g, r1 - r0, j->n, j->eps);
    } else {
        if (j->simd)
            kern_avx512_layernorm(y, x, j->g, j->b, r1 - r0, j->n, j->eps);
        else
            kern_layernorm(y, x, j->g, j->b, r1 - r0, j->n, j->eps);
    }
}

static void ew_task(void *arg, int ith, int nth) {
    ew_job *j = arg;
    int64_t lo, hi;
    if (j->op == KERN_EW_RMSNORM || j->op == KERN_EW_LAYERNORM) {
        kern_split(j->rows, ith, nth, &lo, &hi);
        if (lo < hi) rows_range(j, lo, hi);
    } else {
        kern_split((j->n + 15) / 16, ith, nth, &lo, &hi); /* whole vectors per thread */
        hi = hi * 16 < j->n ? hi * 16 : j->n;
        if (lo * 16 < hi) unary_range(j, lo * 16, hi);
    }
}

static void run(kern_ctx *kc, ew_job *j) {
    bool ref = strcmp(kern_ctx_table(kc)->name, "ref") == 0;
    j->simd = !ref && kern_cpu_get()->avx512;
    int64_t total = j->rows > 0 ? j->rows * j->n : j->n;
    if (ref || total < MIN_PARALLEL || kern_ctx_threads(kc) == 1)
        ew_task(j, 0, 1);
    else
        kern_parallel(kc, ew_task, j);
}

void kern_op_rmsnorm(kern_ctx *kc, float *y, const float *x, const float *g, int64_t rows,
                     int64_t n, float eps) {
    ew_job j = {.op = KERN_EW_RMSNORM, .y = y, .x = x, .g = g, .rows = rows, .n = n, .eps = eps};
    run(kc, &j);
}

void kern_op_layernorm(kern_ctx *kc, float *y, const float *x, const float *g, const float *b,
                       int64_t rows, int64_t n, float eps) {
    ew_job j = {
        .op = KERN_EW_LAYERNORM, .y = y, .x = x, .g = g, .b = b, .rows = rows, .n = n, .eps = eps};
    run(kc, &j);
}

static void unary(kern_ctx *kc, int op, float *x, const float *other, int64_t n) {
    ew_job j = {.op = op, .y = x, .other = other, .n = n};
    run(kc, &j);
}

void kern_op_gelu_tanh(kern_ctx *kc, float *x, int64_t n) {
    unary(kc, KERN_EW_GELU_TANH, x, NULL, n);
}
void kern_op_gelu_erf(kern_ctx *kc, float *x, int64_t n) {
    unary(kc, KERN_EW_GELU_ERF, x, NULL, n);
}
void kern_op_quick_gelu(kern_ctx *kc, float *x, int64_t n) {
    unary(kc, KERN_EW_QUICK_GELU, x, NULL, n);
}
void kern_op_silu_mul(kern_ctx *kc, float *gate, const float *up, int64_t n) {
    unary(kc, KERN_EW_SILU_MUL, gate, up, n);
}
void kern_op_add(kern_ctx *kc, float *y, const float *x, int64_t n) {
    unary(kc, KERN_EW_ADD, y, x, n);
}
