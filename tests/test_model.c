/* LAYERS: core kernels model */
/*
 * test_model.c — LLaVA-OneVision parity with the transformers reference, part 1: text only, the
 * one-tile image (p01), the 16-crop image that exercises anyres_max_9 downsampling (p04) and the
 * tiny upscaled image with odd padding (p05). See test_model_parity.h for what is compared.
 */
#include "test_model_parity.h"

int main(void) {
    const struct CMUnitTest tests[] = {
        CASE("text_only"),
        CASE("p01_rgb_384x384"),
        CASE("p04_rgb_wide_1920x1080"),
        CASE("p05_rgb_tiny_50x37"),
    };
    return cmocka_run_group_tests(tests, open_model, close_model);
}
