/*
 * portable.c — the fallback for CPUs without AVX-512 (older x86, AMD/ARM servers): plain C the
 * compiler can vectorize for whatever the build targets, split across the context's threads.
 * The matmul converts 16 weight rows at a time to f32 and takes 16 dot products per activation
 * row with 8 partial sums; attention runs the reference's per-row math in parallel over
 * (row, head) with per-thread scratch. Must match ref.c's kernels (tests/test_kernels.c).
 */
#include "kern_impl.h"

#include <math.h>

#define ROWS 16

typedef struct pmm_job {
    float *y;
    const float *x;
    const kern_weight *w;
    const float *bias;
    int64_t m;
    kern_ctx *kc;
} pmm_job;

static float dot8(const float *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int u = 0; u < 8; u++) s[u] += a[k + u] * b[k + u];
    for (; k < n; k++) s[0] += a[k] * b[k];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void pmm_task(void *arg, int ith, int nth) {
    pmm_job *j = arg;
    int64_t n_in = j->w->n_in, n_out = j->w->n_out, lo, hi;
    float *rows = kern_scratch(j->kc, KERN_SCRATCH_THREAD0 + ith, (size_t)(ROWS * n_in) * 4);
    kern_split((n_out + ROWS - 1) / ROWS, ith, nth, &lo, &hi);
    for (int64_t g = lo; g < hi; g++) {
        int64_t o0 = g * ROWS, nr = n_out - o0 < ROWS ? n_out - o0 : ROWS;
        for (int64_t r = 0; r < nr; r++) kern_weight_row_f32(j->w, o0 + r, rows + r * n_in);
        for (int64_t i = 0; i < j->m; i++) {
            const float *xi = j->x + i * n_in;
            float *yi = j->y + i * n_out + o0;
            for (int64_t r = 0; r < nr; r++)
                yi[r] = dot8(xi, rows + r * n_in, n_in) + (j->bias ? j->bias[o0 + r] : 0.0f);
        }
    }
}

static void portable_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                            const float *bias, int64_t m) {
    pmm_job j = {y, x, w, bias, m, kc};
    kern_pool_run(kern_ctx_pool(kc), pmm_task, &j);
}

typedef struct pat_job {
    float *out;
    const float *q;
    const void *k, *v;
    lg_dtype dt;
    int64_t n_q, n_kv, q_stride, kv_stride, q_pos0;
    int n_head, n_head_kv, hd;
    bool causal;
    float scale;
    kern_ctx *kc;
} pat_job;

/* One head row (starting at element row_off) as float32. */
static void kv_row(const void *base, lg_dtype t, int64_t row_off, int hd, float *out) {
    if (t == LG_DT_F32) {
        memcpy(out, (const float *)base + row_off, (size_t)hd * 4);
    } else if (t == LG_DT_I16S) {
        const int16_t *row = (const int16_t *)base + row_off;
        float s = kern_i16s_scale(row, hd);
        for (int d = 0; d < hd; d++) out[d] = (float)row[d] * s;
    } else {
        const uint16_t *h = (const uint16_t *)base + row_off;
        for (int d = 0; d < hd; d++)
            out[d] = t == LG_DT_BF16 ? lg_bf16_to_f32(h[d]) : lg_f16_to_f32(h[d]);
    }
}

static void pat_task(void *arg, int ith, int nth) {
    pat_job *j = arg;
    int group = j->n_head / j->n_head_kv, hd = j->hd;
    int64_t he = kern_kv_head_elems(j->dt, hd);
    float *score =
        kern_scratch(j->kc, KERN_SCRATCH_THREAD0 + ith, (size_t)(j->n_kv + 1 + hd * 2) * 4);
    float *kr = score + j->n_kv + 1, *acc = kr + hd;
    int64_t lo, hi;
    kern_split(j->n_q * j->n_head, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        int64_t i = t / j->n_head;
        int h = (int)(t % j->n_head), g = h / group;
        int64_t n_vis = j->causal ? j->q_pos0 + i + 1 : j->n_kv;
        if (n_vis > j->n_kv) n_vis = j->n_kv;
        const float *qi = j->q + i * j->q_stride + (int64_t)h * hd;
        for (int64_t s = 0; s < n_vis; s++) {
            kv_row(j->k, j->dt, s * j->kv_stride + g * he, hd, kr);
            score[s] = dot8(qi, kr, hd) * j->scale;
        }
        kern_softmax(score, n_vis);
        for (int d = 0; d < hd; d++) acc[d] = 0.0f;
        for (int64_t s = 0; s < n_vis; s++) {
            kv_row(j->v, j->dt, s * j->kv_stride + g * he, hd, kr);
            for (int d = 0; d < hd; d++) acc[d] += score[s] * kr[d];
        }
        memcpy(j->out + i * (int64_t)j->n_head * hd + (int64_t)h * hd, acc, (size_t)hd * 4);
    }
}

static void portable_attention(kern_ctx *kc, float *out, const float *q, const void *k,
                               const void *v, lg_dtype kv_dtype, int64_t n_q, int64_t n_kv,
                               int n_head, int n_head_kv, int head_dim, int64_t q_stride,
                               int64_t kv_stride, bool causal, int64_t q_pos0, float scale) {
    pat_job j = {out,       q,      k,      v,         kv_dtype, n_q,    n_kv,  q_stride,
                 kv_stride, q_pos0, n_head, n_head_kv, head_dim, causal, scale, kc};
    kern_pool_run(kern_ctx_pool(kc), pat_task, &j);
}

static const lg_kernels portable_table = {
    .name = "portable",
    .matmul = portable_matmul,
    .attention = portable_attention,
    .prepare = NULL,
};

const lg_kernels *kern_portable_table(void) {
    return &portable_table;
}
