/*
 * cmd_augment.c — `llavaguard augment`: turns a labelled set into training samples with the
 * LlavaGuard paper's policy augmentation. Safe images keep the default policy; an Unsafe image
 * gives the default sample, three samples with 1-3 other categories declared non-violating
 * (label kept: <id>_v3_a|b|c) and a policy exception with its own category declared
 * non-violating (Safe, category kept: <id>_v2); strategy v4 adds <id>_v4 (own category declared
 * sensitive: Unsafe), v5 also gives Safe images the _v3 samples. Prompts are the policy API's
 * user turn (= `llavaguard policy render --user-turn` with the same --allow/--sensitive), the
 * target is the JSON the model writes (src/decode/verdict.c's layout). Deterministic per seed.
 */
#include "app.h"
#include "eval.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CMD "augment"

typedef struct aug_cli {
    const char *labels, *out, *format, *strategy, *version;
    uint64_t seed;
    bool drop_safe_with_category, quiet;
} aug_cli;

typedef struct aug_counts {
    long labels, dropped, dflt, v2, v3, v4, samples;
} aug_counts;

static void print_help(void) {
    printf("Usage: llavaguard augment --labels LABELS --out DIR [options]\n"
           "\n"
           "Writes training samples with LlavaGuard's policy augmentation: Safe images keep the\n"
           "default policy; each Unsafe image also gives <id>_v3_a|b|c (1-3 other categories\n"
           "declared non-violating, label kept) and <id>_v2 (its own category declared\n"
           "non-violating: Safe). Inconsistent labels (Unsafe with NA) are dropped.\n"
           "\n"
           "Options:\n"
           "  --labels FILE       JSONL or CSV: id, image, rating, category [, rationale]\n"
           "  --out DIR           output folder (train.json or train.jsonl)\n"
           "  --format F          llava (default: LLaVA conversation JSON) or jsonl\n"
           "  --strategy S        v24 (default), v4 (adds <id>_v4: own category declared\n"
           "                      sensitive, Unsafe) or v5 (v4, and _v3 samples for Safe images)\n"
           "  --seed S            random seed (default 0): same seed, same bytes\n"
           "  --version V         built-in policy generation (default v1.2)\n"
           "  --drop-safe-with-category  also drop Safe labels that name an O-category\n"
           "  -q, --quiet         no summary on stderr\n"
           "  -h, --help          show this help\n");
}

static int parse(int argc, char **argv, aug_cli *o) {
    enum { O_LABELS = 1, O_OUT, O_FORMAT, O_STRATEGY, O_SEED, O_VERSION, O_DROP };
    static const struct option longs[] = {{"labels", required_argument, NULL, O_LABELS},
                                          {"out", required_argument, NULL, O_OUT},
                                          {"format", required_argument, NULL, O_FORMAT},
                                          {"strategy", required_argument, NULL, O_STRATEGY},
                                          {"seed", required_argument, NULL, O_SEED},
                                          {"version", required_argument, NULL, O_VERSION},
                                          {"drop-safe-with-category", no_argument, NULL, O_DROP},
                                          {"quiet", no_argument, NULL, 'q'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int c;
    long long ll;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longs, NULL)) != -1) {
        switch (c) {
        case O_LABELS:
            o->labels = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_FORMAT:
            o->format = optarg;
            break;
        case O_STRATEGY:
            o->strategy = optarg;
            break;
        case O_VERSION:
            o->version = optarg;
            break;
        case O_DROP:
            o->drop_safe_with_category = true;
            break;
        case O_SEED:
            if (!app_parse_ll(optarg, 0, INT64_MAX, &ll))
                return app_usage_error(CMD, "--seed must be a whole number >= 0");
            o->seed = (uint64_t)ll;
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
    if (!o->labels || !o->out) return app_usage_error(CMD, "--labels and --out are required");
    if (strcmp(o->format, "llava") != 0 && strcmp(o->format, "jsonl") != 0)
        return app_usage_error(CMD, "--format must be llava or jsonl");
    if (strcmp(o->strategy, "v24") != 0 && strcmp(o->strategy, "v4") != 0 &&
        strcmp(o->strategy, "v5") != 0)
        return app_usage_error(CMD, "--strategy must be v24, v4 or v5");
    return -1;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The answer exactly as the model writes it (src/decode/verdict.c's skeleton). */
static char *answer_text(const char *rating, const char *category, const char *rationale) {
    char *r = NULL;
    if (rationale) {
        json_t *js = json_string(rationale);
        r = json_dumps(js, JSON_ENCODE_ANY);
        json_decref(js);
    }
    size_t cap = strlen(rating) + strlen(category) + (r ? strlen(r) : 0) + 64;
    char *out = malloc(cap);
    if (out && r)
        snprintf(out, cap,
                 "{\n    \"rating\": \"%s\",\n    \"category\": \"%s\",\n    \"rationale\": %s\n}",
                 rating, category, r);
    else if (out)
        snprintf(out, cap, "{\n    \"rating\": \"%s\",\n    \"category\": \"%s\"\n}", rating,
                 category);
    free(r);
    return out;
}

typedef struct aug_ctx {
    const aug_cli *o;
    const char *version;
    json_t *samples;
    FILE *jsonl;
    aug_counts *n;
    char err[256];
} aug_ctx;

/* Emits one sample: the default policy with `allow` declared non-violating and `sensitive`
 * declared sensitive (comma lists, may be empty). */
static bool emit(aug_ctx *c, const eval_sample *s, const char *suffix, const char *allow,
                 const char *sensitive, const char *rating) {
    lg_policy *pol = NULL;
    lg_error err = {0};
    char *prompt = NULL, *answer = NULL;
    bool ok = false;
    if (lg_policy_create_default(c->version, &pol, &err) != LG_OK) {
        snprintf(c->err, sizeof c->err, "%.200s", err.msg);
        return false;
    }
    if ((*allow && lg_policy_set_states(pol, allow, LG_CATEGORY_NONVIOLATING) != LG_OK) ||
        (*sensitive && lg_policy_set_states(pol, sensitive, LG_CATEGORY_SENSITIVE) != LG_OK) ||
        lg_policy_render(pol, LG_POLICY_RENDER_USER_TURN, &prompt) != LG_OK) {
        snprintf(c->err, sizeof c->err, "%.100s: %.140s", s->id, lg_policy_errmsg(pol));
        goto done;
    }
    int ix = s->code[0] == 'O' ? lg_policy_category_index(pol, s->code) : -1;
    const char *cat =
        ix >= 0 ? lg_policy_category_option(pol, (size_t)ix) : lg_policy_na_option(pol);
    answer = answer_text(rating, cat, s->rationale);
    char id[512];
    snprintf(id, sizeof id, "%s%s", s->id, suffix);
    json_t *conv = json_pack("[{ssss}{ssss}]", "from", "human", "value", prompt, "from", "gpt",
                             "value", answer);
    json_t *rec = json_pack("{ss}", "id", id);
    json_object_set_new(rec, "image", s->image ? json_string(s->image) : json_null());
    if (c->jsonl) {
        json_decref(conv);
        json_object_set_new(rec, "prompt", json_string(prompt));
        json_object_set_new(rec, "answer", json_string(answer));
        json_object_set_new(rec, "rating", json_string(rating));
        json_object_set_new(rec, "category", json_string(cat));
        json_object_set_new(rec, "allow", json_string(allow));
        json_object_set_new(rec, "sensitive", json_string(sensitive));
        char *line = json_dumps(rec, JSON_COMPACT);
        fprintf(c->jsonl, "%s\n", line);
        free(line);
        json_decref(rec);
    } else {
        json_object_set_new(rec, "conversations", conv);
        json_array_append_new(c->samples, rec);
    }
    c->n->samples++;
    ok = true;
done:
    lg_free(prompt);
    free(answer);
    lg_policy_free(pol);
    return ok;
}

/* 1-3 of the eight other categories, in category order, as a comma list. */
static void pick_others(uint64_t *rng, const char *own, char *list, size_t cap) {
    char others[9][4];
    int n = 0;
    for (int k = 1; k <= 9; k++) {
        snprintf(others[n], 4, "O%d", k);
        if (strcmp(others[n], own) != 0) n++;
    }
    int want = 1 + (int)(rng_next(rng) % 3);
    bool chosen[9] = {false};
    for (int got = 0; got < want;) {
        int i = (int)(rng_next(rng) % (uint64_t)n);
        if (!chosen[i]) chosen[i] = true, got++;
    }
    list[0] = 0;
    for (int i = 0; i < n; i++)
        if (chosen[i]) {
            if (list[0]) strncat(list, ",", cap - strlen(list) - 1);
            strncat(list, others[i], cap - strlen(list) - 1);
        }
}

static bool augment_one(aug_ctx *c, const eval_sample *s, uint64_t *rng) {
    const aug_cli *o = c->o;
    bool has_cat = s->code[0] == 'O';
    if (!s->code[0] || (s->label_unsafe && !has_cat) ||
        (!s->label_unsafe && has_cat && o->drop_safe_with_category)) {
        c->n->dropped++;
        return true;
    }
    const char *rating = s->label_unsafe ? "Unsafe" : "Safe";
    if (!emit(c, s, "", "", "", rating)) return false;
    c->n->dflt++;
    bool v3 = s->label_unsafe || (strcmp(o->strategy, "v5") == 0 && has_cat);
    if (v3) {
        for (int k = 0; k < 3; k++) {
            char list[64], suf[8];
            pick_others(rng, has_cat ? s->code : "", list, sizeof list);
            snprintf(suf, sizeof suf, "_v3_%c", 'a' + k);
            if (!emit(c, s, suf, list, "", rating)) return false;
            c->n->v3++;
        }
    }
    if (s->label_unsafe) {
        if (!emit(c, s, "_v2", s->code, "", "Safe")) return false;
        c->n->v2++;
    }
    if (has_cat && strcmp(o->strategy, "v24") != 0) {
        if (!emit(c, s, "_v4", "", s->code, "Unsafe")) return false;
        c->n->v4++;
    }
    return true;
}

static int write_all(const aug_cli *o, const eval_set *set, aug_counts *n) {
    if (mkdir(o->out, 0777) != 0 && errno != EEXIST)
        return app_fail(CMD, "%s: cannot create: %s", o->out, strerror(errno));
    bool jsonl = strcmp(o->format, "jsonl") == 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/train.%s", o->out, jsonl ? "jsonl" : "json");
    FILE *f = fopen(path, "w");
    if (!f) return app_fail(CMD, "%s: cannot write", path);
    aug_ctx c = {
        .o = o, .version = o->version, .samples = json_array(), .jsonl = jsonl ? f : NULL, .n = n};
    uint64_t rng = o->seed;
    int rc = APP_EXIT_OK;
    for (size_t i = 0; i < set->n && rc == APP_EXIT_OK; i++) {
        n->labels++;
        if (!augment_one(&c, &set->s[i], &rng)) rc = app_fail(CMD, "%s", c.err);
    }
    if (!jsonl && rc == APP_EXIT_OK) {
        if (json_dumpf(c.samples, f, JSON_INDENT(2)) != 0)
            rc = app_fail(CMD, "%s: write failed", path);
        fputc('\n', f);
    }
    json_decref(c.samples);
    if (fclose(f) != 0 && rc == APP_EXIT_OK) rc = app_fail(CMD, "%s: write failed", path);
    return rc;
}

int cmd_augment(int argc, char **argv) {
    aug_cli o = {.format = "llava", .strategy = "v24", .version = "v1.2"};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    eval_set set = {0};
    char err[256];
    if (!eval_read_labels(o.labels, &set, err))
        return eval_set_free(&set), app_fail(CMD, "%s", err);
    aug_counts n = {0};
    rc = write_all(&o, &set, &n);
    if (rc == APP_EXIT_OK && !o.quiet)
        fprintf(stderr,
                "augment: %ld labels -> %ld samples (%ld default, %ld _v3, %ld _v2, %ld _v4); "
                "dropped %ld inconsistent labels\n",
                n.labels, n.samples, n.dflt, n.v3, n.v2, n.v4, n.dropped);
    eval_set_free(&set);
    return rc;
}
