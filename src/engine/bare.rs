//! `bare`: fork+exec on the host, the baseline every container is compared with.

use std::process::{Command, Stdio};

use anyhow::Context;

use super::{EngineError, Runtime, RuntimeKind};
use crate::measure::{timer, Sample};

pub struct Bare;

impl Bare {
    pub fn new() -> Self {
        Bare
    }
}

impl Runtime for Bare {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Bare
    }

    fn run(&mut self, argv: &[String]) -> anyhow::Result<Sample> {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let sample = timer::time_command(&mut cmd).map_err(|source| EngineError::Spawn {
            runtime: RuntimeKind::Bare,
            program: argv[0].clone(),
            source,
        })?;
        if sample.exit_code != 0 {
            return Err(EngineError::RepFailed {
                runtime: RuntimeKind::Bare,
                code: sample.exit_code,
                stderr: format!("`{}` failed on the host", argv.join(" ")),
            })
            .context("bare run");
        }
        Ok(sample)
    }
}
