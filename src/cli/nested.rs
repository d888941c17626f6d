//! `probe nested`: Experiments 5 and 9, containers inside containers — which approaches work
//! here, why the others fail, what nesting costs. `probe nested inside` (hidden) is the
//! worker that runs in the outer container.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::OutputArgs;
use crate::experiment::nested::inner::{Inner, Worker};
use crate::experiment::nested;
use crate::output::emit::{emit, save};
use crate::output::{results, run_files, seed_csv, terminal};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, mut_arg("quiet", |a| a.help("No progress lines")))]
pub struct NestedArgs {
    #[command(subcommand)]
    pub worker: Option<WorkerCommand>,
    /// Approaches to run, comma-separated ids (exp5_dind, exp5_pinp, dind_privileged,
    /// socket_mount, dind_relaxed_security, pinp_basic, pinp_privileged, pinp_vfs) [default: all].
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub only: Vec<String>,
    /// Deepest native-in-native level [default: 3, from probes/nested.json]; 0 skips it.
    #[arg(long, value_name = "N")]
    pub depth: Option<u32>,
    /// Reps per native depth [default: 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub native_reps: Option<u32>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Subcommand, Debug)]
pub enum WorkerCommand {
    /// Runs inside the outer container: probes it, runs the inner engine, prints JSON.
    #[command(hide = true)]
    Inside(InsideArgs),
}

#[derive(Args, Debug)]
pub struct InsideArgs {
    #[arg(long, value_enum)]
    pub inner: Inner,
    /// Name for the innermost container.
    #[arg(long, default_value = "probe-inner")]
    pub name: String,
    #[arg(long, default_value_t = 30)]
    pub daemon_timeout: u64,
    /// `probe run` option for a native inner level (repeatable).
    #[arg(long = "native-flag", allow_hyphen_values = true)]
    pub native_flags: Vec<String>,
}

pub fn run(a: NestedArgs) -> anyhow::Result<ExitCode> {
    if let Some(WorkerCommand::Inside(w)) = a.worker {
        return inside(w);
    }
    let defaults = nested::probe_file().defaults;
    results::check_writable(&a.output.results)?;
    crate::sys::signals::install();
    let quiet = a.output.quiet;
    let mut progress = |m: &str| {
        if !quiet {
            eprintln!("probe nested: {m}");
        }
    };
    let report = nested::run(
        nested::Config {
            only: a.only,
            native_depth: a.depth.unwrap_or(defaults.native_depth),
            native_reps: a.native_reps.unwrap_or(defaults.native_reps),
            daemon_timeout: Duration::from_secs(defaults.daemon_timeout_s),
            outer_timeout: Duration::from_secs(defaults.outer_timeout_s),
        },
        &crate::sys::signals::interrupted,
        &mut progress,
    )?;

    let csv = seed_csv::metric_csv(&run_files::nested_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.output.results, "nested", &[("nested.csv", &csv), ("nested.json", &json)])?;
    emit(a.output.format, &terminal::nested::render(&report), &csv, &json);
    for n in &report.not_run {
        eprintln!("not run: {} ({}): {}", n.approaches.join(", "), n.engine, n.reason);
    }
    for l in &report.leftovers {
        eprintln!("warning: left behind: {l}");
    }
    eprintln!("results: {}", dir.path().display());
    Ok(if report.leftovers.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The worker: one JSON line on stdout, whatever happens inside.
fn inside(w: InsideArgs) -> anyhow::Result<ExitCode> {
    let worker = Worker {
        inner: w.inner,
        name: w.name,
        daemon_timeout: Duration::from_secs(w.daemon_timeout),
        native_flags: w.native_flags,
    };
    let report = worker.run()?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
