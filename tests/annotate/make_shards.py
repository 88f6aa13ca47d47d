#!/usr/bin/python3
"""make_shards.py OUTDIR IMAGES_DIR — writes the WebDataset shards the annotate tests read:
  good.tar      samples 000000 (jpg + json), 000001 (png + json), sub/000002 (png), 000003 (txt
                only: no image, skipped), 000004 (a corrupt jpg: an error row), ../evil (an
                unsafe member path: an error row)
  more.tar.gz   samples a (png), b (png)
  more2.tar.zst sample c (png) when the zstd tool is installed
  broken.tar.gz the first half of a gzip'd tar: a corrupt archive (an error row for the shard)
"""
import gzip, io, os, shutil, subprocess, sys, tarfile

out, images = sys.argv[1], sys.argv[2]


def img(name):
    with open(os.path.join(images, name), "rb") as f:
        return f.read()


def add(tf, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 0
    tf.addfile(ti, io.BytesIO(data))


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for n, d in members:
            add(tf, n, d)
    return buf.getvalue()


good = [
    ("000000.jpg", img("p02_rgb_640x480.jpg")),
    ("000000.json", b'{"url": "http://example.com/0.jpg", "caption": "zero"}'),
    ("000001.png", img("p05_rgb_tiny_50x37.png")),
    ("000001.json", b'{"caption": "one"}'),
    ("sub/000002.png", img("p06_gray_320x240.png")),
    ("000003.txt", b"just text"),
    ("000004.jpg", b"\xff\xd8\xff\xe0 this is not really a jpeg"),
    ("../evil.jpg", img("p05_rgb_tiny_50x37.png")),
]
with open(os.path.join(out, "good.tar"), "wb") as f:
    f.write(tar_bytes(good))
more = [("a.png", img("p08_palette_256x192.png")), ("b.png", img("p07_rgba_400x300.png"))]
with open(os.path.join(out, "more.tar.gz"), "wb") as f:
    f.write(gzip.compress(tar_bytes(more), mtime=0))
if shutil.which("zstd"):
    raw = tar_bytes([("c.png", img("p01_rgb_384x384.png"))])
    z = subprocess.run(["zstd", "-q", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout
    with open(os.path.join(out, "more2.tar.zst"), "wb") as f:
        f.write(z)
broken = gzip.compress(tar_bytes(more + [("c.png", img("p03_rgb_tall_300x900.png"))]), mtime=0)
with open(os.path.join(out, "broken.tar.gz"), "wb") as f:
    f.write(broken[: len(broken) // 2])
