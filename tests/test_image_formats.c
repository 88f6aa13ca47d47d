/* LAYERS: core image */
/*
 * test_image_formats.c — decoder coverage beyond the fixtures: every PNG / JPEG / WebP / GIF / BMP
 * variant in tests/data/image (made by tools/gen_image_testdata.py) decodes to the pixels Pillow
 * 9.4 gives (convert("RGB"), the composite over white, ImageOps.exif_transpose); lossless
 * formats written here with the libraries' own encoders decode to the values encoded; a YCCK
 * JPEG decodes close to Pillow's CMYK formula; the pixel limit is enforced for every format and
 * before allocation (headers claiming huge sizes).
 */
#include "testutil.h"

#include "core/core.h"
#include "image/image.h"

#include <jansson.h>
#include <jpeglib.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>

static char *data_path(const char *name) {
    size_t n = strlen(LG_SOURCE_DIR) + strlen(name) + 32;
    char *p = malloc(n);
    snprintf(p, n, "%s/tests/data/image/%s", LG_SOURCE_DIR, name);
    return p;
}

static uint8_t *read_data(const char *name, size_t *size) {
    char *p = data_path(name);
    uint8_t *d = tu_read(p, size);
    free(p);
    return d;
}

static lg_image *decode_opts(const char *name, lg_alpha_mode am, int exif) {
    char *p = data_path(name);
    lg_image_options o = lg_image_options_default();
    o.alpha_mode = am;
    o.apply_exif_orientation = exif;
    lg_image *img = NULL;
    lg_error e;
    if (lg_image_load_file(p, &o, &img, &e) != LG_OK) fail_msg("%s", e.msg);
    free(p);
    return img;
}

static void expect_pixels(const lg_image *img, int w, int h, const char *ref, const char *label) {
    assert_int_equal(lg_image_width(img), w);
    assert_int_equal(lg_image_height(img), h);
    size_t n = 0;
    uint8_t *want = read_data(ref, &n);
    assert_int_equal(n, (size_t)w * h * 3);
    const uint8_t *got = lg_image_rgb(img);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s: byte %zu (pixel %zu, channel %zu) is %u, Pillow gives %u", label, i,
                     i / 3, i % 3, got[i], want[i]);
    free(want);
}

static json_t *manifest(void) {
    char *p = data_path("manifest.json");
    json_t *m = NULL;
    lg_error e;
    if (lg_json_load_file(p, &m, &e) != LG_OK) fail_msg("%s", e.msg);
    free(p);
    return m;
}

static void test_manifest_images(void **state) {
    (void)state;
    json_t *m = manifest();
    json_t *list = json_object_get(m, "images");
    assert_true(json_array_size(list) >= 40);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *file = json_string_value(json_object_get(e, "file"));
        int w = (int)json_integer_value(json_object_get(e, "width"));
        int h = (int)json_integer_value(json_object_get(e, "height"));
        const char *rgb = json_string_value(json_object_get(e, "rgb"));
        const char *white = json_string_value(json_object_get(e, "white"));
        const char *orient = json_string_value(json_object_get(e, "orient"));
        char label[160];
        lg_image *img = decode_opts(file, LG_ALPHA_DROP, 0);
        assert_string_equal(lg_image_format(img), json_string_value(json_object_get(e, "format")));
        snprintf(label, sizeof label, "%s (convert RGB)", file);
        expect_pixels(img, w, h, rgb, label);
        lg_image_free(img);

        img = decode_opts(file, LG_ALPHA_WHITE, 0);
        snprintf(label, sizeof label, "%s (over white)", file);
        expect_pixels(img, w, h, white ? white : rgb, label);
        lg_image_free(img);

        img = decode_opts(file, LG_ALPHA_DROP, 1);
        snprintf(label, sizeof label, "%s (EXIF orientation)", file);
        if (orient)
            expect_pixels(img, (int)json_integer_value(json_object_get(e, "orient_width")),
                          (int)json_integer_value(json_object_get(e, "orient_height")), orient,
                          label);
        else
            expect_pixels(img, w, h, rgb, label);
        lg_image_free(img);
    }
    json_decref(m);
}

/* The pixel limit applies to every format: w*h pixels pass, one fewer refuses. */
static void test_limit_each_format(void **state) {
    (void)state;
    const char *files[] = {"png_rgb8.png",   "jpg_rgb_q90.jpg", "webp_lossy.webp",
                           "webp_anim.webp", "gif_anim.gif",    "bmp_rgb24.bmp"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        size_t n = 0;
        uint8_t *d = read_data(files[i], &n);
        lg_image_options o = lg_image_options_default();
        lg_image *img = NULL;
        lg_error e;
        o.max_pixels = 17 * 13;
        assert_int_equal(lg_image_load_memory(d, n, files[i], &o, &img, &e), LG_OK);
        lg_image_free(img);
        o.max_pixels = 17 * 13 - 1;
        img = NULL;
        assert_int_equal(lg_image_load_memory(d, n, files[i], &o, &img, &e), LG_E_LIMIT);
        assert_null(img);
        assert_non_null(strstr(e.msg, files[i]));
        assert_non_null(strstr(e.msg, "exceeds the limit"));
        free(d);
    }
}

/* Headers that claim enormous sizes are refused before any pixel memory is allocated (under
 * ASan a 60000x60000 RGB allocation would fail loudly). */
static void expect_limit(uint8_t *d, size_t n, const char *label) {
    lg_image *img = NULL;
    lg_error e;
    lg_status st = lg_image_load_memory(d, n, label, NULL, &img, &e);
    if (st != LG_E_LIMIT) fail_msg("%s: status %d (%s)", label, st, e.msg);
    assert_null(img);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* PNG's CRC-32 (to keep a patched IHDR valid). */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void test_bomb_headers(void **state) {
    (void)state;
    size_t n = 0;
    /* PNG: IHDR width/height at bytes 16..23 (the CRC then mismatches: the size check must come
     * first, or the error is a CRC error; libpng checks the CRC before we see the size, so fix
     * the CRC too). */
    uint8_t *d = read_data("png_rgb8.png", &n);
    put_be32(d + 16, 60000);
    put_be32(d + 20, 60000);
    put_be32(d + 29, crc32_png(d + 12, 17));
    expect_limit(d, n, "bomb.png");
    free(d);
    /* JPEG: SOF0 height/width */
    d = read_data("jpg_rgb_q90.jpg", &n);
    for (size_t i = 2; i + 9 < n; i++)
        if (d[i] == 0xff && (d[i + 1] == 0xc0 || d[i + 1] == 0xc2)) {
            d[i + 5] = 0xfd, d[i + 6] = 0xe8; /* 65000 */
            d[i + 7] = 0xfd, d[i + 8] = 0xe8;
            break;
        }
    expect_limit(d, n, "bomb.jpg");
    free(d);
    /* GIF: logical screen 65535 x 65535 */
    d = read_data("gif_anim.gif", &n);
    d[6] = d[7] = d[8] = d[9] = 0xff;
    expect_limit(d, n, "bomb.gif");
    free(d);
    /* BMP: width / height fields of the info header */
    d = read_data("bmp_rgb24.bmp", &n);
    d[18] = 0x60, d[19] = 0xea, d[20] = 0, d[21] = 0;
    d[22] = 0x60, d[23] = 0xea, d[24] = 0, d[25] = 0;
    expect_limit(d, n, "bomb.bmp");
    free(d);
    /* WebP lossless header (VP8L): 14-bit width-1 / height-1 after the signature byte */
    d = read_data("webp_lossless.webp", &n);
    if (memcmp(d + 12, "VP8L", 4) == 0) {
        uint32_t bits = 0x3fffu | (0x3fffu << 14); /* 16384 x 16384 */
        uint32_t old =
            (uint32_t)d[21] | (uint32_t)d[22] << 8 | (uint32_t)d[23] << 16 | (uint32_t)d[24] << 24;
        bits |= old & 0xf0000000u;
        d[21] = (uint8_t)bits, d[22] = (uint8_t)(bits >> 8), d[23] = (uint8_t)(bits >> 16),
        d[24] = (uint8_t)(bits >> 24);
        lg_image_options o = lg_image_options_default();
        o.max_pixels = 1000000;
        lg_image *img = NULL;
        lg_error e;
        assert_int_equal(lg_image_load_memory(d, n, "bomb.webp", &o, &img, &e), LG_E_LIMIT);
    }
    free(d);
}

/* ---- images written here with the libraries' encoders ---- */

static uint8_t pat(int x, int y, int c) {
    return (uint8_t)((x * 31 + y * 17 + c * 80 + x * y) & 255);
}

typedef struct membuf {
    uint8_t *d;
    size_t n, cap;
} membuf;

static void png_write_fn(png_structp png, png_bytep data, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->d = realloc(m->d, m->cap);
    }
    memcpy(m->d + m->n, data, n);
    m->n += n;
}

static void png_flush_fn(png_structp png) {
    (void)png;
}

/* Writes a PNG with libpng from 16-bit samples (chan channels) of the given depth/type. */
static membuf encode_png(int w, int h, int depth, int type, int chan, int interlace,
                         const uint16_t *samples) {
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng write failed");
    png_set_write_fn(png, &m, png_write_fn, png_flush_fn);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    int bps = depth == 16 ? 2 : 1;
    uint8_t *rows = calloc((size_t)h, (size_t)w * chan * bps);
    png_bytep *rp = malloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++) {
        rp[y] = rows + (size_t)y * w * chan * bps;
        for (int i = 0; i < w * chan; i++) {
            uint16_t v = samples[(size_t)y * w * chan + i];
            if (bps == 2)
                rp[y][2 * i] = (uint8_t)(v >> 8), rp[y][2 * i + 1] = (uint8_t)v;
            else
                rp[y][i] = (uint8_t)v;
        }
    }
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(rp);
    return m;
}

static lg_image *decode_mem(const membuf *m, const char *name) {
    lg_image *img = NULL;
    lg_error e;
    if (lg_image_load_memory(m->d, m->n, name, NULL, &img, &e) != LG_OK) fail_msg("%s", e.msg);
    return img;
}

/* 16-bit RGBA written by libpng, interlaced: the decoder must give the high bytes. */
static void test_png16_encoded_here(void **state) {
    (void)state;
    int w = 23, h = 19;
    uint16_t *s = malloc(sizeof(uint16_t) * w * h * 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 4; c++)
                s[((size_t)y * w + x) * 4 + c] = (uint16_t)(pat(x, y, c) << 8 | pat(y, x, c));
    for (int il = 0; il < 2; il++) {
        membuf m = encode_png(w, h, 16, PNG_COLOR_TYPE_RGB_ALPHA, 4, il, s);
        lg_image *img = decode_mem(&m, "rgba16.png");
        const uint8_t *p = lg_image_rgb(img);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    assert_int_equal(p[((size_t)y * w + x) * 3 + c], pat(x, y, c));
        lg_image_free(img);
        free(m.d);
    }
    /* 16-bit gray: Pillow's mode I, clipped at 255 rather than scaled */
    for (int i = 0; i < w * h; i++) s[i] = (uint16_t)(i * 7);
    membuf m = encode_png(w, h, 16, PNG_COLOR_TYPE_GRAY, 1, 0, s);
    lg_image *img = decode_mem(&m, "gray16.png");
    for (int i = 0; i < w * h; i++)
        assert_int_equal(lg_image_rgb(img)[3 * i], i * 7 > 255 ? 255 : i * 7);
    lg_image_free(img);
    free(m.d);
    free(s);
}

/* Lossless WebP (with alpha) written by libwebp: exact round trip of the colours. */
static void test_webp_lossless_encoded_here(void **state) {
    (void)state;
    int w = 21, h = 9;
    uint8_t *rgba = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 4; c++) rgba[4 * i + c] = c == 3 ? 255 : pat(i % w, i / w, c);
    uint8_t *out = NULL;
    size_t n = WebPEncodeLosslessRGBA(rgba, w, h, w * 4, &out);
    assert_true(n > 0);
    lg_image *img = NULL;
    assert_int_equal(lg_image_load_memory(out, n, "ll.webp", NULL, &img, NULL), LG_OK);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) assert_int_equal(lg_image_rgb(img)[3 * i + c], rgba[4 * i + c]);
    lg_image_free(img);
    WebPFree(out);
    free(rgba);
}

/* A YCCK JPEG (Adobe transform 2) made with libjpeg: decodes to Pillow's CMYK -> RGB of the
 * encoded (inverted, Adobe-convention) values, within the loss of quality-100 JPEG. */
static void test_ycck_jpeg(void **state) {
    (void)state;
    int w = 16, h = 16;
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 4; c++) cmyk[4 * i + c] = (uint8_t)(64 + pat(i % w, i / w, c) / 2);
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&ci, &buf, &n);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 4;
    ci.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_colorspace(&ci, JCS_YCCK);
    jpeg_set_quality(&ci, 100, TRUE);
    for (int c = 0; c < 4; c++) ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW r = cmyk + (size_t)ci.next_scanline * w * 4;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    lg_image *img = NULL;
    lg_error e;
    if (lg_image_load_memory(buf, n, "ycck.jpg", NULL, &img, &e) != LG_OK) fail_msg("%s", e.msg);
    int worst = 0;
    for (int i = 0; i < w * h; i++) {
        /* Pillow: CMYK;I inverts the stored values, then cmyk2rgb */
        int k = 255 - (255 - cmyk[4 * i + 3]);
        for (int c = 0; c < 3; c++) {
            int cc = 255 - cmyk[4 * i + c];
            int t = cc * k + 128;
            int want = k - (((t >> 8) + t) >> 8);
            int d = abs(lg_image_rgb(img)[3 * i + c] - (want < 0 ? 0 : want));
            if (d > worst) worst = d;
        }
    }
    if (worst > 4) fail_msg("YCCK JPEG: max difference %d from the CMYK formula", worst);
    lg_image_free(img);
    free(buf);
    free(cmyk);
}

static void test_exif_parser(void **state) {
    (void)state;
    /* big-endian TIFF, orientation as LONG, behind an "Exif\0\0" header */
    uint8_t be[] = {'E',  'x',  'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 2,
                    0x01, 0x00, 0,   3,   0, 0, 0,   1,   0, 5,  0, 0, /* ImageWidth */
                    0x01, 0x12, 0,   4,   0, 0, 0,   1,   0, 0,  0, 7, 0, 0, 0, 0};
    assert_int_equal(img_exif_orientation(be, sizeof be), 7);
    assert_int_equal(img_exif_orientation(be, 20), 1); /* cut short: ignored */
    be[sizeof be - 5] = 9;                             /* out of range */
    assert_int_equal(img_exif_orientation(be, sizeof be), 1);
    uint8_t junk[] = {'I', 'I', 42, 0, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(img_exif_orientation(junk, sizeof junk), 1);
}

static void test_from_rgb_and_accessors(void **state) {
    (void)state;
    uint8_t px[2 * 3 * 3];
    for (int i = 0; i < 18; i++) px[i] = (uint8_t)i;
    lg_image *img = NULL;
    assert_int_equal(lg_image_from_rgb(px, 3, 2, &img, NULL), LG_OK);
    assert_int_equal(lg_image_width(img), 3);
    assert_int_equal(lg_image_height(img), 2);
    assert_string_equal(lg_image_format(img), "raw");
    assert_memory_equal(lg_image_rgb(img), px, 18);
    lg_image_free(img);
    lg_image_free(NULL);
    assert_int_equal(lg_image_from_rgb(px, 0, 2, &img, NULL), LG_E_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_images),
        cmocka_unit_test(test_limit_each_format),
        cmocka_unit_test(test_bomb_headers),
        cmocka_unit_test(test_png16_encoded_here),
        cmocka_unit_test(test_webp_lossless_encoded_here),
        cmocka_unit_test(test_ycck_jpeg),
        cmocka_unit_test(test_exif_parser),
        cmocka_unit_test(test_from_rgb_and_accessors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
