//! Finding what a run folder holds: a `probe all` run (one subfolder per experiment and the
//! journal of what became of each), or a single experiment's run folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;

use crate::experiment::all::{self, Entry, Step, STEPS};
use crate::output::seed_csv::{self, MetricRow};

pub struct Found {
    pub step: &'static Step,
    /// The experiment's files, None when it did not finish.
    pub dir: Option<PathBuf>,
    /// What `probe all` journaled about it (None for a single-experiment folder).
    pub entry: Option<Entry>,
}

pub struct RunFolder {
    pub dir: PathBuf,
    pub quick: Option<bool>,
    pub steps: Vec<Found>,
}

/// An experiment's files are named after its step: `memory-cgroup` → `memory_cgroup.json`.
pub fn stem(step: &Step) -> String {
    step.id.replace('-', "_")
}

pub fn find(run: &Path) -> Result<RunFolder> {
    let dir = run.canonicalize().with_context(|| {
        format!(
            "no run folder at {}: pass one (e.g. results/latest) or run an experiment first",
            run.display()
        )
    })?;
    if dir.join(all::OPTIONS).is_file() {
        let journal = all::read_journal(&dir)?;
        let steps = STEPS
            .iter()
            .map(|s| Found {
                step: s,
                dir: Some(dir.join(s.id)).filter(|d| d.is_dir()),
                entry: journal.get(s.id).cloned(),
            })
            .collect();
        return Ok(RunFolder {
            quick: Some(all::read_options(&dir)?.quick),
            dir,
            steps,
        });
    }
    let steps: Vec<Found> = STEPS
        .iter()
        .filter(|s| {
            dir.join(format!("{}.json", stem(s))).is_file()
                || dir.join(format!("{}.csv", stem(s))).is_file()
        })
        .map(|s| Found {
            step: s,
            dir: Some(dir.clone()),
            entry: None,
        })
        .collect();
    if steps.is_empty() {
        bail!(
            "{} holds no experiment results: expected a `probe all` run folder ({}) or one experiment's (startup.json, memory.json, ...)",
            dir.display(),
            all::OPTIONS
        );
    }
    Ok(RunFolder {
        dir,
        quick: None,
        steps,
    })
}

pub fn json<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} does not have the fields this probe reads (written by another probe version?)",
            path.display()
        )
    })
}

pub fn metric_csv(dir: &Path, name: &str) -> Result<Vec<MetricRow>> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    seed_csv::parse_metric_csv(&bytes).with_context(|| format!("parsing {}", path.display()))
}
