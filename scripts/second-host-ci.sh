#!/usr/bin/env bash
# CI on the second host: boots the Debian 13 guest of scripts/second-host.sh once (cgroup v2,
# systemd driver, docker 26, podman 5 + crun) and runs there, with this tree's probe binary:
#   doctor; image build; startup --breakdown (docker, podman, 2 reps);
#   io --crash-check (bare, podman-overlay, 8 MiB); run -- /bin/true
# then checks the bars from the run folders it brings back:
#   - every command exits 0;
#   - docker's and podman's breakdowns cover >= 95% of every rep with named phases;
#   - bare is durable, podman-overlay NOT durable with its mechanism named, and the crash
#     check agrees with both verdicts in every rep.
# Exits non-zero on any miss, naming it. The guest image is built once per machine and
# cached (/var/cache/probe-second-host): ~15 min the first time under TCG, 0 after.
#
# Usage: scripts/second-host-ci.sh [--binary PATH]   (as root; default: target/debug/probe,
#        built with `cargo build` when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY=target/debug/probe
while [ $# -gt 0 ]; do
    case $1 in
        --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "second-host-ci: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "second-host-ci: run as root (qemu, the image cache)" >&2; exit 2; }
[ -x "$BINARY" ] || cargo build
command -v python3 >/dev/null || { echo "second-host-ci: needs python3 to read the run folders" >&2; exit 2; }

t0=$(date +%s)
# A folder of its own per CI run, kept (results/ is not in git) for whoever looks next.
out=results/second-host-ci/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"

rc=0
bash scripts/second-host.sh --keep-going --binary "$BINARY" --results "$out" -- doctor \
    --then image build \
    --then startup --breakdown --runtimes docker,podman --reps 2 --quiet \
    --then io --crash-check --modes bare,podman-overlay --size 8 --reps 2 --quiet \
    --then run -- /bin/true || rc=$?
echo "second-host-ci: guest run finished with status $rc after $(( $(date +%s) - t0 )) s"

# The guest's results land in $out/<guest hostname>/.
checked=0
python3 - "$out" <<'EOF' || checked=$?
import json, os, sys, glob

out = sys.argv[1]
hosts = [d for d in glob.glob(os.path.join(out, "*")) if os.path.isdir(d)]
misses = []
if len(hosts) != 1:
    print(f"second-host-ci: MISS: expected one guest results folder in {out}, found {hosts}")
    sys.exit(1)
host = hosts[0]

# Every command's exit status, from the boot's commands.tsv (n, rc, ms, command line).
tsv = glob.glob(os.path.join(host, "second-host-logs", "*", "commands.tsv"))
rows = [l.rstrip("\n").split("\t", 3) for t in tsv for l in open(t) if l.strip()]
if len(rows) != 5:
    misses.append(f"{len(rows)} of 5 command lines ran in the guest (see {host}/second-host-logs)")
for n, rc, ms, cmd in rows:
    status = "ok" if rc == "0" else "MISS"
    print(f"second-host-ci: [{n}] {cmd}: exit {rc}, {float(ms)/1000:.1f} s: {status}")
    if rc != "0":
        misses.append(f"`{cmd}` exited {rc}")

def run_json(name):
    found = sorted(glob.glob(os.path.join(host, "*", name)))
    if not found:
        misses.append(f"no run folder with {name} came back")
        return None
    return json.load(open(found[-1]))

startup = run_json("startup.json")
if startup is not None:
    covered = {b["runtime"]: b["min_coverage"] for b in startup.get("breakdown", [])}
    for rt in ("docker", "podman"):
        cov = covered.get(rt)
        if cov is None:
            misses.append(f"startup --breakdown: no breakdown for {rt}")
            continue
        ok = cov >= 0.95
        print(f"second-host-ci: startup {rt}: named phases cover >= {cov*100:.1f}% of every rep: {'ok' if ok else 'MISS'}")
        if not ok:
            misses.append(f"startup --breakdown: {rt}'s phases cover only {cov*100:.1f}% of a rep (bar 95%)")

io = run_json("io.json")
if io is not None:
    by_mode = {r["mode"]: r for r in io.get("results", [])}
    for mode, want in (("bare", "durable"), ("podman-overlay", "not-durable")):
        r = by_mode.get(mode)
        if r is None:
            misses.append(f"io: {mode} was not measured (skipped: {io.get('skipped')})")
            continue
        line = f"io {mode}: {r['verdict']}"
        if r.get("outcome") != want:
            misses.append(f"io: {mode} is {r.get('outcome')}, the bar is {want}")
        for rep in r["reps"]:
            crash = rep.get("crash")
            if not crash or crash.get("agrees") is not True:
                misses.append(f"io: {mode} rep {rep['rep']}: the crash check does not agree with the verdict ({crash})")
            if want == "not-durable" and not rep["verdict"].get("mechanism"):
                misses.append(f"io: {mode} rep {rep['rep']}: NOT durable without a mechanism named")
        print(f"second-host-ci: {line}")

for m in misses:
    print(f"second-host-ci: MISS: {m}")
sys.exit(1 if misses else 0)
EOF
echo "second-host-ci: results in $out; total $(( $(date +%s) - t0 )) s"
[ "$checked" -eq 0 ] && [ "$rc" -eq 0 ] || exit 1
