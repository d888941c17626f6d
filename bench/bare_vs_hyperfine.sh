#!/usr/bin/env bash
# probe's `bare` median for /bin/true beside `hyperfine -N`'s, measured alternately in one
# run (this machine is noisy: only side-by-side ratios mean anything). Target: within 1.3×.
# Usage: bench/bare_vs_hyperfine.sh [ROUNDS] [RUNS_PER_ROUND]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
RUNS=${2:-300}
PROBE=${PROBE:-target/release/probe}
[ -x "$PROBE" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "hyperfine missing: sudo apt-get install hyperfine" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
for r in $(seq 1 "$ROUNDS"); do
    hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$tmp/h$r.json" /bin/true >/dev/null 2>&1
    "$PROBE" startup --runtimes bare --reps "$RUNS" --warmup 20 --quiet --format json --results "$tmp/res" -- /bin/true >"$tmp/p$r.json" 2>/dev/null
done
"$py" - "$tmp" "$ROUNDS" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
h = [statistics.median(json.load(open(f"{tmp}/h{r}.json"))["results"][0]["times"]) * 1e3 for r in range(1, rounds + 1)]
p = []
for r in range(1, rounds + 1):
    rep = json.load(open(f"{tmp}/p{r}.json"))["report"]
    walls = [s["wall_ns"] / 1e6 for s in rep["results"][0]["samples"]]
    p.append(statistics.median(walls))
for r in range(rounds):
    print(f"round {r+1}: hyperfine -N median {h[r]:.3f} ms   probe bare median {p[r]:.3f} ms   ratio {p[r]/h[r]:.2f}×")
ratio = statistics.median(p) / statistics.median(h)
print(f"overall: probe/hyperfine = {ratio:.2f}× (target 0.77–1.3×): {'OK' if 1/1.3 <= ratio <= 1.3 else 'OUT OF TARGET'}")
sys.exit(0 if 1/1.3 <= ratio <= 1.3 else 1)
PY
