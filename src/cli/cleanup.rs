//! `probe cleanup`: remove what an interrupted or killed probe left behind.

use std::process::ExitCode;

use clap::Args;

use crate::output::terminal;
use crate::runtimes::cleanup;

#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// Also remove resources of probe processes that are still running.
    #[arg(long)]
    pub all: bool,
    /// List what would be removed without removing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was removed as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: CleanupArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        nix::unistd::Uid::effective().is_root(),
        "cleanup needs root (mounts, cgroups and engine containers are root's): run `sudo probe cleanup`"
    );
    anyhow::ensure!(
        !cleanup::in_child_pid_namespace(),
        "cleanup cannot run inside a container: the owners' pids are not visible here; run it on the host"
    );
    let done = cleanup::run(&cleanup::Options { all: a.all, dry_run: a.dry_run });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        print!("{}", terminal::cleanup::render(&done, a.dry_run));
        eprint!("{}", terminal::cleanup::failures(&done));
    }
    Ok(if done.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
