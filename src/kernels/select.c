/*
 * select.c — builds a kernel context: picks the table for this CPU and mode (stb's run-time
 * override of reference routines, BLIS's fallback chain amx -> avx512bf16 -> avx512 ->
 * portable -> ref, each candidate checked once against ref before "auto" trusts it: selftest.c),
 * owns the thread pool and the scratch buffers that grow once and are reused
 * by every call, so the per-token path allocates nothing after warm-up.
 */
#include "kern_impl.h"

#include "core/core.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

static void ensure_packed(kern_ctx *kc, const kern_weight *cw);

int kern_tables(const lg_kernels **out, int max) {
    const lg_kernels *all[] = {kern_amx_table(),     kern_avx512bf16_table(), kern_avx512_table(),
                               kern_amx_emu_table(), kern_portable_table(),   kern_ref_table()};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] && n < max) out[n++] = all[i];
    return n;
}

const lg_kernels *kern_first_passing(const lg_kernels *const *t, int n,
                                     bool (*check)(const lg_kernels *), const char **note) {
    static char buf[160];
    if (note) *note = "";
    for (int i = 0; i < n; i++) {
        if (t[i] == kern_ref_table() || strcmp(t[i]->name, "amx-emu") == 0) continue;
        if (check(t[i])) return t[i];
        if (note && !**note) {
            snprintf(buf, sizeof buf,
                     "the %s kernels failed their start-up check against the reference and are "
                     "not used",
                     t[i]->name);
            *note = buf;
        }
    }
    return kern_ref_table();
}

/* "auto": the first table that passes its start-up check (selftest.c), decided once. */
static const lg_kernels *g_auto;
static const char *g_auto_note = "";
static pthread_once_t g_auto_once = PTHREAD_ONCE_INIT;

static void choose_auto(void) {
    const lg_kernels *t[8];
    int n = kern_tables(t, 8);
    g_auto = kern_first_passing(t, n, kern_table_selftest, &g_auto_note);
}

const char *kern_auto_note(void) {
    pthread_once(&g_auto_once, choose_auto);
    return g_auto_note;
}

const lg_kernels *kern_table_for(const char *mode) {
    if (!mode || strcmp(mode, "auto") == 0) {
        pthread_once(&g_auto_once, choose_auto);
        return g_auto;
    }
    const lg_kernels *t[8];
    int n = kern_tables(t, 8);
    for (int i = 0; i < n; i++)
        if (strcmp(t[i]->name, mode) == 0) return t[i];
    return NULL;
}

kern_ctx *kern_ctx_create(int n_threads, const char *mode) {
    const char *env = getenv("LG_KERNELS");
    if (env && *env) mode = env;
    const lg_kernels *table = kern_table_for(mode);
    if (!table) return NULL;
    return kern_ctx_create_with(n_threads, table);
}

kern_ctx *kern_ctx_create_with(int n_threads, const lg_kernels *table) {
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
    ensure_packed(kc, w);
    kc->table->matmul(kc, y, x, w, bias, m);
}

int kern_matmul_class(const kern_ctx *kc, int64_t m) {
    return kc->table->matmul_class ? kc->table->matmul_class(m) : 0;
}

void kern_matmul_as(kern_ctx *kc, float *y, const float *x, const kern_weight *w, const float *bias,
                    int64_t m, int cls) {
    ensure_packed(kc, w);
    if (kc->table->matmul_as)
        kc->table->matmul_as(kc, y, x, w, bias, m, cls);
    else
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
    if (!w->packed_borrowed) lg_aligned_free(w->packed);
    w->packed = NULL;
    w->packed_kind = KERN_PACK_NONE;
    w->packed_borrowed = false;
    w->lazy = NULL;
    atomic_store_explicit(&w->lazy_state, KERN_LAZY_ARMED, memory_order_relaxed);
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
    if (w->dtype == LG_DT_BF16 && w->n_in % 2 == 0 && kern_cpu_get()->avx512) {
        kern_avx512_pack_bf16(w, p0, p1, dst);
        return;
    }
    int64_t kp = kern_pack_kp(w->n_in);
    float *row = w->dtype == LG_DT_BF16 ? NULL : malloc((size_t)w->n_in * sizeof *row);
    if (w->dtype != LG_DT_BF16 && !row) lg_abort(__FILE__, __LINE__, "pack: out of memory");
    for (int64_t p = p0; p < p1; p++) pack_panel(w, p, kp, dst + (p - p0) * kp * 16, row);
    free(row);
}

typedef struct pack_job {
    kern_weight *w;
    uint16_t *dst;
    bool drop;        /* release the source rows of each packed chunk (see drop_rows) */
    atomic_long next; /* panels handed out so far */
} pack_job;

/* Drops the page-table entries of the whole pages inside rows [r0, r1) of W: the caller
 * promised they are a read-only file mapping, which refaults from the page cache if anything
 * reads them again. Done chunk by chunk while packing, so a weight is never resident twice. */
static void drop_rows(const kern_weight *w, int64_t r0, int64_t r1) {
#if defined(__linux__) && defined(MADV_DONTNEED)
    size_t row = (size_t)w->n_in * lg_dtype_size(w->dtype);
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)w->data + (uintptr_t)r0 * row;
    uintptr_t hi = (uintptr_t)w->data + (uintptr_t)r1 * row;
    lo = (lo + page - 1) / page * page;
    hi = hi / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)w, (void)r0, (void)r1;
#endif
}

/* Panels are handed out 8 at a time to whichever thread asks: the first touch of fresh memory
 * (page faults, the kernel zeroing pages) makes equal static shares finish unequally. */
static void pack_task(void *arg, int ith, int nth) {
    pack_job *j = arg;
    (void)ith, (void)nth;
    int64_t kp = kern_pack_kp(j->w->n_in), n = kern_pack_n16(j->w->n_out) / 16;
    for (;;) {
        int64_t lo = atomic_fetch_add_explicit(&j->next, 8, memory_order_relaxed);
        if (lo >= n) break;
        int64_t hi = lo + 8 < n ? lo + 8 : n;
        kern_pack_vnni16(j->w, lo, hi, j->dst + lo * kp * 16);
        if (j->drop) drop_rows(j->w, lo * 16, hi * 16 < j->w->n_out ? hi * 16 : j->w->n_out);
    }
}

static bool wants_vnni16(const kern_weight *w) {
    return w->packed_kind != KERN_PACK_VNNI16 && w->dtype == LG_DT_BF16;
}

static void pack_into(kern_ctx *kc, kern_weight *w, uint16_t *dst, bool borrowed, bool drop) {
    pack_job j = {.w = w, .dst = dst, .drop = drop};
    atomic_init(&j.next, 0);
    kern_pool_run(kc->pool, pack_task, &j);
    if (drop) drop_rows(w, 0, w->n_out); /* the pages that straddled two chunks */
    /* Not kern_weight_release: it would disarm a lazily packed weight while other threads may
     * be looking at its state. Nothing to free: wants_vnni16 held, so nothing was packed. */
    w->packed = dst;
    w->packed_kind = KERN_PACK_VNNI16;
    w->packed_borrowed = borrowed;
}

/* Packs bf16 weights once (the same bytes, reordered); f32/f16 weights stay as they are so the
 * weight-streaming path keeps their precision, and large products pack them per call. */
void kern_prepare_vnni16(kern_ctx *kc, kern_weight *w) {
    if (!wants_vnni16(w)) return;
    size_t bytes = (size_t)kern_pack_n16(w->n_out) * (size_t)kern_pack_kp(w->n_in) * 2;
    uint16_t *dst = lg_aligned_alloc(bytes);
    if (!dst) return; /* not fatal: the kernels read w->data directly */
    pack_into(kc, w, dst, false, false);
}

size_t kern_prepare_bytes(const kern_ctx *kc, const kern_weight *w) {
    if (kc->table->prepare != kern_prepare_vnni16 || !wants_vnni16(w)) return 0;
    return (size_t)kern_pack_n16(w->n_out) * (size_t)kern_pack_kp(w->n_in) * 2;
}

bool kern_prepare_into(kern_ctx *kc, kern_weight *w, void *dst, bool drop_source) {
    if (!dst || kern_prepare_bytes(kc, w) == 0) return false;
    pack_into(kc, w, dst, true, drop_source);
    return true;
}

bool kern_prepare_lazy(kern_ctx *kc, kern_weight *w, void *dst, bool drop_source) {
    if (!dst || kern_prepare_bytes(kc, w) == 0) return false;
    w->lazy = dst;
    w->lazy_drop_source = drop_source;
    atomic_store_explicit(&w->lazy_state, KERN_LAZY_ARMED, memory_order_release);
    return true;
}

/* The first product on an armed weight packs it (with the calling context's threads); a
 * concurrent product on the same weight from another session's thread waits for it. Only the
 * state changes hands between threads: `packed`/`packed_kind` are written before the release
 * store of KERN_LAZY_DONE and read only after its acquire load. */
static void ensure_packed(kern_ctx *kc, const kern_weight *cw) {
    if (!cw->lazy) return;
    kern_weight *w = (kern_weight *)cw; /* an armed weight is owned mutable storage */
    if (atomic_load_explicit(&w->lazy_state, memory_order_acquire) == KERN_LAZY_DONE) return;
    int expect = KERN_LAZY_ARMED;
    if (atomic_compare_exchange_strong(&w->lazy_state, &expect, KERN_LAZY_PACKING)) {
        pack_into(kc, w, w->lazy, true, w->lazy_drop_source);
        atomic_store_explicit(&w->lazy_state, KERN_LAZY_DONE, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&w->lazy_state, memory_order_acquire) != KERN_LAZY_DONE)
        sched_yield();
}
