/* LAYERS: core kernels model */
/*
 * test_safetensors.c — the safetensors reader against well-formed, malicious and truncated files
 * written into a temporary folder: every bad file must give LG_E_FORMAT (or LG_E_IO) with a
 * message that names the problem, never a crash; sharded folders resolve through
 * model.safetensors.index.json. A few thousand random mutations of a valid file check that no
 * input crashes the parser (run it under ASan/UBSan).
 */
#include "testutil.h"

#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes a safetensors file: 8-byte length (or `len_override` when non-zero), header, data. */
static char *write_st(const char *dir, const char *name, const char *header, const void *data,
                      size_t n_data, uint64_t len_override) {
    size_t hl = strlen(header);
    uint64_t len = len_override ? len_override : hl;
    size_t total = 8 + hl + n_data;
    uint8_t *buf = malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(len >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (n_data) memcpy(buf + 8 + hl, data, n_data);
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    tu_write(path, buf, total);
    free(buf);
    return path;
}

/* Opens one file; returns the status and copies the message. */
static lg_status open_one(const char *path, char *msg) {
    st_set set = {0};
    lg_error e;
    lg_err_clear(&e);
    lg_status s = st_add_file(&set, path, &e);
    if (s == LG_OK) s = st_finish(&set, &e);
    st_close(&set);
    if (msg) snprintf(msg, LG_ERROR_MSG_MAX, "%s", e.msg);
    return s;
}

static void expect_bad(const char *header, size_t n_data, uint64_t len_override,
                       const char *needle) {
    char *dir = tu_tmpdir();
    uint8_t data[256] = {0};
    LG_ASSERT(n_data <= sizeof data);
    char *path = write_st(dir, "model.safetensors", header, data, n_data, len_override);
    char msg[LG_ERROR_MSG_MAX];
    lg_status s = open_one(path, msg);
    if (s != LG_E_FORMAT || !strstr(msg, needle))
        fail_msg("header %s: status %d, message \"%s\" (wanted \"%s\")", header, s, msg, needle);
    remove(path);
    rmdir(dir);
    free(path);
    free(dir);
}

static void test_valid_file(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    /* a: 2x3 F32 (24 bytes) at 0, b: 4 BF16 at 24, empty: 0 elements, an I64 scalar. */
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
    int64_t c = 7;
    uint8_t data[24 + 8 + 8];
    memcpy(data, a, 24);
    memcpy(data + 24, b, 8);
    memcpy(data + 32, &c, 8);
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                      "\"empty\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[32,32]},"
                      "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]}}   ";
    char *path = write_st(dir, "model.safetensors", hdr, data, sizeof data, 0);
    st_set set;
    lg_error e;
    assert_int_equal(st_open_dir(dir, &set, &e), LG_OK);
    assert_int_equal(set.n_tensors, 4);
    const st_tensor *ta = st_find(&set, "a"), *tb = st_find(&set, "b");
    assert_non_null(ta);
    assert_non_null(tb);
    assert_null(st_find(&set, "__metadata__"));
    assert_null(st_find(&set, "zzz"));
    assert_true(ta->usable && ta->dt == LG_DT_F32 && ta->n_dims == 2 && ta->shape[1] == 3);
    float a1;
    memcpy(&a1, ta->data + 4, 4);
    assert_true(a1 == 2.0f);
    assert_true(tb->dt == LG_DT_BF16 && tb->numel == 4);
    const st_tensor *tc = st_find(&set, "c");
    assert_false(tc->usable);
    assert_int_equal(tc->n_dims, 0);
    assert_int_equal(tc->numel, 1);
    assert_int_equal(st_find(&set, "empty")->nbytes, 0);
    st_close(&set);
    st_close(&set); /* idempotent */
    remove(path);
    free(path);
    free(dir);
}

static void test_bad_lengths(void **state) {
    (void)state;
    char msg[LG_ERROR_MSG_MAX];
    char *dir = tu_tmpdir();
    /* shorter than the length prefix */
    char *p = malloc(strlen(dir) + 16);
    sprintf(p, "%s/short", dir);
    tu_write(p, "abc", 3);
    assert_int_equal(open_one(p, msg), LG_E_FORMAT);
    assert_non_null(strstr(msg, "too short"));
    remove(p);
    free(p);
    free(dir);
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    /* header length beyond the file */
    expect_bad(ok, 4, 4096, "past the end");
    /* absurd header length (a 2^63 prefix must not be trusted for allocation) */
    expect_bad(ok, 4, (uint64_t)1 << 63, "out of range");
    expect_bad(ok, 4, 1, "out of range");
}

static void test_bad_json(void **state) {
    (void)state;
    expect_bad("{\"a\": {\"dtype\": \"F32\", ", 0, 0, "not valid JSON");
    expect_bad("\xff\xfe garbage", 0, 0, "not valid JSON");
    expect_bad("[1, 2, 3]", 0, 0, "not a JSON object");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, 0, "not valid JSON"); /* duplicate key */
    expect_bad("{\"__metadata__\": 5}", 0, 0, "__metadata__");
    expect_bad("{\"a\": 5}", 0, 0, "not an object");
    expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, "needs \"dtype\"");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, 0,
               "two \"data_offsets\"");
}

static void test_bad_entries(void **state) {
    (void)state;
    /* offsets out of range: the data buffer has 4 bytes */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0, "beyond");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1000000,1000004]}}", 4, 0,
               "beyond");
    /* dtype x shape does not match the byte range */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, 0,
               "need 12 bytes");
    expect_bad("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 16, 0,
               "need 8 bytes");
    /* begin > end */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16, 0,
               "data_offsets");
    /* overlapping ranges */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               16, 0, "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               16, 0, "overlap");
    /* huge shapes whose product overflows 64 bits, or 2^62 elements */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
               "\"data_offsets\":[0,4]}}",
               4, 0, "impossibly large");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807],"
               "\"data_offsets\":[0,4]}}",
               4, 0, "impossibly large");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
               "\"data_offsets\":[0,4]}}",
               4, 0, "not valid JSON"); /* does not fit a JSON integer */
    /* bad dims and dtypes */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0,
               "non-negative");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, 0,
               "non-negative");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
               4, 0, "dimensions");
    expect_bad("{\"a\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0,
               "unknown dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, 0,
               "non-negative");
}

static void test_truncated_real_header(void **state) {
    (void)state;
    /* The tiny model's own header with its data cut short: a truncated download. */
    size_t n;
    uint8_t *full = tu_read_fixture("llava-ov-tiny/model.safetensors", &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | full[i];
    char *dir = tu_tmpdir();
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/model.safetensors", dir);
    size_t cuts[] = {4, 8 + (size_t)hl / 2, 8 + (size_t)hl, 8 + (size_t)hl + 1000, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tu_write(path, full, cuts[i]);
        char msg[LG_ERROR_MSG_MAX];
        assert_int_equal(open_one(path, msg), LG_E_FORMAT);
    }
    tu_write(path, full, n);
    assert_int_equal(open_one(path, NULL), LG_OK);
    remove(path);
    free(path);
    free(dir);
    free(full);
}

static void test_sharded(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    float v[2] = {1.5f, -2.0f};
    free(write_st(dir, "s1.safetensors",
                  "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", v, 4, 0));
    free(write_st(dir, "s2.safetensors",
                  "{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", v + 1, 4, 0));
    char *index = malloc(strlen(dir) + 64);
    sprintf(index, "%s/model.safetensors.index.json", dir);
    const char *good = "{\"metadata\":{},\"weight_map\":{\"x\":\"s1.safetensors\","
                       "\"y\":\"s2.safetensors\"}}";
    tu_write(index, good, strlen(good));
    st_set set;
    lg_error e;
    assert_int_equal(st_open_dir(dir, &set, &e), LG_OK);
    assert_int_equal(set.n_files, 2);
    float y;
    memcpy(&y, st_find(&set, "y")->data, 4);
    assert_true(y == -2.0f);
    st_close(&set);
    /* a tensor the index puts in the wrong shard */
    const char *wrong = "{\"weight_map\":{\"x\":\"s2.safetensors\",\"y\":\"s1.safetensors\"}}";
    tu_write(index, wrong, strlen(wrong));
    assert_int_equal(st_open_dir(dir, &set, &e), LG_E_FORMAT);
    assert_non_null(strstr(e.msg, "is not in"));
    /* path traversal in a shard name */
    const char *evil = "{\"weight_map\":{\"x\":\"../s1.safetensors\"}}";
    tu_write(index, evil, strlen(evil));
    assert_int_equal(st_open_dir(dir, &set, &e), LG_E_FORMAT);
    assert_non_null(strstr(e.msg, "bad file name"));
    /* a missing shard */
    const char *missing = "{\"weight_map\":{\"x\":\"s1.safetensors\",\"z\":\"s3.safetensors\"}}";
    tu_write(index, missing, strlen(missing));
    assert_int_equal(st_open_dir(dir, &set, &e), LG_E_IO);
    /* the same tensor in two shards */
    free(write_st(dir, "s3.safetensors",
                  "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", v, 4, 0));
    const char *dup = "{\"weight_map\":{\"x\":\"s1.safetensors\",\"q\":\"s3.safetensors\"}}";
    tu_write(index, dup, strlen(dup));
    assert_int_equal(st_open_dir(dir, &set, &e), LG_E_FORMAT);
    assert_non_null(strstr(e.msg, "appears in"));
    /* not an index at all */
    tu_write(index, "{}", 2);
    assert_int_equal(st_open_dir(dir, &set, &e), LG_E_FORMAT);
    /* no weights */
    remove(index);
    assert_int_equal(st_open_dir(dir, &set, &e), LG_E_IO);
    assert_non_null(strstr(e.msg, "no model.safetensors"));
    free(index);
    free(dir);
}

/* Random byte mutations of a small valid file: any status is fine, a crash is not. */
static void test_mutations(void **state) {
    (void)state;
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}";
    size_t hl = strlen(hdr), total = 8 + hl + 32;
    uint8_t *orig = calloc(1, total);
    for (int i = 0; i < 8; i++) orig[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(orig + 8, hdr, hl);
    char *dir = tu_tmpdir();
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/m.safetensors", dir);
    uint8_t *buf = malloc(total);
    uint64_t rng = 12345;
    int ok = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, orig, total);
        int n_mut = 1 + (int)(smp_next(&rng) % 4);
        for (int k = 0; k < n_mut; k++) {
            size_t pos = (size_t)(smp_next(&rng) % total);
            uint64_t r = smp_next(&rng);
            /* bias toward digits and JSON punctuation so mutations reach the checks */
            const char pool[] = "0123456789-[]{},:\"e.9";
            buf[pos] = (r & 1) ? (uint8_t)pool[(r >> 8) % (sizeof pool - 1)] : (uint8_t)(r >> 16);
        }
        size_t len = (smp_next(&rng) % 8 == 0) ? (size_t)(smp_next(&rng) % total) : total;
        tu_write(path, buf, len);
        ok += open_one(path, NULL) == LG_OK;
    }
    print_message("  %d of 3000 mutated files still parse\n", ok);
    remove(path);
    free(path);
    free(buf);
    free(orig);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_truncated_real_header),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
