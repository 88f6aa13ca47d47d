/*
 * matmul_avx512.c — y = x W^T + b with AVX-512, split across the context's threads. Three paths:
 *  - weight streaming (m < KERN_GEMM_MIN_M, decode): f32 activations times exact bf16/f16/f32
 *    weights, f32 accumulation; reads every weight byte once, so it runs at memory bandwidth;
 *  - large m, "avx512bf16": activations converted to bf16 once per call (KERN_PREC_BF16:
 *    rounded; KERN_PREC_ACCURATE: hi = bf16(x) and lo = bf16(x - hi), both multiplied into the
 *    same accumulators), vdpbf16ps on weight panels in the VNNI layout of kern_impl.h (packed
 *    once by kern_prepare; f32/f16 weights are packed per call in KERN_PREC_BF16 and take the
 *    f32 path in KERN_PREC_ACCURATE), 6x64 register tile;
 *  - large m, "avx512" (no AVX512-BF16): f32 FMA on weight panels converted to f32 per k-block.
 * The reference is ref.c's ref_matmul; tests/test_kernels.c holds every path to it.
 */
#include "kern_impl.h"

#include "core/core.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Below this many rows the product streams the weights (exact f32 activations); from it on,
 * the blocked GEMM. Measured with bench_kernels (docs/kernels.md). */
#define KERN_GEMM_MIN_M 4
#define GEMV_ROWS 4 /* activation rows handled per pass over a weight panel */

#define INLINE static inline __attribute__((always_inline))

/* ---- conversions ---- */

INLINE __m512 bf16x16_to_f32(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* 16 weights of row-major W starting at p (element index), masked to `mask`, as f32. */
INLINE __m512 load_w16(const void *base, lg_dtype dt, int64_t idx, __mmask16 mask) {
    if (dt == LG_DT_F32) return _mm512_maskz_loadu_ps(mask, (const float *)base + idx);
    __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)base + idx);
    if (dt == LG_DT_BF16) return bf16x16_to_f32(h);
    return _mm512_cvtph_ps(h);
}

INLINE __mmask16 tail_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

void kern_avx512_rows_to_bf16(const float *x, int64_t n_in, int64_t kp, int64_t r0, int64_t r1,
                              uint16_t *dst, uint16_t *lo) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * n_in;
        uint16_t *d = dst + r * kp;
        for (int64_t k = 0; k < kp; k += 32) {
            int64_t left = n_in - k;
            __m512 x0 =
                left > 0 ? _mm512_maskz_loadu_ps(tail_mask(left), xr + k) : _mm512_setzero_ps();
            __m512 x1 = left > 16 ? _mm512_maskz_loadu_ps(tail_mask(left - 16), xr + k + 16)
                                  : _mm512_setzero_ps();
            __m512bh b = _mm512_cvtne2ps_pbh(x1, x0);
            _mm512_storeu_si512((void *)(d + k), (__m512i)b);
            if (!lo) continue;
            /* x - hi is exact in f32 (hi is x rounded to 8 bits); its bf16 rounding keeps the
             * next 8 bits, so hi + lo is x to within 2^-17 relative. */
            __m512i hb = (__m512i)b; /* words 0-15: x0 rounded, 16-31: x1 rounded */
            __m512 h0 = bf16x16_to_f32(_mm512_castsi512_si256(hb));
            __m512 h1 = bf16x16_to_f32(_mm512_extracti64x4_epi64(hb, 1));
            __m512bh l = _mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0));
            _mm512_storeu_si512((void *)(lo + r * kp + k), (__m512i)l);
        }
    }
}

/* ---- packing bf16 weights into VNNI panels ---- */

void kern_avx512_pack_bf16(const kern_weight *w, int64_t p0, int64_t p1, uint16_t *dst) {
    int64_t np = w->n_in / 2, kq = kern_pack_kp(w->n_in) / 2; /* real and padded pairs */
    const char *src = w->data; /* row o, pair q: the 4 bytes at (o * np + q) * 4 */
    __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32((int)np));
    for (int64_t p = p0; p < p1; p++) {
        int64_t o0 = p * 16;
        __mmask16 rows = tail_mask(w->n_out - o0); /* rows past n_out: zeros */
        const char *base = src + o0 * np * 4;
        uint16_t *d = dst + (p - p0) * kq * 32;
        int64_t q = 0;
        for (; q < np; q++) {
            __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, idx,
                                                    (const void *)(base + q * 4), 4);
            _mm512_store_si512((void *)(d + q * 32), v);
        }
        for (; q < kq; q++) _mm512_store_si512((void *)(d + q * 32), _mm512_setzero_si512());
    }
}

/* ---- weight streaming: row-major weights (any dtype) ---- */

/* y[o0..o0+4) for one activation row: four dot products sharing each x load, two accumulators
 * per row (FMA latency), the dtype fixed per instantiation so the loop has no branches. */
INLINE void gemv_rows4_dt(const float *x, const void *wd, lg_dtype dt, int64_t n, int64_t o0,
                          int nrow, float *y) {
    __m512 acc[4][2];
    int64_t base[4];
    for (int r = 0; r < 4; r++) {
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        base[r] = (o0 + (r < nrow ? r : 0)) * n; /* missing rows re-read row 0, unused */
    }
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            acc[r][0] = _mm512_fmadd_ps(x0, load_w16(wd, dt, base[r] + k, 0xffff), acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x1, load_w16(wd, dt, base[r] + k + 16, 0xffff), acc[r][1]);
        }
    }
    for (; k < n; k += 16) {
        __mmask16 mk = tail_mask(n - k);
        __m512 xv = _mm512_maskz_loadu_ps(mk, x + k);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r][0] = _mm512_fmadd_ps(xv, load_w16(wd, dt, base[r] + k, mk), acc[r][0]);
    }
    for (int r = 0; r < nrow; r++) y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
}

static void gemv_rows4(const float *x, const kern_weight *w, int64_t o0, int nrow, float *y) {
    switch (w->dtype) {
    case LG_DT_BF16:
        gemv_rows4_dt(x, w->data, LG_DT_BF16, w->n_in, o0, nrow, y);
        break;
    case LG_DT_F16:
        gemv_rows4_dt(x, w->data, LG_DT_F16, w->n_in, o0, nrow, y);
        break;
    default:
        gemv_rows4_dt(x, w->data, LG_DT_F32, w->n_in, o0, nrow, y);
        break;
    }
}

typedef struct mm_job {
    float *y;
    const float *x;
    const kern_weight *w;
    const float *bias;
    int64_t m;
    /* GEMM state */
    const uint16_t *a16;   /* activations in bf16, m_pad x kp */
    const uint16_t *a16lo; /* KERN_PREC_ACCURATE: their residuals, m_pad x kp; else NULL */
    const void *b;         /* weight panels (bf16 VNNI or f32) for columns [n0, n1) */
    int64_t n0, n1;        /* the column chunk being computed */
    int64_t kp, mb, nb;    /* padded depth, block sizes */
    int64_t n_mb, n_nb;    /* number of row / column blocks in the chunk */
    kern_block_fn block;
    kern_ctx *kc;
    atomic_long next; /* work handed out so far (dynamic scheduling) */
} mm_job;

/* Hands out [*lo, *hi) of n items, `chunk` at a time, to whichever thread asks first: a thread
 * that the OS preempts (a shared machine) does not hold up the others with a fixed share. */
static bool grab(mm_job *j, int64_t n, int64_t chunk, int64_t *lo, int64_t *hi) {
    *lo = atomic_fetch_add_explicit(&j->next, chunk, memory_order_relaxed);
    if (*lo >= n) return false;
    *hi = *lo + chunk < n ? *lo + chunk : n;
    return true;
}

/* Chunks of about 1/(8*nth) of the work, at least `min`: long contiguous runs for the
 * prefetchers, enough pieces to even out. */
static int64_t chunk_of(int64_t n, int nth, int64_t min) {
    int64_t c = n / (8 * (int64_t)nth);
    return c < min ? min : c;
}

static void gemv_rowmajor_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    (void)ith;
    int64_t n_out = j->w->n_out, lo, hi, n_g = (n_out + 3) / 4;
    while (grab(j, n_g, chunk_of(n_g, nth, 64), &lo, &hi)) {
        for (int64_t i = 0; i < j->m; i++) {
            float *yi = j->y + i * n_out;
            for (int64_t g = lo; g < hi; g++) {
                int64_t o0 = g * 4;
                int nrow = n_out - o0 < 4 ? (int)(n_out - o0) : 4;
                gemv_rows4(j->x + i * j->w->n_in, j->w, o0, nrow, yi + o0);
                if (j->bias)
                    for (int r = 0; r < nrow; r++) yi[o0 + r] += j->bias[o0 + r];
            }
        }
    }
}

/* ---- weight streaming: packed VNNI panels ---- */

/* One panel (16 outputs) for `mr` activation rows. Each 32-bit lane holds {W[o][2p],
 * W[o][2p+1]}: shifting the lane left by 16 gives the even weight as f32, masking the low half
 * gives the odd one, so the f32 activations meet the exact weights. */
INLINE void gemv_panel(const float *x, int64_t ldx, int mr, int64_t n_in, const uint16_t *panel,
                       __m512 *out) {
    __m512 ae[GEMV_ROWS][2], ao[GEMV_ROWS][2];
    const __m512i himask = _mm512_set1_epi32((int)0xffff0000u);
    for (int r = 0; r < GEMV_ROWS; r++)
        ae[r][0] = ae[r][1] = ao[r][0] = ao[r][1] = _mm512_setzero_ps();
    int64_t np = n_in / 2, p = 0;
    for (; p + 2 <= np; p += 2) {
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) {
            __m512i wv = _mm512_load_si512((const void *)(panel + (p + u) * 32));
            __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));
            __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(wv, himask));
#pragma GCC unroll 4
            for (int r = 0; r < GEMV_ROWS; r++) {
                if (r >= mr) break;
                const float *xr = x + r * ldx + 2 * (p + u);
                ae[r][u] = _mm512_fmadd_ps(we, _mm512_set1_ps(xr[0]), ae[r][u]);
                ao[r][u] = _mm512_fmadd_ps(wo, _mm512_set1_ps(xr[1]), ao[r][u]);
            }
        }
    }
    for (; p * 2 < n_in; p++) { /* a last single pair, and a last odd input */
        __m512i wv = _mm512_load_si512((const void *)(panel + p * 32));
        __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));
        __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(wv, himask));
        for (int r = 0; r < mr; r++) {
            const float *xr = x + r * ldx + 2 * p;
            ae[r][0] = _mm512_fmadd_ps(we, _mm512_set1_ps(xr[0]), ae[r][0]);
            if (2 * p + 1 < n_in) ao[r][0] = _mm512_fmadd_ps(wo, _mm512_set1_ps(xr[1]), ao[r][0]);
        }
    }
    for (int r = 0; r < mr; r++)
        out[r] =
            _mm512_add_ps(_mm512_add_ps(ae[r][0], ae[r][1]), _mm512_add_ps(ao[r][0], ao[r][1]));
}

/* One panel (16 outputs) for every activation row, GEMV_ROWS rows per pass over the panel: the
 * panel stays in L1 while the row groups go by, so m rows read the weights from memory once. */
INLINE void gemv_panel_rows(const mm_job *j, const uint16_t *panel, int64_t p) {
    int64_t n_in = j->w->n_in, n_out = j->w->n_out, o0 = p * 16;
    __mmask16 mk = tail_mask(n_out - o0);
    __m512 b = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + o0) : _mm512_setzero_ps();
    __m512 out[GEMV_ROWS];
    for (int64_t i0 = 0; i0 < j->m; i0 += GEMV_ROWS) {
        int mr = j->m - i0 < GEMV_ROWS ? (int)(j->m - i0) : GEMV_ROWS;
        const float *x = j->x + i0 * n_in;
        switch (mr) { /* the row count a compile-time constant in each copy */
        case 1:
            gemv_panel(x, n_in, 1, n_in, panel, out);
            break;
        case 2:
            gemv_panel(x, n_in, 2, n_in, panel, out);
            break;
        case 3:
            gemv_panel(x, n_in, 3, n_in, panel, out);
            break;
        default:
            gemv_panel(x, n_in, 4, n_in, panel, out);
            break;
        }
        for (int r = 0; r < mr; r++)
            _mm512_mask_storeu_ps(j->y + (i0 + r) * n_out + o0, mk, _mm512_add_ps(out[r], b));
    }
}

static void gemv_packed_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    int64_t kp = kern_pack_kp(j->w->n_in), lo, hi;
    const uint16_t *packed = j->w->packed;
    (void)ith;
    int64_t n_p = kern_pack_n16(j->w->n_out) / 16;
    while (grab(j, n_p, chunk_of(n_p, nth, 4), &lo, &hi))
        for (int64_t p = lo; p < hi; p++) {
            const uint16_t *panel = packed + p * kp * 16;
            if (p + 1 < hi) _mm_prefetch((const char *)(panel + kp * 16), _MM_HINT_T0);
            gemv_panel_rows(j, panel, p);
        }
}

/* The weight-streaming product for any m: each row's arithmetic is the same as with m = 1, so a
 * batch of decode rows from different sequences gives each the answer it would get alone. */
void kern_avx512_stream(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                        const float *bias, int64_t m) {
    mm_job j = {.y = y, .x = x, .w = w, .bias = bias, .m = m};
    atomic_init(&j.next, 0);
    if (w->packed_kind == KERN_PACK_VNNI16)
        kern_pool_run(kern_ctx_pool(kc), gemv_packed_task, &j);
    else
        kern_pool_run(kern_ctx_pool(kc), gemv_rowmajor_task, &j);
}

/* ---- large m, bf16: the 6x64 vdpbf16ps register tile ---- */

#define BF_MR 6
#define BF_NV 4

/* C[mr x 16nv] = A[mr x 2np] B^T over np pairs; A rows lda elements apart, B panels pstride
 * elements apart; writes with bias, the last vector masked to `last_cols`. */
INLINE void mk_bf16(int mr, int nv, bool split, const uint16_t *a, const uint16_t *al, int64_t lda,
                    const uint16_t *b, int64_t pstride, int64_t np, float *c, int64_t ldc,
                    const float *bias, int last_cols) {
    __m512 acc[BF_MR][BF_NV];
#pragma GCC unroll 6
    for (int r = 0; r < BF_MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < BF_NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        __m512bh bv[BF_NV];
#pragma GCC unroll 4
        for (int v = 0; v < BF_NV; v++)
            if (v < nv)
                bv[v] = (__m512bh)_mm512_load_si512((const void *)(b + v * pstride + p * 32));
#pragma GCC unroll 6
        for (int r = 0; r < BF_MR; r++) {
            if (r >= mr) break;
            int32_t pair;
            memcpy(&pair, a + r * lda + 2 * p, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 4
            for (int v = 0; v < BF_NV; v++)
                if (v < nv) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
            if (split) { /* the residual pair into the same accumulators */
                memcpy(&pair, al + r * lda + 2 * p, 4);
                __m512bh lv = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 4
                for (int v = 0; v < BF_NV; v++)
                    if (v < nv) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], lv, bv[v]);
            }
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < BF_NV; v++) {
        if (v >= nv) break;
        __mmask16 mk = v == nv - 1 ? tail_mask(last_cols) : (__mmask16)0xffff;
        __m512 bb = bias ? _mm512_maskz_loadu_ps(mk, bias + v * 16) : _mm512_setzero_ps();
#pragma GCC unroll 6
        for (int r = 0; r < BF_MR; r++) {
            if (r >= mr) break;
            _mm512_mask_storeu_ps(c + r * ldc + v * 16, mk, _mm512_add_ps(acc[r][v], bb));
        }
    }
}

#define MK_CASE(MR, NV)                                                                            \
    case (MR)*8 + (NV):                                                                            \
        mk_bf16(MR, NV, SPLIT, a, al, lda, b, pstride, np, c, ldc, bias, last_cols);               \
        break;
#define MK_ROW(MR) MK_CASE(MR, 1) MK_CASE(MR, 2) MK_CASE(MR, 3) MK_CASE(MR, 4)

/* Every (rows, vectors) shape instantiated with constants, once per precision (SPLIT). */
#define SPLIT false
static void mk_bf16_any(int mr, int nv, const uint16_t *a, const uint16_t *al, int64_t lda,
                        const uint16_t *b, int64_t pstride, int64_t np, float *c, int64_t ldc,
                        const float *bias, int last_cols) {
    switch (mr * 8 + nv) {
        MK_ROW(1) MK_ROW(2) MK_ROW(3) MK_ROW(4) MK_ROW(5) MK_ROW(6) default : break;
    }
}
#undef SPLIT
#define SPLIT true
static void mk_bf16_split_any(int mr, int nv, const uint16_t *a, const uint16_t *al, int64_t lda,
                              const uint16_t *b, int64_t pstride, int64_t np, float *c, int64_t ldc,
                              const float *bias, int last_cols) {
    switch (mr * 8 + nv) {
        MK_ROW(1) MK_ROW(2) MK_ROW(3) MK_ROW(4) MK_ROW(5) MK_ROW(6) default : break;
    }
}
#undef SPLIT

/* The AVX512-BF16 block: C[rows x cols] for one (row block, column block) task. */
static void block_bf16(const kern_block_args *ba) {
    int64_t np = (ba->n_in + 1) / 2, pstride = ba->kp * 16;
    for (int64_t c0 = 0; c0 < ba->cols; c0 += 16 * BF_NV) {
        int64_t cols = ba->cols - c0 < 16 * BF_NV ? ba->cols - c0 : 16 * BF_NV;
        int nv = (int)((cols + 15) / 16);
        int last = (int)(cols - (nv - 1) * 16);
        const uint16_t *b = ba->b + (c0 / 16) * pstride;
        const float *bias = ba->bias ? ba->bias + c0 : NULL;
        for (int64_t r0 = 0; r0 < ba->rows; r0 += BF_MR) {
            int mr = ba->rows - r0 < BF_MR ? (int)(ba->rows - r0) : BF_MR;
            const uint16_t *a = ba->a + r0 * ba->kp;
            float *c = ba->c + r0 * ba->ldc + c0;
            if (ba->a_lo)
                mk_bf16_split_any(mr, nv, a, ba->a_lo + r0 * ba->kp, ba->kp, b, pstride, np, c,
                                  ba->ldc, bias, last);
            else
                mk_bf16_any(mr, nv, a, NULL, ba->kp, b, pstride, np, c, ba->ldc, bias, last);
        }
    }
}

/* ---- the blocked bf16 GEMM driver, shared with the AMX kernels ---- */

static void convert_a_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    int64_t lo, hi;
    kern_split(j->m, ith, nth, &lo, &hi);
    kern_avx512_rows_to_bf16(j->x, j->w->n_in, j->kp, lo, hi, (uint16_t *)j->a16,
                             (uint16_t *)j->a16lo);
}

typedef struct pack_chunk_job {
    const kern_weight *w;
    int64_t p0, p1; /* panels */
    uint16_t *dst;
} pack_chunk_job;

static void pack_chunk_task(void *arg, int ith, int nth) {
    pack_chunk_job *j = arg;
    int64_t lo, hi, kp = kern_pack_kp(j->w->n_in);
    kern_split(j->p1 - j->p0, ith, nth, &lo, &hi);
    if (lo < hi) kern_pack_vnni16(j->w, j->p0 + lo, j->p0 + hi, j->dst + lo * kp * 16);
}

static void gemm_tasks(void *arg, int ith, int nth) {
    mm_job *j = arg;
    (void)nth;
    int64_t n_tasks = j->n_mb * j->n_nb, lo, hi;
    int64_t n_out = j->w->n_out;
    while (grab(j, n_tasks, 1, &lo, &hi))
        for (int64_t t = lo; t < hi; t++) {
            int64_t ib = t / j->n_nb,
                    jb = t % j->n_nb; /* row-block major: A block stays in cache */
            int64_t r0 = ib * j->mb, c0 = j->n0 + jb * j->nb;
            kern_block_args ba = {
                .a = j->a16 + r0 * j->kp,
                .a_lo = j->a16lo ? j->a16lo + r0 * j->kp : NULL,
                .kp = j->kp,
                .n_in = j->w->n_in,
                .rows = j->m - r0 < j->mb ? j->m - r0 : j->mb,
                .b = (const uint16_t *)j->b + ((c0 - j->n0) / 16) * j->kp * 16,
                .cols = j->n1 - c0 < j->nb ? j->n1 - c0 : j->nb,
                .c = j->y + r0 * n_out + c0,
                .ldc = n_out,
                .bias = j->bias ? j->bias + c0 : NULL,
                .ith = ith,
                .kc = j->kc,
            };
            j->block(&ba);
        }
}

/* Largest column chunk packed per call for weights that kern_prepare did not pack. */
#define PACK_CHUNK_BYTES (16u << 20)

void kern_bf16_gemm(kern_ctx *kc, float *y, const float *x, const kern_weight *w, const float *bias,
                    int64_t m, kern_block_fn block, int64_t mb, int64_t nb) {
    bool packed = w->packed_kind == KERN_PACK_VNNI16;
    bool split = kern_ctx_precision(kc) == KERN_PREC_ACCURATE;
    if (split && !packed && w->dtype != LG_DT_BF16) { /* bf16 packing would round W */
        kern_avx512_matmul(kc, y, x, w, bias, m);
        return;
    }
    kern_pool *pool = kern_ctx_pool(kc);
    int nth = kern_pool_size(pool);
    int64_t kp = kern_pack_kp(w->n_in), n_out = w->n_out;
    int64_t m_pad = (m + 31) / 32 * 32;  /* AMX reads whole 16-row tiles */
    size_t plane = (size_t)(m_pad * kp); /* elements per plane (hi, then lo) */
    uint16_t *a16 = kern_scratch(kc, KERN_SCRATCH_A, plane * 2 * (split ? 2 : 1));
    uint16_t *a16lo = split ? a16 + plane : NULL;
    memset(a16 + m * kp, 0, (size_t)((m_pad - m) * kp) * 2);
    if (split) memset(a16lo + m * kp, 0, (size_t)((m_pad - m) * kp) * 2);
    mm_job j = {.y = y,
                .x = x,
                .w = w,
                .bias = bias,
                .m = m,
                .a16 = a16,
                .a16lo = a16lo,
                .kp = kp,
                .mb = mb,
                .block = block,
                .kc = kc};
    kern_pool_run(pool, convert_a_task, &j);
    int64_t chunk =
        packed ? kern_pack_n16(n_out) : (int64_t)(PACK_CHUNK_BYTES / (size_t)(kp * 2)) / nb * nb;
    if (chunk < nb) chunk = nb;
    for (int64_t n0 = 0; n0 < n_out; n0 += chunk) {
        int64_t n1 = n_out - n0 < chunk ? n_out : n0 + chunk;
        if (packed) {
            j.b = (const uint16_t *)w->packed + (n0 / 16) * kp * 16;
        } else {
            pack_chunk_job pj = {w, n0 / 16, (n1 + 15) / 16,
                                 kern_scratch(kc, KERN_SCRATCH_B, (size_t)(chunk * kp) * 2)};
            kern_pool_run(pool, pack_chunk_task, &pj);
            j.b = pj.dst;
        }
        j.n0 = n0, j.n1 = n1;
        j.n_mb = (m + mb - 1) / mb;
        /* Enough column blocks that every thread has work when there are few row blocks. */
        j.nb = nb;
        while (j.nb > 64 && j.n_mb * ((n1 - n0 + j.nb - 1) / j.nb) < 2 * nth) j.nb /= 2;
        j.n_nb = (n1 - n0 + j.nb - 1) / j.nb;
        atomic_store(&j.next, 0);
        kern_pool_run(pool, gemm_tasks, &j);
    }
}

void kern_avx512bf16_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                            const float *bias, int64_t m) {
    if (m < KERN_GEMM_MIN_M) {
        kern_avx512_stream(kc, y, x, w, bias, m);
        return;
    }
    kern_avx512bf16_gemm(kc, y, x, w, bias, m);
}

void kern_avx512bf16_gemm(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                          const float *bias, int64_t m) {
    kern_bf16_gemm(kc, y, x, w, bias, m, block_bf16, 72, 256);
}

static void avx512_gemm(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                        const float *bias, int64_t m);

/* ---- large m, f32 FMA (CPUs without AVX512-BF16): panels [kc][16] f32 per k-block ---- */

#define F_MR 6
#define F_NV 4
#define F_KC 256
#define F_NB 64

INLINE void mk_f32(int mr, int nv, const float *a, int64_t lda, const float *b, int64_t kc,
                   float *c, int64_t ldc, bool accumulate, int last_cols) {
    __m512 acc[F_MR][F_NV];
#pragma GCC unroll 4
    for (int v = 0; v < F_NV; v++) {
        __mmask16 mk = v == nv - 1 ? tail_mask(last_cols) : (__mmask16)0xffff;
#pragma GCC unroll 6
        for (int r = 0; r < F_MR; r++)
            acc[r][v] = (accumulate && r < mr && v < nv)
                            ? _mm512_maskz_loadu_ps(mk, c + r * ldc + v * 16)
                            : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 bv[F_NV];
#pragma GCC unroll 4
        for (int v = 0; v < F_NV; v++)
            if (v < nv) bv[v] = _mm512_load_ps(b + (v * kc + k) * 16);
#pragma GCC unroll 6
        for (int r = 0; r < F_MR; r++) {
            if (r >= mr) break;
            __m512 av = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 4
            for (int v = 0; v < F_NV; v++)
                if (v < nv) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < F_NV; v++) {
        if (v >= nv) break;
        __mmask16 mk = v == nv - 1 ? tail_mask(last_cols) : (__mmask16)0xffff;
#pragma GCC unroll 6
        for (int r = 0; r < F_MR; r++) {
            if (r >= mr) break;
            _mm512_mask_storeu_ps(c + r * ldc + v * 16, mk, acc[r][v]);
        }
    }
}

#define MKF_CASE(MR, NV)                                                                           \
    case (MR)*8 + (NV):                                                                            \
        mk_f32(MR, NV, a, lda, b, kc, c, ldc, acc, last_cols);                                     \
        break;
#define MKF_ROW(MR) MKF_CASE(MR, 1) MKF_CASE(MR, 2) MKF_CASE(MR, 3) MKF_CASE(MR, 4)

static void mk_f32_any(int mr, int nv, const float *a, int64_t lda, const float *b, int64_t kc,
                       float *c, int64_t ldc, bool acc, int last_cols) {
    switch (mr * 8 + nv) {
        MKF_ROW(1) MKF_ROW(2) MKF_ROW(3) MKF_ROW(4) MKF_ROW(5) MKF_ROW(6) default : break;
    }
}

/* Converts W[c0..c0+ncol) x [k0..k0+kc) into ncol/16 panels of [kc][16] f32 (zero-padded). */
static void pack_f32_block(const kern_weight *w, int64_t c0, int64_t ncol, int64_t k0, int64_t kc,
                           float *dst) {
    int64_t n_in = w->n_in;
    for (int64_t c = 0; c < (ncol + 15) / 16 * 16; c++) {
        float *d = dst + (c / 16) * kc * 16 + (c % 16);
        if (c >= ncol) {
            for (int64_t k = 0; k < kc; k++) d[k * 16] = 0.0f;
            continue;
        }
        for (int64_t k = 0; k < kc; k += 16) {
            __mmask16 mk = tail_mask(kc - k);
            __m512 v = load_w16(w->data, w->dtype, (c0 + c) * n_in + k0 + k, mk);
            float tmp[16];
            _mm512_storeu_ps(tmp, v);
            for (int i = 0; i < 16 && k + i < kc; i++) d[(k + i) * 16] = tmp[i];
        }
    }
}

static void gemm_f32_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const kern_weight *w = j->w;
    int64_t n_in = w->n_in, n_out = w->n_out, lo, hi;
    int64_t n_tasks = j->n_mb * j->n_nb;
    (void)nth;
    float *bp = kern_scratch(j->kc, KERN_SCRATCH_THREAD0 + ith, (size_t)F_NB * F_KC * 4);
    while (grab(j, n_tasks, 1, &lo, &hi))
        for (int64_t t = lo; t < hi; t++) {
            int64_t jb = t / j->n_mb, ib = t % j->n_mb; /* column-block major: B block reused */
            int64_t c0 = jb * F_NB, ncol = n_out - c0 < F_NB ? n_out - c0 : F_NB;
            int64_t r0 = ib * j->mb, rows = j->m - r0 < j->mb ? j->m - r0 : j->mb;
            int nv = (int)((ncol + 15) / 16), last = (int)(ncol - (nv - 1) * 16);
            for (int64_t k0 = 0; k0 < n_in; k0 += F_KC) {
                int64_t kc = n_in - k0 < F_KC ? n_in - k0 : F_KC;
                pack_f32_block(w, c0, ncol, k0, kc, bp);
                for (int64_t i = r0; i < r0 + rows; i += F_MR) {
                    int mr = r0 + rows - i < F_MR ? (int)(r0 + rows - i) : F_MR;
                    mk_f32_any(mr, nv, j->x + i * n_in + k0, n_in, bp, kc, j->y + i * n_out + c0,
                               n_out, k0 > 0, last);
                }
            }
            if (j->bias)
                for (int64_t i = r0; i < r0 + rows; i++)
                    for (int64_t c = c0; c < c0 + ncol; c++) j->y[i * n_out + c] += j->bias[c];
        }
}

void kern_avx512_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                        const float *bias, int64_t m) {
    if (m < KERN_GEMM_MIN_M) {
        kern_avx512_stream(kc, y, x, w, bias, m);
        return;
    }
    avx512_gemm(kc, y, x, w, bias, m);
}

static void avx512_gemm(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                        const float *bias, int64_t m) {
    int nth = kern_ctx_threads(kc);
    mm_job j = {.y = y, .x = x, .w = w, .bias = bias, .m = m, .kc = kc};
    atomic_init(&j.next, 0);
    j.n_nb = (w->n_out + F_NB - 1) / F_NB;
    /* Row blocks of up to 192 rows (the A block stays in L2 across a k-block); more when there
     * are too few column blocks to keep every thread busy. */
    j.mb = 192;
    while (j.mb > F_MR && j.n_nb * ((m + j.mb - 1) / j.mb) < 2 * nth) j.mb = (j.mb / 2 + 5) / 6 * 6;
    j.n_mb = (m + j.mb - 1) / j.mb;
    kern_pool_run(kern_ctx_pool(kc), gemm_f32_task, &j);
}

/* ---- row classes (see lg_kernels.matmul_class): 0 streams the weights, 1 the blocked GEMM ---- */

int kern_avx512_class(int64_t m) {
    return m < KERN_GEMM_MIN_M ? 0 : 1;
}

static void avx512_matmul_as(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                             const float *bias, int64_t m, int cls) {
    if (cls == 0)
        kern_avx512_stream(kc, y, x, w, bias, m);
    else
        avx512_gemm(kc, y, x, w, bias, m);
}

static void avx512bf16_matmul_as(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                                 const float *bias, int64_t m, int cls) {
    if (cls == 0)
        kern_avx512_stream(kc, y, x, w, bias, m);
    else
        kern_avx512bf16_gemm(kc, y, x, w, bias, m);
}

/* ---- tables ---- */

static const lg_kernels avx512_table = {
    .name = "avx512",
    .matmul = kern_avx512_matmul,
    .matmul_class = kern_avx512_class,
    .matmul_as = avx512_matmul_as,
    .attention = kern_avx512_attention,
    .prepare = kern_prepare_vnni16, /* the weight-streaming path reads the panels */
};

static const lg_kernels avx512bf16_table = {
    .name = "avx512bf16",
    .matmul = kern_avx512bf16_matmul,
    .matmul_class = kern_avx512_class,
    .matmul_as = avx512bf16_matmul_as,
    .attention = kern_avx512bf16_attention,
    .prepare = kern_prepare_vnni16,
};

const lg_kernels *kern_avx512_table(void) {
    return kern_cpu_get()->avx512 ? &avx512_table : NULL;
}

const lg_kernels *kern_avx512bf16_table(void) {
    return kern_cpu_get()->avx512bf16 ? &avx512bf16_table : NULL;
}
