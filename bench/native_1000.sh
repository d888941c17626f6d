#!/usr/bin/env bash
# 1000 native containers back to back in one probe process (`probe startup --runtimes
# native`): per-container median of the first 10 vs the last 10 and of the first vs last 100
# (target: within 1.2×), the median of every block of 100, then what is left behind: mounts,
# cgroups and per-container directories named probe-<its pid>-*, child processes, and the
# fd count of the probe process, sampled from /proc/PID/fd while it runs.
# Root only.
# Usage: sudo bench/native_1000.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-1000}
PROBE=${PROBE:-target/release/probe}
[ "$(id -u)" = 0 ] || { echo "needs root (containers with cgroups)" >&2; exit 1; }
[ -n "${PROBE_NO_BUILD:-}" ] || cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

"$PROBE" startup --runtimes native --reps "$REPS" --warmup 10 --quiet --format json \
    --results "$tmp/res" -- /bin/true >"$tmp/s.json" 2>"$tmp/err" &
pid=$!
# fd count of the running probe: one sample every 50 ms; the first few cover the warmup.
: >"$tmp/fds"
while kill -0 "$pid" 2>/dev/null; do
    n=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l) && [ "$n" -gt 0 ] && echo "$n" >>"$tmp/fds"
    sleep 0.05
done
wait "$pid" || { cat "$tmp/err" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Only this probe's names (probe-<its pid>-<n>): other jobs on the machine make their own.
new_cg=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name "probe-$pid-*" | wc -l)
mounts=$(grep -c "probe-$pid-" /proc/self/mountinfo || true)
leaked_dirs=$(find /var/lib/probe/containers -mindepth 1 -maxdepth 1 -name "probe-$pid-*" | wc -l)
leaked_procs=$(pgrep -P "$pid" | wc -l || true)
python3 - "$tmp/s.json" "$tmp/fds" "$new_cg" "$mounts" "$leaked_dirs" "$leaked_procs" <<'PY'
import json, statistics as st, sys
res = json.load(open(sys.argv[1]))["report"]["results"]
fds = [int(l) for l in open(sys.argv[2]) if l.strip()]
new_cg, mounts, dirs, procs = (int(v) for v in sys.argv[3:7])
walls = [s["wall_ns"] / 1e6 for r in res if r["runtime"] == "native" for s in r["samples"]]
ok = True
def cmp(k):
    global ok
    a, b = st.median(walls[:k]), st.median(walls[-k:])
    good = b <= 1.2 * a
    ok &= good
    print(f"first {k:>3}: median {a:.3f} ms   last {k:>3}: median {b:.3f} ms   ratio {b/a:.2f}× (target ≤ 1.2×) {'OK' if good else 'OUT OF TARGET'}")
print(f"{len(walls)} native containers of /bin/true, overall median {st.median(walls):.3f} ms")
cmp(10)
cmp(100)
blocks = [f"{st.median(walls[i:i + 100]):.2f}" for i in range(0, len(walls), 100)]
print("median per 100:", " ".join(blocks), "ms")
# A sample can catch a container's own fds (pipes, cgroup files) mid-flight: the least seen in
# each third of the run is probe's steady count; the first third after the warmup's samples.
if len(fds) >= 9:
    third = len(fds) // 3
    early, late = min(fds[1:third]), min(fds[-third:])
    grew = late > early
    ok &= not grew
    print(f"probe's open fds (least in first vs last third of {len(fds)} samples): {early} → {late}: {'GREW' if grew else 'OK'}")
else:
    print("probe's open fds: too few samples (the run was too short to watch)")
clean = new_cg == mounts == dirs == procs == 0
ok &= clean
print(f"left behind: cgroups {new_cg}, mounts {mounts}, container dirs {dirs}, "
      f"children of probe {procs}: {'OK' if clean else 'LEAK'}")
sys.exit(0 if ok else 1)
PY
