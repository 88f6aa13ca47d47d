/* LAYERS: core kernels image model */
/*
 * test_model_qwen25_vl.c — Qwen2.5-VL (QwenGuard) against the transformers 4.50 reference of
 * ../shared/fixtures/reference/qwen2.5-vl-tiny (fixtures README section 6). Per image: the
 * processor (smart_resize size and image-token count, the flattened pixel tensor bit for bit:
 * pixel_values_f32.bin where stored, and the reference resized RGB through rescale, normalise
 * and the patch order, written out here index by index), the merged vision embeddings
 * (1e-4 x max |reference|); per prompt order (text_first, image_first): the 3-D multimodal RoPE
 * positions of every prompt token (exact), the last-position logits (1e-3) and 16 greedy tokens
 * (identical up to the first step whose top1-top2 gap is below 10 x our logit error), on the
 * reference kernels and on the default fast path. Sizes the reference refuses are refused.
 */
#include "testutil.h"

#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF "reference/qwen2.5-vl-tiny/"

static lg_model *g_ref, *g_fast;
static lg_preprocessor *g_pp;
static json_t *g_manifest;

static lg_model *open_model(const char *kernels) {
    char *dir = tu_fixture("qwen2.5-vl-tiny");
    lg_model_params p = lg_model_params_default();
    p.kernels = kernels;
    lg_model *m = NULL;
    lg_error e;
    if (lg_model_open(dir, &p, &m, &e) != LG_OK) fprintf(stderr, "lg_model_open: %s\n", e.msg);
    free(dir);
    return m;
}

static int setup(void **state) {
    (void)state;
    g_ref = open_model("ref");
    g_fast = open_model("auto");
    char *dir = tu_fixture("qwen2.5-vl-tiny");
    lg_error e;
    if (lg_preprocessor_open(dir, &g_pp, &e) != LG_OK) fprintf(stderr, "preprocessor: %s\n", e.msg);
    free(dir);
    char *path = tu_fixture(REF "manifest.json");
    json_error_t je;
    g_manifest = json_load_file(path, 0, &je);
    free(path);
    return g_ref && g_fast && g_pp && g_manifest ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    lg_model_free(g_ref);
    lg_model_free(g_fast);
    lg_preprocessor_free(g_pp);
    json_decref(g_manifest);
    return 0;
}

static json_t *case_of(const char *image, const char *order) {
    char key[128];
    snprintf(key, sizeof key, "%s/%s", image, order);
    json_t *c = json_object_get(json_object_get(g_manifest, "cases"), key);
    if (!c) fail_msg("no case %s", key);
    return c;
}

static void *ref_file(const char *image, const char *file, size_t *bytes) {
    char rel[256];
    snprintf(rel, sizeof rel, REF "%s/%s", image, file);
    return tu_read_fixture(rel, bytes);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* pixel_values[r][e] from the resized image: row r = ((bh*gw/2 + bw)*2 + i)*2 + j over the
 * 2x2 merge blocks, column e = ((c*2 + frame)*14 + y)*14 + x. */
static void check_pixel_order(const lg_pixels *px, const uint8_t *rgb, const float lut[3][256]) {
    int gw = px->grid_w, w = px->width;
    size_t row = 3 * 2 * 14 * 14;
    for (size_t r = 0; r < (size_t)px->grid_h * gw; r++) {
        size_t blk = r / 4, i = (r % 4) / 2, j = r % 2;
        size_t py = (blk / (gw / 2)) * 2 + i, pxx = (blk % (gw / 2)) * 2 + j;
        for (size_t e = 0; e < row; e++) {
            size_t c = e / 392, y = (e % 196) / 14, x = e % 14;
            uint8_t v = rgb[((py * 14 + y) * w + pxx * 14 + x) * 3 + c];
            float want = lut[c][v];
            if (memcmp(&px->values[r * row + e], &want, 4) != 0)
                fail_msg("pixel_values[%zu][%zu] = %.9g, want %.9g", r, e, px->values[r * row + e],
                         want);
        }
    }
}

static lg_pixels *pixels_of(const char *image, json_t *c) {
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", json_string_value(json_object_get(c, "image")));
    char *path = tu_fixture(rel);
    lg_image *img = NULL;
    lg_pixels *px = NULL;
    lg_error e;
    if (lg_image_load_file(path, NULL, &img, &e) != LG_OK ||
        lg_preprocess(g_pp, img, &px, &e) != LG_OK)
        fail_msg("%s: %s", path, e.msg);
    free(path);
    lg_image_free(img);
    json_t *hw = json_object_get(c, "smart_resize_hw");
    assert_int_equal(px->height, json_integer_value(json_array_get(hw, 0)));
    assert_int_equal(px->width, json_integer_value(json_array_get(hw, 1)));
    assert_int_equal(px->image_tokens,
                     json_integer_value(json_object_get(c, "num_image_pad_tokens")));
    size_t n = (size_t)px->grid_h * px->grid_w * 1176, bytes;
    char stored[256];
    snprintf(stored, sizeof stored, REF "%s/pixel_values_f32.bin", image);
    char *spath = tu_fixture(stored);
    bool have = lg_file_exists(spath);
    free(spath);
    if (have) { /* stored for p05 only */
        float *want = ref_file(image, "pixel_values_f32.bin", &bytes);
        assert_int_equal(bytes, n * 4);
        assert_memory_equal(px->values, want, bytes);
        free(want);
    }
    /* the table the processor's rescale + normalise amount to (fixtures README 7.4) */
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double sd[3] = {0.26862954, 0.26130258, 0.27577711};
    float lut[3][256];
    for (int ch = 0; ch < 3; ch++)
        for (int v = 0; v < 256; v++)
            lut[ch][v] = ((float)(v * (1.0 / 255)) - (float)mean[ch]) / (float)sd[ch];
    uint8_t *rgb = ref_file(image, "resized_rgb_u8.bin", &bytes);
    assert_int_equal(bytes, (size_t)px->height * px->width * 3);
    check_pixel_order(px, rgb, lut);
    free(rgb);
    return px;
}

static void greedy(lg_session *s, json_t *g, double err, const char *label) {
    json_t *want = json_object_get(g, "new_token_ids"),
           *gaps = json_object_get(g, "top1_top2_gap_per_step");
    lg_generate_params gp = lg_generate_params_default();
    gp.max_new_tokens = (int)json_array_size(want);
    int32_t *out = NULL;
    size_t n_out = 0, checked = 0;
    assert_int_equal(lg_session_generate(s, NULL, 0, NULL, 0, &gp, &out, &n_out), LG_OK);
    for (size_t i = 0; i < json_array_size(want); i++) {
        if (json_real_value(json_array_get(gaps, i)) < err) break;
        assert_true(i < n_out);
        if (out[i] != json_integer_value(json_array_get(want, i)))
            fail_msg("%s: greedy step %zu: got %d, reference %lld", label, i, out[i],
                     json_integer_value(json_array_get(want, i)));
        checked++;
    }
    print_message("  %s: greedy %zu/%zu identical (gap >= %.1e)\n", label, checked,
                  json_array_size(want), err);
    assert_true(checked >= 1);
    lg_free(out);
}

static void run_order(lg_model *m, const char *image, const char *order, const float *feats,
                      int64_t n_rows) {
    json_t *c = case_of(image, order);
    char file[128], label[160];
    snprintf(label, sizeof label, "%s/%s (%s)", image, order, m == g_ref ? "ref" : "auto");
    size_t bytes;
    snprintf(file, sizeof file, "%s_input_ids_i64.bin", order);
    int64_t *ids64 = ref_file(image, file, &bytes);
    size_t n = bytes / 8;
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)ids64[i];
    lg_session *s = NULL;
    lg_error e;
    assert_int_equal(lg_session_create(m, &s, &e), LG_OK);
    /* the features come from another session: say which image they are */
    lg_pixels grid = {.grid_w = 0};
    json_t *thw = json_object_get(c, "image_grid_thw");
    grid.grid_w = (int)json_integer_value(json_array_get(thw, 2));
    mdl_session_note_image(s, &grid);
    const float *logits = NULL;
    if (lg_session_eval(s, ids, n, feats, n_rows, 0, &logits) != LG_OK)
        fail_msg("%s: eval: %s", label, lg_session_errmsg(s));
    /* 3-D positions, exactly */
    snprintf(file, sizeof file, "%s_position_ids_3xL_i64.bin", order);
    int64_t *pos = ref_file(image, file, &bytes);
    assert_int_equal(bytes, 3 * n * 8);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            if (s->kv.mpos[i * 4 + k] != pos[k * n + i])
                fail_msg("%s: position %zu component %d: %d, reference %lld", label, i, k,
                         s->kv.mpos[i * 4 + k], (long long)pos[k * n + i]);
    free(pos);
    snprintf(file, sizeof file, "%s_last_logits_f32.bin", order);
    float *want = ref_file(image, file, &bytes);
    size_t nv = (size_t)lg_model_n_vocab(m);
    assert_int_equal(bytes, nv * 4);
    double err = max_diff(logits, want, nv);
    print_message("  %s: %zu tokens, last logits max|diff| %.3g (tol 1e-3)\n", label, n, err);
    tu_check_tensor(logits, want, nv, 1e-3, "last_logits");
    greedy(s, json_object_get(c, "greedy"), fmax(10 * err, 1e-5), label);
    free(want);
    free(ids64);
    free(ids);
    lg_session_free(s);
}

static void run_image(void **state) {
    const char *image = *state;
    json_t *c = case_of(image, "text_first");
    lg_pixels *px = pixels_of(image, c);
    assert_int_equal(lg_model_image_tokens(g_ref, px->orig_height, px->orig_width),
                     px->image_tokens);
    for (int k = 0; k < 2; k++) {
        lg_model *m = k ? g_fast : g_ref;
        lg_session *s = NULL;
        lg_error e;
        assert_int_equal(lg_session_create(m, &s, &e), LG_OK);
        float *feats = NULL;
        int64_t n_rows = 0;
        if (lg_session_encode_image(s, px, &feats, &n_rows) != LG_OK)
            fail_msg("encode: %s", lg_session_errmsg(s));
        lg_session_free(s);
        assert_int_equal(n_rows, px->image_tokens);
        size_t bytes, nf = (size_t)n_rows * lg_model_hidden_size(m);
        float *want = ref_file(image, "vision_embeds_f32.bin", &bytes);
        assert_int_equal(bytes, nf * 4);
        double tol = 1e-4 * tu_max_abs(want, nf);
        print_message("  %s (%s): %lld vision embeddings, max|diff| %.3g (tol %.3g)\n", image,
                      k ? "auto" : "ref", (long long)n_rows, max_diff(feats, want, nf), tol);
        tu_check_tensor(feats, want, nf, tol, "vision_embeds");
        free(want);
        run_order(m, image, "text_first", feats, n_rows);
        run_order(m, image, "image_first", feats, n_rows);
        lg_free(feats);
    }
    lg_pixels_free(px);
}

/* Sizes Qwen2VLImageProcessor refuses (smart_resize raises): a side under 28, aspect > 200. */
static void refused(void **state) {
    (void)state;
    static const int sizes[][2] = {{27, 500}, {500, 20}, {30, 6100}, {6100, 29}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t t = 0;
        lg_error e;
        assert_int_equal(lg_preprocessor_image_tokens(g_pp, sizes[i][0], sizes[i][1], &t, &e),
                         LG_E_UNSUPPORTED);
        assert_non_null(strstr(e.msg, sizes[i][0] < 28 || sizes[i][1] < 28 ? "factor" : "ratio"));
        assert_int_equal(lg_model_image_tokens(g_ref, sizes[i][0], sizes[i][1]), -1);
    }
    int64_t t = 0;
    assert_int_equal(lg_preprocessor_image_tokens(g_pp, 28, 5600, &t, NULL), LG_OK); /* 200:1 */
    assert_int_equal(t, lg_model_image_tokens(g_ref, 28, 5600));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(run_image, (void *)"p05_rgb_tiny_50x37"),
        cmocka_unit_test_prestate(run_image, (void *)"p02_rgb_640x480"),
        cmocka_unit_test_prestate(run_image, (void *)"p03_rgb_tall_300x900"),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
