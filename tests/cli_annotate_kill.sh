#!/usr/bin/env bash
# cli_annotate_kill.sh — `llavaguard annotate` is crash-safe: SIGKILLed at >= 10 seeded random
# moments and rerun each time, its final table equals an uninterrupted run's; SIGTERM and SIGINT
# stop it cleanly (143, 130) with the rows done committed (tests/annotate/kill_loop.py).
# $1 = the llavaguard binary, $2 = the fixtures dir.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$(dirname "$0")/annotate/kill_loop.py" "$1" "$2" "$tmp"
