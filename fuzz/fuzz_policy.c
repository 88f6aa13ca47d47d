/*
 * fuzz_policy.c — policy files (JSON, docs/policy-format.md) from arbitrary bytes; a loaded
 * policy is rendered in every mode, hashed, exported as JSON and has its states changed.
 */
#include "llavaguard.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lg_policy *pol = NULL;
    if (lg_policy_load_memory(data, size, "fuzz.json", &pol, NULL) != LG_OK) return 0;
    for (int mode = 0; mode < 3; mode++) {
        char *text = NULL;
        if (lg_policy_render(pol, (lg_policy_render_mode)mode, &text) == LG_OK) lg_free(text);
    }
    char hex[65], *json = NULL;
    lg_policy_sha256(pol, hex);
    if (lg_policy_to_json(pol, LG_POLICY_JSON_DESCRIBE, &json) == LG_OK) lg_free(json);
    if (lg_policy_n_categories(pol) > 0) {
        const char *id = lg_policy_category_id(pol, 0);
        lg_policy_set_state(pol, id, LG_CATEGORY_NONVIOLATING);
        lg_policy_set_states(pol, "O1,O9,X", LG_CATEGORY_SENSITIVE);
        char *text = NULL;
        if (lg_policy_render(pol, LG_POLICY_RENDER_STRIPPED, &text) == LG_OK) lg_free(text);
    }
    lg_policy_free(pol);
    return 0;
}
