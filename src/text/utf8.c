/*
 * utf8.c — UTF-8 helpers of the tokenizer: strict validation (as Rust's str, which the reference
 * `tokenizers` library requires of its input), code point decode/encode, Unicode White_Space, and
 * lossy conversion that replaces each maximal invalid subsequence by U+FFFD exactly as Rust's
 * String::from_utf8_lossy (the ByteLevel decoder's last step).
 */
#include "text.h"

/* Length of the valid UTF-8 sequence at s[0..n): 0 when invalid, and *need (when the sequence is
 * a valid but truncated prefix) the full length; *prefix gets the length of its valid prefix. */
static size_t seq_check(const uint8_t *s, size_t n, size_t *prefix, bool *truncated) {
    uint8_t c = s[0];
    *truncated = false;
    *prefix = 1;
    if (c < 0x80) return 1;
    size_t w;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        w = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        w = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        w = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    for (size_t i = 1; i < w; i++) {
        if (i >= n) {
            *truncated = true;
            *prefix = i;
            return 0;
        }
        uint8_t b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
            *prefix = i;
            return 0;
        }
    }
    return w;
}

size_t utf8_invalid_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t prefix;
        bool trunc;
        size_t w = seq_check(s + i, n - i, &prefix, &trunc);
        if (!w) return i;
        i += w;
    }
    return n;
}

uint32_t utf8_decode(const uint8_t *s, size_t *len) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c < 0xE0) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c < 0xF0) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

bool utf8_is_whitespace(uint32_t cp) {
    /* The White_Space property (PropList.txt), which Rust's char::is_whitespace implements. */
    if (cp >= 0x09 && cp <= 0x0D) return true;
    if (cp >= 0x2000 && cp <= 0x200A) return true;
    switch (cp) {
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return false;
    }
}

size_t utf8_append_lossy(lg_buf *b, const uint8_t *s, size_t n, bool final) {
    static const char fffd[] = "\xEF\xBF\xBD";
    if (n == 0) return 0;  /* s may be NULL (an empty buffer): no pointer arithmetic on it */
    size_t i = 0, run = 0; /* s[run..i) is valid and not yet appended */
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t prefix;
        bool trunc;
        size_t w = seq_check(s + i, n - i, &prefix, &trunc);
        if (w) {
            i += w;
            continue;
        }
        lg_buf_append(b, s + run, i - run);
        if (trunc && !final) return i; /* keep the unfinished character for later */
        lg_buf_append(b, fffd, 3);
        i += prefix;
        run = i;
    }
    lg_buf_append(b, s + run, i - run);
    return n;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
 * themselves; the other 68 bytes, in increasing order, get U+0100, U+0101, ... */
static bool bytelevel_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t utf8_bytelevel_char(uint8_t b) {
    if (bytelevel_printable(b)) return b;
    if (b <= 0x20) return 256u + b;           /* 0x00..0x20 -> U+0100..U+0120 */
    if (b <= 0xA0) return 289u + (b - 0x7Fu); /* 0x7F..0xA0 -> U+0121..U+0142 */
    return 323u;                              /* 0xAD -> U+0143 */
}

int utf8_bytelevel_byte(uint32_t cp) {
    if (cp < 256) return bytelevel_printable(cp) ? (int)cp : -1;
    if (cp <= 288) return (int)(cp - 256);
    if (cp <= 322) return (int)(cp - 289 + 0x7F);
    if (cp == 323) return 0xAD;
    return -1;
}
