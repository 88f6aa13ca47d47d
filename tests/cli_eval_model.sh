#!/usr/bin/env bash
# cli_eval_model.sh BIN FIXTURES — `eval --model` on fixture images gives the same figures as
# `annotate` + `eval --predictions` on its SQLite file.
set -euo pipefail
BIN=$1 FX=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/img"
cp "$FX/images/p05_rgb_tiny_50x37.png" "$FX/images/p01_rgb_384x384.png" "$FX/images/p06_gray_320x240.png" "$T/img/"
cat > "$T/l.jsonl" <<J
{"id":"p05_rgb_tiny_50x37","image":"$T/img/p05_rgb_tiny_50x37.png","rating":"Unsafe","category":"O3"}
{"id":"p01_rgb_384x384","image":"$T/img/p01_rgb_384x384.png","rating":"Safe","category":"NA"}
{"id":"p06_gray_320x240","image":"$T/img/p06_gray_320x240.png","rating":"Unsafe","category":"O1"}
J
"$BIN" eval --model "$FX/llava-ov-tiny" --labels "$T/l.jsonl" --json "$T/m1.json" --batch 2 -q \
  --save-predictions "$T/pred.jsonl"
"$BIN" annotate --model "$FX/llava-ov-tiny" --out "$T/r.sqlite" --rationale never "$T/img" 2>/dev/null
"$BIN" eval --predictions "$T/r.sqlite" --labels "$T/l.jsonl" --json "$T/m2.json" -q
"$BIN" eval --predictions "$T/pred.jsonl" --labels "$T/l.jsonl" --json "$T/m3.json" -q
cmp "$T/m1.json" "$T/m2.json" || { diff "$T/m1.json" "$T/m2.json" | head; exit 1; }
cmp "$T/m1.json" "$T/m3.json"
/usr/bin/python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert m['n']==3 and m['invalid']==0, m" "$T/m1.json"
