#!/usr/bin/env bash
# serve_load.sh [LLAVAGUARD] [FIXTURES] — the load test of `llavaguard serve` (by hand, never in
# CTest): for max_batch 8 and 1, starts the server on a free loopback port with the tiny fixture
# model, runs wrk (bench/serve_load.lua: POST /v1/assess with one image, rationale never) at 32
# connections for $LG_SECONDS (default 60) seconds, samples the server's RSS every second, and
# prints one JSON line per run: requests/s, p50/p90/p99 latency, statuses, peak RSS, the
# engine's mean batch. Environment: LG_SECONDS, LG_CONNS (32), LG_IMAGE, LG_BATCHES ("8 1"),
# LG_QUEUE (max queue, 64), LG_RATIONALE (never).
set -euo pipefail
bin=${1:-build/llavaguard}
fix=${2:-../shared/fixtures}
secs=${LG_SECONDS:-60}
conns=${LG_CONNS:-32}
img=${LG_IMAGE:-$fix/images/p05_rgb_tiny_50x37.png}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '{"image":"%s","rationale":"%s"}' "$(base64 -w0 "$img")" "${LG_RATIONALE:-never}" >"$tmp/body.json"
for mb in ${LG_BATCHES:-8 1}; do
  rm -f "$tmp/port"
  "$bin" serve --model "$fix/llava-ov-tiny" --port 0 --port-file "$tmp/port" --max-batch "$mb" \
    --max-queue "${LG_QUEUE:-64}" --log "$tmp/log" &
  pid=$!
  for _ in $(seq 300); do [ -s "$tmp/port" ] && break; sleep 0.05; done
  port=$(cat "$tmp/port")
  peak=0
  (while kill -0 $pid 2>/dev/null; do
     awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null
     sleep 1
   done) >"$tmp/rss" &
  sampler=$!
  out=$(LG_BODY="$tmp/body.json" wrk -t2 -c"$conns" -d"${secs}s" --timeout 120s \
    -s "$here/serve_load.lua" "http://127.0.0.1:$port" | grep '^{"requests"')
  mean=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^llavaguard_batch_size_mean/ {print $2}')
  kill -TERM $pid
  wait $pid || echo "server exit status $?" >&2
  kill $sampler 2>/dev/null || true
  wait $sampler 2>/dev/null || true
  peak=$(sort -n "$tmp/rss" | tail -1)
  echo "{\"max_batch\":$mb,\"connections\":$conns,\"peak_rss_mib\":$((peak / 1024)),\"mean_batch\":${mean:-0},\"wrk\":$out}"
done
