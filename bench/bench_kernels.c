/*
 * bench_kernels.c — the kernel layer on the real LlavaGuard shapes, against this machine's own
 * limits measured in the same run: the best matrix unit's instruction peak (AMX tdpbf16ps, else
 * AVX512-BF16 vdpbf16ps, else AVX-512 FMA), the f32 FMA peak, and the all-core read bandwidth.
 * For each product and attention: median time, GFLOP/s (GB/s of weights for m = 1), % of the
 * limit, and the speedup over the reference kernels (ref timed on the first rows when the full
 * shape would take too long; time scales linearly with m). The bf16 tables run in both
 * precisions (".../acc": split hi + lo activations, the default; ".../bf16": rounded once).
 * Usage: bench_kernels [--threads N] [--reps N] [--quick] [--no-prepare] [--tables a,b:bf16]
 *                      [--only matmul|decode|attention|elementwise]
 */
#include "kernels/kern_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t g_rng = 12345;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static void *rand_buf(lg_dtype dt, size_t n) {
    void *p = malloc(n * lg_dtype_size(dt));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        float v = frand() * 0.05f;
        if (dt == LG_DT_F32)
            ((float *)p)[i] = v;
        else
            ((uint16_t *)p)[i] = lg_f32_to_bf16(v);
    }
    return p;
}

typedef struct mm_case {
    const char *name;
    int64_t m, n_out, n_in;
} mm_case;

static const mm_case MM[] = {
    {"siglip qkvo", 729, 1152, 1152},
    {"siglip qkv fused", 729, 3456, 1152},
    {"siglip fc1", 729, 4304, 1152},
    {"siglip fc2", 729, 1152, 4304},
    {"qwen0.5b q/o prefill", 4096, 896, 896},
    {"qwen0.5b k/v prefill", 4096, 128, 896},
    {"qwen0.5b qkv fused prefill", 4096, 1152, 896},
    {"qwen0.5b gate/up prefill", 4096, 4864, 896},
    {"qwen0.5b down prefill", 4096, 896, 4864},
    {"qwen0.5b q/o decode", 1, 896, 896},
    {"qwen0.5b gate/up decode", 1, 4864, 896},
    {"qwen0.5b down decode", 1, 896, 4864},
    {"qwen0.5b lm_head decode", 1, 151936, 896},
    {"qwen7b gate/up decode", 1, 18944, 3584},
};

typedef struct limits {
    double matrix_peak, fma_peak, bw;
    const char *matrix_unit;
} limits;

static int g_reps = 5;
static bool g_prepare = true; /* --no-prepare: the products read the row-major weights */

static bool is_bf16_table(const char *tn) {
    return strcmp(tn, "avx512") != 0 && strcmp(tn, "portable") != 0 && strcmp(tn, "ref") != 0;
}

/* "table" or "table/acc", "table/bf16" for the tables that read the precision. */
static const char *ctx_label(const kern_ctx *kc) {
    static char buf[8][40];
    static int next;
    char *b = buf[next++ % 8];
    const char *tn = kern_ctx_table(kc)->name;
    if (!is_bf16_table(tn)) return tn;
    snprintf(b, 40, "%s/%s", tn, kern_ctx_precision(kc) == KERN_PREC_BF16 ? "bf16" : "acc");
    return b;
}

/* Median seconds of `reps` runs of the matmul (after one warm-up). */
static double time_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w,
                          const float *b, int64_t m, int reps) {
    double t[32];
    kern_matmul(kc, y, x, w, b, m);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        kern_matmul(kc, y, x, w, b, m);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

/* max |got - want| / max |want| over n values: the "err" column, so that a run on a new CPU
 * (say the first with AMX) checks each table against ref as it times it. */
static double max_rel_diff(const float *got, const float *want, size_t n) {
    double d = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        d = e > d || e != e ? e : d;
        mx = fabs((double)want[i]) > mx ? fabs((double)want[i]) : mx;
    }
    return mx > 0 ? d / mx : d;
}

static void bench_matmul(const mm_case *c, kern_ctx **ctx, int n_ctx, kern_ctx *ref,
                         const limits *lim) {
    kern_weight w = {.dtype = LG_DT_BF16, .n_out = c->n_out, .n_in = c->n_in};
    w.data = rand_buf(LG_DT_BF16, (size_t)(c->n_out * c->n_in));
    float *x = rand_buf(LG_DT_F32, (size_t)(c->m * c->n_in));
    float *y = malloc((size_t)(c->m * c->n_out) * 4);
    float *bias = rand_buf(LG_DT_F32, (size_t)c->n_out);
    double flop = 2.0 * (double)c->m * (double)c->n_out * (double)c->n_in;
    double bytes = (double)c->n_out * (double)c->n_in * 2.0;
    /* reference: on at most 16 rows, scaled to the full m; its rows also check every table */
    int64_t m_ref = c->m < 16 ? c->m : 16;
    double t_ref = time_matmul(ref, y, x, &w, bias, m_ref, 1) * (double)c->m / (double)m_ref;
    float *y_ref = malloc((size_t)(m_ref * c->n_out) * 4);
    memcpy(y_ref, y, (size_t)(m_ref * c->n_out) * 4);
    for (int i = 0; i < n_ctx; i++) {
        kern_weight wi = w;
        if (g_prepare) kern_prepare(ctx[i], &wi);
        double t = time_matmul(ctx[i], y, x, &wi, bias, c->m, g_reps);
        double err = max_rel_diff(y, y_ref, (size_t)(m_ref * c->n_out));
        const char *tn = kern_ctx_table(ctx[i])->name, *label = ctx_label(ctx[i]);
        if (c->m == 1) {
            double gbps = bytes / t / 1e9;
            printf("  %-27s %6lldx%6lldx%5lld %-15s %9.3f ms %8.1f GB/s  %5.1f%% of bw   x%.0f "
                   "vs ref  err %.1e\n",
                   c->name, (long long)c->m, (long long)c->n_out, (long long)c->n_in, label,
                   t * 1e3, gbps, 100.0 * gbps / lim->bw, t_ref / t, err);
        } else {
            double g = flop / t / 1e9;
            bool bf = is_bf16_table(tn);
            double peak = bf ? lim->matrix_peak : lim->fma_peak;
            printf("  %-27s %6lldx%6lldx%5lld %-15s %9.3f ms %8.1f GFLOP/s %5.1f%% of %s peak  "
                   "x%.0f vs ref  err %.1e\n",
                   c->name, (long long)c->m, (long long)c->n_out, (long long)c->n_in, label,
                   t * 1e3, g, 100.0 * g / peak, bf ? lim->matrix_unit : "fma", t_ref / t, err);
        }
        kern_weight_release(&wi);
        fflush(stdout);
    }
    free((void *)w.data), free(x), free(y), free(bias), free(y_ref);
}

/* One decode step of Qwen2-0.5B's matrix products (24 layers of q,k,v,o,gate,up,down and the
 * LM head: 988 MB of bf16 weights, far larger than the caches), m = 1: the weight-streaming
 * figure a decode token is bound by. */
static void bench_decode_step(kern_ctx **ctx, int n_ctx, kern_ctx *ref, const limits *lim) {
    enum { N_LAYER = 24, PER_LAYER = 7 };
    static const int64_t shp[PER_LAYER][2] = {{896, 896},  {128, 896},  {128, 896}, {896, 896},
                                              {4864, 896}, {4864, 896}, {896, 4864}};
    int n_w = N_LAYER * PER_LAYER + 1;
    kern_weight *w = calloc((size_t)n_w, sizeof *w);
    double bytes = 0.0;
    for (int i = 0; i < n_w; i++) {
        int64_t no = i == n_w - 1 ? 151936 : shp[i % PER_LAYER][0];
        int64_t ni = i == n_w - 1 ? 896 : shp[i % PER_LAYER][1];
        w[i] = (kern_weight){.dtype = LG_DT_BF16, .n_out = no, .n_in = ni};
        w[i].data = rand_buf(LG_DT_BF16, (size_t)(no * ni));
        bytes += (double)(no * ni) * 2.0;
    }
    float *x = rand_buf(LG_DT_F32, 4864), *y = malloc(151936 * 4);
    for (int c = -1; c < n_ctx; c++) {
        kern_ctx *kc = c < 0 ? ref : ctx[c];
        kern_weight *wc = calloc((size_t)n_w, sizeof *wc);
        for (int i = 0; i < n_w; i++) {
            wc[i] = w[i];
            if (g_prepare) kern_prepare(kc, &wc[i]);
        }
        int reps = c < 0 ? 1 : g_reps;
        double t[32];
        for (int r = 0; r <= reps; r++) {
            double t0 = now();
            for (int i = 0; i < n_w; i++) kern_matmul(kc, y, x, &wc[i], NULL, 1);
            if (r > 0) t[r - 1] = now() - t0;
        }
        qsort(t, (size_t)reps, sizeof t[0], cmp_double);
        static double t_ref;
        if (c < 0) t_ref = t[reps / 2];
        double gbps = bytes / t[reps / 2] / 1e9;
        printf("  %-27s %20.0f MB %-15s %9.3f ms %8.1f GB/s  %5.1f%% of bw   x%.0f vs ref\n",
               "decode step, 0.5b matmuls", bytes / 1e6, ctx_label(kc), t[reps / 2] * 1e3, gbps,
               100.0 * gbps / lim->bw, t_ref / t[reps / 2]);
        fflush(stdout);
        for (int i = 0; i < n_w; i++) kern_weight_release(&wc[i]);
        free(wc);
    }
    for (int i = 0; i < n_w; i++) free((void *)w[i].data);
    free(w), free(x), free(y);
}

typedef struct at_case {
    const char *name;
    int64_t n_q, n_kv;
    int n_head, n_head_kv, hd;
    bool causal;
    lg_dtype dt;
} at_case;

static const at_case AT[] = {
    {"siglip attention", 729, 729, 16, 16, 72, false, LG_DT_F32},
    {"qwen0.5b prefill attn", 4096, 4096, 14, 2, 64, true, LG_DT_BF16},
    {"qwen0.5b prefill attn", 4096, 4096, 14, 2, 64, true, LG_DT_F32}, /* accurate's default */
    {"qwen0.5b decode attn", 1, 4096, 14, 2, 64, true, LG_DT_BF16},
    {"qwen0.5b decode attn", 1, 5888, 14, 2, 64, true, LG_DT_I16S}, /* a verdict's context */
};

/* A KV cache for case c: random values, quantized per head row for LG_DT_I16S. */
static void *rand_kv(const at_case *c) {
    int64_t he = kern_kv_head_elems(c->dt, c->hd), n = c->n_kv * c->n_head_kv;
    if (c->dt != LG_DT_I16S) return rand_buf(c->dt, (size_t)(n * c->hd));
    int16_t *p = malloc((size_t)(n * he) * 2);
    float *row = rand_buf(LG_DT_F32, (size_t)c->hd);
    if (!p) exit(1);
    for (int64_t r = 0; r < n; r++) {
        for (int d = 0; d < c->hd; d++) row[d] = frand() * 0.05f;
        kern_i16s_quantize(row, c->hd, p + r * he);
    }
    free(row);
    return p;
}

static double time_attention(kern_ctx *kc, const at_case *c, float *out, const float *q,
                             const void *k, const void *v, int64_t n_q, int reps) {
    double t[32];
    int64_t qs = (int64_t)c->n_head * c->hd,
            ks = (int64_t)c->n_head_kv * kern_kv_head_elems(c->dt, c->hd);
    int64_t pos0 = c->causal ? c->n_kv - n_q : 0;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        kern_attention(kc, out, q, k, v, c->dt, n_q, c->n_kv, c->n_head, c->n_head_kv, c->hd, qs,
                       ks, c->causal, pos0, 1.0f / sqrtf((float)c->hd));
        if (r > 0) t[r - 1] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

static void bench_attention(const at_case *c, kern_ctx **ctx, int n_ctx, kern_ctx *ref,
                            const limits *lim) {
    float *q = rand_buf(LG_DT_F32, (size_t)(c->n_q * c->n_head * c->hd));
    void *k = rand_kv(c), *v = rand_kv(c);
    float *out = malloc((size_t)(c->n_q * c->n_head * c->hd) * 4);
    double pairs = c->causal && c->n_q == c->n_kv ? (double)c->n_q * (c->n_q + 1) / 2
                                                  : (double)c->n_q * (double)c->n_kv;
    double flop = 4.0 * pairs * c->n_head * c->hd;
    /* ref on the last 16 query rows (those that see the most keys), scaled by the share of the
     * query-key pairs they cover */
    int64_t nq_ref = c->n_q < 16 ? c->n_q : 16;
    at_case tail = *c;
    tail.n_q = nq_ref;
    const float *q_tail = q + (c->n_q - nq_ref) * c->n_head * c->hd;
    double pairs_ref = (double)nq_ref * (double)c->n_kv;
    double t_ref = time_attention(ref, &tail, out, q_tail, k, v, nq_ref, 1) * pairs / pairs_ref;
    size_t n_tail = (size_t)(nq_ref * c->n_head * c->hd);
    float *out_ref = malloc(n_tail * 4);
    memcpy(out_ref, out, n_tail * 4);
    for (int i = 0; i < n_ctx; i++) {
        double t = time_attention(ctx[i], c, out, q, k, v, c->n_q, g_reps);
        double err = max_rel_diff(out + (c->n_q - nq_ref) * c->n_head * c->hd, out_ref, n_tail);
        double g = flop / t / 1e9;
        const char *tn = kern_ctx_table(ctx[i])->name;
        bool bf = is_bf16_table(tn) && c->n_q >= 8;
        printf("  %-27s %6lldx%6lld h%d/%d d%d %-15s %9.3f ms %8.1f GFLOP/s %5.1f%% of %s peak  "
               "x%.0f vs ref  err %.1e\n",
               c->name, (long long)c->n_q, (long long)c->n_kv, c->n_head, c->n_head_kv, c->hd,
               ctx_label(ctx[i]), t * 1e3, g, 100.0 * g / (bf ? lim->matrix_peak : lim->fma_peak),
               bf ? lim->matrix_unit : "fma", t_ref / t, err);
        fflush(stdout);
    }
    free(q), free(k), free(v), free(out), free(out_ref);
}

/* The element-wise helpers between the products, plain loops (what ref mode runs) vs kern_op_*
 * on the same data: they matter because the plain gelu/silu cost as much as a product. */
static void bench_elementwise(kern_ctx *kc) {
    int64_t n_g = 729 * 4304, n_s = 4096 * 4864, rows = 4096, d = 896;
    float *a = rand_buf(LG_DT_F32, (size_t)n_s), *b = rand_buf(LG_DT_F32, (size_t)n_s);
    float *g = rand_buf(LG_DT_F32, (size_t)d);
    for (int which = 0; which < 3; which++) {
        double tp = 0, tf = 0;
        for (int fast = 0; fast < 2; fast++) {
            double t0 = now();
            if (which == 0)
                fast ? kern_op_gelu_tanh(kc, a, n_g) : kern_gelu_tanh(a, n_g);
            else if (which == 1)
                fast ? kern_op_silu_mul(kc, a, b, n_s) : kern_silu_mul(a, b, n_s);
            else
                fast ? kern_op_rmsnorm(kc, b, b, g, rows, d, 1e-6f)
                     : kern_rmsnorm(b, b, g, rows, d, 1e-6f);
            *(fast ? &tf : &tp) = now() - t0;
            for (int64_t i = 0; i < n_s; i++) a[i] = b[i] * 0.5f; /* keep values moderate */
        }
        static const char *names[] = {"gelu_tanh 729x4304", "silu_mul 4096x4864",
                                      "rmsnorm 4096x896"};
        printf("  %-26s plain %8.3f ms   kern_op (%s) %8.3f ms   x%.1f\n", names[which], tp * 1e3,
               kern_ctx_table(kc)->name, tf * 1e3, tp / tf);
    }
    free(a), free(b), free(g);
}

/* --only GROUP: run one group of cases (all when GROUP is NULL). */
static bool wanted(const char *only, const char *group) {
    return !only || strcmp(only, group) == 0;
}

int main(int argc, char **argv) {
    int threads = 0;
    bool quick = false;
    const char *tables = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            g_reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--no-prepare") == 0)
            g_prepare = false;
        else if (strcmp(argv[i], "--tables") == 0 && i + 1 < argc)
            tables = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps N] [--quick] [--no-prepare] [--tables a,b]\n"
                    "          [--only matmul|decode|attention|elementwise]\n",
                    argv[0]);
            return 2;
        }
    }
    if (g_reps < 1) g_reps = 1;
    if (g_reps > 31) g_reps = 31;
    kern_ctx *ctx[8];
    int n_ctx = 0;
    if (tables) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", tables);
        for (char *s = strtok(buf, ","); s && n_ctx < 8; s = strtok(NULL, ",")) {
            char *colon = strchr(s, ':'); /* table:bf16 or table:accurate */
            if (colon) *colon++ = '\0';
            if ((ctx[n_ctx] = kern_ctx_create(threads, s))) {
                if (colon && strcmp(colon, "bf16") == 0)
                    kern_ctx_set_precision(ctx[n_ctx], KERN_PREC_BF16);
                n_ctx++;
            } else {
                fprintf(stderr, "table %s: not runnable here\n", s);
            }
        }
    } else {
        ctx[n_ctx++] = kern_ctx_create(threads, "auto");
        if (is_bf16_table(kern_ctx_table(ctx[0])->name)) {
            ctx[n_ctx] = kern_ctx_create(threads, "auto");
            kern_ctx_set_precision(ctx[n_ctx++], KERN_PREC_BF16);
        }
        if (strcmp(kern_ctx_table(ctx[0])->name, "avx512") != 0 && kern_table_for("avx512"))
            ctx[n_ctx++] = kern_ctx_create(threads, "avx512");
    }
    if (n_ctx == 0) return 1;
    kern_ctx *ref = kern_ctx_create(1, "ref");
    limits lim = {0};
    double amx = kern_peak_amx_gflops(ctx[0]), dp = kern_peak_dpbf16_gflops(ctx[0]);
    lim.fma_peak = kern_peak_fma_gflops(ctx[0]);
    lim.matrix_peak = amx > 0 ? amx : dp > 0 ? dp : lim.fma_peak;
    lim.matrix_unit = amx > 0 ? "amx" : dp > 0 ? "dpbf16" : "fma";
    lim.bw = kern_read_bandwidth_gbps(ctx[0], quick ? (256u << 20) : 0);
    printf("cpu: %s, %d threads; \"auto\" runs %s%s%s\n", kern_cpu_name(), kern_ctx_threads(ctx[0]),
           kern_table_for("auto")->name, *kern_auto_note() ? " — " : "", kern_auto_note());
    printf("limits (measured now): amx tdpbf16ps %.0f GFLOP/s, avx512bf16 vdpbf16ps %.0f GFLOP/s, "
           "avx512 fma %.0f GFLOP/s, read bandwidth %.1f GB/s\n",
           amx, dp, lim.fma_peak, lim.bw);
    if (wanted(only, "matmul")) {
        printf("matrix products (bf16 weights; ref scaled from its first rows):\n");
        for (size_t i = 0; i < sizeof MM / sizeof MM[0]; i++) {
            if (quick && MM[i].m > 1 && MM[i].m * MM[i].n_out * MM[i].n_in > 2000000000ll) continue;
            bench_matmul(&MM[i], ctx, n_ctx, ref, &lim);
        }
    }
    if (!quick && wanted(only, "decode")) bench_decode_step(ctx, n_ctx, ref, &lim);
    if (wanted(only, "attention")) {
        printf("attention:\n");
        for (size_t i = 0; i < sizeof AT / sizeof AT[0]; i++) {
            if (quick && AT[i].n_q > 1000) continue;
            bench_attention(&AT[i], ctx, n_ctx, ref, &lim);
        }
    }
    if (wanted(only, "elementwise")) {
        printf("element-wise:\n");
        bench_elementwise(ctx[0]);
    }
    for (int i = 0; i < n_ctx; i++) kern_ctx_free(ctx[i]);
    kern_ctx_free(ref);
    return 0;
}
