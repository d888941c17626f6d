#!/usr/bin/env bash
# CI on the second host: boots the Debian 13 guest of scripts/second-host.sh ONCE (cgroup v2,
# systemd driver, docker 26, podman 5 + crun), on a free loopback port, and uses it twice:
#   1. the subset, with this tree's probe binary (second-host.sh exec):
#        doctor; image build; startup --breakdown (docker, podman, crun); memory --cgroup,
#        cpu and cpu --exec (docker, podman); io --fsync-trace (bare on the root); io --crash-check
#        --crash-method dm-log-writes --fsync-trace (bare, native-overlay with and without
#        volatile, podman-overlay);
#        scale (native, docker, podman at 1 and 2 containers);
#        trace -- podman run --rm ...; run -- /bin/true; nested (native to depth 2)
#      then checks the bars (issue 16) from the run folders it brings back:
#        - every command exits 0, on a pure cgroup v2 host;
#        - docker's, podman's and crun's breakdowns cover >= 95% of every rep with named phases;
#        - bare on the partitioned root (/dev/vda1, flushes counted at vda) is durable;
#          with the crash check (by dm-log-writes), bare and native-overlay durable,
#          native-overlay-volatile and podman-overlay (podman run --rm) NOT durable with their
#          mechanism named, the crash check agrees in every rep; the fsync trace
#          recorded every rep and saw flushes exactly where the verdict is durable;
#        - memory --cgroup and cpu give numbers, not n/a, for docker and podman; cpu --exec too,
#          from the container's own cgroup v2 cpu.stat;
#        - scale measured every count for each runtime, with the containers' cgroups;
#        - probe trace cut the podman start into named phases;
#        - nested: every approach measured, or not run with its reason in one line (the guest
#          has no probe-nested:latest: building it needs debootstrap and the Debian mirror,
#          and the guest has neither); native-in-native works at depths 0 to 2; no leftovers.
#   2. the fleet test (tests/fleet.rs) against the same guest (PROBE_GUEST_SSH_PORT).
# The guest is powered off at the end, also on failure and Ctrl-C. Exits non-zero on any miss,
# naming it. The guest image is built once per machine and cached
# (/var/cache/probe-second-host): ~15 min the first time under TCG, 0 after.
#
# Usage: scripts/second-host-ci.sh [--binary PATH] [--no-fleet]   (as root; the guest's binary
#        is PATH or else target/debug/probe after `cargo build`; the fleet test always ships
#        target/debug/probe)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

BINARY="" FLEET=1
while [ $# -gt 0 ]; do
    case $1 in
        --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
        --no-fleet) FLEET=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "second-host-ci: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "second-host-ci: run as root (qemu, the image cache)" >&2; exit 2; }
# The default is this tree's build, brought up to date: a stale one would run in the guest.
[ -n "$BINARY" ] || { cargo build --locked; BINARY=target/debug/probe; }
[ -x "$BINARY" ] || { echo "second-host-ci: not an executable: $BINARY" >&2; exit 2; }
command -v python3 >/dev/null || { echo "second-host-ci: needs python3 to read the run folders" >&2; exit 2; }

t0=$(date +%s)
# A folder of its own per CI run, kept (results/ is not in git) for whoever looks next.
out=results/second-host-ci/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
work=$(mktemp -d /tmp/second-host-ci.XXXXXX)
# The kernel's pick of a free loopback port: another guest (another engineer's, another CI)
# may hold 2222.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
up=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$up" = 0 ] || bash scripts/second-host.sh ssh-down --ssh-port "$port" || rc=1
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "second-host-ci: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# The guest gets the stripped copy the fleet playbook ships of the same build (strip is
# deterministic): the playbook's `probe image build` there then finds the image up to date.
strip -o "$work/probe" "$BINARY"
up=1
bash scripts/second-host.sh ssh-up --ssh-port "$port" --binary "$work/probe"
echo "second-host-ci: guest up on 127.0.0.1:$port after $(( $(date +%s) - t0 )) s"

rc=0
bash scripts/second-host.sh exec --ssh-port "$port" --keep-going --binary "$work/probe" --results "$out" -- doctor \
    --then image build \
    --then startup --breakdown --runtimes docker,podman,crun --reps 2 --quiet \
    --then memory --cgroup --runtimes docker,podman --counts 0,1 --quiet \
    --then cpu --runtimes docker,podman --reps 2 --count 100000 --quiet \
    --then cpu --exec --runtimes docker,podman --reps 2 --warmup 0 --count 2000 --quiet \
    --then io --fsync-trace --modes bare --size 8 --reps 2 --quiet \
    --then io --crash-check --crash-method dm-log-writes --fsync-trace --modes bare,native-overlay,native-overlay-volatile,podman-overlay --size 8 --reps 2 --quiet \
    --then scale --runtimes native,docker,podman --counts 1,2 --quiet \
    --then trace --output results/trace-podman-run.json -- podman run --rm --network none probe-test:latest true \
    --then run -- /bin/true \
    --then nested --depth 2 --native-reps 2 --quiet || rc=$?
echo "second-host-ci: subset finished with status $rc after $(( $(date +%s) - t0 )) s"

# The guest's results land in $out/<guest hostname>/.
checked=0
python3 - "$out" <<'EOF' || checked=$?
import json, os, sys, glob

out = sys.argv[1]
hosts = [d for d in glob.glob(os.path.join(out, "*")) if os.path.isdir(d)]
misses = []
def ok(line, good, miss):
    print(f"second-host-ci: {line}: {'ok' if good else 'MISS'}")
    if not good:
        misses.append(miss)

if len(hosts) != 1:
    print(f"second-host-ci: MISS: expected one guest results folder in {out}, found {hosts}")
    sys.exit(1)
host = hosts[0]

# Every command's exit status, from the run's commands.tsv (n, rc, ms, command line).
tsv = glob.glob(os.path.join(host, "second-host-logs", "*", "commands.tsv"))
rows = [l.rstrip("\n").split("\t", 3) for t in tsv for l in open(t) if l.strip()]
if len(rows) != 12:
    misses.append(f"{len(rows)} of 12 command lines ran in the guest (see {host}/second-host-logs)")
for n, rc, ms, cmd in rows:
    ok(f"[{n}] {cmd}: exit {rc}, {float(ms)/1000:.1f} s", rc == "0", f"`{cmd}` exited {rc}")

def run_json(name):
    found = sorted(glob.glob(os.path.join(host, "*", name)))
    if not found:
        misses.append(f"no run folder with {name} came back")
        return None
    return json.load(open(found[-1]))

def results_of(report, runtimes, what):
    by = {r["runtime"]: r for r in report.get("results", [])}
    for rt in runtimes:
        if rt not in by:
            misses.append(f"{what}: {rt} was not measured (skipped: {report.get('skipped')})")
    return [(rt, by[rt]) for rt in runtimes if rt in by]

startup = run_json("startup.json")
if startup is not None:
    layout = startup["report"]["host"]["cgroup_layout"]["kind"]
    ok(f"cgroup layout {layout}", layout == "v2", f"the guest's cgroup layout is {layout}, not v2")
    covered = {b["runtime"]: b["min_coverage"] for b in startup.get("breakdown", [])}
    for rt in ("docker", "podman", "crun"):
        cov = covered.get(rt)
        if cov is None:
            misses.append(f"startup --breakdown: no breakdown for {rt}")
            continue
        ok(f"startup {rt}: named phases cover >= {cov*100:.1f}% of every rep", cov >= 0.95,
           f"startup --breakdown: {rt}'s phases cover only {cov*100:.1f}% of a rep (bar 95%)")

memory = run_json("memory_cgroup.json")
if memory is not None:
    for rt, r in results_of(memory, ("docker", "podman"), "memory --cgroup"):
        fit = r["fits"].get("cgroup")
        per = [c.get("memory") for p in r["points"] for c in p["snapshot"]["containers"]]
        good = r.get("cgroup_na") is None and fit is not None and per and all(m is not None for m in per)
        kb = f"{fit['slope']:.0f} KB per container" if fit else "n/a"
        ok(f"memory --cgroup {rt}: {kb} from {len(per)} container cgroup reads", good,
           f"memory --cgroup: {rt} has no cgroup figure ({r.get('cgroup_na')})")

cpu = run_json("cpu.json")
if cpu is not None:
    for rt, r in results_of(cpu, ("docker", "podman"), "cpu"):
        ms = [rep.get("cpu_ms") for rep in r["reps"]]
        good = r.get("cpu_na") is None and ms and all(isinstance(m, (int, float)) and m > 0 for m in ms)
        ok(f"cpu {rt}: CPU ms per rep {ms} from {r.get('cpu_source')}", good,
           f"cpu: {rt} gives no CPU time ({r.get('cpu_na')}, reps {ms})")

cpu_exec = run_json("cpu_exec.json")
if cpu_exec is not None:
    for rt, r in results_of(cpu_exec, ("docker", "podman"), "cpu --exec"):
        ms = [rep.get("cpu_ms") for rep in r["reps"]]
        good = r.get("cpu_na") is None and "cgroup v2 cpu.stat" in (r.get("cpu_source") or "") \
            and ms and all(isinstance(m, (int, float)) and m > 0 for m in ms)
        ok(f"cpu --exec {rt}: CPU ms per rep {ms} from {r.get('cpu_source')}", good,
           f"cpu --exec: {rt} gives no CPU time from its cgroup v2 cpu.stat ({r.get('cpu_source') or r.get('cpu_na')}, reps {ms})")

def io_runs():
    """The two io runs: bare on the root file system, and the crash check's (on a scratch file system)."""
    found = sorted(glob.glob(os.path.join(host, "*", "io.json")))
    if len(found) != 2:
        misses.append(f"{len(found)} io run folders came back, not 2")
        return None, None
    return [json.load(open(f)) for f in found]

def io_mode(report, mode):
    r = {r["mode"]: r for r in report.get("results", [])}.get(mode)
    if r is None:
        misses.append(f"io: {mode} was not measured (skipped: {report.get('skipped')})")
    return r

def traced_flushes(mode, rep):
    """Flush and FUA requests the fsync trace saw in the sync phase, None when it saw no block events."""
    trace = rep.get("trace")
    if not trace or "block/block_rq_issue" in trace.get("missing", []):
        misses.append(f"io --fsync-trace: {mode} rep {rep['rep']}: no block trace ({trace and trace.get('missing')})")
        return None
    return trace["sync_phase"]["flushes"] + trace["sync_phase"]["fua_writes"]

root, crash = io_runs()
if root is not None:
    # The partitioned root: bare writes on /dev/vda1, and the flushes must be counted on vda.
    r = io_mode(root, "bare")
    if r is not None:
        ok(f"io bare on the root: {r['verdict']}", r.get("outcome") == "durable", f"io: bare on the root is {r.get('outcome')}, the bar is durable")
        for rep in r["reps"]:
            disk = rep.get("disk") or {}
            flushes = traced_flushes("bare", rep)
            ok(f"io bare on the root rep {rep['rep']}: device {disk.get('device')}, flushes counted at {disk.get('flush_devices')}, {flushes} traced",
               disk.get("device") == "vda1" and "vda" in disk.get("flush_devices", []) and (flushes or 0) > 0,
               f"io: bare rep {rep['rep']} is not on the partition vda1 with its flushes seen at vda ({disk}, traced {flushes})")
if crash is not None:
    # The guest's kernel has device-mapper: the capture is dm-log-writes' mark, not a copy.
    for mode, want in (("bare", "durable"), ("native-overlay", "durable"), ("native-overlay-volatile", "not-durable"), ("podman-overlay", "not-durable")):
        r = io_mode(crash, mode)
        if r is None:
            continue
        mech = r["reps"][0]["verdict"].get("mechanism") if r["reps"] else None
        ok(f"io --crash-check {mode}: {r['verdict']}{': ' + mech if mech else ''}", r.get("outcome") == want,
           f"io: {mode} is {r.get('outcome')}, the bar is {want}")
        for rep in r["reps"]:
            c = rep.get("crash") or {}
            flushes = traced_flushes(mode, rep)
            ok(f"io --crash-check {mode} rep {rep['rep']}: {c.get('intact_bytes')} of {rep['bytes']} bytes survived the crash, {flushes} flushes traced",
               c.get("agrees") is True and c.get("method", "").startswith("dm-log-writes") and (mech is not None) == (want == "not-durable") and flushes is not None and (flushes > 0) == (want == "durable"),
               f"io: {mode} rep {rep['rep']}: the crash check ({c}), the mechanism ({rep['verdict'].get('mechanism')}) or the traced flushes ({flushes}) disagree with {want}")

scale = run_json("scale.json")
if scale is not None:
    for rt, r in results_of(scale, ("native", "docker", "podman"), "scale"):
        counts = [s["count"] for s in r["steps"]]
        good = counts == [1, 2] and all(len(s["start_ms"]) == s["count"] and s["cgroup_mb"] is not None and s["memory_mb"] > 0 for s in r["steps"])
        ok(f"scale {rt}: counts {counts}, MB per container {[round(s['memory_mb'] / s['count'], 1) for s in r['steps']]}",
           good, f"scale: {rt} did not measure counts 1 and 2 with its cgroups ({r.get('cgroup_na')})")

trace_file = os.path.join(host, "trace-podman-run.json")
if not os.path.isfile(trace_file):
    misses.append("probe trace wrote no trace-podman-run.json")
else:
    t = json.load(open(trace_file))
    starts = t.get("containers", [])
    phases = sorted({s["phase"] for c in starts for s in c.get("slices", [])} - {"unattributed"})
    ok(f"trace podman run: {len(starts)} container start, phases {phases}, coverage {t.get('coverage')}, {t.get('lost')} lost",
       len(starts) == 1 and len(phases) >= 3 and (t.get("coverage") or 0) >= 0.95,
       f"probe trace: expected one container start cut into named phases (got {len(starts)}, {phases}, coverage {t.get('coverage')})")

nested = run_json("nested.json")
if nested is not None:
    # Each approach of the probe file is measured (success, or a failure with its cause), or
    # listed as not run with one line of why.
    ids = [a["id"] for a in json.load(open("probes/nested.json"))["approaches"]]
    measured = {r["id"]: r for r in nested.get("results", [])}
    for n in nested.get("not_run", []):
        reason = n.get("reason") or ""
        ok(f"nested {n['engine']}: not run ({', '.join(n['approaches'])}): {reason}",
           reason and "\n" not in reason and not set(n["approaches"]) & set(measured),
           f"nested: {n['engine']}'s approaches were not run without one line of why ({reason!r})")
    accounted = set(measured) | {i for n in nested.get("not_run", []) for i in n["approaches"]}
    ok(f"nested: {len(measured)} approaches measured, {len(ids) - len(measured)} not run with a reason",
       set(ids) <= accounted and all(r["success"] or r.get("cause") for r in measured.values()),
       f"nested: approaches neither measured (with a cause when they fail) nor not run with a reason: {sorted(set(ids) - accounted)}")
    levels = [(l["depth"], l["success"], l.get("median_ms")) for l in nested.get("native", [])]
    ok(f"nested native-in-native (depth, ok, median ms): {levels}",
       [d for d, _, _ in levels] == [0, 1, 2] and all(s and (m or 0) > 0 for _, s, m in levels),
       f"nested: native-in-native did not work on the host and at depths 1 and 2 ({levels})")
    ok(f"nested: leftovers {nested.get('leftovers')}", nested.get("leftovers") == [], f"nested left {nested.get('leftovers')} behind")

for m in misses:
    print(f"second-host-ci: MISS: {m}")
sys.exit(1 if misses else 0)
EOF

fleet=0
if [ "$FLEET" = 1 ]; then
    # The fleet's localhost runs on this machine's test image: up to date with the build the
    # test ships (its own, target/debug/probe).
    cargo build --locked
    target/debug/probe image build
    PROBE_GUEST_SSH_PORT=$port cargo test --locked --test fleet -- --test-threads=1 || fleet=$?
    echo "second-host-ci: fleet test finished with status $fleet"
fi
echo "second-host-ci: results in $out; total $(( $(date +%s) - t0 )) s"
[ "$checked" -eq 0 ] && [ "$rc" -eq 0 ] && [ "$fleet" -eq 0 ] || exit 1
