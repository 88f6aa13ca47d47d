/* LAYERS: core kernels model */
/*
 * test_model_images.c — LLaVA-OneVision parity with the transformers reference, part 2: the
 * remaining images (JPEG 4:3, tall, grayscale, RGBA, palette; column and row unpadding). See
 * test_model_parity.h for what is compared.
 */
#include "test_model_parity.h"

int main(void) {
    const struct CMUnitTest tests[] = {
        CASE("p02_rgb_640x480"),  CASE("p03_rgb_tall_300x900"), CASE("p06_gray_320x240"),
        CASE("p07_rgba_400x300"), CASE("p08_palette_256x192"),
    };
    return cmocka_run_group_tests(tests, open_model, close_model);
}
