//! Tracing one command from start to exit (`probe trace`): open the session, spawn the
//! command, keep the rings drained until it exits, then cut its window into phases.

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
    // The rings are drained at every wake (what remains, by drain() below); the window ends
    // the moment the command exits. A Ctrl-C reaches the whole foreground group; a `kill -INT
    // probe` does not, so it is passed on once, and tracing goes on until the command has
    // unwound.
    let waited = child::wait_exit(root, child::Waiting {
        period_ms: 250,
        also: &mut || {
            session.as_mut().map(|s| {
                s.collect();
                s.ring_fds()
            })
            .unwrap_or_default()
        },
        // SAFETY: kill(2) on our own child's pid.
        stop: &mut |pid| unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGINT);
        },
    });
    let status = match waited.and_then(|()| child.wait()) {
        Ok(st) => st,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e).context(format!("waiting for {}", argv[0]));
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
