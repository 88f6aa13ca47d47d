/*
 * ew_avx512.c — the element-wise and row-wise helpers in AVX-512, for the context-dispatched
 * kern_op_* entry points (ew.c): the same math as ref.c's kern_rmsnorm, kern_layernorm,
 * kern_gelu_tanh (tanh u = 1 - 2/(e^{2u}+1)), kern_gelu_erf (Abramowitz-Stegun 7.1.26 erf,
 * |error| < 1.5e-7), kern_quick_gelu, kern_silu_mul and kern_add, with exp512 in place of expf.
 * Each works on a range; ew.c splits the ranges across threads.
 */
#include "kern_impl.h"

#include <math.h>

#include "simd_avx512.h"

void kern_avx512_rmsnorm(float *y, const float *x, const float *g, int64_t rows, int64_t n,
                         float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m512 ss = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __m512 v = _mm512_maskz_loadu_ps(tmask(n - i), xr + i);
            ss = _mm512_fmadd_ps(v, v, ss);
        }
        __m512 inv = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(ss) / (float)n + eps));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mk = tmask(n - i);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xr + i), inv);
            _mm512_mask_storeu_ps(yr + i, mk, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mk, g + i)));
        }
    }
}

void kern_avx512_layernorm(float *y, const float *x, const float *g, const float *b, int64_t rows,
                           int64_t n, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m512 s = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16)
            s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tmask(n - i), xr + i));
        float mean = _mm512_reduce_add_ps(s) / (float)n;
        __m512 vm = _mm512_set1_ps(mean), ss = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mk = tmask(n - i);
            __m512 d = _mm512_maskz_sub_ps(mk, _mm512_maskz_loadu_ps(mk, xr + i), vm);
            ss = _mm512_fmadd_ps(d, d, ss);
        }
        __m512 inv = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(ss) / (float)n + eps));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 mk = tmask(n - i);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, xr + i), vm), inv);
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mk, g + i));
            if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, b + i));
            _mm512_mask_storeu_ps(yr + i, mk, v);
        }
    }
}

INLINE __m512 gelu_tanh16(__m512 v) {
    __m512 u = _mm512_mul_ps(
        _mm512_set1_ps(0.7978845608028654f),
        _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v), _mm512_mul_ps(v, v), v));
    u = _mm512_min_ps(_mm512_max_ps(u, _mm512_set1_ps(-9.0f)), _mm512_set1_ps(9.0f));
    __m512 e = exp512(_mm512_add_ps(u, u));
    __m512 t =
        _mm512_sub_ps(_mm512_set1_ps(1.0f),
                      _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), t));
}

INLINE __m512 erf16(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
    __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
    /* copy x's sign onto y */
    return _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(y),
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
}

/* 1 / (1 + e^{-a}) */
INLINE __m512 sigmoid16(__m512 a) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), a));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

void kern_avx512_unary(int op, float *x, const float *other, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mk = tmask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(mk, x + i), r;
        switch (op) {
        case KERN_EW_GELU_TANH:
            r = gelu_tanh16(v);
            break;
        case KERN_EW_GELU_ERF:
            r = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_set1_ps(0.5f), v),
                _mm512_add_ps(_mm512_set1_ps(1.0f),
                              erf16(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)))));
            break;
        case KERN_EW_QUICK_GELU:
            r = _mm512_mul_ps(v, sigmoid16(_mm512_mul_ps(v, _mm512_set1_ps(1.702f))));
            break;
        case KERN_EW_SILU_MUL:
            r = _mm512_mul_ps(_mm512_mul_ps(v, sigmoid16(v)), _mm512_maskz_loadu_ps(mk, other + i));
            break;
        default: /* KERN_EW_ADD */
            r = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, other + i));
            break;
        }
        _mm512_mask_storeu_ps(x + i, mk, r);
    }
}
