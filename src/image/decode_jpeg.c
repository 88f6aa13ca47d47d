/*
 * decode_jpeg.c — JPEG through libjpeg-turbo with the library's default settings, which are the
 * ones Pillow 9.4 uses (islow IDCT, fancy upsampling, block smoothing): baseline, progressive,
 * grayscale, CMYK and YCCK. Pixel conversion follows Pillow's JpegImagePlugin / Convert.c:
 * 1 component -> L replicated; 3 -> RGB from libjpeg; 4 -> CMYK read with rawmode "CMYK;I"
 * (Pillow inverts EVERY four-component JPEG, assuming Adobe's inverted convention) then
 * cmyk2rgb. libjpeg's default error handler calls exit(), so ours longjmps back here.
 */
#include "image/image.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    bool truncated;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void on_error(j_common_ptr c) {
    jerr *e = (jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings are ignored (as Pillow's decoder ignores them: "Corrupt JPEG data: extraneous
 * bytes" still yields an image) except one: when the data runs out, libjpeg's memory source
 * inserts a fake EOI and decodes the rest as flat grey. Pillow instead raises "image file is
 * truncated" (LOAD_TRUNCATED_IMAGES is off by default), so a premature end is an error here. */
static void on_message(j_common_ptr c, int level) {
    jerr *e = (jerr *)c->err;
    if (level == -1 && c->err->msg_code == JWRN_JPEG_EOF) {
        e->truncated = true;
        c->err->format_message(c, e->msg);
        longjmp(e->jb, 1);
    }
}

/* Pillow's MULDIV255 and cmyk2rgb, after the ";I" inversion of every sample. */
static inline uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_row(const uint8_t *in, uint8_t *out, int w) {
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3]; /* 255 - (255 - k) */
        for (int c = 0; c < 3; c++) {
            int v = nk - muldiv255(255 - in[c], nk);
            out[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static int exif_of(j_decompress_ptr ci) {
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return img_exif_orientation(m->data, m->data_length);
    return 1;
}

static lg_status read_pixels(j_decompress_ptr ci, uint8_t *row, uint8_t *rgb) {
    int w = (int)ci->output_width, nc = ci->output_components;
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = rgb + (size_t)ci->output_scanline * w * 3;
        JSAMPROW rp = nc == 3 ? dst : row;
        if (jpeg_read_scanlines(ci, &rp, 1) != 1) return LG_E_FORMAT;
        if (nc == 1)
            for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
        else if (nc == 4)
            cmyk_row(row, dst, w);
    }
    return LG_OK;
}

/* Chooses libjpeg's output colour space as Pillow does for the component count. */
static lg_status set_color_space(const img_src *src, j_decompress_ptr ci, lg_error *err) {
    switch (ci->num_components) {
    case 1:
        ci->out_color_space = JCS_GRAYSCALE;
        return LG_OK;
    case 3:
        ci->out_color_space = JCS_RGB;
        return LG_OK;
    case 4:
        ci->out_color_space = JCS_CMYK;
        return LG_OK;
    }
    return lg_err_set(err, LG_E_UNSUPPORTED, "%s: unsupported JPEG with %d components", src->name,
                      ci->num_components);
}

lg_status img_decode_jpeg(const img_src *src, img_decoded *out, lg_error *err) {
    struct jpeg_decompress_struct ci;
    jerr je;
    memset(&je, 0, sizeof je);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = on_error;
    je.pub.emit_message = on_message;
    /* Everything the error path needs after a longjmp is volatile. */
    uint8_t *volatile row = NULL, *volatile rgb = NULL;
    int width = 0, height = 0, orientation = 1;
    lg_status st = LG_OK;
    jpeg_create_decompress(&ci);
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        lg_free(row);
        lg_free(rgb);
        if (je.truncated)
            return lg_err_set(err, LG_E_FORMAT, "%s: truncated JPEG: image file is truncated (%s)",
                              src->name, je.msg);
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt JPEG: %s", src->name, je.msg);
    }
    jpeg_mem_src(&ci, src->data, (unsigned long)src->size);
    if (src->opts->apply_exif_orientation) jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xffff);
    if (jpeg_read_header(&ci, TRUE) != JPEG_HEADER_OK)
        st = lg_err_set(err, LG_E_FORMAT, "%s: corrupt JPEG: no image in the file", src->name);
    if (st == LG_OK) st = img_check_size(src, "JPEG", ci.image_width, ci.image_height, err);
    if (st == LG_OK) st = set_color_space(src, &ci, err);
    if (st == LG_OK) {
        jpeg_start_decompress(&ci);
        width = (int)ci.output_width;
        height = (int)ci.output_height;
        rgb = lg_malloc((size_t)width * height * 3);
        row = lg_malloc((size_t)width * 4);
        if (!rgb || !row) st = lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    }
    if (st == LG_OK && read_pixels(&ci, row, rgb) != LG_OK)
        st = lg_err_set(err, LG_E_FORMAT, "%s: corrupt JPEG: scanline read failed", src->name);
    if (st == LG_OK) {
        orientation = src->opts->apply_exif_orientation ? exif_of(&ci) : 1;
        /* A missing EOI is an error too: Pillow reports such a file as truncated. */
        jpeg_finish_decompress(&ci);
    }
    jpeg_destroy_decompress(&ci);
    lg_free(row);
    if (st != LG_OK) {
        lg_free(rgb);
        return st;
    }
    out->width = width, out->height = height, out->rgb = rgb, out->alpha = NULL;
    out->orientation = orientation;
    return LG_OK;
}
