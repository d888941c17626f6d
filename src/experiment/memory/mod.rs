//! Experiment 2 as the chapter ran it: `free -m` "used" before and after starting N idle
//! containers — plus the instrument's own noise, measured: the same figure read repeatedly
//! with nothing started gives a band, and every delta is set against it, so a reader sees
//! when the signal is below the noise (the chapter's negative overheads).

pub mod cgroup;
pub mod footprint;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::experiment::common::open::Skipped;
use crate::runtimes::detached::Fleet;
use crate::ground::RuntimeKind;
use crate::experiment::common::fleets::{FleetDefaults, FleetRun};
use crate::experiment::common::host::Header;
use crate::measure::runner::Progress;
use crate::ground::stats::{self, Summary};
use crate::sys::procfs;

pub type Probe = crate::experiment::common::reference::ProbeFile<Defaults, Reference>;

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Defaults {
    #[serde(flatten)]
    pub fleet: FleetDefaults,
    pub noise_reads: u32,
    pub noise_interval_ms: u64,
    pub settle_ms: u64,
    pub pause_ms: u64,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Reference {
    pub machine: String,
    pub baseline_used_mb: f64,
    /// runtime → container count → MB over the baseline.
    pub overhead_mb: BTreeMap<String, BTreeMap<String, f64>>,
    pub noise_mb: String,
}

pub fn probe() -> Probe {
    serde_json::from_str(include_str!("../../../probes/memory.json")).expect("probes/memory.json is checked by a unit test")
}

pub struct Config {
    pub fleet: crate::experiment::common::fleets::FleetPlan,
    pub noise_reads: u32,
    pub noise_interval: Duration,
    /// Wait after the last start before reading (the chapter's `sleep 3`).
    pub settle: Duration,
    /// Wait after removing a batch (the chapter's `sleep 2`).
    pub pause: Duration,
}

/// `free`'s "used" read repeatedly with nothing changing: its spread is the instrument's noise.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Noise {
    pub reads_kb: Vec<u64>,
    pub summary_mb: Summary,
}

impl Noise {
    /// max − min of the reads: a delta smaller than this could be noise alone.
    pub fn band_mb(&self) -> f64 {
        self.summary_mb.max - self.summary_mb.min
    }

    /// A delta is below noise when it lies within the band the idle reads spanned (and at
    /// least within 2σ, for a band too narrow to trust with few reads).
    pub fn hides(&self, delta_mb: f64) -> bool {
        delta_mb.abs() <= self.hiding_mb()
    }

    /// The largest |delta| noise alone could give: the band, or 2σ when that is wider.
    pub fn hiding_mb(&self) -> f64 {
        self.band_mb().max(2.0 * self.summary_mb.sd)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Batch {
    pub count: u32,
    /// `free -m` used (MiB, truncated, as free prints it) before starting the batch.
    pub baseline_mb: u64,
    pub used_mb: u64,
    /// The same in kB, to see what `free -m` truncates.
    pub baseline_kb: u64,
    pub used_kb: u64,
    pub delta_mb: i64,
    pub below_noise: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RuntimeBatches {
    pub runtime: RuntimeKind,
    pub batches: Vec<Batch>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    #[serde(flatten)]
    pub header: Header,
    #[serde(flatten)]
    pub fleet: FleetRun,
    pub noise: Noise,
    pub results: Vec<RuntimeBatches>,
    pub skipped: Vec<Skipped>,
    pub reference: Reference,
}

/// Appends `reads` idle reads of "used" to `reads_kb`, `interval` apart.
pub fn read_idle(reads_kb: &mut Vec<u64>, reads: u32, interval: Duration) -> anyhow::Result<()> {
    for i in 0..reads.max(2) {
        if i > 0 {
            std::thread::sleep(interval);
        }
        reads_kb.push(procfs::meminfo()?.used_kb());
    }
    Ok(())
}

impl Noise {
    pub fn from_reads(reads_kb: Vec<u64>) -> Noise {
        let mb: Vec<f64> = reads_kb.iter().map(|&k| k as f64 / 1024.0).collect();
        Noise { summary_mb: stats::summarize(&mb).expect("at least two finite reads"), reads_kb }
    }
}

fn batch(fleet: &mut Fleet, count: u32, cfg: &Config) -> anyhow::Result<Batch> {
    let before = procfs::meminfo()?;
    for _ in 0..count {
        anyhow::ensure!(!crate::sys::signals::interrupted(), "interrupted while starting {} containers", fleet.kind());
        fleet.start(&cfg.fleet.command)?;
    }
    std::thread::sleep(cfg.settle);
    let after = procfs::meminfo()?;
    fleet.remove_all()?;
    std::thread::sleep(cfg.pause);
    let delta_mb = after.used_mb() as i64 - before.used_mb() as i64;
    Ok(Batch {
        count,
        baseline_mb: before.used_mb(),
        used_mb: after.used_mb(),
        baseline_kb: before.used_kb(),
        used_kb: after.used_kb(),
        delta_mb,
        below_noise: false,
    })
}

pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let (mut fleets, skipped) = crate::experiment::common::fleets::open(&cfg.fleet.runtimes, cfg.fleet.explicit, "mem")?;
    let progress = Progress::new((2 + fleets.len() * cfg.fleet.counts.len()) as u64, cfg.fleet.quiet);
    // Idle reads before and after the batches: noise that sets in during the run (a build,
    // a backup) widens the band instead of passing for a container's cost.
    progress.step("noise: idle reads of free".into());
    let mut reads_kb = Vec::new();
    read_idle(&mut reads_kb, cfg.noise_reads, cfg.noise_interval)?;
    let mut results = Vec::new();
    for fleet in &mut fleets {
        let mut batches = Vec::new();
        for &count in &cfg.fleet.counts {
            progress.step(format!("{} {count} containers", fleet.kind()));
            batches.push(batch(fleet, count, &cfg)?);
        }
        results.push(RuntimeBatches { runtime: fleet.kind(), batches });
    }
    progress.step("noise: idle reads of free".into());
    read_idle(&mut reads_kb, cfg.noise_reads, cfg.noise_interval)?;
    progress.finish();
    let noise = Noise::from_reads(reads_kb);
    for b in results.iter_mut().flat_map(|r| r.batches.iter_mut()) {
        b.below_noise = noise.hides(b.delta_mb as f64);
    }
    let kinds: Vec<RuntimeKind> = results.iter().map(|r| r.runtime).collect();
    Ok(Report {
        header: Header::collect("memory", &kinds),
        fleet: cfg.fleet.run(),
        noise,
        results,
        skipped,
        reference: probe().reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_file_parses() {
        let p = probe();
        assert_eq!(p.defaults.fleet.counts, vec![1, 5, 10, 20]);
        assert_eq!(p.reference.overhead_mb["docker"]["1"], -41.0);
    }

    #[test]
    fn noise_band_flags_small_deltas() {
        let mb = [100.0, 103.0, 101.0, 99.0];
        let n = Noise { reads_kb: vec![], summary_mb: stats::summarize(&mb).unwrap() };
        assert_eq!(n.band_mb(), 4.0);
        assert!(n.hides(-4.0) && n.hides(3.0));
        assert!(!n.hides(5.0) && !n.hides(-41.0 * 10.0));
        // Identical reads: no band, any change stands out.
        let flat = Noise { reads_kb: vec![], summary_mb: stats::summarize(&[5.0, 5.0]).unwrap() };
        assert!(flat.hides(0.0) && !flat.hides(1.0));
    }

    #[test]
    fn noise_is_measured_here() {
        let mut reads = Vec::new();
        read_idle(&mut reads, 3, Duration::from_millis(1)).unwrap();
        read_idle(&mut reads, 1, Duration::from_millis(1)).unwrap();
        let n = Noise::from_reads(reads);
        assert_eq!(n.reads_kb.len(), 5, "at least two reads each time");
        assert!(n.summary_mb.min > 0.0);
    }
}
