#!/usr/bin/env bash
# bench_annotate.sh [LLAVAGUARD] [MODEL] [IMAGES_DIR] [N] — annotate's throughput (by hand, never in
# CTest): judges the same N images (the first N files of IMAGES_DIR, copied round-robin when it
# has fewer) twice per rationale mode (always, never):
#   one by one   llavaguard assess --batch 1 (one process, one image at a time), and
#   annotate     llavaguard annotate --batch $LG_BATCH (default 8) into a fresh SQLite file,
# and prints one JSON line per run (images/s, wall seconds, peak RSS from GNU time) and the
# ratio annotate / one-by-one per mode, after the CPU name and thread count.
# Environment: LG_BATCH (8), LG_THREADS (all cores), LG_MAX_RATIONALE (64: the cap on the
# rationale, so that a random-weight model's endless rationale does not decide the figure),
# LG_MODES ("always never").
set -euo pipefail
bin=${1:-build/llavaguard}
model=${2:-../shared/fixtures/llava-ov-tiny}
imgs=${3:-../shared/fixtures/images}
n=${4:-16}
batch=${LG_BATCH:-8}
threads=${LG_THREADS:-$(nproc)}
maxr=${LG_MAX_RATIONALE:-64}
[ -x /usr/bin/time ] || { echo "bench_annotate: needs GNU time (apt-get install time)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/in"
mapfile -t files < <(find "$imgs" -maxdepth 1 -type f | sort)
[ ${#files[@]} -gt 0 ] || { echo "bench_annotate: no files in $imgs" >&2; exit 2; }
for i in $(seq 0 $((n - 1))); do
  f=${files[$((i % ${#files[@]}))]}
  cp "$f" "$tmp/in/$(printf %05d "$i").${f##*.}"
done
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo "{\"cpu\":\"$cpu\",\"threads\":$threads,\"images\":$n,\"batch\":$batch,\"model\":\"$model\"}"

run() { # label mode command... -> prints the JSON line, sets $ips
  local label=$1 mode=$2
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M %U %S" -o "$tmp/rss" "$@" >/dev/null 2>"$tmp/err" || {
    local rc=$?
    # annotate exits 4 when some inputs are error rows: still a finished run
    [ "$rc" -eq 4 ] || { echo "bench_annotate: $label failed ($rc): $(tail -c 400 "$tmp/err")" >&2; exit 1; }
  }
  t1=$(date +%s.%N)
  ips=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", n / (b - a)}')
  read -r rss ut st < <(tail -1 "$tmp/rss")
  # cpu_s (user + system) tells work from waiting on a machine shared with other jobs
  printf '{"run":"%s","rationale":"%s","wall_s":%.2f,"cpu_s":%.2f,"images_per_s":%s,"peak_rss_mib":%d}\n' \
    "$label" "$mode" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
    "$(awk -v u="$ut" -v s="$st" 'BEGIN {print u + s}')" "$ips" $((rss / 1024))
}

for mode in ${LG_MODES:-always never}; do
  common=(--model "$model" --threads "$threads" --rationale "$mode" --max-rationale-tokens "$maxr")
  run one_by_one "$mode" "$bin" assess "${common[@]}" --batch 1 "$tmp"/in/*
  one=$ips
  rm -f "$tmp/out.sqlite"*
  run annotate "$mode" "$bin" annotate "${common[@]}" --batch "$batch" -q --out "$tmp/out.sqlite" "$tmp/in"
  awk -v m="$mode" -v a="$ips" -v b="$one" 'BEGIN {printf "{\"rationale\":\"%s\",\"annotate_over_one_by_one\":%.2f}\n", m, a / b}'
done
