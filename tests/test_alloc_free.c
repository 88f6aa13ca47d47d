/* LAYERS: core kernels model */
/*
 * test_alloc_free.c — the token loop allocates nothing (issue "Speed": "no allocation in the
 * token loop"). This executable is linked with -Wl,--wrap for malloc, calloc, realloc,
 * posix_memalign and aligned_alloc (tests/CMakeLists.txt), so every allocation made by the
 * library's own code passes through the counters below. After a prompt and a few warm-up steps
 * (scratch buffers grow once to their largest shape), further single-token evals on the tiny
 * LLaVA-OneVision fixture must not allocate at all, for every kernel table this CPU runs in both
 * precisions, and for every KV cache type. A second check makes sure the counting works: the
 * prompt's prefill on a fresh session does allocate. The batched pass of the batch engine
 * (mdl_pass_run: four sequences' decode steps in one pass, then option-like continuations of
 * one shared prefix) allocates nothing in steady state either.
 */
#include "testutil.h"

#include "kernels/kernels.h"
#include "model/model.h"
#include "llavaguard.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long g_allocs;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);

void *__wrap_malloc(size_t n) {
    atomic_fetch_add(&g_allocs, 1);
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
    atomic_fetch_add(&g_allocs, 1);
    return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
    atomic_fetch_add(&g_allocs, 1);
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    atomic_fetch_add(&g_allocs, 1);
    return __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
    atomic_fetch_add(&g_allocs, 1);
    return __real_aligned_alloc(a, n);
}

#define PROMPT 40
#define WARMUP 3
#define STEPS 24

typedef struct setting {
    const char *kernels;
    lg_precision precision;
    lg_kv_type kv;
} setting;

/* Opens the tiny model with `st`; NULL (and a skip message) when this CPU lacks the table. */
static lg_model *open_tiny(const setting *st) {
    if (strcmp(st->kernels, "auto") != 0 && !kern_table_for(st->kernels)) return NULL;
    char *dir = tu_fixture("llava-ov-tiny");
    lg_model_params p = lg_model_params_default();
    p.kernels = st->kernels;
    p.precision = st->precision;
    p.kv_type = st->kv;
    p.n_threads = 2;
    lg_model *m = NULL;
    lg_error e;
    lg_status s = lg_model_open(dir, &p, &m, &e);
    free(dir);
    if (s != LG_OK) fail_msg("lg_model_open: %s", e.msg);
    return m;
}

/* Allocations made by `steps` single-token evals after the current context. */
static long count_steps(lg_session *s, int first_id, int steps) {
    const float *logits = NULL;
    long before = atomic_load(&g_allocs);
    for (int i = 0; i < steps; i++) {
        int32_t id = first_id + i;
        lg_status st = lg_session_eval(s, &id, 1, NULL, 0, 0, &logits);
        if (st != LG_OK) fail_msg("eval: %s", lg_session_errmsg(s));
    }
    return atomic_load(&g_allocs) - before;
}

static void check_setting(const setting *st) {
    lg_model *m = open_tiny(st);
    if (!m) {
        print_message("  %s: not runnable on this CPU, skipped\n", st->kernels);
        return;
    }
    lg_session *s = NULL;
    lg_error e;
    assert_int_equal(lg_session_create(m, &s, &e), LG_OK);
    int32_t ids[PROMPT];
    for (int i = 0; i < PROMPT; i++) ids[i] = 100 + 37 * i;
    const float *logits = NULL;
    long before = atomic_load(&g_allocs);
    assert_int_equal(lg_session_eval(s, ids, PROMPT, NULL, 0, 0, &logits), LG_OK);
    long prefill = atomic_load(&g_allocs) - before;
    long warm = count_steps(s, 500, WARMUP);
    long steady = count_steps(s, 600, STEPS);
    print_message("  %s/%s/kv%d: prefill %ld allocations, warm-up %ld, %d steps %ld\n", st->kernels,
                  st->precision == LG_PRECISION_BF16 ? "bf16" : "accurate", (int)st->kv, prefill,
                  warm, STEPS, steady);
    assert_true(prefill > 0); /* the counters see the library's allocations */
    assert_int_equal(steady, 0);
    /* Rolling back and decoding again (what the verdict decoder does between options) reuses
     * the same buffers too. */
    assert_int_equal(lg_session_truncate(s, PROMPT), LG_OK);
    assert_int_equal(count_steps(s, 700, STEPS), 0);
    lg_session_free(s);
    lg_model_free(m);
}

static void test_decode_allocates_nothing(void **state) {
    (void)state;
    static const setting settings[] = {
        {"auto", LG_PRECISION_ACCURATE, LG_KV_F32},
        {"auto", LG_PRECISION_ACCURATE, LG_KV_I16},
        {"auto", LG_PRECISION_BF16, LG_KV_BF16},
        {"auto", LG_PRECISION_ACCURATE, LG_KV_F16},
        {"avx512", LG_PRECISION_ACCURATE, LG_KV_F32},
        {"amx-emu", LG_PRECISION_ACCURATE, LG_KV_F32},
        {"portable", LG_PRECISION_ACCURATE, LG_KV_F32},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) check_setting(&settings[i]);
}

/* One batched step: a decode row for each of the n sessions, and three continuations of
 * session 0's prompt scored in one more pass (as the category options are). */
static void batch_step(mdl_pass *p, kern_ctx *kc, lg_model *m, lg_session **s, int n, int id) {
    mdl_seg segs[8];
    int32_t ids[8], opt[3][4]; /* continuation k has 2 + k tokens */
    for (int i = 0; i < n; i++) {
        ids[i] = id + i;
        segs[i] = (mdl_seg){.s = s[i], .pos = -1, .ids = &ids[i], .n = 1};
    }
    assert_int_equal(mdl_pass_run(p, kc, m, segs, n), LG_OK);
    for (int i = 0; i < n; i++) assert_int_equal(segs[i].status, LG_OK);
    int64_t at = lg_session_n_past(s[0]);
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 4; j++) opt[k][j] = id + 10 * k + j;
        segs[k] = (mdl_seg){.s = s[0], .pos = at, .ids = opt[k], .n = 2 + k, .all_logits = true};
    }
    assert_int_equal(mdl_pass_run(p, kc, m, segs, 3), LG_OK);
    for (int k = 0; k < 3; k++) assert_int_equal(segs[k].status, LG_OK);
    assert_int_equal(lg_session_truncate(s[0], at), LG_OK);
}

static void test_batch_pass_allocates_nothing(void **state) {
    (void)state;
    setting st = {"auto", LG_PRECISION_ACCURATE, LG_KV_I16};
    lg_model *m = open_tiny(&st);
    lg_session *s[4];
    lg_error e;
    int32_t ids[PROMPT];
    for (int i = 0; i < PROMPT; i++) ids[i] = 100 + 37 * i;
    const float *logits = NULL;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lg_session_create(m, &s[i], &e), LG_OK);
        assert_int_equal(lg_session_eval(s[i], ids, PROMPT - i, NULL, 0, 0, &logits), LG_OK);
    }
    kern_ctx *kc = kern_ctx_create(2, "auto");
    mdl_pass p = {0};
    long before = atomic_load(&g_allocs);
    for (int k = 0; k < WARMUP; k++) batch_step(&p, kc, m, s, 4, 500 + k);
    long warm = atomic_load(&g_allocs) - before;
    before = atomic_load(&g_allocs);
    for (int k = 0; k < STEPS; k++) batch_step(&p, kc, m, s, 4, 600 + k);
    long steady = atomic_load(&g_allocs) - before;
    print_message("  batched pass, 4 sequences: warm-up %ld allocations, %d steps %ld\n", warm,
                  STEPS, steady);
    assert_true(warm > 0);
    assert_int_equal(steady, 0);
    mdl_pass_free(&p);
    kern_ctx_free(kc);
    for (int i = 0; i < 4; i++) lg_session_free(s[i]);
    lg_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_allocates_nothing),
        cmocka_unit_test(test_batch_pass_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
