/*
 * cmd_preprocess.c — `llavaguard preprocess --model DIR IMAGE`: decodes an image and runs the
 * model folder's image processor, then prints one JSON object describing the pixel tensor (crops,
 * shape, original size, image-token count, sum and mean in float64, grid, chosen pinpoint) and,
 * with --out, writes the tensor as raw little-endian float32. Errors name the file and the
 * reason and exit 1; usage errors exit 2; no partial --out file is ever left behind.
 */
#include "app.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "preprocess"

typedef struct pre_opts {
    const char *model, *image, *out;
    lg_image_options img;
    lg_preprocessor_options pp;
} pre_opts;

static void print_help(void) {
    printf("Usage: llavaguard preprocess --model DIR IMAGE [options]\n"
           "\n"
           "Decodes IMAGE ('-' reads standard input; JPEG, PNG, WebP, GIF, BMP) and prepares the\n"
           "pixel tensor the model in DIR expects (its preprocessor_config.json and config.json:\n"
           "LLaVA-OneVision, LLaVA-1.6 or LLaVA-1.5), exactly as the reference Python pipeline.\n"
           "Prints one JSON object: crops, shape [N,3,H,W], image_size [height,width],\n"
           "image_tokens, sum, mean (float64 over the tensor), grid, best_resolution, ...\n"
           "\n"
           "Options:\n"
           "  -m, --model DIR         model folder (required)\n"
           "  -o, --out FILE          also write the tensor as raw little-endian float32\n"
           "      --alpha MODE        transparency: 'drop' (default, as the reference: keep each\n"
           "                          pixel's stored colour) or 'white' (composite over white)\n"
           "      --exif-orientation  apply the EXIF orientation tag (off by default, as the\n"
           "                          reference)\n"
           "      --max-pixels N      refuse images with more than N pixels (default 178956970)\n"
           "      --image-aspect A    LLaVA-1.5: 'pad' (expand to a square of the mean colour\n"
           "                          first, the LlavaGuard v1.0 pipeline) or 'crop' (CLIP's\n"
           "                          centre crop); default: config.json's image_aspect_ratio,\n"
           "                          else crop\n"
           "      --pad-square        the same as --image-aspect pad\n"
           "  -h, --help              show this help\n");
}

/* Parses the options; returns -1 to go on, or an exit status. */
static int parse(int argc, char **argv, pre_opts *o) {
    enum { OPT_PAD = 256, OPT_ASPECT };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"out", required_argument, NULL, 'o'},
        APP_IMAGE_LONG_OPTIONS,
        {"pad-square", no_argument, NULL, OPT_PAD},
        {"image-aspect", required_argument, NULL, OPT_ASPECT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":m:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case APP_OPT_ALPHA:
        case APP_OPT_EXIF:
        case APP_OPT_MAX_PIXELS: {
            int rc = app_image_option(CMD, c, optarg, &o->img);
            if (rc >= 0) return rc;
            break;
        }
        case OPT_PAD:
            o->pp.square_pad = 1;
            break;
        case OPT_ASPECT: {
            int rc = app_image_aspect(CMD, optarg, &o->pp.square_pad);
            if (rc >= 0) return rc;
            break;
        }
        case 'h':
            print_help();
            return APP_EXIT_OK;
        case ':':
            return app_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage_error(CMD, "unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (!o->model) return app_usage_error(CMD, "missing --model DIR");
    if (optind >= argc) return app_usage_error(CMD, "missing IMAGE");
    if (argc - optind > 1)
        return app_usage_error(CMD, "one IMAGE only ('%s' is extra)", argv[optind + 1]);
    o->image = argv[optind];
    return -1;
}

static json_t *pair(int a, int b) {
    return json_pack("[ii]", a, b);
}

static void print_json(const pre_opts *o, const lg_preprocessor *pp, const lg_image *img,
                       const lg_pixels *px) {
    size_t n = (size_t)px->n_crops * px->channels * px->height * px->width;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += px->values[i];
    json_t *j = json_object();
    json_object_set_new(j, "image", json_string(o->image));
    json_object_set_new(j, "format", json_string(lg_image_format(img)));
    json_object_set_new(j, "processor", json_string(lg_preprocessor_kind(pp)));
    json_object_set_new(j, "crops", json_integer(px->n_crops));
    json_object_set_new(j, "shape",
                        json_pack("[iiii]", px->n_crops, px->channels, px->height, px->width));
    json_object_set_new(j, "image_size", pair(px->orig_height, px->orig_width));
    json_object_set_new(j, "image_tokens", json_integer(px->image_tokens));
    json_object_set_new(j, "tokens_per_crop", json_integer(px->tokens_per_crop));
    json_object_set_new(j, "sum", json_real(sum));
    json_object_set_new(j, "mean", json_real(n ? sum / (double)n : 0));
    json_object_set_new(j, "grid", pair(px->grid_h, px->grid_w));
    json_object_set_new(j, "best_resolution",
                        px->best_height ? pair(px->best_height, px->best_width) : json_null());
    json_object_set_new(j, "resized", pair(px->resized_height, px->resized_width));
    json_object_set_new(j, "feature_map",
                        px->grid_h ? pair(px->feat_rows, px->feat_cols) : json_null());
    json_object_set_new(j, "out", o->out ? json_string(o->out) : json_null());
    char *s = json_dumps(j, JSON_REAL_PRECISION(17) | JSON_COMPACT);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(j);
}

int cmd_preprocess(int argc, char **argv) {
    pre_opts o = {NULL, NULL, NULL, lg_image_options_default(), lg_preprocessor_options_default()};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    lg_error err;
    lg_preprocessor *pp = NULL;
    lg_image *img = NULL;
    lg_pixels *px = NULL;
    rc = APP_EXIT_FAIL;
    if (lg_preprocessor_open_with(o.model, &o.pp, &pp, &err) != LG_OK ||
        lg_image_load_file(o.image, &o.img, &img, &err) != LG_OK ||
        lg_preprocess(pp, img, &px, &err) != LG_OK ||
        (o.out && lg_pixels_write_f32(px, o.out, &err) != LG_OK)) {
        app_fail_err(CMD, &err);
    } else {
        print_json(&o, pp, img, px);
        rc = fflush(stdout) == 0 ? APP_EXIT_OK : app_fail(CMD, "cannot write to stdout");
    }
    lg_pixels_free(px);
    lg_image_free(img);
    lg_preprocessor_free(pp);
    return rc;
}
