#!/usr/bin/env bash
# Share of every rep's wall time that the tracer attributes to named phases, per engine, from
# one `probe startup --breakdown` run. Bar: ≥ 95% for every rep; exit status 1 on a miss.
# Usage: sudo [BAR=PERCENT] bench/trace_coverage.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-10}
BAR=${BAR:-95}
PROBE=${PROBE:-target/release/probe}
[ -x "$PROBE" ] || cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PROBE" startup --breakdown --runtimes docker,podman,podman-rootless --reps "$REPS" --warmup 1 \
    --quiet --format json --results "$tmp/res" -- true >"$tmp/out.json"
/usr/bin/python3 - "$tmp/out.json" "$BAR" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))["report"]
bar = float(sys.argv[2]) / 100
worst = 1.0
for r in rep["results"]:
    shares = []
    for s in r["samples"]:
        named = sum(p["dur_ns"] for p in s.get("phases", []) if p["phase"] != "unattributed")
        shares.append(named / s["wall_ns"])
    worst = min(worst, min(shares))
    print(f'{r["runtime"]:<16} ' + " ".join(f"{x * 100:5.1f}%" for x in shares) + f'   min {min(shares) * 100:.1f}%')
ok = worst >= bar
print(f"lowest rep: {worst * 100:.1f}% (bar ≥ {bar * 100:g}%): {'OK' if ok else 'BELOW BAR'}")
sys.exit(0 if ok else 1)
PY
