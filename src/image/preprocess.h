/*
 * preprocess.h — the resolved settings of one model's image processor (filled from the model
 * folder by preprocess_config.c, used by preprocess.c). Internal to the image layer.
 */
#ifndef LG_IMAGE_PREPROCESS_H
#define LG_IMAGE_PREPROCESS_H

#include "image/image.h"

typedef enum pp_kind { PP_ONEVISION, PP_NEXT, PP_CLIP, PP_QWEN2VL } pp_kind;

typedef struct lg_preprocessor {
    pp_kind kind;
    img_filter filter;
    /* Final per-crop stage: resize to shortest_edge (when > 0) or to size_h x size_w, then a
     * centre crop to crop_h x crop_w when center_crop (OneVision: no crop, crop = size). */
    int shortest_edge, size_h, size_w;
    bool center_crop;
    int crop_h, crop_w;
    /* anyres */
    int base_h, base_w; /* crop 0: the whole image resized straight to this */
    int tile;           /* tile side in pixels */
    int *pins;          /* n_pins (height, width) pairs */
    int n_pins;
    int max_tiles; /* anyres_max_N (OneVision), 0 for none */
    /* tokens */
    int patches;         /* patches per crop side (image_size // patch_size) */
    int tokens_per_crop; /* patches^2 (+1 for a CLS token kept by the "full" strategy) */
    /* CLIP "pad" variant */
    bool square_pad;
    uint8_t pad_rgb[3];
    /* Qwen2VLImageProcessor: smart_resize within [min_pixels, max_pixels] to multiples of
     * patch * merge, patches of temporal x patch x patch flattened */
    int64_t min_pixels, max_pixels;
    int patch, merge, temporal;
    /* rescale + normalize, per channel */
    float lut[3][256];
} pp_t;

/* Fills the token fields of px (tokens_per_crop, best pinpoint, unpadded / packed map sizes,
 * image_tokens) for an image of height x width. */
void pp_token_layout(const pp_t *pp, int height, int width, lg_pixels *px);

/* Qwen2-VL's smart_resize: false (with the reason in `why`) where the reference refuses the
 * size (a side shorter than patch * merge, or an aspect ratio above 200). */
bool pp_smart_resize(const pp_t *pp, int height, int width, int *out_h, int *out_w, char *why,
                     size_t why_cap);

#endif
