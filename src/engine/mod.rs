//! The runtimes a command can be measured on. Engines are driven only through their CLIs,
//! exactly as a user would type them: no API clients, no engine sockets.

pub mod bare;
pub mod cli_engine;
pub mod detached;
pub mod detect;
pub mod native;
pub mod oci;
pub mod rootless;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::measure::Sample;

/// The tag every runtime's copy of the test image carries.
pub const IMAGE_TAG: &str = "probe-test:latest";
/// Label put on every engine container probe starts, so `probe cleanup` can find them.
pub const OWNER_LABEL: &str = "io.github.probe.owner=probe";
/// Name prefix of every container, cgroup and temp dir probe creates.
pub const NAME_PREFIX: &str = "probe-";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    Bare,
    Native,
    Runc,
    Crun,
    Docker,
    Podman,
    PodmanRootless,
}

impl RuntimeKind {
    pub const ALL: [RuntimeKind; 7] = [
        RuntimeKind::Bare,
        RuntimeKind::Native,
        RuntimeKind::Runc,
        RuntimeKind::Crun,
        RuntimeKind::Docker,
        RuntimeKind::Podman,
        RuntimeKind::PodmanRootless,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Bare => "bare",
            RuntimeKind::Native => "native",
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
            RuntimeKind::Docker => "docker",
            RuntimeKind::Podman => "podman",
            RuntimeKind::PodmanRootless => "podman-rootless",
        }
    }

    /// True for runtimes whose starts `--breakdown` cuts into phases: native times its own,
    /// engines are traced. bare, runc and crun only have a total.
    pub fn has_phases(self) -> bool {
        self == RuntimeKind::Native || self.is_engine()
    }

    /// True for runtimes that run a full engine (daemon or CLI engine) around an OCI runtime.
    pub fn is_engine(self) -> bool {
        matches!(
            self,
            RuntimeKind::Docker | RuntimeKind::Podman | RuntimeKind::PodmanRootless
        )
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuntimeKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = RuntimeKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown runtime '{s}': choose from {}", names.join(", "))
            })
    }
}

/// Why a runtime cannot be used here, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{runtime}: {what}; {fix}")]
    Unusable {
        runtime: RuntimeKind,
        what: String,
        fix: String,
    },
    #[error("{runtime}: rep failed with exit code {code}: {stderr}")]
    RepFailed {
        runtime: RuntimeKind,
        code: i32,
        stderr: String,
    },
    #[error("{runtime}: could not start `{program}`: {source}")]
    Spawn {
        runtime: RuntimeKind,
        program: String,
        source: std::io::Error,
    },
}

/// A runtime ready to run reps of a command. `prepare` checks everything a rep needs
/// (binary, daemon, image) so failures surface before any measurement starts.
pub trait Runtime {
    fn kind(&self) -> RuntimeKind;
    /// Runs `argv` once to completion inside a fresh container and returns the timing.
    fn run(&mut self, argv: &[String]) -> anyhow::Result<Sample>;
}

/// Builds a ready-to-run runtime, or says why it cannot run here.
pub fn open(kind: RuntimeKind) -> Result<Box<dyn Runtime>, EngineError> {
    match kind {
        RuntimeKind::Bare => Ok(Box::new(bare::Bare::new()?)),
        RuntimeKind::Native => Ok(Box::new(native::Native::open()?)),
        RuntimeKind::Runc | RuntimeKind::Crun => Ok(Box::new(oci::OciRuntime::open(kind)?)),
        RuntimeKind::Docker | RuntimeKind::Podman | RuntimeKind::PodmanRootless => {
            Ok(Box::new(cli_engine::CliEngine::open(kind)?))
        }
    }
}
