/*
 * fuzz_preprocessor_config.c — the image-processor settings of a model folder:
 * preprocessor_config.json, config.json and processor_config.json (the input split at NUL bytes;
 * missing parts: no file). An opened preprocessor computes image-token counts for a few sizes
 * and preprocesses a small image.
 */
#include "fuzz_common.h"

#include "llavaguard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = {"preprocessor_config.json", "config.json",
                                        "processor_config.json"};
    const uint8_t *p[3];
    size_t n[3];
    size_t k = fz_split(data, size, p, n, 3);
    for (size_t i = 0; i < 3; i++) fz_put(names[i], i < k ? p[i] : NULL, i < k ? n[i] : 0);
    lg_preprocessor *pp = NULL;
    if (lg_preprocessor_open(fz_dir(), &pp, NULL) != LG_OK) return 0;
    static const int sizes[][2] = {{1, 1}, {37, 50}, {480, 640}, {4000, 30}, {1, 100000}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t t = 0;
        lg_preprocessor_image_tokens(pp, sizes[i][0], sizes[i][1], &t, NULL);
    }
    static uint8_t rgb[37 * 50 * 3];
    lg_image *img = NULL;
    lg_pixels *px = NULL;
    if (lg_image_from_rgb(rgb, 50, 37, &img, NULL) == LG_OK &&
        lg_preprocess(pp, img, &px, NULL) == LG_OK)
        lg_pixels_free(px);
    lg_image_free(img);
    lg_preprocessor_free(pp);
    return 0;
}
