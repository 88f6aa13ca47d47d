#!/usr/bin/env bash
# cli_bench.sh — `llavaguard bench`: usage errors exit 2, --help exits 0, and a quick run on the
# tiny fixture model prints one JSON object with the measured limits and the stages issue 7
# names (vision_crop, prefill, decode_token, verdict_1024x768_norationale), each with a positive
# median time, rates where work is counted, and the speedup over the exact path; the model's
# open time is a stage; --precision bf16 runs and is reported with its KV cache type.
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

status_is 0 bench --model "$fx/llava-ov-tiny" --quick --json --prefill 16 --decode 2 --threads 2
/usr/bin/python3 - "$tmp/out" <<'PY' || fail "bench --json output"
import json, sys
r = json.load(open(sys.argv[1]))
lim = r["limits"]
assert lim["gemm_gflops"] > 0 and lim["bandwidth_gbps"] > 0, lim
assert r["precision"] == "accurate" and r["kv_type"] == "f32", (r["precision"], r["kv_type"])
st = {s["name"]: s for s in r["stages"]}
for name in ["model_open", "decode_image", "preprocess", "vision_crop", "prefill", "decode_token",
             "verdict_1024x768_norationale"]:
    assert name in st, (name, list(st))
    assert st[name]["median_s"] > 0, st[name]
for name in ["vision_crop", "prefill"]:
    assert st[name]["gflops"] > 0 and st[name]["pct_of_limit"] > 0, st[name]
assert st["decode_token"]["gbps"] > 0, st["decode_token"]
for name in ["prefill", "decode_token"]:
    assert st[name]["speedup_vs_exact"] > 0, st[name]
PY

status_is 0 bench --model "$fx/llava-ov-tiny" --quick --json --prefill 16 --decode 2 --no-exact \
    --precision bf16
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["precision"]=="bf16" and r["kv_type"]=="bf16"' \
    "$tmp/out" || fail "bench --precision bf16 output"

[ "$failures" -eq 0 ] || exit 1
echo "cli_bench: all checks passed"
