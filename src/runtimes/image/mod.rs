//! The one test image every runtime runs, assembled from host binaries.
pub mod build;
pub mod nested;

