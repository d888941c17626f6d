//! Times one child process: wall time from CLOCK_MONOTONIC around spawn+wait, and the CPU
//! time of exactly that child from wait4(2)'s rusage (RUSAGE_CHILDREN deltas would also
//! count any other child reaped meanwhile).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::phase::PhaseRecord;

/// One measured rep of one command on one runtime.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Sample {
    /// CLOCK_MONOTONIC at spawn, absolute, so kernel events (perf clockid MONOTONIC) can be
    /// placed inside the rep.
    pub start_mono_ns: u64,
    /// Pid of the process that was timed (the engine CLI, the native container's parent side
    /// is probe itself and records its own pid).
    pub pid: u32,
    pub wall_ns: u64,
    pub user_ns: u64,
    pub sys_ns: u64,
    /// Exit code, or 128+signal when the child was killed by a signal (shell convention).
    pub exit_code: i32,
    /// Phase records when the runtime can provide them (native in-process, engines traced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseRecord>,
}

impl Sample {
    pub fn wall_ms(&self) -> f64 {
        self.wall_ns as f64 / 1e6
    }
}

fn timeval_ns(tv: libc::timeval) -> u64 {
    tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000
}

/// Waits for `pid` with wait4(2), retrying on EINTR, and returns (exit code, rusage).
pub fn wait4_pid(pid: libc::pid_t) -> io::Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    Ok((code, ru))
}

/// CLOCK_MONOTONIC now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Spawns `cmd` and waits for it, timing spawn+wait. The caller sets up stdio.
pub fn time_command(cmd: &mut Command) -> io::Result<Sample> {
    let start_mono_ns = monotonic_ns();
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id();
    let (exit_code, ru) = wait4_pid(child.id() as libc::pid_t)?;
    let wall_ns = start.elapsed().as_nanos() as u64;
    // Already reaped by wait4; dropping a Child only closes its pipe handles, it never waits.
    drop(child);
    Ok(Sample {
        start_mono_ns,
        pid,
        wall_ns,
        user_ns: timeval_ns(ru.ru_utime),
        sys_ns: timeval_ns(ru.ru_stime),
        exit_code,
        phases: Vec::new(),
    })
}

/// A pidfd for `pid`: pollable, readable once the process has exited.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
