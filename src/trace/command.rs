//! Tracing one command from start to exit (`probe trace`): open the session, spawn the
//! command, keep the rings drained until it exits, then cut its window into phases.

use std::os::fd::AsRawFd;
use std::process::{Command, ExitStatus};

use anyhow::Context;

use crate::sys::{child, clock};
use crate::trace::attribution::{self, Attribution, Window};
use crate::trace::event::Event;
use crate::trace::session::{Options, Session};
use crate::trace::procs;

pub struct Run {
    pub status: ExitStatus,
    pub start: u64,
    pub end: u64,
    /// Err: tracing was unavailable (why), and the command ran timed only.
    pub traced: Result<Traced, String>,
}

pub struct Traced {
    pub window: Window,
    /// Everything the rings held, also outside the window (the processes' history).
    pub events: Vec<Event>,
    pub lost: u64,
    pub throttled: u64,
    pub malformed: u64,
    pub attribution: Attribution,
    /// Kept open: closing takes ~1.5 s (one RCU grace period per tracepoint,
    /// docs/tracing.md), which the reader need not wait for before seeing the results.
    _session: Session,
}

impl Traced {
    /// The events inside the command's window.
    pub fn inside(&self) -> impl Iterator<Item = &Event> {
        let w = self.window;
        self.events.iter().filter(move |e| e.time_ns >= w.start && e.time_ns <= w.end)
    }
}

/// Runs `argv` traced with `opts`, or untraced when the kernel cannot trace here; `note`
/// receives what the user should know before the command starts (one line each).
pub fn run(argv: &[String], opts: &Options, note: &mut dyn FnMut(String)) -> anyhow::Result<Run> {
    let (mut session, untraced_why) = match crate::trace::open(opts) {
        Ok(s) => (Some(s), String::new()),
        Err(e) if e.is_unavailable() => {
            note(format!("kernel tracing unavailable ({e}); running the command untraced, wall time only"));
            (None, e.to_string())
        }
        Err(e) => return Err(e).context("cannot trace"),
    };
    for m in session.iter().flat_map(|s| &s.missing) {
        note(format!("this kernel has no tracepoint {m}; not traced"));
    }
    crate::sys::signals::install();
    let start = clock::monotonic_ns();
    let mut child = Command::new(&argv[0]).args(&argv[1..]).spawn().with_context(|| format!("spawning {}", argv[0]))?;
    let root = child.id();
    // The wait wakes the moment the command exits (its pidfd turns readable), so the window
    // ends there and not up to a poll period later. Without pidfds (Linux < 5.3, a seccomp
    // filter) it looks every 5 ms instead.
    let pidfd = child::pidfd_open(root).ok();
    let timeout_ms = if pidfd.is_some() { 250 } else { 5 };
    let mut forwarded = false;
    let status = loop {
        let mut fds = session.as_ref().map(|s| s.ring_fds()).unwrap_or_default();
        fds.extend(pidfd.as_ref().map(|p| p.as_raw_fd()));
        poll_any(&fds, timeout_ms);
        if let Some(s) = &mut session {
            s.collect();
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e).context(format!("waiting for {}", argv[0]));
            }
        }
        // A Ctrl-C reaches the whole foreground group; a `kill -INT probe` does not, so
        // pass it on once and keep tracing until the command has unwound.
        if crate::sys::signals::interrupted() && !forwarded {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(root as libc::pid_t, libc::SIGINT) };
            forwarded = true;
        }
    };
    let end = clock::monotonic_ns();
    let Some(mut session) = session else {
        return Ok(Run { status, start, end, traced: Err(untraced_why) });
    };
    session.stop()?;
    let events = session.drain();
    let window = Window { start, end, root };
    let attribution = attribution::attribute(&events, window, &procs::proc_comm);
    let traced = Traced {
        window,
        lost: session.lost(),
        throttled: session.throttled(),
        malformed: session.malformed(),
        events,
        attribution,
        _session: session,
    };
    Ok(Run { status, start, end, traced: Ok(traced) })
}

/// Blocks until one of `fds` is readable or `timeout_ms` passes (a signal ends it early too,
/// so a Ctrl-C gets looked at promptly).
fn poll_any(fds: &[std::os::fd::RawFd], timeout_ms: i32) {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: pfds is a valid array of pollfd for its length.
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
}
