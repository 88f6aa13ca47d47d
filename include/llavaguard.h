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

/* A safety policy: an ordered list of categories (id such as "O3", name, "should not" and "can"
 * bullets, a state) plus the fixed texts of one prompt generation ("v1.2", "v1.0" or
 * "v1.0-modelcard"). The compiler renders it byte-identically to the prompts the LlavaGuard models
 * were trained on. A policy is not thread-safe while it is being changed; once built, the const
 * calls (rendering, accessors) may be used from several threads at the same time.
 * The hand-written file format is described in docs/policy-format.md. */
typedef struct lg_policy lg_policy;

/* The states a category can be declared in. The released models were trained on the default and
 * non-violating forms; the sensitive form is defined by the LlavaGuard taxonomy code but untrained
 * (a policy holding one carries a warning). */
typedef enum lg_category_state {
    LG_CATEGORY_DEFAULT = 0,      /* "Should not:" / "Can:" lists */
    LG_CATEGORY_NONVIOLATING = 1, /* declared non-violating: any content of it is allowed */
    LG_CATEGORY_SENSITIVE = 2     /* declared sensitive: no content related to it is permitted */
} lg_category_state;

/* How lg_policy_render lays out the policy text. */
typedef enum lg_policy_render_mode {
    /* The text that goes next to the image (reference prompt_v1.2.txt): no image marker, no
     * leading or trailing whitespace, no trailing newline. Its SHA-256 identifies the policy. */
    LG_POLICY_RENDER_STRIPPED = 0,
    /* The builder's raw output as stored in the training data: the stripped text followed by
     * "\n<image>\n" (reference prompt_v1.2_json-v24_raw.txt). */
    LG_POLICY_RENDER_RAW = 1,
    /* The user turn the LLaVA-style models saw in training, before the chat template:
     * "<image>\n" followed by the stripped text (prompt_v1.2_user_turn_as_trained.txt). */
    LG_POLICY_RENDER_USER_TURN = 2
} lg_policy_render_mode;

/* Flags for lg_policy_to_json. */
#define LG_POLICY_JSON_DESCRIBE 1u /* add "sha256", "warnings" and each category's "option" */

/* Returns the static name of a state: "default", "non-violating" or "sensitive" (the spelling of
 * the policy file's "state" field); "unknown" for other values. Thread-safe. */
LG_API const char *lg_category_state_str(lg_category_state st);

/* Creates the built-in LlavaGuard O1–O9 policy of one prompt generation, every category in the
 * default state. `version` is "v1.2" (LlavaGuard v1.1, v1.2 and QwenGuard; NULL means this),
 * "v1.0" (LlavaGuard v1.0, the 2024 training code's text) or "v1.0-modelcard" (the v1.0 text as
 * printed in the 2024 model cards). Returns LG_E_ARG for another version, LG_E_NOMEM. The caller
 * frees *out with lg_policy_free. */
LG_API lg_status lg_policy_create_default(const char *version, lg_policy **out, lg_error *err);

/* Reads a policy file (JSON, docs/policy-format.md; at most 1 MiB). Returns LG_E_IO when the file
 * cannot be read and LG_E_FORMAT when it is not valid JSON or not a valid policy; the message then
 * names the file, the line and the field, e.g.
 * "policy.json:12: categories[2].name: expected a string". Valid but unusual content (categories
 * the released models were not trained on) loads with warnings (lg_policy_warning). */
LG_API lg_status lg_policy_load_file(const char *path, lg_policy **out, lg_error *err);

/* As lg_policy_load_file, from `size` bytes in memory. `name` stands for the file name in
 * messages (NULL: "<policy>"). */
LG_API lg_status lg_policy_load_memory(const void *data, size_t size, const char *name,
                                       lg_policy **out, lg_error *err);

/* Frees a policy. NULL is a no-op. */
LG_API void lg_policy_free(lg_policy *pol);

/* Returns the message of the last failed call on `pol` ("" if none). Owned by the policy. */
LG_API const char *lg_policy_errmsg(const lg_policy *pol);

/* Returns the prompt generation whose fixed texts the policy uses: "v1.2", "v1.0" or
 * "v1.0-modelcard". Static string. */
LG_API const char *lg_policy_version(const lg_policy *pol);

/* Declares the category with id `id` (exact, case-sensitive) to be in `state`. Returns LG_E_ARG
 * (message in the policy) for an unknown id or state, LG_E_NOMEM; on failure the policy is
 * unchanged. Changing a state re-renders the policy text, its hash and its warnings. */
LG_API lg_status lg_policy_set_state(lg_policy *pol, const char *id, lg_category_state state);

/* Declares every category of a comma-separated id list ("O3,O4", as the --allow and --sensitive
 * options take it; spaces around ids are ignored) to be in `state`. Returns LG_E_ARG for an empty
 * list, an empty item or an unknown id, LG_E_NOMEM; on failure the policy is unchanged. */
LG_API lg_status lg_policy_set_states(lg_policy *pol, const char *ids, lg_category_state state);

/* Renders the policy text in `mode` into a new NUL-terminated string (*text, freed with lg_free).
 * Returns LG_E_ARG for an unknown mode or NULL arguments, LG_E_NOMEM; the policy is const here so
 * that several threads may render at once, hence these failures are not recorded in it. */
LG_API lg_status lg_policy_render(const lg_policy *pol, lg_policy_render_mode mode, char **text);

/* Returns the stripped policy text (LG_POLICY_RENDER_STRIPPED), owned by the policy and valid
 * until the policy is next changed or freed. */
LG_API const char *lg_policy_text(const lg_policy *pol);

/* Writes the SHA-256 of the stripped policy text as 64 lowercase hex digits plus NUL into hex.
 * This hash identifies the policy in every verdict. Returns LG_E_ARG for NULL arguments. */
LG_API lg_status lg_policy_sha256(const lg_policy *pol, char hex[65]);

/* Serialises the policy as JSON into *json (lg_free). With flags 0 the result is a complete policy
 * file in the array form (every field spelled out) that lg_policy_load_* reads back to the same
 * policy text. LG_POLICY_JSON_DESCRIBE adds "sha256", "warnings" and per category "option": a
 * description for people and scripts, no longer a loadable file. Returns LG_E_ARG, LG_E_NOMEM. */
LG_API lg_status lg_policy_to_json(const lg_policy *pol, unsigned flags, char **json);

/* The categories, in prompt order. Index accessors return NULL (or LG_CATEGORY_DEFAULT) for an
 * index out of range; returned strings are owned by the policy and valid until it is changed. */
LG_API size_t lg_policy_n_categories(const lg_policy *pol);
/* Returns the index of the category with id `id`, or -1 when there is none. */
LG_API int lg_policy_category_index(const lg_policy *pol, const char *id);
/* The category's id, e.g. "O3". */
LG_API const char *lg_policy_category_id(const lg_policy *pol, size_t i);
/* The category's name, e.g. "Sexual Content". */
LG_API const char *lg_policy_category_name(const lg_policy *pol, size_t i);
LG_API lg_category_state lg_policy_category_state(const lg_policy *pol, size_t i);
/* The exact category string the model answers with, as listed in the prompt's JSON template:
 * "<id>: <name>", e.g. "O3: Sexual Content". Every category is an option, whatever its state. */
LG_API const char *lg_policy_category_option(const lg_policy *pol, size_t i);
/* The option for "no category applies": "NA: None applying". */
LG_API const char *lg_policy_na_option(const lg_policy *pol);
/* The rating options in the order the JSON template lists them: 0 "Unsafe", 1 "Safe"; NULL for
 * other indices. */
LG_API const char *lg_policy_rating_option(const lg_policy *pol, size_t i);

/* Warnings about valid but unusual content, recomputed whenever the policy changes: categories
 * beyond the built-in taxonomy or whose text differs from it, and categories declared sensitive
 * (the released models were not trained on either). Returned strings are owned by the policy. */
LG_API size_t lg_policy_n_warnings(const lg_policy *pol);
LG_API const char *lg_policy_warning(const lg_policy *pol, size_t i);

/* ---- model: loading and generation ---------------------------------------------------------- */
/* (section owned by src/model/) */

/* ---- verdicts ------------------------------------------------------------------------------- */
/* (section owned by src/decode/) */

#ifdef __cplusplus
}
#endif
#endif /* LLAVAGUARD_H */
