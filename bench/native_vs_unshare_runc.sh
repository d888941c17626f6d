#!/usr/bin/env bash
# The full native container of /bin/true (every namespace incl. net, overlay rootfs, cgroup,
# pivot_root, exec, teardown) beside `unshare -mpnuif --fork /bin/true` and `runc run` of the
# test image bundle, in interleaved rounds of one run (this machine is noisy: only ratios
# measured side by side mean anything). Native is measured two ways:
#   - as a process, like unshare: `probe run -- /bin/true` under hyperfine -N (includes
#     probe's own exec, dynamic linking and argument parsing);
#   - in-process: `probe startup --runtimes native` median (the container alone).
# runc is `probe startup --runtimes runc` median (a `runc run` process per rep, config.json
# from the test image), and native in the same measure for the native/runc ratio.
# Targets (issue 3): native/unshare ≤ 1.5×, native/runc ≤ 0.25×. Root only.
# Usage: sudo bench/native_vs_unshare_runc.sh [ROUNDS] [RUNS_PER_ROUND]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
RUNS=${2:-200}
PROBE=${PROBE:-target/release/probe}
[ "$(id -u)" = 0 ] || { echo "needs root (containers with cgroups)" >&2; exit 1; }
[ -n "${PROBE_NO_BUILD:-}" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "hyperfine missing: sudo apt-get install hyperfine" >&2; exit 1; }
command -v runc >/dev/null || { echo "runc missing: sudo apt-get install runc" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$tmp/u$r.json" \
        'unshare -mpnuif --fork /bin/true' >/dev/null 2>&1
    hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$tmp/n$r.json" \
        "$PROBE run -- /bin/true" >/dev/null 2>&1
    "$PROBE" startup --runtimes native,runc --reps "$RUNS" --warmup 10 --quiet --format json \
        --results "$tmp/res" -- /bin/true >"$tmp/s$r.json" 2>/dev/null
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp" "$ROUNDS" <<'PY'
import json, statistics as st, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def hf(f):
    return st.median(json.load(open(f))["results"][0]["times"]) * 1e3
def startup(f, runtime):
    res = json.load(open(f))["report"]["results"]
    walls = [s["wall_ns"] / 1e6 for r in res if r["runtime"] == runtime for s in r["samples"]]
    return st.median(walls)
rows = []
for r in range(1, rounds + 1):
    u, n = hf(f"{tmp}/u{r}.json"), hf(f"{tmp}/n{r}.json")
    ni, rc = startup(f"{tmp}/s{r}.json", "native"), startup(f"{tmp}/s{r}.json", "runc")
    rows.append((u, n, ni, rc))
    print(f"round {r}: unshare {u:.3f} ms  probe run {n:.3f} ms  native in-process {ni:.3f} ms  runc {rc:.3f} ms")
u, n, ni, rc = (st.median(c) for c in zip(*rows))
ok = True
def check(name, value, target):
    global ok
    good = value <= target
    ok &= good
    print(f"{name:<38} {value:5.2f}×  (target ≤ {target}×) {'OK' if good else 'OUT OF TARGET'}")
print(f"medians: unshare {u:.3f} ms, probe run {n:.3f} ms, native in-process {ni:.3f} ms, runc {rc:.3f} ms")
check("native (probe run process) / unshare", n / u, 1.5)
check("native (in-process) / unshare", ni / u, 1.5)
check("native (in-process) / runc", ni / rc, 0.25)
sys.exit(0 if ok else 1)
PY
