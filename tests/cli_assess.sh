#!/usr/bin/env bash
# cli_assess.sh — `llavaguard assess` on the tiny fixture model: one JSON record per image with
# the documented fields, an error record (and exit 1) for a bad input while the run goes on,
# --fail-on-unsafe exit 3, json/text formats, stdin input, usage errors exit 2.
# $1 = the llavaguard binary, $2 = the fixtures dir.
set -u
bin=$1
fx=$2
model=$fx/llava-ov-tiny
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
py=/usr/bin/python3

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# status_is CODE ARGS...: `llavaguard ARGS` exits with CODE (output in $tmp/out, $tmp/err).
status_is() {
    local want=$1
    shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    [ "$got" -eq "$want" ] || fail "llavaguard $* exited $got, want $want: $(head -c 300 "$tmp/err")"
}

common=(--model "$model" --threads 1 --max-rationale-tokens 8)
printf 'not an image\n' >"$tmp/bad.jpg"

# two good images and a bad one: three records, exit 1, the good ones complete
status_is 1 assess "${common[@]}" "$fx/images/p05_rgb_tiny_50x37.png" "$tmp/bad.jpg" \
    "$fx/images/p06_gray_320x240.png"
$py - "$tmp/out" <<'PY' || fail "jsonl records"
import json, sys, math
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 3, recs
for r in (recs[0], recs[2]):
    for k in ("image", "sha256", "rating", "category", "rationale", "p_unsafe", "category_probs",
              "policy_sha256", "model", "timings"):
        assert k in r, k
    assert r["rating"] in ("Safe", "Unsafe")
    assert 0.0 <= r["p_unsafe"] <= 1.0
    assert abs(sum(r["category_probs"].values()) - 1.0) < 1e-5
    assert r["category"] in r["category_probs"]
    assert len(r["sha256"]) == 64 and len(r["policy_sha256"]) == 64
assert "error" in recs[1] and "bad.jpg" in recs[1]["error"], recs[1]
PY

# the policy hash is the sha256 of the rendered policy
"$bin" policy render >"$tmp/policy.txt"
want_sha=$(sha256sum "$tmp/policy.txt" | cut -d' ' -f1)
grep -q "\"policy_sha256\":\"$want_sha\"" "$tmp/out" || fail "policy_sha256 is not sha256(policy render)"

# rationale never: null rationale; --allow changes the policy hash
status_is 0 assess "${common[@]}" --rationale never --allow O3 "$fx/images/p05_rgb_tiny_50x37.png"
$py -c "import json,sys; r=json.load(open('$tmp/out')); assert r['rationale'] is None" ||
    fail "rationale never"
grep -q "$want_sha" "$tmp/out" && fail "--allow O3 kept the default policy hash"

# --fail-on-unsafe: exit 3 exactly when a record is Unsafe
"$bin" assess "${common[@]}" --rationale never --fail-on-unsafe \
    "$fx/images/p05_rgb_tiny_50x37.png" "$fx/images/p06_gray_320x240.png" >"$tmp/out" 2>"$tmp/err"
rc=$?
if grep -q '"rating":"Unsafe"' "$tmp/out"; then want=3; else want=0; fi
[ "$rc" -eq "$want" ] || fail "--fail-on-unsafe exited $rc, want $want"

# json format: one array; text format; stdin
status_is 0 assess "${common[@]}" --rationale never -f json - <"$fx/images/p05_rgb_tiny_50x37.png"
$py -c "import json; a=json.load(open('$tmp/out')); assert isinstance(a, list) and len(a) == 1 and a[0]['image'] == '-'" ||
    fail "json format / stdin"
status_is 0 assess "${common[@]}" --rationale never -f text "$fx/images/p05_rgb_tiny_50x37.png"
grep -q "P(unsafe)" "$tmp/out" || fail "text format"

# files-from
printf '%s\n' "$fx/images/p05_rgb_tiny_50x37.png" "$fx/images/p08_palette_256x192.png" >"$tmp/list"
status_is 0 assess "${common[@]}" --rationale never --files-from "$tmp/list"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "--files-from should give two records"

# --batch: the same verdicts as one at a time, in input order
imgs=("$fx/images/p05_rgb_tiny_50x37.png" "$fx/images/p02_rgb_640x480.jpg" "$tmp/bad.jpg"
    "$fx/images/p08_palette_256x192.png" "$fx/images/p06_gray_320x240.png")
"$bin" assess "${common[@]}" --batch 1 "${imgs[@]}" >"$tmp/b1" 2>/dev/null
"$bin" assess "${common[@]}" --batch 3 "${imgs[@]}" >"$tmp/b3" 2>/dev/null
$py - "$tmp/b1" "$tmp/b3" <<'PY' || fail "--batch 3 differs from --batch 1"
import json, sys
def load(f):
    out = []
    for l in open(f):
        r = json.loads(l)
        r.pop("timings", None)
        out.append(r)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == 5 and a == b, (a, b)
assert [r["image"].rsplit("/", 1)[-1] for r in a] == ["p05_rgb_tiny_50x37.png",
    "p02_rgb_640x480.jpg", "bad.jpg", "p08_palette_256x192.png", "p06_gray_320x240.png"]
PY

# several policies: one record per image and policy, in order, each as that policy alone
printf '{"categories": {"O3": {"state": "non-violating"}}}' >"$tmp/allow3.json"
printf '{"categories": {"O6": {"state": "sensitive"}}}' >"$tmp/sens6.json"
printf '%s\n' "$tmp/sens6.json" >"$tmp/policies.txt"
two=("$fx/images/p05_rgb_tiny_50x37.png" "$fx/images/p06_gray_320x240.png")
status_is 0 assess "${common[@]}" --batch 2 -p "$tmp/allow3.json" --policies "$tmp/policies.txt" \
    "${two[@]}"
cp "$tmp/out" "$tmp/multi"
"$bin" assess "${common[@]}" -p "$tmp/allow3.json" "${two[@]}" >"$tmp/alone_a" 2>/dev/null
"$bin" assess "${common[@]}" -p "$tmp/sens6.json" "${two[@]}" >"$tmp/alone_s" 2>/dev/null
$py - "$tmp/multi" "$tmp/alone_a" "$tmp/alone_s" <<'PY' || fail "several policies per image"
import json, sys
def load(f):
    out = []
    for l in open(f):
        r = json.loads(l)
        r.pop("timings", None)
        out.append(r)
    return out
m, a, s = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
assert len(m) == 4 and len(a) == 2 and len(s) == 2
assert m == [a[0], s[0], a[1], s[1]], m
assert m[0]["policy_sha256"] != m[1]["policy_sha256"]
PY

# bad model folder, bad policy file: exit 1 with a message
status_is 1 assess --model "$tmp" "$fx/images/p05_rgb_tiny_50x37.png"
grep -q "config.json" "$tmp/err" || fail "missing model folder message: $(cat "$tmp/err")"
printf '{"categories": 3}' >"$tmp/pol.json"
status_is 1 assess "${common[@]}" --policy "$tmp/pol.json" "$fx/images/p05_rgb_tiny_50x37.png"
grep -q "pol.json" "$tmp/err" || fail "bad policy message: $(cat "$tmp/err")"

# usage errors
status_is 2 assess "$fx/images/p05_rgb_tiny_50x37.png"
status_is 2 assess --model "$model"
status_is 2 assess --model "$model" --rationale sometimes x.png
status_is 2 assess --model "$model" --bogus x.png
status_is 2 assess --model "$model" --top-p 2 x.png
status_is 2 assess --model "$model" --precision fp8 x.png
status_is 2 assess --model "$model" --kv-type q4 x.png
status_is 0 assess "${common[@]}" --rationale never --kv-type f32 "$fx/images/p05_rgb_tiny_50x37.png"
status_is 0 assess "${common[@]}" --rationale never --precision bf16 "$fx/images/p05_rgb_tiny_50x37.png"
status_is 0 assess "${common[@]}" --rationale never --exact "$fx/images/p05_rgb_tiny_50x37.png"
status_is 0 assess --help
grep -q -- "--fail-on-unsafe" "$tmp/out" || fail "--help lists options"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli_assess: ok"
