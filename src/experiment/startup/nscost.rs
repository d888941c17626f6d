//! The cost of each namespace type alone: N reps of creating it and of releasing it, median
//! and p95.
//!
//! What is measured:
//! - create: the unshare(2) call alone, stamped with CLOCK_MONOTONIC around it, in a forked
//!   child of probe (as root: the same path the container's init takes).
//! - release: the time until the kernel has really freed the namespace, not just until the
//!   last process left it. Network namespaces are the reason: put_net() only queues the
//!   namespace for cleanup_net(), which runs later from a workqueue and waits for RCU grace
//!   periods. The moment of freeing is observed through the per-user-namespace counters
//!   (user_namespaces(7), /proc/sys/user/max_*_namespaces): a helper in its own user
//!   namespace sets its limit for the type to 1, creates one namespace in a thread, lets the
//!   thread exit, and then retries creating another until the kernel allows it — which is
//!   when the first one's counter was decremented, the last step of freeing it. The retry
//!   loop's resolution is one attempt (a thread spawn + unshare, tens of µs). These
//!   namespaces are owned by the helper's user namespace, which can change what creating them
//!   costs (ipc: ~15 ms there against ~0.05 ms as root here), hence create is timed apart.
//! - user namespaces cannot be unshared from a thread (the caller must be single-threaded),
//!   so for `user` release is the exit + reap of the one process that held it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use serde::{Deserialize, Serialize};

use crate::native::namespaces::NsKind;
use crate::sys::clock::monotonic_ns as now_ns;
use crate::sys::child::wait4_pid;
use crate::ground::stats::{median, percentile};

/// Types measured through their user-namespace counter, in creation order.
/// (All but the user namespace, which holds the counters.)
const COUNTED: &[NsKind] = NsKind::ORDER.split_at(1).1;
/// A namespace not freed after this long means something else holds it: give up.
const RELEASE_TIMEOUT_NS: u64 = 5_000_000_000;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NsCost {
    pub ns: NsKind,
    pub reps: usize,
    pub create_median_ns: u64,
    pub create_p95_ns: u64,
    pub release_median_ns: u64,
    pub release_p95_ns: u64,
    /// What "release" is for this type (see the module comment).
    pub release_measured: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NsCostError {
    #[error("namespaces (cost table): {what}: {errno}")]
    Sys { what: String, errno: Errno },
    #[error("namespaces (cost table): helper failed: {0}")]
    Helper(String),
}

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> NsCostError {
    let what = what.into();
    move |errno| NsCostError::Sys { what, errno }
}

fn summarize(
    ns: NsKind,
    create: &[u64],
    release: &[u64],
    release_measured: &'static str,
) -> NsCost {
    let f = |v: &[u64]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let (c, r) = (f(create), f(release));
    NsCost {
        ns,
        reps: create.len(),
        create_median_ns: median(&c) as u64,
        create_p95_ns: percentile(&c, 95.0) as u64,
        release_median_ns: median(&r) as u64,
        release_p95_ns: percentile(&r, 95.0) as u64,
        release_measured: release_measured.into(),
    }
}

/// Reps of the table `probe startup --breakdown` prints beside the native phases: about a
/// second here (net's deferred release, ~45 ms a rep, dominates).
const BREAKDOWN_REPS: usize = 20;

/// What the release columns mean, printed under that table.
pub const RELEASE_NOTE: &str = "release = until the kernel has really freed the namespace: deferred kernel work \
(net: cleanup_net in a kworker after RCU grace periods; pid: an RCU grace period) that runs after the container \
is gone, competing for the CPUs with whatever starts next; no container start pays it directly";

/// The rows for `probe startup --breakdown`, or why there are none.
pub fn for_breakdown() -> Result<Vec<NsCost>, String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err("per-namespace cost table skipped: it needs root (its helper maps root into a user namespace)".into());
    }
    measure(BREAKDOWN_REPS).map_err(|e| e.to_string())
}

/// Measures every namespace type `reps` times (root only: the helper maps root into its user
/// namespace). Takes about reps × (slowest release); net dominates.
pub fn measure(reps: usize) -> Result<Vec<NsCost>, NsCostError> {
    let reps = reps.max(1);
    let (create, release) = forked(NsKind::User, reps)?;
    let mut table = vec![summarize(
        NsKind::User,
        &create,
        &release,
        "exit + reap of its only process",
    )];
    for (&kind, release) in COUNTED.iter().zip(released(reps)?) {
        let (create, _) = forked(kind, reps)?;
        table.push(summarize(
            kind,
            &create,
            &release,
            "until its user-namespace counter drops (really freed)",
        ));
    }
    Ok(table)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), NsCostError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))
}

fn fork() -> Result<libc::pid_t, NsCostError> {
    // SAFETY: the child only runs the helper code below and leaves with _exit.
    match unsafe { libc::fork() } {
        -1 => Err(NsCostError::Sys {
            what: "fork".into(),
            errno: Errno::last(),
        }),
        pid => Ok(pid),
    }
}

fn write_u64s(fd: RawFd, v: &[u64]) {
    // SAFETY: writing a slice of plain integers. A short write means the parent is gone.
    unsafe { libc::write(fd, v.as_ptr().cast(), std::mem::size_of_val(v)) };
}

fn read_to_end(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(_) => return out,
        }
    }
}

fn u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// One forked child per rep: create = its unshare of `kind`, and its exit until reaped.
fn forked(kind: NsKind, reps: usize) -> Result<(Vec<u64>, Vec<u64>), NsCostError> {
    let (mut create, mut release) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        let (r, w) = pipe()?;
        let pid = fork()?;
        if pid == 0 {
            let t0 = now_ns();
            let ok = unshare(kind.flag()).is_ok();
            let t1 = now_ns();
            write_u64s(w.as_raw_fd(), &[ok as u64, t1 - t0, now_ns()]);
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        drop(w);
        let v = u64s(&read_to_end(&r));
        wait4_pid(pid).map_err(|e| NsCostError::Helper(format!("wait4: {e}")))?;
        let reaped = now_ns();
        match v[..] {
            [1, c, exit_at] => {
                create.push(c);
                release.push(reaped.saturating_sub(exit_at));
            }
            _ => {
                return Err(NsCostError::Helper(format!(
                    "unshare of a {kind} namespace failed in the child"
                )))
            }
        }
    }
    Ok((create, release))
}

/// Release times of the COUNTED types, through the helper described in the module comment.
/// The helper writes `reps` release times per type; on error, a text message.
fn released(reps: usize) -> Result<Vec<Vec<u64>>, NsCostError> {
    let (up_r, up_w) = pipe()?;
    let (down_r, down_w) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        drop(up_r);
        drop(down_w);
        let out = match helper(up_w.as_raw_fd(), &down_r, reps) {
            Ok(v) => v,
            Err(msg) => {
                // SAFETY: plain write of a byte string; then _exit.
                unsafe { libc::write(up_w.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
                unsafe { libc::_exit(1) };
            }
        };
        write_u64s(up_w.as_raw_fd(), &out);
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    drop(up_w);
    drop(down_r);
    let result = (|| {
        // "u": the helper is in its new user namespace and waits for its id maps.
        let mut b = [0u8; 1];
        if nix::unistd::read(up_r.as_raw_fd(), &mut b) != Ok(1) {
            return Err(NsCostError::Helper(
                "helper died before creating its user namespace".into(),
            ));
        }
        for (file, map) in [("uid_map", "0 0 1"), ("gid_map", "0 0 1")] {
            std::fs::write(format!("/proc/{pid}/{file}"), map)
                .map_err(|e| NsCostError::Helper(format!("write /proc/{pid}/{file}: {e}")))?;
        }
        nix::unistd::write(&down_w, b"g").map_err(sys("sync pipe"))?;
        Ok(read_to_end(&up_r))
    })();
    drop(down_w);
    let (status, _) = wait4_pid(pid).map_err(|e| NsCostError::Helper(format!("wait4: {e}")))?;
    let bytes = result?;
    if status != 0 {
        return Err(NsCostError::Helper(
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    let v = u64s(&bytes);
    if v.len() != reps * COUNTED.len() {
        return Err(NsCostError::Helper(format!(
            "expected {} values, got {}",
            reps * COUNTED.len(),
            v.len()
        )));
    }
    Ok(v.chunks_exact(reps).map(<[u64]>::to_vec).collect())
}

/// In the forked helper: own user namespace (root mapped by the parent, signalled on `up`,
/// answered on `down`), then per type a limit of one namespace and the create /
/// wait-until-freed loop.
fn helper(up: RawFd, down: &OwnedFd, reps: usize) -> Result<Vec<u64>, String> {
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    // SAFETY: one-byte write on our end of the pipe.
    unsafe { libc::write(up, b"u".as_ptr().cast(), 1) };
    let mut b = [0u8; 1];
    if nix::unistd::read(down.as_raw_fd(), &mut b) != Ok(1) {
        return Err("parent did not map the helper's user namespace".into());
    }
    let mut out = Vec::with_capacity(reps * COUNTED.len());
    for &kind in COUNTED {
        let limit = format!("/proc/sys/user/max_{}_namespaces", kind.name());
        std::fs::write(&limit, "1").map_err(|e| format!("write 1 to {limit}: {e}"))?;
        let mut release = Vec::with_capacity(reps);
        let mut freed_from: Option<u64> = None;
        while release.len() < reps {
            let flag = kind.flag();
            // Stamped before the attempt: the namespace was freed by the time it started.
            let (r, t0) = std::thread::spawn(move || {
                let t0 = now_ns();
                (unshare(flag), t0)
            })
            .join()
            .map_err(|_| "measuring thread panicked".to_string())?;
            // The thread has exited: its namespace is now only waiting to be freed.
            let exited = now_ns();
            match r {
                Ok(()) => {
                    if let Some(from) = freed_from {
                        release.push(t0 - from);
                    }
                    freed_from = Some(exited);
                }
                Err(Errno::ENOSPC)
                    if freed_from.is_some_and(|f| exited - f < RELEASE_TIMEOUT_NS) => {}
                Err(e) => return Err(format!("unshare({kind}) in the helper: {e}")),
            }
        }
        out.extend_from_slice(&release);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_measured() {
        if !crate::ground::testing::require_root() {
            return;
        }
        let t = measure(3).unwrap();
        let kinds: Vec<_> = t.iter().map(|c| c.ns).collect();
        assert_eq!(kinds, NsKind::ORDER);
        for c in &t {
            assert!(
                c.create_median_ns > 0 && c.create_p95_ns >= c.create_median_ns,
                "{c:?}"
            );
            assert_eq!(c.reps, 3);
            eprintln!(
                "NSCOST {:<7} create {:>8} p95 {:>8}  release {:>9} p95 {:>9}",
                c.ns.name(),
                c.create_median_ns,
                c.create_p95_ns,
                c.release_median_ns,
                c.release_p95_ns
            );
        }
    }
}
