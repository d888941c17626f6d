//! `bare`: fork+exec on the host, the baseline every container is compared with.

use std::process::Command;

use crate::runtimes::cli_engine::StderrSink;
use crate::runtimes::EngineError;
use crate::measure::Runtime;
use crate::ground::RuntimeKind;
use crate::measure::Sample;

pub struct Bare {
    stderr: StderrSink,
}

impl Bare {
    pub fn new() -> Result<Self, EngineError> {
        let stderr = StderrSink::new().map_err(|e| EngineError::Unusable {
            runtime: RuntimeKind::Bare,
            what: format!("memfd_create: {e}"),
            fix: "needs a kernel with memfd (3.17+)".into(),
        })?;
        Ok(Bare { stderr })
    }
}

impl Runtime for Bare {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Bare
    }

    fn run(&mut self, argv: &[String]) -> anyhow::Result<Sample> {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        Ok(self.stderr.time_rep(RuntimeKind::Bare, &mut cmd)?)
    }
}
