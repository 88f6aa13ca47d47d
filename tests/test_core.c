/* LAYERS: core */
/*
 * test_core.c — the core utilities: error messages, the sticky buffer, JSON string escaping,
 * SHA-256, whole-file reads with limits, atomic writes and memory maps.
 */
#include "testutil.h"

#include "core/core.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void test_err_set_and_prefix(void **state) {
    (void)state;
    lg_error e;
    lg_err_clear(&e);
    assert_int_equal(lg_err_set(&e, LG_E_FORMAT, "bad byte %d", 7), LG_E_FORMAT);
    assert_int_equal(e.status, LG_E_FORMAT);
    lg_err_prefix(&e, "file %s", "x.png");
    assert_string_equal(e.msg, "file x.png: bad byte 7");
    assert_int_equal(lg_err_set(NULL, LG_E_IO, "ignored"), LG_E_IO);
    assert_string_equal(lg_status_str(LG_E_LIMIT), "limit exceeded");
}

static void test_buf_and_json_escape(void **state) {
    (void)state;
    lg_buf b;
    lg_buf_init(&b);
    lg_buf_puts(&b, "a");
    lg_buf_printf(&b, "%d-%s", 42, "z");
    const char raw[] = "q\"\\\n\x01";
    lg_buf_put_json_string(&b, raw, sizeof raw - 1);
    size_t len = 0;
    char *s = lg_buf_detach(&b, &len);
    assert_string_equal(s, "a42-z\"q\\\"\\\\\\n\\u0001\"");
    assert_int_equal(len, strlen(s));
    lg_free(s);
}

static void test_utf8_encode(void **state) {
    (void)state;
    lg_buf b;
    lg_buf_init(&b);
    const uint32_t cps[] = {0x41, 0xe9, 0x20ac, 0x1f600};
    for (size_t i = 0; i < 4; i++) lg_buf_put_utf8(&b, cps[i]);
    char *s = lg_buf_detach(&b, NULL);
    assert_string_equal(s, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    lg_free(s);
}

static void test_sha256(void **state) {
    (void)state;
    char hex[65];
    lg_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_files(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char *path = lg_path_join(dir, "out.bin");
    lg_error e;
    assert_int_equal(lg_write_file_atomic(path, "hello", 5, &e), LG_OK);
    uint8_t *data = NULL;
    size_t size = 0;
    assert_int_equal(lg_read_file(path, 100, &data, &size, &e), LG_OK);
    assert_int_equal(size, 5);
    assert_memory_equal(data, "hello", 5);
    lg_free(data);
    assert_int_equal(lg_read_file(path, 4, &data, &size, &e), LG_E_LIMIT);
    assert_non_null(strstr(e.msg, "out.bin"));
    lg_mmap m;
    assert_int_equal(lg_mmap_open(path, &m, &e), LG_OK);
    assert_int_equal(m.size, 5);
    assert_memory_equal(m.data, "hello", 5);
    lg_mmap_close(&m);
    char *missing = lg_path_join(dir, "missing");
    assert_int_equal(lg_read_file(missing, 100, &data, &size, &e), LG_E_IO);
    assert_non_null(strstr(e.msg, "missing"));
    /* an atomic write into a folder that does not exist fails and leaves nothing behind */
    char *bad = lg_path_join(dir, "nodir/x.bin");
    assert_int_equal(lg_write_file_atomic(bad, "x", 1, &e), LG_E_IO);
    lg_free(bad);
    lg_free(missing);
    lg_free(path);
    free(dir);
}

static void test_json_errors_name_line(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char *path = lg_path_join(dir, "bad.json");
    tu_write(path, "{\n  \"a\": 1,\n  \"b\": }\n", 20);
    json_t *j = NULL;
    lg_error e;
    assert_int_equal(lg_json_load_file(path, &j, &e), LG_E_FORMAT);
    assert_non_null(strstr(e.msg, "bad.json:3:"));
    lg_free(path);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_set_and_prefix),
        cmocka_unit_test(test_buf_and_json_escape),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_utf8_encode),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_json_errors_name_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
