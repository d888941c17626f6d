//! `probe all`: every experiment in sequence into one run folder, one progress display with
//! an ETA, then the report in English and Spanish.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, CommandFactory};

use crate::experiment::all::{self, Options, Status};
use crate::output::terminal::{self, all::Display};
use crate::output::{results, run_files};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo probe all --quick                       every experiment, fewer reps and smaller counts (minutes)\n  \
    sudo probe all                               the chapter's parameters (much longer)\n  \
    sudo probe all --resume results/latest       finish an interrupted run; finished experiments are kept")]
pub struct AllArgs {
    /// Fewer reps and smaller counts, for a first look in a few minutes.
    #[arg(long, conflicts_with = "resume")]
    pub quick: bool,
    /// Folder that receives the new run folder (and a `latest` link).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// Continue an interrupted `probe all` run in RUN_DIR, with the options it started with.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
}

pub fn run(a: AllArgs) -> anyhow::Result<ExitCode> {
    crate::sys::signals::install();
    let (run_dir, quick) = match &a.resume {
        Some(dir) => {
            let (run, options) = all::resume(dir)?;
            (run, options.quick)
        }
        None => {
            results::check_writable(&a.results)?;
            (run_files::start_all(&a.results, Options { quick: a.quick })?, a.quick)
        }
    };
    eprintln!("run folder: {}{}", run_dir.display(), if quick { " (quick)" } else { "" });
    let cli = super::Cli::command();
    let cfg = all::Config {
        probe: std::env::current_exe().context("locating the probe binary")?,
        run: run_dir.clone(),
        quick,
        cli: &cli,
    };
    let started = Instant::now();
    let mut display = Display::new(quick, &all::read_journal(&run_dir)?);
    let entries = all::run(&cfg, &crate::sys::signals::interrupted, &mut display)?;
    display.finish();
    print!("{}", terminal::all::render(&entries));
    eprintln!("total {:.0} s", started.elapsed().as_secs_f64());
    if crate::sys::signals::interrupted() {
        eprintln!("interrupted: resume with `probe all --resume {}`", run_dir.display());
        return Ok(ExitCode::from(130));
    }
    terminal::all::reports(&run_dir)?;
    let failed = entries.iter().any(|e| e.status == Status::Failed);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
