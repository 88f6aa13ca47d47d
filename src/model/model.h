/*
 * model.h — internal interface of the model layer (src/model): the Hugging Face config, the
 * safetensors reader, the weight table, and the forward passes (vision tower, projector, feature
 * packing, decoder), the KV cache and the sampler. The public entry points are lg_model_* and
 * lg_session_* in include/llavaguard.h; tests include this header to reach the pieces.
 *
 * The layer holds several architectures as combinations of shared blocks: a vision-tower kind
 * (SigLIP, CLIP, Qwen2.5-VL's), a decoder kind (Qwen2, Llama; 1-D or multimodal RoPE) and a
 * packing kind (one crop, anyres, anyres_max, merged), chosen per model_type by config.c:
 * "llava_onevision" (SigLIP + Qwen2 + anyres_max), "llava" (CLIP + Llama, one crop),
 * "llava_next" (CLIP + Llama + anyres), "qwen2_5_vl" (its tower + Qwen2 with M-RoPE).
 */
#ifndef LG_MODEL_H
#define LG_MODEL_H

#include "core/core.h"
#include "kernels/kernels.h"
#include "model/sample.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- safetensors (safetensors.c) ---------------------------------------------------------- */

#define ST_MAX_DIMS 8

/* One tensor of a safetensors file, validated: `data` points into the mapped file and holds
 * exactly `nbytes` = numel(shape) * size(dtype) bytes. */
typedef struct st_tensor {
    char *name;
    char dtype[12]; /* as written in the header: "BF16", "F16", "F32", "I64", ... */
    bool usable;    /* dtype is one the kernels read (BF16, F16, F32) */
    lg_dtype dt;    /* valid when usable */
    int n_dims;     /* 0..ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const uint8_t *data; /* inside the file's mapping; NULL when nbytes == 0 */
    size_t nbytes;
    int file; /* index into st_set.files */
} st_tensor;

/* All tensors of a model folder: one file or the shards named by model.safetensors.index.json.
 * Tensors are sorted by name for st_find. Read-only after st_open_dir. */
typedef struct st_set {
    lg_mmap *files;
    char **paths;
    int n_files;
    st_tensor *tensors;
    size_t n_tensors;
} st_set;

/* Maps and validates the weights of a model folder (model.safetensors, or the shards listed in
 * model.safetensors.index.json). LG_E_IO when no weights file exists or cannot be mapped,
 * LG_E_FORMAT for a malformed header (message names the file and the problem). On failure *out
 * is left empty (safe to st_close). */
lg_status st_open_dir(const char *dir, st_set *out, lg_error *err);
/* Maps one safetensors file and adds its tensors to `set` (used by st_open_dir and tests). */
lg_status st_add_file(st_set *set, const char *path, lg_error *err);
/* Sorts the tensor table and rejects duplicate names across files. */
lg_status st_finish(st_set *set, lg_error *err);
/* Finds a tensor by exact name, or NULL. */
const st_tensor *st_find(const st_set *set, const char *name);
void st_close(st_set *set);

/* ---- configuration (config.c) -------------------------------------------------------------- */

typedef enum mdl_act {
    MDL_ACT_GELU_TANH = 0, /* gelu_pytorch_tanh (SigLIP) */
    MDL_ACT_GELU_ERF,      /* gelu (projector) */
    MDL_ACT_QUICK_GELU,    /* quick_gelu (CLIP) */
    MDL_ACT_SILU           /* silu (decoder MLP gate) */
} mdl_act;

typedef enum vit_kind {
    VIT_SIGLIP = 0,
    VIT_CLIP,
    VIT_QWEN25 /* Qwen2.5-VL: RMSNorm, SwiGLU, 2-D rotary, window attention, 2x2 merger */
} vit_kind;
typedef enum dec_kind { DEC_QWEN2 = 0, DEC_LLAMA } dec_kind;
typedef enum pack_kind {
    PACK_SINGLE = 0, /* one crop, its rows as they are (LLaVA-1.5) */
    PACK_ANYRES,     /* base crop + unpadded tile map + newline per row (LLaVA-1.6) */
    PACK_ANYRES_MAX, /* as PACK_ANYRES plus bilinear downsampling above anyres_max (OneVision) */
    PACK_MERGED      /* the tower's merged rows as they are, one image per pass (Qwen2.5-VL) */
} pack_kind;

#define MDL_MAX_VIT_LAYERS 256

typedef struct vit_config {
    vit_kind kind;
    int n_embd, n_ff, n_layer, n_head, head_dim;
    int image_size, patch_size, n_channel;
    int grid;  /* patches per side: image_size / patch_size */
    int n_pos; /* encoder sequence length: grid*grid (+1 with a class token) */
    float eps;
    mdl_act act;
    bool has_cls;    /* CLIP: class embedding at row 0 */
    bool pre_norm;   /* CLIP: pre_layrnorm before the encoder */
    bool patch_bias; /* SigLIP's patch conv has a bias, CLIP's has not */
    int n_run;       /* encoder layers to run: hidden_states[n_run] is the feature layer */
    bool drop_cls;   /* select strategy "default": drop row 0 */
    int n_out_rows;  /* rows per crop handed to the projector */
    /* VIT_QWEN25 */
    int temporal, merge, window; /* temporal_patch_size, spatial_merge_size, window_size (px) */
    bool full_attn[MDL_MAX_VIT_LAYERS]; /* fullatt_block_indexes */
    int64_t min_pixels, max_pixels;     /* the processor's smart_resize bounds */
} vit_config;

typedef struct dec_config {
    dec_kind kind;
    int n_embd, n_ff, n_layer, n_head, n_head_kv, head_dim;
    int64_t n_vocab; /* embedding rows (the logits per position) */
    float eps;
    double rope_theta;
    bool qkv_bias; /* Qwen2: q/k/v projections have biases */
    bool o_bias;
    bool tied;         /* LM head = token embedding */
    int64_t n_ctx_max; /* the context limit: max_position_embeddings (at least dec_table's
                          min_ctx) */
    int mrope[3]; /* multimodal RoPE sections (t, h, w) over head_dim/2 pairs; all 0: 1-D RoPE */
} dec_config;

#define MDL_MAX_PINPOINTS 128
#define MDL_MAX_EOS 16

typedef struct mdl_config {
    char model_type[40];
    vit_config vit;
    dec_config dec;
    mdl_act proj_act;
    bool proj_bias;
    pack_kind pack;
    int anyres_max;  /* N of "anyres_max_N" */
    int n_pinpoints; /* (height, width) pairs */
    int pinpoints[MDL_MAX_PINPOINTS][2];
    bool has_newline;
    int32_t image_token;
    int n_eos;
    int32_t eos[MDL_MAX_EOS];
} mdl_config;

/* Reads config.json (and generation_config.json when present) of a model folder. LG_E_IO when
 * config.json is missing, LG_E_FORMAT for bad JSON or bad values, LG_E_UNSUPPORTED for model
 * types and options this version does not implement. */
lg_status mdl_config_load(const char *dir, mdl_config *cfg, lg_error *err);

/* ---- weights (weights.c) ------------------------------------------------------------------- */

typedef struct vit_layer {
    kern_weight q, k, v, o, fc1, fc2; /* [out, in] views of the checkpoint */
    kern_weight up;                   /* SwiGLU (Qwen2.5-VL): fc1 = gate, fc2 = down */
    float *up_b;
    float *q_b, *k_b, *v_b, *o_b, *fc1_b, *fc2_b;
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b; /* (n_embd) */
} vit_layer;

typedef struct vit_weights {
    kern_weight patch; /* (n_embd, n_channel*patch*patch): the conv kernel as a matrix */
    float *patch_b;    /* (n_embd) or NULL */
    float *pos;        /* (n_pos, n_embd) position embedding, float32 copy (small) */
    float *cls;        /* (n_embd) CLIP class embedding, or NULL */
    float *pre_g, *pre_b;
    float *merge_g;    /* Qwen2.5-VL merger's ln_q (RMSNorm); its MLP is the projector */
    vit_layer *layers; /* n_layer entries */
} vit_weights;

typedef struct proj_weights {
    kern_weight l1, l2; /* (n_text, n_vision), (n_text, n_text) */
    float *b1, *b2;     /* may be NULL */
} proj_weights;

typedef struct dec_layer {
    kern_weight q, k, v, o, gate, up, down;
    float *q_b, *k_b, *v_b, *o_b; /* NULL when absent */
    float *ln1, *ln2;             /* (n_embd) RMSNorm scales */
} dec_layer;

typedef struct dec_weights {
    kern_weight embed;   /* (n_vocab, n_embd) token embedding */
    kern_weight lm_head; /* (n_vocab, n_embd); a copy of `embed`'s view when tied */
    dec_layer *layers;
    float *norm; /* (n_embd) final RMSNorm */
} dec_weights;

typedef struct mdl_weights {
    vit_weights vit;
    proj_weights proj;
    float *newline; /* (n_text) image_newline, or NULL */
    dec_weights dec;
    void **owned; /* every allocation above (float32 vectors, realigned copies) */
    size_t n_owned, cap_owned;
} mdl_weights;

/* Binds every tensor the configuration needs, checking presence, dtype and shape. Matrices stay
 * views of the mapping (copied only when misaligned); vectors are converted to float32. */
lg_status mdl_weights_bind(const mdl_config *cfg, const st_set *st, mdl_weights *w, lg_error *err);
void mdl_weights_free(mdl_weights *w);

/* ---- the model and the session (model.c, session.c) ---------------------------------------- */

struct lg_model {
    char *dir;
    mdl_config cfg;
    st_set st;
    mdl_weights w;
    int n_threads;
    char kernels[16];
    kern_precision precision; /* for every session's kernel context */
    void *packed;             /* the fast kernels' copy of the weights (an anonymous mapping) */
    size_t packed_bytes;
    lg_kv_type kv_type; /* resolved: never LG_KV_AUTO */
    lg_dtype kv_dtype;  /* the kernels' name for it */
    int64_t n_ctx;      /* tokens a session may hold */
};

/* A growable float32 scratch buffer owned by a session. */
typedef struct mdl_scratch {
    float *data;
    size_t cap; /* floats */
} mdl_scratch;
/* Returns a buffer of at least n floats (contents undefined), or NULL when out of memory. */
float *mdl_scratch_get(mdl_scratch *s, size_t n);
void mdl_scratch_free(mdl_scratch *s);

/* ---- KV cache (kvcache.c) ---- */

typedef struct kv_cache {
    lg_dtype dtype;
    int n_layer;
    int head_dim;
    int64_t row;   /* elements per position: n_head_kv * kern_kv_head_elems(dtype, head_dim) */
    int64_t cap;   /* positions allocated */
    int32_t *mpos; /* multimodal RoPE: (t, h, w, is_image) per position, or NULL */
    int64_t max;   /* positions allowed */
    int64_t n;     /* positions filled */
    void **k, **v; /* per layer: (cap, row) of dtype */
} kv_cache;

lg_status kv_init(kv_cache *kv, lg_dtype dtype, int n_layer, int n_head_kv, int head_dim,
                  int64_t max, lg_error *err);
/* Keeps multimodal RoPE positions beside the cache (before the first kv_reserve). */
lg_status kv_enable_mpos(kv_cache *kv, lg_error *err);
/* Makes room for `n_new` more positions (grows geometrically up to `max`). */
lg_status kv_reserve(kv_cache *kv, int64_t n_new, lg_error *err);
/* Stores rows [pos, pos+n) of layer il from float32 k and v (n x row). */
void kv_store(kv_cache *kv, int il, int64_t pos, int64_t n, const float *k, const float *v);
void kv_free(kv_cache *kv);

typedef struct dec_seg dec_seg;

/* The scratch of batched passes (grown on demand, then reused: no allocation in steady state). */
typedef struct mdl_pass {
    mdl_scratch x, work, h, logits;
    int32_t *pos3; /* multimodal RoPE positions of the pass's rows (3 per row) */
    size_t pos3_cap;
    dec_seg *dsegs;
    int *idx;
    int cap;
} mdl_pass;

struct lg_session {
    const lg_model *model;
    kern_ctx *kc;
    bool owns_kc; /* false when the context is shared (mdl_session_create) */
    kv_cache kv;
    mdl_pass pass;     /* lg_session_eval's decoder scratch */
    mdl_scratch work;  /* forward-pass temporaries */
    mdl_scratch work2; /* a second buffer for the vision path */
    float *logits;     /* last eval's logits (n_logits x n_vocab) */
    size_t logits_cap;
    int64_t n_logits;
    lg_encode_timings enc_timings; /* of the last encode_image, valid when have_enc_timings */
    bool have_enc_timings;
    int mrope_grid_w; /* merged tokens per row of the last encoded image (multimodal RoPE) */
    lg_error err;
};

/* ---- vision tower (vision.c) ---- */

/* Applies an activation in place to n floats: the context's kern_op_* (threaded AVX-512 in the
 * fast modes, the plain loops bit for bit in "ref"). */
void mdl_activate(kern_ctx *kc, mdl_act act, float *x, int64_t n);

/* Runs the vision encoder on one crop (n_channel x image_size x image_size floats, CHW) and
 * writes hidden_states[n_run] to `out` (n_pos x n_embd, class row included for CLIP). */
lg_status vit_forward_crop(lg_session *s, const float *crop, float *out);

/* ---- Qwen2.5-VL vision tower (vision_qwen.c) ---- */

/* Runs the whole tower on one image's flattened patches (px from the Qwen2-VL processor:
 * grid_h x grid_w patches) and writes the merged rows (grid_h/m * grid_w/m x n_text) to out,
 * in the processor's merge-block order (the order of the image tokens). */
lg_status qvit_forward(lg_session *s, const lg_pixels *px, float *out);
/* The merged rows an image of this size gets (smart_resize, as the processor), or -1 when the
 * processor refuses the size. */
int64_t qvit_n_rows(const mdl_config *cfg, int orig_h, int orig_w);
/* The multimodal RoPE positions of rows [pos, pos+n) of a sequence (ids), continuing what the
 * cache holds before pos (kv->mpos), written to pos3 (3 per row) and kv->mpos. grid_w: merged
 * tokens per image row. */
void mrope_positions(kv_cache *kv, const int32_t *ids, int64_t pos, int64_t n, int32_t image_token,
                     int grid_w, int32_t *pos3);

/* ---- projector (projector.c) ---- */

/* out (n x n_text) = linear_2(act(linear_1(in (n x n_vision)))). `tmp` holds n x the width of
 * linear_1's output (n_text for LLaVA models). */
void proj_forward(lg_session *s, const float *in, int64_t n, float *out, float *tmp);

/* ---- packing (packing.c) ---- */

/* The (height, width) pinpoint that transformers' select_best_resolution picks for an image. */
void pack_best_resolution(const mdl_config *cfg, int orig_h, int orig_w, int *best_h, int *best_w);
/* Rows the packed features of an image of this size have (the number of <image> tokens), or -1
 * when the configuration cannot pack it. Fills the tile grid when not NULL. */
int64_t pack_n_rows(const mdl_config *cfg, int orig_h, int orig_w, int *grid_h, int *grid_w);
/* Packs projected crop features (n_crops x rows_per_crop x n_text; crop 0 = base image) into the
 * sequence that replaces the <image> tokens: `out` gets pack_n_rows(...) x n_text floats. */
lg_status pack_features(const mdl_config *cfg, const float *crops, int n_crops, int orig_h,
                        int orig_w, const float *newline, float *out, lg_error *err);
/* torch.nn.functional.interpolate(mode="bilinear", align_corners=False) of a (c, h, w) map to
 * (c, oh, ow), as PyTorch 1.13's CPU kernel computes it (exposed for tests). Here the map is
 * stored channel-last: in (h, w, c), out (oh, ow, c). */
void pack_bilinear_hwc(const float *in, int h, int w, int c, float *out, int oh, int ow);

/* ---- decoder (decoder.c) ---- */

/* One segment of a decoder pass: n rows appended to `kv` at positions pos .. pos+n-1 (the cache
 * is cut back to pos first). Its rows are x[row .. row+n) of the pass. */
struct dec_seg {
    kv_cache *kv;
    int64_t pos, n, row;
    const int32_t *pos3; /* multimodal RoPE: (t, h, w) per row, or NULL for pos .. pos+n-1 */
};

/* Rows [r0, r1) of a pass, multiplied in arithmetic class cls (kern_matmul_as). */
typedef struct dec_group {
    int64_t r0, r1;
    int cls;
} dec_group;

/* Runs every decoder layer over the t rows of x (t x n_embd input embeddings, overwritten with
 * the last hidden states): products per row group, rope and attention per segment (in segment
 * order), K/V stored into each segment's cache. `work` holds dec_work_floats(t) floats; the
 * caches hold room for every segment. Cannot fail. */
void dec_forward_segs(kern_ctx *kc, const lg_model *m, float *work, float *x, int64_t t,
                      const dec_seg *segs, int n_seg, const dec_group *groups, int n_groups);
/* Scratch floats dec_forward_segs needs for t rows. */
size_t dec_work_floats(const dec_config *c, int64_t n);

/* Fills x (n x n_embd) from token ids and image feature rows (see lg_session_eval). */
lg_status dec_embed(lg_session *s, const int32_t *ids, int64_t n, const float *image_rows,
                    int64_t n_image_rows, float *x);

/* ---- batched evaluation (pass.c) ---- */

/* One piece of work for mdl_pass_run: like lg_session_eval(s, ids, n, image_rows, ...) after
 * cutting the session's cache back to `pos` (-1: where it ends now, or where the previous
 * segment of the same session in this pass ends). Several segments may name one session: they
 * run in order, a later one seeing the cache an earlier one wrote (continuations of a shared
 * prefix scored in one pass). */
typedef struct mdl_seg {
    lg_session *s;
    int64_t pos;
    const int32_t *ids;
    int64_t n;
    const float *image_rows; /* rows for this piece's image tokens, or NULL */
    int64_t n_image_rows;
    bool all_logits;   /* logits of every row, else of the last */
    bool no_logits;    /* no logits at all (a prefill chunk that is not the last) */
    float *logits_dst; /* optional: where the logits go; else into the pass's buffer */
    /* results */
    lg_status status;    /* LG_OK, or why the segment was left out (message in s->err) */
    const float *logits; /* (all_logits ? n : 1) x n_vocab rows; valid until the pass runs again */
} mdl_seg;

/* Runs the segments that are valid as one decoder pass over all their rows on kc's threads.
 * A segment that is invalid (ids out of range, image rows that do not match its image tokens,
 * the context limit, pos beyond the cache) gets its own status and is left out; the others run.
 * Returns LG_E_NOMEM (every segment failed, nothing changed) when scratch cannot be had, else
 * LG_OK. Each segment's numbers equal those of running it alone. */
lg_status mdl_pass_run(mdl_pass *p, kern_ctx *kc, const lg_model *m, mdl_seg *segs, int n);
void mdl_pass_free(mdl_pass *p);

/* A session whose forward passes run on `kc` (shared, not owned: the caller keeps it alive and
 * runs one pass on it at a time); NULL makes the session its own context as lg_session_create. */
lg_status mdl_session_create(const lg_model *model, kern_ctx *kc, lg_session **out, lg_error *err);
/* mdl_pass_run of segments that all belong to s, on the session's own threads and scratch;
 * the first failure's status (message in s->err). A failed segment leaves the cache as the
 * segments before it left it. */
lg_status mdl_session_eval_multi(lg_session *s, mdl_seg *segs, int n);
/* Makes room in the session's cache for positions [0, upto). */
lg_status mdl_session_reserve(lg_session *s, int64_t upto);
/* Copies the first n cached positions of src into dst (same model), making dst hold exactly them.
 */
lg_status mdl_session_copy_prefix(lg_session *dst, const lg_session *src, int64_t n);

/* ---- image encoding one crop at a time (session.c) ---- */

typedef struct mdl_encoding {
    const lg_pixels *px;
    int64_t rows; /* packed rows */
    int n_steps;  /* crops (or 1: the whole image in one tower pass, PACK_MERGED) */
    int next;     /* steps done */
    float *proj;  /* n_crops x rows_per_crop x n_text projected features */
    lg_encode_timings tm;
} mdl_encoding;

/* lg_session_encode_image in steps: begin checks the pixels and allocates, each step encodes
 * one crop (tower + projector), end packs and hands over the features (*features, lg_free).
 * abort frees what begin allocated (after a failure, or to give up). */
lg_status mdl_encode_begin(lg_session *s, const lg_pixels *px, mdl_encoding *e);
lg_status mdl_encode_step(lg_session *s, mdl_encoding *e);
bool mdl_encode_done(const mdl_encoding *e);
lg_status mdl_encode_end(lg_session *s, mdl_encoding *e, float **features, int64_t *n_rows);
void mdl_encode_abort(mdl_encoding *e);
/* Multimodal RoPE needs the image's merged grid width when its rows are evaluated: encoding
 * records it; a caller that reuses features encoded elsewhere (a feature cache) calls this
 * with the image's pixels before evaluating them. No-op for other models. */
void mdl_session_note_image(lg_session *s, const lg_pixels *px);

#endif /* LG_MODEL_H */
