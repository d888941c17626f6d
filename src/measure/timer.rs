//! Times one child process: wall time from CLOCK_MONOTONIC around spawn+wait, and the CPU
//! time of exactly that child from wait4(2)'s rusage (RUSAGE_CHILDREN deltas would also
//! count any other child reaped meanwhile).

use std::io;
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ground::phase::PhaseRecord;
use crate::sys::child::wait4_pid;
use crate::sys::clock::monotonic_ns;

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
