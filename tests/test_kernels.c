/* LAYERS: core kernels */
/*
 * test_kernels.c — every non-reference kernel table this CPU can run (amx, avx512bf16, avx512,
 * amx-emu, portable) against ref.c on random data: matmul over shapes with odd tails (m = 1,
 * n_in not a multiple of 16/32, odd n_out), every weight dtype, with and without bias and
 * kern_prepare; attention causal and bidirectional, GQA, head_dim 16..128 incl. 72, KV in
 * f32/bf16/f16; each with 1 and 2 threads (and a few with 64). Tolerances scale with sum_k |x_k
 * w_k| and the rounding the path applies (bf16 activations for the large products of the bf16/AMX
 * paths). Also: the thread pool, mode selection, scratch reuse.
 */
#include "testutil.h"

#include "core/core.h"
#include "kernels/kern_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static void *rand_tensor(lg_dtype dt, size_t n, float amp) {
    void *p = malloc(n * lg_dtype_size(dt));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        float v = frand() * amp;
        if (dt == LG_DT_F32)
            ((float *)p)[i] = v;
        else if (dt == LG_DT_BF16)
            ((uint16_t *)p)[i] = lg_f32_to_bf16(v);
        else
            ((uint16_t *)p)[i] = lg_f32_to_f16(v);
    }
    return p;
}

/* A KV cache of n_kv positions with row stride `stride` elements: random values of magnitude
 * <= amp; for LG_DT_I16S each head row quantized with its own scale (magnitudes vary by row, so
 * the scales differ), the padding between rows left random. */
static void *rand_kv(lg_dtype dt, int64_t n_kv, int n_head_kv, int hd, int64_t stride) {
    if (dt != LG_DT_I16S) return rand_tensor(dt, (size_t)(n_kv * stride), 1.0f);
    int16_t *p = rand_tensor(LG_DT_BF16, (size_t)(n_kv * stride), 1.0f); /* any 16-bit noise */
    float row[256];
    for (int64_t t = 0; t < n_kv; t++)
        for (int g = 0; g < n_head_kv; g++) {
            float amp = 0.05f + 0.95f * fabsf(frand());
            for (int d = 0; d < hd; d++) row[d] = frand() * amp;
            kern_i16s_quantize(row, hd, p + t * stride + g * kern_kv_head_elems(dt, hd));
        }
    return p;
}

static bool is_bf16_table(const lg_kernels *t) {
    return strcmp(t->name, "avx512bf16") == 0 || strcmp(t->name, "amx") == 0 ||
           strcmp(t->name, "amx-emu") == 0;
}

/* Relative error of a split (hi + lo bf16) activation times an exact bf16 weight: the residual
 * x - hi - lo is at most 2^-18 |x|; f32 accumulation adds the 2e-6 every f32 path gets. */
#define SPLIT_EPS 4e-6

/* The relative rounding a table applies to a product of m rows with weights of dtype `wdt`
 * (`prepared`: kern_prepare ran, which packs only bf16 weights). */
static double matmul_eps(const lg_kernels *t, kern_precision prec, lg_dtype wdt, int64_t m) {
    bool bf16_acts = is_bf16_table(t) && m >= 4;
    if (!bf16_acts) return 2e-6;
    if (prec == KERN_PREC_ACCURATE) /* non-bf16 weights take the f32 GEMM */
        return wdt == LG_DT_BF16 ? SPLIT_EPS : 2e-6;
    return wdt == LG_DT_BF16 ? 1.0 / 256 : 1.0 / 128; /* x (and non-bf16 W) rounded to bf16 */
}

typedef struct mm_shape {
    int64_t m, n_in, n_out;
} mm_shape;

static const mm_shape MM_SHAPES[] = {
    {1, 7, 5},     {1, 33, 17},   {1, 896, 100}, {2, 65, 31},  {3, 100, 47},  {4, 64, 64},
    {5, 31, 33},   {7, 129, 65},  {31, 40, 20},  {33, 70, 49}, {40, 96, 300}, {97, 200, 130},
    {130, 72, 40}, {64, 300, 16}, {150, 33, 70}, {0, 33, 17}, /* no rows: nothing written, nothing
                                                                 read */
};

/* Runs table `t` on one shape and dtype and compares with ref; returns the worst error ratio. */
static double check_matmul(const lg_kernels *t, kern_precision prec, int nth, mm_shape s,
                           lg_dtype wdt, bool bias, bool prepare) {
    kern_ctx *kc = kern_ctx_create(nth, t->name);
    kern_ctx *kr = kern_ctx_create(1, "ref");
    assert_non_null(kc);
    assert_non_null(kr);
    kern_ctx_set_precision(kc, prec);
    float *x = rand_tensor(LG_DT_F32, (size_t)(s.m * s.n_in), 1.0f);
    void *wd = rand_tensor(wdt, (size_t)(s.n_out * s.n_in), 0.5f);
    float *b = bias ? rand_tensor(LG_DT_F32, (size_t)s.n_out, 1.0f) : NULL;
    kern_weight w = {.dtype = wdt, .n_out = s.n_out, .n_in = s.n_in, .data = wd};
    float *got = malloc((size_t)(s.m * s.n_out) * 4), *want = malloc((size_t)(s.m * s.n_out) * 4);
    float *row = malloc((size_t)s.n_in * 4);
    if (prepare) kern_prepare(kc, &w);
    for (size_t i = 0; i < (size_t)(s.m * s.n_out); i++) got[i] = NAN;
    kern_matmul(kc, got, x, &w, b, s.m);
    kern_matmul(kr, want, x, &w, b, s.m);
    double eps = matmul_eps(t, prec, wdt, s.m), worst = 0.0;
    for (int64_t o = 0; o < s.n_out; o++) {
        kern_weight_row_f32(&w, o, row);
        for (int64_t i = 0; i < s.m; i++) {
            double absdot = 0.0;
            for (int64_t k = 0; k < s.n_in; k++) absdot += fabs((double)x[i * s.n_in + k] * row[k]);
            double tol = eps * absdot + 1e-6 + (b ? 1e-6 * fabs(b[o]) : 0.0);
            double err = fabs((double)got[i * s.n_out + o] - want[i * s.n_out + o]);
            double ratio = isnan(err) ? INFINITY : err / tol;
            if (ratio > 1.0 && worst <= 1.0)
                print_error("%s prec=%d nth=%d m=%lld k=%lld n=%lld dt=%d bias=%d prep=%d: "
                            "y[%lld][%lld] got %g want %g tol %g\n",
                            t->name, (int)prec, nth, (long long)s.m, (long long)s.n_in,
                            (long long)s.n_out, (int)wdt, bias, prepare, (long long)i, (long long)o,
                            got[i * s.n_out + o], want[i * s.n_out + o], tol);
            if (ratio > worst) worst = ratio;
        }
    }
    kern_weight_release(&w);
    free(x), free(wd), free(b), free(got), free(want), free(row);
    kern_ctx_free(kc);
    kern_ctx_free(kr);
    return worst;
}

static int fast_tables(const lg_kernels **t) {
    const lg_kernels *all[8];
    int n = kern_tables(all, 8), k = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(all[i]->name, "ref") != 0) t[k++] = all[i];
    return k;
}

static void test_matmul_vs_ref(void **state) {
    (void)state;
    const lg_kernels *t[8];
    int nt = fast_tables(t);
    assert_true(nt >= 1); /* portable at least */
    for (int ti = 0; ti < nt; ti++) {
        bool emu = strcmp(t[ti]->name, "amx-emu") == 0;
        /* Only the bf16 tables read the precision; both settings there. */
        int n_prec = is_bf16_table(t[ti]) ? 2 : 1;
        for (int pi = 0; pi < n_prec; pi++) {
            double worst_all = 0.0;
            for (int nth = 1; nth <= 2; nth++)
                for (size_t si = 0; si < sizeof MM_SHAPES / sizeof MM_SHAPES[0]; si++)
                    for (int dt = 0; dt < 3; dt++)
                        for (int variant = 0; variant < 2; variant++) {
                            if (emu && (MM_SHAPES[si].m < 32 || nth == 2) && variant) continue;
                            double worst =
                                check_matmul(t[ti], (kern_precision)pi, nth, MM_SHAPES[si],
                                             (lg_dtype)dt, variant == 1, variant == 1);
                            assert_true(worst <= 1.0);
                            worst_all = worst > worst_all ? worst : worst_all;
                        }
            fprintf(stderr, "matmul: table %s%s matches ref (worst error %.2f of tolerance)\n",
                    t[ti]->name,
                    n_prec == 1                ? ""
                    : pi == KERN_PREC_ACCURATE ? ", accurate"
                                               : ", bf16",
                    worst_all);
        }
    }
}

/* kern_matmul_as: rows of several products of different sizes merged by class give each row
 * exactly what kern_matmul of its own product gives (what the batched decoder pass relies on). */
static void test_matmul_classes(void **state) {
    (void)state;
    const lg_kernels *t[8];
    int nt = fast_tables(t);
    static const int64_t sizes[] = {1, 3, 2, 40, 5, 1, 33, 4};
    enum { NS = sizeof sizes / sizeof sizes[0], N_IN = 70, N_OUT = 50 };
    int64_t total = 0;
    for (int i = 0; i < NS; i++) total += sizes[i];
    for (int ti = 0; ti < nt; ti++)
        for (int prep = 0; prep < 2; prep++) {
            kern_ctx *kc = kern_ctx_create(2, t[ti]->name);
            void *wd = rand_tensor(LG_DT_BF16, N_OUT * N_IN, 0.5f);
            float *b = rand_tensor(LG_DT_F32, N_OUT, 1.0f);
            kern_weight w = {.dtype = LG_DT_BF16, .n_out = N_OUT, .n_in = N_IN, .data = wd};
            if (prep) kern_prepare(kc, &w);
            float *x = rand_tensor(LG_DT_F32, (size_t)(total * N_IN), 1.0f);
            float *alone = malloc((size_t)(total * N_OUT) * 4);
            float *merged = malloc((size_t)(total * N_OUT) * 4);
            float *xs = malloc((size_t)(total * N_IN) * 4),
                  *ys = malloc((size_t)(total * N_OUT) * 4);
            int64_t off[NS], r = 0;
            for (int i = 0; i < NS; i++) {
                off[i] = r;
                kern_matmul(kc, alone + r * N_OUT, x + r * N_IN, &w, b, sizes[i]);
                r += sizes[i];
            }
            /* every class's rows gathered into one product */
            for (int cls = 0; cls < 4; cls++) {
                int64_t n = 0;
                for (int i = 0; i < NS; i++)
                    if (kern_matmul_class(kc, sizes[i]) == cls) {
                        memcpy(xs + n * N_IN, x + off[i] * N_IN, (size_t)(sizes[i] * N_IN) * 4);
                        n += sizes[i];
                    }
                if (n == 0) continue;
                kern_matmul_as(kc, ys, xs, &w, b, n, cls);
                n = 0;
                for (int i = 0; i < NS; i++)
                    if (kern_matmul_class(kc, sizes[i]) == cls) {
                        memcpy(merged + off[i] * N_OUT, ys + n * N_OUT,
                               (size_t)(sizes[i] * N_OUT) * 4);
                        n += sizes[i];
                    }
            }
            if (memcmp(alone, merged, (size_t)(total * N_OUT) * 4) != 0)
                fail_msg("table %s (prepared %d): merged rows differ from their own products",
                         t[ti]->name, prep);
            kern_weight_release(&w);
            free(wd), free(b), free(x), free(alone), free(merged), free(xs), free(ys);
            kern_ctx_free(kc);
        }
}

/* The AMX hardware path runs wherever the CPU has it (it is then first in the list), and its
 * plain-C twin everywhere with AVX512-BF16. */
static void test_amx_paths_present(void **state) {
    (void)state;
    const kern_cpu *cpu = kern_cpu_get();
    fprintf(stderr, "cpu: %s; avx512=%d avx512bf16=%d amx=%d\n", cpu->brand, cpu->avx512,
            cpu->avx512bf16, cpu->amx);
    const lg_kernels *best = kern_table_for("auto");
    assert_non_null(best);
    if (cpu->amx)
        assert_string_equal(best->name, "amx");
    else if (cpu->avx512bf16)
        assert_string_equal(best->name, "avx512bf16");
    if (cpu->avx512bf16) assert_non_null(kern_table_for("amx-emu"));
    if (!cpu->amx) {
        assert_null(kern_table_for("amx"));
        fprintf(stderr, "note: no AMX on this CPU: the amx table is tested through amx-emu\n");
    }
}

typedef struct at_case {
    int64_t n_q, n_kv;
    int n_head, n_head_kv, hd;
    bool causal;
    int64_t q_pos0;
    int extra_q, extra_kv; /* row padding beyond the heads (fused QKV rows, larger caches) */
} at_case;

static const at_case AT_CASES[] = {
    {1, 1, 2, 1, 16, true, 0, 0, 0},       {1, 37, 14, 2, 64, true, 36, 0, 0},
    {5, 40, 4, 2, 72, true, 35, 8, 16},    {20, 20, 4, 4, 72, false, 0, 0, 0},
    {33, 100, 6, 2, 64, true, 67, 0, 0},   {70, 70, 2, 1, 128, true, 0, 0, 0},
    {100, 100, 3, 3, 72, false, 0, 24, 0}, {17, 130, 4, 1, 80, false, 0, 0, 8},
    {64, 64, 2, 2, 96, true, 0, 0, 0},     {9, 9, 1, 1, 16, true, 0, 0, 0},
    {3, 200, 2, 1, 128, false, 0, 0, 0},   {1, 1000, 4, 1, 64, true, 999, 0, 0},
    {2, 600, 7, 1, 72, true, 520, 0, 0}, /* rows past the keys' end see only the cache */
    {0, 10, 2, 1, 64, true, 0, 0, 0},      {3, 0, 2, 1, 64, false, 0, 0, 0},
    {12, 0, 2, 2, 64, false, 0, 0, 0}, /* no keys: zeros, as the reference */
};

/* Returns max |got - want| (outputs are convex mixes of |v| <= 1). */
static double check_attention(const lg_kernels *t, kern_precision prec, int nth, at_case c,
                              lg_dtype dt) {
    kern_ctx *kc = kern_ctx_create(nth, t->name), *kr = kern_ctx_create(1, "ref");
    assert_non_null(kc);
    assert_non_null(kr);
    kern_ctx_set_precision(kc, prec);
    int64_t qs = (int64_t)c.n_head * c.hd + c.extra_q,
            ks = (int64_t)c.n_head_kv * kern_kv_head_elems(dt, c.hd) + c.extra_kv;
    float *q = rand_tensor(LG_DT_F32, (size_t)(c.n_q * qs), 1.0f);
    void *k = rand_kv(dt, c.n_kv, c.n_head_kv, c.hd, ks);
    void *v = rand_kv(dt, c.n_kv, c.n_head_kv, c.hd, ks);
    size_t n_out = (size_t)(c.n_q * c.n_head * c.hd);
    float *got = malloc(n_out * 4 + 4), *want = malloc(n_out * 4 + 4);
    for (size_t i = 0; i < n_out; i++) got[i] = NAN;
    float scale = 1.0f / sqrtf((float)c.hd);
    kern_attention(kc, got, q, k, v, dt, c.n_q, c.n_kv, c.n_head, c.n_head_kv, c.hd, qs, ks,
                   c.causal, c.q_pos0, scale);
    kern_attention(kr, want, q, k, v, dt, c.n_q, c.n_kv, c.n_head, c.n_head_kv, c.hd, qs, ks,
                   c.causal, c.q_pos0, scale);
    char label[160];
    snprintf(label, sizeof label,
             "attention %s prec=%d nth=%d nq=%lld nkv=%lld h=%d/%d hd=%d causal=%d dt=%d", t->name,
             (int)prec, nth, (long long)c.n_q, (long long)c.n_kv, c.n_head, c.n_head_kv, c.hd,
             c.causal, (int)dt);
    /* Outputs are convex mixes of |v| <= 1. In bf16 precision the bf16 tables round q, K, V
     * and the probabilities of the many-query path to bf16 (relative 2^-9 each); accurate
     * precision splits them into hi + lo (2^-17) and must be as close as the f32 paths. */
    bool bf16 = is_bf16_table(t) && prec == KERN_PREC_BF16 && c.n_q >= 8;
    tu_check_tensor(got, want, n_out, bf16 ? 4e-3 : 2e-5, label);
    double err = 0.0;
    for (size_t i = 0; i < n_out; i++) err = fmax(err, fabs((double)got[i] - want[i]));
    free(q), free(k), free(v), free(got), free(want);
    kern_ctx_free(kc);
    kern_ctx_free(kr);
    return err;
}

static void test_attention_vs_ref(void **state) {
    (void)state;
    const lg_kernels *t[8];
    int nt = fast_tables(t);
    for (int ti = 0; ti < nt; ti++) {
        if (strcmp(t[ti]->name, "amx-emu") == 0) continue; /* same attention as avx512bf16 */
        int n_prec = is_bf16_table(t[ti]) ? 2 : 1;
        for (int pi = 0; pi < n_prec; pi++) {
            double worst = 0.0;
            for (int nth = 1; nth <= 2; nth++)
                for (size_t ci = 0; ci < sizeof AT_CASES / sizeof AT_CASES[0]; ci++)
                    for (int dt = 0; dt < 4; dt++) /* f32, bf16, f16, i16s */
                        worst = fmax(worst, check_attention(t[ti], (kern_precision)pi, nth,
                                                            AT_CASES[ci], (lg_dtype)dt));
            fprintf(stderr, "attention: table %s%s: max |error| %.3g\n", t[ti]->name,
                    n_prec == 1                ? ""
                    : pi == KERN_PREC_ACCURATE ? ", accurate"
                                               : ", bf16",
                    worst);
        }
    }
}

/* Many more threads than cores or than work items (servers have 64 cores; here the slots
 * outnumber the tasks): every product and attention still matches ref. */
static void test_many_threads(void **state) {
    (void)state;
    const lg_kernels *t[8];
    int nt = fast_tables(t);
    static const mm_shape mm[] = {{1, 896, 100}, {3, 100, 47}, {97, 200, 130}, {150, 33, 70}};
    for (int ti = 0; ti < nt; ti++) {
        if (strcmp(t[ti]->name, "amx-emu") == 0) continue; /* slow, and shares the driver */
        for (size_t si = 0; si < sizeof mm / sizeof mm[0]; si++)
            assert_true(
                check_matmul(t[ti], KERN_PREC_ACCURATE, 64, mm[si], LG_DT_BF16, true, true) <= 1.0);
        for (size_t ci = 0; ci < sizeof AT_CASES / sizeof AT_CASES[0]; ci += 3)
            check_attention(t[ti], KERN_PREC_ACCURATE, 64, AT_CASES[ci], LG_DT_F32);
        fprintf(stderr, "64 threads: table %s matches ref\n", t[ti]->name);
    }
}

/* The start-up check "auto" runs before trusting a table (selftest.c): every table this CPU
 * runs passes it; a table whose products are slightly wrong fails it; and the choice falls
 * through to the next table, with a note naming the one passed over. */
static const lg_kernels *g_real;
static void off_by_little(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                          const float *bias, int64_t m) {
    g_real->matmul(kc, y, x, w, bias, m);
    y[m * w->n_out - 1] += 1e-3f; /* one output off by ~35x the accurate tolerance */
}

static bool fail_named_broken(const lg_kernels *t) {
    return strncmp(t->name, "broken", 6) != 0;
}

static void test_selftest(void **state) {
    (void)state;
    const lg_kernels *t[8];
    int n = kern_tables(t, 8);
    for (int i = 0; i < n; i++) {
        assert_true(kern_table_selftest(t[i]));
        fprintf(stderr, "start-up check: table %s passes\n", t[i]->name);
    }
    g_real = kern_table_for("portable");
    lg_kernels broken = *g_real;
    broken.name = "broken";
    broken.matmul = off_by_little;
    assert_false(kern_table_selftest(&broken));
    /* the choice */
    const lg_kernels *list[] = {&broken, kern_table_for("amx-emu"), g_real, kern_ref_table()};
    const char *note = NULL;
    assert_ptr_equal(kern_first_passing(list, 4, fail_named_broken, &note), g_real);
    assert_non_null(strstr(note, "broken kernels failed"));
    assert_ptr_equal(kern_first_passing(list + 2, 2, fail_named_broken, &note), g_real);
    assert_string_equal(note, "");
    assert_ptr_equal(kern_first_passing(list, 1, fail_named_broken, NULL), kern_ref_table());
    /* what auto chose here passed, and says so */
    assert_true(kern_table_selftest(kern_table_for("auto")));
    assert_string_equal(kern_auto_note(), "");
}

/* kern_op_* through every fast table (and ref, which must be bit-exact) vs the plain loops. */
static void check_ops(const char *mode, int nth, int64_t rows, int64_t n) {
    kern_ctx *kc = kern_ctx_create(nth, mode);
    assert_non_null(kc);
    bool exact = strcmp(mode, "ref") == 0;
    size_t total = (size_t)(rows * n);
    float *x = malloc(total * 4), *o = malloc(total * 4), *got = malloc(total * 4),
          *want = malloc(total * 4);
    float *g = rand_tensor(LG_DT_F32, (size_t)n, 1.0f),
          *b = rand_tensor(LG_DT_F32, (size_t)n, 1.0f);
    for (size_t i = 0; i < total; i++) x[i] = frand() * 6.0f, o[i] = frand() * 2.0f;
    char label[96];
    for (int op = 0; op < 7; op++) {
        memcpy(got, x, total * 4);
        memcpy(want, x, total * 4);
        switch (op) {
        case 0:
            kern_op_gelu_tanh(kc, got, (int64_t)total), kern_gelu_tanh(want, (int64_t)total);
            break;
        case 1:
            kern_op_gelu_erf(kc, got, (int64_t)total), kern_gelu_erf(want, (int64_t)total);
            break;
        case 2:
            kern_op_quick_gelu(kc, got, (int64_t)total), kern_quick_gelu(want, (int64_t)total);
            break;
        case 3:
            kern_op_silu_mul(kc, got, o, (int64_t)total), kern_silu_mul(want, o, (int64_t)total);
            break;
        case 4:
            kern_op_add(kc, got, o, (int64_t)total), kern_add(want, o, (int64_t)total);
            break;
        case 5:
            kern_op_rmsnorm(kc, got, x, g, rows, n, 1e-6f),
                kern_rmsnorm(want, x, g, rows, n, 1e-6f);
            break;
        default:
            kern_op_layernorm(kc, got, x, g, b, rows, n, 1e-6f);
            kern_layernorm(want, x, g, b, rows, n, 1e-6f);
            break;
        }
        snprintf(label, sizeof label, "op %d mode %s nth %d rows %lld n %lld", op, mode, nth,
                 (long long)rows, (long long)n);
        /* values reach ~6 (x6 for silu_mul's up, ~8 after a norm); f32 math with a vector exp */
        tu_check_tensor(got, want, total, exact ? 0.0 : 1e-5, label);
    }
    free(x), free(o), free(got), free(want), free(g), free(b);
    kern_ctx_free(kc);
}

static void test_elementwise_ops(void **state) {
    (void)state;
    const lg_kernels *t[8];
    int nt = fast_tables(t);
    const char *modes[9];
    modes[0] = "ref";
    for (int i = 0; i < nt; i++) modes[i + 1] = t[i]->name;
    for (int mi = 0; mi <= nt; mi++)
        for (int nth = 1; nth <= 2; nth++) {
            check_ops(modes[mi], nth, 1, 17);
            check_ops(modes[mi], nth, 3, 1152);
            check_ops(modes[mi], nth, 70, 897); /* large enough to split across threads */
        }
}

typedef struct count_job {
    int hits[8];
    int nth_seen;
} count_job;

static void count_task(void *arg, int ith, int nth) {
    count_job *j = arg;
    j->hits[ith]++;
    if (ith == 0) j->nth_seen = nth; /* one writer per run */
}

static void test_pool(void **state) {
    (void)state;
    for (int n = 1; n <= 4; n++) {
        kern_ctx *kc = kern_ctx_create(n, "ref");
        assert_non_null(kc);
        assert_int_equal(kern_ctx_threads(kc), n);
        count_job j = {{0}, 0};
        for (int it = 0; it < 2000; it++) {
            kern_parallel(kc, count_task, &j);
            if (it == 1000) usleep(5000); /* past the spin window: workers sleep on the futex */
        }
        assert_int_equal(j.nth_seen, n);
        for (int i = 0; i < 8; i++) assert_int_equal(j.hits[i], i < n ? 2000 : 0);
        kern_ctx_free(kc);
    }
    kern_ctx_free(NULL);
}

static void test_modes(void **state) {
    (void)state;
    assert_null(kern_ctx_create(1, "no-such-kernels"));
    kern_ctx *kc = kern_ctx_create(1, "ref");
    assert_string_equal(kern_ctx_table(kc)->name, "ref");
    kern_ctx_free(kc);
    setenv("LG_KERNELS", "ref", 1);
    kc = kern_ctx_create(1, "auto");
    assert_string_equal(kern_ctx_table(kc)->name, "ref");
    kern_ctx_free(kc);
    unsetenv("LG_KERNELS");
    kc = kern_ctx_create(0, NULL);
    assert_non_null(kc);
    assert_true(kern_ctx_threads(kc) >= 1);
    assert_string_equal(kern_ctx_table(kc)->name, kern_table_for("auto")->name);
    kern_ctx_free(kc);
}

/* The packed layout bit for bit, for an odd n_in (the plain-C packer) and even ones (the
 * AVX-512 gather packer), partial panels and padding; kern_prepare_into packs into caller
 * memory that kern_weight_release leaves alone. */
static void check_layout(kern_ctx *kc, int64_t n_out, int64_t n_in, bool into) {
    uint16_t *wd = rand_tensor(LG_DT_BF16, (size_t)(n_out * n_in), 1.0f);
    kern_weight w = {.dtype = LG_DT_BF16, .n_out = n_out, .n_in = n_in, .data = wd};
    size_t bytes = kern_prepare_bytes(kc, &w);
    int64_t kp = kern_pack_kp(n_in);
    assert_int_equal(bytes, (size_t)(kern_pack_n16(n_out) * kp * 2));
    void *arena = NULL;
    if (into) {
        arena = lg_aligned_alloc(bytes);
        memset(arena, 0xab, bytes); /* every byte must be written */
        assert_true(kern_prepare_into(kc, &w, arena, false));
        assert_ptr_equal(w.packed, arena);
    } else {
        kern_prepare(kc, &w);
    }
    assert_int_equal(w.packed_kind, KERN_PACK_VNNI16);
    assert_int_equal(kern_prepare_bytes(kc, &w), 0); /* already prepared */
    const uint16_t *p = w.packed;
    for (int64_t o = 0; o < kern_pack_n16(n_out); o++)
        for (int64_t k = 0; k < kp; k++) {
            uint16_t got = p[(o / 16) * kp * 16 + (k / 2) * 32 + (o % 16) * 2 + (k % 2)];
            uint16_t want = (o < n_out && k < n_in) ? wd[o * n_in + k] : 0;
            if (got != want)
                fail_msg("layout %lldx%lld: W[%lld][%lld] packed as %04x, want %04x",
                         (long long)n_out, (long long)n_in, (long long)o, (long long)k, got, want);
        }
    kern_prepare(kc, &w); /* idempotent */
    assert_ptr_equal(w.packed, into ? arena : w.packed);
    kern_weight_release(&w);
    assert_null(w.packed);
    assert_int_equal(w.packed_kind, KERN_PACK_NONE);
    lg_aligned_free(arena); /* still ours: release did not free it */
    free(wd);
}

static void test_prepare_layout(void **state) {
    (void)state;
    if (!kern_table_for("avx512bf16")) {
        skip();
        return;
    }
    kern_ctx *kc = kern_ctx_create(2, "avx512bf16");
    static const int64_t shapes[][2] = {{19, 37}, {19, 64}, {33, 70}, {16, 2}, {5, 896}, {40, 130}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int into = 0; into < 2; into++) check_layout(kc, shapes[i][0], shapes[i][1], into);
    kern_weight_release(NULL);
    kern_ctx *kr = kern_ctx_create(1, "ref"); /* the reference packs nothing */
    kern_weight w = {.dtype = LG_DT_BF16, .n_out = 16, .n_in = 16, .data = NULL};
    assert_int_equal(kern_prepare_bytes(kr, &w), 0);
    assert_false(kern_prepare_into(kr, &w, kc, false));
    kern_ctx_free(kr);
    kern_ctx_free(kc);
}

/* kern_prepare_lazy: two threads with their own contexts run the first product on the same
 * armed weight at once; one packs (into the caller's arena), both get the reference's result.
 * The weight lives in a read-only file mapping whose pages are dropped after packing and must
 * read back unchanged. */
typedef struct lazy_arg {
    const kern_weight *w;
    const float *x;
    float *y;
    int64_t m;
} lazy_arg;

static void *lazy_thread(void *p) {
    lazy_arg *a = p;
    kern_ctx *kc = kern_ctx_create(2, "auto");
    kern_matmul(kc, a->y, a->x, a->w, NULL, a->m);
    kern_ctx_free(kc);
    return NULL;
}

static void test_prepare_lazy(void **state) {
    (void)state;
    kern_ctx *kc = kern_ctx_create(2, "auto"), *kr = kern_ctx_create(1, "ref");
    int64_t n_out = 70, n_in = 2048, m = 40; /* 280 KB: whole pages inside */
    kern_weight probe = {.dtype = LG_DT_BF16, .n_out = n_out, .n_in = n_in};
    size_t bytes = kern_prepare_bytes(kc, &probe);
    if (bytes == 0) { /* this CPU's best table keeps weights as they are */
        kern_ctx_free(kc), kern_ctx_free(kr);
        skip();
        return;
    }
    uint16_t *wd = rand_tensor(LG_DT_BF16, (size_t)(n_out * n_in), 1.0f);
    char *dir = tu_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/w.bin", dir);
    tu_write(path, wd, (size_t)(n_out * n_in) * 2);
    lg_mmap map;
    assert_int_equal(lg_mmap_open(path, &map, NULL), LG_OK);
    kern_weight w = {.dtype = LG_DT_BF16, .n_out = n_out, .n_in = n_in, .data = map.data};
    void *arena = lg_aligned_alloc(bytes);
    assert_true(kern_prepare_lazy(kc, &w, arena, true));
    assert_int_equal(w.packed_kind, KERN_PACK_NONE); /* nothing happens before the first use */
    float *x = rand_tensor(LG_DT_F32, (size_t)(m * n_in), 1.0f);
    float *want = malloc((size_t)(m * n_out) * 4), *y[2];
    kern_matmul(kr, want, x, &w, NULL, m);
    pthread_t th[2];
    lazy_arg args[2];
    for (int t = 0; t < 2; t++) {
        y[t] = malloc((size_t)(m * n_out) * 4);
        args[t] = (lazy_arg){&w, x, y[t], m};
        assert_int_equal(pthread_create(&th[t], NULL, lazy_thread, &args[t]), 0);
    }
    for (int t = 0; t < 2; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_int_equal(atomic_load(&w.lazy_state), KERN_LAZY_DONE);
    assert_ptr_equal(w.packed, arena);
    assert_int_equal(w.packed_kind, KERN_PACK_VNNI16);
    for (int t = 0; t < 2; t++) {
        tu_check_tensor(y[t], want, (size_t)(m * n_out), 1e-3, "lazily packed product");
        free(y[t]);
    }
    assert_memory_equal(map.data, wd, (size_t)(n_out * n_in) * 2); /* dropped pages read back */
    kern_weight_release(&w);
    assert_null(w.lazy);
    lg_aligned_free(arena);
    lg_mmap_close(&map);
    unlink(path);
    rmdir(dir);
    free(dir), free(wd), free(x), free(want);
    kern_ctx_free(kc);
    kern_ctx_free(kr);
}

int main(void) {
    unsetenv("LG_KERNELS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_amx_paths_present),
        cmocka_unit_test(test_prepare_layout),
        cmocka_unit_test(test_prepare_lazy),
        cmocka_unit_test(test_elementwise_ops),
        cmocka_unit_test(test_matmul_vs_ref),
        cmocka_unit_test(test_matmul_classes),
        cmocka_unit_test(test_attention_vs_ref),
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_selftest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
