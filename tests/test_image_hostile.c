/* LAYERS: core image */
/*
 * test_image_hostile.c — odd and hostile BMP / PNG files decode exactly as Pillow 9.4 decodes them,
 * or are refused where Pillow refuses them (docs/image.md, "Hostile and odd files"). The files and
 * Pillow's verdict on each are made at test time by tests/image_hostile/make_cases.py (python3-pil
 * is the oracle): RLE BMPs with overflowing rows and delta escapes, 5-5-5 / 5-6-5 BMPs over every
 * value, top-down rows, missing row padding, palette sizes and out-of-range indices, bitfield
 * layouts, random header mutations; truncated PNG chunks, text chunks past Pillow's limits,
 * unknown compression methods, empty or early ancillary chunks, CRC errors, random mutations.
 */
#include "testutil.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *g_dir;

static int make_cases(void **state) {
    (void)state;
    g_dir = tu_tmpdir();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/image_hostile/make_cases.py %s >/dev/null",
             LG_SOURCE_DIR, g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Returns the number of mismatching cases of the given extension (each one printed). */
static int run_cases(const char *want_ext) {
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.txt", g_dir);
    FILE *m = fopen(path, "r");
    assert_non_null(m);
    char name[256], ext[16], verdict[16];
    int w, h, white, bad = 0, seen = 0;
    while (fscanf(m, "%255s %15s %15s %d %d %d", name, ext, verdict, &w, &h, &white) == 6) {
        if (strcmp(ext, want_ext) != 0) continue;
        seen++;
        for (int pass = 0; pass < (white ? 2 : 1); pass++) {
            snprintf(path, sizeof path, "%s/%s.%s", g_dir, name, ext);
            lg_image_options o = lg_image_options_default();
            if (pass) o.alpha_mode = LG_ALPHA_WHITE;
            lg_image *img = NULL;
            lg_error e;
            lg_err_clear(&e);
            lg_status st = lg_image_load_file(path, &o, &img, &e);
            if (strcmp(verdict, "refused") == 0) {
                if (st == LG_OK) {
                    print_message("%s: Pillow refuses it, we decode it (%dx%d)\n", name,
                                  lg_image_width(img), lg_image_height(img));
                    bad++;
                } else if (!strstr(e.msg, name)) {
                    print_message("%s: message does not name the file: %s\n", name, e.msg);
                    bad++;
                }
                lg_image_free(img);
                continue;
            }
            if (st != LG_OK) {
                print_message("%s: Pillow decodes it, we refuse it: %s\n", name, e.msg);
                bad++;
                continue;
            }
            snprintf(path, sizeof path, "%s/%s%s", g_dir, name, pass ? ".white.rgb" : ".rgb");
            size_t n = 0;
            uint8_t *ref = file_exists(path) ? tu_read(path, &n) : NULL;
            if (lg_image_width(img) != w || lg_image_height(img) != h || n != (size_t)w * h * 3) {
                print_message("%s: size %dx%d, Pillow %dx%d\n", name, lg_image_width(img),
                              lg_image_height(img), w, h);
                bad++;
            } else {
                const uint8_t *got = lg_image_rgb(img);
                for (size_t i = 0; i < n; i++)
                    if (got[i] != ref[i]) {
                        print_message("%s%s: pixel %zu channel %zu is %u, Pillow gives %u\n", name,
                                      pass ? " (over white)" : "", i / 3, i % 3, got[i], ref[i]);
                        bad++;
                        break;
                    }
            }
            free(ref);
            lg_image_free(img);
        }
    }
    fclose(m);
    assert_true(seen > 50); /* the generator made the cases */
    return bad;
}

static void test_bmp_as_pillow(void **state) {
    (void)state;
    assert_int_equal(run_cases("bmp"), 0);
}

static void test_png_as_pillow(void **state) {
    (void)state;
    assert_int_equal(run_cases("png"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bmp_as_pillow),
        cmocka_unit_test(test_png_as_pillow),
    };
    return cmocka_run_group_tests(tests, make_cases, NULL);
}
