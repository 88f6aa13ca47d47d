/*
 * llavaguard.h — the one public header of the llavaguard library.
 *
 * A LlavaGuard model reads an image and a safety policy and answers with a JSON verdict. This
 * header exposes the pipeline layer by layer (image -> pixels -> tokens -> model -> verdict) so
 * that the command-line tools, the server and the tests are thin clients of one API.
 *
 * Conventions (see docs/architecture.md):
 *  - Handles are opaque; every `*_create`/`*_open` has a `*_free` that accepts NULL.
 *  - Every fallible call returns an lg_status. Calls on a handle record a human-readable message
 *    in that handle (`lg_<handle>_errmsg`). Calls that create a handle, or work without one, fill
 *    the caller's `lg_error` (which may be NULL when the caller only wants the status).
 *  - Out-parameters are written only on success.
 *  - Memory returned to the caller is released with `lg_free` unless the comment says otherwise.
 *  - No global mutable state: distinct handles may be used from distinct threads at the same time.
 */
#ifndef LLAVAGUARD_H
#define LLAVAGUARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LG_BUILDING_LIBRARY) && defined(__GNUC__)
#define LG_API __attribute__((visibility("default")))
#else
#define LG_API
#endif

#define LG_VERSION_MAJOR 0
#define LG_VERSION_MINOR 1
#define LG_VERSION_PATCH 0
#define LG_VERSION_STRING "0.1.0"

/* ---- status codes and errors --------------------------------------------------------------- */

typedef enum lg_status {
    LG_OK = 0,
    LG_E_NOMEM,       /* an allocation failed */
    LG_E_IO,          /* a file could not be opened, read or written */
    LG_E_FORMAT,      /* input bytes are malformed (corrupt image, bad JSON, bad safetensors) */
    LG_E_UNSUPPORTED, /* well-formed input that this version does not handle */
    LG_E_LIMIT,       /* input exceeds a configured limit (image pixels, prompt length) */
    LG_E_ARG,         /* the caller passed an invalid argument */
    LG_E_INTERNAL     /* a bug in llavaguard */
} lg_status;

#define LG_ERROR_MSG_MAX 512

/* A status with its message, for calls that have no handle to keep it in. */
typedef struct lg_error {
    lg_status status;
    char msg[LG_ERROR_MSG_MAX];
} lg_error;

/* Returns a static, human-readable name for a status ("format error"). Thread-safe. */
LG_API const char *lg_status_str(lg_status st);

/* Returns the library version string, e.g. "0.1.0". Thread-safe. */
LG_API const char *lg_version(void);

/* Releases memory the library returned to the caller (arrays of ids, rendered strings). NULL is
 * a no-op. */
LG_API void lg_free(void *p);

/* ---- images: decoding ----------------------------------------------------------------------- */
/* (section owned by src/image/) */

/* What to do with an alpha channel when converting to RGB. */
typedef enum lg_alpha_mode {
    LG_ALPHA_DROP = 0, /* Pillow convert("RGB"): keep each pixel's stored colour (the reference) */
    LG_ALPHA_WHITE = 1 /* composite over white, as newer Hugging Face processors do */
} lg_alpha_mode;

typedef struct lg_image_options {
    uint64_t max_pixels;        /* refuse images with width*height above this (default 178956970,
                                   Pillow's decompression-bomb error threshold) */
    lg_alpha_mode alpha_mode;   /* default LG_ALPHA_DROP */
    int apply_exif_orientation; /* 0 (default, as the reference) or 1 */
} lg_image_options;

/* A decoded image: 8-bit RGB, interleaved, row-major, no padding between rows. Immutable. */
typedef struct lg_image lg_image;

LG_API lg_image_options lg_image_options_default(void);

/* Decodes an image file. The format is detected from the bytes (JPEG, PNG, WebP, GIF first frame,
 * BMP). `path` "-" reads standard input. On failure returns LG_E_IO (cannot read), LG_E_FORMAT
 * (corrupt, truncated, not an image), LG_E_UNSUPPORTED or LG_E_LIMIT (too many pixels) and fills
 * `err` with a message naming the file and the reason. `opts` may be NULL for the defaults. */
LG_API lg_status lg_image_load_file(const char *path, const lg_image_options *opts, lg_image **out,
                                    lg_error *err);

/* Decodes an image from memory. `name` is used in error messages only (may be NULL). */
LG_API lg_status lg_image_load_memory(const void *data, size_t size, const char *name,
                                      const lg_image_options *opts, lg_image **out, lg_error *err);

LG_API void lg_image_free(lg_image *img);
LG_API int lg_image_width(const lg_image *img);
LG_API int lg_image_height(const lg_image *img);
/* Returns the height*width*3 RGB bytes, owned by the image. */
LG_API const uint8_t *lg_image_rgb(const lg_image *img);
/* Returns the detected source format: "jpeg", "png", "webp", "gif" or "bmp". */
LG_API const char *lg_image_format(const lg_image *img);

/* ---- images: model preprocessing ------------------------------------------------------------ */
/* (section owned by src/image/) */

/* The image processor of one model folder (preprocessor_config.json + config.json). Immutable
 * after creation; may be shared between threads. */
typedef struct lg_preprocessor lg_preprocessor;

/* Model-ready pixels of one image. */
typedef struct lg_pixels {
    int n_crops;                 /* N: the base (whole-image) crop first, then the tiles */
    int channels;                /* 3 */
    int height, width;           /* of every crop (e.g. 384x384) */
    int orig_height, orig_width; /* of the decoded image */
    int grid_h, grid_w;          /* tiles down and across (0 when the processor does not tile) */
    int64_t image_tokens;        /* number of image tokens the prompt must hold for this image */
    float *values;               /* N*C*H*W floats, rescaled and normalized, crop-major CHW */
    uint8_t *crops_u8;           /* N*C*H*W bytes before rescale/normalize (CHW) */
} lg_pixels;

/* Reads the image-processor settings of a model folder. LG_E_IO / LG_E_FORMAT /
 * LG_E_UNSUPPORTED with a message in `err`. */
LG_API lg_status lg_preprocessor_open(const char *model_dir, lg_preprocessor **out, lg_error *err);
LG_API void lg_preprocessor_free(lg_preprocessor *pp);

/* Turns a decoded image into model-ready pixels. The caller frees `out` with lg_pixels_free. */
LG_API lg_status lg_preprocess(const lg_preprocessor *pp, const lg_image *img, lg_pixels **out,
                               lg_error *err);
LG_API void lg_pixels_free(lg_pixels *px);

/* ---- text: tokenizer and chat templates ----------------------------------------------------- */
/* (section owned by src/text/) */

/* ---- policies ------------------------------------------------------------------------------- */
/* (section owned by src/policy/) */

/* ---- model: loading and generation ---------------------------------------------------------- */
/* (section owned by src/model/) */

/* ---- verdicts ------------------------------------------------------------------------------- */
/* (section owned by src/decode/) */

#ifdef __cplusplus
}
#endif
#endif /* LLAVAGUARD_H */
