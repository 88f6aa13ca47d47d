/*
 * alloc.c — the one allocation chokepoint (Redis zmalloc, SQLite's pluggable allocator): memory
 * that crosses the public API is allocated here so that lg_free can release it.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void *lg_malloc(size_t n) {
    return malloc(n ? n : 1);
}

void *lg_calloc(size_t n, size_t size) {
    return calloc(n ? n : 1, size ? size : 1);
}

void *lg_realloc(void *p, size_t n) {
    return realloc(p, n ? n : 1);
}

void lg_free(void *p) {
    free(p);
}

void *lg_aligned_alloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    return p;
}

void lg_aligned_free(void *p) {
    free(p);
}

char *lg_strndup(const char *s, size_t n) {
    char *d = lg_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *lg_strdup(const char *s) {
    return lg_strndup(s, strlen(s));
}

bool lg_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}
