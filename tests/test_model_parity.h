/*
 * test_model_parity.h — shared by test_model.c and test_model_images.c (the reference kernels,
 * split so that CTest can run the slow cases in parallel) and test_model_fast.c (the fast
 * kernels in both precisions): the LLaVA-OneVision forward pass against the reference outputs
 * of ../shared/fixtures/reference/llava-ov-tiny (transformers 4.45, float32): for every case the
 * crop-0 feature layer (729 x 64), the packed image features (T x 64), the last-position logits
 * (tolerances of the fixtures README, section 5, unless g_cfg says otherwise) and 32 greedy
 * tokens, token-identical up to the first step whose top1-top2 gap is below our measured logit
 * error (times g_cfg.gap_factor). The pixels come straight from the fixtures (pixel_values.u8
 * through the README's LUT), so this test does not depend on the image layer.
 * Environment, for a look at other settings: LG_TEST_KERNELS=auto|ref|<table>,
 * LG_TEST_PRECISION=accurate|bf16, LG_TEST_KV=f32|i16|bf16|f16 (the KV cache type),
 * LG_TEST_REPORT=1 (print the errors, check nothing).
 */
#ifndef LG_TEST_MODEL_PARITY_H
#define LG_TEST_MODEL_PARITY_H

#include "testutil.h"

#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF "reference/llava-ov-tiny/"

static lg_model *g_model;

/* What a test file runs and checks (set before cmocka_run_group_tests). */
typedef struct parity_cfg {
    const char *kernels;
    lg_precision precision;
    double feat_rel;   /* features: max |diff| <= feat_rel x max |reference| */
    double logit_tol;  /* last-position logits: max |diff| */
    double gap_factor; /* greedy ids compared while the reference gap >= this x the logit error */
    lg_kv_type kv;     /* the KV cache type (0: float32) */
} parity_cfg;

/* The default: the reference kernels (the --exact path) with the README's float32 bounds. */
static parity_cfg g_cfg = {"ref", LG_PRECISION_ACCURATE, 1e-4, 1e-3, 10.0, LG_KV_F32};
static bool g_report_only;

static int open_model(void **state) {
    (void)state;
    char *dir = tu_fixture("llava-ov-tiny");
    lg_model_params p = lg_model_params_default();
    const char *k = getenv("LG_TEST_KERNELS"), *pr = getenv("LG_TEST_PRECISION");
    p.kernels = k ? k : g_cfg.kernels;
    p.precision = pr ? (strcmp(pr, "bf16") == 0 ? LG_PRECISION_BF16 : LG_PRECISION_ACCURATE)
                     : g_cfg.precision;
    p.kv_type = g_cfg.kv;
    const char *kv = getenv("LG_TEST_KV");
    if (kv)
        p.kv_type = strcmp(kv, "bf16") == 0  ? LG_KV_BF16
                    : strcmp(kv, "f16") == 0 ? LG_KV_F16
                    : strcmp(kv, "i16") == 0 ? LG_KV_I16
                                             : LG_KV_F32;
    g_report_only = getenv("LG_TEST_REPORT") != NULL;
    static const char *kv_names[] = {"auto", "f32", "bf16", "f16", "i16"};
    print_message("  model: kernels %s, precision %s, KV %s\n", p.kernels,
                  p.precision == LG_PRECISION_BF16 ? "bf16" : "accurate",
                  kv_names[(int)p.kv_type + 1]);
    lg_error e;
    lg_status s = lg_model_open(dir, &p, &g_model, &e);
    free(dir);
    if (s != LG_OK) {
        fprintf(stderr, "lg_model_open: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int close_model(void **state) {
    (void)state;
    lg_model_free(g_model);
    return 0;
}

static json_t *load_json(const char *rel) {
    char *path = tu_fixture(rel);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    free(path);
    return j;
}

static float *read_f32(const char *cas, const char *file, size_t *n) {
    char rel[256];
    snprintf(rel, sizeof rel, REF "%s/%s", cas, file);
    size_t bytes;
    uint8_t *d = tu_read_fixture(rel, &bytes);
    *n = bytes / 4;
    return (float *)d;
}

static int32_t *json_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = malloc(*n * sizeof *ids + 1);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

/* lg_pixels of a case from pixel_values.u8 and the LUT of index.json. */
static lg_pixels *case_pixels(const char *cas, json_t *cj) {
    json_t *idx = load_json(REF "index.json");
    json_t *lut_j = json_object_get(idx, "pixel_lut_u8_to_f32");
    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = (float)json_real_value(json_array_get(lut_j, i));
    json_decref(idx);
    char rel[256];
    snprintf(rel, sizeof rel, REF "%s/pixel_values.u8", cas);
    size_t n;
    uint8_t *u8 = tu_read_fixture(rel, &n);
    lg_pixels *px = calloc(1, sizeof *px);
    px->channels = 3;
    px->height = px->width = 384;
    px->n_crops = (int)(n / (3 * 384 * 384));
    px->values = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) px->values[i] = lut[u8[i]];
    px->crops_u8 = u8;
    px->orig_height = (int)json_integer_value(json_object_get(cj, "height"));
    px->orig_width = (int)json_integer_value(json_object_get(cj, "width"));
    json_t *ip = json_object_get(cj, "image_processor");
    json_t *grid = json_object_get(ip, "grid_hw");
    px->grid_h = (int)json_integer_value(json_array_get(grid, 0));
    px->grid_w = (int)json_integer_value(json_array_get(grid, 1));
    px->image_tokens =
        json_integer_value(json_object_get(json_object_get(cj, "prompt"), "num_image_tokens"));
    return px;
}

static void free_pixels(lg_pixels *px) {
    free(px->values);
    free(px->crops_u8);
    free(px);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Greedy continuation: identical ids up to the first step whose reference top1-top2 gap is
 * below `err` (after such a step another continuation is equally valid). */
static void check_greedy(lg_session *s, json_t *cj, double err, const char *cas) {
    json_t *gen = json_object_get(cj, "generation");
    size_t n_ref;
    int32_t *ref = json_ids(json_object_get(gen, "new_token_ids"), &n_ref);
    json_t *gaps = json_object_get(gen, "per_step_top1_minus_top2_logit");
    lg_generate_params gp = lg_generate_params_default();
    gp.max_new_tokens = (int)n_ref;
    int32_t *out = NULL;
    size_t n_out = 0;
    assert_int_equal(lg_session_generate(s, NULL, 0, NULL, 0, &gp, &out, &n_out), LG_OK);
    size_t checked = 0;
    for (size_t i = 0; i < n_ref; i++) {
        if (json_real_value(json_array_get(gaps, i)) < err) break;
        assert_true(i < n_out);
        if (out[i] != ref[i]) {
            if (g_report_only) {
                print_message("  %s: greedy step %zu differs (gap %.2g)\n", cas, i,
                              json_real_value(json_array_get(gaps, i)));
                break;
            }
            fail_msg("%s: greedy step %zu: got %d, reference %d", cas, i, out[i], ref[i]);
        }
        checked++;
    }
    print_message("  %s: greedy %zu/%zu tokens identical (stopped at gap < %.1e)\n", cas, checked,
                  n_ref, err);
    if (!g_report_only) assert_true(checked >= 1);
    lg_free(out);
    free(ref);
}

static void run_case(void **state) {
    const char *cas = *state;
    char rel[256];
    snprintf(rel, sizeof rel, REF "%s/case.json", cas);
    json_t *cj = load_json(rel);
    lg_session *s = NULL;
    lg_error e;
    assert_int_equal(lg_session_create(g_model, &s, &e), LG_OK);
    int64_t d = lg_model_hidden_size(g_model);
    float *feats = NULL;
    int64_t n_rows = 0;
    bool has_image = strcmp(cas, "text_only") != 0;
    if (has_image) {
        lg_pixels *px = case_pixels(cas, cj);
        /* crop 0 through the vision tower alone */
        size_t n_ref;
        float *ref = read_f32(cas, "crop0_feature_layer.f32", &n_ref);
        assert_int_equal(n_ref, 729 * 64);
        float *f0 = malloc(n_ref * sizeof *f0);
        assert_int_equal(vit_forward_crop(s, px->values, f0), LG_OK);
        double tol = g_cfg.feat_rel * tu_max_abs(ref, n_ref);
        print_message("  %s: crop0 feature layer max|diff| %.3g (tol %.3g)\n", cas,
                      max_diff(f0, ref, n_ref), tol);
        if (!g_report_only) tu_check_tensor(f0, ref, n_ref, tol, "crop0_feature_layer");
        free(f0);
        free(ref);
        /* the packed features */
        assert_int_equal(lg_session_encode_image(s, px, &feats, &n_rows), LG_OK);
        ref = read_f32(cas, "image_features.f32", &n_ref);
        assert_int_equal((size_t)(n_rows * d), n_ref);
        assert_int_equal(n_rows, lg_model_image_tokens(g_model, px->orig_height, px->orig_width));
        tol = g_cfg.feat_rel * tu_max_abs(ref, n_ref);
        print_message("  %s: %lld packed rows (%d crops), max|diff| %.3g (tol %.3g)\n", cas,
                      (long long)n_rows, px->n_crops, max_diff(feats, ref, n_ref), tol);
        if (!g_report_only) tu_check_tensor(feats, ref, n_ref, tol, "image_features");
        free(ref);
        free_pixels(px);
    }
    /* the prompt */
    size_t n_ids;
    int32_t *ids = json_ids(json_object_get(json_object_get(cj, "prompt"), "input_ids"), &n_ids);
    const float *logits = NULL;
    lg_status st = lg_session_eval(s, ids, n_ids, feats, n_rows, 0, &logits);
    if (st != LG_OK) fail_msg("eval: %s", lg_session_errmsg(s));
    assert_int_equal(lg_session_n_past(s), (int64_t)n_ids);
    size_t n_ref;
    float *ref = read_f32(cas, "last_logits.f32", &n_ref);
    assert_int_equal((int64_t)n_ref, lg_model_n_vocab(g_model));
    double err = max_diff(logits, ref, n_ref);
    print_message("  %s: %zu prompt tokens, last logits max|diff| %.3g (tol %.3g)\n", cas, n_ids,
                  err, g_cfg.logit_tol);
    if (!g_report_only) {
        tu_check_tensor(logits, ref, n_ref, g_cfg.logit_tol, "last_logits");
        json_t *lg = json_object_get(cj, "logits");
        assert_int_equal(smp_argmax(logits, (int64_t)n_ref),
                         json_integer_value(json_object_get(lg, "argmax")));
    }
    /* Greedy: our per-step logit error is of the order of the prompt's (times gap_factor). */
    check_greedy(s, cj, fmax(g_cfg.gap_factor * err, 1e-5), cas);
    free(ref);
    free(ids);
    lg_free(feats);
    lg_session_free(s);
    json_decref(cj);
}

#define CASE(name) cmocka_unit_test_prestate(run_case, (void *)(name))

#endif
