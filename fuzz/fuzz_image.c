/*
 * fuzz_image.c — image decoding from memory on arbitrary bytes (format detection), then the
 * preprocessor's work-free checks. Built once per format too (fuzz_image_png, ..._jpeg, ..._gif,
 * ..._webp, ..._bmp: LG_FUZZ_SIG puts that format's signature in front when the input lacks it, so
 * the fuzzer spends its time inside one decoder). Small pixel limit: big images are slow, not bugs.
 */
#include "llavaguard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef LG_FUZZ_SIG
static const char sig[] = LG_FUZZ_SIG;
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *d = data;
    uint8_t *copy = NULL;
#ifdef LG_FUZZ_SIG
    size_t sl = sizeof sig - 1;
    if (size < sl || memcmp(data, sig, sl) != 0) {
        copy = malloc(size + sl);
        memcpy(copy, sig, sl);
        if (size) memcpy(copy + sl, data, size);
        d = copy;
        size += sl;
    }
#endif
    lg_image_options o = lg_image_options_default();
    o.max_pixels = 1u << 20;
    o.alpha_mode = size % 2 ? LG_ALPHA_WHITE : LG_ALPHA_DROP;
    o.apply_exif_orientation = size % 3 == 0;
    lg_image *img = NULL;
    if (lg_image_load_memory(d, size, "fuzz", &o, &img, NULL) == LG_OK) {
        int w = lg_image_width(img), h = lg_image_height(img);
        const uint8_t *p = lg_image_rgb(img);
        volatile unsigned sum = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i += 97) sum += p[i]; /* touch the pixels */
        (void)sum;
    }
    lg_image_free(img);
    free(copy);
    return 0;
}
