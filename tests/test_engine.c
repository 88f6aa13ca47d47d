/* LAYERS: core kernels image text policy model decode api */
/*
 * test_engine.c — the batch engine on the tiny LLaVA-OneVision fixture model: with 1, 3 and 8
 * requests in flight every verdict equals lg_guard_assess's one by one (rating, category,
 * rationale text, probabilities within 1e-6) in every rationale mode; the one-pass category
 * scoring equals the one-call-per-option scoring; a corrupt image and an over-long prompt fail
 * only their own requests; several policies per image equal separate assessments; a feature
 * cache hit equals the miss; a KV budget makes requests wait and refuses one that can never fit;
 * cancelling, callbacks, and four threads submitting to one guard while four sessions run on one
 * model (the ThreadSanitizer build runs this too).
 */
#include "testutil.h"

#include "api/api.h"
#include "llavaguard.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *images[] = {
    "p01_rgb_384x384.png",     "p02_rgb_640x480.jpg",  "p03_rgb_tall_300x900.png",
    "p05_rgb_tiny_50x37.png",  "p06_gray_320x240.png", "p07_rgba_400x300.png",
    "p08_palette_256x192.png",
};
#define N_IMAGES (sizeof images / sizeof images[0])

static lg_image *load(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", name);
    char *path = tu_fixture(rel);
    lg_image *img = NULL;
    lg_error e;
    if (lg_image_load_file(path, NULL, &img, &e) != LG_OK) fail_msg("%s", e.msg);
    free(path);
    return img;
}

static lg_guard *open_guard(int max_batch, int64_t kv_budget, int64_t cache, int64_t max_ctx) {
    char *dir = tu_fixture("llava-ov-tiny");
    lg_guard_params gp = lg_guard_params_default();
    gp.max_batch = max_batch;
    gp.kv_budget = kv_budget;
    gp.features_cache_bytes = cache;
    gp.model.max_context = max_ctx;
    lg_guard *g = NULL;
    lg_error e;
    if (lg_guard_open(dir, &gp, &g, &e) != LG_OK) fail_msg("guard: %s", e.msg);
    free(dir);
    return g;
}

static lg_policy *policy(const char *allow, const char *sensitive) {
    lg_policy *p = NULL;
    lg_error e;
    if (lg_policy_create_default("v1.2", &p, &e) != LG_OK) fail_msg("%s", e.msg);
    if (allow) assert_int_equal(lg_policy_set_states(p, allow, LG_CATEGORY_NONVIOLATING), LG_OK);
    if (sensitive)
        assert_int_equal(lg_policy_set_states(p, sensitive, LG_CATEGORY_SENSITIVE), LG_OK);
    return p;
}

static lg_assess_params params(lg_rationale_mode mode) {
    lg_assess_params ap = lg_assess_params_default();
    ap.rationale = mode;
    ap.max_rationale_tokens = 24;
    return ap;
}

/* Same verdict: rating, category, rationale, answer text; probabilities within tol. */
static void check_same(const lg_verdict *a, const lg_verdict *b, double tol, const char *what) {
    if (strcmp(a->rating, b->rating) || strcmp(a->category, b->category))
        fail_msg("%s: %s/%s vs %s/%s", what, a->rating, a->category, b->rating, b->category);
    if ((a->rationale == NULL) != (b->rationale == NULL) ||
        (a->rationale && strcmp(a->rationale, b->rationale)))
        fail_msg("%s: rationale \"%s\" vs \"%s\"", what, a->rationale ? a->rationale : "(null)",
                 b->rationale ? b->rationale : "(null)");
    if (strcmp(a->answer, b->answer)) fail_msg("%s: answers differ", what);
    if (fabs(a->p_unsafe - b->p_unsafe) > tol)
        fail_msg("%s: p_unsafe %.17g vs %.17g", what, a->p_unsafe, b->p_unsafe);
    assert_int_equal(a->n_categories, b->n_categories);
    for (size_t i = 0; i < a->n_categories; i++)
        if (fabs(a->category_probs[i] - b->category_probs[i]) > tol)
            fail_msg("%s: %s %.17g vs %.17g", what, a->category_options[i], a->category_probs[i],
                     b->category_probs[i]);
    assert_string_equal(a->policy_sha256, b->policy_sha256);
    assert_int_equal(a->prompt_tokens, b->prompt_tokens);
    assert_int_equal(a->image_tokens, b->image_tokens);
}

/* ---- batching does not change answers ---- */

static void test_batch_equals_one_by_one(void **state) {
    (void)state;
    lg_guard *ref = open_guard(1, 0, 0, 0);
    lg_policy *pol = policy(NULL, NULL);
    lg_image *imgs[N_IMAGES];
    for (size_t i = 0; i < N_IMAGES; i++) imgs[i] = load(images[i]);
    lg_rationale_mode modes[] = {LG_RATIONALE_ALWAYS, LG_RATIONALE_NEVER, LG_RATIONALE_UNSAFE};
    lg_verdict *want[3][N_IMAGES];
    for (int m = 0; m < 3; m++)
        for (size_t i = 0; i < N_IMAGES; i++) {
            lg_assess_params ap = params(modes[m]);
            if (lg_guard_assess(ref, imgs[i], pol, &ap, &want[m][i]) != LG_OK)
                fail_msg("assess %s: %s", images[i], lg_guard_errmsg(ref));
        }
    int batches[] = {1, 3, 8};
    for (int bi = 0; bi < 3; bi++) {
        lg_guard *g = open_guard(batches[bi], 0, 0, 0);
        for (int m = 0; m < 3; m++) {
            lg_assess_params ap = params(modes[m]);
            lg_request reqs[N_IMAGES];
            lg_result *res[N_IMAGES];
            const lg_policy *pols[1] = {pol};
            for (size_t i = 0; i < N_IMAGES; i++)
                reqs[i] = (lg_request){
                    .image = imgs[i], .policies = pols, .n_policies = 1, .params = &ap};
            lg_error e;
            if (lg_guard_assess_many(g, reqs, N_IMAGES, res, &e) != LG_OK) fail_msg("%s", e.msg);
            for (size_t i = 0; i < N_IMAGES; i++) {
                if (res[i]->status != LG_OK) fail_msg("%s: %s", images[i], res[i]->error);
                assert_int_equal(res[i]->n_verdicts, 1);
                char what[128];
                snprintf(what, sizeof what, "batch %d mode %d %s", batches[bi], m, images[i]);
                check_same(res[i]->verdicts[0], want[m][i], 1e-6, what);
                assert_int_equal(res[i]->width, lg_image_width(imgs[i]));
                lg_result_free(res[i]);
            }
        }
        lg_guard_stats st;
        lg_guard_stats_get(g, &st);
        assert_int_equal(st.completed, 3 * N_IMAGES);
        assert_true(st.steps > 0);
        /* with several in flight, steps carried several sequences at once */
        if (batches[bi] > 1) assert_true(st.step_seqs > st.steps);
        lg_guard_free(g);
    }
    for (int m = 0; m < 3; m++)
        for (size_t i = 0; i < N_IMAGES; i++) lg_verdict_free(want[m][i]);
    for (size_t i = 0; i < N_IMAGES; i++) lg_image_free(imgs[i]);
    lg_policy_free(pol);
    lg_guard_free(ref);
}

/* One pass over every category option gives what one model call per option gave. */
static void test_one_pass_options(void **state) {
    (void)state;
    lg_guard *g = open_guard(1, 0, 0, 0);
    lg_policy *pol = policy("O3", NULL);
    for (size_t i = 0; i < N_IMAGES; i++) {
        lg_image *img = load(images[i]);
        lg_assess_params ap = params(LG_RATIONALE_NEVER);
        lg_verdict *a = NULL, *b = NULL;
        assert_int_equal(api_guard_assess_ex(g, img, pol, &ap, false, &a), LG_OK);
        assert_int_equal(api_guard_assess_ex(g, img, pol, &ap, true, &b), LG_OK);
        /* the same rows in the same arithmetic: equal, not only close */
        check_same(a, b, 0.0, images[i]);
        assert_int_equal(a->answer_tokens, b->answer_tokens);
        lg_verdict_free(a);
        lg_verdict_free(b);
        lg_image_free(img);
    }
    lg_policy_free(pol);
    lg_guard_free(g);
}

/* ---- bad requests fail alone ---- */

static void test_mixed_batch(void **state) {
    (void)state;
    lg_guard *probe = open_guard(1, 0, 0, 0);
    lg_policy *pol = policy(NULL, NULL);
    lg_image *small = load("p05_rgb_tiny_50x37.png"), *big = load("p04_rgb_wide_1920x1080.jpg");
    lg_assess_params ap = params(LG_RATIONALE_NEVER);
    lg_verdict *vs = NULL, *vb = NULL;
    assert_int_equal(lg_guard_assess(probe, small, pol, &ap, &vs), LG_OK);
    assert_int_equal(lg_guard_assess(probe, big, pol, &ap, &vb), LG_OK);
    int64_t room = api_answer_room(&ap);
    assert_true(vb->prompt_tokens > vs->prompt_tokens + 16);
    /* a context the small image fits and the big one does not */
    lg_guard *g = open_guard(4, 0, 0, vs->prompt_tokens + room + 8);
    size_t corrupt_n = 0;
    uint8_t *jpeg = tu_read_fixture("images/p02_rgb_640x480.jpg", &corrupt_n);
    memset(jpeg + corrupt_n / 3, 0xff, corrupt_n - corrupt_n / 3); /* a truncated scan */
    static const uint8_t junk[] = "this is not an image at all";
    lg_request reqs[5] = {
        {.image = small, .params = &ap},
        {.image_bytes = junk, .image_size = sizeof junk, .name = "junk.bin", .params = &ap},
        {.image = big, .params = &ap},
        {.image_bytes = jpeg, .image_size = corrupt_n, .name = "cut.jpg", .params = &ap},
        {.image = small, .params = &ap},
    };
    lg_result *res[5];
    lg_error e;
    assert_int_equal(lg_guard_assess_many(g, reqs, 5, res, &e), LG_OK);
    assert_int_equal(res[0]->status, LG_OK);
    assert_int_equal(res[4]->status, LG_OK);
    check_same(res[0]->verdicts[0], vs, 1e-6, "small in a mixed batch");
    assert_int_equal(res[1]->status, LG_E_FORMAT);
    assert_non_null(strstr(res[1]->error, "junk.bin"));
    assert_int_equal(res[2]->status, LG_E_LIMIT);
    assert_non_null(strstr(res[2]->error, "context"));
    assert_null(res[2]->verdicts[0]);
    /* a broken JPEG: libjpeg either refuses it or decodes grey rows; either way it is its own */
    if (res[3]->status != LG_OK) assert_true(strlen(res[3]->error) > 0);
    for (int i = 0; i < 5; i++) lg_result_free(res[i]);
    /* submit-time errors */
    lg_request none = {.params = &ap};
    lg_ticket t;
    assert_int_equal(lg_guard_submit(g, &none, 0, &t, &e), LG_E_ARG);
    lg_request two = {.image = small, .image_path = "x.png"};
    assert_int_equal(lg_guard_submit(g, &two, 0, &t, &e), LG_E_ARG);
    free(jpeg);
    lg_verdict_free(vs);
    lg_verdict_free(vb);
    lg_image_free(small);
    lg_image_free(big);
    lg_policy_free(pol);
    lg_guard_free(g);
    lg_guard_free(probe);
}

/* ---- several policies per image; the feature cache ---- */

static void test_policies_per_image(void **state) {
    (void)state;
    lg_guard *ref = open_guard(1, 0, 0, 0);
    lg_guard *g = open_guard(2, 0, 64 << 20, 0);
    lg_policy *pols[4] = {policy(NULL, NULL), policy("O3,O4", NULL), policy(NULL, "O6"),
                          policy("O1", "O9")};
    const lg_policy *cp[4] = {pols[0], pols[1], pols[2], pols[3]};
    const char *names[] = {"p02_rgb_640x480.jpg", "p03_rgb_tall_300x900.png"};
    for (int k = 0; k < 2; k++) {
        lg_image *img = load(names[k]);
        lg_assess_params ap = params(LG_RATIONALE_ALWAYS);
        lg_request r = {.image = img, .policies = cp, .n_policies = 4, .params = &ap};
        for (int round = 0; round < 2; round++) { /* the second round hits the feature cache */
            lg_result *res = NULL;
            lg_error e;
            assert_int_equal(lg_guard_assess_many(g, &r, 1, &res, &e), LG_OK);
            assert_int_equal(res->status, LG_OK);
            assert_int_equal(res->n_verdicts, 4);
            assert_int_equal(res->features_cached, round);
            for (int i = 0; i < 4; i++) {
                lg_verdict *want = NULL;
                assert_int_equal(lg_guard_assess(ref, img, pols[i], &ap, &want), LG_OK);
                char what[128];
                snprintf(what, sizeof what, "%s policy %d round %d", names[k], i, round);
                check_same(res->verdicts[i], want, 1e-6, what);
                assert_int_equal(res->statuses[i], LG_OK);
                lg_verdict_free(want);
            }
            lg_result_free(res);
        }
        lg_image_free(img);
    }
    lg_guard_stats st;
    lg_guard_stats_get(g, &st);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(st.cache_misses, 2);
    assert_true(st.cache_bytes > 0);
    for (int i = 0; i < 4; i++) lg_policy_free(pols[i]);
    lg_guard_free(g);
    lg_guard_free(ref);
}

/* ---- the KV budget ---- */

static void test_kv_budget(void **state) {
    (void)state;
    lg_image *img = load("p05_rgb_tiny_50x37.png");
    lg_assess_params ap = params(LG_RATIONALE_NEVER);
    /* far too small for any request: refused at once */
    lg_guard *g = open_guard(4, 1000, 0, 0);
    lg_request r = {.image = img, .params = &ap};
    lg_result *res = NULL;
    lg_error e;
    assert_int_equal(lg_guard_assess_many(g, &r, 1, &res, &e), LG_OK);
    assert_int_equal(res->status, LG_E_LIMIT);
    assert_non_null(strstr(res->error, "budget"));
    lg_result_free(res);
    lg_guard_free(g);
    /* room for one request at a time: the others wait, all complete */
    lg_guard *probe = open_guard(1, 0, 0, 0);
    lg_policy *pol = policy(NULL, NULL);
    lg_verdict *v = NULL;
    assert_int_equal(lg_guard_assess(probe, img, pol, &ap, &v), LG_OK);
    lg_guard_free(probe);
    int64_t need_one = 0; /* what one request needs, read from the refusal message */
    {
        lg_guard *tmp = open_guard(1, 1, 0, 0);
        assert_int_equal(lg_guard_assess_many(tmp, &r, 1, &res, &e), LG_OK);
        long long need = 0;
        assert_int_equal(sscanf(strstr(res->error, "needs ") + 6, "%lld", &need), 1);
        need_one = need;
        lg_result_free(res);
        lg_guard_free(tmp);
    }
    g = open_guard(4, need_one + need_one / 2, 0, 0);
    lg_request reqs[4] = {r, r, r, r};
    lg_result *rs[4];
    assert_int_equal(lg_guard_assess_many(g, reqs, 4, rs, &e), LG_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rs[i]->status, LG_OK);
        check_same(rs[i]->verdicts[0], v, 1e-6, "under a one-request budget");
        lg_result_free(rs[i]);
    }
    lg_guard_stats st;
    lg_guard_stats_get(g, &st);
    assert_int_equal(st.step_seqs, st.steps); /* never two sequences at once */
    lg_verdict_free(v);
    lg_policy_free(pol);
    lg_guard_free(g);
    lg_image_free(img);
}

/* ---- callbacks, cancelling, threads ---- */

typedef struct cb_state {
    atomic_int done, ok, cancelled;
} cb_state;

static void on_done(void *user, lg_result *r) {
    cb_state *s = user;
    if (r->status == LG_OK) atomic_fetch_add(&s->ok, 1);
    if (r->status == LG_E_CANCELLED) atomic_fetch_add(&s->cancelled, 1);
    atomic_fetch_add(&s->done, 1);
    lg_result_free(r);
}

static void test_cancel_and_callbacks(void **state) {
    (void)state;
    lg_guard *g = open_guard(1, 0, 0, 0);
    lg_image *img = load("p05_rgb_tiny_50x37.png");
    lg_assess_params ap = params(LG_RATIONALE_NEVER);
    cb_state cs = {0};
    lg_ticket t[6];
    lg_error e;
    for (int i = 0; i < 6; i++) {
        lg_request r = {.image = img, .params = &ap, .on_done = on_done, .user = &cs};
        assert_int_equal(lg_guard_submit(g, &r, 0, &t[i], &e), LG_OK);
    }
    /* the last ones are still queued behind one slot: cancelling them is immediate */
    assert_int_equal(lg_guard_cancel(g, t[5]), LG_OK);
    assert_int_equal(lg_guard_cancel(g, t[4]), LG_OK);
    /* waiting on a callback request is refused */
    lg_result *r = NULL;
    assert_int_equal(lg_guard_wait(g, t[0], &r), LG_E_ARG);
    lg_request plain = {.image = img, .params = &ap};
    lg_ticket tw;
    assert_int_equal(lg_guard_submit(g, &plain, 0, &tw, &e), LG_OK);
    assert_int_equal(lg_guard_wait(g, tw, &r), LG_OK);
    assert_int_equal(r->status, LG_OK);
    lg_result_free(r);
    assert_int_equal(lg_guard_wait(g, tw, &r), LG_E_ARG); /* collected already */
    while (atomic_load(&cs.done) < 6) usleep(1000);
    assert_true(atomic_load(&cs.cancelled) >= 2);
    assert_int_equal(atomic_load(&cs.ok) + atomic_load(&cs.cancelled), 6);
    /* a full queue answers LG_E_BUSY under NOWAIT */
    lg_guard_free(g);
    char *dir = tu_fixture("llava-ov-tiny");
    lg_guard_params gp = lg_guard_params_default();
    gp.max_batch = 1;
    gp.max_queue = 1;
    assert_int_equal(lg_guard_open(dir, &gp, &g, &e), LG_OK);
    free(dir);
    int busy = 0;
    lg_ticket tt[8];
    int n_ok = 0;
    for (int i = 0; i < 8; i++) {
        lg_status st = lg_guard_submit(g, &plain, LG_SUBMIT_NOWAIT, &tt[n_ok], &e);
        if (st == LG_E_BUSY)
            busy++;
        else if (st == LG_OK)
            n_ok++;
    }
    assert_true(busy > 0);
    for (int i = 0; i < n_ok; i++) {
        assert_int_equal(lg_guard_wait(g, tt[i], &r), LG_OK);
        lg_result_free(r);
    }
    /* a wait that times out, then succeeds */
    assert_int_equal(lg_guard_submit(g, &plain, 0, &tw, &e), LG_OK);
    lg_status st = lg_guard_wait_for(g, tw, 0.0, &r);
    if (st == LG_OK)
        lg_result_free(r);
    else
        assert_int_equal(st, LG_E_BUSY);
    if (st != LG_OK) {
        assert_int_equal(lg_guard_wait_for(g, tw, 60.0, &r), LG_OK);
        lg_result_free(r);
    }
    /* closing with work queued: callbacks hear LG_E_CANCELLED, nothing leaks */
    cb_state c2 = {0};
    for (int i = 0; i < 3; i++) {
        lg_request rc = {.image = img, .params = &ap, .on_done = on_done, .user = &c2};
        lg_ticket tc;
        lg_guard_submit(g, &rc, LG_SUBMIT_NOWAIT, &tc, &e);
    }
    lg_guard_free(g);
    lg_image_free(img);
}

typedef struct thread_arg {
    lg_guard *g;
    const lg_image *img;
    const lg_verdict *want;
    int failures;
} thread_arg;

static void *submitter(void *p) {
    thread_arg *a = p;
    lg_assess_params ap = params(LG_RATIONALE_ALWAYS);
    for (int k = 0; k < 3; k++) {
        lg_request r = {.image = a->img, .params = &ap};
        lg_result *res = NULL;
        lg_error e;
        if (lg_guard_assess_many(a->g, &r, 1, &res, &e) != LG_OK || res->status != LG_OK ||
            strcmp(res->verdicts[0]->answer, a->want->answer) != 0 ||
            fabs(res->verdicts[0]->p_unsafe - a->want->p_unsafe) > 1e-6)
            a->failures++;
        lg_result_free(res);
    }
    return NULL;
}

typedef struct sess_arg {
    const lg_model *m;
    int32_t id0;
    float first_logit;
    int failures;
} sess_arg;

static void *session_user(void *p) {
    sess_arg *a = p;
    lg_session *s = NULL;
    lg_error e;
    if (lg_session_create(a->m, &s, &e) != LG_OK) {
        a->failures++;
        return NULL;
    }
    int32_t ids[8];
    for (int i = 0; i < 8; i++) ids[i] = a->id0 + i;
    const float *logits = NULL;
    if (lg_session_eval(s, ids, 8, NULL, 0, 0, &logits) != LG_OK)
        a->failures++;
    else
        a->first_logit = logits[0];
    lg_session_free(s);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    lg_guard *g = open_guard(3, 0, 0, 0);
    lg_image *img = load("p01_rgb_384x384.png");
    lg_policy *pol = policy(NULL, NULL);
    lg_guard *ref = open_guard(1, 0, 0, 0);
    lg_assess_params ap = params(LG_RATIONALE_ALWAYS);
    lg_verdict *want = NULL;
    assert_int_equal(lg_guard_assess(ref, img, pol, &ap, &want), LG_OK);
    pthread_t th[8];
    thread_arg ta[4];
    sess_arg sa[4];
    for (int i = 0; i < 4; i++) {
        ta[i] = (thread_arg){g, img, want, 0};
        sa[i] = (sess_arg){lg_guard_model(ref), 100 + 10 * i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, submitter, &ta[i]), 0);
        assert_int_equal(pthread_create(&th[4 + i], NULL, session_user, &sa[i]), 0);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ta[i].failures, 0);
        assert_int_equal(sa[i].failures, 0);
    }
    /* the sessions saw what a lone session sees */
    sess_arg lone = {lg_guard_model(ref), 100, 0, 0};
    session_user(&lone);
    assert_true(lone.first_logit == sa[0].first_logit);
    lg_verdict_free(want);
    lg_policy_free(pol);
    lg_image_free(img);
    lg_guard_free(ref);
    lg_guard_free(g);
}

/* Streaming: each policy's pieces, concatenated, are its verdict's answer. */
typedef struct stream_buf {
    char text[2][8192];
    size_t len[2];
    int calls;
} stream_buf;

static void on_text(void *user, size_t policy, const char *text, size_t len) {
    stream_buf *b = user;
    if (policy < 2 && b->len[policy] + len < sizeof b->text[0]) {
        memcpy(b->text[policy] + b->len[policy], text, len);
        b->len[policy] += len;
    }
    b->calls++;
}

static void test_streaming(void **state) {
    (void)state;
    lg_guard *g = open_guard(2, 0, 0, 0);
    lg_image *img = load("p02_rgb_640x480.jpg");
    lg_policy *pols[2] = {policy(NULL, NULL), policy("O3", NULL)};
    const lg_policy *cp[2] = {pols[0], pols[1]};
    int caps[] = {3, 24}; /* a cap of 3 tokens closes the rationale early, maybe mid-escape */
    for (int c = 0; c < 2; c++) {
        lg_assess_params ap = params(LG_RATIONALE_ALWAYS);
        ap.max_rationale_tokens = caps[c];
        stream_buf sb = {0};
        lg_request r = {.image = img,
                        .policies = cp,
                        .n_policies = 2,
                        .params = &ap,
                        .on_text = on_text,
                        .user = &sb};
        lg_result *res = NULL;
        lg_error e;
        assert_int_equal(lg_guard_assess_many(g, &r, 1, &res, &e), LG_OK);
        assert_int_equal(res->status, LG_OK);
        for (int i = 0; i < 2; i++) {
            sb.text[i][sb.len[i]] = '\0';
            assert_string_equal(sb.text[i], res->verdicts[i]->answer);
        }
        assert_true(sb.calls >= 6); /* rating, category and at least one more piece each */
        lg_result_free(res);
    }
    for (int i = 0; i < 2; i++) lg_policy_free(pols[i]);
    lg_image_free(img);
    lg_guard_free(g);
}

/* lg_session_eval_batch gives each item what lg_session_eval gives it alone, bit for bit. */
static void test_eval_batch(void **state) {
    (void)state;
    lg_guard *g = open_guard(1, 0, 0, 0);
    const lg_model *m = lg_guard_model(g);
    int64_t nv = lg_model_n_vocab(m);
    lg_session *a[3], *b[3];
    lg_error e;
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = 200 + 7 * i;
    const float *l = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lg_session_create(m, &a[i], &e), LG_OK);
        assert_int_equal(lg_session_create(m, &b[i], &e), LG_OK);
        assert_int_equal(lg_session_eval(a[i], prompt, 40 - 5 * (size_t)i, NULL, 0, 0, &l), LG_OK);
        assert_int_equal(lg_session_eval(b[i], prompt, 40 - 5 * (size_t)i, NULL, 0, 0, &l), LG_OK);
    }
    /* 1, 2 and 6 tokens: each its own arithmetic class, and the last with every row's logits */
    int32_t ids[3][6] = {{11}, {12, 13}, {14, 15, 16, 17, 18, 19}};
    size_t n[3] = {1, 2, 6};
    lg_eval_item items[4];
    for (int i = 0; i < 3; i++)
        items[i] = (lg_eval_item){.session = a[i], .ids = ids[i], .n = n[i], .all_logits = i == 2};
    int32_t too_long[600] = {0};
    items[3] = (lg_eval_item){.session = a[0], .ids = too_long, .n = 600};
    assert_int_equal(lg_session_eval_batch(items, 4), LG_OK);
    assert_int_equal(items[3].status, LG_E_ARG);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(items[i].status, LG_OK);
        const float *want = NULL;
        assert_int_equal(lg_session_eval(b[i], ids[i], n[i], NULL, 0, i == 2, &want), LG_OK);
        size_t rows = i == 2 ? n[i] : 1;
        assert_memory_equal(items[i].logits, want, rows * (size_t)nv * sizeof(float));
        assert_int_equal(lg_session_n_past(a[i]), lg_session_n_past(b[i]));
    }
    for (int i = 0; i < 3; i++) {
        lg_session_free(a[i]);
        lg_session_free(b[i]);
    }
    lg_guard_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_equals_one_by_one),
        cmocka_unit_test(test_one_pass_options),
        cmocka_unit_test(test_mixed_batch),
        cmocka_unit_test(test_policies_per_image),
        cmocka_unit_test(test_kv_budget),
        cmocka_unit_test(test_cancel_and_callbacks),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_eval_batch),
        cmocka_unit_test(test_streaming),
    };
    /* LG_TEST_FILTER=test_threads: the ThreadSanitizer run of scripts/test takes only those */
    const char *filter = getenv("LG_TEST_FILTER");
    if (filter && *filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
