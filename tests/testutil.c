/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void require_dir(const char *dir, const char *what) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        fail_msg("%s not found at %s (expected ../shared beside the repository root)", what, dir);
}

char *tu_fixture(const char *rel) {
    require_dir(LG_FIXTURES_DIR, "shared fixtures");
    return join(LG_FIXTURES_DIR, rel);
}

char *tu_shared(const char *rel) {
    require_dir(LG_SHARED_DIR, "shared folder");
    return join(LG_SHARED_DIR, rel);
}

uint8_t *tu_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", path);
    buf[n] = 0;
    fclose(f);
    if (size) *size = (size_t)n;
    return buf;
}

uint8_t *tu_read_fixture(const char *rel, size_t *size) {
    char *p = tu_fixture(rel);
    uint8_t *d = tu_read(p, size);
    free(p);
    return d;
}

char *tu_tmpdir(void) {
    char tmpl[] = "/tmp/lgtest.XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) fail_msg("mkdtemp failed");
    return strdup(d);
}

void tu_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (size && fwrite(data, 1, size, f) != size) fail_msg("cannot write %s", path);
    fclose(f);
}

double tu_max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

void tu_check_tensor(const float *got, const float *want, size_t n, double tol, const char *label) {
    double maxd = 0;
    size_t worst = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (isnan(d)) d = INFINITY;
        if (d > maxd) {
            maxd = d;
            worst = i;
        }
        if (d > tol) {
            if (bad < 5)
                print_message("  %s[%zu]: got %.7g want %.7g (diff %.3g)\n", label, i, got[i],
                              want[i], d);
            bad++;
        }
    }
    if (bad)
        fail_msg("%s: %zu of %zu values differ by more than %.3g (max %.3g at %zu)", label, bad, n,
                 tol, maxd, worst);
}
