//! The measurement core: timing one child (timer) and repeating it (runner).
pub mod runner;
pub mod timer;

pub use timer::Sample;
