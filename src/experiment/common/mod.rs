//! What every experiment shares: host facts for the report header, each experiment's defaults
//! and the chapter's reference figures, opening each runtime or skipping it, and the
//! runtimes a fleet runs on.

pub mod fleets;
pub mod host;
pub mod open;
pub mod reference;
#[cfg(test)]
mod round_trip;
