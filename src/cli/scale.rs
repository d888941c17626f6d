//! `probe scale`: Experiment 6, N idle containers started one after another, time and
//! exact memory per container as N grows.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::OutputArgs;
use crate::experiment::common::fleets::FleetPlan;
use crate::experiment::scale;
use crate::ground::RuntimeKind;
use crate::output::emit::{emit, finish, save};
use crate::output::{run_files, seed_csv, terminal};

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Runtimes, comma-separated, from native, docker, podman, podman-rootless. Default:
    /// each of them that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Container counts [default: 10,20,50]; up to 500 for engines and 1000 for native.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub counts: Option<Vec<u32>>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(a: ScaleArgs) -> anyhow::Result<ExitCode> {
    let d = scale::probe().defaults;
    let counts = a.counts.clone().unwrap_or_else(|| d.fleet.counts.clone());
    let fleet = FleetPlan::new(a.runtimes.clone(), counts, &d.fleet, a.output.quiet);
    scale::check_counts(&fleet.runtimes, &fleet.counts, &d)?;
    crate::output::results::check_writable(&a.output.results)?;
    crate::sys::signals::install();
    let report = scale::run(scale::Config {
        fleet,
        nonlinear_ratio: d.nonlinear_ratio,
        settle_timeout: Duration::from_millis(d.settle_timeout_ms),
        pause: Duration::from_millis(d.pause_ms),
    })?;
    let csv = seed_csv::scale_csv(&run_files::scale_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.output.results, "scale", &[("scale.csv", &csv), ("scale.json", &json)])?;
    emit(a.output.format, &terminal::scale::render(&report), &csv, &json);
    finish(&report.warnings, &report.skipped, &dir)
}
