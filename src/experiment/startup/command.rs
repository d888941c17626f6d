//! What `probe startup` runs: the runtimes (with the kernel tracer when --breakdown has
//! engines to cut), then each runtime's phases, native's outlier reps and the namespaces'
//! own cost.

use crate::experiment::common::reference;
use crate::experiment::startup::breakdown::{self, Breakdown};
use crate::experiment::startup::nscost;
use crate::experiment::startup::observer::StartupTracer;
use crate::experiment::startup::outliers::{self, NativeOutlier};
use crate::experiment::startup::{self, StartupJson};
use crate::ground::RuntimeKind;
use crate::measure::runner::{Plan, RepObserver};

/// The command line's choices; None takes the probe file's default.
pub struct Options {
    pub runtimes: Option<Vec<RuntimeKind>>,
    pub reps: Option<u32>,
    pub warmup: Option<u32>,
    pub breakdown: bool,
    /// With `breakdown`: record switch-out stacks and name the kernel wait sites.
    pub kernel_stacks: bool,
    /// Empty: the probe file's command.
    pub command: Vec<String>,
    pub quiet: bool,
}

pub struct Outcome {
    /// What startup.json holds: the report, the breakdowns and the namespace costs.
    pub saved: StartupJson,
    /// Native's outlier reps, explained from its own phase counters (--breakdown only).
    pub native_outliers: Vec<NativeOutlier>,
    /// The engines' traced reps, when --breakdown could trace.
    pub tracer: Option<StartupTracer>,
    /// With --breakdown: each measured runtime that has no phases, and why (none is left out
    /// silently).
    pub without_phases: Vec<startup::Skipped>,
}

pub fn run(o: Options) -> anyhow::Result<Outcome> {
    let defaults = reference::startup().defaults;
    let plan = Plan {
        argv: if o.command.is_empty() { defaults.command.clone() } else { o.command },
        reps: o.reps.unwrap_or(defaults.reps),
        warmup: o.warmup.unwrap_or(defaults.warmup),
    };
    crate::sys::signals::install();
    let explicit = o.runtimes.is_some();
    let mut kinds = o.runtimes.unwrap_or_else(startup::default_runtimes);
    if o.breakdown && !kinds.contains(&RuntimeKind::Native) && !explicit {
        kinds.insert(1, RuntimeKind::Native);
    }
    // Native times its own phases; only engines and OCI runtimes need the kernel tracer.
    let traced = o.breakdown && kinds.iter().any(|k| k.is_traced());
    let mut tracer = if traced { StartupTracer::start_or_explain(o.kernel_stacks) } else { None };
    let mut report = startup::run(
        startup::Config {
            runtimes: kinds,
            explicit,
            plan,
            quiet: o.quiet,
            breakdown: o.breakdown,
        },
        &crate::sys::signals::interrupted,
        tracer.as_mut().map(|t| t as &mut dyn RepObserver),
    )?;
    if let Some(t) = tracer.as_mut() {
        t.finish()?;
    }
    if !o.breakdown {
        let saved = StartupJson { report, breakdown: Vec::new(), namespaces: None };
        return Ok(Outcome { saved, native_outliers: Vec::new(), tracer, without_phases: Vec::new() });
    }
    let mut breakdowns: Vec<Breakdown> = report.results.iter().filter_map(breakdown::breakdown).collect();
    let without_phases = report
        .results
        .iter()
        .filter(|r| !breakdowns.iter().any(|b| b.runtime == r.runtime))
        .map(|r| startup::Skipped {
            runtime: r.runtime,
            reason: if !r.runtime.has_phases() {
                "no container to cut into phases (it is the baseline: fork + exec of the command)".into()
            } else if r.runtime.is_traced() && tracer.is_none() {
                "kernel tracing unavailable (see the note above): totals only".into()
            } else {
                "no rep recorded phases (no rep finished)".into()
            },
        })
        .collect();
    if let Some(t) = &tracer {
        let traces: Vec<_> = t.reps.iter().collect();
        for b in &mut breakdowns {
            let Some(result) = report.results.iter().find(|r| r.runtime == b.runtime) else { continue };
            outliers::add_waits(b, result, &traces);
        }
    }
    let has_native = breakdowns.iter().any(|b| b.runtime == RuntimeKind::Native);
    let namespaces = match has_native.then(nscost::for_breakdown) {
        Some(Err(why)) => {
            report.warnings.push(why.to_string());
            None
        }
        rows => rows.and_then(Result::ok),
    };
    let native_outliers = report
        .results
        .iter()
        .filter(|r| r.runtime == RuntimeKind::Native)
        .flat_map(outliers::native)
        .collect();
    let saved = StartupJson { report, breakdown: breakdowns, namespaces };
    Ok(Outcome { saved, native_outliers, tracer, without_phases })
}
