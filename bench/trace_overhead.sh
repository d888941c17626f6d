#!/usr/bin/env bash
# What tracing costs a traced command: `docker run --rm --network none probe-test:latest true`
# timed with and without a `probe trace` session active (all default tracepoints, sched_switch
# and page faults, rings copied out every 250 ms, decoded after), alternating within one run so background noise
# hits both alike. The tracer starts before and stops after each traced rep, outside the
# timing. Target: traced/untraced median ≤ 1.05×.
# Usage: sudo bench/trace_overhead.sh [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-15}
PROBE=${PROBE:-target/release/probe}
[ -x "$PROBE" ] || cargo build --release --quiet
RUN=(docker run --rm --network none probe-test:latest true)
tmp=$(mktemp -d)
tracer=
cleanup() { [ -n "$tracer" ] && kill -INT "$tracer" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
time_run() { local t0 t1; t0=$(date +%s%N); "${RUN[@]}" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }
traced_run() {
    "$PROBE" trace -- sleep 600 >/dev/null 2>&1 &
    tracer=$!
    sleep 1 # the session is open well before this
    time_run >>"$tmp/traced"
    kill -INT "$tracer"; wait "$tracer" || true; tracer=
}
"${RUN[@]}" >/dev/null # warm caches for both sides
for i in $(seq 1 "$PAIRS"); do
    if (( i % 2 )); then time_run >>"$tmp/plain"; traced_run; else traced_run; time_run >>"$tmp/plain"; fi
done
/usr/bin/python3 - "$tmp" <<'PY'
import statistics, sys
d = sys.argv[1]
plain = [int(x) / 1e3 for x in open(f"{d}/plain")]
traced = [int(x) / 1e3 for x in open(f"{d}/traced")]
p, t = statistics.median(plain), statistics.median(traced)
print(f"untraced median {p:.1f} ms ({len(plain)} runs), traced median {t:.1f} ms ({len(traced)} runs)")
print(f"traced/untraced: {t / p:.3f}× (target ≤ 1.05×)")
PY
