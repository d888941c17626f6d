//! `probe trace -- CMD...`: trace any command system-wide and show its phase timeline and
//! what each of its processes did in the kernel.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::output::report::lang::Lang;
use crate::output::{terminal, timeline};
use crate::trace::event::PAGE_FAULT;
use crate::trace::{self, session::Options};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo probe trace -- docker run --rm --network none probe-test:latest true\n  \
    sudo probe trace --events sched/sched_process_exec,cgroup/cgroup_mkdir -- podman build .\n  \
    sudo probe trace --json -- docker compose up -d > events.json\n  \
    sudo probe trace --critical-path --kernel-stacks -- docker run --rm --network none probe-test:latest true\n  \
    sudo probe trace --output trace.json -- sh -c 'docker run --rm --network none probe-test:latest true; sleep 60'\n\n\
Memory stays bounded however long the trace: records are reduced as they are drained, and\n\
only the command's processes (and the engine daemons while it talks to them) are kept.\n\
Ctrl-C stops tracing (the command gets it too) and prints what was seen so far.")]
pub struct TraceArgs {
    /// Tracepoints to record, comma-separated `system/name` (see /sys/kernel/tracing/events).
    /// Default: probe's set (process lifecycle, namespace/mount/cgroup syscalls, block,
    /// fuse, ext4 sync, sched_switch) plus page faults sampled 1 in 16. In the list,
    /// `page-faults` samples page faults 1 in 16 and `page-faults:1` records every one
    /// (exact, but ~0.65 µs per fault: slows fault-heavy commands).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub events: Option<Vec<String>>,
    /// Print the raw events as one JSON document instead of the tables: the events are
    /// streamed as they are drained, the analysis (phases per container start, processes)
    /// follows them.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
    /// Write that JSON document to a new FILE (not replaced if it exists) and print the
    /// tables as usual.
    #[arg(long, value_name = "FILE", value_parser = check_new_file)]
    pub output: Option<PathBuf>,
    /// Show progress on stderr (elapsed, events, lost, memory) once a second; the default
    /// when stderr is a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Also draw the run as a timeline of processes and phases: SVG or PNG, by the file's
    /// extension (a new file; an existing one is not replaced).
    #[arg(long, value_name = "FILE.svg|png", value_parser = timeline::check_path)]
    pub timeline: Option<PathBuf>,
    /// Language of the timeline's words (its phases, critical-path states and legend).
    #[arg(long, value_enum, default_value_t = Lang::En, requires = "timeline")]
    pub lang: Lang,
    /// Also print the command's critical path: from its exit backwards, which task it was
    /// waiting for at each instant and in what state (running, runnable, D, stopped, asleep).
    /// Adds sched/sched_waking and signal/signal_generate to the events (every wakeup on the
    /// machine is recorded: a higher tracing cost than the defaults).
    #[arg(long)]
    pub critical_path: bool,
    /// With --critical-path: record the kernel stack of every switch-out (sched_switch call
    /// chains, symbolized from /proc/kallsyms) and name where each task of the path blocked
    /// (futex, epoll, pipe read, disk I/O, signal stop, freezer, memory reclaim...). Off by
    /// default: the kernel unwinds a stack at every context switch on the machine.
    #[arg(long, requires = "critical_path")]
    pub kernel_stacks: bool,
    /// The command to trace.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(a: TraceArgs) -> anyhow::Result<ExitCode> {
    let opts = match &a.events {
        Some(list) => event_options(list)?,
        None => trace::default_options(),
    };
    let mut opts = if a.critical_path { with_critical(opts) } else { opts };
    opts.switch_stacks = a.kernel_stacks;
    let mut stream = match (&a.output, a.json) {
        (Some(path), _) => Some(terminal::trace::EventStream::file(path, &a.command)?),
        (None, true) => Some(terminal::trace::EventStream::stdout(&a.command)?),
        (None, false) => None,
    };
    let show_progress = a.progress || std::io::stderr().is_terminal();
    let mut on_event = stream.as_mut().map(|s| move |e: &trace::event::Event| s.event(e));
    let mut progress = terminal::trace::progress;
    let hooks = trace::command::Hooks {
        note: &mut |n| eprintln!("note: {n}"),
        event: on_event.as_mut().map(|f| f as &mut dyn FnMut(&trace::event::Event)),
        progress: show_progress.then_some(&mut progress as &mut dyn FnMut(&trace::command::Progress)),
    };
    let run = trace::command::run(&a.command, &opts, a.critical_path, hooks)?;
    if show_progress {
        eprintln!();
    }
    terminal::trace::show(&a.command, &run, stream, a.json, a.timeline.as_deref(), a.lang)?;
    Ok(exit_code(run.status))
}

/// `--output`: a new file in an existing folder, checked before the command runs.
fn check_new_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if path.symlink_metadata().is_ok() {
        return Err(format!("{s} already exists: remove it or name another file"));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(format!("{}: no such folder for the output file", dir.display()));
    }
    Ok(path)
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

/// `opts` and what the critical path needs, each tracepoint once.
fn with_critical(mut opts: Options) -> Options {
    for t in trace::critical::NEEDS.iter().chain(trace::CRITICAL_TRACEPOINTS) {
        if !opts.tracepoints.iter().any(|o| o == t) {
            opts.tracepoints.push(t.to_string());
        }
    }
    opts
}

/// Splits `--events` into tracepoints and the page-fault pseudo-event `page-faults[:N]`.
fn event_options(list: &[String]) -> anyhow::Result<Options> {
    let mut opts = Options { tracepoints: Vec::new(), page_fault_period: None, switch_stacks: false };
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
