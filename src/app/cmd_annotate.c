/*
 * cmd_annotate.c — `llavaguard annotate`: judges whole image collections (files, directories,
 * lists, WebDataset shards) against one or more policies and stores one row per (image, policy)
 * in an SQLite results file, resumably and crash-safely (docs/annotate.md).
 *
 * A thin client of the batch engine: one reader thread walks the inputs, reads each image's bytes
 * and submits them with lg_guard_submit (at most 2 x --batch requests outstanding, so memory stays
 * bounded whatever the input size); the engine calls back when a request is done and the main
 * thread writes its rows, one transaction per batch. The engine does all the model scheduling.
 */
#include "annotate.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CMD "annotate"
#define MAX_POLICIES 64
#define DEFAULT_MAX_IMAGE_BYTES ((size_t)256 << 20)
#define COMMIT_SECONDS 2.0 /* a transaction stays open at most this long */

/* The signal that asked to stop (0: none), and the request to stop for any reason. */
static volatile sig_atomic_t g_signal, g_halt;

static void on_signal(int sig) {
    g_signal = sig;
    g_halt = 1;
    signal(sig, SIG_DFL); /* a second signal ends the process at once (still crash-safe) */
}

typedef struct ann_opts {
    const char *model_dir, *out;
    const char *policy_files[MAX_POLICIES];
    size_t n_policy_files;
    const char *policy_version, *allow, *sensitive, *chat_template;
    lg_assess_params ap;
    lg_image_options io;
    bool exact, new_run, retry_errors, quiet, mpi;
    lg_precision precision;
    lg_kv_type kv_type;
    int threads, batch;
    size_t max_bytes, mpi_chunk;
    uint64_t shard_k, shard_n;
    double progress_s;
    char **inputs;
    size_t n_inputs;
} ann_opts;

/* ---- options ---- */

static void print_help(void) {
    printf(
        "Usage: llavaguard annotate --model DIR --out RESULTS.sqlite [options] INPUT...\n"
        "\n"
        "Judges every image of the inputs against one or more safety policies and stores one\n"
        "row per image and policy in an SQLite file. Resumable: a rerun skips the images already\n"
        "done. INPUT: an image file, a directory (recursive), a list file (*.txt, *.lst, *.list;\n"
        "one path per line; '-' reads the list from standard input) or a WebDataset shard\n"
        "(.tar, .tar.gz, .tgz, .tar.zst). See docs/annotate.md.\n"
        "\n"
        "Options:\n"
        "  -m, --model DIR          model folder (Hugging Face layout)\n"
        "  -o, --out FILE           the results file (created when missing)\n"
        "  -p, --policy FILE        a policy file, or 'default' for the built-in policy; repeat\n"
        "                           for several policies (each image gets a row per policy)\n"
        "      --policy-version V   built-in policy generation (v1.2, v1.0, v1.0-modelcard)\n"
        "      --allow IDS          declare categories non-violating in every policy (O3,O4)\n"
        "      --sensitive IDS      declare categories sensitive in every policy\n"
        "      --rationale MODE     always (default), never (fastest) or unsafe\n"
        "      --max-rationale-tokens N  cap on the rationale (default 512)\n"
        "      --temperature T, --top-p P, --top-k K, --seed S   sampling (default greedy)\n"
        "      --chat-template NAME override the model family's chat "
        "template\n" APP_IMAGE_OPTIONS_HELP
        "      --max-image-bytes N  image files/members larger than this become error rows\n"
        "                           (default 268435456)\n"
        "  -t, --threads N          compute threads (default: all cores)\n"
        "  -b, --batch N            images in flight in the batch engine, and rows per\n"
        "                           transaction (default 8; 1..64)\n"
        "      --exact, --precision P, --kv-type T   as in 'llavaguard assess'\n"
        "      --shard K/N          judge only the keys with bucket K of N (sha256 of the key)\n"
        "      --new-run            allow a run with another model/policy/setting beside the\n"
        "                           existing ones in the results file\n"
        "      --retry-errors       judge again the images whose rows are errors\n"
        "      --mpi                distribute the work over MPI ranks (mpirun -n N; rank 0\n"
        "                           hands out chunks and merges the ranks' files)%s\n"
        "      --mpi-chunk N        units per MPI chunk (default 16)\n"
        "      --progress-interval S  seconds between progress lines when not a terminal (10)\n"
        "  -q, --quiet              no progress report\n"
        "  -h, --help               show this help\n"
        "\n"
        "Exit status: 0 all judged, 1 failure (nothing or only the committed rows written),\n"
        "2 usage error, 4 finished but some inputs are error rows, 130/143 stopped by\n"
        "SIGINT/SIGTERM after committing the rows in flight.\n",
        ann_mpi_available() ? "" : " [not built in]");
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
    OPT_MAX_BYTES,
    OPT_EXACT,
    OPT_PRECISION,
    OPT_KV,
    OPT_SHARD,
    OPT_NEW_RUN,
    OPT_RETRY,
    OPT_MPI,
    OPT_MPI_CHUNK,
    OPT_PROGRESS_S,
};

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"out", required_argument, NULL, 'o'},
    {"policy", required_argument, NULL, 'p'},
    {"policy-version", required_argument, NULL, OPT_POLICY_VERSION},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"sensitive", required_argument, NULL, OPT_SENSITIVE},
    {"rationale", required_argument, NULL, OPT_RATIONALE},
    {"max-rationale-tokens", required_argument, NULL, OPT_MAX_RATIONALE},
    {"temperature", required_argument, NULL, OPT_TEMPERATURE},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"seed", required_argument, NULL, OPT_SEED},
    {"chat-template", required_argument, NULL, OPT_TEMPLATE},
    {"files-from", required_argument, NULL, OPT_FILES_FROM},
    {"max-image-bytes", required_argument, NULL, OPT_MAX_BYTES},
    APP_IMAGE_LONG_OPTIONS,
    {"threads", required_argument, NULL, 't'},
    {"batch", required_argument, NULL, 'b'},
    {"exact", no_argument, NULL, OPT_EXACT},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"kv-type", required_argument, NULL, OPT_KV},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"new-run", no_argument, NULL, OPT_NEW_RUN},
    {"retry-errors", no_argument, NULL, OPT_RETRY},
    {"mpi", no_argument, NULL, OPT_MPI},
    {"mpi-chunk", required_argument, NULL, OPT_MPI_CHUNK},
    {"progress-interval", required_argument, NULL, OPT_PROGRESS_S},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_rationale(const char *s, lg_rationale_mode *m) {
    if (strcmp(s, "always") == 0) return *m = LG_RATIONALE_ALWAYS, 0;
    if (strcmp(s, "never") == 0) return *m = LG_RATIONALE_NEVER, 0;
    if (strcmp(s, "unsafe") == 0) return *m = LG_RATIONALE_UNSAFE, 0;
    return -1;
}

static bool parse_shard(const char *s, uint64_t *k, uint64_t *n) {
    char *end;
    errno = 0;
    unsigned long long a = strtoull(s, &end, 10);
    if (errno || end == s || *end != '/') return false;
    const char *t = end + 1;
    unsigned long long b = strtoull(t, &end, 10);
    if (errno || end == t || *end || b == 0 || a >= b || b > 1000000) return false;
    *k = a;
    *n = b;
    return true;
}

/* Returns -1 on success, else the exit code. Files from --files-from join the inputs. */
static int parse_args(int argc, char **argv, ann_opts *o) {
    double d;
    long long ll;
    opterr = 0;
    optind = 1;
    int c;
    static char *extra[64];
    size_t n_extra = 0;
    while ((c = getopt_long(argc, argv, ":m:o:p:t:b:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model_dir = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'p':
            if (o->n_policy_files == MAX_POLICIES)
                return app_usage_error(CMD, "at most %d policies", MAX_POLICIES);
            o->policy_files[o->n_policy_files++] = optarg;
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
            if (parse_rationale(optarg, &o->ap.rationale) != 0)
                return app_usage_error(CMD, "--rationale must be always, never or unsafe");
            break;
        case OPT_MAX_RATIONALE:
            if (!app_parse_ll(optarg, 1, 1 << 20, &ll))
                return app_usage_error(CMD, "--max-rationale-tokens must be 1..1048576");
            o->ap.max_rationale_tokens = (int)ll;
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
            if (n_extra == 64) return app_usage_error(CMD, "too many --files-from");
            extra[n_extra++] = optarg;
            break;
        case OPT_MAX_BYTES:
            if (!app_parse_ll(optarg, 1, (long long)1 << 40, &ll))
                return app_usage_error(CMD, "--max-image-bytes must be a positive integer");
            o->max_bytes = (size_t)ll;
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
        case 'b':
            if (!app_parse_ll(optarg, 1, 64, &ll))
                return app_usage_error(CMD, "--batch must be 1..64");
            o->batch = (int)ll;
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
                return app_usage_error(CMD, "--kv-type must be f32, i16, bf16 or f16");
            break;
        case OPT_SHARD:
            if (!parse_shard(optarg, &o->shard_k, &o->shard_n))
                return app_usage_error(CMD, "--shard must be K/N with 0 <= K < N, not '%s'",
                                       optarg);
            break;
        case OPT_NEW_RUN:
            o->new_run = true;
            break;
        case OPT_RETRY:
            o->retry_errors = true;
            break;
        case OPT_MPI:
            o->mpi = true;
            break;
        case OPT_MPI_CHUNK:
            if (!app_parse_ll(optarg, 1, 1 << 20, &ll))
                return app_usage_error(CMD, "--mpi-chunk must be 1..1048576");
            o->mpi_chunk = (size_t)ll;
            break;
        case OPT_PROGRESS_S:
            if (!app_parse_double(optarg, 0.01, 1e6, &d))
                return app_usage_error(CMD, "--progress-interval must be a positive number");
            o->progress_s = d;
            break;
        case 'q':
            o->quiet = true;
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
    if (!o->out) return app_usage_error(CMD, "missing --out RESULTS.sqlite");
    if (o->mpi && !ann_mpi_available())
        return app_usage_error(CMD, "--mpi: this build has no MPI support (install "
                                    "libopenmpi-dev and rebuild)");
    size_t n = (size_t)(argc - optind) + n_extra;
    if (n == 0) return app_usage_error(CMD, "no inputs given");
    o->inputs = calloc(n, sizeof *o->inputs);
    if (!o->inputs) return app_fail(CMD, "out of memory");
    for (int i = optind; i < argc; i++) o->inputs[o->n_inputs++] = argv[i];
    for (size_t i = 0; i < n_extra; i++) o->inputs[o->n_inputs++] = extra[i];
    return -1;
}

/* ---- run identity: policies, parameters, command ---- */

typedef struct ann_run {
    const ann_opts *o;
    lg_guard *g;
    lg_policy *pols[MAX_POLICIES];
    char pol_sha[MAX_POLICIES][65];
    size_t n_pols;
    char model_hash[65];
    char *model_id, *policies_json, *params_json, *command;
} ann_run;

static lg_status make_policy(const ann_opts *o, lg_guard *g, const char *file, lg_policy **out,
                             lg_error *e) {
    lg_policy *pol = NULL;
    lg_status st =
        file && strcmp(file, "default") != 0
            ? lg_policy_load_file(file, &pol, e)
            : lg_policy_create_default(o->policy_version ? o->policy_version
                                                         : lg_guard_default_policy_version(g),
                                       &pol, e);
    if (st != LG_OK) return st;
    if ((o->allow && (st = lg_policy_set_states(pol, o->allow, LG_CATEGORY_NONVIOLATING))) ||
        (o->sensitive && (st = lg_policy_set_states(pol, o->sensitive, LG_CATEGORY_SENSITIVE)))) {
        snprintf(e->msg, sizeof e->msg, "%s", lg_policy_errmsg(pol));
        e->status = st;
        lg_policy_free(pol);
        return st;
    }
    *out = pol;
    return LG_OK;
}

static const char *rationale_name(lg_rationale_mode m) {
    return m == LG_RATIONALE_NEVER ? "never" : m == LG_RATIONALE_UNSAFE ? "unsafe" : "always";
}

static char *dump(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

static char *params_json(const ann_opts *o) {
    json_t *v = json_object();
    json_object_set_new(v, "rationale", json_string(rationale_name(o->ap.rationale)));
    json_object_set_new(v, "max_rationale_tokens", json_integer(o->ap.max_rationale_tokens));
    json_object_set_new(v, "temperature", json_real(o->ap.temperature));
    json_object_set_new(v, "top_k", json_integer(o->ap.top_k));
    json_object_set_new(v, "top_p", json_real(o->ap.top_p));
    json_object_set_new(v, "seed", json_integer((json_int_t)o->ap.seed));
    json_object_set_new(v, "kernels", json_string(o->exact ? "ref" : "auto"));
    json_object_set_new(v, "precision", json_string(app_precision_name(o->precision)));
    json_object_set_new(v, "kv_type", json_string(app_kv_type_name(o->kv_type)));
    json_object_set_new(v, "chat_template",
                        o->chat_template ? json_string(o->chat_template) : json_null());
    json_object_set_new(v, "alpha",
                        json_string(o->io.alpha_mode == LG_ALPHA_WHITE ? "white" : "drop"));
    json_object_set_new(v, "exif_orientation", json_boolean(o->io.apply_exif_orientation));
    json_object_set_new(v, "max_pixels", json_integer((json_int_t)o->io.max_pixels));
    json_t *p = json_object();
    json_object_set_new(p, "verdict", v);
    json_object_set_new(p, "batch", json_integer(o->batch));
    json_object_set_new(p, "threads", json_integer(o->threads));
    json_object_set_new(p, "max_image_bytes", json_integer((json_int_t)o->max_bytes));
    if (o->shard_n) {
        char sh[48];
        snprintf(sh, sizeof sh, "%llu/%llu", (unsigned long long)o->shard_k,
                 (unsigned long long)o->shard_n);
        json_object_set_new(p, "shard", json_string(sh));
    } else {
        json_object_set_new(p, "shard", json_null());
    }
    json_object_set_new(p, "mpi", json_boolean(o->mpi));
    return dump(p);
}

static char *command_line(int argc, char **argv) {
    size_t n = 16;
    for (int i = 0; i < argc; i++) n += 3 * strlen(argv[i]) + 3;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    p += sprintf(p, "llavaguard");
    for (int i = 0; i < argc; i++) {
        bool q = argv[i][0] == '\0' || strpbrk(argv[i], " \t\n'\"\\$`*?[]{}()<>|&;") != NULL;
        *p++ = ' ';
        if (!q) {
            p += sprintf(p, "%s", argv[i]);
            continue;
        }
        *p++ = '\'';
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'')
                p += sprintf(p, "'\\''");
            else
                *p++ = *c;
        }
        *p++ = '\'';
    }
    *p = '\0';
    return s;
}

static char *model_id(const char *dir) {
    char *d = strdup(dir);
    if (!d) return NULL;
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = '\0';
    const char *b = strrchr(d, '/');
    char *id = strdup(b ? b + 1 : d);
    free(d);
    return id;
}

static void run_free(ann_run *r) {
    for (size_t i = 0; i < r->n_pols; i++) lg_policy_free(r->pols[i]);
    if (r->g) lg_guard_free(r->g);
    free(r->model_id);
    free(r->policies_json);
    free(r->params_json);
    free(r->command);
}

/* Opens the guard, builds the policies and the run's identity. Returns -1 or the exit code. */
static int run_setup(ann_run *r, const ann_opts *o, int argc, char **argv) {
    r->o = o;
    lg_error e = {0};
    if (!ann_model_hash(o->model_dir, r->model_hash, &e))
        return app_fail(CMD, "cannot hash the model: %s", e.msg);
    lg_guard_params gp = lg_guard_params_default();
    gp.model.kernels = o->exact ? "ref" : "auto";
    gp.model.n_threads = o->threads;
    gp.model.precision = o->precision;
    gp.model.kv_type = o->kv_type;
    gp.chat_template = o->chat_template;
    gp.max_batch = o->batch;
    if (lg_guard_open(o->model_dir, &gp, &r->g, &e) != LG_OK) return app_fail_err(CMD, &e);
    size_t n = o->n_policy_files ? o->n_policy_files : 1;
    json_t *pj = json_array();
    for (size_t i = 0; i < n; i++) {
        if (make_policy(o, r->g, o->n_policy_files ? o->policy_files[i] : NULL, &r->pols[i], &e) !=
            LG_OK) {
            json_decref(pj);
            return app_fail_err(CMD, &e);
        }
        r->n_pols++;
        lg_policy_sha256(r->pols[i], r->pol_sha[i]);
        for (size_t k = 0; k < i; k++)
            if (strcmp(r->pol_sha[k], r->pol_sha[i]) == 0) {
                json_decref(pj);
                return app_usage_error(CMD, "policies %zu and %zu are the same policy", k + 1,
                                       i + 1);
            }
        json_t *pe = json_object();
        json_object_set_new(pe, "sha256", json_string(r->pol_sha[i]));
        json_object_set_new(pe, "text", json_string(lg_policy_text(r->pols[i])));
        json_array_append_new(pj, pe);
        for (size_t w = 0; w < lg_policy_n_warnings(r->pols[i]) && !o->quiet; w++)
            fprintf(stderr, "llavaguard annotate: warning: %s\n", lg_policy_warning(r->pols[i], w));
    }
    r->policies_json = dump(pj);
    r->params_json = params_json(o);
    r->command = command_line(argc, argv);
    r->model_id = model_id(o->model_dir);
    if (!r->policies_json || !r->params_json || !r->command || !r->model_id)
        return app_fail(CMD, "out of memory");
    return -1;
}

static ann_run_info run_info(const ann_run *r) {
    return (ann_run_info){.command = r->command,
                          .model_id = r->model_id,
                          .model_hash = r->model_hash,
                          .policies = r->policies_json,
                          .params = r->params_json};
}

/* ---- the pipeline: reader thread -> batch engine -> writer (this thread) ---- */

typedef struct pipeline pipeline;

/* A finished image: the engine's result, or an input error found before submitting. */
typedef struct ann_done {
    ann_item *item;
    lg_result *res;
    lg_status status;
    char *error;
    struct pipeline *pipe;
    struct ann_done *next;
} ann_done;

struct pipeline {
    ann_run *run;
    const ann_opts *o;
    ann_store *out;   /* written by the writer only */
    ann_store *check; /* the resume check, read by the reader only (may be NULL) */
    int64_t run_id, check_run_id;
    /* MPI worker: chunks come from rank 0 instead of the walk */
    bool mpi_worker;
    pthread_mutex_t mu;
    pthread_cond_t cv_done, cv_space;
    ann_done *head, *tail;
    size_t outstanding, max_outstanding;
    bool reader_finished;
    int reader_rc;
    bool fatal;
    ann_progress prog;
};

static void done_free(ann_done *d) {
    if (!d) return;
    if (d->res) lg_result_free(d->res);
    free(d->error);
    ann_item_free(d->item);
    free(d);
}

static void push_done(pipeline *p, ann_done *d) {
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = d;
    else
        p->head = d;
    p->tail = d;
    pthread_cond_signal(&p->cv_done);
    pthread_mutex_unlock(&p->mu);
}

static void on_done(void *user, lg_result *res) {
    ann_done *d = user;
    d->res = res;
    push_done(d->pipe, d);
}

/* Waits for room for one more outstanding request; false when stopping. */
static bool acquire_slot(pipeline *p) {
    pthread_mutex_lock(&p->mu);
    while (p->outstanding >= p->max_outstanding && !g_halt) pthread_cond_wait(&p->cv_space, &p->mu);
    bool ok = !g_halt;
    if (ok) p->outstanding++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static int reader_item(void *user, ann_item *it) {
    pipeline *p = user;
    if (!acquire_slot(p)) {
        ann_item_free(it);
        return 1;
    }
    ann_done *d = calloc(1, sizeof *d);
    if (!d) {
        ann_item_free(it);
        return -1;
    }
    d->item = it;
    d->pipe = p;
    if (it->error) {
        d->status = it->status ? it->status : LG_E_IO;
        push_done(p, d);
        return 0;
    }
    lg_request req = {.image_bytes = it->bytes,
                      .image_size = it->size,
                      .name = it->key,
                      .image_options = &p->o->io,
                      .policies = (const lg_policy *const *)p->run->pols,
                      .n_policies = p->run->n_pols,
                      .params = &p->o->ap,
                      .on_done = on_done,
                      .user = d};
    lg_ticket t;
    lg_error e = {0};
    lg_status st = lg_guard_submit(p->run->g, &req, 0, &t, &e);
    free(it->bytes); /* copied by lg_guard_submit */
    it->bytes = NULL;
    if (st != LG_OK) {
        d->status = st;
        d->error = strdup(e.msg[0] ? e.msg : lg_status_str(st));
        push_done(p, d);
    }
    return 0;
}

static bool reader_want(void *user, const char *key) {
    pipeline *p = user;
    const ann_opts *o = p->o;
    if (o->shard_n && ann_key_bucket(key, o->shard_n) != o->shard_k) return false;
    if (!p->check || p->check_run_id <= 0) return true;
    int n = ann_store_count_key(p->check, p->check_run_id, key, !o->retry_errors);
    if (n < 0) {
        fprintf(stderr, "llavaguard annotate: %s\n", ann_store_errmsg(p->check));
        return true;
    }
    if ((size_t)n < p->run->n_pols) return true;
    pthread_mutex_lock(&p->mu);
    p->prog.resumed++;
    p->prog.done++;
    pthread_mutex_unlock(&p->mu);
    return false;
}

static void reader_found(void *user, const char *key) {
    pipeline *p = user;
    if (p->o->shard_n && ann_key_bucket(key, p->o->shard_n) != p->o->shard_k) return;
    pthread_mutex_lock(&p->mu);
    p->prog.total++;
    pthread_mutex_unlock(&p->mu);
}

static void reader_skipped(void *user, const char *path, const char *why) {
    pipeline *p = user;
    pthread_mutex_lock(&p->mu);
    p->prog.skipped++;
    pthread_mutex_unlock(&p->mu);
    (void)path;
    (void)why;
}

static void reader_problem(void *user, const char *msg) {
    pipeline *p = user;
    fprintf(stderr, "%sllavaguard annotate: %s\n", p->prog.tty && !p->prog.quiet ? "\n" : "", msg);
    pthread_mutex_lock(&p->mu);
    p->prog.errors++;
    pthread_mutex_unlock(&p->mu);
}

static int reader_unit(void *user, const ann_unit *u) {
    pipeline *p = user;
    ann_expand_ops ops = {.user = p,
                          .want = reader_want,
                          .item = reader_item,
                          .found = reader_found,
                          .skipped = reader_skipped,
                          .stop = &g_halt,
                          .max_bytes = p->o->max_bytes};
    if (u->kind == ANN_UNIT_FILE && p->mpi_worker) reader_found(p, u->key);
    int rc = ann_expand(u, &ops);
    return rc ? rc : g_halt ? 1 : 0;
}

/* Units of an MPI chunk: "F\tkey\tpath\n" or "S\tkey\tpath\n" lines. */
static int run_chunk(pipeline *p, char *chunk) {
    for (char *line = chunk; line && *line && !g_halt;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (t1 && t2) {
            *t1 = *t2 = '\0';
            ann_unit u = {.kind = line[0] == 'S' ? ANN_UNIT_SHARD : ANN_UNIT_FILE,
                          .key = t1 + 1,
                          .path = t2 + 1};
            int rc = reader_unit(p, &u);
            if (rc) return rc;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static void *reader_main(void *arg) {
    pipeline *p = arg;
    int rc = 0;
    if (p->mpi_worker) {
        for (;;) {
            char *chunk = NULL;
            if (ann_mpi_ask(&chunk) != 0) {
                rc = -1;
                break;
            }
            bool last = chunk[0] == '\0';
            if (!last) rc = run_chunk(p, chunk);
            free(chunk);
            if (last || rc) break;
        }
    } else {
        ann_walk_ops ops = {.user = p,
                            .unit = reader_unit,
                            .skipped = reader_skipped,
                            .problem = reader_problem,
                            .stop = &g_halt};
        rc = ann_walk(p->o->inputs, p->o->n_inputs, &ops);
    }
    pthread_mutex_lock(&p->mu);
    p->reader_finished = true;
    p->reader_rc = rc;
    pthread_cond_signal(&p->cv_done);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- writing rows ---- */

static char *probs_json(const lg_verdict *v) {
    json_t *cp = json_object();
    for (size_t i = 0; i < v->n_categories; i++)
        json_object_set_new(cp, v->category_options[i], json_real(v->category_probs[i]));
    return dump(cp);
}

static char *timings_json(const ann_item *it, const lg_result *res, const lg_verdict *v) {
    json_t *t = json_object();
    json_object_set_new(t, "read_s", json_real(it->t_read));
    if (res) {
        json_object_set_new(t, "queued_s", json_real(res->timings.queued));
        json_object_set_new(t, "decode_s", json_real(res->timings.decode));
    }
    if (v) {
        json_object_set_new(t, "preprocess_s", json_real(v->timings.preprocess));
        json_object_set_new(t, "vision_s", json_real(v->timings.vision));
        json_object_set_new(t, "prefill_s", json_real(v->timings.prefill));
        json_object_set_new(t, "verdict_s", json_real(v->timings.verdict));
    }
    if (res)
        json_object_set_new(t, "total_s", json_real(res->timings.total));
    else if (v)
        json_object_set_new(t, "total_s", json_real(v->timings.total));
    return dump(t);
}

/* Writes the rows of one finished image. Returns 0 or -1 (message printed). */
static int write_done(pipeline *p, ann_done *d) {
    const ann_run *r = p->run;
    const lg_result *res = d->res;
    bool any_error = false, any_unsafe = false;
    for (size_t i = 0; i < r->n_pols; i++) {
        const lg_verdict *v = res && i < res->n_verdicts ? res->verdicts[i] : NULL;
        const char *err = NULL;
        if (!v) {
            if (res && i < res->n_verdicts && res->errors && res->errors[i] && res->errors[i][0])
                err = res->errors[i];
            else if (res && res->error && res->error[0])
                err = res->error;
            else
                err = d->error ? d->error : d->item->error ? d->item->error : "failed";
        }
        char *probs = v ? probs_json(v) : NULL;
        char *tim = timings_json(d->item, res, v);
        const char *sha = res ? res->image_sha256 : NULL;
        ann_row row = {.key = d->item->key,
                       .policy_sha256 = r->pol_sha[i],
                       .source = d->item->source,
                       .image_sha256 = sha && sha[0] ? sha : NULL,
                       .width = res ? res->width : 0,
                       .height = res ? res->height : 0,
                       .rating = v ? v->rating : NULL,
                       .category = v ? v->category : NULL,
                       .p_unsafe = v ? v->p_unsafe : NAN,
                       .category_probs = probs,
                       .rationale = v ? v->rationale : NULL,
                       .error = err,
                       .meta = d->item->meta,
                       .timings = tim};
        int rc = ann_store_put(p->out, p->run_id, &row);
        free(probs);
        free(tim);
        if (rc != 0) return -1;
        any_error |= v == NULL;
        any_unsafe |= v && v->unsafe;
    }
    pthread_mutex_lock(&p->mu);
    p->prog.done++;
    p->prog.judged++;
    p->prog.errors += any_error;
    p->prog.unsafe += any_unsafe;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static void halt_fatal(pipeline *p) {
    if (!p->fatal)
        fprintf(stderr, "%sllavaguard annotate: %s\n", p->prog.tty && !p->prog.quiet ? "\n" : "",
                ann_store_errmsg(p->out));
    p->fatal = true;
    g_halt = 1;
    ann_store_rollback(p->out);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv_space);
    pthread_mutex_unlock(&p->mu);
}

/* The writer loop: runs until the reader is done and nothing is outstanding. */
static void writer_loop(pipeline *p) {
    size_t in_txn = 0;
    double t_txn = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !(p->reader_finished && p->outstanding == 0)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&p->cv_done, &p->mu, &ts);
            if (g_halt) pthread_cond_broadcast(&p->cv_space);
            if (!p->head) break;
        }
        ann_done *list = p->head;
        p->head = p->tail = NULL;
        bool finished = p->reader_finished && p->outstanding == 0 && !list;
        pthread_mutex_unlock(&p->mu);
        while (list) {
            ann_done *d = list;
            list = d->next;
            if (!p->fatal) {
                if (in_txn == 0) {
                    if (ann_store_begin(p->out) != 0) halt_fatal(p);
                    t_txn = ann_now();
                }
                if (!p->fatal && write_done(p, d) != 0) halt_fatal(p);
                in_txn++;
            }
            done_free(d);
            pthread_mutex_lock(&p->mu);
            p->outstanding--;
            pthread_cond_signal(&p->cv_space);
            pthread_mutex_unlock(&p->mu);
        }
        if (!p->fatal && in_txn > 0 &&
            (in_txn >= (size_t)p->o->batch || ann_now() - t_txn > COMMIT_SECONDS || finished ||
             g_halt)) {
            if (ann_store_commit(p->out) != 0) halt_fatal(p);
            in_txn = 0;
        }
        if (p->fatal) in_txn = 0;
        pthread_mutex_lock(&p->mu);
        ann_progress_update(&p->prog, false);
        pthread_mutex_unlock(&p->mu);
        if (finished) break;
    }
}

/* ---- counting the total up front ---- */

typedef struct counter {
    const ann_opts *o;
    uint64_t n;
} counter;

static int count_unit(void *user, const ann_unit *u) {
    counter *c = user;
    if (u->kind == ANN_UNIT_FILE &&
        (!c->o->shard_n || ann_key_bucket(u->key, c->o->shard_n) == c->o->shard_k))
        c->n++;
    return 0;
}

/* Counts the image files of the inputs (lists on standard input are not counted). */
static uint64_t count_inputs(const ann_opts *o) {
    counter c = {.o = o};
    char **ins = calloc(o->n_inputs ? o->n_inputs : 1, sizeof *ins);
    if (!ins) return 0;
    size_t n = 0;
    for (size_t i = 0; i < o->n_inputs; i++)
        if (strcmp(o->inputs[i], "-") != 0) ins[n++] = o->inputs[i];
    ann_walk_ops ops = {.user = &c, .unit = count_unit, .stop = &g_halt};
    ann_walk(ins, n, &ops);
    free(ins);
    return c.n;
}

/* Runs the pipeline into `out` (run run_id); `check` is the resume-check connection. Returns
 * the exit status. */
static int run_pipeline(ann_run *r, ann_store *out, int64_t run_id, ann_store *check,
                        int64_t check_run_id, bool mpi_worker) {
    const ann_opts *o = r->o;
    pipeline p = {.run = r,
                  .o = o,
                  .out = out,
                  .check = check,
                  .run_id = run_id,
                  .check_run_id = check_run_id,
                  .mpi_worker = mpi_worker,
                  .max_outstanding = 2 * (size_t)o->batch};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv_done, NULL);
    pthread_cond_init(&p.cv_space, NULL);
    ann_progress_init(&p.prog, o->quiet, o->progress_s);
    if (!mpi_worker) p.prog.total = count_inputs(o);
    pthread_t th;
    if (pthread_create(&th, NULL, reader_main, &p) != 0) return app_fail(CMD, "cannot start");
    writer_loop(&p);
    pthread_join(th, NULL);
    if (!p.fatal && ann_store_end_run(out, run_id) != 0)
        fprintf(stderr, "llavaguard annotate: %s\n", ann_store_errmsg(out));
    int rc = p.fatal || p.reader_rc < 0 ? APP_EXIT_FAIL
             : g_signal == SIGINT       ? ANN_EXIT_SIGINT
             : g_signal == SIGTERM      ? ANN_EXIT_SIGTERM
             : p.prog.errors > 0        ? ANN_EXIT_PARTIAL
                                        : APP_EXIT_OK;
    if (!o->quiet) {
        lg_guard_stats st;
        lg_guard_stats_get(r->g, &st);
        if (st.steps)
            fprintf(stderr, "annotate: engine: %llu batched passes, %.2f sequences per pass\n",
                    (unsigned long long)st.steps, (double)st.step_seqs / (double)st.steps);
    }
    ann_progress_finish(&p.prog, o->out,
                        rc == APP_EXIT_FAIL ? "failed"
                        : g_signal          ? "stopped"
                                            : "finished");
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv_done);
    pthread_cond_destroy(&p.cv_space);
    return rc;
}

/* ---- single process ---- */

static int annotate_local(ann_run *r) {
    const ann_opts *o = r->o;
    ann_store *out = ann_store_open(o->out, CMD, true);
    if (!out) return APP_EXIT_FAIL;
    ann_run_info info = run_info(r);
    int64_t run_id = 0;
    bool resumed = false;
    if (ann_store_begin_run(out, &info, o->new_run, &run_id, &resumed) != 0) {
        app_fail(CMD, "%s", ann_store_errmsg(out));
        ann_store_close(out);
        return APP_EXIT_FAIL;
    }
    ann_store *check = resumed ? ann_store_open_ro(o->out, CMD) : NULL;
    if (resumed && !check) {
        ann_store_close(out);
        return APP_EXIT_FAIL;
    }
    int rc = run_pipeline(r, out, run_id, check, run_id, false);
    ann_store_close(check);
    ann_store_close(out);
    return rc;
}

/* ---- MPI ---- */

static char *rank_path(const char *out, int rank) {
    size_t n = strlen(out) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s.rank-%d", out, rank);
    return s;
}

static void remove_db(const char *path) {
    char side[4200];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* Rank 0: folds the ranks' files (ranks 1..max_rank; an earlier, interrupted run's too) into
 * the output and removes them. */
static int mpi_merge_all(ann_store *out, const char *out_path, int max_rank) {
    for (int k = 1; k <= max_rank; k++) {
        char *rp = rank_path(out_path, k);
        if (!rp) return -1;
        if (access(rp, F_OK) == 0) {
            int64_t n = 0;
            if (ann_store_merge(out, rp, false, CMD, &n) != 0) {
                free(rp);
                return -1;
            }
            remove_db(rp);
        }
        free(rp);
    }
    return 0;
}

static int annotate_mpi(ann_run *r, int rank, int size) {
    const ann_opts *o = r->o;
    ann_run_info info = run_info(r);
    int rc = APP_EXIT_OK;
    ann_store *out = NULL, *mine = NULL, *check = NULL;
    int64_t run_id = 0, my_run = 0;
    bool resumed = false;
    /* 1. rank 0 prepares the output: earlier ranks' files merged, the run found or made */
    if (rank == 0) {
        out = ann_store_open(o->out, CMD, true);
        if (!out || mpi_merge_all(out, o->out, size + 256) != 0 ||
            ann_store_begin_run(out, &info, o->new_run, &run_id, &resumed) != 0) {
            if (out) app_fail(CMD, "%s", ann_store_errmsg(out));
            rc = APP_EXIT_FAIL;
        }
    }
    if (ann_mpi_worst(rc) != APP_EXIT_OK) {
        ann_store_close(out);
        return APP_EXIT_FAIL;
    }
    if (rank == 0) {
        ann_walk_ops ops = {.stop = &g_halt};
        int src = ann_mpi_serve(o->inputs, o->n_inputs, o->mpi_chunk, size, &g_halt, &ops);
        if (src < 0) rc = APP_EXIT_FAIL;
    } else {
        /* 2. workers: their own file next to the output, the resume check against it */
        char *mp = rank_path(o->out, rank);
        mine = mp ? ann_store_open(mp, CMD, true) : NULL;
        free(mp);
        bool res2;
        if (!mine || ann_store_begin_run(mine, &info, false, &my_run, &res2) != 0) {
            if (mine) app_fail(CMD, "%s", ann_store_errmsg(mine));
            rc = APP_EXIT_FAIL;
        }
        check = ann_store_open_ro(o->out, CMD);
        int64_t check_run = 0;
        if (check && ann_store_find_run(check, &info, &check_run) < 0) check_run = 0;
        if (rc == APP_EXIT_OK)
            rc = run_pipeline(r, mine, my_run, check, check_run, true);
        else {
            /* still answer rank 0 so that it does not wait for us */
            char *chunk = NULL;
            while (ann_mpi_ask(&chunk) == 0 && chunk[0]) free(chunk), chunk = NULL;
            free(chunk);
        }
        ann_store_close(check);
        ann_store_close(mine);
    }
    ann_mpi_barrier(); /* every rank's file is closed */
    if (rank == 0) {
        if (mpi_merge_all(out, o->out, size - 1) != 0 || ann_store_end_run(out, run_id) != 0)
            rc = APP_EXIT_FAIL;
        ann_store_close(out);
    }
    return ann_mpi_worst(rc);
}

int cmd_annotate(int argc, char **argv) {
    ann_opts o = {.ap = lg_assess_params_default(),
                  .io = lg_image_options_default(),
                  .kv_type = LG_KV_AUTO,
                  .batch = 8,
                  .max_bytes = DEFAULT_MAX_IMAGE_BYTES,
                  .mpi_chunk = 16,
                  .progress_s = 10};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        free(o.inputs);
        return rc;
    }
    int rank = 0, size = 1;
    if (o.mpi && !ann_mpi_init(&argc, &argv, &rank, &size)) {
        free(o.inputs);
        return APP_EXIT_FAIL;
    }
    if (o.mpi && size < 2) {
        app_fail(CMD, "--mpi needs at least 2 ranks (rank 0 hands out the work)");
        ann_mpi_finalize();
        free(o.inputs);
        return APP_EXIT_USAGE;
    }
    if (rank == 0 && !ann_inputs_check(o.inputs, o.n_inputs)) {
        rc = APP_EXIT_FAIL;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN); /* over `ulimit -f`: a write error SQLite reports, not a kill */
    ann_run r = {0};
    if (rc < 0 || rc == APP_EXIT_OK) rc = -1;
    if (o.mpi) {
        int setup = rc == -1 ? run_setup(&r, &o, argc, argv) : rc;
        if (ann_mpi_worst(setup == -1 ? 0 : setup ? setup : 1) != 0)
            rc = APP_EXIT_FAIL;
        else
            rc = annotate_mpi(&r, rank, size);
        run_free(&r);
        ann_mpi_finalize();
    } else {
        if (rc == -1) rc = run_setup(&r, &o, argc, argv);
        if (rc == -1) rc = annotate_local(&r);
        run_free(&r);
    }
    free(o.inputs);
    return rc;
}
