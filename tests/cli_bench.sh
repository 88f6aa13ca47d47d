#!/usr/bin/env bash
# cli_bench.sh — `llavaguard bench`: usage errors exit 2, --help exits 0, and a quick run on the
# tiny fixture model prints one JSON object with the measured limits and the stages issue 7
# names (vision_crop, projector, prefill, decode_token, both verdicts), each with a positive
# median time, rates where work is counted, and the speedup over the exact path; the model's
# open time is a stage; the tower and projector split of encode_image add up to no more than the
# whole call; with tokenizer.json the verdicts run the real guard (method "guard", the real
# prompt's token count in the note), without it they are simulated (method "simulated");
# --precision bf16 runs and is reported with its KV cache type.
# $1 = the llavaguard binary, $2 = the fixtures dir.
set -u
bin=$1
fx=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

status_is() {
    local want=$1
    shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    [ "$got" -eq "$want" ] || fail "llavaguard $* exited $got, want $want: $(head -c 300 "$tmp/err")"
}

status_is 2 bench
status_is 2 bench --synthetic 3b
status_is 2 bench --synthetic 0.5b --model "$fx/llava-ov-tiny"
status_is 2 bench --model "$fx/llava-ov-tiny" --runs 0
status_is 2 bench --model "$fx/llava-ov-tiny" extra
status_is 0 bench --help
grep -q "Usage: llavaguard bench" "$tmp/out" || fail "--help prints no usage"
status_is 1 bench --model "$tmp/no-such-model" --quick
status_is 2 bench --model "$fx/llava-ov-tiny" --precision fp8
status_is 2 bench --model "$fx/llava-ov-tiny" --kv-type q4
# a folder that cannot be made: a clear error before anything is written
status_is 1 bench --synthetic 0.5b --keep /proc/llavaguard-no/such --quick --no-exact
grep -q "cannot create" "$tmp/err" || fail "bench --keep in an impossible place says why"

status_is 0 bench --model "$fx/llava-ov-tiny" --runs 1 --json --prefill 16 --decode 2 --threads 2
/usr/bin/python3 - "$tmp/out" <<'PY' || fail "bench --json output"
import json, re, sys
r = json.load(open(sys.argv[1]))
lim = r["limits"]
assert lim["gemm_gflops"] > 0 and lim["bandwidth_gbps"] > 0, lim
assert r["precision"] == "accurate" and r["kv_type"] == "i16", (r["precision"], r["kv_type"])
st = {s["name"]: s for s in r["stages"]}
for name in ["model_open", "decode_image", "preprocess", "encode_image", "vision_crop",
             "projector", "prefill", "decode_token", "verdict_1024x768_norationale",
             "verdict_1024x768_rationale"]:
    assert name in st, (name, list(st))
    assert st[name]["median_s"] > 0, st[name]
for name in ["encode_image", "vision_crop", "projector", "prefill"]:
    assert st[name]["gflops"] > 0 and st[name]["pct_of_limit"] > 0, st[name]
assert st["decode_token"]["gbps"] > 0, st["decode_token"]
for name in ["prefill", "decode_token"]:
    assert st[name]["speedup_vs_exact"] > 0, st[name]
crops = int(re.match(r"(\d+) crops", st["encode_image"]["note"]).group(1))
assert crops == 7, st["encode_image"]  # 1024x768 with anyres_max_9: base + 2x3 tiles
parts = st["vision_crop"]["median_s"] * crops + st["projector"]["median_s"]
assert parts <= st["encode_image"]["median_s"] * 1.0001, (parts, st["encode_image"])
for name in ["verdict_1024x768_norationale", "verdict_1024x768_rationale"]:
    v = st[name]
    assert v["method"] == "guard", v
    m = re.match(r"guard: real prompt (\d+) tokens \((\d+) image\), (\d+) generated", v["note"])
    assert m and int(m.group(1)) > int(m.group(2)) > 0 and int(m.group(3)) > 0, v
gen = [int(re.search(r"(\d+) generated", st[n]["note"]).group(1))
       for n in ["verdict_1024x768_norationale", "verdict_1024x768_rationale"]]
assert gen[1] > gen[0], gen  # the rationale adds tokens
assert "method" not in st["prefill"], st["prefill"]
PY

# the same folder without tokenizer.json: the verdicts fall back to the simulation
mkdir "$tmp/notok"
for f in "$fx/llava-ov-tiny"/*; do
    [ "$(basename "$f")" = tokenizer.json ] || ln -s "$f" "$tmp/notok/"
done
status_is 0 bench --model "$tmp/notok" --quick --json --prefill 16 --decode 2 --no-exact
/usr/bin/python3 - "$tmp/out" <<'PY' || fail "bench --json output without a tokenizer"
import json, sys
st = {s["name"]: s for s in json.load(open(sys.argv[1]))["stages"]}
v = st["verdict_1024x768_norationale"]
assert v["method"] == "simulated" and v["note"].startswith("simulated: no tokenizer"), v
assert v["median_s"] > 0 and "verdict_1024x768_rationale" not in st, list(st)
assert st["projector"]["gflops"] > 0, st["projector"]
PY

status_is 0 bench --model "$fx/llava-ov-tiny" --quick --json --prefill 16 --decode 2 --no-exact \
    --precision bf16 --kv-type bf16
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["precision"]=="bf16" and r["kv_type"]=="bf16"' \
    "$tmp/out" || fail "bench --precision bf16 output"

[ "$failures" -eq 0 ] || exit 1
echo "cli_bench: all checks passed"
