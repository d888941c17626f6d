//! Experiment 3: the chapter's busy loop run in a new container each time (`run --rm`),
//! and on the host. Beside the wall time the chapter measured, the CPU time of the
//! container's own processes, so what is computing and what is starting and stopping a
//! container (wall − cpu) are told apart. Experiment 7 (cpu_exec) shares the types below.

pub mod cgroup;
pub mod exec;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use self::cgroup::{CpuParent, Reading};
use crate::experiment::common::open::{open_runtimes, Skipped};
use crate::runtimes::cli_engine::CliEngine;
use crate::runtimes::spawn::{RunOpts, Spawner};
use crate::runtimes::EngineError;
use crate::ground::RuntimeKind;
use crate::experiment::common::host::Header;
use crate::measure::runner::{self, Runs, Stopped};
use crate::measure::timer::{self, HwCounts, Watch};
use crate::measure::Sample;
use crate::ground::stats::{self, Ratio, Summary};

pub type Probe = crate::experiment::common::reference::ProbeFile<Defaults, Reference>;

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Defaults {
    pub count: u64,
    pub reps: u32,
    pub warmup: u32,
    /// Experiment 7 only: wait after starting the containers.
    #[serde(default)]
    pub settle_ms: u64,
    pub runtimes: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Reference {
    pub machine: String,
    pub count: u64,
    pub reps_s: BTreeMap<String, Vec<f64>>,
    pub mean_s: BTreeMap<String, f64>,
    pub overhead_pct: BTreeMap<String, f64>,
}

pub fn probe() -> Probe {
    serde_json::from_str(include_str!("../../../probes/cpu.json")).expect("probes/cpu.json is checked by a unit test")
}

/// One run of the loop.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct Rep {
    pub wall_ms: f64,
    /// CPU time of the container's processes; None where nothing can see it (`cpu_na`).
    pub cpu_ms: Option<f64>,
    pub cycles: Option<u64>,
    pub instructions: Option<u64>,
}

impl Rep {
    pub fn new(t: &Sample, hw: Option<HwCounts>, cpu_ns: Option<u64>) -> Rep {
        Rep {
            wall_ms: t.wall_ms(),
            cpu_ms: cpu_ns.map(|n| n as f64 / 1e6),
            cycles: hw.map(|h| h.cycles),
            instructions: hw.map(|h| h.instructions),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RuntimeCpu {
    pub runtime: RuntimeKind,
    /// Which counter gave cpu_ms.
    pub cpu_source: Option<String>,
    /// Why there is no cpu_ms.
    pub cpu_na: Option<String>,
    pub warmup: Vec<Rep>,
    pub reps: Vec<Rep>,
}

impl RuntimeCpu {
    pub fn new(cpu: Result<String, String>, runs: Runs<Rep>) -> Self {
        let (cpu_source, cpu_na) = match cpu {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        RuntimeCpu { runtime: runs.runtime, cpu_source, cpu_na, warmup: runs.warmup, reps: runs.reps }
    }

    pub fn wall(&self) -> Summary {
        stats::summarize(&self.reps.iter().map(|r| r.wall_ms).collect::<Vec<_>>()).expect("at least one rep")
    }

    pub fn cpu(&self) -> Option<Summary> {
        let v: Option<Vec<f64>> = self.reps.iter().map(|r| r.cpu_ms).collect();
        stats::summarize(&v?)
    }

    /// wall − cpu per rep: starting, stopping and waiting, everything but the loop.
    pub fn outside(&self) -> Option<Summary> {
        let v: Option<Vec<f64>> = self.reps.iter().map(|r| Some(r.wall_ms - r.cpu_ms?)).collect();
        stats::summarize(&v?)
    }
}

/// A runtime's figure set against bare's, with the noise the reps themselves show.
#[derive(Serialize, Clone, Copy, Debug)]
pub struct VsBare {
    pub ratio: Ratio,
    pub delta_ms: f64,
    pub delta_pct: f64,
    /// Half-width of the 95 % interval of the difference of means (Welch: the standard error
    /// of the difference, not one rep's σ); None when a side has one rep and no spread.
    pub noise_ms: Option<f64>,
    /// The difference is not resolved (or, with one rep, cannot be).
    pub within_noise: bool,
    /// Reps per side that would resolve a difference this size, when it is not resolved.
    pub reps_to_resolve: Option<u64>,
}

impl VsBare {
    pub fn verdict(&self) -> String {
        match (self.noise_ms, self.within_noise, self.reps_to_resolve) {
            (None, ..) => "noise unknown (1 rep)".into(),
            (Some(_), false, _) => "above noise".into(),
            (Some(_), true, Some(n)) => format!("within noise (~{n} reps each would resolve it)"),
            (Some(_), true, None) => "within noise (equal means)".into(),
        }
    }
}

pub fn vs_bare(rt: &Summary, bare: &Summary) -> VsBare {
    let delta_ms = rt.mean - bare.mean;
    let w = stats::welch(rt, bare);
    let within_noise = !w.is_some_and(|w| w.resolved);
    VsBare {
        ratio: stats::ratio(rt, bare),
        delta_ms,
        delta_pct: 100.0 * delta_ms / bare.mean,
        noise_ms: w.map(|w| w.half_width),
        within_noise,
        reps_to_resolve: w.filter(|_| within_noise).and_then(|_| stats::reps_to_resolve(rt, bare)),
    }
}

/// The busybox shell of the test image, run on the host: the same interpreter binary every
/// container runs, so only the container differs.
pub fn bare_shell() -> anyhow::Result<PathBuf> {
    let sh = crate::ground::rootfs_dir().join("bin/sh");
    anyhow::ensure!(sh.exists(), "{} is missing: build the test image with `sudo probe image build`", sh.display());
    Ok(sh)
}

pub fn bare_command(sh: &PathBuf, argv: &[String]) -> Command {
    let mut cmd = Command::new(sh);
    cmd.args(&argv[1..]);
    cmd
}

pub fn kill_pid(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

pub const BARE_CPU: &str = "wait4 rusage of the shell (user + system)";

const ROOTLESS_CPU_NA: &str = "rootless podman's containers have no cgroup probe can read here (none of their own on a \
                               cgroup v1 host, and a delegated one only under systemd), and they are not probe's \
                               children, so neither a cgroup counter nor wait4 sees their CPU time";

/// What `probe cpu` and `probe cpu --exec` are told, alike but for `settle`.
pub struct Config {
    pub runtimes: Vec<RuntimeKind>,
    pub explicit: bool,
    pub count: u64,
    pub reps: u32,
    pub warmup: u32,
    /// Experiment 7 only: wait after starting the containers.
    pub settle: Duration,
    pub quiet: bool,
}

/// What `probe cpu` and `probe cpu --exec` (experiment "cpu-exec") report.
#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    #[serde(flatten)]
    pub header: Header,
    pub count: u64,
    pub argv: Vec<String>,
    pub reps: u32,
    pub warmup: u32,
    /// Why cycles/instructions are missing, when they are.
    pub pmu_na: Option<String>,
    pub results: Vec<RuntimeCpu>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub reference: Reference,
    /// Set when a rep failed and the run stopped: where, and why. `results` then holds only
    /// the reps finished before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Stopped>,
}

struct Runner {
    spawner: Spawner,
    /// Bare runs the image's own shell (`bare_shell`).
    sh: Option<PathBuf>,
    /// Where an engine's CPU time is read; None for bare and native (wait4 sees theirs).
    counter: Option<Counter>,
}

/// Where an engine container's CPU time is read, `run --rm` having removed its own cgroup.
enum Counter {
    /// cgroupfs driver: containers go under probe's parent cgroup (--cgroup-parent).
    Parent,
    /// systemd driver: the slice systemd puts the container's scope in; its counter keeps a
    /// removed scope's time, and the children still there afterwards (the engine's own
    /// services, other units) are subtracted, leaving the scopes that came and went.
    Slice(CpuParent),
    /// Why none can be read.
    None(String),
}

/// The engine's cgroup manager: `--cgroup-parent` is a path only with cgroupfs; systemd
/// wants a slice unit, whose cgroup systemd may remove between reps.
fn cgroup_driver(engine: &CliEngine) -> String {
    let format = if engine.kind() == RuntimeKind::Docker { "{{.CgroupDriver}}" } else { "{{.Host.CgroupManager}}" };
    engine.query(&["info", "--format", format]).unwrap_or_default()
}

fn open(kind: RuntimeKind) -> Result<Runner, EngineError> {
    let unusable = |what: String, fix: &str| EngineError::Unusable { runtime: kind, what, fix: fix.into() };
    let spawner = Spawner::open(kind)?;
    let sh = match spawner {
        Spawner::Bare => Some(bare_shell().map_err(|e| unusable(e.to_string(), "sudo probe image build"))?),
        _ => None,
    };
    let counter = match &spawner {
        Spawner::Engine(engine) => Some(engine_counter(kind, engine)),
        _ => None,
    };
    Ok(Runner { spawner, sh, counter })
}

fn engine_counter(kind: RuntimeKind, engine: &CliEngine) -> Counter {
    match (kind, cgroup_driver(&engine).as_str()) {
        (RuntimeKind::PodmanRootless, _) => Counter::None(ROOTLESS_CPU_NA.into()),
        (_, "cgroupfs") => Counter::Parent,
        (_, "systemd") => {
            // Where each engine's systemd driver puts containers without
            // --cgroup-parent (docker 20.10-26, podman 4-5 as root).
            let slice = if kind == RuntimeKind::Docker { "system.slice" } else { "machine.slice" };
            // systemd creates machine.slice with the first container of the boot
            // (seen with podman 5.4 on Debian 13); its counter must exist before the
            // first rep, so start it as podman would.
            let existing = |l: &crate::sys::cgroup::CgroupLayout| CpuParent::existing(l, slice);
            let parent = crate::sys::cgroup::detect().map_err(anyhow::Error::from).and_then(|l| {
                existing(&l).or_else(|_| {
                    let _ = Command::new("systemctl").args(["start", slice]).status();
                    existing(&l)
                })
            });
            match parent {
                Ok(p) => Counter::Slice(p),
                Err(e) => Counter::None(format!("{kind} uses the systemd cgroup driver, and its containers' slice cannot be read: {e:#}")),
            }
        }
        (_, other) => Counter::None(format!("{kind} reports the cgroup driver {other:?}, which probe cannot account for")),
    }
}

/// One rep: the command for this runtime, how to stop it on Ctrl-C, and where its CPU
/// time is read.
fn rep(runner: &Runner, kind: RuntimeKind, parent: &CpuParent, argv: &[String], hw: bool) -> anyhow::Result<Rep> {
    let cg = format!("/{}", parent.name);
    let parent_flag = matches!(runner.counter, Some(Counter::Parent));
    let mut cmd = match &runner.sh {
        Some(sh) => bare_command(sh, argv),
        None => runner.spawner.command(argv, &RunOpts { cgroup_parent: parent_flag.then_some(cg.as_str()), ..RunOpts::default() }),
    };
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let name = args.iter().position(|a| a == "--name").map(|i| args[i + 1].clone());
    let counted = match &runner.counter {
        Some(Counter::Slice(slice)) => slice,
        _ => parent,
    };
    let before: Reading = counted.read()?;
    let mut stop = |pid: u32| match (&runner.spawner, &name) {
        (Spawner::Engine(engine), Some(n)) => {
            // Killing the CLI would leave the container running: remove it instead.
            let _ = engine.query(&["rm", "-f", n]);
        }
        // `probe run` kills its container and tears it down on SIGTERM.
        (Spawner::Native(_), _) => kill_pid(pid, Signal::SIGTERM),
        _ => kill_pid(pid, Signal::SIGKILL),
    };
    let (t, counts) = timer::time_watched(&mut cmd, Watch { count_hw: hw && !kind.is_engine(), stop: &mut stop })
        .with_context(|| format!("{kind}: running the loop"))?;
    anyhow::ensure!(!crate::sys::signals::interrupted(), "interrupted during a {kind} rep");
    anyhow::ensure!(t.exit_code == 0, "{kind}: the loop exited with code {} (run `{}` by hand to see why)", t.exit_code, argv.join(" "));
    let cpu_ns = match (&runner.spawner, &runner.counter) {
        (Spawner::Bare | Spawner::Native(_), _) => Some(t.cpu_ns()),
        (Spawner::Engine(_), Some(Counter::Parent | Counter::Slice(_))) => Some(counted.read()?.container_ns_since(&before)),
        (Spawner::Engine(_), _) => None,
    };
    Ok(Rep::new(&t, counts, cpu_ns))
}

fn cpu_source(kind: RuntimeKind, runner: &Runner) -> Result<String, String> {
    match (&runner.spawner, &runner.counter) {
        (Spawner::Bare, _) => Ok(BARE_CPU.into()),
        // The container is `probe run`'s child, so wait4 of `probe run` sees its CPU exactly,
        // plus `probe run`'s own few ms of setup. Its cpuacct cgroup would drop that setup
        // but is gone (with the container) before `probe run` exits.
        (Spawner::Native(_), _) => Ok("wait4 rusage of `probe run` and its container (includes probe's own few ms of setup)".into()),
        (Spawner::Engine(_), Some(Counter::Parent)) => {
            Ok("cgroup CPU counter of a parent cgroup made for the run (--cgroup-parent), monitors subtracted".into())
        }
        (Spawner::Engine(_), None) => Err(format!("{kind}: no CPU counter was opened")),
        (Spawner::Engine(_), Some(Counter::Slice(p))) => Ok(format!(
            "cgroup CPU counter of {} (systemd driver: the container's scope is removed with it), units still there subtracted",
            p.name
        )),
        (Spawner::Engine(_), Some(Counter::None(why))) => Err(why.clone()),
    }
}

pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let layout = crate::sys::cgroup::detect()?;
    let (mut runners, skipped) = open_runtimes(&cfg.runtimes, cfg.explicit, "runtime can run here", |kind| Ok((kind, open(kind)?)))?;
    let parent = CpuParent::create(&layout, &format!("{}{}-cpu", crate::ground::NAME_PREFIX, std::process::id()))?;
    let argv = workload::busy_loop(cfg.count);
    let pmu = timer::pmu();
    let (runs, stopped) = runner::interleaved(&mut runners, cfg.warmup, cfg.reps, cfg.quiet, &crate::sys::signals::interrupted, |(kind, _)| *kind, |(kind, runner), _| {
        Ok(rep(runner, *kind, &parent, &argv, pmu.is_ok()))
    })?;
    let source = |k: RuntimeKind| runners.iter().find(|(kind, _)| *kind == k).map(|(_, r)| cpu_source(k, r)).expect("a run of an opened runtime");
    let results: Vec<RuntimeCpu> = runs.into_iter().map(|runs| RuntimeCpu::new(source(runs.runtime), runs)).collect();
    let warnings = advice(&results, cfg.reps);
    Ok(report("cpu", &cfg, pmu, (results, stopped), skipped, warnings, probe().reference))
}

/// Either experiment's report once its reps are done, headed by the host its runtimes ran on.
pub fn report(
    experiment: &'static str,
    &Config { count, reps, warmup, .. }: &Config,
    pmu: Result<(), String>,
    (results, incomplete): (Vec<RuntimeCpu>, Option<Stopped>),
    skipped: Vec<Skipped>,
    warnings: Vec<String>,
    reference: Reference,
) -> Report {
    let kinds: Vec<RuntimeKind> = results.iter().map(|r| r.runtime).collect();
    let header = Header::collect(experiment, &kinds);
    Report { header, count, argv: workload::busy_loop(count), reps, warmup, pmu_na: pmu.err(), results, skipped, warnings, reference, incomplete }
}

/// Warnings shared with Experiment 7.
pub fn advice(results: &[RuntimeCpu], reps: u32) -> Vec<String> {
    let mut out = Vec::new();
    if reps < 3 {
        out.push(format!("only {reps} reps: σ, and so the noise band, is unreliable below 3; use --reps 5 or more"));
    }
    let busy = results.iter().find(|r| r.runtime == RuntimeKind::Bare).and_then(|b| Some((b.wall().median, b.cpu()?.median)));
    if let Some((wall, cpu)) = busy.filter(|(w, c)| *w > 1.2 * *c) {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        out.push(format!(
            "on the host the loop's wall time is {:.1}× its CPU time (load average {}): other processes took the CPUs, so wall times mostly measure waiting and their noise band is wide; compare the cpu columns, or rerun on a quiet machine",
            wall / cpu,
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        ));
    }
    for r in results {
        for &i in &r.wall().outliers {
            out.push(format!(
                "{} rep {} took {:.0} ms against a median of {:.0} ms: an outlier (background load?); rerun with more --reps on a quiet machine",
                r.runtime,
                i + 1,
                r.reps[i].wall_ms,
                r.wall().median
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_files_parse_and_match_the_chapter() {
        let p = probe();
        assert_eq!(p.defaults.count, 10_000_000);
        let bare = &p.reference.reps_s["bare"];
        assert!((bare.iter().sum::<f64>() / 3.0 - p.reference.mean_s["bare"]).abs() < 0.01);
        for rt in &p.defaults.runtimes {
            assert!(rt.parse::<RuntimeKind>().is_ok(), "{rt}");
        }
    }

    #[test]
    fn within_noise_uses_the_standard_error_of_the_difference() {
        let bare = stats::summarize(&[1000.0, 1020.0, 980.0]).unwrap();
        let close = stats::summarize(&[1030.0, 1010.0, 1050.0]).unwrap();
        let v = vs_bare(&close, &bare);
        // σ = 20 each, n = 3: SE = 16.3, dof 4, t = 2.776: ±45.3 ms.
        assert!((v.delta_ms - 30.0).abs() < 1e-9 && (v.noise_ms.unwrap() - 45.33).abs() < 0.01 && v.within_noise);
        assert_eq!(v.verdict(), "within noise (~5 reps each would resolve it)");
        let far = stats::summarize(&[1100.0, 1110.0, 1090.0]).unwrap();
        assert!(!vs_bare(&far, &bare).within_noise);
        assert!((vs_bare(&far, &bare).delta_pct - 10.0).abs() < 1e-9);
        // Ten reps of σ 21 and 30 ms apart: the old ±2σ band (42 ms) called this noise.
        let ten = |m: f64| stats::summarize(&(0..10).map(|i| m + if i % 2 == 0 { 20.0 } else { -20.0 }).collect::<Vec<_>>()).unwrap();
        let v = vs_bare(&ten(1030.0), &ten(1000.0));
        assert!(!v.within_noise && v.verdict() == "above noise", "{v:?}");
        let one = stats::summarize(&[1030.0]).unwrap();
        assert_eq!(vs_bare(&one, &bare).verdict(), "noise unknown (1 rep)");
    }

    #[test]
    fn outside_is_wall_minus_cpu() {
        let mut r = RuntimeCpu::new(Ok("x".into()), Runs { runtime: RuntimeKind::Docker, warmup: Vec::new(), reps: Vec::new() });
        r.reps = vec![
            Rep { wall_ms: 1300.0, cpu_ms: Some(1000.0), cycles: None, instructions: None },
            Rep { wall_ms: 1320.0, cpu_ms: Some(1010.0), cycles: None, instructions: None },
        ];
        assert!((r.outside().unwrap().mean - 305.0).abs() < 1e-9);
        r.reps[0].cpu_ms = None;
        assert!(r.cpu().is_none() && r.outside().is_none());
    }
}
