//! `probe doctor`: what this host can measure.

use std::process::ExitCode;

use clap::Args;

use crate::experiment::doctor;
use crate::output::terminal;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print the checks as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: DoctorArgs) -> anyhow::Result<ExitCode> {
    let all = doctor::run_all();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", terminal::doctor::render(&all));
    Ok(ExitCode::SUCCESS)
}
