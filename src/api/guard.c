/*
 * guard.c — the public "judge this image" path: glues the layers together (image processor ->
 * vision tower -> chat template + policy + tokenizer -> prefill -> verdict decoder). This is the
 * only file that knows every layer.
 */
#include "core/core.h"
#include "decode/decode.h"

#include <string.h>
#include <time.h>

struct lg_guard {
    lg_model *model;
    lg_tokenizer *tok;
    lg_preprocessor *pp;
    lg_session *sess;
    const char *chat_template; /* static string */
    char policy_sha[65];       /* the policy the cached schema was built for */
    vd_schema schema;
    bool have_schema;
    lg_error err;
};

/* What lg_guard_assess hands back: the public struct plus the storage it points into. */
typedef struct verdict_box {
    lg_verdict pub;
    vd_result res;
    char **options;
    size_t n_options;
} verdict_box;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

lg_assess_params lg_assess_params_default(void) {
    return (lg_assess_params){.rationale = LG_RATIONALE_ALWAYS,
                              .temperature = 0.0f,
                              .top_k = 0,
                              .top_p = 1.0f,
                              .seed = 0,
                              .max_rationale_tokens = 512};
}

lg_guard_params lg_guard_params_default(void) {
    return (lg_guard_params){.model = lg_model_params_default(), .chat_template = NULL};
}

/* ---- adapters: the verdict decoder's view of the session and the tokenizer ---- */

static lg_status lm_eval(void *ctx, const int32_t *ids, size_t n, bool all, const float **logits) {
    return lg_session_eval(ctx, ids, n, NULL, 0, all, logits);
}

static lg_status lm_truncate(void *ctx, size_t n_past) {
    return lg_session_truncate(ctx, (int64_t)n_past);
}

static const char *lm_errmsg(void *ctx) {
    return lg_session_errmsg(ctx);
}

static lg_status tok_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    return lg_tokenizer_encode(ctx, text, len, ids, n);
}

/* Special tokens (<|im_end|>, <image>) never appear inside a rationale. */
static const char *tok_bytes(void *ctx, int32_t id, size_t *len) {
    if (lg_tokenizer_is_special(ctx, id)) return NULL;
    return (const char *)lg_tokenizer_token_bytes(ctx, id, len);
}

static vd_lm guard_lm(lg_guard *g) {
    return (vd_lm){g->sess, (size_t)lg_model_n_vocab(g->model), lm_eval, lm_truncate, lm_errmsg};
}

static vd_tok guard_tok(lg_guard *g) {
    return (vd_tok){g->tok, (size_t)lg_tokenizer_vocab_size(g->tok), tok_encode, tok_bytes};
}

/* ---- open / free ---- */

lg_status lg_guard_open(const char *model_dir, const lg_guard_params *params, lg_guard **out,
                        lg_error *err) {
    lg_guard_params p = params ? *params : lg_guard_params_default();
    lg_guard *g = lg_calloc(1, sizeof *g);
    if (!g) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    lg_status st = lg_model_open(model_dir, &p.model, &g->model, err);
    if (st != LG_OK) goto fail;
    if ((st = lg_tokenizer_open(model_dir, &g->tok, err)) != LG_OK) goto fail;
    if ((st = lg_preprocessor_open(model_dir, &g->pp, err)) != LG_OK) goto fail;
    if ((st = lg_session_create(g->model, &g->sess, err)) != LG_OK) goto fail;
    const char *tmpl =
        p.chat_template ? p.chat_template : lg_chat_template_for_model(lg_model_type(g->model));
    g->chat_template = NULL;
    for (const char *const *n = lg_chat_template_names(); tmpl && *n; n++)
        if (strcmp(*n, tmpl) == 0) g->chat_template = *n;
    if (!g->chat_template) {
        st = lg_err_set(err, LG_E_UNSUPPORTED, "%s: no chat template %s%s", model_dir,
                        tmpl ? "named " : "for model type ", tmpl ? tmpl : lg_model_type(g->model));
        goto fail;
    }
    *out = g;
    return LG_OK;
fail:
    lg_guard_free(g);
    return st;
}

void lg_guard_free(lg_guard *g) {
    if (!g) return;
    if (g->have_schema) vd_schema_free(&g->schema);
    lg_session_free(g->sess);
    lg_preprocessor_free(g->pp);
    lg_tokenizer_free(g->tok);
    lg_model_free(g->model);
    lg_free(g);
}

const char *lg_guard_errmsg(const lg_guard *g) {
    return g ? g->err.msg : "";
}

const lg_model *lg_guard_model(const lg_guard *g) {
    return g->model;
}

lg_tokenizer *lg_guard_tokenizer(lg_guard *g) {
    return g->tok;
}

const char *lg_guard_chat_template(const lg_guard *g) {
    return g->chat_template;
}

const char *lg_guard_default_policy_version(const lg_guard *g) {
    return strcmp(lg_model_type(g->model), "llava") == 0 ? "v1.0" : "v1.2";
}

/* ---- assess ---- */

/* The category options of a policy, "NA: None applying" last (lg_free each and the array). */
static char **policy_options(const lg_policy *pol, size_t *n_out) {
    size_t n = lg_policy_n_categories(pol);
    char **opt = lg_calloc(n + 1, sizeof *opt);
    if (!opt) return NULL;
    for (size_t i = 0; i <= n; i++) {
        opt[i] = lg_strdup(i < n ? lg_policy_category_option(pol, i) : lg_policy_na_option(pol));
        if (!opt[i]) {
            for (size_t k = 0; k < i; k++) lg_free(opt[k]);
            lg_free(opt);
            return NULL;
        }
    }
    *n_out = n + 1;
    return opt;
}

static void free_options(char **opt, size_t n) {
    if (!opt) return;
    for (size_t i = 0; i < n; i++) lg_free(opt[i]);
    lg_free(opt);
}

/* Builds (or reuses) the decoder schema for this policy. */
static lg_status ensure_schema(lg_guard *g, const lg_policy *pol, const char *sha, char **options,
                               size_t n_options) {
    if (g->have_schema && strcmp(g->policy_sha, sha) == 0) return LG_OK;
    if (g->have_schema) vd_schema_free(&g->schema);
    g->have_schema = false;
    vd_tok tok = guard_tok(g);
    lg_status st = vd_schema_build(&g->schema, (const char *const *)options, (int)n_options, &tok,
                                   (size_t)lg_model_n_vocab(g->model), &g->err);
    if (st != LG_OK) return st;
    (void)pol;
    memcpy(g->policy_sha, sha, 65);
    g->have_schema = true;
    return LG_OK;
}

/* Renders and tokenizes the prompt: chat template around the policy, image tokens expanded. */
static lg_status build_prompt(lg_guard *g, const lg_policy *pol, int64_t image_tokens,
                              int32_t **ids, size_t *n) {
    const char *text = lg_policy_text(pol);
    char *prompt = NULL;
    size_t len = 0;
    lg_status st = lg_chat_render(g->chat_template, text, strlen(text), 1, image_tokens, 1, &prompt,
                                  &len, &g->err);
    if (st != LG_OK) return st;
    st = lg_tokenizer_encode_ex(g->tok, prompt, len, LG_ENCODE_ADD_SPECIAL, ids, n);
    if (st != LG_OK)
        lg_err_set(&g->err, st, "tokenizing the prompt: %s", lg_tokenizer_errmsg(g->tok));
    lg_free(prompt);
    return st;
}

static lg_status session_fail(lg_guard *g, lg_status st, const char *what) {
    return lg_err_set(&g->err, st, "%s: %s", what, lg_session_errmsg(g->sess));
}

lg_status lg_guard_assess(lg_guard *g, const lg_image *img, const lg_policy *policy,
                          const lg_assess_params *params, lg_verdict **out) {
    lg_assess_params ap = params ? *params : lg_assess_params_default();
    double t0 = now_s();
    lg_pixels *px = NULL;
    float *features = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    verdict_box *box = lg_calloc(1, sizeof *box);
    lg_status st = LG_OK;
    if (!box) return lg_err_set(&g->err, LG_E_NOMEM, "out of memory");
    lg_verdict *v = &box->pub;
    lg_err_clear(&g->err);

    if ((st = lg_preprocess(g->pp, img, &px, &g->err)) != LG_OK) goto fail;
    double t1 = now_s();
    int64_t n_rows = 0;
    if ((st = lg_session_encode_image(g->sess, px, &features, &n_rows)) != LG_OK) {
        session_fail(g, st, "vision");
        goto fail;
    }
    double t2 = now_s();

    lg_policy_sha256(policy, v->policy_sha256);
    if (!(box->options = policy_options(policy, &box->n_options))) {
        st = lg_err_set(&g->err, LG_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = ensure_schema(g, policy, v->policy_sha256, box->options, box->n_options)) != LG_OK)
        goto fail;
    if ((st = build_prompt(g, policy, n_rows, &ids, &n_ids)) != LG_OK) goto fail;
    if ((int64_t)n_ids + ap.max_rationale_tokens + 64 > lg_model_context_limit(g->model)) {
        st = lg_err_set(&g->err, LG_E_LIMIT,
                        "the prompt (%zu tokens) and answer do not fit the context of %lld tokens",
                        n_ids, (long long)lg_model_context_limit(g->model));
        goto fail;
    }
    if ((st = lg_session_truncate(g->sess, 0)) != LG_OK) goto fail;
    const float *logits = NULL;
    st = lg_session_eval(g->sess, ids, n_ids, features, n_rows, 0, &logits);
    if (st != LG_OK) {
        session_fail(g, st, "prefill");
        goto fail;
    }
    double t3 = now_s();

    vd_params vp = {.rationale = (vd_rationale)ap.rationale,
                    .temperature = ap.temperature,
                    .top_k = ap.top_k,
                    .top_p = ap.top_p,
                    .seed = ap.seed,
                    .max_rationale_tokens = ap.max_rationale_tokens};
    vd_lm lm = guard_lm(g);
    vd_tok tok = guard_tok(g);
    if ((st = vd_decode(&g->schema, &lm, &tok, ids, n_ids, &vp, &box->res, &g->err)) != LG_OK)
        goto fail;
    double t4 = now_s();

    vd_result *r = &box->res;
    v->unsafe = r->unsafe;
    v->rating = r->unsafe ? "Unsafe" : "Safe";
    v->category = box->options[r->category];
    v->rationale = r->rationale;
    v->rationale_truncated = r->rationale_truncated;
    v->p_unsafe = r->p_unsafe;
    v->n_categories = box->n_options;
    v->category_options = (const char *const *)box->options;
    v->category_probs = r->category_probs;
    v->answer = r->answer;
    v->model_type = lg_model_type(g->model);
    v->prompt_tokens = (int64_t)n_ids;
    v->image_tokens = n_rows;
    v->answer_tokens = r->n_forced + r->n_sampled;
    v->timings.preprocess = t1 - t0;
    v->timings.vision = t2 - t1;
    v->timings.prefill = t3 - t2;
    v->timings.verdict = t4 - t3;
    v->timings.total = t4 - t0;
    lg_pixels_free(px);
    lg_free(features);
    lg_free(ids);
    *out = v;
    return LG_OK;
fail:
    lg_pixels_free(px);
    lg_free(features);
    lg_free(ids);
    lg_verdict_free(&box->pub);
    return st;
}

void lg_verdict_free(lg_verdict *v) {
    if (!v) return;
    verdict_box *box = (verdict_box *)v; /* pub is the first member */
    vd_result_clear(&box->res);
    free_options(box->options, box->n_options);
    lg_free(box);
}
