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
    LG_E_INTERNAL,    /* a bug in llavaguard */
    LG_E_BUSY,        /* not now: a full queue (LG_SUBMIT_NOWAIT) or a wait that timed out */
    LG_E_CANCELLED    /* the request was cancelled (lg_guard_cancel, lg_guard_free) */
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

/* Reads a whole file ("-": standard input) into a NUL-terminated buffer (*data, lg_free) of
 * *size bytes. LG_E_IO when it cannot be read, LG_E_LIMIT when it is larger than max_bytes (the
 * message names the file). For the command-line tools, which read images, prompts and lists. */
LG_API lg_status lg_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                              lg_error *err);

/* Writes the SHA-256 of `size` bytes as 64 lowercase hex digits plus NUL into hex. Thread-safe. */
LG_API void lg_sha256_hex(const void *data, size_t size, char hex[65]);

/* ---- images: decoding ----------------------------------------------------------------------- */
/* (section owned by src/image/) */

/* What to do with an alpha channel (or a tRNS / GIF transparent colour) when converting to RGB. */
typedef enum lg_alpha_mode {
    LG_ALPHA_DROP = 0, /* Pillow convert("RGB"): keep each pixel's stored colour (the reference) */
    LG_ALPHA_WHITE = 1 /* composite over white, as newer Hugging Face processors do */
} lg_alpha_mode;

typedef struct lg_image_options {
    uint64_t max_pixels;        /* refuse images with width*height above this, checked before any
                                   pixel memory is allocated (default 178956970, Pillow's
                                   decompression-bomb error threshold) */
    lg_alpha_mode alpha_mode;   /* default LG_ALPHA_DROP */
    int apply_exif_orientation; /* 0 (default, as the reference) or 1: rotate/flip by the EXIF
                                   orientation tag of JPEG, PNG and WebP files */
} lg_image_options;

/* A decoded image: 8-bit RGB, interleaved, row-major, no padding between rows. Immutable. */
typedef struct lg_image lg_image;

LG_API lg_image_options lg_image_options_default(void);

/* Decodes an image file. The format is detected from the bytes (JPEG, PNG, WebP, GIF first frame,
 * BMP). `path` "-" reads standard input. On failure returns LG_E_IO (cannot read), LG_E_FORMAT
 * (corrupt, truncated, empty, not an image), LG_E_UNSUPPORTED (a format or variant not handled)
 * or LG_E_LIMIT (too many pixels) and fills `err` with a message naming the file and the reason.
 * `opts` may be NULL for the defaults. */
LG_API lg_status lg_image_load_file(const char *path, const lg_image_options *opts, lg_image **out,
                                    lg_error *err);

/* Decodes an image from memory. `name` is used in error messages only (may be NULL). */
LG_API lg_status lg_image_load_memory(const void *data, size_t size, const char *name,
                                      const lg_image_options *opts, lg_image **out, lg_error *err);

/* Wraps a copy of height*width*3 RGB bytes as an image (format "raw"). */
LG_API lg_status lg_image_from_rgb(const uint8_t *rgb, int width, int height, lg_image **out,
                                   lg_error *err);

LG_API void lg_image_free(lg_image *img);
LG_API int lg_image_width(const lg_image *img);
LG_API int lg_image_height(const lg_image *img);
/* Returns the height*width*3 RGB bytes, owned by the image. */
LG_API const uint8_t *lg_image_rgb(const lg_image *img);
/* Returns the detected source format: "jpeg", "png", "webp", "gif", "bmp" (or "raw"). */
LG_API const char *lg_image_format(const lg_image *img);

/* ---- images: model preprocessing ------------------------------------------------------------ */
/* (section owned by src/image/) */

/* The image processor of one model folder (preprocessor_config.json + config.json), exactly as
 * transformers v4.45 runs it with Pillow: LlavaOnevisionImageProcessor (anyres_max_N),
 * LlavaNextImageProcessor (anyres) or CLIPImageProcessor (LLaVA-1.5). Immutable after creation;
 * may be shared between threads. */
typedef struct lg_preprocessor lg_preprocessor;

typedef struct lg_preprocessor_options {
    /* LLaVA-1.5 only. LLaVA's "pad" aspect mode (expand2square: paste the image centred on a
     * square canvas of int(image_mean * 255) before the CLIP processor; the LlavaGuard v1.0
     * pipeline). -1 (default): on when config.json says "image_aspect_ratio": "pad"; 0 off; 1 on.
     */
    int square_pad;
} lg_preprocessor_options;

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
    /* How the processor got there (0 where a step does not apply): */
    int best_height, best_width;       /* anyres: the chosen grid pinpoint */
    int resized_height, resized_width; /* anyres: the aspect-preserving resize; CLIP: the
                                          shortest-edge resize before the centre crop */
    /* Packing of the image features (anyres): image_tokens = tokens_per_crop +
     * feat_rows * (feat_cols + 1) (one newline per row); without tiles image_tokens =
     * tokens_per_crop. */
    int tokens_per_crop;        /* e.g. 729 (SigLIP "full") or 576 (CLIP "default") */
    int unpad_rows, unpad_cols; /* tile feature map after unpadding */
    int feat_rows, feat_cols;   /* after the anyres_max_N shrink (= unpadded if none) */
    /* Qwen2-VL: n_crops = the temporal frames (2), height x width = the smart_resize size,
     * grid_h x grid_w = the patch grid, `values` / `crops_u8` in the processor's flattened patch
     * order (grid_h*grid_w rows of channels x frames x patch x patch), image_tokens = the merged
     * patches. */
} lg_pixels;

LG_API lg_preprocessor_options lg_preprocessor_options_default(void);

/* Reads the image-processor settings of a model folder. LG_E_IO / LG_E_FORMAT /
 * LG_E_UNSUPPORTED (a processor type or setting this version does not reproduce exactly) with a
 * message in `err`. */
LG_API lg_status lg_preprocessor_open(const char *model_dir, lg_preprocessor **out, lg_error *err);
/* The same with options (`opts` may be NULL for the defaults). */
LG_API lg_status lg_preprocessor_open_with(const char *model_dir,
                                           const lg_preprocessor_options *opts,
                                           lg_preprocessor **out, lg_error *err);
LG_API void lg_preprocessor_free(lg_preprocessor *pp);
/* "llava-onevision", "llava-next", "llava" or "qwen2-vl". */
LG_API const char *lg_preprocessor_kind(const lg_preprocessor *pp);

/* The number of image tokens an image of this size needs, without preprocessing it. */
LG_API lg_status lg_preprocessor_image_tokens(const lg_preprocessor *pp, int height, int width,
                                              int64_t *out, lg_error *err);

/* Turns a decoded image into model-ready pixels. The caller frees `out` with lg_pixels_free. */
LG_API lg_status lg_preprocess(const lg_preprocessor *pp, const lg_image *img, lg_pixels **out,
                               lg_error *err);
LG_API void lg_pixels_free(lg_pixels *px);

/* Writes px->values as raw little-endian float32 (N*C*H*W values, crop-major CHW, no header)
 * to `path`, atomically: a failure leaves no partial file. */
LG_API lg_status lg_pixels_write_f32(const lg_pixels *px, const char *path, lg_error *err);

/* ---- text: tokenizer and chat templates ----------------------------------------------------- */
/* (section owned by src/text/) */

/* A Hugging Face tokenizer, driven entirely by a model folder's tokenizer.json: byte-level BPE
 * (Qwen2, GPT-2 style) and SentencePiece-style BPE (Llama/Vicuna: Prepend/Replace normalizer or
 * Metaspace, byte fallback). Matches the `tokenizers` library's encode and decode. Anything in the
 * file that this implementation does not handle is refused when opening, with a message naming
 * the field, rather than tokenized differently. See docs/tokenizer.md.
 *
 * A tokenizer keeps a cache of recently tokenized words and its last error message, so one handle
 * must not be used by two threads at the same time; open one handle per thread (or serialize). */
typedef struct lg_tokenizer lg_tokenizer;

/* Flags for lg_tokenizer_encode_ex. */
#define LG_ENCODE_ADD_SPECIAL                                                                      \
    1u /* wrap the ids with the tokens of the file's post_processor                                \
          ("single" template), e.g. Llama's leading <s>; the Qwen2                                 \
          files add nothing */
#define LG_ENCODE_SPLIT_SPECIAL                                                                    \
    2u /* special-token strings in the text (added tokens with                                     \
          "special": true) are tokenized as plain text instead of                                  \
          being recognised (HF split_special_tokens) */
/* Flags for lg_tokenizer_decode and lg_detokenizer_create. */
#define LG_DECODE_SKIP_SPECIAL 1u /* leave special tokens out of the text */

/* Opens a tokenizer. `path` is a model folder (its tokenizer.json is read) or a tokenizer.json
 * file. Errors: LG_E_IO (cannot read), LG_E_FORMAT (not JSON, or a required field is missing or
 * malformed: the message names the field), LG_E_UNSUPPORTED (a model/normalizer/pre-tokenizer/
 * decoder type or option that is not implemented; the message names it), LG_E_NOMEM. */
LG_API lg_status lg_tokenizer_open(const char *path, lg_tokenizer **out, lg_error *err);

/* Like lg_tokenizer_open, from the bytes of a tokenizer.json in memory. `name` is used in error
 * messages only (may be NULL). */
LG_API lg_status lg_tokenizer_open_memory(const void *json, size_t size, const char *name,
                                          lg_tokenizer **out, lg_error *err);

LG_API void lg_tokenizer_free(lg_tokenizer *tok);

/* The message of the last failed call on `tok` ("" if none). Valid until the next call. */
LG_API const char *lg_tokenizer_errmsg(const lg_tokenizer *tok);

/* Tokenizes `len` bytes of UTF-8 `text` (need not be NUL-terminated) into ids, exactly as the
 * `tokenizers` library does with add_special_tokens=False: added/special-token strings in the text
 * are recognised as their ids, nothing is added around the text. `*ids` (lg_free) receives `*n`
 * ids; an empty text gives *n = 0 and a valid (empty) allocation. LG_E_ARG when the text is not
 * valid UTF-8 (the message gives the byte offset). */
LG_API lg_status lg_tokenizer_encode(lg_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                                     size_t *n);

/* lg_tokenizer_encode with LG_ENCODE_* flags. */
LG_API lg_status lg_tokenizer_encode_ex(lg_tokenizer *tok, const char *text, size_t len,
                                        unsigned flags, int32_t **ids, size_t *n);

/* Turns ids back into UTF-8 text as the file's decoder does (`tokenizers` decode): byte-level
 * tokens become their bytes, SentencePiece "▁" becomes a space, <0xNN> pieces become bytes, the
 * leading space the Llama decoder strips is stripped. Ids without a token (e.g. embedding padding
 * rows beyond the vocabulary) are left out, as the reference does; negative ids are LG_E_ARG.
 * Invalid UTF-8 in the result is replaced by U+FFFD. `*text` (lg_free) is NUL-terminated; `len`
 * may be NULL. `flags`: LG_DECODE_*. */
LG_API lg_status lg_tokenizer_decode(lg_tokenizer *tok, const int32_t *ids, size_t n,
                                     unsigned flags, char **text, size_t *len);

/* The id of a token given as its exact string: an added/special token ("<|im_end|>", "<image>")
 * or a vocabulary entry as spelled in the file ("Ġthe", "▁the", "<0x0A>"). -1 when absent. */
LG_API int32_t lg_tokenizer_token_id(const lg_tokenizer *tok, const char *token);

/* One more than the largest id that has a token (151648 for the Qwen2 file with 5 added tokens).
 * Ids below it may still lack a token (gaps); see lg_tokenizer_token_bytes. */
LG_API int32_t lg_tokenizer_vocab_size(const lg_tokenizer *tok);

/* The exact bytes id `id` stands for in decoded text, with no context applied: byte-level tokens
 * decoded to raw bytes ("Ġthe" -> " the"; a token may be part of a UTF-8 character), SentencePiece
 * "▁" -> " " and <0xNN> -> that one byte, added/special tokens -> their content (as the
 * decoder renders it; unchanged for the usual "<|im_end|>"-style tokens). Sets *len and
 * returns a pointer owned by the tokenizer (not NUL-terminated), or NULL for an id without a
 * token. This is what a constrained decoder matches against. Thread-safe (read-only). */
LG_API const uint8_t *lg_tokenizer_token_bytes(const lg_tokenizer *tok, int32_t id, size_t *len);

/* The token string as spelled in tokenizer.json ("Ġthe", "<|im_end|>"), NUL-terminated and owned
 * by the tokenizer, or NULL for an id without a token. */
LG_API const char *lg_tokenizer_token_str(const lg_tokenizer *tok, int32_t id);

/* 1 if `id` is an added token marked "special": true (<|im_end|>, <image>, <s>), else 0. */
LG_API int lg_tokenizer_is_special(const lg_tokenizer *tok, int32_t id);

/* The ids the post-processor puts before (prefix) and after (suffix) a single sequence with
 * LG_ENCODE_ADD_SPECIAL: Llama's [1] (<s>) and [], nothing for Qwen2. Returns the count and sets
 * *ids to an array owned by the tokenizer (NULL when the count is 0). */
LG_API size_t lg_tokenizer_special_prefix(const lg_tokenizer *tok, const int32_t **ids);
LG_API size_t lg_tokenizer_special_suffix(const lg_tokenizer *tok, const int32_t **ids);

/* A streaming decoder: feed generated ids one at a time and get the text they complete. It never
 * returns part of a UTF-8 character: bytes of an unfinished character are held back until the
 * character is complete (or shown as U+FFFD once it cannot be). Its output concatenated equals
 * lg_tokenizer_decode of all the ids, except that an invalid byte sequence built from several
 * <0xNN> pieces may yield a different number of U+FFFD. The tokenizer must outlive it. */
typedef struct lg_detokenizer lg_detokenizer;

/* `flags`: LG_DECODE_*. */
LG_API lg_status lg_detokenizer_create(const lg_tokenizer *tok, unsigned flags,
                                       lg_detokenizer **out, lg_error *err);
LG_API void lg_detokenizer_free(lg_detokenizer *d);
/* Feeds one id. Sets *text and *len to the newly completed text (NUL-terminated, possibly empty),
 * owned by the detokenizer and valid until its next call. Ids without a token add nothing;
 * negative ids are LG_E_ARG. */
LG_API lg_status lg_detokenizer_push(lg_detokenizer *d, int32_t id, const char **text, size_t *len);
/* Ends the stream: returns what is still held back (an unfinished character becomes U+FFFD) and
 * resets the detokenizer for a new stream. */
LG_API lg_status lg_detokenizer_finish(lg_detokenizer *d, const char **text, size_t *len);
LG_API const char *lg_detokenizer_errmsg(const lg_detokenizer *d);

/* Chat templates: the exact prompt text each model family was trained with (see src/text/chat.c,
 * where every template is spelled out). Names:
 *   "qwen_1_5"           LlavaGuard v1.2 OneVision training template (LLaVA-NeXT conv_qwen_1_5,
 *                        with the "You are a helpful assistant." system turn) — the default for
 *                        llava_onevision models;
 *   "llava_onevision_hf" the Hugging Face llava-onevision chat template (no system turn);
 *   "vicuna_v1"          LLaVA-1.5 (LlavaGuard v1.0 7B/13B);
 *   "chatml_direct"      LLaVA-1.6-34B (LlavaGuard v1.1 34B);
 *   "qwen2_vl"           Qwen2-VL / Qwen2.5-VL (QwenGuard), default system turn,
 *                        <|vision_start|><|image_pad|>...<|vision_end|>, text or image first. */

/* Renders one user turn `user_text` (`user_len` bytes) and the assistant generation prompt with
 * template `template_name` (NULL: "qwen_1_5"). With `has_image`, the image placeholder is the
 * template's image token string (lg_chat_image_token) repeated `image_tokens` times (>= 1; 1
 * gives the unexpanded prompt). `image_first`: only "qwen2_vl" puts the image after the text when
 * 0; the LLaVA templates always put it first, as their trained/HF templates do. `*out` (lg_free)
 * is NUL-terminated; `out_len` may be NULL. LG_E_ARG for an unknown template or a bad count. */
LG_API lg_status lg_chat_render(const char *template_name, const char *user_text, size_t user_len,
                                int has_image, int64_t image_tokens, int image_first, char **out,
                                size_t *out_len, lg_error *err);

/* The default template name for a config.json "model_type" ("llava_onevision" -> "qwen_1_5",
 * "llava" -> "vicuna_v1", "llava_next" -> "chatml_direct", "qwen2_vl"/"qwen2_5_vl" -> "qwen2_vl"),
 * or NULL when there is none. Static string. */
LG_API const char *lg_chat_template_for_model(const char *model_type);

/* The image token string a template repeats ("<image>", "<|image_pad|>"), or NULL for an unknown
 * template. Static string. */
LG_API const char *lg_chat_image_token(const char *template_name);

/* The NULL-terminated list of template names. Static. */
LG_API const char *const *lg_chat_template_names(void);

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
 * "policy.json:12: categories[2].name: expected a string, got a number". Valid but unusual content
 * (categories the released models were not trained on) loads with warnings (lg_policy_warning). */
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

/* A loaded vision-language model (a Hugging Face folder: config.json, *.safetensors, ...). The
 * weights stay memory-mapped and are converted to float32 on the fly; the fast kernels repack
 * each weight matrix once into their 16-bit layout (see lg_model_params.prepack). Logically
 * immutable after lg_model_open (that packing is internally synchronised): any number of
 * sessions on any threads may share one model. */
typedef struct lg_model lg_model;

/* One conversation with a model: the KV cache, scratch buffers and the last logits. A session
 * is used by one thread at a time; distinct sessions may run concurrently. */
typedef struct lg_session lg_session;

/* Element type of the KV cache. */
typedef enum lg_kv_type {
    LG_KV_AUTO = -1, /* the default: LG_KV_I16 with the fast kernels, LG_KV_F32 with "ref" */
    LG_KV_F32 = 0,   /* exact (the reference) */
    LG_KV_BF16 = 1,  /* half the memory; moves the fixtures' logits by up to 1.6e-2 */
    LG_KV_F16 = 2,   /* half the memory; up to 3.1e-3 */
    LG_KV_I16 = 3    /* int16 with one float scale per head row (head_dim + 2 elements): half the
                        memory, logits within 1.7e-4 of float32 on the fixtures */
} lg_kv_type;

/* How the fast kernels multiply float32 activations by the 16-bit weights in the large
 * products (vision tower, projector, prefill) and the many-query attention. Decoding one token
 * is float32 either way; ignored with kernels "ref". Measured errors: docs/kernels.md. */
typedef enum lg_precision {
    LG_PRECISION_ACCURATE = 0, /* default: every activation split into two bf16 halves
                                  (hi + lo, ~16 bits): logits within ~1e-4 of the float32
                                  reference, the products take about twice as long */
    LG_PRECISION_BF16 = 1      /* activations rounded to bf16 (8 bits): the fastest; logits
                                  off by ~1e-2..1e-1, greedy output may differ */
} lg_precision;

typedef struct lg_model_params {
    int n_threads;       /* compute threads per session; <= 0 (default): one per online core */
    const char *kernels; /* "auto" (default; the fastest kernels for this CPU) or "ref" (the plain
                            float32 reference loops: --exact). Copied by lg_model_open. */
    lg_kv_type kv_type;  /* default LG_KV_AUTO (int16 + scales; float32 with kernels "ref") */
    int64_t max_context; /* tokens a session may hold; 0 (default): the model's own limit */
    int prepack;         /* let the fast kernels repack the weight matrices once into their
                            layout (a 16-bit copy: faster products; the mapped file pages of a
                            packed weight are released, so memory stays ~1.1x the checkpoint):
                            -1 (default) each weight on its first use (open takes milliseconds,
                            the first image/prompt pays), 1 all of them during lg_model_open,
                            0 never. Ignored with kernels "ref". */
    lg_precision precision; /* default LG_PRECISION_ACCURATE */
} lg_model_params;

/* Returns the default parameters (see the fields). Thread-safe. */
LG_API lg_model_params lg_model_params_default(void);

/* Opens the model folder `dir`: reads config.json (and generation_config.json when present),
 * maps every *.safetensors file (one file, or the shards listed by model.safetensors.index.json),
 * validates the headers and checks that every tensor the architecture needs is present with the
 * expected shape. `params` may be NULL for the defaults. Nothing is copied but small vectors
 * (norm scales, biases), so a warm open takes milliseconds (weights are packed on first use by
 * default; prepack 1 packs them here instead, ~0.5 s per GB).
 * Failures: LG_E_IO (missing config.json or weights, unreadable file), LG_E_FORMAT (bad JSON,
 * malformed or truncated safetensors, missing tensor, wrong shape), LG_E_UNSUPPORTED (unknown
 * model_type or option), LG_E_ARG (bad params), LG_E_NOMEM; `err` names the file and the cause.
 * On success the caller owns *out and releases it with lg_model_free after every session using it
 * has been freed. Thread-safe (opens share nothing). */
LG_API lg_status lg_model_open(const char *dir, const lg_model_params *params, lg_model **out,
                               lg_error *err);

/* Unmaps and frees a model. NULL is a no-op. No session of it may be alive. */
LG_API void lg_model_free(lg_model *m);

/* A model is immutable after opening, so no call on it records an error: returns "" (kept for
 * the uniform lg_X_errmsg convention). */
LG_API const char *lg_model_errmsg(const lg_model *m);

/* Accessors. All are thread-safe; strings are owned by the model. */
LG_API const char *lg_model_type(const lg_model *m); /* config model_type: "llava_onevision" */
LG_API int64_t lg_model_n_vocab(const lg_model *m);  /* embedding rows = logits per position
                                                        (may exceed the tokenizer's size) */
LG_API int lg_model_hidden_size(const lg_model *m);  /* floats per image-feature row */
LG_API int32_t lg_model_image_token_id(const lg_model *m);
LG_API lg_kv_type lg_model_kv_type(const lg_model *m); /* its sessions' cache (never AUTO) */
/* Sets *ids to the end-of-sequence ids (generation_config.json's eos_token_id, else the
 * config's) and returns how many there are. The array is owned by the model. */
LG_API size_t lg_model_eos_ids(const lg_model *m, const int32_t **ids);
LG_API int64_t lg_model_context_limit(const lg_model *m); /* tokens a session may hold */
/* Number of <image> tokens the model packs for an image of this original size (the rows
 * lg_session_encode_image returns), or -1 when the size cannot be packed. */
LG_API int64_t lg_model_image_tokens(const lg_model *m, int orig_height, int orig_width);

/* Creates a session over `model` (which must outlive it). The KV cache grows on demand up to the
 * context limit. Failures: LG_E_NOMEM, LG_E_ARG (NULL model). Thread-safe. */
LG_API lg_status lg_session_create(const lg_model *model, lg_session **out, lg_error *err);
/* Frees a session. NULL is a no-op. */
LG_API void lg_session_free(lg_session *s);
/* The message of the session's last failed call ("" if none). Owned by the session, valid until
 * its next call. */
LG_API const char *lg_session_errmsg(const lg_session *s);

/* Runs the vision tower, projector and feature packing on the preprocessed crops of one image
 * and returns the packed image features: *n_rows rows of lg_model_hidden_size floats, in the
 * order they replace the <image> tokens of the prompt (the base crop first). The caller frees
 * *features with lg_free. Does not touch the KV cache.
 * Failures: LG_E_ARG (crops of the wrong size or count for this model, or px->image_tokens set
 * and different from the packed row count), LG_E_NOMEM. */
LG_API lg_status lg_session_encode_image(lg_session *s, const lg_pixels *px, float **features,
                                         int64_t *n_rows);

/* Where the session's last lg_session_encode_image spent its time (wall-clock seconds, for
 * benchmarks and profiling): the vision tower and the projector summed over every crop, then
 * the packing of the projected crops into the image-token rows. */
typedef struct lg_encode_timings {
    double vision_s;    /* vision tower, all crops */
    double projector_s; /* mm projector (linear_1, activation, linear_2), all crops */
    double packing_s;   /* anyres packing: tiles, unpadding, downsampling, newline rows */
    int64_t crops;      /* crops encoded (base image first) */
    int64_t rows;       /* packed rows = image tokens */
} lg_encode_timings;

/* Copies the timings of the session's last lg_session_encode_image into *out. LG_E_ARG (message
 * in the session) when no image has been encoded yet or the last encode failed. */
LG_API lg_status lg_session_last_encode_timings(lg_session *s, lg_encode_timings *out);

/* Appends n tokens to the session (positions n_past .. n_past+n-1) and runs the decoder.
 * Positions whose id is the image token take their input embedding from `image_features`
 * (n_feature_rows rows of lg_model_hidden_size floats, in order; there must be exactly one row
 * per image token in `ids`); `image_features` may be NULL when `ids` has no image token.
 * *logits receives the logits of the last position (lg_model_n_vocab floats), or of all n
 * positions (n x n_vocab, row-major) when all_logits is non-zero; the array is owned by the
 * session and valid until its next eval, generate, truncate or free.
 * Failures: LG_E_ARG (n == 0, an id outside [0, n_vocab), an image-row count mismatch),
 * LG_E_LIMIT (the context limit would be exceeded; nothing is appended), LG_E_NOMEM. On failure
 * the session is unchanged. */
LG_API lg_status lg_session_eval(lg_session *s, const int32_t *ids, size_t n,
                                 const float *image_features, int64_t n_feature_rows,
                                 int all_logits, const float **logits);

/* One piece of work for lg_session_eval_batch. */
typedef struct lg_eval_item {
    lg_session *session;
    const int32_t *ids; /* 1..512 tokens (longer prompts: lg_session_eval) */
    size_t n;
    int all_logits;
    /* results */
    lg_status status;    /* this item's outcome (message in its session) */
    const float *logits; /* last row (or all n rows) of logits, owned by the first item's
                            session: valid until that session's next eval */
} lg_eval_item;

/* lg_session_eval (without image rows) of several items in one decoder pass: one matrix product
 * per weight over every item's rows, attention per item over its own session's cache, on the
 * first item's session's threads. Each item gets exactly the numbers lg_session_eval gives it
 * alone; items naming the same session run in order. An invalid item fails alone (its status);
 * returns LG_E_NOMEM when nothing could run, else LG_OK. The sessions must share a model and
 * none may be in use elsewhere meanwhile. */
LG_API lg_status lg_session_eval_batch(lg_eval_item *items, size_t n);

/* Tokens currently in the session's KV cache. */
LG_API int64_t lg_session_n_past(const lg_session *s);

/* Rolls the KV cache back to its first n tokens (0 <= n <= n_past), so that several
 * continuations can be scored from one prefix. The last logits are discarded. LG_E_ARG when n is
 * out of range. */
LG_API lg_status lg_session_truncate(lg_session *s, int64_t n);

/* How the next token is chosen. Sampling applies, in transformers' order: temperature, top-k
 * (ties with the k-th value kept), top-p (nucleus; at least one token kept), then draws from the
 * softmax with the seeded random source, so a seed reproduces a run. */
typedef struct lg_sampler_params {
    int greedy;        /* non-zero (default): take the largest logit (first on ties) */
    float temperature; /* > 0; default 1 */
    int top_k;         /* 0 disables; default 50 (transformers' default) */
    float top_p;       /* in (0, 1]; 1 disables (default) */
    uint64_t seed;     /* default 0 */
} lg_sampler_params;

/* Returns greedy decoding with the sampling fields at transformers' defaults. Thread-safe. */
LG_API lg_sampler_params lg_sampler_params_default(void);

/* Picks one id from `n` logits with `p`. *rng_state is the random state: set it to p->seed once
 * and pass it back on every call of one generation. LG_E_ARG for bad parameters, LG_E_NOMEM.
 * Thread-safe (no hidden state). */
LG_API lg_status lg_sample(const float *logits, int64_t n, const lg_sampler_params *p,
                           uint64_t *rng_state, int32_t *id, lg_error *err);

typedef struct lg_generate_params {
    int max_new_tokens;        /* default 256 */
    lg_sampler_params sampler; /* default greedy */
    const int32_t *stop_ids;   /* ids that end generation; NULL (default): the model's eos ids */
    size_t n_stop_ids;
    /* Called after each generated id; return non-zero to stop. May be NULL. */
    int (*on_token)(void *user, int32_t id);
    void *user;
} lg_generate_params;

/* Returns the default generation parameters. Thread-safe. */
LG_API lg_generate_params lg_generate_params_default(void);

/* Generates up to max_new_tokens ids. When n > 0 the prompt ids (with image rows, as in
 * lg_session_eval) are evaluated first; with n == 0 generation continues from the logits of the
 * session's last eval (LG_E_ARG if there are none). The output includes the stop id that ended
 * generation, if any. Every generated id except the last is appended to the KV cache (as in
 * transformers); to continue the conversation, pass the last id as the first of the next eval.
 * On success *out_ids (lg_free) holds *n_out ids. Failures: those of lg_session_eval; reaching
 * the context limit ends generation early without an error. */
LG_API lg_status lg_session_generate(lg_session *s, const int32_t *ids, size_t n,
                                     const float *image_features, int64_t n_feature_rows,
                                     const lg_generate_params *gp, int32_t **out_ids,
                                     size_t *n_out);

/* ---- machine limits (for benchmarks) -------------------------------------------------------- */
/* (section owned by src/kernels/) */

/* This machine's ceilings, measured in place over n_threads threads (<= 0: one per online
 * core): the instruction peak of the best matrix unit (a register-tile loop of AMX tdpbf16ps,
 * else AVX512-BF16 vdpbf16ps, else AVX-512 f32 FMA: the hardware's figure, not our GEMM's), the
 * f32 FMA peak, and the all-core memory read bandwidth (several accumulators per thread, a
 * buffer far larger than the caches). Takes about a second. */
typedef struct lg_machine_limits {
    double gemm_gflops;       /* best matrix unit, GFLOP/s */
    const char *gemm_unit;    /* "amx-bf16", "avx512-bf16", "avx512-fma" or "none" */
    double fma_gflops;        /* AVX-512 f32 FMA, GFLOP/s (0 without AVX-512) */
    double bandwidth_gbps;    /* memory read bandwidth, GB/s */
    int n_threads;            /* threads measured */
    const char *cpu;          /* processor brand string */
    const char *kernels;      /* the kernel table "auto" picks on this CPU */
    const char *kernels_note; /* "" or why "auto" passed over a faster table: every table is
                                 checked once against the reference kernels before use */
} lg_machine_limits;

/* Fills *out (strings are static). LG_E_NOMEM when the buffers cannot be allocated. */
LG_API lg_status lg_machine_limits_measure(int n_threads, lg_machine_limits *out, lg_error *err);

/* ---- verdicts ------------------------------------------------------------------------------- */
/* (section owned by src/decode/ and src/api/) */

/* A guard: everything needed to judge images with one model folder — the model, its tokenizer,
 * its image processor, one session (KV cache) for lg_guard_assess, and the batch engine
 * (lg_guard_submit and friends, below), which serves any number of threads with up to
 * max_batch requests in flight. lg_guard_assess itself is for one thread at a time; the engine
 * calls are thread-safe. Which parts may be shared between threads (docs/engine.md):
 * lg_model (read-only), lg_preprocessor (immutable) and a built lg_policy (const calls) may;
 * an lg_session and an lg_tokenizer handle may not (the guard serialises its tokenizer). */
typedef struct lg_guard lg_guard;

typedef struct lg_guard_params {
    lg_model_params model;
    const char *chat_template; /* NULL (default): the model family's training template
                                  (lg_chat_template_for_model) */
    /* The batch engine (lg_guard_submit and friends; lg_guard_assess does not use it): */
    int max_batch;     /* sequences in flight at once, their decoder steps batched into one
                          pass (default 8; 1..64) */
    int64_t kv_budget; /* bytes of KV cache the sequences in flight may hold together; a request
                          waits until its share fits, and one that can never fit fails with
                          LG_E_LIMIT. 0 (default): max_batch sequences of the longest prompt the
                          context allows, capped at a quarter of physical memory */
    int64_t features_cache_bytes; /* packed image features kept (LRU) so that the same image
                                     skips the vision tower next time; 0 (default): off */
    int max_queue; /* submitted requests waiting for a slot before lg_guard_submit blocks (or
                      fails with LG_E_BUSY under LG_SUBMIT_NOWAIT); 0 (default): 1024 */
    lg_preprocessor_options preprocess; /* the image processor's options (default:
                                           lg_preprocessor_options_default) */
} lg_guard_params;

/* When the model writes a rationale after the rating and category. */
typedef enum lg_rationale_mode {
    LG_RATIONALE_ALWAYS = 0, /* always (the trained answer form) */
    LG_RATIONALE_NEVER = 1,  /* stop after the category: the fast mode for bulk annotation */
    LG_RATIONALE_UNSAFE = 2  /* only for Unsafe verdicts */
} lg_rationale_mode;

typedef struct lg_assess_params {
    lg_rationale_mode rationale; /* default LG_RATIONALE_ALWAYS */
    float temperature;           /* <= 0 (default): greedy, reproducible. The reference
                                    settings are temperature 0.2, top_p 0.95, top_k 50. */
    int top_k;                   /* 0: off */
    float top_p;                 /* 1: off */
    uint64_t seed;
    int max_rationale_tokens; /* default 512; the rationale is closed (and marked truncated)
                                 when reached */
    int options_one_by_one;   /* 0 (default): every category option is scored in one batched
                                 model pass; 1: one model call per option, as before that pass
                                 existed (the same numbers, slower: for benchmarks) */
} lg_assess_params;

/* One verdict. Every string is owned by the verdict (lg_verdict_free). */
typedef struct lg_verdict {
    const char *rating;    /* "Safe" or "Unsafe" */
    int unsafe;            /* 1 for "Unsafe" */
    const char *category;  /* the chosen option, e.g. "O3: Sexual Content" or "NA: None applying" */
    const char *rationale; /* unescaped UTF-8; NULL when not generated */
    int rationale_truncated;
    /* P(Unsafe): the full token-sequence probability of "Unsafe" at the rating position,
     * normalised over the two rating options. */
    double p_unsafe;
    /* The probability of every category option at the category position (full token-sequence
     * probabilities normalised over the options), conditioned on the emitted rating. */
    size_t n_categories;
    const char *const *category_options;
    const double *category_probs;
    const char *answer; /* the answer as the model wrote it: valid JSON */
    char policy_sha256[65];
    const char *model_type;
    int64_t prompt_tokens, image_tokens, answer_tokens;
    struct {
        double preprocess, vision, prefill, verdict, total; /* seconds */
    } timings;
} lg_verdict;

/* The default parameters (greedy, rationale always, 512 rationale tokens). Thread-safe. */
LG_API lg_assess_params lg_assess_params_default(void);
LG_API lg_guard_params lg_guard_params_default(void);

/* Opens a model folder for judging: the model (lg_model_open), tokenizer.json, the image
 * processor, and a session. Failures as lg_model_open, lg_tokenizer_open and
 * lg_preprocessor_open; `err` says which part failed. The caller frees *out with lg_guard_free. */
LG_API lg_status lg_guard_open(const char *model_dir, const lg_guard_params *params, lg_guard **out,
                               lg_error *err);
LG_API void lg_guard_free(lg_guard *g);
/* The message of the guard's last failed call ("" if none), owned by the guard. */
LG_API const char *lg_guard_errmsg(const lg_guard *g);
/* The guard's parts, owned by it. */
LG_API const lg_model *lg_guard_model(const lg_guard *g);
LG_API lg_tokenizer *lg_guard_tokenizer(lg_guard *g);
LG_API const char *lg_guard_chat_template(const lg_guard *g);
/* The policy generation the model was trained with: "v1.0" for LLaVA-1.5 models (LlavaGuard
 * v1.0), "v1.2" otherwise. Static string. */
LG_API const char *lg_guard_default_policy_version(const lg_guard *g);

/* Judges one decoded image against `policy`. The answer is decoded under the verdict schema, so
 * it is valid JSON with a rating among Safe/Unsafe and a category among the policy's options,
 * whatever the weights. Failures: LG_E_LIMIT (the prompt does not fit the context), the errors of
 * preprocessing and of the model (message in the guard), LG_E_NOMEM. The caller frees *out with
 * lg_verdict_free. */
LG_API lg_status lg_guard_assess(lg_guard *g, const lg_image *img, const lg_policy *policy,
                                 const lg_assess_params *params, lg_verdict **out);
LG_API void lg_verdict_free(lg_verdict *v);

/* ---- many verdicts: the batch engine ----------------------------------------------------------
 */
/* (section owned by src/api/)
 *
 * One guard serves any number of requests from any number of threads: lg_guard_submit,
 * lg_guard_wait, lg_guard_wait_for, lg_guard_cancel, lg_guard_assess_many and
 * lg_guard_stats_get are thread-safe (unlike lg_guard_assess, which uses the guard's own session
 * and is for one thread at a time). Inside, up to max_batch requests are in flight; each has its
 * own KV cache, and the decoder steps of all of them run as one batched pass (one matrix product
 * over all rows, attention per sequence over its own cache), long prefills in chunks between the
 * other sequences' steps. Batching never changes an answer: every verdict equals the one
 * lg_guard_assess gives for the same image, policy and parameters. Engine threads start on the
 * first submit. */

typedef uint64_t lg_ticket;
typedef struct lg_result lg_result;

/* One image to judge against one or more policies. Everything is copied by lg_guard_submit except
 * `image` (a decoded image is borrowed: it must stay valid until the request is done). */
typedef struct lg_request {
    /* The image: exactly one of these three. */
    const lg_image *image;   /* decoded (borrowed) */
    const void *image_bytes; /* an encoded image file in memory ... */
    size_t image_size;       /* ... of this many bytes */
    const char *image_path;  /* a file to read and decode ("-" is not allowed here) */
    const char *name;        /* names the image in messages (NULL: the path, else "image") */
    const lg_image_options *image_options; /* decoding of bytes/path (NULL: the defaults) */
    /* The policies: each gets its own verdict. The vision tower runs once and the KV cache of the
     * prompt prefix they share is computed once. Rendered at submit, so the caller may free them
     * when lg_guard_submit returns. 0 policies: the model's default policy
     * (lg_guard_default_policy_version). At most 64. */
    const lg_policy *const *policies;
    size_t n_policies;
    const lg_assess_params *params; /* NULL: lg_assess_params_default() */
    /* Completion: when on_done is set it is called once, on an engine thread, with the result,
     * which it then owns (lg_result_free); it should return quickly and must not wait on the
     * guard. Otherwise collect the result with lg_guard_wait / lg_guard_wait_for. */
    void (*on_done)(void *user, lg_result *result);
    void *user;
    /* Optional streaming: called on an engine thread with each new piece of policy number
     * `policy`'s answer (the JSON the model writes: rating, category, then the rationale token
     * by token), in order; the pieces of one policy concatenated equal its verdict's `answer`.
     * Must return quickly. */
    void (*on_text)(void *user, size_t policy, const char *text, size_t len);
} lg_request;

/* What a request produced. Every pointer is owned by the result (lg_result_free). */
struct lg_result {
    lg_ticket ticket;
    void *user;            /* lg_request.user */
    lg_status status;      /* LG_OK when every policy got a verdict, else the first failure */
    const char *error;     /* its message ("" when LG_OK) */
    const char *name;      /* the image's name */
    int width, height;     /* the decoded image (0 when it was not decoded) */
    char image_sha256[65]; /* SHA-256 of the encoded bytes (bytes, path) or of the RGB (image);
                              "" when the image could not be read */
    int features_cached;   /* 1 when the image features came from the feature cache */
    size_t n_verdicts;     /* one per policy (1 with the default policy) */
    lg_verdict *const *verdicts; /* per policy; NULL where that policy failed */
    const lg_status *statuses;   /* per policy */
    const char *const *errors;   /* per policy ("" when LG_OK) */
    struct {
        double queued; /* submit -> admitted into the batch */
        double decode; /* reading and decoding the image file */
        double total;  /* submit -> done */
    } timings;         /* seconds */
};

#define LG_SUBMIT_NOWAIT 1u /* fail with LG_E_BUSY instead of blocking while the queue is full */

/* Queues a request and returns its ticket. Blocks while max_queue requests are waiting (unless
 * LG_SUBMIT_NOWAIT). Fails at once with LG_E_ARG (no image or several, too many policies, bad
 * params), LG_E_BUSY, LG_E_NOMEM (message in `err`); a bad image is not a submit failure: its
 * request completes with the error. Thread-safe. */
LG_API lg_status lg_guard_submit(lg_guard *g, const lg_request *req, unsigned flags,
                                 lg_ticket *ticket, lg_error *err);
/* Waits for a request submitted without on_done and hands over its result (*out, lg_result_free;
 * the request's status is in (*out)->status). Returns LG_E_ARG for an unknown ticket, one with a
 * callback, or one already collected. Thread-safe. */
LG_API lg_status lg_guard_wait(lg_guard *g, lg_ticket ticket, lg_result **out);
/* As lg_guard_wait, giving up after timeout_s seconds (0: just poll) with LG_E_BUSY; the request
 * stays collectable. */
LG_API lg_status lg_guard_wait_for(lg_guard *g, lg_ticket ticket, double timeout_s,
                                   lg_result **out);
/* Cancels a request: one still queued never runs, one in flight stops at its next step. Its
 * result (status LG_E_CANCELLED) is discarded, or passed to on_done. LG_E_ARG when the ticket is
 * unknown or already done and collected. Thread-safe. */
LG_API lg_status lg_guard_cancel(lg_guard *g, lg_ticket ticket);
/* Submits n requests (on_done is ignored), waits for all and stores their results in
 * results[0..n-1] in order. Returns LG_OK when every request was submitted (check each result's
 * status), else the submit failure (results already stored are freed and set to NULL). */
LG_API lg_status lg_guard_assess_many(lg_guard *g, const lg_request *reqs, size_t n,
                                      lg_result **results, lg_error *err);
LG_API void lg_result_free(lg_result *r);

/* Counters of the batch engine, for monitoring (a consistent snapshot). */
typedef struct lg_guard_stats {
    uint64_t submitted, completed, failed, cancelled; /* requests */
    int64_t queued;                                   /* waiting for a slot */
    int64_t in_flight;                                /* admitted, not done */
    uint64_t steps;                                   /* batched decoder passes */
    uint64_t step_rows;                               /* token rows over all passes */
    uint64_t step_seqs; /* sequences over all passes (step_seqs / steps = mean batch) */
    int64_t kv_bytes;   /* KV cache held by the requests in flight */
    int64_t kv_budget;  /* bytes */
    uint64_t cache_hits, cache_misses; /* image-feature cache */
    int64_t cache_bytes;               /* held by the feature cache */
} lg_guard_stats;
LG_API void lg_guard_stats_get(lg_guard *g, lg_guard_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* LLAVAGUARD_H */
