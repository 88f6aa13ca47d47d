/*
 * pass.c — batched decoder evaluation: several segments (pieces of different sequences, or
 * several continuations of one) in one decoder pass, so that one matrix product per weight
 * serves every row. This is what the batch engine steps with, and lg_session_eval is the
 * one-segment case, so both compute the same numbers by construction.
 *
 * Rows are laid out grouped by the arithmetic class of each segment's own row count
 * (kern_matmul_class: e.g. weight streaming below 4 rows, the blocked GEMM above), and the LM
 * head's rows likewise by the class of the rows each segment asks logits for: a segment's rows
 * are computed exactly as if it ran alone.
 */
#include "model.h"

#include <string.h>

void mdl_pass_free(mdl_pass *p) {
    if (!p) return;
    mdl_scratch_free(&p->x);
    mdl_scratch_free(&p->work);
    mdl_scratch_free(&p->h);
    mdl_scratch_free(&p->logits);
    lg_free(p->dsegs);
    lg_free(p->idx);
    lg_free(p->pos3);
    memset(p, 0, sizeof *p);
}

static bool pass_reserve_segs(mdl_pass *p, int n) {
    if (n <= p->cap) return true;
    int cap = p->cap ? p->cap : 16;
    while (cap < n) cap *= 2;
    dec_seg *d = lg_realloc(p->dsegs, (size_t)cap * sizeof *d);
    if (d) p->dsegs = d;
    int *idx = lg_realloc(p->idx, (size_t)cap * 2 * sizeof *idx);
    if (idx) p->idx = idx;
    if (!d || !idx) return false;
    p->cap = cap;
    return true;
}

/* Where segment i starts when it names no position: the end of the last earlier valid segment
 * of the same session in this pass, else the session's fill. */
static int64_t fill_before(const mdl_seg *segs, int i) {
    for (int j = i - 1; j >= 0; j--)
        if (segs[j].s == segs[i].s && segs[j].status == LG_OK) return segs[j].pos + segs[j].n;
    return segs[i].s->kv.n;
}

/* Checks one segment and makes room in its cache; on failure the message is in s->err. */
static lg_status check_seg(const lg_model *m, mdl_seg *sg, int64_t fill) {
    lg_session *s = sg->s;
    const mdl_config *c = &m->cfg;
    if (s->model != m) return lg_err_set(&s->err, LG_E_ARG, "a session of another model");
    if (!sg->ids || sg->n <= 0) return lg_err_set(&s->err, LG_E_ARG, "no tokens to evaluate");
    if (sg->pos < 0) sg->pos = fill;
    if (sg->pos > fill)
        return lg_err_set(&s->err, LG_E_ARG, "position %lld is beyond the %lld cached tokens",
                          (long long)sg->pos, (long long)fill);
    int64_t n_img = 0;
    for (int64_t i = 0; i < sg->n; i++) {
        if (sg->ids[i] < 0 || sg->ids[i] >= c->dec.n_vocab)
            return lg_err_set(&s->err, LG_E_ARG, "token %lld: id %d is outside [0, %lld)",
                              (long long)i, (int)sg->ids[i], (long long)c->dec.n_vocab);
        n_img += sg->ids[i] == c->image_token;
    }
    if (sg->image_rows && n_img != sg->n_image_rows)
        return lg_err_set(&s->err, LG_E_ARG, "%lld image tokens but %lld image feature rows",
                          (long long)n_img, (long long)sg->n_image_rows);
    if (sg->pos + sg->n > s->kv.max)
        return lg_err_set(&s->err, LG_E_LIMIT,
                          "%lld + %lld tokens exceed the context limit of %lld", (long long)sg->pos,
                          (long long)sg->n, (long long)s->kv.max);
    return mdl_session_reserve(s, sg->pos + sg->n);
}

static int64_t logit_rows(const mdl_seg *sg) {
    return sg->no_logits ? 0 : sg->all_logits ? sg->n : 1;
}

/* Stable order of the valid segments by class (classes are small integers). */
static int order_by_class(const int *cls, const int *valid, int n, int *order) {
    int k = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (valid[i] && cls[i] > max) max = cls[i];
    for (int c = 0; c <= max; c++)
        for (int i = 0; i < n; i++)
            if (valid[i] && cls[i] == c) order[k++] = i;
    return k;
}

/* Groups consecutive runs of one class in `order` into row ranges. */
static int make_groups(const int *order, int k, const int *cls, const int64_t *rows,
                       dec_group *groups, int64_t *first_row) {
    int ng = 0;
    int64_t r = 0;
    for (int j = 0; j < k; j++) {
        int i = order[j];
        first_row[i] = r;
        if (ng == 0 || groups[ng - 1].cls != cls[i]) groups[ng++] = (dec_group){r, r, cls[i]};
        r += rows[i];
        groups[ng - 1].r1 = r;
    }
    return ng;
}

#define PASS_MAX_CLASSES 8

lg_status mdl_pass_run(mdl_pass *p, kern_ctx *kc, const lg_model *m, mdl_seg *segs, int n) {
    const dec_config *c = &m->cfg.dec;
    int64_t d = c->n_embd, v = c->n_vocab;
    if (n <= 0) return LG_OK;
    for (int i = 0; i < n; i++) segs[i].status = LG_E_INTERNAL, segs[i].logits = NULL;
    /* small per-pass tables live on the stack up to a size, else in the pass */
    if (!pass_reserve_segs(p, n)) goto nomem;
    int64_t t = 0, r_log = 0;
    enum { MAXS = 256 };
    if (n > MAXS) {
        for (int i = 0; i < n; i++)
            segs[i].status = lg_err_set(&segs[i].s->err, LG_E_LIMIT, "more than %d segments", MAXS);
        return LG_OK;
    }
    int cls[MAXS], lcls[MAXS], valid[MAXS];
    int64_t rows[MAXS], lrows[MAXS], row0[MAXS], lrow0[MAXS];
    for (int i = 0; i < n; i++) {
        mdl_seg *sg = &segs[i];
        lg_err_clear(&sg->s->err);
        sg->status = check_seg(m, sg, fill_before(segs, i));
        valid[i] = sg->status == LG_OK;
        if (!valid[i]) continue;
        rows[i] = sg->n;
        lrows[i] = logit_rows(sg);
        cls[i] = kern_matmul_class(kc, sg->n);
        lcls[i] = lrows[i] ? kern_matmul_class(kc, lrows[i]) : 0;
        if (cls[i] >= PASS_MAX_CLASSES || lcls[i] >= PASS_MAX_CLASSES) {
            sg->status = lg_err_set(&sg->s->err, LG_E_INTERNAL, "unknown product class");
            valid[i] = 0;
            continue;
        }
        t += rows[i];
        r_log += lrows[i];
    }
    if (t == 0) return LG_OK;
    float *x = mdl_scratch_get(&p->x, (size_t)(t * d));
    float *work = mdl_scratch_get(&p->work, dec_work_floats(c, t));
    float *h = mdl_scratch_get(&p->h, (size_t)((r_log ? r_log : 1) * d));
    if (!x || !work || !h) goto nomem;
    bool mrope = (c->mrope[0] | c->mrope[1] | c->mrope[2]) != 0;
    if (mrope && (size_t)t * 3 > p->pos3_cap) {
        int32_t *q = lg_realloc(p->pos3, (size_t)t * 3 * sizeof *q);
        if (!q) goto nomem;
        p->pos3 = q;
        p->pos3_cap = (size_t)t * 3;
    }

    int *order = p->idx, *lorder = p->idx + p->cap;
    dec_group groups[PASS_MAX_CLASSES], lgroups[PASS_MAX_CLASSES];
    int k = order_by_class(cls, valid, n, order);
    int ng = make_groups(order, k, cls, rows, groups, row0);
    /* the logits rows: only the segments that want some */
    int lvalid[MAXS];
    for (int i = 0; i < n; i++) lvalid[i] = valid[i] && lrows[i] > 0;
    int lk = order_by_class(lcls, lvalid, n, lorder);
    int lng = make_groups(lorder, lk, lcls, lrows, lgroups, lrow0);
    /* A group of one segment that brought its own buffer is written there directly. */
    int lone[PASS_MAX_CLASSES]; /* per group: its only segment, or -1 */
    bool need_pool = false;
    for (int g = 0; g < lng; g++) {
        int count = 0;
        lone[g] = -1;
        for (int j = 0; j < lk; j++)
            if (lrow0[lorder[j]] >= lgroups[g].r0 && lrow0[lorder[j]] < lgroups[g].r1)
                count++, lone[g] = lorder[j];
        if (count != 1 || !segs[lone[g]].logits_dst) lone[g] = -1, need_pool = true;
    }
    float *lbuf = NULL;
    if (need_pool && !(lbuf = mdl_scratch_get(&p->logits, (size_t)(r_log * v)))) goto nomem;

    /* embeddings, in the pass's row order */
    int n_ds = 0;
    for (int i = 0; i < n; i++) {
        if (!valid[i]) continue;
        mdl_seg *sg = &segs[i];
        lg_status st =
            dec_embed(sg->s, sg->ids, sg->n, sg->image_rows, sg->n_image_rows, x + row0[i] * d);
        if (st != LG_OK) { /* checked above: an inconsistency fails the whole pass */
            for (int j = 0; j < n; j++)
                if (valid[j])
                    segs[j].status = lg_err_set(&segs[j].s->err, LG_E_INTERNAL,
                                                "embedding failed after its checks");
            return LG_E_INTERNAL;
        }
        /* Multimodal RoPE positions continue the cache's, segment by segment in order. */
        int32_t *pos3 = NULL;
        if (mrope && sg->s->kv.mpos) {
            pos3 = p->pos3 + row0[i] * 3;
            mrope_positions(&sg->s->kv, sg->ids, sg->pos, sg->n, m->cfg.image_token,
                            sg->s->mrope_grid_w, pos3);
        }
        p->dsegs[n_ds++] = (dec_seg){&sg->s->kv, sg->pos, sg->n, row0[i], pos3};
    }
    dec_forward_segs(kc, m, work, x, t, p->dsegs, n_ds, groups, ng);
    for (int i = 0; i < n; i++)
        if (valid[i])
            segs[i].s->kv.n = segs[i].pos + segs[i].n; /* the last one of a session wins */

    /* final norm of the rows that want logits, gathered by class, then the LM head per group */
    for (int i = 0; i < n; i++) {
        if (!lvalid[i]) continue;
        const float *src = x + (row0[i] + (segs[i].all_logits ? 0 : segs[i].n - 1)) * d;
        kern_op_rmsnorm(kc, h + lrow0[i] * d, src, m->w.dec.norm, lrows[i], d, c->eps);
    }
    for (int g = 0; g < lng; g++) {
        int64_t r0 = lgroups[g].r0, nr = lgroups[g].r1 - r0;
        float *dst = lone[g] >= 0 ? segs[lone[g]].logits_dst : lbuf + r0 * v;
        kern_matmul_as(kc, dst, h + r0 * d, &m->w.dec.lm_head, NULL, nr, lgroups[g].cls);
    }
    for (int j = 0; j < lk; j++) {
        int i = lorder[j];
        mdl_seg *sg = &segs[i];
        bool direct = false;
        for (int g = 0; g < lng; g++) direct = direct || lone[g] == i;
        if (direct) {
            sg->logits = sg->logits_dst;
        } else if (sg->logits_dst) {
            memcpy(sg->logits_dst, lbuf + lrow0[i] * v, (size_t)(lrows[i] * v) * sizeof(float));
            sg->logits = sg->logits_dst;
        } else {
            sg->logits = lbuf + lrow0[i] * v;
        }
    }
    return LG_OK;
nomem:
    for (int i = 0; i < n; i++)
        segs[i].status = lg_err_set(&segs[i].s->err, LG_E_NOMEM, "out of memory for the decoder");
    return LG_E_NOMEM;
}
