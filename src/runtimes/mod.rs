//! The runtimes a command can be measured on. Engines are driven only through their CLIs,
//! exactly as a user would type them: no API clients, no engine sockets.

pub mod cleanup;
pub mod cli_engine;
pub mod detached;
pub mod detect;
pub mod image;
pub mod native;
pub mod oci;
pub mod rootless;
pub mod spawn;

use crate::ground::RuntimeKind;
pub use crate::measure::Runtime;

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
    /// A rep failed and the engine no longer answers: it stopped during the run.
    #[error("{runtime}: {what}. The engine said: {stderr}. To go on: {fix}")]
    Stopped {
        runtime: RuntimeKind,
        what: String,
        stderr: String,
        fix: String,
    },
    #[error("{runtime}: could not start `{program}`: {source}")]
    Spawn {
        runtime: RuntimeKind,
        program: String,
        source: std::io::Error,
    },
}

/// Builds a ready-to-run runtime, or says why it cannot run here.
pub fn open(kind: RuntimeKind) -> Result<Box<dyn Runtime>, EngineError> {
    match kind {
        // Native runs in-process (phases timed inside), runc/crun from an OCI bundle; the rest are Spawner commands.
        RuntimeKind::Native => Ok(Box::new(native::Native::open()?)),
        RuntimeKind::Runc | RuntimeKind::Crun => Ok(Box::new(oci::OciRuntime::open(kind)?)),
        RuntimeKind::Bare | RuntimeKind::Docker | RuntimeKind::Podman | RuntimeKind::PodmanRootless => {
            Ok(Box::new(spawn::Spawned::open(kind)?))
        }
    }
}
