//! Times one child process: wall time from CLOCK_MONOTONIC around spawn+wait, and the CPU
//! time of exactly that child from wait4(2)'s rusage (RUSAGE_CHILDREN deltas would also
//! count any other child reaped meanwhile).

use std::io;
use std::process::{Command, Stdio};
use std::time::Instant;

use perf_event::events::Hardware;
use perf_event::Counter;

use serde::{Deserialize, Serialize};

use crate::ground::phase::PhaseRecord;
use crate::sys::child::{wait4_pid, wait_exit, Sleep, Waiting};
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

    /// user + system time of the child and every descendant it waited for (wait4's rusage:
    /// the scheduler's exact runtime, what perf's task-clock counts).
    pub fn cpu_ns(&self) -> u64 {
        self.user_ns + self.sys_ns
    }
}

fn timeval_ns(tv: libc::timeval) -> u64 {
    tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000
}

/// Cycles and instructions of a child's process tree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HwCounts {
    pub cycles: u64,
    pub instructions: u64,
}

/// Whether this machine's PMU counts cycles: Ok, or the reason it does not.
pub fn pmu() -> Result<(), String> {
    perf_event::Builder::new(Hardware::CPU_CYCLES)
        .build()
        .map(|_| ())
        .map_err(|e| format!("hardware counters unavailable (perf_event_open: {e}); a VM without a virtual PMU cannot count cycles"))
}

/// cycles and instructions of `pid` and the children it forks from now on.
fn hw_counters(pid: u32) -> Option<(Counter, Counter)> {
    let open = |ev: Hardware| {
        let mut c = perf_event::Builder::new(ev).observe_pid(pid as i32).any_cpu().inherit(true).build().ok()?;
        c.enable().ok()?;
        Some(c)
    };
    Some((open(Hardware::CPU_CYCLES)?, open(Hardware::INSTRUCTIONS)?))
}

/// Spawns `cmd` and waits for it, timing spawn+wait. The caller sets up stdio.
pub fn time_command(cmd: &mut Command) -> io::Result<Sample> {
    time(cmd, None).map(|(sample, _)| sample)
}

/// What a run of seconds needs beyond `time_command`.
pub struct Watch<'a> {
    /// Attach cycle and instruction counters to the child, when the PMU allows.
    pub count_hw: bool,
    /// Called once with the child's pid on Ctrl-C; the wait then goes on until the child is
    /// gone. Only the caller knows how (remove the container, signal `probe run`, kill).
    pub stop: &'a mut dyn FnMut(u32),
}

/// Runs `cmd` (stdio to /dev/null) to completion and times it like `time_command`, but waits
/// on a pidfd with poll(2) rather than a blocking wait4: the exit is seen the moment it
/// happens (wall time stays exact), and every 100 ms the Ctrl-C flag is looked at, so a
/// 10-second loop can be stopped at once.
pub fn time_watched(cmd: &mut Command, watch: Watch) -> io::Result<(Sample, Option<HwCounts>)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    time(cmd, Some(watch))
}

fn time(cmd: &mut Command, watch: Option<Watch>) -> io::Result<(Sample, Option<HwCounts>)> {
    let start_mono_ns = monotonic_ns();
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id();
    let mut hw = None;
    let mut exited = None;
    if let Some(w) = watch {
        hw = if w.count_hw { hw_counters(pid) } else { None };
        wait_exit(pid, Waiting { tick: &mut || Sleep { period_ms: 100, fds: Vec::new() }, stop: w.stop })?;
        exited = Some(start.elapsed());
    }
    let counts = hw.as_mut().and_then(|(c, i)| Some(HwCounts { cycles: c.read().ok()?, instructions: i.read().ok()? }));
    let (exit_code, ru) = wait4_pid(pid as libc::pid_t)?;
    let wall_ns = exited.unwrap_or_else(|| start.elapsed()).as_nanos() as u64;
    // Already reaped by wait4; dropping a Child only closes its pipe handles, it never waits.
    drop(child);
    let sample = Sample {
        start_mono_ns,
        pid,
        wall_ns,
        user_ns: timeval_ns(ru.ru_utime),
        sys_ns: timeval_ns(ru.ru_stime),
        exit_code,
        phases: Vec::new(),
    };
    Ok((sample, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_a_child_and_its_cpu() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"]);
        let (s, hw) = time_watched(&mut cmd, Watch { count_hw: false, stop: &mut |_| panic!("not interrupted") }).unwrap();
        assert_eq!(s.exit_code, 3);
        assert!(s.cpu_ns() > 0 && s.cpu_ns() <= s.wall_ns + 10_000_000, "{s:?}");
        assert_eq!(hw, None);
    }
}
