/*
 * threadpool.c — a persistent pthread pool with cheap fork/join for the kernels (ggml's compute
 * threads, no OpenMP), built to degrade gracefully when there are more runnable threads than
 * cores (CI runs several multi-threaded tests on two cores):
 *  - a run's nth shares ("slots") are claimed from an atomic counter by whichever thread is
 *    running: the caller first, workers as they arrive. A worker the OS has not scheduled yet
 *    does not hold the run up: the caller runs its slot, and when the worker wakes it finds
 *    nothing left. Slots, not threads, own the per-thread scratch (ith = slot index);
 *  - idle workers spin for a short while (a forward pass forks thousands of times a second),
 *    then sleep on a futex (formerly 2 ms of spinning: on a shared machine that time was taken
 *    from the other processes' threads and from this run's own caller);
 *  - the caller waits for claimed slots still running the same way: a short spin, then a
 *    futex that the last slot to finish wakes (formerly an unbounded spin with sched_yield,
 *    which CFS honours poorly).
 * Measured (docs/kernels.md): two copies of test_model_fast at once on 2 cores took 8.6-20.6 s
 * each with the old pool and take 2.3-2.5 s now (1.0 s alone, unchanged). Spinning only while
 * not descheduled (a round of spins that took too long means another thread ran) was tried and
 * measured no better.
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

/* An idle worker spins this long for the next run before it sleeps: longer than the usual gap
 * between two kernel calls of a forward pass, short enough that an idle or shared machine
 * loses little. The caller spins at most JOIN_SPIN_NS for running slots to finish. */
#define SPIN_NS 300000ll
#define JOIN_SPIN_NS 200000ll
#define SPIN_ROUND 256 /* pauses between two looks at the clock (a few microseconds) */

struct kern_pool {
    int n;
    pthread_t *threads;
    kern_task_fn fn; /* the current run's task: written before `next` is reset, read only by */
    void *arg;       /* a thread that has claimed a slot of that run */
    _Alignas(64) atomic_uint gen;     /* bumped by every run (and at shutdown); futex word */
    _Alignas(64) atomic_int next;     /* the next slot to claim (>= n: none left) */
    _Alignas(64) atomic_int done;     /* slots finished in the current run; futex word */
    _Alignas(64) atomic_int sleeping; /* workers asleep on `gen` */
    atomic_int join_sleeping;         /* the caller asleep on `done` */
    atomic_bool stop;
};

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void futex_wait(void *addr, unsigned expected) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr, (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(void *addr) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Spins until done_fn(p, arg) or the budget is spent; returns whether the condition came true. */
static bool spin_until(kern_pool *p, bool (*done_fn)(kern_pool *, unsigned), unsigned arg,
                       long long budget_ns) {
    long long t0 = now_ns();
    for (unsigned i = 1;; i++) {
        if (done_fn(p, arg)) return true;
        CPU_RELAX();
        if (i % SPIN_ROUND == 0 && now_ns() - t0 > budget_ns) return false;
    }
}

static bool gen_changed(kern_pool *p, unsigned seen) {
    return atomic_load_explicit(&p->gen, memory_order_acquire) != seen;
}

/* Waits until p->gen differs from `seen` and returns the new value. */
static unsigned wait_new_gen(kern_pool *p, unsigned seen) {
    while (!spin_until(p, gen_changed, seen, SPIN_NS)) {
        /* seq_cst pairs with kern_pool_run: either it sees us sleeping and wakes us, or the
         * kernel's futex check sees its new generation. */
        atomic_fetch_add(&p->sleeping, 1);
        if (!gen_changed(p, seen)) futex_wait(&p->gen, seen);
        atomic_fetch_sub(&p->sleeping, 1);
    }
    return atomic_load_explicit(&p->gen, memory_order_acquire);
}

/* Claims and runs slots of the current run until none is left. */
static void run_slots(kern_pool *p) {
    for (;;) {
        /* acq_rel: a successful claim sees the run's fn/arg (written before `next` was reset) */
        int s = atomic_fetch_add_explicit(&p->next, 1, memory_order_acq_rel);
        if (s >= p->n) return;
        p->fn(p->arg, s, p->n);
        int d = atomic_fetch_add(&p->done, 1) + 1; /* seq_cst: pairs with join_sleeping */
        if (d == p->n && atomic_load(&p->join_sleeping)) futex_wake_all(&p->done);
    }
}

static void *worker_main(void *varg) {
    kern_pool *p = varg;
    unsigned seen = 0;
    for (;;) {
        seen = wait_new_gen(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        run_slots(p);
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
    atomic_init(&p->next, n_threads); /* nothing to claim before the first run */
    atomic_init(&p->done, 0);
    atomic_init(&p->sleeping, 0);
    atomic_init(&p->join_sleeping, 0);
    atomic_init(&p->stop, false);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        lg_aligned_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
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

static bool all_done(kern_pool *p, unsigned n) {
    return atomic_load_explicit(&p->done, memory_order_acquire) == (int)n;
}

void kern_pool_run(kern_pool *p, kern_task_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    /* Publish the run: fn/arg, then `done`, then the slots (release), then wake the workers. */
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->next, 0, memory_order_release);
    atomic_fetch_add(&p->gen, 1); /* seq_cst, ordered before reading `sleeping` */
    if (atomic_load(&p->sleeping) > 0) futex_wake_all(&p->gen);
    run_slots(p);
    /* Every slot is claimed; wait for those still running on workers. */
    while (!spin_until(p, all_done, (unsigned)p->n, JOIN_SPIN_NS)) {
        atomic_store(&p->join_sleeping, 1); /* seq_cst: pairs with run_slots' increment */
        int d = atomic_load(&p->done);
        if (d != p->n) futex_wait(&p->done, (unsigned)d);
        atomic_store(&p->join_sleeping, 0);
    }
}
