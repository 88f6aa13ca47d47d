/* LAYERS: core image */
/*
 * test_image_resize.c — the resampler against Pillow 9.4's Image.resize (SHA-256 of its output
 * for a formula-defined source, tests/data/image/resize.json: bicubic, bilinear, lanczos, box,
 * hamming; up, down, one axis only, same size, extreme ratios, RGB and L), and the anyres
 * arithmetic against a Python re-implementation of transformers v4.45 evaluated in Python
 * floats for ~370 image sizes (anyres.json: best pinpoint, fitted size, unpadded and
 * anyres_max-shrunk feature map, image-token count), through the public token-count call too.
 */
#include "testutil.h"

#include "core/core.h"
#include "image/image.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Must match pattern() in tools/gen_image_testdata.py. */
static uint8_t *pattern(int w, int h, int c) {
    uint8_t *p = malloc((size_t)w * h * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                int v = (x * 73 + y * 151 + k * 29 + ((x * x + 3 * y * y + 7 * k) % 61) * 5) % 256;
                if (x % 7 == 3) v = 255;
                if (y % 5 == 1 && x % 3 == 0) v = 0;
                p[((size_t)y * w + x) * c + k] = (uint8_t)v;
            }
    return p;
}

static json_t *load_data(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/image/%s", LG_SOURCE_DIR, name);
    json_t *j = NULL;
    lg_error e;
    if (lg_json_load_file(path, &j, &e) != LG_OK) fail_msg("%s", e.msg);
    return j;
}

static int geti(json_t *o, const char *k) {
    return (int)json_integer_value(json_object_get(o, k));
}

static void test_resize_matches_pillow(void **state) {
    (void)state;
    json_t *cases = load_data("resize.json");
    assert_true(json_array_size(cases) >= 50);
    size_t i;
    json_t *c;
    int failed = 0;
    json_array_foreach(cases, i, c) {
        int sw = geti(c, "sw"), sh = geti(c, "sh"), dw = geti(c, "dw"), dh = geti(c, "dh");
        int ch = geti(c, "ch"), f = geti(c, "filter");
        uint8_t *src = pattern(sw, sh, ch), *dst = malloc((size_t)dw * dh * ch);
        assert_int_equal(img_resize(src, sw, sh, ch, dst, dw, dh, (img_filter)f), LG_OK);
        char hex[65];
        lg_sha256_hex(dst, (size_t)dw * dh * ch, hex);
        if (strcmp(hex, json_string_value(json_object_get(c, "sha256"))) != 0) {
            json_t *first = json_object_get(c, "first");
            print_message("resize %dx%dx%d -> %dx%d filter %d differs from Pillow (first bytes "
                          "%u %u %u %u, Pillow %d %d %d %d)\n",
                          sw, sh, ch, dw, dh, f, dst[0], dst[1], dst[2], dst[3],
                          (int)json_integer_value(json_array_get(first, 0)),
                          (int)json_integer_value(json_array_get(first, 1)),
                          (int)json_integer_value(json_array_get(first, 2)),
                          (int)json_integer_value(json_array_get(first, 3)));
            failed++;
        }
        free(src);
        free(dst);
    }
    json_decref(cases);
    if (failed) fail_msg("%d resize cases differ from Pillow", failed);
}

static void test_resize_bad_args(void **state) {
    (void)state;
    uint8_t a[12] = {0}, b[12];
    assert_int_equal(img_resize(a, 2, 2, 3, b, 0, 2, IMG_BICUBIC), LG_E_ARG);
    assert_int_equal(img_resize(a, 2, 2, 5, b, 2, 2, IMG_BICUBIC), LG_E_ARG);
    assert_int_equal(img_resize(a, 2, 2, 3, b, 2, 2, (img_filter)0), LG_E_ARG);
}

static lg_preprocessor *open_model(const char *m) {
    char *dir = tu_fixture(m);
    lg_preprocessor *pp = NULL;
    lg_error e;
    if (lg_preprocessor_open(dir, &pp, &e) != LG_OK) fail_msg("%s", e.msg);
    free(dir);
    return pp;
}

static void test_anyres_arithmetic(void **state) {
    (void)state;
    json_t *cases = load_data("anyres.json");
    lg_preprocessor *ov = open_model("llava-ov-tiny"), *nx = open_model("llava-1.6-tiny");
    /* the pinpoints and geometry as the model folders give them */
    json_t *ovc = NULL, *nxc = NULL;
    char *p1 = tu_fixture("llava-ov-tiny/preprocessor_config.json");
    char *p2 = tu_fixture("llava-1.6-tiny/preprocessor_config.json");
    assert_int_equal(lg_json_load_file(p1, &ovc, NULL), LG_OK);
    assert_int_equal(lg_json_load_file(p2, &nxc, NULL), LG_OK);
    struct {
        const char *key;
        json_t *cfg;
        lg_preprocessor *pp;
        int tile, patches, max_n;
    } m[2] = {{"ov", ovc, ov, 384, 27, 9}, {"next", nxc, nx, 336, 24, 0}};
    int pins[2][2 * 64], npins[2];
    for (int k = 0; k < 2; k++) {
        json_t *pj = json_object_get(m[k].cfg, "image_grid_pinpoints");
        npins[k] = (int)json_array_size(pj);
        for (int i = 0; i < npins[k]; i++)
            for (int j = 0; j < 2; j++)
                pins[k][2 * i + j] = (int)json_integer_value(
                    json_array_get(json_array_get(pj, (size_t)i), (size_t)j));
    }
    assert_true(json_array_size(cases) > 300);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        int h = geti(c, "h"), w = geti(c, "w");
        for (int k = 0; k < 2; k++) {
            json_t *want = json_object_get(c, m[k].key);
            int v[9];
            for (int j = 0; j < 9; j++)
                v[j] = (int)json_integer_value(json_array_get(want, (size_t)j));
            int bh, bw, nh, nw;
            img_select_best_resolution(h, w, pins[k], npins[k], &bh, &bw);
            img_fit_size(h, w, bh, bw, &nh, &nw);
            img_unpad u;
            img_anyres_unpad(h, w, bh / m[k].tile, bw / m[k].tile, m[k].patches, m[k].patches,
                             m[k].max_n, &u);
            int64_t tokens = 0;
            assert_int_equal(lg_preprocessor_image_tokens(m[k].pp, h, w, &tokens, NULL), LG_OK);
            int got[9] = {bh, bw, nh, nw, u.unpad_rows, u.unpad_cols, u.rows, u.cols, (int)tokens};
            for (int j = 0; j < 9; j++)
                if (got[j] != v[j])
                    fail_msg("%s %dx%d: field %d is %d, transformers gives %d", m[k].key, h, w, j,
                             got[j], v[j]);
        }
    }
    json_decref(ovc);
    json_decref(nxc);
    free(p1);
    free(p2);
    lg_preprocessor_free(ov);
    lg_preprocessor_free(nx);
    json_decref(cases);
}

static void test_py_floordiv(void **state) {
    (void)state;
    assert_true(img_py_floordiv(7.0, 2.0) == 3.0);
    assert_true(img_py_floordiv(-7.0, 2.0) == -4.0);
    assert_true(img_py_floordiv(1.0, 0.1) == 9.0); /* Python: 1 // 0.1 == 9.0 */
    assert_true(img_py_floordiv(75.0, 1.2422599874998832) == 60.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_matches_pillow),
        cmocka_unit_test(test_resize_bad_args),
        cmocka_unit_test(test_anyres_arithmetic),
        cmocka_unit_test(test_py_floordiv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
