//! Opening the runtimes an experiment keeps detached containers on: each one checked
//! before anything is measured, so a missing engine or image fails the run at once.

use serde::{Deserialize, Serialize};

use crate::experiment::common::open::{open_runtimes, Skipped};
use crate::runtimes::detached::Fleet;
use crate::ground::RuntimeKind;

/// What every fleet experiment (memory, memory --cgroup, scale) is told: which runtimes, how
/// many containers per step, what they run.
pub struct FleetPlan {
    pub runtimes: Vec<RuntimeKind>,
    /// The user named the runtimes: one that cannot run is an error, not a skip.
    pub explicit: bool,
    pub counts: Vec<u32>,
    pub command: Vec<String>,
    pub quiet: bool,
}

/// What a fleet experiment's probe file says by default (flattened into its Defaults).
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct FleetDefaults {
    pub counts: Vec<u32>,
    pub runtimes: Vec<String>,
    pub command: Vec<String>,
}

impl FleetPlan {
    /// The user's `--runtimes`, or the probe file's default names; the probe file's command.
    pub fn new(runtimes: Option<Vec<RuntimeKind>>, counts: Vec<u32>, defaults: &FleetDefaults, quiet: bool) -> Self {
        FleetPlan {
            explicit: runtimes.is_some(),
            runtimes: runtimes.unwrap_or_else(|| parse_kinds(&defaults.runtimes)),
            counts,
            command: defaults.command.clone(),
            quiet,
        }
    }
}

/// What every fleet started, recorded under the header of a fleet experiment's report
/// (flattened: `counts` and `command` are top-level keys).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct FleetRun {
    pub counts: Vec<u32>,
    pub command: Vec<String>,
}

impl FleetPlan {
    pub fn run(&self) -> FleetRun {
        FleetRun { counts: self.counts.clone(), command: self.command.clone() }
    }
}

/// Runtimes named by the user must all work; default ones that cannot run are skipped with
/// the reason. `tag` goes into every container name (`probe-<pid>-<tag>-<runtime>-<n>`).
pub fn open(kinds: &[RuntimeKind], explicit: bool, tag: &str) -> anyhow::Result<(Vec<Fleet>, Vec<Skipped>)> {
    open_runtimes(kinds, explicit, "runtime can run containers here", |kind| Fleet::open(kind, &format!("{tag}-{kind}")))
}

/// The probe file's runtime names, parsed.
pub fn parse_kinds(names: &[String]) -> Vec<RuntimeKind> {
    names.iter().filter_map(|r| r.parse().ok()).collect()
}
