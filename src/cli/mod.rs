//! The command line: one file per subcommand, each parses, calls and prints.

mod all;
mod cleanup;
mod compare;
mod cpu;
mod doctor;
mod image;
mod io;
mod memory;
mod nested;
mod report;
mod run;
mod scale;
mod startup;
mod trace;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::output::emit::Format;

pub use run::fast_path as run_fast_path;

/// probe measures what Linux containers cost and shows where the time goes, at the kernel
/// level, without any engine API. It runs the same test image on bare metal, on its own
/// engine-less `native` container, on OCI runtimes and on Docker and Podman, and writes
/// results under results/<run>/.
#[derive(Parser, Debug)]
#[command(name = "probe", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Experiment 1: how long a container takes to start and run a command, per runtime.
    Startup(startup::StartupArgs),
    /// Remove what an interrupted or killed probe left behind: engine containers, mounts,
    /// cgroups and container dirs named probe-<pid>-* whose probe is gone.
    Cleanup(cleanup::CleanupArgs),
    /// What this host can measure, and for anything it cannot, why and how to fix it.
    Doctor(doctor::DoctorArgs),
    /// Build or inspect the test image every runtime runs (probe-test:latest).
    Image(image::ImageArgs),
    // Its help text is on RunArgs, shared with run::fast_path.
    Run(run::RunArgs),
    /// Experiments 2 and 8: memory per idle container, by `free -m` (with its noise) or,
    /// with --cgroup, exactly from each container's cgroup plus the engine's processes.
    Memory(memory::MemoryArgs),
    /// Experiments 3 and 7: the chapter's CPU loop in a new container per run, or with
    /// --exec inside a running one, against bare; wall time and CPU time apart.
    Cpu(cpu::CpuArgs),
    /// Experiment 6: N idle containers started one after another; time and exact memory
    /// per container as N grows, with growth that is not linear flagged.
    Scale(scale::ScaleArgs),
    /// Experiment 4: disk write speed per storage mode, and whether each mode's sync really
    /// reached the disk (bytes and flushes the device received before the sync returned).
    Io(io::IoArgs),
    /// Trace any command system-wide (tracepoints via perf_event_open) and show its phase
    /// timeline and what each of its processes did in the kernel.
    Trace(trace::TraceArgs),
    /// The in-container side of the experiments (JSON on stdout); not for direct use.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
    /// Experiments 5 and 9: which ways of running containers inside containers work here,
    /// why the others fail (probed from inside), and what nesting costs.
    Nested(nested::NestedArgs),
    /// Every experiment in sequence into one run folder (resumable), then the report.
    All(all::AllArgs),
    /// Markdown and self-contained HTML report of a run folder, with charts (PNG and SVG).
    Report(report::ReportArgs),
    /// Run folders side by side: host and version differences, then every shared figure with
    /// its ratio, 95% interval and verdict (faster, slower, no clear difference).
    Compare(compare::CompareArgs),
}

/// Where an experiment's results go and what stdout shows: every command that writes a run
/// folder flattens these in.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// What to print on stdout; the run folder always gets CSV and JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Folder that receives a new run folder (and a `latest` link) per run.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Experiments first remove what a killed probe left, and say so. `probe run` skips this: it
/// is an interactive tool whose start-up time is the point.
fn sweep_stale() {
    let n = crate::runtimes::cleanup::sweep_stale();
    if n > 0 {
        eprintln!("probe: removed {n} leftovers of an earlier probe that was killed (see `probe cleanup --dry-run`)");
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let experiment = match &cli.command {
        Command::Startup(_) | Command::Memory(_) | Command::Cpu(_) | Command::Scale(_) | Command::Io(_) => true,
        Command::Nested(a) => a.worker.is_none(),
        _ => false,
    };
    if experiment {
        sweep_stale();
    }
    match cli.command {
        Command::Startup(a) => startup::run(a),
        Command::Cleanup(a) => cleanup::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Image(a) => image::run(a),
        Command::Run(a) => run::run(a),
        Command::Memory(a) => memory::run(a),
        Command::Cpu(a) => cpu::run(a),
        Command::Scale(a) => scale::run(a),
        Command::Trace(a) => trace::run(a),
        Command::Io(a) => io::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Nested(a) => nested::run(a),
        Command::All(a) => all::run(a),
        Command::Report(a) => report::run(a),
        Command::Compare(a) => compare::run(a),
    }
}
