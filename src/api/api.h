/*
 * api.h — internal interface of the api layer: the guard (guard.c) and its batch engine
 * (engine.c) share the guard's parts, the prepared form of a policy, the schema cache, prompt
 * building and the construction of a verdict.
 */
#ifndef LG_API_H
#define LG_API_H

#include "core/core.h"
#include "decode/decode.h"
#include "model/model.h"

#include <pthread.h>
#include <stdbool.h>

/* A policy as a verdict needs it, copied out of the lg_policy (so a request outlives it). */
typedef struct api_policy {
    char *text;     /* the stripped policy text */
    char sha[65];   /* its SHA-256 */
    char **options; /* category options, "NA: None applying" last */
    size_t n_options;
} api_policy;

lg_status api_policy_prepare(const lg_policy *pol, api_policy *out, lg_error *err);
void api_policy_clear(api_policy *p);

/* One compiled verdict schema, shared by every request under the same policy options. */
typedef struct api_schema {
    vd_schema schema;
    char key[65]; /* SHA-256 of the option list */
    int refs;
    uint64_t last_use;
} api_schema;

#define API_SCHEMA_CACHE 32

typedef struct api_engine api_engine;

struct lg_guard {
    lg_model *model;
    lg_tokenizer *tok;
    lg_preprocessor *pp;
    lg_session *sess;          /* lg_guard_assess's session */
    const char *chat_template; /* static string */
    lg_guard_params params;
    pthread_mutex_t tok_mu; /* the tokenizer handle is used by one thread at a time */
    pthread_mutex_t schema_mu;
    api_schema *schemas[API_SCHEMA_CACHE];
    uint64_t schema_clock;
    api_engine *eng; /* started on the first submit */
    pthread_mutex_t eng_mu;
    lg_error err;
};

/* A schema for these options (built on first use, then shared): release with api_schema_put. */
lg_status api_schema_get(lg_guard *g, const api_policy *p, api_schema **out, lg_error *err);
void api_schema_put(lg_guard *g, api_schema *s);

/* The verdict decoder's view of the guard's tokenizer (encode under tok_mu). */
vd_tok api_guard_tok(lg_guard *g);

/* Renders and tokenizes the prompt: chat template around the policy text, image tokens
 * expanded. */
lg_status api_build_prompt(lg_guard *g, const char *policy_text, int64_t image_tokens,
                           int32_t **ids, size_t *n, lg_error *err);

/* Tokens a verdict may add after its prompt (the answer with its rationale). */
int64_t api_answer_room(const lg_assess_params *ap);

vd_params api_vd_params(const lg_assess_params *ap);

/* Makes a verdict from a decoded result (taken over: *res is emptied) and the policy's options
 * (copied). Timings and token counts are filled by the caller. NULL when out of memory. */
lg_verdict *api_verdict_make(lg_guard *g, vd_result *res, const api_policy *p);

double api_now(void);

/* The batch engine's teardown (engine.c): cancels what is queued, lets what runs stop, joins. */
void api_engine_free(lg_guard *g);

/* lg_guard_assess with the category options scored one model call each (the way before the
 * one-pass scoring), for tests and benchmarks. */
lg_status api_guard_assess_ex(lg_guard *g, const lg_image *img, const lg_policy *policy,
                              const lg_assess_params *params, bool sequential_options,
                              lg_verdict **out);

#endif
