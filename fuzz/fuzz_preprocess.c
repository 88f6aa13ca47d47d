/*
 * fuzz_preprocess.c — decode + the LLaVA-OneVision preprocessor of the fixture model
 * (llava-ov-tiny: anyres tiling, resize, normalise) on arbitrary bytes. The model folder comes
 * from LG_FUZZ_MODEL (default: the fixtures' llava-ov-tiny).
 */
#include "llavaguard.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static lg_preprocessor *pp;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("LG_FUZZ_MODEL");
    if (!dir) dir = LG_FIXTURES_DIR "/llava-ov-tiny";
    lg_error e;
    if (lg_preprocessor_open(dir, &pp, &e) != LG_OK) {
        fprintf(stderr, "fuzz_preprocess: %s\n", e.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lg_image_options o = lg_image_options_default();
    o.max_pixels = 1u << 16;
    lg_image *img = NULL;
    if (lg_image_load_memory(data, size, "fuzz", &o, &img, NULL) == LG_OK) {
        lg_pixels *px = NULL;
        if (lg_preprocess(pp, img, &px, NULL) == LG_OK) lg_pixels_free(px);
    }
    lg_image_free(img);
    return 0;
}
