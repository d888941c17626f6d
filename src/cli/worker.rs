//! `probe worker ...` (hidden): what probe runs inside a container for the experiments that
//! need work done in there and reported back. Not for people; its output is JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::experiment::io::protocol::{Message, SyncMode};
use crate::experiment::io::worker;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(subcommand)]
    pub job: Job,
}

#[derive(Subcommand, Debug)]
pub enum Job {
    /// Write a file and sync it, reporting each phase as a JSON line on stdout.
    Io(IoJob),
}

#[derive(Args, Debug)]
pub struct IoJob {
    /// The file to create (must not exist; removed before exit).
    #[arg(long)]
    pub path: PathBuf,
    /// Bytes to write.
    #[arg(long)]
    pub size: u64,
    /// Bytes per write(2) call.
    #[arg(long)]
    pub block: u64,
    #[arg(long, value_enum, default_value_t = SyncMode::Fdatasync)]
    pub sync: SyncMode,
    /// Wait for a byte on stdin after each phase, so the host can take its evidence.
    #[arg(long)]
    pub pause: bool,
}

pub fn run(a: WorkerArgs) -> anyhow::Result<ExitCode> {
    match a.job {
        Job::Io(j) => {
            let params = worker::Params { path: j.path, size: j.size, block: j.block, sync: j.sync, pause: j.pause };
            let mut out = std::io::stdout().lock();
            let result = worker::run(&params, &mut out, &mut std::io::stdin().lock());
            if let Err(e) = &result {
                // The host reads stdout; the error line there is the one it reports.
                let msg = Message::Error { message: format!("{e:#}") };
                let _ = serde_json::to_writer(&mut out, &msg).map(|()| writeln!(out));
            }
            result.map(|()| ExitCode::SUCCESS)
        }
    }
}
