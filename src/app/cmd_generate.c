/*
 * cmd_generate.c — `llavaguard generate`: runs a model folder on a prompt (and an image) and
 * prints one JSON object: prompt_tokens, image_tokens, ids (the generated ids, the stop id
 * included), text (decoded, special tokens kept; null without a tokenizer), why it stopped,
 * and timings. The prompt is a text rendered with the model's chat template (--prompt,
 * --prompt-file) or exact ids (--input-ids: a JSON array with the image positions already
 * expanded, the path tests use). --dump-logits writes the last prompt position's logits and
 * --dump-image-features the packed image features, raw little-endian float32. Errors exit 1,
 * usage errors 2; no partial dump file is left behind.
 */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMD "generate"

typedef struct gen_opts {
    const char *model, *image, *prompt, *prompt_file, *input_ids, *template_name;
    const char *dump_logits, *dump_features;
    int max_new_tokens;
    bool exact, sampling, greedy;
    lg_sampler_params sampler;
    lg_model_params mp;
    lg_preprocessor_options pp;
} gen_opts;

static void print_help(void) {
    printf(
        "Usage: llavaguard generate --model DIR [--image IMG]\n"
        "                           (--prompt TEXT | --prompt-file F | --input-ids FILE) "
        "[options]\n"
        "\n"
        "Runs the model in DIR (a Hugging Face LLaVA-OneVision, LLaVA-1.5 or\n"
        "LLaVA-1.6 folder) on a prompt and an "
        "optional\n"
        "image and prints one JSON object: prompt_tokens, image_tokens, ids, text, stop, timings.\n"
        "\n"
        "Prompt (exactly one):\n"
        "  -p, --prompt TEXT          the user turn, rendered with the chat template\n"
        "  -f, --prompt-file F        the same, read from a file ('-': standard input)\n"
        "      --input-ids FILE       a JSON array of token ids used as they are (image positions\n"
        "                             already expanded to one image token per feature row)\n"
        "      --template NAME        chat template for --prompt (default: the model's; e.g.\n"
        "                             qwen_1_5, llava_onevision_hf), or 'none' for the raw text\n"
        "\n"
        "Generation:\n"
        "  -i, --image IMG            the image (JPEG, PNG, WebP, GIF, BMP)\n"
        "      --image-aspect A       LLaVA-1.5: pad (square of the mean colour first) or crop;\n"
        "                             default: config.json's image_aspect_ratio, else crop\n"
        "  -n, --max-new-tokens N     at most N new tokens (default 256); stops earlier on eos\n"
        "      --greedy               take the most likely token (default)\n"
        "      --temperature T        sample: divide logits by T (> 0; default 1)\n"
        "      --top-k K              sample from the K most likely (0: all; default 50)\n"
        "      --top-p P              sample from the smallest set with mass >= P (default 1)\n"
        "      --seed S               random seed for sampling (default 0)\n"
        "\n"
        "Output and execution:\n"
        "      --dump-logits FILE     write the last prompt position's logits (float32, one per\n"
        "                             embedding row)\n"
        "      --dump-image-features FILE  write the packed image features (float32, one row\n"
        "                             of hidden-size values per image token)\n"
        "      --exact                the float32 reference kernels (slow, bit-for-bit stable)\n"
        "      --precision P          fast kernels' activations: accurate (default; split into\n"
        "                             two bf16 halves, logits within ~1e-4 of --exact) or bf16\n"
        "                             (rounded once: faster, logits off by ~1e-2)\n"
        "      --threads N            compute threads (default: one per core)\n"
        "      --kv-type T            KV cache type: i16 (default; int16 + a scale per head\n"
        "                             row, half of f32, logits within ~2e-4 of it; f32 with\n"
        "                             --exact), f32, bf16 or f16\n"
        "      --no-prepack           keep the fast kernels from repacking the weights on first\n"
        "                             use (slower products, no packed copy in memory)\n"
        "  -h, --help                 show this help\n");
}

/* Parses the options; returns -1 to go on, or an exit status. */
static int parse(int argc, char **argv, gen_opts *o) {
    enum {
        OPT_IDS = 256,
        OPT_TEMPLATE,
        OPT_GREEDY,
        OPT_TEMP,
        OPT_TOPK,
        OPT_TOPP,
        OPT_SEED,
        OPT_DUMP_LOGITS,
        OPT_DUMP_FEAT,
        OPT_EXACT,
        OPT_THREADS,
        OPT_KV,
        OPT_NO_PREPACK,
        OPT_PRECISION,
        OPT_ASPECT
    };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"image", required_argument, NULL, 'i'},
        {"prompt", required_argument, NULL, 'p'},
        {"prompt-file", required_argument, NULL, 'f'},
        {"input-ids", required_argument, NULL, OPT_IDS},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"max-new-tokens", required_argument, NULL, 'n'},
        {"greedy", no_argument, NULL, OPT_GREEDY},
        {"temperature", required_argument, NULL, OPT_TEMP},
        {"top-k", required_argument, NULL, OPT_TOPK},
        {"top-p", required_argument, NULL, OPT_TOPP},
        {"seed", required_argument, NULL, OPT_SEED},
        {"dump-logits", required_argument, NULL, OPT_DUMP_LOGITS},
        {"dump-image-features", required_argument, NULL, OPT_DUMP_FEAT},
        {"exact", no_argument, NULL, OPT_EXACT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"kv-type", required_argument, NULL, OPT_KV},
        {"no-prepack", no_argument, NULL, OPT_NO_PREPACK},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"image-aspect", required_argument, NULL, OPT_ASPECT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int c;
    long long v;
    double d;
    while ((c = getopt_long(argc, argv, ":m:i:p:f:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'i':
            o->image = optarg;
            break;
        case 'p':
            o->prompt = optarg;
            break;
        case 'f':
            o->prompt_file = optarg;
            break;
        case OPT_IDS:
            o->input_ids = optarg;
            break;
        case OPT_TEMPLATE:
            o->template_name = optarg;
            break;
        case 'n':
            if (!app_parse_ll(optarg, 0, 1 << 20, &v))
                return app_usage_error(CMD, "--max-new-tokens needs an integer >= 0, not '%s'",
                                       optarg);
            o->max_new_tokens = (int)v;
            break;
        case OPT_GREEDY:
            o->greedy = true;
            break;
        case OPT_TEMP:
            if (!app_parse_double(optarg, 0, 1e30, &d) || d <= 0)
                return app_usage_error(CMD, "--temperature needs a number > 0, not '%s'", optarg);
            o->sampler.temperature = (float)d;
            o->sampling = true;
            break;
        case OPT_TOPK:
            if (!app_parse_ll(optarg, 0, 1L << 30, &v))
                return app_usage_error(CMD, "--top-k needs an integer >= 0, not '%s'", optarg);
            o->sampler.top_k = (int)v;
            o->sampling = true;
            break;
        case OPT_TOPP:
            if (!app_parse_double(optarg, 0, 1, &d) || d <= 0)
                return app_usage_error(CMD, "--top-p needs a number in (0, 1], not '%s'", optarg);
            o->sampler.top_p = (float)d;
            o->sampling = true;
            break;
        case OPT_SEED:
            if (!app_parse_ll(optarg, 0, INT64_MAX, &v))
                return app_usage_error(CMD, "--seed needs an integer >= 0, not '%s'", optarg);
            o->sampler.seed = (uint64_t)v;
            o->sampling = true;
            break;
        case OPT_DUMP_LOGITS:
            o->dump_logits = optarg;
            break;
        case OPT_DUMP_FEAT:
            o->dump_features = optarg;
            break;
        case OPT_EXACT:
            o->exact = true;
            break;
        case OPT_THREADS:
            if (!app_parse_ll(optarg, 1, 4096, &v))
                return app_usage_error(CMD, "--threads needs an integer >= 1, not '%s'", optarg);
            o->mp.n_threads = (int)v;
            break;
        case OPT_KV:
            if (!app_parse_kv_type(optarg, &o->mp.kv_type))
                return app_usage_error(CMD, "--kv-type must be f32, i16, bf16 or f16, not '%s'",
                                       optarg);
            break;
        case OPT_NO_PREPACK:
            o->mp.prepack = 0;
            break;
        case OPT_PRECISION:
            if (!app_parse_precision(optarg, &o->mp.precision))
                return app_usage_error(CMD, "--precision must be accurate or bf16");
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
    if (optind < argc) return app_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->model) return app_usage_error(CMD, "missing --model DIR");
    int n_src = !!o->prompt + !!o->prompt_file + !!o->input_ids;
    if (n_src != 1)
        return app_usage_error(CMD, "give exactly one of --prompt, --prompt-file, --input-ids");
    if (o->greedy && o->sampling)
        return app_usage_error(CMD, "--greedy conflicts with --temperature/--top-k/--top-p/--seed");
    if (o->input_ids && o->template_name)
        return app_usage_error(CMD, "--template applies to --prompt, not --input-ids");
    o->sampler.greedy = !o->sampling;
    if (o->exact) o->mp.kernels = "ref";
    return -1;
}

// ---- inputs ----

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads a JSON array of ids. */
static int read_ids(const char *path, int32_t **ids, size_t *n) {
    json_error_t je;
    json_t *j = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &je) : json_load_file(path, 0, &je);
    if (!j) return app_fail(CMD, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    if (!json_is_array(j) || json_array_size(j) == 0) {
        json_decref(j);
        return app_fail(CMD, "%s: expected a non-empty JSON array of token ids", path);
    }
    *n = json_array_size(j);
    *ids = malloc(*n * sizeof **ids);
    if (!*ids) {
        json_decref(j);
        return app_fail(CMD, "out of memory");
    }
    for (size_t i = 0; i < *n; i++) {
        json_t *e = json_array_get(j, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX) {
            json_decref(j);
            free(*ids);
            *ids = NULL;
            return app_fail(CMD, "%s: element %zu is not a token id", path, i);
        }
        (*ids)[i] = (int32_t)json_integer_value(e);
    }
    json_decref(j);
    return APP_EXIT_OK;
}

/* Renders and tokenizes the prompt text. */
static int text_ids(const gen_opts *o, lg_model *model, lg_tokenizer *tok, int64_t image_tokens,
                    int32_t **ids, size_t *n) {
    size_t len = 0;
    char *owned = NULL;
    const char *text = o->prompt;
    if (o->prompt_file) {
        lg_error fe;
        uint8_t *data = NULL;
        if (lg_read_file(o->prompt_file, (size_t)1 << 30, &data, &len, &fe) != LG_OK)
            return app_fail_err(CMD, &fe);
        text = owned = (char *)data;
    } else {
        len = strlen(text);
    }
    char *rendered = NULL;
    size_t rlen = 0;
    lg_error err;
    int rc = APP_EXIT_OK;
    if (o->template_name && strcmp(o->template_name, "none") == 0) {
        if (image_tokens > 0) rc = app_fail(CMD, "--template none cannot place an --image");
        rendered = NULL;
    } else {
        const char *tpl =
            o->template_name ? o->template_name : lg_chat_template_for_model(lg_model_type(model));
        if (lg_chat_render(tpl, text, len, image_tokens > 0, image_tokens, 1, &rendered, &rlen,
                           &err) != LG_OK)
            rc = app_fail_err(CMD, &err);
    }
    if (rc == APP_EXIT_OK) {
        const char *src = rendered ? rendered : text;
        size_t slen = rendered ? rlen : len;
        if (lg_tokenizer_encode_ex(tok, src, slen, LG_ENCODE_ADD_SPECIAL, ids, n) != LG_OK)
            rc = app_fail(CMD, "tokenizing the prompt: %s", lg_tokenizer_errmsg(tok));
        else if (*n == 0)
            rc = app_fail(CMD, "the prompt is empty");
    }
    lg_free(rendered);
    lg_free(owned);
    return rc;
}

/* Writes floats to `path` through a temporary file, so a failure leaves nothing behind. */
static int dump_f32(const char *path, const float *x, size_t n) {
    size_t plen = strlen(path) + 16;
    char *tmp = malloc(plen);
    if (!tmp) return app_fail(CMD, "out of memory");
    snprintf(tmp, plen, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(x, sizeof *x, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) remove(tmp);
    free(tmp);
    return ok ? APP_EXIT_OK : app_fail(CMD, "%s: cannot write: %s", path, strerror(errno));
}

// ---- the run ----

typedef struct gen_run {
    lg_model *model;
    lg_tokenizer *tok;
    lg_session *sess;
    float *features;
    int64_t n_rows;
    int32_t *ids, *out;
    size_t n_ids, n_out;
    double t_load, t_image, t_prompt, t_gen;
} gen_run;

static int encode_image(const gen_opts *o, gen_run *r) {
    lg_error err;
    lg_preprocessor *pp = NULL;
    lg_image *img = NULL;
    lg_pixels *px = NULL;
    int rc = APP_EXIT_OK;
    double t0 = now_ms();
    if (lg_preprocessor_open_with(o->model, &o->pp, &pp, &err) != LG_OK ||
        lg_image_load_file(o->image, NULL, &img, &err) != LG_OK ||
        lg_preprocess(pp, img, &px, &err) != LG_OK)
        rc = app_fail_err(CMD, &err);
    else if (lg_session_encode_image(r->sess, px, &r->features, &r->n_rows) != LG_OK)
        rc = app_fail(CMD, "%s: %s", o->image, lg_session_errmsg(r->sess));
    r->t_image = now_ms() - t0;
    lg_pixels_free(px);
    lg_image_free(img);
    lg_preprocessor_free(pp);
    return rc;
}

static void print_json(const gen_opts *o, gen_run *r) {
    json_t *j = json_object();
    json_object_set_new(j, "prompt_tokens", json_integer((json_int_t)r->n_ids));
    json_object_set_new(j, "image_tokens", json_integer(r->n_rows));
    json_t *ids = json_array();
    for (size_t i = 0; i < r->n_out; i++) json_array_append_new(ids, json_integer(r->out[i]));
    json_object_set_new(j, "ids", ids);
    char *text = NULL;
    if (r->tok && lg_tokenizer_decode(r->tok, r->out, r->n_out, 0, &text, NULL) == LG_OK)
        json_object_set_new(j, "text", json_string(text));
    else
        json_object_set_new(j, "text", json_null());
    lg_free(text);
    const int32_t *eos = NULL;
    size_t n_eos = lg_model_eos_ids(r->model, &eos);
    bool on_eos = false;
    for (size_t i = 0; r->n_out && i < n_eos; i++) on_eos |= r->out[r->n_out - 1] == eos[i];
    json_object_set_new(j, "stop",
                        json_string(on_eos                               ? "eos"
                                    : (int)r->n_out == o->max_new_tokens ? "max_new_tokens"
                                                                         : "context"));
    json_t *t = json_object();
    json_object_set_new(t, "load_ms", json_real(r->t_load));
    json_object_set_new(t, "image_ms", json_real(r->t_image));
    json_object_set_new(t, "prompt_ms", json_real(r->t_prompt));
    json_object_set_new(t, "generate_ms", json_real(r->t_gen));
    json_object_set_new(t, "prompt_tokens_per_s",
                        json_real(r->t_prompt > 0 ? r->n_ids / (r->t_prompt / 1e3) : 0));
    json_object_set_new(
        t, "generate_tokens_per_s",
        json_real(r->t_gen > 0 && r->n_out > 1 ? (r->n_out - 1) / (r->t_gen / 1e3) : 0));
    json_object_set_new(j, "timings", t);
    json_object_set_new(j, "kernels", json_string(o->exact ? "ref" : "auto"));
    json_object_set_new(
        j, "precision",
        o->exact ? json_null()
                 : json_string(o->mp.precision == LG_PRECISION_BF16 ? "bf16" : "accurate"));
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (s) puts(s);
    free(s);
    json_decref(j);
}

static int run(const gen_opts *o, gen_run *r) {
    lg_error err;
    double t0 = now_ms();
    if (lg_model_open(o->model, &o->mp, &r->model, &err) != LG_OK) return app_fail_err(CMD, &err);
    r->t_load = now_ms() - t0;
    /* The tokenizer is needed for --prompt; for --input-ids it only decodes the output. */
    if (lg_tokenizer_open(o->model, &r->tok, &err) != LG_OK) {
        if (!o->input_ids) return app_fail_err(CMD, &err);
        r->tok = NULL;
    }
    if (lg_session_create(r->model, &r->sess, &err) != LG_OK) return app_fail_err(CMD, &err);
    int rc = o->image ? encode_image(o, r) : APP_EXIT_OK;
    if (rc != APP_EXIT_OK) return rc;
    if (o->dump_features && (rc = dump_f32(o->dump_features, r->features,
                                           (size_t)(r->n_rows * lg_model_hidden_size(r->model)))))
        return rc;
    rc = o->input_ids ? read_ids(o->input_ids, &r->ids, &r->n_ids)
                      : text_ids(o, r->model, r->tok, r->n_rows, &r->ids, &r->n_ids);
    if (rc != APP_EXIT_OK) return rc;
    int64_t n_img = 0;
    for (size_t i = 0; i < r->n_ids; i++) n_img += r->ids[i] == lg_model_image_token_id(r->model);
    if (n_img != r->n_rows)
        return app_fail(CMD, "the prompt holds %lld image tokens but the image has %lld rows%s",
                        (long long)n_img, (long long)r->n_rows,
                        o->image ? "" : " (no --image given)");
    t0 = now_ms();
    const float *logits = NULL;
    if (lg_session_eval(r->sess, r->ids, r->n_ids, r->features, r->n_rows, 0, &logits) != LG_OK)
        return app_fail(CMD, "%s", lg_session_errmsg(r->sess));
    r->t_prompt = now_ms() - t0;
    if (o->dump_logits &&
        (rc = dump_f32(o->dump_logits, logits, (size_t)lg_model_n_vocab(r->model))))
        return rc;
    lg_generate_params gp = lg_generate_params_default();
    gp.max_new_tokens = o->max_new_tokens;
    gp.sampler = o->sampler;
    t0 = now_ms();
    if (lg_session_generate(r->sess, NULL, 0, NULL, 0, &gp, &r->out, &r->n_out) != LG_OK)
        return app_fail(CMD, "%s", lg_session_errmsg(r->sess));
    r->t_gen = now_ms() - t0;
    print_json(o, r);
    return fflush(stdout) == 0 ? APP_EXIT_OK : app_fail(CMD, "cannot write to stdout");
}

int cmd_generate(int argc, char **argv) {
    gen_opts o = {0};
    o.max_new_tokens = 256;
    o.sampler = lg_sampler_params_default();
    o.mp = lg_model_params_default();
    o.pp = lg_preprocessor_options_default();
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    gen_run r = {0};
    rc = run(&o, &r);
    lg_free(r.out);
    free(r.ids);
    lg_free(r.features);
    lg_session_free(r.sess);
    lg_tokenizer_free(r.tok);
    lg_model_free(r.model);
    return rc;
}
