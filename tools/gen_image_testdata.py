#!/usr/bin/python3
"""Generates tests/data/image/: small images in every format variant the decoder handles, with
the pixels Pillow 9.4 (the reference's version, Debian's python3-pil) gives for them, plus
reference values for the resampler and the anyres arithmetic.

Only needed to regenerate the committed data; the tests themselves never run Python or Pillow.
    /usr/bin/python3 tools/gen_image_testdata.py      (needs python3-pil and python3-numpy)

Outputs:
  manifest.json   one entry per image: file, format, width, height, and the expected RGB of
                  convert("RGB") (<name>.rgb), of the composite over white (<name>.white.rgb,
                  images with transparency), of ImageOps.exif_transpose (<name>.orient.rgb)
  resize.json     Pillow Image.resize results (sha256) for a formula-defined source image
  anyres.json     transformers v4.45 select_best_resolution / get_patch_output_size / processor
                  image-token counts, re-implemented here in Python, for many image sizes
PNG variants Pillow cannot write (16-bit colour, 1/2/4-bit, interlaced, tRNS, eXIf, short
palettes) are encoded by the small writer below; Pillow still decodes them for the expectation.
"""
import hashlib
import io
import json
import math
import os
import random
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps, features

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "image")
W, H = 17, 13  # odd sizes on purpose


def base_rgb(seed=1, w=W, h=H):
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x * y * 7) % 256], -1)
    img = (img + rs.randint(0, 40, img.shape)) % 256
    return img.astype(np.uint8)


def alpha_plane(w=W, h=H):
    y, x = np.mgrid[0:h, 0:w]
    a = (x * 255 // (w - 1)).astype(np.uint8)
    a[(x < 4) & (y < 4)] = 0  # fully transparent block keeps its colour in convert("RGB")
    a[y == h - 1] = 255
    return a


# ---- minimal PNG writer ----

def chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: 1-D list of ints (already flattened channels)."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, n = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(arr, depth, ctype, palette=None, trns=None, interlace=False, exif=None):
    """arr: h x w x c integer array of samples."""
    h, w = arr.shape[:2]
    raw = bytearray()
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = arr[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for row in sub:
                raw += b"\0" + pack_row([int(v) for v in row.reshape(-1)], depth)
    else:
        for row in arr:
            raw += b"\0" + pack_row([int(v) for v in row.reshape(-1)], depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    if exif is not None:
        out += chunk(b"eXIf", exif)
    out += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    return out


def tiff_orientation(o):
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<HH", o, 0) + struct.pack("<I", 0)


# ---- the image set ----

def pil_bytes(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def images():
    rgb = base_rgb()
    gray = rgb[:, :, 0]
    a = alpha_plane()
    rs = np.random.RandomState(7)
    im_rgb = Image.fromarray(rgb, "RGB")
    im_rgba = Image.fromarray(np.dstack([rgb, a]), "RGBA")
    pal = rs.randint(0, 256, (64, 3)).astype(np.uint8)
    idx = (rgb[:, :, 0].astype(int) * 64 // 256).astype(np.uint8)
    im_p = Image.fromarray(idx, "P")
    im_p.putpalette(pal.reshape(-1).tolist())
    yield "png_rgb8.png", pil_bytes(im_rgb, "PNG")
    yield "png_gray8.png", pil_bytes(Image.fromarray(gray, "L"), "PNG")
    yield "png_gray_alpha8.png", pil_bytes(Image.fromarray(np.dstack([gray, a]), "LA"), "PNG")
    yield "png_rgba8.png", pil_bytes(im_rgba, "PNG")
    yield "png_palette8.png", pil_bytes(im_p, "PNG")
    alphas = bytes([0, 128] + [255] * 10 + [40])
    yield "png_palette8_trns.png", pil_bytes(im_p, "PNG", transparency=alphas)
    g16 = (gray.astype(np.uint16) * 3 + np.arange(W, dtype=np.uint16)[None, :] * 40)
    yield "png_gray16.png", pil_bytes(Image.fromarray(g16.astype(np.uint16), "I;16"), "PNG")
    r16 = rgb.astype(np.int64) * 256 + rs.randint(0, 256, rgb.shape)
    yield "png_rgb16.png", write_png(r16, 16, 2)
    yield "png_rgba16.png", write_png(np.dstack([r16, a.astype(np.int64) * 256 + 3]), 16, 6)
    yield "png_la16.png", write_png(np.dstack([r16[:, :, :1], a.astype(np.int64) * 256 + 17]), 16, 4)
    for d in (1, 2, 4):
        g = (gray.astype(int) >> (8 - d))[:, :, None]
        yield "png_gray%d.png" % d, write_png(g, d, 0)
        n = 1 << d
        yield "png_palette%d.png" % d, write_png(g, d, 3, palette=pal[:n].reshape(-1).tolist())
    yield "png_gray2_trns.png", write_png((gray.astype(int) >> 6)[:, :, None], 2, 0, trns=struct.pack(">H", 2))
    yield "png_gray8_trns.png", write_png(gray[:, :, None].astype(int), 8, 0, trns=struct.pack(">H", int(gray[0, 0])))
    trgb = tuple(int(v) for v in rgb[2, 3])
    yield "png_rgb8_trns.png", write_png(rgb.astype(int), 8, 2, trns=struct.pack(">HHH", *trgb))
    yield "png_rgb_interlaced.png", write_png(rgb.astype(int), 8, 2, interlace=True)
    yield "png_palette2_interlaced.png", write_png((gray.astype(int) >> 6)[:, :, None], 2, 3, palette=pal[:4].reshape(-1).tolist(), interlace=True)
    yield "png_rgba16_interlaced.png", write_png(np.dstack([r16, a.astype(np.int64) * 257]), 16, 6, interlace=True)
    short = idx.astype(int)[:, :, None] * 3  # indices up to 189, palette of 4 entries
    yield "png_palette_short.png", write_png(short, 8, 3, palette=pal[:4].reshape(-1).tolist())
    for o in range(1, 9):
        yield "png_exif%d.png" % o, write_png(rgb.astype(int), 8, 2, exif=tiff_orientation(o))
    yield "jpg_rgb_q90.jpg", pil_bytes(im_rgb, "JPEG", quality=90)
    yield "jpg_rgb_444_q95.jpg", pil_bytes(im_rgb, "JPEG", quality=95, subsampling=0)
    yield "jpg_progressive.jpg", pil_bytes(Image.fromarray(base_rgb(3, 40, 33)), "JPEG", quality=80, progressive=True)
    yield "jpg_gray.jpg", pil_bytes(Image.fromarray(gray, "L"), "JPEG", quality=90)
    yield "jpg_cmyk.jpg", pil_bytes(im_rgb.convert("CMYK"), "JPEG", quality=95)
    yield "jpg_exif6.jpg", pil_bytes(im_rgb, "JPEG", quality=90, exif=b"Exif\x00\x00" + tiff_orientation(6))
    yield "webp_lossless.webp", pil_bytes(im_rgb, "WEBP", lossless=True)
    yield "webp_lossy.webp", pil_bytes(im_rgb, "WEBP", quality=80)
    yield "webp_lossless_alpha.webp", pil_bytes(im_rgba, "WEBP", lossless=True, exact=True)
    yield "webp_lossy_alpha.webp", pil_bytes(im_rgba, "WEBP", quality=80)
    frames = [im_rgb, Image.fromarray(base_rgb(5), "RGB")]
    yield "webp_anim.webp", pil_bytes(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    big = Image.fromarray(base_rgb(9, 20, 18), "RGB").quantize(32)
    yield "gif_interlaced_trns.gif", pil_bytes(big, "GIF", transparency=5, interlace=True)
    yield "gif_anim.gif", pil_bytes(im_p, "GIF", save_all=True, append_images=[im_p.transpose(Image.FLIP_LEFT_RIGHT)], duration=100)
    yield "gif_gray.gif", pil_bytes(Image.fromarray(gray, "L"), "GIF")
    yield "bmp_rgb24.bmp", pil_bytes(im_rgb, "BMP")
    yield "bmp_pal8.bmp", pil_bytes(im_p, "BMP")
    yield "bmp_1bit.bmp", pil_bytes(Image.fromarray(gray, "L").convert("1"), "BMP")
    yield "bmp_rgba32.bmp", pil_bytes(im_rgba, "BMP")


def white(im):
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def has_transparency(im):
    return im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info


def gen_images(manifest):
    for name, data in images():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        im.load()
        stem = name.rsplit(".", 1)[0]
        e = {"file": name, "format": im.format.lower(), "width": im.size[0], "height": im.size[1], "pil_mode": im.mode}
        rgb = np.asarray(im.convert("RGB"))
        with open(os.path.join(OUT, stem + ".rgb"), "wb") as f:
            f.write(rgb.tobytes())
        e["rgb"] = stem + ".rgb"
        if has_transparency(im):
            with open(os.path.join(OUT, stem + ".white.rgb"), "wb") as f:
                f.write(np.asarray(white(Image.open(io.BytesIO(data)))).tobytes())
            e["white"] = stem + ".white.rgb"
        o = im.getexif().get(0x0112)
        if o and o != 1:
            t = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
            with open(os.path.join(OUT, stem + ".orient.rgb"), "wb") as f:
                f.write(np.asarray(t).tobytes())
            e["orient"] = stem + ".orient.rgb"
            e["orient_width"], e["orient_height"] = t.size
        manifest.append(e)


# ---- resampling ----

def pattern(w, h, c):
    """Must match pattern() in tests/test_image_resize.c."""
    y, x, ch = np.mgrid[0:h, 0:w, 0:c]
    v = (x * 73 + y * 151 + ch * 29 + ((x * x + 3 * y * y + 7 * ch) % 61) * 5) % 256
    v = np.where(x % 7 == 3, 255, v)
    v = np.where((y % 5 == 1) & (x % 3 == 0), 0, v)
    return v.astype(np.uint8)


def gen_resize():
    cases = []
    sizes = [((40, 30), (17, 11)), ((40, 30), (97, 64)), ((40, 30), (40, 71)), ((40, 30), (13, 30)),
             ((40, 30), (40, 30)), ((5, 3), (384, 384)), ((301, 7), (23, 5)), ((1, 1), (3, 2)),
             ((640, 480), (384, 288)), ((50, 37), (384, 285)), ((384, 383), (384, 384)),
             ((335, 336), (336, 337)), ((1920, 1080), (384, 384)), ((33, 29), (29, 33))]
    for (sw, sh), (dw, dh) in sizes:
        for c, mode in ((3, "RGB"), (1, "L")):
            src = pattern(sw, sh, c)
            im = Image.fromarray(src[:, :, 0] if c == 1 else src, mode)
            for flt in (3, 2, 1, 4, 5):
                if c == 1 and flt != 3:
                    continue
                if (sw * sh > 100000) and flt != 3:
                    continue
                out = np.asarray(im.resize((dw, dh), flt)).tobytes()
                cases.append({"sw": sw, "sh": sh, "dw": dw, "dh": dh, "ch": c, "filter": flt,
                              "sha256": hashlib.sha256(out).hexdigest(), "first": list(out[:4])})
    return cases


# ---- anyres arithmetic (transformers v4.45.2, re-implemented) ----

def select_best_resolution(size, pins):
    oh, ow = size
    best, max_eff, min_waste = None, 0, float("inf")
    for h, w in pins:
        scale = min(w / ow, h / oh)
        dw, dh = int(ow * scale), int(oh * scale)
        eff = min(dw * dh, ow * oh)
        waste = w * h - eff
        if eff > max_eff or (eff == max_eff and waste < min_waste):
            max_eff, min_waste, best = eff, waste, (h, w)
    return best


def patch_output_size(oh, ow, th, tw):
    sw, sh = tw / ow, th / oh
    if sw < sh:
        return min(math.ceil(oh * sw), th), tw
    return th, min(math.ceil(ow * sh), tw)


def unpadded(height, width, ph, pw, sh, sw, max_n):
    ch, cw = ph * sh, pw * sw
    if width / height > cw / ch:
        nh = int(height * (cw / width))
        ch -= (ch - nh) // 2 * 2
    else:
        nw = int(width * (ch / height))
        cw -= (cw - nw) // 2 * 2
    rows, cols = ch, cw
    if max_n:
        ratio = math.sqrt(ch * cw / (max_n * ph ** 2))
        if ratio > 1.1:
            rows, cols = int(ch // ratio), int(cw // ratio)
    return ch, cw, rows, cols


def gen_anyres():
    ov = json.load(open(os.path.join(FIX, "llava-ov-tiny", "preprocessor_config.json")))["image_grid_pinpoints"]
    nx = json.load(open(os.path.join(FIX, "llava-1.6-tiny", "preprocessor_config.json")))["image_grid_pinpoints"]
    rnd = random.Random(3)
    sizes = [(1, 1), (1, 5000), (5000, 1), (384, 384), (383, 384), (37, 50), (1080, 1920), (900, 300),
             (2304, 2304), (2305, 2303), (768, 1152), (336, 1008), (1008, 336), (10000, 7)]
    sizes += [(rnd.randint(1, 4000), rnd.randint(1, 4000)) for _ in range(300)]
    sizes += [(rnd.randint(1, 100), rnd.randint(1, 3000)) for _ in range(50)]
    out = []
    for h, w in sizes:
        e = {"h": h, "w": w}
        for key, pins, tile, patches, base, max_n in (("ov", ov, 384, 27, 729, 9), ("next", nx, 336, 24, 576, 0)):
            bh, bw = select_best_resolution((h, w), pins)
            nh, nw = patch_output_size(h, w, bh, bw)
            uh, uw, rows, cols = unpadded(h, w, patches, patches, bh // tile, bw // tile, max_n)
            e[key] = [bh, bw, nh, nw, uh, uw, rows, cols, base + rows * (cols + 1)]
        out.append(e)
    return out


FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "fixtures")

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    gen_images(manifest)
    info = {"pillow": Image.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"),
            "webp": features.version("webp")}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/gen_image_testdata.py", "versions": info, "images": manifest}, f, indent=1)
    with open(os.path.join(OUT, "resize.json"), "w") as f:
        json.dump(gen_resize(), f, indent=0)
    with open(os.path.join(OUT, "anyres.json"), "w") as f:
        json.dump(gen_anyres(), f, indent=0)
    print("wrote", OUT)
