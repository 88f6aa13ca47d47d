#!/usr/bin/env bash
# cli_serve.sh LLAVAGUARD FIXTURES — `llavaguard serve` over real HTTP on loopback: every
# endpoint, each bad-input class, auth, config reload, audit log, 503/504, SIGTERM drain
# (tests/serve/check_http.py), plus the usage errors of the command itself.
set -euo pipefail
bin=$1
fix=$2
out=$("$bin" serve 2>&1) && { echo "serve without --model must fail"; exit 1; }
[ $? -eq 2 ] || true
echo "$out" | grep -q "missing --model" || { echo "no usage message: $out"; exit 1; }
"$bin" serve --model "$fix/llava-ov-tiny" --port 99999 >/dev/null 2>&1 && exit 1
"$bin" serve --help | grep -q "/v1/moderations" || { echo "help"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '{"threshold": "high"}' >"$tmp/bad.json"
if "$bin" serve --model "$fix/llava-ov-tiny" --port 0 --config "$tmp/bad.json" 2>"$tmp/err"; then
  echo "a bad config must refuse to start"
  exit 1
fi
grep -q "threshold" "$tmp/err" || { cat "$tmp/err"; exit 1; }
exec /usr/bin/python3 "$(dirname "$0")/serve/check_http.py" "$bin" "$fix"
