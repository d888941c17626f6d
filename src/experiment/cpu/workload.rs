//! The chapter's CPU workload and the timing of one run of it, whatever runs it (a shell on
//! the host, `docker run`, `docker exec`, a native container).
//!
//! The wait uses a pidfd and poll(2) rather than a blocking wait4: the exit is seen the
//! moment it happens (wall time stays exact), and every 100 ms probe looks at the Ctrl-C flag,
//! so a 10-second loop can be stopped at once — by the caller's `stop`, which knows how
//! (remove the container, signal `probe run`, kill a process).

use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Instant;

use perf_event::events::Hardware;
use perf_event::Counter;
use serde::Serialize;


/// The busy loop of Experiments 3 and 7, verbatim: only shell builtins, so one process
/// does all the work and no fork or exec is timed.
pub fn busy_loop(count: u64) -> Vec<String> {
    vec!["sh".into(), "-c".into(), format!("i=0; while [ $i -lt {count} ]; do i=$((i+1)); done")]
}

/// One timed run.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
pub struct Timed {
    pub wall_ns: u64,
    /// user + system time of the child and every descendant it waited for (wait4's rusage:
    /// the scheduler's exact runtime, what perf's task-clock counts).
    pub rusage_cpu_ns: u64,
    pub exit_code: i32,
    /// Hardware counters of the child's process tree, None where the PMU does not allow.
    pub cycles: Option<u64>,
    pub instructions: Option<u64>,
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

/// Runs `cmd` (stdio to /dev/null) to completion and times it; `count_hw` attaches cycle and
/// instruction counters to the child when the PMU allows. On Ctrl-C, `stop(child_pid)` is
/// called once and the wait goes on until the child is gone.
pub fn time_child(cmd: &mut Command, count_hw: bool, stop: &mut dyn FnMut(u32)) -> io::Result<Timed> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id();
    let mut hw = if count_hw { hw_counters(pid) } else { None };
    let pidfd = crate::sys::child::pidfd_open(pid)?;
    let mut stopped = false;
    loop {
        let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r > 0 {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::last_os_error());
        }
        if crate::sys::signals::interrupted() && !stopped {
            stopped = true;
            stop(pid);
        }
    }
    let wall_ns = start.elapsed().as_nanos() as u64;
    let counts = hw.as_mut().and_then(|(c, i)| Some((c.read().ok()?, i.read().ok()?)));
    let (exit_code, ru) = crate::sys::child::wait4_pid(pid as libc::pid_t)?;
    drop(child);
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    Ok(Timed {
        wall_ns,
        rusage_cpu_ns: tv(ru.ru_utime) + tv(ru.ru_stime),
        exit_code,
        cycles: counts.map(|c| c.0),
        instructions: counts.map(|c| c.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chapters_loop() {
        assert_eq!(busy_loop(10)[2], "i=0; while [ $i -lt 10 ]; do i=$((i+1)); done");
    }

    #[test]
    fn times_a_child_and_its_cpu() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"]);
        let t = time_child(&mut cmd, false, &mut |_| panic!("not interrupted")).unwrap();
        assert_eq!(t.exit_code, 3);
        assert!(t.rusage_cpu_ns > 0 && t.rusage_cpu_ns <= t.wall_ns + 10_000_000, "{t:?}");
        assert_eq!(t.cycles, None);
    }
}
