/*
 * fuzz_wds.c — the WebDataset reader of annotate: the input is written as a shard (shard.tar:
 * libarchive detects tar, gzip, zstd, ...) and read member by member into items grouped by key.
 */
#include "fuzz_common.h"

#include "annotate.h"

/* annotate_progress.c's clock (the items' read times). */
double ann_now(void) {
    return 0;
}

static bool want(void *user, const char *key) {
    (void)user;
    return key[0] != 'z';
}

static int item(void *user, ann_item *it) {
    (void)user;
    ann_item_free(it);
    return 0;
}

static void found(void *user, const char *key) {
    (void)user;
    (void)key;
}

static void skipped(void *user, const char *path, const char *why) {
    (void)user;
    (void)path;
    (void)why;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_put("shard.tar", data, size);
    char path[512];
    snprintf(path, sizeof path, "%s/shard.tar", fz_dir());
    ann_unit u = {ANN_UNIT_SHARD, "shard", path};
    ann_expand_ops ops = {NULL, want, item, found, skipped, NULL, 1u << 20};
    ann_expand(&u, &ops);
    return 0;
}
