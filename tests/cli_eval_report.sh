#!/usr/bin/env bash
# cli_eval_report.sh BIN FIXTURES — `eval --out`: the HTML report holds each plot's SVG (radar,
# ROC, PR, reliability, confusion) and the metrics table, references nothing external, opens in
# headless Chromium without console errors; the screenshot is kept in test-artifacts/ beside BIN.
set -euo pipefail
BIN=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat > "$T/l.jsonl" <<'J'
{"id":"a","rating":"Unsafe","category":"O1"}
{"id":"b","rating":"Unsafe","category":"O3"}
{"id":"c","rating":"Safe","category":"NA"}
{"id":"d","rating":"Safe","category":"O2"}
{"id":"e","rating":"Unsafe","category":"O2"}
J
cat > "$T/p.jsonl" <<'J'
{"id":"a","rating":"Unsafe","category":"O1: x","p_unsafe":0.9}
{"id":"b","rating":"Safe","category":"NA: None applying","p_unsafe":0.4}
{"id":"c","rating":"Safe","category":"NA: None applying","p_unsafe":0.1}
{"id":"d","rating":"Unsafe","category":"O2: y","p_unsafe":0.7}
{"id":"e","rating":"Unsafe","category":"O2: y","p_unsafe":0.8}
J
"$BIN" eval --labels "$T/l.jsonl" --predictions "$T/p.jsonl" --out "$T/r.html" -q
for id in radar roc pr reliability confusion; do
  grep -q "<svg id='$id'" "$T/r.html" || { echo "missing svg $id"; exit 1; }
done
grep -q "<polygon class='values'" "$T/r.html" || { echo "radar has no values"; exit 1; }
grep -q "<polyline class='curve'" "$T/r.html" || { echo "no curve"; exit 1; }
[ "$(grep -c "<rect class='cell'" "$T/r.html")" -ge 1 ] || { echo "no heat map cells"; exit 1; }
grep -q "<table id='metrics'" "$T/r.html" || { echo "no metrics table"; exit 1; }
if grep -Eq "(src|href)=['\"]?(https?:|//)|<script" "$T/r.html"; then echo "external asset"; exit 1; fi
CH=$(command -v chromium || true)
[ -n "$CH" ] || { echo "chromium missing"; exit 1; }
ART=$(dirname "$BIN")/test-artifacts
mkdir -p "$ART"
timeout 60 "$CH" --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
  --user-data-dir="$T/prof" --window-size=1300,1500 --screenshot="$ART/eval-report.png" \
  "file://$T/r.html" 2> "$T/log" || { cat "$T/log"; exit 1; }
if grep -i "CONSOLE" "$T/log" | grep -qi "error"; then grep -i console "$T/log"; exit 1; fi
[ -s "$ART/eval-report.png" ] || { echo "no screenshot"; exit 1; }
timeout 60 "$CH" --headless --no-sandbox --disable-gpu --user-data-dir="$T/prof2" --dump-dom \
  "file://$T/r.html" 2>/dev/null > "$T/dom.html"
[ "$(grep -o '<svg id=' "$T/dom.html" | wc -l)" -eq 5 ] || { echo "DOM lacks the 5 plots"; exit 1; }
echo "report ok: $ART/eval-report.png"
