//! Experiment 8: exact memory per idle container, read from the container's own cgroup
//! (found from its main pid through /proc, not asked of the engine), and what the engine's
//! own processes cost (RSS and PSS), at 0, 1, 3, 5 ... containers. The slope of a line
//! through (count, bytes) is the cost of one more container, the intercept the fixed cost.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::experiment::memory::footprint::{self, Snapshot};
use crate::experiment::common::open::Skipped;
use crate::runtimes::detached::Fleet;
use crate::ground::RuntimeKind;
use crate::experiment::common::fleets::{FleetDefaults, FleetRun};
use crate::experiment::common::host::Header;
use crate::measure::runner::Progress;
use crate::sys::cgroup::CgroupLayout;
use crate::ground::stats::{self, LinearFit};

pub type Probe = crate::experiment::common::reference::ProbeFile<Defaults, Reference>;

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Defaults {
    #[serde(flatten)]
    pub fleet: FleetDefaults,
    pub warmup: u32,
    pub settle_timeout_ms: u64,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Reference {
    pub machine: String,
    pub method: String,
    /// runtime → container count → KB per container.
    pub kb_per_container: BTreeMap<String, BTreeMap<String, f64>>,
    /// process name → container count → RSS in MB.
    pub engine_rss_mb: BTreeMap<String, BTreeMap<String, f64>>,
}

pub fn probe() -> Probe {
    serde_json::from_str(include_str!("../../../probes/memory_cgroup.json")).expect("probes/memory_cgroup.json is checked by a unit test")
}

pub struct Config {
    pub fleet: crate::experiment::common::fleets::FleetPlan,
    pub warmup: u32,
    pub settle_timeout: Duration,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Point {
    pub count: u32,
    /// False when the containers' memory was still moving at the settle timeout.
    pub settled: bool,
    pub snapshot: Snapshot,
}

/// A fitted line through (count, KB) with the figure it stands for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct Fits {
    /// Σ container cgroups (exact); None without per-container cgroups.
    pub cgroup: Option<LinearFit>,
    /// Σ of the kernel's usage counters, what `docker stats` starts from.
    pub usage: Option<LinearFit>,
    /// Σ PSS of the containers' own processes.
    pub container_pss: Option<LinearFit>,
    /// Σ PSS of the engine processes that exist per container (shim, conmon, `probe run`,
    /// fuse-overlayfs): slope = the engine's cost per container.
    pub engine_pss: Option<LinearFit>,
    pub engine_rss: Option<LinearFit>,
    /// Σ PSS of the daemons: intercept = the fixed cost; its slope is mostly noise (a
    /// daemon's heap moves with everyone's use of the engine), see its r².
    pub daemon_pss: Option<LinearFit>,
    /// Containers (cgroup, or PSS without cgroups) + per-container engine processes.
    pub total: Option<LinearFit>,
}

impl Fits {
    /// KB per container: from the containers' cgroups, or their processes' PSS without them.
    pub fn per_container(&self) -> Option<LinearFit> {
        self.cgroup.or(self.container_pss)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RuntimeMemory {
    pub runtime: RuntimeKind,
    /// Why there is no per-container cgroup figure, when there is none.
    pub cgroup_na: Option<String>,
    pub points: Vec<Point>,
    pub fits: Fits,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    #[serde(flatten)]
    pub header: Header,
    #[serde(flatten)]
    pub fleet: FleetRun,
    pub results: Vec<RuntimeMemory>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub reference: Reference,
}

fn fit(points: &[Point], y: impl Fn(&Snapshot) -> Option<f64>) -> Option<LinearFit> {
    let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().map(|p| Some((p.count as f64, y(&p.snapshot)?))).collect::<Option<Vec<_>>>()?.into_iter().unzip();
    stats::linear_fit(&xs, &ys)
}

pub fn fits(points: &[Point]) -> Fits {
    let kb = |b: u64| b as f64 / 1024.0;
    Fits {
        cgroup: fit(points, |s| s.cgroup_bytes().map(kb)),
        usage: fit(points, |s| s.usage_bytes().map(kb)),
        container_pss: fit(points, |s| Some(s.container_pss_kb() as f64)),
        engine_pss: fit(points, |s| Some(s.per_container_engine().pss_kb as f64)),
        engine_rss: fit(points, |s| Some(s.per_container_engine().rss_kb as f64)),
        daemon_pss: fit(points, |s| Some(s.daemons().pss_kb as f64)),
        total: fit(points, |s| Some(kb(s.per_container_bytes()))),
    }
}

/// One runtime: warm-up containers started and removed (the first container of a run pays
/// for page cache and slab later ones share), then containers added up to each count, read
/// once settled, then all removed.
fn measure(fleet: &mut Fleet, layout: &CgroupLayout, cfg: &Config, progress: &Progress) -> anyhow::Result<RuntimeMemory> {
    let kind = fleet.kind();
    for _ in 0..cfg.warmup {
        anyhow::ensure!(!crate::sys::signals::interrupted(), "interrupted during {kind} warm-up");
        fleet.start(&cfg.fleet.command)?;
    }
    let mut cgroup_na = None;
    if cfg.warmup > 0 {
        fleet.resolve_pids()?;
        cgroup_na = footprint::cgroup_na(layout, fleet.containers()[0].main_pid)?;
        footprint::settle(kind, fleet, layout, cgroup_na.is_none(), cfg.settle_timeout)?;
        fleet.remove_all()?;
    }
    let mut points = Vec::new();
    for &count in &cfg.fleet.counts {
        while (fleet.containers().len() as u32) < count {
            anyhow::ensure!(!crate::sys::signals::interrupted(), "interrupted while starting {kind} containers");
            fleet.start(&cfg.fleet.command)?;
        }
        fleet.resolve_pids()?;
        if cfg.warmup == 0 && count > 0 && cgroup_na.is_none() {
            cgroup_na = footprint::cgroup_na(layout, fleet.containers()[0].main_pid)?;
        }
        let (snapshot, settled) = footprint::settle(kind, fleet, layout, cgroup_na.is_none(), cfg.settle_timeout)?;
        progress.step(format!("{kind} {count} containers"));
        points.push(Point { count, settled, snapshot });
    }
    fleet.remove_all()?;
    Ok(RuntimeMemory { runtime: kind, cgroup_na, fits: fits(&points), points })
}

fn advice(results: &[RuntimeMemory]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        for p in r.points.iter().filter(|p| !p.settled) {
            out.push(format!(
                "{}: memory of the {} containers was still changing at the settle timeout; the figure is the last reading. \
                 A busy machine causes this: rerun on a quiet one or raise --settle-timeout",
                r.runtime, p.count
            ));
        }
        if let Some(f) = r.fits.per_container() {
            if f.r2 < 0.9 && f.slope.abs() > 1.0 {
                out.push(format!(
                    "{}: per-container memory is not linear in the count (r² = {:.2}); some containers cost more than others \
                     — add counts (e.g. --counts 0,1,2,3,5,8) to see which",
                    r.runtime, f.r2
                ));
            }
        }
    }
    out
}

pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let layout = crate::sys::cgroup::detect()?;
    let (mut fleets, skipped) = crate::experiment::common::fleets::open(&cfg.fleet.runtimes, cfg.fleet.explicit, "memcg")?;
    let progress = Progress::new((fleets.len() * cfg.fleet.counts.len()) as u64, cfg.fleet.quiet);
    let mut results = Vec::new();
    for fleet in &mut fleets {
        results.push(measure(fleet, &layout, &cfg, &progress)?);
    }
    progress.finish();
    let kinds: Vec<RuntimeKind> = results.iter().map(|r| r.runtime).collect();
    Ok(Report {
        header: Header::collect("memory-cgroup", &kinds),
        fleet: cfg.fleet.run(),
        warnings: advice(&results),
        results,
        skipped,
        reference: probe().reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::cgroup::process::MemoryUsage;
    use crate::sys::procfs::Rollup;

    #[test]
    fn probe_file_parses() {
        let p = probe();
        assert_eq!(p.defaults.fleet.counts, vec![0, 1, 3, 5]);
        assert_eq!(p.reference.kb_per_container["docker"]["1"], 432.0);
        assert_eq!(crate::experiment::common::fleets::parse_kinds(&p.defaults.fleet.runtimes).len(), p.defaults.fleet.runtimes.len());
    }

    fn point(count: u32, per_container: u64, engine_kb: u64) -> Point {
        let c = |i: u32| footprint::ContainerMemory {
            name: format!("c{i}"),
            main_pid: i,
            cgroup: None,
            memory: Some(MemoryUsage { usage_bytes: per_container + 4096, exact_bytes: per_container, anon_bytes: 0, file_bytes: 0, kernel_bytes: 0 }),
            processes: Rollup { rss_kb: 1000, pss_kb: 100 },
        };
        Point {
            count,
            settled: true,
            snapshot: Snapshot {
                containers: (0..count).map(c).collect(),
                engine: vec![
                    footprint::EngineProcess { pid: 1, name: "dockerd".into(), daemon: true, rss_kb: 100, pss_kb: 100 },
                    footprint::EngineProcess { pid: 2, name: "containerd-shim".into(), daemon: false, rss_kb: engine_kb * 2, pss_kb: engine_kb },
                ],
                used_kb: 0,
            },
        }
    }

    #[test]
    fn slopes_are_per_container_and_intercepts_fixed() {
        // 300 KiB per container in its cgroup; shims: 100 MiB fixed + 2 MiB per container;
        // a daemon of 100 KiB that stays put.
        let pts: Vec<Point> = [0, 1, 3, 5].iter().map(|&n| point(n, 300 * 1024, 102_400 + 2048 * n as u64)).collect();
        let f = fits(&pts);
        let cg = f.cgroup.unwrap();
        assert!((cg.slope - 300.0).abs() < 1e-9 && cg.intercept.abs() < 1e-9 && (cg.r2 - 1.0).abs() < 1e-12);
        assert!((f.usage.unwrap().slope - 304.0).abs() < 1e-9);
        let e = f.engine_pss.unwrap();
        assert!((e.slope - 2048.0).abs() < 1e-9 && (e.intercept - 102_400.0).abs() < 1e-9);
        assert!((f.total.unwrap().slope - 2348.0).abs() < 1e-9);
        let d = f.daemon_pss.unwrap();
        assert!(d.slope.abs() < 1e-9 && (d.intercept - 100.0).abs() < 1e-9);
        assert!((f.container_pss.unwrap().slope - 100.0).abs() < 1e-9);
    }
}
