/*
 * test_model_family.h — parity of one model family with its transformers reference (fixtures
 * README sections 6 and 7), shared by tests/test_model_<family>.c. Each case runs the whole
 * pipeline as assess does: the fixture image through lg_preprocess (crops compared byte for byte
 * with pixel_values*.u8 where stored, the image-token count with the processor's), the crop-0
 * feature layer (CLS row included), the packed image features (1e-4 x max |reference|), the
 * last-position logits (1e-3, argmax identical) and the greedy tokens (identical up to the first
 * step whose reference top1-top2 gap is below 10 x our measured logit error). A case names the
 * kernels it runs on: the reference ones (--exact) or the default fast path, which must meet the
 * same bounds. LG_TEST_REPORT=1 prints the errors and checks nothing.
 */
#ifndef LG_TEST_MODEL_FAMILY_H
#define LG_TEST_MODEL_FAMILY_H

#include "testutil.h"

#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One case: a reference folder under reference/<model>/, the LLaVA "pad" variant or not, and
 * the kernels ("ref" or "auto"). */
typedef struct fam_case {
    const char *name;
    bool pad;
    bool exact;
} fam_case;

static const char *g_fam_model; /* fixture folder name, e.g. "llava-1.5-tiny" (set by main) */
static lg_model *g_fam_ref, *g_fam_fast;
static lg_preprocessor *g_fam_pp[2]; /* crop, pad */
static bool g_fam_report;

static lg_model *fam_open(const char *kernels) {
    char *dir = tu_fixture(g_fam_model);
    lg_model_params p = lg_model_params_default();
    p.kernels = kernels;
    lg_model *m = NULL;
    lg_error e;
    if (lg_model_open(dir, &p, &m, &e) != LG_OK) fprintf(stderr, "lg_model_open: %s\n", e.msg);
    free(dir);
    return m;
}

static int fam_setup(void **state) {
    (void)state;
    g_fam_report = getenv("LG_TEST_REPORT") != NULL;
    g_fam_ref = fam_open("ref");
    g_fam_fast = fam_open("auto");
    char *dir = tu_fixture(g_fam_model);
    lg_error e;
    for (int pad = 0; pad < 2; pad++) {
        lg_preprocessor_options o = lg_preprocessor_options_default();
        o.square_pad = pad;
        if (lg_preprocessor_open_with(dir, &o, &g_fam_pp[pad], &e) != LG_OK) g_fam_pp[pad] = NULL;
    }
    /* Only LLaVA-1.5 has the pad variant: elsewhere it is refused, and its cases absent. */
    if (!g_fam_pp[0]) fprintf(stderr, "preprocessor: %s\n", e.msg);
    free(dir);
    return g_fam_ref && g_fam_fast && g_fam_pp[0] ? 0 : -1;
}

static int fam_teardown(void **state) {
    (void)state;
    lg_model_free(g_fam_ref);
    lg_model_free(g_fam_fast);
    lg_preprocessor_free(g_fam_pp[0]);
    lg_preprocessor_free(g_fam_pp[1]);
    return 0;
}

static json_t *fam_json(const char *cas, const char *file) {
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/%s%s%s", g_fam_model, cas, cas[0] ? "/" : "", file);
    char *path = tu_fixture(rel);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    free(path);
    return j;
}

/* A reference file of the case, or NULL when the case's "files" does not list `key`. */
static uint8_t *fam_file(json_t *cj, const char *cas, const char *key, size_t *n) {
    json_t *f = json_object_get(json_object_get(cj, "files"), key);
    if (!f) return NULL;
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/%s/%s", g_fam_model, cas,
             json_string_value(json_object_get(f, "file")));
    return tu_read_fixture(rel, n);
}

static double fam_max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* got vs the reference file `key`: max |diff| <= rel x max |ref| (rel < 0: -rel absolute). */
static double fam_compare(json_t *cj, const char *cas, const char *key, const float *got, size_t n,
                          double rel) {
    size_t bytes;
    float *ref = (float *)fam_file(cj, cas, key, &bytes);
    if (!ref) fail_msg("%s: no %s", cas, key);
    assert_int_equal(bytes, n * sizeof(float));
    double tol = rel < 0 ? -rel : rel * tu_max_abs(ref, n), err = fam_max_diff(got, ref, n);
    print_message("  %s: %s max|diff| %.3g (tol %.3g)\n", cas, key, err, tol);
    if (!g_fam_report) tu_check_tensor(got, ref, n, tol, key);
    free(ref);
    return err;
}

static int32_t *fam_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = malloc(*n * sizeof *ids + 1);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

static void fam_greedy(lg_session *s, json_t *gen, double err, const char *cas) {
    size_t n_ref;
    int32_t *ref = fam_ids(json_object_get(gen, "new_token_ids"), &n_ref);
    json_t *gaps = json_object_get(gen, "per_step_top1_minus_top2_logit");
    lg_generate_params gp = lg_generate_params_default();
    gp.max_new_tokens = (int)n_ref;
    int32_t *out = NULL;
    size_t n_out = 0, checked = 0;
    assert_int_equal(lg_session_generate(s, NULL, 0, NULL, 0, &gp, &out, &n_out), LG_OK);
    for (size_t i = 0; i < n_ref; i++) {
        if (json_real_value(json_array_get(gaps, i)) < err) break;
        assert_true(i < n_out);
        if (out[i] != ref[i] && !g_fam_report)
            fail_msg("%s: greedy step %zu: got %d, reference %d", cas, i, out[i], ref[i]);
        if (out[i] != ref[i]) break;
        checked++;
    }
    print_message("  %s: greedy %zu/%zu tokens identical (stopped at gap < %.1e)\n", cas, checked,
                  n_ref, err);
    if (!g_fam_report) assert_true(checked >= 1);
    lg_free(out);
    free(ref);
}

/* The case's image through the image layer; crops compared with the reference bytes. */
static lg_pixels *fam_pixels(json_t *cj, const char *cas, bool pad) {
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", json_string_value(json_object_get(cj, "image_file")));
    char *path = tu_fixture(rel);
    lg_image *img = NULL;
    lg_pixels *px = NULL;
    lg_error e;
    assert_non_null(g_fam_pp[pad]);
    if (lg_image_load_file(path, NULL, &img, &e) != LG_OK ||
        lg_preprocess(g_fam_pp[pad], img, &px, &e) != LG_OK)
        fail_msg("%s: %s", path, e.msg);
    free(path);
    lg_image_free(img);
    size_t n;
    uint8_t *u8 = fam_file(cj, cas, pad ? "pixel_values_pad_u8" : "pixel_values_u8", &n);
    if (u8) {
        assert_int_equal(n, (size_t)px->n_crops * 3 * px->height * px->width);
        assert_memory_equal(px->crops_u8, u8, n);
        free(u8);
    }
    return px;
}

static void fam_run(void **state) {
    const fam_case *fc = *state;
    const char *cas = fc->name;
    lg_model *m = fc->exact ? g_fam_ref : g_fam_fast;
    print_message("  %s%s on %s kernels\n", cas, fc->pad ? " (pad)" : "",
                  fc->exact ? "ref" : "auto");
    json_t *cj = fam_json(cas, "case.json");
    json_t *prompt = json_object_get(cj, "prompt");
    json_t *var = fc->pad ? json_object_get(cj, "pad_variant") : cj;
    lg_session *s = NULL;
    lg_error e;
    assert_int_equal(lg_session_create(m, &s, &e), LG_OK);
    int64_t d = lg_model_hidden_size(m);
    float *feats = NULL;
    int64_t n_rows = 0;
    if (json_object_get(cj, "image_file")) {
        lg_pixels *px = fam_pixels(cj, cas, fc->pad);
        int64_t want = json_integer_value(json_object_get(prompt, "num_image_tokens"));
        assert_int_equal(px->image_tokens, want);
        assert_int_equal(lg_model_image_tokens(m, px->orig_height, px->orig_width), want);
        if (!fc->pad) { /* crop 0 through the tower alone, class row included */
            const vit_config *vc = &m->cfg.vit;
            float *f0 = malloc((size_t)vc->n_pos * vc->n_embd * sizeof *f0);
            assert_int_equal(vit_forward_crop(s, px->values, f0), LG_OK);
            fam_compare(cj, cas, "crop0_feature_layer", f0, (size_t)vc->n_pos * vc->n_embd, 1e-4);
            free(f0);
        }
        assert_int_equal(lg_session_encode_image(s, px, &feats, &n_rows), LG_OK);
        assert_int_equal(n_rows, want);
        fam_compare(cj, cas, fc->pad ? "image_features_pad" : "image_features", feats,
                    (size_t)(n_rows * d), 1e-4);
        lg_pixels_free(px);
    }
    size_t n_ids;
    int32_t *ids = fam_ids(json_object_get(prompt, "input_ids"), &n_ids);
    const float *logits = NULL;
    if (lg_session_eval(s, ids, n_ids, feats, n_rows, 0, &logits) != LG_OK)
        fail_msg("eval: %s", lg_session_errmsg(s));
    size_t nv = (size_t)lg_model_n_vocab(m);
    double err =
        fam_compare(cj, cas, fc->pad ? "last_logits_pad" : "last_logits", logits, nv, -1e-3);
    json_t *lj = json_object_get(var, "logits");
    if (!g_fam_report)
        assert_int_equal(smp_argmax(logits, (int64_t)nv),
                         json_integer_value(json_object_get(lj, "argmax")));
    fam_greedy(s, json_object_get(var, "generation"), fmax(10 * err, 1e-5), cas);
    free(ids);
    lg_free(feats);
    lg_session_free(s);
    json_decref(cj);
}

#define FAM_CASE(c) cmocka_unit_test_prestate(fam_run, (void *)(c))

#endif
