//! Native-in-native: `probe run` inside a native container, inside another, to depth N.
//! Depth d runs `echo ok` through d nested `probe run`s; the cost of a level is the median
//! of depth d minus the median of depth d-1. When a depth fails, the worker is run one level
//! up (depth d-1) to probe what that container lets a nested runtime do.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::cause::{self, Cause};
use super::inner::{native_level_args, Inner, StepName, WorkerReport};
use crate::runtimes::cli_engine::{last_line, output_with_timeout};
use crate::ground::stats;

/// Where the test image keeps the probe binary: the runtime inside every level.
const PROBE_IN_TEST_IMAGE: &str = "/usr/local/bin/probe";

#[derive(Serialize, Deserialize, Debug)]
pub struct NativeLevel {
    pub depth: u32,
    pub success: bool,
    pub samples_ms: Vec<f64>,
    pub median_ms: Option<f64>,
    /// This depth's median minus the previous depth's: what one more level costs.
    pub level_cost_ms: Option<f64>,
    pub cause: Option<Cause>,
}

/// argv for `echo ok` at `depth` (0 = on the host, no container). `flags` go to every level,
/// since each container must grant the next one what it needs.
fn argv(exe: &Path, depth: u32, flags: &[String], tail: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for level in 0..depth {
        if level == 0 {
            v.extend([exe.display().to_string(), "run".into()]);
            v.extend(flags.iter().cloned());
        } else {
            v.extend([PROBE_IN_TEST_IMAGE.to_string(), "run".into()]);
            v.extend(native_level_args(flags));
        }
        v.push("--".into());
    }
    v.extend(tail.iter().map(|s| s.to_string()));
    v
}

fn command(v: &[String]) -> Command {
    let mut c = Command::new(&v[0]);
    c.args(&v[1..]);
    c
}

/// One rep: wall time in ms, or the last stderr line. Waited for directly: the timeout
/// helper polls every 10 ms, coarser than a native start.
fn rep(v: &[String]) -> Result<f64, String> {
    let t = Instant::now();
    let out = command(v).stdin(std::process::Stdio::null()).output().map_err(|e| e.to_string())?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
        Ok(ms)
    } else {
        Err(last_line(&String::from_utf8_lossy(&out.stderr)))
    }
}

/// The worker one level above a failing depth, run to explain the failure.
fn cause_at(exe: &Path, depth: u32, flags: &[String], evidence: &str) -> Cause {
    let mut tail = vec![PROBE_IN_TEST_IMAGE, "nested", "inside", "--inner", "native"];
    let flag_args: Vec<String> = flags.iter().map(|f| format!("--native-flag={f}")).collect();
    tail.extend(flag_args.iter().map(String::as_str));
    let v = argv(exe, depth - 1, flags, &tail);
    let report = output_with_timeout(&mut command(&v), Duration::from_secs(60))
        .ok()
        .and_then(|o| serde_json::from_slice::<WorkerReport>(&o.stdout).ok());
    match report {
        Some(r) => cause::classify(StepName::Run, Inner::Native, &r.probes, evidence),
        None => cause::classify(StepName::Run, Inner::Native, &Default::default(), evidence),
    }
}

pub fn run(exe: &Path, max_depth: u32, reps: u32, flags: &[String], interrupted: &dyn Fn() -> bool, progress: &mut dyn FnMut(&str)) -> Vec<NativeLevel> {
    let mut levels: Vec<NativeLevel> = Vec::new();
    for depth in 0..=max_depth {
        if interrupted() {
            break;
        }
        progress(&format!("native depth {depth}"));
        let v = argv(exe, depth, flags, &["echo", "ok"]);
        let mut samples = Vec::new();
        let mut error = None;
        for _ in 0..reps {
            match rep(&v) {
                Ok(ms) => samples.push(ms),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let median = error.is_none().then(|| stats::median(&samples));
        let previous = levels.last().and_then(|l| l.median_ms);
        let cause = error.map(|e| if depth == 0 { cause::classify(StepName::Run, Inner::Native, &Default::default(), &e) } else { cause_at(exe, depth, flags, &e) });
        let failed = cause.is_some();
        levels.push(NativeLevel {
            depth,
            success: !failed,
            samples_ms: samples,
            median_ms: median,
            level_cost_ms: median.zip(previous).map(|(m, p)| m - p),
            cause,
        });
        if failed {
            break;
        }
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_nests_probe_run() {
        let exe = Path::new("/x/probe");
        assert_eq!(argv(exe, 0, &[], &["echo", "ok"]), ["echo", "ok"]);
        assert_eq!(argv(exe, 1, &[], &["echo", "ok"]), ["/x/probe", "run", "--", "echo", "ok"]);
        let two = argv(exe, 2, &["--privileged".into()], &["echo", "ok"]);
        assert_eq!(two[..4], ["/x/probe", "run", "--privileged", "--"].map(String::from));
        assert_eq!(two[4..], ["/usr/local/bin/probe", "run", "--rootfs", "/", "--storage", "bind", "--privileged", "--", "echo", "ok"].map(String::from));
    }
}
