/*
 * decoder.c — the language model: token embeddings (with image rows spliced in), pre-norm
 * decoder layers (RMSNorm -> grouped-query attention with rotary positions -> residual,
 * RMSNorm -> SwiGLU MLP -> residual), final RMSNorm and the LM head. Matches transformers 4.45
 * Qwen2ForCausalLM with eager attention in float32 (Llama is the same block without q/k/v
 * biases). RoPE follows Qwen2RotaryEmbedding: inv_freq = 1 / theta^(2i/d) and the angle
 * pos * inv_freq are rounded to float32 as torch computes them (at position 8000 the float32
 * angle differs from the exact one by ~5e-4 rad, more than the logit tolerance allows to
 * ignore), then cos/sin of that float angle; rotate_half pairs dimension i with i + d/2.
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

/* cs[(i*half + j)*2 + {0,1}] = cos, sin of position (pos0 + i) times inv_freq[j]. */
static void rope_table(const dec_config *c, int64_t pos0, int64_t n, float *cs) {
    int half = c->head_dim / 2;
    float theta = (float)c->rope_theta;
    for (int j = 0; j < half; j++) {
        /* torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32. */
        float expo = (float)(2 * j) / (float)c->head_dim;
        float inv = 1.0f / powf(theta, expo);
        for (int64_t i = 0; i < n; i++) {
            float ang = (float)(pos0 + i) * inv;
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

// ---- one layer ----

typedef struct dec_buf {
    float *h;         /* (n, n_embd) normed input / block output */
    float *q, *att;   /* (n, n_head*head_dim) */
    float *k, *v;     /* (n, n_head_kv*head_dim) */
    float *gate, *up; /* (n, n_ff) */
    float *cs;        /* (n, head_dim/2, 2) rope cos/sin */
} dec_buf;

/* x += o_proj(attention(rope(q), rope(k), v over the cache)) of input_layernorm(x). */
static void attention_block(lg_session *s, int il, float *x, int64_t n, dec_buf *b) {
    const dec_config *c = &s->model->cfg.dec;
    const dec_layer *l = &s->model->w.dec.layers[il];
    kv_cache *kv = &s->kv;
    int64_t d = c->n_embd, nq = (int64_t)c->n_head * c->head_dim;
    int64_t pos0 = kv->n;
    kern_op_rmsnorm(s->kc, b->h, x, l->ln1, n, d, c->eps);
    kern_matmul(s->kc, b->q, b->h, &l->q, l->q_b, n);
    kern_matmul(s->kc, b->k, b->h, &l->k, l->k_b, n);
    kern_matmul(s->kc, b->v, b->h, &l->v, l->v_b, n);
    rope_apply(c, b->q, n, c->n_head, b->cs);
    rope_apply(c, b->k, n, c->n_head_kv, b->cs);
    kv_store(kv, il, pos0, n, b->k, b->v);
    float scale = (float)(1.0 / sqrt((double)c->head_dim));
    kern_attention(s->kc, b->att, b->q, kv->k[il], kv->v[il], kv->dtype, n, pos0 + n, c->n_head,
                   c->n_head_kv, c->head_dim, nq, kv->row, true, pos0, scale);
    kern_matmul(s->kc, b->h, b->att, &l->o, l->o_b, n);
    kern_op_add(s->kc, x, b->h, n * d);
}

/* x += down(silu(gate(h)) * up(h)), h = post_attention_layernorm(x). */
static void mlp_block(lg_session *s, int il, float *x, int64_t n, dec_buf *b) {
    const dec_config *c = &s->model->cfg.dec;
    const dec_layer *l = &s->model->w.dec.layers[il];
    kern_op_rmsnorm(s->kc, b->h, x, l->ln2, n, c->n_embd, c->eps);
    kern_matmul(s->kc, b->gate, b->h, &l->gate, NULL, n);
    kern_matmul(s->kc, b->up, b->h, &l->up, NULL, n);
    kern_op_silu_mul(s->kc, b->gate, b->up, n * c->n_ff);
    kern_matmul(s->kc, b->h, b->gate, &l->down, NULL, n);
    kern_op_add(s->kc, x, b->h, n * c->n_embd);
}

// ---- the pass ----

size_t dec_work_floats(const dec_config *c, int64_t n) {
    int64_t nq = (int64_t)c->n_head * c->head_dim, nkv = (int64_t)c->n_head_kv * c->head_dim;
    return (size_t)(n * (c->n_embd + 2 * nq + 2 * nkv + 2 * (int64_t)c->n_ff + c->head_dim));
}

lg_status dec_forward(lg_session *s, float *x, int64_t n, bool all_logits, float *logits) {
    const dec_config *c = &s->model->cfg.dec;
    const dec_weights *w = &s->model->w.dec;
    int64_t d = c->n_embd, nq = (int64_t)c->n_head * c->head_dim;
    int64_t nkv = (int64_t)c->n_head_kv * c->head_dim;
    float *mem = mdl_scratch_get(&s->work, dec_work_floats(c, n));
    if (!mem) return lg_err_set(&s->err, LG_E_NOMEM, "out of memory for the decoder");
    if (s->kv.n + n > s->kv.cap) return lg_err_set(&s->err, LG_E_INTERNAL, "KV cache not reserved");
    dec_buf b;
    b.h = mem;
    b.q = b.h + n * d;
    b.att = b.q + n * nq;
    b.k = b.att + n * nq;
    b.v = b.k + n * nkv;
    b.gate = b.v + n * nkv;
    b.up = b.gate + n * c->n_ff;
    b.cs = b.up + n * c->n_ff;
    rope_table(c, s->kv.n, n, b.cs);
    for (int il = 0; il < c->n_layer; il++) {
        attention_block(s, il, x, n, &b);
        mlp_block(s, il, x, n, &b);
    }
    s->kv.n += n;
    if (!logits) return LG_OK;
    int64_t rows = all_logits ? n : 1;
    const float *src = all_logits ? x : x + (n - 1) * d;
    kern_op_rmsnorm(s->kc, b.h, src, w->norm, rows, d, c->eps);
    kern_matmul(s->kc, logits, b.h, &w->lm_head, NULL, rows);
    return LG_OK;
}
