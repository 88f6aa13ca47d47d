#!/usr/bin/env bash
# cli_tokenize.sh — `llavaguard tokenize`: ids of plain text, --chat prompts equal to the
# reference input_ids (llava-ov-tiny with the HF template, llava-1.5-tiny with the template chosen
# from its config.json), --decode, --file from standard input, and the exit statuses of usage
# errors (2) and failures (1).
# Usage: cli_tokenize.sh LLAVAGUARD_BINARY FIXTURES_DIR
set -u
bin=$1
fx=$2
py=/usr/bin/python3
fails=0

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

expect_status() { # want_status description command...
    local want=$1 what=$2
    shift 2
    "$@" >/dev/null 2>&1
    local got=$?
    [ "$got" -eq "$want" ] || fail "$what: exit status $got, want $want"
}

# plain text: nothing added, special tokens recognised
out=$("$bin" tokenize --model "$fx/llava-ov-tiny" --text 'Hello world<|im_end|>')
[ "$out" = '{"ids":[9707,1879,151645]}' ] || fail "plain text: $out"

# --chat with the HF llava-onevision template and the image expanded: the case's input_ids
check_case() { # model case template-args...
    local model=$1 case=$2
    shift 2
    local json="$fx/reference/$model/$case/case.json" text
    text=$(mktemp)
    "$py" - "$json" "$fx/reference/$model/index.json" "$text" <<'EOF'
import json, sys
case, index = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
p = case["prompt"]
conv = p.get("conversation")
t = next(c["text"] for c in conv[0]["content"] if c["type"] == "text") if conv else index["prompt_text"]
open(sys.argv[3], "w").write(t)
EOF
    local n
    n=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt"].get("num_image_tokens", 0))' "$json")
    local got
    got=$("$bin" tokenize --model "$fx/$model" --file - --chat --image-tokens "$n" "$@" <"$text")
    "$py" - "$json" "$got" <<'EOF' || fail "$model/$case: ids differ from the reference"
import json, sys
want = json.load(open(sys.argv[1]))["prompt"]["input_ids"]
got = json.loads(sys.argv[2])["ids"]
sys.exit(0 if got == want else 1)
EOF
    rm -f "$text"
}
check_case llava-ov-tiny p02_rgb_640x480 --template llava_onevision_hf
check_case llava-ov-tiny text_only --template llava_onevision_hf
check_case llava-1.5-tiny p05_rgb_tiny_50x37 # vicuna_v1 from config.json (model_type llava)
check_case llava-1.6-tiny text_only           # chatml_direct (llava_next)

# the default template of llava_onevision is the training template, with its system turn
out=$("$bin" tokenize --model "$fx/llava-ov-tiny" --text 'x' --chat --pieces)
case "$out" in
*'"tokens":["<|im_start|>","system","Ċ","You"'*) ;;
*) fail "--chat default template: $out" ;;
esac

# --decode
out=$("$bin" tokenize --model "$fx/llava-ov-tiny" --decode --text '[9707, 1879, 151645]')
[ "$out" = '{"text":"Hello world<|im_end|>"}' ] || fail "--decode: $out"
out=$("$bin" tokenize --model "$fx/llava-ov-tiny" --decode --skip-special --text '[9707,151645]')
[ "$out" = '{"text":"Hello"}' ] || fail "--decode --skip-special: $out"
out=$(printf '[1, 15043, 29871, 243, 162, 155, 131]' |
    "$bin" tokenize --model "$fx/llava-1.5-tiny" --decode --file -)
[ "$out" = '{"text":"<s> Hello 😀"}' ] || fail "--decode llama: $out"

# usage errors exit 2
expect_status 0 "--help" "$bin" tokenize --help
expect_status 2 "no arguments" "$bin" tokenize
expect_status 2 "no text" "$bin" tokenize --model "$fx/llava-ov-tiny"
expect_status 2 "text and file" "$bin" tokenize --model "$fx/llava-ov-tiny" --text a --file b
expect_status 2 "bad --image-tokens" "$bin" tokenize --model "$fx/llava-ov-tiny" --text a \
    --chat --image-tokens x
expect_status 2 "--template without --chat" "$bin" tokenize --model "$fx/llava-ov-tiny" \
    --text a --template qwen_1_5
expect_status 2 "unknown template" "$bin" tokenize --model "$fx/llava-ov-tiny" --text a --chat \
    --template nope
expect_status 2 "unknown option" "$bin" tokenize --model "$fx/llava-ov-tiny" --text a --frobnicate
expect_status 2 "--chat on a bare tokenizer.json" "$bin" tokenize \
    --model "$fx/llava-ov-tiny/tokenizer.json" --text a --chat
# failures exit 1
expect_status 1 "missing model" "$bin" tokenize --model /nonexistent --text a
expect_status 1 "missing file" "$bin" tokenize --model "$fx/llava-ov-tiny" --file /nonexistent
expect_status 1 "invalid UTF-8" "$bin" tokenize --model "$fx/llava-ov-tiny" --text $'\xff'
expect_status 1 "--decode of a non-array" "$bin" tokenize --model "$fx/llava-ov-tiny" --decode \
    --text '{"a":1}'
expect_status 1 "not a tokenizer" "$bin" tokenize --model "$fx/llava-ov-tiny/config.json" --text a

[ "$fails" -eq 0 ] || exit 1
echo "cli_tokenize: all checks passed"
