/*
 * image.h — internals of the image layer: the decoded-image struct, the per-format decoders
 * (decode_*.c), Pillow-exact resampling (resize.c) and the LLaVA anyres geometry shared by the
 * preprocessor and, later, the model's feature packing (anyres.c). Not part of the public API.
 */
#ifndef LG_IMAGE_H
#define LG_IMAGE_H

#include "core/core.h"

/* A decoded image: 8-bit RGB interleaved, rows packed. */
struct lg_image {
    int width, height;
    uint8_t *rgb;
    const char *format; /* static string */
};

/* What a format decoder hands back: RGB as Pillow's convert("RGB") gives it, plus the alpha
 * Pillow's convert("RGBA") would give (NULL when the image has no transparency at all), and the
 * EXIF orientation (1 when absent or not asked for). Both buffers come from lg_malloc. */
typedef struct img_decoded {
    int width, height;
    uint8_t *rgb;
    uint8_t *alpha;
    int orientation;
} img_decoded;

/* Arguments every decoder receives. */
typedef struct img_src {
    const uint8_t *data;
    size_t size;
    const char *name; /* for messages */
    const lg_image_options *opts;
} img_src;

/* Checks width/height against the options' max_pixels (and sanity) before anything is
 * allocated; fills err with a message naming the file. */
lg_status img_check_size(const img_src *src, const char *fmt, uint64_t w, uint64_t h,
                         lg_error *err);
/* Allocates the rgb (and, when want_alpha, alpha) planes of `out` for w x h. */
lg_status img_alloc(const img_src *src, img_decoded *out, int w, int h, bool want_alpha,
                    lg_error *err);
void img_decoded_free(img_decoded *d);

lg_status img_decode_jpeg(const img_src *src, img_decoded *out, lg_error *err);
lg_status img_decode_png(const img_src *src, img_decoded *out, lg_error *err);
lg_status img_decode_webp(const img_src *src, img_decoded *out, lg_error *err);
lg_status img_decode_gif(const img_src *src, img_decoded *out, lg_error *err);
lg_status img_decode_bmp(const img_src *src, img_decoded *out, lg_error *err);

/* Reads the orientation tag (0x0112) of IFD0 from a TIFF-structured EXIF block (starting at the
 * "II"/"MM" byte order mark, or at "Exif\0\0"). Returns 1..8, or 1 when absent or malformed. */
int img_exif_orientation(const uint8_t *data, size_t size);

/* Pillow's palette for an image whose palette has `n` entries: entries past n keep the grey
 * ramp (i, i, i) that Pillow's ImagingPaletteNew starts from. `rgb` holds n*3 bytes. */
void img_palette_fill(uint8_t pal[256 * 3], const uint8_t *rgb, int n);

/* ---- resampling (resize.c) ---- */

/* Pillow's resampling filters, numbered as PIL.Image.Resampling (NEAREST = 0 is not here). */
typedef enum img_filter {
    IMG_LANCZOS = 1,
    IMG_BILINEAR = 2,
    IMG_BICUBIC = 3,
    IMG_BOX = 4,
    IMG_HAMMING = 5
} img_filter;

/* Resizes an 8-bit interleaved image of `ch` channels (1..4) exactly as Pillow's
 * Image.resize((dw, dh), filter) does for 8-bit modes: separable convolution with the filter's
 * support widened by the scale when downsizing, coefficients in 22-bit fixed point, horizontal
 * pass first, a pass skipped when its size does not change, a copy when neither does. `dst` holds
 * dw*dh*ch bytes. Returns LG_E_NOMEM or LG_E_ARG. */
lg_status img_resize(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw, int dh,
                     img_filter filter);

/* ---- LLaVA anyres geometry (anyres.c) ---- */

/* transformers' select_best_resolution: the (h, w) pinpoint that keeps most of the image's
 * pixels, ties broken by least waste, then list order. `pins` holds n (h, w) pairs. */
void img_select_best_resolution(int height, int width, const int *pins, int n, int *best_h,
                                int *best_w);
/* transformers' get_patch_output_size: the aspect-preserving size that fits (th, tw). */
void img_fit_size(int height, int width, int th, int tw, int *new_h, int *new_w);
/* Python's float floor division a // b for finite doubles (b != 0). */
double img_py_floordiv(double a, double b);

/* The packed feature map of an anyres image (transformers 4.45 processors): the tiles' patch
 * map (grid_h*ph) x (grid_w*pw) unpadded to the original aspect ratio, then, when max_tiles > 0
 * (LLaVA-OneVision "anyres_max_N"), shrunk when it holds more than about N tiles' worth. */
typedef struct img_unpad {
    int unpad_rows, unpad_cols; /* after unpadding */
    int rows, cols;             /* after the anyres_max shrink (= unpadded when none) */
} img_unpad;
void img_anyres_unpad(int orig_h, int orig_w, int grid_h, int grid_w, int ph, int pw, int max_tiles,
                      img_unpad *out);

#endif /* LG_IMAGE_H */
