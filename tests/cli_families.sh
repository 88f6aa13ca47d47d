#!/usr/bin/env bash
# cli_families.sh — the command line with every model family besides LLaVA-OneVision, against the
# references of ../shared/fixtures (README sections 6 and 7): `preprocess --out` (the float pixel
# tensor = the reference u8 crops through the per-channel LUT, bit for bit; --image-aspect pad and
# crop for LLaVA-1.5), `generate --input-ids ... --dump-logits --dump-image-features` on the
# reference ids with --exact and with the default fast kernels (logits 1e-3, image features
# 1e-4 x max, greedy ids up to the first step whose top1-top2 gap is below 1e-2 — the two paths
# give the same tokens there), the same for Qwen2.5-VL (both prompt orders; its pixel tensor of
# p05 byte for byte), `assess` (a valid verdict per family, the v1.0 policy for LLaVA-1.5, the
# policy-then-image prompt for QwenGuard), and the usage errors of --image-aspect.
#   $1 = llavaguard binary, $2 = fixtures dir.
set -u
BIN=$1
FIX=$2
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/cli_families.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
IMG=$FIX/images

# 1. preprocess: $1 model, $2 case, $3 image, $4 u8 file, extra options after.
pre() {
  local model=$1 cas=$2 img=$3 u8=$4
  shift 4
  "$BIN" preprocess --model "$FIX/$model" "$@" "$IMG/$img" --out "$TMP/px.f32" > "$TMP/px.json" \
    2> "$TMP/err" || { fail "preprocess $model $cas $*: exit $? ($(cat "$TMP/err"))"; return; }
  $PY - "$FIX/reference/$model" "$cas" "$u8" "$TMP/px.f32" "$TMP/px.json" <<'EOF' ||
import json, sys
import numpy as np
ref, cas, u8, got, meta = sys.argv[1:6]
lut = np.array(json.load(open(ref + "/index.json"))["pixel_lut_u8_to_f32_per_channel"], dtype="<f4")
px = np.fromfile("%s/%s/%s" % (ref, cas, u8), dtype=np.uint8).reshape(-1, 3, 336, 336)
want = np.stack([lut[c][px[:, c]] for c in range(3)], axis=1)
g = np.fromfile(got, dtype="<f4")
case = json.load(open("%s/%s/case.json" % (ref, cas)))
m = json.load(open(meta))
ok = g.shape == want.reshape(-1).shape and np.array_equal(g.view("<u4"), want.reshape(-1).view("<u4"))
ok = ok and m["image_tokens"] == case["prompt"]["num_image_tokens"]
sys.exit(0 if ok else 1)
EOF
    fail "preprocess $model $cas $*: pixels or image_tokens differ"
}
pre llava-1.5-tiny p02_rgb_640x480 p02_rgb_640x480.jpg pixel_values.u8
pre llava-1.5-tiny p02_rgb_640x480 p02_rgb_640x480.jpg pixel_values.u8 --image-aspect crop
pre llava-1.5-tiny p02_rgb_640x480 p02_rgb_640x480.jpg pixel_values_pad.u8 --image-aspect pad
pre llava-1.5-tiny p03_rgb_tall_300x900 p03_rgb_tall_300x900.png pixel_values_pad.u8 --image-aspect pad
pre llava-1.6-tiny p05_rgb_tiny_50x37 p05_rgb_tiny_50x37.png pixel_values.u8

# 2. generate on the reference ids: $1 model, $2 case, $3 image|-, $4 pad|crop, $5 exact|fast.
gen() {
  local model=$1 cas=$2 img=$3 aspect=$4 mode=$5 ref=$FIX/reference/$1/$2
  local args=(--model "$FIX/$model" --input-ids "$TMP/ids.json" --greedy --max-new-tokens 32
    --dump-logits "$TMP/l.f32")
  $PY -c "import json,sys; json.dump(json.load(open(sys.argv[1]))['prompt']['input_ids'], open(sys.argv[2],'w'))" \
    "$ref/case.json" "$TMP/ids.json"
  [ "$img" != - ] && args+=(--image "$IMG/$img" --dump-image-features "$TMP/f.f32")
  [ "$aspect" = pad ] && args+=(--image-aspect pad)
  [ "$mode" = exact ] && args+=(--exact)
  rm -f "$TMP/f.f32"
  "$BIN" generate "${args[@]}" > "$TMP/gen.json" 2> "$TMP/err" ||
    { fail "generate $model $cas $aspect $mode: exit $? ($(cat "$TMP/err"))"; return; }
  $PY - "$ref" "$aspect" "$TMP/gen.json" "$TMP/l.f32" "$TMP/f.f32" <<'EOF' ||
import json, os, sys
import numpy as np
ref, aspect, out, logits, feats = sys.argv[1:6]
sfx = "_pad" if aspect == "pad" else ""
case = json.load(open(ref + "/case.json"))
var = case["pad_variant"] if aspect == "pad" else case
got = json.load(open(out))
bad = []
rl = np.fromfile("%s/last_logits%s.f32" % (ref, sfx), dtype="<f4")
lg = np.fromfile(logits, dtype="<f4")
d = float(np.abs(lg - rl).max()) if lg.shape == rl.shape else float("inf")
if not d <= 1e-3:
    bad.append("logits max|diff| %g" % d)
if os.path.exists(feats):
    rf = np.fromfile("%s/image_features%s.f32" % (ref, sfx), dtype="<f4")
    f = np.fromfile(feats, dtype="<f4")
    fd = float(np.abs(f - rf).max()) if f.shape == rf.shape else float("inf")
    if not fd <= 1e-4 * float(np.abs(rf).max()):
        bad.append("image features max|diff| %g" % fd)
    if got["image_tokens"] != case["prompt"]["num_image_tokens"]:
        bad.append("image_tokens")
gen = var["generation"]
for i, (w, g) in enumerate(zip(gen["new_token_ids"], gen["per_step_top1_minus_top2_logit"])):
    if g < 1e-2:
        break
    if i >= len(got["ids"]) or got["ids"][i] != w:
        bad.append("greedy step %d" % i)
        break
if bad:
    print("; ".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
    fail "generate $model $cas $aspect $mode differs"
}
for mode in exact fast; do
  gen llava-1.5-tiny p02_rgb_640x480 p02_rgb_640x480.jpg crop $mode
  gen llava-1.5-tiny p02_rgb_640x480 p02_rgb_640x480.jpg pad $mode
  gen llava-1.5-tiny text_only - crop $mode
  gen llava-1.6-tiny p05_rgb_tiny_50x37 p05_rgb_tiny_50x37.png crop $mode
done
gen llava-1.6-tiny p03_rgb_tall_300x900 p03_rgb_tall_300x900.png crop fast

# 2b. Qwen2.5-VL: the pixel tensor of p05 (stored) bit for bit; generate on the reference ids of
# both prompt orders (logits, vision embeddings as the decoder receives them, greedy ids).
"$BIN" preprocess --model "$FIX/qwen2.5-vl-tiny" "$IMG/p05_rgb_tiny_50x37.png" --out "$TMP/q.f32" \
  > "$TMP/q.json" 2> "$TMP/err" || fail "preprocess qwen2.5-vl p05: exit $? ($(cat "$TMP/err"))"
cmp -s "$TMP/q.f32" "$FIX/reference/qwen2.5-vl-tiny/p05_rgb_tiny_50x37/pixel_values_f32.bin" ||
  fail "preprocess qwen2.5-vl p05: pixel_values differ"
grep -q '"image_tokens":6,' "$TMP/q.json" || fail "preprocess qwen2.5-vl p05: image_tokens"
qgen() { # $1 image case, $2 image file, $3 order, $4 exact|fast
  local ref=$FIX/reference/qwen2.5-vl-tiny/$1 args=()
  $PY -c "import numpy as np,json,sys; json.dump(np.fromfile(sys.argv[1],'<i8').tolist(), open(sys.argv[2],'w'))" \
    "$ref/$3_input_ids_i64.bin" "$TMP/qids.json"
  [ "$4" = exact ] && args+=(--exact)
  "$BIN" generate --model "$FIX/qwen2.5-vl-tiny" --image "$IMG/$2" --input-ids "$TMP/qids.json" \
    --greedy -n 16 --dump-logits "$TMP/ql.f32" --dump-image-features "$TMP/qf.f32" "${args[@]}" \
    > "$TMP/qgen.json" 2> "$TMP/err" || { fail "generate qwen $1 $3 $4: exit $? ($(cat "$TMP/err"))"; return; }
  $PY - "$FIX/reference/qwen2.5-vl-tiny" "$1" "$3" "$TMP" <<'EOF' || fail "generate qwen $1 $3 $4 differs"
import json, sys
import numpy as np
root, img, order, tmp = sys.argv[1:5]
case = json.load(open(root + "/manifest.json"))["cases"][img + "/" + order]
got = json.load(open(tmp + "/qgen.json"))
rl = np.fromfile("%s/%s/%s_last_logits_f32.bin" % (root, img, order), dtype="<f4")
rf = np.fromfile("%s/%s/vision_embeds_f32.bin" % (root, img), dtype="<f4")
lg, f = np.fromfile(tmp + "/ql.f32", dtype="<f4"), np.fromfile(tmp + "/qf.f32", dtype="<f4")
ok = lg.shape == rl.shape and float(np.abs(lg - rl).max()) <= 1e-3
ok = ok and f.shape == rf.shape and float(np.abs(f - rf).max()) <= 1e-4 * float(np.abs(rf).max())
g = case["greedy"]
for i, (w, gap) in enumerate(zip(g["new_token_ids"], g["top1_top2_gap_per_step"])):
    if gap < 1e-2:
        break
    ok = ok and i < len(got["ids"]) and got["ids"][i] == w
sys.exit(0 if ok else 1)
EOF
}
qgen p02_rgb_640x480 p02_rgb_640x480.jpg text_first exact
qgen p02_rgb_640x480 p02_rgb_640x480.jpg image_first fast
qgen p03_rgb_tall_300x900 p03_rgb_tall_300x900.png text_first fast
"$BIN" preprocess --model "$FIX/qwen2.5-vl-tiny" "$IMG/p05_rgb_tiny_50x37.png" --image-aspect pad \
  > /dev/null 2>&1
[ $? -eq 1 ] || fail "--image-aspect pad on Qwen2.5-VL not refused"

# 3. assess: a valid verdict with each family; LLaVA-1.5 gets the v1.0 policy text.
verdict() { # $1 model, $2 image, extra options after
  local model=$1 img=$2
  shift 2
  "$BIN" assess --model "$FIX/$model" --max-rationale-tokens 8 "$@" "$IMG/$img" > "$TMP/v.json" \
    2> "$TMP/err" || { fail "assess $model $*: exit $? ($(cat "$TMP/err"))"; return; }
  $PY - "$TMP/v.json" "$model" <<'EOF' || fail "assess $model $*: bad verdict ($(cat "$TMP/v.json"))"
import json, sys
v = json.loads(open(sys.argv[1]).read())
ok = v["rating"] in ("Safe", "Unsafe") and v["category"] and 0 <= v["p_unsafe"] <= 1
ok = ok and abs(sum(v["category_probs"].values()) - 1) < 1e-6 and v["image_tokens"] > 0
sys.exit(0 if ok else 1)
EOF
}
verdict llava-1.5-tiny p02_rgb_640x480.jpg
verdict llava-1.5-tiny p05_rgb_tiny_50x37.png --image-aspect pad --rationale never
verdict llava-1.6-tiny p02_rgb_640x480.jpg --rationale never
verdict llava-1.6-tiny p01_rgb_384x384.png --rationale never
verdict qwen2.5-vl-tiny p02_rgb_640x480.jpg
verdict qwen2.5-vl-tiny p03_rgb_tall_300x900.png --rationale never --batch 1
# QwenGuard's prompt: the policy first, then the image (the reference's text_first ids)
"$BIN" assess --model "$FIX/qwen2.5-vl-tiny" --rationale never "$IMG/p02_rgb_640x480.jpg" > "$TMP/v.json"
got=$($PY -c "import json,sys; print(json.loads(open(sys.argv[1]).read())['prompt_tokens'])" "$TMP/v.json")
[ "$got" = 1520 ] || fail "assess qwen2.5-vl: prompt_tokens $got, the text_first prompt has 1520"
"$BIN" assess --model "$FIX/llava-1.5-tiny" --rationale never "$IMG/p02_rgb_640x480.jpg" > "$TMP/v.json"
want=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['prompt']['num_input_ids'])" \
  "$FIX/reference/llava-1.5-tiny/p02_rgb_640x480/case.json")
got=$($PY -c "import json,sys; print(json.loads(open(sys.argv[1]).read())['prompt_tokens'])" "$TMP/v.json")
[ "$got" = "$want" ] || fail "assess llava-1.5: prompt_tokens $got, the v1.0 prompt has $want"

# 3b. the batch engine with multimodal RoPE: --batch 3 gives the verdicts of --batch 1
for b in 1 3; do
  "$BIN" assess --model "$FIX/qwen2.5-vl-tiny" --batch $b --max-rationale-tokens 6 \
    "$IMG/p02_rgb_640x480.jpg" "$IMG/p03_rgb_tall_300x900.png" "$IMG/p05_rgb_tiny_50x37.png" \
    > "$TMP/batch$b.jsonl" 2> "$TMP/err" || fail "assess qwen --batch $b: exit $? ($(cat "$TMP/err"))"
done
$PY - "$TMP/batch1.jsonl" "$TMP/batch3.jsonl" <<'EOF' || fail "assess qwen: --batch 3 differs from --batch 1"
import json, sys
def key(path):
    return [(v["image"], v["p_unsafe"], v["category"], v["rationale"], v["category_probs"])
            for v in map(json.loads, open(path))]
a, b = key(sys.argv[1]), key(sys.argv[2])
sys.exit(0 if len(a) == 3 and a == b else 1)
EOF

# 4. --image-aspect errors
"$BIN" assess --model "$FIX/llava-1.5-tiny" --image-aspect square "$IMG/p02_rgb_640x480.jpg" \
  > /dev/null 2>&1
[ $? -eq 2 ] || fail "--image-aspect square: not a usage error"
"$BIN" preprocess --model "$FIX/llava-1.5-tiny" --image-aspect "$IMG/p02_rgb_640x480.jpg" \
  > /dev/null 2>&1
[ $? -eq 2 ] || fail "preprocess --image-aspect without a value: not a usage error"
"$BIN" generate --model "$FIX/llava-1.6-tiny" --image-aspect pad --image "$IMG/p02_rgb_640x480.jpg" \
  --prompt hi -n 1 > /dev/null 2> "$TMP/err"
[ $? -eq 1 ] && grep -q "LLaVA-1.5" "$TMP/err" || fail "--image-aspect pad on LLaVA-1.6 not refused"

[ $fails -eq 0 ] && echo "cli_families: all passed"
exit $((fails > 0))
