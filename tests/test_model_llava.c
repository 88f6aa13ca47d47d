/* LAYERS: core kernels image model */
/*
 * test_model_llava.c — LLaVA-1.5 (LlavaGuard v1.0: CLIP ViT + MLP projector + Llama, one crop)
 * against the transformers reference of ../shared/fixtures/reference/llava-1.5-tiny (fixtures
 * README section 7): every image with CLIP's centre crop and with LLaVA's "pad" variant, and the
 * text-only prompt, on the default fast kernels; a subset again on the reference kernels
 * (--exact). What is compared: tests/test_model_family.h.
 */
#include "test_model_family.h"

#define IMAGES(X)                                                                                  \
    X("p01_rgb_384x384")                                                                           \
    X("p02_rgb_640x480")                                                                           \
    X("p03_rgb_tall_300x900")                                                                      \
    X("p04_rgb_wide_1920x1080")                                                                    \
    X("p05_rgb_tiny_50x37")                                                                        \
    X("p06_gray_320x240")                                                                          \
    X("p07_rgba_400x300")                                                                          \
    X("p08_palette_256x192")

#define CROP_FAST(n) {n, false, false},
#define PAD_FAST(n) {n, true, false},
static const fam_case cases[] = {
    IMAGES(CROP_FAST) IMAGES(PAD_FAST){"text_only", false, false},
    {"text_only", false, true},
    {"p02_rgb_640x480", false, true},
    {"p02_rgb_640x480", true, true},
    {"p05_rgb_tiny_50x37", true, true},
    {"p03_rgb_tall_300x900", false, true},
};

int main(void) {
    g_fam_model = "llava-1.5-tiny";
    struct CMUnitTest tests[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tests[i] = (struct CMUnitTest)FAM_CASE(&cases[i]);
    return cmocka_run_group_tests(tests, fam_setup, fam_teardown);
}
