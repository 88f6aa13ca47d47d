/* LAYERS: core image */
/*
 * test_image_fixtures.c — every fixture image through decoding and the three image processors
 * (LLaVA-OneVision, LLaVA-1.6, LLaVA-1.5 plain and "pad"), compared exactly with the reference:
 * decoded RGB bytes, uint8 crops, float tensor (= the reference LUT applied to the u8 crops, and
 * = pixel_values.f32 where stored), crop count, image size, pinpoint, resize, grid and the
 * number of image tokens the prompt holds (case.json prompt.num_image_tokens).
 */
#include "testutil.h"

#include "core/core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cases[] = {
    "p01_rgb_384x384",    "p02_rgb_640x480",  "p03_rgb_tall_300x900", "p04_rgb_wide_1920x1080",
    "p05_rgb_tiny_50x37", "p06_gray_320x240", "p07_rgba_400x300",     "p08_palette_256x192"};
static const char *const exts[] = {"png", "jpg", "png", "jpg", "png", "png", "png", "png"};
#define N_CASES 8

static json_t *load_json(const char *rel) {
    char *p = tu_fixture(rel);
    json_t *j = NULL;
    lg_error e;
    if (lg_json_load_file(p, &j, &e) != LG_OK) fail_msg("%s", e.msg);
    free(p);
    return j;
}

static json_t *load_case(const char *model, const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/%s/case.json", model, name);
    return load_json(rel);
}

static lg_image *load_image(int i) {
    char rel[128];
    snprintf(rel, sizeof rel, "images/%s.%s", cases[i], exts[i]);
    char *p = tu_fixture(rel);
    lg_image *img = NULL;
    lg_error e;
    if (lg_image_load_file(p, NULL, &img, &e) != LG_OK) fail_msg("%s", e.msg);
    free(p);
    return img;
}

static int64_t jint(json_t *o, const char *path) {
    /* "a.b.c" or "a.b[i]" lookups */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        char *br = strchr(tok, '[');
        int idx = -1;
        if (br) {
            idx = atoi(br + 1);
            *br = '\0';
        }
        cur = json_object_get(cur, tok);
        if (idx >= 0) cur = json_array_get(cur, (size_t)idx);
        if (!cur) fail_msg("missing %s", path);
    }
    if (!json_is_integer(cur)) fail_msg("%s is not an integer", path);
    return json_integer_value(cur);
}

static void read_lut(const char *model, const char *key, float lut[3][256]) {
    char rel[128];
    snprintf(rel, sizeof rel, "reference/%s/index.json", model);
    json_t *idx = load_json(rel);
    json_t *a = json_object_get(idx, key);
    assert_non_null(a);
    for (int c = 0; c < 3; c++) {
        json_t *row = json_is_array(json_array_get(a, 0)) ? json_array_get(a, (size_t)c) : a;
        assert_int_equal(json_array_size(row), 256);
        for (int v = 0; v < 256; v++)
            lut[c][v] = (float)json_real_value(json_array_get(row, (size_t)v));
    }
    json_decref(idx);
}

/* The float tensor must be exactly lut[c][u8] (bit patterns compared). */
static void check_lut_applied(const lg_pixels *px, float lut[3][256], const char *label) {
    size_t plane = (size_t)px->height * px->width;
    for (int n = 0; n < px->n_crops; n++)
        for (int c = 0; c < 3; c++) {
            size_t off = ((size_t)n * 3 + c) * plane;
            for (size_t i = 0; i < plane; i++) {
                float want = lut[c][px->crops_u8[off + i]];
                if (memcmp(&px->values[off + i], &want, sizeof want) != 0)
                    fail_msg("%s: crop %d channel %d value %zu: %.9g != lut %.9g", label, n, c, i,
                             px->values[off + i], want);
            }
        }
}

static void check_u8_file(const uint8_t *got, size_t n, const char *model, const char *name,
                          const char *file) {
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/%s/%s", model, name, file);
    size_t size = 0;
    uint8_t *want = tu_read_fixture(rel, &size);
    assert_int_equal(size, n);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ == 0) first = i;
    if (bad)
        fail_msg("%s/%s/%s: %zu of %zu bytes differ (first at %zu: %u != %u)", model, name, file,
                 bad, n, first, got[first], want[first]);
    free(want);
}

static void test_decode(void **state) {
    (void)state;
    for (int i = 0; i < N_CASES; i++) {
        lg_image *img = load_image(i);
        json_t *c = load_case("llava-ov-tiny", cases[i]);
        json_t *c16 = load_case("llava-1.6-tiny", cases[i]);
        int w = lg_image_width(img), h = lg_image_height(img);
        assert_int_equal(w, jint(c, "width"));
        assert_int_equal(h, jint(c, "height"));
        assert_string_equal(lg_image_format(img), strcmp(exts[i], "jpg") == 0 ? "jpeg" : "png");
        size_t n = (size_t)w * h * 3;
        char hex[65];
        lg_sha256_hex(lg_image_rgb(img), n, hex);
        assert_string_equal(hex, json_string_value(json_object_get(c16, "decoded_rgb_sha256")));
        if (json_object_get(json_object_get(c, "files"), "decoded_rgb"))
            check_u8_file(lg_image_rgb(img), n, "llava-ov-tiny", cases[i], "decoded_rgb.u8");
        json_decref(c);
        json_decref(c16);
        lg_image_free(img);
    }
}

static lg_preprocessor *open_pp(const char *model, int square_pad) {
    char *dir = tu_fixture(model);
    lg_preprocessor_options o = lg_preprocessor_options_default();
    o.square_pad = square_pad;
    lg_preprocessor *pp = NULL;
    lg_error e;
    if (lg_preprocessor_open_with(dir, &o, &pp, &e) != LG_OK) fail_msg("%s", e.msg);
    free(dir);
    return pp;
}

static void check_anyres(const lg_pixels *px, json_t *c, const lg_preprocessor *pp, int side) {
    json_t *ip = json_object_get(c, "image_processor");
    json_t *shape = json_object_get(ip, "pixel_values_shape");
    assert_int_equal(px->n_crops, json_integer_value(json_array_get(shape, 1)));
    assert_int_equal(px->height, side);
    assert_int_equal(px->width, side);
    json_t *sizes = json_array_get(json_object_get(ip, "image_sizes"), 0);
    assert_int_equal(px->orig_height, json_integer_value(json_array_get(sizes, 0)));
    assert_int_equal(px->orig_width, json_integer_value(json_array_get(sizes, 1)));
    assert_int_equal(px->best_height, jint(ip, "best_resolution_hw[0]"));
    assert_int_equal(px->best_width, jint(ip, "best_resolution_hw[1]"));
    assert_int_equal(px->resized_height, jint(ip, "aspect_preserving_resize_hw[0]"));
    assert_int_equal(px->resized_width, jint(ip, "aspect_preserving_resize_hw[1]"));
    assert_int_equal(px->grid_h, jint(ip, "grid_hw[0]"));
    assert_int_equal(px->grid_w, jint(ip, "grid_hw[1]"));
    int64_t tokens = jint(c, "prompt.num_image_tokens");
    assert_int_equal(px->image_tokens, tokens);
    assert_int_equal(px->image_tokens,
                     px->tokens_per_crop + (int64_t)px->feat_rows * (px->feat_cols + 1));
    int64_t t2 = 0;
    assert_int_equal(lg_preprocessor_image_tokens(pp, px->orig_height, px->orig_width, &t2, NULL),
                     LG_OK);
    assert_int_equal(t2, tokens);
}

static void test_onevision(void **state) {
    (void)state;
    lg_preprocessor *pp = open_pp("llava-ov-tiny", -1);
    assert_string_equal(lg_preprocessor_kind(pp), "llava-onevision");
    float lut[3][256];
    read_lut("llava-ov-tiny", "pixel_lut_u8_to_f32", lut);
    for (int i = 0; i < N_CASES; i++) {
        lg_image *img = load_image(i);
        json_t *c = load_case("llava-ov-tiny", cases[i]);
        lg_pixels *px = NULL;
        lg_error e;
        if (lg_preprocess(pp, img, &px, &e) != LG_OK) fail_msg("%s", e.msg);
        check_anyres(px, c, pp, 384);
        assert_int_equal(px->tokens_per_crop, 729);
        size_t n = (size_t)px->n_crops * 3 * 384 * 384;
        check_u8_file(px->crops_u8, n, "llava-ov-tiny", cases[i], "pixel_values.u8");
        check_lut_applied(px, lut, cases[i]);
        if (json_object_get(json_object_get(c, "files"), "pixel_values_f32")) {
            char rel[256];
            snprintf(rel, sizeof rel, "reference/llava-ov-tiny/%s/pixel_values.f32", cases[i]);
            size_t size = 0;
            float *want = (float *)tu_read_fixture(rel, &size);
            assert_int_equal(size, n * sizeof(float));
            assert_memory_equal(px->values, want, size);
            free(want);
        }
        double sum = 0;
        for (size_t k = 0; k < n; k++) sum += px->values[k];
        double ref = json_real_value(json_object_get(
            json_object_get(json_object_get(c, "image_processor"), "pixel_values_stats"), "sum"));
        assert_true(sum - ref < 1e-6 * (1 + (ref < 0 ? -ref : ref)) &&
                    ref - sum < 1e-6 * (1 + (ref < 0 ? -ref : ref)));
        lg_pixels_free(px);
        json_decref(c);
        lg_image_free(img);
    }
    lg_preprocessor_free(pp);
}

static void test_next(void **state) {
    (void)state;
    lg_preprocessor *pp = open_pp("llava-1.6-tiny", -1);
    assert_string_equal(lg_preprocessor_kind(pp), "llava-next");
    float lut[3][256];
    read_lut("llava-1.6-tiny", "pixel_lut_u8_to_f32_per_channel", lut);
    for (int i = 0; i < N_CASES; i++) {
        lg_image *img = load_image(i);
        json_t *c = load_case("llava-1.6-tiny", cases[i]);
        lg_pixels *px = NULL;
        lg_error e;
        if (lg_preprocess(pp, img, &px, &e) != LG_OK) fail_msg("%s", e.msg);
        /* 1.6's case.json names the resize keys like the OneVision one */
        check_anyres(px, c, pp, 336);
        assert_int_equal(px->tokens_per_crop, 576);
        json_t *shas = json_object_get(json_object_get(c, "image_processor"), "per_crop_u8_sha256");
        assert_int_equal(json_array_size(shas), px->n_crops);
        size_t per = (size_t)3 * 336 * 336;
        for (int k = 0; k < px->n_crops; k++) {
            char hex[65];
            lg_sha256_hex(px->crops_u8 + k * per, per, hex);
            if (strcmp(hex, json_string_value(json_array_get(shas, (size_t)k))) != 0)
                fail_msg("%s: llava-1.6 crop %d differs from the reference", cases[i], k);
        }
        if (json_object_get(json_object_get(c, "files"), "pixel_values_u8"))
            check_u8_file(px->crops_u8, per * px->n_crops, "llava-1.6-tiny", cases[i],
                          "pixel_values.u8");
        check_lut_applied(px, lut, cases[i]);
        lg_pixels_free(px);
        json_decref(c);
        lg_image_free(img);
    }
    lg_preprocessor_free(pp);
}

static void test_clip(void **state) {
    (void)state;
    lg_preprocessor *plain = open_pp("llava-1.5-tiny", -1), *pad = open_pp("llava-1.5-tiny", 1);
    assert_string_equal(lg_preprocessor_kind(plain), "llava");
    float lut[3][256];
    read_lut("llava-1.5-tiny", "pixel_lut_u8_to_f32_per_channel", lut);
    for (int i = 0; i < N_CASES; i++) {
        lg_image *img = load_image(i);
        json_t *c = load_case("llava-1.5-tiny", cases[i]);
        json_t *ip = json_object_get(c, "image_processor");
        lg_pixels *px = NULL, *pxp = NULL;
        lg_error e;
        if (lg_preprocess(plain, img, &px, &e) != LG_OK) fail_msg("%s", e.msg);
        if (lg_preprocess(pad, img, &pxp, &e) != LG_OK) fail_msg("%s", e.msg);
        assert_int_equal(px->n_crops, 1);
        assert_int_equal(px->height, 336);
        assert_int_equal(px->grid_h, 0);
        assert_int_equal(px->resized_height, jint(ip, "resized_hw_before_center_crop[0]"));
        assert_int_equal(px->resized_width, jint(ip, "resized_hw_before_center_crop[1]"));
        assert_int_equal(px->image_tokens, jint(c, "prompt.num_image_tokens"));
        assert_int_equal(pxp->image_tokens, px->image_tokens);
        size_t n = (size_t)3 * 336 * 336;
        check_u8_file(px->crops_u8, n, "llava-1.5-tiny", cases[i], "pixel_values.u8");
        check_u8_file(pxp->crops_u8, n, "llava-1.5-tiny", cases[i], "pixel_values_pad.u8");
        check_lut_applied(px, lut, cases[i]);
        check_lut_applied(pxp, lut, cases[i]);
        lg_pixels_free(px);
        lg_pixels_free(pxp);
        json_decref(c);
        lg_image_free(img);
    }
    lg_preprocessor_free(plain);
    lg_preprocessor_free(pad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_onevision),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
