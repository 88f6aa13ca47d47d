/*
 * core.h — small utilities shared by every layer: errors, allocation, files, growable buffers,
 * SHA-256 and JSON loading. Internal (not part of the public API).
 *
 * Every other layer may include this header; it includes only the public header and libc.
 */
#ifndef LG_CORE_H
#define LG_CORE_H

#include "llavaguard.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LG_PRINTF(f, a)
#endif

/* ---- errors ---- */

/* Records `st` and a formatted message in `err` (which may be NULL) and returns `st`, so that a
 * failing path reads `return lg_err_set(err, LG_E_FORMAT, "%s: bad header", path);`. */
lg_status lg_err_set(lg_error *err, lg_status st, const char *fmt, ...) LG_PRINTF(3, 4);
lg_status lg_err_setv(lg_error *err, lg_status st, const char *fmt, va_list ap);
/* Prepends "prefix: " to the message already in `err` (for adding context going up the stack). */
void lg_err_prefix(lg_error *err, const char *fmt, ...) LG_PRINTF(2, 3);
void lg_err_clear(lg_error *err);

/* Aborts with file:line on a broken invariant (a bug in our code, never bad input). On in every
 * build, as ggml's GGML_ASSERT. */
#define LG_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x)) lg_abort(__FILE__, __LINE__, #x);                                                \
    } while (0)
_Noreturn void lg_abort(const char *file, int line, const char *what);

/* ---- allocation ---- */

/* All heap memory handed across the public API goes through these, so lg_free releases it. */
void *lg_malloc(size_t n);
void *lg_calloc(size_t n, size_t size);
void *lg_realloc(void *p, size_t n);
/* 64-byte aligned memory; release with lg_aligned_free. */
void *lg_aligned_alloc(size_t n);
void lg_aligned_free(void *p);
char *lg_strdup(const char *s);
char *lg_strndup(const char *s, size_t n);
/* Returns true and sets *out = a*b when the product does not overflow. */
bool lg_mul_ok(size_t a, size_t b, size_t *out);

/* ---- files ---- */

/* lg_read_file is public (llavaguard.h). */

/* Writes `size` bytes to `path` atomically: a temporary file beside it, fsync'd, then renamed, so
 * a failure never leaves a half-written file behind. */
lg_status lg_write_file_atomic(const char *path, const void *data, size_t size, lg_error *err);

/* A read-only memory map of a whole file. */
typedef struct lg_mmap {
    const uint8_t *data;
    size_t size;
} lg_mmap;
lg_status lg_mmap_open(const char *path, lg_mmap *out, lg_error *err);
void lg_mmap_close(lg_mmap *m);

/* Joins a directory and a file name into a new string (lg_free). */
char *lg_path_join(const char *dir, const char *name);
bool lg_file_exists(const char *path);

/* ---- growable byte buffer with a sticky error flag (QuickJS DynBuf / curl dynbuf) ---- */

typedef struct lg_buf {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    bool failed; /* set by the first failed allocation; later appends are no-ops */
} lg_buf;

void lg_buf_init(lg_buf *b);
void lg_buf_free(lg_buf *b);
bool lg_buf_append(lg_buf *b, const void *data, size_t n);
bool lg_buf_puts(lg_buf *b, const char *s);
bool lg_buf_putc(lg_buf *b, char c);
bool lg_buf_printf(lg_buf *b, const char *fmt, ...) LG_PRINTF(2, 3);
/* Appends `s` as a JSON string literal (quotes included, RFC 8259 escapes). */
bool lg_buf_put_json_string(lg_buf *b, const char *s, size_t n);
/* Appends code point cp encoded as UTF-8 (1-4 bytes). */
bool lg_buf_put_utf8(lg_buf *b, uint32_t cp);
/* Hands the buffer's memory to the caller (lg_free) and re-initialises the buffer. */
char *lg_buf_detach(lg_buf *b, size_t *len);

/* ---- UTF-8 ---- */

/* Encodes code point cp (<= 0x10FFFF) as UTF-8 into out[0..3]; returns the byte count. */
size_t lg_utf8_encode(uint32_t cp, uint8_t out[4]);

/* ---- JSON (jansson) ---- */

typedef struct json_t json_t;
/* Parses a JSON file; errors name the file, line and column. The caller json_decref()s *out. */
lg_status lg_json_load_file(const char *path, json_t **out, lg_error *err);

#endif /* LG_CORE_H */
