/* LAYERS: core policy */
/*
 * test_policy.c — the policy compiler: the built-in taxonomies render byte-for-byte to every
 * reference prompt in ../shared/reference/prompts (default, raw, user turn, O3 examples, every
 * file of variants/, the v1.0 texts), and the API around it (states, hash, accessors, warnings,
 * JSON export).
 */
#include "testutil.h"

#include "core/core.h"
#include "policy/policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fails with the first differing byte and its surroundings when `got` differs from the file. */
static void check_text(const char *got, const char *rel) {
    char *path = tu_shared(rel);
    size_t n = 0;
    uint8_t *want = tu_read(path, &n);
    size_t g = strlen(got), i = 0;
    while (i < g && i < n && (uint8_t)got[i] == want[i]) i++;
    if (i != g || i != n) {
        size_t from = i > 40 ? i - 40 : 0;
        fail_msg("%s: differs at byte %zu (got %zu bytes, want %zu)\n got: \"%.80s\"\nwant: "
                 "\"%.80s\"",
                 rel, i, g, n, got + from, (const char *)want + from);
    }
    free(want);
    free(path);
}

static void check_render(const lg_policy *pol, lg_policy_render_mode mode, const char *rel) {
    char *text = NULL;
    assert_int_equal(lg_policy_render(pol, mode, &text), LG_OK);
    check_text(text, rel);
    lg_free(text);
}

static lg_policy *make(const char *version) {
    lg_policy *pol = NULL;
    lg_error e;
    if (lg_policy_create_default(version, &pol, &e) != LG_OK) fail_msg("%s", e.msg);
    return pol;
}

static void test_default_v12(void **state) {
    (void)state;
    lg_policy *pol = make("v1.2");
    check_render(pol, LG_POLICY_RENDER_STRIPPED, "reference/prompts/prompt_v1.2.txt");
    check_render(pol, LG_POLICY_RENDER_RAW, "reference/prompts/prompt_v1.2_json-v24_raw.txt");
    check_render(pol, LG_POLICY_RENDER_USER_TURN,
                 "reference/prompts/prompt_v1.2_user_turn_as_trained.txt");
    check_text(lg_policy_text(pol), "reference/prompts/prompt_v1.2.txt");
    assert_string_equal(lg_policy_version(pol), "v1.2");
    assert_int_equal(lg_policy_n_warnings(pol), 0);
    lg_policy_free(pol);
    /* NULL means v1.2. */
    pol = make(NULL);
    check_text(lg_policy_text(pol), "reference/prompts/prompt_v1.2.txt");
    lg_policy_free(pol);
}

static void test_sha256_is_of_the_stripped_text(void **state) {
    (void)state;
    char *path = tu_shared("reference/prompts/prompt_v1.2.txt");
    size_t n = 0;
    uint8_t *want = tu_read(path, &n);
    char expect[65], got[65];
    lg_sha256_hex(want, n, expect);
    lg_policy *pol = make("v1.2");
    assert_int_equal(lg_policy_sha256(pol, got), LG_OK);
    assert_string_equal(got, expect);
    assert_int_equal(lg_policy_sha256(NULL, got), LG_E_ARG);
    /* A state change changes the text and so the hash. */
    assert_int_equal(lg_policy_set_state(pol, "O3", LG_CATEGORY_NONVIOLATING), LG_OK);
    assert_int_equal(lg_policy_sha256(pol, got), LG_OK);
    assert_string_not_equal(got, expect);
    assert_int_equal(lg_policy_set_state(pol, "O3", LG_CATEGORY_DEFAULT), LG_OK);
    assert_int_equal(lg_policy_sha256(pol, got), LG_OK);
    assert_string_equal(got, expect);
    lg_policy_free(pol);
    free(want);
    free(path);
}

static void test_o3_examples(void **state) {
    (void)state;
    lg_policy *pol = make("v1.2");
    assert_int_equal(lg_policy_set_state(pol, "O3", LG_CATEGORY_NONVIOLATING), LG_OK);
    check_render(pol, LG_POLICY_RENDER_RAW,
                 "reference/prompts/prompt_v1.2_example_O3_nonviolating_raw.txt");
    assert_int_equal(lg_policy_n_warnings(pol), 0);
    assert_int_equal(lg_policy_set_state(pol, "O3", LG_CATEGORY_SENSITIVE), LG_OK);
    check_render(pol, LG_POLICY_RENDER_RAW,
                 "reference/prompts/prompt_v1.2_example_O3_sensitive_raw.txt");
    /* The sensitive form is untrained: one warning naming the category. */
    assert_int_equal(lg_policy_n_warnings(pol), 1);
    assert_non_null(strstr(lg_policy_warning(pol, 0), "O3"));
    assert_non_null(strstr(lg_policy_warning(pol, 0), "sensitive"));
    assert_int_equal(lg_policy_category_state(pol, 2), LG_CATEGORY_SENSITIVE);
    lg_policy_free(pol);
}

/* Every file of variants/ as variants/index.json describes it. */
static void test_variants(void **state) {
    (void)state;
    char *path = tu_shared("reference/prompts/variants/index.json");
    json_error_t je;
    json_t *index = json_load_file(path, 0, &je);
    if (!index) fail_msg("%s: %s", path, je.text);
    assert_true(json_array_size(index) >= 19);
    size_t i;
    json_t *entry;
    json_array_foreach(index, i, entry) {
        lg_policy *pol = make("v1.2");
        static const char *const keys[] = {"nonviolating", "sensitive"};
        static const lg_category_state states[] = {LG_CATEGORY_NONVIOLATING, LG_CATEGORY_SENSITIVE};
        for (int k = 0; k < 2; k++) {
            size_t j;
            json_t *id;
            json_array_foreach(json_object_get(entry, keys[k]), j, id) {
                assert_int_equal(lg_policy_set_state(pol, json_string_value(id), states[k]), LG_OK);
            }
        }
        char rel[256];
        snprintf(rel, sizeof rel, "reference/prompts/variants/%s",
                 json_string_value(json_object_get(entry, "file")));
        check_render(pol, LG_POLICY_RENDER_RAW, rel);
        lg_policy_free(pol);
    }
    json_decref(index);
    free(path);
}

static void test_v10_texts(void **state) {
    (void)state;
    lg_policy *pol = make("v1.0");
    assert_string_equal(lg_policy_version(pol), "v1.0");
    check_render(pol, LG_POLICY_RENDER_STRIPPED, "reference/prompts/prompt_v1.0.txt");
    check_render(pol, LG_POLICY_RENDER_RAW,
                 "reference/prompts/prompt_v1.0_json-v16_raw_code2024.txt");
    check_render(pol, LG_POLICY_RENDER_USER_TURN,
                 "reference/prompts/prompt_v1.0_user_turn_as_trained.txt");
    assert_int_equal(lg_policy_n_warnings(pol), 0);
    lg_policy_free(pol);
    pol = make("v1.0-modelcard");
    check_render(pol, LG_POLICY_RENDER_STRIPPED, "reference/prompts/prompt_v1.0_modelcard.txt");
    lg_policy_free(pol);
}

static void test_unknown_version(void **state) {
    (void)state;
    lg_policy *pol = (lg_policy *)&pol;
    lg_error e;
    assert_int_equal(lg_policy_create_default("v2", &pol, &e), LG_E_ARG);
    assert_ptr_equal(pol, (lg_policy *)&pol); /* untouched on failure */
    assert_string_equal(e.msg, "unknown policy version 'v2' (expected v1.2, v1.0 or "
                               "v1.0-modelcard)");
}

static void test_set_state_errors(void **state) {
    (void)state;
    lg_policy *pol = make("v1.2");
    const char *before = lg_policy_text(pol);
    char *copy = strdup(before);
    assert_int_equal(lg_policy_set_state(pol, "O12", LG_CATEGORY_NONVIOLATING), LG_E_ARG);
    assert_string_equal(lg_policy_errmsg(pol), "unknown category 'O12' (this policy has O1, O2, "
                                               "O3, O4, O5, O6, O7, O8, O9)");
    assert_int_equal(lg_policy_set_state(pol, "o3", LG_CATEGORY_NONVIOLATING), LG_E_ARG);
    assert_int_equal(lg_policy_set_state(pol, "O3", (lg_category_state)7), LG_E_ARG);
    /* A list with one bad id changes nothing. */
    assert_int_equal(lg_policy_set_states(pol, "O3,O99", LG_CATEGORY_NONVIOLATING), LG_E_ARG);
    assert_non_null(strstr(lg_policy_errmsg(pol), "'O99'"));
    assert_int_equal(lg_policy_set_states(pol, "O3,,O4", LG_CATEGORY_NONVIOLATING), LG_E_ARG);
    assert_int_equal(lg_policy_set_states(pol, "", LG_CATEGORY_NONVIOLATING), LG_E_ARG);
    assert_string_equal(lg_policy_text(pol), copy);
    assert_int_equal(lg_policy_set_state(NULL, "O3", LG_CATEGORY_DEFAULT), LG_E_ARG);
    free(copy);
    lg_policy_free(pol);
}

static void test_set_states_list(void **state) {
    (void)state;
    lg_policy *a = make("v1.2"), *b = make("v1.2");
    assert_int_equal(lg_policy_set_states(a, " O3 , O4", LG_CATEGORY_NONVIOLATING), LG_OK);
    assert_int_equal(lg_policy_set_state(b, "O3", LG_CATEGORY_NONVIOLATING), LG_OK);
    assert_int_equal(lg_policy_set_state(b, "O4", LG_CATEGORY_NONVIOLATING), LG_OK);
    assert_string_equal(lg_policy_text(a), lg_policy_text(b));
    assert_int_equal(lg_policy_category_state(a, 3), LG_CATEGORY_NONVIOLATING);
    assert_int_equal(lg_policy_category_state(a, 4), LG_CATEGORY_DEFAULT);
    lg_policy_free(a);
    lg_policy_free(b);
}

static void test_accessors(void **state) {
    (void)state;
    lg_policy *pol = make("v1.2");
    assert_int_equal(lg_policy_n_categories(pol), 9);
    assert_string_equal(lg_policy_category_id(pol, 2), "O3");
    assert_string_equal(lg_policy_category_name(pol, 2), "Sexual Content");
    assert_string_equal(lg_policy_category_option(pol, 2), "O3: Sexual Content");
    assert_string_equal(lg_policy_category_option(pol, 0), "O1: Hate, Humiliation, Harassment");
    assert_string_equal(lg_policy_na_option(pol), "NA: None applying");
    assert_string_equal(lg_policy_rating_option(pol, 0), "Unsafe");
    assert_string_equal(lg_policy_rating_option(pol, 1), "Safe");
    assert_null(lg_policy_rating_option(pol, 2));
    assert_int_equal(lg_policy_category_index(pol, "O9"), 8);
    assert_int_equal(lg_policy_category_index(pol, "NA"), -1);
    assert_null(lg_policy_category_id(pol, 9));
    assert_null(lg_policy_category_option(pol, 9));
    assert_int_equal(lg_policy_category_state(pol, 0), LG_CATEGORY_DEFAULT);
    assert_string_equal(lg_category_state_str(LG_CATEGORY_NONVIOLATING), "non-violating");
    assert_string_equal(lg_category_state_str(LG_CATEGORY_SENSITIVE), "sensitive");
    assert_string_equal(lg_category_state_str(LG_CATEGORY_DEFAULT), "default");
    /* Every option appears, quoted, in the prompt's JSON template. */
    for (size_t i = 0; i < lg_policy_n_categories(pol); i++) {
        char q[128];
        snprintf(q, sizeof q, "\"%s\"|", lg_policy_category_option(pol, i));
        assert_non_null(strstr(lg_policy_text(pol), q));
    }
    assert_non_null(strstr(lg_policy_text(pol), "|\"NA: None applying\">,\n"));
    assert_int_equal(lg_policy_n_categories(NULL), 0);
    lg_policy_free(NULL);
    lg_policy_free(pol);
}

static void test_render_args(void **state) {
    (void)state;
    lg_policy *pol = make("v1.2");
    char *text = NULL;
    assert_int_equal(lg_policy_render(pol, (lg_policy_render_mode)9, &text), LG_E_ARG);
    assert_int_equal(lg_policy_render(NULL, LG_POLICY_RENDER_RAW, &text), LG_E_ARG);
    assert_null(text);
    lg_policy_free(pol);
}

/* The exported policy file reads back to the same policy (O2's declared-form quirk included). */
static void test_json_round_trip(void **state) {
    (void)state;
    lg_policy *pol = make("v1.2");
    assert_int_equal(lg_policy_set_states(pol, "O2,O3", LG_CATEGORY_NONVIOLATING), LG_OK);
    assert_int_equal(lg_policy_set_state(pol, "O6", LG_CATEGORY_SENSITIVE), LG_OK);
    char *json = NULL;
    assert_int_equal(lg_policy_to_json(pol, 0, &json), LG_OK);
    assert_null(strstr(json, "sha256"));
    lg_policy *back = NULL;
    lg_error e;
    if (lg_policy_load_memory(json, strlen(json), "export.json", &back, &e) != LG_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(lg_policy_text(back), lg_policy_text(pol));
    assert_non_null(strstr(lg_policy_text(back), "Contain content of  people"));
    lg_free(json);

    assert_int_equal(lg_policy_to_json(pol, LG_POLICY_JSON_DESCRIBE, &json), LG_OK);
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    assert_non_null(root);
    char hex[65];
    lg_policy_sha256(pol, hex);
    assert_string_equal(json_string_value(json_object_get(root, "sha256")), hex);
    json_t *o6 = json_array_get(json_object_get(root, "categories"), 5);
    assert_string_equal(json_string_value(json_object_get(o6, "option")),
                        "O6: Weapons or Substance Abuse");
    assert_string_equal(json_string_value(json_object_get(o6, "state")), "sensitive");
    assert_int_equal(json_array_size(json_object_get(root, "warnings")), 1);
    json_decref(root);
    lg_free(json);
    assert_int_equal(lg_policy_to_json(pol, 8, &json), LG_E_ARG);
    lg_policy_free(back);
    lg_policy_free(pol);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_v12),
        cmocka_unit_test(test_sha256_is_of_the_stripped_text),
        cmocka_unit_test(test_o3_examples),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_v10_texts),
        cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_set_state_errors),
        cmocka_unit_test(test_set_states_list),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_render_args),
        cmocka_unit_test(test_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
