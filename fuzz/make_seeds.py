#!/usr/bin/python3
"""make_seeds.py OUT FIXTURES SOURCE — seed corpora for the fuzz harnesses, made at build time
from the shared fixtures and the repository (never checked in): OUT/<harness>/<files>.
Big fixtures are cut down (a 300-token tokenizer.json, tiny synthetic safetensors) so that the
fuzzer's executions stay fast.
"""
import glob
import io
import json
import os
import re
import struct
import sys
import tarfile

OUT, FIX, SRC = sys.argv[1:4]


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


MODELS = [m for m in ("llava-ov-tiny", "llava-1.5-tiny", "llava-1.6-tiny", "qwen2.5-vl-tiny")
          if os.path.isdir(os.path.join(FIX, m))]

# images: every fixture and test-data image; per format the files of that format
images = sorted(glob.glob(os.path.join(FIX, "images", "*")) +
                glob.glob(os.path.join(SRC, "tests", "data", "image", "*")))
fmt = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp", ".bmp": "bmp"}
for p in images:
    ext = os.path.splitext(p)[1].lower()
    if ext not in fmt:
        continue
    data = read(p)
    name = os.path.basename(p)
    if len(data) <= 200000:
        put("image", name, data)
        put("image_" + fmt[ext], name, data)
    if len(data) <= 20000:
        put("preprocess", name, data)

# tokenizers: each model's tokenizer.json cut to its first 300 tokens and 200 merges
texts = ["Hello, world!", "<image>\nAssess the image.", "  \u00fcn\u00efc\u00f6d\u00e9 \u2581x 123\r\n",
         "<|im_start|>user\nhi<|im_end|>", "O1: Hate, Humiliation, Harassment"]
for m in MODELS:
    p = os.path.join(FIX, m, "tokenizer.json")
    if not os.path.exists(p):
        continue
    t = json.loads(read(p))
    model = t.get("model", {})
    if isinstance(model.get("vocab"), dict):
        keep = sorted(model["vocab"].items(), key=lambda kv: kv[1])[:300]
        model["vocab"] = dict(keep)
    if isinstance(model.get("merges"), list):
        model["merges"] = model["merges"][:200]
    t["added_tokens"] = [a for a in t.get("added_tokens", []) if a.get("id", 0) < 400][:20]
    put("tokenizer_json", m + ".json", json.dumps(t))
for i, s in enumerate(texts):
    put("tokenize", f"text{i}", s)
    put("chat", f"text{i}", s)
for p in sorted(glob.glob(os.path.join(FIX, "reference", "prompts", "*.txt")))[:4]:
    if os.path.getsize(p) < 20000:
        put("tokenize", os.path.basename(p), read(p))

# policies: the JSON examples of docs/policy-format.md
doc = read(os.path.join(SRC, "docs", "policy-format.md")).decode()
for i, block in enumerate(re.findall(r"```json\n(.*?)```", doc, re.S)):
    put("policy", f"doc{i}.json", block)
put("policy", "empty.json", "{}")

# safetensors: small valid files of a few dtypes; an index naming the harness's two shards
def st(tensors):
    hdr, off, data = {"__metadata__": {"format": "pt"}}, 0, b""
    for name, dtype, shape, size in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + size]}
        off += size
        data += bytes(size)
    h = json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "small", st([("a", "F32", [2, 3], 24), ("b", "BF16", [4], 8),
                                 ("c", "F16", [1, 1, 2], 4), ("d", "I64", [1], 8)]))
put("safetensors", "empty", st([]))
put("st_index", "index.json", json.dumps({"metadata": {"total_size": 16},
                                          "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}))

# model configs: config.json NUL generation_config.json; preprocessor NUL config NUL processor
for m in MODELS:
    def f(name):
        p = os.path.join(FIX, m, name)
        return read(p) if os.path.exists(p) else b""
    put("config", m, f("config.json") + b"\0" + f("generation_config.json"))
    put("preprocessor_config", m, f("preprocessor_config.json") + b"\0" + f("config.json") +
        b"\0" + f("processor_config.json"))

# serve: a multipart body (first line: Content-Type) and base64
png = read(os.path.join(SRC, "tests", "data", "image", "png_gray8.png")) \
    if os.path.exists(os.path.join(SRC, "tests", "data", "image", "png_gray8.png")) else b"\x89PNG"
put("serve_input", "multipart",
    b"multipart/form-data; boundary=XyZ\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"; "
    b"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n" + png[:200] + b"\r\n--XyZ--\r\n")
put("serve_input", "base64", "aGVsbG8gd29ybGQ=\n")

# WebDataset shards: plain tar and tar.gz with image + json members
def shard(gz):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz" if gz else "w") as tf:
        for key, name, data in [("s1", "png", png[:300]), ("s1", "json", b'{"a": 1}'),
                                ("s2", "jpg", b"\xff\xd8\xff\xe0"), ("d/s3", "txt", b"x")]:
            ti = tarfile.TarInfo(f"{key}.{name}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


put("wds", "shard.tar", shard(False))
put("wds", "shard.tar.gz", shard(True))

# the evaluator: labels JSONL NUL predictions JSONL
labels = b'{"id": "a", "rating": "Unsafe", "category": "O3"}\n{"id": "b", "rating": "Safe"}\n'
preds = (b'{"image": "a.jpg", "id": "a", "rating": "Unsafe", "category": "O3: Sexual Content", '
         b'"p_unsafe": 0.9}\n{"id": "b", "rating": "Safe", "category": "NA: None applying", '
         b'"p_unsafe": 0.1}\n')
put("predictions", "pair", labels + b"\0" + preds)
print("seeds in", OUT)
