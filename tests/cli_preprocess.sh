#!/usr/bin/env bash
# cli_preprocess.sh — `llavaguard preprocess`: JSON summary against the fixtures' case.json for
# every image and model, the --out tensor bit-exact against the reference, stdin input, the
# options, and every class of bad input (exit 1, the file named, no --out file left) and usage
# error (exit 2).   $1 = llavaguard binary, $2 = fixtures dir.
set -u
BIN=$1
FIX=$2
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/cli_preprocess.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

OV=$FIX/llava-ov-tiny
IMG=$FIX/images
REF=$FIX/reference

# 1. every fixture image, every model: summary fields equal the reference case.json
for model in llava-ov-tiny llava-1.6-tiny llava-1.5-tiny; do
  for img in "$IMG"/*; do
    name=$(basename "${img%.*}")
    if ! "$BIN" preprocess --model "$FIX/$model" "$img" > "$TMP/out.json" 2> "$TMP/err"; then
      fail "$model $name: exit $? ($(cat "$TMP/err"))"; continue
    fi
    $PY - "$TMP/out.json" "$REF/$model/$name/case.json" "$model" <<'EOF' || fail "$model $name: summary differs"
import json, sys
got = json.load(open(sys.argv[1])); case = json.load(open(sys.argv[2])); model = sys.argv[3]
ip = case["image_processor"]
shape = ip["pixel_values_shape"][1:] if len(ip["pixel_values_shape"]) == 5 else ip["pixel_values_shape"]
ok = (got["shape"] == shape and got["crops"] == shape[0]
      and got["image_size"] == ip["image_sizes"][0]
      and got["image_tokens"] == case["prompt"]["num_image_tokens"]
      and abs(got["sum"] - ip["pixel_values_stats"]["sum"]) <= 1e-6 * (1 + abs(ip["pixel_values_stats"]["sum"]))
      and abs(got["mean"] - ip["pixel_values_stats"]["mean"]) <= 1e-9)
if "grid_hw" in ip:
    ok = ok and got["grid"] == ip["grid_hw"] and got["best_resolution"] == ip["best_resolution_hw"]
if not ok:
    print(json.dumps(got), file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
  done
done

# 2. --out: p01's tensor is pixel_values.f32 byte for byte; p05's is the LUT of the u8 crops
"$BIN" preprocess --model "$OV" "$IMG/p01_rgb_384x384.png" --out "$TMP/p01.f32" > /dev/null \
  || fail "p01 --out: exit $?"
cmp -s "$TMP/p01.f32" "$REF/llava-ov-tiny/p01_rgb_384x384/pixel_values.f32" || fail "p01 --out differs"
"$BIN" preprocess --model "$OV" -o "$TMP/p05.f32" "$IMG/p05_rgb_tiny_50x37.png" > /dev/null \
  || fail "p05 --out: exit $?"
$PY - "$TMP/p05.f32" "$REF/llava-ov-tiny" <<'EOF' || fail "p05 --out is not lut[u8]"
import json, sys
import numpy as np
got = np.fromfile(sys.argv[1], dtype="<f4")
lut = np.array(json.load(open(sys.argv[2] + "/index.json"))["pixel_lut_u8_to_f32"], dtype=np.float32)
u8 = np.fromfile(sys.argv[2] + "/p05_rgb_tiny_50x37/pixel_values.u8", dtype=np.uint8)
sys.exit(0 if got.shape == u8.shape and (got.view(np.uint32) == lut[u8].view(np.uint32)).all() else 1)
EOF

# 3. standard input, and the options
"$BIN" preprocess --model "$OV" - < "$IMG/p02_rgb_640x480.jpg" > "$TMP/stdin.json" \
  && grep -q '"image_tokens":2929' "$TMP/stdin.json" || fail "stdin input"
"$BIN" preprocess --model "$OV" --alpha white "$IMG/p07_rgba_400x300.png" > "$TMP/white.json" \
  || fail "--alpha white: exit $?"
"$BIN" preprocess --model "$OV" "$IMG/p07_rgba_400x300.png" > "$TMP/drop.json" || fail "p07"
cmp -s "$TMP/white.json" "$TMP/drop.json" && fail "--alpha white changed nothing on an RGBA image"
"$BIN" preprocess --model "$OV" --exif-orientation --max-pixels 200000 "$IMG/p01_rgb_384x384.png" \
  > /dev/null || fail "--exif-orientation / --max-pixels within the limit"
"$BIN" preprocess --model "$FIX/llava-1.5-tiny" --pad-square "$IMG/p02_rgb_640x480.jpg" \
  --out "$TMP/pad.f32" > /dev/null || fail "--pad-square: exit $?"
"$BIN" preprocess --help | grep -q -- '--max-pixels' || fail "--help"

# 4. bad input: exit 1, message names the file, no --out file left behind
: > "$TMP/empty.png"
head -c 50000 "$IMG/p02_rgb_640x480.jpg" > "$TMP/trunc.jpg"
head -c 100000 "$IMG/p01_rgb_384x384.png" > "$TMP/trunc.png"
echo "just some text, not a picture" > "$TMP/notes.txt"
cp "$IMG/p01_rgb_384x384.png" "$TMP/corrupt.png"
printf '\x55\x55\x55\x55' | dd of="$TMP/corrupt.png" bs=1 seek=140000 conv=notrunc 2> /dev/null
printf 'II*\0\10\0\0\0\0\0' > "$TMP/scan.tif"
expect_fail() { # file, reason, extra args...
  local f=$1 why=$2; shift 2
  rm -f "$TMP/bad.f32"
  "$BIN" preprocess --model "$OV" "$f" --out "$TMP/bad.f32" "$@" > "$TMP/o" 2> "$TMP/e"
  local rc=$?
  [ $rc -eq 1 ] || fail "$f: exit $rc, expected 1"
  grep -q -- "$f" "$TMP/e" || fail "$f: message does not name the file: $(cat "$TMP/e")"
  grep -qi -- "$why" "$TMP/e" || fail "$f: message does not say '$why': $(cat "$TMP/e")"
  [ -s "$TMP/o" ] && fail "$f: printed output on failure"
  ls "$TMP" | grep -q '^bad.f32' && fail "$f: left an --out file"
}
expect_fail "$TMP/empty.png" "empty"
expect_fail "$TMP/trunc.jpg" "truncated"
expect_fail "$TMP/trunc.png" "truncated"
expect_fail "$TMP/notes.txt" "not an image"
expect_fail "$TMP/corrupt.png" "corrupt"
expect_fail "$TMP/scan.tif" "unsupported"
expect_fail "$IMG/p04_rgb_wide_1920x1080.jpg" "exceeds the limit" --max-pixels 100000
expect_fail "$TMP/missing.png" "cannot open"
"$BIN" preprocess --model "$TMP" "$IMG/p01_rgb_384x384.png" > /dev/null 2> "$TMP/e"
[ $? -eq 1 ] && grep -q preprocessor_config.json "$TMP/e" || fail "model folder without config"
"$BIN" preprocess --model "$OV" "$IMG/p01_rgb_384x384.png" --out "$TMP/nodir/x.f32" > /dev/null 2>&1
[ $? -eq 1 ] || fail "unwritable --out should exit 1"

# 5. usage errors exit 2
usage() {
  "$BIN" preprocess "$@" > /dev/null 2>&1
  local rc=$?
  [ $rc -eq 2 ] || fail "usage error ($*): exit $rc, expected 2"
}
usage
usage "$IMG/p01_rgb_384x384.png"
usage --model "$OV"
usage --model "$OV" a.png b.png
usage --model "$OV" --alpha pink "$IMG/p01_rgb_384x384.png"
usage --model "$OV" --max-pixels abc "$IMG/p01_rgb_384x384.png"
usage --model "$OV" --max-pixels 0 "$IMG/p01_rgb_384x384.png"
usage --bogus
usage --model

if [ $fails -ne 0 ]; then echo "$fails check(s) failed" >&2; exit 1; fi
echo "cli_preprocess: all checks passed"
