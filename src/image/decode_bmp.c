/*
 * decode_bmp.c — BMP through stb_image (1/4/8-bit palette, 24 and 32-bit, top-down or
 * bottom-up), which gives the same pixels as Pillow's BmpImagePlugin for these layouts. Not
 * matched: 16-bit 5-5-5/5-6-5 BMPs (stb widens 5-bit samples by bit replication, Pillow by
 * v * 255 / 31; they differ by one level for some values), RLE-compressed BMPs (stb refuses them:
 * reported as unsupported), and the alpha of 32-bit BMPs (ignored, as Pillow's "BGRX" ignores
 * it for plain 32-bit files).
 */
#include "image/image.h"

#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MALLOC(sz) lg_malloc(sz)
#define STBI_REALLOC(p, newsz) lg_realloc(p, newsz)
#define STBI_FREE(p) lg_free(p)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop
/* STB_IMAGE_STATIC declares the whole API static; the functions this file does not call are
 * reported at the end of the translation unit. */
#pragma GCC diagnostic ignored "-Wunused-function"

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* stb_image reads zeros past the end of the data, so a cut-off file would decode as black rows:
 * check that the pixel array of an uncompressed BMP fits in the file (Pillow raises "image file
 * is truncated" there). */
static bool bmp_truncated(const img_src *src) {
    const uint8_t *d = src->data;
    if (src->size < 26) return true;
    uint64_t off = le32(d + 10), hdr = le32(d + 14), w, h, bpp, comp = 0;
    if (hdr == 12) {
        w = (uint64_t)(d[18] | d[19] << 8);
        h = (uint64_t)(d[20] | d[21] << 8);
        bpp = (uint64_t)(d[24] | d[25] << 8);
    } else {
        if (src->size < 34) return true;
        w = le32(d + 18);
        int32_t sh = (int32_t)le32(d + 22);
        h = sh < 0 ? (uint64_t)(-(int64_t)sh) : (uint64_t)sh;
        bpp = (uint64_t)(d[28] | d[29] << 8);
        comp = le32(d + 30);
    }
    if (comp != 0 && comp != 3) return false; /* compressed: stb decides */
    uint64_t row = (bpp * w + 31) / 32 * 4;
    return off + row * h > src->size;
}

lg_status img_decode_bmp(const img_src *src, img_decoded *out, lg_error *err) {
    if (src->size > INT32_MAX)
        return lg_err_set(err, LG_E_LIMIT, "%s: BMP file too large", src->name);
    int w = 0, h = 0, comp = 0, len = (int)src->size;
    if (!stbi_info_from_memory(src->data, len, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt BMP: %s", src->name,
                          why ? why : "bad header");
    }
    lg_status st = img_check_size(src, "BMP", (uint64_t)w, (uint64_t)h, err);
    if (st != LG_OK) return st;
    if (bmp_truncated(src))
        return lg_err_set(err, LG_E_FORMAT, "%s: truncated BMP: image file is truncated",
                          src->name);
    uint8_t *px = stbi_load_from_memory(src->data, len, &w, &h, &comp, 3);
    if (!px) {
        const char *why = stbi_failure_reason();
        if (why && strstr(why, "RLE"))
            return lg_err_set(err, LG_E_UNSUPPORTED, "%s: unsupported BMP: RLE compression",
                              src->name);
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt or truncated BMP: %s", src->name,
                          why ? why : "decode error");
    }
    out->width = w;
    out->height = h;
    out->rgb = px;
    out->alpha = NULL;
    out->orientation = 1;
    return LG_OK;
}
