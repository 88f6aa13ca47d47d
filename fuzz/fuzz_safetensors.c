/*
 * fuzz_safetensors.c — a model folder's weights: the input is written as model.safetensors
 * (header length, JSON header, dtypes, shapes, offsets, data) and opened with st_open_dir.
 */
#include "fuzz_common.h"

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_put("model.safetensors.index.json", NULL, 0);
    fz_put("model.safetensors", data, size);
    st_set set;
    if (st_open_dir(fz_dir(), &set, NULL) == LG_OK) st_find(&set, "a");
    st_close(&set);
    return 0;
}
