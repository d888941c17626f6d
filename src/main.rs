//! probe: measure what Linux containers cost and show where the time goes.

// The folders are the layers, top to bottom: cli, output, experiment, runtimes, measure, native,
// trace, sys, ground. A module imports only from its own layer or the ones below it
// (tests/layering.rs keeps that true; docs/architecture.md says what each owns).
mod cli;
mod experiment;
#[cfg(test)]
mod fuzz_tests;
mod ground;
mod measure;
mod native;
mod output;
mod runtimes;
mod sys;
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
