/*
 * cpu.c — which instruction sets this CPU and OS let us run, from CPUID and XGETBV (Intel SDM
 * vol. 2A "CPUID", leaf 7 sub-leaves 0 and 1; XCR0 bits for ZMM and tile state), plus Linux's
 * AMX permission request arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): without it the
 * first tile instruction raises SIGILL even where CPUID reports AMX.
 */
#include "kern_impl.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Asks Linux for the right to use the 8 KiB tile data state; true when granted (or already). */
static bool request_amx_permission(void) {
#if defined(__linux__)
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return false;
    unsigned long bits = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) != 0) return false;
    return (bits & (1ul << XFEATURE_XTILEDATA)) != 0;
#else
    return false;
#endif
}

static void read_brand(char *out, size_t n) {
    unsigned a, b, c, d, max;
    out[0] = '\0';
    max = __get_cpuid_max(0x80000000u, NULL);
    if (max < 0x80000004u || n < 49) return;
    unsigned regs[12];
    for (unsigned i = 0; i < 3; i++) {
        __cpuid(0x80000002u + i, a, b, c, d);
        regs[i * 4] = a, regs[i * 4 + 1] = b, regs[i * 4 + 2] = c, regs[i * 4 + 3] = d;
    }
    memcpy(out, regs, 48);
    out[48] = '\0';
    char *s = out; /* trim leading spaces */
    while (*s == ' ') s++;
    memmove(out, s, strlen(s) + 1);
}

static void detect(kern_cpu *c) {
    unsigned a, b, cx, d;
    read_brand(c->brand, sizeof c->brand);
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return;
    bool osxsave = (cx >> 27) & 1, fma = (cx >> 12) & 1, f16c = (cx >> 29) & 1;
    if (!osxsave || __get_cpuid_max(0, NULL) < 7) return;
    uint64_t xcr0 = xgetbv0();
    bool os_zmm = (xcr0 & 0xe6) == 0xe6; /* SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM */
    bool os_tile = (xcr0 & (3ull << 17)) == (3ull << 17); /* XTILECFG, XTILEDATA */
    __cpuid_count(7, 0, a, b, cx, d);
    bool f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    bool amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    unsigned max7 = a;
    bool bf16 = false;
    if (max7 >= 1) {
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        bf16 = (a1 >> 5) & 1;
    }
    c->avx512 = os_zmm && f && dq && bw && vl && fma && f16c;
    c->avx512bf16 = c->avx512 && bf16;
    /* The AMX kernel also uses AVX512-BF16 for its conversions. */
    c->amx = c->avx512bf16 && amx_tile && amx_bf16 && os_tile && request_amx_permission();
}
#else
static void detect(kern_cpu *c) {
    strcpy(c->brand, "non-x86");
}
#endif

static kern_cpu g_cpu; /* written once under pthread_once, read-only afterwards */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect_once(void) {
    detect(&g_cpu);
}

const kern_cpu *kern_cpu_get(void) {
    pthread_once(&g_once, detect_once);
    return &g_cpu;
}

const char *kern_cpu_name(void) {
    return kern_cpu_get()->brand;
}
