/*
 * vision_qwen.c — Qwen2.5-VL's vision side and its multimodal positions, as transformers 4.50
 * computes them (modeling_qwen2_5_vl.py, float32, eager attention):
 *   Qwen2_5_VisionTransformerPretrainedModel: the patch embedding (a Conv3d over temporal x
 *   patch x patch = one matrix product on the processor's flattened rows), get_window_index
 *   (the merged 2x2 units reordered window by window; windows of window_size / merge / patch
 *   units per side, empty ones skipped), 2-D rotary positions (rot_pos_emb: the first half of
 *   each head's rotary pairs turn with the patch row, the second with the column), blocks of
 *   RMSNorm -> attention within each window (or over the whole image in fullatt_block_indexes)
 *   -> residual, RMSNorm -> SwiGLU with biases -> residual, then the merger (RMSNorm, 4 patches
 *   side by side, Linear -> GELU -> Linear: the projector) and the inverse window order;
 *   Qwen2_5_VLForConditionalGeneration.get_rope_index: 3-D positions (text: t = h = w = previous
 *   maximum + 1; an image block: t = start, h = start + row, w = start + column).
 */
#include "model.h"

#include <math.h>
#include <string.h>

// ---- sizes ----

/* smart_resize of the Qwen2-VL processor (pp_smart_resize in src/image does the same for the
 * pixels; the model needs only the token count). */
static bool smart_size(const vit_config *v, int h, int w, int *oh, int *ow) {
    int f = v->patch_size * v->merge;
    int lo = h < w ? h : w, hi = h < w ? w : h;
    if (h < f || w < f || (double)hi / lo > 200) return false;
    double hb = nearbyint((double)h / f) * f, wb = nearbyint((double)w / f) * f;
    double area = (double)h * w;
    if (hb * wb > (double)v->max_pixels) {
        double beta = sqrt(area / (double)v->max_pixels);
        hb = floor(h / beta / f) * f;
        wb = floor(w / beta / f) * f;
    } else if (hb * wb < (double)v->min_pixels) {
        double beta = sqrt((double)v->min_pixels / area);
        hb = ceil(h * beta / f) * f;
        wb = ceil(w * beta / f) * f;
    }
    *oh = (int)hb;
    *ow = (int)wb;
    return true;
}

int64_t qvit_n_rows(const mdl_config *cfg, int orig_h, int orig_w) {
    const vit_config *v = &cfg->vit;
    int h, w;
    if (!smart_size(v, orig_h, orig_w, &h, &w)) return -1;
    int f = v->patch_size * v->merge;
    return (int64_t)(h / f) * (w / f);
}

// ---- multimodal RoPE positions ----

void mrope_positions(kv_cache *kv, const int32_t *ids, int64_t pos, int64_t n, int32_t image_token,
                     int grid_w, int32_t *pos3) {
    int32_t *mp = kv->mpos;
    for (int64_t i = 0; i < n; i++) {
        int64_t at = pos + i;
        const int32_t *prev = at > 0 ? mp + (at - 1) * 4 : NULL;
        int32_t *cur = mp + at * 4;
        if (ids[i] == image_token && grid_w > 0) {
            /* Continue the block the previous token belongs to, or start one after it. */
            int32_t st, k;
            if (prev && prev[3]) {
                st = prev[0];
                k = (prev[1] - st) * grid_w + (prev[2] - st) + 1;
            } else {
                st = prev ? (prev[0] > prev[1] ? prev[0] : prev[1]) : -1;
                st = (prev && prev[2] > st ? prev[2] : st) + 1;
                k = 0;
            }
            cur[0] = st, cur[1] = st + k / grid_w, cur[2] = st + k % grid_w, cur[3] = 1;
        } else {
            int32_t mx = -1;
            for (int c = 0; prev && c < 3; c++) mx = prev[c] > mx ? prev[c] : mx;
            cur[0] = cur[1] = cur[2] = mx + 1, cur[3] = 0;
        }
        memcpy(pos3 + i * 3, cur, 3 * sizeof *pos3);
    }
}

// ---- the tower ----

typedef struct qvit_buf {
    float *x, *h, *q, *k, *v, *att; /* (n, d) */
    float *gate, *up;               /* (n, n_ff) */
    float *cs;                      /* (n, head_dim/2, 2) rotary cos/sin */
    int *order;                     /* merged unit at each window-ordered position */
    int *cu;                        /* window boundaries in patch rows */
    int n_win;
} qvit_buf;

/* get_window_index: units in window order, and where each window's patch rows start. */
static void window_index(const vit_config *v, int uh, int uw, qvit_buf *b) {
    int ws = v->window / v->merge / v->patch_size, mm = v->merge * v->merge;
    /* As the reference pads: always ws - size % ws more (a whole empty window when divisible). */
    int nwh = (uh + ws - uh % ws) / ws, nww = (uw + ws - uw % ws) / ws;
    int k = 0;
    b->n_win = 0;
    b->cu[0] = 0;
    for (int wh = 0; wh < nwh; wh++)
        for (int ww = 0; ww < nww; ww++) {
            int k0 = k;
            for (int i = 0; i < ws; i++)
                for (int j = 0; j < ws; j++) {
                    int r = wh * ws + i, c = ww * ws + j;
                    if (r < uh && c < uw) b->order[k++] = r * uw + c;
                }
            if (k > k0) b->cu[++b->n_win] = k * mm; /* unique_consecutive drops empty ones */
        }
}

/* rot_pos_emb in window order: pair j < hd/4 turns with the patch row, the rest with the
 * column; inv_freq over dim = head_dim/2 as Qwen2_5_VisionRotaryEmbedding (float32). */
static void vision_rope_table(const vit_config *v, int uw, const qvit_buf *b, int64_t n,
                              float *cs) {
    int hd = v->head_dim, half = hd / 2, quarter = hd / 4, m = v->merge, mm = m * m;
    int dim = half;
    for (int64_t r = 0; r < n; r++) {
        int unit = b->order[r / mm], within = (int)(r % mm);
        int hpos = (unit / uw) * m + within / m, wpos = (unit % uw) * m + within % m;
        for (int j = 0; j < half; j++) {
            int jj = j < quarter ? j : j - quarter;
            float inv = 1.0f / powf(10000.0f, (float)(2 * jj) / (float)dim);
            float ang = (float)(j < quarter ? hpos : wpos) * inv;
            cs[(r * half + j) * 2] = (float)cos((double)ang);
            cs[(r * half + j) * 2 + 1] = (float)sin((double)ang);
        }
    }
}

/* x*cos + rotate_half(x)*sin per head (pairs i, i + head_dim/2). */
static void vision_rope_apply(const vit_config *v, float *x, int64_t n, const float *cs) {
    int hd = v->head_dim, half = hd / 2;
    for (int64_t i = 0; i < n; i++)
        for (int h = 0; h < v->n_head; h++) {
            float *p = x + (i * v->n_head + h) * hd;
            const float *t = cs + i * half * 2;
            for (int j = 0; j < half; j++) {
                float co = t[2 * j], si = t[2 * j + 1], a = p[j], c2 = p[j + half];
                p[j] = a * co - c2 * si;
                p[j + half] = c2 * co + a * si;
            }
        }
}

static void block(lg_session *s, int il, int64_t n, qvit_buf *b) {
    const vit_config *c = &s->model->cfg.vit;
    const vit_layer *l = &s->model->w.vit.layers[il];
    kern_ctx *kc = s->kc;
    int64_t d = c->n_embd;
    kern_op_rmsnorm(kc, b->h, b->x, l->ln1_g, n, d, c->eps);
    kern_matmul(kc, b->q, b->h, &l->q, l->q_b, n);
    kern_matmul(kc, b->k, b->h, &l->k, l->k_b, n);
    kern_matmul(kc, b->v, b->h, &l->v, l->v_b, n);
    vision_rope_apply(c, b->q, n, b->cs);
    vision_rope_apply(c, b->k, n, b->cs);
    float scale = (float)(1.0 / sqrt((double)c->head_dim));
    if (c->full_attn[il]) {
        kern_attention(kc, b->att, b->q, b->k, b->v, LG_DT_F32, n, n, c->n_head, c->n_head,
                       c->head_dim, d, d, false, 0, scale);
    } else {
        for (int w = 0; w < b->n_win; w++) {
            int64_t r0 = b->cu[w], len = b->cu[w + 1] - r0;
            kern_attention(kc, b->att + r0 * d, b->q + r0 * d, b->k + r0 * d, b->v + r0 * d,
                           LG_DT_F32, len, len, c->n_head, c->n_head, c->head_dim, d, d, false, 0,
                           scale);
        }
    }
    kern_matmul(kc, b->h, b->att, &l->o, l->o_b, n);
    kern_op_add(kc, b->x, b->h, n * d);
    kern_op_rmsnorm(kc, b->h, b->x, l->ln2_g, n, d, c->eps);
    kern_matmul(kc, b->gate, b->h, &l->fc1, l->fc1_b, n);
    kern_matmul(kc, b->up, b->h, &l->up, l->up_b, n);
    kern_op_silu_mul(kc, b->gate, b->up, n * c->n_ff);
    kern_matmul(kc, b->h, b->gate, &l->fc2, l->fc2_b, n);
    kern_op_add(kc, b->x, b->h, n * d);
}

lg_status qvit_forward(lg_session *s, const lg_pixels *px, float *out) {
    const mdl_config *cfg = &s->model->cfg;
    const vit_config *c = &cfg->vit;
    int m = c->merge, mm = m * m;
    int64_t d = c->n_embd, ff = c->n_ff, dt = cfg->dec.n_embd;
    int64_t n = (int64_t)px->grid_h * px->grid_w, units = n / mm;
    int uh = px->grid_h / m, uw = px->grid_w / m;
    LG_ASSERT(s->model->w.vit.patch.n_in ==
              (int64_t)c->n_channel * c->temporal * c->patch_size * c->patch_size);
    int ws = c->window / m / c->patch_size;
    int64_t max_win = (int64_t)(uh / ws + 2) * (uw / ws + 2) + 2;
    size_t floats = (size_t)(n * (6 * d + 2 * ff + c->head_dim)) + (size_t)(units * dt);
    float *mem = mdl_scratch_get(&s->work, floats);
    int *ints = lg_malloc((size_t)(units + max_win + 1) * sizeof *ints);
    if (!mem || !ints) {
        lg_free(ints);
        return lg_err_set(&s->err, LG_E_NOMEM, "out of memory for the vision tower");
    }
    qvit_buf b = {.x = mem,
                  .h = mem + n * d,
                  .q = mem + 2 * n * d,
                  .k = mem + 3 * n * d,
                  .v = mem + 4 * n * d,
                  .att = mem + 5 * n * d,
                  .gate = mem + 6 * n * d,
                  .up = mem + 6 * n * d + n * ff,
                  .cs = mem + 6 * n * d + 2 * n * ff,
                  .order = ints,
                  .cu = ints + units};
    float *merged = b.cs + n * c->head_dim;
    window_index(c, uh, uw, &b);
    /* the patch embedding in the processor's order, then the rows moved into window order */
    kern_matmul(s->kc, b.h, px->values, &s->model->w.vit.patch, NULL, n);
    for (int64_t u = 0; u < units; u++)
        memcpy(b.x + u * mm * d, b.h + (int64_t)b.order[u] * mm * d,
               (size_t)(mm * d) * sizeof *b.x);
    vision_rope_table(c, uw, &b, n, b.cs);
    for (int il = 0; il < c->n_layer; il++) block(s, il, n, &b);
    /* the merger: RMSNorm per patch, 2x2 patches side by side (rows are consecutive), MLP */
    kern_op_rmsnorm(s->kc, b.h, b.x, s->model->w.vit.merge_g, n, d, c->eps);
    proj_forward(s, b.h, units, merged, b.q); /* b.q: units x 4d */
    for (int64_t u = 0; u < units; u++)
        memcpy(out + (int64_t)b.order[u] * dt, merged + u * dt, (size_t)dt * sizeof *out);
    lg_free(ints);
    return LG_OK;
}
