/*
 * app.h — shared pieces of the `llavaguard` command-line tool. The tool is a thin client of the
 * public header (include/llavaguard.h); it includes nothing from src/ except this folder.
 *
 * Exit statuses: 0 success, 1 the work failed (bad input, model error), 2 usage error, 3 (assess
 * with --fail-on-unsafe) an image was judged unsafe.
 */
#ifndef LG_APP_H
#define LG_APP_H

#include "llavaguard.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#define APP_EXIT_OK 0
#define APP_EXIT_FAIL 1
#define APP_EXIT_USAGE 2
#define APP_EXIT_UNSAFE 3

/* One subcommand: `llavaguard <name> ...`. `run` receives argv with argv[0] = the name. */
typedef struct app_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} app_command;

/* Prints "llavaguard <cmd>: <message>" and a hint to use --help to stderr; returns exit code 2. */
int app_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "llavaguard <cmd>: <message>" to stderr; returns exit code 1. */
int app_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a library error (status + message) for `cmd`; returns exit code 1. */
int app_fail_err(const char *cmd, const lg_error *err);

/* ---- options shared by the commands that decode images (options.c) ---- */

/* getopt_long ids of the image-decoding options; a command's own ids stay below 1000. */
enum { APP_OPT_ALPHA = 1000, APP_OPT_EXIF, APP_OPT_MAX_PIXELS };

/* Entries for a command's getopt_long table. */
#define APP_IMAGE_LONG_OPTIONS                                                                     \
    {"alpha", required_argument, NULL, APP_OPT_ALPHA},                                             \
        {"exif-orientation", no_argument, NULL, APP_OPT_EXIF}, {                                   \
        "max-pixels", required_argument, NULL, APP_OPT_MAX_PIXELS                                  \
    }

/* Their --help lines. */
#define APP_IMAGE_OPTIONS_HELP                                                                     \
    "      --alpha MODE         drop (default, as the reference) or white: composite\n"            \
    "                           transparent pixels over white\n"                                   \
    "      --exif-orientation   apply the EXIF orientation tag (off by default, as the\n"          \
    "                           reference)\n"                                                      \
    "      --max-pixels N       refuse images with more than N pixels (default 178956970)\n"

/* Applies image option `c` (one of APP_OPT_*) with value `arg` to `io`. Returns -1 when applied,
 * or the usage-error exit code (2) after printing the message for `cmd`. */
int app_image_option(const char *cmd, int c, const char *arg, lg_image_options *io);

/* Parses a whole decimal integer in [lo, hi]; false for anything else. */
bool app_parse_ll(const char *s, long long lo, long long hi, long long *out);
/* --image-aspect pad|crop (LLaVA-1.5): sets square_pad to 1 or 0. Returns -1 when applied, or
 * the usage-error exit code (2) after printing the message for `cmd`. */
int app_image_aspect(const char *cmd, const char *arg, int *square_pad);
/* Its --help lines. */
#define APP_IMAGE_ASPECT_HELP                                                                      \
    "      --image-aspect A     LLaVA-1.5: 'pad' (expand to a square of the mean colour first,\n"  \
    "                           the LlavaGuard v1.0 pipeline) or 'crop' (CLIP's centre crop);\n"   \
    "                           default: config.json's image_aspect_ratio, else crop\n"
/* Parses a whole number in [lo, hi]; false for anything else (NaN included). */
bool app_parse_double(const char *s, double lo, double hi, double *out);
/* Parses a KV cache type name: f32, i16, bf16 or f16. */
bool app_parse_kv_type(const char *s, lg_kv_type *out);
/* The name app_parse_kv_type reads for t ("auto" for LG_KV_AUTO). */
const char *app_kv_type_name(lg_kv_type t);
/* Parses a precision name (accurate, bf16) and names one. */
bool app_parse_precision(const char *s, lg_precision *out);
const char *app_precision_name(lg_precision p);

/* The subcommands, each in its own cmd_<name>.c. */
int cmd_preprocess(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_assess(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_annotate(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_augment(int argc, char **argv);

#endif
