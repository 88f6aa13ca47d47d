/*
 * projector.c — the multimodal projector of LLaVA models: linear_1 -> activation (GELU, erf
 * form) -> linear_2, mapping vision-tower rows to the decoder's width. Matches transformers
 * 4.45 LlavaOnevisionMultiModalProjector (the same module as LLaVA-1.5/1.6's) and the MLP of
 * Qwen2.5-VL's patch merger (4 patches wide in, the same width out of linear_1).
 */
#include "model.h"

void proj_forward(lg_session *s, const float *in, int64_t n, float *out, float *tmp) {
    const mdl_config *c = &s->model->cfg;
    const proj_weights *w = &s->model->w.proj;
    kern_matmul(s->kc, tmp, in, &w->l1, w->b1, n);
    mdl_activate(s->kc, c->proj_act, tmp, n * w->l1.n_out);
    kern_matmul(s->kc, out, tmp, &w->l2, w->b2, n);
}
