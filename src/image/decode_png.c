/*
 * decode_png.c — PNG through libpng (1–16 bit; gray, gray+alpha, palette, RGB, RGBA; tRNS;
 * interlaced), converted as Pillow 9.4 does (PngImagePlugin modes + Convert.c):
 *   gray 1/2/4/8 bit -> L scaled to 0..255, replicated;   gray 16 bit -> mode I, clipped at 255;
 *   RGB/RGBA/LA 16 bit -> the high byte of each sample;    palette -> looked up (alpha dropped);
 *   alpha and tRNS are dropped by convert("RGB"); the alpha that convert("RGBA") would give is
 *   kept aside for the optional composite over white.
 * Gamma, sRGB and ICC chunks are ignored, as Pillow ignores them. Truncation is an error ("image
 * file is truncated" in Pillow); a missing IEND after complete image data is not.
 */
#include "image/image.h"

#include <png.h>
#include <setjmp.h>
#include <string.h>

typedef struct reader {
    const img_src *src;
    size_t pos;
    bool truncated;
    char msg[200];
} reader;

static void read_fn(png_structp png, png_bytep dst, size_t n) {
    reader *r = png_get_io_ptr(png);
    if (n > r->src->size - r->pos) {
        r->truncated = true;
        png_error(png, "unexpected end of data");
    }
    memcpy(dst, r->src->data + r->pos, n);
    r->pos += n;
}

static void on_error(png_structp png, png_const_charp msg) {
    reader *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* Pillow decodes through such issues too */
}

/* The PNG as libpng describes it, plus the tables the conversion needs. */
typedef struct png_desc {
    png_uint_32 w, h;
    int depth, type, interlace;
    uint8_t pal[256 * 3];
    uint8_t pal_alpha[256];
    bool has_trns;
    png_color_16 trns; /* gray / RGB tRNS value as stored (not scaled) */
} png_desc;

static void read_tables(png_structp png, png_infop info, png_desc *d) {
    png_colorp plte = NULL;
    int nplte = 0;
    if (png_get_PLTE(png, info, &plte, &nplte) != PNG_INFO_PLTE) nplte = 0;
    uint8_t raw[256 * 3];
    for (int i = 0; i < nplte && i < 256; i++) {
        raw[3 * i] = plte[i].red;
        raw[3 * i + 1] = plte[i].green;
        raw[3 * i + 2] = plte[i].blue;
    }
    img_palette_fill(d->pal, raw, nplte);
    memset(d->pal_alpha, 255, sizeof d->pal_alpha);
    png_bytep ta = NULL;
    int nt = 0;
    png_color_16p tc = NULL;
    if (png_get_tRNS(png, info, &ta, &nt, &tc) == PNG_INFO_tRNS) {
        d->has_trns = true;
        if (d->type == PNG_COLOR_TYPE_PALETTE && ta)
            for (int i = 0; i < nt && i < 256; i++) d->pal_alpha[i] = ta[i];
        if (tc) d->trns = *tc;
    }
}

/* One row of libpng output (after packing / gray expansion) to RGB + alpha. */
static void convert_row(const png_desc *d, const uint8_t *in, uint8_t *rgb, uint8_t *alpha) {
    bool w16 = d->depth == 16;
    int step = w16 ? 2 : 1;
    for (png_uint_32 x = 0; x < d->w; x++, rgb += 3) {
        int a = 255;
        switch (d->type) {
        case PNG_COLOR_TYPE_GRAY: {
            int v = w16 ? (in[0] << 8 | in[1]) : in[0];
            if (v > 255) v = 255; /* 16-bit gray is Pillow mode I: clipped, not scaled */
            rgb[0] = rgb[1] = rgb[2] = (uint8_t)v;
            if (d->has_trns && v == d->trns.gray) a = 0;
            in += step;
            break;
        }
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            rgb[0] = rgb[1] = rgb[2] = in[0];
            a = in[step];
            in += 2 * step;
            break;
        case PNG_COLOR_TYPE_PALETTE:
            memcpy(rgb, d->pal + 3 * in[0], 3);
            a = d->pal_alpha[in[0]];
            in += 1;
            break;
        case PNG_COLOR_TYPE_RGB:
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
    return d->has_trns || d->type == PNG_COLOR_TYPE_GRAY_ALPHA ||
           d->type == PNG_COLOR_TYPE_RGB_ALPHA;
}

static int exif_of(png_structp png, png_infop info) {
    png_uint_32 n = 0;
    png_bytep ex = NULL;
    if (png_get_eXIf_1(png, info, &n, &ex) && ex) return img_exif_orientation(ex, n);
    return 0;
}

/* The libpng part; longjmps land in img_decode_png. */
static lg_status decode(png_structp png, png_infop info, const img_src *src, png_desc *d,
                        uint8_t *volatile *buf, img_decoded *out, lg_error *err) {
    png_read_info(png, info);
    png_get_IHDR(png, info, &d->w, &d->h, &d->depth, &d->type, &d->interlace, NULL, NULL);
    lg_status st = img_check_size(src, "PNG", d->w, d->h, err);
    if (st != LG_OK) return st;
    read_tables(png, info, d);
    if (d->depth < 8) {
        png_set_packing(png);
        if (d->type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info), data_bytes, total;
    size_t ptr_bytes = sizeof(png_bytep) * d->h;
    if (!lg_mul_ok(rowbytes, d->h, &data_bytes) || data_bytes > SIZE_MAX - ptr_bytes)
        return lg_err_set(err, LG_E_LIMIT, "%s: PNG too large", src->name);
    total = ptr_bytes + data_bytes;
    /* One block: row pointers, then the rows (freed by the caller, also after a longjmp). */
    *buf = lg_malloc(total);
    if (!*buf) return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    png_bytep *rows = (png_bytep *)*buf;
    uint8_t *pix = *buf + ptr_bytes;
    st = img_alloc(src, out, (int)d->w, (int)d->h, has_alpha(d), err);
    if (st != LG_OK) return st;
    for (png_uint_32 y = 0; y < d->h; y++) rows[y] = pix + y * rowbytes;
    png_read_image(png, rows);
    for (png_uint_32 y = 0; y < d->h; y++)
        convert_row(d, pix + y * rowbytes, out->rgb + (size_t)y * d->w * 3,
                    out->alpha ? out->alpha + (size_t)y * d->w : NULL);
    return LG_OK;
}

lg_status img_decode_png(const img_src *src, img_decoded *out, lg_error *err) {
    reader rd = {src, 0, false, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &rd, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    }
    png_set_read_fn(png, &rd, read_fn);
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_DEFAULT);
    uint8_t *volatile buf = NULL;
    /* On the heap: what a longjmp must still see cannot live in this frame's locals. */
    img_decoded *pdec = lg_calloc(1, sizeof *pdec);
    if (!pdec) {
        png_destroy_read_struct(&png, &info, NULL);
        return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    }
    volatile bool image_done = false;
    png_desc desc;
    memset(&desc, 0, sizeof desc);
    lg_status st;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        lg_free(buf);
        if (image_done) { /* only the trailing chunks failed: the pixels are complete */
            *out = *pdec;
            lg_free(pdec);
            return LG_OK;
        }
        img_decoded_free(pdec);
        lg_free(pdec);
        if (rd.truncated)
            return lg_err_set(err, LG_E_FORMAT, "%s: truncated PNG: image file is truncated",
                              src->name);
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt PNG: %s", src->name, rd.msg);
    }
    st = decode(png, info, src, &desc, &buf, pdec, err);
    if (st == LG_OK && src->opts->apply_exif_orientation) {
        int o = exif_of(png, info);
        pdec->orientation = o ? o : 1;
        if (!o) { /* eXIf may follow the image data */
            image_done = true;
            png_read_end(png, info);
            o = exif_of(png, info);
            pdec->orientation = o ? o : 1;
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    lg_free(buf);
    if (st != LG_OK) {
        img_decoded_free(pdec);
        lg_free(pdec);
        return st;
    }
    *out = *pdec;
    lg_free(pdec);
    return LG_OK;
}
