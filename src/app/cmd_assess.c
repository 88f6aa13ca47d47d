/*
 * cmd_assess.c — `llavaguard assess`: judges images against a safety policy and prints one
 * verdict per image (JSON Lines by default). A bad image gets its own error record and the run
 * goes on; the exit status says whether any input failed (1) or, with --fail-on-unsafe, whether
 * any image was judged unsafe (3).
 */
#include "app.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMD "assess"
#define MAX_IMAGE_BYTES ((size_t)1 << 30) /* larger files are refused before decoding */

typedef enum out_format { FMT_JSONL, FMT_JSON, FMT_TEXT } out_format;

typedef struct assess_opts {
    const char *model_dir;
    const char *policy_file;
    const char *policy_version;
    const char *allow, *sensitive;
    const char *chat_template;
    const char *list_file;
    out_format format;
    bool fail_on_unsafe, progress, exact;
    lg_precision precision;
    lg_kv_type kv_type;
    int threads;
    lg_assess_params ap;
    lg_image_options io;
} assess_opts;

static void print_help(void) {
    printf("Usage: llavaguard assess --model DIR [options] IMAGE...\n"
           "\n"
           "Judges each image against a safety policy with a LlavaGuard model and prints one\n"
           "verdict per image: rating (Safe/Unsafe), category, rationale, P(unsafe) and the\n"
           "probability of every category. IMAGE '-' reads standard input.\n"
           "\n"
           "Options:\n"
           "  -m, --model DIR          model folder (Hugging Face layout)\n"
           "  -p, --policy FILE        policy file (docs/policy-format.md); default: the built-in\n"
           "                           LlavaGuard policy the model was trained with\n"
           "      --policy-version V   built-in policy generation (v1.2, v1.0, v1.0-modelcard)\n"
           "      --allow IDS          declare categories non-violating, e.g. O3,O4\n"
           "      --sensitive IDS      declare categories sensitive, e.g. O6\n"
           "      --rationale MODE     always (default), never (fastest) or unsafe\n"
           "      --max-rationale-tokens N  cap on the rationale (default 512)\n"
           "  -f, --format FMT         jsonl (default, one object per line), json (one array)\n"
           "                           or text\n"
           "      --temperature T      sample instead of greedy (reference setting: 0.2)\n"
           "      --top-p P            nucleus sampling (reference: 0.95)\n"
           "      --top-k K            top-k sampling (reference: 50)\n"
           "      --seed S             random seed for sampling (default 0)\n"
           "      --chat-template NAME override the model family's chat template\n"
           "      --files-from FILE    read image paths from FILE, one per line\n"
           "      --fail-on-unsafe     exit with status 3 when any image is judged "
           "unsafe\n" APP_IMAGE_OPTIONS_HELP
           "  -t, --threads N          compute threads (default: all cores)\n"
           "      --exact              plain float32 reference kernels\n"
           "      --precision P        accurate (default: split-bf16 activations, near float32)\n"
           "                           or bf16 (fastest; logits off by ~1e-2)\n"
           "      --kv-type T          KV cache: i16 (default; int16 + a scale per head row,\n"
           "                           half of f32), f32, bf16 or f16 (--exact: f32)\n"
           "      --progress           report progress on stderr\n"
           "  -h, --help               show this help\n"
           "\n"
           "Exit status: 0 all judged, 1 an input failed, 2 usage error, 3 unsafe (with\n"
           "--fail-on-unsafe).\n");
}

enum {
    OPT_POLICY_VERSION = 256,
    OPT_ALLOW,
    OPT_SENSITIVE,
    OPT_RATIONALE,
    OPT_MAX_RATIONALE,
    OPT_TEMPERATURE,
    OPT_TOP_P,
    OPT_TOP_K,
    OPT_SEED,
    OPT_TEMPLATE,
    OPT_FILES_FROM,
    OPT_FAIL_UNSAFE,
    OPT_EXACT,
    OPT_PRECISION,
    OPT_KV,
    OPT_PROGRESS,
};

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"policy", required_argument, NULL, 'p'},
    {"policy-version", required_argument, NULL, OPT_POLICY_VERSION},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"sensitive", required_argument, NULL, OPT_SENSITIVE},
    {"rationale", required_argument, NULL, OPT_RATIONALE},
    {"max-rationale-tokens", required_argument, NULL, OPT_MAX_RATIONALE},
    {"format", required_argument, NULL, 'f'},
    {"temperature", required_argument, NULL, OPT_TEMPERATURE},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"seed", required_argument, NULL, OPT_SEED},
    {"chat-template", required_argument, NULL, OPT_TEMPLATE},
    {"files-from", required_argument, NULL, OPT_FILES_FROM},
    {"fail-on-unsafe", no_argument, NULL, OPT_FAIL_UNSAFE},
    APP_IMAGE_LONG_OPTIONS,
    {"threads", required_argument, NULL, 't'},
    {"exact", no_argument, NULL, OPT_EXACT},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"kv-type", required_argument, NULL, OPT_KV},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns -1 on success, else the exit code. */
static int parse_args(int argc, char **argv, assess_opts *o) {
    double d;
    long long ll;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":m:p:f:t:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model_dir = optarg;
            break;
        case 'p':
            o->policy_file = optarg;
            break;
        case OPT_POLICY_VERSION:
            o->policy_version = optarg;
            break;
        case OPT_ALLOW:
            o->allow = optarg;
            break;
        case OPT_SENSITIVE:
            o->sensitive = optarg;
            break;
        case OPT_RATIONALE:
            if (strcmp(optarg, "always") == 0)
                o->ap.rationale = LG_RATIONALE_ALWAYS;
            else if (strcmp(optarg, "never") == 0)
                o->ap.rationale = LG_RATIONALE_NEVER;
            else if (strcmp(optarg, "unsafe") == 0)
                o->ap.rationale = LG_RATIONALE_UNSAFE;
            else
                return app_usage_error(CMD, "--rationale must be always, never or unsafe");
            break;
        case OPT_MAX_RATIONALE:
            if (!app_parse_ll(optarg, 1, 1 << 20, &ll))
                return app_usage_error(CMD, "--max-rationale-tokens must be 1..1048576");
            o->ap.max_rationale_tokens = (int)ll;
            break;
        case 'f':
            if (strcmp(optarg, "jsonl") == 0)
                o->format = FMT_JSONL;
            else if (strcmp(optarg, "json") == 0)
                o->format = FMT_JSON;
            else if (strcmp(optarg, "text") == 0)
                o->format = FMT_TEXT;
            else
                return app_usage_error(CMD, "--format must be jsonl, json or text");
            break;
        case OPT_TEMPERATURE:
            if (!app_parse_double(optarg, 0, 100, &d))
                return app_usage_error(CMD, "--temperature must be a number in [0, 100]");
            o->ap.temperature = (float)d;
            break;
        case OPT_TOP_P:
            if (!app_parse_double(optarg, 1e-6, 1, &d))
                return app_usage_error(CMD, "--top-p must be in (0, 1]");
            o->ap.top_p = (float)d;
            break;
        case OPT_TOP_K:
            if (!app_parse_ll(optarg, 0, 1 << 30, &ll))
                return app_usage_error(CMD, "--top-k must be a non-negative integer");
            o->ap.top_k = (int)ll;
            break;
        case OPT_SEED:
            if (!app_parse_ll(optarg, 0, INT64_MAX, &ll))
                return app_usage_error(CMD, "--seed must be a non-negative integer");
            o->ap.seed = (uint64_t)ll;
            break;
        case OPT_TEMPLATE:
            o->chat_template = optarg;
            break;
        case OPT_FILES_FROM:
            o->list_file = optarg;
            break;
        case OPT_FAIL_UNSAFE:
            o->fail_on_unsafe = true;
            break;
        case APP_OPT_ALPHA:
        case APP_OPT_EXIF:
        case APP_OPT_MAX_PIXELS: {
            int rc = app_image_option(CMD, c, optarg, &o->io);
            if (rc >= 0) return rc;
            break;
        }
        case 't':
            if (!app_parse_ll(optarg, 1, 1024, &ll))
                return app_usage_error(CMD, "--threads must be 1..1024");
            o->threads = (int)ll;
            break;
        case OPT_EXACT:
            o->exact = true;
            break;
        case OPT_PRECISION:
            if (!app_parse_precision(optarg, &o->precision))
                return app_usage_error(CMD, "--precision must be accurate or bf16");
            break;
        case OPT_KV:
            if (!app_parse_kv_type(optarg, &o->kv_type))
                return app_usage_error(CMD, "--kv-type must be f32, i16, bf16 or f16, not '%s'",
                                       optarg);
            break;
        case OPT_PROGRESS:
            o->progress = true;
            break;
        case 'h':
            print_help();
            return APP_EXIT_OK;
        case ':':
            return app_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage_error(CMD, "unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (!o->model_dir) return app_usage_error(CMD, "missing --model DIR");
    if (optind >= argc && !o->list_file) return app_usage_error(CMD, "no images given");
    return -1;
}

/* ---- inputs ---- */

typedef struct path_list {
    char **items;
    size_t n, cap;
} path_list;

static bool list_push(path_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->items, cap * sizeof *p);
        if (!p) return false;
        l->items = p;
        l->cap = cap;
    }
    return (l->items[l->n++] = strdup(s)) != NULL;
}

static void list_free(path_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
}

static int read_list(const char *file, path_list *l) {
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) return app_fail(CMD, "%s: cannot open the image list", file);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0) continue;
        if (!list_push(l, line)) {
            rc = app_fail(CMD, "out of memory");
            break;
        }
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* ---- output ---- */

static json_t *verdict_json(const char *path, const char *sha, const lg_image *img,
                            const lg_verdict *v, double t_decode) {
    json_t *j = json_object();
    json_object_set_new(j, "image", json_string(path));
    json_object_set_new(j, "sha256", json_string(sha));
    json_object_set_new(j, "width", json_integer(lg_image_width(img)));
    json_object_set_new(j, "height", json_integer(lg_image_height(img)));
    json_object_set_new(j, "rating", json_string(v->rating));
    json_object_set_new(j, "category", json_string(v->category));
    json_object_set_new(j, "rationale", v->rationale ? json_string(v->rationale) : json_null());
    if (v->rationale_truncated) json_object_set_new(j, "rationale_truncated", json_true());
    json_object_set_new(j, "p_unsafe", json_real(v->p_unsafe));
    json_t *cp = json_object();
    for (size_t i = 0; i < v->n_categories; i++)
        json_object_set_new(cp, v->category_options[i], json_real(v->category_probs[i]));
    json_object_set_new(j, "category_probs", cp);
    json_object_set_new(j, "policy_sha256", json_string(v->policy_sha256));
    json_object_set_new(j, "model", json_string(v->model_type));
    json_object_set_new(j, "prompt_tokens", json_integer(v->prompt_tokens));
    json_object_set_new(j, "image_tokens", json_integer(v->image_tokens));
    json_t *t = json_object();
    json_object_set_new(t, "decode_image_s", json_real(t_decode));
    json_object_set_new(t, "preprocess_s", json_real(v->timings.preprocess));
    json_object_set_new(t, "vision_s", json_real(v->timings.vision));
    json_object_set_new(t, "prefill_s", json_real(v->timings.prefill));
    json_object_set_new(t, "verdict_s", json_real(v->timings.verdict));
    json_object_set_new(t, "total_s", json_real(v->timings.total + t_decode));
    json_object_set_new(j, "timings", t);
    return j;
}

static json_t *error_json(const char *path, lg_status st, const char *msg) {
    json_t *j = json_object();
    json_object_set_new(j, "image", json_string(path));
    json_object_set_new(j, "error", json_string(msg));
    json_object_set_new(j, "status", json_string(lg_status_str(st)));
    return j;
}

static void emit(json_t *rec, out_format fmt, json_t *array) {
    if (fmt == FMT_JSON) {
        json_array_append(array, rec);
    } else if (fmt == FMT_JSONL) {
        char *s = json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
        if (s) puts(s);
        free(s);
        fflush(stdout);
    } else {
        json_t *err = json_object_get(rec, "error");
        const char *img = json_string_value(json_object_get(rec, "image"));
        if (err) {
            printf("%s: ERROR %s\n", img, json_string_value(err));
        } else {
            const char *rat = json_string_value(json_object_get(rec, "rationale"));
            printf("%s: %s (%s), P(unsafe) = %.4f\n", img,
                   json_string_value(json_object_get(rec, "rating")),
                   json_string_value(json_object_get(rec, "category")),
                   json_real_value(json_object_get(rec, "p_unsafe")));
            if (rat) printf("  %s\n", rat);
        }
        fflush(stdout);
    }
}

/* ---- the run ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static lg_status make_policy(const assess_opts *o, lg_guard *g, lg_policy **out, lg_error *e) {
    lg_policy *pol = NULL;
    lg_status st =
        o->policy_file
            ? lg_policy_load_file(o->policy_file, &pol, e)
            : lg_policy_create_default(o->policy_version ? o->policy_version
                                                         : lg_guard_default_policy_version(g),
                                       &pol, e);
    if (st != LG_OK) return st;
    if (o->allow && (st = lg_policy_set_states(pol, o->allow, LG_CATEGORY_NONVIOLATING)) != LG_OK)
        goto fail;
    if (o->sensitive &&
        (st = lg_policy_set_states(pol, o->sensitive, LG_CATEGORY_SENSITIVE)) != LG_OK)
        goto fail;
    for (size_t i = 0; i < lg_policy_n_warnings(pol); i++)
        fprintf(stderr, "llavaguard assess: warning: %s\n", lg_policy_warning(pol, i));
    *out = pol;
    return LG_OK;
fail:
    snprintf(e->msg, sizeof e->msg, "%s", lg_policy_errmsg(pol));
    e->status = st;
    lg_policy_free(pol);
    return st;
}

/* Judges one image; returns 0 ok, 1 failed, 3 unsafe. */
static int assess_one(const assess_opts *o, lg_guard *g, const lg_policy *pol, const char *path,
                      json_t *array) {
    size_t size = 0;
    double t0 = now_s();
    uint8_t *bytes = NULL;
    lg_error e = {0};
    lg_status st = lg_read_file(path, MAX_IMAGE_BYTES, &bytes, &size, &e);
    if (st != LG_OK) {
        json_t *rec = error_json(path, st, e.msg);
        emit(rec, o->format, array);
        json_decref(rec);
        return APP_EXIT_FAIL;
    }
    char sha[65];
    lg_sha256_hex(bytes, size, sha);
    lg_image *img = NULL;
    st = lg_image_load_memory(bytes, size, path, &o->io, &img, &e);
    lg_free(bytes);
    double t_decode = now_s() - t0;
    lg_verdict *v = NULL;
    if (st == LG_OK) {
        st = lg_guard_assess(g, img, pol, &o->ap, &v);
        if (st != LG_OK) snprintf(e.msg, sizeof e.msg, "%s: %s", path, lg_guard_errmsg(g));
    }
    json_t *rec =
        st == LG_OK ? verdict_json(path, sha, img, v, t_decode) : error_json(path, st, e.msg);
    emit(rec, o->format, array);
    json_decref(rec);
    int rc = st != LG_OK ? APP_EXIT_FAIL : v->unsafe ? APP_EXIT_UNSAFE : APP_EXIT_OK;
    lg_verdict_free(v);
    lg_image_free(img);
    return rc;
}

int cmd_assess(int argc, char **argv) {
    assess_opts o = {
        .ap = lg_assess_params_default(), .io = lg_image_options_default(), .kv_type = LG_KV_AUTO};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    path_list paths = {0};
    for (int i = optind; i < argc; i++)
        if (!list_push(&paths, argv[i])) return app_fail(CMD, "out of memory");
    if (o.list_file && (rc = read_list(o.list_file, &paths)) != 0) {
        list_free(&paths);
        return rc;
    }

    lg_guard_params gp = lg_guard_params_default();
    gp.model.kernels = o.exact ? "ref" : "auto";
    gp.model.n_threads = o.threads;
    gp.model.precision = o.precision;
    gp.model.kv_type = o.kv_type;
    gp.chat_template = o.chat_template;
    lg_guard *g = NULL;
    lg_policy *pol = NULL;
    lg_error e = {0};
    if (lg_guard_open(o.model_dir, &gp, &g, &e) != LG_OK || make_policy(&o, g, &pol, &e) != LG_OK) {
        rc = app_fail_err(CMD, &e);
        goto done;
    }
    json_t *array = o.format == FMT_JSON ? json_array() : NULL;
    bool failed = false, unsafe = false;
    double t0 = now_s();
    for (size_t i = 0; i < paths.n; i++) {
        int r = assess_one(&o, g, pol, paths.items[i], array);
        failed |= r == APP_EXIT_FAIL;
        unsafe |= r == APP_EXIT_UNSAFE;
        if (o.progress) {
            double el = now_s() - t0;
            fprintf(stderr, "[%zu/%zu] %s  %.2f s/image, ETA %.0f s\n", i + 1, paths.n,
                    paths.items[i], el / (double)(i + 1),
                    el / (double)(i + 1) * (double)(paths.n - i - 1));
        }
    }
    if (array) {
        char *s = json_dumps(array, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
        if (s) puts(s);
        free(s);
        json_decref(array);
    }
    rc = failed ? APP_EXIT_FAIL : (o.fail_on_unsafe && unsafe) ? APP_EXIT_UNSAFE : APP_EXIT_OK;
done:
    lg_policy_free(pol);
    lg_guard_free(g);
    list_free(&paths);
    return rc;
}
