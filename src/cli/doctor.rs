//! `probe doctor`: what this host can measure.

use std::process::ExitCode;

use clap::Args;

use crate::experiment::doctor;
use crate::output::table::Table;

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
    let mut t = Table::new(["area", "check", "", "detail"]);
    for c in &all {
        t.row([
            c.area.to_string(),
            c.name.clone(),
            if c.ok { "ok" } else { "NO" }.to_string(),
            c.detail.clone(),
        ]);
    }
    print!("{}", t.render());
    let fixes: Vec<_> = all.iter().filter_map(|c| c.fix.as_ref().map(|f| (c, f))).collect();
    if !fixes.is_empty() {
        println!("\nTo fix:");
        for (c, f) in fixes {
            println!("  {} {}: {f}", c.area, c.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
