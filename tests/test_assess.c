/* LAYERS: core kernels image text policy model decode api */
/*
 * test_assess.c — the whole verdict path on the tiny LLaVA-OneVision fixture model: every
 * fixture image in every rationale mode gives a schema-valid answer with P(unsafe) in [0, 1] and
 * category probabilities that sum to 1; the rationale the constrained decoder writes equals the
 * model's own unconstrained greedy continuation for as long as that continuation is valid JSON
 * string content; sampling is reproducible from its seed; the default fast path gives the
 * --exact path's verdicts and probabilities (within 1e-4).
 */
#include "testutil.h"

#include "llavaguard.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *images[] = {
    "p01_rgb_384x384.png",     "p02_rgb_640x480.jpg",  "p03_rgb_tall_300x900.png",
    "p05_rgb_tiny_50x37.png",  "p06_gray_320x240.png", "p07_rgba_400x300.png",
    "p08_palette_256x192.png",
};
#define N_IMAGES (sizeof images / sizeof images[0])

typedef struct fixture {
    lg_guard *g;
    lg_policy *pol;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    char *dir = tu_fixture("llava-ov-tiny");
    lg_error e;
    lg_guard_params gp = lg_guard_params_default();
    if (lg_guard_open(dir, &gp, &f->g, &e) != LG_OK) fail_msg("guard: %s", e.msg);
    if (lg_policy_create_default("v1.2", &f->pol, &e) != LG_OK) fail_msg("policy: %s", e.msg);
    free(dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    lg_guard_free(f->g);
    lg_policy_free(f->pol);
    free(f);
    return 0;
}

static lg_image *load_image(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", name);
    char *path = tu_fixture(rel);
    lg_image *img = NULL;
    lg_error e;
    if (lg_image_load_file(path, NULL, &img, &e) != LG_OK) fail_msg("%s", e.msg);
    free(path);
    return img;
}

/* The answer is the verdict JSON: keys in training order, values among the options. */
static void check_answer(const lg_verdict *v, const lg_policy *pol, bool with_rationale) {
    json_error_t je;
    json_t *j = json_loads(v->answer, 0, &je);
    if (!j) fail_msg("answer is not JSON (%s): %s", je.text, v->answer);
    void *it = json_object_iter(j);
    assert_string_equal(json_object_iter_key(it), "rating");
    it = json_object_iter_next(j, it);
    assert_string_equal(json_object_iter_key(it), "category");
    it = json_object_iter_next(j, it);
    if (with_rationale) {
        assert_string_equal(json_object_iter_key(it), "rationale");
        assert_string_equal(json_string_value(json_object_get(j, "rationale")), v->rationale);
    } else {
        assert_null(it);
        assert_null(v->rationale);
    }
    assert_string_equal(json_string_value(json_object_get(j, "rating")), v->rating);
    assert_string_equal(json_string_value(json_object_get(j, "category")), v->category);
    json_decref(j);
    assert_true(strcmp(v->rating, "Safe") == 0 || strcmp(v->rating, "Unsafe") == 0);
    assert_true(v->p_unsafe >= 0.0 && v->p_unsafe <= 1.0);
    assert_int_equal(v->n_categories, lg_policy_n_categories(pol) + 1);
    double sum = 0;
    bool found = false;
    for (size_t i = 0; i < v->n_categories; i++) {
        assert_true(v->category_probs[i] >= 0.0);
        sum += v->category_probs[i];
        found |= strcmp(v->category_options[i], v->category) == 0;
    }
    assert_true(found);
    assert_true(fabs(sum - 1.0) < 1e-5);
    char sha[65];
    lg_policy_sha256(pol, sha);
    assert_string_equal(v->policy_sha256, sha);
}

static void test_every_image_every_mode(void **state) {
    fixture *f = *state;
    const lg_rationale_mode modes[] = {LG_RATIONALE_NEVER, LG_RATIONALE_UNSAFE,
                                       LG_RATIONALE_ALWAYS};
    for (size_t i = 0; i < N_IMAGES; i++) {
        lg_image *img = load_image(images[i]);
        for (size_t m = 0; m < 3; m++) {
            lg_assess_params ap = lg_assess_params_default();
            ap.rationale = modes[m];
            ap.max_rationale_tokens = 12;
            lg_verdict *v = NULL;
            if (lg_guard_assess(f->g, img, f->pol, &ap, &v) != LG_OK)
                fail_msg("%s: %s", images[i], lg_guard_errmsg(f->g));
            bool want =
                modes[m] == LG_RATIONALE_ALWAYS || (modes[m] == LG_RATIONALE_UNSAFE && v->unsafe);
            check_answer(v, f->pol, want);
            lg_verdict_free(v);
        }
        lg_image_free(img);
    }
}

/* The default fast path (split-bf16 kernels, int16 KV cache) against the --exact path (float32
 * reference kernels and cache) on whole verdicts: the same rating and category, and P(unsafe)
 * and every category probability within 1e-4 (measured: ~1e-6 on p02). */
static void test_fast_verdicts_match_exact(void **state) {
    fixture *f = *state;
    char *dir = tu_fixture("llava-ov-tiny");
    lg_guard_params gp = lg_guard_params_default();
    gp.model.kernels = "ref";
    lg_guard *exact = NULL;
    lg_error e;
    if (lg_guard_open(dir, &gp, &exact, &e) != LG_OK) fail_msg("guard: %s", e.msg);
    free(dir);
    static const char *some[] = {"p02_rgb_640x480.jpg", "p05_rgb_tiny_50x37.png",
                                 "p07_rgba_400x300.png"};
    lg_assess_params ap = lg_assess_params_default();
    ap.rationale = LG_RATIONALE_NEVER;
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) {
        lg_image *img = load_image(some[i]);
        lg_verdict *vf = NULL, *ve = NULL;
        if (lg_guard_assess(f->g, img, f->pol, &ap, &vf) != LG_OK ||
            lg_guard_assess(exact, img, f->pol, &ap, &ve) != LG_OK)
            fail_msg("%s: %s %s", some[i], lg_guard_errmsg(f->g), lg_guard_errmsg(exact));
        assert_string_equal(vf->rating, ve->rating);
        assert_string_equal(vf->category, ve->category);
        double worst = fabs(vf->p_unsafe - ve->p_unsafe);
        assert_int_equal(vf->n_categories, ve->n_categories);
        for (size_t c = 0; c < vf->n_categories; c++)
            worst = fmax(worst, fabs(vf->category_probs[c] - ve->category_probs[c]));
        print_message("  %s: P(unsafe) %.9f vs exact %.9f, worst probability gap %.2g\n", some[i],
                      vf->p_unsafe, ve->p_unsafe, worst);
        assert_true(worst < 1e-4);
        lg_verdict_free(vf);
        lg_verdict_free(ve);
        lg_image_free(img);
    }
    lg_guard_free(exact);
}

/* Bytes that may stand unescaped inside the rationale string. */
static bool plain_json_content(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] > 0x7e || b[i] == '"' || b[i] == '\\') return false;
    return n > 0;
}

static void test_constrained_equals_unconstrained_when_valid(void **state) {
    fixture *f = *state;
    lg_image *img = load_image("p02_rgb_640x480.jpg");
    lg_assess_params ap = lg_assess_params_default();
    ap.max_rationale_tokens = 16;
    lg_verdict *v = NULL;
    if (lg_guard_assess(f->g, img, f->pol, &ap, &v) != LG_OK) fail_msg("%s", lg_guard_errmsg(f->g));

    /* Rebuild the same prompt with the public API in a separate session. */
    const lg_model *model = lg_guard_model(f->g);
    lg_tokenizer *tok = lg_guard_tokenizer(f->g);
    lg_error e;
    lg_preprocessor *pp = NULL;
    char *dir = tu_fixture("llava-ov-tiny");
    assert_int_equal(lg_preprocessor_open(dir, &pp, &e), LG_OK);
    lg_pixels *px = NULL;
    assert_int_equal(lg_preprocess(pp, img, &px, &e), LG_OK);
    lg_session *s = NULL;
    assert_int_equal(lg_session_create(model, &s, &e), LG_OK);
    float *feat = NULL;
    int64_t rows = 0;
    assert_int_equal(lg_session_encode_image(s, px, &feat, &rows), LG_OK);
    const char *text = lg_policy_text(f->pol);
    char *prompt = NULL;
    size_t plen = 0;
    assert_int_equal(lg_chat_render(lg_guard_chat_template(f->g), text, strlen(text), 1, rows, 1,
                                    &prompt, &plen, &e),
                     LG_OK);
    /* the forced answer up to the rationale's first character, in canonical tokens */
    const char *mark = strstr(v->answer, "\"rationale\": \"");
    assert_non_null(mark);
    size_t prefix_len = (size_t)(mark - v->answer) + strlen("\"rationale\": \"");
    size_t full_len = plen + prefix_len;
    char *full = malloc(full_len + 1);
    memcpy(full, prompt, plen);
    memcpy(full + plen, v->answer, prefix_len);
    full[full_len] = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(lg_tokenizer_encode(tok, full, full_len, &ids, &n), LG_OK);

    lg_generate_params gen = lg_generate_params_default();
    gen.max_new_tokens = 16;
    int32_t *out = NULL;
    size_t n_out = 0;
    assert_int_equal(lg_session_generate(s, ids, n, feat, rows, &gen, &out, &n_out), LG_OK);
    /* the unconstrained continuation, as far as it is plain string content */
    char cont[4096];
    size_t clen = 0, n_valid = 0;
    for (size_t i = 0; i < n_out; i++) {
        size_t bl = 0;
        const uint8_t *b = lg_tokenizer_token_bytes(tok, out[i], &bl);
        if (!b || lg_tokenizer_is_special(tok, out[i]) || !plain_json_content(b, bl) ||
            clen + bl >= sizeof cont)
            break;
        memcpy(cont + clen, b, bl);
        clen += bl;
        n_valid++;
    }
    assert_true(n_valid >= 3); /* the comparison below must not be vacuous */
    const char *rationale_raw = v->answer + prefix_len;
    if (strncmp(rationale_raw, cont, clen) != 0)
        fail_msg("constrained rationale '%.*s' differs from unconstrained greedy '%.*s'", (int)clen,
                 rationale_raw, (int)clen, cont);

    lg_free(out);
    lg_free(ids);
    free(full);
    lg_free(prompt);
    lg_free(feat);
    lg_session_free(s);
    lg_pixels_free(px);
    lg_preprocessor_free(pp);
    free(dir);
    lg_verdict_free(v);
    lg_image_free(img);
}

static void test_sampling_reproducible_and_policy_states(void **state) {
    fixture *f = *state;
    lg_image *img = load_image("p05_rgb_tiny_50x37.png");
    lg_assess_params ap = lg_assess_params_default();
    ap.temperature = 0.2f;
    ap.top_p = 0.95f;
    ap.top_k = 50;
    ap.seed = 7;
    ap.max_rationale_tokens = 10;
    lg_verdict *a = NULL, *b = NULL;
    assert_int_equal(lg_guard_assess(f->g, img, f->pol, &ap, &a), LG_OK);
    assert_int_equal(lg_guard_assess(f->g, img, f->pol, &ap, &b), LG_OK);
    assert_string_equal(a->answer, b->answer);
    check_answer(a, f->pol, true);
    lg_verdict_free(a);
    lg_verdict_free(b);
    /* a different policy gets its own hash and schema */
    lg_policy *p2 = NULL;
    lg_error e;
    assert_int_equal(lg_policy_create_default("v1.2", &p2, &e), LG_OK);
    assert_int_equal(lg_policy_set_states(p2, "O3,O4", LG_CATEGORY_NONVIOLATING), LG_OK);
    ap = lg_assess_params_default();
    ap.rationale = LG_RATIONALE_NEVER;
    assert_int_equal(lg_guard_assess(f->g, img, p2, &ap, &a), LG_OK);
    check_answer(a, p2, false);
    char sha1[65];
    lg_policy_sha256(f->pol, sha1);
    assert_string_not_equal(a->policy_sha256, sha1);
    lg_verdict_free(a);
    lg_policy_free(p2);
    lg_image_free(img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_image_every_mode),
        cmocka_unit_test(test_fast_verdicts_match_exact),
        cmocka_unit_test(test_constrained_equals_unconstrained_when_valid),
        cmocka_unit_test(test_sampling_reproducible_and_policy_states),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
