/*
 * kernels.h — the compute kernels every model forward pass calls, behind one table.
 *
 * The table is filled at run time (kern_select): first with the plain reference kernels of
 * ref.c — obviously-correct loops in float32, the `--exact` path and the oracle of every test —
 * then entries are overridden by fast paths (AVX-512, AMX, threads) when the CPU has them and
 * the mode allows it. Element-wise helpers (norms, activations, rope) are plain functions below;
 * they cost little next to the matrix products.
 *
 * Layouts: activations are float32, row-major. A weight matrix is stored as in safetensors,
 * [n_out, n_in] row-major (y = x W^T + b), in bf16, f16 or f32, usually memory-mapped.
 */
#ifndef LG_KERNELS_H
#define LG_KERNELS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

/* LG_DT_I16S is for KV caches only: each head's row of head_dim values is stored as int16
 * q[d] with one float32 scale s (value = q[d] * s, s = max |x| / 32767), the scale's 4 bytes
 * in the two int16 slots after the row, so a head row takes head_dim + 2 elements
 * (kern_kv_head_elems). Error <= 2^-16 of the row's largest value: on the fixtures it keeps the
 * logits within 1.7e-4 of the float32 reference where f16 moves them by up to 3.1e-3. */
typedef enum lg_dtype { LG_DT_F32 = 0, LG_DT_BF16 = 1, LG_DT_F16 = 2, LG_DT_I16S = 3 } lg_dtype;

/* Bytes per element of a dtype. */
static inline size_t lg_dtype_size(lg_dtype t) {
    return t == LG_DT_F32 ? 4 : 2;
}

/* Elements one KV head row of head_dim values takes in a cache of dtype t. */
static inline int64_t kern_kv_head_elems(lg_dtype t, int head_dim) {
    return head_dim + (t == LG_DT_I16S ? 2 : 0);
}

/* The scale of an LG_DT_I16S head row that starts at `row`. */
static inline float kern_i16s_scale(const int16_t *row, int head_dim) {
    float s;
    memcpy(&s, row + head_dim, 4);
    return s;
}

/* Quantizes head_dim values into an LG_DT_I16S head row (head_dim + 2 elements). A row of zeros
 * gets scale 0; a row with inf/NaN gets a NaN scale, so it stays non-finite as in float32. */
static inline void kern_i16s_quantize(const float *x, int head_dim, int16_t *row) {
    float mx = 0.0f;
    for (int d = 0; d < head_dim; d++) {
        float a = x[d] < 0 ? -x[d] : x[d];
        mx = a > mx || a != a ? a : mx;
    }
    float scale = mx / 32767.0f, inv = mx > 0 ? 32767.0f / mx : 0.0f;
    if (!(mx < INFINITY)) scale = NAN, inv = 0.0f;
    for (int d = 0; d < head_dim; d++) {
        float q = inv > 0 ? x[d] * inv : 0.0f; /* |q| <= 32767 up to rounding */
        q = q > 32767.0f ? 32767.0f : q < -32767.0f ? -32767.0f : q;
        row[d] = (int16_t)lrintf(q);
    }
    memcpy(row + head_dim, &scale, 4);
}

static inline float lg_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round-to-nearest-even float32 -> bfloat16 (NaN kept quiet), as torch does. */
static inline uint16_t lg_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float lg_f16_to_f32(uint16_t h);
uint16_t lg_f32_to_f16(float f);

/* A weight matrix W, n_out x n_in, row-major, as stored in the checkpoint. */
typedef struct kern_weight {
    lg_dtype dtype;
    int64_t n_out, n_in;
    const void *data;     /* n_out*n_in elements of dtype; usually memory-mapped, never written */
    void *packed;         /* optional copy in a fast kernel's layout, made once by kern_prepare */
    int packed_kind;      /* which kernel made `packed` (0 = none) */
    bool packed_borrowed; /* `packed` lies in the caller's memory (kern_prepare_into) */
    /* kern_prepare_lazy: the first kern_matmul packs W into `lazy` (the caller's memory) */
    void *lazy;
    bool lazy_drop_source; /* ... dropping the mapped pages of `data` (a read-only file map) */
    atomic_int lazy_state; /* KERN_LAZY_*; changes once, under the first product's call */
} kern_weight;

enum { KERN_LAZY_ARMED = 0, KERN_LAZY_PACKING = 1, KERN_LAZY_DONE = 2 };

/* Converts row `r` of W to float32 (n_in values). */
void kern_weight_row_f32(const kern_weight *w, int64_t r, float *out);

/* Execution context: the kernel table, the thread pool and the mode. One per model/session
 * owner; not shared between threads that run forward passes concurrently. */
typedef struct kern_ctx kern_ctx;

typedef struct lg_kernels {
    const char *name;
    /* y (m x n_out) = x (m x n_in) * W^T (+ bias (n_out), may be NULL). */
    void (*matmul)(kern_ctx *kc, float *y, const float *x, const kern_weight *w, const float *bias,
                   int64_t m);
    /* Multi-head attention with grouped-query sharing. For every query row i (0..n_q) and head h:
     *   out[i, h*hd:(h+1)*hd] = softmax_j(scale * q[i,h] . k[j,g]) v[j,g],  g = h /
     * (n_head/n_head_kv) q is n_q x (row stride q_stride floats), k/v are n_kv rows (row stride
     * kv_stride elements of kv_dtype, f32 or bf16/f16), out is n_q x n_head*hd. With `causal`,
     * query i sits at absolute position q_pos0 + i and attends only to keys j <= q_pos0 + i. */
    void (*attention)(kern_ctx *kc, float *out, const float *q, const void *k, const void *v,
                      lg_dtype kv_dtype, int64_t n_q, int64_t n_kv, int n_head, int n_head_kv,
                      int head_dim, int64_t q_stride, int64_t kv_stride, bool causal,
                      int64_t q_pos0, float scale);
    /* Optional (NULL: matmul computes every row the same way whatever m). A row's result
     * depends only on the row, W and the arithmetic class matmul picks for the call's m:
     * matmul_class(m) names it, and matmul_as computes m rows in class `cls` whatever m. The
     * batched decoder pass merges rows of several sequences into one product by class, so each
     * sequence gets exactly the numbers it would get alone. */
    int (*matmul_class)(int64_t m);
    void (*matmul_as)(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                      const float *bias, int64_t m, int cls);
    /* Optional: prepares w->packed for this table's matmul (may be NULL or do nothing). */
    void (*prepare)(kern_ctx *kc, kern_weight *w);
} lg_kernels;

/* Creates a context. `mode` is "auto" (best kernels for this CPU) or "ref" (reference kernels
 * only: the --exact path); a table name ("portable", "avx512", "avx512bf16", "amx", "amx-emu")
 * forces that table (NULL when this CPU cannot run it). The environment variable LG_KERNELS
 * overrides `mode` (LG_KERNELS=ref forces the reference). `n_threads` <= 0 means one per
 * available core. Returns NULL when out of memory, the mode is unknown or not runnable here. */
kern_ctx *kern_ctx_create(int n_threads, const char *mode);
void kern_ctx_free(kern_ctx *kc);
const lg_kernels *kern_ctx_table(const kern_ctx *kc);
int kern_ctx_threads(const kern_ctx *kc);

/* How the bf16 dot-product paths (the large products of the avx512bf16 / amx / amx-emu tables
 * and their many-query attention) treat float32 activations. Weights are exact bf16 either way;
 * the ref, portable and avx512 tables and the decode (weight-streaming) paths are float32
 * throughout and ignore the setting.
 *  - KERN_PREC_ACCURATE (the default of every new context): each activation is split into
 *    hi = bf16(x) and lo = bf16(x - hi) and both are multiplied (hi.w + lo.w): the activation
 *    keeps ~16 bits of mantissa (relative error <= 2^-17), twice the dot-product work. Weights
 *    that are not bf16 take the float32 path instead. Attention splits q and the probabilities,
 *    and K/V unless the cache is already bf16.
 *  - KERN_PREC_BF16: activations rounded to bf16 once (relative 2^-9): the fastest, and
 *    visibly off on logits (docs/kernels.md gives the measured errors). */
typedef enum kern_precision { KERN_PREC_ACCURATE = 0, KERN_PREC_BF16 = 1 } kern_precision;
void kern_ctx_set_precision(kern_ctx *kc, kern_precision p);
kern_precision kern_ctx_precision(const kern_ctx *kc);

/* The reference table (plain loops, float32 accumulation). */
const lg_kernels *kern_ref_table(void);
/* Every table this CPU can run, best first, the reference last; returns how many (<= max). */
int kern_tables(const lg_kernels **out, int max);
/* The table kern_ctx_create would choose for `mode` ("auto", "ref" or a table name), or NULL. */
const lg_kernels *kern_table_for(const char *mode);

/* Runs fn(arg, ith, nth) once for each ith = 0..nth-1 on the context's threads and returns when
 * all are done: for the model's own parallel loops. Each ith runs on whichever thread claims it
 * (the caller may run several), so per-thread data must be indexed by ith. Not reentrant. */
typedef void (*kern_task_fn)(void *arg, int ith, int nth);
void kern_parallel(kern_ctx *kc, kern_task_fn fn, void *arg);

/* This machine's limits, measured in place over all the context's threads (for benchmarks; each
 * call runs for a fraction of a second). Register-only instruction loops give the ceiling of
 * each unit in GFLOP/s, 0 where the CPU lacks it: AVX-512 f32 FMA, AVX512-BF16 vdpbf16ps, AMX
 * tdpbf16ps. The read bandwidth (GB/s) streams `bytes` (0: 1 GiB) with several accumulators per
 * thread, best of a few passes. kern_cpu_name gives the processor's brand string. */
double kern_peak_fma_gflops(kern_ctx *kc);
double kern_peak_dpbf16_gflops(kern_ctx *kc);
double kern_peak_amx_gflops(kern_ctx *kc);
double kern_read_bandwidth_gbps(kern_ctx *kc, size_t bytes);
const char *kern_cpu_name(void);

/* Frees what kern_prepare attached to w (w->packed; only forgets it after kern_prepare_into)
 * and resets packed_kind; NULL-safe. */
void kern_weight_release(kern_weight *w);
/* Bytes kern_prepare would attach to w: 0 when this context's table keeps w as it is (the
 * reference, a non-bf16 weight, one already prepared). A multiple of 64. */
size_t kern_prepare_bytes(const kern_ctx *kc, const kern_weight *w);
/* kern_prepare into caller-owned memory: `dst` is 64-byte aligned, holds kern_prepare_bytes(w)
 * bytes and outlives every use of w (a model packs all its weights into one arena). With
 * drop_source, the whole memory pages of w->data are released (MADV_DONTNEED) as they are
 * packed, so the weight is never resident twice: only for a read-only file mapping, whose pages
 * come back from the page cache if read again. Returns whether w was prepared (false: nothing
 * to do, dst untouched). */
bool kern_prepare_into(kern_ctx *kc, kern_weight *w, void *dst, bool drop_source);
/* Arms w for packing into `dst` (as kern_prepare_into) on the first kern_matmul that uses it,
 * with that call's context; concurrent first uses from several threads are safe (one packs,
 * the others wait). Returns whether w was armed (false: nothing to pack). Arm before sharing
 * w. */
bool kern_prepare_lazy(kern_ctx *kc, kern_weight *w, void *dst, bool drop_source);

/* Shorthands that dispatch through the context's table. */
void kern_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w, const float *bias,
                 int64_t m);
void kern_attention(kern_ctx *kc, float *out, const float *q, const void *k, const void *v,
                    lg_dtype kv_dtype, int64_t n_q, int64_t n_kv, int n_head, int n_head_kv,
                    int head_dim, int64_t q_stride, int64_t kv_stride, bool causal, int64_t q_pos0,
                    float scale);
void kern_prepare(kern_ctx *kc, kern_weight *w);
/* The arithmetic class kern_matmul uses for m rows (0 when the table has one), and kern_matmul
 * with class `cls` forced for any m (see lg_kernels.matmul_class). */
int kern_matmul_class(const kern_ctx *kc, int64_t m);
void kern_matmul_as(kern_ctx *kc, float *y, const float *x, const kern_weight *w, const float *bias,
                    int64_t m, int cls);

/* ---- element-wise and row-wise helpers (plain float32; x and y may alias) ---- */

/* y = x / sqrt(mean(x^2) + eps) * g, per row of n (Llama/Qwen RMSNorm, computed in float32). */
void kern_rmsnorm(float *y, const float *x, const float *g, int64_t rows, int64_t n, float eps);
/* y = (x - mean) / sqrt(var + eps) * g + b, per row of n (torch LayerNorm, biased variance). */
void kern_layernorm(float *y, const float *x, const float *g, const float *b, int64_t rows,
                    int64_t n, float eps);
void kern_gelu_tanh(float *x, int64_t n);  /* torch gelu(approximate="tanh") */
void kern_gelu_erf(float *x, int64_t n);   /* torch gelu (exact, erf) */
void kern_quick_gelu(float *x, int64_t n); /* x * sigmoid(1.702 x) (CLIP) */
/* gate[i] = silu(gate[i]) * up[i] (SwiGLU). */
void kern_silu_mul(float *gate, const float *up, int64_t n);
void kern_softmax(float *x, int64_t n);             /* in place, numerically stable */
void kern_add(float *y, const float *x, int64_t n); /* y += x */

/* ---- the same helpers through a context: the plain loops above in "ref" mode (bit for bit),
 * otherwise AVX-512 (vector exp/tanh/erf, |error| ~1e-7 relative to libm) split across the
 * context's threads for large tensors. A forward pass should call these: on SigLIP/Qwen2 shapes
 * the plain loops cost as much as the matrix products they sit between (docs/kernels.md). ---- */
void kern_op_rmsnorm(kern_ctx *kc, float *y, const float *x, const float *g, int64_t rows,
                     int64_t n, float eps);
void kern_op_layernorm(kern_ctx *kc, float *y, const float *x, const float *g, const float *b,
                       int64_t rows, int64_t n, float eps);
void kern_op_gelu_tanh(kern_ctx *kc, float *x, int64_t n);
void kern_op_gelu_erf(kern_ctx *kc, float *x, int64_t n);
void kern_op_quick_gelu(kern_ctx *kc, float *x, int64_t n);
void kern_op_silu_mul(kern_ctx *kc, float *gate, const float *up, int64_t n);
void kern_op_add(kern_ctx *kc, float *y, const float *x, int64_t n);

#endif /* LG_KERNELS_H */
