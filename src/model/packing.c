/*
 * packing.c — arranges projected crop features into the rows that replace the <image> tokens.
 * Matches transformers 4.45 LlavaOnevisionForConditionalGeneration.pack_image_features (and
 * LLaVA-NeXT's, which lacks the downsampling step):
 *   1. the base crop's rows come first;
 *   2. the tiles form a (grid_h*g) x (grid_w*g) feature map, tile (i, j) at rows i*g.., cols j*g..
 *      (grid from select_best_resolution over the pinpoints, as get_anyres_image_grid_shape);
 *   3. unpad_image crops the map to the original aspect ratio;
 *   4. anyres_max_N: when ratio = sqrt(h*w / (N*g*g)) > 1.1 the map is resized to
 *      (int(h // ratio), int(w // ratio)) with torch's bilinear interpolate (align_corners=False);
 *   5. image_newline is appended after every map row, and the map is flattened row by row.
 * The map is never materialised: rows are read from the tiles through map_at().
 */
#include "model.h"

#include <math.h>
#include <string.h>

// ---- geometry (Python float semantics) ----

/* Python's float floor division a // b (CPython float_floor_div), for b > 0. */
static double py_floordiv(double a, double b) {
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
    if (div == 0.0) return copysign(0.0, a / b);
    double fl = floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl;
}

void pack_best_resolution(const mdl_config *cfg, int orig_h, int orig_w, int *best_h, int *best_w) {
    int64_t max_eff = 0, min_waste = INT64_MAX, area = (int64_t)orig_w * orig_h;
    *best_h = cfg->pinpoints[0][0];
    *best_w = cfg->pinpoints[0][1];
    for (int i = 0; i < cfg->n_pinpoints; i++) {
        int h = cfg->pinpoints[i][0], w = cfg->pinpoints[i][1];
        double scale = fmin((double)w / orig_w, (double)h / orig_h);
        int64_t dw = (int64_t)(orig_w * scale), dh = (int64_t)(orig_h * scale);
        int64_t eff = dw * dh < area ? dw * dh : area;
        int64_t waste = (int64_t)w * h - eff;
        if (eff > max_eff || (eff == max_eff && waste < min_waste)) {
            max_eff = eff;
            min_waste = waste;
            *best_h = h;
            *best_w = w;
        }
    }
}

typedef struct pack_geom {
    int grid_h, grid_w; /* tiles down, across */
    int g;              /* feature rows/cols per tile side */
    int r0, c0, uh, uw; /* the unpadded window of the map */
    int oh, ow;         /* after downsampling (= uh, uw without it) */
} pack_geom;

/* transformers unpad_image: the window of a (mh, mw) map that holds an orig_h x orig_w image. */
static void unpad(int mh, int mw, int orig_h, int orig_w, pack_geom *pg) {
    double orig_aspect = (double)orig_w / orig_h, cur_aspect = (double)mw / mh;
    pg->r0 = 0, pg->c0 = 0, pg->uh = mh, pg->uw = mw;
    if (orig_aspect > cur_aspect) {
        double scale = (double)mw / orig_w;
        int new_h = (int)(orig_h * scale);
        int pad = (int)py_floordiv(mh - new_h, 2);
        pg->r0 = pad;
        pg->uh = mh - 2 * pad;
    } else {
        double scale = (double)mh / orig_h;
        int new_w = (int)(orig_w * scale);
        int pad = (int)py_floordiv(mw - new_w, 2);
        pg->c0 = pad;
        pg->uw = mw - 2 * pad;
    }
}

static bool geometry(const mdl_config *cfg, int orig_h, int orig_w, pack_geom *pg) {
    memset(pg, 0, sizeof *pg);
    if (orig_h < 1 || orig_w < 1) return false;
    int bh, bw;
    pack_best_resolution(cfg, orig_h, orig_w, &bh, &bw);
    pg->grid_h = bh / cfg->vit.image_size;
    pg->grid_w = bw / cfg->vit.image_size;
    pg->g = cfg->vit.grid;
    if (pg->grid_h < 1 || pg->grid_w < 1) return false;
    unpad(pg->grid_h * pg->g, pg->grid_w * pg->g, orig_h, orig_w, pg);
    if (pg->uh < 1 || pg->uw < 1) return false;
    pg->oh = pg->uh, pg->ow = pg->uw;
    if (cfg->pack == PACK_ANYRES_MAX) {
        double ratio = sqrt((double)pg->uh * pg->uw / ((double)cfg->anyres_max * pg->g * pg->g));
        if (ratio > 1.1) {
            pg->oh = (int)py_floordiv(pg->uh, ratio);
            pg->ow = (int)py_floordiv(pg->uw, ratio);
            if (pg->oh < 1 || pg->ow < 1) return false;
        }
    }
    return true;
}

int64_t pack_n_rows(const mdl_config *cfg, int orig_h, int orig_w, int *grid_h, int *grid_w) {
    int64_t base = cfg->vit.n_out_rows;
    if (cfg->pack == PACK_SINGLE) {
        if (grid_h) *grid_h = 0;
        if (grid_w) *grid_w = 0;
        return base;
    }
    pack_geom pg;
    if (!geometry(cfg, orig_h, orig_w, &pg)) return -1;
    if (cfg->vit.n_out_rows != pg.g * pg.g) return -1; /* tiles must be square maps */
    if (grid_h) *grid_h = pg.grid_h;
    if (grid_w) *grid_w = pg.grid_w;
    return base + (int64_t)pg.oh * (pg.ow + (cfg->has_newline ? 1 : 0));
}

// ---- bilinear resize (torch 1.13 CPU upsample_bilinear2d, align_corners=False) ----

typedef struct lin_idx {
    int i0, i1;
    float l0, l1;
} lin_idx;

/* compute_source_index_and_lambda: scale = in/out in float; src = scale*(dst+0.5)-0.5 computed
 * in double (the 0.5 literals) and stored as float, clamped at 0. */
static void lin_weights(int in, int out, lin_idx *ix) {
    float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        if (in == out) {
            ix[i] = (lin_idx){i, i, 1.0f, 0.0f};
            continue;
        }
        float src = (float)((double)scale * (i + 0.5) - 0.5);
        if (src < 0) src = 0;
        int i0 = (int)src;
        int i1 = i0 + (i0 < in - 1 ? 1 : 0);
        float l1 = src - (float)i0;
        l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
        ix[i] = (lin_idx){i0, i1, 1.0f - l1, l1};
    }
}

/* Reads map element (r, c) through a callback so tiles need not be copied into a map. */
typedef const float *(*map_fn)(const void *ctx, int r, int c);

static void bilinear(map_fn at, const void *ctx, int h, int w, int ch, float *out, int oh, int ow,
                     lin_idx *ys, lin_idx *xs) {
    lin_weights(h, oh, ys);
    lin_weights(w, ow, xs);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            const lin_idx *y = &ys[oy], *x = &xs[ox];
            const float *p00 = at(ctx, y->i0, x->i0), *p01 = at(ctx, y->i0, x->i1);
            const float *p10 = at(ctx, y->i1, x->i0), *p11 = at(ctx, y->i1, x->i1);
            float *o = out + ((int64_t)oy * ow + ox) * ch;
            for (int k = 0; k < ch; k++) {
                float t0 = p00[k] * x->l0 + p01[k] * x->l1;
                float t1 = p10[k] * x->l0 + p11[k] * x->l1;
                o[k] = t0 * y->l0 + t1 * y->l1;
            }
        }
}

typedef struct hwc_map {
    const float *data;
    int w, c;
} hwc_map;

static const float *hwc_at(const void *ctx, int r, int c) {
    const hwc_map *m = ctx;
    return m->data + ((int64_t)r * m->w + c) * m->c;
}

void pack_bilinear_hwc(const float *in, int h, int w, int c, float *out, int oh, int ow) {
    lin_idx *ys = lg_malloc((size_t)oh * sizeof *ys), *xs = lg_malloc((size_t)ow * sizeof *xs);
    LG_ASSERT(ys && xs);
    hwc_map m = {in, w, c};
    bilinear(hwc_at, &m, h, w, c, out, oh, ow, ys, xs);
    lg_free(ys);
    lg_free(xs);
}

// ---- packing ----

typedef struct tile_map {
    const float *tiles; /* tile t = crop 1+t: (g*g, d) rows */
    const pack_geom *pg;
    int d;
} tile_map;

/* Element (r, c) of the unpadded window. */
static const float *tile_at(const void *ctx, int r, int c) {
    const tile_map *m = ctx;
    const pack_geom *pg = m->pg;
    int mr = r + pg->r0, mc = c + pg->c0, g = pg->g;
    int64_t tile = (int64_t)(mr / g) * pg->grid_w + mc / g;
    int64_t row = (int64_t)(mr % g) * g + mc % g;
    return m->tiles + (tile * g * g + row) * m->d;
}

lg_status pack_features(const mdl_config *cfg, const float *crops, int n_crops, int orig_h,
                        int orig_w, const float *newline, float *out, lg_error *err) {
    int d = cfg->dec.n_embd;
    int64_t base = cfg->vit.n_out_rows;
    if (cfg->pack == PACK_SINGLE) {
        if (n_crops != 1) return lg_err_set(err, LG_E_ARG, "expected 1 crop, got %d", n_crops);
        memcpy(out, crops, (size_t)(base * d) * sizeof *out);
        return LG_OK;
    }
    pack_geom pg;
    if (!geometry(cfg, orig_h, orig_w, &pg) || base != (int64_t)pg.g * pg.g)
        return lg_err_set(err, LG_E_ARG, "cannot pack an image of %dx%d", orig_w, orig_h);
    if (n_crops != 1 + pg.grid_h * pg.grid_w)
        return lg_err_set(err, LG_E_ARG,
                          "an image of %dx%d needs %d crops (base + %dx%d tiles), got %d", orig_w,
                          orig_h, 1 + pg.grid_h * pg.grid_w, pg.grid_h, pg.grid_w, n_crops);
    memcpy(out, crops, (size_t)(base * d) * sizeof *out);
    float *dst = out + base * d;
    tile_map tm = {crops + base * d, &pg, d};
    bool resize = pg.oh != pg.uh || pg.ow != pg.uw;
    float *small = NULL;
    if (resize) {
        small = lg_malloc((size_t)pg.oh * pg.ow * d * sizeof *small);
        lin_idx *ys = lg_malloc((size_t)pg.oh * sizeof *ys);
        lin_idx *xs = lg_malloc((size_t)pg.ow * sizeof *xs);
        bool ok = small && ys && xs;
        if (ok) bilinear(tile_at, &tm, pg.uh, pg.uw, d, small, pg.oh, pg.ow, ys, xs);
        lg_free(ys);
        lg_free(xs);
        if (!ok) {
            lg_free(small);
            return lg_err_set(err, LG_E_NOMEM, "out of memory packing image features");
        }
    }
    for (int r = 0; r < pg.oh; r++) {
        for (int c = 0; c < pg.ow; c++) {
            const float *src = resize ? small + ((int64_t)r * pg.ow + c) * d : tile_at(&tm, r, c);
            memcpy(dst, src, (size_t)d * sizeof *dst);
            dst += d;
        }
        if (cfg->has_newline) {
            memcpy(dst, newline, (size_t)d * sizeof *dst);
            dst += d;
        }
    }
    lg_free(small);
    return LG_OK;
}
