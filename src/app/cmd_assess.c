/*
 * cmd_assess.c — `llavaguard assess`: judges images against one or more safety policies and
 * prints one verdict per image and policy (JSON Lines by default), in input order. The images go
 * through the library's batch engine (lg_guard_submit: --batch of them in flight, their decoder
 * steps batched), a window of requests ahead of the output. A bad image gets its own error record
 * and the run goes on; the exit status says whether any input failed (1) or, with
 * --fail-on-unsafe, whether any image was judged unsafe (3).
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

#define MAX_POLICIES 64

typedef struct assess_opts {
    const char *model_dir;
    const char *policy_files[MAX_POLICIES];
    int n_policy_files;
    const char *policies_list;
    int batch;
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
    int square_pad; /* --image-aspect: -1 the folder's, 0 crop, 1 pad */
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
           "                           LlavaGuard policy the model was trained with. Repeat it\n"
           "                           to judge every image against several policies (one\n"
           "                           record per image and policy; the vision tower and the\n"
           "                           shared prompt prefix run once per image)\n"
           "      --policies FILE      more policy files, one path per line\n"
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
           "unsafe\n" APP_IMAGE_OPTIONS_HELP APP_IMAGE_ASPECT_HELP
           "  -t, --threads N          compute threads (default: all cores)\n"
           "  -b, --batch N            images in flight, their decoder steps batched into one\n"
           "                           pass (default 4; 1 judges one at a time)\n"
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
    OPT_POLICIES,
    OPT_ASPECT,
};

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"policy", required_argument, NULL, 'p'},
    {"policies", required_argument, NULL, OPT_POLICIES},
    {"batch", required_argument, NULL, 'b'},
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
    {"image-aspect", required_argument, NULL, OPT_ASPECT},
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
    while ((c = getopt_long(argc, argv, ":m:p:f:t:b:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model_dir = optarg;
            break;
        case 'p':
            if (o->n_policy_files == MAX_POLICIES)
                return app_usage_error(CMD, "at most %d policies", MAX_POLICIES);
            o->policy_files[o->n_policy_files++] = optarg;
            break;
        case OPT_POLICIES:
            o->policies_list = optarg;
            break;
        case 'b':
            if (!app_parse_ll(optarg, 1, 64, &ll))
                return app_usage_error(CMD, "--batch must be 1..64");
            o->batch = (int)ll;
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
        case OPT_ASPECT:
            if (app_image_aspect(CMD, optarg, &o->square_pad) >= 0) return APP_EXIT_USAGE;
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

static json_t *verdict_json(const char *path, const char *sha, int width, int height,
                            const lg_verdict *v, double t_decode) {
    json_t *j = json_object();
    json_object_set_new(j, "image", json_string(path));
    json_object_set_new(j, "sha256", json_string(sha));
    json_object_set_new(j, "width", json_integer(width));
    json_object_set_new(j, "height", json_integer(height));
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

/* One policy: a file or the built-in one, with --allow / --sensitive applied. */
static lg_status make_policy(const assess_opts *o, lg_guard *g, const char *file, lg_policy **out,
                             lg_error *e) {
    lg_policy *pol = NULL;
    lg_status st =
        file ? lg_policy_load_file(file, &pol, e)
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
        fprintf(stderr, "llavaguard assess: warning: %s%s%s\n", file ? file : "", file ? ": " : "",
                lg_policy_warning(pol, i));
    *out = pol;
    return LG_OK;
fail:
    snprintf(e->msg, sizeof e->msg, "%s%s%s", file ? file : "", file ? ": " : "",
             lg_policy_errmsg(pol));
    e->status = st;
    lg_policy_free(pol);
    return st;
}

/* Every policy of the run: the --policy files, then those --policies lists; else the default. */
static int make_policies(const assess_opts *o, lg_guard *g, lg_policy **pols, int *n) {
    path_list files = {0};
    int rc = 0;
    for (int i = 0; i < o->n_policy_files; i++)
        if (!list_push(&files, o->policy_files[i])) rc = app_fail(CMD, "out of memory");
    if (!rc && o->policies_list) rc = read_list(o->policies_list, &files);
    if (!rc && files.n > MAX_POLICIES) rc = app_fail(CMD, "at most %d policies", MAX_POLICIES);
    size_t want = files.n ? files.n : 1;
    *n = 0;
    for (size_t i = 0; !rc && i < want; i++) {
        lg_error e = {0};
        if (make_policy(o, g, files.n ? files.items[i] : NULL, &pols[i], &e) != LG_OK)
            rc = app_fail_err(CMD, &e);
        else
            (*n)++;
    }
    list_free(&files);
    return rc;
}

/* ---- the run: a window of requests in the engine, results printed in input order ---- */

typedef struct pending {
    const char *path;
    uint8_t *bytes;
    lg_ticket ticket;
    bool submitted;
    lg_status read_status; /* the file could not be read: no request */
    char read_error[LG_ERROR_MSG_MAX];
} pending;

/* Reads the file and queues its request. Returns 0, or an exit code for a fatal error. */
static int submit_one(const assess_opts *o, lg_guard *g, const lg_policy *const *pols, int n_pols,
                      pending *p) {
    size_t size = 0;
    lg_error e = {0};
    p->submitted = false;
    p->read_status = lg_read_file(p->path, MAX_IMAGE_BYTES, &p->bytes, &size, &e);
    if (p->read_status != LG_OK) {
        snprintf(p->read_error, sizeof p->read_error, "%s", e.msg);
        return 0;
    }
    lg_request r = {.image_bytes = p->bytes,
                    .image_size = size,
                    .name = p->path,
                    .image_options = &o->io,
                    .policies = pols,
                    .n_policies = (size_t)n_pols,
                    .params = &o->ap};
    if (lg_guard_submit(g, &r, 0, &p->ticket, &e) != LG_OK) return app_fail_err(CMD, &e);
    lg_free(p->bytes); /* the engine copied it */
    p->bytes = NULL;
    p->submitted = true;
    return 0;
}

/* Waits for one image's result and prints its records; returns 0 ok, 1 failed, 3 unsafe. */
static int finish_one(const assess_opts *o, lg_guard *g, pending *p, int n_pols, json_t *array) {
    if (!p->submitted) {
        json_t *rec = error_json(p->path, p->read_status, p->read_error);
        for (int i = 0; i < n_pols; i++) emit(rec, o->format, array);
        json_decref(rec);
        return APP_EXIT_FAIL;
    }
    lg_result *r = NULL;
    if (lg_guard_wait(g, p->ticket, &r) != LG_OK) {
        json_t *rec = error_json(p->path, LG_E_INTERNAL, "lost request");
        emit(rec, o->format, array);
        json_decref(rec);
        return APP_EXIT_FAIL;
    }
    int rc = APP_EXIT_OK;
    for (size_t i = 0; i < r->n_verdicts; i++) {
        const lg_verdict *v = r->verdicts[i];
        json_t *rec =
            v ? verdict_json(p->path, r->image_sha256, r->width, r->height, v, r->timings.decode)
              : error_json(p->path, r->statuses[i], r->errors[i][0] ? r->errors[i] : r->error);
        emit(rec, o->format, array);
        json_decref(rec);
        if (!v)
            rc = APP_EXIT_FAIL;
        else if (v->unsafe && rc == APP_EXIT_OK)
            rc = APP_EXIT_UNSAFE;
    }
    lg_result_free(r);
    return rc;
}

int cmd_assess(int argc, char **argv) {
    assess_opts o = {.ap = lg_assess_params_default(),
                     .io = lg_image_options_default(),
                     .kv_type = LG_KV_AUTO,
                     .square_pad = -1,
                     .batch = 4};
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
    gp.max_batch = o.batch;
    gp.preprocess.square_pad = o.square_pad;
    lg_guard *g = NULL;
    lg_policy *pols[MAX_POLICIES] = {0};
    int n_pols = 0;
    lg_error e = {0};
    pending *pend = NULL;
    json_t *array = NULL;
    if (lg_guard_open(o.model_dir, &gp, &g, &e) != LG_OK) {
        rc = app_fail_err(CMD, &e);
        goto done;
    }
    if ((rc = make_policies(&o, g, pols, &n_pols)) != 0) goto done;
    pend = calloc(paths.n ? paths.n : 1, sizeof *pend);
    if (!pend) {
        rc = app_fail(CMD, "out of memory");
        goto done;
    }
    array = o.format == FMT_JSON ? json_array() : NULL;
    bool failed = false, unsafe = false;
    double t0 = now_s();
    /* keep twice the batch submitted ahead of the image being printed */
    size_t window = (size_t)o.batch * 2, next = 0;
    for (size_t i = 0; i < paths.n; i++) {
        for (; next < paths.n && next < i + window; next++) {
            pend[next].path = paths.items[next];
            if ((rc = submit_one(&o, g, (const lg_policy *const *)pols, n_pols, &pend[next])))
                goto done;
        }
        int r = finish_one(&o, g, &pend[i], n_pols, array);
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
    }
    rc = failed ? APP_EXIT_FAIL : (o.fail_on_unsafe && unsafe) ? APP_EXIT_UNSAFE : APP_EXIT_OK;
done:
    json_decref(array);
    if (pend)
        for (size_t i = 0; i < paths.n; i++) lg_free(pend[i].bytes);
    free(pend);
    lg_guard_free(g); /* cancels what an early failure left queued */
    for (int i = 0; i < n_pols; i++) lg_policy_free(pols[i]);
    list_free(&paths);
    return rc;
}
