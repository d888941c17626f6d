//! `probe trace -- CMD...`: trace any command system-wide and show its phase timeline and
//! what each of its processes did in the kernel.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;

use crate::sys::{child, clock};
use crate::output::timeline;
use crate::output::table::Table;
use crate::trace::attribution::{self, Window};
use crate::trace::procs::{self, Procs};
use crate::trace::event::{FAULTS_PER_SAMPLE, PAGE_FAULT};
use crate::trace::{self, session::Options, summary};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo probe trace -- docker run --rm --network none probe-test:latest true\n  \
    sudo probe trace --events sched/sched_process_exec,cgroup/cgroup_mkdir -- podman build .\n  \
    sudo probe trace --json -- docker compose up -d > events.json\n\n\
Ctrl-C stops tracing (the command gets it too) and prints what was seen so far.")]
pub struct TraceArgs {
    /// Tracepoints to record, comma-separated `system/name` (see /sys/kernel/tracing/events).
    /// Default: probe's set (process lifecycle, namespace/mount/cgroup syscalls, block,
    /// fuse, ext4 sync, sched_switch) plus page faults sampled 1 in 16. In the list,
    /// `page-faults` samples page faults 1 in 16 and `page-faults:1` records every one
    /// (exact, but ~0.65 µs per fault: slows fault-heavy commands).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub events: Option<Vec<String>>,
    /// Print the raw events of the command's window as JSON, with the phases cut from them,
    /// instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Also draw the run as a timeline of processes and phases: SVG or PNG, by the file's
    /// extension (a new file; an existing one is not replaced).
    #[arg(long, value_name = "FILE.svg|png", value_parser = timeline::check_path)]
    pub timeline: Option<PathBuf>,
    /// The command to trace.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(a: TraceArgs) -> anyhow::Result<ExitCode> {
    let opts = match &a.events {
        Some(list) => event_options(list)?,
        None => trace::default_options(),
    };
    let (mut session, untraced_why) = match trace::open(&opts) {
        Ok(s) => (Some(s), String::new()),
        Err(e) if e.is_unavailable() => {
            eprintln!("note: kernel tracing unavailable ({e}); running the command untraced, wall time only");
            (None, e.to_string())
        }
        Err(e) => return Err(e).context("cannot trace"),
    };
    for m in session.iter().flat_map(|s| &s.missing) {
        eprintln!("note: this kernel has no tracepoint {m}; not traced");
    }
    crate::sys::signals::install();
    let start = clock::monotonic_ns();
    let mut child = Command::new(&a.command[0])
        .args(&a.command[1..])
        .spawn()
        .with_context(|| format!("spawning {}", a.command[0]))?;
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
                return Err(e).context(format!("waiting for {}", a.command[0]));
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
        let ms = (end - start) as f64 / 1e6;
        if a.json {
            println!("{}", serde_json::json!({ "command": a.command, "traced": false, "why": untraced_why, "wall_ms": ms }));
        } else {
            println!("{} ran in {ms:.1} ms (not traced: wall time only)", a.command.join(" "));
        }
        if let Some(path) = &a.timeline {
            eprintln!("note: --timeline: nothing traced, so {} was not drawn", path.display());
        }
        return Ok(exit_code(status));
    };
    session.stop()?;
    let events = session.drain();
    let (lost, throttled, malformed) = (session.lost(), session.throttled(), session.malformed());
    // The session is closed when this function returns, after the output: closing it takes
    // ~1.5 s (one RCU grace period per tracepoint, docs/tracing.md), which the reader need
    // not wait for.

    let window = Window { start, end, root };
    let inside: Vec<_> = events.iter().filter(|e| e.time_ns >= start && e.time_ns <= end).collect();
    let att = attribution::attribute(&events, window, &procs::proc_comm);
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "command": a.command, "lost": lost, "throttled": throttled,
                "coverage": att.coverage(), "attribution": &att, "events": inside,
            }))?
        );
    } else {
        print!("{}", render(&att, &events, root));
    }
    eprintln!(
        "{} events in the window; lost {lost}, throttled {throttled}, unparsed {malformed}{}",
        inside.len(),
        if lost > 0 { " — the phases above miss events: trace fewer --events" } else { "" }
    );
    if let Some(path) = &a.timeline {
        timeline::write(path, &[(a.command.join(" "), &att)])?;
        eprintln!("timeline: {}", path.display());
    }
    Ok(exit_code(status))
}

/// The command's own status, shell style (128+signal when a signal ended it).
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(c as u8),
        (None, Some(sig)) => ExitCode::from(128 + sig as u8),
        (None, None) => ExitCode::FAILURE,
    }
}

/// Blocks until one of `fds` is readable or `timeout_ms` passes (a signal ends it early too,
/// so a Ctrl-C gets looked at promptly).
fn poll_any(fds: &[std::os::fd::RawFd], timeout_ms: i32) {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: pfds is a valid array of pollfd for its length.
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
}

/// Splits `--events` into tracepoints and the page-fault pseudo-event `page-faults[:N]`.
fn event_options(list: &[String]) -> anyhow::Result<Options> {
    let mut opts = Options { tracepoints: Vec::new(), page_fault_period: None };
    for e in list {
        match e.strip_prefix(PAGE_FAULT) {
            Some("") => opts.page_fault_period = Some(trace::PAGE_FAULT_PERIOD),
            Some(n) => {
                let period = n.strip_prefix(':').and_then(|n| n.parse::<u64>().ok()).filter(|&n| n > 0);
                let period = period.with_context(|| {
                    format!("--events: `{e}` is not `{PAGE_FAULT}` or `{PAGE_FAULT}:N` with N ≥ 1 (faults per sample)")
                })?;
                opts.page_fault_period = Some(period);
            }
            None => opts.tracepoints.push(e.clone()),
        }
    }
    Ok(opts)
}

fn render(att: &attribution::Attribution, events: &[trace::event::Event], root: u32) -> String {
    let w = att.window;
    let mut out = format!(
        "Phases of pid {root} ({:.1} ms; {:.1}% attributed{})\n",
        (w.end - w.start) as f64 / 1e6,
        att.coverage() * 100.0,
        att.container_cgroup.as_deref().map(|c| format!("; container cgroup {c}")).unwrap_or_default()
    );
    // Sampled faults are estimates; `page-faults:1` counts are exact.
    let sampled = events.iter().any(|e| e.name == PAGE_FAULT && e.uint(FAULTS_PER_SAMPLE).is_some_and(|n| n > 1));
    let faults = if sampled { "faults ≈" } else { "faults" };
    let mut t = Table::new(["start ms", "dur ms", "phase", "detail", "on-CPU ms", "off-CPU ms", faults, "block I/O", "busiest"]);
    let opt = |v: Option<u64>, div: f64| v.map(|x| format!("{:.2}", x as f64 / div)).unwrap_or_else(|| "n/a".into());
    for s in &att.slices {
        t.row([
            format!("{:.2}", (s.start - w.start) as f64 / 1e6),
            format!("{:.2}", (s.end - s.start) as f64 / 1e6),
            s.phase.to_string(),
            s.detail.clone().unwrap_or_default(),
            opt(s.stats.on_cpu_ns, 1e6),
            opt(s.stats.off_cpu_ns, 1e6),
            s.stats.page_faults.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into()),
            s.stats.block_io.to_string(),
            s.stats.top.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
        ]);
    }
    out.push_str(&t.render());
    let procs = Procs::build(events, root, &procs::proc_comm);
    let inside: Vec<_> = events.iter().filter(|e| e.time_ns >= w.start && e.time_ns <= w.end).cloned().collect();
    out.push_str("\nEvents per process of the run\n");
    let mut t = Table::new(["process", "event", "count"]);
    for ((p, e), n) in summary::counts(&inside, &procs) {
        t.row([p, e, n.to_string()]);
    }
    out.push_str(&t.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> anyhow::Result<Options> {
        event_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn page_faults_in_the_event_list() {
        let o = opts(&["sched/sched_switch", "page-faults"]).unwrap();
        assert_eq!(o.tracepoints, ["sched/sched_switch"]);
        assert_eq!(o.page_fault_period, Some(trace::PAGE_FAULT_PERIOD));
        assert_eq!(opts(&["page-faults:1"]).unwrap().page_fault_period, Some(1));
        assert_eq!(opts(&["cgroup/cgroup_mkdir"]).unwrap().page_fault_period, None);
        for bad in ["page-faults:0", "page-faults:x", "page-faults2"] {
            let e = opts(&[bad]).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("page-faults:N"), "{e}");
        }
    }
}
