//! Tracing one command from start to exit (`probe trace`): open the session, spawn the
//! command, keep the rings drained and reduced until it exits, then cut each container start
//! it made into phases.

use std::cell::RefCell;
use std::process::{Command, ExitStatus};

use anyhow::Context;

use crate::sys::child::{self, Sleep, Waiting};
use crate::sys::clock;
use crate::trace::attribution::{Attribution, Window};
use crate::trace::critical::CriticalPath;
use crate::trace::event::Event;
use crate::trace::procs;
use crate::trace::reduce::Reducer;
use crate::trace::session::{Options, Session, RING_BYTES};
use crate::trace::summary::Summary;

pub struct Run {
    pub status: ExitStatus,
    pub start: u64,
    pub end: u64,
    /// Err: tracing was unavailable (why), and the command ran timed only.
    pub traced: Result<Traced, String>,
}

pub struct Traced {
    pub window: Window,
    /// Records seen system-wide, kept or not.
    pub events: u64,
    pub lost: u64,
    /// (cpu, records lost there).
    pub lost_per_cpu: Vec<(usize, u64)>,
    pub throttled: u64,
    pub malformed: u64,
    /// One phase breakdown per container the command started, in the order they ended.
    pub breakdowns: Vec<Attribution>,
    pub summary: Summary,
    /// The command's critical path (`--critical-path`).
    pub critical: Option<CriticalPath>,
    /// Kept open: closing takes ~1.5 s (one RCU grace period per tracepoint,
    /// docs/tracing.md), which the reader need not wait for before seeing the results.
    _session: Session,
}

/// How a long trace is going, for a progress line.
pub struct Progress {
    pub elapsed_ns: u64,
    pub events: u64,
    pub lost: u64,
}

/// What the caller hears while the command runs.
pub struct Hooks<'a> {
    /// What the user should know before the command starts (one line each).
    pub note: &'a mut dyn FnMut(String),
    /// Every event, decoded, as it is drained (None: events are decoded only when the
    /// analysis needs them).
    pub event: Option<&'a mut dyn FnMut(&Event)>,
    /// Called about once a second.
    pub progress: Option<&'a mut dyn FnMut(&Progress)>,
}

/// How long the drain loop sleeps when the rings fill at `fill` bytes (the most one held)
/// per wake-up: a busy machine is drained more often, so the rings never overflow; a quiet
/// one costs four wake-ups a second. The ring also wakes the loop at a quarter full.
fn drain_period_ms(fill: usize) -> i32 {
    match fill {
        f if f > RING_BYTES / 16 => 20,
        f if f > RING_BYTES / 64 => 100,
        _ => 250,
    }
}

/// The tracer's side of a run: its session, the reducer fed from it, and who hears each event.
struct Draining<'a> {
    session: Session,
    reducer: Reducer,
    event: Option<&'a mut dyn FnMut(&Event)>,
}

impl Draining<'_> {
    fn drain(&mut self, until: Option<u64>) {
        let Draining { session, reducer, event } = self;
        session.drain_with(until, &mut |r| {
            if let Some(f) = event.as_mut() {
                f(&r.decode());
            }
            reducer.feed(r);
        });
        reducer.trim(&mut || session.copy_out());
    }
}

/// Runs `argv` traced with `opts`, or untraced when the kernel cannot trace here. Records
/// are reduced as they are drained (reduce.rs), so memory does not grow with the length of
/// the trace. `critical`: also walk the command's critical path.
pub fn run(argv: &[String], opts: &Options, critical: bool, hooks: Hooks<'_>) -> anyhow::Result<Run> {
    let Hooks { note, event, mut progress } = hooks;
    let (session, untraced_why) = match crate::trace::open(opts) {
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
    // Read before the command starts: ~120k symbols, tens of ms.
    let mut syms = match (critical && opts.switch_stacks && session.is_some()).then(crate::sys::kallsyms::Kallsyms::load) {
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            note(format!("kernel symbols unreadable ({e}): wait sites not named"));
            None
        }
        None => None,
    };
    crate::sys::signals::install();
    let start = clock::monotonic_ns();
    let mut child = Command::new(&argv[0]).args(&argv[1..]).spawn().with_context(|| format!("spawning {}", argv[0]))?;
    let root = child.id();
    // Shared by the wait's two callbacks: each wake drains the rings, a Ctrl-C reads the tree.
    let tracing = RefCell::new(session.map(|session| {
        let reducer = Reducer::new(root, start, session.instruments(), procs::proc_comm);
        let reducer = if critical { reducer.with_critical_path(syms.take()) } else { reducer };
        Draining { session, reducer, event }
    }));
    let mut last_progress = start;
    let mut tick = || {
        let mut tracing = tracing.borrow_mut();
        let Some(t) = tracing.as_mut() else { return Sleep { period_ms: 250, fds: Vec::new() } };
        let now = clock::monotonic_ns();
        t.drain(Some(now));
        if let Some(p) = progress.as_mut().filter(|_| now - last_progress >= 1_000_000_000) {
            p(&Progress { elapsed_ns: now - start, events: t.reducer.events(), lost: t.session.lost() });
            last_progress = now;
        }
        Sleep { period_ms: drain_period_ms(t.session.take_fill()), fds: t.session.ring_fds() }
    };
    // A Ctrl-C reaches the whole foreground group; a `kill -INT probe` does not, so pass it
    // on once, as the terminal would, to the command and every process of its tree still
    // running (a shell waiting on its child does not act on it before the child ends), and
    // keep tracing until the command has unwound.
    let mut forward = |root: u32| {
        let tree = tracing.borrow_mut().as_mut().map(|t| {
            t.drain(Some(clock::monotonic_ns()));
            t.reducer.live_pids()
        });
        for pid in std::iter::once(root).chain(tree.unwrap_or_default().into_iter().filter(|&p| p != root)) {
            // SAFETY: kill(2); the tree's pids are live (their exits are tracked).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        }
    };
    // The window ends the moment the command exits (child::wait_exit wakes on its pidfd).
    let waited = child::wait_exit(root, Waiting { tick: &mut tick, stop: &mut forward });
    let end = clock::monotonic_ns();
    let status = match waited.and_then(|()| child.wait()) {
        Ok(st) => st,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e).context(format!("waiting for {}", argv[0]));
        }
    };
    let Some(mut t) = tracing.into_inner() else {
        return Ok(Run { status, start, end, traced: Err(untraced_why) });
    };
    t.session.stop()?;
    t.drain(None);
    let Draining { session, reducer, .. } = t;
    let done = reducer.finish(end);
    let traced = Traced {
        window: Window { start, end, root },
        events: done.events,
        lost: session.lost(),
        lost_per_cpu: session.lost_per_cpu(),
        throttled: session.throttled(),
        malformed: session.malformed(),
        breakdowns: done.breakdowns,
        summary: done.summary,
        critical: done.critical,
        _session: session,
    };
    Ok(Run { status, start, end, traced: Ok(traced) })
}
