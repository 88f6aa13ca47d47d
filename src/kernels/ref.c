/*
 * ref.c — the reference kernels: plain loops in float32, written to be obviously correct. They
 * are the `--exact` path and the oracle every fast kernel is tested against
 * (tests/test_kernels.c). Keep them simple; speed lives in the other files of this folder.
 */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>

float lg_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t lg_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffffu;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)h;
}

void kern_weight_row_f32(const kern_weight *w, int64_t r, float *out) {
    int64_t n = w->n_in;
    switch (w->dtype) {
    case LG_DT_F32:
        memcpy(out, (const float *)w->data + r * n, (size_t)n * 4);
        break;
    case LG_DT_BF16: {
        const uint16_t *p = (const uint16_t *)w->data + r * n;
        for (int64_t i = 0; i < n; i++) out[i] = lg_bf16_to_f32(p[i]);
        break;
    }
    case LG_DT_F16: {
        const uint16_t *p = (const uint16_t *)w->data + r * n;
        for (int64_t i = 0; i < n; i++) out[i] = lg_f16_to_f32(p[i]);
        break;
    }
    case LG_DT_I16S: /* a KV-cache format, never a weight */
        abort();
    }
}

/* Value d of the head row starting at element row_off of a KV cache of dtype t. */
static float kv_at(const void *base, lg_dtype t, int64_t row_off, int head_dim, int d) {
    switch (t) {
    case LG_DT_F32:
        return ((const float *)base)[row_off + d];
    case LG_DT_BF16:
        return lg_bf16_to_f32(((const uint16_t *)base)[row_off + d]);
    case LG_DT_F16:
        return lg_f16_to_f32(((const uint16_t *)base)[row_off + d]);
    case LG_DT_I16S: {
        const int16_t *row = (const int16_t *)base + row_off;
        return (float)row[d] * kern_i16s_scale(row, head_dim);
    }
    }
    return 0.0f;
}

/* y[i][o] = sum_k x[i][k] * W[o][k] + b[o]; one weight row converted at a time. */
static void ref_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                       const float *bias, int64_t m) {
    (void)kc;
    int64_t n_in = w->n_in, n_out = w->n_out;
    float *row = malloc((size_t)n_in * sizeof *row);
    if (!row) abort();
    for (int64_t o = 0; o < n_out; o++) {
        kern_weight_row_f32(w, o, row);
        for (int64_t i = 0; i < m; i++) {
            const float *xi = x + i * n_in;
            float acc = 0.0f;
            for (int64_t k = 0; k < n_in; k++) acc += xi[k] * row[k];
            y[i * n_out + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
    free(row);
}

/* Scores for one (query, head), softmax, weighted sum of values. */
static void ref_attention(kern_ctx *kc, float *out, const float *q, const void *k, const void *v,
                          lg_dtype kv_dtype, int64_t n_q, int64_t n_kv, int n_head, int n_head_kv,
                          int head_dim, int64_t q_stride, int64_t kv_stride, bool causal,
                          int64_t q_pos0, float scale) {
    (void)kc;
    int group = n_head / n_head_kv;
    int64_t head_elems = kern_kv_head_elems(kv_dtype, head_dim);
    float *score = malloc((size_t)(n_kv > 0 ? n_kv : 1) * sizeof *score);
    if (!score) abort();
    for (int64_t i = 0; i < n_q; i++) {
        int64_t n_vis = causal ? q_pos0 + i + 1 : n_kv;
        if (n_vis > n_kv) n_vis = n_kv;
        for (int h = 0; h < n_head; h++) {
            int g = h / group;
            const float *qi = q + i * q_stride + (int64_t)h * head_dim;
            for (int64_t j = 0; j < n_vis; j++) {
                float s = 0.0f;
                for (int d = 0; d < head_dim; d++)
                    s += qi[d] * kv_at(k, kv_dtype, j * kv_stride + g * head_elems, head_dim, d);
                score[j] = s * scale;
            }
            kern_softmax(score, n_vis);
            float *oi = out + i * (int64_t)n_head * head_dim + (int64_t)h * head_dim;
            for (int d = 0; d < head_dim; d++) oi[d] = 0.0f;
            for (int64_t j = 0; j < n_vis; j++)
                for (int d = 0; d < head_dim; d++)
                    oi[d] +=
                        score[j] * kv_at(v, kv_dtype, j * kv_stride + g * head_elems, head_dim, d);
        }
    }
    free(score);
}

static const lg_kernels ref_table = {
    .name = "ref",
    .matmul = ref_matmul,
    .attention = ref_attention,
    .prepare = NULL,
};

const lg_kernels *kern_ref_table(void) {
    return &ref_table;
}

/* ---- element-wise helpers ---- */

void kern_rmsnorm(float *y, const float *x, const float *g, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float ss = 0.0f;
        for (int64_t i = 0; i < n; i++) ss += xr[i] * xr[i];
        float inv = 1.0f / sqrtf(ss / (float)n + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * inv * g[i];
    }
}

void kern_layernorm(float *y, const float *x, const float *g, const float *b, int64_t rows,
                    int64_t n, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float mean = 0.0f;
        for (int64_t i = 0; i < n; i++) mean += xr[i];
        mean /= (float)n;
        float var = 0.0f;
        for (int64_t i = 0; i < n; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= (float)n;
        float inv = 1.0f / sqrtf(var + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - mean) * inv * g[i] + (b ? b[i] : 0.0f);
    }
}

void kern_gelu_tanh(float *x, int64_t n) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}

void kern_gelu_erf(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void kern_quick_gelu(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void kern_silu_mul(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void kern_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void kern_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}
