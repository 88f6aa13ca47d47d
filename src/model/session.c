/*
 * session.c — lg_session: the mutable half of a model run. A session owns the KV cache, the
 * scratch buffers, the kernel context (threads) and the last logits, and strings the forward
 * passes together: image -> vision tower -> projector -> packing (encode_image, which also
 * records how long each part took for lg_session_last_encode_timings), ids + image
 * rows -> decoder (eval, in chunks so scratch stays bounded), and the generation loop with
 * transformers' semantics (the output includes the stop id; the last id is not fed back).
 */
#include "model.h"

#include <string.h>
#include <time.h>

/* Tokens per decoder pass: bounds scratch memory (≈ chunk * (n_ff*2 + ...) floats) while
 * keeping matrix products wide enough to amortise weight conversion. */
#define SESS_CHUNK 512

float *mdl_scratch_get(mdl_scratch *s, size_t n) {
    if (n <= s->cap) return s->data;
    size_t bytes;
    if (!lg_mul_ok(n, sizeof(float), &bytes)) return NULL;
    float *p = lg_aligned_alloc(bytes);
    if (!p) return NULL;
    lg_aligned_free(s->data);
    s->data = p;
    s->cap = n;
    return p;
}

void mdl_scratch_free(mdl_scratch *s) {
    lg_aligned_free(s->data);
    s->data = NULL;
    s->cap = 0;
}

lg_status mdl_session_create(const lg_model *model, kern_ctx *kc, lg_session **out, lg_error *err) {
    if (!model || !out) return lg_err_set(err, LG_E_ARG, "lg_session_create: NULL argument");
    lg_session *s = lg_calloc(1, sizeof *s);
    if (!s) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    s->model = model;
    s->owns_kc = kc == NULL;
    s->kc = kc ? kc : kern_ctx_create(model->n_threads, model->kernels);
    if (!s->kc) {
        lg_free(s);
        return lg_err_set(err, LG_E_NOMEM, "cannot create the kernel context");
    }
    if (s->owns_kc) kern_ctx_set_precision(s->kc, model->precision);
    const dec_config *d = &model->cfg.dec;
    lg_status st =
        kv_init(&s->kv, model->kv_dtype, d->n_layer, d->n_head_kv, d->head_dim, model->n_ctx, err);
    if (st == LG_OK && (d->mrope[0] | d->mrope[1] | d->mrope[2])) st = kv_enable_mpos(&s->kv, err);
    if (st != LG_OK) {
        kv_free(&s->kv);
        if (s->owns_kc) kern_ctx_free(s->kc);
        lg_free(s);
        return st;
    }
    *out = s;
    return LG_OK;
}

lg_status lg_session_create(const lg_model *model, lg_session **out, lg_error *err) {
    return mdl_session_create(model, NULL, out, err);
}

void lg_session_free(lg_session *s) {
    if (!s) return;
    kv_free(&s->kv);
    mdl_pass_free(&s->pass);
    mdl_scratch_free(&s->work);
    mdl_scratch_free(&s->work2);
    lg_free(s->logits);
    if (s->owns_kc) kern_ctx_free(s->kc);
    lg_free(s);
}

lg_status mdl_session_reserve(lg_session *s, int64_t upto) {
    if (upto <= s->kv.cap) return LG_OK;
    int64_t n0 = s->kv.n;
    s->kv.n = 0; /* kv_reserve counts from the fill mark */
    lg_status st = kv_reserve(&s->kv, upto, &s->err);
    s->kv.n = n0;
    return st;
}

lg_status mdl_session_copy_prefix(lg_session *dst, const lg_session *src, int64_t n) {
    lg_err_clear(&dst->err);
    if (dst->model != src->model || n < 0 || n > src->kv.n)
        return lg_err_set(&dst->err, LG_E_ARG, "cannot copy %lld of %lld cached tokens",
                          (long long)n, (long long)src->kv.n);
    lg_status st = mdl_session_reserve(dst, n);
    if (st != LG_OK) return st;
    size_t bytes = (size_t)n * (size_t)src->kv.row * lg_dtype_size(src->kv.dtype);
    for (int il = 0; il < src->kv.n_layer; il++) {
        memcpy(dst->kv.k[il], src->kv.k[il], bytes);
        memcpy(dst->kv.v[il], src->kv.v[il], bytes);
    }
    if (src->kv.mpos && n > 0) memcpy(dst->kv.mpos, src->kv.mpos, (size_t)n * 4 * sizeof(int32_t));
    dst->mrope_grid_w = src->mrope_grid_w;
    dst->kv.n = n;
    dst->n_logits = 0;
    return LG_OK;
}

const char *lg_session_errmsg(const lg_session *s) {
    return s ? s->err.msg : "no session";
}

int64_t lg_session_n_past(const lg_session *s) {
    return s->kv.n;
}

lg_status lg_session_truncate(lg_session *s, int64_t n) {
    lg_err_clear(&s->err);
    if (n < 0 || n > s->kv.n)
        return lg_err_set(&s->err, LG_E_ARG, "cannot truncate %lld tokens to %lld",
                          (long long)s->kv.n, (long long)n);
    s->kv.n = n;
    s->n_logits = 0;
    return LG_OK;
}

// ---- image ----

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

lg_status lg_session_last_encode_timings(lg_session *s, lg_encode_timings *out) {
    if (!s) return LG_E_ARG;
    lg_err_clear(&s->err);
    if (!out) return lg_err_set(&s->err, LG_E_ARG, "NULL output");
    if (!s->have_enc_timings)
        return lg_err_set(&s->err, LG_E_ARG, "no image encoded yet (or the last encode failed)");
    *out = s->enc_timings;
    return LG_OK;
}

/* Pixels of the Qwen2-VL processor: frames x (patch grid) flattened, as the tower cuts them. */
static lg_status check_merged_pixels(lg_session *s, const lg_pixels *px, int64_t *rows) {
    const vit_config *v = &s->model->cfg.vit;
    int f = v->patch_size * v->merge;
    if (px->channels != v->n_channel || px->n_crops != v->temporal || px->height % f ||
        px->width % f || px->grid_h != px->height / v->patch_size ||
        px->grid_w != px->width / v->patch_size || px->height < f || px->width < f)
        return lg_err_set(&s->err, LG_E_ARG,
                          "pixels of %d frames, %dx%dx%d (grid %dx%d) are not the Qwen2-VL "
                          "processor's for this model (%d frames, sides multiples of %d)",
                          px->n_crops, px->channels, px->height, px->width, px->grid_h, px->grid_w,
                          v->temporal, f);
    *rows = (int64_t)(px->grid_h / v->merge) * (px->grid_w / v->merge);
    if (px->image_tokens > 0 && px->image_tokens != *rows)
        return lg_err_set(&s->err, LG_E_ARG,
                          "the pixels expect %lld image tokens but the model merges %lld",
                          (long long)px->image_tokens, (long long)*rows);
    return LG_OK;
}

static lg_status check_pixels(lg_session *s, const lg_pixels *px, int *grid_h, int *grid_w,
                              int64_t *rows) {
    const mdl_config *c = &s->model->cfg;
    const vit_config *v = &c->vit;
    if (!px || !px->values || px->n_crops < 1) return lg_err_set(&s->err, LG_E_ARG, "no pixels");
    if (c->pack == PACK_MERGED) return check_merged_pixels(s, px, rows);
    if (px->channels != v->n_channel || px->height != v->image_size || px->width != v->image_size)
        return lg_err_set(&s->err, LG_E_ARG, "crops are %dx%dx%d, the model takes %dx%dx%d",
                          px->channels, px->height, px->width, v->n_channel, v->image_size,
                          v->image_size);
    *rows = pack_n_rows(c, px->orig_height, px->orig_width, grid_h, grid_w);
    if (*rows < 0)
        return lg_err_set(&s->err, LG_E_ARG, "cannot pack an image of %dx%d", px->orig_width,
                          px->orig_height);
    int want = c->pack == PACK_SINGLE ? 1 : 1 + *grid_h * *grid_w;
    if (px->n_crops != want || (px->grid_h && (px->grid_h != *grid_h || px->grid_w != *grid_w)))
        return lg_err_set(&s->err, LG_E_ARG,
                          "an image of %dx%d needs %d crops (grid %dx%d); the pixels have %d "
                          "(grid %dx%d)",
                          px->orig_width, px->orig_height, want, *grid_h, *grid_w, px->n_crops,
                          px->grid_h, px->grid_w);
    if (px->image_tokens > 0 && px->image_tokens != *rows)
        return lg_err_set(&s->err, LG_E_ARG,
                          "the pixels expect %lld image tokens but the model packs %lld",
                          (long long)px->image_tokens, (long long)*rows);
    return LG_OK;
}

void mdl_session_note_image(lg_session *s, const lg_pixels *px) {
    const mdl_config *c = &s->model->cfg;
    if (c->pack == PACK_MERGED && px && c->vit.merge > 0)
        s->mrope_grid_w = px->grid_w / c->vit.merge;
}

lg_status mdl_encode_begin(lg_session *s, const lg_pixels *px, mdl_encoding *e) {
    lg_err_clear(&s->err);
    s->have_enc_timings = false;
    memset(e, 0, sizeof *e);
    const mdl_config *c = &s->model->cfg;
    int gh = 0, gw = 0;
    lg_status st = check_pixels(s, px, &gh, &gw, &e->rows);
    if (st != LG_OK) return st;
    int64_t per = c->vit.n_out_rows, dv = c->vit.n_embd, dt = c->dec.n_embd;
    bool merged = c->pack == PACK_MERGED;
    e->n_steps = merged ? 1 : px->n_crops;
    size_t n_proj = merged ? (size_t)(e->rows * dt) : (size_t)px->n_crops * (size_t)(per * dt);
    e->proj = lg_malloc(n_proj * sizeof *e->proj);
    if (!e->proj ||
        (!merged && !mdl_scratch_get(&s->work2, (size_t)(c->vit.n_pos * dv + per * dt)))) {
        mdl_encode_abort(e);
        return lg_err_set(&s->err, LG_E_NOMEM, "out of memory encoding an image");
    }
    e->px = px;
    e->tm = (lg_encode_timings){.crops = px->n_crops, .rows = e->rows};
    return LG_OK;
}

bool mdl_encode_done(const mdl_encoding *e) {
    return e->px && e->next >= e->n_steps;
}

lg_status mdl_encode_step(lg_session *s, mdl_encoding *e) {
    const mdl_config *c = &s->model->cfg;
    if (!e->px || mdl_encode_done(e)) return lg_err_set(&s->err, LG_E_ARG, "no crop to encode");
    int64_t per = c->vit.n_out_rows, dv = c->vit.n_embd, dt = c->dec.n_embd;
    int64_t crop_floats = (int64_t)c->vit.n_channel * c->vit.image_size * c->vit.image_size;
    float *feat = s->work2.data, *tmp = feat + c->vit.n_pos * dv;
    int i = e->next;
    double t0 = mono_s();
    if (c->pack == PACK_MERGED) { /* the whole image in one pass; the merger projects */
        lg_status st = qvit_forward(s, e->px, e->proj);
        if (st != LG_OK) return st;
        e->tm.vision_s += mono_s() - t0;
        e->next++;
        return LG_OK;
    }
    lg_status st = vit_forward_crop(s, e->px->values + i * crop_floats, feat);
    if (st != LG_OK) return st;
    double t1 = mono_s();
    const float *sel = feat + (c->vit.drop_cls ? dv : 0);
    proj_forward(s, sel, per, e->proj + (size_t)i * (size_t)(per * dt), tmp);
    double t2 = mono_s();
    e->tm.vision_s += t1 - t0, e->tm.projector_s += t2 - t1;
    e->next++;
    return LG_OK;
}

lg_status mdl_encode_end(lg_session *s, mdl_encoding *e, float **features, int64_t *n_rows) {
    const mdl_config *c = &s->model->cfg;
    if (!mdl_encode_done(e)) return lg_err_set(&s->err, LG_E_ARG, "crops left to encode");
    float *out = lg_malloc((size_t)(e->rows * c->dec.n_embd) * sizeof *out);
    if (!out) return lg_err_set(&s->err, LG_E_NOMEM, "out of memory encoding an image");
    double t3 = mono_s();
    lg_status st = LG_OK;
    if (c->pack == PACK_MERGED) {
        memcpy(out, e->proj, (size_t)(e->rows * c->dec.n_embd) * sizeof *out);
        mdl_session_note_image(s, e->px); /* for the positions of these rows */
    } else {
        st = pack_features(c, e->proj, e->px->n_crops, e->px->orig_height, e->px->orig_width,
                           s->model->w.newline, out, &s->err);
    }
    if (st != LG_OK) {
        lg_free(out);
        return st;
    }
    e->tm.packing_s = mono_s() - t3;
    s->enc_timings = e->tm;
    s->have_enc_timings = true;
    *features = out;
    *n_rows = e->rows;
    mdl_encode_abort(e);
    return LG_OK;
}

void mdl_encode_abort(mdl_encoding *e) {
    lg_free(e->proj);
    memset(e, 0, sizeof *e);
}

lg_status lg_session_encode_image(lg_session *s, const lg_pixels *px, float **features,
                                  int64_t *n_rows) {
    if (!features || !n_rows) return lg_err_set(&s->err, LG_E_ARG, "NULL output");
    mdl_encoding e;
    lg_status st = mdl_encode_begin(s, px, &e);
    while (st == LG_OK && !mdl_encode_done(&e)) st = mdl_encode_step(s, &e);
    if (st == LG_OK) st = mdl_encode_end(s, &e, features, n_rows);
    if (st != LG_OK) mdl_encode_abort(&e);
    return st;
}

// ---- text ----

static lg_status check_ids(lg_session *s, const int32_t *ids, size_t n, const float *image_features,
                           int64_t n_rows) {
    const mdl_config *c = &s->model->cfg;
    if (!ids || n == 0) return lg_err_set(&s->err, LG_E_ARG, "no tokens to evaluate");
    int64_t n_img = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= c->dec.n_vocab)
            return lg_err_set(&s->err, LG_E_ARG, "token %zu: id %d is outside [0, %lld)", i,
                              (int)ids[i], (long long)c->dec.n_vocab);
        n_img += ids[i] == c->image_token;
    }
    if (image_features && n_img != n_rows)
        return lg_err_set(&s->err, LG_E_ARG, "%lld image tokens but %lld image feature rows",
                          (long long)n_img, (long long)n_rows);
    if (s->kv.n + (int64_t)n > s->kv.max)
        return lg_err_set(&s->err, LG_E_LIMIT, "%lld + %zu tokens exceed the context limit of %lld",
                          (long long)s->kv.n, n, (long long)s->kv.max);
    return LG_OK;
}

lg_status lg_session_eval(lg_session *s, const int32_t *ids, size_t n, const float *image_features,
                          int64_t n_feature_rows, int all_logits, const float **logits) {
    lg_err_clear(&s->err);
    lg_status st = check_ids(s, ids, n, image_features, n_feature_rows);
    if (st != LG_OK) return st;
    const dec_config *d = &s->model->cfg.dec;
    int64_t chunk = (int64_t)n < SESS_CHUNK ? (int64_t)n : SESS_CHUNK;
    int64_t rows = all_logits ? (int64_t)n : 1;
    size_t need = (size_t)rows * (size_t)d->n_vocab;
    if (need > s->logits_cap) {
        size_t bytes;
        float *l = lg_mul_ok(need, sizeof(float), &bytes) ? lg_malloc(bytes) : NULL;
        if (!l)
            return lg_err_set(&s->err, LG_E_NOMEM, "out of memory for %lld logits rows",
                              (long long)rows);
        lg_free(s->logits);
        s->logits = l;
        s->logits_cap = need;
    }
    /* Reserve everything first: once the layers run nothing can fail, so a failed call leaves
     * the session as it was. */
    st = kv_reserve(&s->kv, (int64_t)n, &s->err);
    if (st != LG_OK) return st;
    int64_t n_past0 = s->kv.n, used = 0;
    s->n_logits = 0;
    for (int64_t off = 0; off < (int64_t)n; off += chunk) {
        int64_t m = (int64_t)n - off < chunk ? (int64_t)n - off : chunk;
        int64_t img = 0;
        for (int64_t i = 0; i < m; i++)
            img += image_features && ids[off + i] == s->model->cfg.image_token;
        bool last = off + m == (int64_t)n;
        mdl_seg seg = {.s = s,
                       .pos = -1,
                       .ids = ids + off,
                       .n = m,
                       .image_rows = image_features ? image_features + used * d->n_embd : NULL,
                       .n_image_rows = img,
                       .all_logits = all_logits != 0,
                       .no_logits = !all_logits && !last,
                       .logits_dst = all_logits ? s->logits + off * d->n_vocab : s->logits};
        used += img;
        mdl_pass_run(&s->pass, s->kc, s->model, &seg, 1);
        if ((st = seg.status) != LG_OK) break;
    }
    if (st != LG_OK) {
        s->kv.n = n_past0;
        return st;
    }
    s->n_logits = rows;
    if (logits) *logits = s->logits;
    return LG_OK;
}

lg_status lg_session_eval_batch(lg_eval_item *items, size_t n) {
    if (!items || n == 0 || n > 256 || !items[0].session) return LG_E_ARG;
    lg_session *first = items[0].session;
    mdl_seg segs[256];
    for (size_t i = 0; i < n; i++) {
        lg_session *s = items[i].session ? items[i].session : first;
        items[i].logits = NULL;
        segs[i] = (mdl_seg){.s = s,
                            .pos = -1,
                            .ids = items[i].ids,
                            .n = items[i].n > 512 ? -1 : (int64_t)items[i].n,
                            .all_logits = items[i].all_logits != 0};
    }
    lg_status st = mdl_pass_run(&first->pass, first->kc, first->model, segs, (int)n);
    for (size_t i = 0; i < n; i++) {
        items[i].status = segs[i].status;
        if (items[i].n > 512)
            items[i].status = lg_err_set(&segs[i].s->err, LG_E_ARG,
                                         "%zu tokens: a batch item takes at most 512", items[i].n);
        items[i].logits = segs[i].logits;
        segs[i].s->n_logits = 0;
    }
    return st;
}

lg_status mdl_session_eval_multi(lg_session *s, mdl_seg *segs, int n) {
    for (int i = 0; i < n; i++) segs[i].s = s;
    lg_status st = mdl_pass_run(&s->pass, s->kc, s->model, segs, n);
    for (int i = 0; i < n && st == LG_OK; i++) st = segs[i].status;
    s->n_logits = 0; /* the session's own logits buffer no longer holds the last eval's */
    return st;
}

// ---- generation ----

lg_generate_params lg_generate_params_default(void) {
    return (lg_generate_params){.max_new_tokens = 256, .sampler = lg_sampler_params_default()};
}

static bool is_stop(const lg_session *s, const lg_generate_params *gp, int32_t id) {
    const int32_t *stop = gp->stop_ids ? gp->stop_ids : s->model->cfg.eos;
    size_t n = gp->stop_ids ? gp->n_stop_ids : (size_t)s->model->cfg.n_eos;
    for (size_t i = 0; i < n; i++)
        if (stop[i] == id) return true;
    return false;
}

lg_status lg_session_generate(lg_session *s, const int32_t *ids, size_t n,
                              const float *image_features, int64_t n_feature_rows,
                              const lg_generate_params *gp_in, int32_t **out_ids, size_t *n_out) {
    lg_err_clear(&s->err);
    lg_generate_params gp = gp_in ? *gp_in : lg_generate_params_default();
    if (!out_ids || !n_out || gp.max_new_tokens < 0)
        return lg_err_set(&s->err, LG_E_ARG, "bad generation arguments");
    const float *logits = NULL;
    int64_t v = s->model->cfg.dec.n_vocab;
    if (n > 0) {
        lg_status st = lg_session_eval(s, ids, n, image_features, n_feature_rows, 0, &logits);
        if (st != LG_OK) return st;
    } else if (s->n_logits > 0) {
        logits = s->logits + (s->n_logits - 1) * v;
    } else {
        return lg_err_set(&s->err, LG_E_ARG, "nothing to continue from: evaluate a prompt first");
    }
    int32_t *out = lg_malloc((size_t)(gp.max_new_tokens > 0 ? gp.max_new_tokens : 1) * sizeof *out);
    if (!out) return lg_err_set(&s->err, LG_E_NOMEM, "out of memory");
    uint64_t rng = gp.sampler.seed;
    smp_work work = {0}; /* the sampler's memory, kept for the whole loop */
    size_t k = 0;
    lg_status st = LG_OK;
    while ((int)k < gp.max_new_tokens) {
        int32_t id;
        st = smp_sample(logits, v, &gp.sampler, &rng, &work, &id, &s->err);
        if (st != LG_OK) break;
        out[k++] = id;
        if (gp.on_token && gp.on_token(gp.user, id)) break;
        if (is_stop(s, &gp, id) || (int)k == gp.max_new_tokens) break;
        if (s->kv.n + 1 > s->kv.max) break; /* context full: stop, as the issue allows */
        st = lg_session_eval(s, &id, 1, NULL, 0, 0, &logits);
        if (st != LG_OK) break;
    }
    smp_work_free(&work);
    if (st != LG_OK) {
        lg_free(out);
        return st;
    }
    *out_ids = out;
    *n_out = k;
    return LG_OK;
}
