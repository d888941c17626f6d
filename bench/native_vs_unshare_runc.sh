#!/usr/bin/env bash
# The full native container of /bin/true (every namespace incl. net, overlay rootfs, cgroup,
# pivot_root, exec, teardown) beside `unshare -mpnuif --fork /bin/true` and `runc run` of the
# test image bundle (this machine is noisy: only ratios measured side by side mean anything).
#   - native/unshare is judged whole process against whole process, as users run them:
#     `probe run -- /bin/true` and `unshare -mpnuif --fork /bin/true` under `hyperfine -N`
#     (probe's exec, argument parsing and start-up included), in many short rounds whose
#     order alternates (the load of a busy machine swings within seconds), all runs of a
#     side pooled into one median.
#   - native/runc is judged in-process: `probe startup --runtimes native,runc` medians (a
#     `runc run` process per rep, config.json from the test image). The in-process native
#     median beside unshare is printed too, for what probe's own start-up costs.
# Targets (issue 3): native/unshare ≤ 1.5×, native/runc ≤ 0.25×; exit status 1 on a miss.
# Root only. Uses target/release/probe (built here unless PROBE_NO_BUILD is set).
# Usage: sudo [UNSHARE_TARGET=R] [RUNC_TARGET=R] bench/native_vs_unshare_runc.sh [ROUNDS] [RUNS_PER_ROUND] [RUNC_REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-30}
RUNS=${2:-5}
RUNC_REPS=${3:-50}
UNSHARE_TARGET=${UNSHARE_TARGET:-1.5}
RUNC_TARGET=${RUNC_TARGET:-0.25}
PROBE=${PROBE:-target/release/probe}
[ "$(id -u)" = 0 ] || { echo "needs root (containers with cgroups)" >&2; exit 1; }
[ -n "${PROBE_NO_BUILD:-}" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "hyperfine missing: sudo apt-get install hyperfine" >&2; exit 1; }
command -v runc >/dev/null || { echo "runc missing: sudo apt-get install runc" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
UNSHARE='unshare -mpnuif --fork /bin/true'
NATIVE="$PROBE run -- /bin/true"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    if (( r % 2 )); then order=("$UNSHARE" "$NATIVE"); else order=("$NATIVE" "$UNSHARE"); fi
    hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$tmp/h$r.json" "${order[@]}" >"$tmp/log" 2>&1 ||
        { cat "$tmp/log" >&2; echo "round $r: a command failed (output above)" >&2; exit 1; }
    printf '\rround %d/%d' "$r" "$ROUNDS" >&2
done
echo >&2
"$PROBE" startup --runtimes native,runc --reps "$RUNC_REPS" --warmup 5 --quiet --format json \
    --results "$tmp/res" -- /bin/true >"$tmp/s.json" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp" "$ROUNDS" "$UNSHARE" "$NATIVE" "$UNSHARE_TARGET" "$RUNC_TARGET" <<'PY'
import json, statistics as st, sys
tmp, rounds, unshare, native = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
unshare_target, runc_target = float(sys.argv[5]), float(sys.argv[6])
times = {unshare: [], native: []}
for r in range(1, rounds + 1):
    res = {x["command"]: x["times"] for x in json.load(open(f"{tmp}/h{r}.json"))["results"]}
    u, n = st.median(res[unshare]) * 1e3, st.median(res[native]) * 1e3
    print(f"round {r}: unshare {u:.3f} ms  probe run {n:.3f} ms  ratio {n / u:.2f}×")
    for k in times:
        times[k] += res[k]
u, n = (st.median(times[k]) * 1e3 for k in (unshare, native))
startup = json.load(open(f"{tmp}/s.json"))["report"]["results"]
def walls(runtime):
    return st.median(s["wall_ns"] / 1e6 for r in startup if r["runtime"] == runtime for s in r["samples"])
ni, rc = walls("native"), walls("runc")
print(f"medians: unshare {u:.3f} ms and probe run {n:.3f} ms ({len(times[native])} runs each); "
      f"in-process native {ni:.3f} ms, runc {rc:.3f} ms")
print(f"{'native in-process / unshare (not judged)':<42} {ni / u:5.2f}×")
ok = True
def check(name, value, target):
    global ok
    good = value <= target
    ok &= good
    print(f"{name:<42} {value:5.2f}×  (target ≤ {target:g}×) {'OK' if good else 'OUT OF TARGET'}")
check("native (probe run process) / unshare", n / u, unshare_target)
check("native (in-process) / runc", ni / rc, runc_target)
sys.exit(0 if ok else 1)
PY
