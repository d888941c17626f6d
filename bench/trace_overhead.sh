#!/usr/bin/env bash
# What tracing costs a traced command: `docker run --rm --network none probe-test:latest true`
# timed with and without a `probe trace` session active (probe's default events: tracepoints,
# sched_switch, page faults sampled 1 in 16; rings copied out every 250 ms, decoded after),
# alternating within one run so background noise hits both alike.
#
# Runs come in blocks of BLOCK, traced and untraced blocks alternating. Both sides are paced
# the same way: a background process is started (the tracer, or a plain `sleep` for the
# untraced side), then 0.5 s of quiet, then the block's runs with 0.2 s between them, then the
# process is stopped. Without the same pacing, one side would start after an idle pause more
# often, and on a VM an idle vCPU alone makes the next run a few percent slower.
#
# Prints both medians, their ratio and a bootstrap 95% interval of the ratio (resampling
# both sides), so one can see whether a miss is the tracer or the noise.
# Target: traced/untraced median ≤ 1.05×; exit status 1 on a miss.
# Usage: sudo [TARGET=RATIO] [MODE=stacks] bench/trace_overhead.sh [BLOCKS] [EVENTS]
#   BLOCKS: traced/untraced block pairs (default 16, of BLOCK=5 runs each: 80 runs a side).
#   EVENTS: a `probe trace --events` list instead of the defaults (to cost one event class).
#   MODE=stacks: what --kernel-stacks adds: both sides under `probe trace --critical-path`,
#   the measured side with --kernel-stacks too (a call chain unwound at every switch-out).
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-16}
BLOCK=${BLOCK:-5}
EVENTS=${2:-}
TARGET=${TARGET:-1.05}
PROBE=${PROBE:-target/release/probe}
MODE=${MODE:-tracer}
[ -x "$PROBE" ] || cargo build --release --quiet
# The tracer each side runs during its block (none: a plain `sleep`), and how the two are named.
case "$MODE" in
    tracer) BASE=(); MEASURED=("$PROBE" trace ${EVENTS:+--events "$EVENTS"}); NAMES="untraced traced" ;;
    stacks) BASE=("$PROBE" trace --critical-path); MEASURED=("${BASE[@]}" --kernel-stacks); NAMES="critical-path critical-path+stacks" ;;
    *) echo "MODE=$MODE: not tracer or stacks" >&2; exit 2 ;;
esac
RUN=(docker run --rm --network none probe-test:latest true)
tmp=$(mktemp -d)
bg=
cleanup() { [ -n "$bg" ] && kill "$bg" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
time_run() { local t0 t1; t0=$(date +%s%N); "${RUN[@]}" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }
# $1: traced (the MEASURED side) or plain (BASE). A tracer takes SIGINT (it then reports and
# exits); `sleep` in a non-interactive shell's background ignores SIGINT, so it gets SIGTERM.
paced_block() {
    local -n side=$([ "$1" = traced ] && echo MEASURED || echo BASE)
    if [ ${#side[@]} -gt 0 ]; then
        "${side[@]}" -- sleep 600 >/dev/null 2>&1 &
    else
        sleep 600 &
    fi
    local tracer=${#side[@]}
    bg=$!
    sleep 0.5 # the session is open well before this (it takes ~20 ms)
    for _ in $(seq 1 "$BLOCK"); do
        time_run >>"$tmp/$1"
        sleep 0.2
    done
    if [ "$tracer" -gt 0 ]; then kill -INT "$bg"; else kill "$bg"; fi
    wait "$bg" || true
    bg=
}
"${RUN[@]}" >/dev/null # warm caches for both sides
for i in $(seq 1 "$PAIRS"); do
    if (( i % 2 )); then paced_block plain; paced_block traced; else paced_block traced; paced_block plain; fi
    printf '\rblock pair %d/%d' "$i" "$PAIRS" >&2
done
echo >&2
/usr/bin/python3 - "$tmp" "${EVENTS:-probe defaults}" "$TARGET" $NAMES <<'PY'
import random, statistics, sys
d, events, target, base, measured = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
plain = [int(x) / 1e3 for x in open(f"{d}/plain")]
traced = [int(x) / 1e3 for x in open(f"{d}/traced")]
p, t = statistics.median(plain), statistics.median(traced)
rng = random.Random(1)
boot = sorted(
    statistics.median(rng.choices(traced, k=len(traced))) / statistics.median(rng.choices(plain, k=len(plain)))
    for _ in range(2000)
)
lo, hi = boot[len(boot) * 25 // 1000], boot[len(boot) * 975 // 1000]
print(f"events: {events}" if base == "untraced" else f"{base} vs {measured}")
print(f"{base} median {p:.1f} ms ({len(plain)} runs), {measured} median {t:.1f} ms ({len(traced)} runs)")
ok = t / p <= target
print(f"{measured}/{base}: {t / p:.3f}× (95% interval {lo:.3f}–{hi:.3f}×; target ≤ {target:g}×): {'OK' if ok else 'OUT OF TARGET'}")
sys.exit(0 if ok else 1)
PY
