/*
 * cmd_tokenize.c — `llavaguard tokenize --model DIR (--text T | --file F)`: tokenizes text with
 * the model folder's tokenizer.json and prints one JSON object {"ids": [...]} (nothing added
 * around the text; special-token strings in it are recognised). --chat first renders the text as
 * the user turn of the model's chat template (image placeholder expanded to --image-tokens) and
 * adds the tokens the model expects around it (Llama's <s>); --decode goes from a JSON array of
 * ids back to {"text": ...}. Usage errors exit 2, failures 1.
 */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CMD "tokenize"
#define MAX_INPUT ((size_t)1 << 30)

typedef struct tok_opts {
    const char *model, *text, *file, *template_name;
    bool chat, decode, add_special, split_special, skip_special, pieces, text_first;
    long long image_tokens;
} tok_opts;

static void print_help(void) {
    const char *const *names = lg_chat_template_names();
    printf("Usage: llavaguard tokenize --model DIR (--text T | --file F) [options]\n"
           "\n"
           "Tokenizes the text with the tokenizer.json of the model folder DIR (or DIR may be a\n"
           "tokenizer.json file) and prints {\"ids\": [...]}: the ids of exactly that text,\n"
           "nothing added around it; special-token strings in the text (\"<|im_end|>\",\n"
           "\"<image>\") are recognised as their tokens.\n"
           "\n"
           "Options:\n"
           "  -m, --model DIR         model folder or tokenizer.json (required)\n"
           "  -t, --text T            the text\n"
           "  -f, --file F            read the text from file F ('-': standard input)\n"
           "      --chat              render the text as the user turn of a chat template first\n"
           "                          and add the tokens the model expects around a prompt\n"
           "                          (e.g. Llama's <s>)\n"
           "      --template NAME     chat template (default: chosen from DIR/config.json's\n"
           "                          model_type); one of:");
    for (size_t i = 0; names[i]; i++) printf("%s %s", i ? "," : "", names[i]);
    printf("\n"
           "      --image-tokens N    with --chat: put an image in the turn, its placeholder\n"
           "                          repeated N times (1 = unexpanded; default: no image)\n"
           "      --text-first        with --chat: the text before the image (qwen2_vl only)\n"
           "      --add-special       add the post-processor's tokens (implied by --chat)\n"
           "      --split-special     tokenize special-token strings in the text as plain text\n"
           "      --pieces            also print the token strings as \"tokens\"\n"
           "      --decode            the input is a JSON array of ids: print {\"text\": ...}\n"
           "      --skip-special      with --decode: leave special tokens out\n"
           "  -h, --help              show this help\n");
}

static int parse(int argc, char **argv, tok_opts *o) {
    enum {
        OPT_CHAT = 256,
        OPT_TEMPLATE,
        OPT_IMAGE_TOKENS,
        OPT_TEXT_FIRST,
        OPT_ADD_SPECIAL,
        OPT_SPLIT_SPECIAL,
        OPT_PIECES,
        OPT_DECODE,
        OPT_SKIP_SPECIAL
    };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"text", required_argument, NULL, 't'},
        {"file", required_argument, NULL, 'f'},
        {"chat", no_argument, NULL, OPT_CHAT},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"chat-template", required_argument, NULL, OPT_TEMPLATE},
        {"image-tokens", required_argument, NULL, OPT_IMAGE_TOKENS},
        {"text-first", no_argument, NULL, OPT_TEXT_FIRST},
        {"add-special", no_argument, NULL, OPT_ADD_SPECIAL},
        {"split-special", no_argument, NULL, OPT_SPLIT_SPECIAL},
        {"pieces", no_argument, NULL, OPT_PIECES},
        {"decode", no_argument, NULL, OPT_DECODE},
        {"skip-special", no_argument, NULL, OPT_SKIP_SPECIAL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int c;
    bool image_opt = false;
    while ((c = getopt_long(argc, argv, ":m:t:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 't':
            o->text = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case OPT_CHAT:
            o->chat = true;
            break;
        case OPT_TEMPLATE:
            o->template_name = optarg;
            break;
        case OPT_IMAGE_TOKENS: {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno || !end || *end || end == optarg || v < 0 || v > (1 << 24))
                return app_usage_error(CMD,
                                       "--image-tokens needs an integer in [0, 16777216], "
                                       "not '%s'",
                                       optarg);
            o->image_tokens = v;
            image_opt = true;
            break;
        }
        case OPT_TEXT_FIRST:
            o->text_first = true;
            break;
        case OPT_ADD_SPECIAL:
            o->add_special = true;
            break;
        case OPT_SPLIT_SPECIAL:
            o->split_special = true;
            break;
        case OPT_PIECES:
            o->pieces = true;
            break;
        case OPT_DECODE:
            o->decode = true;
            break;
        case OPT_SKIP_SPECIAL:
            o->skip_special = true;
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
    if (optind < argc) return app_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->model) return app_usage_error(CMD, "missing --model DIR");
    if (!o->text == !o->file) return app_usage_error(CMD, "give exactly one of --text and --file");
    if (!o->chat && (o->template_name || image_opt || o->text_first))
        return app_usage_error(CMD, "--template, --image-tokens and --text-first need --chat");
    if (o->decode && (o->chat || o->add_special || o->split_special || o->pieces))
        return app_usage_error(CMD, "--decode does not combine with --chat, --add-special, "
                                    "--split-special or --pieces");
    if (o->skip_special && !o->decode) return app_usage_error(CMD, "--skip-special needs --decode");
    return -1;
}

static int print_json(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return app_fail(CMD, "cannot format the output as JSON");
    puts(s);
    free(s);
    return fflush(stdout) == 0 ? APP_EXIT_OK : app_fail(CMD, "cannot write the output");
}

/* The default template of a model folder: its config.json's model_type. */
static int default_template(const char *model, const char **name) {
    struct stat sb;
    if (stat(model, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return app_usage_error(CMD, "--chat with a tokenizer.json file needs --template NAME");
    size_t n = strlen(model) + sizeof "/config.json";
    char *path = malloc(n);
    if (!path) return app_fail(CMD, "out of memory");
    snprintf(path, n, "%s/config.json", model);
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    free(path);
    if (!cfg) return app_fail(CMD, "%s/config.json: %s", model, je.text);
    const char *type = json_string_value(json_object_get(cfg, "model_type"));
    *name = lg_chat_template_for_model(type);
    int rc = -1;
    if (!*name)
        rc = app_usage_error(CMD, "no default chat template for model_type '%s'; use --template",
                             type ? type : "(none)");
    json_decref(cfg);
    return rc;
}

static int run_decode(lg_tokenizer *tok, const char *input, size_t len, bool skip_special) {
    json_error_t je;
    json_t *arr = json_loadb(input, len, 0, &je);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return app_fail(CMD, "--decode expects a JSON array of ids%s%s", arr ? "" : ": ",
                        arr ? "" : je.text);
    }
    size_t n = json_array_size(arr);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        json_decref(arr);
        return app_fail(CMD, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            free(ids);
            json_decref(arr);
            return app_fail(CMD, "--decode: element %zu is not a token id", i);
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    json_decref(arr);
    char *text = NULL;
    size_t tlen = 0;
    lg_status st =
        lg_tokenizer_decode(tok, ids, n, skip_special ? LG_DECODE_SKIP_SPECIAL : 0, &text, &tlen);
    free(ids);
    if (st) return app_fail(CMD, "%s (%s)", lg_tokenizer_errmsg(tok), lg_status_str(st));
    json_t *out = json_pack("{s:s%}", "text", text, tlen);
    lg_free(text);
    if (!out) return app_fail(CMD, "cannot format the output as JSON");
    return print_json(out);
}

static int run_encode(lg_tokenizer *tok, const tok_opts *o, const char *input, size_t len) {
    char *prompt = NULL;
    if (o->chat) {
        const char *tmpl = o->template_name;
        if (!tmpl) {
            int rc = default_template(o->model, &tmpl);
            if (rc >= 0) return rc;
        }
        lg_error e;
        lg_status st = lg_chat_render(tmpl, input, len, o->image_tokens > 0, o->image_tokens,
                                      !o->text_first, &prompt, &len, &e);
        if (st == LG_E_ARG) return app_usage_error(CMD, "%s", e.msg);
        if (st) return app_fail_err(CMD, &e);
        input = prompt;
    }
    unsigned flags = (o->chat || o->add_special ? LG_ENCODE_ADD_SPECIAL : 0) |
                     (o->split_special ? LG_ENCODE_SPLIT_SPECIAL : 0);
    int32_t *ids = NULL;
    size_t n = 0;
    lg_status st = lg_tokenizer_encode_ex(tok, input, len, flags, &ids, &n);
    lg_free(prompt);
    if (st) return app_fail(CMD, "%s (%s)", lg_tokenizer_errmsg(tok), lg_status_str(st));
    json_t *arr = json_array(), *pieces = o->pieces ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_integer(ids[i]));
        if (pieces) json_array_append_new(pieces, json_string(lg_tokenizer_token_str(tok, ids[i])));
    }
    lg_free(ids);
    json_t *out = json_object();
    json_object_set_new(out, "ids", arr);
    if (pieces) json_object_set_new(out, "tokens", pieces);
    return print_json(out);
}

int cmd_tokenize(int argc, char **argv) {
    tok_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    char *owned = NULL;
    size_t len;
    const char *input = o.text;
    if (o.file) {
        lg_error fe;
        uint8_t *data = NULL;
        if (lg_read_file(o.file, MAX_INPUT, &data, &len, &fe) != LG_OK)
            return app_fail_err(CMD, &fe);
        input = owned = (char *)data;
    } else {
        len = strlen(o.text);
    }
    lg_tokenizer *tok = NULL;
    lg_error e;
    if (lg_tokenizer_open(o.model, &tok, &e)) {
        lg_free(owned);
        return app_fail_err(CMD, &e);
    }
    rc = o.decode ? run_decode(tok, input, len, o.skip_special) : run_encode(tok, &o, input, len);
    lg_tokenizer_free(tok);
    lg_free(owned);
    return rc;
}
