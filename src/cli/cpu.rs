//! `probe cpu`: Experiment 3 (the busy loop in a new container per run) and, with --exec,
//! Experiment 7 (the loop exec'd into a running container), against bare.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::OutputArgs;
use crate::experiment::common::fleets;
use crate::experiment::cpu::{self, exec as cpu_exec};
use crate::ground::RuntimeKind;
use crate::output::emit::{emit, fail_if_stopped, finish, save};
use crate::output::{run_files, seed_csv, terminal};

#[derive(Args, Debug)]
pub struct CpuArgs {
    /// Experiment 7: exec the loop into a container already running (docker/podman exec,
    /// setns for native) instead of starting one per run (Experiment 3).
    #[arg(long)]
    pub exec: bool,
    /// Runtimes, comma-separated, from bare, native, docker, podman, podman-rootless.
    /// Default: each of them that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Iterations of the shell loop [default: 10000000; with --exec 1000000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Measured runs per runtime [default: 3; with --exec 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: Option<u32>,
    /// Unmeasured runs per runtime first [default: 0; with --exec 1].
    #[arg(long)]
    pub warmup: Option<u32>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(a: CpuArgs) -> anyhow::Result<ExitCode> {
    crate::output::results::check_writable(&a.output.results)?;
    crate::sys::signals::install();
    let (d, label) = if a.exec { (cpu_exec::probe().defaults, "cpu_exec") } else { (cpu::probe().defaults, "cpu") };
    let cfg = cpu::Config {
        runtimes: a.runtimes.clone().unwrap_or_else(|| fleets::parse_kinds(&d.runtimes)),
        explicit: a.runtimes.is_some(),
        count: a.count.unwrap_or(d.count),
        reps: a.reps.unwrap_or(d.reps),
        warmup: a.warmup.unwrap_or(d.warmup),
        settle: Duration::from_millis(d.settle_ms),
        quiet: a.output.quiet,
    };
    let report = if a.exec { cpu_exec::run(cfg)? } else { cpu::run(cfg)? };
    let csv = seed_csv::metric_csv(&run_files::cpu_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let (csv_name, json_name) = (format!("{label}.csv"), format!("{label}.json"));
    let dir = save(&a.output.results, &report.header.experiment, &[(&csv_name, &csv), (&json_name, &json)])?;
    emit(a.output.format, &terminal::cpu::render(&report, a.exec), &csv, &json);
    let code = finish(&report.warnings, &report.skipped, &dir)?;
    fail_if_stopped(code, report.incomplete.as_ref(), &dir)
}
