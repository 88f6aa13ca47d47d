/*
 * matmul_amx.c — y = x W^T + b for large m on AMX-BF16 tiles (Intel SDM vol. 1 ch. 18, "Intel
 * AMX"): activations rounded to bf16 once per call, weights in the VNNI panels of kern_impl.h
 * (packed once by kern_prepare), a 32x32 block of C in four accumulator tiles, each k step of 32
 * loading two A tiles and two B tiles for four tdpbf16ps (KERN_PREC_ACCURATE: then two more A
 * tiles of the activations' bf16 residuals against the same B tiles, four more tdpbf16ps into
 * the same accumulators). Small m (decode) and the driver are
 * those of matmul_avx512.c. The same block loop also runs with every tile instruction replaced
 * by plain C that does what the instruction does ("amx-emu"), so machines without AMX still
 * test this file's addressing and tails against ref.c.
 */
#include "kern_impl.h"

#include <immintrin.h>

#define AMX_MIN_M 32 /* below this the 6x64 AVX512-BF16 tile wastes less */

/* Tile configuration (palette 1): 64-byte aligned, in memory the compiler must keep (gcc 12 may
 * drop stores to a struct that only _tile_loadconfig reads; see docs/kernels.md). */
typedef struct tilecfg {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) tilecfg;

/* tiles 0-3: C (16 x 16 f32), 4-5: A (16 rows x 32 bf16), 6-7: B (16 pairs x 16 columns) */
static void fill_cfg(volatile tilecfg *cfg) {
    volatile uint8_t *bytes = (volatile uint8_t *)cfg;
    for (int i = 0; i < 64; i++) bytes[i] = 0;
    cfg->palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg->colsb[t] = 64;
        cfg->rows[t] = 16;
    }
}

/* ---- the plain-C tiles of amx-emu ---- */

typedef struct emu_tiles {
    float c[4][16][16];
    uint16_t a[2][16][32];
    uint16_t b[2][16][32];
} emu_tiles;

static void emu_load(uint16_t t[16][32], const uint16_t *p, int64_t stride_bytes) {
    for (int r = 0; r < 16; r++) memcpy(t[r], (const char *)p + r * stride_bytes, 64);
}

/* tdpbf16ps: c[m][n] += sum_k a[m][2k]*b[k][2n] + a[m][2k+1]*b[k][2n+1] (in f32). */
static void emu_dp(float c[16][16], uint16_t a[16][32], uint16_t b[16][32]) {
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float s = c[m][n];
            for (int k = 0; k < 16; k++)
                s += lg_bf16_to_f32(a[m][2 * k]) * lg_bf16_to_f32(b[k][2 * n]) +
                     lg_bf16_to_f32(a[m][2 * k + 1]) * lg_bf16_to_f32(b[k][2 * n + 1]);
            c[m][n] = s;
        }
}

static void emu_store(float c[16][16], float *p, int64_t stride_bytes) {
    for (int r = 0; r < 16; r++) memcpy((char *)p + r * stride_bytes, c[r], 64);
}

/* Copies a 32x32 f32 result to C with bias, keeping only the valid rows and columns. */
static void write_out(const kern_block_args *ba, int64_t r0, int64_t c0, const float *res) {
    int64_t nr = ba->rows - r0 < 32 ? ba->rows - r0 : 32;
    int64_t nc = ba->cols - c0 < 32 ? ba->cols - c0 : 32;
    for (int64_t r = 0; r < nr; r++) {
        float *dst = ba->c + (r0 + r) * ba->ldc + c0;
        for (int h = 0; h < 2 && h * 16 < nc; h++) {
            int64_t n = nc - h * 16 < 16 ? nc - h * 16 : 16;
            __mmask16 mk = (__mmask16)((1u << n) - 1u);
            __m512 v = _mm512_loadu_ps(res + r * 32 + h * 16);
            if (ba->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, ba->bias + c0 + h * 16));
            _mm512_mask_storeu_ps(dst + h * 16, mk, v);
        }
    }
}

/* The loop both variants share. TZERO/TLOAD/TDP/TSTORE name tile operations; B's second panel
 * is loaded only when it exists (has2), its tiles then stay zero and are ignored. */
#define AMX_BLOCK_LOOP(TZERO, TLOAD_A, TLOAD_B, TDP, TSTORE)                                       \
    int64_t lda = ba->kp * 2, pstride = ba->kp * 16, n_panels = (ba->cols + 15) / 16;              \
    int64_t ksteps = (ba->n_in + 31) / 32;                                                         \
    for (int64_t c0 = 0; c0 < ba->cols; c0 += 32) {                                                \
        const uint16_t *b0 = ba->b + (c0 / 16) * pstride;                                          \
        bool has2 = c0 / 16 + 1 < n_panels;                                                        \
        const uint16_t *b1 = has2 ? b0 + pstride : b0;                                             \
        for (int64_t r0 = 0; r0 < ba->rows; r0 += 32) {                                            \
            const uint16_t *a0 = ba->a + r0 * ba->kp, *a1 = a0 + 16 * ba->kp;                      \
            const uint16_t *l0 = ba->a_lo ? ba->a_lo + r0 * ba->kp : a0, *l1 = l0 + 16 * ba->kp;   \
            TZERO(0);                                                                              \
            TZERO(1);                                                                              \
            TZERO(2);                                                                              \
            TZERO(3);                                                                              \
            for (int64_t s = 0; s < ksteps; s++) {                                                 \
                TLOAD_A(4, a0 + s * 32, lda);                                                      \
                TLOAD_A(5, a1 + s * 32, lda);                                                      \
                TLOAD_B(6, b0 + s * 512, 64);                                                      \
                TDP(0, 4, 6);                                                                      \
                TDP(2, 5, 6);                                                                      \
                if (has2) {                                                                        \
                    TLOAD_B(7, b1 + s * 512, 64);                                                  \
                    TDP(1, 4, 7);                                                                  \
                    TDP(3, 5, 7);                                                                  \
                }                                                                                  \
                if (ba->a_lo) { /* the residual rows against the B tiles already loaded */         \
                    TLOAD_A(4, l0 + s * 32, lda);                                                  \
                    TLOAD_A(5, l1 + s * 32, lda);                                                  \
                    TDP(0, 4, 6);                                                                  \
                    TDP(2, 5, 6);                                                                  \
                    if (has2) {                                                                    \
                        TDP(1, 4, 7);                                                              \
                        TDP(3, 5, 7);                                                              \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            TSTORE(0, res, 128);                                                                   \
            TSTORE(1, res + 16, 128);                                                              \
            TSTORE(2, res + 16 * 32, 128);                                                         \
            TSTORE(3, res + 16 * 32 + 16, 128);                                                    \
            write_out(ba, r0, c0, res);                                                            \
        }                                                                                          \
    }

#define E_ZERO(t) memset(et->c[t], 0, sizeof et->c[t])
#define E_LOAD_A(t, p, s) emu_load(et->a[(t)-4], p, s)
#define E_LOAD_B(t, p, s) emu_load(et->b[(t)-6], p, s)
#define E_DP(tc, ta, tb) emu_dp(et->c[tc], et->a[(ta)-4], et->b[(tb)-6])
#define E_STORE(t, p, s) emu_store(et->c[t], p, s)

static void block_amx_emu(const kern_block_args *ba) {
    emu_tiles *et =
        kern_scratch(ba->kc, KERN_SCRATCH_THREAD0 + ba->ith, sizeof(emu_tiles) + 32 * 32 * 4);
    float *res = (float *)(et + 1);
    memset(et, 0, sizeof *et);
    AMX_BLOCK_LOOP(E_ZERO, E_LOAD_A, E_LOAD_B, E_DP, E_STORE)
}

#define H_ZERO(t) _tile_zero(t)
#define H_LOAD(t, p, s) _tile_loadd(t, p, s)
#define H_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#define H_STORE(t, p, s) _tile_stored(t, p, s)

static void block_amx(const kern_block_args *ba) {
    volatile tilecfg cfg;
    fill_cfg(&cfg);
    /* The asm takes the config's address and clobbers memory: every store above must have
     * happened, and ldtilecfg reads it from there. */
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig((const void *)&cfg);
    float res[32 * 32] __attribute__((aligned(64)));
    AMX_BLOCK_LOOP(H_ZERO, H_LOAD, H_LOAD, H_DP, H_STORE)
    _tile_release();
}

/* Row classes: those of the avx512bf16 table below AMX_MIN_M, 2 for the AMX tiles. */
static int amx_class(int64_t m) {
    return m < AMX_MIN_M ? kern_avx512_class(m) : 2;
}

/* Class 2 on the AMX block loop `block` (the hardware tiles or their plain-C emulation). */
static void amx_any_as(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                       const float *bias, int64_t m, int cls, kern_block_fn block, int64_t mb,
                       int64_t nb) {
    if (cls == 0)
        kern_avx512_stream(kc, y, x, w, bias, m);
    else if (cls == 1)
        kern_avx512bf16_gemm(kc, y, x, w, bias, m);
    else
        kern_bf16_gemm(kc, y, x, w, bias, m, block, mb, nb);
}

static void amx_matmul_as(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                          const float *bias, int64_t m, int cls) {
    amx_any_as(kc, y, x, w, bias, m, cls, block_amx, 128, 256);
}

static void amx_emu_matmul_as(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                              const float *bias, int64_t m, int cls) {
    amx_any_as(kc, y, x, w, bias, m, cls, block_amx_emu, 64, 64);
}

/* kern_matmul is matmul_as in the class of m, so the two can never disagree. */
static void amx_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                       const float *bias, int64_t m) {
    amx_matmul_as(kc, y, x, w, bias, m, amx_class(m));
}

static void amx_emu_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                           const float *bias, int64_t m) {
    amx_emu_matmul_as(kc, y, x, w, bias, m, amx_class(m));
}

static const lg_kernels amx_table = {
    .name = "amx",
    .matmul = amx_matmul,
    .matmul_class = amx_class,
    .matmul_as = amx_matmul_as,
    .attention = kern_avx512bf16_attention,
    .prepare = kern_prepare_vnni16,
};

static const lg_kernels amx_emu_table = {
    .name = "amx-emu",
    .matmul = amx_emu_matmul,
    .matmul_class = amx_class,
    .matmul_as = amx_emu_matmul_as,
    .attention = kern_avx512bf16_attention,
    .prepare = kern_prepare_vnni16,
};

const lg_kernels *kern_amx_table(void) {
    return kern_cpu_get()->amx ? &amx_table : NULL;
}

const lg_kernels *kern_amx_emu_table(void) {
    return kern_cpu_get()->avx512bf16 ? &amx_emu_table : NULL;
}
