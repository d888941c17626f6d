//! One file per experiment of the chapter. Each returns records; none knows output formats.
pub mod breakdown;
pub mod reference;
pub mod startup;
