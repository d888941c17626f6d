//! Fault injection for the native runtime, for tests/fault_injection.rs (issue 9: kill or
//! fail probe at every phase of a native start, then check that the unwinding code or
//! `probe cleanup` leaves nothing behind).
//!
//! Inert unless the environment variable `PROBE_FAULT` is set: it is read once (OnceLock), and
//! each phase edge costs one branch on `None` otherwise. Format:
//!
//! `PROBE_FAULT=<action>@<phase>[:<detail>]`, e.g. `fail@mounts:pivot_root`, `kill@cgroup`
//!
//! - phase: a crate::ground::phase::Phase name (rootfs, cgroup, namespaces, mounts, security, exec,
//!   workload, teardown); detail, if given, must equal the edge's detail (`clone3 pid`, `uts`,
//!   `proc`, `pivot_root`, `caps+no_new_privs`, `execve`, `cgroup rmdir`, ...).
//! - `fail`: the phase returns an EIO error through its normal error path, so the unwinding
//!   runs. At the parent's edges the parent returns the error; at the init's edges (the init
//!   marks namespaces/uts…, mounts, rootfs mount, security, exec) the init reports the error
//!   and exits, like a failed syscall.
//! - `kill`, `sigint`, `sigterm`: probe raises SIGKILL/SIGINT/SIGTERM on itself. Always in the
//!   parent: at its own edges (rootfs prepare, cgroup create, clone3, workload, teardown) when
//!   they start, and for phases that run in the init (mounts, security, exec) when the parent
//!   reads the init's mark for that phase from the report pipe — the nearest edge the parent
//!   observes (the init may be a step further by then). The init cannot signal probe itself:
//!   in its pid namespace getppid() is 0 and probe's pid is not addressable.
//!
//! Every matching edge fires, not just the first, so every rep of a run is affected.

use std::sync::OnceLock;

use crate::ground::phase::Phase;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    Kill,
    Fail,
    Signal(libc::c_int),
}

#[derive(Debug)]
pub struct Fault {
    pub action: Action,
    pub phase: Phase,
    pub detail: Option<String>,
}

fn parse(s: &str) -> Option<Fault> {
    let (action, rest) = s.split_once('@')?;
    let action = match action {
        "kill" => Action::Kill,
        "fail" => Action::Fail,
        "sigint" => Action::Signal(libc::SIGINT),
        "sigterm" => Action::Signal(libc::SIGTERM),
        _ => return None,
    };
    let (phase, detail) = match rest.split_once(':') {
        Some((p, d)) => (p, Some(d.to_string())),
        None => (rest, None),
    };
    let phase = *Phase::ALL.iter().find(|p| p.name() == phase)?;
    Some(Fault {
        action,
        phase,
        detail,
    })
}

/// The configured fault, if any. Call first in the parent (std::env is not safe to read in
/// the forked init); a malformed value is reported once and ignored.
pub fn get() -> Option<&'static Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let v = std::env::var("PROBE_FAULT").ok()?;
            let f = parse(&v);
            if f.is_none() {
                eprintln!("probe: ignoring PROBE_FAULT={v:?}: expected <kill|fail|sigint|sigterm>@<phase>[:<detail>]");
            }
            f
        })
        .as_ref()
}

fn matching(phase: Phase, detail: &str) -> Option<&'static Fault> {
    get().filter(|f| f.phase == phase && f.detail.as_deref().map_or(true, |d| d == detail))
}

fn raise(action: Action) {
    let sig = match action {
        Action::Kill => libc::SIGKILL,
        Action::Signal(s) => s,
        Action::Fail => return,
    };
    // SAFETY: raise(3) on ourselves; the handlers it may run are async-signal-safe.
    unsafe { libc::raise(sig) };
}

/// At a parent's phase edge: acts, and returns the error to propagate for `fail`.
pub fn at(phase: Phase, detail: &str) -> Result<(), crate::native::RuntimeError> {
    let Some(f) = matching(phase, detail) else {
        return Ok(());
    };
    if f.action != Action::Fail {
        raise(f.action);
        return Ok(());
    }
    Err(crate::native::RuntimeError::Io {
        phase,
        what: format!("{detail}: injected fault (PROBE_FAULT)"),
        error: std::io::Error::from_raw_os_error(libc::EIO),
    })
}

/// In the parent, on reading an init's mark: kill/sigint/sigterm (fail is the init's job).
pub fn on_init_mark(phase: Phase, detail: &str) {
    if let Some(f) = matching(phase, detail) {
        raise(f.action);
    }
}

/// In the init, at its phase edge: true when this edge must fail. Only reads the OnceLock the
/// parent filled before clone3 (no allocation, no env access).
pub fn init_fails(phase: Phase, detail: &str) -> bool {
    matching(phase, detail).is_some_and(|f| f.action == Action::Fail)
}
