#!/usr/bin/env bash
# probe trace's memory on a long trace of a busy host: `probe trace -- sleep SECONDS` while a
# loop starts containers back to back (`docker run --rm --network none probe-test:latest
# true`), once for SHORT and once for LONG seconds. The tracer reduces records as it drains
# them and keeps only what the traced command's analysis needs, so its peak RSS must not
# follow the trace's length or the machine's activity.
#
# Prints, per length: containers started meanwhile, events seen, records lost, probe's peak
# RSS (/usr/bin/time -v); then the LONG/SHORT ratio of the peaks.
# Targets: peak RSS ≤ 200 MB and 0 records lost in both; LONG/SHORT peak < 2×. Exits 1 on a miss.
# Usage: sudo bench/trace_memory.sh [SHORT] [LONG]   (seconds; default 60 600, ~11 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
SHORT=${1:-60}
LONG=${2:-600}
PROBE=${PROBE:-target/release/probe}
[ -x "$PROBE" ] || cargo build --release --quiet
RUN=(docker run --rm --network none probe-test:latest true)
tmp=$(mktemp -d)
loop=
# The loop stops at its next turn once told, so no `docker run` is cut off half-way.
cleanup() {
    touch "$tmp/stop"
    [ -n "$loop" ] && wait "$loop" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
"${RUN[@]}" >/dev/null # the image is there and caches are warm
(
    while [ ! -e "$tmp/stop" ]; do
        "${RUN[@]}" >/dev/null 2>&1 && echo >>"$tmp/starts"
    done
) &
loop=$!
sleep 2
starts() { [ -e "$tmp/starts" ] && wc -l <"$tmp/starts" || echo 0; }
miss=0
declare -A peak
for secs in "$SHORT" "$LONG"; do
    before=$(starts)
    /usr/bin/time -v "$PROBE" trace -- sleep "$secs" >"$tmp/out" 2>"$tmp/err"
    after=$(starts)
    kb=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$tmp/err")
    summary=$(grep -m1 ' events seen' "$tmp/err")
    lost=$(sed -n 's/.*; lost \([0-9]*\).*/\1/p' <<<"$summary")
    events=$(awk '{ print $1 }' <<<"$summary")
    peak[$secs]=$kb
    printf '%5d s: %4d containers started, %9d events seen, lost %s, peak RSS %.1f MB\n' \
        "$secs" $((after - before)) "$events" "$lost" "$(bc -l <<<"$kb / 1024")"
    if [ "$lost" != 0 ]; then echo "  MISS: $lost records lost (target 0)"; miss=1; fi
    if (( kb > 200 * 1024 )); then echo "  MISS: peak RSS above 200 MB"; miss=1; fi
    (( after > before )) || { echo "  MISS: no container started during the trace: the host was not busy"; miss=1; }
done
ratio=$(bc -l <<<"${peak[$LONG]} / ${peak[$SHORT]}")
printf 'peak RSS %s s / %s s: %.2f× (target < 2×)\n' "$LONG" "$SHORT" "$ratio"
if (( $(bc -l <<<"$ratio >= 2") )); then echo "  MISS: memory grows with the trace's length"; miss=1; fi
exit "$miss"
