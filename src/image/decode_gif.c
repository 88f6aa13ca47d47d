/*
 * decode_gif.c — the first frame of a GIF through giflib, placed as Pillow 9.4's GifImagePlugin
 * places it: the canvas is the logical screen (grown if the frame reaches past it), filled with
 * the frame's transparent index when its graphic control block names one and with index 0
 * otherwise; the frame's local palette, else the global one, else a grey ramp (mode L);
 * interlaced rows put back in order. Alpha (transparent index) is dropped by convert("RGB").
 */
#include "image/image.h"

#include <gif_lib.h>
#include <string.h>

typedef struct gif_reader {
    const img_src *src;
    size_t pos;
    bool short_read; /* a read ran past the end of the data */
} gif_reader;

static int read_fn(GifFileType *g, GifByteType *dst, int n) {
    gif_reader *r = g->UserData;
    size_t left = r->src->size - r->pos, m = (size_t)n < left ? (size_t)n : left;
    memcpy(dst, r->src->data + r->pos, m);
    r->pos += m;
    if (m < (size_t)n) r->short_read = true;
    return (int)m;
}

/* giflib reports running out of data under several codes; the reader knows. */
static lg_status gif_error(const img_src *src, const gif_reader *r, int code, lg_error *err) {
    if (r->short_read || code == D_GIF_ERR_READ_FAILED || code == D_GIF_ERR_EOF_TOO_SOON)
        return lg_err_set(err, LG_E_FORMAT, "%s: truncated GIF: image file is truncated",
                          src->name);
    const char *m = GifErrorString(code);
    return lg_err_set(err, LG_E_FORMAT, "%s: corrupt GIF: %s", src->name, m ? m : "decode error");
}

/* Skips extension blocks up to the first image descriptor; returns the transparent index of
 * the last graphic control block seen (-1 for none). */
static int skip_to_image(GifFileType *g, int *code) {
    int trans = -1;
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(g, &rt) == GIF_ERROR) return (*code = g->Error, -2);
        if (rt == IMAGE_DESC_RECORD_TYPE) return trans;
        if (rt == TERMINATE_RECORD_TYPE) return (*code = -1, -2);
        if (rt != EXTENSION_RECORD_TYPE) continue;
        int ext_code;
        GifByteType *ext = NULL;
        if (DGifGetExtension(g, &ext_code, &ext) == GIF_ERROR) return (*code = g->Error, -2);
        if (ext_code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4)
            trans = (ext[1] & 1) ? ext[4] : -1;
        while (ext)
            if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) return (*code = g->Error, -2);
    }
}

/* Reads the frame's rows (deinterlacing) into idx (fw x fh). */
static int read_rows(GifFileType *g, uint8_t *idx, int fw, int fh, bool interlaced) {
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    if (!interlaced) {
        for (int y = 0; y < fh; y++)
            if (DGifGetLine(g, idx + (size_t)y * fw, fw) == GIF_ERROR) return g->Error;
        return 0;
    }
    for (int p = 0; p < 4; p++)
        for (int y = start[p]; y < fh; y += step[p])
            if (DGifGetLine(g, idx + (size_t)y * fw, fw) == GIF_ERROR) return g->Error;
    return 0;
}

static lg_status decode(GifFileType *g, const img_src *src, img_decoded *out, lg_error *err) {
    int code = 0;
    lg_status st = img_check_size(src, "GIF", (uint64_t)g->SWidth, (uint64_t)g->SHeight, err);
    if (st != LG_OK) return st;
    int trans = skip_to_image(g, &code);
    if (trans == -2 && code == -1)
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt GIF: no image in the file", src->name);
    if (trans == -2 || DGifGetImageDesc(g) == GIF_ERROR)
        return gif_error(src, g->UserData, trans == -2 ? code : g->Error, err);
    GifImageDesc *d = &g->Image;
    int x0 = d->Left, y0 = d->Top, fw = d->Width, fh = d->Height;
    int cw = x0 + fw > g->SWidth ? x0 + fw : g->SWidth;
    int ch = y0 + fh > g->SHeight ? y0 + fh : g->SHeight;
    st = img_check_size(src, "GIF", (uint64_t)cw, (uint64_t)ch, err);
    if (st != LG_OK) return st;
    if (fw <= 0 || fh <= 0)
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt GIF: empty frame", src->name);
    ColorMapObject *cm = d->ColorMap ? d->ColorMap : g->SColorMap;
    uint8_t raw[256 * 3], pal[256 * 3];
    int n = cm ? (cm->ColorCount < 256 ? cm->ColorCount : 256) : 0;
    for (int i = 0; i < n; i++) {
        raw[3 * i] = cm->Colors[i].Red;
        raw[3 * i + 1] = cm->Colors[i].Green;
        raw[3 * i + 2] = cm->Colors[i].Blue;
    }
    img_palette_fill(pal, raw, n);
    uint8_t *idx = lg_malloc((size_t)fw * fh);
    if (!idx) return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    code = read_rows(g, idx, fw, fh, d->Interlace);
    if (code) {
        lg_free(idx);
        return gif_error(src, g->UserData, code, err);
    }
    st = img_alloc(src, out, cw, ch, trans >= 0, err);
    if (st == LG_OK) {
        uint8_t fill = trans >= 0 ? (uint8_t)trans : 0;
        for (int y = 0; y < ch; y++) {
            for (int x = 0; x < cw; x++) {
                bool in = x >= x0 && x < x0 + fw && y >= y0 && y < y0 + fh;
                uint8_t v = in ? idx[(size_t)(y - y0) * fw + (x - x0)] : fill;
                size_t i = (size_t)y * cw + x;
                memcpy(out->rgb + 3 * i, pal + 3 * v, 3);
                if (out->alpha) out->alpha[i] = (int)v == trans ? 0 : 255;
            }
        }
    }
    lg_free(idx);
    return st;
}

lg_status img_decode_gif(const img_src *src, img_decoded *out, lg_error *err) {
    gif_reader r = {src, 0, false};
    int code = 0;
    GifFileType *g = DGifOpen(&r, read_fn, &code);
    if (!g) return gif_error(src, &r, code, err);
    lg_status st = decode(g, src, out, err);
    DGifCloseFile(g, &code);
    return st;
}
