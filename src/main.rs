//! probe: measure what Linux containers cost and show where the time goes.

mod cleanup;
mod cli;
mod engine;
mod experiment;
#[cfg(test)]
mod fuzz_tests;
mod host;
mod image;
mod measure;
mod output;
mod phase;
mod runtime;
mod signals;
mod stats;
mod trace;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let result = cli::run_fast_path().unwrap_or_else(|| cli::run(cli::Cli::parse()));
    match result {
        Ok(code) => code,
        Err(err) => {
            // One line: the outermost context first, then each cause, so the phase, path and
            // errno all reach the user without a backtrace.
            eprintln!("probe: {err:#}");
            ExitCode::FAILURE
        }
    }
}
