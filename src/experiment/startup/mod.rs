//! Experiment 1: how long a container takes to start, run a command and go away.

pub mod breakdown;
pub mod command;
pub mod nscost;
pub mod observer;
pub mod outliers;

use serde::{Deserialize, Serialize};

use self::breakdown::Breakdown;
use self::nscost::NsCost;

use crate::experiment::common::open::{open_runtimes, Skipped};
use crate::experiment::common::reference::{self, Reference};
use crate::runtimes;
use crate::ground::RuntimeKind;
use crate::experiment::common::host::Header;
use crate::measure::runner::{self, Plan, RepObserver, RuntimeResult};

pub struct Config {
    pub runtimes: Vec<RuntimeKind>,
    /// Runtimes named by the user must all work; default ones that cannot run are skipped
    /// with a note.
    pub explicit: bool,
    pub plan: Plan,
    pub quiet: bool,
    /// Phases are being cut: advice points at the explanations instead of suggesting it.
    pub breakdown: bool,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    #[serde(flatten)]
    pub header: Header,
    pub plan: Plan,
    pub results: Vec<RuntimeResult>,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub reference: Reference,
    /// Set when a rep failed and the run stopped: where, and why in probe's words.
    /// `results` then holds only the reps finished before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<runner::Stopped>,
}

/// startup.json: the run, and with --breakdown each runtime's phases and native's
/// per-namespace costs.
#[derive(Serialize, Deserialize, Debug)]
pub struct StartupJson {
    pub report: Report,
    /// Empty without --breakdown.
    #[serde(default)]
    pub breakdown: Vec<Breakdown>,
    /// Per-namespace create/release cost (--breakdown with native, root only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<NsCost>>,
}

/// The runtimes to measure when the user names none: the probe file's list.
pub fn default_runtimes() -> Vec<RuntimeKind> {
    reference::startup()
        .defaults
        .runtimes
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect()
}

pub fn run(
    cfg: Config,
    interrupted: &dyn Fn() -> bool,
    observer: Option<&mut dyn RepObserver>,
) -> anyhow::Result<Report> {
    let (mut runtimes, skipped) = open_runtimes(&cfg.runtimes, cfg.explicit, "runtime can run here", runtimes::open)?;
    let (results, incomplete) = runner::run(&mut runtimes, &cfg.plan, cfg.quiet, interrupted, observer)?;
    let warnings = runner::advice(&cfg.plan, &results, cfg.breakdown);
    let kinds: Vec<RuntimeKind> = results.iter().map(|r| r.runtime).collect();
    Ok(Report {
        header: Header::collect("startup", &kinds),
        plan: cfg.plan,
        results,
        skipped,
        warnings,
        reference: reference::startup().reference,
        incomplete,
    })
}
