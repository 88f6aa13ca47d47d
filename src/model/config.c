/*
 * config.c — reads a Hugging Face model folder's config.json (+ generation_config.json) into an
 * mdl_config. Missing fields take the defaults of transformers 4.45's config classes
 * (LlavaOnevisionConfig, LlavaConfig, LlavaNextConfig; SiglipVisionConfig, CLIPVisionConfig;
 * Qwen2Config, LlamaConfig), because the published configs only list what differs from them.
 * The families, vision kinds and decoder kinds are tables (families[], vit_table[], dec_table[]).
 * Every value the forward pass uses comes from here; anything this version does not implement
 * (sliding windows, rope scaling, list-valued feature layers, other model types) is refused with
 * LG_E_UNSUPPORTED instead of being silently ignored.
 */
#include "model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Bounds that keep every size product far from overflow; real checkpoints are well inside. */
#define CFG_MAX_DIM (1 << 17)
#define CFG_MAX_LAYERS 1024
#define CFG_MAX_VOCAB ((int64_t)1 << 24)
#define CFG_MAX_CTX ((int64_t)1 << 24)

typedef struct cfg_reader {
    const char *file; /* for messages */
    lg_error *err;
    lg_status st; /* first failure, sticky */
} cfg_reader;

static void cfg_fail(cfg_reader *r, lg_status st, const char *fmt, ...) LG_PRINTF(3, 4);
static void cfg_fail(cfg_reader *r, lg_status st, const char *fmt, ...) {
    if (r->st != LG_OK) return;
    char msg[LG_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->st = lg_err_set(r->err, st, "%s: %s", r->file, msg);
}

/* An integer field in [lo, hi], or `def` when absent (or JSON null). */
static int64_t cfg_int(cfg_reader *r, const json_t *obj, const char *key, int64_t def, int64_t lo,
                       int64_t hi) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_integer(v)) {
        cfg_fail(r, LG_E_FORMAT, "\"%s\" must be an integer", key);
        return def;
    }
    int64_t x = (int64_t)json_integer_value(v);
    if (x < lo || x > hi) {
        cfg_fail(r, LG_E_FORMAT, "\"%s\" = %lld is out of range [%lld, %lld]", key, (long long)x,
                 (long long)lo, (long long)hi);
        return def;
    }
    return x;
}

static double cfg_num(cfg_reader *r, const json_t *obj, const char *key, double def) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_number(v)) {
        cfg_fail(r, LG_E_FORMAT, "\"%s\" must be a number", key);
        return def;
    }
    double x = json_number_value(v);
    if (!isfinite(x)) cfg_fail(r, LG_E_FORMAT, "\"%s\" must be finite", key);
    return x;
}

static bool cfg_bool(cfg_reader *r, const json_t *obj, const char *key, bool def) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_boolean(v)) {
        cfg_fail(r, LG_E_FORMAT, "\"%s\" must be true or false", key);
        return def;
    }
    return json_is_true(v);
}

static const char *cfg_str(cfg_reader *r, const json_t *obj, const char *key, const char *def) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_string(v)) {
        cfg_fail(r, LG_E_FORMAT, "\"%s\" must be a string", key);
        return def;
    }
    return json_string_value(v);
}

static bool cfg_act(cfg_reader *r, const char *where, const char *name, mdl_act *out) {
    if (strcmp(name, "gelu_pytorch_tanh") == 0 || strcmp(name, "gelu_new") == 0) {
        *out = MDL_ACT_GELU_TANH;
    } else if (strcmp(name, "gelu") == 0) {
        *out = MDL_ACT_GELU_ERF;
    } else if (strcmp(name, "quick_gelu") == 0) {
        *out = MDL_ACT_QUICK_GELU;
    } else if (strcmp(name, "silu") == 0 || strcmp(name, "swish") == 0) {
        *out = MDL_ACT_SILU;
    } else {
        cfg_fail(r, LG_E_UNSUPPORTED, "%s activation \"%s\" is not supported", where, name);
        return false;
    }
    return true;
}

/* ---- vision tower ---- */

/* The defaults of a vision config class (transformers 4.45) for the fields configs omit. */
typedef struct vit_defaults {
    const char *model_type;
    vit_kind kind;
    int n_embd, n_ff, n_layer, n_head, image_size, patch_size;
    double eps;
    const char *act;
    bool has_cls, pre_norm, patch_bias;
} vit_defaults;

static const vit_defaults vit_table[] = {
    /* SiglipVisionConfig: no class token, conv with bias, no pre-norm. */
    {"siglip_vision_model", VIT_SIGLIP, 768, 3072, 12, 12, 224, 16, 1e-6, "gelu_pytorch_tanh",
     false, false, true},
    /* CLIPVisionConfig: class token at row 0, conv without bias, pre_layrnorm. */
    {"clip_vision_model", VIT_CLIP, 768, 3072, 12, 12, 224, 32, 1e-5, "quick_gelu", true, true,
     false},
};

static void read_vision(cfg_reader *r, const json_t *vc, const char *def_type, vit_config *v) {
    const char *type = cfg_str(r, vc, "model_type", def_type);
    const vit_defaults *t = NULL;
    for (size_t i = 0; i < sizeof vit_table / sizeof vit_table[0]; i++)
        if (strcmp(type, vit_table[i].model_type) == 0) t = &vit_table[i];
    if (!t) {
        cfg_fail(r, LG_E_UNSUPPORTED, "vision_config.model_type \"%s\" is not supported", type);
        return;
    }
    v->kind = t->kind;
    v->n_embd = (int)cfg_int(r, vc, "hidden_size", t->n_embd, 1, CFG_MAX_DIM);
    v->n_ff = (int)cfg_int(r, vc, "intermediate_size", t->n_ff, 1, CFG_MAX_DIM);
    v->n_layer = (int)cfg_int(r, vc, "num_hidden_layers", t->n_layer, 1, CFG_MAX_LAYERS);
    v->n_head = (int)cfg_int(r, vc, "num_attention_heads", t->n_head, 1, CFG_MAX_DIM);
    v->n_channel = (int)cfg_int(r, vc, "num_channels", 3, 1, 16);
    v->image_size = (int)cfg_int(r, vc, "image_size", t->image_size, 1, 8192);
    v->patch_size = (int)cfg_int(r, vc, "patch_size", t->patch_size, 1, 1024);
    v->eps = (float)cfg_num(r, vc, "layer_norm_eps", t->eps);
    cfg_act(r, "vision_config", cfg_str(r, vc, "hidden_act", t->act), &v->act);
    v->has_cls = t->has_cls;
    v->pre_norm = t->pre_norm;
    v->patch_bias = t->patch_bias;
    if (r->st != LG_OK) return;
    if (v->n_embd % v->n_head != 0) {
        cfg_fail(r, LG_E_FORMAT, "vision hidden_size %d is not a multiple of %d heads", v->n_embd,
                 v->n_head);
        return;
    }
    v->head_dim = v->n_embd / v->n_head;
    v->grid = v->image_size / v->patch_size;
    if (v->grid < 1) {
        cfg_fail(r, LG_E_FORMAT, "vision patch_size %d exceeds image_size %d", v->patch_size,
                 v->image_size);
        return;
    }
    v->n_pos = v->grid * v->grid + (v->has_cls ? 1 : 0);
}

/* vision_feature_layer / _select_strategy of the top level. */
static void read_feature_select(cfg_reader *r, const json_t *root, vit_config *v, int64_t def_layer,
                                const char *def_strategy) {
    json_t *fl = json_object_get(root, "vision_feature_layer");
    if (fl && json_is_array(fl)) {
        cfg_fail(r, LG_E_UNSUPPORTED, "a list-valued vision_feature_layer is not supported");
        return;
    }
    int64_t layer =
        cfg_int(r, root, "vision_feature_layer", def_layer, -CFG_MAX_LAYERS - 1, CFG_MAX_LAYERS);
    /* hidden_states has n_layer + 1 entries: the embeddings, then each layer's output. */
    int64_t idx = layer >= 0 ? layer : (int64_t)v->n_layer + 1 + layer;
    if (r->st == LG_OK && (idx < 0 || idx > v->n_layer)) {
        cfg_fail(r, LG_E_FORMAT, "vision_feature_layer %lld is outside the %d-layer encoder",
                 (long long)layer, v->n_layer);
        return;
    }
    v->n_run = (int)idx;
    const char *strategy = cfg_str(r, root, "vision_feature_select_strategy", def_strategy);
    if (strcmp(strategy, "full") == 0) {
        v->drop_cls = false;
    } else if (strcmp(strategy, "default") == 0) {
        v->drop_cls = true;
    } else {
        cfg_fail(r, LG_E_UNSUPPORTED, "vision_feature_select_strategy \"%s\" is not supported",
                 strategy);
        return;
    }
    /* "default" drops row 0, the class token; SigLIP has none, and transformers drops a patch
     * row then, which no published checkpoint does: refuse rather than guess. */
    if (v->drop_cls && !v->has_cls) {
        cfg_fail(r, LG_E_UNSUPPORTED,
                 "select strategy \"default\" without a class token is not supported");
        return;
    }
    v->n_out_rows = v->n_pos - (v->drop_cls ? 1 : 0);
}

/* ---- language model ---- */

/* The defaults of a decoder config class (transformers 4.45) for the fields configs omit. */
typedef struct dec_defaults {
    const char *model_type;
    dec_kind kind;
    int64_t n_vocab;
    int n_embd, n_ff, n_layer, n_head;
    double eps;
    int64_t n_ctx_max;
    bool qkv_bias; /* Qwen2 always; Llama per attention_bias */
    /* The context limit is max_position_embeddings but at least this: transformers does not
     * enforce the window and the default RoPE is defined at every position, and the 4096 of
     * LLaVA-1.5/1.6's Llama is less than an anyres image plus the LlavaGuard policy take
     * (the fixtures' reference runs 4312 tokens). */
    int64_t min_ctx;
} dec_defaults;

static const dec_defaults dec_table[] = {
    {"qwen2", DEC_QWEN2, 151936, 4096, 22016, 32, 32, 1e-6, 32768, true, 0},
    {"llama", DEC_LLAMA, 32000, 4096, 11008, 32, 32, 1e-6, 2048, false, 8192},
    /* Qwen2_5_VLConfig (4.50 keeps the text fields at the top level) and its later text_config */
    {"qwen2_5_vl", DEC_QWEN2, 152064, 8192, 29568, 80, 64, 1e-5, 32768, true, 0},
    {"qwen2_5_vl_text", DEC_QWEN2, 152064, 8192, 29568, 80, 64, 1e-5, 32768, true, 0},
};

static void read_text(cfg_reader *r, const json_t *tc, const char *def_type, dec_config *d) {
    const char *type = cfg_str(r, tc, "model_type", def_type);
    const dec_defaults *t = NULL;
    for (size_t i = 0; i < sizeof dec_table / sizeof dec_table[0]; i++)
        if (strcmp(type, dec_table[i].model_type) == 0) t = &dec_table[i];
    if (!t) {
        cfg_fail(r, LG_E_UNSUPPORTED, "text_config.model_type \"%s\" is not supported", type);
        return;
    }
    d->kind = t->kind;
    d->n_vocab = cfg_int(r, tc, "vocab_size", t->n_vocab, 1, CFG_MAX_VOCAB);
    d->n_embd = (int)cfg_int(r, tc, "hidden_size", t->n_embd, 1, CFG_MAX_DIM);
    d->n_ff = (int)cfg_int(r, tc, "intermediate_size", t->n_ff, 1, CFG_MAX_DIM * 4);
    d->n_layer = (int)cfg_int(r, tc, "num_hidden_layers", t->n_layer, 1, CFG_MAX_LAYERS);
    d->n_head = (int)cfg_int(r, tc, "num_attention_heads", t->n_head, 1, CFG_MAX_DIM);
    d->n_head_kv = (int)cfg_int(r, tc, "num_key_value_heads", d->n_head, 1, CFG_MAX_DIM);
    d->eps = (float)cfg_num(r, tc, "rms_norm_eps", t->eps);
    d->rope_theta = cfg_num(r, tc, "rope_theta", 10000.0);
    d->n_ctx_max = cfg_int(r, tc, "max_position_embeddings", t->n_ctx_max, 1, CFG_MAX_CTX);
    if (d->n_ctx_max < t->min_ctx) d->n_ctx_max = t->min_ctx;
    d->tied = cfg_bool(r, tc, "tie_word_embeddings", false); /* both classes' default */
    d->qkv_bias = t->qkv_bias;
    d->o_bias = false;
    if (t->kind == DEC_LLAMA) {
        /* LlamaAttention: attention_bias puts biases on q, k, v and o alike. */
        d->qkv_bias = d->o_bias = cfg_bool(r, tc, "attention_bias", false);
        if (cfg_bool(r, tc, "mlp_bias", false))
            cfg_fail(r, LG_E_UNSUPPORTED, "text_config.mlp_bias is not supported");
        if (cfg_int(r, tc, "pretraining_tp", 1, 1, 1024) != 1)
            cfg_fail(r, LG_E_UNSUPPORTED, "text_config.pretraining_tp > 1 is not supported");
    }
    mdl_act act = MDL_ACT_SILU;
    cfg_act(r, "text_config", cfg_str(r, tc, "hidden_act", "silu"), &act);
    if (r->st == LG_OK && act != MDL_ACT_SILU)
        cfg_fail(r, LG_E_UNSUPPORTED, "text_config.hidden_act must be silu");
    if (cfg_bool(r, tc, "use_sliding_window", false))
        cfg_fail(r, LG_E_UNSUPPORTED, "text_config.use_sliding_window is not supported");
    json_t *rs = json_object_get(tc, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        /* Qwen2.5-VL writes {"type": "mrope", "mrope_section": [...]}; its config class turns
         * "mrope" into the default RoPE over three position components. */
        const char *rt = cfg_str(r, rs, "rope_type", cfg_str(r, rs, "type", "default"));
        if (strcmp(rt, "default") != 0 && strcmp(rt, "mrope") != 0)
            cfg_fail(r, LG_E_UNSUPPORTED, "text_config.rope_scaling \"%s\" is not supported", rt);
        json_t *ms = json_object_get(rs, "mrope_section");
        if (ms && (!json_is_array(ms) || json_array_size(ms) != 3)) {
            cfg_fail(r, LG_E_FORMAT, "rope_scaling.mrope_section must be 3 integers");
        } else if (ms) {
            for (int i = 0; i < 3; i++) {
                json_t *x = json_array_get(ms, (size_t)i);
                d->mrope[i] = json_is_integer(x) ? (int)json_integer_value(x) : -1;
                if (d->mrope[i] < 0 || d->mrope[i] > CFG_MAX_DIM)
                    cfg_fail(r, LG_E_FORMAT, "rope_scaling.mrope_section must be 3 integers");
            }
        }
    }
    if (r->st != LG_OK) return;
    if (d->n_embd % d->n_head != 0) {
        cfg_fail(r, LG_E_FORMAT, "text hidden_size %d is not a multiple of %d heads", d->n_embd,
                 d->n_head);
        return;
    }
    d->head_dim = (int)cfg_int(r, tc, "head_dim", d->n_embd / d->n_head, 2, CFG_MAX_DIM);
    if (r->st != LG_OK) return;
    int msum = d->mrope[0] + d->mrope[1] + d->mrope[2];
    if (msum != 0 && msum != d->head_dim / 2) {
        cfg_fail(r, LG_E_FORMAT, "mrope_section sums to %d, not head_dim/2 = %d", msum,
                 d->head_dim / 2);
        return;
    }
    if (d->n_head % d->n_head_kv != 0 || d->head_dim % 2 != 0 || !(d->rope_theta > 0) ||
        !(d->eps > 0)) {
        cfg_fail(r, LG_E_FORMAT,
                 "inconsistent text_config (heads %d, key/value heads %d, head_dim %d, "
                 "rope_theta %g, rms_norm_eps %g)",
                 d->n_head, d->n_head_kv, d->head_dim, d->rope_theta, (double)d->eps);
    }
}

/* ---- top level ---- */

/* The default pinpoints of a config class: {base, 2*base, ..., n*base} squared (OneVision:
 * 384 x 6), or LlavaNextConfig's five (height, width) pairs over 336. */
static void default_pinpoints(mdl_config *c) {
    c->n_pinpoints = 0;
    if (c->pack == PACK_ANYRES) {
        static const int next[5][2] = {
            {336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
        for (int i = 0; i < 5; i++) {
            c->pinpoints[i][0] = next[i][0];
            c->pinpoints[i][1] = next[i][1];
        }
        c->n_pinpoints = 5;
        return;
    }
    for (int i = 1; i <= 6; i++)
        for (int j = 1; j <= 6; j++) {
            c->pinpoints[c->n_pinpoints][0] = 384 * i;
            c->pinpoints[c->n_pinpoints][1] = 384 * j;
            c->n_pinpoints++;
        }
}

static void read_pinpoints(cfg_reader *r, const json_t *root, mdl_config *c) {
    json_t *pp = json_object_get(root, "image_grid_pinpoints");
    if (!pp || json_is_null(pp)) {
        default_pinpoints(c);
        return;
    }
    if (!json_is_array(pp) || json_array_size(pp) == 0 || json_array_size(pp) > MDL_MAX_PINPOINTS) {
        cfg_fail(r, LG_E_FORMAT, "image_grid_pinpoints must be a list of 1..%d pairs",
                 MDL_MAX_PINPOINTS);
        return;
    }
    c->n_pinpoints = (int)json_array_size(pp);
    for (int i = 0; i < c->n_pinpoints; i++) {
        json_t *p = json_array_get(pp, (size_t)i);
        json_t *h = json_array_get(p, 0), *w = json_array_get(p, 1);
        if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(h) ||
            !json_is_integer(w) || json_integer_value(h) < 1 || json_integer_value(w) < 1 ||
            json_integer_value(h) > 65536 || json_integer_value(w) > 65536) {
            cfg_fail(r, LG_E_FORMAT, "image_grid_pinpoints[%d] is not a (height, width) pair", i);
            return;
        }
        c->pinpoints[i][0] = (int)json_integer_value(h);
        c->pinpoints[i][1] = (int)json_integer_value(w);
    }
}

/* eos_token_id: an integer or a list of integers. Returns false when absent. */
static bool read_eos(cfg_reader *r, const json_t *obj, mdl_config *c) {
    json_t *v = json_object_get(obj, "eos_token_id");
    if (!v || json_is_null(v)) return false;
    c->n_eos = 0;
    if (json_is_integer(v)) {
        c->eos[c->n_eos++] = (int32_t)cfg_int(r, obj, "eos_token_id", 0, 0, INT32_MAX);
        return true;
    }
    if (!json_is_array(v) || json_array_size(v) > MDL_MAX_EOS) {
        cfg_fail(r, LG_E_FORMAT, "\"eos_token_id\" must be an integer or a short list");
        return false;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX) {
            cfg_fail(r, LG_E_FORMAT, "\"eos_token_id\" holds a non-id");
            return false;
        }
        c->eos[c->n_eos++] = (int32_t)json_integer_value(e);
    }
    return true;
}

/* ---- model families ----
 * One row per top-level model_type: which sub-config types its classes default to, the feature
 * selection defaults, how the crops' features are packed, and a reader for the fields only that
 * family has. A new LLaVA-style family is a new row (plus its vision / decoder kinds above). */
typedef struct family {
    const char *model_type;
    const char *vision_type, *text_type; /* when the sub-config omits model_type */
    int64_t feature_layer;
    const char *strategy;
    int32_t image_token;
    pack_kind pack;
    bool newline; /* image_newline exists */
} family;

static const family families[] = {
    /* LlavaOnevisionConfig: SigLIP + Qwen2, anyres_max_N packing with newline. */
    {"llava_onevision", "siglip_vision_model", "qwen2", -1, "full", 151646, PACK_ANYRES_MAX, true},
    /* LlavaConfig (LLaVA-1.5, LlavaGuard v1.0): CLIP + Llama, one crop. */
    {"llava", "clip_vision_model", "llama", -2, "default", 32000, PACK_SINGLE, false},
    /* LlavaNextConfig (LLaVA-1.6, LlavaGuard v1.1): CLIP + Llama, anyres with newline. */
    {"llava_next", "clip_vision_model", "llama", -2, "default", 32000, PACK_ANYRES, true},
};

static void read_anyres_max(cfg_reader *r, const json_t *root, mdl_config *c) {
    const char *ar = cfg_str(r, root, "vision_aspect_ratio", "anyres_max_9");
    int n = 0, used = 0;
    if (sscanf(ar, "anyres_max_%d%n", &n, &used) != 1 || ar[used] != '\0' || n < 1 || n > 1024) {
        cfg_fail(r, LG_E_UNSUPPORTED, "vision_aspect_ratio \"%s\" is not supported", ar);
        return;
    }
    c->anyres_max = n;
}

static void read_llava_family(cfg_reader *r, const json_t *root, const family *f, mdl_config *c) {
    json_t *vc = json_object_get(root, "vision_config");
    json_t *tc = json_object_get(root, "text_config");
    if (!json_is_object(vc) || !json_is_object(tc)) {
        cfg_fail(r, LG_E_FORMAT, "\"vision_config\" and \"text_config\" objects are required");
        return;
    }
    c->pack = f->pack;
    read_vision(r, vc, f->vision_type, &c->vit);
    if (r->st != LG_OK) return;
    read_feature_select(r, root, &c->vit, f->feature_layer, f->strategy);
    read_text(r, tc, f->text_type, &c->dec);
    if (r->st != LG_OK) return;
    cfg_act(r, "projector", cfg_str(r, root, "projector_hidden_act", "gelu"), &c->proj_act);
    c->proj_bias = cfg_bool(r, root, "multimodal_projector_bias", true);
    json_t *tok = json_object_get(root, "image_token_id");
    c->image_token = (int32_t)cfg_int(r, root, tok ? "image_token_id" : "image_token_index",
                                      f->image_token, 0, INT32_MAX);
    c->has_newline = f->newline;
    if (f->pack == PACK_ANYRES_MAX)
        c->has_newline = cfg_bool(r, root, "use_image_newline_parameter", true);
    if (f->pack != PACK_SINGLE) read_pinpoints(r, root, c);
    if (f->pack == PACK_ANYRES_MAX) read_anyres_max(r, root, c);
    if (r->st == LG_OK && c->image_token >= c->dec.n_vocab)
        cfg_fail(r, LG_E_FORMAT, "image token %d is outside the %lld embedding rows",
                 (int)c->image_token, (long long)c->dec.n_vocab);
}

/* ---- Qwen2.5-VL ---- */

/* Qwen2_5_VLVisionConfig (transformers 4.50): defaults of the 7B model's tower. */
static void read_vision_qwen(cfg_reader *r, const json_t *vc, vit_config *v) {
    v->kind = VIT_QWEN25;
    v->n_layer = (int)cfg_int(r, vc, "depth", 32, 1, MDL_MAX_VIT_LAYERS);
    v->n_embd = (int)cfg_int(r, vc, "hidden_size", 3584, 1, CFG_MAX_DIM);
    v->n_ff = (int)cfg_int(r, vc, "intermediate_size", 3420, 1, CFG_MAX_DIM);
    v->n_head = (int)cfg_int(r, vc, "num_heads", 16, 1, CFG_MAX_DIM);
    v->n_channel = (int)cfg_int(r, vc, "in_channels", 3, 1, 16);
    v->patch_size = (int)cfg_int(r, vc, "patch_size", 14, 1, 1024);
    v->temporal = (int)cfg_int(r, vc, "temporal_patch_size", 2, 1, 16);
    v->merge = (int)cfg_int(r, vc, "spatial_merge_size", 2, 1, 16);
    v->window = (int)cfg_int(r, vc, "window_size", 112, 1, 1 << 16);
    v->eps = 1e-6f; /* Qwen2RMSNorm(eps=1e-6) in every vision block and the merger */
    cfg_act(r, "vision_config", cfg_str(r, vc, "hidden_act", "silu"), &v->act);
    json_t *fa = json_object_get(vc, "fullatt_block_indexes");
    if (!fa) {
        for (int i = 7; i < v->n_layer && i < MDL_MAX_VIT_LAYERS; i += 8) v->full_attn[i] = true;
    } else if (!json_is_array(fa)) {
        cfg_fail(r, LG_E_FORMAT, "\"fullatt_block_indexes\" must be a list");
    } else {
        size_t i;
        json_t *x;
        json_array_foreach(fa, i, x) {
            if (!json_is_integer(x) || json_integer_value(x) < 0 ||
                json_integer_value(x) >= v->n_layer) {
                cfg_fail(r, LG_E_FORMAT, "\"fullatt_block_indexes\" holds a non-block");
                return;
            }
            v->full_attn[json_integer_value(x)] = true;
        }
    }
    if (r->st != LG_OK) return;
    if (v->act != MDL_ACT_SILU)
        cfg_fail(r, LG_E_UNSUPPORTED, "vision_config.hidden_act must be silu (SwiGLU)");
    if (v->n_embd % v->n_head != 0 || (v->n_embd / v->n_head) % 4 != 0)
        cfg_fail(r, LG_E_FORMAT, "vision head size must be a multiple of 4 (2-D rotary)");
    if (v->window % (v->merge * v->patch_size) != 0)
        cfg_fail(r, LG_E_UNSUPPORTED, "window_size %d is not a multiple of merge x patch",
                 v->window);
    v->head_dim = v->n_embd / v->n_head;
    v->n_run = v->n_layer;
    v->n_out_rows = 0; /* per image: qvit_n_rows */
}

static void read_qwen25_vl(cfg_reader *r, const json_t *root, mdl_config *c) {
    json_t *vc = json_object_get(root, "vision_config");
    json_t *tc = json_object_get(root, "text_config");
    if (!json_is_object(vc)) {
        cfg_fail(r, LG_E_FORMAT, "a \"vision_config\" object is required");
        return;
    }
    c->pack = PACK_MERGED;
    read_vision_qwen(r, vc, &c->vit);
    if (r->st != LG_OK) return;
    read_text(r, json_is_object(tc) ? tc : root, "qwen2_5_vl", &c->dec);
    if (r->st != LG_OK) return;
    if (c->dec.mrope[0] + c->dec.mrope[1] + c->dec.mrope[2] == 0)
        cfg_fail(r, LG_E_FORMAT, "rope_scaling.mrope_section is required for qwen2_5_vl");
    int64_t out = cfg_int(r, vc, "out_hidden_size", 3584, 1, CFG_MAX_DIM);
    if (r->st == LG_OK && out != c->dec.n_embd)
        cfg_fail(r, LG_E_FORMAT, "vision out_hidden_size %lld differs from hidden_size %d",
                 (long long)out, c->dec.n_embd);
    /* The merger's MLP is the projector: Linear -> nn.GELU() (erf) -> Linear, with biases. */
    c->proj_act = MDL_ACT_GELU_ERF;
    c->proj_bias = true;
    c->image_token = (int32_t)cfg_int(r, root, "image_token_id", 151655, 0, INT32_MAX);
    if (r->st == LG_OK && c->image_token >= c->dec.n_vocab)
        cfg_fail(r, LG_E_FORMAT, "image token %d is outside the %lld embedding rows",
                 (int)c->image_token, (long long)c->dec.n_vocab);
}

/* preprocessor_config.json's smart_resize bounds (Qwen2VLImageProcessor's defaults without). */
static lg_status read_pixel_bounds(const char *dir, vit_config *v, lg_error *err) {
    v->min_pixels = 56 * 56;
    v->max_pixels = 28 * 28 * 1280;
    char *path = lg_path_join(dir, "preprocessor_config.json");
    if (!path) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    json_t *pre = NULL;
    lg_status s = lg_file_exists(path) ? lg_json_load_file(path, &pre, err) : LG_OK;
    cfg_reader r = {.file = path, .err = err, .st = s};
    if (s == LG_OK && json_is_object(pre)) {
        json_t *size = json_object_get(pre, "size");
        const json_t *src = json_object_get(pre, "min_pixels") ? pre : size;
        if (json_is_object(src))
            v->min_pixels = cfg_int(&r, src, src == pre ? "min_pixels" : "shortest_edge",
                                    v->min_pixels, 1, (int64_t)1 << 40);
        src = json_object_get(pre, "max_pixels") ? pre : size;
        if (json_is_object(src))
            v->max_pixels = cfg_int(&r, src, src == pre ? "max_pixels" : "longest_edge",
                                    v->max_pixels, 1, (int64_t)1 << 40);
    }
    json_decref(pre);
    lg_free(path);
    return r.st;
}

static void read_family(cfg_reader *r, const json_t *root, const char *type, mdl_config *c) {
    if (strcmp(type, "qwen2_5_vl") == 0) {
        snprintf(c->model_type, sizeof c->model_type, "%s", type);
        read_qwen25_vl(r, root, c);
        return;
    }
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(type, families[i].model_type) == 0) {
            snprintf(c->model_type, sizeof c->model_type, "%s", type);
            read_llava_family(r, root, &families[i], c);
            return;
        }
    cfg_fail(r, LG_E_UNSUPPORTED,
             "model_type \"%.64s\" is not supported (this version runs \"llava_onevision\", "
             "\"llava\", \"llava_next\" and \"qwen2_5_vl\")",
             type);
}

lg_status mdl_config_load(const char *dir, mdl_config *cfg, lg_error *err) {
    memset(cfg, 0, sizeof *cfg);
    char *path = lg_path_join(dir, "config.json");
    if (!path) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    if (!lg_file_exists(path)) {
        lg_status s = lg_err_set(err, LG_E_IO, "%s: no config.json in the model folder", dir);
        lg_free(path);
        return s;
    }
    json_t *root = NULL;
    lg_status s = lg_json_load_file(path, &root, err);
    cfg_reader r = {.file = path, .err = err, .st = s};
    if (s == LG_OK && !json_is_object(root))
        cfg_fail(&r, LG_E_FORMAT, "the top level must be a JSON object");
    if (r.st == LG_OK) {
        const char *type = cfg_str(&r, root, "model_type", NULL);
        if (!type) {
            cfg_fail(&r, LG_E_FORMAT, "\"model_type\" is missing");
        } else {
            read_family(&r, root, type, cfg);
        }
    }
    /* eos: generation_config.json first (what generate() uses), then the configs. */
    if (r.st == LG_OK) {
        bool have = read_eos(&r, json_object_get(root, "text_config"), cfg);
        if (!have) have = read_eos(&r, root, cfg);
    }
    json_decref(root);
    lg_free(path);
    if (r.st != LG_OK) return r.st;
    if (cfg->pack == PACK_MERGED && (s = read_pixel_bounds(dir, &cfg->vit, err)) != LG_OK) return s;

    path = lg_path_join(dir, "generation_config.json");
    if (!path) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    if (lg_file_exists(path)) {
        root = NULL;
        s = lg_json_load_file(path, &root, err);
        r = (cfg_reader){.file = path, .err = err, .st = s};
        if (s == LG_OK && json_is_object(root)) read_eos(&r, root, cfg);
        json_decref(root);
    }
    lg_free(path);
    return r.st;
}
