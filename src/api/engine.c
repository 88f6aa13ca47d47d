/*
 * engine.c — the guard's batch engine: many requests in flight on one model, their decoder
 * steps batched into one pass.
 *
 * Threads: a fixed set of max_batch workers, one per sequence slot, each carrying one request
 * at a time through its whole life (decode the image, preprocess, build the prompts, wait for
 * KV room, vision, prefill, the verdict decoder), and one scheduler thread that does all the
 * model computing. A worker's model calls (its "evals") do not compute: they post a request and
 * sleep. When every worker that is in its model phase has posted, the scheduler runs one step:
 * every light request (decode steps, forced skeleton, option scoring) plus at most one heavy one
 * (a 512-token prefill chunk or one vision crop, the oldest first), all the decoder segments as
 * one mdl_pass_run — one product per weight over every row — and wakes the workers it served.
 * So the verdict decoder runs unchanged on each worker, sequences cost one weight pass per step
 * together instead of one each, and a long prefill never holds the others' steps for more than a
 * chunk. Every segment is computed exactly as lg_session_eval would (same 512-token chunking,
 * same arithmetic class per segment: pass.c), so batching never changes an answer.
 *
 * Memory: each slot's session keeps its KV cache; a request enters the model phase only when
 * its worst-case KV fits the budget next to the others (first come, first served), and one that
 * can never fit fails at once with LG_E_LIMIT. The optional feature cache keeps packed image
 * features by the SHA-256 of the decoded RGB (the guard fixes the model and processor).
 */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ENG_CHUNK 512      /* prefill chunk: the same as lg_session_eval's */
#define ENG_LIGHT_ROWS 128 /* a request with more rows than this is heavy */
#define ENG_MAX_SEGS 64    /* segments one worker request may carry (option continuations) */
#define ENG_DEFAULT_QUEUE 1024

/* ---- requests and results ---- */

typedef enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

typedef struct job {
    lg_ticket ticket;
    job_state state;
    bool cancelled;
    bool callback; /* on_done set: delivered there, never collected */
    bool collected;
    bool discard; /* cancelled while running, without callback: freed when done */
    int waiters;  /* threads in lg_guard_wait_for on it */
    bool held;    /* a worker has it */
    /* the request, copied */
    const lg_image *image;
    uint8_t *bytes;
    size_t n_bytes;
    char *path;
    char *name;
    lg_image_options iopt;
    api_policy *pols;
    size_t n_pols;
    lg_assess_params params;
    void (*on_done)(void *, lg_result *);
    void (*on_text)(void *, size_t, const char *, size_t);
    void *user;
    double t_submit, t_admit;
    lg_result *result;
    struct result_box *pre;  /* allocated at submit, so even a request that runs out of memory
                                later has a result for on_done */
    struct job *next_queued; /* the FIFO of waiting jobs */
    struct job *next_all;    /* every job not yet collected */
} job;

/* lg_result and the storage it points into. */
typedef struct result_box {
    lg_result pub;
    char *error;
    char *name;
    lg_verdict **verdicts;
    lg_status *statuses;
    char **errors;
} result_box;

/* ---- the feature cache ---- */

typedef struct feat_entry {
    char key[65 + 24];
    float *rows;
    int64_t n_rows;
    int64_t bytes;
    struct feat_entry *prev, *next; /* LRU list, most recent first */
} feat_entry;

/* ---- workers ---- */

typedef enum post_kind { POST_SEGS, POST_VISION } post_kind;

typedef struct worker {
    struct api_engine *e;
    int index;
    pthread_t thread;
    bool started;
    lg_session *sess;
    pthread_cond_t cv;
    bool active;  /* in its model phase: the scheduler waits for its post */
    bool waiting; /* posted, not yet served */
    uint64_t admit_seq;
    job *job;
    /* the posted request */
    post_kind kind;
    mdl_seg segs[ENG_MAX_SEGS];
    int n_segs;
    int64_t rows;
    mdl_encoding enc;
    lg_status status;
    /* logits of evals spanning several chunks */
    float *logits;
    size_t logits_cap;
    int64_t kv_need; /* bytes admitted */
} worker;

struct api_engine {
    lg_guard *g;
    kern_ctx *kc;
    mdl_pass pass;
    int n_workers;
    worker *workers;
    pthread_t sched;
    bool started_sched;
    mdl_seg *step_segs; /* the segments of one step, gathered from the workers */
    pthread_mutex_t mu;
    pthread_cond_t sched_cv; /* the scheduler: every active worker may have posted */
    pthread_cond_t queue_cv; /* workers: a job was queued; submitters: room in the queue */
    pthread_cond_t done_cv;  /* waiters: a job finished */
    pthread_cond_t admit_cv; /* workers waiting for KV room */
    bool stop;
    int n_active, n_waiting;
    job *queue_head, *queue_tail;
    int64_t n_queued;
    int64_t max_queue;
    job *all;
    lg_ticket next_ticket;
    uint64_t admit_next, admit_serving; /* FIFO admission tickets */
    int64_t kv_budget, kv_used, kv_per_token;
    /* feature cache (under mu) */
    int64_t cache_budget, cache_bytes;
    feat_entry *cache_head, *cache_tail;
    lg_guard_stats stats;
};

/* ---- small helpers ---- */

static char *dup_or_null(const char *s) {
    return s ? lg_strdup(s) : NULL;
}

static void job_free(job *j) {
    if (!j) return;
    lg_free(j->bytes);
    lg_free(j->path);
    lg_free(j->name);
    for (size_t i = 0; i < j->n_pols; i++) api_policy_clear(&j->pols[i]);
    lg_free(j->pols);
    lg_result_free(j->result);
    if (j->pre) lg_result_free((lg_result *)j->pre);
    lg_free(j);
}

void lg_result_free(lg_result *r) {
    if (!r) return;
    result_box *b = (result_box *)r;
    for (size_t i = 0; i < r->n_verdicts; i++) {
        if (b->verdicts) lg_verdict_free(b->verdicts[i]);
        if (b->errors) lg_free(b->errors[i]);
    }
    lg_free(b->verdicts);
    lg_free(b->statuses);
    lg_free(b->errors);
    lg_free(b->error);
    lg_free(b->name);
    lg_free(b);
}

/* A result with n policy slots, every one failed with `st` until filled. NULL: no memory. */
static result_box *result_new(job *j, size_t n) {
    result_box *b = lg_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->verdicts = lg_calloc(n ? n : 1, sizeof *b->verdicts);
    b->statuses = lg_calloc(n ? n : 1, sizeof *b->statuses);
    b->errors = lg_calloc(n ? n : 1, sizeof *b->errors);
    b->name = lg_strdup(j->name ? j->name : "image");
    if (!b->verdicts || !b->statuses || !b->errors || !b->name) {
        lg_result_free(&b->pub);
        return NULL;
    }
    b->pub.n_verdicts = n;
    b->pub.ticket = j->ticket;
    b->pub.user = j->user;
    b->pub.name = b->name;
    b->pub.verdicts = b->verdicts;
    b->pub.statuses = b->statuses;
    b->pub.errors = (const char *const *)b->errors;
    return b;
}

/* The request's result: the one allocated at submit (or a new one). */
static result_box *take_result(job *j) {
    result_box *b = j->pre;
    j->pre = NULL;
    if (!b) return result_new(j, j->n_pols);
    b->pub.ticket = j->ticket;
    return b;
}

static void result_fail_policy(result_box *b, size_t i, lg_status st, const char *msg) {
    b->statuses[i] = st;
    lg_free(b->errors[i]);
    b->errors[i] = lg_strdup(msg);
}

/* Sets the request's status: LG_OK, or the first failed policy's. */
static void result_finish(result_box *b, lg_status whole, const char *whole_msg) {
    lg_status st = whole;
    const char *msg = whole_msg;
    for (size_t i = 0; i < b->pub.n_verdicts && st == LG_OK; i++)
        if (b->statuses[i] != LG_OK) st = b->statuses[i], msg = b->errors[i];
    if (whole != LG_OK)
        for (size_t i = 0; i < b->pub.n_verdicts; i++)
            if (b->statuses[i] == LG_OK && !b->verdicts[i])
                result_fail_policy(b, i, whole, whole_msg);
    for (size_t i = 0; i < b->pub.n_verdicts; i++)
        if (!b->errors[i]) b->errors[i] = lg_strdup("");
    b->pub.status = st;
    b->error = lg_strdup(st == LG_OK ? "" : msg ? msg : lg_status_str(st));
    b->pub.error = b->error ? b->error : "";
}

/* ---- the worker's model calls: post and sleep until the scheduler served them ---- */

static lg_status post(worker *w) {
    api_engine *e = w->e;
    pthread_mutex_lock(&e->mu);
    if (w->job->cancelled || e->stop) {
        pthread_mutex_unlock(&e->mu);
        return lg_err_set(&w->sess->err, LG_E_CANCELLED, "the request was cancelled");
    }
    w->waiting = true;
    e->n_waiting++;
    if (e->n_waiting == e->n_active) pthread_cond_signal(&e->sched_cv);
    while (w->waiting) pthread_cond_wait(&w->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    return w->status;
}

static lg_status post_segs(worker *w, int n) {
    w->kind = POST_SEGS;
    w->n_segs = n;
    w->rows = 0;
    for (int i = 0; i < n; i++) {
        w->segs[i].s = w->sess;
        w->rows += w->segs[i].n;
    }
    return post(w);
}

static bool grow_logits(worker *w, size_t floats) {
    if (floats <= w->logits_cap) return true;
    float *l = lg_realloc(w->logits, floats * sizeof *l);
    if (!l) return false;
    w->logits = l;
    w->logits_cap = floats;
    return true;
}

/* lg_session_eval through the scheduler: the same 512-token chunks from the same start. */
static lg_status worker_eval(worker *w, int64_t pos, const int32_t *ids, int64_t n,
                             const float *image_rows, bool all, const float **logits) {
    const lg_model *m = w->e->g->model;
    int64_t nv = lg_model_n_vocab(m), d = lg_model_hidden_size(m), used = 0;
    int32_t image_token = lg_model_image_token_id(m);
    if (n <= 0) return lg_err_set(&w->sess->err, LG_E_ARG, "no tokens to evaluate");
    bool own = all && n > ENG_CHUNK; /* rows from several chunks: gather them here */
    if (own && !grow_logits(w, (size_t)(n * nv)))
        return lg_err_set(&w->sess->err, LG_E_NOMEM, "out of memory for logits");
    int64_t n_past0 = lg_session_n_past(w->sess);
    lg_status st = LG_OK;
    for (int64_t off = 0; off < n && st == LG_OK; off += ENG_CHUNK) {
        int64_t k = n - off < ENG_CHUNK ? n - off : ENG_CHUNK, img = 0;
        for (int64_t i = 0; i < k; i++) img += image_rows && ids[off + i] == image_token;
        bool last = off + k == n;
        w->segs[0] = (mdl_seg){.pos = off == 0 ? pos : -1,
                               .ids = ids + off,
                               .n = k,
                               .image_rows = image_rows ? image_rows + used * d : NULL,
                               .n_image_rows = img,
                               .all_logits = all,
                               .no_logits = !all && !last,
                               .logits_dst = own ? w->logits + off * nv : NULL};
        used += img;
        st = post_segs(w, 1);
        if (st == LG_OK && last) *logits = own ? w->logits : w->segs[0].logits;
    }
    if (st != LG_OK && pos < 0) lg_session_truncate(w->sess, n_past0);
    return st;
}

/* ---- the verdict decoder's view of a worker ---- */

static lg_status wlm_eval(void *ctx, const int32_t *ids, size_t n, bool all, const float **logits) {
    return worker_eval(ctx, -1, ids, (int64_t)n, NULL, all, logits);
}

static lg_status wlm_truncate(void *ctx, size_t n_past) {
    worker *w = ctx;
    return lg_session_truncate(w->sess, (int64_t)n_past);
}

static const char *wlm_errmsg(void *ctx) {
    worker *w = ctx;
    return lg_session_errmsg(w->sess);
}

static lg_status wlm_eval_multi(void *ctx, vd_eval *ev, size_t n) {
    worker *w = ctx;
    int64_t rows = 0;
    for (size_t i = 0; i < n; i++) rows += (int64_t)ev[i].n;
    if (n > ENG_MAX_SEGS || rows > ENG_CHUNK) { /* not one pass: one continuation at a time */
        for (size_t i = 0; i < n; i++) {
            lg_status st = lg_session_truncate(w->sess, (int64_t)ev[i].pos);
            if (st == LG_OK)
                st =
                    worker_eval(w, -1, ev[i].ids, (int64_t)ev[i].n, NULL, ev[i].all, &ev[i].logits);
            if (st != LG_OK) return st;
            /* earlier rows live in the pass buffer, which the next eval overwrites */
            if (i + 1 < n) return lg_err_set(&w->sess->err, LG_E_LIMIT, "options too long");
        }
        return LG_OK;
    }
    for (size_t i = 0; i < n; i++)
        w->segs[i] = (mdl_seg){.pos = (int64_t)ev[i].pos,
                               .ids = ev[i].ids,
                               .n = (int64_t)ev[i].n,
                               .all_logits = ev[i].all};
    lg_status st = post_segs(w, (int)n);
    for (size_t i = 0; i < n && st == LG_OK; i++) {
        if (w->segs[i].status != LG_OK) return w->segs[i].status;
        ev[i].logits = w->segs[i].logits;
    }
    return st;
}

/* ---- the scheduler ---- */

static bool is_heavy(const worker *w) {
    return w->kind == POST_VISION || w->rows > ENG_LIGHT_ROWS;
}

/* One step: the light requests and the oldest heavy one. Called with mu held; returns with it
 * held, having released it while computing. */
static void run_step(api_engine *e) {
    worker *served[64];
    int n_served = 0;
    worker *heavy = NULL;
    for (int i = 0; i < e->n_workers; i++) {
        worker *w = &e->workers[i];
        if (!w->waiting) continue;
        if (!is_heavy(w))
            served[n_served++] = w;
        else if (!heavy || w->admit_seq < heavy->admit_seq)
            heavy = w;
    }
    if (heavy) served[n_served++] = heavy;
    pthread_mutex_unlock(&e->mu);

    /* every served worker's segments in one pass (mdl_pass_run takes up to 256) */
    mdl_seg *all = e->step_segs;
    int n_all = 0, kept = 0;
    int64_t rows = 0;
    for (int i = 0; i < n_served; i++) {
        worker *w = served[i];
        if (w->kind == POST_SEGS && n_all + w->n_segs > 256 && n_all > 0)
            continue; /* left waiting for the next step */
        served[kept++] = w;
        if (w->kind == POST_VISION) {
            w->status = mdl_encode_step(w->sess, &w->enc);
            continue;
        }
        memcpy(all + n_all, w->segs, (size_t)w->n_segs * sizeof *all);
        n_all += w->n_segs;
        rows += w->rows;
    }
    n_served = kept;
    if (n_all > 0) mdl_pass_run(&e->pass, e->kc, e->g->model, all, n_all);
    n_all = 0;
    for (int i = 0; i < n_served; i++) {
        worker *w = served[i];
        if (w->kind == POST_VISION) continue;
        w->status = LG_OK;
        for (int k = 0; k < w->n_segs; k++) {
            w->segs[k] = all[n_all + k];
            if (w->status == LG_OK) w->status = w->segs[k].status;
        }
        n_all += w->n_segs;
    }

    pthread_mutex_lock(&e->mu);
    if (rows > 0) {
        e->stats.steps++;
        e->stats.step_rows += (uint64_t)rows;
        for (int i = 0; i < n_served; i++) e->stats.step_seqs += served[i]->kind == POST_SEGS;
    }
    for (int i = 0; i < n_served; i++) {
        served[i]->waiting = false;
        e->n_waiting--;
        pthread_cond_signal(&served[i]->cv);
    }
}

static void *scheduler_main(void *arg) {
    api_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!(e->stop && e->n_active == 0) && (e->n_active == 0 || e->n_waiting < e->n_active))
            pthread_cond_wait(&e->sched_cv, &e->mu);
        if (e->stop && e->n_active == 0) break;
        run_step(e);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- admission: KV room, first come first served ---- */

static lg_status admit(worker *w, int64_t bytes, char *msg, size_t msg_len) {
    api_engine *e = w->e;
    pthread_mutex_lock(&e->mu);
    if (bytes > e->kv_budget) {
        pthread_mutex_unlock(&e->mu);
        snprintf(msg, msg_len,
                 "the request needs %lld bytes of KV cache, more than the whole budget of %lld",
                 (long long)bytes, (long long)e->kv_budget);
        return LG_E_LIMIT;
    }
    uint64_t my = e->admit_next++;
    while (!e->stop && !w->job->cancelled &&
           (e->admit_serving != my || e->kv_used + bytes > e->kv_budget))
        pthread_cond_wait(&e->admit_cv, &e->mu);
    e->admit_serving++;
    pthread_cond_broadcast(&e->admit_cv);
    if (e->stop || w->job->cancelled) {
        pthread_mutex_unlock(&e->mu);
        snprintf(msg, msg_len, "the request was cancelled");
        return LG_E_CANCELLED;
    }
    e->kv_used += bytes;
    w->kv_need = bytes;
    w->admit_seq = my;
    w->active = true;
    e->n_active++;
    w->job->t_admit = api_now();
    e->stats.kv_bytes = e->kv_used;
    pthread_mutex_unlock(&e->mu);
    return LG_OK;
}

static void leave(worker *w) {
    api_engine *e = w->e;
    pthread_mutex_lock(&e->mu);
    if (w->active) {
        w->active = false;
        e->n_active--;
        if (e->n_active == 0 || e->n_waiting == e->n_active) pthread_cond_signal(&e->sched_cv);
    }
    e->kv_used -= w->kv_need;
    w->kv_need = 0;
    e->stats.kv_bytes = e->kv_used;
    pthread_cond_broadcast(&e->admit_cv);
    pthread_mutex_unlock(&e->mu);
}

/* ---- the feature cache ---- */

static void cache_unlink(api_engine *e, feat_entry *f) {
    if (f->prev)
        f->prev->next = f->next;
    else
        e->cache_head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        e->cache_tail = f->prev;
    f->prev = f->next = NULL;
}

static void cache_push_front(api_engine *e, feat_entry *f) {
    f->next = e->cache_head;
    f->prev = NULL;
    if (e->cache_head) e->cache_head->prev = f;
    e->cache_head = f;
    if (!e->cache_tail) e->cache_tail = f;
}

/* A copy of the cached features of `key`, or NULL (a miss, or no memory). */
static float *cache_lookup(api_engine *e, const char *key, int64_t *n_rows) {
    if (e->cache_budget <= 0) return NULL;
    float *out = NULL;
    pthread_mutex_lock(&e->mu);
    feat_entry *f = e->cache_head;
    while (f && strcmp(f->key, key) != 0) f = f->next;
    if (f && (out = lg_malloc((size_t)f->bytes))) {
        memcpy(out, f->rows, (size_t)f->bytes);
        *n_rows = f->n_rows;
        cache_unlink(e, f);
        cache_push_front(e, f);
    }
    if (out)
        e->stats.cache_hits++;
    else
        e->stats.cache_misses++;
    pthread_mutex_unlock(&e->mu);
    return out;
}

static void cache_insert(api_engine *e, const char *key, const float *rows, int64_t n_rows) {
    int64_t bytes = n_rows * lg_model_hidden_size(e->g->model) * (int64_t)sizeof(float);
    if (e->cache_budget <= 0 || bytes > e->cache_budget) return;
    feat_entry *f = lg_calloc(1, sizeof *f);
    float *copy = f ? lg_malloc((size_t)bytes) : NULL;
    if (!copy) {
        lg_free(f);
        return; /* the cache is an optimisation: no memory, no entry */
    }
    memcpy(copy, rows, (size_t)bytes);
    snprintf(f->key, sizeof f->key, "%s", key);
    f->rows = copy;
    f->n_rows = n_rows;
    f->bytes = bytes;
    pthread_mutex_lock(&e->mu);
    feat_entry *old = e->cache_head;
    while (old && strcmp(old->key, key) != 0) old = old->next;
    if (old) { /* another worker got there first */
        pthread_mutex_unlock(&e->mu);
        lg_free(copy);
        lg_free(f);
        return;
    }
    while (e->cache_tail && e->cache_bytes + bytes > e->cache_budget) {
        feat_entry *t = e->cache_tail;
        cache_unlink(e, t);
        e->cache_bytes -= t->bytes;
        lg_free(t->rows);
        lg_free(t);
    }
    cache_push_front(e, f);
    e->cache_bytes += bytes;
    e->stats.cache_bytes = e->cache_bytes;
    pthread_mutex_unlock(&e->mu);
}

/* ---- one request, on its worker ---- */

typedef struct prompt {
    int32_t *ids;
    size_t n;
} prompt;

static int64_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return (int64_t)i;
}

/* Vision through the scheduler, one crop per step; or the cache. */
static lg_status encode(worker *w, const lg_pixels *px, const char *key, float **features,
                        int64_t *n_rows, int *cached, double *vision_s) {
    api_engine *e = w->e;
    double t0 = api_now();
    if ((*features = cache_lookup(e, key, n_rows))) {
        mdl_session_note_image(w->sess, px); /* multimodal RoPE: the image's grid */
        *cached = 1;
        *vision_s = 0;
        return LG_OK;
    }
    lg_status st = mdl_encode_begin(w->sess, px, &w->enc);
    while (st == LG_OK && !mdl_encode_done(&w->enc)) {
        w->kind = POST_VISION;
        st = post(w);
    }
    if (st == LG_OK) st = mdl_encode_end(w->sess, &w->enc, features, n_rows);
    if (st != LG_OK) {
        mdl_encode_abort(&w->enc);
        return st;
    }
    cache_insert(e, key, *features, *n_rows);
    *vision_s = api_now() - t0;
    return LG_OK;
}

typedef struct text_sink {
    job *j;
    size_t policy;
} text_sink;

static void forward_text(void *user, const char *text, size_t len) {
    text_sink *t = user;
    t->j->on_text(t->j->user, t->policy, text, len);
}

/* One verdict: the prompt's tail after what the cache holds, then the verdict decoder. */
static lg_status judge(worker *w, size_t index, const api_policy *pol, const prompt *pr,
                       int64_t keep, const float *features, int64_t n_rows, lg_verdict **out,
                       lg_error *err) {
    lg_guard *g = w->e->g;
    job *j = w->job;
    api_schema *schema = NULL;
    vd_result res = {0};
    lg_status st = api_schema_get(g, pol, &schema, err);
    if (st != LG_OK) return st;
    double t0 = api_now();
    /* the image rows of the tail: those after the first `keep` tokens */
    int64_t d = lg_model_hidden_size(g->model), img_before = 0;
    int32_t image_token = lg_model_image_token_id(g->model);
    for (int64_t i = 0; i < keep; i++) img_before += pr->ids[i] == image_token;
    const float *logits = NULL;
    st = worker_eval(w, keep, pr->ids + keep, (int64_t)pr->n - keep,
                     features ? features + img_before * d : NULL, false, &logits);
    (void)n_rows;
    if (st != LG_OK) {
        lg_err_set(err, st, "prefill: %s", lg_session_errmsg(w->sess));
        goto done;
    }
    double t1 = api_now();
    vd_params vp = api_vd_params(&j->params);
    text_sink sink = {j, index};
    if (j->on_text) vp.on_text = forward_text, vp.on_text_user = &sink;
    vd_lm lm = {
        w, (size_t)lg_model_n_vocab(g->model), wlm_eval, wlm_truncate, wlm_errmsg, wlm_eval_multi};
    vd_tok tok = api_guard_tok(g);
    if ((st = vd_decode(&schema->schema, &lm, &tok, pr->ids, pr->n, &vp, &res, err)) != LG_OK)
        goto done;
    lg_verdict *v = api_verdict_make(g, &res, pol);
    if (!v) {
        st = lg_err_set(err, LG_E_NOMEM, "out of memory");
        goto done;
    }
    v->prompt_tokens = (int64_t)pr->n;
    v->image_tokens = n_rows;
    v->timings.prefill = t1 - t0;
    v->timings.verdict = api_now() - t1;
    *out = v;
done:
    vd_result_clear(&res);
    api_schema_put(g, schema);
    return st;
}

/* The decoded image: borrowed, or read and decoded here. */
static lg_status load_image(job *j, lg_image **owned, const lg_image **img, char sha[65],
                            lg_error *err) {
    *owned = NULL;
    if (j->image) {
        *img = j->image;
        lg_sha256_hex(lg_image_rgb(j->image),
                      (size_t)lg_image_width(j->image) * (size_t)lg_image_height(j->image) * 3,
                      sha);
        return LG_OK;
    }
    lg_status st = LG_OK;
    if (j->path) {
        uint8_t *data = NULL;
        size_t size = 0;
        st = lg_read_file(j->path, (size_t)1 << 31, &data, &size, err);
        if (st != LG_OK) return st;
        lg_sha256_hex(data, size, sha);
        st = lg_image_load_memory(data, size, j->name, &j->iopt, owned, err);
        lg_free(data);
    } else {
        lg_sha256_hex(j->bytes, j->n_bytes, sha);
        st = lg_image_load_memory(j->bytes, j->n_bytes, j->name, &j->iopt, owned, err);
    }
    *img = *owned;
    return st;
}

static void run_job(worker *w) {
    api_engine *e = w->e;
    lg_guard *g = e->g;
    job *j = w->job;
    lg_error err = {0};
    lg_image *owned = NULL;
    const lg_image *img = NULL;
    lg_pixels *px = NULL;
    float *features = NULL;
    int64_t n_rows = 0;
    prompt *prs = NULL;
    lg_status whole = LG_OK;
    char msg[LG_ERROR_MSG_MAX] = "";
    result_box *b = take_result(j);
    if (!b) {
        whole = LG_E_NOMEM;
        goto deliver;
    }
    double t0 = api_now();
    whole = load_image(j, &owned, &img, b->pub.image_sha256, &err);
    b->pub.timings.decode = api_now() - t0;
    if (whole != LG_OK) {
        snprintf(msg, sizeof msg, "%s", err.msg);
        goto done;
    }
    b->pub.width = lg_image_width(img);
    b->pub.height = lg_image_height(img);
    double t1 = api_now();
    if ((whole = lg_preprocess(g->pp, img, &px, &err)) != LG_OK) {
        snprintf(msg, sizeof msg, "%s", err.msg);
        goto done;
    }
    double preprocess_s = api_now() - t1;
    int64_t image_tokens = px->image_tokens;
    /* the prompts, and how much KV the longest one needs */
    prs = lg_calloc(j->n_pols, sizeof *prs);
    if (!prs) {
        whole = LG_E_NOMEM;
        snprintf(msg, sizeof msg, "out of memory");
        goto done;
    }
    size_t longest = 0, shortest = SIZE_MAX;
    int64_t limit = lg_model_context_limit(g->model), room = api_answer_room(&j->params);
    for (size_t i = 0; i < j->n_pols; i++) {
        lg_error perr = {0};
        lg_status st =
            api_build_prompt(g, j->pols[i].text, image_tokens, &prs[i].ids, &prs[i].n, &perr);
        if (st == LG_OK && (int64_t)prs[i].n + room > limit)
            st = lg_err_set(&perr, LG_E_LIMIT,
                            "the prompt (%zu tokens) and answer do not fit the context of %lld "
                            "tokens",
                            prs[i].n, (long long)limit);
        if (st != LG_OK) {
            result_fail_policy(b, i, st, perr.msg);
            continue;
        }
        longest = prs[i].n > longest ? prs[i].n : longest;
        shortest = prs[i].n < shortest ? prs[i].n : shortest;
    }
    if (longest == 0) goto done; /* every policy failed */
    int64_t need = ((int64_t)longest + room) * e->kv_per_token;
    if ((whole = admit(w, need, msg, sizeof msg)) != LG_OK) goto done;
    b->pub.timings.queued = j->t_admit - j->t_submit;

    /* vision, or the cached features */
    char key[65 + 24];
    char rgb_sha[65];
    lg_sha256_hex(lg_image_rgb(img), (size_t)b->pub.width * (size_t)b->pub.height * 3, rgb_sha);
    snprintf(key, sizeof key, "%s:%dx%d", rgb_sha, b->pub.width, b->pub.height);
    double vision_s = 0;
    whole = encode(w, px, key, &features, &n_rows, &b->pub.features_cached, &vision_s);
    if (whole != LG_OK) {
        snprintf(msg, sizeof msg, "vision: %s", lg_session_errmsg(w->sess));
        goto done;
    }

    /* The prefix every prompt shares is prefilled once, cut to whole chunks so each policy's
     * tail is chunked exactly as a separate assessment's prompt (the same numbers). */
    int64_t shared = -1;
    for (size_t i = 0; i < j->n_pols; i++) {
        if (!prs[i].ids) continue;
        for (size_t k = i + 1; k < j->n_pols; k++)
            if (prs[k].ids) {
                int64_t c = common_prefix(prs[i].ids, prs[i].n, prs[k].ids, prs[k].n);
                shared = shared < 0 || c < shared ? c : shared;
            }
    }
    int64_t keep = 0;
    if (shared > 0) {
        keep = shared / ENG_CHUNK * ENG_CHUNK;
        int64_t max_keep = ((int64_t)shortest - 1) / ENG_CHUNK * ENG_CHUNK;
        keep = keep < max_keep ? keep : max_keep;
    }
    size_t first = 0;
    while (!prs[first].ids) first++;
    if (keep > 0) {
        /* no logits are wanted: every chunk of a whole-chunk prefix is a middle chunk */
        lg_status st = LG_OK;
        int64_t d = lg_model_hidden_size(g->model), used = 0;
        for (int64_t off = 0; off < keep && st == LG_OK; off += ENG_CHUNK) {
            int64_t n_img = 0;
            for (int64_t i = 0; i < ENG_CHUNK; i++)
                n_img += prs[first].ids[off + i] == lg_model_image_token_id(g->model);
            w->segs[0] = (mdl_seg){.pos = off,
                                   .ids = prs[first].ids + off,
                                   .n = ENG_CHUNK,
                                   .image_rows = features + used * d,
                                   .n_image_rows = n_img,
                                   .no_logits = true};
            used += n_img;
            st = post_segs(w, 1);
        }
        if (st != LG_OK) {
            whole = st;
            snprintf(msg, sizeof msg, "prefill: %s", lg_session_errmsg(w->sess));
            goto done;
        }
    }
    for (size_t i = 0; i < j->n_pols; i++) {
        if (!prs[i].ids) continue;
        lg_error verr = {0};
        lg_verdict *v = NULL;
        lg_status st = judge(w, i, &j->pols[i], &prs[i], keep, features, n_rows, &v, &verr);
        if (st != LG_OK) {
            result_fail_policy(b, i, st, verr.msg);
            if (st == LG_E_CANCELLED) break;
            continue;
        }
        v->timings.preprocess = preprocess_s;
        v->timings.vision = i == first ? vision_s : 0;
        v->timings.total = api_now() - j->t_submit;
        b->verdicts[i] = v;
        b->statuses[i] = LG_OK;
    }
done:
    leave(w);
    if (prs)
        for (size_t i = 0; i < j->n_pols; i++) lg_free(prs[i].ids);
    lg_free(prs);
    lg_free(features);
    lg_pixels_free(px);
    lg_image_free(owned);
    if (j->cancelled && whole == LG_OK) {
        whole = LG_E_CANCELLED;
        snprintf(msg, sizeof msg, "the request was cancelled");
    }
    if (b) {
        result_finish(b, whole, msg);
        b->pub.timings.total = api_now() - j->t_submit;
    }
deliver:
    pthread_mutex_lock(&e->mu);
    j->state = JOB_DONE;
    j->result = b ? &b->pub : NULL;
    e->stats.completed++;
    if (!b || b->pub.status != LG_OK) e->stats.failed += !(b && b->pub.status == LG_E_CANCELLED);
    if (b && b->pub.status == LG_E_CANCELLED) e->stats.cancelled++;
    e->stats.in_flight--;
    bool cb = j->callback, drop = !cb && j->discard;
    if (cb || drop) j->result = NULL;
    pthread_cond_broadcast(&e->done_cv);
    pthread_mutex_unlock(&e->mu);
    if (cb && b) j->on_done(j->user, &b->pub);
    if (drop) lg_result_free(b ? &b->pub : NULL);
}

/* Unlinks j from the list of every job (mu held). */
static void forget(api_engine *e, job *j) {
    for (job **p = &e->all; *p; p = &(*p)->next_all)
        if (*p == j) {
            *p = j->next_all;
            return;
        }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    api_engine *e = w->e;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->stop && !e->queue_head) pthread_cond_wait(&e->queue_cv, &e->mu);
        if (e->stop) break;
        job *j = e->queue_head;
        e->queue_head = j->next_queued;
        if (!e->queue_head) e->queue_tail = NULL;
        e->n_queued--;
        e->stats.queued = e->n_queued;
        e->stats.in_flight++;
        j->state = JOB_RUNNING;
        j->held = true;
        pthread_cond_broadcast(&e->queue_cv); /* a submitter may wait for room */
        w->job = j;
        pthread_mutex_unlock(&e->mu);
        run_job(w);
        pthread_mutex_lock(&e->mu);
        w->job = NULL;
        j->held = false;
        if ((j->callback || j->discard || j->collected) && j->waiters == 0) { /* done with */
            forget(e, j);
            job_free(j);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- start and stop ---- */

static int64_t physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (int64_t)pages * size : (int64_t)8 << 30;
}

static void engine_destroy(api_engine *e);

static lg_status engine_start(lg_guard *g, lg_error *err) {
    api_engine *e = lg_calloc(1, sizeof *e);
    if (!e) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    e->g = g;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->sched_cv, NULL);
    pthread_cond_init(&e->queue_cv, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    pthread_cond_init(&e->admit_cv, NULL);
    const lg_model *m = g->model;
    e->kc = kern_ctx_create(m->n_threads, m->kernels);
    e->n_workers = g->params.max_batch;
    e->workers = lg_calloc((size_t)e->n_workers, sizeof *e->workers);
    e->step_segs = lg_calloc((size_t)e->n_workers * ENG_MAX_SEGS, sizeof *e->step_segs);
    if (e->workers)
        for (int i = 0; i < e->n_workers; i++) pthread_cond_init(&e->workers[i].cv, NULL);
    if (!e->kc || !e->workers || !e->step_segs) {
        engine_destroy(e);
        return lg_err_set(err, LG_E_NOMEM, "out of memory starting the batch engine");
    }
    kern_ctx_set_precision(e->kc, m->precision);
    e->max_queue = g->params.max_queue > 0 ? g->params.max_queue : ENG_DEFAULT_QUEUE;
    const mdl_config *c = &m->cfg;
    e->kv_per_token = (int64_t)c->dec.n_layer * 2 * (int64_t)c->dec.n_head_kv *
                      kern_kv_head_elems(m->kv_dtype, c->dec.head_dim) *
                      (int64_t)lg_dtype_size(m->kv_dtype);
    e->kv_budget = g->params.kv_budget;
    if (e->kv_budget <= 0) {
        int64_t all = (int64_t)e->n_workers * m->n_ctx * e->kv_per_token;
        int64_t cap = physical_memory() / 4;
        e->kv_budget = all < cap ? all : cap;
    }
    e->cache_budget = g->params.features_cache_bytes;
    e->stats.kv_budget = e->kv_budget;
    for (int i = 0; i < e->n_workers; i++) {
        worker *w = &e->workers[i];
        w->e = e;
        w->index = i;
        lg_status st = mdl_session_create(m, e->kc, &w->sess, err);
        if (st != LG_OK) {
            engine_destroy(e);
            return st;
        }
    }
    g->eng = e;
    /* threads last: from here on engine_destroy joins them */
    if (pthread_create(&e->sched, NULL, scheduler_main, e) != 0) {
        g->eng = NULL;
        engine_destroy(e);
        return lg_err_set(err, LG_E_NOMEM, "cannot start the scheduler thread");
    }
    e->started_sched = true;
    for (int i = 0; i < e->n_workers; i++)
        if (pthread_create(&e->workers[i].thread, NULL, worker_main, &e->workers[i]) == 0) {
            e->workers[i].started = true;
        } else {
            /* fewer workers still work: the rest of the slots stay empty */
            e->n_workers = i;
            break;
        }
    if (e->n_workers == 0) {
        g->eng = NULL;
        engine_destroy(e);
        return lg_err_set(err, LG_E_NOMEM, "cannot start the worker threads");
    }
    return LG_OK;
}

static void engine_destroy(api_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    for (job *j = e->all; j; j = j->next_all) j->cancelled = true;
    pthread_cond_broadcast(&e->queue_cv);
    pthread_cond_broadcast(&e->admit_cv);
    pthread_cond_broadcast(&e->sched_cv);
    pthread_mutex_unlock(&e->mu);
    if (e->workers)
        for (int i = 0; i < e->n_workers; i++)
            if (e->workers[i].started) pthread_join(e->workers[i].thread, NULL);
    if (e->started_sched) {
        pthread_mutex_lock(&e->mu);
        pthread_cond_broadcast(&e->sched_cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->sched, NULL);
    }
    /* what never ran: its callback hears of the cancellation */
    for (job *j = e->queue_head; j; j = j->next_queued) {
        result_box *b = take_result(j);
        if (b) result_finish(b, LG_E_CANCELLED, "the guard was closed before the request ran");
        if (j->callback && b)
            j->on_done(j->user, &b->pub);
        else
            lg_result_free(b ? &b->pub : NULL);
    }
    while (e->all) {
        job *j = e->all;
        e->all = j->next_all;
        job_free(j);
    }
    if (e->workers) {
        for (int i = 0; i < e->g->params.max_batch; i++) {
            lg_session_free(e->workers[i].sess);
            lg_free(e->workers[i].logits);
            pthread_cond_destroy(&e->workers[i].cv);
        }
        lg_free(e->workers);
    }
    while (e->cache_head) {
        feat_entry *f = e->cache_head;
        e->cache_head = f->next;
        lg_free(f->rows);
        lg_free(f);
    }
    mdl_pass_free(&e->pass);
    lg_free(e->step_segs);
    kern_ctx_free(e->kc);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->sched_cv);
    pthread_cond_destroy(&e->queue_cv);
    pthread_cond_destroy(&e->done_cv);
    pthread_cond_destroy(&e->admit_cv);
    lg_free(e);
}

void api_engine_free(lg_guard *g) {
    engine_destroy(g->eng);
    g->eng = NULL;
}

static api_engine *engine_get(lg_guard *g, lg_error *err, lg_status *st) {
    pthread_mutex_lock(&g->eng_mu);
    *st = g->eng ? LG_OK : engine_start(g, err);
    api_engine *e = g->eng;
    pthread_mutex_unlock(&g->eng_mu);
    return e;
}

/* ---- the public calls ---- */

static lg_status copy_request(lg_guard *g, const lg_request *r, job *j, lg_error *err) {
    int sources = (r->image != NULL) + (r->image_bytes != NULL) + (r->image_path != NULL);
    if (sources != 1)
        return lg_err_set(err, LG_E_ARG,
                          "a request needs exactly one of image, image_bytes and "
                          "image_path (it has %d)",
                          sources);
    if (r->image_path && strcmp(r->image_path, "-") == 0)
        return lg_err_set(err, LG_E_ARG, "image_path \"-\" is not allowed in a request");
    if (r->n_policies > 64 || (r->n_policies > 0 && !r->policies))
        return lg_err_set(err, LG_E_ARG, "a request takes 0..64 policies");
    j->params = r->params ? *r->params : lg_assess_params_default();
    if (j->params.max_rationale_tokens < 0 || j->params.rationale < LG_RATIONALE_ALWAYS ||
        j->params.rationale > LG_RATIONALE_UNSAFE)
        return lg_err_set(err, LG_E_ARG, "bad assess parameters");
    j->image = r->image;
    j->iopt = r->image_options ? *r->image_options : lg_image_options_default();
    j->on_done = r->on_done;
    j->on_text = r->on_text;
    j->user = r->user;
    j->callback = r->on_done != NULL;
    const char *name = r->name ? r->name : r->image_path ? r->image_path : "image";
    if (!(j->name = lg_strdup(name))) goto nomem;
    if (r->image_path && !(j->path = dup_or_null(r->image_path))) goto nomem;
    if (r->image_bytes) {
        if (!(j->bytes = lg_malloc(r->image_size ? r->image_size : 1))) goto nomem;
        memcpy(j->bytes, r->image_bytes, r->image_size);
        j->n_bytes = r->image_size;
    }
    size_t n = r->n_policies ? r->n_policies : 1;
    if (!(j->pols = lg_calloc(n, sizeof *j->pols))) goto nomem;
    if (r->n_policies == 0) {
        lg_policy *def = NULL;
        lg_status st = lg_policy_create_default(lg_guard_default_policy_version(g), &def, err);
        if (st != LG_OK) return st;
        st = api_policy_prepare(def, &j->pols[0], err);
        lg_policy_free(def);
        if (st != LG_OK) return st;
        j->n_pols = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!r->policies[i]) return lg_err_set(err, LG_E_ARG, "policy %zu is NULL", i);
            lg_status st = api_policy_prepare(r->policies[i], &j->pols[i], err);
            if (st != LG_OK) return st;
            j->n_pols = i + 1;
        }
    }
    return LG_OK;
nomem:
    return lg_err_set(err, LG_E_NOMEM, "out of memory");
}

lg_status lg_guard_submit(lg_guard *g, const lg_request *req, unsigned flags, lg_ticket *ticket,
                          lg_error *err) {
    if (!g || !req || !ticket) return lg_err_set(err, LG_E_ARG, "lg_guard_submit: NULL argument");
    job *j = lg_calloc(1, sizeof *j);
    if (!j) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    lg_status st = copy_request(g, req, j, err);
    if (st == LG_OK && !(j->pre = result_new(j, j->n_pols)))
        st = lg_err_set(err, LG_E_NOMEM, "out of memory");
    if (st != LG_OK) {
        job_free(j);
        return st;
    }
    api_engine *e = engine_get(g, err, &st);
    if (st != LG_OK) {
        job_free(j);
        return st;
    }
    pthread_mutex_lock(&e->mu);
    while (!e->stop && e->n_queued >= e->max_queue) {
        if (flags & LG_SUBMIT_NOWAIT) {
            pthread_mutex_unlock(&e->mu);
            job_free(j);
            return lg_err_set(err, LG_E_BUSY, "the queue is full (%lld requests waiting)",
                              (long long)e->max_queue);
        }
        pthread_cond_wait(&e->queue_cv, &e->mu);
    }
    if (e->stop) {
        pthread_mutex_unlock(&e->mu);
        job_free(j);
        return lg_err_set(err, LG_E_CANCELLED, "the guard is closing");
    }
    j->ticket = ++e->next_ticket;
    j->t_submit = api_now();
    j->state = JOB_QUEUED;
    if (e->queue_tail)
        e->queue_tail->next_queued = j;
    else
        e->queue_head = j;
    e->queue_tail = j;
    e->n_queued++;
    j->next_all = e->all;
    e->all = j;
    e->stats.submitted++;
    e->stats.queued = e->n_queued;
    *ticket = j->ticket;
    pthread_cond_broadcast(&e->queue_cv);
    pthread_mutex_unlock(&e->mu);
    return LG_OK;
}

static job *find(api_engine *e, lg_ticket t) {
    for (job *j = e->all; j; j = j->next_all)
        if (j->ticket == t) return j;
    return NULL;
}

lg_status lg_guard_wait_for(lg_guard *g, lg_ticket ticket, double timeout_s, lg_result **out) {
    if (!g || !out) return LG_E_ARG;
    api_engine *e = g->eng;
    if (!e) return LG_E_ARG;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_s >= 0) {
        double s = (double)until.tv_sec + until.tv_nsec * 1e-9 + timeout_s;
        until.tv_sec = (time_t)floor(s);
        until.tv_nsec = (long)((s - floor(s)) * 1e9);
    }
    pthread_mutex_lock(&e->mu);
    job *j = find(e, ticket);
    if (!j || j->callback || j->collected || j->discard) {
        pthread_mutex_unlock(&e->mu);
        return LG_E_ARG;
    }
    j->waiters++;
    lg_status st = LG_OK;
    while (j->state != JOB_DONE && !j->discard) {
        if (timeout_s < 0) {
            pthread_cond_wait(&e->done_cv, &e->mu);
        } else if (pthread_cond_timedwait(&e->done_cv, &e->mu, &until) != 0) {
            if (j->state == JOB_DONE) break;
            st = LG_E_BUSY;
            break;
        }
    }
    j->waiters--;
    if (j->discard) { /* cancelled meanwhile: the last one out frees it once it is done */
        bool free_now = j->state == JOB_DONE && j->waiters == 0 && !j->held;
        if (free_now) forget(e, j);
        pthread_mutex_unlock(&e->mu);
        if (free_now) job_free(j);
        return LG_E_CANCELLED;
    }
    if (st != LG_OK || j->collected) {
        bool free_now = j->collected && j->waiters == 0 && !j->held; /* the last of several */
        if (free_now) forget(e, j);
        pthread_mutex_unlock(&e->mu);
        if (free_now) job_free(j);
        return st != LG_OK ? st : LG_E_ARG;
    }
    j->collected = true;
    lg_result *r = j->result;
    j->result = NULL;
    bool free_now = j->waiters == 0 && !j->held;
    if (free_now)
        forget(e, j);
    else
        j->discard = true; /* the worker or the last waiter frees it */
    pthread_mutex_unlock(&e->mu);
    if (free_now) job_free(j);
    if (!r) return LG_E_NOMEM;
    *out = r;
    return LG_OK;
}

lg_status lg_guard_wait(lg_guard *g, lg_ticket ticket, lg_result **out) {
    return lg_guard_wait_for(g, ticket, -1.0, out);
}

lg_status lg_guard_cancel(lg_guard *g, lg_ticket ticket) {
    if (!g || !g->eng) return LG_E_ARG;
    api_engine *e = g->eng;
    pthread_mutex_lock(&e->mu);
    job *j = find(e, ticket);
    if (!j) {
        pthread_mutex_unlock(&e->mu);
        return LG_E_ARG;
    }
    j->cancelled = true;
    pthread_cond_broadcast(&e->admit_cv);
    if (j->state == JOB_QUEUED) { /* never runs: done now */
        job **p = &e->queue_head;
        job *prev = NULL;
        while (*p && *p != j) prev = *p, p = &(*p)->next_queued;
        if (*p) {
            *p = j->next_queued;
            if (e->queue_tail == j) e->queue_tail = prev;
            e->n_queued--;
            e->stats.queued = e->n_queued;
        }
        j->state = JOB_DONE;
        j->discard = !j->callback;
        e->stats.cancelled++;
        e->stats.completed++;
        pthread_cond_broadcast(&e->done_cv);
        pthread_cond_broadcast(&e->queue_cv);
        bool free_now = j->waiters == 0;
        if (free_now) forget(e, j);
        pthread_mutex_unlock(&e->mu);
        if (j->callback) {
            result_box *b = take_result(j);
            if (b) result_finish(b, LG_E_CANCELLED, "the request was cancelled");
            if (b) j->on_done(j->user, &b->pub);
        }
        if (free_now) job_free(j);
        return LG_OK;
    }
    if (j->callback) { /* running: on_done will hear LG_E_CANCELLED */
        pthread_mutex_unlock(&e->mu);
        return LG_OK;
    }
    /* without callback the result is discarded: now if done, else when the worker is done */
    j->discard = true;
    pthread_cond_broadcast(&e->done_cv);
    bool free_now = j->state == JOB_DONE && j->waiters == 0 && !j->held;
    if (free_now) forget(e, j);
    pthread_mutex_unlock(&e->mu);
    if (free_now) job_free(j);
    return LG_OK;
}

lg_status lg_guard_assess_many(lg_guard *g, const lg_request *reqs, size_t n, lg_result **results,
                               lg_error *err) {
    if (!g || (n && (!reqs || !results)))
        return lg_err_set(err, LG_E_ARG, "lg_guard_assess_many: NULL argument");
    lg_ticket *t = lg_calloc(n ? n : 1, sizeof *t);
    if (!t) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    size_t k = 0;
    lg_status st = LG_OK;
    for (; k < n; k++) {
        lg_request r = reqs[k];
        r.on_done = NULL;
        if ((st = lg_guard_submit(g, &r, 0, &t[k], err)) != LG_OK) break;
    }
    for (size_t i = 0; i < k; i++) {
        results[i] = NULL;
        lg_guard_wait(g, t[i], &results[i]);
        if (st != LG_OK) {
            lg_result_free(results[i]);
            results[i] = NULL;
        }
    }
    lg_free(t);
    return st;
}

void lg_guard_stats_get(lg_guard *g, lg_guard_stats *out) {
    memset(out, 0, sizeof *out);
    if (!g) return;
    pthread_mutex_lock(&g->eng_mu);
    api_engine *e = g->eng;
    if (e) {
        pthread_mutex_lock(&e->mu);
        *out = e->stats;
        out->kv_budget = e->kv_budget;
        pthread_mutex_unlock(&e->mu);
    }
    pthread_mutex_unlock(&g->eng_mu);
}
