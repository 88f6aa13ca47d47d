#!/usr/bin/python3
"""make_random_model.py — writes a random-weight LLaVA-OneVision model folder of the REAL
LlavaGuard-v1.2-0.5B-OV-hf (or -7B-OV-hf) shape, bfloat16, in the Hugging Face layout of
transformers 4.45 (config.json, model.safetensors or shards + model.safetensors.index.json,
generation_config.json), plus the tokenizer / processor files copied from a small model folder
(by default the fixtures' llava-ov-tiny, which has the same Qwen2 tokenizer and image
processor). It exists to check that loading and running real shapes works (embedding rows
padded beyond the tokenizer's vocabulary, 24/28 decoder layers, SigLIP-so400m). The values mean
nothing. Do not commit its output.

    /usr/bin/python3 tools/make_random_model.py OUT_DIR [--size 0.5b|7b] [--shards N]
        [--text-layers N] [--vision-layers N] [--seed S] [--from DIR]

Weights are N(0, 0.02) (HF's init) rounded to bf16, norms 1, biases 0.02 * N(0, 1), so the
activations stay finite through every layer. Needs numpy only.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

SIZES = {
    # vision: SigLIP-so400m-patch14-384 (same for both); text: Qwen2-0.5B / Qwen2-7B.
    "0.5b": dict(text=dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                           num_attention_heads=14, num_key_value_heads=2, vocab_size=152000,
                           tie_word_embeddings=True)),
    "7b": dict(text=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, vocab_size=152128,
                         tie_word_embeddings=False)),
}
VISION = dict(hidden_size=1152, image_size=384, intermediate_size=4304,
              model_type="siglip_vision_model", num_attention_heads=16, num_hidden_layers=26,
              patch_size=14, vision_use_head=False)
COPY = ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
        "special_tokens_map.json", "added_tokens.json", "chat_template.json",
        "preprocessor_config.json", "processor_config.json"]


def config(size, text_layers, vision_layers):
    t = dict(SIZES[size]["text"])
    if text_layers:
        t["num_hidden_layers"] = text_layers
    v = dict(VISION)
    if vision_layers:
        v["num_hidden_layers"] = vision_layers
    text = dict(architectures=["Qwen2ForCausalLM"], bos_token_id=151643, eos_token_id=151645,
                max_position_embeddings=32768, max_window_layers=t["num_hidden_layers"],
                model_type="qwen2", rms_norm_eps=1e-6, rope_theta=1000000.0,
                torch_dtype="bfloat16", use_sliding_window=False, **t)
    pins = [[384 * i, 384 * j] for i in range(1, 7) for j in range(1, 7)]
    return dict(architectures=["LlavaOnevisionForConditionalGeneration"],
                image_grid_pinpoints=pins, image_seq_length=729, image_token_index=151646,
                model_type="llava_onevision", projector_hidden_act="gelu", text_config=text,
                tie_word_embeddings=t["tie_word_embeddings"], torch_dtype="bfloat16",
                transformers_version="4.45.2", use_image_newline_parameter=True,
                video_token_index=151647, vision_aspect_ratio="anyres_max_9", vision_config=v,
                vision_feature_layer=-1, vision_feature_select_strategy="full")


def tensors(cfg):
    """(name, shape, kind) in the transformers 4.45 state-dict layout."""
    v, t = cfg["vision_config"], cfg["text_config"]
    out = []
    vp = "vision_tower.vision_model."
    d, ff = v["hidden_size"], v["intermediate_size"]
    n_pos = (v["image_size"] // v["patch_size"]) ** 2
    out += [(vp + "embeddings.patch_embedding.weight", (d, 3, v["patch_size"], v["patch_size"]), "w"),
            (vp + "embeddings.patch_embedding.bias", (d,), "b"),
            (vp + "embeddings.position_embedding.weight", (n_pos, d), "w")]
    for i in range(v["num_hidden_layers"]):
        p = vp + "encoder.layers.%d." % i
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += [(p + "self_attn.%s.weight" % n, (d, d), "w"), (p + "self_attn.%s.bias" % n, (d,), "b")]
        out += [(p + "mlp.fc1.weight", (ff, d), "w"), (p + "mlp.fc1.bias", (ff,), "b"),
                (p + "mlp.fc2.weight", (d, ff), "w"), (p + "mlp.fc2.bias", (d,), "b")]
        for n in ("layer_norm1", "layer_norm2"):
            out += [(p + n + ".weight", (d,), "g"), (p + n + ".bias", (d,), "b")]
    out += [(vp + "post_layernorm.weight", (d,), "g"), (vp + "post_layernorm.bias", (d,), "b")]
    e, tff, nv = t["hidden_size"], t["intermediate_size"], t["vocab_size"]
    hd = e // t["num_attention_heads"]
    nkv = t["num_key_value_heads"] * hd
    out += [("multi_modal_projector.linear_1.weight", (e, d), "w"),
            ("multi_modal_projector.linear_1.bias", (e,), "b"),
            ("multi_modal_projector.linear_2.weight", (e, e), "w"),
            ("multi_modal_projector.linear_2.bias", (e,), "b"),
            ("image_newline", (e,), "w"),
            ("language_model.model.embed_tokens.weight", (nv, e), "w")]
    for i in range(t["num_hidden_layers"]):
        p = "language_model.model.layers.%d." % i
        out += [(p + "self_attn.q_proj.weight", (e, e), "w"), (p + "self_attn.q_proj.bias", (e,), "b"),
                (p + "self_attn.k_proj.weight", (nkv, e), "w"), (p + "self_attn.k_proj.bias", (nkv,), "b"),
                (p + "self_attn.v_proj.weight", (nkv, e), "w"), (p + "self_attn.v_proj.bias", (nkv,), "b"),
                (p + "self_attn.o_proj.weight", (e, e), "w"),
                (p + "mlp.gate_proj.weight", (tff, e), "w"), (p + "mlp.up_proj.weight", (tff, e), "w"),
                (p + "mlp.down_proj.weight", (e, tff), "w"),
                (p + "input_layernorm.weight", (e,), "g"),
                (p + "post_attention_layernorm.weight", (e,), "g")]
    out += [("language_model.model.norm.weight", (e,), "g")]
    if not t["tie_word_embeddings"]:
        out += [("language_model.lm_head.weight", (nv, e), "w")]
    return out


def to_bf16(x):
    """float32 -> bfloat16 bits, round to nearest even (as torch)."""
    u = x.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def values(rng, shape, kind):
    n = int(np.prod(shape))
    if kind == "g":
        return to_bf16(np.ones(n, np.float32))
    out = np.empty(n, np.uint16)
    step = 1 << 24  # chunks keep the float32 temporaries small
    for a in range(0, n, step):
        m = min(step, n - a)
        out[a:a + m] = to_bf16(rng.standard_normal(m, dtype=np.float32) * np.float32(0.02))
    return out


def write_file(path, entries, rng):
    """entries: [(name, shape, kind)] -> one safetensors file (header padded to 8 bytes)."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in entries:
        nbytes = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, kind in entries:
            values(rng, shape, kind).tofile(f)
    return off


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--text-layers", type=int, default=0)
    ap.add_argument("--vision-layers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--from", dest="src",
                    default=os.path.join(here, "..", "..", "shared", "fixtures", "llava-ov-tiny"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cfg = config(a.size, a.text_layers, a.vision_layers)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(a.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 151643, "eos_token_id": 151645,
                   "transformers_version": "4.45.2"}, f, indent=2)
    for name in COPY:
        src = os.path.join(a.src, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(a.out, name))
    rng = np.random.default_rng(a.seed)
    ts = tensors(cfg)
    total_params = sum(int(np.prod(s)) for _, s, _ in ts)
    if a.shards <= 1:
        write_file(os.path.join(a.out, "model.safetensors"), ts, rng)
    else:
        per = (total_params + a.shards - 1) // a.shards
        groups, cur, size = [], [], 0
        for t in ts:
            cur.append(t)
            size += int(np.prod(t[1]))
            if size >= per and len(groups) < a.shards - 1:
                groups.append(cur)
                cur, size = [], 0
        groups.append(cur)
        wmap = {}
        for i, g in enumerate(groups):
            fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(groups))
            write_file(os.path.join(a.out, fn), g, rng)
            wmap.update({name: fn for name, _, _ in g})
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total_params * 2}, "weight_map": wmap}, f, indent=2)
    print("%s: %d tensors, %.3f B parameters, %.2f GB bf16" %
          (a.out, len(ts), total_params / 1e9, total_params * 2 / 1e9))


if __name__ == "__main__":
    sys.exit(main())
