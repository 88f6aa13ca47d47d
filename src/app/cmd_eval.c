/*
 * cmd_eval.c — `llavaguard eval`: scores a guard on a labelled set, either from existing results
 * (--predictions: annotate's SQLite file or assess's JSONL) or by running the model on the
 * labelled images through the batch engine (--model, with a progress bar and running tally).
 * Writes the metrics as JSON (--json, stdout by default) and the HTML report (--out).
 * Figures follow LlavaGuard's metrics_calculator.py (eval_metrics.c, docs/eval.md).
 */
#include "app.h"
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "eval"

typedef struct eval_cli {
    const char *labels, *predictions, *model, *out, *json, *save;
    eval_options opt;
    int batch, threads;
    lg_rationale_mode rationale;
    bool quiet;
} eval_cli;

static void print_help(void) {
    printf(
        "Usage: llavaguard eval --labels LABELS (--predictions RESULTS | --model DIR) [options]\n"
        "\n"
        "Scores a guard on labelled images with LlavaGuard's metrics (Unsafe the positive\n"
        "class): balanced accuracy, recall, specificity, precision, F1/F2, policy-exception\n"
        "rate, per-category figures, ROC/PR on p_unsafe, calibration, bootstrap intervals.\n"
        "LABELS: JSONL or CSV with id, image, rating, category [, policy, allow, sensitive].\n"
        "\n"
        "Options:\n"
        "  --labels FILE          the labelled set\n"
        "  --predictions FILE     annotate's SQLite results file or assess's JSONL\n"
        "  --model DIR            run this model on the labels' images instead\n"
        "  --out FILE             write the HTML report\n"
        "  --json FILE            write the metrics JSON ('-' stdout; the default without --out)\n"
        "  --save-predictions F   (--model) also write the verdicts as JSONL\n"
        "  --target-recall R      threshold analysis target (default 0.9)\n"
        "  --bootstrap N          bootstrap resamples for 95%% intervals (default 1000; 0 off)\n"
        "  --seed S               bootstrap seed (default 0)\n"
        "  --bins N               reliability diagram bins (default 10)\n"
        "  --batch N              (--model) images in flight (default 4)\n"
        "  -t, --threads N        (--model) compute threads\n"
        "  --rationale MODE       (--model) never (default), always or unsafe\n"
        "  -q, --quiet            no progress bar\n"
        "  -h, --help             show this help\n");
}

static int parse(int argc, char **argv, eval_cli *o) {
    enum {
        O_LABELS = 1,
        O_PRED,
        O_MODEL,
        O_OUT,
        O_JSON,
        O_SAVE,
        O_TR,
        O_BS,
        O_SEED,
        O_BINS,
        O_BATCH,
        O_RAT
    };
    static const struct option longs[] = {{"labels", required_argument, NULL, O_LABELS},
                                          {"predictions", required_argument, NULL, O_PRED},
                                          {"model", required_argument, NULL, O_MODEL},
                                          {"out", required_argument, NULL, O_OUT},
                                          {"json", required_argument, NULL, O_JSON},
                                          {"save-predictions", required_argument, NULL, O_SAVE},
                                          {"target-recall", required_argument, NULL, O_TR},
                                          {"bootstrap", required_argument, NULL, O_BS},
                                          {"seed", required_argument, NULL, O_SEED},
                                          {"bins", required_argument, NULL, O_BINS},
                                          {"batch", required_argument, NULL, O_BATCH},
                                          {"threads", required_argument, NULL, 't'},
                                          {"rationale", required_argument, NULL, O_RAT},
                                          {"quiet", no_argument, NULL, 'q'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int c;
    long long ll;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:qh", longs, NULL)) != -1) {
        switch (c) {
        case O_LABELS:
            o->labels = optarg;
            break;
        case O_PRED:
            o->predictions = optarg;
            break;
        case O_MODEL:
            o->model = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_JSON:
            o->json = optarg;
            break;
        case O_SAVE:
            o->save = optarg;
            break;
        case O_TR:
            if (!app_parse_double(optarg, 0, 1, &o->opt.target_recall))
                return app_usage_error(CMD, "--target-recall must be in [0, 1]");
            break;
        case O_BS:
            if (!app_parse_ll(optarg, 0, 1000000, &ll))
                return app_usage_error(CMD, "--bootstrap must be 0..1000000");
            o->opt.bootstrap = (int)ll;
            break;
        case O_SEED:
            if (!app_parse_ll(optarg, 0, INT64_MAX, &ll))
                return app_usage_error(CMD, "--seed must be a whole number >= 0");
            o->opt.seed = (uint64_t)ll;
            break;
        case O_BINS:
            if (!app_parse_ll(optarg, 1, 1000, &ll))
                return app_usage_error(CMD, "--bins must be 1..1000");
            o->opt.bins = (int)ll;
            break;
        case O_BATCH:
            if (!app_parse_ll(optarg, 1, 64, &ll))
                return app_usage_error(CMD, "--batch must be 1..64");
            o->batch = (int)ll;
            break;
        case 't':
            if (!app_parse_ll(optarg, 1, 1024, &ll))
                return app_usage_error(CMD, "--threads must be 1..1024");
            o->threads = (int)ll;
            break;
        case O_RAT:
            if (strcmp(optarg, "never") == 0)
                o->rationale = LG_RATIONALE_NEVER;
            else if (strcmp(optarg, "always") == 0)
                o->rationale = LG_RATIONALE_ALWAYS;
            else if (strcmp(optarg, "unsafe") == 0)
                o->rationale = LG_RATIONALE_UNSAFE;
            else
                return app_usage_error(CMD, "--rationale must be never, always or unsafe");
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            print_help();
            return APP_EXIT_OK;
        default:
            return APP_EXIT_USAGE;
        }
    }
    if (optind < argc) return app_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->labels) return app_usage_error(CMD, "--labels is required");
    if (!o->predictions == !o->model)
        return app_usage_error(CMD, "give exactly one of --predictions and --model");
    if (o->save && !o->model) return app_usage_error(CMD, "--save-predictions needs --model");
    return -1;
}

/* The policy a sample is judged under: its policy file, or the model's default with its
 * allow/sensitive lists. */
static lg_status sample_policy(const eval_sample *s, const char *version, lg_policy **out,
                               lg_error *err) {
    lg_status st = s->policy ? lg_policy_load_file(s->policy, out, err)
                             : lg_policy_create_default(version, out, err);
    if (st != LG_OK) return st;
    if ((s->allow && (st = lg_policy_set_states(*out, s->allow, LG_CATEGORY_NONVIOLATING))) ||
        (s->sensitive && (st = lg_policy_set_states(*out, s->sensitive, LG_CATEGORY_SENSITIVE)))) {
        if (err) snprintf(err->msg, sizeof err->msg, "%s", lg_policy_errmsg(*out));
        lg_policy_free(*out);
        *out = NULL;
    }
    return st;
}

/* The verdict record eval_match_record reads (and --save-predictions writes). */
static json_t *record_of(const eval_sample *s, const lg_result *r) {
    json_t *o = json_pack("{ss}", "id", s->id);
    json_object_set_new(o, "image", json_string(s->image));
    const lg_verdict *v = r->n_verdicts ? r->verdicts[0] : NULL;
    if (r->status != LG_OK || !v) {
        json_object_set_new(o, "error", json_string(r->error && *r->error ? r->error : "failed"));
        return o;
    }
    json_object_set_new(o, "rating", json_string(v->rating));
    json_object_set_new(o, "category", json_string(v->category));
    json_object_set_new(o, "rationale", v->rationale ? json_string(v->rationale) : json_null());
    json_object_set_new(o, "p_unsafe", json_real(v->p_unsafe));
    json_object_set_new(o, "policy_sha256", json_string(v->policy_sha256));
    return o;
}

static void progress(size_t done, size_t n, long unsafe, long safe, long failed) {
    int w = 30, fill = n ? (int)(w * done / n) : w;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu  Unsafe %ld  Safe %ld  errors %ld", fill,
            "##############################", w - fill, "", done, n, unsafe, safe, failed);
}

static int run_model(const eval_cli *o, eval_set *set) {
    lg_error err = {0};
    lg_guard_params gp = lg_guard_params_default();
    gp.model.n_threads = o->threads;
    gp.max_batch = o->batch;
    lg_guard *g = NULL;
    if (lg_guard_open(o->model, &gp, &g, &err) != LG_OK) return app_fail_err(CMD, &err);
    FILE *save = o->save ? fopen(o->save, "w") : NULL;
    if (o->save && !save) return lg_guard_free(g), app_fail(CMD, "%s: cannot write", o->save);
    lg_assess_params ap = lg_assess_params_default();
    ap.rationale = o->rationale;
    size_t chunk = (size_t)o->batch * 2, n = set->n;
    lg_request *reqs = calloc(chunk, sizeof *reqs);
    lg_result **res = calloc(chunk, sizeof *res);
    lg_policy **pols = calloc(chunk, sizeof *pols);
    json_t **recs = calloc(n + 1, sizeof *recs);
    long unsafe = 0, safe = 0, failed = 0;
    int rc = APP_EXIT_OK;
    bool tty = !o->quiet && isatty(2);
    for (size_t at = 0; at < n && rc == APP_EXIT_OK; at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        for (size_t i = 0; i < k && rc == APP_EXIT_OK; i++) {
            const eval_sample *s = &set->s[at + i];
            if (!s->image)
                rc = app_fail(CMD, "label '%s' has no image (needed with --model)", s->id);
            else if (sample_policy(s, lg_guard_default_policy_version(g), &pols[i], &err) != LG_OK)
                rc = app_fail(CMD, "label '%s': %s", s->id, err.msg);
            reqs[i] = (lg_request){.image_path = s->image,
                                   .name = s->id,
                                   .params = &ap,
                                   .policies = (const lg_policy *const *)&pols[i],
                                   .n_policies = pols[i] ? 1 : 0};
        }
        if (rc == APP_EXIT_OK && lg_guard_assess_many(g, reqs, k, res, &err) != LG_OK)
            rc = app_fail_err(CMD, &err);
        for (size_t i = 0; i < k; i++) {
            if (rc == APP_EXIT_OK) {
                json_t *r = recs[at + i] = record_of(&set->s[at + i], res[i]);
                const char *rating = json_string_value(json_object_get(r, "rating"));
                if (!rating)
                    failed++;
                else if (strcmp(rating, "Unsafe") == 0)
                    unsafe++;
                else
                    safe++;
                if (save) {
                    char *line = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(17));
                    fprintf(save, "%s\n", line);
                    free(line);
                }
            }
            lg_result_free(res[i]);
            res[i] = NULL;
            lg_policy_free(pols[i]);
            pols[i] = NULL;
        }
        if (tty) progress(at + k, n, unsafe, safe, failed);
    }
    if (tty) fputc('\n', stderr);
    if (!o->quiet)
        fprintf(stderr, "eval: %zu images: %ld Unsafe, %ld Safe, %ld errors\n", n, unsafe, safe,
                failed);
    for (size_t i = 0; i < n; i++)
        if (recs[i]) eval_match_record(set, recs[i]), json_decref(recs[i]);
    if (save && fclose(save) != 0 && rc == APP_EXIT_OK)
        rc = app_fail(CMD, "%s: write failed", o->save);
    free(recs), free(reqs), free(res), free(pols);
    lg_guard_free(g);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    eval_cli o = {.opt = {.target_recall = 0.9, .bootstrap = 1000, .bins = 10},
                  .batch = 4,
                  .rationale = LG_RATIONALE_NEVER};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    eval_set set = {0};
    char err[256] = "";
    if (!eval_read_labels(o.labels, &set, err))
        return eval_set_free(&set), app_fail(CMD, "%s", err);
    if (o.predictions) {
        if (!eval_read_predictions(o.predictions, &set, err)) rc = app_fail(CMD, "%s", err);
    } else {
        rc = run_model(&o, &set);
    }
    if (rc >= 0 && rc != APP_EXIT_OK) return eval_set_free(&set), rc;
    rc = APP_EXIT_OK;
    json_t *m = eval_metrics(&set, &o.opt);
    const char *jpath = o.json ? o.json : o.out ? NULL : "-";
    if (jpath) {
        char *text = json_dumps(m, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        FILE *f = strcmp(jpath, "-") == 0 ? stdout : fopen(jpath, "w");
        if (!f || !text)
            rc = app_fail(CMD, "%s: cannot write", jpath);
        else {
            fprintf(f, "%s\n", text);
            if (f != stdout && fclose(f) != 0) rc = app_fail(CMD, "%s: write failed", jpath);
        }
        free(text);
    }
    if (o.out && !eval_write_report(o.out, m, err)) rc = app_fail(CMD, "%s", err);
    if (set.n_pred_unmatched && !o.quiet)
        fprintf(stderr, "eval: %zu predictions matched no label\n", set.n_pred_unmatched);
    json_decref(m);
    eval_set_free(&set);
    return rc;
}
