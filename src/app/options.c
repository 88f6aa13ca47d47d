/*
 * options.c — command-line options several commands share: the image-decoding options
 * (--alpha, --exif-orientation, --max-pixels) and strict number parsing.
 */
#include "app.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool app_parse_ll(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool app_parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static const struct {
    const char *name;
    lg_kv_type type;
} KV_NAMES[] = {{"f32", LG_KV_F32}, {"i16", LG_KV_I16}, {"bf16", LG_KV_BF16}, {"f16", LG_KV_F16}};

bool app_parse_kv_type(const char *s, lg_kv_type *out) {
    for (size_t i = 0; i < sizeof KV_NAMES / sizeof KV_NAMES[0]; i++)
        if (strcmp(s, KV_NAMES[i].name) == 0) return *out = KV_NAMES[i].type, true;
    return false;
}

const char *app_kv_type_name(lg_kv_type t) {
    for (size_t i = 0; i < sizeof KV_NAMES / sizeof KV_NAMES[0]; i++)
        if (KV_NAMES[i].type == t) return KV_NAMES[i].name;
    return "auto";
}

bool app_parse_precision(const char *s, lg_precision *out) {
    if (strcmp(s, "accurate") == 0) return *out = LG_PRECISION_ACCURATE, true;
    if (strcmp(s, "bf16") == 0) return *out = LG_PRECISION_BF16, true;
    return false;
}

const char *app_precision_name(lg_precision p) {
    return p == LG_PRECISION_BF16 ? "bf16" : "accurate";
}

int app_image_aspect(const char *cmd, const char *arg, int *square_pad) {
    if (strcmp(arg, "pad") == 0)
        *square_pad = 1;
    else if (strcmp(arg, "crop") == 0)
        *square_pad = 0;
    else
        return app_usage_error(cmd, "--image-aspect must be 'pad' or 'crop', not '%s'", arg);
    return -1;
}

int app_image_option(const char *cmd, int c, const char *arg, lg_image_options *io) {
    long long v;
    switch (c) {
    case APP_OPT_ALPHA:
        if (strcmp(arg, "drop") == 0)
            io->alpha_mode = LG_ALPHA_DROP;
        else if (strcmp(arg, "white") == 0)
            io->alpha_mode = LG_ALPHA_WHITE;
        else
            return app_usage_error(cmd, "--alpha must be 'drop' or 'white', not '%s'", arg);
        return -1;
    case APP_OPT_EXIF:
        io->apply_exif_orientation = 1;
        return -1;
    case APP_OPT_MAX_PIXELS:
        if (!app_parse_ll(arg, 1, INT64_MAX, &v))
            return app_usage_error(cmd, "--max-pixels needs a positive integer, not '%s'", arg);
        io->max_pixels = (uint64_t)v;
        return -1;
    }
    return app_usage_error(cmd, "unrecognized option");
}
