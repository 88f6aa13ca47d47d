/*
 * threadpool.c — a persistent pthread pool with cheap fork/join for the kernels (ggml's compute
 * threads, no OpenMP). The caller is thread 0; n-1 workers wait for a new generation number,
 * first spinning (a forward pass calls the pool thousands of times a second), then sleeping on a
 * futex so an idle process uses no CPU. Join: workers count themselves done; the caller spins,
 * yielding after a while so an oversubscribed machine still makes progress.
 */
#include "kern_impl.h"

#include "core/core.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long an idle worker spins before it sleeps: longer than the gap between two kernel calls
 * of a forward pass (element-wise work on thread 0), short enough not to burn an idle machine. */
#define SPIN_NS 2000000ll

struct kern_pool {
    int n;
    pthread_t *threads;
    kern_task_fn fn;
    void *arg;
    _Alignas(64) atomic_uint gen; /* bumped by every kern_pool_run (and at shutdown) */
    _Alignas(64) atomic_int done; /* workers finished with the current generation */
    _Alignas(64) atomic_int sleeping;
    atomic_bool stop;
};

typedef struct worker_arg {
    kern_pool *pool;
    int ith;
} worker_arg;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void futex_wait(atomic_uint *addr, unsigned expected) {
#if defined(__linux__)
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr, (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(atomic_uint *addr) {
#if defined(__linux__)
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Waits until p->gen differs from `seen` and returns the new value. */
static unsigned wait_new_gen(kern_pool *p, unsigned seen) {
    long long t0 = 0;
    for (unsigned i = 1;; i++) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
        CPU_RELAX();
        if ((i & 1023) == 0) {
            long long t = now_ns();
            if (t0 == 0) t0 = t;
            if (t - t0 > SPIN_NS) {
                /* seq_cst pairs with kern_pool_run: either it sees us sleeping and wakes us, or
                 * the kernel's futex check sees its new generation. */
                atomic_fetch_add(&p->sleeping, 1);
                futex_wait(&p->gen, seen);
                atomic_fetch_sub(&p->sleeping, 1);
                t0 = 0;
            }
        }
    }
}

static void *worker_main(void *varg) {
    worker_arg wa = *(worker_arg *)varg;
    free(varg);
    kern_pool *p = wa.pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_new_gen(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        p->fn(p->arg, wa.ith, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

kern_pool *kern_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > KERN_MAX_THREADS) n_threads = KERN_MAX_THREADS;
    kern_pool *p = lg_aligned_alloc(sizeof *p);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleeping, 0);
    atomic_init(&p->stop, false);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        lg_aligned_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->pool = p, wa->ith = i,
                    pthread_create(&p->threads[i], NULL, worker_main, wa) != 0)) {
            free(wa);
            p->n = i; /* shut down the ones already running */
            kern_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void kern_pool_free(kern_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    atomic_fetch_add(&p->gen, 1);
    futex_wake_all(&p->gen);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    lg_aligned_free(p);
}

int kern_pool_size(const kern_pool *p) {
    return p->n;
}

void kern_pool_run(kern_pool *p, kern_task_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/arg, ordered before `sleeping` */
    if (atomic_load(&p->sleeping) > 0) futex_wake_all(&p->gen);
    fn(arg, 0, p->n);
    int want = p->n - 1;
    for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) != want; i++) {
        CPU_RELAX();
        if ((i & 4095) == 0) sched_yield();
    }
}
