//! `probe startup`: Experiment 1, startup latency per runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::OutputArgs;
use crate::experiment::startup::command::{self, Options};
use crate::ground::RuntimeKind;
use crate::output::emit::{emit, fail_if_stopped, finish, save};
use crate::output::report::lang::Lang;
use crate::output::{results, run_files, seed_csv, terminal};

#[derive(Args, Debug)]
pub struct StartupArgs {
    /// Runtimes to measure, comma-separated: bare, native, runc, crun, docker, podman,
    /// podman-rootless. Default: every one of bare, native, runc, docker, podman and
    /// podman-rootless that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Measured repetitions per runtime [default: 10, from probes/startup.json].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub reps: Option<u32>,
    /// Unmeasured runs per runtime before the reps, to warm caches [default: 1].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Also cut each start into phases (native: timed in-process) and show where time goes.
    #[arg(long)]
    pub breakdown: bool,
    /// Only with --breakdown: also record the kernel stack of every switch-out (sched_switch
    /// call chains, symbolized from /proc/kallsyms) and name, in the outlier lines and the
    /// JSON's waits, where each waiting task blocked in the kernel (futex, epoll, pipe read,
    /// disk I/O, signal stop, freezer, memory reclaim...). Off by default: the kernel unwinds
    /// a stack at every context switch on the machine (its cost: docs/tracing.md).
    #[arg(long)]
    pub kernel_stacks: bool,
    /// With --breakdown: draw each runtime's median rep (native's phases, each traced
    /// engine's phases and processes) as one timeline: SVG or PNG, by the file's extension
    /// (a new file; an existing one is not replaced).
    #[arg(long, value_name = "FILE.svg|png", requires = "breakdown", value_parser = crate::output::timeline::check_path)]
    pub timeline: Option<PathBuf>,
    /// Language of the timeline's words (its phases, critical-path states and legend).
    #[arg(long, value_enum, default_value_t = Lang::En, requires = "timeline")]
    pub lang: Lang,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Command to run in each container [default: echo ok].
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(a: StartupArgs) -> anyhow::Result<ExitCode> {
    // Checked here rather than by clap's `requires`, whose complaint spans several lines.
    anyhow::ensure!(
        a.breakdown || !a.kernel_stacks,
        "--kernel-stacks names where the breakdown's waits blocked, so it needs --breakdown: add --breakdown or drop --kernel-stacks"
    );
    results::check_writable(&a.output.results)?;
    let o = command::run(Options {
        runtimes: a.runtimes,
        reps: a.reps,
        warmup: a.warmup,
        breakdown: a.breakdown,
        kernel_stacks: a.kernel_stacks,
        command: a.command,
        quiet: a.output.quiet,
    })?;
    let csv = seed_csv::metric_csv(&run_files::startup_rows(&o.saved.report))?;
    let json = run_files::startup_json(&o)?;
    let phases = if a.breakdown { Some(run_files::phases_csv(&o.saved.report)?) } else { None };
    let mut files: Vec<(&str, &[u8])> = vec![("startup.csv", &csv), ("startup.json", &json)];
    files.extend(phases.as_deref().map(|p| ("phases.csv", p)));
    let dir = save(&a.output.results, "startup", &files)?;
    if let Some(path) = &a.timeline {
        terminal::startup::timeline(path, &o, &dir, a.lang)?;
    }
    emit(a.output.format, &terminal::startup::render(&o), &csv, &json);
    let code = finish(&o.saved.report.warnings, &o.saved.report.skipped, &dir)?;
    fail_if_stopped(code, o.saved.report.incomplete.as_ref(), &dir)
}
