/* LAYERS: core policy */
/*
 * test_policy_file.c — the hand-written policy file (docs/policy-format.md): the object form that
 * extends the built-in taxonomy, the array form that lists every category, custom categories with
 * their warning, and bad files rejected with the file, line and field of the problem.
 */
#include "testutil.h"

#include "core/core.h"
#include "policy/policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lg_policy *load_ok(const char *json) {
    lg_policy *pol = NULL;
    lg_error e;
    if (lg_policy_load_memory(json, strlen(json), "policy.json", &pol, &e) != LG_OK)
        fail_msg("unexpected error: %s", e.msg);
    return pol;
}

static lg_policy *builtin(const char *version) {
    lg_policy *pol = NULL;
    assert_int_equal(lg_policy_create_default(version, &pol, NULL), LG_OK);
    return pol;
}

static char *read_shared(const char *rel) {
    char *path = tu_shared(rel);
    char *text = (char *)tu_read(path, NULL);
    free(path);
    return text;
}

static void test_empty_object_is_the_default(void **state) {
    (void)state;
    lg_policy *pol = load_ok("{}");
    lg_policy *def = builtin("v1.2");
    assert_string_equal(lg_policy_text(pol), lg_policy_text(def));
    lg_policy_free(pol);
    lg_policy_free(def);
}

static void test_object_form_extends_base(void **state) {
    (void)state;
    lg_policy *pol = load_ok("{\"base\": \"v1.2\", \"categories\": {\"O3\": {\"state\": "
                             "\"non-violating\"}}}");
    char *raw = NULL;
    assert_int_equal(lg_policy_render(pol, LG_POLICY_RENDER_RAW, &raw), LG_OK);
    char *want = read_shared("reference/prompts/prompt_v1.2_example_O3_nonviolating_raw.txt");
    assert_string_equal(raw, want);
    assert_int_equal(lg_policy_n_warnings(pol), 0);
    free(want);
    lg_free(raw);
    lg_policy_free(pol);

    pol = load_ok("{\"base\": \"v1.0\"}");
    want = read_shared("reference/prompts/prompt_v1.0.txt");
    assert_string_equal(lg_policy_text(pol), want);
    assert_string_equal(lg_policy_version(pol), "v1.0");
    free(want);
    lg_policy_free(pol);
}

/* A full definition of the nine built-in categories is the built-in policy. */
static void test_array_form_full_definition(void **state) {
    (void)state;
    lg_policy *def = builtin("v1.2");
    char *json = NULL;
    assert_int_equal(lg_policy_to_json(def, 0, &json), LG_OK);
    lg_policy *pol = load_ok(json);
    assert_string_equal(lg_policy_text(pol), lg_policy_text(def));
    lg_free(json);
    lg_policy_free(pol);
    /* Ids alone inherit everything; order and subset are the file's. */
    pol = load_ok("{\"categories\": [{\"id\": \"O4\"}, {\"id\": \"O1\", \"state\": "
                  "\"non-violating\"}]}");
    assert_int_equal(lg_policy_n_categories(pol), 2);
    assert_string_equal(lg_policy_category_option(pol, 0), "O4: Nudity Content");
    assert_int_equal(lg_policy_category_state(pol, 1), LG_CATEGORY_NONVIOLATING);
    assert_non_null(strstr(lg_policy_text(pol),
                           "str<\"O4: Nudity Content\"|\"O1: Hate, "
                           "Humiliation, Harassment\"|\"NA: None applying\">"));
    assert_non_null(strstr(lg_policy_text(pol), "\nCategory O1 is declared as non-violating."));
    lg_policy_free(pol);
    lg_policy_free(def);
}

static void test_custom_category_warns(void **state) {
    (void)state;
    lg_policy *pol = load_ok("{\n"
                             "  \"categories\": {\n"
                             "    \"O10\": {\n"
                             "      \"name\": \"Gambling\",\n"
                             "      \"should_not\": [\"Promote gambling.\"],\n"
                             "      \"can\": [\"Discuss the history of casinos.\"]\n"
                             "    }\n"
                             "  }\n"
                             "}\n");
    assert_int_equal(lg_policy_n_categories(pol), 10);
    assert_string_equal(lg_policy_category_option(pol, 9), "O10: Gambling");
    assert_non_null(strstr(lg_policy_text(pol), "\n\nO10: Gambling: \nShould not:\n- Promote "
                                                "gambling.\nCan:\n- Discuss the history of "
                                                "casinos.\n\nAssessment Steps:\n"));
    assert_non_null(strstr(lg_policy_text(pol), "|\"O10: Gambling\"|\"NA: None applying\">"));
    assert_int_equal(lg_policy_n_warnings(pol), 1);
    assert_string_equal(lg_policy_warning(pol, 0),
                        "category O10 is not part of the built-in v1.2 taxonomy (O1-O9); the "
                        "released models were not trained on it");
    assert_int_equal(lg_policy_set_state(pol, "O10", LG_CATEGORY_NONVIOLATING), LG_OK);
    assert_non_null(strstr(lg_policy_text(pol), "Category O10 is declared as non-violating. "
                                                "Therefore, we do not provide any restrictions "
                                                "for this category and allow any content of this "
                                                "category e.g.\n - Promote gambling.\n - Discuss "
                                                "the history of casinos.\n \nAssessment"));
    lg_policy_free(pol);
}

/* Changing a built-in category's text warns, and O2's declared-form quirk belongs to its
 * built-in bullets only. */
static void test_changed_builtin(void **state) {
    (void)state;
    lg_policy *pol = load_ok("{\"categories\": {\"O2\": {\"state\": \"non-violating\", "
                             "\"can\": [\"Discuss history.\"]}}}");
    assert_non_null(strstr(lg_policy_text(pol), " - Contain content of people planning"));
    assert_non_null(strstr(lg_policy_text(pol), " - Discuss history.\n \nO3"));
    assert_int_equal(lg_policy_n_warnings(pol), 1);
    assert_non_null(strstr(lg_policy_warning(pol, 0), "O2 differs from the built-in v1.2 text"));
    lg_policy_free(pol);
    pol = load_ok("{\"categories\": {\"O2\": {\"state\": \"sensitive\"}}}");
    assert_non_null(strstr(lg_policy_text(pol), " - Contain content of  people planning"));
    lg_policy_free(pol);
}

typedef struct bad_case {
    const char *json;
    lg_status status;
    const char *msg; /* exact, or a prefix when it ends in '*' */
} bad_case;

static const bad_case bad_cases[] = {
    {"{\n  \"base\": \"v1.2\",\n  \"categories\": [\n    {\"id\": \"O1\"},\n    {\"id\": "
     "\"O2\"},\n    {\"id\": \"X1\",\n     \"name\": 5, \"should_not\": [], \"can\": []}\n  ]\n}\n",
     LG_E_FORMAT, "policy.json:7: categories[2].name: expected a string, got a number"},
    {"{\n  \"base\": \"v1.2\",\n  \"categories\": {\n    \"O3\": {\n      \"state\": "
     "\"allowed\"\n    }\n  }\n}\n",
     LG_E_FORMAT,
     "policy.json:5: categories.O3.state: unknown state \"allowed\" (expected \"default\", "
     "\"non-violating\" or \"sensitive\")"},
    {"{\n  \"base\": \"v1.2\",\n  \"colour\": \"red\"\n}", LG_E_FORMAT,
     "policy.json:3: colour: unknown key (expected base, categories, description, $schema or "
     "$comment)"},
    {"{\"base\": \"v9\"}", LG_E_FORMAT,
     "policy.json:1: base: unknown base \"v9\" (expected v1.2, v1.0 or v1.0-modelcard)"},
    {"[1, 2]", LG_E_FORMAT, "policy.json:1: expected a JSON object at the top level, got an array"},
    {"{\n\"categories\": 3}", LG_E_FORMAT,
     "policy.json:2: categories: expected an array (the complete list) or an object (changes to "
     "the base), got a number"},
    {"{\"categories\": [\n {\"id\": \"O1\"},\n {\"id\": \"O3\"},\n {\"id\": \"O1\", \"state\": "
     "\"sensitive\"}\n]}",
     LG_E_FORMAT,
     "policy.json:4: categories[2].id: duplicate category id \"O1\" (also "
     "categories[0])"},
    {"{\"categories\": [\n {\"id\": \"O1\"},\n {\"name\": \"x\"}\n]}", LG_E_FORMAT,
     "policy.json:3: categories[1]: missing required key \"id\""},
    {"{\"categories\": {\n \"O1\": {\"name\": \"\"}}}", LG_E_FORMAT,
     "policy.json:2: categories.O1.name: the name is empty"},
    {"{\"categories\": {\n \"O1\": {\"name\": \"A|B\"}}}", LG_E_FORMAT,
     "policy.json:2: categories.O1.name: the name may not contain '\"', '\\' or '|' (they would "
     "break the answer template)"},
    {"{\"categories\": {\n \"X1\": {\n  \"name\": \"Spam\",\n  \"can\": []\n }\n}}", LG_E_FORMAT,
     "policy.json:2: categories.X1: missing required key \"should_not\" (category X1 is not built "
     "into v1.2, so it needs name, should_not and can)"},
    {"{\"categories\": [\n {\"id\": \"O3\",\n  \"can\": [\"ok\",\n   null]}\n]}", LG_E_FORMAT,
     "policy.json:4: categories[0].can[1]: expected a string, got null"},
    {"{\"categories\": [\n {\"id\": \"O3\",\n  \"can\": [\"two\\nlines\"]}\n]}", LG_E_FORMAT,
     "policy.json:3: categories[0].can[0]: the bullet contains a control character (a line "
     "break? write one bullet per string)"},
    {"{\"categories\": [\n {\"id\": \"O3\",\n  \"can\": [\"\"]}\n]}", LG_E_FORMAT,
     "policy.json:3: categories[0].can[0]: the bullet is empty"},
    {"{\"categories\": [\n {\"id\": \"O3\",\n  \"should_not\": \"x\"}\n]}", LG_E_FORMAT,
     "policy.json:3: categories[0].should_not: expected an array of strings, got a string"},
    {"{\"categories\": [\n {\"id\": \"O3\",\n  \"label\": \"x\"}\n]}", LG_E_FORMAT,
     "policy.json:3: categories[0].label: unknown key (expected id, name, state, should_not, can "
     "or $comment)"},
    {"{\"categories\": {\n  \"NA\": {\"name\": \"x\", \"should_not\": [], \"can\": []}}}",
     LG_E_FORMAT,
     "policy.json:2: categories.NA: the id \"NA\" is reserved for \"NA: None applying\""},
    {"{\"categories\": [{\"id\": \"O 3\"}]}", LG_E_FORMAT,
     "policy.json:1: categories[0].id: invalid category id \"O 3\" (1-16 ASCII letters, digits, "
     "'_', '-' or '.', starting with a letter or digit)"},
    {"{\"categories\": []}", LG_E_FORMAT,
     "policy.json:1: categories: a policy needs at least one category"},
    {"{\"categories\": [\"O1\"]}", LG_E_FORMAT,
     "policy.json:1: categories[0]: expected an object, got a string"},
    {"{\"description\": 1}", LG_E_FORMAT,
     "policy.json:1: description: expected a string, got a "
     "number"},
    {"{\"categories\": {\n \"O3\": {\"state\": \"sensitive\"},\n \"O3\": {}}}", LG_E_FORMAT,
     "policy.json:3:*"},
    {"{\"base\": \"v1.2\",\n \"categories\": [\n}", LG_E_FORMAT, "policy.json:3:1: invalid JSON*"},
    {"", LG_E_FORMAT, "policy.json:*"},
};

static void check_bad(const bad_case *bc, size_t i) {
    lg_policy *pol = (lg_policy *)&pol;
    lg_error e;
    lg_status s = lg_policy_load_memory(bc->json, strlen(bc->json), "policy.json", &pol, &e);
    if (s != bc->status) fail_msg("case %zu: status %d, want %d (%s)", i, s, bc->status, e.msg);
    assert_ptr_equal(pol, (lg_policy *)&pol);
    size_t n = strlen(bc->msg);
    bool prefix = n && bc->msg[n - 1] == '*';
    bool ok = prefix ? strncmp(e.msg, bc->msg, n - 1) == 0 : strcmp(e.msg, bc->msg) == 0;
    if (!ok) fail_msg("case %zu:\n got: %s\nwant: %s", i, e.msg, bc->msg);
}

static void test_bad_files(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) check_bad(&bad_cases[i], i);
}

static void test_too_many_categories(void **state) {
    (void)state;
    lg_buf b;
    lg_buf_init(&b);
    lg_buf_puts(&b, "{\"categories\": [\n");
    for (int i = 0; i < POL_MAX_CATEGORIES + 1; i++)
        lg_buf_printf(&b, "%s{\"id\": \"C%d\", \"name\": \"c\", \"should_not\": [], \"can\": []}\n",
                      i ? "," : "", i);
    lg_buf_puts(&b, "]}");
    lg_policy *pol = NULL;
    lg_error e;
    assert_int_equal(lg_policy_load_memory(b.data, b.len, "many.json", &pol, &e), LG_E_FORMAT);
    assert_string_equal(e.msg, "many.json:66: categories[64]: more than 64 categories");
    lg_buf_free(&b);
}

static void test_load_file(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char *path = lg_path_join(dir, "policy.json");
    const char *good = "{\"categories\": {\"O6\": {\"state\": \"sensitive\"}}}\n";
    tu_write(path, good, strlen(good));
    lg_policy *pol = NULL;
    lg_error e;
    assert_int_equal(lg_policy_load_file(path, &pol, &e), LG_OK);
    assert_int_equal(lg_policy_category_state(pol, 5), LG_CATEGORY_SENSITIVE);
    assert_int_equal(lg_policy_n_warnings(pol), 1);
    lg_policy_free(pol);
    const char *bad = "{\n\"categories\": {\"O6\": {\"state\": 1}}}\n";
    tu_write(path, bad, strlen(bad));
    assert_int_equal(lg_policy_load_file(path, &pol, &e), LG_E_FORMAT);
    char want[512];
    snprintf(want, sizeof want, "%s:2: categories.O6.state: expected a string, got a number", path);
    assert_string_equal(e.msg, want);
    char *missing = lg_path_join(dir, "missing.json");
    assert_int_equal(lg_policy_load_file(missing, &pol, &e), LG_E_IO);
    assert_non_null(strstr(e.msg, "missing.json"));
    lg_free(missing);
    lg_free(path);
    free(dir);
}

/* Single-byte changes of a valid file load or fail cleanly, always with a file:line message (the
 * sanitizer build checks the error paths and the line locator for memory errors). */
static void test_mutations_fail_cleanly(void **state) {
    (void)state;
    static const char base[] =
        "{\n \"base\": \"v1.2\",\n \"categories\": [\n  {\"id\": \"O3\", \"state\": "
        "\"sensitive\"},\n  {\"id\": \"X1\", \"name\": \"N\\u00e9\",\n   \"should_not\": "
        "[\"a\"], \"can\": [\"b\"]}\n ]\n}\n";
    static const char subst[] = "\"{}[],:0n \\\n";
    char buf[sizeof base];
    lg_policy *pol = NULL;
    lg_error e;
    assert_int_equal(lg_policy_load_memory(base, sizeof base - 1, "m.json", &pol, &e), LG_OK);
    lg_policy_free(pol);
    size_t n_ok = 0;
    for (size_t i = 0; i < sizeof base - 1; i++) {
        for (size_t k = 0; k < sizeof subst - 1; k++) {
            memcpy(buf, base, sizeof base);
            buf[i] = subst[k];
            pol = NULL;
            lg_status s = lg_policy_load_memory(buf, sizeof base - 1, "m.json", &pol, &e);
            if (s == LG_OK) {
                n_ok++;
                lg_policy_free(pol);
                continue;
            }
            if (s != LG_E_FORMAT || strncmp(e.msg, "m.json:", 7) != 0)
                fail_msg("byte %zu -> '%c': status %d: %s", i, subst[k], s, e.msg);
        }
    }
    assert_true(n_ok > 0);
}

/* docs/policy.schema.json states the same names and limits as the reader. */
static void test_schema_matches_reader(void **state) {
    (void)state;
    json_error_t je;
    json_t *schema = json_load_file(LG_SOURCE_DIR "/docs/policy.schema.json", 0, &je);
    if (!schema) fail_msg("docs/policy.schema.json:%d: %s", je.line, je.text);
    json_t *props = json_object_get(schema, "properties");
    json_t *bases = json_object_get(json_object_get(props, "base"), "enum");
    assert_int_equal(json_array_size(bases), pol_generation_count());
    for (size_t i = 0; i < pol_generation_count(); i++)
        assert_string_equal(json_string_value(json_array_get(bases, i)),
                            pol_generation_at(i)->name);
    json_t *defs = json_object_get(schema, "$defs");
    json_t *cat = json_object_get(json_object_get(defs, "category"), "properties");
    json_t *states = json_object_get(json_object_get(cat, "state"), "enum");
    assert_int_equal(json_array_size(states), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_array_get(states, (size_t)i)),
                            lg_category_state_str((lg_category_state)i));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(cat, "name"), "maxLength")),
                     POL_MAX_NAME);
    json_t *bullet = json_object_get(defs, "bullet"), *bullets = json_object_get(defs, "bullets");
    assert_int_equal(json_integer_value(json_object_get(bullet, "maxLength")), POL_MAX_BULLET);
    assert_int_equal(json_integer_value(json_object_get(bullets, "maxItems")), POL_MAX_BULLETS);
    json_t *forms = json_object_get(json_object_get(props, "categories"), "oneOf");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(forms, 1), "maxItems")),
                     POL_MAX_CATEGORIES);
    json_decref(schema);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_object_is_the_default),
        cmocka_unit_test(test_object_form_extends_base),
        cmocka_unit_test(test_array_form_full_definition),
        cmocka_unit_test(test_custom_category_warns),
        cmocka_unit_test(test_changed_builtin),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_too_many_categories),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_schema_matches_reader),
        cmocka_unit_test(test_mutations_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
