//! Each experiment's default parameters and the chapter's reference figures, kept as data in
//! probes/<experiment>.json and embedded in the binary so probe runs from anywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One probes/<experiment>.json: its parameters' defaults and the chapter's figures.
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct ProbeFile<D, R> {
    pub experiment: String,
    pub title: String,
    pub defaults: D,
    pub reference: R,
}

pub type StartupProbe = ProbeFile<StartupDefaults, Reference>;

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct StartupDefaults {
    pub reps: u32,
    pub warmup: u32,
    pub command: Vec<String>,
    pub runtimes: Vec<String>,
}

/// The chapter's own measurements: raw reps per runtime where it printed them.
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Reference {
    pub machine: String,
    pub metric: String,
    pub unit: String,
    pub reps: BTreeMap<String, Vec<f64>>,
    pub mean_ms: BTreeMap<String, f64>,
    pub times_bare: BTreeMap<String, f64>,
}

pub fn startup() -> StartupProbe {
    serde_json::from_str(include_str!("../../../probes/startup.json"))
        .expect("probes/startup.json is checked by a unit test")
}

#[cfg(test)]
mod tests {
    #[test]
    fn startup_probe_parses_and_matches_the_chapter() {
        let p = super::startup();
        assert_eq!(p.defaults.reps, 10);
        let bare = &p.reference.reps["bare"];
        let mean: f64 = bare.iter().sum::<f64>() / bare.len() as f64;
        assert!((mean - p.reference.mean_ms["bare"]).abs() < 0.05, "chapter's bare mean");
        for rt in &p.defaults.runtimes {
            assert!(rt.parse::<crate::ground::RuntimeKind>().is_ok(), "{rt}");
        }
    }
}
