/*
 * fuzz_common.h — helpers shared by the libFuzzer harnesses (docs/fuzzing.md): a private
 * scratch folder per process for the harnesses whose code under test reads files, and splitting
 * one input into several files at NUL bytes (JSON files cannot contain NUL).
 */
#ifndef LG_FUZZ_COMMON_H
#define LG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A folder of this process (made once; under /dev/shm when it exists: faster). */
static inline const char *fz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/lgfuzz.XXXXXX", base);
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* Writes (or, with data NULL, removes) dir/name. */
static inline void fz_put(const char *name, const uint8_t *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fz_dir(), name);
    if (!data) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

/* Splits data at NUL bytes into at most max parts; returns how many (>= 1). */
static inline size_t fz_split(const uint8_t *data, size_t n, const uint8_t **parts, size_t *lens,
                              size_t max) {
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n && k < max; i++) {
        if (i == n || (data[i] == 0 && k + 1 < max)) {
            parts[k] = data + start;
            lens[k++] = i - start;
            start = i + 1;
        }
    }
    return k;
}

#endif
