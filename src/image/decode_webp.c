/*
 * decode_webp.c — WebP through libwebp: lossy, lossless, with alpha, and the first frame of an
 * animation (through WebPAnimDecoder, as Pillow 9.4 decodes every WebP). The decoder's RGBA
 * output is non-premultiplied, so dropping alpha gives Pillow's convert("RGB").
 */
#include "image/image.h"

#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

static lg_status webp_status(const img_src *src, VP8StatusCode s, lg_error *err) {
    switch (s) {
    case VP8_STATUS_OK:
        return LG_OK;
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return lg_err_set(err, LG_E_FORMAT, "%s: truncated WebP: image file is truncated",
                          src->name);
    case VP8_STATUS_OUT_OF_MEMORY:
        return lg_err_set(err, LG_E_NOMEM, "%s: out of memory decoding WebP", src->name);
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return lg_err_set(err, LG_E_UNSUPPORTED, "%s: unsupported WebP feature", src->name);
    default:
        return lg_err_set(err, LG_E_FORMAT, "%s: corrupt WebP (libwebp status %d)", src->name,
                          (int)s);
    }
}

/* RGBA (w*h*4) to the decoder's planes. */
static void split_rgba(const uint8_t *rgba, img_decoded *out) {
    size_t n = (size_t)out->width * out->height;
    for (size_t i = 0; i < n; i++) {
        memcpy(out->rgb + 3 * i, rgba + 4 * i, 3);
        if (out->alpha) out->alpha[i] = rgba[4 * i + 3];
    }
}

static lg_status decode_still(const img_src *src, const WebPBitstreamFeatures *f, img_decoded *out,
                              lg_error *err) {
    lg_status st = img_alloc(src, out, f->width, f->height, f->has_alpha, err);
    if (st != LG_OK) return st;
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) return lg_err_set(err, LG_E_INTERNAL, "libwebp mismatch");
    size_t n = (size_t)f->width * f->height;
    uint8_t *rgba = f->has_alpha ? lg_malloc(n * 4) : NULL;
    if (f->has_alpha && !rgba) return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", src->name);
    cfg.output.colorspace = f->has_alpha ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = f->has_alpha ? rgba : out->rgb;
    cfg.output.u.RGBA.stride = f->width * (f->has_alpha ? 4 : 3);
    cfg.output.u.RGBA.size = n * (f->has_alpha ? 4 : 3);
    st = webp_status(src, WebPDecode(src->data, src->size, &cfg), err);
    WebPFreeDecBuffer(&cfg.output);
    if (st == LG_OK && rgba) split_rgba(rgba, out);
    lg_free(rgba);
    return st;
}

static lg_status decode_first_frame(const img_src *src, img_decoded *out, lg_error *err) {
    WebPAnimDecoderOptions o;
    if (!WebPAnimDecoderOptionsInit(&o))
        return lg_err_set(err, LG_E_INTERNAL, "libwebp demux mismatch");
    o.color_mode = MODE_RGBA;
    o.use_threads = 0;
    WebPData wd = {src->data, src->size};
    WebPAnimDecoder *ad = WebPAnimDecoderNew(&wd, &o);
    if (!ad) return lg_err_set(err, LG_E_FORMAT, "%s: corrupt animated WebP", src->name);
    WebPAnimInfo info;
    uint8_t *rgba = NULL;
    int ts = 0;
    lg_status st = LG_OK;
    if (!WebPAnimDecoderGetInfo(ad, &info))
        st = lg_err_set(err, LG_E_FORMAT, "%s: corrupt animated WebP", src->name);
    if (st == LG_OK) st = img_check_size(src, "WebP", info.canvas_width, info.canvas_height, err);
    if (st == LG_OK)
        st = img_alloc(src, out, (int)info.canvas_width, (int)info.canvas_height, true, err);
    if (st == LG_OK && !WebPAnimDecoderGetNext(ad, &rgba, &ts)) {
        img_decoded_free(out);
        st = lg_err_set(err, LG_E_FORMAT, "%s: corrupt or truncated animated WebP", src->name);
    }
    if (st == LG_OK) split_rgba(rgba, out);
    WebPAnimDecoderDelete(ad);
    return st;
}

static int exif_of(const img_src *src) {
    WebPData wd = {src->data, src->size};
    WebPDemuxer *dm = WebPDemux(&wd);
    if (!dm) return 1;
    int o = 1;
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(dm, "EXIF", 1, &it)) {
        o = img_exif_orientation(it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
    }
    WebPDemuxDelete(dm);
    return o;
}

lg_status img_decode_webp(const img_src *src, img_decoded *out, lg_error *err) {
    WebPBitstreamFeatures f;
    lg_status st = webp_status(src, WebPGetFeatures(src->data, src->size, &f), err);
    if (st != LG_OK) return st;
    st = img_check_size(src, "WebP", (uint64_t)f.width, (uint64_t)f.height, err);
    if (st != LG_OK) return st;
    st = f.has_animation ? decode_first_frame(src, out, err) : decode_still(src, &f, out, err);
    if (st != LG_OK) {
        img_decoded_free(out);
        return st;
    }
    out->orientation = src->opts->apply_exif_orientation ? exif_of(src) : 1;
    return LG_OK;
}
