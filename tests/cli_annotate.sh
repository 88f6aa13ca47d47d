#!/usr/bin/env bash
# cli_annotate.sh — `llavaguard annotate`, `export`, `summary` and `merge` on the tiny fixture
# model: directory, list, stdin and WebDataset (.tar, .tar.gz, .tar.zst) inputs give one row per
# image with the verdicts `assess` gives, error rows for bad members; a rerun skips what is done;
# --shard 0/3..2/3 cover every key once and their merge equals one run; several policies; bad
# inputs (missing folder, foreign file, other policy, missing input, full disk) fail cleanly.
# $1 = the llavaguard binary, $2 = the fixtures dir.
set -u
bin=$1
fx=$2
model=$fx/llava-ov-tiny
here=$(cd "$(dirname "$0")" && pwd)
rows="/usr/bin/python3 $here/annotate/rows.py"
tmp=$(mktemp -d)
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0

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
    [ "$got" -eq "$want" ] || fail "llavaguard $* exited $got, want $want: $(head -c 400 "$tmp/err")"
}

# expect NAME WANT GOT
expect() {
    [ "$2" = "$3" ] || fail "$1: got '$3', want '$2'"
}

common=(--model "$model" --threads 2 --rationale never -q)
imgs=$fx/images

# ---- reference: assess on every fixture image ----
"$bin" assess --model "$model" --threads 2 --rationale never "$imgs"/*.* >"$tmp/assess.jsonl" ||
    fail "assess reference run"

# ---- a directory: one row per image, the verdicts of assess, keys relative to the root ----
status_is 0 annotate "${common[@]}" --batch 3 --out "$tmp/dir.sqlite" "$imgs"
expect "dir rows" 8 "$($rows count "$tmp/dir.sqlite")"
expect "dir rows = assess" 8 "$($rows assess "$tmp/dir.sqlite" "$tmp/assess.jsonl" 2>&1)"
expect "dir key" 1 "$($rows count "$tmp/dir.sqlite" "key = 'p02_rgb_640x480.jpg' AND width = 640 AND height = 480 AND rationale IS NULL AND error IS NULL")"
expect "runs" 1 "$(sqlite3 "$tmp/dir.sqlite" 'SELECT count(*) FROM runs WHERE ended IS NOT NULL AND model_hash IS NOT NULL AND json_array_length(policies) = 1')"
expect "wal" wal "$(sqlite3 "$tmp/dir.sqlite" 'PRAGMA journal_mode')"
# the model hash is sha256(config.json + each safetensors file's 8 bytes + header)
want_hash=$(/usr/bin/python3 - "$model" <<'PY'
import glob, hashlib, os, struct, sys
d = sys.argv[1]
h = hashlib.sha256(open(os.path.join(d, "config.json"), "rb").read())
for p in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
    with open(p, "rb") as f:
        head = f.read(8)
        h.update(head + f.read(struct.unpack("<Q", head)[0]))
print(h.hexdigest())
PY
)
expect "model hash" "$want_hash" "$(sqlite3 "$tmp/dir.sqlite" 'SELECT model_hash FROM runs')"

# a rerun skips every key and writes nothing new
sqlite3 "$tmp/dir.sqlite" 'SELECT key, time FROM results ORDER BY key' >"$tmp/before"
"$bin" annotate --model "$model" --threads 2 --rationale never --out "$tmp/dir.sqlite" "$imgs" \
    >/dev/null 2>"$tmp/err" || fail "rerun exited $?"
grep -q "0 judged, 8 already done" "$tmp/err" || fail "rerun did not skip: $(cat "$tmp/err")"
sqlite3 "$tmp/dir.sqlite" 'SELECT key, time FROM results ORDER BY key' >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || fail "rerun rewrote rows"

# ---- directory walking: non-images skipped, symlinks out of the tree not followed ----
mkdir -p "$tmp/tree/a/b" "$tmp/outside"
cp "$imgs/p05_rgb_tiny_50x37.png" "$tmp/tree/a/b/x.png"
cp "$imgs/p06_gray_320x240.png" "$tmp/outside/y.png"
echo "notes" >"$tmp/tree/readme.md"
: >"$tmp/tree/empty.jpg"
ln -s "$tmp/outside/y.png" "$tmp/tree/escape.png"
ln -s a/b/x.png "$tmp/tree/inside.png"
status_is 4 annotate "${common[@]}" --out "$tmp/tree.sqlite" "$tmp/tree"
expect "tree keys" "a/b/x.png empty.jpg inside.png" \
    "$(sqlite3 "$tmp/tree.sqlite" 'SELECT key FROM results ORDER BY key' | tr '\n' ' ' | sed 's/ $//')"
expect "empty file is an error row" 1 "$($rows count "$tmp/tree.sqlite" "key = 'empty.jpg' AND error LIKE '%empty file%' AND rating IS NULL")"

# ---- a list file and standard input: keys are the listed paths ----
printf '%s\n' "$imgs/p01_rgb_384x384.png" "$tmp/missing.png" "$imgs/p03_rgb_tall_300x900.png" \
    >"$tmp/list.txt"
status_is 4 annotate "${common[@]}" --out "$tmp/list.sqlite" "$tmp/list.txt"
expect "list rows" 3 "$($rows count "$tmp/list.sqlite")"
expect "missing list entry is an error row" 1 "$($rows count "$tmp/list.sqlite" "key = '$tmp/missing.png' AND error IS NOT NULL")"
expect "list = assess" 2 "$($rows assess "$tmp/list.sqlite" "$tmp/assess.jsonl" 2>&1)"
printf '%s\n' "$imgs/p07_rgba_400x300.png" | "$bin" annotate "${common[@]}" \
    --out "$tmp/stdin.sqlite" - 2>"$tmp/err" || fail "stdin list: $(cat "$tmp/err")"
expect "stdin rows" 1 "$($rows count "$tmp/stdin.sqlite" "key = '$imgs/p07_rgba_400x300.png' AND error IS NULL")"

# ---- WebDataset shards ----
mkdir "$tmp/shards"
/usr/bin/python3 "$here/annotate/make_shards.py" "$tmp/shards" "$imgs" || fail "make_shards"
status_is 4 annotate "${common[@]}" --batch 4 --out "$tmp/wds.sqlite" "$tmp/shards"
keys=$(sqlite3 "$tmp/wds.sqlite" 'SELECT key FROM results ORDER BY key' | tr '\n' ' ')
want_keys="broken broken/a broken/b broken/c good/../evil good/000000 good/000001 good/000004 good/sub/000002 more/a more/b "
command -v zstd >/dev/null && want_keys="broken broken/a broken/b broken/c good/../evil good/000000 good/000001 good/000004 good/sub/000002 more/a more/b more2/c "
expect "shard keys" "$want_keys" "$keys"
n_ok=7
command -v zstd >/dev/null && n_ok=8
expect "shard verdicts = assess" $n_ok "$($rows assess "$tmp/wds.sqlite" "$tmp/assess.jsonl" 2>&1)"
expect "meta copied" 1 "$($rows count "$tmp/wds.sqlite" "key = 'good/000000' AND json_extract(meta, '\$.caption') = 'zero'")"
expect "corrupt member" 1 "$($rows count "$tmp/wds.sqlite" "key = 'good/000004' AND error IS NOT NULL AND rating IS NULL")"
expect "unsafe member path" 1 "$($rows count "$tmp/wds.sqlite" "key = 'good/../evil' AND error LIKE '%unsafe member path%'")"
expect "corrupt archive" 1 "$($rows count "$tmp/wds.sqlite" "key = 'broken' AND error LIKE '%corrupt archive%'")"
expect "no row for a sample without image" 0 "$($rows count "$tmp/wds.sqlite" "key = 'good/000003'")"
# an oversized member becomes an error row
status_is 4 annotate "${common[@]}" --max-image-bytes 20000 --out "$tmp/big.sqlite" "$tmp/shards/good.tar"
expect "oversized member" 1 "$($rows count "$tmp/big.sqlite" "key = 'good/000000' AND error LIKE '%over the limit%'")"

# ---- export and summary ----
status_is 0 export "$tmp/wds.sqlite" --rating Unsafe
n_unsafe=$($rows count "$tmp/wds.sqlite" "rating = 'Unsafe'")
expect "export --rating Unsafe" "$n_unsafe" "$(wc -l <"$tmp/out" | tr -d ' ')"
/usr/bin/python3 -c "
import json, sys
for l in open('$tmp/out'):
    r = json.loads(l)
    assert r['rating'] == 'Unsafe' and isinstance(r['category_probs'], dict), r
" || fail "export jsonl records"
status_is 0 export "$tmp/wds.sqlite" --category NA --min-p-unsafe 0.5 -f csv
/usr/bin/python3 -c "
import csv
rs = list(csv.DictReader(open('$tmp/out', newline='')))
assert rs and all(r['category'].startswith('NA:') and float(r['p_unsafe']) >= 0.5 for r in rs), rs
" || fail "export csv filters"
status_is 0 export "$tmp/wds.sqlite" --errors
expect "export --errors" 4 "$(wc -l <"$tmp/out" | tr -d ' ')"
status_is 0 summary "$tmp/wds.sqlite"
grep -q "Unsafe *$n_unsafe" "$tmp/out" || fail "summary Unsafe count: $(cat "$tmp/out")"
status_is 0 summary --json "$tmp/wds.sqlite"
/usr/bin/python3 -c "
import json; s = json.load(open('$tmp/out'))[0]
assert s['error_images'] == 4 and s['ratings']['Unsafe'] == $n_unsafe, s
" || fail "summary --json"

# ---- --shard K/N: disjoint, covering; merge equals one run ----
for k in 0 1 2; do
    status_is 0 annotate "${common[@]}" --shard $k/3 --out "$tmp/part$k.sqlite" "$imgs"
done
total=0
for k in 0 1 2; do total=$((total + $($rows count "$tmp/part$k.sqlite"))); done
expect "shards cover every key once" 8 "$total"
status_is 0 merge "$tmp/merged.sqlite" "$tmp/part0.sqlite" "$tmp/part1.sqlite" "$tmp/part2.sqlite"
expect "merge = one run" 8 "$($rows equal "$tmp/merged.sqlite" "$tmp/dir.sqlite" 2>&1)"
expect "merge: one run" 1 "$(sqlite3 "$tmp/merged.sqlite" 'SELECT count(*) FROM runs')"
# merging the same part again adds nothing
status_is 0 merge "$tmp/merged.sqlite" "$tmp/part1.sqlite"
expect "merge idempotent" 8 "$($rows count "$tmp/merged.sqlite")"

# ---- several policies: a row per policy, each equal to annotating with it alone ----
echo '{"base": "v1.2", "categories": {"O3": {"state": "non-violating"}}}' >"$tmp/allow3.json"
status_is 0 annotate "${common[@]}" --policy default --policy "$tmp/allow3.json" \
    --out "$tmp/two.sqlite" "$imgs/p02_rgb_640x480.jpg" "$imgs/p06_gray_320x240.png"
expect "two policies" 4 "$($rows count "$tmp/two.sqlite")"
expect "two policies: distinct" 2 "$(sqlite3 "$tmp/two.sqlite" 'SELECT count(DISTINCT policy_sha256) FROM results')"
status_is 0 annotate "${common[@]}" --policy "$tmp/allow3.json" --out "$tmp/one.sqlite" \
    "$imgs/p02_rgb_640x480.jpg" "$imgs/p06_gray_320x240.png"
sha3=$(sqlite3 "$tmp/one.sqlite" 'SELECT DISTINCT policy_sha256 FROM results')
q="SELECT key, rating, category, printf('%.12f', p_unsafe) FROM results WHERE policy_sha256 = '$sha3' ORDER BY key"
sqlite3 "$tmp/one.sqlite" "$q" >"$tmp/one.txt"
sqlite3 "$tmp/two.sqlite" "$q" >"$tmp/two.txt"
[ -s "$tmp/one.txt" ] || fail "no rows for the O3-allowed policy"
cmp -s "$tmp/one.txt" "$tmp/two.txt" || fail "a policy among two differs from it alone: $(diff "$tmp/one.txt" "$tmp/two.txt")"

# ---- bad inputs: a clear message, nothing half-written ----
status_is 1 annotate "${common[@]}" --out "$tmp/no/such/dir/r.sqlite" "$imgs"
grep -q "does not exist" "$tmp/err" || fail "missing output folder message: $(cat "$tmp/err")"
status_is 1 annotate "${common[@]}" --out "$tmp/x.sqlite" "$tmp/no-such-input"
[ -e "$tmp/x.sqlite" ] && fail "a missing input left an output file"
sqlite3 "$tmp/foreign.sqlite" 'CREATE TABLE t(a); INSERT INTO t VALUES (1);'
cp "$tmp/foreign.sqlite" "$tmp/foreign.orig"
status_is 1 annotate "${common[@]}" --out "$tmp/foreign.sqlite" "$imgs"
grep -q "not a llavaguard results file" "$tmp/err" || fail "foreign sqlite message: $(cat "$tmp/err")"
cmp -s "$tmp/foreign.sqlite" "$tmp/foreign.orig" || fail "the foreign file was modified"
printf 'hello, not a database at all, just some text that is long enough...%.0s' {1..20} \
    >"$tmp/text.sqlite"
status_is 1 annotate "${common[@]}" --out "$tmp/text.sqlite" "$imgs"
status_is 1 export "$tmp/text.sqlite"
# another policy on an existing file: refused, then side by side with --new-run
status_is 1 annotate "${common[@]}" --allow O3 --out "$tmp/list.sqlite" "$imgs/p01_rgb_384x384.png"
grep -q "new-run" "$tmp/err" || fail "policy mismatch message: $(cat "$tmp/err")"
status_is 0 annotate "${common[@]}" --allow O3 --new-run --out "$tmp/list.sqlite" \
    "$imgs/p01_rgb_384x384.png"
expect "--new-run: two runs" 2 "$(sqlite3 "$tmp/list.sqlite" 'SELECT count(*) FROM runs')"
expect "--new-run rows" 1 "$($rows count "$tmp/list.sqlite" 'run_id = 2')"
status_is 1 merge "$tmp/merged.sqlite" "$tmp/list.sqlite"
grep -q "allow-different" "$tmp/err" || fail "merge mismatch message: $(cat "$tmp/err")"
# a full disk (a file size limit): exit 1, the file stays a valid database with whole rows only
cp "$tmp/part0.sqlite" "$tmp/full.sqlite"
(
    ulimit -f 64
    "$bin" annotate "${common[@]}" --batch 1 --out "$tmp/full.sqlite" "$imgs" "$tmp/shards" \
        >/dev/null 2>"$tmp/err"
    echo $? >"$tmp/rc"
)
expect "full disk exit" 1 "$(cat "$tmp/rc")"
grep -qi "disk full\|file size\|disk I/O" "$tmp/err" || fail "full disk message: $(cat "$tmp/err")"
expect "full disk: valid file" ok "$($rows integrity "$tmp/full.sqlite" 2>&1)"
# usage errors
status_is 2 annotate --model "$model" "$imgs"
status_is 2 annotate "${common[@]}" --out "$tmp/u.sqlite" --shard 3/3 "$imgs"
status_is 2 annotate "${common[@]}" --out "$tmp/u.sqlite" --batch 0 "$imgs"
status_is 2 export
status_is 0 annotate --help
grep -q "RESULTS.sqlite" "$tmp/out" || fail "annotate --help"

[ "$failures" -eq 0 ] || {
    echo "$failures failure(s)" >&2
    exit 1
}
echo "cli_annotate: ok"
