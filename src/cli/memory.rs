//! `probe memory`: Experiment 2 (`free -m` with N idle containers, against its measured
//! noise) and, with --cgroup, Experiment 8 (exact memory per container from its cgroup, and
//! the engine's processes).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::OutputArgs;
use crate::experiment::common::fleets::FleetPlan;
use crate::experiment::memory::{self, cgroup as memory_cgroup};
use crate::ground::RuntimeKind;
use crate::output::emit::{emit, finish, save};
use crate::output::{results, run_files, seed_csv, terminal};

#[derive(Args, Debug)]
pub struct MemoryArgs {
    /// Experiment 8: read each container's own cgroup and the engine's processes (exact),
    /// instead of `free -m` (Experiment 2).
    #[arg(long)]
    pub cgroup: bool,
    /// Runtimes, comma-separated, from native, docker, podman, podman-rootless. Default:
    /// each of them that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Container counts [default: 1,5,10,20; with --cgroup 0,1,3,5].
    #[arg(long, value_delimiter = ',', value_name = "LIST", value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub counts: Option<Vec<u32>>,
    /// Experiment 2: idle reads of `free` that measure its noise, taken before the batches
    /// and again after them [default: 10 each time].
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub noise_reads: Option<u32>,
    /// Experiment 2: milliseconds to wait after the last start before reading [default: 3000].
    #[arg(long, value_name = "MS")]
    pub settle: Option<u64>,
    /// Experiment 8: warm-up containers started and removed before measuring [default: 1].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Experiment 8: longest wait, in ms, for the containers' memory to stop moving [default: 10000].
    #[arg(long, value_name = "MS")]
    pub settle_timeout: Option<u64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    results::check_writable(&a.output.results)?;
    crate::sys::signals::install();
    if a.cgroup {
        run_cgroup(a)
    } else {
        run_free(a)
    }
}

fn run_free(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    let d = memory::probe().defaults;
    let report = memory::run(memory::Config {
        fleet: FleetPlan::new(a.runtimes.clone(), a.counts.clone().unwrap_or_else(|| d.fleet.counts.clone()), &d.fleet, a.output.quiet),
        noise_reads: a.noise_reads.unwrap_or(d.noise_reads),
        noise_interval: Duration::from_millis(d.noise_interval_ms),
        settle: Duration::from_millis(a.settle.unwrap_or(d.settle_ms)),
        pause: Duration::from_millis(d.pause_ms),
    })?;
    let csv = seed_csv::metric_csv(&run_files::memory_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.output.results, "memory", &[("memory.csv", &csv), ("memory.json", &json)])?;
    emit(a.output.format, &terminal::memory::render_free(&report), &csv, &json);
    finish(&[], &report.skipped, &dir)
}

fn run_cgroup(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    let d = memory_cgroup::probe().defaults;
    let mut counts = a.counts.clone().unwrap_or_else(|| d.fleet.counts.clone());
    counts.sort_unstable();
    counts.dedup();
    anyhow::ensure!(counts.len() >= 2, "--counts needs at least two different counts to fit a line");
    let report = memory_cgroup::run(memory_cgroup::Config {
        fleet: FleetPlan::new(a.runtimes.clone(), counts, &d.fleet, a.output.quiet),
        warmup: a.warmup.unwrap_or(d.warmup),
        settle_timeout: Duration::from_millis(a.settle_timeout.unwrap_or(d.settle_timeout_ms)),
    })?;
    let csv = seed_csv::metric_csv(&run_files::memory_cgroup_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.output.results, "memory-cgroup", &[("memory_cgroup.csv", &csv), ("memory_cgroup.json", &json)])?;
    emit(a.output.format, &terminal::memory::render_cgroup(&report), &csv, &json);
    finish(&report.warnings, &report.skipped, &dir)
}
