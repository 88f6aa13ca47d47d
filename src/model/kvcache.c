/*
 * kvcache.c — the per-session key/value cache of the decoder: for every layer, one row of
 * n_head_kv*head_dim keys and values per position, in float32 (exact), int16 with one scale per
 * head row (LG_DT_I16S: half the memory, within the float32 bounds on the fixtures) or bf16/f16
 * (half the memory, visibly less exact). It grows geometrically up to the session's context limit,
 * so a short prompt does not pay for a 32k-token cache; truncation only moves the fill mark.
 */
#include "model.h"

#include <string.h>

lg_status kv_init(kv_cache *kv, lg_dtype dtype, int n_layer, int n_head_kv, int head_dim,
                  int64_t max, lg_error *err) {
    memset(kv, 0, sizeof *kv);
    kv->dtype = dtype;
    kv->n_layer = n_layer;
    kv->head_dim = head_dim;
    kv->row = (int64_t)n_head_kv * kern_kv_head_elems(dtype, head_dim);
    kv->max = max;
    kv->k = lg_calloc((size_t)n_layer, sizeof *kv->k);
    kv->v = lg_calloc((size_t)n_layer, sizeof *kv->v);
    if (!kv->k || !kv->v) {
        kv_free(kv);
        return lg_err_set(err, LG_E_NOMEM, "out of memory for the KV cache");
    }
    return LG_OK;
}

lg_status kv_enable_mpos(kv_cache *kv, lg_error *err) {
    LG_ASSERT(kv->cap == 0);
    kv->mpos = lg_malloc(4 * sizeof *kv->mpos); /* non-NULL marks the cache as multimodal */
    return kv->mpos ? LG_OK : lg_err_set(err, LG_E_NOMEM, "out of memory");
}

lg_status kv_reserve(kv_cache *kv, int64_t n_new, lg_error *err) {
    int64_t need = kv->n + n_new;
    if (need > kv->max)
        return lg_err_set(err, LG_E_LIMIT, "%lld tokens exceed the context limit of %lld",
                          (long long)need, (long long)kv->max);
    if (need <= kv->cap) return LG_OK;
    int64_t cap = kv->cap ? kv->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > kv->max) cap = kv->max;
    size_t bytes = (size_t)cap * (size_t)kv->row * lg_dtype_size(kv->dtype);
    for (int il = 0; il < kv->n_layer; il++) {
        void *k = lg_realloc(kv->k[il], bytes);
        if (k) kv->k[il] = k;
        void *v = lg_realloc(kv->v[il], bytes);
        if (v) kv->v[il] = v;
        /* A failed realloc keeps the old block; layers already grown keep their larger blocks.
         * Either way every block holds at least kv->cap rows, so the cache stays valid. */
        if (!k || !v)
            return lg_err_set(err, LG_E_NOMEM, "out of memory growing the KV cache to %lld tokens",
                              (long long)cap);
    }
    if (kv->mpos) {
        int32_t *m = lg_realloc(kv->mpos, (size_t)cap * 4 * sizeof *m);
        if (!m)
            return lg_err_set(err, LG_E_NOMEM, "out of memory growing the KV cache to %lld tokens",
                              (long long)cap);
        kv->mpos = m;
    }
    kv->cap = cap;
    return LG_OK;
}

/* Stores n positions of n_head_kv * head_dim values (src is dense) into the cache layout. */
static void store_rows(const kv_cache *kv, void *dst, const float *src, int64_t n_pos) {
    int64_t n = n_pos * kv->row; /* elements written */
    int hd = kv->head_dim;
    switch (kv->dtype) {
    case LG_DT_F32:
        memcpy(dst, src, (size_t)n * sizeof *src);
        break;
    case LG_DT_BF16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = lg_f32_to_bf16(src[i]);
        break;
    case LG_DT_F16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = lg_f32_to_f16(src[i]);
        break;
    case LG_DT_I16S: /* head rows of hd + 2 elements, from hd values each */
        for (int64_t h = 0; h < n / (hd + 2); h++)
            kern_i16s_quantize(src + h * hd, hd, (int16_t *)dst + h * (hd + 2));
        break;
    }
}

void kv_store(kv_cache *kv, int il, int64_t pos, int64_t n, const float *k, const float *v) {
    LG_ASSERT(pos >= 0 && pos + n <= kv->cap);
    size_t off = (size_t)pos * (size_t)kv->row * lg_dtype_size(kv->dtype);
    store_rows(kv, (uint8_t *)kv->k[il] + off, k, n);
    store_rows(kv, (uint8_t *)kv->v[il] + off, v, n);
}

void kv_free(kv_cache *kv) {
    if (!kv) return;
    for (int il = 0; il < kv->n_layer && kv->k; il++) lg_free(kv->k[il]);
    for (int il = 0; il < kv->n_layer && kv->v; il++) lg_free(kv->v[il]);
    lg_free(kv->k);
    lg_free(kv->v);
    lg_free(kv->mpos);
    memset(kv, 0, sizeof *kv);
}
