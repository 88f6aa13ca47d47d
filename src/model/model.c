/*
 * model.c — lg_model: opens a model folder (config, mapped safetensors, bound weights) and
 * answers questions about it. The model is immutable after lg_model_open; sessions (session.c)
 * hold all mutable state, so one model serves any number of threads. With the fast kernels the
 * weight matrices are repacked once at open into their layout (prepare_weights).
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

lg_model_params lg_model_params_default(void) {
    return (lg_model_params){.n_threads = 0,
                             .kernels = "auto",
                             .kv_type = LG_KV_AUTO,
                             .max_context = 0,
                             .prepack = -1,
                             .precision = LG_PRECISION_ACCURATE};
}

/* What LG_KV_AUTO means: float32 for the reference kernels (the --exact path stays float32
 * throughout), else int16 with a scale per head row: half the memory and decode traffic of
 * float32, and within the float32 bounds on every fixture (logits 2.8e-5..1.6e-4 from the
 * reference, against 1.4e-5..5e-5 with a float32 cache; docs/kernels.md). */
static lg_kv_type resolve_kv_type(lg_kv_type t, const char *kernels) {
    if (t != LG_KV_AUTO) return t;
    const char *env = getenv("LG_KERNELS"); /* overrides the kernels, as kern_ctx_create does */
    const char *mode = env && *env ? env : kernels;
    return strcmp(mode, "ref") == 0 ? LG_KV_F32 : LG_KV_I16;
}

static lg_dtype kv_dtype_of(lg_kv_type t) {
    return t == LG_KV_BF16  ? LG_DT_BF16
           : t == LG_KV_F16 ? LG_DT_F16
           : t == LG_KV_I16 ? LG_DT_I16S
                            : LG_DT_F32;
}

static lg_status check_params(const lg_model_params *p, lg_error *err) {
    const char *k = p->kernels ? p->kernels : "auto";
    if (strlen(k) >= 16) return lg_err_set(err, LG_E_ARG, "kernels \"%.32s\" is unknown", k);
    kern_ctx *kc = kern_ctx_create(1, k);
    if (!kc)
        return lg_err_set(err, LG_E_ARG,
                          "kernels \"%s\" is unknown or cannot run here (use \"auto\" or \"ref\")",
                          k);
    kern_ctx_free(kc);
    if (p->kv_type != LG_KV_AUTO && p->kv_type != LG_KV_F32 && p->kv_type != LG_KV_BF16 &&
        p->kv_type != LG_KV_F16 && p->kv_type != LG_KV_I16)
        return lg_err_set(err, LG_E_ARG, "unknown KV cache type %d", (int)p->kv_type);
    if (p->max_context < 0) return lg_err_set(err, LG_E_ARG, "max_context must be >= 0");
    if (p->prepack < -1 || p->prepack > 1)
        return lg_err_set(err, LG_E_ARG, "prepack must be -1, 0 or 1");
    if (p->precision != LG_PRECISION_ACCURATE && p->precision != LG_PRECISION_BF16)
        return lg_err_set(err, LG_E_ARG, "unknown precision %d", (int)p->precision);
    return LG_OK;
}

/* Calls fn on every weight matrix a forward pass multiplies by (the tied LM head once; the
 * token embedding itself is only read row by row). */
static void for_each_matmul_weight(lg_model *m, void (*fn)(void *, kern_weight *), void *arg) {
    mdl_weights *w = &m->w;
    const mdl_config *c = &m->cfg;
    if (w->vit.layers) {
        fn(arg, &w->vit.patch);
        for (int il = 0; il < c->vit.n_layer; il++) {
            vit_layer *l = &w->vit.layers[il];
            kern_weight *ws[] = {&l->q, &l->k, &l->v, &l->o, &l->fc1, &l->fc2, &l->up};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                if (ws[i]->data) fn(arg, ws[i]); /* `up` exists in SwiGLU towers only */
        }
    }
    fn(arg, &w->proj.l1);
    fn(arg, &w->proj.l2);
    if (w->dec.layers) {
        for (int il = 0; il < c->dec.n_layer; il++) {
            dec_layer *l = &w->dec.layers[il];
            kern_weight *ws[] = {&l->q, &l->k, &l->v, &l->o, &l->gate, &l->up, &l->down};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) fn(arg, ws[i]);
        }
    }
    fn(arg, &w->dec.lm_head);
}

static void release(void *arg, kern_weight *w) {
    (void)arg;
    kern_weight_release(w);
}

typedef struct pack_pass {
    lg_model *m;
    kern_ctx *kc;
    bool lazy;    /* arm each weight for its first product instead of packing it now */
    size_t total; /* first pass: the arena's size */
    char *arena;  /* second pass: where the next weight goes */
} pack_pass;

static void count_bytes(void *arg, kern_weight *w) {
    pack_pass *pp = arg;
    pp->total += kern_prepare_bytes(pp->kc, w);
}

/* Whether w's bytes lie inside one of the checkpoint's (read-only) file mappings; weights
 * copied out at bind time (misaligned in the file) do not. */
static bool in_mapping(const lg_model *m, const kern_weight *w) {
    uintptr_t lo = (uintptr_t)w->data;
    uintptr_t hi = lo + (uintptr_t)(w->n_out * w->n_in) * lg_dtype_size(w->dtype);
    for (int f = 0; f < m->st.n_files; f++) {
        uintptr_t base = (uintptr_t)m->st.files[f].data;
        if (lo >= base && hi <= base + m->st.files[f].size) return true;
    }
    return false;
}

static void pack_one(void *arg, kern_weight *w) {
    pack_pass *pp = arg;
    size_t bytes = kern_prepare_bytes(pp->kc, w);
    if (bytes == 0) return;
    /* The packing drops the weight's mapped file pages as it goes: the fast kernels read only
     * the packed copy, so they would otherwise double the resident size. They stay in the page
     * cache; whatever still reads them (embedding rows of a tied LM head) faults them back in.
     * Never on copies made at bind time (MADV_DONTNEED would zero them). */
    bool drop = in_mapping(pp->m, w);
    if (pp->lazy)
        kern_prepare_lazy(pp->kc, w, pp->arena, drop);
    else
        kern_prepare_into(pp->kc, w, pp->arena, drop);
    pp->arena += bytes;
}

/* Lets the fast kernels repack the weights into their layout: a bf16 copy of the same size
 * (never float32), all of it in one anonymous mapping (huge pages; only the pages written are
 * ever backed), each weight's file pages dropped once it is packed, so resident memory stays
 * about the checkpoint's size, peaking at that plus the largest weight. prepack -1 (default)
 * packs each weight on its first product (an open takes milliseconds, the first image and
 * prompt pay for the packing, weights never used are never packed); 1 packs everything now
 * (with the threads of n_threads: ~0.5 s for the 0.5B model here, most of it the kernel zeroing
 * fresh pages). The reference path reads the mapping directly. */
static void prepare_weights(lg_model *m, int prepack) {
    if (prepack == 0 || strcmp(m->kernels, "ref") == 0) return;
    kern_ctx *kc = kern_ctx_create(prepack == 1 ? m->n_threads : 1, m->kernels);
    if (!kc) return; /* check_params already created one: not expected, and not fatal */
    pack_pass pp = {.m = m, .kc = kc, .lazy = prepack != 1};
    for_each_matmul_weight(m, count_bytes, &pp);
    if (pp.total > 0) {
        void *arena =
            mmap(NULL, pp.total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (arena != MAP_FAILED) { /* else not fatal: the kernels read the mapping directly */
#ifdef MADV_HUGEPAGE
            madvise(arena, pp.total, MADV_HUGEPAGE); /* fewer faults and TLB misses */
#endif
            m->packed = arena;
            m->packed_bytes = pp.total;
            pp.arena = arena;
            for_each_matmul_weight(m, pack_one, &pp);
        }
    }
    kern_ctx_free(kc);
}

lg_status lg_model_open(const char *dir, const lg_model_params *params, lg_model **out,
                        lg_error *err) {
    if (!dir || !out) return lg_err_set(err, LG_E_ARG, "lg_model_open: NULL argument");
    lg_model_params p = params ? *params : lg_model_params_default();
    lg_status s = check_params(&p, err);
    if (s != LG_OK) return s;
    lg_model *m = lg_calloc(1, sizeof *m);
    if (!m || !(m->dir = lg_strdup(dir))) {
        lg_free(m);
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    }
    s = mdl_config_load(dir, &m->cfg, err);
    if (s == LG_OK) s = st_open_dir(dir, &m->st, err);
    if (s == LG_OK) {
        s = mdl_weights_bind(&m->cfg, &m->st, &m->w, err);
        if (s != LG_OK) lg_err_prefix(err, "%s", dir); /* binding messages name only tensors */
    }
    if (s != LG_OK) {
        lg_model_free(m);
        return s;
    }
    m->n_threads = p.n_threads;
    snprintf(m->kernels, sizeof m->kernels, "%s", p.kernels ? p.kernels : "auto");
    m->kv_type = resolve_kv_type(p.kv_type, m->kernels);
    m->kv_dtype = kv_dtype_of(m->kv_type);
    m->precision = p.precision == LG_PRECISION_BF16 ? KERN_PREC_BF16 : KERN_PREC_ACCURATE;
    m->n_ctx = m->cfg.dec.n_ctx_max;
    if (p.max_context > 0 && p.max_context < m->n_ctx) m->n_ctx = p.max_context;
    prepare_weights(m, p.prepack);
    *out = m;
    return LG_OK;
}

void lg_model_free(lg_model *m) {
    if (!m) return;
    if (m->w.dec.layers) for_each_matmul_weight(m, release, NULL);
    if (m->packed) munmap(m->packed, m->packed_bytes);
    mdl_weights_free(&m->w);
    st_close(&m->st);
    lg_free(m->dir);
    lg_free(m);
}

const char *lg_model_errmsg(const lg_model *m) {
    (void)m;
    return "";
}

const char *lg_model_type(const lg_model *m) {
    return m->cfg.model_type;
}

int64_t lg_model_n_vocab(const lg_model *m) {
    return m->cfg.dec.n_vocab;
}

int lg_model_hidden_size(const lg_model *m) {
    return m->cfg.dec.n_embd;
}

int32_t lg_model_image_token_id(const lg_model *m) {
    return m->cfg.image_token;
}

lg_kv_type lg_model_kv_type(const lg_model *m) {
    return m->kv_type;
}

size_t lg_model_eos_ids(const lg_model *m, const int32_t **ids) {
    if (ids) *ids = m->cfg.eos;
    return (size_t)m->cfg.n_eos;
}

int64_t lg_model_context_limit(const lg_model *m) {
    return m->n_ctx;
}

int64_t lg_model_image_tokens(const lg_model *m, int orig_height, int orig_width) {
    if (m->cfg.pack == PACK_MERGED) return qvit_n_rows(&m->cfg, orig_height, orig_width);
    return pack_n_rows(&m->cfg, orig_height, orig_width, NULL, NULL);
}
