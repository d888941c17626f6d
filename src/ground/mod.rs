//! The vocabulary every layer may use: runtime kinds and the names probe gives what it creates,
//! the phase vocabulary, and descriptive statistics. Imports nothing of probe's own.

mod kind;
pub mod phase;
pub mod stats;
#[cfg(test)]
pub mod testing;

pub use kind::{rootfs_dir, RuntimeKind, IMAGE_TAG, NAME_PREFIX, OWNER_LABEL};
