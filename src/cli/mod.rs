//! The command line: one file per subcommand, each parses, calls and prints.

mod doctor;
mod image;
mod run;
mod startup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// What this host can measure, and for anything it cannot, why and how to fix it.
    Doctor(doctor::DoctorArgs),
    /// Build or inspect the test image every runtime runs (probe-test:latest).
    Image(image::ImageArgs),
    /// Run a command in a native container (namespaces, cgroup, overlay, pivot_root), like
    /// `unshare` with a full container around it. Exit status is passed through.
    Run(run::RunArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Startup(a) => startup::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Image(a) => image::run(a),
        Command::Run(a) => run::run(a),
    }
}
