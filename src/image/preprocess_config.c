/*
 * preprocess_config.c — reads a model folder's preprocessor_config.json and config.json into the
 * settings preprocess.c runs with. Nothing about a model is assumed: sizes, pinpoints,
 * mean/std, rescale factor, resampling filter, patch size, anyres_max_N and the feature-selection
 * strategy all come from the files; absent keys take transformers v4.45's class defaults only
 * where those are behaviour, never a model number. Settings that would not reproduce the
 * reference exactly are refused with LG_E_UNSUPPORTED and a message saying which.
 */
#include "image/preprocess.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cfg_ctx {
    const char *path; /* of the file being read, for messages */
    lg_error *err;
} cfg_ctx;

static lg_status bad(cfg_ctx *c, lg_status st, const char *fmt, ...) LG_PRINTF(3, 4);
static lg_status bad(cfg_ctx *c, lg_status st, const char *fmt, ...) {
    char m[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return lg_err_set(c->err, st, "%s: %s", c->path, m);
}

static lg_status get_bool(cfg_ctx *c, json_t *o, const char *key, bool def, bool *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return (*out = def, LG_OK);
    if (!json_is_boolean(v)) return bad(c, LG_E_FORMAT, "\"%s\" must be true or false", key);
    *out = json_is_true(v);
    return LG_OK;
}

/* A positive integer (at most 1<<20) at key, or -1 when absent. */
static lg_status get_int(cfg_ctx *c, json_t *o, const char *key, int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return (*out = -1, LG_OK);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1 << 20))
        return bad(c, LG_E_FORMAT, "\"%s\" must be a positive integer", key);
    *out = (int)json_integer_value(v);
    return LG_OK;
}

/* Three numbers (a list of 3, or one number for all channels). */
static lg_status get_triple(cfg_ctx *c, json_t *o, const char *key, double out[3]) {
    json_t *v = json_object_get(o, key);
    if (json_is_number(v)) {
        out[0] = out[1] = out[2] = json_number_value(v);
        return LG_OK;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return bad(c, LG_E_FORMAT, "\"%s\" must be a list of 3 numbers", key);
    for (int i = 0; i < 3; i++) {
        json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_number(x))
            return bad(c, LG_E_FORMAT, "\"%s\" must be a list of 3 numbers", key);
        out[i] = json_number_value(x);
    }
    return LG_OK;
}

static const char *get_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* size / crop_size dicts: {"height", "width"} or {"shortest_edge"}. */
static lg_status get_size(cfg_ctx *c, json_t *o, const char *key, int *h, int *w, int *se) {
    json_t *v = json_object_get(o, key);
    *h = *w = *se = -1;
    if (!v || json_is_null(v)) return LG_OK;
    if (!json_is_object(v)) return bad(c, LG_E_FORMAT, "\"%s\" must be an object", key);
    lg_status st = get_int(c, v, "height", h);
    if (st == LG_OK) st = get_int(c, v, "width", w);
    if (st == LG_OK) st = get_int(c, v, "shortest_edge", se);
    if (st != LG_OK) return st;
    if ((*h > 0) != (*w > 0) || (*h < 0 && *se < 0))
        return bad(c, LG_E_UNSUPPORTED, "\"%s\" must give height and width, or shortest_edge", key);
    if (json_object_get(v, "longest_edge"))
        return bad(c, LG_E_UNSUPPORTED, "\"%s\": longest_edge is not supported", key);
    return LG_OK;
}

static lg_status get_pins(cfg_ctx *c, json_t *o, pp_t *pp) {
    json_t *v = json_object_get(o, "image_grid_pinpoints");
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 4096)
        return bad(c, LG_E_FORMAT, "\"%s\" must be a non-empty list of [height, width]",
                   "image_grid_pinpoints");
    pp->n_pins = (int)json_array_size(v);
    pp->pins = lg_malloc(sizeof(int) * 2 * (size_t)pp->n_pins);
    if (!pp->pins) return lg_err_set(c->err, LG_E_NOMEM, "out of memory");
    for (int i = 0; i < pp->n_pins; i++) {
        json_t *p = json_array_get(v, (size_t)i);
        for (int k = 0; k < 2; k++) {
            json_t *x = json_array_get(p, (size_t)k);
            if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(x) ||
                json_integer_value(x) < 1 || json_integer_value(x) > (1 << 16))
                return bad(c, LG_E_FORMAT, "\"%s\" entry %d is not a [height, width] pair",
                           "image_grid_pinpoints", i);
            pp->pins[2 * i + k] = (int)json_integer_value(x);
        }
    }
    return LG_OK;
}

static lg_status get_filter(cfg_ctx *c, json_t *o, pp_t *pp) {
    json_t *v = json_object_get(o, "resample");
    long r = 3; /* PILImageResampling.BICUBIC, the default of all three processors */
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v))
            return bad(c, LG_E_FORMAT, "\"%s\" must be an integer", "resample");
        r = (long)json_integer_value(v);
    }
    if (r < IMG_LANCZOS || r > IMG_HAMMING)
        return bad(c, LG_E_UNSUPPORTED,
                   "\"resample\": %ld is not supported (bicubic 3, bilinear 2, lanczos 1, box 4, "
                   "hamming 5)",
                   r);
    pp->filter = (img_filter)r;
    return LG_OK;
}

/* do_rescale / rescale_factor / do_normalize / mean / std -> the per-channel table:
 * float32(v * factor computed in double), then (x - float32(mean)) / float32(std) in float32. */
static lg_status make_lut(cfg_ctx *c, json_t *o, pp_t *pp) {
    bool rescale = true, normalize = true;
    lg_status st = get_bool(c, o, "do_rescale", true, &rescale);
    if (st == LG_OK) st = get_bool(c, o, "do_normalize", true, &normalize);
    if (st != LG_OK) return st;
    double factor = 1.0 / 255, mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    json_t *f = json_object_get(o, "rescale_factor");
    if (f && !json_is_null(f)) {
        if (!json_is_number(f))
            return bad(c, LG_E_FORMAT, "\"%s\" must be a number", "rescale_factor");
        factor = json_number_value(f);
    }
    if (normalize) {
        st = get_triple(c, o, "image_mean", mean);
        if (st == LG_OK) st = get_triple(c, o, "image_std", std);
        if (st != LG_OK) return st;
        for (int i = 0; i < 3; i++)
            if (!(std[i] != 0)) return bad(c, LG_E_FORMAT, "\"%s\" contains zero", "image_std");
    }
    for (int ch = 0; ch < 3; ch++) {
        float m = (float)mean[ch], s = (float)std[ch];
        for (int v = 0; v < 256; v++) {
            float x = rescale ? (float)((double)v * factor) : (float)v;
            pp->lut[ch][v] = normalize ? (x - m) / s : x;
        }
        /* LLaVA's expand2square background: tuple(int(x * 255) for x in image_mean). */
        double bg = mean[ch] * 255;
        pp->pad_rgb[ch] = (uint8_t)(bg < 0 ? 0 : bg > 255 ? 255 : bg);
    }
    return LG_OK;
}

static lg_status processor_kind(cfg_ctx *c, json_t *pre, const char *model_type, pp_t *pp) {
    const char *t = get_str(pre, "image_processor_type");
    if (!t) /* older folders: infer from the model */
        t = !model_type                                  ? ""
            : strcmp(model_type, "llava_onevision") == 0 ? "LlavaOnevisionImageProcessor"
            : strcmp(model_type, "llava_next") == 0      ? "LlavaNextImageProcessor"
            : strcmp(model_type, "llava") == 0           ? "CLIPImageProcessor"
            : strcmp(model_type, "qwen2_5_vl") == 0      ? "Qwen2VLImageProcessor"
                                                         : "";
    const char *want;
    if (strcmp(t, "LlavaOnevisionImageProcessor") == 0)
        pp->kind = PP_ONEVISION, want = "llava_onevision";
    else if (strcmp(t, "LlavaNextImageProcessor") == 0)
        pp->kind = PP_NEXT, want = "llava_next";
    else if (strcmp(t, "CLIPImageProcessor") == 0)
        pp->kind = PP_CLIP, want = "llava";
    else if (strcmp(t, "Qwen2VLImageProcessor") == 0)
        pp->kind = PP_QWEN2VL, want = "qwen2_5_vl";
    else
        return lg_err_set(c->err, LG_E_UNSUPPORTED,
                          "%s: image_processor_type \"%s\" is not supported (supported: "
                          "LlavaOnevisionImageProcessor, LlavaNextImageProcessor, "
                          "CLIPImageProcessor, Qwen2VLImageProcessor)",
                          c->path, t);
    if (model_type && strcmp(model_type, want) != 0)
        return lg_err_set(c->err, LG_E_UNSUPPORTED,
                          "%s: image processor %s does not match model_type \"%s\"", c->path, t,
                          model_type);
    return LG_OK;
}

/* The processor's resize/crop geometry from preprocessor_config.json. */
static lg_status read_geometry(cfg_ctx *c, json_t *pre, pp_t *pp) {
    bool b = true;
    lg_status st = get_bool(c, pre, "do_resize", true, &b);
    if (st == LG_OK && !b)
        st = bad(c, LG_E_UNSUPPORTED, "\"%s\": false is not supported", "do_resize");
    if (st == LG_OK) st = get_bool(c, pre, "do_convert_rgb", true, &b);
    if (st == LG_OK && !b)
        st = bad(c, LG_E_UNSUPPORTED, "\"%s\": false is not supported", "do_convert_rgb");
    if (st != LG_OK) return st;
    int h, w, se, ch, cw, cse;
    st = get_size(c, pre, "size", &h, &w, &se);
    if (st == LG_OK) st = get_size(c, pre, "crop_size", &ch, &cw, &cse);
    if (st != LG_OK) return st;
    if (h < 0 && se < 0) return bad(c, LG_E_FORMAT, "\"%s\" is missing", "size");
    bool exact = h > 0;
    pp->size_h = exact ? h : se;
    pp->size_w = exact ? w : se;
    pp->shortest_edge = pp->kind == PP_ONEVISION || exact ? 0 : se;
    pp->base_h = pp->size_h; /* anyres crop 0: (height, width) or (shortest_edge,)*2 */
    pp->base_w = pp->size_w;
    if (pp->kind == PP_ONEVISION) {
        pp->center_crop = false;
        pp->crop_h = pp->size_h, pp->crop_w = pp->size_w;
    } else {
        st = get_bool(c, pre, "do_center_crop", true, &pp->center_crop);
        if (st != LG_OK) return st;
        if (pp->center_crop && ch < 0)
            return bad(c, LG_E_FORMAT, "\"%s\" (height and width) is missing", "crop_size");
        pp->crop_h = pp->center_crop ? ch : pp->size_h;
        pp->crop_w = pp->center_crop ? cw : pp->size_w;
        if (!pp->center_crop && pp->shortest_edge)
            return bad(c, LG_E_UNSUPPORTED,
                       "shortest_edge resize without do_center_crop gives variable sizes");
        int min_side = pp->shortest_edge ? pp->shortest_edge
                                         : (pp->size_h < pp->size_w ? pp->size_h : pp->size_w);
        if (pp->crop_h > min_side || pp->crop_w > min_side)
            return bad(c, LG_E_UNSUPPORTED, "\"%s\" larger than the resized image", "crop_size");
    }
    if (pp->kind != PP_CLIP && pp->crop_h != pp->crop_w)
        return bad(c, LG_E_UNSUPPORTED, "anyres needs square crops (\"%s\")",
                   pp->kind == PP_ONEVISION ? "size" : "crop_size");
    pp->tile = pp->kind == PP_ONEVISION ? pp->size_h : pp->crop_h;
    st = get_filter(c, pre, pp);
    if (st == LG_OK) st = make_lut(c, pre, pp);
    return st;
}

/* Qwen2VLImageProcessor: pixel bounds (min_pixels / max_pixels, or size's shortest_edge /
 * longest_edge as later versions write them), patch, merge and temporal sizes. */
/* A pixel count (up to 2^40), or -1 when absent. */
static lg_status get_pixels(cfg_ctx *c, json_t *o, const char *key, int64_t *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return (*out = -1, LG_OK);
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > ((json_int_t)1 << 40))
        return bad(c, LG_E_FORMAT, "\"%s\" must be a positive pixel count", key);
    *out = (int64_t)json_integer_value(v);
    return LG_OK;
}

static lg_status read_qwen(cfg_ctx *c, json_t *pre, pp_t *pp) {
    int p = -1, m = -1, t = -1;
    int64_t lo = -1, hi = -1;
    json_t *size = json_object_get(pre, "size");
    lg_status st = get_pixels(c, pre, "min_pixels", &lo);
    if (st == LG_OK) st = get_pixels(c, pre, "max_pixels", &hi);
    if (st == LG_OK && lo < 0 && json_is_object(size))
        st = get_pixels(c, size, "shortest_edge", &lo);
    if (st == LG_OK && hi < 0 && json_is_object(size))
        st = get_pixels(c, size, "longest_edge", &hi);
    if (st == LG_OK) st = get_int(c, pre, "patch_size", &p);
    if (st == LG_OK) st = get_int(c, pre, "merge_size", &m);
    if (st == LG_OK) st = get_int(c, pre, "temporal_patch_size", &t);
    if (st != LG_OK) return st;
    /* Qwen2VLImageProcessor's defaults (transformers 4.50). */
    pp->min_pixels = lo > 0 ? lo : 56 * 56;
    pp->max_pixels = hi > 0 ? hi : 28 * 28 * 1280;
    pp->patch = p > 0 ? p : 14;
    pp->merge = m > 0 ? m : 2;
    pp->temporal = t > 0 ? t : 2;
    if (pp->min_pixels > pp->max_pixels || pp->patch > 1024 || pp->merge > 16 || pp->temporal > 16)
        return bad(c, LG_E_FORMAT, "inconsistent min_pixels / max_pixels / patch sizes");
    bool b = true;
    st = get_bool(c, pre, "do_resize", true, &b);
    if (st == LG_OK && !b)
        st = bad(c, LG_E_UNSUPPORTED, "\"%s\": false is not supported", "do_resize");
    if (st == LG_OK) st = get_filter(c, pre, pp);
    if (st == LG_OK) st = make_lut(c, pre, pp);
    return st;
}

/* config.json of Qwen2.5-VL: the vision tower must cut the patches the processor makes. */
static lg_status check_qwen_model(cfg_ctx *c, json_t *cfg, pp_t *pp) {
    json_t *vc = json_object_get(cfg, "vision_config");
    if (!json_is_object(vc)) return bad(c, LG_E_FORMAT, "\"%s\" is missing", "vision_config");
    int p = -1, m = -1, t = -1;
    lg_status st = get_int(c, vc, "patch_size", &p);
    if (st == LG_OK) st = get_int(c, vc, "spatial_merge_size", &m);
    if (st == LG_OK) st = get_int(c, vc, "temporal_patch_size", &t);
    if (st != LG_OK) return st;
    if ((p > 0 && p != pp->patch) || (m > 0 && m != pp->merge) || (t > 0 && t != pp->temporal))
        return bad(c, LG_E_UNSUPPORTED,
                   "vision_config's patch / merge / temporal sizes differ from the processor's");
    return LG_OK;
}

/* config.json: vision tower geometry, feature strategy, anyres_max_N, square padding. */
static lg_status read_model(cfg_ctx *c, json_t *cfg, json_t *pre, const lg_preprocessor_options *o,
                            pp_t *pp) {
    json_t *vc = json_object_get(cfg, "vision_config");
    if (!json_is_object(vc)) return bad(c, LG_E_FORMAT, "\"%s\" is missing", "vision_config");
    int image_size = -1, patch = -1;
    lg_status st = get_int(c, vc, "image_size", &image_size);
    if (st == LG_OK) st = get_int(c, vc, "patch_size", &patch);
    if (st != LG_OK) return st;
    if (image_size < 0 || patch < 0)
        return bad(c, LG_E_FORMAT, "vision_config needs image_size and patch_size");
    if (pp->crop_h != image_size || pp->crop_w != image_size)
        return bad(c, LG_E_UNSUPPORTED,
                   "the image processor's crop size %dx%d differs from vision_config.image_size %d",
                   pp->crop_h, pp->crop_w, image_size);
    const char *vt = get_str(vc, "model_type");
    bool siglip = vt ? strcmp(vt, "siglip_vision_model") == 0 : pp->kind == PP_ONEVISION;
    if (vt && !siglip && strcmp(vt, "clip_vision_model") != 0)
        return lg_err_set(c->err, LG_E_UNSUPPORTED, "%s: vision model_type \"%s\" is not supported",
                          c->path, vt);
    const char *strat = get_str(cfg, "vision_feature_select_strategy");
    if (!strat) strat = pp->kind == PP_ONEVISION ? "full" : "default";
    bool full = strcmp(strat, "full") == 0;
    if (!full && strcmp(strat, "default") != 0)
        return lg_err_set(c->err, LG_E_UNSUPPORTED,
                          "%s: vision_feature_select_strategy \"%s\" is not supported", c->path,
                          strat);
    pp->patches = image_size / patch;
    pp->tokens_per_crop =
        pp->patches * pp->patches + (full && !siglip ? 1 : 0) - (!full && siglip ? 1 : 0);
    if (pp->kind != PP_CLIP && pp->tokens_per_crop != pp->patches * pp->patches)
        return lg_err_set(c->err, LG_E_UNSUPPORTED,
                          "%s: anyres packing needs exactly %d x %d features per crop "
                          "(vision_feature_select_strategy \"%s\")",
                          c->path, pp->patches, pp->patches, strat);
    if (pp->kind == PP_ONEVISION) {
        const char *ar = get_str(cfg, "vision_aspect_ratio");
        if (!ar) ar = "anyres_max_9"; /* LlavaOnevisionConfig's default */
        char *end = NULL;
        long n = strncmp(ar, "anyres_max_", 11) == 0 ? strtol(ar + 11, &end, 10) : 0;
        if (n < 1 || n > 1000 || !end || *end)
            return lg_err_set(c->err, LG_E_UNSUPPORTED,
                              "%s: vision_aspect_ratio \"%s\" is not supported (anyres_max_N)",
                              c->path, ar);
        pp->max_tiles = (int)n;
    }
    if (pp->kind == PP_CLIP) {
        const char *ar = get_str(cfg, "image_aspect_ratio");
        pp->square_pad = o->square_pad > 0 || (o->square_pad < 0 && ar && strcmp(ar, "pad") == 0);
    } else if (o->square_pad > 0) {
        return lg_err_set(c->err, LG_E_ARG, "%s: square padding applies to LLaVA-1.5 models only",
                          c->path);
    }
    (void)pre;
    return LG_OK;
}

static lg_status check_pins(cfg_ctx *c, pp_t *pp) {
    for (int i = 0; i < pp->n_pins; i++)
        if (pp->pins[2 * i] % pp->tile || pp->pins[2 * i + 1] % pp->tile)
            return bad(c, LG_E_UNSUPPORTED,
                       "\"%s\" entry %d is not a multiple of the %d-pixel tile",
                       "image_grid_pinpoints", i, pp->tile);
    return LG_OK;
}

/* processor_config.json may state the per-crop token count; it must agree. */
static lg_status check_processor_config(const char *dir, pp_t *pp, lg_error *err) {
    char *path = lg_path_join(dir, "processor_config.json");
    if (!path) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    lg_status st = LG_OK;
    json_t *pc = NULL;
    if (lg_file_exists(path)) st = lg_json_load_file(path, &pc, err);
    if (st == LG_OK && pc) {
        json_t *n = json_object_get(pc, "num_image_tokens");
        if (json_is_integer(n) && json_integer_value(n) != pp->tokens_per_crop)
            st = lg_err_set(err, LG_E_UNSUPPORTED,
                            "%s: num_image_tokens %lld disagrees with config.json's vision tower "
                            "(%d per crop)",
                            path, (long long)json_integer_value(n), pp->tokens_per_crop);
    }
    json_decref(pc);
    lg_free(path);
    return st;
}

static lg_status load_json(const char *dir, const char *name, json_t **out, lg_error *err) {
    char *path = lg_path_join(dir, name);
    if (!path) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    lg_status st = lg_json_load_file(path, out, err);
    if (st == LG_OK && !json_is_object(*out)) {
        json_decref(*out);
        st = lg_err_set(err, LG_E_FORMAT, "%s: not a JSON object", path);
    }
    lg_free(path);
    return st;
}

static lg_status configure(const char *dir, const lg_preprocessor_options *o, pp_t *pp,
                           lg_error *err) {
    json_t *pre = NULL, *cfg = NULL;
    lg_status st = load_json(dir, "preprocessor_config.json", &pre, err);
    if (st == LG_OK) st = load_json(dir, "config.json", &cfg, err);
    char *pre_path = lg_path_join(dir, "preprocessor_config.json");
    char *cfg_path = lg_path_join(dir, "config.json");
    cfg_ctx cp = {pre_path ? pre_path : dir, err}, cc = {cfg_path ? cfg_path : dir, err};
    if (st == LG_OK) st = processor_kind(&cp, pre, get_str(cfg, "model_type"), pp);
    if (st == LG_OK && pp->kind == PP_QWEN2VL) {
        st = read_qwen(&cp, pre, pp);
        if (st == LG_OK) st = check_qwen_model(&cc, cfg, pp);
        if (st == LG_OK && o->square_pad > 0)
            st = lg_err_set(err, LG_E_ARG, "%s: square padding applies to LLaVA-1.5 models only",
                            cc.path);
        goto done;
    }
    if (st == LG_OK) st = read_geometry(&cp, pre, pp);
    if (st == LG_OK && pp->kind != PP_CLIP) {
        bool in_pre = json_object_get(pre, "image_grid_pinpoints") != NULL;
        cfg_ctx *pc = in_pre ? &cp : &cc;
        st = get_pins(pc, in_pre ? pre : cfg, pp);
        if (st == LG_OK) st = check_pins(pc, pp);
    }
    if (st == LG_OK) st = read_model(&cc, cfg, pre, o, pp);
    if (st == LG_OK) st = check_processor_config(dir, pp, err);
done:
    json_decref(pre);
    json_decref(cfg);
    lg_free(pre_path);
    lg_free(cfg_path);
    return st;
}

LG_API lg_preprocessor_options lg_preprocessor_options_default(void) {
    lg_preprocessor_options o = {-1};
    return o;
}

LG_API lg_status lg_preprocessor_open_with(const char *model_dir,
                                           const lg_preprocessor_options *opts,
                                           lg_preprocessor **out, lg_error *err) {
    if (!model_dir || !out) return lg_err_set(err, LG_E_ARG, "preprocessor: model folder missing");
    lg_preprocessor_options d = lg_preprocessor_options_default();
    pp_t *pp = lg_calloc(1, sizeof *pp);
    if (!pp) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    lg_status st = configure(model_dir, opts ? opts : &d, pp, err);
    if (st != LG_OK) {
        lg_preprocessor_free(pp);
        return st;
    }
    *out = pp;
    return LG_OK;
}

LG_API lg_status lg_preprocessor_open(const char *model_dir, lg_preprocessor **out, lg_error *err) {
    return lg_preprocessor_open_with(model_dir, NULL, out, err);
}

LG_API void lg_preprocessor_free(lg_preprocessor *pp) {
    if (!pp) return;
    lg_free(pp->pins);
    lg_free(pp);
}

LG_API const char *lg_preprocessor_kind(const lg_preprocessor *pp) {
    return pp->kind == PP_ONEVISION ? "llava-onevision"
           : pp->kind == PP_NEXT    ? "llava-next"
           : pp->kind == PP_QWEN2VL ? "qwen2-vl"
                                    : "llava";
}
