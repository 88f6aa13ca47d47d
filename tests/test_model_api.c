/* LAYERS: core kernels model */
/*
 * test_model_api.c — the contracts of the model API on the tiny fixture model, reference
 * kernels: accessors; evaluation in chunks and with all logits gives the same numbers as one
 * pass; truncation rolls the KV cache back exactly; bad ids, image-row mismatches and the
 * context limit fail without changing the session; bf16/f16 KV caches stay close to float32;
 * image-token counts for every fixture size; lg_encode_image argument checks; the sampler
 * (greedy, top-k ties, top-p, temperature, seeds, frequencies); generation (stop ids, callback,
 * cache consistency); the fast kernels' weight packing (first use, at open, never; two threads).
 */
#include "testutil.h"

#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lg_model *g_model;
static int32_t *g_ids; /* the text_only prompt of the fixtures */
static size_t g_n_ids;
static int64_t g_nv;

static lg_model *open_tiny(lg_kv_type kv, int64_t max_ctx) {
    char *dir = tu_fixture("llava-ov-tiny");
    lg_model_params p = lg_model_params_default();
    p.kernels = "ref";
    p.kv_type = kv;
    p.max_context = max_ctx;
    lg_model *m = NULL;
    lg_error e;
    if (lg_model_open(dir, &p, &m, &e) != LG_OK) fail_msg("%s", e.msg);
    free(dir);
    return m;
}

static int setup(void **state) {
    (void)state;
    g_model = open_tiny(LG_KV_F32, 0);
    g_nv = lg_model_n_vocab(g_model);
    char *p = tu_fixture("reference/llava-ov-tiny/text_only/case.json");
    json_error_t je;
    json_t *cj = json_load_file(p, 0, &je);
    free(p);
    if (!cj) return -1;
    json_t *arr = json_object_get(json_object_get(cj, "prompt"), "input_ids");
    g_n_ids = json_array_size(arr);
    g_ids = malloc(g_n_ids * sizeof *g_ids);
    for (size_t i = 0; i < g_n_ids; i++)
        g_ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    json_decref(cj);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    lg_model_free(g_model);
    free(g_ids);
    return 0;
}

static lg_session *new_session(lg_model *m) {
    lg_session *s = NULL;
    lg_error e;
    assert_int_equal(lg_session_create(m ? m : g_model, &s, &e), LG_OK);
    return s;
}

static float *copy_logits(const float *l, int64_t rows) {
    float *c = malloc((size_t)(rows * g_nv) * sizeof *c);
    memcpy(c, l, (size_t)(rows * g_nv) * sizeof *c);
    return c;
}

static float *eval_copy(lg_session *s, const int32_t *ids, size_t n) {
    const float *l = NULL;
    if (lg_session_eval(s, ids, n, NULL, 0, 0, &l) != LG_OK)
        fail_msg("eval: %s", lg_session_errmsg(s));
    return copy_logits(l, 1);
}

static void test_accessors(void **state) {
    (void)state;
    assert_string_equal(lg_model_type(g_model), "llava_onevision");
    assert_int_equal(lg_model_n_vocab(g_model), 152000);
    assert_int_equal(lg_model_hidden_size(g_model), 64);
    assert_int_equal(lg_model_image_token_id(g_model), 151646);
    const int32_t *eos = NULL;
    assert_int_equal(lg_model_eos_ids(g_model, &eos), 1);
    assert_int_equal(eos[0], 151645);
    assert_int_equal(lg_model_context_limit(g_model), 32768); /* Qwen2Config's default */
    assert_string_equal(lg_model_errmsg(g_model), "");
    /* Image-token counts for every fixture image equal the processor's. */
    char *p = tu_fixture("reference/llava-ov-tiny/index.json");
    json_error_t je;
    json_t *idx = json_load_file(p, 0, &je);
    free(p);
    assert_non_null(idx);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(idx, "cases"), i, c) {
        const char *name = json_string_value(c);
        if (strcmp(name, "text_only") == 0) continue;
        char rel[256];
        snprintf(rel, sizeof rel, "reference/llava-ov-tiny/%s/case.json", name);
        p = tu_fixture(rel);
        json_t *cj = json_load_file(p, 0, &je);
        free(p);
        int h = (int)json_integer_value(json_object_get(cj, "height"));
        int w = (int)json_integer_value(json_object_get(cj, "width"));
        int64_t want =
            json_integer_value(json_object_get(json_object_get(cj, "prompt"), "num_image_tokens"));
        assert_int_equal(lg_model_image_tokens(g_model, h, w), want);
        int gh, gw, bh, bw;
        pack_n_rows(&g_model->cfg, h, w, &gh, &gw);
        pack_best_resolution(&g_model->cfg, h, w, &bh, &bw);
        json_t *ip = json_object_get(cj, "image_processor");
        assert_int_equal(gh, json_integer_value(json_array_get(json_object_get(ip, "grid_hw"), 0)));
        assert_int_equal(gw, json_integer_value(json_array_get(json_object_get(ip, "grid_hw"), 1)));
        assert_int_equal(
            bh, json_integer_value(json_array_get(json_object_get(ip, "best_resolution_hw"), 0)));
        json_decref(cj);
    }
    json_decref(idx);
    assert_int_equal(lg_model_image_tokens(g_model, 0, 10), -1);
}

/* Chunked evaluation (the decoder works in chunks of 512) and all-logits rows are the same
 * arithmetic as one pass: bit-identical with the reference kernels. */
static void test_chunks_and_all_logits(void **state) {
    (void)state;
    size_t n = 600;
    lg_session *a = new_session(NULL), *b = new_session(NULL);
    float *one = eval_copy(a, g_ids, n);
    float *part = eval_copy(b, g_ids, 250);
    free(part);
    part = eval_copy(b, g_ids + 250, n - 250);
    assert_memory_equal(one, part, (size_t)g_nv * sizeof(float));
    free(part);
    /* all_logits over the last 3 tokens: row k = the logits after token 597+k */
    lg_session_truncate(b, n - 3);
    const float *all = NULL;
    assert_int_equal(lg_session_eval(b, g_ids + n - 3, 3, NULL, 0, 1, &all), LG_OK);
    assert_memory_equal(all + 2 * g_nv, one, (size_t)g_nv * sizeof(float));
    float *rows = copy_logits(all, 3);
    lg_session_truncate(b, n - 3);
    float *r0 = eval_copy(b, g_ids + n - 3, 1);
    assert_memory_equal(rows, r0, (size_t)g_nv * sizeof(float));
    free(r0);
    free(rows);
    free(one);
    lg_session_free(a);
    lg_session_free(b);
}

static void test_truncate(void **state) {
    (void)state;
    lg_session *s = new_session(NULL);
    free(eval_copy(s, g_ids, 100));
    const int32_t cont_a[] = {785, 2168, 374, 6092, 13}, cont_b[] = {9707, 0};
    float *la = eval_copy(s, cont_a, 5);
    assert_int_equal(lg_session_n_past(s), 105);
    assert_int_equal(lg_session_truncate(s, 100), LG_OK);
    float *lb = eval_copy(s, cont_b, 2);
    assert_true(memcmp(la, lb, (size_t)g_nv * sizeof(float)) != 0);
    assert_int_equal(lg_session_truncate(s, 100), LG_OK);
    float *la2 = eval_copy(s, cont_a, 5);
    assert_memory_equal(la, la2, (size_t)g_nv * sizeof(float));
    assert_int_equal(lg_session_truncate(s, 106), LG_E_ARG);
    assert_int_equal(lg_session_truncate(s, -1), LG_E_ARG);
    assert_int_equal(lg_session_n_past(s), 105);
    /* generate needs logits: after a truncate there are none */
    assert_int_equal(lg_session_truncate(s, 0), LG_OK);
    int32_t *out = NULL;
    size_t n_out = 0;
    assert_int_equal(lg_session_generate(s, NULL, 0, NULL, 0, NULL, &out, &n_out), LG_E_ARG);
    free(la);
    free(la2);
    free(lb);
    lg_session_free(s);
}

static void test_eval_errors(void **state) {
    (void)state;
    lg_session *s = new_session(NULL);
    free(eval_copy(s, g_ids, 10));
    const float *l = NULL;
    int32_t bad[3] = {1, 2, 152000};
    assert_int_equal(lg_session_eval(s, bad, 3, NULL, 0, 0, &l), LG_E_ARG);
    assert_non_null(strstr(lg_session_errmsg(s), "outside"));
    bad[2] = -5;
    assert_int_equal(lg_session_eval(s, bad, 3, NULL, 0, 0, &l), LG_E_ARG);
    assert_int_equal(lg_session_eval(s, bad, 0, NULL, 0, 0, &l), LG_E_ARG);
    assert_int_equal(lg_session_eval(s, NULL, 3, NULL, 0, 0, &l), LG_E_ARG);
    /* two image tokens, one image row */
    float row[64] = {0};
    int32_t img[3] = {151646, 151646, 198};
    assert_int_equal(lg_session_eval(s, img, 3, row, 1, 0, &l), LG_E_ARG);
    assert_non_null(strstr(lg_session_errmsg(s), "image"));
    assert_int_equal(lg_session_n_past(s), 10);
    /* ... with two rows it works, and without rows the ids embed as tokens */
    float rows2[128] = {0};
    assert_int_equal(lg_session_eval(s, img, 3, rows2, 2, 0, &l), LG_OK);
    assert_int_equal(lg_session_eval(s, img, 3, NULL, 0, 0, &l), LG_OK);
    assert_int_equal(lg_session_n_past(s), 16);
    assert_string_equal(lg_session_errmsg(s), "");
    lg_session_free(s);
    /* the context limit */
    lg_model *m = open_tiny(LG_KV_F32, 64);
    assert_int_equal(lg_model_context_limit(m), 64);
    s = new_session(m);
    assert_int_equal(lg_session_eval(s, g_ids, 65, NULL, 0, 0, &l), LG_E_LIMIT);
    assert_int_equal(lg_session_n_past(s), 0);
    assert_int_equal(lg_session_eval(s, g_ids, 60, NULL, 0, 0, &l), LG_OK);
    assert_int_equal(lg_session_eval(s, g_ids, 5, NULL, 0, 0, &l), LG_E_LIMIT);
    assert_int_equal(lg_session_n_past(s), 60);
    /* generation stops at the limit without an error */
    lg_generate_params gp = lg_generate_params_default();
    gp.max_new_tokens = 20;
    gp.stop_ids = bad; /* nothing generated is -5 */
    gp.n_stop_ids = 1;
    int32_t *out = NULL;
    size_t n_out = 0;
    assert_int_equal(lg_session_generate(s, NULL, 0, NULL, 0, &gp, &out, &n_out), LG_OK);
    assert_int_equal(n_out, 5);
    assert_int_equal(lg_session_n_past(s), 64);
    lg_free(out);
    lg_session_free(s);
    lg_model_free(m);
}

static void test_kv_types(void **state) {
    (void)state;
    lg_session *s = new_session(NULL);
    float *ref = eval_copy(s, g_ids, 300);
    lg_session_free(s);
    /* ref kernels, 300-token prompt; measured: bf16 ~1e-2, f16 ~1e-3, i16 (int16 + a scale
     * per head row) ~1e-4 */
    lg_kv_type types[3] = {LG_KV_BF16, LG_KV_F16, LG_KV_I16};
    double tol[3] = {5e-2, 5e-3, 1e-3};
    static const char *names[3] = {"bf16", "f16", "i16"};
    for (int t = 0; t < 3; t++) {
        lg_model *m = open_tiny(types[t], 0);
        assert_int_equal(lg_model_kv_type(m), types[t]);
        s = new_session(m);
        float *got = eval_copy(s, g_ids, 300);
        double d = 0;
        for (int64_t i = 0; i < g_nv; i++) d = fmax(d, fabs((double)got[i] - ref[i]));
        print_message("  KV %s: logits max|diff| %.3g\n", names[t], d);
        assert_true(d > 0 && d < tol[t]);
        free(got);
        lg_session_free(s);
        lg_model_free(m);
    }
    /* the default type keeps the --exact path float32: identical to an explicit f32 cache */
    lg_model *m = open_tiny(LG_KV_AUTO, 0);
    assert_int_equal(lg_model_kv_type(m), LG_KV_F32);
    s = new_session(m);
    float *got = eval_copy(s, g_ids, 300);
    assert_memory_equal(got, ref, (size_t)g_nv * sizeof *got);
    free(got);
    lg_session_free(s);
    lg_model_free(m);
    free(ref);
}

static void test_encode_image_args(void **state) {
    (void)state;
    lg_session *s = new_session(NULL);
    lg_pixels px = {0};
    px.channels = 3;
    px.height = px.width = 384;
    px.orig_height = px.orig_width = 384;
    px.n_crops = 2;
    px.values = calloc((size_t)2 * 3 * 384 * 384, sizeof(float));
    float *f = NULL;
    int64_t n = 0;
    px.n_crops = 1;
    assert_int_equal(lg_session_encode_image(s, &px, &f, &n), LG_E_ARG);
    assert_non_null(strstr(lg_session_errmsg(s), "needs 2 crops"));
    px.n_crops = 2;
    px.height = 336;
    assert_int_equal(lg_session_encode_image(s, &px, &f, &n), LG_E_ARG);
    px.height = 384;
    px.image_tokens = 729;
    assert_int_equal(lg_session_encode_image(s, &px, &f, &n), LG_E_ARG);
    assert_non_null(strstr(lg_session_errmsg(s), "packs 1485"));
    px.image_tokens = 0;
    px.orig_width = 0;
    assert_int_equal(lg_session_encode_image(s, &px, &f, &n), LG_E_ARG);
    assert_int_equal(lg_session_encode_image(s, NULL, &f, &n), LG_E_ARG);
    assert_null(f);
    px.orig_width = 384;
    assert_int_equal(lg_session_encode_image(s, &px, &f, &n), LG_OK);
    assert_int_equal(n, 1485); /* 729 + 27 x (27 + 1) */
    /* the last row of every map row is image_newline */
    for (int k = 0; k < 64; k++) assert_true(f[(729 + 27) * 64 + k] == g_model->w.newline[k]);
    lg_free(f);
    free(px.values);
    lg_session_free(s);
}

/* torch.nn.functional.interpolate(x, size=(2, 3), mode="bilinear") of a 3x4 ramp x[i][j] =
 * 4i + j (values computed with the align_corners=False formula by hand). */
static void test_bilinear(void **state) {
    (void)state;
    float in[12];
    for (int i = 0; i < 12; i++) in[i] = (float)i;
    float out[6];
    pack_bilinear_hwc(in, 3, 4, 1, out, 2, 3);
    /* rows: src = 1.5*(y+0.5)-0.5 = 0.25, 1.75; cols: src = (4/3)(x+0.5)-0.5 = 1/6, 1.5, 17/6 */
    const double ys[2] = {0.25, 1.75}, xs[3] = {1.0 / 6, 1.5, 17.0 / 6};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) assert_true(fabs(out[y * 3 + x] - (4 * ys[y] + xs[x])) < 1e-5);
    /* same size: a copy */
    float same[12];
    pack_bilinear_hwc(in, 3, 4, 1, same, 3, 4);
    assert_memory_equal(same, in, sizeof in);
}

// ---- sampling ----

static void test_sampler(void **state) {
    (void)state;
    lg_error e;
    float l[6] = {0.5f, 3.0f, 3.0f, -1.0f, 2.0f, 0.0f};
    int32_t id = -1;
    lg_sampler_params p = lg_sampler_params_default();
    assert_true(p.greedy);
    assert_int_equal(lg_sample(l, 6, &p, NULL, &id, &e), LG_OK);
    assert_int_equal(id, 1); /* first of the tied maxima */
    p.greedy = 0;
    uint64_t rng = 1;
    /* top_k = 1 keeps the tie of the largest value: only 1 and 2 can come out */
    p.top_k = 1;
    int seen[6] = {0};
    for (int i = 0; i < 400; i++) {
        assert_int_equal(lg_sample(l, 6, &p, &rng, &id, &e), LG_OK);
        seen[id]++;
    }
    assert_true(seen[1] > 100 && seen[2] > 100 && seen[1] + seen[2] == 400);
    /* frequencies: p = 0.5, 0.25, 0.125, 0.125 */
    float q[4] = {logf(0.5f), logf(0.25f), logf(0.125f), logf(0.125f)};
    p.top_k = 0;
    p.top_p = 1.0f;
    p.seed = 7;
    rng = p.seed;
    int cnt[4] = {0};
    for (int i = 0; i < 20000; i++) {
        lg_sample(q, 4, &p, &rng, &id, &e);
        cnt[id]++;
    }
    const double want[4] = {0.5, 0.25, 0.125, 0.125};
    for (int k = 0; k < 4; k++) assert_true(fabs(cnt[k] / 20000.0 - want[k]) < 0.015);
    /* top_p = 0.6: ascending cumulative 0.125, 0.25 <= 0.4 are dropped -> {0, 1} at 2:1 */
    p.top_p = 0.6f;
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < 6000; i++) {
        lg_sample(q, 4, &p, &rng, &id, &e);
        cnt[id]++;
    }
    assert_true(cnt[2] == 0 && cnt[3] == 0 && fabs(cnt[0] / 6000.0 - 2.0 / 3) < 0.03);
    /* a tiny top_p keeps only the best */
    p.top_p = 1e-6f;
    for (int i = 0; i < 50; i++) {
        lg_sample(q, 4, &p, &rng, &id, &e);
        assert_int_equal(id, 0);
    }
    /* a low temperature sharpens towards the argmax */
    p.top_p = 1.0f;
    p.temperature = 0.05f;
    for (int i = 0; i < 50; i++) {
        lg_sample(q, 4, &p, &rng, &id, &e);
        assert_int_equal(id, 0);
    }
    /* seeds reproduce */
    p.temperature = 1.0f;
    int32_t a[32], b[32];
    uint64_t r1 = 99, r2 = 99, r3 = 100;
    int differ = 0;
    for (int i = 0; i < 32; i++) {
        lg_sample(q, 4, &p, &r1, &a[i], &e);
        lg_sample(q, 4, &p, &r2, &b[i], &e);
        int32_t c;
        lg_sample(q, 4, &p, &r3, &c, &e);
        differ += c != a[i];
    }
    assert_memory_equal(a, b, sizeof a);
    assert_true(differ > 0);
    /* bad parameters */
    p.temperature = 0;
    assert_int_equal(lg_sample(q, 4, &p, &r1, &id, &e), LG_E_ARG);
    p.temperature = 1;
    p.top_p = 0;
    assert_int_equal(lg_sample(q, 4, &p, &r1, &id, &e), LG_E_ARG);
    p.top_p = 1;
    p.top_k = -1;
    assert_int_equal(lg_sample(q, 4, &p, &r1, &id, &e), LG_E_ARG);
    assert_int_equal(lg_sample(q, 0, &p, &r1, &id, &e), LG_E_ARG);
}

/* The plain definition the sampler must agree with (transformers' warpers: temperature, top-k
 * with ties, top-p walking from the least likely) by sorting the whole vocabulary, and the same
 * uniform draw: the fast sampler selects the top k and sets aside tokens that cannot survive
 * top-p instead, which must not change which token a draw picks. */
typedef struct ref_cand {
    double s;
    int32_t id;
} ref_cand;

static int ref_cmp(const void *a, const void *b) {
    const ref_cand *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

static int32_t ref_sample(const float *l, int n, const lg_sampler_params *p, uint64_t *rng) {
    ref_cand *c = malloc((size_t)n * sizeof *c);
    double *pr = malloc((size_t)n * sizeof *pr);
    for (int i = 0; i < n; i++) c[i] = (ref_cand){(double)(l[i] / p->temperature), i};
    qsort(c, (size_t)n, sizeof *c, ref_cmp);
    int keep = n;
    if (p->top_k > 0 && p->top_k < n) {
        keep = p->top_k;
        while (keep < n && c[keep].s == c[p->top_k - 1].s) keep++;
    }
    double sum = 0;
    for (int i = 0; i < keep; i++) sum += pr[i] = exp(c[i].s - c[0].s);
    for (int i = 0; i < keep; i++) pr[i] /= sum;
    if (p->top_p < 1) {
        double cum = 0;
        int k = keep;
        for (int i = keep - 1; i >= 1; i--) {
            if ((cum += pr[i]) > 1.0 - p->top_p) break;
            k = i;
        }
        keep = k;
    }
    sum = 0;
    for (int i = 0; i < keep; i++) sum += pr[i];
    double u = (double)(smp_next(rng) >> 11) * (1.0 / 9007199254740992.0) * sum, acc = 0;
    int32_t id = c[keep - 1].id;
    for (int i = 0; i < keep; i++)
        if (u < (acc += pr[i])) {
            id = c[i].id;
            break;
        }
    free(c);
    free(pr);
    return id;
}

static void test_sampler_large_vocab(void **state) {
    (void)state;
    enum { N = 20000 };
    float *l = malloc(N * sizeof *l);
    uint64_t gen = 5;
    for (int i = 0; i < N; i++) /* a peaked, LM-like distribution with exact ties */
        l[i] = (float)(int)((double)(smp_next(&gen) >> 40) / (1 << 24) * 40.0) * 0.25f - 8.0f;
    l[17] = l[4242] = 6.0f;
    const struct {
        float t, top_p;
        int top_k;
    } cfg[] = {{1.0f, 1.0f, 50},   {0.2f, 0.95f, 0}, {0.2f, 0.95f, 50}, {1.0f, 0.9f, 0},
               {1.0f, 0.5f, 1000}, {2.0f, 0.99f, 0}, {0.7f, 1.0f, 3},   {1.0f, 1.0f, 0}};
    smp_work w = {0};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        lg_sampler_params p = lg_sampler_params_default();
        p.greedy = 0;
        p.temperature = cfg[k].t;
        p.top_p = cfg[k].top_p;
        p.top_k = cfg[k].top_k;
        uint64_t r1 = 11 + k, r2 = 11 + k;
        int agree = 0;
        for (int i = 0; i < 200; i++) {
            int32_t got = -1;
            assert_int_equal(smp_sample(l, N, &p, &r1, &w, &got, NULL), LG_OK);
            agree += got == ref_sample(l, N, &p, &r2);
        }
        /* a draw could differ only within rounding of a cumulative boundary */
        if (agree < 199) fail_msg("setting %zu: %d of 200 draws agree", k, agree);
    }
    smp_work_free(&w);
    free(l);
}

// ---- generation ----

static int stop_after_3(void *user, int32_t id) {
    (void)id;
    return ++*(int *)user >= 3;
}

static void test_generate(void **state) {
    (void)state;
    size_t np = 200;
    lg_session *s = new_session(NULL);
    lg_generate_params gp = lg_generate_params_default();
    gp.max_new_tokens = 6;
    int32_t *out = NULL;
    size_t n_out = 0;
    assert_int_equal(lg_session_generate(s, g_ids, np, NULL, 0, &gp, &out, &n_out), LG_OK);
    assert_int_equal(n_out, 6);
    assert_int_equal(lg_session_n_past(s), (int64_t)(np + 5)); /* the last id is not fed back */
    /* The cache is consistent with a fresh pass over prompt + generated ids. */
    lg_session *f = new_session(NULL);
    int32_t *all = malloc((np + 5) * sizeof *all);
    memcpy(all, g_ids, np * sizeof *all);
    memcpy(all + np, out, 5 * sizeof *all);
    const float *rows = NULL;
    assert_int_equal(lg_session_eval(f, all, np, NULL, 0, 0, &rows), LG_OK);
    assert_int_equal(smp_argmax(rows, g_nv), out[0]);
    assert_int_equal(lg_session_eval(f, all + np, 5, NULL, 0, 1, &rows), LG_OK);
    for (int k = 0; k < 5; k++) assert_int_equal(smp_argmax(rows + k * g_nv, g_nv), out[k + 1]);
    free(all);
    lg_session_free(f);
    /* a stop id ends generation and is part of the output */
    int32_t first = out[0];
    lg_free(out);
    lg_session_truncate(s, 0);
    gp.stop_ids = &first;
    gp.n_stop_ids = 1;
    assert_int_equal(lg_session_generate(s, g_ids, np, NULL, 0, &gp, &out, &n_out), LG_OK);
    assert_int_equal(n_out, 1);
    assert_int_equal(out[0], first);
    lg_free(out);
    /* the callback stops it */
    lg_session_truncate(s, 0);
    gp.stop_ids = NULL;
    int calls = 0;
    gp.on_token = stop_after_3;
    gp.user = &calls;
    assert_int_equal(lg_session_generate(s, g_ids, np, NULL, 0, &gp, &out, &n_out), LG_OK);
    assert_int_equal(n_out, 3);
    lg_free(out);
    /* zero new tokens, and continuing from the last eval */
    gp.on_token = NULL;
    gp.max_new_tokens = 0;
    assert_int_equal(lg_session_generate(s, NULL, 0, NULL, 0, &gp, &out, &n_out), LG_OK);
    assert_int_equal(n_out, 0);
    lg_free(out);
    /* sampling with a seed is reproducible */
    gp.max_new_tokens = 8;
    gp.sampler.greedy = 0;
    gp.sampler.seed = 42;
    int32_t *o1 = NULL, *o2 = NULL;
    size_t n1, n2;
    lg_session_truncate(s, 0);
    assert_int_equal(lg_session_generate(s, g_ids, np, NULL, 0, &gp, &o1, &n1), LG_OK);
    lg_session_truncate(s, 0);
    assert_int_equal(lg_session_generate(s, g_ids, np, NULL, 0, &gp, &o2, &n2), LG_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(o1, o2, n1 * sizeof *o1);
    lg_free(o1);
    lg_free(o2);
    gp.max_new_tokens = -1;
    assert_int_equal(lg_session_generate(s, g_ids, np, NULL, 0, &gp, &out, &n_out), LG_E_ARG);
    lg_session_free(s);
    lg_session_free(NULL);
}

/* The fast kernels' weight packing: on first use (prepack -1, the default), all at open (1) or
 * never (0). Packing at open or on first use gives the same bits; two sessions making the first
 * use at once on two threads get the same bits too; without packing the products read the
 * checkpoint's layout (another summation order in the decode path: close, not identical). */
typedef struct prepack_run {
    const lg_model *m;
    const float *logits; /* the session's, kept alive until the test frees it */
    lg_session *s;
    lg_status st;
} prepack_run;

static void *prepack_eval(void *arg) {
    prepack_run *r = arg;
    lg_error e;
    r->st = lg_session_create(r->m, &r->s, &e);
    if (r->st == LG_OK) r->st = lg_session_eval(r->s, g_ids, g_n_ids, NULL, 0, 0, &r->logits);
    if (r->st == LG_OK) { /* and one decode step: the weight-streaming path */
        int32_t id = (int32_t)smp_argmax(r->logits, g_nv);
        r->st = lg_session_eval(r->s, &id, 1, NULL, 0, 0, &r->logits);
    }
    return NULL;
}

static lg_model *open_fast(int prepack) {
    char *dir = tu_fixture("llava-ov-tiny");
    lg_model_params p = lg_model_params_default();
    p.prepack = prepack;
    lg_model *m = NULL;
    lg_error e;
    if (lg_model_open(dir, &p, &m, &e) != LG_OK) fail_msg("%s", e.msg);
    free(dir);
    return m;
}

static void test_prepack_modes(void **state) {
    (void)state;
    lg_model *lazy = open_fast(-1), *eager = open_fast(1), *none = open_fast(0);
    prepack_run r[4] = {{.m = lazy}, {.m = lazy}, {.m = eager}, {.m = none}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, prepack_eval, &r[i]), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    prepack_eval(&r[2]);
    prepack_eval(&r[3]);
    for (int i = 0; i < 4; i++) assert_int_equal(r[i].st, LG_OK);
    size_t bytes = (size_t)g_nv * sizeof(float);
    assert_memory_equal(r[0].logits, r[1].logits, bytes);
    assert_memory_equal(r[0].logits, r[2].logits, bytes);
    tu_check_tensor(r[3].logits, r[0].logits, (size_t)g_nv, 1e-4, "logits without packing");
    for (int i = 0; i < 4; i++) lg_session_free(r[i].s);
    lg_model_free(lazy);
    lg_model_free(eager);
    lg_model_free(none);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_chunks_and_all_logits),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_kv_types),
        cmocka_unit_test(test_encode_image_args),
        cmocka_unit_test(test_bilinear),
        cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_sampler_large_vocab),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_prepack_modes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
