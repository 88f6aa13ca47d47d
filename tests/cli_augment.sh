#!/usr/bin/env bash
# cli_augment.sh BIN FIXTURES — `llavaguard augment`: counts, ids, labels, answers and prompts per
# strategy (prompts byte-equal to `policy render --user-turn`), same seed -> same bytes
# (tests/eval/check_augment.py).
set -euo pipefail
BIN=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 "$(dirname "$0")/eval/check_augment.py" "$BIN" "$T"
