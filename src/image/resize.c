/*
 * resize.c — Pillow's Image.resize for 8-bit images, reproduced bit for bit (Pillow 9.4
 * src/libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleInner).
 * The reference image processors resize uint8 pictures through PIL, so every detail matters:
 * filter support scaled by the downsizing factor (antialiasing), float/double evaluation order,
 * coefficients rounded to 22-bit fixed point, a rounding bias of 1 << 21, clipping to 0..255
 * after each pass, horizontal pass first over only the rows the vertical pass will read, and a
 * pass skipped when its dimension does not change.
 */
#include "image/image.h"

#include <math.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

typedef struct filter_def {
    double (*fn)(double x);
    double support;
} filter_def;

static double box_filter(double x) {
    return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x) {
    if (x < 0.0) x = -x;
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x));
}

/* Keys' cubic convolution with a = -0.5, written as Pillow evaluates it. */
static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc_filter(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x) {
    if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
    return 0.0;
}

static const filter_def *filter_for(img_filter f) {
    static const filter_def box = {box_filter, 0.5}, bilinear = {bilinear_filter, 1.0},
                            hamming = {hamming_filter, 1.0}, bicubic = {bicubic_filter, 2.0},
                            lanczos = {lanczos_filter, 3.0};
    switch (f) {
    case IMG_BOX:
        return &box;
    case IMG_BILINEAR:
        return &bilinear;
    case IMG_HAMMING:
        return &hamming;
    case IMG_BICUBIC:
        return &bicubic;
    case IMG_LANCZOS:
        return &lanczos;
    }
    return NULL;
}

/* Fixed-point coefficients of one pass: for output index i, `n[i]` taps starting at input
 * index `first[i]`, weights k[i*ksize ...]. */
typedef struct coeffs {
    int ksize;
    int *first, *n;
    int32_t *k;
} coeffs;

static void coeffs_free(coeffs *c) {
    lg_free(c->first);
    lg_free(c->n);
    lg_free(c->k);
}

/* precompute_coeffs + normalize_coeffs_8bpc for the box [0, in_size). */
static lg_status coeffs_make(int in_size, int out_size, const filter_def *f, coeffs *c) {
    /* Pillow computes (in1 - in0) in float: exact for sizes below 2^24. */
    double scale = (double)((float)in_size - 0.0f) / out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = f->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    size_t nk;
    if (!lg_mul_ok((size_t)out_size, (size_t)ksize, &nk) || nk > SIZE_MAX / sizeof(double))
        return LG_E_NOMEM;
    double *kk = lg_malloc(nk * sizeof(double));
    c->first = lg_malloc((size_t)out_size * sizeof(int));
    c->n = lg_malloc((size_t)out_size * sizeof(int));
    c->k = lg_malloc(nk * sizeof(int32_t));
    c->ksize = ksize;
    if (!kk || !c->first || !c->n || !c->k) {
        lg_free(kk);
        coeffs_free(c);
        return LG_E_NOMEM;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = &kk[(size_t)xx * ksize];
        int x = 0;
        for (; x < xmax; x++) {
            double w = f->fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        c->first[xx] = xmin;
        c->n[xx] = xmax;
    }
    for (size_t i = 0; i < nk; i++)
        c->k[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS))
                            : (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
    lg_free(kk);
    return LG_OK;
}

/* Pillow's clip8: the sum carries a 2^21 rounding bias; shift, then clamp (its lookup table
 * maps every negative index to 0 and every index >= 256 to 255). */
static inline uint8_t clip8(int32_t v) {
    int32_t s = v >> PRECISION_BITS;
    return (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : s);
}

/* Horizontal pass over rows [row0, row0 + rows) of src into dst (rows x dw). */
static void pass_h(const uint8_t *src, int sw, int ch, int row0, int rows, uint8_t *dst, int dw,
                   const coeffs *c) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)(y + row0) * sw * ch;
        uint8_t *out = dst + (size_t)y * dw * ch;
        for (int xx = 0; xx < dw; xx++) {
            const int32_t *k = &c->k[(size_t)xx * c->ksize];
            const uint8_t *p = in + (size_t)c->first[xx] * ch;
            int n = c->n[xx];
            int32_t s[4] = {1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1),
                            1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1)};
            if (ch == 3) {
                for (int x = 0; x < n; x++, p += 3) {
                    s[0] += p[0] * k[x];
                    s[1] += p[1] * k[x];
                    s[2] += p[2] * k[x];
                }
            } else {
                for (int x = 0; x < n; x++, p += ch)
                    for (int b = 0; b < ch; b++) s[b] += p[b] * k[x];
            }
            for (int b = 0; b < ch; b++) out[(size_t)xx * ch + b] = clip8(s[b]);
        }
    }
}

/* Vertical pass: dst (dh x w) from src (any number of rows x w); coefficient row indices are
 * relative to src's first row. */
static void pass_v(const uint8_t *src, int w, int ch, uint8_t *dst, int dh, const coeffs *c) {
    size_t stride = (size_t)w * ch;
    for (int yy = 0; yy < dh; yy++) {
        const int32_t *k = &c->k[(size_t)yy * c->ksize];
        const uint8_t *base = src + (size_t)c->first[yy] * stride;
        int n = c->n[yy];
        uint8_t *out = dst + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int32_t s = 1 << (PRECISION_BITS - 1);
            const uint8_t *p = base + i;
            for (int y = 0; y < n; y++, p += stride) s += *p * k[y];
            out[i] = clip8(s);
        }
    }
}

lg_status img_resize(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh,
                     img_filter filter) {
    const filter_def *f = filter_for(filter);
    if (!f || ch < 1 || ch > 4 || sw < 1 || sh < 1 || dw < 1 || dh < 1) return LG_E_ARG;
    bool need_h = dw != sw, need_v = dh != sh;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)sw * sh * ch);
        return LG_OK;
    }
    coeffs cv = {0}, chz = {0};
    lg_status st = coeffs_make(sh, dh, f, &cv);
    if (st != LG_OK) return st;
    /* Rows of the source the vertical pass reads: only those go through the horizontal pass. */
    int first = cv.first[0], last = cv.first[dh - 1] + cv.n[dh - 1];
    if (!need_h) {
        pass_v(src, sw, ch, dst, dh, &cv);
        coeffs_free(&cv);
        return LG_OK;
    }
    st = coeffs_make(sw, dw, f, &chz);
    if (st != LG_OK) {
        coeffs_free(&cv);
        return st;
    }
    if (!need_v) {
        pass_h(src, sw, ch, 0, sh, dst, dw, &chz);
    } else {
        uint8_t *tmp = lg_malloc((size_t)(last - first) * dw * ch);
        if (!tmp) {
            st = LG_E_NOMEM;
        } else {
            for (int i = 0; i < dh; i++) cv.first[i] -= first;
            pass_h(src, sw, ch, first, last - first, tmp, dw, &chz);
            pass_v(tmp, dw, ch, dst, dh, &cv);
            lg_free(tmp);
        }
    }
    coeffs_free(&cv);
    coeffs_free(&chz);
    return st;
}
