#!/usr/bin/env bash
# Install and configure the container engines that `probe` measures:
# docker (dockerd), podman (root) and podman rootless, with runc/crun.
#
# Idempotent: a second run changes nothing and says so.  It never overwrites
# an existing configuration file: docker's daemon.json only gets missing keys
# merged in, podman gets a drop-in of its own, a rootless user's storage.conf
# is written only when absent.  See docs/setup.md for every change it may
# make, why, and how to undo it.
#
# Usage: scripts/setup-engines.sh [--no-verify]
#   run as root, or through sudo (the sudo user becomes the rootless user).
#   --no-verify  skip the test runs at the end (each engine runs `true` in a
#                locally imported busybox image, which is removed again).
set -euo pipefail

PROG=setup-engines
log()  { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: WARNING: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

VERIFY=1
for arg in "$@"; do
    case "$arg" in
        --no-verify) VERIFY=0 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $arg (try --help)" ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        log "not root: re-running through sudo"
        exec sudo -- bash "$0" "$@"
    fi
    die "must run as root (or through sudo)"
fi

export DEBIAN_FRONTEND=noninteractive
# Never the pyenv/venv python that may come first in PATH: the system one.
PY=/usr/bin/python3

CHANGES=()
changed() { CHANGES+=("$1"); log "changed: $1"; }

DOCKER_DAEMON_LOG=/var/log/probe-dockerd.log
RECORD=/etc/probe/rootless-user
PODMAN_DROPIN=/etc/containers/containers.conf.d/probe.conf
DAEMON_JSON=/etc/docker/daemon.json
MARKER="# Written by probe's scripts/setup-engines.sh; delete this file to undo."

has_systemd() { [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------- cleanup
TMPDIR_SETUP=""
TEST_TAG="probe-setup-test:$$"
ROOTLESS_USER=""; ROOTLESS_HOME=""; ROOTLESS_UID=""
POLICY_RC_ADDED=0
cleanup() {
    local rc=$?
    if [ "$POLICY_RC_ADDED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ -n "$TMPDIR_SETUP" ]; then
        # images imported for the test runs
        if [ -x /usr/bin/docker ] && /usr/bin/docker image inspect "$TEST_TAG" >/dev/null 2>&1; then
            /usr/bin/docker rmi -f "$TEST_TAG" >/dev/null 2>&1 || true
        fi
        if command -v podman >/dev/null 2>&1; then
            (cd / && podman rmi -f "$TEST_TAG" >/dev/null 2>&1) || true
            if [ -n "$ROOTLESS_USER" ]; then
                (cd / && as_rootless podman rmi -f "$TEST_TAG" >/dev/null 2>&1) || true
            fi
        fi
        rm -rf "$TMPDIR_SETUP"
    fi
    exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------- packages
PACKAGES=(
    docker.io containerd runc crun
    podman conmon catatonit golang-github-containers-common containernetworking-plugins
    fuse-overlayfs uidmap slirp4netns
    busybox-static hyperfine tar python3 util-linux passwd
    # probe image build --nested: a Debian rootfs holding the engines, for Experiments 5 and 9
    debootstrap
    # probe report's PNG charts render their text with DejaVu Sans
    fonts-dejavu-core
    # probe io --crash-check and tests/io_stack.rs: xfs and btrfs scratch disks, partitions
    xfsprogs btrfs-progs fdisk
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'; }

# Docker's own packages (docker-ce, containerd.io) conflict with Debian's:
# when they are installed, use them instead.
if installed docker-ce; then
    log "packages: docker-ce is installed, using it instead of docker.io"
    kept=()
    for p in "${PACKAGES[@]}"; do
        case "$p" in docker.io|containerd) ;; *) kept+=("$p") ;; esac
    done
    PACKAGES=("${kept[@]}")
fi

MISSING=()
for p in "${PACKAGES[@]}"; do installed "$p" || MISSING+=("$p"); done

if [ ${#MISSING[@]} -eq 0 ]; then
    log "packages: all ${#PACKAGES[@]} installed"
else
    log "packages: missing: ${MISSING[*]}"
    need_update=0
    for p in "${MISSING[@]}"; do
        c=$(candidate "$p")
        if [ -z "$c" ] || [ "$c" = "(none)" ]; then need_update=1; break; fi
    done
    APT=(apt-get -y -q -o DPkg::Lock::Timeout=300)
    if [ "$need_update" = 1 ]; then
        log "packages: package lists lack some of them, running apt-get update"
        "${APT[@]}" update
    fi
    # Keep maintainer scripts from starting docker/containerd with the stock
    # configuration (default bridge, no ulimits): this script starts dockerd
    # itself once daemon.json is right.  Only if there is no policy already.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_ADDED=1
    fi
    log "packages: installing (apt-get install --no-install-recommends)"
    if ! "${APT[@]}" install --no-install-recommends "${MISSING[@]}"; then
        if [ "$need_update" = 0 ]; then
            log "packages: install failed, package lists may be stale: apt-get update and retry"
            "${APT[@]}" update
            "${APT[@]}" install --no-install-recommends "${MISSING[@]}"
        else
            die "apt-get install failed"
        fi
    fi
    if [ "$POLICY_RC_ADDED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_ADDED=0; fi
    changed "installed packages: ${MISSING[*]}"
fi

# The client that comes with the package, not whatever `docker` is first in
# PATH (e.g. a newer client alone in /usr/local/bin).
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
[ -x "$DOCKERD" ] || DOCKERD=/usr/bin/dockerd       # docker-ce puts it there
[ -x "$DOCKER" ] || die "$DOCKER missing after installing docker.io"
[ -x "$DOCKERD" ] || die "$DOCKERD missing after installing docker.io"
[ -x "$PY" ] || die "$PY missing after installing python3"

# ---------------------------------------------------------------- host facts
CGROUP_FS=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo unknown)
if [ "$CGROUP_FS" = cgroup2fs ]; then CGROUP_LAYOUT=v2
elif [ -d /sys/fs/cgroup/unified ] && [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then CGROUP_LAYOUT=hybrid
else CGROUP_LAYOUT=v1
fi

hard_nofile=$(ulimit -Hn); hard_nproc=$(ulimit -Hu)
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
[ "$hard_nproc" = unlimited ] && hard_nproc=4194304
NOFILE=$(( hard_nofile < 1048576 ? hard_nofile : 1048576 ))
# podman lowers its own RLIMIT_NPROC to 32768 and then cannot give more to a
# container; docker gets the same value so both engines start alike.
NPROC=$(( hard_nproc < 32768 ? hard_nproc : 32768 ))

capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
# CAP_SYS_RESOURCE is bit 24: without it no process can raise a hard rlimit,
# and both engines ask the runtime for more than the hard limit by default.
if (( (16#$capeff >> 24) & 1 )); then NEED_ULIMITS=0; else NEED_ULIMITS=1; fi

log "host: cgroups $CGROUP_LAYOUT ($CGROUP_FS at /sys/fs/cgroup), systemd $(has_systemd && echo yes || echo no)," \
    "hard nofile $(ulimit -Hn) nproc $(ulimit -Hu), CAP_SYS_RESOURCE $([ $NEED_ULIMITS = 0 ] && echo yes || echo no)"

# ---------------------------------------------------------------- /dev/fuse
if [ -c /dev/fuse ]; then
    mode=$(stat -c %a /dev/fuse)
    if [ "$mode" != 666 ]; then
        chmod 0666 /dev/fuse
        changed "/dev/fuse mode $mode -> 666 (rootless fuse-overlayfs)"
    else
        log "/dev/fuse: already 0666"
    fi
else
    warn "/dev/fuse does not exist: rootless podman will fall back to the vfs driver"
fi

# ---------------------------------------------------------------- tracefs
# probe's tracer reads tracepoint formats from tracefs; most distributions mount it at boot,
# minimal VMs and containers often do not.
if [ -d /sys/kernel/tracing/events ]; then
    log "tracefs: mounted at /sys/kernel/tracing"
elif [ -d /sys/kernel/tracing ] && mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    changed "mounted tracefs at /sys/kernel/tracing (probe startup --breakdown, probe trace)"
else
    warn "tracefs cannot be mounted: engine phase breakdowns will fall back to totals"
fi

# ---------------------------------------------------------------- docker config
DOCKER_WANT=$(NEED_ULIMITS=$NEED_ULIMITS NOFILE=$NOFILE NPROC=$NPROC \
    IP6=$("$DOCKERD" --help 2>/dev/null | grep -q -- '--ip6tables' && echo 1 || echo 0) \
    "$PY" - <<'EOF'
import json, os
want = {"bridge": "none", "iptables": False}
if os.environ["IP6"] == "1":
    want["ip6tables"] = False
if os.environ["NEED_ULIMITS"] == "1":
    n, p = int(os.environ["NOFILE"]), int(os.environ["NPROC"])
    want["default-ulimits"] = {
        "nofile": {"Name": "nofile", "Hard": n, "Soft": n},
        "nproc": {"Name": "nproc", "Hard": p, "Soft": p},
    }
print(json.dumps(want))
EOF
)

DAEMON_JSON_CHANGED=0
mkdir -p /etc/docker
merge_out=$(DAEMON_JSON=$DAEMON_JSON WANT="$DOCKER_WANT" "$PY" - <<'EOF'
import json, os, sys
path = os.environ["DAEMON_JSON"]
want = json.loads(os.environ["WANT"])
if os.path.exists(path):
    try:
        with open(path) as f:
            text = f.read()
        cur = json.loads(text) if text.strip() else {}
    except ValueError as e:
        print("ERROR %s is not valid JSON (%s); not touching it" % (path, e))
        sys.exit(0)
    new_file = False
else:
    cur, new_file = {}, True
added = []
for k, v in want.items():
    if k not in cur:
        cur[k] = v
        added.append(k)
    elif isinstance(v, dict) and isinstance(cur[k], dict):
        for sk, sv in v.items():
            if sk not in cur[k]:
                cur[k][sk] = sv
                added.append("%s.%s" % (k, sk))
            elif cur[k][sk] != sv:
                print("KEEP %s.%s=%s (this script would use %s)" % (k, sk, json.dumps(cur[k][sk]), json.dumps(sv)))
    elif cur[k] != v:
        print("KEEP %s=%s (this script would use %s)" % (k, json.dumps(cur[k]), json.dumps(v)))
if added:
    tmp = path + ".probe-tmp"
    with open(tmp, "w") as f:
        json.dump(cur, f, indent=2)
        f.write("\n")
    if not new_file:
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    os.replace(tmp, path)
    print(("CREATED " if new_file else "ADDED ") + " ".join(added))
EOF
)
while IFS= read -r line; do
    case "$line" in
        ERROR*) die "${line#ERROR }" ;;
        KEEP*) warn "daemon.json: keeping the existing ${line#KEEP }" ;;
        CREATED*) DAEMON_JSON_CHANGED=1; changed "created $DAEMON_JSON with ${line#CREATED }" ;;
        ADDED*) DAEMON_JSON_CHANGED=1; changed "added to $DAEMON_JSON: ${line#ADDED }" ;;
    esac
done <<< "$merge_out"
[ "$DAEMON_JSON_CHANGED" = 1 ] || log "docker: $DAEMON_JSON already has what is needed"

# ---------------------------------------------------------------- dockerd
docker_up() { timeout 10 "$DOCKER" info >/dev/null 2>&1; }

start_dockerd() {
    if has_systemd; then
        log "docker: systemctl start docker"
        systemctl start docker
    else
        log "docker: starting dockerd detached (log: $DOCKER_DAEMON_LOG)"
        printf '\n==== %s: dockerd started by setup-engines.sh\n' "$(date -Is)" >> "$DOCKER_DAEMON_LOG"
        setsid -f nohup "$DOCKERD" >> "$DOCKER_DAEMON_LOG" 2>&1 < /dev/null
    fi
    local deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do
        docker_up && return 0
        sleep 1
    done
    if has_systemd; then
        die "dockerd did not answer within 60 s; see: journalctl -u docker"
    fi
    die "dockerd did not answer within 60 s; see $DOCKER_DAEMON_LOG"
}

stop_dockerd() {
    if has_systemd; then systemctl stop docker; return; fi
    local pid deadline=$((SECONDS + 30))
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    [ -n "$pid" ] || die "dockerd runs but /var/run/docker.pid is missing: restart it yourself"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "dockerd (pid $pid) did not stop within 30 s"
        sleep 1
    done
}

if docker_up; then
    if [ "$DAEMON_JSON_CHANGED" = 1 ]; then
        running=$("$DOCKER" ps -q | wc -l)
        if [ "$running" -eq 0 ]; then
            log "docker: restarting dockerd so that the new daemon.json applies"
            stop_dockerd
            start_dockerd
            changed "restarted dockerd"
        else
            warn "daemon.json changed but $running container(s) are running: restart dockerd yourself"
        fi
    else
        log "docker: dockerd already running"
    fi
else
    start_dockerd
    changed "started dockerd"
fi
log "docker: daemon $("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null), storage driver $("$DOCKER" info --format '{{.Driver}}')"

# ---------------------------------------------------------------- podman config
PODMAN_CONF=""
if [ "$CGROUP_LAYOUT" != v2 ]; then
    # crun 1.8 refuses v1 and hybrid hierarchies ("cgroups in hybrid mode not supported").
    PODMAN_CONF+=$'[engine]\nruntime = "runc"\n'
fi
if ! has_systemd; then
    # No systemd: no systemd cgroup manager and no journald to log events to.
    [ -n "$PODMAN_CONF" ] || PODMAN_CONF+=$'[engine]\n'
    PODMAN_CONF+=$'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
fi
if [ "$NEED_ULIMITS" = 1 ]; then
    PODMAN_CONF=$'[containers]\n'"default_ulimits = [\"nofile=$NOFILE:$NOFILE\", \"nproc=$NPROC:$NPROC\"]"$'\n\n'"$PODMAN_CONF"
fi
if [ -n "$PODMAN_CONF" ]; then
    want="$MARKER"$'\n'"$PODMAN_CONF"
    if [ -e "$PODMAN_DROPIN" ]; then
        if [ "$(cat "$PODMAN_DROPIN")"$'\n' = "$want" ]; then
            log "podman: $PODMAN_DROPIN already up to date"
        elif head -n1 "$PODMAN_DROPIN" | grep -qxF "$MARKER"; then
            printf '%s' "$want" > "$PODMAN_DROPIN"
            changed "rewrote $PODMAN_DROPIN (host facts changed)"
        else
            warn "$PODMAN_DROPIN exists and was not written by this script; leaving it alone"
        fi
    else
        mkdir -p "$(dirname "$PODMAN_DROPIN")"
        printf '%s' "$want" > "$PODMAN_DROPIN"
        changed "created $PODMAN_DROPIN ($(grep -c = "$PODMAN_DROPIN") settings)"
    fi
else
    log "podman: defaults work on this host, no drop-in needed"
fi

# ---------------------------------------------------------------- rootless user
user_ok() { [ -n "$1" ] && [ "$1" != root ] && id -u "$1" >/dev/null 2>&1 && [ "$(id -u "$1")" -ne 0 ]; }

if [ -n "${SUDO_USER:-}" ] && user_ok "$SUDO_USER"; then
    ROOTLESS_USER=$SUDO_USER
elif [ -r "$RECORD" ] && user_ok "$(head -n1 "$RECORD")"; then
    ROOTLESS_USER=$(head -n1 "$RECORD")
else
    ROOTLESS_USER=probe-rootless
    if ! id -u "$ROOTLESS_USER" >/dev/null 2>&1; then
        useradd -m -s /bin/bash "$ROOTLESS_USER"
        changed "created user $ROOTLESS_USER"
    fi
fi
ROOTLESS_UID=$(id -u "$ROOTLESS_USER")
ROOTLESS_GID=$(id -g "$ROOTLESS_USER")
ROOTLESS_HOME=$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)
ROOTLESS_XDG=/run/user/$ROOTLESS_UID
log "rootless: user $ROOTLESS_USER (uid $ROOTLESS_UID, home $ROOTLESS_HOME)"
[ -d "$ROOTLESS_HOME" ] || die "home of $ROOTLESS_USER ($ROOTLESS_HOME) does not exist"

as_rootless() {
    runuser -u "$ROOTLESS_USER" -- env -i PATH=/usr/local/bin:/usr/bin:/bin \
        HOME="$ROOTLESS_HOME" USER="$ROOTLESS_USER" LOGNAME="$ROOTLESS_USER" \
        XDG_RUNTIME_DIR="$ROOTLESS_XDG" "$@"
}

# /etc/subuid, /etc/subgid: one 65536 range after every existing one
ensure_subid() {
    local file=$1
    [ -e "$file" ] || { touch "$file"; chmod 644 "$file"; }
    if grep -qE "^($ROOTLESS_USER|$ROOTLESS_UID):[0-9]+:[0-9]+" "$file"; then
        log "rootless: $file already has a range for $ROOTLESS_USER"
        return
    fi
    local start
    start=$(awk -F: 'NF>=3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ {e=$2+$3; if (e>m) m=e} END {print (m>100000?m:100000)}' "$file")
    echo "$ROOTLESS_USER:$start:65536" >> "$file"
    changed "added $ROOTLESS_USER:$start:65536 to $file"
}
ensure_subid /etc/subuid
ensure_subid /etc/subgid

# storage.conf: overlay through fuse-overlayfs
STORAGE_CONF=$ROOTLESS_HOME/.config/containers/storage.conf
STORAGE_WANT='[storage]
driver = "overlay"

[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"
'
if [ -e "$STORAGE_CONF" ]; then
    if [ "$(cat "$STORAGE_CONF")"$'\n' = "$STORAGE_WANT" ]; then
        log "rootless: $STORAGE_CONF already as wanted"
    else
        warn "$STORAGE_CONF exists and differs from what this script would write; leaving it alone"
        warn "(wanted: driver = \"overlay\", mount_program = \"/usr/bin/fuse-overlayfs\")"
    fi
else
    as_rootless mkdir -p "$(dirname "$STORAGE_CONF")"
    printf '%s' "$STORAGE_WANT" > "$STORAGE_CONF"
    chown "$ROOTLESS_UID:$ROOTLESS_GID" "$STORAGE_CONF"
    changed "created $STORAGE_CONF (overlay via fuse-overlayfs)"
fi

# XDG_RUNTIME_DIR: normally made by systemd-logind at login
if [ ! -d "$ROOTLESS_XDG" ]; then
    mkdir -p /run/user
    install -d -m 0700 -o "$ROOTLESS_UID" -g "$ROOTLESS_GID" "$ROOTLESS_XDG"
    changed "created $ROOTLESS_XDG"
else
    if [ "$(stat -c %u "$ROOTLESS_XDG")" != "$ROOTLESS_UID" ]; then
        warn "$ROOTLESS_XDG is not owned by $ROOTLESS_USER"
    fi
    log "rootless: $ROOTLESS_XDG exists"
fi

# record the choice for probe
if [ "$(head -n1 "$RECORD" 2>/dev/null || true)" != "$ROOTLESS_USER" ]; then
    mkdir -p "$(dirname "$RECORD")"
    echo "$ROOTLESS_USER" > "$RECORD"
    changed "recorded rootless user $ROOTLESS_USER in $RECORD"
else
    log "rootless: $RECORD already names $ROOTLESS_USER"
fi

# ---------------------------------------------------------------- verify
if [ "$VERIFY" = 1 ]; then
    log "verify: building a busybox test image ($TEST_TAG)"
    TMPDIR_SETUP=$(mktemp -d /tmp/probe-setup.XXXXXX)
    chmod 755 "$TMPDIR_SETUP"
    root=$TMPDIR_SETUP/rootfs
    mkdir -p "$root/bin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for a in sh true; do ln -s busybox "$root/bin/$a"; done
    tar_root() { tar -C "$root" --numeric-owner -c .; }

    tar_root | "$DOCKER" import - "$TEST_TAG" >/dev/null
    "$DOCKER" run --rm --network none "$TEST_TAG" true \
        || die "docker run failed (daemon log: $DOCKER_DAEMON_LOG)"
    "$DOCKER" rmi "$TEST_TAG" >/dev/null
    log "verify: docker run --rm --network none IMG true: ok"

    rt=$(cd / && podman info --format '{{.Host.OCIRuntime.Name}}')
    [ "$CGROUP_LAYOUT" = v2 ] || [ "$rt" = runc ] || die "podman uses runtime '$rt', expected runc ($PODMAN_DROPIN not read?)"
    tar_root | (cd / && podman import -q - "$TEST_TAG" >/dev/null)
    (cd / && podman run --rm --network none "$TEST_TAG" true) || die "podman run failed"
    (cd / && podman rmi "$TEST_TAG" >/dev/null)
    log "verify: podman (runtime $rt) run --rm --network none IMG true: ok"

    drv=$(cd / && as_rootless podman info --format '{{.Store.GraphDriverName}}')
    if [ "$drv" != overlay ]; then
        die "rootless podman uses storage driver '$drv', not overlay; if it was used before with vfs, run as $ROOTLESS_USER: podman system reset"
    fi
    tar_root | (cd / && as_rootless podman import -q - "$TEST_TAG" >/dev/null)
    (cd / && as_rootless podman run --rm --network none "$TEST_TAG" true) || die "rootless podman run failed"
    (cd / && as_rootless podman rmi "$TEST_TAG" >/dev/null)
    log "verify: rootless podman ($ROOTLESS_USER, driver $drv) run --rm --network none IMG true: ok"

    rm -rf "$TMPDIR_SETUP"; TMPDIR_SETUP=""
fi

# ---------------------------------------------------------------- summary
if [ ${#CHANGES[@]} -eq 0 ]; then
    log "nothing to change"
else
    summary=$(printf '%s; ' "${CHANGES[@]}")
    log "changed ${#CHANGES[@]} thing(s): ${summary%; }"
fi
