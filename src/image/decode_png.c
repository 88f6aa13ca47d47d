/*
 * decode_png.c — PNG exactly as Pillow 9.4 reads it, in two parts we write ourselves because no
 * library behaves like Pillow on odd files:
 *  - the chunk walk of PngImagePlugin: which chunks it reads before and after the image data,
 *    CRCs checked only before the first IDAT, its handlers' length and compression-method checks,
 *    text chunks bounded by MAX_TEXT_CHUNK (1 MiB inflated) and MAX_TEXT_MEMORY (64 MiB), PLTE /
 *    tRNS / eXIf as it interprets them, the chunks after the data read until IEND (load_end);
 *  - the pixels as its ZipDecode.c decodes them over zlib: the IDAT data in 64 KiB reads, one
 *    inflate per row, decoding stops at the last row (no Adler-32 or stream end needed, but an
 *    error zlib reports on the way is fatal), a stream that ends early leaves black rows.
 * Then Pillow's modes + convert("RGB"): gray 1/2/4/8 bit -> L scaled to 0..255; gray 16 bit -> mode
 * I, clipped at 255; RGB/RGBA/LA 16 bit -> the high byte; palette -> looked up (entries past the
 * palette: Pillow's grey ramp); alpha and tRNS dropped, the alpha convert("RGBA") would give kept
 * aside for the optional composite over white. Gamma, sRGB and ICC are ignored, as Pillow does.
 */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* PngImagePlugin's limits on text chunks (ImageFile.SAFEBLOCK and 64 times it). */
#define PIL_MAX_TEXT_CHUNK ((size_t)1 << 20)
#define PIL_MAX_TEXT_MEMORY ((uint64_t)64 << 20)

/* Pillow's image modes for a PNG (PngImagePlugin._MODES); PM_NONE where it has none. */
typedef enum { PM_NONE, PM_1, PM_L, PM_I, PM_P, PM_RGB, PM_LA, PM_RGBA } pil_mode;

static pil_mode mode_of(int depth, int type) {
    switch (type) {
    case 0:
        return depth == 1                                 ? PM_1
               : depth == 16                              ? PM_I
               : (depth == 2 || depth == 4 || depth == 8) ? PM_L
                                                          : PM_NONE;
    case 2:
        return depth == 8 || depth == 16 ? PM_RGB : PM_NONE;
    case 3:
        return depth == 1 || depth == 2 || depth == 4 || depth == 8 ? PM_P : PM_NONE;
    case 4:
        return depth == 8 ? PM_LA : depth == 16 ? PM_RGBA : PM_NONE;
    case 6:
        return depth == 8 || depth == 16 ? PM_RGBA : PM_NONE;
    default:
        return PM_NONE;
    }
}

/* What the walk over the chunks learns, as PngStream keeps it. */
typedef struct png_walk {
    const img_src *src;
    lg_error *err;
    pil_mode mode;
    uint32_t w, h;
    int depth, type, interlace;
    const uint8_t *plte, *trns, *exif;
    size_t plte_len, trns_len, exif_len;
    bool have_plte, have_trns, have_exif, post;
    uint64_t text_mem;
    bool seq_set, has_bbox, bbox_full, default_image;
    uint32_t seq, n_frames;
    size_t idat_pos, run_end; /* the first IDAT chunk; the end of the chunk the rows end in */
    uint8_t *scratch;         /* PIL_MAX_TEXT_CHUNK bytes for inflated text, made on demand */
} png_walk;

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static bool is_cid(const uint8_t *c) { /* Pillow: re.match(rb"\w\w\w\w") */
    for (int i = 0; i < 4; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9') || c[i] == '_'))
            return false;
    return true;
}

static lg_status refuse(png_walk *w, const char *cid, const char *why) {
    return lg_err_set(w->err, LG_E_FORMAT, "%s: corrupt PNG: %.4s chunk: %s", w->src->name, cid,
                      why);
}

typedef enum { INF_OK, INF_TOO_LARGE, INF_ERROR } inf_result;

/* PngImagePlugin._safe_zlib_decompress: zlib's decompressobj().decompress(s, MAX_TEXT_CHUNK),
 * "too large" when input is left over once the output limit is reached (unconsumed_tail);
 * a zlib error is Pillow's zlib.error (the chunk's text is then dropped). */
static inf_result inflate_text(png_walk *w, const uint8_t *in, size_t n, size_t *out_len) {
    if (!w->scratch && !(w->scratch = lg_malloc(PIL_MAX_TEXT_CHUNK))) return INF_ERROR;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return INF_ERROR;
    z.next_in = (Bytef *)in;
    z.avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
    z.next_out = w->scratch;
    z.avail_out = (uInt)PIL_MAX_TEXT_CHUNK;
    int ret = inflate(&z, Z_SYNC_FLUSH);
    *out_len = PIL_MAX_TEXT_CHUNK - z.avail_out;
    inf_result r = ret == Z_STREAM_END                   ? INF_OK
                   : (ret == Z_OK || ret == Z_BUF_ERROR) ? (z.avail_in > 0 ? INF_TOO_LARGE : INF_OK)
                                                         : INF_ERROR;
    inflateEnd(&z);
    return r;
}

/* Python's strict UTF-8 decoding: false where it raises; *chars = the string's length. */
static bool utf8_chars(const uint8_t *s, size_t n, uint64_t *chars) {
    uint64_t c = 0;
    for (size_t i = 0; i < n; c++) {
        unsigned b = s[i], len = b < 0x80             ? 1
                                 : (b & 0xE0) == 0xC0 ? 2
                                 : (b & 0xF0) == 0xE0 ? 3
                                 : (b & 0xF8) == 0xF0 ? 4
                                                      : 0;
        if (!len || len > n - i || (len == 2 && b < 0xC2) || (len == 4 && b > 0xF4)) return false;
        for (unsigned k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        if (len == 3 && ((b == 0xE0 && s[i + 1] < 0xA0) || (b == 0xED && s[i + 1] >= 0xA0)))
            return false; /* overlong; surrogates */
        if (len == 4 && ((b == 0xF0 && s[i + 1] < 0x90) || (b == 0xF4 && s[i + 1] >= 0x90)))
            return false;
        i += len;
    }
    *chars = c;
    return true;
}

static const uint8_t *memchr0(const uint8_t *p, size_t n) {
    return n ? memchr(p, 0, n) : NULL;
}

static lg_status add_text(png_walk *w, const char *cid, uint64_t n) {
    w->text_mem += n;
    if (w->text_mem > PIL_MAX_TEXT_MEMORY)
        return refuse(w, cid, "too much memory used in text chunks (Pillow's MAX_TEXT_MEMORY)");
    return LG_OK;
}

/* tEXt, zTXt, iTXt and iCCP as PngStream.chunk_* handle them. */
static lg_status text_chunk(png_walk *w, const char *cid, const uint8_t *s, size_t n) {
    const uint8_t *nul = memchr0(s, n);
    size_t klen = nul ? (size_t)(nul - s) : n;
    const uint8_t *v = nul ? nul + 1 : s + n;
    size_t vlen = nul ? n - klen - 1 : 0, out = 0;
    if (memcmp(cid, "tEXt", 4) == 0) return klen ? add_text(w, cid, vlen) : LG_OK;
    if (memcmp(cid, "zTXt", 4) == 0) {
        if (vlen && v[0] != 0) return refuse(w, cid, "unknown compression method");
        inf_result r = inflate_text(w, vlen ? v + 1 : v, vlen ? vlen - 1 : 0, &out);
        if (r == INF_TOO_LARGE) return refuse(w, cid, "decompressed text too large (> 1 MiB)");
        return klen ? add_text(w, cid, r == INF_OK ? out : 0) : LG_OK;
    }
    if (memcmp(cid, "iCCP", 4) == 0) {
        if (n == 0) return refuse(w, cid, "empty");
        /* Pillow reads the method at the separator itself (always 0), or the last byte */
        if (!nul && s[n - 1] != 0) return refuse(w, cid, "unknown compression method");
        size_t at = nul ? klen + 2 : 1;
        inf_result r = inflate_text(w, s + (at < n ? at : n), at < n ? n - at : 0, &out);
        return r == INF_TOO_LARGE ? refuse(w, cid, "decompressed profile too large (> 1 MiB)")
                                  : LG_OK;
    }
    /* iTXt: keyword \0 flag method language \0 translated keyword \0 text */
    if (!nul || vlen < 2) return LG_OK;
    unsigned cf = v[0], cm = v[1];
    const uint8_t *r = v + 2, *end = v + vlen;
    const uint8_t *n1 = memchr0(r, (size_t)(end - r));
    const uint8_t *n2 = n1 ? memchr0(n1 + 1, (size_t)(end - n1 - 1)) : NULL;
    if (!n2) return LG_OK;
    const uint8_t *txt = n2 + 1;
    size_t tlen = (size_t)(end - txt);
    if (cf != 0) {
        if (cm != 0) return LG_OK;
        inf_result ir = inflate_text(w, txt, tlen, &out);
        if (ir == INF_TOO_LARGE) return refuse(w, cid, "decompressed text too large (> 1 MiB)");
        if (ir == INF_ERROR) return LG_OK;
        txt = w->scratch;
        tlen = out;
    }
    uint64_t c0, c1, chars;
    if (!utf8_chars(r, (size_t)(n1 - r), &c0) || !utf8_chars(n1 + 1, (size_t)(n2 - n1 - 1), &c1) ||
        !utf8_chars(txt, tlen, &chars))
        return LG_OK;
    return add_text(w, cid, chars);
}

/* APNG frame control: Pillow checks the sequence number and that the frame fits the image. */
static lg_status fctl_chunk(png_walk *w, const uint8_t *s, size_t n) {
    if (n < 26) return refuse(w, "fcTL", "truncated");
    uint32_t seq = be32(s);
    if ((!w->seq_set && seq != 0) || (w->seq_set && (uint64_t)w->seq + 1 != seq))
        return refuse(w, "fcTL", "frame sequence error");
    w->seq_set = true;
    w->seq = seq;
    uint64_t fw = be32(s + 4), fh = be32(s + 8), px = be32(s + 12), py = be32(s + 16);
    if (px + fw > w->w || py + fh > w->h) return refuse(w, "fcTL", "invalid frame");
    w->has_bbox = true;
    w->bbox_full = px == 0 && py == 0 && fw == w->w && fh == w->h;
    return LG_OK;
}

/* One chunk's handler (PngStream.chunk_<cid>) on its complete data. */
static lg_status handle(png_walk *w, const uint8_t *c, const uint8_t *s, size_t n) {
    const char *cid = (const char *)c;
    if (memcmp(cid, "IHDR", 4) == 0) {
        if (n < 13) return refuse(w, cid, "truncated");
        w->w = be32(s);
        w->h = be32(s + 4);
        pil_mode m = mode_of(s[8], s[9]);
        if (m != PM_NONE) w->mode = m, w->depth = s[8], w->type = s[9];
        if (s[12]) w->interlace = s[12];
        if (s[11]) return refuse(w, cid, "unknown filter category");
    } else if (memcmp(cid, "PLTE", 4) == 0) {
        if (w->mode == PM_P) w->plte = s, w->plte_len = n, w->have_plte = true;
    } else if (memcmp(cid, "tRNS", 4) == 0) {
        if ((w->mode == PM_1 || w->mode == PM_L || w->mode == PM_I) && n < 2)
            return refuse(w, cid, "truncated");
        if (w->mode == PM_RGB && n < 6) return refuse(w, cid, "truncated");
        if (w->mode == PM_P || w->mode == PM_1 || w->mode == PM_L || w->mode == PM_I ||
            w->mode == PM_RGB)
            w->trns = s, w->trns_len = n, w->have_trns = true;
    } else if (memcmp(cid, "gAMA", 4) == 0) {
        if (n < 4) return refuse(w, cid, "truncated");
    } else if (memcmp(cid, "cHRM", 4) == 0) {
        if (n % 4) return refuse(w, cid, "length not a multiple of 4");
    } else if (memcmp(cid, "sRGB", 4) == 0) {
        if (n < 1) return refuse(w, cid, "truncated");
    } else if (memcmp(cid, "pHYs", 4) == 0) {
        if (n < 9) return refuse(w, cid, "truncated");
    } else if (memcmp(cid, "tEXt", 4) == 0 || memcmp(cid, "zTXt", 4) == 0 ||
               memcmp(cid, "iTXt", 4) == 0 || memcmp(cid, "iCCP", 4) == 0) {
        return text_chunk(w, cid, s, n);
    } else if (memcmp(cid, "eXIf", 4) == 0) {
        w->exif = s, w->exif_len = n, w->have_exif = true;
    } else if (memcmp(cid, "acTL", 4) == 0) {
        if (n < 8) return refuse(w, cid, "truncated");
        uint32_t nf = be32(s);
        if (w->n_frames)
            w->n_frames = 0;
        else if (nf != 0 && nf <= 0x80000000u)
            w->n_frames = nf;
    } else if (memcmp(cid, "fcTL", 4) == 0) {
        return fctl_chunk(w, s, n);
    } else if (memcmp(cid, "fdAT", 4) == 0) {
        uint32_t seq = be32(s);
        if (!w->seq_set || (uint64_t)w->seq + 1 != seq)
            return refuse(w, cid, "frame sequence error");
        w->seq = seq;
    }
    return LG_OK; /* IDAT after the image, and unknown chunks: skipped */
}

static lg_status truncated(png_walk *w) {
    return lg_err_set(w->err, LG_E_FORMAT, "%s: truncated PNG: image file is truncated",
                      w->src->name);
}

/* PngImageFile._open: the chunks up to the first IDAT, each handled and its CRC checked. */
static lg_status walk_header(png_walk *w) {
    const uint8_t *d = w->src->data;
    size_t n = w->src->size, pos = 8;
    for (;;) {
        if (n - pos < 8) return truncated(w);
        uint32_t len = be32(d + pos);
        const uint8_t *cid = d + pos + 4;
        if (!is_cid(cid)) return refuse(w, "????", "broken chunk name");
        size_t dpos = pos + 8;
        if (memcmp(cid, "IDAT", 4) == 0) {
            w->idat_pos = pos;
            w->default_image = w->n_frames && !w->has_bbox;
            return LG_OK;
        }
        if (memcmp(cid, "IEND", 4) == 0) return refuse(w, "IEND", "no image data");
        if (memcmp(cid, "fdAT", 4) == 0) return refuse(w, "fdAT", "frame data before IDAT");
        if (len > n - dpos) return truncated(w);
        lg_status st = handle(w, cid, d + dpos, len);
        if (st != LG_OK) return st;
        if (n - dpos - len < 4) return refuse(w, (const char *)cid, "incomplete checksum");
        if (be32(d + dpos + len) != (uint32_t)crc32(crc32(0, cid, 4), d + dpos, len))
            return refuse(w, (const char *)cid, "bad checksum");
        pos = dpos + len + 4;
    }
}

/* PngImageFile.load_end: the chunks after the image data, until IEND, a broken chunk header or
 * the end of the file; their data must be complete (CRCs are not read). */
static lg_status walk_trailer(png_walk *w) {
    const uint8_t *d = w->src->data;
    size_t n = w->src->size, pos = w->run_end;
    bool animated = w->n_frames + (w->default_image ? 1u : 0u) > 1;
    w->post = true;
    while (pos <= n && n - pos >= 8) {
        uint32_t len = be32(d + pos);
        const uint8_t *cid = d + pos + 4;
        if (!is_cid(cid) || memcmp(cid, "IEND", 4) == 0) break;
        if (animated && memcmp(cid, "fcTL", 4) == 0) break;
        if (memcmp(cid, "fdAT", 4) == 0 && len < 4) return refuse(w, "fdAT", "truncated");
        if (len > n - pos - 8) return truncated(w);
        lg_status st = handle(w, cid, d + pos + 8, len);
        if (st != LG_OK) return st;
        pos += (size_t)12 + len;
    }
    return LG_OK;
}

/* The tables the conversion needs, from the walk (Pillow's view of PLTE and tRNS). */
typedef struct png_desc {
    uint32_t w, h;
    int depth, type, interlace;
    uint8_t pal[256 * 3];
    uint8_t pal_alpha[256];
    bool has_trns;
    struct {
        uint16_t gray, red, green, blue; /* tRNS values as stored (not scaled) */
    } trns;
} png_desc;

static lg_status make_tables(png_walk *w, png_desc *d) {
    d->w = w->w, d->h = w->h, d->depth = w->depth, d->type = w->type, d->interlace = w->interlace;
    size_t np = w->have_plte ? w->plte_len / 3 : 0;
    if (np > 256) return refuse(w, "PLTE", "invalid palette size (more than 256 entries)");
    img_palette_fill(d->pal, w->plte, (int)np);
    memset(d->pal_alpha, 255, sizeof d->pal_alpha);
    d->has_trns = w->have_trns;
    if (!w->have_trns) return LG_OK;
    const uint8_t *t = w->trns;
    if (w->mode == PM_P) {
        for (size_t i = 0; i < w->trns_len && i < 256; i++) d->pal_alpha[i] = t[i];
    } else if (w->mode == PM_RGB) {
        d->trns.red = (uint16_t)(t[0] << 8 | t[1]);
        d->trns.green = (uint16_t)(t[2] << 8 | t[3]);
        d->trns.blue = (uint16_t)(t[4] << 8 | t[5]);
    } else {
        d->trns.gray = (uint16_t)(t[0] << 8 | t[1]);
    }
    return LG_OK;
}

/* One row of unpacked samples (1 byte each below 8 bits, gray scaled to 0..255; 2 bytes big-endian
 * at 16 bits) to RGB + alpha as convert("RGB") / convert("RGBA") give them. */
static void convert_row(const png_desc *d, const uint8_t *in, uint8_t *rgb, uint8_t *alpha) {
    bool w16 = d->depth == 16;
    int step = w16 ? 2 : 1;
    for (uint32_t x = 0; x < d->w; x++, rgb += 3) {
        int a = 255;
        switch (d->type) {
        case 0: {
            int v = w16 ? (in[0] << 8 | in[1]) : in[0];
            if (v > 255) v = 255; /* 16-bit gray is Pillow mode I: clipped, not scaled */
            rgb[0] = rgb[1] = rgb[2] = (uint8_t)v;
            if (d->has_trns && v == d->trns.gray) a = 0;
            in += step;
            break;
        }
        case 4:
            rgb[0] = rgb[1] = rgb[2] = in[0];
            a = in[step];
            in += 2 * step;
            break;
        case 3:
            memcpy(rgb, d->pal + 3 * in[0], 3);
            a = d->pal_alpha[in[0]];
            in += 1;
            break;
        case 2:
            rgb[0] = in[0], rgb[1] = in[step], rgb[2] = in[2 * step];
            if (d->has_trns && rgb[0] == d->trns.red && rgb[1] == d->trns.green &&
                rgb[2] == d->trns.blue)
                a = 0;
            in += 3 * step;
            break;
        default: /* RGBA */
            rgb[0] = in[0], rgb[1] = in[step], rgb[2] = in[2 * step];
            a = in[3 * step];
            in += 4 * step;
            break;
        }
        if (alpha) *alpha++ = (uint8_t)a;
    }
}

static bool has_alpha(const png_desc *d) {
    return d->has_trns || d->type == 4 || d->type == 6;
}

/* ---- the pixels: Pillow's ZipDecode.c over zlib, step for step ---- */

static const int OFFSET[] = {7, 3, 3, 1, 1, 0, 0};
static const int START_COL[] = {0, 4, 0, 2, 0, 1, 0};
static const int START_ROW[] = {0, 0, 4, 0, 2, 0, 1};
static const int COL_INC[] = {8, 8, 4, 4, 2, 2, 1};
static const int ROW_INC[] = {8, 8, 8, 4, 4, 2, 2};

typedef struct zip_state {
    const png_desc *d;
    z_stream z;
    bool z_open;
    unsigned bits, channels; /* bits per pixel; samples per pixel */
    size_t bytes, row_len;   /* a full row; the current (pass) row, without the filter byte */
    uint8_t *buf, *prev;     /* bytes + 1 each */
    size_t last_output;
    int pass;
    uint32_t y;
    uint8_t *pix; /* h rows of w unpacked pixels, zero where no row was decoded (Pillow's black) */
    size_t px_bytes;
} zip_state;

static size_t pass_row_len(const zip_state *zs, int pass) {
    size_t n = ((size_t)zs->d->w + OFFSET[pass]) / COL_INC[pass];
    return (n * zs->bits + 7) / 8;
}

/* The PNG filters, as ZipDecode applies them (bpp = whole bytes per pixel, at least 1). */
static bool unfilter(zip_state *zs) {
    uint8_t *b = zs->buf, *p = zs->prev;
    size_t n = zs->row_len, bpp = (zs->bits + 7) / 8, i;
    switch (b[0]) {
    case 0:
        break;
    case 1:
        for (i = bpp + 1; i <= n; i++) b[i] += b[i - bpp];
        break;
    case 2:
        for (i = 1; i <= n; i++) b[i] += p[i];
        break;
    case 3:
        for (i = 1; i <= bpp && i <= n; i++) b[i] += p[i] / 2;
        for (; i <= n; i++) b[i] += (uint8_t)((b[i - bpp] + p[i]) / 2);
        break;
    case 4:
        for (i = 1; i <= bpp && i <= n; i++) b[i] += p[i];
        for (; i <= n; i++) {
            int a = b[i - bpp], bb = p[i], c = p[i - bpp];
            int pa = abs(bb - c), pb = abs(a - c), pc = abs(a + bb - 2 * c);
            b[i] += (uint8_t)((pa <= pb && pa <= pc) ? a : (pb <= pc) ? bb : c);
        }
        break;
    default:
        return false;
    }
    return true;
}

/* Unpacks the decoded row's pixels to row y, columns col0, col0 + inc, ... */
static void stuff_row(zip_state *zs, uint32_t y, uint32_t col0, uint32_t inc) {
    const png_desc *d = zs->d;
    const uint8_t *in = zs->buf + 1;
    size_t count = (size_t)(d->w - col0 + inc - 1) / inc;
    uint8_t *out = zs->pix + ((size_t)y * d->w + col0) * zs->px_bytes;
    size_t step = (size_t)inc * zs->px_bytes;
    if (d->depth >= 8) {
        for (size_t k = 0; k < count; k++, out += step)
            memcpy(out, in + k * zs->px_bytes, zs->px_bytes);
        return;
    }
    /* 1/2/4-bit gray (scaled to 0..255 as Pillow's "1", "L;2", "L;4") or palette indices */
    unsigned dep = (unsigned)d->depth, mask = (1u << dep) - 1, scale = 255 / mask;
    for (size_t k = 0; k < count; k++, out += step) {
        size_t bit = k * dep;
        unsigned v = (in[bit >> 3] >> (8 - dep - (bit & 7))) & mask;
        *out = (uint8_t)(d->type == 0 ? v * scale : v);
    }
}

typedef enum { ZIP_MORE, ZIP_DONE, ZIP_BROKEN } zip_result;

/* ImagingZipDecode on one block of input. */
static zip_result zip_decode(zip_state *zs, const uint8_t *data, size_t n) {
    const png_desc *d = zs->d;
    zs->z.next_in = (Bytef *)data;
    zs->z.avail_in = (uInt)n;
    while (zs->z.avail_in > 0) {
        zs->z.next_out = zs->buf + zs->last_output;
        zs->z.avail_out = (uInt)(zs->row_len + 1 - zs->last_output);
        int err = inflate(&zs->z, Z_NO_FLUSH);
        if (err < 0) return ZIP_BROKEN; /* Z_BUF_ERROR included, as in Pillow */
        size_t got = zs->row_len + 1 - zs->z.avail_out;
        if (got < zs->row_len + 1) {
            zs->last_output = got;
            break; /* needs more input */
        }
        if (!unfilter(zs)) return ZIP_BROKEN;
        if (d->interlace) {
            stuff_row(zs, zs->y, (uint32_t)START_COL[zs->pass], (uint32_t)COL_INC[zs->pass]);
            zs->y += (uint32_t)ROW_INC[zs->pass];
            while (zs->y >= d->h || zs->row_len == 0) {
                if (++zs->pass == 7) {
                    zs->y = d->h;
                    break;
                }
                zs->y = (uint32_t)START_ROW[zs->pass];
                zs->row_len = pass_row_len(zs, zs->pass);
                memset(zs->buf, 0, zs->bytes + 1); /* the pass starts on a black line */
            }
        } else {
            stuff_row(zs, zs->y, 0, 1);
            zs->y++;
        }
        zs->last_output = 0;
        if (zs->y >= d->h || err == Z_STREAM_END) return ZIP_DONE; /* rows left stay black */
        uint8_t *t = zs->buf;
        zs->buf = zs->prev;
        zs->prev = t;
    }
    return ZIP_MORE;
}

#define PIL_READ_BLOCK 65536 /* ImageFile's decodermaxblock */

/* ImageFile.load + PngImageFile.load_read: the IDAT chunks' data in blocks of at most 64 KiB
 * (never across chunks) until the decoder has every row. Sets w->run_end to the end of the chunk
 * the rows completed in (where load_end goes on). */
static lg_status feed(png_walk *w, zip_state *zs) {
    const uint8_t *d = w->src->data;
    size_t n = w->src->size, pos = w->idat_pos;
    for (;;) {
        if (pos > n || n - pos < 8 || memcmp(d + pos + 4, "IDAT", 4) != 0) return truncated(w);
        size_t len = be32(d + pos), dpos = pos + 8, avail = len < n - dpos ? len : n - dpos;
        for (size_t off = 0; off < len; off += PIL_READ_BLOCK) {
            size_t want = len - off < PIL_READ_BLOCK ? len - off : PIL_READ_BLOCK;
            if (off >= avail) return truncated(w);
            size_t got = avail - off < want ? avail - off : want;
            zip_result r = zip_decode(zs, d + dpos + off, got);
            if (r == ZIP_BROKEN)
                return lg_err_set(w->err, LG_E_FORMAT,
                                  "%s: corrupt PNG: broken data stream when reading image file",
                                  w->src->name);
            if (r == ZIP_DONE) {
                w->run_end = dpos + len + 4;
                return LG_OK;
            }
        }
        pos = dpos + len + 4;
    }
}

static lg_status pixels(png_walk *w, const png_desc *desc, img_decoded *out) {
    const img_src *src = w->src;
    static const unsigned channels[] = {1, 0, 3, 1, 2, 0, 4};
    zip_state zs;
    memset(&zs, 0, sizeof zs);
    zs.d = desc;
    zs.channels = channels[desc->type];
    zs.bits = zs.channels * (unsigned)desc->depth;
    zs.bytes = ((size_t)desc->w * zs.bits + 7) / 8;
    zs.row_len = desc->interlace ? pass_row_len(&zs, 0) : zs.bytes;
    zs.px_bytes = zs.channels * (desc->depth == 16 ? 2u : 1u);
    size_t npix = (size_t)desc->w * desc->h, pix_bytes;
    if (!lg_mul_ok(npix, zs.px_bytes, &pix_bytes) || zs.bytes > INT32_MAX)
        return lg_err_set(w->err, LG_E_LIMIT, "%s: PNG too large", src->name);
    zs.buf = lg_calloc(zs.bytes + 1, 1);
    zs.prev = lg_calloc(zs.bytes + 1, 1);
    zs.pix = lg_calloc(pix_bytes, 1);
    lg_status st = LG_OK;
    if (!zs.buf || !zs.prev || !zs.pix || inflateInit(&zs.z) != Z_OK)
        st = lg_err_set(w->err, LG_E_NOMEM, "%s: out of memory", src->name);
    else
        zs.z_open = true;
    if (st == LG_OK) st = feed(w, &zs);
    if (st == LG_OK) st = img_alloc(src, out, (int)desc->w, (int)desc->h, has_alpha(desc), w->err);
    if (st == LG_OK)
        for (uint32_t y = 0; y < desc->h; y++)
            convert_row(desc, zs.pix + (size_t)y * desc->w * zs.px_bytes,
                        out->rgb + (size_t)y * desc->w * 3,
                        out->alpha ? out->alpha + (size_t)y * desc->w : NULL);
    if (zs.z_open) inflateEnd(&zs.z);
    lg_free(zs.buf);
    lg_free(zs.prev);
    lg_free(zs.pix);
    return st;
}

/* Pillow's walk, then the pixels, then the trailing chunks' checks (load_end). */
static lg_status run(png_walk *w, img_decoded *out) {
    lg_status st = walk_header(w);
    if (st != LG_OK) return st;
    if (w->mode == PM_NONE)
        return refuse(w, "IHDR", "missing or unsupported bit depth / colour type");
    st = img_check_size(w->src, "PNG", w->w, w->h, w->err);
    if (st != LG_OK) return st;
    if (w->has_bbox && !w->bbox_full)
        return lg_err_set(w->err, LG_E_UNSUPPORTED,
                          "%s: unsupported PNG: first APNG frame smaller than the image",
                          w->src->name);
    const uint8_t *exif = w->exif;
    size_t exif_len = w->exif_len;
    bool have_exif = w->have_exif;
    png_desc desc;
    memset(&desc, 0, sizeof desc);
    st = make_tables(w, &desc);
    if (st == LG_OK) st = pixels(w, &desc, out);
    if (st != LG_OK) return st;
    w->have_exif = false;
    st = walk_trailer(w);
    if (st != LG_OK) {
        img_decoded_free(out);
        return st;
    }
    /* ImageOps.exif_transpose: the eXIf read by Image.open, else the last one after the data */
    if (!have_exif && w->have_exif) exif = w->exif, exif_len = w->exif_len, have_exif = true;
    out->orientation = 1;
    if (w->src->opts->apply_exif_orientation && have_exif &&
        !(exif_len >= 6 && memcmp(exif, "Exif\0\0", 6) == 0))
        out->orientation = img_exif_orientation(exif, exif_len);
    return LG_OK;
}

lg_status img_decode_png(const img_src *src, img_decoded *out, lg_error *err) {
    png_walk w;
    memset(&w, 0, sizeof w);
    w.src = src;
    w.err = err;
    lg_status st = run(&w, out);
    lg_free(w.scratch);
    return st;
}
