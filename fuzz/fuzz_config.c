/*
 * fuzz_config.c — a model folder's config.json and generation_config.json (the input split at
 * its first NUL byte; no second part: no generation_config.json), read by mdl_config_load.
 */
#include "fuzz_common.h"

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p[2];
    size_t n[2];
    size_t k = fz_split(data, size, p, n, 2);
    fz_put("config.json", p[0], n[0]);
    fz_put("generation_config.json", k > 1 ? p[1] : NULL, k > 1 ? n[1] : 0);
    mdl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mdl_config_load(fz_dir(), &cfg, NULL);
    return 0;
}
