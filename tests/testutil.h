/*
 * testutil.h — helpers shared by the cmocka tests: locating the shared fixtures (failing with a
 * clear message when they are missing), reading raw arrays, and comparing tensors with a report
 * of the first mismatches and the largest difference (llm.c's check_tensor).
 */
#ifndef LG_TESTUTIL_H
#define LG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Returns a new path "<fixtures>/<rel>" (free with free()). Fails the test with a clear message
 * when the fixtures folder is missing. */
char *tu_fixture(const char *rel);
/* Like tu_fixture, for "<shared>/<rel>". */
char *tu_shared(const char *rel);
/* Reads a whole file; fails the test if it cannot. *size receives the byte count. */
uint8_t *tu_read(const char *path, size_t *size);
/* Reads "<fixtures>/<rel>". */
uint8_t *tu_read_fixture(const char *rel, size_t *size);
/* Creates a fresh temporary directory for this test (removed by the OS's tmp cleaning). */
char *tu_tmpdir(void);
/* Writes bytes to a file, failing the test on error. */
void tu_write(const char *path, const void *data, size_t size);

/* Compares n floats; passes when max|a-b| <= tol. Prints the first mismatches and max|diff|. */
void tu_check_tensor(const float *got, const float *want, size_t n, double tol, const char *label);
/* Max |x| over n floats (to build relative tolerances). */
double tu_max_abs(const float *x, size_t n);

#endif
