#!/usr/bin/env bash
# cli_generate.sh — `llavaguard generate` on the tiny LLaVA-OneVision model against the reference
# (../shared/fixtures/reference/llava-ov-tiny): with --input-ids (the reference ids) and with the
# prompt rendered from text (--prompt-file + the HF template, through the tokenizer and the image
# processor), --exact (and once with the fast kernels' default precision): the dumped logits (1e-3) and image features (1e-4 x max), the greedy ids
# (up to the first step whose top1-top2 gap is below 1e-4), the decoded text; seeded sampling
# reproduces; usage errors exit 2, failures exit 1 with a message and leave no dump file.
#   $1 = llavaguard binary, $2 = fixtures dir.
set -u
BIN=$1
FIX=$2
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/cli_generate.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

OV=$FIX/llava-ov-tiny
REF=$FIX/reference/llava-ov-tiny
IMG=$FIX/images

# Compares one run's JSON and dumps with a case. $1 case, $2 json, $3 logits, $4 features|-.
check() {
  $PY - "$REF/$1" "$2" "$3" "$4" <<'EOF'
import json, sys
import numpy as np
case_dir, out, logits, feats = sys.argv[1:5]
case = json.load(open(case_dir + "/case.json"))
got = json.load(open(out))
bad = []
if got["prompt_tokens"] != case["prompt"]["num_input_ids"]:
    bad.append("prompt_tokens %d != %d" % (got["prompt_tokens"], case["prompt"]["num_input_ids"]))
ref = np.fromfile(case_dir + "/last_logits.f32", dtype="<f4")
lg = np.fromfile(logits, dtype="<f4")
d = float(np.abs(lg - ref).max()) if lg.shape == ref.shape else float("inf")
if not d <= 1e-3:
    bad.append("logits max|diff| %g" % d)
if feats != "-":
    rf = np.fromfile(case_dir + "/image_features.f32", dtype="<f4")
    f = np.fromfile(feats, dtype="<f4")
    fd = float(np.abs(f - rf).max()) if f.shape == rf.shape else float("inf")
    if not fd <= 1e-4 * float(np.abs(rf).max()):
        bad.append("image features max|diff| %g" % fd)
    if got["image_tokens"] != case["prompt"]["num_image_tokens"]:
        bad.append("image_tokens")
gen = case["generation"]
want, gaps = gen["new_token_ids"], gen["per_step_top1_minus_top2_logit"]
for i, (w, g) in enumerate(zip(want, gaps)):
    if g < 1e-4:
        break
    if i >= len(got["ids"]) or got["ids"][i] != w:
        bad.append("greedy step %d" % i)
        break
if len(got["ids"]) == len(want) and got["ids"] == want and got["text"] != gen["text"]:
    bad.append("text %r != %r" % (got["text"], gen["text"]))
for k in ("load_ms", "image_ms", "prompt_ms", "generate_ms"):
    if k not in got["timings"]:
        bad.append("timings." + k)
if got["stop"] != "max_new_tokens":
    bad.append("stop " + got["stop"])
if bad:
    print("; ".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

ids_file() { $PY -c "import json,sys; json.dump(json.load(open(sys.argv[1]))['prompt']['input_ids'], open(sys.argv[2],'w'))" "$REF/$1/case.json" "$2"; }

# 1. --input-ids: text only, and an image with an odd padding (p05)
ids_file text_only "$TMP/t.json"
"$BIN" generate --model "$OV" --input-ids "$TMP/t.json" -n 32 --greedy --exact \
  --dump-logits "$TMP/t.f32" > "$TMP/t.out" 2> "$TMP/err" || fail "text_only: exit $? ($(cat "$TMP/err"))"
check text_only "$TMP/t.out" "$TMP/t.f32" - || fail "text_only differs"

ids_file p05_rgb_tiny_50x37 "$TMP/p05.json"
"$BIN" generate --model "$OV" --image "$IMG/p05_rgb_tiny_50x37.png" --input-ids "$TMP/p05.json" \
  --max-new-tokens 32 --exact --dump-logits "$TMP/p05.f32" --dump-image-features "$TMP/p05.feat" \
  > "$TMP/p05.out" 2> "$TMP/err" || fail "p05: exit $? ($(cat "$TMP/err"))"
check p05_rgb_tiny_50x37 "$TMP/p05.out" "$TMP/p05.f32" "$TMP/p05.feat" || fail "p05 differs"

# 1b. the fast kernels in their default (accurate) precision meet the same bounds; --precision
#     bf16 runs and says so
"$BIN" generate --model "$OV" --image "$IMG/p05_rgb_tiny_50x37.png" --input-ids "$TMP/p05.json" \
  --max-new-tokens 32 --dump-logits "$TMP/p05f.f32" --dump-image-features "$TMP/p05f.feat" \
  > "$TMP/p05f.out" 2> "$TMP/err" || fail "p05 fast: exit $? ($(cat "$TMP/err"))"
check p05_rgb_tiny_50x37 "$TMP/p05f.out" "$TMP/p05f.f32" "$TMP/p05f.feat" || fail "p05 fast differs"
$PY -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['kernels']=='auto' and j['precision']=='accurate'" \
  "$TMP/p05f.out" || fail "fast run: kernels/precision in the JSON"
"$BIN" generate --model "$OV" --input-ids "$TMP/t.json" -n 2 --precision bf16 > "$TMP/b.out" \
  || fail "--precision bf16: exit $?"
$PY -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['precision']=='bf16' and len(j['ids'])==2" \
  "$TMP/b.out" || fail "--precision bf16 output"

# 2. the prompt from text: the HF template, tokenizer and image processor give the same run
"$BIN" generate --model "$OV" --image "$IMG/p01_rgb_384x384.png" \
  --prompt-file "$FIX/reference/prompt_text.txt" --template llava_onevision_hf -n 32 --exact \
  --threads 1 --dump-logits "$TMP/p01.f32" --dump-image-features "$TMP/p01.feat" \
  > "$TMP/p01.out" 2> "$TMP/err" || fail "p01 --prompt-file: exit $? ($(cat "$TMP/err"))"
check p01_rgb_384x384 "$TMP/p01.out" "$TMP/p01.f32" "$TMP/p01.feat" || fail "p01 --prompt-file differs"
"$BIN" generate --model "$OV" --prompt "$(cat "$FIX/reference/prompt_text.txt")" \
  --template llava_onevision_hf -n 32 --exact --dump-logits "$TMP/t2.f32" > "$TMP/t2.out" \
  2> "$TMP/err" || fail "text --prompt: exit $? ($(cat "$TMP/err"))"
check text_only "$TMP/t2.out" "$TMP/t2.f32" - || fail "text_only --prompt differs"

# 3. the default template (the model's own) and a short prompt; stdin; eos-free sampling with a
#    seed reproduces, and differs from greedy
"$BIN" generate --model "$OV" -p "Is this safe?" -n 3 > "$TMP/d.out" || fail "default template: exit $?"
$PY -c "import json,sys; j=json.load(open(sys.argv[1])); assert len(j['ids'])==3 and isinstance(j['text'],str)" \
  "$TMP/d.out" || fail "default template output"
echo "Is this safe?" | "$BIN" generate --model "$OV" --prompt-file - -n 2 > /dev/null || fail "stdin prompt"
for i in 1 2; do
  "$BIN" generate --model "$OV" -p "Hello" -n 12 --temperature 0.9 --top-k 40 --top-p 0.95 \
    --seed 7 > "$TMP/s$i.out" || fail "sampling run $i: exit $?"
done
$PY -c "import json,sys; a,b=(json.load(open(f))['ids'] for f in sys.argv[1:]); assert a==b and len(a)==12" \
  "$TMP/s1.out" "$TMP/s2.out" || fail "seeded sampling does not reproduce"
"$BIN" generate --model "$OV" --input-ids "$TMP/t.json" -n 1 --kv-type bf16 --no-prepack > /dev/null || fail "--kv-type bf16"

# 4. usage errors: exit 2
usage() {
  "$BIN" generate "$@" > /dev/null 2> "$TMP/err"
  [ $? -eq 2 ] || fail "usage error expected: $*"
}
usage
usage --model "$OV"
usage --model "$OV" -p x --input-ids "$TMP/t.json"
usage --model "$OV" -p x --greedy --temperature 0.5
usage --model "$OV" -p x --temperature 0
usage --model "$OV" -p x --top-p 1.5
usage --model "$OV" -p x -n -3
usage --model "$OV" -p x --threads 0
usage --model "$OV" -p x --kv-type q4
usage --model "$OV" -p x --precision fp8
usage --model "$OV" -p x --bogus
usage --model "$OV" -p x extra
usage --model "$OV" --input-ids "$TMP/t.json" --template qwen_1_5
"$BIN" generate --help > /dev/null || fail "--help"

# 5. failures: exit 1, a message, no dump file left behind
failure() {
  local want=$1; shift
  rm -f "$TMP/x.f32"
  "$BIN" generate "$@" --dump-logits "$TMP/x.f32" > /dev/null 2> "$TMP/err"
  local rc=$?
  [ $rc -eq 1 ] || fail "exit 1 expected (got $rc): $*"
  grep -q -- "$want" "$TMP/err" || fail "message '$want' expected: $(cat "$TMP/err")"
  [ ! -e "$TMP/x.f32" ] || fail "dump left behind: $*"
}
failure "no config.json" --model "$TMP" -p x
echo '[1, 2, 152000]' > "$TMP/bad.json"
failure "outside" --model "$OV" --input-ids "$TMP/bad.json"
echo '[1, "a"]' > "$TMP/bad2.json"
failure "not a token id" --model "$OV" --input-ids "$TMP/bad2.json"
echo '[1, 2' > "$TMP/bad3.json"
failure "bad3.json" --model "$OV" --input-ids "$TMP/bad3.json"
failure "image tokens" --model "$OV" --input-ids "$TMP/p05.json"
failure "image tokens" --model "$OV" --input-ids "$TMP/t.json" --image "$IMG/p05_rgb_tiny_50x37.png"
failure "nonexistent.png" --model "$OV" -p x --image "$TMP/nonexistent.png"
failure "no_such_template" --model "$OV" -p x --template no_such_template

if [ $fails -ne 0 ]; then
  echo "$fails failure(s)" >&2
  exit 1
fi
echo "cli_generate: all checks passed"
