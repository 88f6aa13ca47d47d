/* LAYERS: core kernels model */
/*
 * test_model_fast.c — LLaVA-OneVision parity with the transformers reference through the fast
 * kernels ("auto": amx, avx512bf16, ... whatever this CPU runs best), in both precisions (see
 * test_model_parity.h for what is compared):
 *  - accurate (the default, split-bf16 activations) with the default KV cache (int16 + a
 *    scale per head row), every fixture case, with the README's float32 bounds: features within
 *    1e-4 x their max magnitude, logits within 1e-3, greedy ids identical while the reference
 *    top1-top2 gap is at least 2x the measured logit error. Measured on AVX512-BF16
 *    (docs/kernels.md): features 4e-4..8e-4 of tolerances 4.5e-3..5.4e-3 (crop 0) and
 *    1.2e-3..2.1e-3 of ~1e-2 (packed); logits 2.8e-5..1.6e-4 (f32 cache: 1.4e-5..5e-5); all 32
 *    greedy steps of every case compared and identical.
 *  - accurate with a float32 KV cache, three cases, the same bounds.
 *  - bf16 (activations rounded to bf16 once), three cases with bounds ~2x its measured error:
 *    features 3e-2 x max (measured 0.35..0.62 of ~48, 0.77..1.18 of ~110: ~1.1e-2), logits 0.1
 *    (measured 0.013..0.041), greedy while the gap exceeds 2x the logit error.
 *  - the AMX kernels' block loop in accurate precision through its plain-C twin ("amx-emu",
 *    where AVX512-BF16 runs it), two cases with the accurate bounds: on a machine without AMX
 *    this is the only end-to-end run of that path.
 */
#include "test_model_parity.h"

int main(void) {
    const struct CMUnitTest accurate[] = {
        CASE("text_only"),
        CASE("p01_rgb_384x384"),
        CASE("p02_rgb_640x480"),
        CASE("p03_rgb_tall_300x900"),
        CASE("p04_rgb_wide_1920x1080"),
        CASE("p05_rgb_tiny_50x37"),
        CASE("p06_gray_320x240"),
        CASE("p07_rgba_400x300"),
        CASE("p08_palette_256x192"),
    };
    const struct CMUnitTest bf16[] = {
        CASE("text_only"),
        CASE("p01_rgb_384x384"),
        CASE("p03_rgb_tall_300x900"),
    };
    g_cfg = (parity_cfg){"auto", LG_PRECISION_ACCURATE, 1e-4, 1e-3, 2.0, LG_KV_AUTO};
    int failed = cmocka_run_group_tests_name("fast kernels, accurate precision", accurate,
                                             open_model, close_model);
    const struct CMUnitTest f32_kv[] = {CASE("text_only"), CASE("p03_rgb_tall_300x900"),
                                        CASE("p05_rgb_tiny_50x37")};
    g_cfg = (parity_cfg){"auto", LG_PRECISION_ACCURATE, 1e-4, 1e-3, 2.0, LG_KV_F32};
    failed += cmocka_run_group_tests_name("fast kernels, accurate precision, f32 KV", f32_kv,
                                          open_model, close_model);
    g_cfg = (parity_cfg){"auto", LG_PRECISION_BF16, 3e-2, 0.1, 2.0, LG_KV_AUTO};
    failed +=
        cmocka_run_group_tests_name("fast kernels, bf16 precision", bf16, open_model, close_model);
    if (kern_table_for("amx-emu")) {
        const struct CMUnitTest emu[] = {CASE("text_only"), CASE("p04_rgb_wide_1920x1080")};
        g_cfg = (parity_cfg){"amx-emu", LG_PRECISION_ACCURATE, 1e-4, 1e-3, 2.0, LG_KV_AUTO};
        failed += cmocka_run_group_tests_name("amx-emu kernels, accurate precision", emu,
                                              open_model, close_model);
    }
    return failed;
}
