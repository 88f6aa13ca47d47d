/*
 * decoder.c — the language model: token embeddings (with image rows spliced in), pre-norm
 * decoder layers (RMSNorm -> grouped-query attention with rotary positions -> residual,
 * RMSNorm -> SwiGLU MLP -> residual), final RMSNorm and the LM head. Matches transformers 4.45
 * Qwen2ForCausalLM with eager attention in float32 (Llama is the same block without q/k/v
 * biases). RoPE follows Qwen2RotaryEmbedding: inv_freq = 1 / theta^(2i/d) and the angle
 * pos * inv_freq are rounded to float32 as torch computes them (at position 8000 the float32
 * angle differs from the exact one by ~5e-4 rad, more than the logit tolerance allows to
 * ignore), then cos/sin of that float angle; rotate_half pairs dimension i with i + d/2.
 *
 * A pass runs several segments at once — pieces of different sequences (each with its own KV
 * cache), or several continuations of one sequence — so that one matrix product serves every
 * row. Rows are laid out grouped by the product's arithmetic class (kern_matmul_class of the
 * segment's own row count) and each group is one kern_matmul_as call, so every row gets exactly
 * the numbers a pass of its segment alone would give; attention runs per segment, in order,
 * over that segment's cache.
 */
#include "model.h"

#include <math.h>
#include <string.h>

// ---- embeddings ----

lg_status dec_embed(lg_session *s, const int32_t *ids, int64_t n, const float *image_rows,
                    int64_t n_image_rows, float *x) {
    const mdl_config *c = &s->model->cfg;
    int64_t d = c->dec.n_embd, used = 0;
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * d;
        if (image_rows && ids[i] == c->image_token) {
            if (used == n_image_rows)
                return lg_err_set(&s->err, LG_E_ARG, "more image tokens than image rows (%lld)",
                                  (long long)n_image_rows);
            memcpy(xi, image_rows + used * d, (size_t)d * sizeof *xi);
            used++;
        } else {
            kern_weight_row_f32(&s->model->w.dec.embed, ids[i], xi);
        }
    }
    return LG_OK;
}

// ---- rotary position embedding ----

/* cs[(i*half + j)*2 + {0,1}] = cos, sin of position (pos0 + i) times inv_freq[j]. With
 * multimodal RoPE (Qwen2.5-VL's apply_multimodal_rotary_pos_emb) pair j takes its position from
 * the component of pos3 its mrope_section names: the first mrope[0] pairs the temporal one,
 * the next mrope[1] the height, the rest the width. */
static void rope_table(const dec_config *c, int64_t pos0, int64_t n, const int32_t *pos3,
                       float *cs) {
    int half = c->head_dim / 2;
    float theta = (float)c->rope_theta;
    for (int j = 0; j < half; j++) {
        /* torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32. */
        float expo = (float)(2 * j) / (float)c->head_dim;
        float inv = 1.0f / powf(theta, expo);
        int comp = j < c->mrope[0] ? 0 : j < c->mrope[0] + c->mrope[1] ? 1 : 2;
        for (int64_t i = 0; i < n; i++) {
            float ang = (float)(pos3 ? pos3[i * 3 + comp] : pos0 + i) * inv;
            cs[(i * half + j) * 2] = (float)cos((double)ang);
            cs[(i * half + j) * 2 + 1] = (float)sin((double)ang);
        }
    }
}

/* q*cos + rotate_half(q)*sin on every head of n rows (row stride = n_heads*head_dim). */
static void rope_apply(const dec_config *c, float *x, int64_t n, int n_heads, const float *cs) {
    int hd = c->head_dim, half = hd / 2;
    for (int64_t i = 0; i < n; i++)
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (i * n_heads + h) * hd;
            const float *t = cs + i * half * 2;
            for (int j = 0; j < half; j++) {
                float co = t[2 * j], si = t[2 * j + 1];
                float a = v[j], b = v[j + half];
                v[j] = a * co - b * si;
                v[j + half] = b * co + a * si;
            }
        }
}

// ---- one pass over several segments ----

typedef struct dec_buf {
    float *h;         /* (T, n_embd) normed input / block output */
    float *q, *att;   /* (T, n_head*head_dim) */
    float *k, *v;     /* (T, n_head_kv*head_dim) */
    float *gate, *up; /* (T, n_ff) */
    float *cs;        /* (T, head_dim/2, 2) rope cos/sin */
} dec_buf;

typedef struct dec_pass_ctx {
    kern_ctx *kc;
    const lg_model *m;
    const dec_seg *segs;
    int n_seg;
    const dec_group *groups; /* the row groups of the layers' products */
    int n_groups;
    dec_buf b;
} dec_pass_ctx;

/* y = x W^T (+ bias) for every row group, each in its own arithmetic class. */
static void group_matmul(dec_pass_ctx *p, float *y, const float *x, const kern_weight *w,
                         const float *bias) {
    for (int g = 0; g < p->n_groups; g++) {
        const dec_group *gr = &p->groups[g];
        kern_matmul_as(p->kc, y + gr->r0 * w->n_out, x + gr->r0 * w->n_in, w, bias, gr->r1 - gr->r0,
                       gr->cls);
    }
}

/* x += o_proj(attention(rope(q), rope(k), v over each segment's cache)) of input_layernorm(x). */
static void attention_block(dec_pass_ctx *p, int il, float *x, int64_t t) {
    const dec_config *c = &p->m->cfg.dec;
    const dec_layer *l = &p->m->w.dec.layers[il];
    dec_buf *b = &p->b;
    int64_t d = c->n_embd, nq = (int64_t)c->n_head * c->head_dim;
    int64_t nkv = (int64_t)c->n_head_kv * c->head_dim;
    kern_op_rmsnorm(p->kc, b->h, x, l->ln1, t, d, c->eps);
    group_matmul(p, b->q, b->h, &l->q, l->q_b);
    group_matmul(p, b->k, b->h, &l->k, l->k_b);
    group_matmul(p, b->v, b->h, &l->v, l->v_b);
    rope_apply(c, b->q, t, c->n_head, b->cs);
    rope_apply(c, b->k, t, c->n_head_kv, b->cs);
    float scale = (float)(1.0 / sqrt((double)c->head_dim));
    /* In segment order: a later segment of the same cache sees what an earlier one stored. */
    for (int i = 0; i < p->n_seg; i++) {
        const dec_seg *sg = &p->segs[i];
        kv_cache *kv = sg->kv;
        kv_store(kv, il, sg->pos, sg->n, b->k + sg->row * nkv, b->v + sg->row * nkv);
        kern_attention(p->kc, b->att + sg->row * nq, b->q + sg->row * nq, kv->k[il], kv->v[il],
                       kv->dtype, sg->n, sg->pos + sg->n, c->n_head, c->n_head_kv, c->head_dim, nq,
                       kv->row, true, sg->pos, scale);
    }
    group_matmul(p, b->h, b->att, &l->o, l->o_b);
    kern_op_add(p->kc, x, b->h, t * d);
}

/* x += down(silu(gate(h)) * up(h)), h = post_attention_layernorm(x). */
static void mlp_block(dec_pass_ctx *p, int il, float *x, int64_t t) {
    const dec_config *c = &p->m->cfg.dec;
    const dec_layer *l = &p->m->w.dec.layers[il];
    dec_buf *b = &p->b;
    kern_op_rmsnorm(p->kc, b->h, x, l->ln2, t, c->n_embd, c->eps);
    group_matmul(p, b->gate, b->h, &l->gate, NULL);
    group_matmul(p, b->up, b->h, &l->up, NULL);
    kern_op_silu_mul(p->kc, b->gate, b->up, t * c->n_ff);
    group_matmul(p, b->h, b->gate, &l->down, NULL);
    kern_op_add(p->kc, x, b->h, t * c->n_embd);
}

size_t dec_work_floats(const dec_config *c, int64_t n) {
    int64_t nq = (int64_t)c->n_head * c->head_dim, nkv = (int64_t)c->n_head_kv * c->head_dim;
    return (size_t)(n * (c->n_embd + 2 * nq + 2 * nkv + 2 * (int64_t)c->n_ff + c->head_dim));
}

void dec_forward_segs(kern_ctx *kc, const lg_model *m, float *work, float *x, int64_t t,
                      const dec_seg *segs, int n_seg, const dec_group *groups, int n_groups) {
    const dec_config *c = &m->cfg.dec;
    int64_t d = c->n_embd, nq = (int64_t)c->n_head * c->head_dim;
    int64_t nkv = (int64_t)c->n_head_kv * c->head_dim;
    dec_pass_ctx p = {kc, m, segs, n_seg, groups, n_groups, {0}};
    p.b.h = work;
    p.b.q = p.b.h + t * d;
    p.b.att = p.b.q + t * nq;
    p.b.k = p.b.att + t * nq;
    p.b.v = p.b.k + t * nkv;
    p.b.gate = p.b.v + t * nkv;
    p.b.up = p.b.gate + t * c->n_ff;
    p.b.cs = p.b.up + t * c->n_ff;
    for (int i = 0; i < n_seg; i++)
        rope_table(c, segs[i].pos, segs[i].n, segs[i].pos3,
                   p.b.cs + segs[i].row * (c->head_dim / 2) * 2);
    for (int il = 0; il < c->n_layer; il++) {
        attention_block(&p, il, x, t);
        mlp_block(&p, il, x, t);
    }
}
