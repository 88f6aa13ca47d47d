/*
 * weights.c — binds checkpoint tensors to the model's weight structs (llama2.c's
 * memory_map_weights, with checks): every tensor the configured architecture needs must be
 * present, in BF16/F16/F32, with exactly the expected shape. Matrices stay views of the mapped
 * file (copied only when the file misaligns them for their dtype); vectors (norm scales, biases,
 * the SigLIP position table) are converted to float32 once, which costs a few MB at most.
 * Tensor names follow transformers' LlavaOnevisionForConditionalGeneration state dict
 * (both the <= 4.51 layout and the later "model.language_model." one).
 */
#include "model.h"

#include <stdio.h>
#include <string.h>

typedef struct binder {
    const st_set *st;
    mdl_weights *w;
    lg_error *err;
    lg_status s; /* first failure, sticky: later binds are no-ops */
    const char *vis, *proj, *text, *lm_head, *newline; /* name prefixes / names */
} binder;

static void *own(binder *b, void *p) {
    if (!p) {
        if (b->s == LG_OK) b->s = lg_err_set(b->err, LG_E_NOMEM, "out of memory");
        return NULL;
    }
    mdl_weights *w = b->w;
    if (w->n_owned == w->cap_owned) {
        size_t cap = w->cap_owned ? w->cap_owned * 2 : 64;
        void **o = lg_realloc(w->owned, cap * sizeof *o);
        if (!o) {
            lg_aligned_free(p);
            if (b->s == LG_OK) b->s = lg_err_set(b->err, LG_E_NOMEM, "out of memory");
            return NULL;
        }
        w->owned = o;
        w->cap_owned = cap;
    }
    w->owned[w->n_owned++] = p;
    return p;
}

static void shape_str(char *buf, size_t cap, int nd, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < nd && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Finds `name` and checks dtype and shape. NULL (with the error recorded) when it does not fit;
 * NULL without an error when absent and `optional`. */
static const st_tensor *find(binder *b, const char *name, int nd, const int64_t *shape,
                             bool optional) {
    if (b->s != LG_OK) return NULL;
    const st_tensor *t = st_find(b->st, name);
    if (!t) {
        if (!optional)
            b->s = lg_err_set(b->err, LG_E_FORMAT, "missing tensor \"%s\" in the checkpoint", name);
        return NULL;
    }
    if (!t->usable) {
        b->s = lg_err_set(b->err, LG_E_UNSUPPORTED,
                          "tensor \"%s\" has dtype %s (expected BF16, F16 or F32)", name, t->dtype);
        return NULL;
    }
    bool ok = t->n_dims == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[128], want[128];
        shape_str(got, sizeof got, t->n_dims, t->shape);
        shape_str(want, sizeof want, nd, shape);
        b->s = lg_err_set(b->err, LG_E_FORMAT, "tensor \"%s\" has shape %s, expected %s", name, got,
                          want);
        return NULL;
    }
    return t;
}

/* A matrix view of tensor t as (n_out, n_in). */
static void view(binder *b, const st_tensor *t, kern_weight *w, int64_t n_out, int64_t n_in) {
    memset(w, 0, sizeof *w);
    w->dtype = t->dt;
    w->n_out = n_out;
    w->n_in = n_in;
    size_t esz = lg_dtype_size(t->dt);
    if (t->nbytes == 0 || (uintptr_t)t->data % esz == 0) {
        w->data = t->data;
        return;
    }
    /* The format only promises byte offsets: realign rather than read unaligned elements. */
    void *copy = own(b, lg_aligned_alloc(t->nbytes));
    if (!copy) return;
    memcpy(copy, t->data, t->nbytes);
    w->data = copy;
}

static void bind_mat(binder *b, kern_weight *w, int64_t n_out, int64_t n_in, const char *fmt, ...)
    LG_PRINTF(5, 6);
static void bind_mat(binder *b, kern_weight *w, int64_t n_out, int64_t n_in, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[2] = {n_out, n_in};
    const st_tensor *t = find(b, name, 2, shape, false);
    if (t) view(b, t, w, n_out, n_in);
}

/* float32 copy of a tensor of `n` elements whose shape is `nd` dims. */
static float *to_f32(binder *b, const st_tensor *t) {
    float *out = own(b, lg_aligned_alloc((size_t)t->numel * sizeof(float)));
    if (!out) return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        const uint8_t *p = t->data + (size_t)i * lg_dtype_size(t->dt);
        uint16_t h;
        float f;
        switch (t->dt) {
        case LG_DT_F32:
            memcpy(&f, p, 4);
            out[i] = f;
            break;
        case LG_DT_BF16:
            memcpy(&h, p, 2);
            out[i] = lg_bf16_to_f32(h);
            break;
        case LG_DT_F16:
            memcpy(&h, p, 2);
            out[i] = lg_f16_to_f32(h);
            break;
        case LG_DT_I16S: /* a KV-cache format; safetensors.c never yields it */
            LG_ASSERT(0);
            break;
        }
    }
    return out;
}

static float *bind_vec_v(binder *b, bool optional, int nd, const int64_t *shape, const char *fmt,
                         va_list ap) {
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    const st_tensor *t = find(b, name, nd, shape, optional);
    return t ? to_f32(b, t) : NULL;
}

static float *bind_vec(binder *b, int64_t n, const char *fmt, ...) LG_PRINTF(3, 4);
static float *bind_vec(binder *b, int64_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    float *r = bind_vec_v(b, false, 1, &n, fmt, ap);
    va_end(ap);
    return r;
}

static float *bind_vec_opt(binder *b, int64_t n, const char *fmt, ...) LG_PRINTF(3, 4);
static float *bind_vec_opt(binder *b, int64_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    float *r = bind_vec_v(b, true, 1, &n, fmt, ap);
    va_end(ap);
    return r;
}

static float *bind_table(binder *b, int64_t rows, int64_t cols, const char *fmt, ...)
    LG_PRINTF(4, 5);
static float *bind_table(binder *b, int64_t rows, int64_t cols, const char *fmt, ...) {
    int64_t shape[2] = {rows, cols};
    va_list ap;
    va_start(ap, fmt);
    float *r = bind_vec_v(b, false, 2, shape, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- vision tower ---- */

static void bind_vision(binder *b, const vit_config *c, vit_weights *v) {
    const char *p = b->vis;
    int64_t d = c->n_embd, ff = c->n_ff, k = c->patch_size;
    int64_t conv[4] = {d, c->n_channel, k, k};
    char name[256];
    snprintf(name, sizeof name, "%sembeddings.patch_embedding.weight", p);
    const st_tensor *t = find(b, name, 4, conv, false);
    if (t) view(b, t, &v->patch, d, c->n_channel * k * k);
    if (c->patch_bias) v->patch_b = bind_vec(b, d, "%sembeddings.patch_embedding.bias", p);
    v->pos = bind_table(b, c->n_pos, d, "%sembeddings.position_embedding.weight", p);
    if (c->has_cls) v->cls = bind_vec(b, d, "%sembeddings.class_embedding", p);
    if (c->pre_norm) {
        v->pre_g = bind_vec(b, d, "%spre_layrnorm.weight", p);
        v->pre_b = bind_vec(b, d, "%spre_layrnorm.bias", p);
    }
    if (b->s != LG_OK) return;
    v->layers = own(b, lg_aligned_alloc((size_t)c->n_layer * sizeof *v->layers));
    if (!v->layers) return;
    memset(v->layers, 0, (size_t)c->n_layer * sizeof *v->layers);
    for (int il = 0; il < c->n_layer && b->s == LG_OK; il++) {
        vit_layer *l = &v->layers[il];
        char lp[200];
        snprintf(lp, sizeof lp, "%sencoder.layers.%d.", p, il);
        bind_mat(b, &l->q, d, d, "%sself_attn.q_proj.weight", lp);
        bind_mat(b, &l->k, d, d, "%sself_attn.k_proj.weight", lp);
        bind_mat(b, &l->v, d, d, "%sself_attn.v_proj.weight", lp);
        bind_mat(b, &l->o, d, d, "%sself_attn.out_proj.weight", lp);
        l->q_b = bind_vec(b, d, "%sself_attn.q_proj.bias", lp);
        l->k_b = bind_vec(b, d, "%sself_attn.k_proj.bias", lp);
        l->v_b = bind_vec(b, d, "%sself_attn.v_proj.bias", lp);
        l->o_b = bind_vec(b, d, "%sself_attn.out_proj.bias", lp);
        bind_mat(b, &l->fc1, ff, d, "%smlp.fc1.weight", lp);
        bind_mat(b, &l->fc2, d, ff, "%smlp.fc2.weight", lp);
        l->fc1_b = bind_vec(b, ff, "%smlp.fc1.bias", lp);
        l->fc2_b = bind_vec(b, d, "%smlp.fc2.bias", lp);
        l->ln1_g = bind_vec(b, d, "%slayer_norm1.weight", lp);
        l->ln1_b = bind_vec(b, d, "%slayer_norm1.bias", lp);
        l->ln2_g = bind_vec(b, d, "%slayer_norm2.weight", lp);
        l->ln2_b = bind_vec(b, d, "%slayer_norm2.bias", lp);
    }
}

/* ---- Qwen2.5-VL vision tower ---- */

/* Rows [r0, r0 + n_out) of a bound (rows x n_in) matrix as a matrix of their own: the fused
 * qkv projection's q, k and v parts. */
static void row_slice(binder *b, const kern_weight *full, kern_weight *w, int64_t r0,
                      int64_t n_out) {
    if (b->s != LG_OK) return;
    memset(w, 0, sizeof *w);
    w->dtype = full->dtype;
    w->n_out = n_out;
    w->n_in = full->n_in;
    w->data = (const uint8_t *)full->data + (size_t)(r0 * full->n_in) * lg_dtype_size(full->dtype);
}

static void bind_vision_qwen(binder *b, const vit_config *c, vit_weights *v) {
    const char *p = b->vis;
    int64_t d = c->n_embd, ff = c->n_ff, k = c->patch_size;
    int64_t conv[5] = {d, c->n_channel, c->temporal, k, k};
    char name[256];
    snprintf(name, sizeof name, "%spatch_embed.proj.weight", p);
    const st_tensor *t = find(b, name, 5, conv, false);
    if (t) view(b, t, &v->patch, d, c->n_channel * c->temporal * k * k);
    v->merge_g = bind_vec(b, d, "%smerger.ln_q.weight", p);
    if (b->s != LG_OK) return;
    v->layers = own(b, lg_aligned_alloc((size_t)c->n_layer * sizeof *v->layers));
    if (!v->layers) return;
    memset(v->layers, 0, (size_t)c->n_layer * sizeof *v->layers);
    for (int il = 0; il < c->n_layer && b->s == LG_OK; il++) {
        vit_layer *l = &v->layers[il];
        char lp[200];
        snprintf(lp, sizeof lp, "%sblocks.%d.", p, il);
        kern_weight qkv;
        bind_mat(b, &qkv, 3 * d, d, "%sattn.qkv.weight", lp);
        row_slice(b, &qkv, &l->q, 0, d);
        row_slice(b, &qkv, &l->k, d, d);
        row_slice(b, &qkv, &l->v, 2 * d, d);
        float *qkv_b = bind_vec(b, 3 * d, "%sattn.qkv.bias", lp);
        if (qkv_b) l->q_b = qkv_b, l->k_b = qkv_b + d, l->v_b = qkv_b + 2 * d;
        bind_mat(b, &l->o, d, d, "%sattn.proj.weight", lp);
        l->o_b = bind_vec(b, d, "%sattn.proj.bias", lp);
        bind_mat(b, &l->fc1, ff, d, "%smlp.gate_proj.weight", lp);
        bind_mat(b, &l->up, ff, d, "%smlp.up_proj.weight", lp);
        bind_mat(b, &l->fc2, d, ff, "%smlp.down_proj.weight", lp);
        l->fc1_b = bind_vec(b, ff, "%smlp.gate_proj.bias", lp);
        l->up_b = bind_vec(b, ff, "%smlp.up_proj.bias", lp);
        l->fc2_b = bind_vec(b, d, "%smlp.down_proj.bias", lp);
        l->ln1_g = bind_vec(b, d, "%snorm1.weight", lp);
        l->ln2_g = bind_vec(b, d, "%snorm2.weight", lp);
    }
}

/* The merger's MLP as the projector: (4d -> 4d), GELU, (4d -> n_text). */
static void bind_merger(binder *b, const mdl_config *c, mdl_weights *w) {
    int64_t wide = (int64_t)c->vit.n_embd * c->vit.merge * c->vit.merge, dt = c->dec.n_embd;
    bind_mat(b, &w->proj.l1, wide, wide, "%smerger.mlp.0.weight", b->vis);
    bind_mat(b, &w->proj.l2, dt, wide, "%smerger.mlp.2.weight", b->vis);
    w->proj.b1 = bind_vec(b, wide, "%smerger.mlp.0.bias", b->vis);
    w->proj.b2 = bind_vec(b, dt, "%smerger.mlp.2.bias", b->vis);
}

/* ---- projector and newline ---- */

static void bind_projector(binder *b, const mdl_config *c, mdl_weights *w) {
    int64_t dv = c->vit.n_embd, dt = c->dec.n_embd;
    bind_mat(b, &w->proj.l1, dt, dv, "%slinear_1.weight", b->proj);
    bind_mat(b, &w->proj.l2, dt, dt, "%slinear_2.weight", b->proj);
    if (c->proj_bias) {
        w->proj.b1 = bind_vec(b, dt, "%slinear_1.bias", b->proj);
        w->proj.b2 = bind_vec(b, dt, "%slinear_2.bias", b->proj);
    }
    if (c->has_newline) w->newline = bind_vec(b, dt, "%s", b->newline);
}

/* ---- language model ---- */

static void bind_text(binder *b, const dec_config *c, dec_weights *d) {
    const char *p = b->text;
    int64_t e = c->n_embd, ff = c->n_ff;
    int64_t nq = (int64_t)c->n_head * c->head_dim, nkv = (int64_t)c->n_head_kv * c->head_dim;
    bind_mat(b, &d->embed, c->n_vocab, e, "%sembed_tokens.weight", p);
    d->norm = bind_vec(b, e, "%snorm.weight", p);
    if (c->tied)
        d->lm_head = d->embed;
    else
        bind_mat(b, &d->lm_head, c->n_vocab, e, "%s", b->lm_head);
    if (b->s != LG_OK) return;
    d->layers = own(b, lg_aligned_alloc((size_t)c->n_layer * sizeof *d->layers));
    if (!d->layers) return;
    memset(d->layers, 0, (size_t)c->n_layer * sizeof *d->layers);
    for (int il = 0; il < c->n_layer && b->s == LG_OK; il++) {
        dec_layer *l = &d->layers[il];
        char lp[200];
        snprintf(lp, sizeof lp, "%slayers.%d.", p, il);
        bind_mat(b, &l->q, nq, e, "%sself_attn.q_proj.weight", lp);
        bind_mat(b, &l->k, nkv, e, "%sself_attn.k_proj.weight", lp);
        bind_mat(b, &l->v, nkv, e, "%sself_attn.v_proj.weight", lp);
        bind_mat(b, &l->o, e, nq, "%sself_attn.o_proj.weight", lp);
        if (c->qkv_bias) {
            l->q_b = bind_vec(b, nq, "%sself_attn.q_proj.bias", lp);
            l->k_b = bind_vec(b, nkv, "%sself_attn.k_proj.bias", lp);
            l->v_b = bind_vec(b, nkv, "%sself_attn.v_proj.bias", lp);
        }
        if (c->o_bias)
            l->o_b = bind_vec(b, e, "%sself_attn.o_proj.bias", lp);
        else
            l->o_b = bind_vec_opt(b, e, "%sself_attn.o_proj.bias", lp);
        bind_mat(b, &l->gate, ff, e, "%smlp.gate_proj.weight", lp);
        bind_mat(b, &l->up, ff, e, "%smlp.up_proj.weight", lp);
        bind_mat(b, &l->down, e, ff, "%smlp.down_proj.weight", lp);
        l->ln1 = bind_vec(b, e, "%sinput_layernorm.weight", lp);
        l->ln2 = bind_vec(b, e, "%spost_attention_layernorm.weight", lp);
    }
}

lg_status mdl_weights_bind(const mdl_config *cfg, const st_set *st, mdl_weights *w, lg_error *err) {
    memset(w, 0, sizeof *w);
    binder b = {.st = st, .w = w, .err = err, .s = LG_OK};
    if (cfg->vit.kind == VIT_QWEN25) {
        /* Qwen2_5_VLForConditionalGeneration: 4.50's "visual." + "model.", later
         * "model.visual." + "model.language_model."; the head is "lm_head" unless tied. */
        bool later = st_find(st, "model.language_model.embed_tokens.weight") != NULL;
        b.vis = later ? "model.visual." : "visual.";
        b.text = later ? "model.language_model." : "model.";
        b.lm_head = "lm_head.weight";
        bind_vision_qwen(&b, &cfg->vit, &w->vit);
        bind_merger(&b, cfg, w);
        bind_text(&b, &cfg->dec, &w->dec);
        if (b.s != LG_OK) mdl_weights_free(w);
        return b.s;
    }
    if (st_find(st, "model.language_model.embed_tokens.weight")) {
        b.vis = "model.vision_tower.vision_model.";
        b.proj = "model.multi_modal_projector.";
        b.text = "model.language_model.";
        b.lm_head = "lm_head.weight";
        b.newline = "model.image_newline";
    } else {
        b.vis = "vision_tower.vision_model.";
        b.proj = "multi_modal_projector.";
        b.text = "language_model.model.";
        b.lm_head = "language_model.lm_head.weight";
        b.newline = "image_newline";
    }
    bind_vision(&b, &cfg->vit, &w->vit);
    bind_projector(&b, cfg, w);
    bind_text(&b, &cfg->dec, &w->dec);
    if (b.s != LG_OK) mdl_weights_free(w);
    return b.s;
}

void mdl_weights_free(mdl_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_owned; i++) lg_aligned_free(w->owned[i]);
    lg_free(w->owned);
    memset(w, 0, sizeof *w);
}
