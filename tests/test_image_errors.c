/* LAYERS: core image */
/*
 * test_image_errors.c — every class of bad input gets its status and a message naming the file
 * and the reason, without crashing: zero bytes, truncated JPEG / PNG / GIF / WebP / BMP (Pillow
 * raises "image file is truncated" for these, including a JPEG missing only its EOI; a PNG
 * missing only IEND is accepted, as Pillow accepts it), corrupt bytes, text, unknown bytes,
 * unsupported formats, too many pixels, missing files; and model folders whose image-processor
 * settings are malformed or not reproducible are refused with a message.
 */
#include "testutil.h"

#include "core/core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *fixture_image(const char *name, size_t *n) {
    char rel[128];
    snprintf(rel, sizeof rel, "images/%s", name);
    return tu_read_fixture(rel, n);
}

static uint8_t *data_image(const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/image/%s", LG_SOURCE_DIR, name);
    return tu_read(path, n);
}

/* Loads bytes as a file (so the path appears in the message); checks status and message. */
static void expect_file_error(const char *dir, const char *fname, const void *d, size_t n,
                              lg_status want, const char *reason) {
    char *path = lg_path_join(dir, fname);
    tu_write(path, d, n);
    lg_image *img = NULL;
    lg_error e;
    lg_err_clear(&e);
    lg_status st = lg_image_load_file(path, NULL, &img, &e);
    if (st != want)
        fail_msg("%s: status %s, expected %s (%s)", fname, lg_status_str(st), lg_status_str(want),
                 e.msg);
    assert_null(img);
    assert_int_equal(e.status, want);
    if (!strstr(e.msg, path)) fail_msg("%s: message does not name the file: %s", fname, e.msg);
    if (!strstr(e.msg, reason))
        fail_msg("%s: message does not say \"%s\": %s", fname, reason, e.msg);
    lg_free(path);
}

static void test_empty_text_unknown_unsupported(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    expect_file_error(dir, "empty.png", "", 0, LG_E_FORMAT, "empty file");
    const char text[] = "hello, this is a text file\nnot an image\n";
    expect_file_error(dir, "notes.jpg", text, sizeof text - 1, LG_E_FORMAT, "text file");
    uint8_t junk[64];
    for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 1);
    expect_file_error(dir, "junk.bin", junk, sizeof junk, LG_E_FORMAT, "not an image");
    uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 0, 0, 0, 0};
    expect_file_error(dir, "scan.tif", tiff, sizeof tiff, LG_E_UNSUPPORTED, "TIFF");
    uint8_t heic[] = {0, 0, 0, 24, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c', 0, 0, 0, 0};
    expect_file_error(dir, "photo.heic", heic, sizeof heic, LG_E_UNSUPPORTED, "HEIF");
    free(dir);
}

static void test_truncated(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    size_t n = 0;
    uint8_t *d = fixture_image("p02_rgb_640x480.jpg", &n);
    expect_file_error(dir, "half.jpg", d, n / 2, LG_E_FORMAT, "truncated");
    expect_file_error(dir, "noeoi.jpg", d, n - 2, LG_E_FORMAT, "truncated");
    expect_file_error(dir, "header.jpg", d, 100, LG_E_FORMAT, "truncated");
    free(d);
    d = fixture_image("p01_rgb_384x384.png", &n);
    expect_file_error(dir, "half.png", d, n / 2, LG_E_FORMAT, "truncated");
    expect_file_error(dir, "header.png", d, 20, LG_E_FORMAT, "truncated");
    { /* missing only IEND: accepted, as Pillow accepts it */
        lg_image *img = NULL;
        assert_int_equal(lg_image_load_memory(d, n - 12, "noiend.png", NULL, &img, NULL), LG_OK);
        lg_image_free(img);
    }
    free(d);
    const char *more[] = {"gif_interlaced_trns.gif", "webp_lossy.webp", "webp_lossless.webp",
                          "bmp_rgb24.bmp", "jpg_progressive.jpg"};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
        d = data_image(more[i], &n);
        expect_file_error(dir, more[i], d, n * 2 / 3, LG_E_FORMAT, "truncated");
        free(d);
    }
    free(dir);
}

static void test_corrupt(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    size_t n = 0;
    uint8_t *d = fixture_image("p01_rgb_384x384.png", &n);
    d[n / 2] ^= 0x55; /* inside IDAT: CRC mismatch */
    expect_file_error(dir, "crc.png", d, n, LG_E_FORMAT, "corrupt PNG");
    free(d);
    d = fixture_image("p02_rgb_640x480.jpg", &n);
    for (size_t i = 2; i + 9 < n; i++)
        if (d[i] == 0xff && d[i + 1] == 0xc0) {
            d[i + 4] = 7; /* sample precision 7: not a valid JPEG */
            break;
        }
    expect_file_error(dir, "sof.jpg", d, n, LG_E_FORMAT, "corrupt JPEG");
    free(d);
    d = data_image("gif_anim.gif", &n);
    d[10] = 0x80, d[13] = 0x7f; /* global colour table claimed, image separator garbled */
    memset(d + 13, 0x21, n - 13 > 40 ? 40 : n - 13);
    expect_file_error(dir, "bad.gif", d, n, LG_E_FORMAT, "GIF");
    free(d);
    d = data_image("webp_lossy.webp", &n);
    memset(d + 20, 0xff, 12);
    expect_file_error(dir, "bad.webp", d, n, LG_E_FORMAT, "WebP");
    free(d);
    free(dir);
}

static void test_limits_and_io(void **state) {
    (void)state;
    char *path = tu_fixture("images/p04_rgb_wide_1920x1080.jpg");
    lg_image_options o = lg_image_options_default();
    assert_int_equal(o.max_pixels, 178956970u);
    assert_int_equal(o.alpha_mode, LG_ALPHA_DROP);
    assert_int_equal(o.apply_exif_orientation, 0);
    o.max_pixels = 1000;
    lg_image *img = NULL;
    lg_error e;
    assert_int_equal(lg_image_load_file(path, &o, &img, &e), LG_E_LIMIT);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "1920x1080"));
    o.max_pixels = 0;
    assert_int_equal(lg_image_load_file(path, &o, &img, &e), LG_E_ARG);
    o = lg_image_options_default();
    o.alpha_mode = (lg_alpha_mode)7;
    assert_int_equal(lg_image_load_file(path, &o, &img, &e), LG_E_ARG);
    assert_null(img);
    free(path);
    assert_int_equal(lg_image_load_file("/nonexistent/x.png", NULL, &img, &e), LG_E_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/x.png"));
    char *dir = tu_tmpdir();
    assert_int_equal(lg_image_load_file(dir, NULL, &img, &e), LG_E_IO);
    assert_int_equal(lg_image_load_memory(NULL, 4, "x", NULL, &img, &e), LG_E_ARG);
    free(dir);
}

/* ---- model folders with bad image-processor settings ---- */

static char *copy_model(const char *model) {
    char *dir = tu_tmpdir();
    const char *files[] = {"preprocessor_config.json", "config.json", "processor_config.json"};
    for (int i = 0; i < 3; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/%s", model, files[i]);
        size_t n = 0;
        uint8_t *d = tu_read_fixture(rel, &n);
        char *p = lg_path_join(dir, files[i]);
        tu_write(p, d, n);
        lg_free(p);
        free(d);
    }
    return dir;
}

/* Sets key (dotted path of objects) in dir/file to the JSON value text (NULL deletes it). */
static void edit_json(const char *dir, const char *file, const char *key, const char *value) {
    char *p = lg_path_join(dir, file);
    json_t *root = NULL;
    assert_int_equal(lg_json_load_file(p, &root, NULL), LG_OK);
    json_t *obj = root;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", key);
    char *dot = strchr(buf, '.');
    if (dot) {
        *dot = '\0';
        obj = json_object_get(root, buf);
        key = dot + 1;
    } else {
        key = buf;
    }
    if (value)
        json_object_set_new(obj, key, json_loads(value, JSON_DECODE_ANY, NULL));
    else
        json_object_del(obj, key);
    assert_int_equal(json_dump_file(root, p, 0), 0);
    json_decref(root);
    lg_free(p);
}

static void expect_open_error(const char *dir, lg_status want, const char *reason) {
    lg_preprocessor *pp = NULL;
    lg_error e;
    lg_err_clear(&e);
    lg_status st = lg_preprocessor_open(dir, &pp, &e);
    if (st != want)
        fail_msg("status %s, expected %s (%s)", lg_status_str(st), lg_status_str(want), e.msg);
    assert_null(pp);
    if (!strstr(e.msg, reason)) fail_msg("message does not say \"%s\": %s", reason, e.msg);
}

static void test_bad_model_configs(void **state) {
    (void)state;
    struct {
        const char *model, *file, *key, *value;
        lg_status st;
        const char *reason;
    } cases[] = {
        {"llava-ov-tiny", "preprocessor_config.json", "image_processor_type",
         "\"Qwen2VLImageProcessor\"", LG_E_UNSUPPORTED, "Qwen2VLImageProcessor"},
        {"llava-ov-tiny", "preprocessor_config.json", "resample", "0", LG_E_UNSUPPORTED,
         "resample"},
        {"llava-ov-tiny", "preprocessor_config.json", "do_resize", "false", LG_E_UNSUPPORTED,
         "do_resize"},
        {"llava-ov-tiny", "preprocessor_config.json", "image_mean", "[0.5, 0.5]", LG_E_FORMAT,
         "image_mean"},
        {"llava-ov-tiny", "preprocessor_config.json", "size", "{\"height\": 384, \"width\": 400}",
         LG_E_UNSUPPORTED, "square"},
        {"llava-ov-tiny", "preprocessor_config.json", "image_grid_pinpoints", "[[384, 400]]",
         LG_E_UNSUPPORTED, "multiple"},
        {"llava-ov-tiny", "preprocessor_config.json", "image_grid_pinpoints", "[]", LG_E_FORMAT,
         "image_grid_pinpoints"},
        {"llava-ov-tiny", "config.json", "vision_aspect_ratio", "\"anyres\"", LG_E_UNSUPPORTED,
         "vision_aspect_ratio"},
        {"llava-ov-tiny", "config.json", "vision_config.image_size", "336", LG_E_UNSUPPORTED,
         "image_size"},
        {"llava-ov-tiny", "config.json", "vision_config", NULL, LG_E_FORMAT, "vision_config"},
        {"llava-ov-tiny", "config.json", "model_type", "\"llava\"", LG_E_UNSUPPORTED, "model_type"},
        {"llava-ov-tiny", "processor_config.json", "num_image_tokens", "730", LG_E_UNSUPPORTED,
         "num_image_tokens"},
        {"llava-1.6-tiny", "config.json", "vision_feature_select_strategy", "\"full\"",
         LG_E_UNSUPPORTED, "features per crop"},
        {"llava-1.5-tiny", "preprocessor_config.json", "crop_size",
         "{\"height\": 400, \"width\": 400}", LG_E_UNSUPPORTED, "crop_size"},
        {"llava-1.5-tiny", "preprocessor_config.json", "size", "{\"longest_edge\": 336}",
         LG_E_UNSUPPORTED, "size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *dir = copy_model(cases[i].model);
        edit_json(dir, cases[i].file, cases[i].key, cases[i].value);
        expect_open_error(dir, cases[i].st, cases[i].reason);
        free(dir);
    }
    /* missing and malformed files */
    char *dir = copy_model("llava-ov-tiny");
    char *p = lg_path_join(dir, "config.json");
    remove(p);
    expect_open_error(dir, LG_E_IO, "config.json");
    tu_write(p, "{\"model_type\": ", 15);
    expect_open_error(dir, LG_E_FORMAT, "config.json");
    lg_free(p);
    free(dir);
    /* the "pad" variant is for LLaVA-1.5 only; config.json can ask for it */
    dir = tu_fixture("llava-ov-tiny");
    lg_preprocessor_options o = lg_preprocessor_options_default();
    o.square_pad = 1;
    lg_preprocessor *pp = NULL;
    assert_int_equal(lg_preprocessor_open_with(dir, &o, &pp, NULL), LG_E_ARG);
    free(dir);
    dir = copy_model("llava-1.5-tiny");
    edit_json(dir, "config.json", "image_aspect_ratio", "\"pad\"");
    assert_int_equal(lg_preprocessor_open(dir, &pp, NULL), LG_OK);
    lg_image *img = NULL;
    char *ip = tu_fixture("images/p02_rgb_640x480.jpg");
    assert_int_equal(lg_image_load_file(ip, NULL, &img, NULL), LG_OK);
    lg_pixels *px = NULL;
    assert_int_equal(lg_preprocess(pp, img, &px, NULL), LG_OK);
    size_t n = 0;
    uint8_t *want =
        tu_read_fixture("reference/llava-1.5-tiny/p02_rgb_640x480/pixel_values_pad.u8", &n);
    assert_int_equal(n, (size_t)3 * 336 * 336);
    assert_memory_equal(px->crops_u8, want, n);
    free(want);
    free(ip);
    lg_pixels_free(px);
    lg_image_free(img);
    lg_preprocessor_free(pp);
    lg_preprocessor_free(NULL);
    lg_pixels_free(NULL);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_text_unknown_unsupported),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_limits_and_io),
        cmocka_unit_test(test_bad_model_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
