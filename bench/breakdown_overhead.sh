#!/usr/bin/env bash
# What `--breakdown` costs native's own numbers when engines are traced in the same run:
# `probe startup --runtimes native,docker` with and without --breakdown, alternating, in one
# run; compares native's median. With --breakdown native also reads its phase counters, and
# the tracer records docker's reps (paused during native's, its decoded events freed).
# Target: native median with/without ≤ 1.10×; exit status 1 on a miss.
# Usage: sudo [TARGET=RATIO] bench/breakdown_overhead.sh [ROUNDS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
REPS=${2:-15}
TARGET=${TARGET:-1.10}
PROBE=${PROBE:-target/release/probe}
[ -x "$PROBE" ] || cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
native_median() {
    "$PROBE" startup --runtimes native,docker --reps "$REPS" --quiet --format json --results "$tmp/res" "$@" -- true 2>/dev/null |
        /usr/bin/python3 -c 'import json, statistics, sys
r = next(r for r in json.load(sys.stdin)["report"]["results"] if r["runtime"] == "native")
print(statistics.median(s["wall_ns"] / 1e6 for s in r["samples"]))'
}
for i in $(seq 1 "$ROUNDS"); do
    if (( i % 2 )); then native_median >>"$tmp/plain"; native_median --breakdown >>"$tmp/breakdown"
    else native_median --breakdown >>"$tmp/breakdown"; native_median >>"$tmp/plain"; fi
    printf '\rround %d/%d' "$i" "$ROUNDS" >&2
done
echo >&2
/usr/bin/python3 - "$tmp" "$TARGET" <<'PY'
import statistics, sys
d, target = sys.argv[1], float(sys.argv[2])
p = statistics.median(float(x) for x in open(f"{d}/plain"))
b = statistics.median(float(x) for x in open(f"{d}/breakdown"))
print(f"native median beside docker: {p:.3f} ms plain, {b:.3f} ms with --breakdown")
ok = b / p <= target
print(f"with/without --breakdown: {b / p:.3f}× (target ≤ {target:g}×): {'OK' if ok else 'OUT OF TARGET'}")
sys.exit(0 if ok else 1)
PY
