/*
 * verdict.c — decodes one LlavaGuard verdict under the schema of decode.h.
 *
 * Forced text is always fed as the canonical tokenization of the whole answer so far: the
 * decoder tokenizes prompt-tail + answer text afresh, keeps the longest common prefix with what
 * the model context holds, and feeds the rest in one batch — so the model sees the tokens it saw
 * in training even where a forced piece merges with the token before it (`": "` + `Safe`).
 *
 * An option (a rating or a category) is scored by the full probability of its token sequence:
 * each option's text plus the closing quote is tokenized after the answer so far, the tokens
 * shared by all options are fed once, and the remaining tokens of each option are scored with
 * the unconstrained log-softmax of the model. The option probabilities are those scores
 * normalised over the options (so P(Unsafe) = p(Unsafe) / (p(Safe) + p(Unsafe))).
 */
#include "decode/decode.h"
#include "model/sample.h" /* the sampler, with memory kept across the rationale */

#include <math.h>
#include <string.h>

#define SKELETON_OPEN "{\n    \"rating\": \""
#define SKELETON_CATEGORY "\",\n    \"category\": \""
#define SKELETON_RATIONALE "\",\n    \"rationale\": \""
#define SKELETON_CLOSE "\"\n}"

static const char *const rating_options[2] = {"Safe", "Unsafe"};

typedef struct dstate {
    const vd_lm *lm;
    const vd_tok *tok;
    const vd_params *params;
    lg_error *err;
    int32_t *kv; /* ids the model context holds: prompt, then answer tokens */
    size_t n_kv, cap_kv;
    size_t n_prompt;
    lg_buf text;         /* the answer so far */
    const float *logits; /* next-token logits after kv (when have_logits) */
    bool have_logits;
    float *work;        /* n_vocab scratch for sampling */
    smp_work smp;       /* the sampler's memory, kept across the rationale's tokens */
    uint64_t rng;       /* option choices */
    uint64_t token_rng; /* rationale tokens (lg_sample's state) */
    int64_t n_forced, n_sampled;
    size_t emitted; /* answer bytes handed to params->on_text so far */
} dstate;

/* Hands the answer text decided since the last call, up to `upto`, to on_text. */
static void emit_text(dstate *d, size_t upto) {
    if (!d->params->on_text || d->text.failed || upto <= d->emitted) return;
    d->params->on_text(d->params->on_text_user, d->text.data + d->emitted, upto - d->emitted);
    d->emitted = upto;
}

/* ---- small helpers ---- */

static double rng_uniform(uint64_t *s) {
    /* splitmix64: small, seeded, reproducible across platforms */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

static double log_softmax_at(const float *row, size_t n, int32_t id) {
    float mx = row[0];
    for (size_t i = 1; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp((double)row[i] - mx);
    return (double)row[id] - mx - log(sum);
}

static lg_status lm_fail(dstate *d, lg_status st) {
    const char *m = d->lm->errmsg ? d->lm->errmsg(d->lm->ctx) : NULL;
    return lg_err_set(d->err, st, "model: %s", m && *m ? m : lg_status_str(st));
}

static lg_status kv_reserve(dstate *d, size_t n) {
    if (n <= d->cap_kv) return LG_OK;
    size_t cap = d->cap_kv ? d->cap_kv : 256;
    while (cap < n) cap *= 2;
    int32_t *kv = lg_realloc(d->kv, cap * sizeof *kv);
    if (!kv) return lg_err_set(d->err, LG_E_NOMEM, "out of memory");
    d->kv = kv;
    d->cap_kv = cap;
    return LG_OK;
}

static lg_status lm_truncate(dstate *d, size_t n) {
    if (n == d->n_kv) return LG_OK;
    lg_status st = d->lm->truncate(d->lm->ctx, n);
    if (st != LG_OK) return lm_fail(d, st);
    d->n_kv = n;
    d->have_logits = false;
    return LG_OK;
}

/* Appends ids to the context; logits of the last (or every) position. */
static lg_status lm_feed(dstate *d, const int32_t *ids, size_t n, bool all, const float **rows) {
    lg_status st = kv_reserve(d, d->n_kv + n);
    if (st != LG_OK) return st;
    const float *logits = NULL;
    st = d->lm->eval(d->lm->ctx, ids, n, all, &logits);
    if (st != LG_OK) return lm_fail(d, st);
    memmove(d->kv + d->n_kv, ids, n * sizeof *ids);
    d->n_kv += n;
    d->logits = all ? logits + (n - 1) * d->lm->n_vocab : logits;
    d->have_logits = true;
    if (rows) *rows = logits;
    return LG_OK;
}

/* ids = prompt + canonical tokenization of `text` (lg_free). */
static lg_status encode_answer(dstate *d, const char *text, size_t len, int32_t **out,
                               size_t *n_out) {
    int32_t *ans = NULL;
    size_t n_ans = 0;
    lg_status st = d->tok->encode(d->tok->ctx, text, len, &ans, &n_ans);
    if (st != LG_OK) return lg_err_set(d->err, st, "tokenizer failed on the answer text");
    int32_t *ids = lg_malloc((d->n_prompt + n_ans) * sizeof *ids);
    if (!ids) {
        lg_free(ans);
        return lg_err_set(d->err, LG_E_NOMEM, "out of memory");
    }
    memcpy(ids, d->kv, d->n_prompt * sizeof *ids);
    memcpy(ids + d->n_prompt, ans, n_ans * sizeof *ids);
    lg_free(ans);
    *out = ids;
    *n_out = d->n_prompt + n_ans;
    return LG_OK;
}

/* Makes the context hold prompt + canonical tokens of the answer text, with next-token logits. */
static lg_status sync_text(dstate *d) {
    int32_t *ids = NULL;
    size_t n = 0;
    lg_status st = encode_answer(d, d->text.data, d->text.len, &ids, &n);
    if (st != LG_OK) return st;
    size_t keep = common_prefix(d->kv, d->n_kv, ids, n);
    if (keep == n && d->n_kv == n && d->have_logits) goto done;
    if (keep >= n) keep = n - 1; /* re-feed the last token to get its logits */
    if ((st = lm_truncate(d, keep)) != LG_OK) goto done;
    d->n_forced += (int64_t)(n - keep);
    st = lm_feed(d, ids + keep, n - keep, false, NULL);
done:
    lg_free(ids);
    return st;
}

/* ---- options: rating and category ---- */

/* The first token of option i that is scored (the ones before are shared by every option and
 * scored by none), and the position its feed starts from given the ids the context holds. */
static size_t option_start(size_t shared, size_t len) {
    /* every option scores at least one token, and the prompt is never re-fed */
    size_t start = shared < len ? shared : len - 1;
    return start < 1 ? 1 : start;
}

static double option_logp(const dstate *d, const int32_t *ids, size_t len, size_t start,
                          size_t keep, const float *rows) {
    double lp = 0;
    for (size_t j = start; j < len; j++)
        lp += log_softmax_at(rows + (j - 1 - keep) * d->lm->n_vocab, d->lm->n_vocab, ids[j]);
    return lp;
}

/* One model call per option: cut back to what it shares with the context, feed the rest. */
static lg_status score_sequential(dstate *d, int32_t **ids, const size_t *len, size_t shared, int n,
                                  double *logp) {
    for (int i = 0; i < n; i++) {
        size_t start = option_start(shared, len[i]);
        size_t keep = common_prefix(d->kv, d->n_kv, ids[i], start - 1);
        lg_status st = lm_truncate(d, keep);
        if (st != LG_OK) return st;
        const float *rows = NULL;
        if ((st = lm_feed(d, ids[i] + keep, len[i] - keep, true, &rows)) != LG_OK) return st;
        d->n_forced += (int64_t)(len[i] - keep);
        logp[i] = option_logp(d, ids[i], len[i], start, keep, rows);
    }
    return LG_OK;
}

/* The same continuations as score_sequential in one model pass (vd_lm.eval_multi): option i
 * starts where the context would have stood after option i-1, so every number is the same. */
static lg_status score_all(dstate *d, int32_t **ids, const size_t *len, size_t shared, int n,
                           double *logp) {
    if (!d->lm->eval_multi || d->params->sequential_options)
        return score_sequential(d, ids, len, shared, n, logp);
    vd_eval ev[64];
    size_t keep[64];
    if (n > 64) return lg_err_set(d->err, LG_E_ARG, "more than 64 options");
    for (int i = 0; i < n; i++) {
        size_t start = option_start(shared, len[i]);
        keep[i] = i == 0 ? common_prefix(d->kv, d->n_kv, ids[0], start - 1)
                         : common_prefix(ids[i - 1], len[i - 1], ids[i], start - 1);
        ev[i] = (vd_eval){keep[i], ids[i] + keep[i], len[i] - keep[i], true, NULL};
    }
    lg_status st = kv_reserve(d, len[n - 1] > d->n_kv ? len[n - 1] : d->n_kv);
    if (st != LG_OK) return st;
    if ((st = d->lm->eval_multi(d->lm->ctx, ev, (size_t)n)) != LG_OK) return lm_fail(d, st);
    for (int i = 0; i < n; i++) {
        d->n_forced += (int64_t)(len[i] - keep[i]);
        logp[i] =
            option_logp(d, ids[i], len[i], option_start(shared, len[i]), keep[i], ev[i].logits);
    }
    /* the context now holds the last option's tokens, as after score_sequential */
    if ((st = kv_reserve(d, len[n - 1])) != LG_OK) return st;
    memcpy(d->kv, ids[n - 1], len[n - 1] * sizeof *d->kv);
    d->n_kv = len[n - 1];
    d->logits = ev[n - 1].logits + (len[n - 1] - keep[n - 1] - 1) * d->lm->n_vocab;
    d->have_logits = true;
    return LG_OK;
}

/* Scores every option by the full probability of its tokens after the answer so far; writes
 * normalised probabilities to probs[n]. Leaves the context holding a prefix of the answer. */
static lg_status score_options(dstate *d, const char *const *options, int n, double *probs) {
    lg_status st = LG_OK;
    int32_t **ids = lg_calloc((size_t)n, sizeof *ids);
    size_t *len = lg_calloc((size_t)n, sizeof *len);
    double *logp = lg_calloc((size_t)n, sizeof *logp);
    lg_buf t;
    lg_buf_init(&t);
    if (!ids || !len || !logp) {
        st = lg_err_set(d->err, LG_E_NOMEM, "out of memory");
        goto done;
    }
    size_t shared = SIZE_MAX;
    for (int i = 0; i < n; i++) {
        t.len = 0;
        lg_buf_append(&t, d->text.data, d->text.len);
        lg_buf_puts(&t, options[i]);
        lg_buf_putc(&t, '"');
        if (t.failed) {
            st = lg_err_set(d->err, LG_E_NOMEM, "out of memory");
            goto done;
        }
        if ((st = encode_answer(d, t.data, t.len, &ids[i], &len[i])) != LG_OK) goto done;
        size_t c = i == 0 ? len[0] : common_prefix(ids[0], len[0], ids[i], len[i]);
        shared = c < shared ? c : shared;
    }
    if ((st = score_all(d, ids, len, shared, n, logp)) != LG_OK) goto done;
    double mx = logp[0];
    for (int i = 1; i < n; i++) mx = logp[i] > mx ? logp[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (probs[i] = exp(logp[i] - mx));
    for (int i = 0; i < n; i++) probs[i] /= sum;
done:
    if (ids)
        for (int i = 0; i < n; i++) lg_free(ids[i]);
    lg_free(ids);
    lg_free(len);
    lg_free(logp);
    lg_buf_free(&t);
    return st;
}

/* Greedy: the most probable option; sampling: p^(1/T), renormalised. */
static int choose_option(dstate *d, const double *probs, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (probs[i] > probs[best]) best = i;
    float temp = d->params->temperature;
    if (temp <= 0) return best;
    double w[64], sum = 0;
    int m = n < 64 ? n : 64;
    for (int i = 0; i < m; i++) sum += (w[i] = pow(probs[i], 1.0 / temp));
    double u = rng_uniform(&d->rng) * sum;
    for (int i = 0; i < m; i++) {
        if (u < w[i]) return i;
        u -= w[i];
    }
    return best;
}

/* ---- rationale: one token at a time under the JSON-string automaton ---- */

/* Picks the next token among those the automaton allows from `state`; -1 when none. Greedy is
 * the best allowed logit; sampling masks the rest to -inf and uses the model layer's sampler
 * (temperature, top-k, top-p in transformers' order). */
static int32_t pick_token(dstate *d, const fsm_table *fsm, int state) {
    size_t nv = d->lm->n_vocab;
    const int8_t *next = fsm->next + (size_t)state * fsm->n_vocab;
    const float *lg = d->logits;
    int32_t best = fsm_best_allowed(fsm, state, lg, nv);
    const vd_params *p = d->params;
    if (best < 0 || p->temperature <= 0) return best;
    for (size_t id = 0; id < nv; id++)
        d->work[id] = id < fsm->n_vocab && next[id] != FSM_REJECT ? lg[id] : -INFINITY;
    lg_sampler_params sp = lg_sampler_params_default();
    sp.greedy = 0;
    sp.temperature = p->temperature;
    sp.top_k = p->top_k > 0 ? p->top_k : 0;
    sp.top_p = p->top_p > 0 && p->top_p < 1 ? p->top_p : 1.0f;
    int32_t id = best;
    if (smp_sample(d->work, (int64_t)nv, &sp, &d->token_rng, &d->smp, &id, NULL) != LG_OK)
        return best;
    return id;
}

/* Generates the rationale; on return the answer text ends with the closing skeleton. Sets
 * *content_start / *content_end to the string content within the text. */
static lg_status write_rationale(dstate *d, const fsm_table *fsm, size_t *content_start,
                                 size_t *content_end, bool *truncated) {
    lg_buf_puts(&d->text, SKELETON_RATIONALE);
    if (d->text.failed) return lg_err_set(d->err, LG_E_NOMEM, "out of memory");
    lg_status st = sync_text(d);
    if (st != LG_OK) return st;
    *content_start = d->text.len;
    int state = FSM_STR;
    size_t state_start = d->text.len; /* where an unfinished escape began */
    *truncated = true;
    for (int step = 0; step < d->params->max_rationale_tokens; step++) {
        int32_t id = pick_token(d, fsm, state);
        if (id < 0) break;
        size_t len = 0;
        const char *bytes = d->tok->token_bytes(d->tok->ctx, id, &len);
        d->n_sampled++;
        /* find where the string closes inside this token, if it does */
        int s = state;
        size_t i = 0;
        for (; i < len && s != FSM_CLOSED; i++) {
            int prev = s;
            s = fsm_run(s, bytes + i, 1);
            if (prev == FSM_STR && s != FSM_STR) state_start = d->text.len + i;
        }
        lg_buf_append(&d->text, bytes, len);
        if (s == FSM_CLOSED) {
            *content_end = d->text.len - len + i - 1;
            *truncated = false;
            break;
        }
        state = s;
        if (state == FSM_STR) state_start = d->text.len;
        emit_text(d, state == FSM_STR ? d->text.len : state_start);
        if ((st = lm_feed(d, &id, 1, false, NULL)) != LG_OK) return st;
    }
    if (*truncated) {
        /* out of budget: drop an unfinished escape, then close the string ourselves */
        if (state != FSM_STR) d->text.len = state_start;
        *content_end = d->text.len;
        lg_buf_putc(&d->text, '"');
    }
    /* complete the closing skeleton after the quote */
    size_t after = d->text.len - *content_end - 1;
    lg_buf_puts(&d->text, SKELETON_CLOSE + 1 + after);
    return d->text.failed ? lg_err_set(d->err, LG_E_NOMEM, "out of memory") : LG_OK;
}

/* ---- the whole verdict ---- */

lg_status vd_decode(const vd_schema *schema, const vd_lm *lm, const vd_tok *tok,
                    const int32_t *prompt_ids, size_t n_prompt, const vd_params *params,
                    vd_result *out, lg_error *err) {
    dstate d = {.lm = lm,
                .tok = tok,
                .params = params,
                .err = err,
                .rng = params->seed,
                .token_rng = params->seed};
    lg_buf_init(&d.text);
    vd_result r = {0};
    lg_status st = kv_reserve(&d, n_prompt + 64);
    if (st != LG_OK) goto fail;
    if (n_prompt == 0) {
        st = lg_err_set(err, LG_E_ARG, "empty prompt");
        goto fail;
    }
    memcpy(d.kv, prompt_ids, n_prompt * sizeof *prompt_ids);
    d.n_kv = d.n_prompt = n_prompt;
    d.work = lg_malloc(lm->n_vocab * sizeof *d.work);
    r.category_probs = lg_calloc((size_t)schema->n_categories, sizeof *r.category_probs);
    if (!d.work || !r.category_probs) {
        st = lg_err_set(err, LG_E_NOMEM, "out of memory");
        goto fail;
    }

    /* rating */
    lg_buf_puts(&d.text, SKELETON_OPEN);
    double rp[2] = {0, 0};
    if ((st = score_options(&d, rating_options, 2, rp)) != LG_OK) goto fail;
    int rating = choose_option(&d, rp, 2);
    r.unsafe = rating == 1;
    r.p_unsafe = rp[1];
    lg_buf_puts(&d.text, rating_options[rating]);
    emit_text(&d, d.text.len);
    lg_buf_puts(&d.text, SKELETON_CATEGORY);

    /* category */
    if ((st = score_options(&d, (const char *const *)schema->categories, schema->n_categories,
                            r.category_probs)) != LG_OK)
        goto fail;
    r.category = choose_option(&d, r.category_probs, schema->n_categories);
    lg_buf_puts(&d.text, schema->categories[r.category]);
    emit_text(&d, d.text.len);

    /* rationale */
    bool want = params->rationale == VD_RATIONALE_ALWAYS ||
                (params->rationale == VD_RATIONALE_UNSAFE && r.unsafe);
    if (want) {
        size_t a = 0, b = 0;
        if ((st = write_rationale(&d, &schema->fsm, &a, &b, &r.rationale_truncated)) != LG_OK)
            goto fail;
        r.rationale = fsm_unescape(d.text.data + a, b - a, NULL);
        if (!r.rationale) {
            st = lg_err_set(err, LG_E_INTERNAL, "rationale is not valid JSON string content");
            goto fail;
        }
    } else {
        lg_buf_puts(&d.text, SKELETON_CLOSE);
    }
    if (d.text.failed) {
        st = lg_err_set(err, LG_E_NOMEM, "out of memory");
        goto fail;
    }
    r.n_answer_ids = d.n_kv - n_prompt;
    r.answer_ids = lg_malloc((r.n_answer_ids + 1) * sizeof *r.answer_ids);
    if (!r.answer_ids) {
        st = lg_err_set(err, LG_E_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(r.answer_ids, d.kv + n_prompt, r.n_answer_ids * sizeof *r.answer_ids);
    r.n_forced = d.n_forced;
    r.n_sampled = d.n_sampled;
    emit_text(&d, d.text.len);
    r.answer = lg_buf_detach(&d.text, NULL);
    lg_free(d.kv);
    lg_free(d.work);
    smp_work_free(&d.smp);
    *out = r;
    return LG_OK;
fail:
    vd_result_clear(&r);
    lg_buf_free(&d.text);
    lg_free(d.kv);
    lg_free(d.work);
    smp_work_free(&d.smp);
    return st;
}

void vd_result_clear(vd_result *r) {
    if (!r) return;
    lg_free(r->category_probs);
    lg_free(r->rationale);
    lg_free(r->answer);
    lg_free(r->answer_ids);
    memset(r, 0, sizeof *r);
}

/* ---- schema ---- */

lg_status vd_schema_build(vd_schema *s, const char *const *categories, int n_categories,
                          const vd_tok *tok, size_t n_vocab, lg_error *err) {
    memset(s, 0, sizeof *s);
    if (n_categories <= 0 || n_categories > 64)
        return lg_err_set(err, LG_E_ARG, "a policy needs 1..64 category options, got %d",
                          n_categories);
    s->categories = lg_calloc((size_t)n_categories, sizeof *s->categories);
    if (!s->categories) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    s->n_categories = n_categories;
    for (int i = 0; i < n_categories; i++) {
        if (strchr(categories[i], '"') || strchr(categories[i], '\\')) {
            vd_schema_free(s);
            return lg_err_set(err, LG_E_ARG, "category option %s contains a quote or backslash",
                              categories[i]);
        }
        if (!(s->categories[i] = lg_strdup(categories[i]))) {
            vd_schema_free(s);
            return lg_err_set(err, LG_E_NOMEM, "out of memory");
        }
    }
    lg_status st = fsm_table_build(&s->fsm, tok, n_vocab, err);
    if (st != LG_OK) vd_schema_free(s);
    return st;
}

void vd_schema_free(vd_schema *s) {
    if (!s) return;
    if (s->categories)
        for (int i = 0; i < s->n_categories; i++) lg_free(s->categories[i]);
    lg_free(s->categories);
    fsm_table_free(&s->fsm);
    memset(s, 0, sizeof *s);
}
