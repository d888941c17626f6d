//! What every experiment command does once it has a report: write its files into a new run
//! folder, print the chosen format on stdout, then warnings, skips and where results went.

use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::experiment::common::open::Skipped;
use crate::measure::runner::Stopped;
use crate::output::results::RunDir;

/// What an experiment command prints on stdout (`--format`).
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Writes the files into a new run folder and points `latest` at it.
pub fn save(base: &Path, label: &str, files: &[(&str, &[u8])]) -> anyhow::Result<RunDir> {
    let dir = RunDir::create(base, label)?;
    for (name, bytes) in files {
        dir.write_atomic(name, bytes)?;
    }
    dir.mark_latest()?;
    Ok(dir)
}

pub fn emit(format: Format, table: &str, csv: &[u8], json: &[u8]) {
    match format {
        Format::Table => print!("{table}"),
        Format::Csv => print!("{}", String::from_utf8_lossy(csv)),
        Format::Json => println!("{}", String::from_utf8_lossy(json)),
    }
}

/// Anything that was left out of a run, with why (a runtime, an I/O mode).
pub trait SkipReason {
    fn reason(&self) -> &str;
}

impl SkipReason for Skipped {
    fn reason(&self) -> &str {
        &self.reason
    }
}

impl SkipReason for crate::experiment::io::Skipped {
    fn reason(&self) -> &str {
        &self.reason
    }
}

pub fn finish(warnings: &[String], skipped: &[impl SkipReason], dir: &RunDir) -> anyhow::Result<ExitCode> {
    for w in warnings {
        eprintln!("warning: {w}");
    }
    for s in skipped {
        eprintln!("skipped {}", s.reason());
    }
    eprintln!("results: {}", dir.path().display());
    Ok(ExitCode::SUCCESS)
}

/// A run that stopped at a failed rep has saved the reps it finished; the command still
/// fails, saying where it stopped and where they are.
pub fn fail_if_stopped(code: ExitCode, incomplete: Option<&Stopped>, dir: &RunDir) -> anyhow::Result<ExitCode> {
    match incomplete {
        Some(s) => anyhow::bail!("{}; the run stopped there and its finished reps are saved in {}, marked incomplete", s.reason, dir.path().display()),
        None => Ok(code),
    }
}
