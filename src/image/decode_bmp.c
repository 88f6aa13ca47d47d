/*
 * decode_bmp.c — BMP reader that follows Pillow 9.4's BmpImagePlugin (header rules, palettes,
 * bitfield layouts, its RLE decoder) and its raw unpackers (Unpack.c: "P;1", "P;4", "BGR;15",
 * "BGR;16", "BGRX", ...) exactly, then convert("RGB"). Our own reader rather than stb_image:
 * exact fidelity on odd files means reproducing Pillow's quirks (5/6-bit fields widened as
 * v*255/31, RLE rows that overflow into the next row, the delta escape reading its offsets from
 * the two bytes after them, an all-grey palette read as "L", palette entries past the palette
 * giving Pillow's grey ramp, a missing final row padding accepted), which no library does.
 * Refused as Pillow refuses: header sizes other than 12/40/64/108/124, depths other than
 * 1/4/8/16/24/32, unknown compressions and bitfield layouts, palettes of more than 256 entries
 * read (or a colour count above 65536), truncated pixel data, RLE data that does not fill the
 * image.
 */
#include "image/image.h"

#include <string.h>

enum { COMP_RAW = 0, COMP_RLE8 = 1, COMP_RLE4 = 2, COMP_BITFIELDS = 3 };

/* Pillow's raw modes for BMP pixel rows (the unpacker names). */
typedef enum {
    RM_P1,
    RM_P4,
    RM_P8,
    RM_1,
    RM_L,
    RM_BGR15,
    RM_BGR16,
    RM_BGR,
    RM_BGRX,
    RM_XBGR,
    RM_ABGR,
    RM_RGBA,
    RM_BGRA
} rawmode;

/* Bits per pixel each unpacker consumes (Pillow's unpacker table). */
static const unsigned rawmode_bits[] = {1, 4, 8, 1, 8, 16, 16, 24, 32, 32, 32, 32, 32};

typedef enum { MODE_P, MODE_L, MODE_1, MODE_RGB, MODE_RGBA } bmp_mode;

typedef struct bmp_info {
    uint64_t w, h;
    int direction; /* -1: bottom-up rows (the default), 1: top-down */
    unsigned bits;
    uint32_t comp;
    uint64_t colors;
    uint64_t data_start;
    rawmode raw;
    bmp_mode mode;
    bool rle;
    uint8_t pal[256 * 3]; /* Pillow's palette: entries read, then the grey ramp */
} bmp_info;

static uint32_t le16(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static lg_status corrupt(const img_src *src, const char *why, lg_error *err) {
    return lg_err_set(err, LG_E_FORMAT, "%s: corrupt BMP: %s", src->name, why);
}

/* BITFIELDS layouts Pillow 9.4 knows (MASK_MODES); anything else is refused. */
static bool bitfields_mode(bmp_info *b, const uint32_t m[4]) {
    static const struct {
        unsigned bits;
        uint32_t r, g, bl, a;
        rawmode raw;
    } tab[] = {
        {32, 0xFF0000, 0xFF00, 0xFF, 0, RM_BGRX},
        {32, 0xFF000000, 0xFF0000, 0xFF00, 0, RM_XBGR},
        {32, 0xFF000000, 0xFF0000, 0xFF00, 0xFF, RM_ABGR},
        {32, 0xFF, 0xFF00, 0xFF0000, 0xFF000000, RM_RGBA},
        {32, 0xFF0000, 0xFF00, 0xFF, 0xFF000000, RM_BGRA},
        {32, 0, 0, 0, 0, RM_BGRA},
        {24, 0xFF0000, 0xFF00, 0xFF, 0, RM_BGR},
        {16, 0xF800, 0x7E0, 0x1F, 0, RM_BGR16},
        {16, 0x7C00, 0x3E0, 0x1F, 0, RM_BGR15},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        /* 32-bit layouts compare all four masks, 24/16-bit ones only r, g, b */
        if (tab[i].bits != b->bits || tab[i].r != m[0] || tab[i].g != m[1] || tab[i].bl != m[2] ||
            (b->bits == 32 && tab[i].a != m[3]))
            continue;
        b->raw = tab[i].raw;
        b->mode = (tab[i].raw == RM_ABGR || tab[i].raw == RM_RGBA || tab[i].raw == RM_BGRA)
                      ? MODE_RGBA
                      : MODE_RGB;
        return true;
    }
    return false;
}

/* The palette (bits <= 8): Pillow reads padding * colors bytes (short reads allowed), drops it
 * for "1"/"L" when every entry i is (i, i, i) ((0, 255) for two colours), else keeps it as "P"
 * (more than 256 entries read is "invalid palette size"). Returns the position after it. */
static lg_status read_palette(const img_src *src, bmp_info *b, size_t pos, unsigned pad,
                              size_t *after, lg_error *err) {
    if (b->colors == 0 || b->colors > 65536)
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt BMP: unsupported palette size (%llu)",
                          src->name, (unsigned long long)b->colors);
    size_t avail = pos < src->size ? src->size - pos : 0;
    size_t len = (size_t)b->colors * pad < avail ? (size_t)b->colors * pad : avail;
    const uint8_t *p = src->data + pos;
    bool grey = true;
    for (uint64_t i = 0; i < b->colors && grey; i++) {
        uint8_t v = b->colors == 2 ? (i ? 255 : 0) : (uint8_t)i;
        size_t o = (size_t)i * pad;
        grey = o + 3 <= len && p[o] == v && p[o + 1] == v && p[o + 2] == v;
    }
    *after = pos + len;
    if (grey) {
        b->mode = b->colors == 2 ? MODE_1 : MODE_L;
        b->raw = b->colors == 2 ? RM_1 : RM_L;
        return LG_OK;
    }
    size_t n = len / pad;
    if (n > 256) return corrupt(src, "invalid palette size (more than 256 entries)", err);
    uint8_t rgb[256 * 3];
    for (size_t i = 0; i < n; i++) {
        rgb[3 * i] = p[i * pad + 2];
        rgb[3 * i + 1] = p[i * pad + 1];
        rgb[3 * i + 2] = p[i * pad];
    }
    img_palette_fill(b->pal, rgb, (int)n);
    return LG_OK;
}

/* BmpImagePlugin._bitmap: the header, the pixel layout and where the pixels start. */
static lg_status parse_header(const img_src *src, bmp_info *b, lg_error *err) {
    const uint8_t *d = src->data;
    size_t n = src->size;
    if (n < 18) return corrupt(src, "file too short for a header", err);
    uint32_t offset = le32(d + 10), hs = le32(d + 14);
    if (hs != 12 && hs != 40 && hs != 64 && hs != 108 && hs != 124)
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt BMP: unsupported header size %u",
                          src->name, (unsigned)hs);
    if (n < 14 + (size_t)hs) return corrupt(src, "truncated header", err);
    size_t pos = 14 + hs; /* where the file position is after the header */
    unsigned pad;
    b->direction = -1;
    b->comp = COMP_RAW;
    b->colors = 0;
    uint32_t masks[4] = {0, 0, 0, 0};
    if (hs == 12) {
        b->w = le16(d + 18);
        b->h = le16(d + 20);
        b->bits = le16(d + 24);
        pad = 3;
    } else {
        bool flip = d[25] == 0xFF;
        b->direction = flip ? 1 : -1;
        b->w = le32(d + 18);
        b->h = flip ? ((uint64_t)1 << 32) - le32(d + 22) : le32(d + 22);
        b->bits = le16(d + 28);
        b->comp = le32(d + 30);
        b->colors = le32(d + 46);
        pad = 4;
        if (b->comp == COMP_BITFIELDS) {
            if (hs >= 56) {
                for (int i = 0; i < 4; i++) masks[i] = le32(d + 54 + 4 * i);
            } else { /* a 40-byte header: three masks follow it */
                if (n < pos + 12) return corrupt(src, "truncated bitfield masks", err);
                for (int i = 0; i < 3; i++) masks[i] = le32(d + pos + 4 * i);
                pos += 12;
            }
        }
    }
    /* Pillow skips 4 bytes per colour here, even for the 3-byte entries of a 12-byte header. */
    if (b->colors == 0) b->colors = b->bits < 64 ? (uint64_t)1 << b->bits : 0;
    uint64_t off = offset;
    if (off == 14 + (uint64_t)hs && b->bits <= 8) off += 4 * b->colors;
    switch (b->bits) {
    case 1:
    case 4:
    case 8:
        b->mode = MODE_P;
        b->raw = b->bits == 1 ? RM_P1 : b->bits == 4 ? RM_P4 : RM_P8;
        break;
    case 16:
    case 24:
    case 32:
        b->mode = MODE_RGB;
        b->raw = b->bits == 16 ? RM_BGR15 : b->bits == 24 ? RM_BGR : RM_BGRX;
        break;
    default:
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt BMP: unsupported pixel depth %u",
                          src->name, b->bits);
    }
    b->rle = false;
    if (b->comp == COMP_BITFIELDS) {
        if (!bitfields_mode(b, masks)) return corrupt(src, "unsupported bitfields layout", err);
    } else if (b->comp == COMP_RLE8 || b->comp == COMP_RLE4) {
        b->rle = true;
    } else if (b->comp != COMP_RAW) {
        return lg_err_set(err, LG_E_UNSUPPORTED, "%s: unsupported BMP compression %u", src->name,
                          (unsigned)b->comp);
    }
    if (b->mode == MODE_P) {
        lg_status st = read_palette(src, b, pos, pad, &pos, err);
        if (st != LG_OK) return st;
    }
    b->data_start = off ? off : pos;
    return LG_OK;
}

/* One row of raw pixels through the unpacker to RGB (and alpha for the RGBA modes). */
static void unpack_row(const bmp_info *b, const uint8_t *in, uint64_t w, uint8_t *rgb,
                       uint8_t *alpha) {
    for (uint64_t x = 0; x < w; x++, rgb += 3) {
        unsigned v;
        const uint8_t *q;
        switch (b->raw) {
        case RM_P1:
        case RM_1:
            v = in[x >> 3] >> (7 - (x & 7)) & 1;
            if (b->raw == RM_1)
                rgb[0] = rgb[1] = rgb[2] = v ? 255 : 0;
            else
                memcpy(rgb, b->pal + 3 * v, 3);
            break;
        case RM_P4:
            v = x & 1 ? in[x >> 1] & 15 : in[x >> 1] >> 4;
            memcpy(rgb, b->pal + 3 * v, 3);
            break;
        case RM_P8:
            memcpy(rgb, b->pal + 3 * in[x], 3);
            break;
        case RM_L:
            rgb[0] = rgb[1] = rgb[2] = in[x];
            break;
        case RM_BGR15: /* Unpack.c ImagingUnpackBGR15: each 5-bit field as v * 255 / 31 */
            v = le16(in + 2 * x);
            rgb[0] = (uint8_t)((v >> 10 & 31) * 255 / 31);
            rgb[1] = (uint8_t)((v >> 5 & 31) * 255 / 31);
            rgb[2] = (uint8_t)((v & 31) * 255 / 31);
            break;
        case RM_BGR16: /* ImagingUnpackBGR16: 5-6-5, the 6-bit field as v * 255 / 63 */
            v = le16(in + 2 * x);
            rgb[0] = (uint8_t)((v >> 11 & 31) * 255 / 31);
            rgb[1] = (uint8_t)((v >> 5 & 63) * 255 / 63);
            rgb[2] = (uint8_t)((v & 31) * 255 / 31);
            break;
        case RM_BGR:
            q = in + 3 * x;
            rgb[0] = q[2], rgb[1] = q[1], rgb[2] = q[0];
            break;
        default: { /* the 32-bit layouts: byte positions of r, g, b, a */
            static const int pos[][4] = {
                {2, 1, 0, 3}, /* BGRX */
                {3, 2, 1, 0}, /* XBGR */
                {3, 2, 1, 0}, /* ABGR */
                {0, 1, 2, 3}, /* RGBA */
                {2, 1, 0, 3}, /* BGRA */
            };
            const int *p = pos[b->raw - RM_BGRX];
            q = in + 4 * x;
            rgb[0] = q[p[0]], rgb[1] = q[p[1]], rgb[2] = q[p[2]];
            if (alpha) alpha[x] = q[p[3]];
            break;
        }
        }
    }
}

/* ImageFile's "raw" decoder: rows of `stride` bytes from data_start, of which the unpacker uses
 * the first (w * bits + 7) / 8; the last row needs no padding after it. */
static lg_status decode_raw(const img_src *src, const bmp_info *b, img_decoded *out,
                            lg_error *err) {
    uint64_t stride = ((b->w * b->bits + 31) >> 3) & ~(uint64_t)3;
    uint64_t rowbytes = (b->w * rawmode_bits[b->raw] + 7) / 8;
    if (stride > INT32_MAX) return corrupt(src, "row size too large", err);
    /* Rows shorter than the unpacker needs (an all-grey 1/4-bit palette read as 8-bit "L"):
     * the raw decoder refuses them, but Pillow memory-maps a file whose "L" rows fit in it, and
     * then each row reads on into the next (zeros past the end of the file). Our reference opens
     * files by path, so the mapped result is the one to match. */
    bool overlap = stride < rowbytes;
    if (overlap && !(b->raw == RM_L && b->data_start + stride * b->h <= src->size))
        return corrupt(src, "row size does not fit the pixel format", err);
    uint64_t need = b->data_start + stride * (b->h - 1) + rowbytes;
    if (!overlap && (b->data_start > src->size || need > src->size))
        return lg_err_set(err, LG_E_FORMAT, "%s: truncated BMP: image file is truncated",
                          src->name);
    lg_status st = img_alloc(src, out, (int)b->w, (int)b->h, b->mode == MODE_RGBA, err);
    if (st != LG_OK) return st;
    uint8_t *tmp = overlap ? lg_calloc(rowbytes, 1) : NULL;
    if (overlap && !tmp) {
        img_decoded_free(out);
        return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    }
    for (uint64_t r = 0; r < b->h; r++) {
        uint64_t y = b->direction < 0 ? b->h - 1 - r : r;
        const uint8_t *row = src->data + b->data_start + r * stride;
        if (overlap) {
            uint64_t at = b->data_start + r * stride;
            uint64_t k = src->size - at < rowbytes ? src->size - at : rowbytes;
            memset(tmp, 0, rowbytes);
            memcpy(tmp, row, k);
            row = tmp;
        }
        unpack_row(b, row, b->w, out->rgb + y * b->w * 3,
                   out->alpha ? out->alpha + y * b->w : NULL);
    }
    lg_free(tmp);
    return LG_OK;
}

/* Appends pixels to the RLE output as Pillow's bytearray grows: only the first w*h count. */
typedef struct rle_out {
    uint8_t *px;
    uint64_t len, n;
} rle_out;

static void rle_put(rle_out *o, uint8_t v, uint64_t count) {
    if (o->len < o->n) {
        uint64_t k = o->n - o->len < count ? o->n - o->len : count;
        memset(o->px + o->len, v, k);
    }
    o->len += count;
}

/* BmpRleDecoder.decode of Pillow 9.4, quirks included (see the header comment). False where
 * Pillow raises. */
static bool rle_decode(const img_src *src, const bmp_info *b, rle_out *o) {
    const uint8_t *d = src->data;
    size_t n = src->size, p = b->data_start < n ? (size_t)b->data_start : n;
    bool rle4 = b->comp == COMP_RLE4;
    uint64_t x = 0, w = b->w;
    while (o->len < o->n) {
        if (n - p < 2) break;
        unsigned cnt = d[p], byte = d[p + 1];
        p += 2;
        if (cnt) { /* encoded mode: clipped at the row's end */
            if (x + cnt > w) cnt = x < w ? (unsigned)(w - x) : 0;
            if (rle4)
                for (unsigned i = 0; i < cnt; i++) rle_put(o, i % 2 ? byte & 15 : byte >> 4, 1);
            else
                rle_put(o, (uint8_t)byte, cnt);
            x += cnt;
        } else if (byte == 0) { /* end of line */
            if (o->len % w) rle_put(o, 0, w - o->len % w);
            x = 0;
        } else if (byte == 1) { /* end of bitmap */
            break;
        } else if (byte == 2) { /* delta: Pillow reads two bytes, then uses the next two */
            if (n - p < 2) break;
            p += 2;
            if (n - p < 2) return false; /* Pillow: "not enough values to unpack" */
            rle_put(o, 0, d[p] + (uint64_t)d[p + 1] * w);
            p += 2;
            x = o->len % w;
        } else { /* absolute mode: `byte` pixels follow, the run word-aligned in the file */
            size_t want = rle4 ? byte / 2 : byte, got = want < n - p ? want : n - p;
            for (size_t i = 0; i < got; i++) {
                if (rle4) {
                    rle_put(o, d[p + i] >> 4, 1);
                    rle_put(o, d[p + i] & 15, 1);
                } else {
                    rle_put(o, d[p + i], 1);
                }
            }
            p += got;
            if (got < want) break;
            x += byte;
            if (p % 2) p = p + 1 < n ? p + 1 : n;
        }
    }
    return true;
}

static lg_status decode_rle(const img_src *src, bmp_info *b, img_decoded *out, lg_error *err) {
    /* set_as_raw with raw mode "L" or "P": modes "1", RGB and RGBA have no such unpacker */
    if (b->mode != MODE_P && b->mode != MODE_L)
        return corrupt(src, "RLE compression with this pixel format", err);
    rle_out o = {lg_calloc(b->w * b->h, 1), 0, b->w * b->h};
    if (!o.px) return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    if (!rle_decode(src, b, &o) || o.len < o.n) {
        lg_free(o.px);
        return lg_err_set(err, LG_E_FORMAT, "%s: truncated BMP: not enough image data", src->name);
    }
    lg_status st = img_alloc(src, out, (int)b->w, (int)b->h, false, err);
    if (st == LG_OK) {
        b->raw = b->mode == MODE_L ? RM_L : RM_P8;
        for (uint64_t r = 0; r < b->h; r++) {
            uint64_t y = b->direction < 0 ? b->h - 1 - r : r;
            unpack_row(b, o.px + r * b->w, b->w, out->rgb + y * b->w * 3, NULL);
        }
    }
    lg_free(o.px);
    return st;
}

lg_status img_decode_bmp(const img_src *src, img_decoded *out, lg_error *err) {
    bmp_info b;
    lg_status st = parse_header(src, &b, err);
    if (st != LG_OK) return st;
    st = img_check_size(src, "BMP", b.w, b.h, err);
    if (st != LG_OK) return st;
    return b.rle ? decode_rle(src, &b, out, err) : decode_raw(src, &b, out, err);
}
