#!/usr/bin/env bash
# A second host for probe: a Debian 13 (trixie) guest under qemu, built from Debian's
# packages only, with what users' machines have and this VM lacks (pure cgroup v2 with the
# systemd driver, docker 26 / containerd 1.7 / runc, podman 5 with crun, netavark and pasta,
# a 6.12 kernel with device-mapper and md, a partitioned disk: root on /dev/vda1).
#
# Usage: scripts/second-host.sh [OPTIONS] [run] -- PROBE ARGS... [--then PROBE ARGS...]...
#        scripts/second-host.sh [OPTIONS] exec -- PROBE ARGS... [--then PROBE ARGS...]...
#        scripts/second-host.sh [OPTIONS] build | ssh-up | ssh-down | clean
#
#   run       (the default) boot the guest, run each probe command line in it as root (one
#             boot; `--then` separates command lines), copy the run folders it wrote into
#             RESULTS/<guest hostname>/, power off. Prints the guest's stdout and stderr as they
#             come; exits with the first failing command's status (124: timeout, 125: the
#             guest ended without one).
#   exec      the same as run, in the guest ssh-up started on --ssh-port (no boot of its own,
#             no power-off): one boot serves several callers
#   build     only build the guest image, or say it is cached (it is built by `run` if missing)
#   ssh-up    boot the guest in the background, sshd on 127.0.0.1:PORT (default 2222), and
#             print how to log in (root or probe-rootless, key in the cache): for Ansible.
#             The only mode that leaves qemu running; `ssh-down` stops it.
#   ssh-down  power the ssh-up guest off (kill it after 60 s) and remove its state
#   clean     remove the image and package caches (/var/cache/probe-second-host)
#
# Options:
#   --rebuild            rebuild the image even if a cached one matches this script
#   --keep-going         run the next --then command line even after one failed (run, exec)
#   --binary PATH        probe binary to copy in (default: target/release/probe, else
#                        target/debug/probe of this repository)
#   --results DIR        where the guest's run folders go (default: <repo>/results)
#   --ssh-port PORT      also forward 127.0.0.1:PORT to the guest's sshd (run, ssh-up); the
#                        ssh-up guest to use or stop (exec, ssh-down)
#   --boot-timeout SECS  kill qemu if the guest has not reached the script by then
#                        (default 1200 under TCG, 300 under KVM)
#   --run-timeout SECS   kill qemu (run) or the ssh session (exec) if the command lines have
#                        not finished by then (default 10800)
#   --memory MIB         guest memory (default 4096)      --cpus N   guest CPUs (default 2)
#   -h, --help           this text
#
# Every run boots a throw-away qcow2 overlay on the cached image: nothing a run does in the
# guest (images, containers) survives into the next. Nothing stays running or mounted on the
# host when the script ends, even on failure or Ctrl-C (except after ssh-up). See
# docs/second-host.md.
set -euo pipefail

PROG=second-host
log()  { printf '%s: %s\n' "$PROG" "$*" >&2; }
warn() { printf '%s: WARNING: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }   # ns -> s

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd "$(dirname "$SCRIPT_PATH")/.." && pwd)
CACHE=${PROBE_SECOND_HOST_CACHE:-/var/cache/probe-second-host}

#### BEGIN IMAGE BUILD -- any edit between these two lines changes the image's cache key
SUITE=trixie
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
GUEST_HOSTNAME=probe-trixie
ROOTLESS_USER=probe-rootless
ROOTLESS_UID=1000
DISK_SIZE_MIB=16384
GUEST_PACKAGES=(
    systemd systemd-sysv udev kmod dbus dbus-user-session libpam-systemd
    linux-image-amd64 initramfs-tools zstd apparmor
    docker.io docker-cli containerd runc iptables
    podman crun conmon catatonit fuse-overlayfs fuse3 uidmap passt netavark aardvark-dns
    busybox-static iproute2 openssh-server util-linux procps python3
    e2fsprogs xfsprogs btrfs-progs dmsetup lvm2 mdadm fdisk gdisk
)

# Runs as root in a private mount namespace (`unshare -m`): every mount made here vanishes
# with it, so none can outlive the build on the host.
guest_build_rootfs() {
    local r=$1 log=$2
    local -a in_chroot=(chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true)
    local t
    mkdir -p "$CACHE/debootstrap" "$CACHE/apt"

    t=$(now_ns)
    log "debootstrap --variant=minbase $SUITE from $MIRROR (log: $log)"
    debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" "$SUITE" "$r" "$MIRROR" >>"$log" 2>&1
    log "debootstrap done in $(secs "$t" "$(now_ns)") s"

    mount -t proc proc "$r/proc"
    mount -t sysfs sysfs "$r/sys"
    mount --bind /dev "$r/dev"
    mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts"
    # No service may start in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 0755 "$r/usr/sbin/policy-rc.d"

    rm -f "$r/etc/apt/sources.list"
    cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$r/etc/apt/apt.conf.d/90probe-no-recommends"
    cat >"$r/etc/dpkg/dpkg.cfg.d/90probe-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    # The kernel package reads this; without it, it asks nothing but warns.
    printf 'do_symlinks = no\n' >"$r/etc/kernel-img.conf"

    t=$(now_ns)
    log "apt-get install ${#GUEST_PACKAGES[@]} packages (and their dependencies) in the chroot"
    cp -l "$CACHE"/apt/*.deb "$r/var/cache/apt/archives/" 2>/dev/null || true
    "${in_chroot[@]}" apt-get -q update >>"$log" 2>&1
    "${in_chroot[@]}" apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        install "${GUEST_PACKAGES[@]}" >>"$log" 2>&1
    cp -n "$r"/var/cache/apt/archives/*.deb "$CACHE/apt/" 2>/dev/null || true
    # An initramfs with only what qemu's virtio disk needs: MODULES=most makes a 40 MB one
    # that takes a minute to unpack and run under TCG.
    printf 'MODULES=list\n' >"$r/etc/initramfs-tools/conf.d/90probe"
    printf 'virtio_pci\nvirtio_blk\next4\n' >>"$r/etc/initramfs-tools/modules"
    "${in_chroot[@]}" update-initramfs -u -k all >>"$log" 2>&1
    "${in_chroot[@]}" apt-get clean
    rm -rf "$r"/var/lib/apt/lists/*
    log "packages installed in $(secs "$t" "$(now_ns)") s"

    # ---- configuration
    echo "$GUEST_HOSTNAME" >"$r/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
        "$GUEST_HOSTNAME" >"$r/etc/hosts"
    printf '/dev/vda1\t/\text4\terrors=remount-ro\t0\t1\n' >"$r/etc/fstab"
    # A fixed machine-id: no first-boot logic (preset-all) on every throw-away boot.
    tr -d '-' </proc/sys/kernel/random/uuid >"$r/etc/machine-id"
    # Docker as Debian ships it, except: no default bridge, so no network is ever created.
    mkdir -p "$r/etc/docker"
    printf '{\n  "bridge": "none"\n}\n' >"$r/etc/docker/daemon.json"
    # The rootless user probe looks for by default, with subordinate ids, and lingering so
    # its systemd user instance (and /run/user/UID) exists without a login.
    "${in_chroot[@]}" useradd -m -u "$ROOTLESS_UID" -U -s /bin/bash "$ROOTLESS_USER"
    local f
    for f in subuid subgid; do
        grep -q "^$ROOTLESS_USER:" "$r/etc/$f" 2>/dev/null || echo "$ROOTLESS_USER:100000:65536" >>"$r/etc/$f"
    done
    mkdir -p "$r/var/lib/systemd/linger"
    : >"$r/var/lib/systemd/linger/$ROOTLESS_USER"
    # sshd (used only by ssh-up or --ssh-port): keys only.
    printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n' \
        >"$r/etc/ssh/sshd_config.d/90probe.conf"
    # Nothing periodic that would reach for a network or disturb a measurement.
    "${in_chroot[@]}" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
        fstrim.timer dpkg-db-backup.timer >>"$log" 2>&1
    "${in_chroot[@]}" systemctl enable containerd.service docker.service >>"$log" 2>&1

    # The agent: once the boot is over, mount the 9p share, run its cmd.sh, leave the output
    # and the exit status there, power off (unless cmd.sh asked to stay up).
    cat >"$r/usr/local/sbin/probe-second-host-agent" <<'EOF'
#!/bin/bash
# probe second host: run /mnt/probe/cmd.sh from the 9p share once the boot is over.
set -u
share=/mnt/probe
systemctl is-system-running --wait >/dev/null 2>&1   # "degraded" is accepted
state=$(systemctl is-system-running 2>/dev/null)
mkdir -p "$share"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 probe "$share"; then
    echo "probe-second-host-agent: cannot mount the 9p share 'probe'; powering off" >/dev/console
    systemctl poweroff
    exit 1
fi
hostname >"$share/hostname"
echo "$state" >"$share/boot-state"
systemctl list-units --failed --no-legend --plain >"$share/failed-units" 2>&1
date +%s >"$share/started"
rc=0
if [ -f "$share/cmd.sh" ]; then
    bash "$share/cmd.sh" >>"$share/stdout" 2>>"$share/stderr" </dev/null || rc=$?
fi
echo "$rc" >"$share/rc.tmp" && mv "$share/rc.tmp" "$share/rc"
sync
if [ ! -e "$share/stay" ]; then
    cd / && umount "$share"
    systemctl poweroff
fi
EOF
    chmod 0755 "$r/usr/local/sbin/probe-second-host-agent"
    cat >"$r/etc/systemd/system/probe-second-host.service" <<'EOF'
[Unit]
Description=probe second host: run the command script from the 9p share, then power off
After=multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/probe-second-host-agent
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
    "${in_chroot[@]}" systemctl enable probe-second-host.service >>"$log" 2>&1

    # What went in, for the manifest.
    {
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $MIRROR $SUITE"
        echo "kernel $(basename "$(ls "$r"/boot/vmlinuz-* | sort -V | tail -1)" | sed 's/^vmlinuz-//')"
        "${in_chroot[@]}" dpkg-query -W -f '${Package} ${Version}\n' libc6 systemd linux-image-amd64 \
            docker.io docker-cli containerd runc podman crun conmon fuse-overlayfs passt netavark \
            openssh-server python3 lvm2 mdadm 2>/dev/null
    } >"$r/../manifest.txt"

    rm -f "$r/usr/sbin/policy-rc.d"
    # Anything a package script left running in the chroot would pin it: end it.
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
    done
    umount "$r/dev/pts" "$r/dev" "$r/sys" "$r/proc"
}
#### END IMAGE BUILD

image_key() {
    sed -n '/^#### BEGIN IMAGE BUILD/,/^#### END IMAGE BUILD/p' "$SCRIPT_PATH" | sha256sum | cut -c1-16
}

# ------------------------------------------------------------------ internal: chroot build
if [ "${1:-}" = __chroot-build ]; then
    PROG="second-host(build)"
    guest_build_rootfs "$2" "$3"
    exit 0
fi

# ------------------------------------------------------------------ arguments
CMD="" REBUILD=0 KEEP_GOING=0 BINARY="" RESULTS="$REPO_ROOT/results" SSH_PORT=""
BOOT_TIMEOUT="" RUN_TIMEOUT=10800 MEMORY=4096 CPUS=2
ARGS=()
need_val() { [ $# -ge 2 ] || die "$1 needs a value (try --help)"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild) REBUILD=1 ;;
        --keep-going) KEEP_GOING=1 ;;
        --binary) need_val "$@"; BINARY=$2; shift ;;
        --results) need_val "$@"; RESULTS=$2; shift ;;
        --ssh-port) need_val "$@"; SSH_PORT=$2; shift ;;
        --boot-timeout) need_val "$@"; BOOT_TIMEOUT=$2; shift ;;
        --run-timeout) need_val "$@"; RUN_TIMEOUT=$2; shift ;;
        --memory) need_val "$@"; MEMORY=$2; shift ;;
        --cpus) need_val "$@"; CPUS=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; ARGS=("$@"); break ;;
        build|run|exec|ssh-up|ssh-down|clean)
            [ -z "$CMD" ] || die "two subcommands: $CMD and $1"
            CMD=$1 ;;
        *) die "unknown argument: $1 (probe's arguments go after --; try --help)" ;;
    esac
    shift
done
CMD=${CMD:-run}
for v in "$RUN_TIMEOUT" "$MEMORY" "$CPUS" ${BOOT_TIMEOUT:+"$BOOT_TIMEOUT"} ${SSH_PORT:+"$SSH_PORT"}; do
    [[ "$v" =~ ^[0-9]+$ ]] || die "not a number: $v"
done
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, qemu's 9p share)"

IMG_DIR="$CACHE/images/$(image_key)"

# ------------------------------------------------------------------ cleanup
TMP="" QEMU_PID="" TAIL_PIDS=() BUILD_WORK="" KEEP_QEMU=0 EXEC_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$QEMU_PID" ] && [ "$KEEP_QEMU" = 0 ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill -TERM "$QEMU_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
        log "qemu (pid $QEMU_PID) killed"
    fi
    # exec's ssh runs in the background, where Ctrl-C does not reach it.
    [ -n "$EXEC_PID" ] && kill "$EXEC_PID" 2>/dev/null || true
    local p
    for p in "${TAIL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$TMP" ] && rm -rf "$TMP"
    if [ -n "$BUILD_WORK" ] && [ -d "$BUILD_WORK" ]; then
        if grep -q " $BUILD_WORK" /proc/self/mountinfo; then
            warn "something is still mounted under $BUILD_WORK: left in place"
        else
            rm -rf "$BUILD_WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ host tools
host_codename() { (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}"); }
ensure_host_tools() {
    local -a missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v sfdisk >/dev/null || missing+=(fdisk)
    command -v mke2fs >/dev/null || missing+=(e2fsprogs)
    command -v unshare >/dev/null || missing+=(util-linux)
    local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
    if [ ${#missing[@]} -gt 0 ]; then
        command -v apt-get >/dev/null || die "missing on the host: ${missing[*]}"
        log "host: installing ${missing[*]}"
        "${apt[@]}" install --no-install-recommends "${missing[@]}" >&2
    fi
    if ! command -v qemu-system-x86_64 >/dev/null; then
        command -v apt-get >/dev/null || die "qemu-system-x86_64 is missing"
        if [ "$(host_codename)" = bookworm ]; then
            # bookworm's qemu 7.2 would replace a newer qemu-utils: take both from backports.
            if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
                log "host: adding bookworm-backports (/etc/apt/sources.list.d/probe-bookworm-backports.list)"
                echo 'deb http://deb.debian.org/debian bookworm-backports main' \
                    >/etc/apt/sources.list.d/probe-bookworm-backports.list
            fi
            log "host: installing qemu-system-x86 and qemu-utils from bookworm-backports"
            if [ -f /etc/apt/sources.list.d/probe-bookworm-backports.list ]; then
                # Refresh that one list only (the host may list sources that are not reachable).
                "${apt[@]}" update -o Dir::Etc::sourcelist=sources.list.d/probe-bookworm-backports.list \
                    -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2
            else
                "${apt[@]}" update >&2
            fi
            "${apt[@]}" install --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils >&2
        else
            log "host: installing qemu-system-x86 and qemu-utils"
            "${apt[@]}" install --no-install-recommends qemu-system-x86 qemu-utils >&2
        fi
    fi
    command -v qemu-img >/dev/null || "${apt[@]}" install --no-install-recommends qemu-utils >&2
}

# ------------------------------------------------------------------ build
image_ready() {
    [ -f "$IMG_DIR/manifest.txt" ] && [ -f "$IMG_DIR/disk.raw" ] && [ -f "$IMG_DIR/vmlinuz" ] \
        && [ -f "$IMG_DIR/initrd.img" ]
}

build_image() {
    ensure_host_tools
    mkdir -p "$CACHE/images"
    exec 9>"$CACHE/lock"
    flock -w 3600 9 || die "another build holds $CACHE/lock"
    if image_ready && [ "$REBUILD" = 0 ]; then
        log "image: cached, $IMG_DIR ($(sed -n 2p "$IMG_DIR/manifest.txt"))"
        exec 9>&-
        return 0
    fi
    local t0 t log
    t0=$(now_ns)
    BUILD_WORK="$CACHE/images/.build-$$"
    rm -rf "$BUILD_WORK"
    mkdir -p "$BUILD_WORK/rootfs"
    log="$CACHE/build.log"
    : >"$log"
    log "image: building Debian $SUITE guest into $IMG_DIR"
    if ! unshare --mount --propagation private -- bash "$SCRIPT_PATH" __chroot-build "$BUILD_WORK/rootfs" "$log"; then
        tail -n 30 "$log" >&2
        die "image build failed (whole log: $log)"
    fi
    local r="$BUILD_WORK/rootfs" kver
    kver=$(ls "$r"/boot/vmlinuz-* | sort -V | tail -1)
    kver=${kver##*/vmlinuz-}
    cp "$r/boot/vmlinuz-$kver" "$BUILD_WORK/vmlinuz"
    cp "$r/boot/initrd.img-$kver" "$BUILD_WORK/initrd.img"

    t=$(now_ns)
    local disk="$BUILD_WORK/disk.raw" start size
    truncate -s "${DISK_SIZE_MIB}M" "$disk"
    printf 'label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n' \
        | sfdisk -q "$disk" >>"$log" 2>&1
    read -r start size < <(sfdisk -d "$disk" | sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2/p' | head -1)
    [ -n "$start" ] && [ -n "$size" ] || die "cannot read partition 1 of $disk"
    # ext4 written straight into partition 1 of the image file: no loop device, no mount.
    mke2fs -q -F -t ext4 -L probe-root \
        -E "offset=$((start * 512)),nodiscard,lazy_itable_init=1,lazy_journal_init=1" \
        -d "$r" "$disk" "$(( size / 8 * 4 ))k" >>"$log" 2>&1
    log "disk: GPT, ext4 on partition 1 (start sector $start, $(( size / 2048 )) MiB), $(du -sh "$disk" | cut -f1) used, in $(secs "$t" "$(now_ns)") s"

    rm -rf "$r"

    # First boot, once, into the image itself: apparmor compiles its ~100 profiles into its
    # cache and docker and podman set up their state (minutes under TCG), so that every run's
    # boot does not; and an image that does not boot is never cached.
    t=$(now_ns)
    local w="$BUILD_WORK/warm"
    mkdir -p "$w/share"
    : >"$w/share/stdout"; : >"$w/share/stderr"
    cat >"$w/share/cmd.sh" <<'WARM'
systemctl start containerd.service docker.service
for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info --format 'docker: {{.ServerVersion}}'
podman info --format 'podman: {{.Version.Version}}'
cd / && runuser -u probe-rootless -- env HOME=/home/probe-rootless XDG_RUNTIME_DIR=/run/user/1000 \
    podman info --format 'podman rootless: {{.Store.GraphDriverName}}'
WARM
    pick_accel
    log "warm-up boot of the new image (apparmor cache, engines' state; checks that it boots)"
    start_qemu_bg "$w" "$BUILD_WORK/disk.raw" raw "$BUILD_WORK"
    wait_guest "$w"
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=""
    cp "$w/console.log" "$CACHE/warm-up-console.log"
    if [ -n "$TIMED_OUT" ] || [ "$(cat "$w/share/rc" 2>/dev/null)" != 0 ]; then
        sed 's/^/  /' "$w/share/stderr" >&2
        die "the warm-up boot failed (console: $CACHE/warm-up-console.log)"
    fi
    sed 's/^/  guest: /' "$w/share/stdout" >&2
    log "warm-up boot: script after $(secs "$T_START" "$T_STARTED") s, done in $(secs "$t" "$(now_ns)") s"

    rm -rf "$IMG_DIR"
    mkdir -p "$IMG_DIR"
    mv "$BUILD_WORK/disk.raw" "$BUILD_WORK/vmlinuz" "$BUILD_WORK/initrd.img" "$IMG_DIR/"
    mv "$BUILD_WORK/manifest.txt" "$IMG_DIR/manifest.txt"   # last: marks the image complete
    rm -rf "$BUILD_WORK"; BUILD_WORK=""
    # Images built from other versions of this script are of no further use.
    local d
    for d in "$CACHE"/images/*/; do
        [ "${d%/}" = "$IMG_DIR" ] || rm -rf "${d%/}"
    done
    log "image: built in $(secs "$t0" "$(now_ns)") s: $IMG_DIR"
    sed 's/^/  /' "$IMG_DIR/manifest.txt" >&2
    exec 9>&-
}

# ------------------------------------------------------------------ boot
pick_accel() {
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
        ACCEL=(-accel kvm -cpu host); BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}; ACCEL_NAME=kvm
    else
        # /dev/kvm without vmx/svm (e.g. kvm-pvm) cannot run a stock kernel: emulate.
        ACCEL=(-accel tcg,thread=multi -cpu max); BOOT_TIMEOUT=${BOOT_TIMEOUT:-1200}; ACCEL_NAME=tcg
    fi
}

# qemu_cmd DIR [DISK FORMAT KERNEL_DIR]: the command line booting DIR/disk.qcow2 (an overlay
# on the cached image) or DISK, with DIR/share as the 9p share.
qemu_cmd() {
    local dir=$1 disk=${2:-$1/disk.qcow2} fmt=${3:-qcow2} kdir=${4:-$IMG_DIR}
    QEMU=(qemu-system-x86_64 -name probe-second-host -nodefaults -no-user-config -machine q35
        "${ACCEL[@]}" -m "$MEMORY" -smp "$CPUS"
        -kernel "$kdir/vmlinuz" -initrd "$kdir/initrd.img"
        -append "root=/dev/vda1 rw console=ttyS0 systemd.unified_cgroup_hierarchy=1"
        -drive "file=$disk,if=virtio,format=$fmt"
        -virtfs "local,path=$dir/share,mount_tag=probe,security_model=none,id=probe"
        -device virtio-rng-pci
        -display none -monitor none -serial "file:$dir/console.log" -no-reboot)
    if [ -n "$SSH_PORT" ]; then
        # restrict=on: the guest reaches nothing; only this forward reaches it.
        QEMU+=(-netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22"
            -device virtio-net-pci,netdev=net0,romfile=)
    else
        QEMU+=(-nic none)
    fi
}

prepare_guest_dir() {   # DIR: overlay disk and an empty share
    local dir=$1
    mkdir -p "$dir/share"
    qemu-img create -q -f qcow2 -F raw -b "$IMG_DIR/disk.raw" "$dir/disk.qcow2"
    : >"$dir/share/stdout"
    : >"$dir/share/stderr"
}

resolve_binary() {
    if [ -z "$BINARY" ]; then
        for b in "$REPO_ROOT/target/release/probe" "$REPO_ROOT/target/debug/probe"; do
            [ -x "$b" ] && { BINARY=$b; break; }
        done
        [ -n "$BINARY" ] || die "no probe binary: cargo build, or give --binary PATH"
    fi
    [ -f "$BINARY" ] && [ -x "$BINARY" ] || die "not an executable file: $BINARY"
    # A glibc-linked binary runs in the guest if it needs no newer glibc than the guest's.
    local need have
    need=$(grep -aoE 'GLIBC_2\.[0-9]+' "$BINARY" | sed 's/GLIBC_//' | sort -uV | tail -1 || true)
    have=$(awk '$1 == "libc6" { split($2, v, "-"); print v[1] }' "$IMG_DIR/manifest.txt")
    if [ -n "$need" ] && [ -n "$have" ]; then
        [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | tail -1)" = "$have" ] \
            || die "$BINARY needs glibc $need, the guest has $have"
        log "binary: $BINARY ($(du -h "$BINARY" | cut -f1), needs glibc >= $need; guest has $have)"
    else
        log "binary: $BINARY ($(du -h "$BINARY" | cut -f1))"
    fi
}

# The guest side of `run` and `exec`: versions, engines up, each command line, results to
# GUEST_DIR (the 9p share's root for `run`, a folder of its own in it for each `exec`).
write_run_script() {
    local out=$1 guest_dir=$2 line arg
    {
        cat <<EOF
#!/bin/bash
set -u
SHARE=$guest_dir
KEEP_GOING=$KEEP_GOING
EOF
        cat <<'EOF'
note() { printf 'second-host(guest): %s\n' "$*" >&2; }
first_line() { "$@" 2>&1 | grep -m 1 -E '[0-9]+\.[0-9]+'; }   # the line with a version
install -m 0755 "$SHARE/probe" /usr/local/bin/probe
if ldd /usr/local/bin/probe 2>&1 | grep -q 'not found'; then
    ldd /usr/local/bin/probe >&2; note "the probe binary cannot run here"; exit 127
fi
modprobe fuse 2>/dev/null || true
systemctl start containerd.service docker.service
for _ in $(seq 180); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null 2>&1 || { note "dockerd did not come up"; systemctl status docker --no-pager >&2; }
[ -c /dev/fuse ] || note "/dev/fuse is missing"
{
    echo "hostname: $(hostname)"
    echo "os: $(. /etc/os-release; echo "$PRETTY_NAME") ($(cat /etc/debian_version))"
    echo "kernel: $(uname -r)"
    echo "cmdline: $(cat /proc/cmdline)"
    echo "systemd: $(first_line systemctl --version) -- boot state $(cat /mnt/probe/boot-state)"
    echo "failed units: $(awk '{print $1}' /mnt/probe/failed-units | tr '\n' ' ')"
    echo "cgroup: /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
    echo "glibc: $(first_line ldd --version)"
    echo "docker: $(docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}' 2>&1)"
    echo "docker info: $(docker info --format 'cgroup v{{.CgroupVersion}} driver {{.CgroupDriver}}, storage {{.Driver}}, runtime {{.DefaultRuntime}}, security {{.SecurityOptions}}' 2>&1)"
    echo "containerd: $(first_line containerd --version)"
    echo "runc: $(first_line runc --version)"
    echo "podman: $(first_line podman --version)"
    echo "podman info: $(podman info --format 'cgroup {{.Host.CgroupsVersion}} manager {{.Host.CgroupManager}}, runtime {{.Host.OCIRuntime.Name}}, storage {{.Store.GraphDriverName}}, network {{.Host.NetworkBackend}}' 2>&1)"
    echo "crun: $(first_line crun --version)"
    echo "conmon: $(first_line conmon --version)"
    echo "fuse-overlayfs: $(dpkg-query -W -f '${Version}' fuse-overlayfs)"
    echo "pasta: passt $(dpkg-query -W -f '${Version}' passt)"
    echo "netavark: $(first_line /usr/lib/podman/netavark --version)"
    echo "/dev/fuse: $(stat -c '%A %U:%G' /dev/fuse 2>&1)"
    echo "block: $(lsblk -rno NAME,TYPE,FSTYPE,MOUNTPOINT | tr '\n' ';')"
    echo "probe: $(first_line /usr/local/bin/probe --version)"
} >"$SHARE/guest-info.txt" 2>&1
sed 's/^/second-host(guest): /' "$SHARE/guest-info.txt" >&2

mkdir -p /root/probe-work && cd /root/probe-work
rc=0 n=0
run_cmd() {
    n=$((n + 1))
    note "[$n] probe $*"
    local t0 t1 r=0
    t0=$(date +%s%N)
    probe "$@" || r=$?
    t1=$(date +%s%N)
    note "[$n] exit $r after $(( (t1 - t0) / 1000000 )) ms"
    printf '%s\t%s\t%s\tprobe %s\n' "$n" "$r" "$(( (t1 - t0) / 1000000 ))" "$*" >>"$SHARE/commands.tsv"
    [ "$rc" -ne 0 ] || rc=$r
    return "$r"
}
finish() {
    if [ -d results ]; then
        mkdir -p "$SHARE/results"
        cp -R -P --preserve=mode,timestamps results/. "$SHARE/results/"
    fi
    exit "$rc"
}
EOF
        # One run_cmd line per command line; words quoted for bash.
        line=""
        for arg in "${ARGS[@]}" --then; do
            if [ "$arg" = --then ]; then
                [ -n "$line" ] || die "an empty command line between --then's"
                printf 'run_cmd%s || [ "$KEEP_GOING" = 1 ] || finish\n' "$line"
                line=""
            else
                line+=" $(printf '%q' "$arg")"
            fi
        done
        echo finish
    } >"$out"
}

# wait_guest DIR: wait for the guest in DIR to start and finish its script, streaming its
# output; sets T_START, T_STARTED, T_DONE (ns) and TIMED_OUT.
wait_guest() {
    local dir=$1 pidfile_mode=${2:-} t
    T_STARTED="" T_DONE="" TIMED_OUT=""
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        t=$(now_ns)
        if [ -z "$T_STARTED" ] && [ -e "$dir/share/started" ]; then
            T_STARTED=$t
            log "guest: script started $(secs "$T_START" "$t") s after qemu started (systemd: $(cat "$dir/share/boot-state" 2>/dev/null))"
            if [ -s "$dir/share/failed-units" ]; then
                log "guest: failed units: $(awk '{print $1}' "$dir/share/failed-units" | tr '\n' ' ')"
            fi
        fi
        if [ -z "$T_DONE" ] && [ -e "$dir/share/rc" ]; then
            T_DONE=$t
            [ -n "$pidfile_mode" ] && return 0
        fi
        if [ -z "$T_STARTED" ] && (( (t - T_START) / 1000000000 > BOOT_TIMEOUT )); then
            TIMED_OUT=boot; break
        fi
        if [ -n "$T_STARTED" ] && [ -z "$T_DONE" ] && (( (t - T_STARTED) / 1000000000 > RUN_TIMEOUT )); then
            TIMED_OUT=run; break
        fi
        sleep 0.5
    done
    if [ -n "$TIMED_OUT" ]; then
        kill -KILL "$QEMU_PID" 2>/dev/null || true
        if [ "$TIMED_OUT" = boot ]; then
            log "TIMEOUT: the guest did not reach its script within $BOOT_TIMEOUT s (--boot-timeout): qemu killed"
        else
            log "TIMEOUT: the commands did not finish within $RUN_TIMEOUT s (--run-timeout): qemu killed"
        fi
        log "last lines of the guest console:"
        tail -n 25 "$dir/console.log" | sed 's/^/  | /' >&2
    fi
}

start_qemu_bg() {   # DIR [DISK FORMAT KERNEL_DIR], as qemu_cmd
    local dir=$1
    qemu_cmd "$@"
    log "boot: qemu ${ACCEL_NAME}, ${MEMORY} MiB, ${CPUS} CPUs, $( [ -n "$SSH_PORT" ] && echo "ssh on 127.0.0.1:$SSH_PORT" || echo "no network")"
    T_START=$(now_ns)
    "${QEMU[@]}" >"$dir/qemu.log" 2>&1 &
    QEMU_PID=$!
}

# stream_output SHARE PID: the guest's stdout and stderr, as they come, while PID lives.
stream_output() {
    tail -q -n +1 -s 0.5 -f --pid="$2" "$1/stdout" &
    TAIL_PIDS+=($!)
    tail -q -n +1 -s 0.5 -f --pid="$2" "$1/stderr" >&2 &
    TAIL_PIDS+=($!)
}

# bring_home SHARE CONSOLE T_ALL [TIMING...]: the run folders the guest script left in SHARE,
# under RESULTS/<guest hostname>/, with this run's logs; then the timings.
bring_home() {
    local share=$1 console=$2 t_all=$3 hn dest logs d f
    shift 3
    local p
    for p in "${TAIL_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    TAIL_PIDS=()
    hn=$(cat "$share/hostname" 2>/dev/null || echo "$GUEST_HOSTNAME")
    dest="$RESULTS/$hn"
    logs="$dest/second-host-logs/$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$logs"
    cp "$console" "$logs/"
    for f in guest-info.txt commands.tsv stdout stderr failed-units boot-state cmd.sh; do
        [ -e "$share/$f" ] && cp "$share/$f" "$logs/" || true
    done
    if [ -d "$share/results" ]; then
        for d in "$share/results"/*; do
            [ -e "$d" ] || [ -L "$d" ] || continue
            if [ -L "$d" ]; then
                ln -sfn "$(readlink "$d")" "$dest/$(basename "$d")"
            elif [ ! -e "$dest/$(basename "$d")" ]; then
                cp -R -P --preserve=mode,timestamps "$d" "$dest/"
                log "results: $dest/$(basename "$d")"
            fi
        done
    fi
    if [ -n "${SUDO_UID:-}" ]; then chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$dest" || true; fi

    local summary="$1" n r ms cmdline
    shift
    if [ -s "$share/commands.tsv" ]; then
        while IFS=$'\t' read -r n r ms cmdline; do
            summary+="; [$n] $cmdline: $(awk -v m="$ms" 'BEGIN{printf "%.1f", m/1000}') s, exit $r"
        done <"$share/commands.tsv"
    fi
    for f in "$@"; do summary+="; $f"; done
    summary+="; total $(secs "$t_all" "$(now_ns)") s"
    log "timings: $summary"
    log "logs: $logs"
}

do_run() {
    [ ${#ARGS[@]} -gt 0 ] || die "nothing to run: give probe's arguments after -- (e.g. -- doctor)"
    local t_all rc
    t_all=$(now_ns)
    build_image
    resolve_binary
    pick_accel
    TMP=$(mktemp -d /tmp/probe-second-host.XXXXXX)
    prepare_guest_dir "$TMP"
    cp "$BINARY" "$TMP/share/probe"
    write_run_script "$TMP/share/cmd.sh" /mnt/probe
    start_qemu_bg "$TMP"
    stream_output "$TMP/share" "$QEMU_PID"
    wait_guest "$TMP"
    rc=0; wait "$QEMU_PID" 2>/dev/null || rc=$?
    local t_end; t_end=$(now_ns)
    QEMU_PID=""
    [ -z "$TIMED_OUT" ] && [ "$rc" -ne 0 ] && { warn "qemu exited with status $rc:"; sed 's/^/  /' "$TMP/qemu.log" >&2; }

    bring_home "$TMP/share" "$TMP/console.log" "$t_all" \
        "boot to script $( [ -n "$T_STARTED" ] && secs "$T_START" "$T_STARTED" || echo '-') s" \
        ${T_DONE:+"power-off $(secs "$T_DONE" "$t_end") s"}

    [ -z "$TIMED_OUT" ] || exit 124
    if [ ! -e "$TMP/share/rc" ]; then
        log "the guest ended without an exit status; last lines of its console:"
        tail -n 25 "$TMP/console.log" | sed 's/^/  | /' >&2
        exit 125
    fi
    exit "$(cat "$TMP/share/rc")"
}

# `exec`: the same command lines as `run`, in the guest `ssh-up` started, without a boot of
# their own (one boot then serves several callers: scripts/second-host-ci.sh runs its subset
# and the fleet test in it). The script goes through the 9p share that stays mounted in that
# guest, in a folder of its own; ssh only starts it and carries its exit status.
do_exec() {
    [ ${#ARGS[@]} -gt 0 ] || die "nothing to run: give probe's arguments after -- (e.g. -- doctor)"
    SSH_PORT=${SSH_PORT:-2222}
    local st t_all rc name
    st=$(ssh_state)
    [ -f "$st/qemu.pid" ] && kill -0 "$(cat "$st/qemu.pid")" 2>/dev/null \
        || die "no guest is up on port $SSH_PORT: start one with \`$0 ssh-up --ssh-port $SSH_PORT\`"
    t_all=$(now_ns)
    resolve_binary
    name=exec-$(date +%Y%m%d-%H%M%S)-$$
    TMP="$st/share/$name"   # removed by cleanup: the results are copied home first
    mkdir -p "$TMP"
    : >"$TMP/stdout"; : >"$TMP/stderr"
    cp "$BINARY" "$TMP/probe"
    cp "$st/share/hostname" "$st/share/boot-state" "$st/share/failed-units" "$TMP/"
    write_run_script "$TMP/cmd.sh" "/mnt/probe/$name"
    ssh_opts
    log "exec: in the guest on 127.0.0.1:$SSH_PORT (qemu pid $(cat "$st/qemu.pid"))"
    # The output goes to the share from the guest side, as in `run`: a dropped ssh session
    # then loses nothing of it.
    timeout --kill-after=10 "$RUN_TIMEOUT" "${SSH[@]}" root@127.0.0.1 \
        "bash /mnt/probe/$name/cmd.sh >>/mnt/probe/$name/stdout 2>>/mnt/probe/$name/stderr" &
    EXEC_PID=$!
    stream_output "$TMP" "$EXEC_PID"
    rc=0; wait "$EXEC_PID" || rc=$?
    EXEC_PID=""
    bring_home "$TMP" "$st/console.log" "$t_all" "no boot (ssh-up guest)"
    case $rc in
        124|137) log "TIMEOUT: the commands did not finish within $RUN_TIMEOUT s (--run-timeout)"; exit 124 ;;
        255) log "ssh to 127.0.0.1:$SSH_PORT failed (status 255)"; exit 125 ;;
    esac
    exit "$rc"
}

# ------------------------------------------------------------------ ssh-up / ssh-down
ssh_state() { echo "$CACHE/ssh/port-$SSH_PORT"; }
ssh_opts() {
    SSH=(ssh -i "$CACHE/ssh/id_ed25519" -p "$SSH_PORT" -o BatchMode=yes -o ConnectTimeout=5
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
        -o ServerAliveInterval=30 -o ServerAliveCountMax=10)
}

do_ssh_up() {
    SSH_PORT=${SSH_PORT:-2222}
    local st; st=$(ssh_state)
    if [ -f "$st/qemu.pid" ] && kill -0 "$(cat "$st/qemu.pid")" 2>/dev/null; then
        log "already up: $st (pid $(cat "$st/qemu.pid"))"; ssh_opts
        log "log in: ${SSH[*]} root@127.0.0.1"; return 0
    fi
    build_image
    pick_accel
    [ -f "$CACHE/ssh/id_ed25519" ] || { mkdir -p "$CACHE/ssh"; ssh-keygen -q -t ed25519 -N '' -C probe-second-host -f "$CACHE/ssh/id_ed25519"; }
    rm -rf "$st"
    TMP=$st   # removed by cleanup unless the guest comes up
    prepare_guest_dir "$st"
    cp "$CACHE/ssh/id_ed25519.pub" "$st/share/authorized_keys"
    if [ -n "$BINARY" ] || [ -x "$REPO_ROOT/target/release/probe" ] || [ -x "$REPO_ROOT/target/debug/probe" ]; then
        resolve_binary; cp "$BINARY" "$st/share/probe"
    fi
    cat >"$st/share/cmd.sh" <<EOF
#!/bin/bash
set -eu
S=/mnt/probe
[ -f \$S/probe ] && install -m 0755 \$S/probe /usr/local/bin/probe
for h in /root /home/$ROOTLESS_USER; do
    install -d -m 0700 \$h/.ssh && install -m 0600 \$S/authorized_keys \$h/.ssh/authorized_keys
    chown -R --reference=\$h \$h/.ssh
done
# qemu's user network (restrict=on): fixed addresses, no DHCP needed.
dev=\$(ls /sys/class/net | grep -v '^lo\$' | head -n 1)
ip link set dev "\$dev" up
ip addr add 10.0.2.15/24 dev "\$dev"
ip route add default via 10.0.2.2
systemctl start ssh.service
touch \$S/stay
EOF
    qemu_cmd "$st"
    log "boot: qemu ${ACCEL_NAME}, ${MEMORY} MiB, ${CPUS} CPUs, ssh on 127.0.0.1:$SSH_PORT (in the background)"
    T_START=$(now_ns)
    "${QEMU[@]}" -daemonize -pidfile "$st/qemu.pid" >"$st/qemu.log" 2>&1 || { cat "$st/qemu.log" >&2; die "qemu did not start"; }
    QEMU_PID=$(cat "$st/qemu.pid")
    wait_guest "$st" pidfile
    [ -z "$TIMED_OUT" ] && [ -n "$T_DONE" ] || die "the guest did not come up (console: $st/console.log)"
    [ "$(cat "$st/share/rc")" = 0 ] || { cat "$st/share/stderr" >&2; die "the guest's ssh setup failed"; }
    ssh_opts
    for _ in $(seq 60); do "${SSH[@]}" root@127.0.0.1 true 2>/dev/null && break; sleep 2; done
    "${SSH[@]}" root@127.0.0.1 true || die "sshd does not answer on 127.0.0.1:$SSH_PORT"
    KEEP_QEMU=1; TMP=""
    log "up after $(secs "$T_START" "$(now_ns)") s: qemu pid $QEMU_PID, state in $st"
    log "log in:  ${SSH[*]} root@127.0.0.1     (or probe-rootless@127.0.0.1)"
    log "ansible: 127.0.0.1 ansible_port=$SSH_PORT ansible_user=root ansible_ssh_private_key_file=$CACHE/ssh/id_ed25519 ansible_python_interpreter=/usr/bin/python3"
    log "stop:    $0 ssh-down --ssh-port $SSH_PORT"
}

do_ssh_down() {
    SSH_PORT=${SSH_PORT:-2222}
    local st pid; st=$(ssh_state)
    if [ ! -f "$st/qemu.pid" ]; then log "no guest on port $SSH_PORT"; rm -rf "$st"; return 0; fi
    pid=$(cat "$st/qemu.pid")
    if kill -0 "$pid" 2>/dev/null; then
        ssh_opts
        "${SSH[@]}" root@127.0.0.1 systemctl poweroff 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; log "qemu (pid $pid) killed"; else log "guest powered off"; fi
    fi
    rm -rf "$st"
}

# One line, read whole before it runs: editing this file during a run cannot derail it.
main() {
    case "$CMD" in
        build)
            build_image
            ls -l "$IMG_DIR" >&2 ;;
        run) do_run ;;
        exec) do_exec ;;
        ssh-up) do_ssh_up ;;
        ssh-down) do_ssh_down ;;
        clean)
            for p in "$CACHE"/ssh/port-*/qemu.pid; do
                [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null && die "a guest is up ($p): ssh-down first"
            done
            rm -rf "$CACHE"; log "removed $CACHE" ;;
    esac
}
main; exit
