#!/usr/bin/env bash
# cli_serve.sh LLAVAGUARD FIXTURES — `llavaguard serve` over real HTTP on loopback: every
# endpoint, each bad-input class, auth, config reload, audit log, 503/504, SIGTERM drain
# (tests/serve/check_http.py), after the usage errors of the command itself.
set -euo pipefail
bin=$1
fix=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect() { # expect CODE ARGS...: runs llavaguard serve ARGS, wants exit status CODE
  local want=$1 rc=0
  shift
  "$bin" serve "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "serve $*: exit $rc, want $want"
    cat "$tmp/err"
    exit 1
  fi
}
expect 2
grep -q "missing --model" "$tmp/err"
expect 2 --model "$fix/llava-ov-tiny" --port 99999
expect 2 --model "$fix/llava-ov-tiny" --host not-an-address --port 0
expect 0 --help
grep -q "/v1/moderations" "$tmp/out"
echo '{"threshold": "high"}' >"$tmp/bad.json"
expect 1 --model "$fix/llava-ov-tiny" --port 0 --config "$tmp/bad.json"
grep -q "threshold" "$tmp/err"
expect 1 --model "$fix/llava-ov-tiny" --port 0 --token-file "$tmp/none"
expect 1 --model "$tmp/no-model" --port 0
exec /usr/bin/python3 "$(dirname "$0")/serve/check_http.py" "$bin" "$fix"
