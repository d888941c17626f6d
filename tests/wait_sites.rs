//! `probe startup --breakdown --kernel-stacks` names where the run's waits blocked in the
//! kernel, from the real kernel's switch-out call chains: containerd stopped with SIGSTOP
//! during a `docker run` rep is a stop whose wait site is the kernel's signal stop, in the
//! rep's waits (startup.json) and in its outlier line when it stands out. Without the flag no
//! wait claims a site.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const WARMUP: usize = 1;
const REPS: usize = 5;
/// The stop begins in the rep of this `docker run` of probe's (warmup included).
const NTH_RUN: usize = WARMUP + 2;
/// Runs of the scenario for the stop to fall inside a rep (it can begin as one ends).
const ATTEMPTS: usize = 3;
const STOP: Duration = Duration::from_millis(300);

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pids `pgrep ARGS` lists.
fn pgrep(args: &[&str]) -> Vec<u32> {
    let out = Command::new("pgrep").args(args).output().expect("spawn pgrep");
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// `probe startup --breakdown --runtimes docker` with `extra` flags, its results in `dir`;
/// `during(probe_pid)` runs beside it. Returns stdout, startup.json and what `during` returned.
fn startup<T: Send + 'static>(extra: &[&str], dir: &common::TempDir, reps: usize, warmup: usize, during: impl FnOnce(u32, &AtomicBool) -> T + Send + 'static) -> (String, Value, T) {
    let probe = Command::new(common::probe_bin())
        .args(["startup", "--breakdown", "--runtimes", "docker", "--reps", &reps.to_string(), "--warmup", &warmup.to_string(), "--results", dir.s()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe startup");
    let pid = probe.id();
    let done = Arc::new(AtomicBool::new(false));
    let side = {
        let done = done.clone();
        std::thread::spawn(move || during(pid, &done))
    };
    let out = probe.wait_with_output().expect("probe startup output");
    done.store(true, Ordering::Relaxed);
    let got = side.join().expect("the side thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "probe startup failed: {stderr}");
    let run = stderr.lines().find_map(|l| l.strip_prefix("results: ")).expect("results folder named on stderr");
    let json = serde_json::from_str(&std::fs::read_to_string(format!("{run}/startup.json")).expect("startup.json")).expect("startup.json parses");
    (String::from_utf8_lossy(&out.stdout).into_owned(), json, got)
}

/// Every wait of every traced rep (all phases).
fn waits(json: &Value) -> Vec<(usize, Value)> {
    let reps = json["breakdown"][0]["rep_waits"].as_array().expect("rep_waits in the breakdown");
    reps.iter()
        .enumerate()
        .flat_map(|(i, r)| r["phases"].as_array().unwrap().iter().flat_map(move |p| p["waits"].as_array().unwrap().iter().map(move |w| (i + 1, w.clone()))))
        .collect()
}

/// The outlier lines, each unwrapped (continuation lines are indented deeper).
fn outlier_lines(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for l in out.lines().skip_while(|l| !l.starts_with("Outliers explained:")).skip(1) {
        match l.strip_prefix("    ") {
            Some(more) if !lines.is_empty() => {
                let last = lines.last_mut().unwrap();
                last.push(' ');
                last.push_str(more.trim());
            }
            _ if l.starts_with("  ") => lines.push(l.trim().to_string()),
            _ => break,
        }
    }
    lines
}

/// Stops `containerd` for STOP once probe's NTH_RUN-th `docker run` asks runc to delete its
/// container (from then to the rep's end the run waits on containerd); returns when the stop
/// began, or None when the run ended first.
fn stop_containerd(containerd: u32, probe: u32, done: &AtomicBool) -> Option<u64> {
    let mut seen: Vec<u32> = Vec::new();
    while seen.len() < NTH_RUN {
        if done.load(Ordering::Relaxed) {
            return None;
        }
        for p in pgrep(&["-P", &probe.to_string(), "-f", "docker run"]) {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !done.load(Ordering::Relaxed) && pgrep(&["-f", "runc .*delete"]).is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Continued on drop, so containerd never stays stopped, also when this panics.
    struct Cont(u32);
    impl Drop for Cont {
        fn drop(&mut self) {
            // SAFETY: kill(2) with a pid and a signal number.
            unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGCONT) };
        }
    }
    let _cont = Cont(containerd);
    let at = monotonic_ns();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(containerd as libc::pid_t, libc::SIGSTOP) }, 0, "SIGSTOP containerd");
    std::thread::sleep(STOP);
    Some(at)
}

/// The 1-based rep whose window holds `at` with at least 50 ms of it left.
fn rep_at(json: &Value, at: u64) -> Option<usize> {
    let samples = json["report"]["results"][0]["samples"].as_array().expect("samples");
    samples
        .iter()
        .position(|s| {
            let (start, wall) = (s["start_mono_ns"].as_u64().unwrap(), s["wall_ns"].as_u64().unwrap());
            start <= at && at + 50_000_000 < start + wall
        })
        .map(|i| i + 1)
}

/// A wait site's name: `[name, ns]` with name null where no call chain named it.
fn site_name(site: &Value) -> Option<&str> {
    site[0].as_str()
}

#[test]
fn a_stopped_containerd_waits_in_the_kernels_signal_stop() {
    if !common::require_engine("docker") {
        return;
    }
    let out = Command::new("pidof").args(["-s", "containerd"]).output().expect("pidof");
    let containerd: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("containerd running");
    let dir = common::TempDir::new("wait-sites");
    for attempt in 1..=ATTEMPTS {
        let (stdout, json, at) = startup(&["--kernel-stacks"], &dir, REPS, WARMUP, move |probe, done| stop_containerd(containerd, probe, done));
        println!("attempt {attempt}:\n{stdout}");
        let all = waits(&json);
        assert!(!all.is_empty(), "no waits recorded: {json}");
        // With stacks every off-CPU wait carries its sites, and the real kernel's call chains
        // name nearly all of that time.
        let off_cpu: Vec<&Value> = all.iter().map(|(_, w)| w).filter(|w| ["blocked", "stopped", "sleeping", "interrupt"].contains(&w["kind"].as_str().unwrap())).collect();
        assert!(!off_cpu.is_empty(), "no off-CPU wait in any rep: {all:?}");
        let (mut named, mut total) = (0u64, 0u64);
        for w in &off_cpu {
            let sites = w["sites"].as_array().unwrap_or_else(|| panic!("a wait without its kernel wait sites: {w}"));
            for s in sites {
                total += s[1].as_u64().unwrap();
                named += if site_name(s).is_some() { s[1].as_u64().unwrap() } else { 0 };
            }
        }
        assert!(named as f64 >= 0.8 * total as f64, "call chains named only {named} of {total} ns of off-CPU waits");
        let Some(hit) = at.and_then(|at| rep_at(&json, at)) else {
            println!("attempt {attempt}: the stop fell in no rep (it began as one ended); again");
            continue;
        };
        let stops: Vec<&Value> = all.iter().filter(|(rep, w)| *rep == hit && w["kind"] == "stopped" && w["task"]["pid"] == containerd).map(|(_, w)| w).collect();
        let ns: u64 = stops.iter().map(|w| w["ns"].as_u64().unwrap()).sum();
        assert!(ns >= 100_000_000, "rep {hit}'s path was stopped on containerd only {} ms: {stops:?}", ns / 1_000_000);
        let in_signal_stop: u64 = stops.iter().flat_map(|w| w["sites"].as_array().unwrap()).filter(|s| site_name(s) == Some("signal stop")).map(|s| s[1].as_u64().unwrap()).sum();
        assert!(in_signal_stop as f64 >= 0.9 * ns as f64, "of {ns} ns stopped only {in_signal_stop} ns in the kernel's signal stop: {stops:?}");
        // Its outlier line, when the rep stood out of the machine's noise, says it too.
        for l in outlier_lines(&stdout).iter().filter(|l| l.starts_with(&format!("docker rep {hit} ")) && l.contains("stopped by SIGSTOP")) {
            assert!(l.contains("kernel wait site: signal stop") || l.contains("kernel wait sites: signal stop"), "{l}");
        }
        return;
    }
    panic!("in {ATTEMPTS} runs the stop never fell inside a rep");
}

#[test]
fn without_kernel_stacks_no_wait_claims_a_site() {
    if !common::require_engine("docker") {
        return;
    }
    let dir = common::TempDir::new("no-wait-sites");
    let (stdout, json, ()) = startup(&[], &dir, 2, 0, |_, _| ());
    let all = waits(&json);
    assert!(all.iter().any(|(_, w)| w["kind"] != "runnable"), "no off-CPU wait to check: {all:?}");
    for (rep, w) in &all {
        assert!(w.get("sites").is_none(), "rep {rep}: a site without --kernel-stacks: {w}");
    }
    assert!(!stdout.contains("kernel wait site"), "{stdout}");
}
