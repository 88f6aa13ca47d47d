/*
 * vision.c — the vision tower: a ViT encoder run on one crop, returning the hidden state the
 * configuration selects. Matches transformers 4.45 SiglipVisionTransformer (patch conv with
 * bias, learned position embedding, pre-norm layers: LayerNorm -> multi-head attention with
 * biases -> residual, LayerNorm -> fc1 -> GELU-tanh -> fc2 -> residual) and, for the CLIP kind,
 * CLIPVisionTransformer (class token, conv without bias, pre_layrnorm, quick_gelu).
 * hidden_states[k] is the output after k layers, so only n_run layers are computed; the
 * post-layernorm is never used by LLaVA models.
 */
#include "model.h"

#include <math.h>
#include <string.h>

void mdl_activate(kern_ctx *kc, mdl_act act, float *x, int64_t n) {
    switch (act) {
    case MDL_ACT_GELU_TANH:
        kern_op_gelu_tanh(kc, x, n);
        break;
    case MDL_ACT_GELU_ERF:
        kern_op_gelu_erf(kc, x, n);
        break;
    case MDL_ACT_QUICK_GELU:
        kern_op_quick_gelu(kc, x, n);
        break;
    case MDL_ACT_SILU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    }
}

// ---- patch embedding ----

/* Unfolds the crop (n_channel, image_size, image_size) into one row per patch, row-major over
 * the grid, each row (n_channel, patch, patch) in the conv weight's order. Pixels beyond
 * grid*patch (384 - 27*14 = 6 for SigLIP) are not covered, as with a "valid" conv. */
static void patchify(const vit_config *c, const float *crop, float *rows) {
    int g = c->grid, p = c->patch_size, s = c->image_size;
    for (int py = 0; py < g; py++)
        for (int px = 0; px < g; px++) {
            float *r = rows + ((int64_t)py * g + px) * c->n_channel * p * p;
            for (int ch = 0; ch < c->n_channel; ch++)
                for (int ky = 0; ky < p; ky++) {
                    const float *src = crop + ((int64_t)ch * s + py * p + ky) * s + px * p;
                    memcpy(r, src, (size_t)p * sizeof *r);
                    r += p;
                }
        }
}

/* x (n_pos, n_embd) = [class] + conv(crop) + position embedding (+ pre_layrnorm). */
static void embed(lg_session *s, const float *crop, float *x, float *tmp) {
    const vit_config *c = &s->model->cfg.vit;
    const vit_weights *w = &s->model->w.vit;
    int64_t d = c->n_embd, n_patch = (int64_t)c->grid * c->grid;
    float *patches = x + (c->has_cls ? d : 0);
    patchify(c, crop, tmp);
    kern_matmul(s->kc, patches, tmp, &w->patch, w->patch_b, n_patch);
    if (c->has_cls) memcpy(x, w->cls, (size_t)d * sizeof *x);
    kern_op_add(s->kc, x, w->pos, c->n_pos * d);
    if (c->pre_norm) kern_op_layernorm(s->kc, x, x, w->pre_g, w->pre_b, c->n_pos, d, c->eps);
}

// ---- encoder layer ----

typedef struct vit_buf {
    float *h, *q, *k, *v, *att; /* (n_pos, n_embd) each */
    float *ff;                  /* (n_pos, max(n_ff, n_channel*patch^2)) */
} vit_buf;

/* x += out_proj(attention(layer_norm1(x))) */
static void attention_block(lg_session *s, const vit_layer *l, float *x, vit_buf *b) {
    const vit_config *c = &s->model->cfg.vit;
    int64_t n = c->n_pos, d = c->n_embd;
    kern_op_layernorm(s->kc, b->h, x, l->ln1_g, l->ln1_b, n, d, c->eps);
    kern_matmul(s->kc, b->q, b->h, &l->q, l->q_b, n);
    kern_matmul(s->kc, b->k, b->h, &l->k, l->k_b, n);
    kern_matmul(s->kc, b->v, b->h, &l->v, l->v_b, n);
    float scale = (float)(1.0 / sqrt((double)c->head_dim));
    kern_attention(s->kc, b->att, b->q, b->k, b->v, LG_DT_F32, n, n, c->n_head, c->n_head,
                   c->head_dim, d, d, false, 0, scale);
    kern_matmul(s->kc, b->h, b->att, &l->o, l->o_b, n);
    kern_op_add(s->kc, x, b->h, n * d);
}

/* x += fc2(act(fc1(layer_norm2(x)))) */
static void mlp_block(lg_session *s, const vit_layer *l, float *x, vit_buf *b) {
    const vit_config *c = &s->model->cfg.vit;
    int64_t n = c->n_pos, d = c->n_embd;
    kern_op_layernorm(s->kc, b->h, x, l->ln2_g, l->ln2_b, n, d, c->eps);
    kern_matmul(s->kc, b->ff, b->h, &l->fc1, l->fc1_b, n);
    mdl_activate(s->kc, c->act, b->ff, n * c->n_ff);
    kern_matmul(s->kc, b->h, b->ff, &l->fc2, l->fc2_b, n);
    kern_op_add(s->kc, x, b->h, n * d);
}

lg_status vit_forward_crop(lg_session *s, const float *crop, float *out) {
    const vit_config *c = &s->model->cfg.vit;
    int64_t n = c->n_pos, d = c->n_embd,
            patch = (int64_t)c->n_channel * c->patch_size * c->patch_size;
    int64_t ff = c->n_ff > patch ? c->n_ff : patch;
    float *mem = mdl_scratch_get(&s->work, (size_t)(n * (5 * d + ff)));
    if (!mem) return lg_err_set(&s->err, LG_E_NOMEM, "out of memory for the vision tower");
    vit_buf b = {.h = mem,
                 .q = mem + n * d,
                 .k = mem + 2 * n * d,
                 .v = mem + 3 * n * d,
                 .att = mem + 4 * n * d,
                 .ff = mem + 5 * n * d};
    embed(s, crop, out, b.ff);
    for (int il = 0; il < c->n_run; il++) {
        const vit_layer *l = &s->model->w.vit.layers[il];
        attention_block(s, l, out, &b);
        mlp_block(s, l, out, &b);
    }
    return LG_OK;
}
