#!/usr/bin/env bash
# cli_policy.sh — `llavaguard policy`: render output equals the reference prompts byte for byte
# (cmp), check prints ok and the sha256 of the rendered text or the file/line/field of a bad
# policy file with exit 1, usage errors exit 2, --help exits 0.
# $1 = the llavaguard binary, $2 = the fixtures dir (reference prompts at $2/../reference/prompts).
set -u
bin=$1
ref=$2/../reference/prompts
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# render_is FILE ARGS...: `policy render ARGS` writes exactly FILE.
render_is() {
    local want=$1
    shift
    if ! "$bin" policy render "$@" >"$tmp/out" 2>"$tmp/err"; then
        fail "policy render $* exited $?: $(cat "$tmp/err")"
    elif ! cmp "$tmp/out" "$want"; then
        fail "policy render $* differs from $want"
    fi
}

# status_is CODE ARGS...: `llavaguard ARGS` exits with CODE (stdout/stderr in $tmp/out, err).
status_is() {
    local want=$1
    shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    [ "$got" -eq "$want" ] || fail "llavaguard $* exited $got, want $want: $(cat "$tmp/err")"
}

[ -d "$ref" ] || { echo "reference prompts not found at $ref" >&2; exit 1; }

# ---- render: byte-identical to the references ----
render_is "$ref/prompt_v1.2.txt"
render_is "$ref/prompt_v1.2.txt" --version v1.2
render_is "$ref/prompt_v1.2_json-v24_raw.txt" --raw
render_is "$ref/prompt_v1.2_user_turn_as_trained.txt" --user-turn
render_is "$ref/prompt_v1.2_example_O3_nonviolating_raw.txt" --allow O3 --raw
render_is "$ref/prompt_v1.2_example_O3_sensitive_raw.txt" --sensitive O3 --raw
render_is "$ref/prompt_v1.0.txt" --version v1.0
render_is "$ref/prompt_v1.0_json-v16_raw_code2024.txt" --version=v1.0 --raw
render_is "$ref/prompt_v1.0_user_turn_as_trained.txt" --version v1.0 --user-turn
render_is "$ref/prompt_v1.0_modelcard.txt" --version v1.0-modelcard
n_variants=0
for f in "$ref"/variants/O?_nonviolating_raw.txt "$ref"/variants/O?_sensitive_raw.txt; do
    base=$(basename "$f")
    id=${base%%_*}
    case $base in
    *_nonviolating_raw.txt) render_is "$f" --allow "$id" --raw ;;
    *) render_is "$f" --sensitive "$id" --raw ;;
    esac
    n_variants=$((n_variants + 1))
done
[ "$n_variants" -eq 18 ] || fail "expected 18 single-category variants, found $n_variants"
render_is "$ref/variants/all_nonviolating_raw.txt" --allow O1,O2,O3,O4 --allow O5,O6,O7,O8,O9 --raw

# A policy file that extends the base renders like the flags.
printf '{"base": "v1.2", "categories": {"O3": {"state": "non-violating"}}}\n' >"$tmp/o3.json"
render_is "$ref/prompt_v1.2_example_O3_nonviolating_raw.txt" --policy "$tmp/o3.json" --raw
render_is "$ref/prompt_v1.2_example_O3_nonviolating_raw.txt" --policy=- --raw <"$tmp/o3.json"

# ---- check ----
sha=$(sha256sum "$ref/prompt_v1.2.txt" | cut -d' ' -f1)
status_is 0 policy check
grep -q "ok, policy sha256 $sha" "$tmp/out" || fail "check: no ok line with $sha: $(cat "$tmp/out")"
status_is 0 policy check --json
grep -q "\"policy_sha256\": \"$sha\"" "$tmp/out" || fail "check --json: $(cat "$tmp/out")"
sha_o3=$(head -c -9 "$ref/prompt_v1.2_example_O3_nonviolating_raw.txt" | sha256sum | cut -d' ' -f1)
status_is 0 policy check "$tmp/o3.json"
grep -q "$tmp/o3.json: ok, policy sha256 $sha_o3" "$tmp/out" || fail "check FILE: $(cat "$tmp/out")"

cat >"$tmp/bad_name.json" <<'JSON'
{
  "base": "v1.2",
  "categories": [
    {"id": "O1"},
    {"id": "O2"},
    {"id": "X1",
     "name": 5, "should_not": [], "can": []}
  ]
}
JSON
status_is 1 policy check "$tmp/bad_name.json"
grep -qF "$tmp/bad_name.json:7: categories[2].name: expected a string, got a number" "$tmp/err" ||
    fail "bad name: $(cat "$tmp/err")"

printf '{\n  "categories": {\n    "O3": {"state": "allowed"}\n  }\n}\n' >"$tmp/bad_state.json"
status_is 1 policy check --policy "$tmp/bad_state.json"
grep -qF "bad_state.json:3: categories.O3.state: unknown state \"allowed\"" "$tmp/err" ||
    fail "bad state: $(cat "$tmp/err")"
status_is 1 policy check --json "$tmp/bad_state.json"
grep -qF '"ok": false' "$tmp/out" || fail "check --json of a bad file: $(cat "$tmp/out")"
status_is 1 policy render --policy "$tmp/bad_state.json"
[ ! -s "$tmp/out" ] || fail "render of a bad policy wrote to stdout"

printf '{"categories": [{"id": "O1"}, {"id": "O1"}]}' >"$tmp/dup.json"
status_is 1 policy check "$tmp/dup.json"
grep -qF 'categories[1].id: duplicate category id "O1"' "$tmp/err" || fail "dup: $(cat "$tmp/err")"
status_is 1 policy check "$tmp/missing.json"

# A custom category is accepted with a warning on stderr.
printf '{"categories": {"O10": {"name": "Gambling", "should_not": ["Promote gambling."], "can": []}}}' \
    >"$tmp/o10.json"
status_is 0 policy check "$tmp/o10.json"
grep -q "warning: category O10 is not part of the built-in v1.2 taxonomy" "$tmp/err" ||
    fail "no warning for O10: $(cat "$tmp/err")"

# Every ```json example of docs/policy-format.md is a valid policy.
doc=$(dirname "$0")/../docs/policy-format.md
n_examples=0
while IFS= read -r -d '' example; do
    printf '%s' "$example" >"$tmp/example.json"
    status_is 0 policy check "$tmp/example.json"
    grep -q ": ok, policy sha256 " "$tmp/out" || fail "docs example: $(cat "$tmp/err") in: $example"
    n_examples=$((n_examples + 1))
done < <(/usr/bin/python3 -c '
import re, sys
for m in re.finditer(r"```json\n(.*?)```", open(sys.argv[1]).read(), re.S):
    sys.stdout.write(m.group(1) + "\0")' "$doc")
[ "$n_examples" -ge 4 ] || fail "expected at least 4 JSON examples in $doc, found $n_examples"

# ---- show ----
status_is 0 policy show --allow O3 --sensitive O6
grep -Eq '^  O3 +non-violating +Sexual Content$' "$tmp/out" || fail "show: $(cat "$tmp/out")"
grep -Eq '^  O6 +sensitive +Weapons or Substance Abuse$' "$tmp/out" || fail "show O6"
grep -q "^sha256:  " "$tmp/out" || fail "show: no sha256"
status_is 0 policy show --json --version v1.0
/usr/bin/python3 - "$tmp/out" <<'PY' || fail "show --json is not the expected JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["base"] == "v1.0", d["base"]
assert [c["id"] for c in d["categories"]] == ["O%d" % i for i in range(1, 10)]
assert d["categories"][2]["option"] == "O3: Sexual Content"
assert all(c["state"] == "default" for c in d["categories"])
assert d["warnings"] == [] and len(d["sha256"]) == 64
PY

# ---- usage errors and help ----
status_is 2 policy
status_is 2 policy frobnicate
status_is 2 policy render --allow O12
grep -q "unknown category 'O12'" "$tmp/err" || fail "--allow O12: $(cat "$tmp/err")"
status_is 2 policy render --allow O3 --sensitive O3
status_is 2 policy render --version v9
status_is 2 policy render --bogus
status_is 2 policy render --policy
status_is 2 policy show --raw
status_is 2 policy render --json
status_is 2 policy render --raw --user-turn
status_is 2 policy render --version v1.0 --policy "$tmp/o3.json"
status_is 2 policy show extra
for sub in "" show check render; do
    status_is 0 policy $sub --help
    grep -q "^Usage: llavaguard policy" "$tmp/out" || fail "policy $sub --help: no usage"
done

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "cli_policy: all checks passed"
