//! The measurement core: timing one child (timer), repeating it over runtimes (runner), and the
//! one executor trait every runtime implements, so the rep loop knows no runtime by name.
pub mod runner;
pub mod timer;

pub use timer::Sample;

use crate::ground::RuntimeKind;

/// A runtime ready to run reps of a command. `prepare` checks everything a rep needs
/// (binary, daemon, image) so failures surface before any measurement starts.
pub trait Runtime {
    fn kind(&self) -> RuntimeKind;
    /// Runs `argv` once to completion inside a fresh container and returns the timing.
    fn run(&mut self, argv: &[String]) -> anyhow::Result<Sample>;
}

