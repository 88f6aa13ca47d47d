/* LAYERS: core kernels image model */
/*
 * test_model_llava_next.c — LLaVA-1.6 (LlavaGuard v1.1: CLIP ViT + MLP projector + Llama, anyres
 * over the config's five pinpoints, unpadding, image_newline) against the transformers reference
 * of ../shared/fixtures/reference/llava-1.6-tiny (fixtures README section 7): every image and the
 * text-only prompt on the default fast kernels, a subset again on the reference kernels
 * (--exact). What is compared: tests/test_model_family.h.
 */
#include "test_model_family.h"

static const fam_case cases[] = {
    {"p01_rgb_384x384", false, false},
    {"p02_rgb_640x480", false, false},
    {"p03_rgb_tall_300x900", false, false},
    {"p04_rgb_wide_1920x1080", false, false},
    {"p05_rgb_tiny_50x37", false, false},
    {"p06_gray_320x240", false, false},
    {"p07_rgba_400x300", false, false},
    {"p08_palette_256x192", false, false},
    {"text_only", false, false},
    {"text_only", false, true},
    {"p02_rgb_640x480", false, true},
    {"p03_rgb_tall_300x900", false, true},
    {"p05_rgb_tiny_50x37", false, true},
};

int main(void) {
    g_fam_model = "llava-1.6-tiny";
    struct CMUnitTest tests[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tests[i] = (struct CMUnitTest)FAM_CASE(&cases[i]);
    return cmocka_run_group_tests(tests, fam_setup, fam_teardown);
}
