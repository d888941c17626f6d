#!/usr/bin/env bash
# 50 containers started at once while `probe trace` records probe's default events: the
# kernel must drop no record (a full ring is counted in PERF_RECORD_LOST and reported as
# `lost N`). Bar: lost 0. Exit status 1 if anything was lost or a container failed.
# Usage: sudo bench/trace_concurrent.sh [N] [ENGINE]   (defaults: 50 docker)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
ENGINE=${2:-docker}
PROBE=${PROBE:-target/release/probe}
[ -x "$PROBE" ] || cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Each container gets a name, so whatever survives a failure can be removed by name.
names=()
for i in $(seq 1 "$N"); do names+=("probe-bench-concurrent-$$-$i"); done
cleanup() { "$ENGINE" rm -f "${names[@]}" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
script='pids=(); for n in "$@"; do '"$ENGINE"' run --rm --network none --name "$n" probe-test:latest true & pids+=($!); done
fails=0; for p in "${pids[@]}"; do wait "$p" || fails=$((fails+1)); done; echo "$fails" > '"$tmp/fails"
t0=$(date +%s%N)
"$PROBE" trace -- bash -c "$script" bash "${names[@]}" >"$tmp/out" 2>"$tmp/err" || true
t1=$(date +%s%N)
summary=$(grep -E '^[0-9]+ events seen' "$tmp/err" || { cat "$tmp/err" >&2; exit 1; })
lost=$(sed -E 's/.*; lost ([0-9]+).*/\1/' <<<"$summary")
fails=$(cat "$tmp/fails")
echo "$N concurrent $ENGINE run --rm true under probe trace: $(( (t1 - t0) / 1000000 )) ms"
echo "$summary"
echo "containers that failed: $fails; records lost: $lost (bar: 0)"
[ "$lost" = 0 ] && [ "$fails" = 0 ]
