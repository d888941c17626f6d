//! What every experiment shares: host facts for the report header, each experiment's defaults
//! and the chapter's reference figures, and opening the runtimes a fleet runs on.

pub mod fleets;
pub mod host;
pub mod reference;
#[cfg(test)]
mod round_trip;
