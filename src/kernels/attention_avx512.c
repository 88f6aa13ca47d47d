/*
 * attention_avx512.c — multi-head attention with grouped-query sharing, AVX-512, without the
 * n_q x n_kv score matrix (FlashAttention's tiled online softmax, Dao et al. 2022): for a block
 * of 16 query rows it walks the keys 64 at a time, keeping a running max, a running sum and the
 * output rows. K is transposed and K/V converted to f32 once per call per KV head (bf16/f16
 * cache or f32), so the inner loops are plain FMAs; any head_dim (72 for SigLIP so400m) works
 * with masked vectors. Few query rows (decode) take a direct path that reads the cache once.
 * The bf16 tables run the tiled path on vdpbf16ps instead: in KERN_PREC_BF16 q, K, V and the
 * probabilities rounded to bf16; in KERN_PREC_ACCURATE q and the probabilities split into
 * hi + lo bf16 pairs against a bf16 cache (other caches take the f32 path).
 * The reference is ref.c's ref_attention.
 */
#include "kern_impl.h"

#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>

#include "simd_avx512.h"

#define BK 64       /* keys per block */
#define QR 4        /* query rows per register block */
#define QB 16       /* query rows per task */
#define MIN_TILED 8 /* fewer query rows: the direct path */

/* Instantiates CALL(NV) for the vector count nvec (1..8): NV is then a constant, so the
 * accumulator arrays below live in registers. Without it gcc keeps them on the stack and tests
 * the vector count inside the key loop (seen in perf: the f32 P.V ran at half the FMA rate). */
#define NV_DISPATCH(nvec, CALL)                                                                    \
    switch (nvec) {                                                                                \
    case 1:                                                                                        \
        CALL(1);                                                                                   \
        break;                                                                                     \
    case 2:                                                                                        \
        CALL(2);                                                                                   \
        break;                                                                                     \
    case 3:                                                                                        \
        CALL(3);                                                                                   \
        break;                                                                                     \
    case 4:                                                                                        \
        CALL(4);                                                                                   \
        break;                                                                                     \
    case 5:                                                                                        \
        CALL(5);                                                                                   \
        break;                                                                                     \
    case 6:                                                                                        \
        CALL(6);                                                                                   \
        break;                                                                                     \
    case 7:                                                                                        \
        CALL(7);                                                                                   \
        break;                                                                                     \
    default:                                                                                       \
        CALL(8);                                                                                   \
        break;                                                                                     \
    }

/* Values c..c+15 (masked by mk) of the head row of hd values that starts at element `row` of a
 * KV cache of dtype dt, as float32 (LG_DT_I16S: times the row's scale, as ref.c does). */
INLINE __m512 load_kv(const void *base, lg_dtype dt, int64_t row, int hd, int64_t c, __mmask16 mk) {
    if (dt == LG_DT_F32) return _mm512_maskz_loadu_ps(mk, (const float *)base + row + c);
    __m256i h = _mm256_maskz_loadu_epi16(mk, (const uint16_t *)base + row + c);
    if (dt == LG_DT_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    if (dt == LG_DT_I16S) /* no lanes: maybe a padding key past the cache, scale unread */
        return mk == 0 ? _mm512_setzero_ps()
                       : _mm512_mul_ps(
                             _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(h)),
                             _mm512_set1_ps(kern_i16s_scale((const int16_t *)base + row, hd)));
    return _mm512_cvtph_ps(h);
}

typedef struct attn_job {
    float *out;
    const float *q;
    const void *k, *v;
    lg_dtype dt;
    int64_t n_q, n_kv, q_stride, kv_stride, q_pos0;
    int n_head, n_head_kv, hd, hdp, group;
    bool causal;
    float scale;
    float *kt;                  /* per KV head: hd x nkp, keys transposed (f32) */
    float *vf;                  /* per KV head: nkp x hdp (f32, zero-padded) */
    int64_t nkp;                /* n_kv rounded up to BK */
    int64_t n_qb;               /* query blocks */
    int64_t n_split, split_len; /* direct path: key ranges per (row, KV head) */
    float *part;                /* direct path: partial results */
    bool bf16;                  /* tiled path on vdpbf16ps (q, k, v, p rounded to bf16) */
    bool hilo;                  /* bf16, KERN_PREC_ACCURATE: q and p as hi + lo bf16 pairs */
    int hp;                     /* bf16: head_dim pairs */
    uint32_t *kp;               /* bf16, per KV head: hp x nkp pairs {k[t][2p], k[t][2p+1]} */
    uint32_t *vp;               /* bf16, per KV head: nkp/2 x hdp pairs {v[2u][d], v[2u+1][d]} */
    atomic_long next;
    kern_ctx *kc;
} attn_job;

static int64_t visible(const attn_job *j, int64_t i) {
    if (!j->causal) return j->n_kv;
    int64_t n = j->q_pos0 + i + 1;
    return n < j->n_kv ? (n < 0 ? 0 : n) : j->n_kv;
}

/* ---- direct path (decode): few query rows ----
 * A task is (query row, KV head, key range): every key and value row is converted once and
 * serves all the query heads that share it (GQA); the key range is split so all threads work
 * even with one KV head (flash-decoding). Each task leaves, per head, its running max, sum and
 * unnormalized output in `part`; direct_combine merges the ranges. */

#define SPLIT_MIN_KEYS 256

/* Lane u of the result = the sum of a[u]'s 16 lanes: the 16 dot products of a key block in one
 * vector, with 45 shuffles and adds instead of 16 horizontal reductions. Pairs are merged
 * within 128-bit lanes (unpack of floats, then of float pairs: each lane then holds 4 partial
 * sums for 4 keys), then across lanes (shuffle_f32x4 twice). */
INLINE __m512 hsum16(const __m512 a[16]) {
    __m512 s2[8], s4[4];
    for (int i = 0; i < 8; i++) /* per lane: a0+a2, b0+b2, a1+a3, b1+b3 */
        s2[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                              _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++) { /* per lane: the 4 partial sums of keys 4i..4i+3 */
        __m512d x = _mm512_castps_pd(s2[2 * i]), y = _mm512_castps_pd(s2[2 * i + 1]);
        s4[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                              _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    __m512 u01 = _mm512_add_ps(_mm512_shuffle_f32x4(s4[0], s4[1], 0x88),
                               _mm512_shuffle_f32x4(s4[0], s4[1], 0xdd));
    __m512 u23 = _mm512_add_ps(_mm512_shuffle_f32x4(s4[2], s4[3], 0x88),
                               _mm512_shuffle_f32x4(s4[2], s4[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(u01, u23, 0x88),
                         _mm512_shuffle_f32x4(u01, u23, 0xdd));
}

/* Scores of the group's heads for keys [t0, t0+n), 16 keys at a time: the block's key rows are
 * converted to f32 once (kb) and serve every head of the group; per head, 16 dot-product
 * accumulators (NV vectors of head dims each) are reduced together by hsum16. */
INLINE void dscores(const attn_job *j, int NV, const float *q0, int64_t koff, int64_t t0, int64_t n,
                    float *score, int64_t chunk) {
    int hd = j->hd;
    float kb[16][128] __attribute__((aligned(64)));
    __m512 sc = _mm512_set1_ps(j->scale);
    for (int64_t u0 = 0; u0 < n; u0 += 16) {
        int nb = n - u0 < 16 ? (int)(n - u0) : 16;
        for (int u = 0; u < 16; u++)
            for (int c = 0; c < NV; c++)
                _mm512_store_ps(kb[u] + c * 16,
                                u < nb ? load_kv(j->k, j->dt, (t0 + u0 + u) * j->kv_stride + koff,
                                                 hd, c * 16, tmask(hd - c * 16))
                                       : _mm512_setzero_ps());
        for (int h = 0; h < j->group; h++) {
            __m512 qv[8], acc[16];
            for (int c = 0; c < NV; c++)
                qv[c] = _mm512_maskz_loadu_ps(tmask(hd - c * 16), q0 + (int64_t)h * hd + c * 16);
            for (int u = 0; u < 16; u++) {
                acc[u] = _mm512_mul_ps(qv[0], _mm512_load_ps(kb[u]));
                for (int c = 1; c < NV; c++)
                    acc[u] = _mm512_fmadd_ps(qv[c], _mm512_load_ps(kb[u] + c * 16), acc[u]);
            }
            _mm512_mask_storeu_ps(score + h * chunk + u0, tmask(nb),
                                  _mm512_mul_ps(hsum16(acc), sc));
        }
    }
}

/* o += p . V for the group's heads, 16 keys at a time: the block's value rows are converted to
 * f32 once (vb) and serve every head; HC heads' output rows stay in registers per pass over the
 * block (without the buffer, a group of 7 heads took two passes, each converting every value
 * row again: the conversion of an int16/bf16 cache cost more than the products). */
INLINE void dpv(const attn_job *j, int NV, int64_t koff, int64_t t0, int64_t n, const float *score,
                int64_t chunk, float *part) {
    enum { HC_MAX = 8 };
    const int HC = NV <= 3 ? HC_MAX : 28 / NV; /* HC x NV accumulators + 2 within 32 zmm */
    int hd = j->hd;
    float vb[16][128] __attribute__((aligned(64)));
    for (int64_t u0 = 0; u0 < n; u0 += 16) {
        int nb = n - u0 < 16 ? (int)(n - u0) : 16;
        for (int u = 0; u < nb; u++)
            for (int c = 0; c < NV; c++)
                _mm512_store_ps(vb[u] + c * 16,
                                load_kv(j->v, j->dt, (t0 + u0 + u) * j->kv_stride + koff, hd,
                                        c * 16, tmask(hd - c * 16)));
        for (int h0 = 0; h0 < j->group; h0 += HC) {
            int hc = j->group - h0 < HC ? j->group - h0 : HC;
            __m512 acc[HC_MAX][8];
            for (int h = 0; h < HC; h++)
                for (int c = 0; c < NV; c++)
                    acc[h][c] = _mm512_maskz_loadu_ps(h < hc ? tmask(hd - c * 16) : 0,
                                                      part + (h0 + h) * (hd + 2) + 2 + c * 16);
            for (int u = 0; u < nb; u++)
                for (int h = 0; h < HC; h++) {
                    if (h >= hc) break;
                    __m512 p = _mm512_set1_ps(score[(h0 + h) * chunk + u0 + u]);
                    for (int c = 0; c < NV; c++)
                        acc[h][c] = _mm512_fmadd_ps(p, _mm512_load_ps(vb[u] + c * 16), acc[h][c]);
                }
            for (int h = 0; h < HC; h++) {
                if (h >= hc) break;
                for (int c = 0; c < NV; c++)
                    _mm512_mask_storeu_ps(part + (h0 + h) * (hd + 2) + 2 + c * 16,
                                          tmask(hd - c * 16), acc[h][c]);
            }
        }
    }
}

/* NV (vectors per head row) fixed per instantiation, so the arrays live in registers. */
static void dscores_any(const attn_job *j, int nvec, const float *q0, int64_t koff, int64_t t0,
                        int64_t n, float *score, int64_t chunk) {
#define DSCORES(NV) dscores(j, NV, q0, koff, t0, n, score, chunk)
    NV_DISPATCH(nvec, DSCORES)
#undef DSCORES
}

static void dpv_any(const attn_job *j, int nvec, int64_t koff, int64_t t0, int64_t n,
                    const float *score, int64_t chunk, float *part) {
#define DPV(NV) dpv(j, NV, koff, t0, n, score, chunk, part)
    NV_DISPATCH(nvec, DPV)
#undef DPV
}

static void direct_task(void *arg, int ith, int nth) {
    (void)nth;
    attn_job *j = arg;
    int G = j->group, hd = j->hd, nvec = (hd + 15) / 16;
    int64_t chunk = j->split_len;
    float *score =
        kern_scratch(j->kc, KERN_SCRATCH_THREAD0 + ith, ((size_t)G * (size_t)chunk + 64) * 4);
    int64_t n_tasks = j->n_q * j->n_head_kv * j->n_split;
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= n_tasks) break;
        int64_t i = t / (j->n_head_kv * j->n_split);
        int g = (int)(t / j->n_split % j->n_head_kv);
        int64_t sp = t % j->n_split, t0 = sp * chunk, t1 = t0 + chunk, n_vis = visible(j, i);
        if (t1 > n_vis) t1 = n_vis;
        int64_t koff = g * kern_kv_head_elems(j->dt, hd);
        float *part = j->part + t * G * (hd + 2); /* per head: m, l, o[hd] */
        for (int hh = 0; hh < G; hh++) {
            part[hh * (hd + 2)] = -INFINITY;
            part[hh * (hd + 2) + 1] = 0.0f;
            memset(part + hh * (hd + 2) + 2, 0, (size_t)hd * 4);
        }
        if (t1 <= t0) continue;
        int64_t n = t1 - t0;
        const float *q0 = j->q + i * j->q_stride + (int64_t)g * G * hd;
        dscores_any(j, nvec, q0, koff, t0, n, score, chunk);
        for (int hh = 0; hh < G; hh++) {
            float *sc = score + hh * chunk, mx = -INFINITY;
            for (int64_t u = 0; u < n; u++) mx = sc[u] > mx ? sc[u] : mx;
            __m512 vsum = _mm512_setzero_ps(), vmx = _mm512_set1_ps(mx);
            for (int64_t u = 0; u < n; u += 16) {
                __mmask16 mk = tmask(n - u);
                __m512 e = _mm512_maskz_mov_ps(
                    mk, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sc + u), vmx)));
                _mm512_mask_storeu_ps(sc + u, mk, e);
                vsum = _mm512_add_ps(vsum, e);
            }
            part[hh * (hd + 2)] = mx;
            part[hh * (hd + 2) + 1] = _mm512_reduce_add_ps(vsum);
        }
        dpv_any(j, nvec, koff, t0, n, score, chunk, part);
    }
}

static void direct_combine(void *arg, int ith, int nth) {
    attn_job *j = arg;
    int G = j->group, hd = j->hd;
    int64_t lo, hi;
    kern_split(j->n_q * j->n_head, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        int64_t i = r / j->n_head;
        int h = (int)(r % j->n_head), g = h / G, hh = h % G;
        const float *base = j->part + ((i * j->n_head_kv + g) * j->n_split) * G * (hd + 2);
        float M = -INFINITY;
        for (int64_t sp = 0; sp < j->n_split; sp++) {
            float m = base[(sp * G + hh) * (hd + 2)];
            M = m > M ? m : M;
        }
        float *dst = j->out + i * (int64_t)j->n_head * hd + (int64_t)h * hd;
        memset(dst, 0, (size_t)hd * 4);
        if (M == -INFINITY) continue;
        float L = 0.0f;
        for (int64_t sp = 0; sp < j->n_split; sp++) {
            const float *pp = base + (sp * G + hh) * (hd + 2);
            if (pp[0] == -INFINITY) continue;
            float w = expf(pp[0] - M);
            L += w * pp[1];
            for (int d = 0; d < hd; d++) dst[d] += w * pp[2 + d];
        }
        for (int d = 0; d < hd; d++) dst[d] /= L;
    }
}

/* ---- tiled path ---- */

/* K -> kt (transposed), V -> vf, both f32, for keys [t0, t1) of every KV head. */
static void convert_kv_task(void *arg, int ith, int nth) {
    attn_job *j = arg;
    int64_t lo, hi, hd = j->hd;
    kern_split(j->nkp * j->n_head_kv, ith, nth, &lo, &hi);
    float tmp[128];
    for (int64_t u = lo; u < hi; u++) {
        int g = (int)(u / j->nkp);
        int64_t t = u % j->nkp;
        float *kt = j->kt + (int64_t)g * hd * j->nkp;
        float *vf = j->vf + ((int64_t)g * j->nkp + t) * j->hdp;
        if (t >= j->n_kv) { /* padding keys: finite zeros, masked out of every softmax */
            for (int64_t d = 0; d < hd; d++) kt[d * j->nkp + t] = 0.0f;
            for (int d = 0; d < j->hdp; d++) vf[d] = 0.0f;
            continue;
        }
        int64_t off = t * j->kv_stride + g * kern_kv_head_elems(j->dt, (int)hd);
        for (int64_t c = 0; c < hd; c += 16) {
            __mmask16 mk = tmask(hd - c);
            _mm512_storeu_ps(tmp + c, load_kv(j->k, j->dt, off, (int)hd, c, mk));
            _mm512_store_ps(vf + c, load_kv(j->v, j->dt, off, (int)hd, c, mk));
        }
        for (int64_t d = 0; d < hd; d++) kt[d * j->nkp + t] = tmp[d];
    }
}

/* S = Q K^T for rows i0..i0+QR (f32 K transposed) against keys [t0, t0+BK). */
static void scores_f32(const attn_job *j, int h, int64_t i0, int nr, int64_t t0, __m512 s[QR][4]) {
    int hd = j->hd, g = h / j->group;
    const float *kt = j->kt + (int64_t)g * hd * j->nkp + t0;
    const float *qr[QR];
    for (int r = 0; r < QR; r++)
        qr[r] = j->q + (i0 + (r < nr ? r : 0)) * j->q_stride + (int64_t)h * hd;
    for (int d = 0; d < hd; d++) {
        const float *kd = kt + (int64_t)d * j->nkp;
        __m512 k0 = _mm512_loadu_ps(kd), k1 = _mm512_loadu_ps(kd + 16);
        __m512 k2 = _mm512_loadu_ps(kd + 32), k3 = _mm512_loadu_ps(kd + 48);
#pragma GCC unroll 4
        for (int r = 0; r < QR; r++) {
            __m512 qv = _mm512_set1_ps(qr[r][d]);
            s[r][0] = _mm512_fmadd_ps(qv, k0, s[r][0]);
            s[r][1] = _mm512_fmadd_ps(qv, k1, s[r][1]);
            s[r][2] = _mm512_fmadd_ps(qv, k2, s[r][2]);
            s[r][3] = _mm512_fmadd_ps(qv, k3, s[r][3]);
        }
    }
}

/* The same with bf16 pairs: qb holds QR rows of hp query pairs; with SQ (a constant per
 * instantiation) ql holds their residuals, multiplied by the same keys (K is exact bf16). */
INLINE void scores_bf16_v(const attn_job *j, bool SQ, int h, const uint32_t *qb, const uint32_t *ql,
                          int64_t t0, __m512 s[QR][4]) {
    int g = h / j->group;
    const uint32_t *kp = j->kp + (int64_t)g * j->hp * j->nkp + t0;
    for (int p = 0; p < j->hp; p++) {
        __m512bh k[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            k[c] = (__m512bh)_mm512_load_si512((const void *)(kp + (int64_t)p * j->nkp + c * 16));
#pragma GCC unroll 4
        for (int r = 0; r < QR; r++) {
            __m512bh qv = (__m512bh)_mm512_set1_epi32((int)qb[r * j->hp + p]);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) s[r][c] = _mm512_dpbf16_ps(s[r][c], qv, k[c]);
            if (SQ) {
                __m512bh qlv = (__m512bh)_mm512_set1_epi32((int)ql[r * j->hp + p]);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) s[r][c] = _mm512_dpbf16_ps(s[r][c], qlv, k[c]);
            }
        }
    }
}

static void scores_bf16(const attn_job *j, int h, const uint32_t *qb, const uint32_t *ql,
                        int64_t t0, __m512 s[QR][4]) {
    if (j->hilo)
        scores_bf16_v(j, true, h, qb, ql, t0, s);
    else
        scores_bf16_v(j, false, h, qb, ql, t0, s);
}

/* Online softmax for one register block: scales and masks S, updates the running max m and sum
 * l, rescales the output rows o, and leaves the block's probabilities in p. */
static void softmax_update(const attn_job *j, int64_t i0, int nr, int64_t t0, __m512 s[QR][4],
                           float *m, float *l, float *o, float p[QR][BK]) {
    __m512 sc = _mm512_set1_ps(j->scale);
    for (int r = 0; r < QR; r++) {
        if (r >= nr) { /* rows past the end: zero probabilities */
            for (int c = 0; c < 4; c++) _mm512_store_ps(p[r] + c * 16, _mm512_setzero_ps());
            continue;
        }
        int64_t n_vis = visible(j, i0 + r) - t0; /* keys of this block the row may see */
        __m512 mx = _mm512_set1_ps(-INFINITY);
        __mmask16 mk[4];
        for (int c = 0; c < 4; c++) {
            mk[c] = n_vis > c * 16 ? tmask(n_vis - c * 16) : 0;
            s[r][c] = _mm512_mul_ps(s[r][c], sc);
            mx = _mm512_mask_max_ps(mx, mk[c], mx, s[r][c]);
        }
        float bmax = _mm512_reduce_max_ps(mx);
        if (n_vis <= 0 || bmax == -INFINITY) { /* nothing visible in this block */
            for (int c = 0; c < 4; c++) _mm512_store_ps(p[r] + c * 16, _mm512_setzero_ps());
            continue;
        }
        float mnew = bmax > m[r] ? bmax : m[r];
        float corr = m[r] == -INFINITY ? 0.0f : expf(m[r] - mnew);
        __m512 vm = _mm512_set1_ps(mnew), sum = _mm512_setzero_ps();
        for (int c = 0; c < 4; c++) {
            __m512 e = _mm512_maskz_mov_ps(mk[c], exp512(_mm512_sub_ps(s[r][c], vm)));
            _mm512_store_ps(p[r] + c * 16, e);
            sum = _mm512_add_ps(sum, e);
        }
        l[r] = l[r] * corr + _mm512_reduce_add_ps(sum);
        m[r] = mnew;
        if (corr != 1.0f) {
            __m512 vc = _mm512_set1_ps(corr);
            for (int c = 0; c < j->hdp; c += 16)
                _mm512_store_ps(o + r * j->hdp + c,
                                _mm512_mul_ps(_mm512_load_ps(o + r * j->hdp + c), vc));
        }
    }
}

/* Output rows per pass over V: RP x NV accumulators plus NV value vectors fit in 32 zmm. */
#define PV_ROWS(NV) ((NV) <= 5 ? 4 : 2)

/* o[r] += p[r] . V (f32): PV_ROWS rows per pass share each V load. Rows of the register block
 * past nr have zero probabilities (softmax_update) and a slot in the task's output buffer, so
 * they run unmasked and are never written out. */
INLINE void pv_f32_v(const attn_job *j, int NV, int g, int64_t t0, float p[QR][BK], float *o) {
    enum { RP_MAX = 4 };
    const int RP = PV_ROWS(NV);
    const float *vf = j->vf + ((int64_t)g * j->nkp + t0) * j->hdp;
    int64_t hdp = j->hdp;
    for (int r = 0; r < QR; r += RP) {
        __m512 a[RP_MAX][8];
        for (int i = 0; i < RP; i++)
            for (int c = 0; c < NV; c++) a[i][c] = _mm512_load_ps(o + (r + i) * hdp + c * 16);
        for (int t = 0; t < BK; t++) {
            const float *vt = vf + (int64_t)t * hdp;
            __m512 vv[8];
            for (int c = 0; c < NV; c++) vv[c] = _mm512_load_ps(vt + c * 16);
            for (int i = 0; i < RP; i++) {
                __m512 pi = _mm512_set1_ps(p[r + i][t]);
                for (int c = 0; c < NV; c++) a[i][c] = _mm512_fmadd_ps(pi, vv[c], a[i][c]);
            }
        }
        for (int i = 0; i < RP; i++)
            for (int c = 0; c < NV; c++) _mm512_store_ps(o + (r + i) * hdp + c * 16, a[i][c]);
    }
}

static void pv_f32(const attn_job *j, int g, int64_t t0, float p[QR][BK], float *o){
#define PV_F32(NV) pv_f32_v(j, NV, g, t0, p, o)
    NV_DISPATCH(j->hdp / 16, PV_F32)
#undef PV_F32
}

/* The same with p rounded to bf16 pairs of keys against V in key-pair layout; with SQ also
 * the probabilities' residuals against the same (exact bf16) values. */
INLINE void pv_bf16_v(const attn_job *j, bool SQ, int NV, int g, int64_t t0, float p[QR][BK],
                      float *o) {
    enum { RP_MAX = 4 };
    const int RP = SQ ? 2 : PV_ROWS(NV); /* SQ: two broadcasts per row */
    const uint32_t *vp = j->vp + ((int64_t)g * j->nkp + t0) / 2 * j->hdp;
    uint32_t pp[QR][BK / 2] __attribute__((aligned(64)));
    uint32_t pl[QR][BK / 2] __attribute__((aligned(64)));
    for (int r = 0; r < QR; r++)
        for (int c = 0; c < BK; c += 32) {
            __m512 x0 = _mm512_load_ps(p[r] + c), x1 = _mm512_load_ps(p[r] + c + 16);
            __m512bh b = _mm512_cvtne2ps_pbh(x1, x0);
            _mm512_store_si512((void *)(pp[r] + c / 2), (__m512i)b);
            if (SQ) {
                __m512 h0 = bf16_back(_mm512_castsi512_si256((__m512i)b));
                __m512 h1 = bf16_back(_mm512_extracti64x4_epi64((__m512i)b, 1));
                __m512bh l = _mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0));
                _mm512_store_si512((void *)(pl[r] + c / 2), (__m512i)l);
            }
        }
    int64_t hdp = j->hdp;
    for (int r = 0; r < QR; r += RP) {
        __m512 a[RP_MAX][8];
        for (int i = 0; i < RP; i++)
            for (int c = 0; c < NV; c++) a[i][c] = _mm512_load_ps(o + (r + i) * hdp + c * 16);
        for (int t = 0; t < BK / 2; t++) {
            const uint32_t *vt = vp + (int64_t)t * hdp;
            __m512bh vv[8];
            for (int c = 0; c < NV; c++)
                vv[c] = (__m512bh)_mm512_load_si512((const void *)(vt + c * 16));
            for (int i = 0; i < RP; i++) {
                __m512bh pi = (__m512bh)_mm512_set1_epi32((int)pp[r + i][t]);
                for (int c = 0; c < NV; c++) a[i][c] = _mm512_dpbf16_ps(a[i][c], pi, vv[c]);
                if (SQ) {
                    __m512bh li = (__m512bh)_mm512_set1_epi32((int)pl[r + i][t]);
                    for (int c = 0; c < NV; c++) a[i][c] = _mm512_dpbf16_ps(a[i][c], li, vv[c]);
                }
            }
        }
        for (int i = 0; i < RP; i++)
            for (int c = 0; c < NV; c++) _mm512_store_ps(o + (r + i) * hdp + c * 16, a[i][c]);
    }
}

static void pv_bf16(const attn_job *j, int g, int64_t t0, float p[QR][BK], float *o) {
#define PV_HILO(NV) pv_bf16_v(j, true, NV, g, t0, p, o)
#define PV_BF16(NV) pv_bf16_v(j, false, NV, g, t0, p, o)
    if (j->hilo) {
        NV_DISPATCH(j->hdp / 16, PV_HILO)
    } else {
        NV_DISPATCH(j->hdp / 16, PV_BF16)
    }
#undef PV_HILO
#undef PV_BF16
}

/* One register block: rows i0..i0+nr (task-local row lr) against keys [t0, t0+BK). */
static void block_rows(const attn_job *j, int h, int64_t i0, int nr, int64_t t0, float *m, float *l,
                       float *o, const uint32_t *qb, const uint32_t *ql) {
    __m512 s[QR][4];
    for (int r = 0; r < QR; r++)
        for (int c = 0; c < 4; c++) s[r][c] = _mm512_setzero_ps();
    if (j->bf16)
        scores_bf16(j, h, qb, ql, t0, s);
    else
        scores_f32(j, h, i0, nr, t0, s);
    float p[QR][BK] __attribute__((aligned(64)));
    softmax_update(j, i0, nr, t0, s, m, l, o, p);
    if (j->bf16)
        pv_bf16(j, h / j->group, t0, p, o);
    else
        pv_f32(j, h / j->group, t0, p, o);
}

/* K, V -> kp, vp (bf16 pairs) for key pairs of every KV head. */
static void convert_kv_bf16_task(void *arg, int ith, int nth) {
    attn_job *j = arg;
    int64_t lo, hi, hd = j->hd, np = j->nkp / 2;
    kern_split(np * j->n_head_kv, ith, nth, &lo, &hi);
    uint16_t kb[2][128] __attribute__((aligned(64)));
    for (int64_t u = lo; u < hi; u++) {
        int g = (int)(u / np);
        int64_t t2 = u % np;
        uint32_t *kp = j->kp + (int64_t)g * j->hp * j->nkp;
        uint32_t *vp = j->vp + ((int64_t)g * np + t2) * j->hdp;
        __m512i vlo[8], vhi[8];
        for (int e = 0; e < 2; e++) {
            int64_t t = 2 * t2 + e, off = t * j->kv_stride + g * kern_kv_head_elems(j->dt, (int)hd);
            bool real = t < j->n_kv; /* padding keys: zeros, masked out of every softmax */
            for (int64_t c = 0; c < j->hdp; c += 16) {
                __mmask16 mk = real ? tmask(hd - c) : 0;
                __m512 kv = load_kv(j->k, j->dt, off, (int)hd, c, mk);
                __m512 vv = load_kv(j->v, j->dt, off, (int)hd, c, mk);
                _mm256_store_si256((__m256i *)(kb[e] + c), (__m256i)_mm512_cvtneps_pbh(kv));
                __m512i v32 = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(vv));
                if (e == 0)
                    vlo[c / 16] = v32;
                else
                    vhi[c / 16] = _mm512_slli_epi32(v32, 16);
            }
        }
        for (int c = 0; c < j->hdp / 16; c++)
            _mm512_store_si512((void *)(vp + c * 16), _mm512_or_si512(vlo[c], vhi[c]));
        for (int p = 0; p < j->hp; p++) {
            uint32_t a, b;
            memcpy(&a, kb[0] + 2 * p, 4);
            memcpy(&b, kb[1] + 2 * p, 4);
            kp[(int64_t)p * j->nkp + 2 * t2] = a;
            kp[(int64_t)p * j->nkp + 2 * t2 + 1] = b;
        }
    }
}

/* Rounds the task's query rows to bf16 pairs (rows past n_q: zeros); with hilo also their
 * residuals into ql. */
static void queries_bf16(const attn_job *j, int h, int64_t i0, int64_t nrow, uint32_t *qb,
                         uint32_t *ql) {
    for (int64_t r = 0; r < QB; r++) {
        uint32_t *dst = qb + r * j->hp, *dl = ql + r * j->hp;
        if (r >= nrow) {
            memset(dst, 0, (size_t)j->hp * 4);
            if (j->hilo) memset(dl, 0, (size_t)j->hp * 4);
            continue;
        }
        const float *src = j->q + (i0 + r) * j->q_stride + (int64_t)h * j->hd;
        uint16_t tmp[2][128 + 32] __attribute__((aligned(64)));
        for (int c = 0; c < j->hd; c += 32) {
            __m512 x0 = _mm512_maskz_loadu_ps(tmask(j->hd - c), src + c);
            __m512 x1 = _mm512_maskz_loadu_ps(tmask(j->hd - c - 16), src + c + 16);
            __m512i b = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
            _mm512_store_si512((void *)(tmp[0] + c), b);
            if (!j->hilo) continue;
            __m512 h0 = bf16_back(_mm512_castsi512_si256(b));
            __m512 h1 = bf16_back(_mm512_extracti64x4_epi64(b, 1));
            _mm512_store_si512(
                (void *)(tmp[1] + c),
                (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0)));
        }
        memcpy(dst, tmp[0], (size_t)j->hp * 4);
        if (j->hilo) memcpy(dl, tmp[1], (size_t)j->hp * 4);
    }
}

static void tiled_task(void *arg, int ith, int nth) {
    (void)nth;
    attn_job *j = arg;
    float *o = kern_scratch(j->kc, KERN_SCRATCH_THREAD0 + ith,
                            (size_t)QB * j->hdp * 4 + 2 * (size_t)QB * 64 * 4);
    uint32_t *qb = (uint32_t *)(o + QB * j->hdp); /* bf16: the task's query pairs */
    uint32_t *ql = qb + QB * 64;                  /* hilo: their residuals */
    int64_t n_tasks = j->n_qb * j->n_head;
    for (;;) {
        /* Dynamic order: causal blocks differ in work; later query blocks (more keys) first. */
        int64_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= n_tasks) break;
        int64_t blk = j->n_qb - 1 - t / j->n_head;
        int h = (int)(t % j->n_head);
        int64_t i0 = blk * QB, nrow = j->n_q - i0 < QB ? j->n_q - i0 : QB;
        float m[QB], l[QB];
        for (int r = 0; r < QB; r++) m[r] = -INFINITY, l[r] = 0.0f;
        memset(o, 0, (size_t)QB * j->hdp * 4);
        if (j->bf16) queries_bf16(j, h, i0, nrow, qb, ql);
        int64_t n_keys = visible(j, i0 + nrow - 1);
        for (int64_t t0 = 0; t0 < n_keys; t0 += BK)
            for (int64_t r = 0; r < nrow; r += QR)
                block_rows(j, h, i0 + r, nrow - r < QR ? (int)(nrow - r) : QR, t0, m + r, l + r,
                           o + r * j->hdp, qb + r * j->hp, ql + r * j->hp);
        for (int64_t r = 0; r < nrow; r++) {
            float *dst = j->out + (i0 + r) * (int64_t)j->n_head * j->hd + (int64_t)h * j->hd;
            float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            for (int c = 0; c < j->hd; c += 16)
                _mm512_mask_storeu_ps(
                    dst + c, tmask(j->hd - c),
                    _mm512_mul_ps(_mm512_load_ps(o + r * j->hdp + c), _mm512_set1_ps(inv)));
        }
    }
}

static void attention(kern_ctx *kc, float *out, const float *q, const void *k, const void *v,
                      lg_dtype kv_dtype, int64_t n_q, int64_t n_kv, int n_head, int n_head_kv,
                      int head_dim, int64_t q_stride, int64_t kv_stride, bool causal,
                      int64_t q_pos0, float scale, bool bf16) {
    if (n_q <= 0) return; /* nothing to write (and no rows to split) */
    /* KERN_PREC_ACCURATE: q and the probabilities become hi + lo bf16 pairs (two products
     * each, K and V exact bf16 from a bf16 cache). A cache in f32/f16 would need its residuals
     * too, three products per pair: 1.5x the f32 path's work, measured 31 vs 21 ms on SigLIP's
     * attention (docs/kernels.md), so such caches take the f32 path. */
    bool hilo = bf16 && kern_ctx_precision(kc) == KERN_PREC_ACCURATE;
    if (hilo && kv_dtype != LG_DT_BF16) bf16 = hilo = false;
    if (head_dim > 128 || n_head % n_head_kv != 0) { /* outside what the registers hold */
        kern_ref_table()->attention(kc, out, q, k, v, kv_dtype, n_q, n_kv, n_head, n_head_kv,
                                    head_dim, q_stride, kv_stride, causal, q_pos0, scale);
        return;
    }
    attn_job j = {.out = out,
                  .q = q,
                  .k = k,
                  .v = v,
                  .dt = kv_dtype,
                  .n_q = n_q,
                  .n_kv = n_kv,
                  .q_stride = q_stride,
                  .kv_stride = kv_stride,
                  .q_pos0 = q_pos0,
                  .n_head = n_head,
                  .n_head_kv = n_head_kv,
                  .hd = head_dim,
                  .hdp = (head_dim + 15) / 16 * 16,
                  .group = n_head / n_head_kv,
                  .causal = causal,
                  .scale = scale,
                  .bf16 = bf16,
                  .hilo = hilo,
                  .hp = (head_dim + 1) / 2,
                  .kc = kc};
    atomic_init(&j.next, 0);
    kern_pool *pool = kern_ctx_pool(kc);
    if (n_q < MIN_TILED || n_kv == 0) {
        int nth = kern_pool_size(pool);
        int64_t rows = n_q * n_head_kv;
        j.n_split = (2 * nth + rows - 1) / rows;
        if (j.n_split > (n_kv + SPLIT_MIN_KEYS - 1) / SPLIT_MIN_KEYS)
            j.n_split = (n_kv + SPLIT_MIN_KEYS - 1) / SPLIT_MIN_KEYS;
        if (j.n_split < 1) j.n_split = 1;
        j.split_len = (n_kv + j.n_split - 1) / j.n_split;
        if (j.split_len < 1) j.split_len = 1;
        size_t n_part = (size_t)(rows * j.n_split) * (size_t)j.group * (size_t)(head_dim + 2);
        j.part = kern_scratch(kc, KERN_SCRATCH_KV, n_part * 4);
        kern_pool_run(pool, direct_task, &j);
        kern_pool_run(pool, direct_combine, &j);
        return;
    }
    j.nkp = (n_kv + BK - 1) / BK * BK;
    j.n_qb = (n_q + QB - 1) / QB;
    if (bf16) {
        size_t kp_n = (size_t)j.hp * (size_t)j.nkp * (size_t)n_head_kv;
        size_t vp_n = (size_t)j.nkp / 2 * (size_t)j.hdp * (size_t)n_head_kv;
        uint32_t *buf = kern_scratch(kc, KERN_SCRATCH_KV, (kp_n + vp_n) * 4);
        j.kp = buf;
        j.vp = buf + kp_n; /* kp_n is a multiple of 64 entries: vp stays 64-byte aligned */
        kern_pool_run(pool, convert_kv_bf16_task, &j);
    } else {
        size_t per_head = (size_t)(j.hd + j.hdp) * (size_t)j.nkp;
        float *buf = kern_scratch(kc, KERN_SCRATCH_KV, per_head * (size_t)n_head_kv * 4);
        j.kt = buf;
        j.vf = buf + (size_t)j.hd * (size_t)j.nkp * (size_t)n_head_kv;
        kern_pool_run(pool, convert_kv_task, &j);
    }
    kern_pool_run(pool, tiled_task, &j);
}

void kern_avx512_attention(kern_ctx *kc, float *out, const float *q, const void *k, const void *v,
                           lg_dtype kv_dtype, int64_t n_q, int64_t n_kv, int n_head, int n_head_kv,
                           int head_dim, int64_t q_stride, int64_t kv_stride, bool causal,
                           int64_t q_pos0, float scale) {
    attention(kc, out, q, k, v, kv_dtype, n_q, n_kv, n_head, n_head_kv, head_dim, q_stride,
              kv_stride, causal, q_pos0, scale, false);
}

void kern_avx512bf16_attention(kern_ctx *kc, float *out, const float *q, const void *k,
                               const void *v, lg_dtype kv_dtype, int64_t n_q, int64_t n_kv,
                               int n_head, int n_head_kv, int head_dim, int64_t q_stride,
                               int64_t kv_stride, bool causal, int64_t q_pos0, float scale) {
    attention(kc, out, q, k, v, kv_dtype, n_q, n_kv, n_head, n_head_kv, head_dim, q_stride,
              kv_stride, causal, q_pos0, scale, true);
}
