/*
 * preprocess.c — the image processors of LLaVA-OneVision, LLaVA-NeXT (1.6) and LLaVA-1.5 as
 * transformers v4.45.2 runs them on Pillow images (image_processing_llava_onevision.py,
 * image_processing_llava_next.py, image_processing_clip.py, processing_llava_*.py):
 *   anyres: best pinpoint, aspect-preserving resize, zero padding of (target - new) // 2 on BOTH
 *   sides (one pixel short for odd differences, as 4.45 does), row-major tiles, the whole image
 *   resized straight to the crop size as crop 0, then every crop resized again (OneVision) or
 *   shortest-edge resized and centre-cropped (NeXT); CLIP: shortest-edge resize + centre crop,
 *   optionally after LLaVA's expand2square. Rescale + normalize go through a 256-entry float32
 *   table per channel, bit-identical to numpy's float64 rescale then float32 normalize.
 *   Qwen2-VL (image_processing_qwen2_vl.py, transformers 4.50, slow path): smart_resize to
 *   multiples of patch * merge within [min_pixels, max_pixels], one bicubic resize, the frame
 *   repeated to temporal_patch_size, patches flattened in merge-block order (t, h/m, w/m, m, m)
 *   with each row (channel, frame, y, x).
 * All settings come from preprocessor_config.json and config.json (preprocess_config.c).
 */
#include "image/preprocess.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- the per-crop final stage ---- */

/* transformers' get_resize_output_image_size(default_to_square=False) for shortest_edge. */
static void shortest_edge_size(int h, int w, int se, int *oh, int *ow) {
    int s = w <= h ? w : h, l = w <= h ? h : w;
    int nl = (int)((double)((int64_t)se * l) / s);
    *oh = w <= h ? nl : se;
    *ow = w <= h ? se : nl;
}

/* Resizes (or copies) an RGB image into a new buffer. */
static lg_status resized(const pp_t *pp, const uint8_t *src, int h, int w, int oh, int ow,
                         uint8_t **out) {
    *out = lg_malloc((size_t)oh * ow * 3);
    if (!*out) return LG_E_NOMEM;
    lg_status st = img_resize(src, w, h, 3, *out, ow, oh, pp->filter);
    if (st != LG_OK) {
        lg_free(*out);
        *out = NULL;
    }
    return st;
}

/* transformers' center_crop; the configuration check (preprocess_config.c) guarantees the image
 * is at least the crop size, so its zero-padding branch is never needed. */
static void center_crop(const uint8_t *src, int h, int w, uint8_t *dst, int ch, int cw) {
    int top = (h - ch) / 2, left = (w - cw) / 2;
    LG_ASSERT(top >= 0 && left >= 0);
    for (int y = 0; y < ch; y++)
        memcpy(dst + (size_t)y * cw * 3, src + ((size_t)(y + top) * w + left) * 3, (size_t)cw * 3);
}

/* Writes one final crop (crop_h x crop_w RGB) as CHW bytes and table-mapped floats. */
static void emit_crop(const pp_t *pp, const uint8_t *rgb, lg_pixels *px, int index) {
    size_t plane = (size_t)px->height * px->width, off = (size_t)index * 3 * plane;
    for (int c = 0; c < 3; c++) {
        uint8_t *u = px->crops_u8 + off + c * plane;
        float *f = px->values + off + c * plane;
        const float *lut = pp->lut[c];
        for (size_t i = 0; i < plane; i++) {
            u[i] = rgb[3 * i + c];
            f[i] = lut[u[i]];
        }
    }
}

/* The processor's _preprocess on one crop: resize (OneVision: to size; NeXT/CLIP: shortest edge
 * or exact size) and centre crop, then emit. */
static lg_status final_crop(const pp_t *pp, const uint8_t *rgb, int h, int w, lg_pixels *px,
                            int index) {
    int oh = pp->size_h, ow = pp->size_w;
    if (pp->shortest_edge) shortest_edge_size(h, w, pp->shortest_edge, &oh, &ow);
    const uint8_t *cur = rgb;
    uint8_t *tmp = NULL, *crop = NULL;
    if (oh != h || ow != w) {
        lg_status st = resized(pp, rgb, h, w, oh, ow, &tmp);
        if (st != LG_OK) return st;
        cur = tmp;
    }
    if (pp->center_crop && (oh != pp->crop_h || ow != pp->crop_w)) {
        crop = lg_malloc((size_t)pp->crop_h * pp->crop_w * 3);
        if (!crop) {
            lg_free(tmp);
            return LG_E_NOMEM;
        }
        center_crop(cur, oh, ow, crop, pp->crop_h, pp->crop_w);
        cur = crop;
    }
    emit_crop(pp, cur, px, index);
    lg_free(tmp);
    lg_free(crop);
    return LG_OK;
}

/* ---- anyres ---- */

/* The aspect-preserving resize centred on a zero canvas of (bh - 2*((bh-nh)//2)) x ... */
static lg_status padded_image(const pp_t *pp, const lg_image *img, lg_pixels *px, uint8_t **out,
                              int *ph, int *pw) {
    int nh, nw;
    img_fit_size(img->height, img->width, px->best_height, px->best_width, &nh, &nw);
    px->resized_height = nh;
    px->resized_width = nw;
    uint8_t *r = NULL;
    lg_status st = resized(pp, img->rgb, img->height, img->width, nh, nw, &r);
    if (st != LG_OK) return st;
    int py = (px->best_height - nh) / 2, pxx = (px->best_width - nw) / 2;
    *ph = nh + 2 * py;
    *pw = nw + 2 * pxx;
    *out = lg_calloc((size_t)*ph * *pw, 3);
    if (!*out) {
        lg_free(r);
        return LG_E_NOMEM;
    }
    for (int y = 0; y < nh; y++)
        memcpy(*out + ((size_t)(y + py) * *pw + pxx) * 3, r + (size_t)y * nw * 3, (size_t)nw * 3);
    lg_free(r);
    return LG_OK;
}

static lg_status anyres_tiles(const pp_t *pp, const uint8_t *pad, int ph, int pw, lg_pixels *px) {
    int t = pp->tile;
    uint8_t *tile = lg_malloc((size_t)t * t * 3);
    if (!tile) return LG_E_NOMEM;
    lg_status st = LG_OK;
    int index = 1;
    for (int i = 0; i < ph && st == LG_OK; i += t) {
        for (int j = 0; j < pw && st == LG_OK; j += t) {
            int th = ph - i < t ? ph - i : t, tw = pw - j < t ? pw - j : t;
            for (int y = 0; y < th; y++)
                memcpy(tile + (size_t)y * tw * 3, pad + ((size_t)(i + y) * pw + j) * 3,
                       (size_t)tw * 3);
            st = final_crop(pp, tile, th, tw, px, index++);
        }
    }
    lg_free(tile);
    return st;
}

static lg_status alloc_crops(lg_pixels *px, int n) {
    size_t per = (size_t)3 * px->height * px->width;
    px->n_crops = n;
    px->crops_u8 = lg_malloc(per * n);
    px->values = lg_malloc(per * n * sizeof(float));
    return px->crops_u8 && px->values ? LG_OK : LG_E_NOMEM;
}

static lg_status run_anyres(const pp_t *pp, const lg_image *img, lg_pixels *px) {
    uint8_t *pad = NULL;
    int ph = 0, pw = 0;
    lg_status st = padded_image(pp, img, px, &pad, &ph, &pw);
    if (st != LG_OK) return st;
    px->grid_h = (ph + pp->tile - 1) / pp->tile;
    px->grid_w = (pw + pp->tile - 1) / pp->tile;
    st = alloc_crops(px, 1 + px->grid_h * px->grid_w);
    if (st == LG_OK) {
        /* Crop 0: the whole image resized straight to the base size, then the final stage. */
        uint8_t *base = NULL;
        st = resized(pp, img->rgb, img->height, img->width, pp->base_h, pp->base_w, &base);
        if (st == LG_OK) st = final_crop(pp, base, pp->base_h, pp->base_w, px, 0);
        lg_free(base);
    }
    if (st == LG_OK) st = anyres_tiles(pp, pad, ph, pw, px);
    lg_free(pad);
    return st;
}

/* ---- CLIP (LLaVA-1.5) ---- */

/* LLaVA's expand2square: centre the image on a square of the mean colour. */
static lg_status expand_to_square(const pp_t *pp, const lg_image *img, uint8_t **out, int *side) {
    int w = img->width, h = img->height, s = w > h ? w : h;
    *side = s;
    *out = lg_malloc((size_t)s * s * 3);
    if (!*out) return LG_E_NOMEM;
    for (size_t i = 0; i < (size_t)s * s; i++) memcpy(*out + 3 * i, pp->pad_rgb, 3);
    int x0 = (s - w) / 2, y0 = (s - h) / 2;
    for (int y = 0; y < h; y++)
        memcpy(*out + ((size_t)(y + y0) * s + x0) * 3, img->rgb + (size_t)y * w * 3, (size_t)w * 3);
    return LG_OK;
}

static lg_status run_clip(const pp_t *pp, const lg_image *img, lg_pixels *px) {
    lg_status st = alloc_crops(px, 1);
    if (st != LG_OK) return st;
    const uint8_t *src = img->rgb;
    int h = img->height, w = img->width;
    uint8_t *sq = NULL;
    if (pp->square_pad) {
        st = expand_to_square(pp, img, &sq, &h);
        if (st != LG_OK) return st;
        w = h;
        src = sq;
    }
    if (pp->shortest_edge)
        shortest_edge_size(h, w, pp->shortest_edge, &px->resized_height, &px->resized_width);
    else
        px->resized_height = pp->size_h, px->resized_width = pp->size_w;
    st = final_crop(pp, src, h, w, px, 0);
    lg_free(sq);
    return st;
}

/* ---- Qwen2-VL ---- */

bool pp_smart_resize(const pp_t *pp, int height, int width, int *out_h, int *out_w, char *why,
                     size_t why_cap) {
    int f = pp->patch * pp->merge;
    if (height < f || width < f) {
        snprintf(why, why_cap, "height:%d or width:%d must be larger than factor:%d", height, width,
                 f);
        return false;
    }
    int lo = height < width ? height : width, hi = height < width ? width : height;
    if ((double)hi / lo > 200) {
        snprintf(why, why_cap, "absolute aspect ratio must be smaller than 200, got %g",
                 (double)hi / lo);
        return false;
    }
    /* Python's round() is round-half-even, as nearbyint in the default rounding mode. */
    double h = nearbyint((double)height / f) * f, w = nearbyint((double)width / f) * f;
    double area = (double)height * width;
    if (h * w > (double)pp->max_pixels) {
        double beta = sqrt(area / (double)pp->max_pixels);
        h = floor(height / beta / f) * f;
        w = floor(width / beta / f) * f;
    } else if (h * w < (double)pp->min_pixels) {
        double beta = sqrt((double)pp->min_pixels / area);
        h = ceil(height * beta / f) * f;
        w = ceil(width * beta / f) * f;
    }
    *out_h = (int)h;
    *out_w = (int)w;
    return true;
}

/* Flattens the resized RGB image (h x w) into rows of (channel, frame, y, x), rows in
 * merge-block order; every frame is the same image (temporal patch duplication). */
static void qwen_patches(const pp_t *pp, const uint8_t *rgb, int h, int w, lg_pixels *px) {
    int p = pp->patch, m = pp->merge, t = pp->temporal, gh = h / p, gw = w / p;
    size_t k = 0;
    for (int bh = 0; bh < gh / m; bh++)
        for (int bw = 0; bw < gw / m; bw++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) {
                    int y0 = (bh * m + i) * p, x0 = (bw * m + j) * p;
                    for (int c = 0; c < 3; c++)
                        for (int f = 0; f < t; f++)
                            for (int ky = 0; ky < p; ky++)
                                for (int kx = 0; kx < p; kx++, k++) {
                                    uint8_t v = rgb[((size_t)(y0 + ky) * w + x0 + kx) * 3 + c];
                                    px->crops_u8[k] = v;
                                    px->values[k] = pp->lut[c][v];
                                }
                }
}

static lg_status run_qwen(const pp_t *pp, const lg_image *img, lg_pixels *px) {
    int h = px->resized_height, w = px->resized_width;
    uint8_t *r = NULL;
    lg_status st = LG_OK;
    if (h != img->height || w != img->width) {
        st = resized(pp, img->rgb, img->height, img->width, h, w, &r);
        if (st != LG_OK) return st;
    }
    st = alloc_crops(px, pp->temporal);
    if (st == LG_OK) qwen_patches(pp, r ? r : img->rgb, h, w, px);
    lg_free(r);
    return st;
}

/* ---- public entry points ---- */

LG_API lg_status lg_preprocessor_image_tokens(const lg_preprocessor *pp, int height, int width,
                                              int64_t *out, lg_error *err) {
    if (!pp || !out || height < 1 || width < 1)
        return lg_err_set(err, LG_E_ARG, "image tokens: invalid argument");
    char why[128];
    int rh, rw;
    if (pp->kind == PP_QWEN2VL && !pp_smart_resize(pp, height, width, &rh, &rw, why, sizeof why))
        return lg_err_set(err, LG_E_UNSUPPORTED, "a %dx%d image: %s", width, height, why);
    lg_pixels px;
    memset(&px, 0, sizeof px);
    pp_token_layout(pp, height, width, &px);
    *out = px.image_tokens;
    return LG_OK;
}

void pp_token_layout(const pp_t *pp, int height, int width, lg_pixels *px) {
    px->tokens_per_crop = pp->tokens_per_crop;
    px->image_tokens = pp->tokens_per_crop;
    if (pp->kind == PP_CLIP) return;
    if (pp->kind == PP_QWEN2VL) {
        char why[128];
        int h = 0, w = 0;
        px->image_tokens = 0;
        if (!pp_smart_resize(pp, height, width, &h, &w, why, sizeof why)) return;
        px->resized_height = px->height = h;
        px->resized_width = px->width = w;
        px->grid_h = h / pp->patch;
        px->grid_w = w / pp->patch;
        px->tokens_per_crop = px->image_tokens =
            (int64_t)(px->grid_h / pp->merge) * (px->grid_w / pp->merge);
        return;
    }
    img_select_best_resolution(height, width, pp->pins, pp->n_pins, &px->best_height,
                               &px->best_width);
    /* The processors count tiles as best // crop size (the pinpoints are multiples of it). */
    int gh = px->best_height / pp->tile, gw = px->best_width / pp->tile;
    img_unpad u;
    img_anyres_unpad(height, width, gh, gw, pp->patches, pp->patches, pp->max_tiles, &u);
    px->unpad_rows = u.unpad_rows;
    px->unpad_cols = u.unpad_cols;
    px->feat_rows = u.rows;
    px->feat_cols = u.cols;
    px->image_tokens += (int64_t)u.rows * (u.cols + 1);
}

LG_API lg_status lg_preprocess(const lg_preprocessor *pp, const lg_image *img, lg_pixels **out,
                               lg_error *err) {
    if (!pp || !img || !out) return lg_err_set(err, LG_E_ARG, "preprocess: invalid argument");
    lg_pixels *px = lg_calloc(1, sizeof *px);
    if (!px) return lg_err_set(err, LG_E_NOMEM, "preprocess: out of memory");
    px->channels = 3;
    px->height = pp->crop_h;
    px->width = pp->crop_w;
    px->orig_height = img->height;
    px->orig_width = img->width;
    char why[128];
    int rh, rw;
    if (pp->kind == PP_QWEN2VL &&
        !pp_smart_resize(pp, img->height, img->width, &rh, &rw, why, sizeof why)) {
        lg_pixels_free(px);
        return lg_err_set(err, LG_E_UNSUPPORTED,
                          "preprocess: the Qwen2-VL processor refuses a %dx%d image (%s)",
                          img->width, img->height, why);
    }
    pp_token_layout(pp, img->height, img->width, px);
    lg_status st = pp->kind == PP_CLIP      ? run_clip(pp, img, px)
                   : pp->kind == PP_QWEN2VL ? run_qwen(pp, img, px)
                                            : run_anyres(pp, img, px);
    if (st != LG_OK) {
        lg_pixels_free(px);
        return lg_err_set(err, st, "preprocess: %s for a %dx%d image",
                          st == LG_E_NOMEM ? "out of memory" : "resize failed", img->width,
                          img->height);
    }
    *out = px;
    return LG_OK;
}

LG_API void lg_pixels_free(lg_pixels *px) {
    if (!px) return;
    lg_free(px->values);
    lg_free(px->crops_u8);
    lg_free(px);
}

LG_API lg_status lg_pixels_write_f32(const lg_pixels *px, const char *path, lg_error *err) {
    if (!px || !path) return lg_err_set(err, LG_E_ARG, "write pixels: invalid argument");
    size_t n = (size_t)px->n_crops * px->channels * px->height * px->width;
    const float *data = px->values;
    float *swapped = NULL;
    if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__) {
        swapped = lg_malloc(n * sizeof(float));
        if (!swapped) return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", path);
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &px->values[i], 4);
            u = __builtin_bswap32(u);
            memcpy(&swapped[i], &u, 4);
        }
        data = swapped;
    }
    lg_status st = lg_write_file_atomic(path, data, n * sizeof(float), err);
    lg_free(swapped);
    return st;
}
