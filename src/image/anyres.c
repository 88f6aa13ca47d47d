/*
 * anyres.c — the arithmetic of LLaVA's "anyres" scheme, as transformers v4.45 computes it:
 * select_best_resolution, get_patch_output_size (image_processing_utils / llava_next), and the
 * unpadded feature-map size of LlavaNextProcessor / LlavaOnevisionProcessor
 * (_get_unpadded_features, with the anyres_max_N shrink of LLaVA-OneVision).
 * Python evaluates these in float64 with int() truncation and float floor division; every step
 * below keeps that order of operations so that the integers agree for every image size.
 */
#include "image/image.h"

#include <math.h>

void img_select_best_resolution(int height, int width, const int *pins, int n, int *best_h,
                                int *best_w) {
    int64_t max_eff = 0, min_waste = INT64_MAX;
    int bh = pins[0], bw = pins[1];
    for (int i = 0; i < n; i++) {
        int h = pins[2 * i], w = pins[2 * i + 1];
        double sw = (double)w / width, sh = (double)h / height;
        double scale = sw < sh ? sw : sh;
        int64_t dw = (int64_t)(width * scale), dh = (int64_t)(height * scale);
        int64_t eff = dw * dh, full = (int64_t)width * height;
        if (full < eff) eff = full;
        int64_t waste = (int64_t)w * h - eff;
        if (eff > max_eff || (eff == max_eff && waste < min_waste)) {
            max_eff = eff;
            min_waste = waste;
            bh = h;
            bw = w;
        }
    }
    *best_h = bh;
    *best_w = bw;
}

void img_fit_size(int height, int width, int th, int tw, int *new_h, int *new_w) {
    double sw = (double)tw / width, sh = (double)th / height;
    if (sw < sh) {
        double h = ceil(height * sw);
        *new_w = tw;
        *new_h = h < th ? (int)h : th;
    } else {
        double w = ceil(width * sh);
        *new_h = th;
        *new_w = w < tw ? (int)w : tw;
    }
}

/* CPython's float_floor_div (Objects/floatobject.c: _float_div_mod). */
double img_py_floordiv(double a, double b) {
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0) {
        if ((b < 0) != (mod < 0)) div -= 1.0;
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, a / b);
    }
    return floordiv;
}

void img_anyres_unpad(int orig_h, int orig_w, int grid_h, int grid_w, int ph, int pw, int max_tiles,
                      img_unpad *out) {
    int cur_h = ph * grid_h, cur_w = pw * grid_w;
    double orig_aspect = (double)orig_w / orig_h, cur_aspect = (double)cur_w / cur_h;
    if (orig_aspect > cur_aspect) {
        int new_h = (int)(orig_h * ((double)cur_w / orig_w));
        int pad = (cur_h - new_h) / 2; /* non-negative: Python // and C / agree */
        cur_h -= 2 * pad;
    } else {
        int new_w = (int)(orig_w * ((double)cur_h / orig_h));
        int pad = (cur_w - new_w) / 2;
        cur_w -= 2 * pad;
    }
    out->unpad_rows = out->rows = cur_h;
    out->unpad_cols = out->cols = cur_w;
    if (max_tiles > 0) {
        /* ratio = sqrt(h*w / (N * patches**2)); Python divides the two integers exactly
         * rounded, as a double division of exactly representable values does. */
        double ratio =
            sqrt((double)((int64_t)cur_h * cur_w) / (double)((int64_t)max_tiles * ph * pw));
        if (ratio > 1.1) {
            out->rows = (int)img_py_floordiv(cur_h, ratio);
            out->cols = (int)img_py_floordiv(cur_w, ratio);
        }
    }
}
