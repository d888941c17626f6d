//! Shared helpers for integration tests that need root or engines.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Path of the probe binary cargo built for these tests.
pub fn probe_bin() -> &'static str {
    env!("CARGO_BIN_EXE_probe")
}

pub fn probe(args: &[&str]) -> Output {
    Command::new(probe_bin())
        .args(args)
        .output()
        .expect("spawn probe")
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// Returns false (and says why) when a test cannot run here. Under CI=true a skip is a
/// failure: CI installs and starts everything the tests need, so a skip there hides a bug.
pub fn require(ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("CI=true and this test would be skipped: {why}");
    }
    eprintln!("SKIPPED: {why}");
    false
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn require_root() -> bool {
    require(is_root(), "needs root (run the suite with `bash scripts/test.sh`)")
}

/// True when `cmd args` runs and exits 0.
pub fn succeeds(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn require_engine(engine: &str) -> bool {
    require_root() && require(succeeds(engine, &["info"]), &format!("{engine} is not usable (`{engine} info` fails): run scripts/setup-engines.sh"))
}

/// A scratch directory under the system temp dir, unique per test process and tag, removed
/// on drop even when the test fails — after undoing any mount a test made inside it (a
/// mounted dir cannot be removed, and would outlive the test).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("probe-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn s(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// A subdirectory, created.
    pub fn sub(&self, name: &str) -> std::path::PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let prefix = format!("{}/", self.0.display());
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").arg("-l").arg(&m).output();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
