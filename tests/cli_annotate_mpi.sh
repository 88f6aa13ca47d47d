#!/usr/bin/env bash
# cli_annotate_mpi.sh — `mpirun -n 3 llavaguard annotate --mpi` (rank 0 hands out chunks, ranks 1
# and 2 judge, rank 0 merges their files) gives the same table as one process; an interrupted
# run's rank files are folded in by the rerun. Skipped (exit 77) only when the build has no MPI.
# $1 = the llavaguard binary, $2 = the fixtures dir.
set -u
bin=$1
fx=$2
here=$(cd "$(dirname "$0")" && pwd)
rows="/usr/bin/python3 $here/annotate/rows.py"
if "$bin" annotate --help | grep -q "\[not built in\]"; then
    echo "SKIP: this llavaguard was built without MPI (libopenmpi-dev not found by CMake)"
    exit 77
fi
command -v mpirun >/dev/null || { echo "FAIL: MPI support built but no mpirun" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
mkdir "$tmp/shards"
/usr/bin/python3 "$here/annotate/make_shards.py" "$tmp/shards" "$fx/images" || fail "make_shards"
inputs=("$fx/images" "$tmp/shards/good.tar" "$tmp/shards/more.tar.gz")
common=(--model "$fx/llava-ov-tiny" --threads 1 --rationale never -q)
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# leak reports from inside Open MPI are not ours
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0

"$bin" annotate "${common[@]}" --out "$tmp/one.sqlite" "${inputs[@]}"
[ $? -eq 4 ] || fail "single-process run"
mpirun --allow-run-as-root --oversubscribe -n 3 "$bin" annotate --mpi --mpi-chunk 2 "${common[@]}" \
    --out "$tmp/mpi.sqlite" "${inputs[@]}" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 4 ] || fail "mpirun exited $rc: $(tail -c 600 "$tmp/out")"
n=$($rows equal "$tmp/mpi.sqlite" "$tmp/one.sqlite" 2>&1) || fail "mpi != single: $n"
[ "$n" = 15 ] || fail "mpi rows: $n"
ls "$tmp"/mpi.sqlite.rank-* >/dev/null 2>&1 && fail "rank files left behind"
[ "$(sqlite3 "$tmp/mpi.sqlite" 'SELECT count(*) FROM runs')" = 1 ] || fail "mpi: runs"

# a rank file left by an interrupted run is merged by the rerun, which then skips its keys
"$bin" annotate "${common[@]}" --mpi 2>/dev/null
"$bin" annotate "${common[@]}" --shard 0/2 --out "$tmp/left.sqlite" "${inputs[@]}" >/dev/null 2>&1
cp "$tmp/left.sqlite" "$tmp/mpi2.sqlite.rank-1"
mpirun --allow-run-as-root --oversubscribe -n 3 "$bin" annotate --mpi --mpi-chunk 3 "${common[@]}" \
    --out "$tmp/mpi2.sqlite" "${inputs[@]}" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 4 ] || fail "mpirun (resume) exited $rc: $(tail -c 600 "$tmp/out")"
n=$($rows equal "$tmp/mpi2.sqlite" "$tmp/one.sqlite" 2>&1) || fail "mpi resume != single: $n"

[ "$failures" -eq 0 ] || exit 1
echo "cli_annotate_mpi: ok"
