/*
 * guard.c — the public "judge this image" path: glues the layers together (image processor ->
 * vision tower -> chat template + policy + tokenizer -> prefill -> verdict decoder). This is the
 * only file that knows every layer.
 */
#include "api/api.h"

#include <string.h>
#include <time.h>

/* What a verdict hands back: the public struct plus the storage it points into. */
typedef struct verdict_box {
    lg_verdict pub;
    vd_result res;
    char **options;
    size_t n_options;
} verdict_box;

double api_now(void) {
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
                              .max_rationale_tokens = 512,
                              .options_one_by_one = 0};
}

lg_guard_params lg_guard_params_default(void) {
    return (lg_guard_params){.model = lg_model_params_default(),
                             .chat_template = NULL,
                             .max_batch = 8,
                             .kv_budget = 0,
                             .features_cache_bytes = 0,
                             .max_queue = 0,
                             .preprocess = lg_preprocessor_options_default()};
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

/* Every option continuation in one decoder pass over the guard's session. */
static lg_status lm_eval_multi(void *ctx, vd_eval *ev, size_t n) {
    mdl_seg segs[64];
    if (n > 64) return LG_E_ARG;
    for (size_t i = 0; i < n; i++)
        segs[i] = (mdl_seg){.pos = (int64_t)ev[i].pos,
                            .ids = ev[i].ids,
                            .n = (int64_t)ev[i].n,
                            .all_logits = ev[i].all};
    lg_status st = mdl_session_eval_multi(ctx, segs, (int)n);
    for (size_t i = 0; i < n && st == LG_OK; i++) ev[i].logits = segs[i].logits;
    return st;
}

static lg_status tok_encode(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    lg_guard *g = ctx;
    pthread_mutex_lock(&g->tok_mu);
    lg_status st = lg_tokenizer_encode(g->tok, text, len, ids, n);
    pthread_mutex_unlock(&g->tok_mu);
    return st;
}

/* Special tokens (<|im_end|>, <image>) never appear inside a rationale. */
static const char *tok_bytes(void *ctx, int32_t id, size_t *len) {
    lg_guard *g = ctx;
    if (lg_tokenizer_is_special(g->tok, id)) return NULL;
    return (const char *)lg_tokenizer_token_bytes(g->tok, id, len);
}

static vd_lm guard_lm(lg_guard *g) {
    return (vd_lm){g->sess,   (size_t)lg_model_n_vocab(g->model),
                   lm_eval,   lm_truncate,
                   lm_errmsg, lm_eval_multi};
}

vd_tok api_guard_tok(lg_guard *g) {
    return (vd_tok){g, (size_t)lg_tokenizer_vocab_size(g->tok), tok_encode, tok_bytes};
}

/* ---- open / free ---- */

lg_status lg_guard_open(const char *model_dir, const lg_guard_params *params, lg_guard **out,
                        lg_error *err) {
    lg_guard_params p = params ? *params : lg_guard_params_default();
    if (p.max_batch < 1 || p.max_batch > 64 || p.kv_budget < 0 || p.features_cache_bytes < 0 ||
        p.max_queue < 0)
        return lg_err_set(err, LG_E_ARG,
                          "guard parameters: max_batch must be 1..64, kv_budget, "
                          "features_cache_bytes and max_queue >= 0");
    lg_guard *g = lg_calloc(1, sizeof *g);
    if (!g) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    pthread_mutex_init(&g->tok_mu, NULL);
    pthread_mutex_init(&g->schema_mu, NULL);
    pthread_mutex_init(&g->eng_mu, NULL);
    lg_status st = lg_model_open(model_dir, &p.model, &g->model, err);
    if (st != LG_OK) goto fail;
    if ((st = lg_tokenizer_open(model_dir, &g->tok, err)) != LG_OK) goto fail;
    if ((st = lg_preprocessor_open_with(model_dir, &p.preprocess, &g->pp, err)) != LG_OK) goto fail;
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
    g->params = p;
    g->params.chat_template = g->chat_template;
    *out = g;
    return LG_OK;
fail:
    lg_guard_free(g);
    return st;
}

void lg_guard_free(lg_guard *g) {
    if (!g) return;
    api_engine_free(g);
    for (int i = 0; i < API_SCHEMA_CACHE; i++)
        if (g->schemas[i]) {
            vd_schema_free(&g->schemas[i]->schema);
            lg_free(g->schemas[i]);
        }
    lg_session_free(g->sess);
    lg_preprocessor_free(g->pp);
    lg_tokenizer_free(g->tok);
    lg_model_free(g->model);
    pthread_mutex_destroy(&g->tok_mu);
    pthread_mutex_destroy(&g->schema_mu);
    pthread_mutex_destroy(&g->eng_mu);
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

/* ---- policies, schemas, prompts ---- */

void api_policy_clear(api_policy *p) {
    if (!p) return;
    if (p->options)
        for (size_t i = 0; i < p->n_options; i++) lg_free(p->options[i]);
    lg_free(p->options);
    lg_free(p->text);
    memset(p, 0, sizeof *p);
}

lg_status api_policy_prepare(const lg_policy *pol, api_policy *out, lg_error *err) {
    memset(out, 0, sizeof *out);
    size_t n = lg_policy_n_categories(pol);
    out->text = lg_strdup(lg_policy_text(pol));
    out->options = lg_calloc(n + 1, sizeof *out->options);
    if (!out->text || !out->options) goto nomem;
    for (size_t i = 0; i <= n; i++) {
        out->options[i] =
            lg_strdup(i < n ? lg_policy_category_option(pol, i) : lg_policy_na_option(pol));
        if (!out->options[i]) goto nomem;
        out->n_options = i + 1;
    }
    lg_policy_sha256(pol, out->sha);
    return LG_OK;
nomem:
    api_policy_clear(out);
    return lg_err_set(err, LG_E_NOMEM, "out of memory");
}

/* The schema depends only on the option strings: key them by their hash. */
static void schema_key(const api_policy *p, char key[65]) {
    lg_buf b;
    lg_buf_init(&b);
    for (size_t i = 0; i < p->n_options; i++) {
        lg_buf_puts(&b, p->options[i]);
        lg_buf_putc(&b, '\n');
    }
    lg_sha256_hex(b.data ? b.data : "", b.len, key);
    lg_buf_free(&b);
}

lg_status api_schema_get(lg_guard *g, const api_policy *p, api_schema **out, lg_error *err) {
    char key[65];
    schema_key(p, key);
    pthread_mutex_lock(&g->schema_mu);
    int free_slot = -1, lru = -1;
    for (int i = 0; i < API_SCHEMA_CACHE; i++) {
        api_schema *s = g->schemas[i];
        if (!s) {
            if (free_slot < 0) free_slot = i;
            continue;
        }
        if (strcmp(s->key, key) == 0) {
            s->refs++;
            s->last_use = ++g->schema_clock;
            pthread_mutex_unlock(&g->schema_mu);
            *out = s;
            return LG_OK;
        }
        if (s->refs == 0 && (lru < 0 || s->last_use < g->schemas[lru]->last_use)) lru = i;
    }
    /* Built under the lock: a few milliseconds, once per option list. */
    api_schema *s = lg_calloc(1, sizeof *s);
    lg_status st = s ? LG_OK : lg_err_set(err, LG_E_NOMEM, "out of memory");
    if (st == LG_OK) {
        vd_tok tok = api_guard_tok(g);
        st = vd_schema_build(&s->schema, (const char *const *)p->options, (int)p->n_options, &tok,
                             (size_t)lg_model_n_vocab(g->model), err);
    }
    if (st != LG_OK) {
        lg_free(s);
        pthread_mutex_unlock(&g->schema_mu);
        return st;
    }
    memcpy(s->key, key, 65);
    s->refs = 1;
    s->last_use = ++g->schema_clock;
    int slot = free_slot >= 0 ? free_slot : lru;
    if (slot >= 0) {
        if (g->schemas[slot]) {
            vd_schema_free(&g->schemas[slot]->schema);
            lg_free(g->schemas[slot]);
        }
        g->schemas[slot] = s;
    } else {
        s->refs = -1000000; /* every slot in use: this one is not cached, put frees it */
    }
    pthread_mutex_unlock(&g->schema_mu);
    *out = s;
    return LG_OK;
}

void api_schema_put(lg_guard *g, api_schema *s) {
    if (!s) return;
    pthread_mutex_lock(&g->schema_mu);
    bool uncached = s->refs < 0;
    s->refs--;
    pthread_mutex_unlock(&g->schema_mu);
    if (uncached) {
        vd_schema_free(&s->schema);
        lg_free(s);
    }
}

lg_status api_build_prompt(lg_guard *g, const char *text, int64_t image_tokens, int32_t **ids,
                           size_t *n, lg_error *err) {
    char *prompt = NULL;
    size_t len = 0;
    /* image_first 0: the image goes where the family was trained with it — after the policy
     * for Qwen2-VL's template (QwenGuard, fixtures README section 6), first in every LLaVA one
     * (their templates ignore the flag). */
    lg_status st = lg_chat_render(g->chat_template, text, strlen(text), 1, image_tokens, 0, &prompt,
                                  &len, err);
    if (st != LG_OK) return st;
    pthread_mutex_lock(&g->tok_mu);
    st = lg_tokenizer_encode_ex(g->tok, prompt, len, LG_ENCODE_ADD_SPECIAL, ids, n);
    if (st != LG_OK) lg_err_set(err, st, "tokenizing the prompt: %s", lg_tokenizer_errmsg(g->tok));
    pthread_mutex_unlock(&g->tok_mu);
    lg_free(prompt);
    return st;
}

int64_t api_answer_room(const lg_assess_params *ap) {
    return (int64_t)ap->max_rationale_tokens + 64;
}

vd_params api_vd_params(const lg_assess_params *ap) {
    return (vd_params){.rationale = (vd_rationale)ap->rationale,
                       .temperature = ap->temperature,
                       .top_k = ap->top_k,
                       .top_p = ap->top_p,
                       .seed = ap->seed,
                       .max_rationale_tokens = ap->max_rationale_tokens,
                       .sequential_options = ap->options_one_by_one != 0};
}

lg_verdict *api_verdict_make(lg_guard *g, vd_result *res, const api_policy *p) {
    verdict_box *box = lg_calloc(1, sizeof *box);
    if (!box) return NULL;
    box->options = lg_calloc(p->n_options, sizeof *box->options);
    if (!box->options) {
        lg_free(box);
        return NULL;
    }
    box->n_options = p->n_options;
    for (size_t i = 0; i < p->n_options; i++)
        if (!(box->options[i] = lg_strdup(p->options[i]))) {
            lg_verdict_free(&box->pub);
            return NULL;
        }
    box->res = *res;
    memset(res, 0, sizeof *res);
    lg_verdict *v = &box->pub;
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
    memcpy(v->policy_sha256, p->sha, 65);
    v->model_type = lg_model_type(g->model);
    v->answer_tokens = r->n_forced + r->n_sampled;
    return v;
}

/* ---- assess ---- */

static lg_status session_fail(lg_guard *g, lg_status st, const char *what) {
    return lg_err_set(&g->err, st, "%s: %s", what, lg_session_errmsg(g->sess));
}

lg_status api_guard_assess_ex(lg_guard *g, const lg_image *img, const lg_policy *policy,
                              const lg_assess_params *params, bool sequential_options,
                              lg_verdict **out) {
    lg_assess_params ap = params ? *params : lg_assess_params_default();
    double t0 = api_now();
    lg_pixels *px = NULL;
    float *features = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    api_policy pol = {0};
    api_schema *schema = NULL;
    vd_result res = {0};
    lg_status st = LG_OK;
    lg_err_clear(&g->err);

    if ((st = lg_preprocess(g->pp, img, &px, &g->err)) != LG_OK) goto done;
    double t1 = api_now();
    int64_t n_rows = 0;
    if ((st = lg_session_encode_image(g->sess, px, &features, &n_rows)) != LG_OK) {
        session_fail(g, st, "vision");
        goto done;
    }
    double t2 = api_now();
    if ((st = api_policy_prepare(policy, &pol, &g->err)) != LG_OK) goto done;
    if ((st = api_schema_get(g, &pol, &schema, &g->err)) != LG_OK) goto done;
    if ((st = api_build_prompt(g, pol.text, n_rows, &ids, &n_ids, &g->err)) != LG_OK) goto done;
    if ((int64_t)n_ids + api_answer_room(&ap) > lg_model_context_limit(g->model)) {
        st = lg_err_set(&g->err, LG_E_LIMIT,
                        "the prompt (%zu tokens) and answer do not fit the context of %lld tokens",
                        n_ids, (long long)lg_model_context_limit(g->model));
        goto done;
    }
    if ((st = lg_session_truncate(g->sess, 0)) != LG_OK) goto done;
    const float *logits = NULL;
    st = lg_session_eval(g->sess, ids, n_ids, features, n_rows, 0, &logits);
    if (st != LG_OK) {
        session_fail(g, st, "prefill");
        goto done;
    }
    double t3 = api_now();
    vd_params vp = api_vd_params(&ap);
    vp.sequential_options = sequential_options || ap.options_one_by_one;
    vd_lm lm = guard_lm(g);
    vd_tok tok = api_guard_tok(g);
    if ((st = vd_decode(&schema->schema, &lm, &tok, ids, n_ids, &vp, &res, &g->err)) != LG_OK)
        goto done;
    double t4 = api_now();
    lg_verdict *v = api_verdict_make(g, &res, &pol);
    if (!v) {
        st = lg_err_set(&g->err, LG_E_NOMEM, "out of memory");
        goto done;
    }
    v->prompt_tokens = (int64_t)n_ids;
    v->image_tokens = n_rows;
    v->timings.preprocess = t1 - t0;
    v->timings.vision = t2 - t1;
    v->timings.prefill = t3 - t2;
    v->timings.verdict = t4 - t3;
    v->timings.total = t4 - t0;
    *out = v;
done:
    vd_result_clear(&res);
    api_schema_put(g, schema);
    api_policy_clear(&pol);
    lg_pixels_free(px);
    lg_free(features);
    lg_free(ids);
    return st;
}

lg_status lg_guard_assess(lg_guard *g, const lg_image *img, const lg_policy *policy,
                          const lg_assess_params *params, lg_verdict **out) {
    return api_guard_assess_ex(g, img, policy, params, false, out);
}

void lg_verdict_free(lg_verdict *v) {
    if (!v) return;
    verdict_box *box = (verdict_box *)v; /* pub is the first member */
    vd_result_clear(&box->res);
    if (box->options)
        for (size_t i = 0; i < box->n_options; i++) lg_free(box->options[i]);
    lg_free(box->options);
    lg_free(box);
}
