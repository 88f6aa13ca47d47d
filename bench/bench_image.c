/*
 * bench_image.c — decode and preprocess time per fixture image (median of several runs), for
 * the LLaVA-OneVision processor by default. Not a test: prints a table.
 *   bench_image [--runs N] [--model DIR] [IMAGE...]
 * Without images it uses ../shared/fixtures/images/ (relative to the repository root, or the
 * LG_FIXTURES environment variable).
 */
#include "llavaguard.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the files of dir (sorted); returns the count. */
static int list_dir(const char *dir, char **out, int max) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        out[n] = malloc(len);
        snprintf(out[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, cmp_str);
    return n;
}

static int bench_one(const char *path, const lg_preprocessor *pp, int runs) {
    double *td = malloc(sizeof(double) * runs), *tp = malloc(sizeof(double) * runs);
    lg_error err;
    int w = 0, h = 0, crops = 0;
    for (int r = 0; r < runs; r++) {
        lg_image *img = NULL;
        lg_pixels *px = NULL;
        double t0 = now_ms();
        if (lg_image_load_file(path, NULL, &img, &err) != LG_OK) {
            fprintf(stderr, "%s\n", err.msg);
            free(td);
            free(tp);
            return 1;
        }
        double t1 = now_ms();
        if (lg_preprocess(pp, img, &px, &err) != LG_OK) {
            fprintf(stderr, "%s\n", err.msg);
            lg_image_free(img);
            free(td);
            free(tp);
            return 1;
        }
        double t2 = now_ms();
        td[r] = t1 - t0;
        tp[r] = t2 - t1;
        w = lg_image_width(img);
        h = lg_image_height(img);
        crops = px->n_crops;
        lg_pixels_free(px);
        lg_image_free(img);
    }
    const char *name = strrchr(path, '/');
    double md = median(td, runs), mp = median(tp, runs);
    printf("%-30s %5dx%-5d %5d %10.2f %12.2f %10.2f\n", name ? name + 1 : path, w, h, crops, md, mp,
           md + mp);
    free(td);
    free(tp);
    return 0;
}

int main(int argc, char **argv) {
    int runs = 9;
    const char *fix = getenv("LG_FIXTURES");
    if (!fix) fix = "../shared/fixtures";
    char model[1024];
    snprintf(model, sizeof model, "%s/llava-ov-tiny", fix);
    char *files[256];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            snprintf(model, sizeof model, "%s", argv[++i]);
        else if (n < 256)
            files[n++] = strdup(argv[i]);
    }
    if (runs < 1) runs = 1;
    if (n == 0) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/images", fix);
        n = list_dir(dir, files, 256);
        if (n == 0) {
            fprintf(stderr,
                    "bench_image: no images in %s (run from the repository root or set "
                    "LG_FIXTURES)\n",
                    dir);
            return 1;
        }
    }
    lg_preprocessor *pp = NULL;
    lg_error err;
    if (lg_preprocessor_open(model, &pp, &err) != LG_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("bench_image: %s processor (%s), median of %d runs, milliseconds\n",
           lg_preprocessor_kind(pp), model, runs);
    printf("%-30s %11s %5s %10s %12s %10s\n", "image", "size", "crops", "decode", "preprocess",
           "total");
    int rc = 0;
    for (int i = 0; i < n; i++) {
        rc |= bench_one(files[i], pp, runs);
        free(files[i]);
    }
    lg_preprocessor_free(pp);
    return rc;
}
