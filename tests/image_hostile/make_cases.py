#!/usr/bin/python3
"""make_cases.py OUTDIR — hostile and odd BMP / PNG files with Pillow 9.4's verdict on each.

Writes OUTDIR/<name>.<ext>, for files Pillow decodes OUTDIR/<name>.rgb (convert("RGB")) and, for
files with transparency, OUTDIR/<name>.white.rgb (alpha_composite over white, as LG_ALPHA_WHITE),
and OUTDIR/manifest.txt: one line "name ext ok|refused width height white" per case. Pillow
(python3-pil, Debian's 9.4) is the oracle; tests/test_image_hostile.c compares with it.
Deterministic (fixed seeds). Run with /usr/bin/python3.
"""
import os
import struct
import sys
import warnings
import zlib

import numpy as np
from PIL import Image

warnings.simplefilter("ignore")
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
MANIFEST = []


def oracle(name, ext, data):
    path = os.path.join(OUT, f"{name}.{ext}")
    with open(path, "wb") as f:
        f.write(data)
    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            white = None
            if has_alpha:
                try:  # a composite Pillow cannot make is not compared
                    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    white = Image.alpha_composite(bg, im.convert("RGBA")).convert("RGB")
                except Exception:  # noqa: BLE001
                    white = None
    except Exception:  # noqa: BLE001 - any refusal counts
        MANIFEST.append(f"{name} {ext} refused 0 0 0")
        return
    with open(os.path.join(OUT, f"{name}.rgb"), "wb") as f:
        f.write(rgb.tobytes())
    if white is not None:
        with open(os.path.join(OUT, f"{name}.white.rgb"), "wb") as f:
            f.write(white.tobytes())
    MANIFEST.append(f"{name} {ext} ok {rgb.size[0]} {rgb.size[1]} {1 if white else 0}")


# ---------------------------------------------------------------- BMP
def bmp(w, h, bits, comp, data, pal=b"", colors=0, hs=40, off=None, masks=b"", pad=4):
    extra = b"\0" * (hs - 40) if hs > 40 else b""
    if hs == 12:
        hdr = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        hdr = struct.pack("<IiiHHIIiiII", hs, w, h, 1, bits, comp, len(data), 2835, 2835,
                          colors, 0)
        if hs > 40:
            extra = bytearray(extra)
            extra[0:len(masks)] = masks
            extra = bytes(extra)
            masks = b""
    if off is None:
        off = 14 + len(hdr) + len(extra) + len(masks) + len(pal)
    body = hdr + extra + masks + pal + data
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, off) + body


def pal_bytes(entries, pad=4):
    return b"".join(bytes((b, g, r)) + (b"\0" if pad == 4 else b"") for (r, g, b) in entries)


rng = np.random.default_rng(17)
P16 = [(10 * i, 255 - 7 * i, (37 * i) % 256) for i in range(16)]
P256 = [((i * 7) % 256, (i * 13) % 256, 255 - i) for i in range(256)]
GREY256 = [(i, i, i) for i in range(256)]


def rows(w, h, bits, values):
    """Packs h rows of pixel values (bottom-up order as given) with 4-byte row padding."""
    stride = ((w * bits + 31) >> 3) & ~3
    out = b""
    for r in range(h):
        row = values[r]
        if bits == 8:
            b = bytes(row)
        elif bits == 4:
            b = bytes((row[i] << 4) | (row[i + 1] if i + 1 < w else 0) for i in range(0, w, 2))
        elif bits == 1:
            b = bytes(sum((row[i + k] if i + k < w else 0) << (7 - k) for k in range(8))
                      for i in range(0, w, 8))
        elif bits == 16:
            b = b"".join(struct.pack("<H", v) for v in row)
        else:
            b = bytes(row)
        out += b + b"\0" * (stride - len(b))
    return out


def rle8_image():
    # runs, EOL, absolute mode (odd length, word-aligned), EOB
    d = bytes([3, 1, 2, 5, 0, 0])  # row 0: 1 1 1 5 5 ... then EOL
    d += bytes([0, 5, 7, 8, 9, 10, 11, 0]) + bytes([0, 0])  # absolute 5 + pad
    d += bytes([6, 200]) + bytes([0, 0])  # index past the palette
    d += bytes([4, 3, 4, 4]) + bytes([0, 1])
    return d


cases = {}
cases["bmp_rle8"] = bmp(8, 4, 8, 1, rle8_image(), pal_bytes(P16), colors=16)
cases["bmp_rle8_pal256"] = bmp(8, 4, 8, 1, rle8_image(), pal_bytes(P256))
cases["bmp_rle8_grey"] = bmp(8, 4, 8, 1, rle8_image(), pal_bytes(GREY256))
cases["bmp_rle8_topdown"] = bmp(8, -4, 8, 1, rle8_image(), pal_bytes(P16), colors=16)
cases["bmp_rle8_overflow"] = bmp(4, 3, 8, 1, bytes([9, 1, 0, 6, 1, 2, 3, 4, 5, 6, 3, 7, 0, 0,
                                                   5, 2, 0, 0, 2, 9]), pal_bytes(P16), colors=16)
cases["bmp_rle8_delta"] = bmp(6, 4, 8, 1, bytes([2, 3, 0, 2, 1, 1, 2, 0, 3, 4, 0, 0, 6, 5, 6, 6,
                                                6, 7, 6, 8]), pal_bytes(P16), colors=16)
cases["bmp_rle8_delta_eof"] = bmp(6, 4, 8, 1, bytes([2, 3, 0, 2, 1, 1]), pal_bytes(P16),
                                  colors=16)
cases["bmp_rle8_short"] = bmp(8, 4, 8, 1, bytes([8, 1, 0, 0, 8, 2, 0, 1]), pal_bytes(P16),
                              colors=16)
cases["bmp_rle8_rgb24"] = bmp(8, 1, 24, 1, bytes([8, 1, 0, 1]))
cases["bmp_rle8_mode1"] = bmp(8, 1, 8, 1, bytes([8, 1, 0, 1]),
                              pal_bytes([(0, 0, 0), (255, 255, 255)]), colors=2)
cases["bmp_rle4"] = bmp(7, 3, 4, 2, bytes([7, 0x12, 0, 0, 0, 5, 0x34, 0x56, 0x70, 0, 0, 0,
                                           3, 0xab, 4, 0xcd, 0, 1]), pal_bytes(P16))
cases["bmp_rle4_grey"] = bmp(5, 2, 4, 2, bytes([5, 0x1f, 0, 0, 0, 4, 0x98, 0x76, 0, 1]),
                             pal_bytes([(i, i, i) for i in range(16)]))
cases["bmp_rle4_overflow"] = bmp(3, 2, 4, 2, bytes([0, 8, 0x12, 0x34, 0x56, 0x78, 4, 0x99,
                                                    0, 0, 5, 0xef, 0, 1]), pal_bytes(P16))
for i in range(120):  # random RLE streams over small images
    w, h = int(rng.integers(1, 12)), int(rng.integers(1, 6))
    rle4 = bool(i % 2)
    n = int(rng.integers(2, 80))
    d = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    for k in range(0, n, 2):  # more escapes than uniform bytes give
        if rng.random() < 0.35:
            d[k] = 0
            if k + 1 < n:
                d[k + 1] = int(rng.choice([0, 0, 1, 2, 3, 4, 5, 7, 9]))
    cases[f"bmp_rle_rand{i:03d}"] = bmp(w, h if i % 5 else -h, 4 if rle4 else 8, 2 if rle4 else 1,
                                        bytes(d), pal_bytes(P16 if rle4 else P256))

# 16-bit: every value once (256x256), raw 5-5-5 and bitfields 5-6-5 / 5-5-5
vals = [[(r * 256 + c) for c in range(256)] for r in range(256)]
d16 = rows(256, 256, 16, vals)
cases["bmp_16_555"] = bmp(256, 256, 16, 0, d16)
cases["bmp_16_565_bf"] = bmp(256, 256, 16, 3, d16, masks=struct.pack("<III", 0xF800, 0x7E0, 0x1F))
cases["bmp_16_555_bf"] = bmp(256, 256, 16, 3, d16, masks=struct.pack("<III", 0x7C00, 0x3E0, 0x1F))
cases["bmp_16_565_v5"] = bmp(256, 4, 16, 3, d16[:512 * 4], hs=124,
                             masks=struct.pack("<IIII", 0xF800, 0x7E0, 0x1F, 0))
cases["bmp_16_444_bf"] = bmp(4, 1, 16, 3, bytes(8), masks=struct.pack("<III", 0xF00, 0xF0, 0xF))

# 8-bit and 24-bit top-down, missing padding, truncation
v8 = [[int(x) for x in rng.integers(0, 256, 5)] for _ in range(3)]
cases["bmp_pal8_topdown"] = bmp(5, -3, 8, 0, rows(5, 3, 8, v8), pal_bytes(P256))
cases["bmp_pal8_topdown_big"] = bmp(5, -70000, 8, 0, rows(5, 3, 8, v8), pal_bytes(P256))
v24 = [[int(x) for x in rng.integers(0, 256, 15)] for _ in range(3)]
cases["bmp_rgb24_topdown"] = bmp(5, -3, 24, 0, rows(5, 3, 24, v24))
full = rows(5, 3, 8, v8)
cases["bmp_pal8_nopad"] = bmp(5, 3, 8, 0, full[:-3], pal_bytes(P256))
cases["bmp_pal8_short1"] = bmp(5, 3, 8, 0, full[:-4], pal_bytes(P256))
cases["bmp_rgb24_nopad"] = bmp(5, 3, 24, 0, rows(5, 3, 24, v24)[:-1])
cases["bmp_rgb24_short"] = bmp(5, 3, 24, 0, rows(5, 3, 24, v24)[:-2])
cases["bmp_off_past_end"] = bmp(5, 3, 8, 0, full, pal_bytes(P256), off=100000)

# palettes: sizes, out-of-range indices, grey detection
vidx = [[int(x) for x in rng.integers(0, 256, 6)] for _ in range(2)]
cases["bmp_pal_oob"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), pal_bytes(P16), colors=16)
cases["bmp_pal_none"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), b"", colors=1, off=58)
cases["bmp_pal_300"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), pal_bytes(P256 + P16 * 3), colors=300)
cases["bmp_pal_60000_adj"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), pal_bytes(P16), colors=60000,
                                 off=54)
cases["bmp_pal_60000"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), pal_bytes(P16), colors=60000)
cases["bmp_pal_70000"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), pal_bytes(P16), colors=70000)
cases["bmp_pal_grey300"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx),
                               pal_bytes([(i % 256,) * 3 for i in range(300)]), colors=300)
v1 = [[int(x) for x in rng.integers(0, 2, 13)] for _ in range(3)]
cases["bmp_1bit_bw"] = bmp(13, 3, 1, 0, rows(13, 3, 1, v1), pal_bytes([(0, 0, 0), (255,) * 3]))
cases["bmp_1bit_col"] = bmp(13, 3, 1, 0, rows(13, 3, 1, v1), pal_bytes([(9, 8, 7), (1, 2, 3)]))
cases["bmp_8bit_bw2"] = bmp(13, 3, 8, 0, rows(13, 3, 8, [[x * 255 for x in r] for r in v1]),
                            pal_bytes([(0, 0, 0), (255,) * 3]), colors=2)
v4 = [[int(x) for x in rng.integers(0, 16, 9)] for _ in range(2)]
cases["bmp_4bit"] = bmp(9, 2, 4, 0, rows(9, 2, 4, v4), pal_bytes(P16))
cases["bmp_4bit_grey_narrow"] = bmp(3, 2, 4, 0, rows(3, 2, 4, [r[:3] for r in v4]),
                                    pal_bytes([(i, i, i) for i in range(16)]))
cases["bmp_4bit_grey_wide"] = bmp(9, 2, 4, 0, rows(9, 2, 4, v4),
                                  pal_bytes([(i, i, i) for i in range(16)]))
# OS/2 v1 (12-byte header, 3-byte palette entries)
cases["bmp_os2"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), pal_bytes(P256, 3), hs=12)
cases["bmp_os2_off0"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx), pal_bytes(P256, 3), hs=12, off=0)
cases["bmp_os2_off26"] = bmp(6, 2, 8, 0, rows(6, 2, 8, vidx) + bytes(300), pal_bytes(P256, 3),
                             hs=12, off=26)
# 32-bit layouts
v32 = [[int(x) for x in rng.integers(0, 256, 16)] for _ in range(2)]
d32 = rows(4, 2, 32, v32)
cases["bmp_32_raw"] = bmp(4, 2, 32, 0, d32)
for nm, m in [("bgrx", (0xFF0000, 0xFF00, 0xFF, 0)), ("xbgr", (0xFF000000, 0xFF0000, 0xFF00, 0)),
              ("abgr", (0xFF000000, 0xFF0000, 0xFF00, 0xFF)),
              ("rgba", (0xFF, 0xFF00, 0xFF0000, 0xFF000000)),
              ("bgra", (0xFF0000, 0xFF00, 0xFF, 0xFF000000)), ("zero", (0, 0, 0, 0)),
              ("odd", (0xFF00, 0xFF, 0xFF0000, 0))]:
    cases[f"bmp_32_{nm}_v4"] = bmp(4, 2, 32, 3, d32, hs=108, masks=struct.pack("<IIII", *m))
cases["bmp_32_xbgr_v3"] = bmp(4, 2, 32, 3, d32,
                              masks=struct.pack("<III", 0xFF000000, 0xFF0000, 0xFF00))
cases["bmp_24_bf"] = bmp(5, 3, 24, 3, rows(5, 3, 24, v24),
                         masks=struct.pack("<III", 0xFF0000, 0xFF00, 0xFF))
# refused layouts
cases["bmp_hdr52"] = bmp(4, 2, 32, 0, d32, hs=52)
cases["bmp_bits2"] = bmp(4, 2, 2, 0, bytes(8), pal_bytes(P16[:4]))
cases["bmp_jpeg"] = bmp(4, 2, 24, 4, bytes(24))
cases["bmp_zero_w"] = bmp(0, 2, 24, 0, bytes(8))
cases["bmp_huge"] = bmp(0x7FFFFFFF, 0x7FFFFFFF, 24, 0, bytes(8))
cases["bmp_tiny"] = b"BM" + bytes(10)

# random header mutations of a valid 8-bit file (fields Pillow reads)
base = bytearray(bmp(6, 3, 8, 0, rows(6, 3, 8, [[int(x) for x in rng.integers(0, 256, 6)]
                                              for _ in range(3)]), pal_bytes(P16), colors=16))
fields = [(10, 4), (14, 4), (18, 4), (22, 4), (28, 2), (30, 4), (46, 4)]
interesting = [0, 1, 2, 3, 4, 5, 8, 12, 16, 24, 32, 40, 54, 64, 100, 118, 124, 255, 256, 0xFFFF,
               0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0x80000000]
for i in range(150):
    d = bytearray(base)
    for _ in range(int(rng.integers(1, 3))):
        off, size = fields[int(rng.integers(0, len(fields)))]
        v = int(rng.choice(interesting)) & ((1 << (8 * size)) - 1)
        d[off:off + size] = v.to_bytes(size, "little")
    cases[f"bmp_mut{i:03d}"] = bytes(d)
for name, data in cases.items():
    oracle(name, "bmp", data)


# ---------------------------------------------------------------- PNG
def chunk(cid, data, crc=None):
    c = zlib.crc32(cid + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", c)


SIG = b"\x89PNG\r\n\x1a\n"


def ihdr(w, h, depth=8, ctype=2, comp=0, filt=0, inter=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, comp, filt, inter))


def idat(w, h, ch=3, seed=0):
    r = np.random.default_rng(seed)
    raw = b"".join(b"\0" + r.integers(0, 256, w * ch, dtype=np.uint8).tobytes() for _ in range(h))
    return chunk(b"IDAT", zlib.compress(raw))


IEND = chunk(b"IEND", b"")
W, H = 7, 5
HDR = ihdr(W, H)
DAT = idat(W, H)
png = {}
png["png_plain"] = SIG + HDR + DAT + IEND
png["png_no_iend"] = SIG + HDR + DAT
png["png_iend_cut"] = SIG + HDR + DAT + IEND[:8]
png["png_iend_cut4"] = SIG + HDR + DAT + IEND[:4]
text = chunk(b"tEXt", b"Comment\0" + b"x" * 40)
png["png_text_after_cut"] = SIG + HDR + DAT + text[:20]
png["png_text_after_nocrc"] = SIG + HDR + DAT + text[:-4]
png["png_unknown_after_cut"] = SIG + HDR + DAT + chunk(b"abCd", bytes(30))[:25]
png["png_idat_badcrc"] = SIG + HDR + DAT[:-4] + b"\0\0\0\0" + IEND
png["png_text_after_badcrc"] = SIG + HDR + DAT + chunk(b"tEXt", b"a\0b", crc=1) + IEND
png["png_text_before_badcrc"] = SIG + HDR + chunk(b"tEXt", b"a\0b", crc=1) + DAT + IEND
png["png_unknown_before_badcrc"] = SIG + HDR + chunk(b"prIv", b"abc", crc=1) + DAT + IEND
png["png_digit_chunk"] = SIG + HDR + chunk(b"ab1d", b"xyz") + DAT + IEND
png["png_bad_chunk_name"] = SIG + HDR + chunk(b"a-cd", b"xyz") + DAT + IEND
png["png_bad_chunk_name_after"] = SIG + HDR + DAT + chunk(b"a-cd", b"xyz") + bytes(5)
big = b"A" * (1024 * 1024 + 1)
exact = b"A" * (1024 * 1024)
png["png_ztxt_big"] = SIG + HDR + chunk(b"zTXt", b"k\0\0" + zlib.compress(big)) + DAT + IEND
png["png_ztxt_exact"] = SIG + HDR + chunk(b"zTXt", b"k\0\0" + zlib.compress(exact)) + DAT + IEND
png["png_ztxt_big_after"] = SIG + HDR + DAT + chunk(b"zTXt", b"k\0\0" + zlib.compress(big)) + IEND
png["png_ztxt_method1"] = SIG + HDR + chunk(b"zTXt", b"k\0\1" + zlib.compress(b"hi")) + DAT + IEND
png["png_ztxt_method1_after"] = SIG + HDR + DAT + chunk(b"zTXt", b"k\0\1xx") + IEND
png["png_ztxt_garbage"] = SIG + HDR + chunk(b"zTXt", b"k\0\0garbage") + DAT + IEND
png["png_itxt_big"] = SIG + HDR + chunk(b"iTXt", b"k\0\1\0\0\0" + zlib.compress(big)) + DAT + IEND
png["png_itxt_big_m1"] = SIG + HDR + chunk(b"iTXt", b"k\0\1\1\0\0" + zlib.compress(big)) + DAT + IEND
png["png_iccp_big"] = SIG + HDR + chunk(b"iCCP", b"p\0\0" + zlib.compress(big)) + DAT + IEND
png["png_iccp_method5"] = SIG + HDR + chunk(b"iCCP", b"p\0\5" + zlib.compress(b"x")) + DAT + IEND
png["png_iccp_empty"] = SIG + HDR + chunk(b"iCCP", b"") + DAT + IEND
many = chunk(b"zTXt", b"k\0\0" + zlib.compress(exact))
png["png_text_memory"] = SIG + HDR + many * 65 + DAT + IEND
png["png_ihdr_comp1"] = SIG + ihdr(W, H, comp=1) + DAT + IEND
png["png_ihdr_filter1"] = SIG + ihdr(W, H, filt=1) + DAT + IEND
png["png_ihdr_long"] = SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0) + b"zz") + DAT + IEND
png["png_ihdr_short"] = SIG + chunk(b"IHDR", struct.pack(">IIBBB", W, H, 8, 2, 0)) + DAT + IEND
for nm, cid, body in [("gama", b"gAMA", b""), ("srgb", b"sRGB", b""), ("phys", b"pHYs", b"\0" * 4),
                      ("chrm", b"cHRM", b"\0" * 5), ("text", b"tEXt", b""), ("ztxt", b"zTXt", b""),
                      ("itxt", b"iTXt", b""), ("time", b"tIME", b""), ("exif", b"eXIf", b""),
                      ("trns", b"tRNS", b""), ("plte", b"PLTE", b""), ("actl", b"acTL", b"")]:
    png[f"png_empty_{nm}_before"] = SIG + chunk(cid, body) + HDR + DAT + IEND
    png[f"png_empty_{nm}_after_ihdr"] = SIG + HDR + chunk(cid, body) + DAT + IEND
    png[f"png_empty_{nm}_after_idat"] = SIG + HDR + DAT + chunk(cid, body) + IEND
png["png_iend_first"] = SIG + HDR + IEND + DAT
png["png_no_ihdr"] = SIG + DAT + IEND
png["png_interlace2"] = SIG + ihdr(W, H, inter=2) + DAT + IEND
# palettes
pd = idat(W, H, 1, seed=3)
pl = chunk(b"PLTE", bytes(range(48)))
png["png_pal_short"] = SIG + ihdr(W, H, 8, 3) + pl + pd + IEND
png["png_pal_none"] = SIG + ihdr(W, H, 8, 3) + pd + IEND
png["png_pal_257"] = SIG + ihdr(W, H, 8, 3) + chunk(b"PLTE", bytes(771)) + pd + IEND
png["png_pal_len_mod"] = SIG + ihdr(W, H, 8, 3) + chunk(b"PLTE", bytes(range(50))) + pd + IEND
png["png_pal_two"] = SIG + ihdr(W, H, 8, 3) + pl + chunk(b"PLTE", bytes(range(100, 130))) + pd + IEND
png["png_pal_before_ihdr"] = SIG + pl + ihdr(W, H, 8, 3) + pd + IEND
png["png_pal_trns"] = SIG + ihdr(W, H, 8, 3) + pl + chunk(b"tRNS", bytes(range(0, 250, 10))) + pd + IEND
png["png_pal_trns_long"] = SIG + ihdr(W, H, 8, 3) + pl + chunk(b"tRNS", bytes(300)) + pd + IEND
png["png_pal_4bit_long"] = SIG + ihdr(W, 1, 4, 3) + chunk(b"PLTE", bytes(range(120))) + idat(4, 1, 1) + IEND
gd = idat(W, H, 1, seed=4)
png["png_grey_trns1"] = SIG + ihdr(W, H, 8, 0) + chunk(b"tRNS", b"\0") + gd + IEND
png["png_grey_trns"] = SIG + ihdr(W, H, 8, 0) + chunk(b"tRNS", b"\0\x10") + gd + IEND
png["png_rgb_trns5"] = SIG + HDR + chunk(b"tRNS", bytes(5)) + DAT + IEND
png["png_two_idat_gap"] = SIG + HDR + DAT + text + DAT + IEND
comp = zlib.compress(b"".join(b"\0" + bytes(range(W * 3)) for _ in range(H)))
png["png_split_idat_cut"] = SIG + HDR + chunk(b"IDAT", comp[:-4]) + chunk(b"IDAT", comp[-4:])[:10]
png["png_split_idat"] = SIG + HDR + chunk(b"IDAT", comp[:-4]) + chunk(b"IDAT", comp[-4:]) + IEND
png["png_exif_empty_after"] = SIG + HDR + DAT + chunk(b"eXIf", b"") + IEND
# random mutations of ancillary chunks in a small file
base = SIG + HDR + chunk(b"gAMA", struct.pack(">I", 45455)) + chunk(b"tEXt", b"key\0value") + \
    DAT + chunk(b"zTXt", b"k\0\0" + zlib.compress(b"hello")) + IEND
for i in range(120):
    d = bytearray(base)
    for _ in range(int(rng.integers(1, 4))):
        pos = int(rng.integers(8 + 25, len(d)))
        d[pos] = int(rng.integers(0, 256))
    if i % 4 == 0:
        d = d[:int(rng.integers(8 + 25, len(d)))]
    png[f"png_mut{i:03d}"] = bytes(d)

# LG_HOSTILE_EXTRA=N: N more mutations of whole files of both formats (for long checks by hand)
extra = int(os.environ.get("LG_HOSTILE_EXTRA", "0"))
seeds = [cases["bmp_rle8"], cases["bmp_rle4"], cases["bmp_16_565_v5"], cases["bmp_32_abgr_v4"],
         cases["bmp_1bit_col"], png["png_plain"], png["png_pal_trns"], png["png_grey_trns"],
         base, png["png_split_idat"]]
for i in range(extra):
    src = seeds[i % len(seeds)]
    d = bytearray(src)
    for _ in range(int(rng.integers(1, 5))):
        d[int(rng.integers(8, len(d)))] = int(rng.integers(0, 256))
    if i % 5 == 0:
        d = d[:int(rng.integers(8, len(d)))]
    ext = "bmp" if d[:2] == b"BM" else "png"
    (cases if ext == "bmp" else png)[f"{ext}_extra{i:05d}"] = bytes(d)
    if ext == "bmp":
        oracle(f"{ext}_extra{i:05d}", ext, bytes(d))

for name, data in png.items():
    oracle(name, "png", data)

with open(os.path.join(OUT, "manifest.txt"), "w") as f:
    f.write("\n".join(MANIFEST) + "\n")
print(f"{len(MANIFEST)} cases")
