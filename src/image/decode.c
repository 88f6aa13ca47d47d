/*
 * decode.c — the image-loading entry points: read a file, memory or stdin, recognise the format
 * from its first bytes, hand it to the format's decoder (decode_*.c), then apply the requested
 * options (alpha over white, EXIF orientation). The result is what Pillow's
 * Image.open(f).convert("RGB") gives (Pillow 9.4, the reference's version), which is what
 * transformers' convert_to_rgb did when LlavaGuard was trained.
 */
#include "image/image.h"

#include <string.h>

/* Larger files are refused before reading (the pixel limit is checked separately). */
#define IMG_MAX_FILE_BYTES ((size_t)1 << 30)
/* Pillow's DecompressionBombError threshold: 2 * Image.MAX_IMAGE_PIXELS. */
#define IMG_DEFAULT_MAX_PIXELS 178956970u

lg_image_options lg_image_options_default(void) {
    lg_image_options o = {IMG_DEFAULT_MAX_PIXELS, LG_ALPHA_DROP, 0};
    return o;
}

lg_status img_check_size(const img_src *src, const char *fmt, uint64_t w, uint64_t h,
                         lg_error *err) {
    if (w == 0 || h == 0)
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt %s: image has zero size (%llux%llu)",
                          src->name, fmt, (unsigned long long)w, (unsigned long long)h);
    if (w > INT32_MAX / 4 || h > INT32_MAX / 4 || w * h > src->opts->max_pixels)
        return lg_err_set(err, LG_E_LIMIT,
                          "%s: %s image of %llux%llu pixels exceeds the limit of %llu pixels "
                          "(possible decompression bomb)",
                          src->name, fmt, (unsigned long long)w, (unsigned long long)h,
                          (unsigned long long)src->opts->max_pixels);
    return LG_OK;
}

lg_status img_alloc(const img_src *src, img_decoded *out, int w, int h, bool want_alpha,
                    lg_error *err) {
    size_t n = (size_t)w * (size_t)h;
    out->width = w;
    out->height = h;
    out->orientation = 1;
    out->rgb = lg_malloc(n * 3);
    out->alpha = want_alpha ? lg_malloc(n) : NULL;
    if (!out->rgb || (want_alpha && !out->alpha)) {
        img_decoded_free(out);
        return lg_err_set(err, LG_E_NOMEM, "%s: out of memory for %dx%d pixels", src->name, w, h);
    }
    return LG_OK;
}

void img_decoded_free(img_decoded *d) {
    lg_free(d->rgb);
    lg_free(d->alpha);
    d->rgb = d->alpha = NULL;
}

void img_palette_fill(uint8_t pal[256 * 3], const uint8_t *rgb, int n) {
    for (int i = 0; i < 256; i++) pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = (uint8_t)i;
    if (n > 256) n = 256;
    if (n > 0) memcpy(pal, rgb, (size_t)n * 3);
}

/* ---- EXIF ---- */

static unsigned rd16(const uint8_t *p, bool le) {
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

static uint32_t rd32(const uint8_t *p, bool le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int img_exif_orientation(const uint8_t *d, size_t n) {
    if (n >= 6 && memcmp(d, "Exif\0\0", 6) == 0) {
        d += 6;
        n -= 6;
    }
    if (n < 8) return 1;
    bool le;
    if (memcmp(d, "II*\0", 4) == 0)
        le = true;
    else if (memcmp(d, "MM\0*", 4) == 0)
        le = false;
    else
        return 1;
    uint32_t ifd = rd32(d + 4, le);
    if (ifd > n - 2) return 1;
    unsigned count = rd16(d + ifd, le);
    for (unsigned i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) return 1;
        if (rd16(d + e, le) != 0x0112) continue;
        unsigned type = rd16(d + e + 2, le), v;
        if (type == 3) /* SHORT */
            v = rd16(d + e + 8, le);
        else if (type == 4) /* LONG */
            v = rd32(d + e + 8, le);
        else
            return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Pillow's ImageOps.exif_transpose: orientation 2..8 -> flip / rotate / transpose. Output
 * pixel (r, c) reads source pixel (sy, sx). */
static lg_status apply_orientation(img_decoded *d, lg_error *err, const char *name) {
    int o = d->orientation, w = d->width, h = d->height;
    if (o <= 1 || o > 8) return LG_OK;
    bool swap = o >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *out = lg_malloc((size_t)ow * oh * 3);
    if (!out) return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", name);
    for (int r = 0; r < oh; r++) {
        for (int c = 0; c < ow; c++) {
            int sy, sx;
            switch (o) {
            case 2: /* FLIP_LEFT_RIGHT */
                sy = r, sx = w - 1 - c;
                break;
            case 3: /* ROTATE_180 */
                sy = h - 1 - r, sx = w - 1 - c;
                break;
            case 4: /* FLIP_TOP_BOTTOM */
                sy = h - 1 - r, sx = c;
                break;
            case 5: /* TRANSPOSE */
                sy = c, sx = r;
                break;
            case 6: /* ROTATE_270 (90 degrees clockwise) */
                sy = h - 1 - c, sx = r;
                break;
            case 7: /* TRANSVERSE */
                sy = h - 1 - c, sx = w - 1 - r;
                break;
            default: /* 8: ROTATE_90 (counter-clockwise) */
                sy = c, sx = w - 1 - r;
                break;
            }
            memcpy(out + ((size_t)r * ow + c) * 3, d->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    lg_free(d->rgb);
    d->rgb = out;
    d->width = ow;
    d->height = oh;
    return LG_OK;
}

/* Image.alpha_composite(white, im.convert("RGBA")).convert("RGB") with Pillow's integer
 * arithmetic (AlphaComposite.c, 7 extra bits, rounded divisions by 255); the background is
 * opaque white, so dst = 255 and its alpha 255. */
static void composite_white(img_decoded *d) {
    size_t n = (size_t)d->width * d->height;
    for (size_t i = 0; i < n; i++) {
        uint32_t a = d->alpha[i];
        uint8_t *p = d->rgb + 3 * i;
        if (a == 0) {
            p[0] = p[1] = p[2] = 255;
            continue;
        }
        uint32_t outa255 = a * 255 + 255 * (255 - a);
        uint32_t coef1 = a * 255 * 255 * (1u << 7) / outa255;
        uint32_t coef2 = 255 * (1u << 7) - coef1;
        for (int c = 0; c < 3; c++) {
            uint32_t t = p[c] * coef1 + 255 * coef2 + (0x80u << 7);
            p[c] = (uint8_t)((((t >> 8) + t) >> 8) >> 7);
        }
    }
}

/* ---- format recognition ---- */

typedef enum { FMT_NONE, FMT_JPEG, FMT_PNG, FMT_WEBP, FMT_GIF, FMT_BMP } fmt_id;

static bool has(const uint8_t *d, size_t n, size_t off, const char *sig, size_t len) {
    return n >= off + len && memcmp(d + off, sig, len) == 0;
}

/* Names formats we recognise but do not decode, for a clearer message. */
static const char *unsupported_name(const uint8_t *d, size_t n) {
    if (has(d, n, 0, "II*\0", 4) || has(d, n, 0, "MM\0*", 4)) return "TIFF";
    if (has(d, n, 4, "ftypavif", 8) || has(d, n, 4, "ftypavis", 8)) return "AVIF";
    if (has(d, n, 4, "ftypheic", 8) || has(d, n, 4, "ftypheix", 8) || has(d, n, 4, "ftypmif1", 8))
        return "HEIF";
    if (has(d, n, 0, "\0\0\0\x0cjP  ", 8) || has(d, n, 0, "\xff\x4f\xff\x51", 4))
        return "JPEG 2000";
    if (has(d, n, 0, "\xff\x0a", 2) || has(d, n, 0, "\0\0\0\x0cJXL ", 8)) return "JPEG XL";
    if (has(d, n, 0, "8BPS", 4)) return "PSD";
    if (has(d, n, 0, "qoif", 4)) return "QOI";
    if (has(d, n, 0, "\0\0\1\0", 4)) return "ICO";
    if (has(d, n, 0, "%PDF", 4)) return "PDF";
    if (has(d, n, 0, "<svg", 4) || has(d, n, 0, "<?xml", 5)) return "SVG/XML";
    if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7') return "PNM";
    return NULL;
}

static fmt_id sniff(const uint8_t *d, size_t n) {
    if (has(d, n, 0, "\xff\xd8\xff", 3)) return FMT_JPEG;
    if (has(d, n, 0, "\x89PNG\r\n\x1a\n", 8)) return FMT_PNG;
    if (has(d, n, 0, "RIFF", 4) && has(d, n, 8, "WEBP", 4)) return FMT_WEBP;
    if (has(d, n, 0, "GIF87a", 6) || has(d, n, 0, "GIF89a", 6)) return FMT_GIF;
    if (has(d, n, 0, "BM", 2)) return FMT_BMP;
    return FMT_NONE;
}

static bool looks_like_text(const uint8_t *d, size_t n) {
    size_t m = n < 512 ? n : 512, printable = 0;
    for (size_t i = 0; i < m; i++)
        if ((d[i] >= 0x20 && d[i] < 0x7f) || d[i] == '\n' || d[i] == '\r' || d[i] == '\t' ||
            d[i] >= 0x80)
            printable++;
    return m > 0 && printable == m;
}

static lg_status unknown_format(const uint8_t *d, size_t n, const char *name, lg_error *err) {
    if (n == 0) return lg_err_set(err, LG_E_FORMAT, "%s: empty file (0 bytes), not an image", name);
    const char *u = unsupported_name(d, n);
    if (u)
        return lg_err_set(err, LG_E_UNSUPPORTED,
                          "%s: unsupported image format %s (supported: JPEG, PNG, WebP, GIF, BMP)",
                          name, u);
    if (looks_like_text(d, n))
        return lg_err_set(err, LG_E_FORMAT, "%s: not an image (looks like a text file)", name);
    return lg_err_set(err, LG_E_FORMAT,
                      "%s: not an image (unrecognised signature %02x %02x %02x %02x)", name, d[0],
                      n > 1 ? d[1] : 0, n > 2 ? d[2] : 0, n > 3 ? d[3] : 0);
}

LG_API lg_status lg_image_load_memory(const void *data, size_t size, const char *name,
                                      const lg_image_options *opts, lg_image **out, lg_error *err) {
    lg_image_options defaults = lg_image_options_default();
    if (!opts) opts = &defaults;
    if (!name) name = "<memory>";
    if (!out || (!data && size)) return lg_err_set(err, LG_E_ARG, "%s: invalid argument", name);
    if (opts->max_pixels == 0)
        return lg_err_set(err, LG_E_ARG, "%s: max_pixels must be positive", name);
    if (opts->alpha_mode != LG_ALPHA_DROP && opts->alpha_mode != LG_ALPHA_WHITE)
        return lg_err_set(err, LG_E_ARG, "%s: unknown alpha mode %d", name, (int)opts->alpha_mode);
    const uint8_t *d = data;
    img_src src = {d, size, name, opts};
    img_decoded dec = {0};
    static const char *const names[] = {"", "jpeg", "png", "webp", "gif", "bmp"};
    fmt_id f = sniff(d, size);
    lg_status st;
    switch (f) {
    case FMT_JPEG:
        st = img_decode_jpeg(&src, &dec, err);
        break;
    case FMT_PNG:
        st = img_decode_png(&src, &dec, err);
        break;
    case FMT_WEBP:
        st = img_decode_webp(&src, &dec, err);
        break;
    case FMT_GIF:
        st = img_decode_gif(&src, &dec, err);
        break;
    case FMT_BMP:
        st = img_decode_bmp(&src, &dec, err);
        break;
    default:
        return unknown_format(d, size, name, err);
    }
    if (st != LG_OK) return st;
    if (opts->alpha_mode == LG_ALPHA_WHITE && dec.alpha) composite_white(&dec);
    if (opts->apply_exif_orientation) st = apply_orientation(&dec, err, name);
    lg_image *img = st == LG_OK ? lg_malloc(sizeof *img) : NULL;
    if (st == LG_OK && !img) st = lg_err_set(err, LG_E_NOMEM, "%s: out of memory", name);
    if (st != LG_OK) {
        img_decoded_free(&dec);
        return st;
    }
    lg_free(dec.alpha);
    img->width = dec.width;
    img->height = dec.height;
    img->rgb = dec.rgb;
    img->format = names[f];
    *out = img;
    return LG_OK;
}

LG_API lg_status lg_image_load_file(const char *path, const lg_image_options *opts, lg_image **out,
                                    lg_error *err) {
    if (!path || !out) return lg_err_set(err, LG_E_ARG, "image path missing");
    uint8_t *data = NULL;
    size_t size = 0;
    lg_status st = lg_read_file(path, IMG_MAX_FILE_BYTES, &data, &size, err);
    if (st != LG_OK) return st;
    st =
        lg_image_load_memory(data, size, strcmp(path, "-") == 0 ? "<stdin>" : path, opts, out, err);
    lg_free(data);
    return st;
}

LG_API lg_status lg_image_from_rgb(const uint8_t *rgb, int width, int height, lg_image **out,
                                   lg_error *err) {
    if (!rgb || !out || width < 1 || height < 1)
        return lg_err_set(err, LG_E_ARG, "lg_image_from_rgb: invalid argument");
    size_t n = (size_t)width * (size_t)height * 3;
    lg_image *img = lg_malloc(sizeof *img);
    uint8_t *copy = lg_malloc(n);
    if (!img || !copy) {
        lg_free(img);
        lg_free(copy);
        return lg_err_set(err, LG_E_NOMEM, "out of memory for a %dx%d image", width, height);
    }
    memcpy(copy, rgb, n);
    img->width = width;
    img->height = height;
    img->rgb = copy;
    img->format = "raw";
    *out = img;
    return LG_OK;
}

LG_API void lg_image_free(lg_image *img) {
    if (!img) return;
    lg_free(img->rgb);
    lg_free(img);
}

LG_API int lg_image_width(const lg_image *img) {
    return img->width;
}

LG_API int lg_image_height(const lg_image *img) {
    return img->height;
}

LG_API const uint8_t *lg_image_rgb(const lg_image *img) {
    return img->rgb;
}

LG_API const char *lg_image_format(const lg_image *img) {
    return img->format;
}
