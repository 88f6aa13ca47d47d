/*
 * fuzz_st_index.c — sharded weights: the input is model.safetensors.index.json; it may name the
 * two small valid shards written next to it (a.safetensors, b.safetensors) or anything else.
 */
#include "fuzz_common.h"

#include "model/model.h"

/* A one-tensor safetensors file: tensor `name`, F32 [2]. */
static void shard(const char *file, const char *name) {
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr,
                     "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", name);
    uint8_t buf[256] = {0};
    uint64_t len = (uint64_t)n;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(len >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)n);
    fz_put(file, buf, 8 + (size_t)n + 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) {
        once = 1;
        shard("a.safetensors", "x");
        shard("b.safetensors", "y");
    }
    fz_put("model.safetensors.index.json", data, size);
    st_set set;
    if (st_open_dir(fz_dir(), &set, NULL) == LG_OK) st_find(&set, "x");
    st_close(&set);
    return 0;
}
