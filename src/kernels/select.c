/*
 * select.c — builds a kernel context: picks the table for this CPU and mode (stb's run-time
 * override of reference routines, BLIS's fallback chain amx -> avx512bf16 -> avx512 ->
 * portable -> ref), owns the thread pool and the scratch buffers that grow once and are reused
 * by every call, so the per-token path allocates nothing after warm-up.
 */
#include "kern_impl.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_SLOTS (KERN_SCRATCH_THREAD0 + KERN_MAX_THREADS)

typedef struct scratch_slot {
    void *p;
    size_t size;
} scratch_slot;

struct kern_ctx {
    const lg_kernels *table;
    kern_pool *pool;
    int n_threads;
    kern_precision precision;
    scratch_slot slots[N_SLOTS];
};

int kern_tables(const lg_kernels **out, int max) {
    const lg_kernels *all[] = {kern_amx_table(),     kern_avx512bf16_table(), kern_avx512_table(),
                               kern_amx_emu_table(), kern_portable_table(),   kern_ref_table()};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] && n < max) out[n++] = all[i];
    return n;
}

const lg_kernels *kern_table_for(const char *mode) {
    const lg_kernels *t[8];
    int n = kern_tables(t, 8);
    if (!mode || strcmp(mode, "auto") == 0) return t[0];
    for (int i = 0; i < n; i++)
        if (strcmp(t[i]->name, mode) == 0) return t[i];
    return NULL;
}

kern_ctx *kern_ctx_create(int n_threads, const char *mode) {
    const char *env = getenv("LG_KERNELS");
    if (env && *env) mode = env;
    const lg_kernels *table = kern_table_for(mode);
    if (!table) return NULL;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > KERN_MAX_THREADS) n_threads = KERN_MAX_THREADS;
    kern_ctx *kc = calloc(1, sizeof *kc);
    if (!kc) return NULL;
    kc->n_threads = n_threads;
    kc->table = table;
    kc->pool = kern_pool_create(n_threads);
    if (!kc->pool) {
        free(kc);
        return NULL;
    }
    return kc;
}

void kern_ctx_free(kern_ctx *kc) {
    if (!kc) return;
    kern_pool_free(kc->pool);
    for (int i = 0; i < N_SLOTS; i++) lg_aligned_free(kc->slots[i].p);
    free(kc);
}

const lg_kernels *kern_ctx_table(const kern_ctx *kc) {
    return kc->table;
}

int kern_ctx_threads(const kern_ctx *kc) {
    return kc->n_threads;
}

void kern_ctx_set_precision(kern_ctx *kc, kern_precision p) {
    kc->precision = p == KERN_PREC_BF16 ? KERN_PREC_BF16 : KERN_PREC_ACCURATE;
}

kern_precision kern_ctx_precision(const kern_ctx *kc) {
    return kc->precision;
}

kern_pool *kern_ctx_pool(kern_ctx *kc) {
    return kc->pool;
}

void *kern_scratch(kern_ctx *kc, int slot, size_t bytes) {
    LG_ASSERT(slot >= 0 && slot < N_SLOTS);
    scratch_slot *s = &kc->slots[slot];
    if (s->size < bytes) {
        lg_aligned_free(s->p);
        size_t want = bytes + bytes / 4 + 4096; /* headroom: a slightly larger shape reuses it */
        s->p = lg_aligned_alloc(want);
        if (!s->p) lg_abort(__FILE__, __LINE__, "kernel scratch: out of memory");
        s->size = want;
    }
    return s->p;
}

void kern_parallel(kern_ctx *kc, kern_task_fn fn, void *arg) {
    kern_pool_run(kc->pool, fn, arg);
}

void kern_matmul(kern_ctx *kc, float *y, const float *x, const kern_weight *w, const float *bias,
                 int64_t m) {
    kc->table->matmul(kc, y, x, w, bias, m);
}

void kern_attention(kern_ctx *kc, float *out, const float *q, const void *k, const void *v,
                    lg_dtype kv_dtype, int64_t n_q, int64_t n_kv, int n_head, int n_head_kv,
                    int head_dim, int64_t q_stride, int64_t kv_stride, bool causal, int64_t q_pos0,
                    float scale) {
    kc->table->attention(kc, out, q, k, v, kv_dtype, n_q, n_kv, n_head, n_head_kv, head_dim,
                         q_stride, kv_stride, causal, q_pos0, scale);
}

void kern_prepare(kern_ctx *kc, kern_weight *w) {
    if (kc->table->prepare) kc->table->prepare(kc, w);
}

void kern_weight_release(kern_weight *w) {
    if (!w) return;
    lg_aligned_free(w->packed);
    w->packed = NULL;
    w->packed_kind = KERN_PACK_NONE;
}

/* ---- the packed layout (see kern_impl.h), in portable C: it runs once per weight at load ---- */

static void pack_panel(const kern_weight *w, int64_t panel, int64_t kp, uint16_t *dst, float *row) {
    int64_t n_in = w->n_in;
    memset(dst, 0, (size_t)kp * 16 * 2);
    for (int c = 0; c < 16; c++) {
        int64_t o = panel * 16 + c;
        if (o >= w->n_out) break;
        if (w->dtype == LG_DT_BF16) {
            const uint16_t *src = (const uint16_t *)w->data + o * n_in;
            for (int64_t k = 0; k < n_in; k++) dst[(k >> 1) * 32 + c * 2 + (k & 1)] = src[k];
        } else {
            kern_weight_row_f32(w, o, row);
            for (int64_t k = 0; k < n_in; k++)
                dst[(k >> 1) * 32 + c * 2 + (k & 1)] = lg_f32_to_bf16(row[k]);
        }
    }
}

void kern_pack_vnni16(const kern_weight *w, int64_t p0, int64_t p1, uint16_t *dst) {
    int64_t kp = kern_pack_kp(w->n_in);
    float *row = w->dtype == LG_DT_BF16 ? NULL : malloc((size_t)w->n_in * sizeof *row);
    if (w->dtype != LG_DT_BF16 && !row) lg_abort(__FILE__, __LINE__, "pack: out of memory");
    for (int64_t p = p0; p < p1; p++) pack_panel(w, p, kp, dst + (p - p0) * kp * 16, row);
    free(row);
}

typedef struct pack_job {
    kern_weight *w;
    uint16_t *dst;
} pack_job;

static void pack_task(void *arg, int ith, int nth) {
    pack_job *j = arg;
    int64_t lo, hi, kp = kern_pack_kp(j->w->n_in);
    kern_split(kern_pack_n16(j->w->n_out) / 16, ith, nth, &lo, &hi);
    if (lo < hi) kern_pack_vnni16(j->w, lo, hi, j->dst + lo * kp * 16);
}

/* Packs bf16 weights once (the same bytes, reordered); f32/f16 weights stay as they are so the
 * weight-streaming path keeps their precision, and large products pack them per call. */
void kern_prepare_vnni16(kern_ctx *kc, kern_weight *w) {
    if (w->packed_kind == KERN_PACK_VNNI16 || w->dtype != LG_DT_BF16) return;
    size_t bytes = (size_t)kern_pack_n16(w->n_out) * (size_t)kern_pack_kp(w->n_in) * 2;
    uint16_t *dst = lg_aligned_alloc(bytes);
    if (!dst) return; /* not fatal: the kernels read w->data directly */
    pack_job j = {w, dst};
    kern_pool_run(kc->pool, pack_task, &j);
    kern_weight_release(w);
    w->packed = dst;
    w->packed_kind = KERN_PACK_VNNI16;
}
