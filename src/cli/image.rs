//! `probe image`: the test image every runtime runs.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::output::terminal;
use crate::runtimes::image::build;

#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub action: ImageAction,
}

#[derive(Subcommand, Debug)]
pub enum ImageAction {
    /// Assemble the rootfs from host binaries (busybox-static, probe and its libraries) and
    /// import it into docker, podman and rootless podman as probe-test:latest. Does nothing
    /// when the bytes have not changed.
    Build {
        /// Rebuild and re-import even when nothing changed.
        #[arg(long)]
        force: bool,
        /// Print the build report as JSON.
        #[arg(long)]
        json: bool,
        /// Also build probe-nested:latest (Docker Engine and Podman from the distribution's
        /// packages, for `probe nested`): debootstrap from the host's apt mirror, several
        /// minutes the first time, seconds when nothing changed.
        #[arg(long)]
        nested: bool,
    },
}

pub fn run(a: ImageArgs) -> anyhow::Result<ExitCode> {
    match a.action {
        ImageAction::Build { force, json, nested } => {
            let report = build::build(force, build::log)?;
            let nested_report = if nested { Some(crate::runtimes::image::nested::build(force, build::log)?) } else { None };
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"test": &report, "nested": &nested_report}))?);
            } else {
                print!("{}", terminal::image::render(&report, nested_report.as_ref()));
            }
            let failed = report.engines.iter().chain(nested_report.iter().flat_map(|n| &n.engines)).any(|e| e.outcome.starts_with("failed"));
            Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
    }
}
