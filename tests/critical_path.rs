//! The critical path names the cause of a slow rep: delays injected by the test into one rep
//! of a real `docker run` must show in that rep's outlier line, and only there.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const WARMUP: usize = 1;
const REPS: usize = 6;
/// The delay is injected once this many `docker run`s of probe's have started (which rep it
/// hit is then found by time, from the reps' recorded windows).
const NTH_CLI: usize = WARMUP + 3;

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What a run with one injected delay left: probe's stdout, per measured rep the waits of
/// its critical path (from startup.json), and the 1-based rep the delay fell in.
struct Run {
    out: String,
    waits: Vec<Vec<Value>>,
    hit: usize,
}

fn children_named(parent: u32, comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ..."
            let Some((head, rest)) = stat.rsplit_once(") ") else { return false };
            let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
            head.ends_with(&format!("({comm}")) && ppid == Some(parent)
        })
        .collect()
}

/// Runs `probe startup --breakdown --runtimes docker` and calls `inject` once, shortly after
/// the NTH_CLI-th docker CLI has started; `inject` returns when (CLOCK_MONOTONIC) the delay
/// began.
fn startup_with(inject: impl FnOnce() -> u64 + Send + 'static) -> Run {
    let probe = Command::new(common::probe_bin())
        .args(["startup", "--breakdown", "--runtimes", "docker", "--reps", &REPS.to_string(), "--warmup", &WARMUP.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe startup");
    let probe_pid = probe.id();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut seen: Vec<u32> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                // Probe also runs the CLI for itself (queries, cleanup): only `docker run` is a rep.
                let runs = children_named(probe_pid, "docker").into_iter().filter(|pid| {
                    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    argv.split(|&b| b == 0).any(|a| a == b"run")
                });
                for pid in runs {
                    if !seen.contains(&pid) {
                        seen.push(pid);
                    }
                }
                if seen.len() == NTH_CLI {
                    // Let the CLI reach the daemon before the delay starts.
                    std::thread::sleep(Duration::from_millis(40));
                    return Some(inject());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            None
        })
    };
    let out = probe.wait_with_output().expect("probe startup output");
    done.store(true, Ordering::Relaxed);
    let at = watcher.join().unwrap().expect("never saw enough docker CLIs to inject into");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "probe startup failed: {stderr}");
    let dir = stderr.lines().find_map(|l| l.strip_prefix("results: ")).expect("results folder named on stderr");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/startup.json")).expect("startup.json")).expect("startup.json parses");
    let reps = json["breakdown"][0]["rep_waits"].as_array().expect("rep_waits in the breakdown");
    assert_eq!(reps.len(), REPS, "every rep traced");
    let samples = json["report"]["results"][0]["samples"].as_array().expect("samples");
    let hit = 1 + samples
        .iter()
        .position(|s| {
            let (start, wall) = (s["start_mono_ns"].as_u64().unwrap(), s["wall_ns"].as_u64().unwrap());
            start <= at && at < start + wall
        })
        .expect("the delay fell inside a measured rep");
    let lost = &reps[hit - 1]["lost"];
    assert_eq!(lost, 0, "the kernel dropped {lost} trace records in rep {hit}: its critical path is incomplete (the rings are drained only between reps)");
    let waits = reps
        .iter()
        .map(|r| r["phases"].as_array().unwrap().iter().flat_map(|p| p["waits"].as_array().unwrap().clone()).collect())
        .collect();
    Run { out: String::from_utf8_lossy(&out.stdout).into_owned(), waits, hit }
}

fn outlier_line(out: &str, rep: usize) -> Option<&str> {
    out.lines().map(str::trim).find(|l| l.starts_with(&format!("docker rep {rep} (")))
}

fn pid_of(name: &str) -> u32 {
    let out = Command::new("pidof").args(["-s", name]).output().expect("pidof");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("no {name} running"))
}

fn kill(sig: &str, pid: u32) -> u32 {
    let mut c = Command::new("kill").args([sig, &pid.to_string()]).spawn().expect("spawn kill");
    let id = c.id();
    c.wait().expect("kill");
    id
}

#[test]
fn a_stopped_daemon_is_named_with_its_sender() {
    if !common::require_engine("docker") {
        return;
    }
    let containerd = pid_of("containerd");
    let sender = Arc::new(std::sync::Mutex::new(0u32));
    let s = sender.clone();
    let Run { out, waits, hit: hit_rep } = startup_with(move || {
        // Continued on drop, so containerd never stays stopped, also when this panics.
        struct Cont(u32);
        impl Drop for Cont {
            fn drop(&mut self) {
                kill("-CONT", self.0);
            }
        }
        let _cont = Cont(containerd);
        let at = monotonic_ns();
        *s.lock().unwrap() = kill("-STOP", containerd);
        std::thread::sleep(Duration::from_millis(300));
        at
    });
    println!("{out}");
    let sender = *sender.lock().unwrap();
    let stopped = |w: &&Value| w["kind"] == "stopped";
    let hit: Vec<&Value> = waits[hit_rep - 1].iter().filter(stopped).collect();
    let stop = hit.first().unwrap_or_else(|| panic!("rep {hit_rep}'s critical path has no stop: {:?}", waits[hit_rep - 1]));
    assert_eq!(stop["task"]["pid"].as_u64(), Some(containerd as u64), "{stop}");
    assert_eq!((stop["by"]["pid"].as_u64(), stop["by"]["comm"].as_str()), (Some(sender as u64), Some("kill")), "{stop}");
    assert_eq!(stop["signal"], 19, "{stop}");
    assert!(stop["ns"].as_u64().unwrap() >= 150_000_000, "most of the 300 ms stop is on the path: {stop}; all waits of rep {hit_rep}: {:#?}", waits[hit_rep - 1]);
    for (i, w) in waits.iter().enumerate().filter(|(i, _)| i + 1 != hit_rep) {
        assert!(!w.iter().any(|w| stopped(&w)), "rep {} had no injection: {w:?}", i + 1);
    }
    // The rep is an outlier only if the stop stands out of this machine's noise; when it is,
    // its line says the same.
    if let Some(line) = outlier_line(&out, hit_rep) {
        assert!(line.contains(&format!("containerd (pid {containerd})")), "{line}");
        assert!(line.contains(&format!("stopped by SIGSTOP from pid {sender} (kill)")), "{line}");
    }
    for rep in (1..=REPS).filter(|&r| r != hit_rep) {
        if let Some(l) = outlier_line(&out, rep) {
            assert!(!l.contains("stopped by"), "rep {rep} had no injection: {l}");
        }
    }
}

#[test]
fn cpu_hogs_make_the_run_runnable_and_are_named() {
    if !common::require_engine("docker") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hogs = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let h = hogs.clone();
    let Run { out, waits, hit: hit_rep } = startup_with(move || {
        // One busy loop per CPU at nice -20 for 0.5 s; `timeout` ends them even if the test dies.
        let started = Instant::now();
        let at = monotonic_ns();
        let mut kids: Vec<std::process::Child> = (0..cpus)
            .map(|_| {
                Command::new("nice")
                    .args(["-n", "-20", "timeout", "0.5", "sh", "-c", "while :; do :; done"])
                    .spawn()
                    .expect("spawn busy loop")
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        for k in &kids {
            h.lock().unwrap().extend(children_named(k.id(), "timeout").into_iter().chain(children_named(k.id(), "sh")).chain([k.id()]));
        }
        for k in &mut kids {
            let _ = k.wait();
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        at
    });
    println!("{out}");
    let hogs = hogs.lock().unwrap().clone();
    // Time the run's runnable waits spent behind the hogs.
    let behind_hogs = |w: &Vec<Value>| -> u64 {
        w.iter()
            .filter(|w| w["kind"] == "runnable")
            .flat_map(|w| w["holders"].as_array().unwrap().iter())
            .filter(|h| hogs.contains(&(h[0]["pid"].as_u64().unwrap() as u32)))
            .map(|h| h[1].as_u64().unwrap())
            .sum()
    };
    let hit = behind_hogs(&waits[hit_rep - 1]);
    assert!(hit >= 50_000_000, "rep {hit_rep} was runnable only {} ms behind the hogs {hogs:?}: {:?}", hit / 1_000_000, waits[hit_rep - 1]);
    for (i, w) in waits.iter().enumerate().filter(|(i, _)| i + 1 != hit_rep) {
        assert_eq!(behind_hogs(w), 0, "rep {} had no injection", i + 1);
    }
    if let Some(line) = outlier_line(&out, hit_rep) {
        assert!(line.contains("runnable") && line.contains("(sh, not part of the run"), "the hog is named: {line}");
    }
    for rep in (1..=REPS).filter(|&r| r != hit_rep) {
        if let Some(l) = outlier_line(&out, rep) {
            assert!(!l.contains("(sh, not part of the run"), "rep {rep} had no injection: {l}");
        }
    }
}

#[test]
fn a_normal_docker_run_is_explained() {
    if !common::require_engine("docker") {
        return;
    }
    let out = Command::new(common::probe_bin())
        .args(["trace", "--json", "--critical-path", "--", "docker", "run", "--rm", "--network", "none", "probe-test:latest", "true"])
        .output()
        .expect("spawn probe trace");
    assert!(out.status.success(), "probe trace failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["lost"], 0, "trace records lost: the path cannot be complete");
    let explained = v["explained"].as_f64().expect("explained share");
    assert!(explained >= 0.95, "only {:.1}% of the rep explained", explained * 100.0);
    let steps = v["critical_path"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["task"]["comm"] == "dockerd"), "the path goes through the daemon");
}
