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

/// Mounts, cgroups (any hierarchy, and the cgroup root) and container dirs named
/// probe-<pid>-... for the given probe pids (those a test started) or, with none, for any.
pub fn leftovers_of(pids: &[u32]) -> Vec<String> {
    let ours = |name: &str| {
        let pid = name.strip_prefix("probe-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
        pid.is_some_and(|p| pids.is_empty() || pids.contains(&p))
    };
    let mut out: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.split('/').any(&ours)))
        .map(|l| format!("mount {l}"))
        .collect();
    let mut dirs: Vec<std::path::PathBuf> = ["/var/lib/probe/containers", "/run/probe", "/sys/fs/cgroup"].map(Into::into).to_vec();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if h.path().is_dir() {
            dirs.push(h.path());
        }
    }
    for d in dirs {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if ours(&name) {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// `probe cleanup`, which must succeed; returns what it said.
pub fn probe_cleanup() -> String {
    let o = Command::new(probe_bin()).args(["cleanup"]).output().unwrap();
    assert!(o.status.success(), "cleanup failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
