/*
 * buf.c — a growable byte buffer with a sticky error flag: builders append freely and check
 * `failed` once at the end (QuickJS DynBuf, curl dynbuf).
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

void lg_buf_init(lg_buf *b) {
    memset(b, 0, sizeof *b);
}

void lg_buf_free(lg_buf *b) {
    lg_free(b->data);
    lg_buf_init(b);
}

static bool buf_reserve(lg_buf *b, size_t extra) {
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < b->len + extra + 1) {
        if (ncap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        ncap *= 2;
    }
    char *nd = lg_realloc(b->data, ncap);
    if (!nd) {
        b->failed = true;
        return false;
    }
    b->data = nd;
    b->cap = ncap;
    return true;
}

bool lg_buf_append(lg_buf *b, const void *data, size_t n) {
    if (!buf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool lg_buf_puts(lg_buf *b, const char *s) {
    return lg_buf_append(b, s, strlen(s));
}

bool lg_buf_putc(lg_buf *b, char c) {
    return lg_buf_append(b, &c, 1);
}

bool lg_buf_printf(lg_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) {
        b->failed = true;
        return false;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

bool lg_buf_put_json_string(lg_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    lg_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            lg_buf_puts(b, "\\\"");
            break;
        case '\\':
            lg_buf_puts(b, "\\\\");
            break;
        case '\n':
            lg_buf_puts(b, "\\n");
            break;
        case '\r':
            lg_buf_puts(b, "\\r");
            break;
        case '\t':
            lg_buf_puts(b, "\\t");
            break;
        case '\b':
            lg_buf_puts(b, "\\b");
            break;
        case '\f':
            lg_buf_puts(b, "\\f");
            break;
        default:
            if (c < 0x20) {
                char e[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
                lg_buf_puts(b, e);
            } else {
                lg_buf_putc(b, (char)c);
            }
        }
    }
    return lg_buf_putc(b, '"');
}

size_t lg_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool lg_buf_put_utf8(lg_buf *b, uint32_t cp) {
    uint8_t u[4];
    return lg_buf_append(b, u, lg_utf8_encode(cp, u));
}

char *lg_buf_detach(lg_buf *b, size_t *len) {
    if (b->failed) {
        lg_buf_free(b);
        return NULL;
    }
    if (!b->data && !buf_reserve(b, 0)) return NULL;
    b->data[b->len] = '\0';
    char *d = b->data;
    if (len) *len = b->len;
    lg_buf_init(b);
    return d;
}
