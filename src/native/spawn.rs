//! The lifecycle of one native container, in the order the phases happen:
//!
//! parent: rootfs prepare → cgroup create → clone3 (pid [+user] namespace, CLONE_INTO_CGROUP)
//! init:   cgroup attach (v1) → unshare mnt, uts, ipc, net, cgroup → make / private →
//!         rootfs mount → /proc, /dev, /sys → pivot_root → capabilities, no_new_privs → execve
//! parent: workload (execve → exit) → reap → cgroup rmdir → rootfs directory removal
//!
//! Everything the parent creates is held by a guard (Drop), declared in creation order, so an
//! early return unwinds in reverse: the init is killed and reaped, then its cgroup removed,
//! then its directory. Mounts live only in the container's mount namespace and vanish with it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;

use crate::native::cgroup::{self, ContainerCgroup};
use crate::sys::cgroup::CgroupLayout;
use crate::native::pipe::{read_record, Reporter, SETUP_FAILED_EXIT};
use crate::native::rootfs::{self, Prepared};
use crate::native::edges::{Snap, Source, Timeline};
use crate::native::timing::{now_ns, CounterGroup, Snapshot, Target};
use crate::native::{exec, fault, mounts, namespaces, security, interrupt, volumes};
use crate::native::{ContainerSpec, NsKind, Outcome, RuntimeError, StdioMode};
use crate::ground::NAME_PREFIX;
use crate::sys::child::wait4_pid;
use crate::ground::phase::Phase;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The layout cannot change under a running probe; reading mountinfo once saves ~100 µs per
/// container.
fn layout() -> Result<&'static CgroupLayout, crate::sys::cgroup::CgroupError> {
    static LAYOUT: OnceLock<CgroupLayout> = OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(l);
    }
    let l = crate::sys::cgroup::detect()?;
    Ok(LAYOUT.get_or_init(|| l))
}

/// Everything the container's init needs, built by the parent before clone3.
struct InitPlan<'a> {
    report_w: RawFd,
    sync_r: Option<RawFd>,
    null: Option<RawFd>,
    v1_attach: Vec<(RawFd, PathBuf)>,
    unshare: Vec<NsKind>,
    hostname: String,
    rootfs: &'a Prepared,
    storage: &'static str,
    mounts: mounts::Plan,
    /// The cgroup hierarchies again inside (privileged containers that have a cgroup).
    cgroupfs: Option<cgroup::inside::Plan>,
    volumes: volumes::Plan,
    /// None when privileged: the init keeps what the caller has.
    security: Option<security::Plan>,
    exec: exec::Plan,
    timing: bool,
}

/// A phase edge in the init, with the fault-injection hook (runtime::fault; inert unless
/// PROBE_FAULT is set): an injected `fail` exits through the same path as a failed step.
fn mark(rep: &mut Reporter, phase: Phase, detail: &str) {
    rep.mark(phase, detail);
    if fault::init_fails(phase, detail) {
        rep.fail(
            phase,
            &format_args!(
                "{phase}: {detail}: injected fault (PROBE_FAULT): {}",
                Errno::EIO
            ),
        );
    }
}

/// The container's init from clone3 to execve. Never returns: it execs or exits.
fn init_main(p: &InitPlan) -> ! {
    if let Some(fd) = p.sync_r {
        let mut b = [0u8; 1];
        // Anything but one byte means the parent gave up (its end closed): do not go on.
        loop {
            match nix::unistd::read(fd, &mut b) {
                Err(Errno::EINTR) => continue,
                Ok(1) => break,
                // SAFETY: _exit is always safe to call.
                _ => unsafe { libc::_exit(SETUP_FAILED_EXIT) },
            }
        }
    }
    if let Some(fd) = p.null {
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors; they are ours to replace.
            unsafe { libc::dup2(fd, target) };
        }
    }
    let mut rep = Reporter::new(p.report_w, p.timing);
    for (fd, path) in &p.v1_attach {
        mark(&mut rep, Phase::Cgroup, "attach");
        if let Err(errno) = cgroup::attach_self(*fd) {
            rep.fail(
                Phase::Cgroup,
                &format_args!("cgroup: attach to {}: {errno}", path.display()),
            );
        }
    }
    for &kind in &p.unshare {
        mark(&mut rep, Phase::Namespaces, kind.name());
        if let Err(e) = namespaces::unshare(kind) {
            rep.fail(Phase::Namespaces, &e);
        }
        if kind == NsKind::Uts {
            if let Err(errno) = nix::unistd::sethostname(&p.hostname) {
                rep.fail(
                    Phase::Namespaces,
                    &format_args!("namespaces: sethostname {:?}: {errno}", p.hostname),
                );
            }
        }
    }
    mark(&mut rep, Phase::Mounts, "make-rprivate");
    if let Err(e) = p.mounts.make_private() {
        rep.fail(Phase::Mounts, &e);
    }
    mark(&mut rep, Phase::Rootfs, p.storage);
    if let Err(e) = p.rootfs.mount() {
        rep.fail(Phase::Rootfs, &e);
    }
    type Step = fn(&mounts::Plan) -> Result<(), mounts::MountError>;
    let steps: [(&str, Step); 3] = [
        ("proc", mounts::Plan::proc),
        ("dev", mounts::Plan::dev),
        ("sys", mounts::Plan::sys),
    ];
    for (detail, step) in steps {
        mark(&mut rep, Phase::Mounts, detail);
        if let Err(e) = step(&p.mounts) {
            rep.fail(Phase::Mounts, &e);
        }
    }
    if let Some(cg) = &p.cgroupfs {
        mark(&mut rep, Phase::Mounts, "cgroupfs");
        if let Err(e) = cg.mount() {
            rep.fail(Phase::Mounts, &e);
        }
    }
    // Only with volumes: a container without any keeps the phase table it always had.
    if !p.volumes.is_empty() {
        mark(&mut rep, Phase::Mounts, "volumes");
        if let Err(e) = p.volumes.mount() {
            rep.fail(Phase::Mounts, &e);
        }
    }
    mark(&mut rep, Phase::Mounts, "pivot_root");
    if let Err(e) = p.mounts.pivot() {
        rep.fail(Phase::Mounts, &e);
    }
    if let Some(security) = &p.security {
        mark(&mut rep, Phase::Security, "caps+no_new_privs");
        if let Err(e) = security.apply() {
            rep.fail(Phase::Security, &e);
        }
    }
    mark(&mut rep, Phase::Exec, "execve");
    let e = p.exec.exec();
    rep.fail(Phase::Exec, &e)
}

/// The container's init as seen by the parent. Dropping it unreaped kills and reaps it.
struct Init {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

impl Init {
    fn wait(&mut self) -> std::io::Result<(i32, libc::rusage)> {
        let r = wait4_pid(self.pid);
        self.reaped = r.is_ok();
        r
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        interrupt::clear_child();
        if !self.reaped {
            // SAFETY: pidfd_send_signal on our own pidfd; then reap our own child.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    0,
                    0,
                )
            };
            let _ = wait4_pid(self.pid);
        }
    }
}

/// clone3(2) with the given namespaces, CLONE_PIDFD, and CLONE_INTO_CGROUP when a v2
/// directory fd is given (the child is born in the cgroup: no attach write, no window in
/// which it runs in the parent's cgroup). Returns None in the child.
fn clone3(ns: CloneFlags, into_cgroup: Option<RawFd>) -> Result<Option<Init>, RuntimeError> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: clone_args is plain data; zero is "unset" for every field.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = ns.bits() as u64 | libc::CLONE_PIDFD as u64;
    if let Some(fd) = into_cgroup {
        // libc's CLONE_INTO_CGROUP is a c_int that cannot hold the bit (libc #3584).
        const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    // SAFETY: without CLONE_VM the child gets a copy of this address space, like fork(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match ret {
        0 => Ok(None),
        pid if pid > 0 => Ok(Some(Init {
            pid: pid as libc::pid_t,
            // SAFETY: the kernel stored a fresh pidfd for us.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
            reaped: false,
        })),
        _ => {
            let mut flags = format!("{ns:?}");
            if into_cgroup.is_some() {
                flags.push_str(" | CLONE_INTO_CGROUP");
            }
            Err(RuntimeError::Clone {
                flags,
                errno: Errno::last(),
            })
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Io {
        phase: Phase::Namespaces,
        what: "pipe2".into(),
        error: e.into(),
    })
}

/// Maps the caller's uid and gid to root in the new user namespace (user_namespaces(7)):
/// setgroups must be denied before an unprivileged gid_map write.
fn write_id_maps(pid: libc::pid_t) -> Result<(), RuntimeError> {
    let uid = nix::unistd::Uid::current();
    let gid = nix::unistd::Gid::current();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    for (file, content) in [
        ("uid_map", format!("0 {uid} 1")),
        ("setgroups", "deny".into()),
        ("gid_map", format!("0 {gid} 1")),
    ] {
        let path = proc.join(file);
        std::fs::write(&path, content).map_err(|error| RuntimeError::IdMap { path, error })?;
    }
    Ok(())
}

/// Unwinds if a stop was requested, naming the phase the container was in when it came.
fn check_stop(tl: &Timeline) -> Result<(), RuntimeError> {
    match interrupt::stop_requested() {
        true => Err(interrupted(tl)),
        false => Ok(()),
    }
}

fn interrupted(tl: &Timeline) -> RuntimeError {
    let during = interrupt::stop_time_ns().map_or_else(|| "the run".into(), |t| tl.phase_at(t));
    RuntimeError::Interrupted { during }
}

fn timed_snapshot(group: Option<&CounterGroup>) -> (Snapshot, u64) {
    let t = now_ns();
    let s = group.map(CounterGroup::snapshot).unwrap_or_default();
    (s, now_ns() - t)
}

/// Runs `spec.argv` in a fresh native container and tears it down. Phases are contiguous from
/// the first statement to the last, so they add up to the caller's measured total.
pub fn run(spec: &ContainerSpec) -> Result<Outcome, RuntimeError> {
    let mut tl = Timeline::start(spec.timing, Phase::Rootfs, "prepare");
    interrupt::install();
    // Fault injection (runtime::fault, issue 9): one branch per parent edge without PROBE_FAULT.
    fault::at(Phase::Rootfs, "prepare")?;
    check_stop(&tl)?;
    // Asking for a user namespace is asking for rootless mode, whoever asks.
    let rootless = spec.rootless || spec.namespaces.contains(NsKind::User);
    if !spec.namespaces.contains(NsKind::Mnt) {
        return Err(RuntimeError::Spec(
            "the mnt namespace is required: the rootfs and pivot_root need a private mount table"
                .into(),
        ));
    }
    if rootless {
        let l = &spec.limits;
        for (set, what) in [
            (l.memory_bytes.is_some(), "--memory"),
            (l.pids.is_some(), "--pids"),
            (l.cpus.is_some(), "--cpus"),
        ] {
            if set {
                return Err(RuntimeError::RootlessLimits(what));
            }
        }
    }
    let name = format!(
        "{NAME_PREFIX}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let rootfs = rootfs::prepare(spec.storage, &spec.rootfs, &name, rootless)?;
    let mounts = mounts::Plan::new(
        &rootfs.merged,
        rootless,
        spec.namespaces.contains(NsKind::Net),
        spec.privileged,
    );
    let volumes = volumes::Plan::new(&spec.volumes, &rootfs.merged)?;
    let exec = exec::Plan::new(&spec.argv, &name)?;
    let security = (!spec.privileged).then(security::Plan::new);
    let cgroupfs = match spec.privileged && !rootless {
        true => Some(cgroup::inside::Plan::new(layout()?, &rootfs.merged)),
        false => None,
    };
    check_stop(&tl)?;

    tl.mark(Phase::Cgroup, "create");
    fault::at(Phase::Cgroup, "create")?;
    let cgroup = match rootless {
        true => None,
        false => Some(ContainerCgroup::create(
            layout()?,
            &spec.cgroup_parent,
            &name,
            &spec.limits,
        )?),
    };
    check_stop(&tl)?;

    let ns = if rootless {
        spec.namespaces.with(NsKind::User)
    } else {
        spec.namespaces
    };
    let on_clone: Vec<&str> = ns
        .ordered()
        .filter(|k| k.on_clone())
        .map(NsKind::name)
        .collect();
    let clone_detail = ["clone3".to_string(), on_clone.join("+")].join(" ");
    tl.mark(Phase::Namespaces, clone_detail.trim_end());
    fault::at(Phase::Namespaces, clone_detail.trim_end())?;
    let (report_r, report_w) = pipe()?;
    let sync = if rootless { Some(pipe()?) } else { None };
    let null = match spec.stdio {
        StdioMode::Null => Some(
            nix::fcntl::open(
                "/dev/null",
                OFlag::O_RDWR | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            // SAFETY: a fresh fd owned by nothing else.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .map_err(|e| RuntimeError::Io {
                phase: Phase::Namespaces,
                what: "open /dev/null".into(),
                error: e.into(),
            })?,
        ),
        StdioMode::Inherit => None,
    };
    let plan = InitPlan {
        report_w: report_w.as_raw_fd(),
        sync_r: sync.as_ref().map(|(r, _)| r.as_raw_fd()),
        null: null.as_ref().map(|f| f.as_raw_fd()),
        v1_attach: cgroup
            .as_ref()
            .map(ContainerCgroup::v1_attach_targets)
            .unwrap_or_default(),
        unshare: ns.ordered().filter(|k| !k.on_clone()).collect(),
        hostname: name.clone(),
        rootfs: &rootfs,
        storage: spec.storage.name(),
        mounts,
        cgroupfs,
        volumes,
        security,
        exec,
        timing: spec.timing,
    };
    let Some(mut init) = clone3(
        ns.clone_flags(),
        cgroup.as_ref().and_then(ContainerCgroup::clone_into_fd),
    )?
    else {
        // A panic must not unwind into the parent's guards (they would remove the rootfs
        // directory from the child): abort the child instead.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init_main(&plan)));
        // SAFETY: _exit is always safe to call.
        unsafe { libc::_exit(SETUP_FAILED_EXIT) }
    };
    interrupt::set_child(init.pidfd.as_raw_fd(), spec.stdio == StdioMode::Inherit);
    drop(plan);
    drop(report_w);
    if let Some((sync_r, sync_w)) = sync {
        drop(sync_r);
        write_id_maps(init.pid)?;
        nix::unistd::write(&sync_w, &[1]).map_err(|e| RuntimeError::Io {
            phase: Phase::Namespaces,
            what: "sync pipe".into(),
            error: e.into(),
        })?;
    }
    // Counts the user command only: enabled by the kernel at execve. Opened while the init is
    // still setting up; if it lost that race its snapshots read "not enabled" → n/a.
    let exec_group = spec
        .timing
        .then(|| CounterGroup::open(Target::PidFromExec(init.pid)))
        .flatten();

    let mut failure = None;
    let mut reached_exec = false;
    loop {
        match read_record(report_r.as_raw_fd()) {
            Ok(Some(rec)) => match rec.failure() {
                Some(msg) => {
                    failure = Some(RuntimeError::InContainer {
                        phase: rec.phase(),
                        message: msg.to_string(),
                    })
                }
                None => {
                    reached_exec = rec.phase() == Phase::Exec;
                    tl.mark_from_init(&rec);
                    fault::on_init_mark(rec.phase(), rec.detail());
                }
            },
            Ok(None) => break,
            Err(error) => {
                failure = Some(RuntimeError::Io {
                    phase: Phase::Exec,
                    what: "report pipe".into(),
                    error,
                });
                break;
            }
        }
    }
    let t_exec_done = now_ns();
    if failure.is_none() && reached_exec {
        fault::at(Phase::Workload, "")?;
        let (s, cost) = timed_snapshot(exec_group.as_ref());
        tl.reopen_last(Snap {
            source: Source::Exec,
            snap: Snapshot {
                valid: s.valid,
                values: Default::default(),
            },
        });
        let at_exec = Snap {
            source: Source::Exec,
            snap: s,
        };
        tl.mark_at(
            t_exec_done,
            Phase::Workload,
            "",
            at_exec,
            Some(at_exec),
            cost,
        );
    }
    let waited = init.wait();
    let t_reaped = now_ns();
    fault::at(Phase::Teardown, "cgroup rmdir")?;
    let (s, cost) = timed_snapshot(exec_group.as_ref());
    tl.mark_at(
        t_reaped,
        Phase::Teardown,
        "cgroup rmdir",
        Snap {
            source: Source::Exec,
            snap: s,
        },
        None,
        cost,
    );
    drop(exec_group);
    drop(init);
    let cgroup_removed = cgroup.map(ContainerCgroup::remove).transpose();
    tl.mark(Phase::Teardown, "rootfs cleanup");
    let rootfs_removed = rootfs.remove();
    drop((report_r, null));
    let stopped = interrupt::stop_requested().then(|| interrupted(&tl));
    let phases = tl.finish();

    if let Some(e) = failure {
        return Err(e);
    }
    let (exit_code, ru) = waited.map_err(RuntimeError::Wait)?;
    // Before the stop: its message says everything was removed, which must then be true.
    cgroup_removed?;
    rootfs_removed?;
    if let Some(e) = stopped {
        return Err(e);
    }
    if !reached_exec {
        return Err(RuntimeError::InitDied { status: exit_code });
    }
    let tv_ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    Ok(Outcome {
        exit_code,
        user_ns: tv_ns(ru.ru_utime),
        sys_ns: tv_ns(ru.ru_stime),
        phases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{NsSet, Storage};

    fn fd_count() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    fn probe_mounts() -> usize {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains("probe-"))
            .count()
    }

    fn own_cgroups() -> Vec<PathBuf> {
        let prefix = format!("{NAME_PREFIX}{}-", std::process::id());
        let mut dirs = vec![PathBuf::from("/sys/fs/cgroup")];
        dirs.extend(
            std::fs::read_dir("/sys/fs/cgroup")
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
        dirs.iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect()
    }

    /// Many containers back to back in this process, as `probe startup` runs them: every rep's
    /// phases cover ≥ 97% of the time measured around `run`, and no fd, mount or cgroup
    /// accumulates. Root only (skipped otherwise, failed under CI=true).
    #[test]
    fn back_to_back_runs_are_covered_and_leak_nothing() {
        if !crate::ground::testing::require_root() {
            return;
        }
        let root = std::env::temp_dir().join(format!("probe-spawn-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["bin", "proc", "dev", "sys"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is needed");
        std::os::unix::fs::symlink("busybox", root.join("bin/true")).unwrap();
        let spec = ContainerSpec {
            rootfs: root.clone(),
            storage: Storage::Overlay,
            namespaces: NsSet::all(),
            limits: Default::default(),
            argv: vec!["/bin/true".into()],
            stdio: StdioMode::Null,
            rootless: false,
            timing: true,
            cgroup_parent: PathBuf::new(),
            volumes: Vec::new(),
            privileged: false,
        };
        // In a forked child (youki's habit for privileged tests): /proc/self/fd is then ours
        // alone, not shared with the harness's other test threads.
        // SAFETY: glibc's fork; the child only runs the loop below and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let check = || -> Result<(), String> {
                // The first run opens the parent's per-thread counter group (kept open).
                run(&spec).map_err(|e| e.to_string())?;
                let (fds, mounts) = (fd_count(), probe_mounts());
                for rep in 0..50 {
                    let t = now_ns();
                    let out = run(&spec).map_err(|e| e.to_string())?;
                    let wall = now_ns() - t;
                    let covered: u64 = out.phases.iter().map(|p| p.dur_ns).sum();
                    if covered * 100 < wall * 97 || out.exit_code != 0 {
                        return Err(format!(
                            "rep {rep}: phases cover {covered} of {wall} ns, exit {}",
                            out.exit_code
                        ));
                    }
                }
                if (fd_count(), probe_mounts()) != (fds, mounts) {
                    return Err(format!(
                        "fds {} → {}, probe mounts {mounts} → {}",
                        fds,
                        fd_count(),
                        probe_mounts()
                    ));
                }
                Ok(())
            };
            let code = match check() {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            };
            // SAFETY: leave the forked copy of the test harness without unwinding it.
            unsafe { libc::_exit(code) };
        }
        let (code, _) = wait4_pid(pid).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(code, 0, "the loop failed (its message is above)");
        assert_eq!(own_cgroups(), Vec::<PathBuf>::new(), "cgroups leaked");
    }
}
