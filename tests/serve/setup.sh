#!/usr/bin/env bash
# setup.sh DIR — installs the serve tests' npm packages (the official `openai` client and
# `playwright-core`, pinned to versions that run on Debian 12's node 18) into DIR/node_modules
# from the npm registry; quick when they are already there. Never committed.
set -euo pipefail
dir=$1
mkdir -p "$dir"
want="openai@4.95.0 playwright-core@1.49.1"
stamp="$dir/.installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$dir/node_modules/openai" ]; then
  exit 0
fi
[ -f "$dir/package.json" ] || echo '{"name":"llavaguard-serve-tests","private":true}' >"$dir/package.json"
# shellcheck disable=SC2086
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error $want >&2
echo "$want" >"$stamp"
