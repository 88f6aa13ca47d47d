#!/usr/bin/env bash
# run_node.sh LLAVAGUARD FIXTURES DIR — the serve tests that need node (CTest runs it only when
# node and npm are found): installs the npm packages into DIR (setup.sh), starts the server on
# a free loopback port, runs the official OpenAI client (openai_client.mjs) and, when Chromium is
# installed, the page test (page.mjs; screenshot DIR/serve-page.png); stops the server.
set -euo pipefail
bin=$1
fix=$2
dir=$(mkdir -p "$3" && cd "$3" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh" "$dir"
export LG_NODE_MODULES="$dir/node_modules"
rm -f "$dir/port"
"$bin" serve --model "$fix/llava-ov-tiny" --port 0 --port-file "$dir/port" --threads 1 \
  --log "$dir/serve.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
node "$here/openai_client.mjs" "$port" "$fix"
if [ -x "${LG_CHROMIUM:-/usr/bin/chromium}" ]; then
  node "$here/page.mjs" "$port" "$fix" "$dir"
else
  echo "page test skipped: no /usr/bin/chromium"
fi
kill -TERM $pid
wait $pid
trap - EXIT
