//! Soak: many native and engine starts in one probe run, with probe's fds and memory and the
//! machine's mounts and cgroups sampled throughout — all must stay flat. CI runs it reduced;
//! `bench/soak.sh` runs the full 10,000 native + 500 engine starts.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[derive(Debug, Clone, Copy)]
struct Sample {
    fds: usize,
    rss_kb: u64,
    mounts: usize,
    cgroups: usize,
}

fn count_probe_cgroups() -> usize {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .flat_map(|h| std::fs::read_dir(h.path()).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("probe-"))
        .count()
}

fn sample(pid: u32) -> Option<Sample> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?.lines().count();
    Some(Sample { fds, rss_kb, mounts, cgroups: count_probe_cgroups() })
}

fn soak(runtimes: &str, reps: u32) {
    let results = std::env::temp_dir().join(format!("probe-soak-{}", std::process::id()));
    let mut child = Command::new(probe_bin())
        .args(["startup", "--runtimes", runtimes, "--reps", &reps.to_string(), "--warmup", "2", "-q"])
        .arg("--results")
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut samples = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if let Some(s) = sample(child.id()) {
            samples.push(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&results);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(samples.len() >= 8, "run too short to judge flatness: {} samples", samples.len());
    // Compare the last quarter with the first half, leaving out the final samples where
    // probe serializes its results. Within a rep fds, mounts and cgroups come and go (pipes,
    // pidfds, the container's own), so a 100 ms sample lands anywhere in a rep: a leak of one
    // per rep shows as peaks that keep climbing, far above the first half's peak + 2.
    let body = &samples[..samples.len() * 9 / 10];
    let q = body.len() / 4;
    let first_half = &body[..2 * q];
    let early = &body[q..2 * q];
    let late = &body[body.len() - q..];
    let max = |s: &[Sample], f: fn(&Sample) -> u64| s.iter().map(f).max().unwrap();
    let min = |s: &[Sample], f: fn(&Sample) -> u64| s.iter().map(f).min().unwrap();
    eprintln!("soak {runtimes} x{reps}: early {:?} late {:?}", early.last(), late.last());
    let flat = |what: &str, f: fn(&Sample) -> u64| {
        assert!(max(late, f) <= max(first_half, f) + 2, "{what} grow: {} → {}", max(first_half, f), max(late, f));
    };
    flat("fds", |s| s.fds as u64);
    flat("mounts", |s| s.mounts as u64);
    flat("cgroups", |s| s.cgroups as u64);
    // Every rep's sample is kept for the results by design: a native rep holds ~22 phase
    // records of ~200 bytes (4.4 KiB). Beyond 6 KiB per rep between the windows is a leak.
    let reps_between = reps as u64 / 2;
    let allowed_kb = 1024 + 6 * reps_between;
    assert!(
        min(late, |s| s.rss_kb) <= min(early, |s| s.rss_kb) + allowed_kb,
        "probe's memory grows: {early:?} → {late:?}"
    );
    assert_eq!(count_probe_cgroups(), 0, "cgroups left after the run");
}

fn reps(var: &str, default: u32) -> u32 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn soak_native() {
    if require_root() {
        soak("native", reps("SOAK_NATIVE", 1500));
    }
}

#[test]
fn soak_engine() {
    if require_engine("docker") {
        soak("docker", reps("SOAK_ENGINE", 40));
    }
}
