/*
 * kern_impl.h — what the files of src/kernels share and nobody else needs: CPU features, the
 * thread pool, the context's growable scratch buffers, the packed-weight layout shared by the
 * AVX512-BF16 and AMX matrix kernels, and the fast tables that select.c chooses from.
 */
#ifndef LG_KERN_IMPL_H
#define LG_KERN_IMPL_H

#include "kernels.h"

/* ---- cpu.c: what this CPU (and the OS) lets us run ---- */
typedef struct kern_cpu {
    bool avx512;     /* AVX-512 F/BW/VL/DQ + FMA + F16C, and the OS saves ZMM state */
    bool avx512bf16; /* + AVX512_BF16 (vdpbf16ps, vcvtne2ps2bf16) */
    bool amx;        /* AMX-TILE + AMX-BF16, the OS supports tile state and granted permission */
    char brand[64];  /* processor brand string (for benchmark reports) */
} kern_cpu;

/* Detected once per process (CPUID is immutable; the AMX permission request is idempotent). */
const kern_cpu *kern_cpu_get(void);

/* ---- threadpool.c: a persistent pool; the calling thread is worker 0 ---- */
typedef struct kern_pool kern_pool;
kern_pool *kern_pool_create(int n_threads);
void kern_pool_free(kern_pool *p);
int kern_pool_size(const kern_pool *p);
/* Runs fn(arg, ith, nth) once for each ith = 0..nth-1, each on whichever pool thread claims it
 * first (the caller included: a worker the OS has not scheduled does not hold the run up), and
 * returns when all are done.
 * Not reentrant: a task must not call kern_pool_run on the same pool. */
void kern_pool_run(kern_pool *p, kern_task_fn fn, void *arg);

/* ---- select.c: per-context scratch that grows once and is then reused ---- */
enum { KERN_SCRATCH_A = 0, KERN_SCRATCH_B, KERN_SCRATCH_KV, KERN_SCRATCH_THREAD0 };
#define KERN_MAX_THREADS 256
/* Returns a 64-byte aligned buffer of at least `bytes` for slot `slot` (KERN_SCRATCH_THREAD0 + ith
 * for a thread's private buffer). Grows only when too small; aborts when out of memory (a
 * forward pass has no way to fail half-way). Slots other than a thread's own must be taken by the
 * calling thread before a parallel section. */
void *kern_scratch(kern_ctx *kc, int slot, size_t bytes);
kern_pool *kern_ctx_pool(kern_ctx *kc);

/* A context on a given table (kern_ctx_create resolves a mode name, and LG_KERNELS, first). */
kern_ctx *kern_ctx_create_with(int n_threads, const lg_kernels *table);

/* ---- selftest.c and "auto" ---- */
/* One small product through table t (its own packing, both precisions) against ref: true when
 * it agrees within the tested tolerances. */
bool kern_table_selftest(const lg_kernels *t);
/* The first of t[0..n) that passes `check`, skipping ref and amx-emu (never chosen
 * automatically); ref when none does. *note (may be NULL) gets "" or a sentence naming the first
 * table that failed (static storage). "auto" is this over kern_tables() with
 * kern_table_selftest, decided once per process. */
const lg_kernels *kern_first_passing(const lg_kernels *const *t, int n,
                                     bool (*check)(const lg_kernels *), const char **note);
/* "" or why "auto" passed over a table this CPU could run. */
const char *kern_auto_note(void);

/* Splits [0, n) into nth nearly equal contiguous ranges; range ith is [*lo, *hi). */
static inline void kern_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    *lo = n * ith / nth;
    *hi = n * (ith + 1) / nth;
}

/* ---- the packed weight layout (packed_kind = KERN_PACK_VNNI16) ----
 * W [n_out, n_in] becomes ceil(n_out/16) panels of 16 output columns. A panel holds, for every
 * pair of inputs (2p, 2p+1), 16 x {W[o][2p], W[o][2p+1]} as bf16: 64 bytes, so one panel row is
 * one AMX B-tile row and one AVX-512 register for vdpbf16ps. n_in is padded with zeros to kp (a
 * multiple of 32, one AMX tile depth), n_out to a multiple of 16. Size = n_out16 * kp * 2 bytes,
 * the checkpoint's size for bf16 (plus padding). */
enum { KERN_PACK_NONE = 0, KERN_PACK_VNNI16 = 1 };
static inline int64_t kern_pack_kp(int64_t n_in) {
    return (n_in + 31) / 32 * 32;
}
static inline int64_t kern_pack_n16(int64_t n_out) {
    return (n_out + 15) / 16 * 16;
}
/* Packs panels [p0, p1) of W (any dtype, converted to bf16 with round-to-nearest-even) into
 * dst, which points at panel p0's first byte. */
void kern_pack_vnni16(const kern_weight *w, int64_t p0, int64_t p1, uint16_t *dst);
/* The same for bf16 W with an even n_in, on AVX-512: in that layout a panel row is word p of 16
 * consecutive weight rows read as 32-bit pairs, so each 64-byte panel row is one gather. */
void kern_avx512_pack_bf16(const kern_weight *w, int64_t p0, int64_t p1, uint16_t *dst);

/* ---- the fast tables (NULL when this CPU cannot run them) ---- */
const lg_kernels *kern_portable_table(void);
const lg_kernels *kern_avx512_table(void);     /* AVX-512F, f32 FMA: exact activations */
const lg_kernels *kern_avx512bf16_table(void); /* + vdpbf16ps for large m */
const lg_kernels *kern_amx_table(void);        /* AMX-BF16 tiles for large m */
/* The AMX kernel with the tile instructions replaced by plain C that does what they do: runs
 * anywhere, so the tests check the AMX path's layout and tails on machines without AMX. */
const lg_kernels *kern_amx_emu_table(void);

/* Shared pieces of the AVX-512 files (matmul_avx512.c), used by the AMX file for what AMX does
 * not do: m < AMX threshold (weight streaming), f16 weights. */
void kern_avx512_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                        const float *bias, int64_t m);
void kern_avx512bf16_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                            const float *bias, int64_t m);
/* The two halves of kern_avx512bf16_matmul for any m: weight streaming (f32 activations, each
 * row computed as with m = 1) and the 6x64 vdpbf16ps GEMM. */
void kern_avx512_stream(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                        const float *bias, int64_t m);
void kern_avx512bf16_gemm(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                          const float *bias, int64_t m);
/* lg_kernels.matmul_class of the avx512 tables: 0 below KERN_GEMM_MIN_M rows, else 1. */
int kern_avx512_class(int64_t m);
void kern_avx512_attention(kern_ctx *kc, float *out, const float *q, const void *k, const void *v,
                           lg_dtype kv_dtype, int64_t n_q, int64_t n_kv, int n_head, int n_head_kv,
                           int head_dim, int64_t q_stride, int64_t kv_stride, bool causal,
                           int64_t q_pos0, float scale);
/* The same on vdpbf16ps for the tiled (many-query) path: q, K, V and the probabilities rounded
 * to bf16, f32 accumulation and softmax. */
void kern_avx512bf16_attention(kern_ctx *kc, float *out, const float *q, const void *k,
                               const void *v, lg_dtype kv_dtype, int64_t n_q, int64_t n_kv,
                               int n_head, int n_head_kv, int head_dim, int64_t q_stride,
                               int64_t kv_stride, bool causal, int64_t q_pos0, float scale);
/* Converts rows [r0, r1) of x (m x n_in f32) to bf16 rows of kp elements (zero-padded). With
 * `lo` non-NULL also the residuals: lo = bf16(x - bf16(x)), same layout (KERN_PREC_ACCURATE). */
void kern_avx512_rows_to_bf16(const float *x, int64_t n_in, int64_t kp, int64_t r0, int64_t r1,
                              uint16_t *dst, uint16_t *lo);
void kern_prepare_vnni16(kern_ctx *kc, kern_weight *w);

/* One task of the blocked bf16 GEMM: C[rows x cols] = A B^T + bias, where A is `rows` bf16 rows
 * of kp elements (readable up to a multiple of 32 rows: the driver pads), B is cols/16 (rounded
 * up) VNNI panels of kp*16 elements each, C has row stride ldc, and only n_in of the kp inputs
 * are real (the rest are zeros in both A and B). */
typedef struct kern_block_args {
    const uint16_t *a;
    const uint16_t *a_lo; /* KERN_PREC_ACCURATE: the residual rows, same layout; else NULL */
    int64_t kp, n_in, rows;
    const uint16_t *b;
    int64_t cols;
    float *c;
    int64_t ldc;
    const float *bias;
    int ith;
    kern_ctx *kc;
} kern_block_args;
typedef void (*kern_block_fn)(const kern_block_args *ba);
/* The driver: converts x to bf16 once (hi and lo planes in KERN_PREC_ACCURATE), packs W per
 * call unless kern_prepare did, and runs `block` over (mb-row x nb-column) tasks split across
 * the threads. In KERN_PREC_ACCURATE, weights that are neither bf16 nor packed take the float32
 * GEMM (kern_avx512_matmul): packing them would round them to bf16. */
void kern_bf16_gemm(kern_ctx *kc, float *y, const float *x, const kern_weight *w, const float *bias,
                    int64_t m, kern_block_fn block, int64_t mb, int64_t nb);

/* ---- element-wise helpers (ew.c dispatches, ew_avx512.c computes) ---- */
enum {
    KERN_EW_GELU_TANH = 0,
    KERN_EW_GELU_ERF,
    KERN_EW_QUICK_GELU,
    KERN_EW_SILU_MUL,
    KERN_EW_ADD,
    KERN_EW_RMSNORM,
    KERN_EW_LAYERNORM
};
void kern_avx512_rmsnorm(float *y, const float *x, const float *g, int64_t rows, int64_t n,
                         float eps);
void kern_avx512_layernorm(float *y, const float *x, const float *g, const float *b, int64_t rows,
                           int64_t n, float eps);
/* x[i] = op(x[i]) (or op(x[i], other[i]) for SILU_MUL and ADD) for i < n. */
void kern_avx512_unary(int op, float *x, const float *other, int64_t n);

#endif /* LG_KERN_IMPL_H */
