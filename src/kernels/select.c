/*
 * select.c — builds a kernel context: picks the table for this CPU and mode (reference first,
 * fast paths override entries) and owns the thread count. Fast paths register here.
 */
#include "kernels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kern_ctx {
    const lg_kernels *table;
    int n_threads;
};

kern_ctx *kern_ctx_create(int n_threads, const char *mode) {
    const char *env = getenv("LG_KERNELS");
    if (env && strcmp(env, "ref") == 0) mode = "ref";
    if (!mode) mode = "auto";
    if (strcmp(mode, "auto") != 0 && strcmp(mode, "ref") != 0) return NULL;
    kern_ctx *kc = calloc(1, sizeof *kc);
    if (!kc) return NULL;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    kc->n_threads = n_threads;
    kc->table = kern_ref_table(); /* fast tables override this in "auto" mode */
    return kc;
}

void kern_ctx_free(kern_ctx *kc) {
    free(kc);
}

const lg_kernels *kern_ctx_table(const kern_ctx *kc) {
    return kc->table;
}

int kern_ctx_threads(const kern_ctx *kc) {
    return kc->n_threads;
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
