//! Experiment 6: N idle containers started one after another, as the chapter did, timing
//! each start, then measuring what N containers cost exactly (their cgroups plus the PSS of
//! the engine processes that exist for them) beside `free -m`'s delta. Growth that is not linear —
//! later containers slower or dearer than early ones — is flagged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::experiment::memory::footprint;
use crate::experiment::common::open::Skipped;
use crate::runtimes::detached::Fleet;
use crate::ground::RuntimeKind;
use crate::experiment::common::fleets::{FleetDefaults, FleetRun};
use crate::experiment::common::host::Header;
use crate::measure::runner::Progress;
use crate::sys::cgroup::CgroupLayout;
use crate::ground::stats::{self, Summary};

pub type Probe = crate::experiment::common::reference::ProbeFile<Defaults, Reference>;

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Defaults {
    #[serde(flatten)]
    pub fleet: FleetDefaults,
    pub max_count_engine: u32,
    pub max_count_native: u32,
    pub nonlinear_ratio: f64,
    pub settle_timeout_ms: u64,
    pub pause_ms: u64,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Reference {
    pub machine: String,
    pub time_s: BTreeMap<String, BTreeMap<String, f64>>,
    pub memory_mb: BTreeMap<String, BTreeMap<String, f64>>,
}

pub fn probe() -> Probe {
    serde_json::from_str(include_str!("../../../probes/scale.json")).expect("probes/scale.json is checked by a unit test")
}

pub struct Config {
    pub fleet: crate::experiment::common::fleets::FleetPlan,
    pub nonlinear_ratio: f64,
    pub settle_timeout: Duration,
    pub pause: Duration,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Step {
    pub count: u32,
    /// Wall time of the whole start loop (the chapter's `time_seconds`).
    pub total_s: f64,
    /// Each start, ms, in order.
    pub start_ms: Vec<f64>,
    /// Σ of the containers' cgroups (exact), MB; None without per-container cgroups.
    pub cgroup_mb: Option<f64>,
    /// Σ PSS of the containers' own processes, MB.
    pub container_pss_mb: f64,
    /// PSS of the engine processes that exist for these containers (shims, conmons,
    /// `probe run`s, fuse-overlayfs), MB.
    pub engine_delta_mb: f64,
    /// Growth of the daemons' PSS over the empty baseline, MB: reported, not added (a
    /// daemon's heap moves with anyone's use of the engine).
    pub daemon_delta_mb: f64,
    /// Containers (cgroups, or PSS without them) + their engine processes, MB.
    pub memory_mb: f64,
    /// `free -m` used after − before, MB.
    pub free_delta_mb: f64,
    pub settled: bool,
    /// `rm -f` of all N (or stopping N `probe run`s), seconds.
    pub teardown_s: f64,
}

impl Step {
    pub fn per_container_ms(&self) -> f64 {
        1000.0 * self.total_s / self.count as f64
    }

    pub fn per_container_mb(&self) -> f64 {
        self.memory_mb / self.count as f64
    }

    pub fn start_summary(&self) -> Summary {
        stats::summarize(&self.start_ms).expect("count ≥ 1")
    }
}

/// Per-container figure at the largest count over the smallest; flagged above the limit.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct Growth {
    pub time_ratio: f64,
    pub memory_ratio: f64,
    pub time_nonlinear: bool,
    pub memory_nonlinear: bool,
}

pub fn growth(steps: &[Step], limit: f64) -> Option<Growth> {
    let lo = steps.iter().min_by_key(|s| s.count)?;
    let hi = steps.iter().max_by_key(|s| s.count)?;
    if lo.count == hi.count {
        return None;
    }
    let time_ratio = hi.per_container_ms() / lo.per_container_ms();
    let memory_ratio = hi.per_container_mb() / lo.per_container_mb();
    Some(Growth { time_ratio, memory_ratio, time_nonlinear: time_ratio > limit, memory_nonlinear: memory_ratio > limit })
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RuntimeScale {
    pub runtime: RuntimeKind,
    pub cgroup_na: Option<String>,
    pub steps: Vec<Step>,
    pub growth: Option<Growth>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    #[serde(flatten)]
    pub header: Header,
    #[serde(flatten)]
    pub fleet: FleetRun,
    pub nonlinear_ratio: f64,
    pub results: Vec<RuntimeScale>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub reference: Reference,
}

/// Refuses counts beyond what the probe file allows per runtime, before anything starts.
pub fn check_counts(kinds: &[RuntimeKind], counts: &[u32], d: &Defaults) -> anyhow::Result<()> {
    let max = counts.iter().copied().max().unwrap_or(0);
    anyhow::ensure!(counts.iter().all(|&c| c > 0), "--counts must all be at least 1");
    for &k in kinds {
        let limit = if k == RuntimeKind::Native { d.max_count_native } else { d.max_count_engine };
        anyhow::ensure!(
            max <= limit,
            "{k}: {max} containers is above the {limit} this experiment allows for it (probes/scale.json); \
             pass --runtimes native for up to {} native containers",
            d.max_count_native
        );
    }
    Ok(())
}

fn step(fleet: &mut Fleet, layout: &CgroupLayout, count: u32, cgroup_na: &mut Option<Option<String>>, cfg: &Config, progress: &Progress) -> anyhow::Result<Step> {
    let kind = fleet.kind();
    let base = footprint::snapshot(kind, fleet, layout, false)?;
    let started = Instant::now();
    for i in 0..count {
        anyhow::ensure!(!crate::sys::signals::interrupted(), "interrupted while starting {kind} container {}", i + 1);
        fleet.start(&cfg.fleet.command)?;
        progress.step(format!("{kind}: {}/{count} started", i + 1));
    }
    let total_s = started.elapsed().as_secs_f64();
    fleet.resolve_pids()?;
    if cgroup_na.is_none() {
        *cgroup_na = Some(footprint::cgroup_na(layout, fleet.containers()[0].main_pid)?);
    }
    let with_cgroups = cgroup_na.as_ref().is_some_and(|na| na.is_none());
    let (snap, settled) = footprint::settle(kind, fleet, layout, with_cgroups, cfg.settle_timeout)?;
    let mb = |kb: f64| kb / 1024.0;
    let cgroup_mb = snap.cgroup_bytes().map(|b| mb(b as f64 / 1024.0));
    let container_pss_mb = mb(snap.container_pss_kb() as f64);
    let engine_delta_mb = mb(snap.per_container_engine().pss_kb as f64);
    let daemon_delta_mb = mb(snap.daemons().pss_kb as f64 - base.daemons().pss_kb as f64);
    let start_ms = fleet.containers().iter().map(|c| c.start_ns as f64 / 1e6).collect();
    let torn = Instant::now();
    fleet.remove_all()?;
    let teardown_s = torn.elapsed().as_secs_f64();
    std::thread::sleep(cfg.pause);
    Ok(Step {
        count,
        total_s,
        start_ms,
        memory_mb: cgroup_mb.unwrap_or(container_pss_mb) + engine_delta_mb,
        cgroup_mb,
        container_pss_mb,
        engine_delta_mb,
        daemon_delta_mb,
        free_delta_mb: mb(snap.used_kb as f64 - base.used_kb as f64),
        settled,
        teardown_s,
    })
}

fn advice(results: &[RuntimeScale], limit: f64) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        if let Some(g) = r.growth {
            if g.time_nonlinear {
                out.push(format!(
                    "{}: a start takes {:.2}× longer at the largest count than at the smallest (limit {limit}×): not linear. \
                     Look at the start_ms list in the JSON to see whether it creeps up or jumps",
                    r.runtime, g.time_ratio
                ));
            }
            if g.memory_nonlinear {
                out.push(format!("{}: each container costs {:.2}× more memory at the largest count than at the smallest (limit {limit}×): not linear", r.runtime, g.memory_ratio));
            }
        }
        for s in r.steps.iter().filter(|s| !s.settled) {
            out.push(format!("{}: memory of {} containers was still changing at the settle timeout; the figure is the last reading", r.runtime, s.count));
        }
    }
    out
}

pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let layout = crate::sys::cgroup::detect()?;
    let (mut fleets, skipped) = crate::experiment::common::fleets::open(&cfg.fleet.runtimes, cfg.fleet.explicit, "scale")?;
    let progress = Progress::new(fleets.len() as u64 * cfg.fleet.counts.iter().map(|&c| c as u64).sum::<u64>(), cfg.fleet.quiet);
    let mut results = Vec::new();
    for fleet in &mut fleets {
        let mut cgroup_na = None;
        let mut steps = Vec::new();
        for &count in &cfg.fleet.counts {
            steps.push(step(fleet, &layout, count, &mut cgroup_na, &cfg, &progress)?);
        }
        results.push(RuntimeScale { runtime: fleet.kind(), cgroup_na: cgroup_na.flatten(), growth: growth(&steps, cfg.nonlinear_ratio), steps });
    }
    progress.finish();
    let kinds: Vec<RuntimeKind> = results.iter().map(|r| r.runtime).collect();
    Ok(Report {
        header: Header::collect("scale", &kinds),
        fleet: cfg.fleet.run(),
        nonlinear_ratio: cfg.nonlinear_ratio,
        warnings: advice(&results, cfg.nonlinear_ratio),
        results,
        skipped,
        reference: probe().reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(count: u32, total_s: f64, memory_mb: f64) -> Step {
        Step {
            count,
            total_s,
            start_ms: vec![1.0],
            cgroup_mb: None,
            container_pss_mb: 0.0,
            engine_delta_mb: 0.0,
            daemon_delta_mb: 0.0,
            memory_mb,
            free_delta_mb: 0.0,
            settled: true,
            teardown_s: 0.0,
        }
    }

    #[test]
    fn linear_growth_is_not_flagged() {
        let g = growth(&[step(10, 2.0, 5.0), step(20, 4.2, 10.0), step(50, 10.5, 25.0)], 1.5).unwrap();
        assert!((g.time_ratio - 1.05).abs() < 1e-9 && !g.time_nonlinear && !g.memory_nonlinear);
    }

    #[test]
    fn superlinear_growth_is_flagged() {
        // The chapter's docker at 20 containers: 388 ms each against 200 ms at 10.
        let g = growth(&[step(10, 2.0, 50.0), step(20, 7.76, 119.0)], 1.5).unwrap();
        assert!((g.time_ratio - 1.94).abs() < 1e-9 && g.time_nonlinear);
        assert!(!g.memory_nonlinear);
        assert!(growth(&[step(10, 1.0, 1.0)], 1.5).is_none());
    }

    #[test]
    fn counts_are_capped_per_runtime() {
        let d = probe().defaults;
        assert!(check_counts(&[RuntimeKind::Native], &[1000], &d).is_ok());
        assert!(check_counts(&[RuntimeKind::Docker], &[501], &d).is_err());
        assert!(check_counts(&[RuntimeKind::Docker], &[0, 10], &d).is_err());
        assert_eq!(probe().reference.time_s["podman"]["50"], 5.28);
    }
}
