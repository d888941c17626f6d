//! The one test image every runtime runs, assembled from host binaries.
pub mod build;
pub mod nested;

use std::path::PathBuf;

/// Where the image's rootfs is kept for the native and OCI runtimes (root-owned, 0755).
pub fn rootfs_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("PROBE_IMAGE_DIR").unwrap_or_else(|| "/var/lib/probe/image".into()))
        .join("rootfs")
}
