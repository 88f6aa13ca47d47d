#!/usr/bin/env bash
# cli_eval.sh BIN FIXTURES — `llavaguard eval --predictions`: hand-made metric cases (zero
# denominators -> null), seeded random sets cross-checked against scikit-learn, JSONL and SQLite
# predictions giving the same figures, CSV labels, bad inputs (tests/eval/check_metrics.py).
set -euo pipefail
BIN=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 "$(dirname "$0")/eval/check_metrics.py" "$BIN" "$T"
