//! Warmup + N reps of one command on several runtimes, with progress on stderr.
//!
//! Reps are interleaved (rep 1 of every runtime, then rep 2, ...) rather than run runtime by
//! runtime: on a noisy machine a burst of background load then hits every runtime alike, so
//! the ratios between runtimes — what carries over between machines — stay honest.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::Sample;
use crate::measure::Runtime;
use crate::ground::RuntimeKind;
use crate::ground::stats::{self, Summary};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub argv: Vec<String>,
    pub reps: u32,
    pub warmup: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuntimeResult {
    pub runtime: RuntimeKind,
    pub warmup: Vec<Sample>,
    pub samples: Vec<Sample>,
}

impl RuntimeResult {
    pub fn wall_ms(&self) -> Vec<f64> {
        self.samples.iter().map(Sample::wall_ms).collect()
    }

    pub fn summary(&self) -> Summary {
        stats::summarize(&self.wall_ms()).expect("at least one rep")
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal or with --quiet.
pub struct Progress(ProgressBar);

impl Progress {
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
        } else {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {pos}/{len} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        };
        Progress(bar)
    }

    pub fn step(&self, msg: String) {
        self.0.set_message(msg);
        self.0.inc(1);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Sees every rep as it happens: the tracer uses this to open its window before a rep and to
/// cut the rep's kernel events into phases after it.
pub trait RepObserver {
    fn before_rep(&mut self, runtime: RuntimeKind) -> anyhow::Result<()>;
    fn after_rep(&mut self, runtime: RuntimeKind, sample: &mut Sample) -> anyhow::Result<()>;
}

/// A run stopped by a failed rep. The reps finished before it are kept (as hyperfine's
/// exports keep the benchmarks done), so an engine dying mid-run does not take everyone's
/// measurements with it; whoever saves them marks them incomplete.
#[derive(Debug, thiserror::Error)]
#[error("{error:#}")]
pub struct Incomplete {
    /// Runtimes with at least one finished rep, each with the reps it finished.
    pub results: Vec<RuntimeResult>,
    pub stopped: Stopped,
    pub error: anyhow::Error,
}

/// Where a run stopped, recorded with its partial results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stopped {
    pub runtime: RuntimeKind,
    /// 1-based number of the rep that failed (of the warmup when `warmup`).
    pub rep: u32,
    pub warmup: bool,
    /// What happened, in probe's words, with the engine's own line.
    pub reason: String,
}

/// Runs the plan on every runtime. A failed rep stops the run with the runtime named (a
/// benchmark with silently missing reps would compare unlike things) and returns the reps
/// finished so far as an `Incomplete` error.
pub fn run(
    runtimes: &mut [Box<dyn Runtime>],
    plan: &Plan,
    quiet: bool,
    interrupted: &dyn Fn() -> bool,
    mut observer: Option<&mut dyn RepObserver>,
) -> anyhow::Result<Vec<RuntimeResult>> {
    let total = (plan.reps + plan.warmup) as u64 * runtimes.len() as u64;
    let progress = Progress::new(total, quiet);
    let mut results: Vec<RuntimeResult> = runtimes
        .iter()
        .map(|r| RuntimeResult {
            runtime: r.kind(),
            warmup: Vec::new(),
            samples: Vec::new(),
        })
        .collect();
    let rounds = (0..plan.warmup).map(|i| (true, i)).chain((0..plan.reps).map(|i| (false, i)));
    for (is_warmup, i) in rounds {
        for (rt, res) in runtimes.iter_mut().zip(results.iter_mut()) {
            anyhow::ensure!(!interrupted(), "interrupted: stopped before {} rep {}", rt.kind(), i + 1);
            let label = if is_warmup { "warmup" } else { "rep" };
            progress.step(format!("{} {label} {}", rt.kind(), i + 1));
            if let Some(o) = observer.as_deref_mut() {
                o.before_rep(rt.kind())?;
            }
            let mut sample = match rt.run(&plan.argv) {
                Ok(s) => s,
                Err(e) => {
                    progress.finish();
                    let done = res.samples.len();
                    let kept = match done {
                        0 => "no rep of it finished".to_string(),
                        1 => "rep 1 finished and is kept".to_string(),
                        n => format!("reps 1–{n} finished and are kept"),
                    };
                    let error = e.context(format!("{} {label} {} ({kept})", rt.kind(), i + 1));
                    results.retain(|r| !r.samples.is_empty());
                    let stopped = Stopped { runtime: rt.kind(), rep: i + 1, warmup: is_warmup, reason: format!("{error:#}") };
                    return Err(Incomplete { results, stopped, error }.into());
                }
            };
            if let Some(o) = observer.as_deref_mut() {
                o.after_rep(rt.kind(), &mut sample)?;
            }
            if is_warmup {
                res.warmup.push(sample);
            } else {
                res.samples.push(sample);
            }
        }
    }
    progress.finish();
    Ok(results)
}

/// hyperfine-style warnings: each says what looks wrong and what to do about it.
pub fn advice(plan: &Plan, results: &[RuntimeResult], breakdown: bool) -> Vec<String> {
    let mut out = Vec::new();
    if plan.reps < 5 {
        out.push(format!(
            "only {} reps: medians, σ and outlier flags are unreliable below 5; use --reps 10 or more",
            plan.reps
        ));
    }
    for r in results {
        let s = r.summary();
        for &i in &s.outliers {
            // Only a rep with phases can have its deviation explained (an engine has none
            // when it could not be traced).
            let why = match (breakdown, !r.samples[i].phases.is_empty()) {
                (true, true) => " (the outlier lines of the breakdown name the phase that deviated)",
                (false, _) if r.runtime.has_phases() => ", or use --breakdown to see which phase deviated",
                _ => "",
            };
            out.push(format!(
                "{} rep {} took {:.1} ms against a median of {:.1} ms: an outlier. Background load or cold caches \
                 can cause this; rerun with more --reps on a quiet machine{}",
                r.runtime,
                i + 1,
                r.samples[i].wall_ms(),
                s.median,
                why
            ));
        }
        let first = r.warmup.first().or(r.samples.first());
        if let Some(first) = first {
            if s.n >= 3 && first.wall_ms() > 2.0 * s.median && s.median > 0.0 {
                let fix = if plan.warmup == 0 {
                    "use --warmup 1 or more to discard it"
                } else {
                    "it was discarded as warmup; the reps after it are steady"
                };
                out.push(format!(
                    "{}: the first run took {:.1} ms, {:.1}× the median (cold caches); {fix}",
                    r.runtime,
                    first.wall_ms(),
                    first.wall_ms() / s.median
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ground::phase::{Phase, PhaseRecord};

    fn result(runtime: RuntimeKind, phases: bool) -> RuntimeResult {
        let sample = |ms: f64| Sample {
            start_mono_ns: 0,
            pid: 1,
            wall_ns: (ms * 1e6) as u64,
            user_ns: 0,
            sys_ns: 0,
            exit_code: 0,
            phases: if phases {
                vec![PhaseRecord { phase: Phase::Exec, detail: None, start_ns: 0, dur_ns: 1, counters: Default::default(), overhead_ns: 0 }]
            } else {
                Vec::new()
            },
        };
        let samples = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 30.0].map(sample).to_vec();
        RuntimeResult { runtime, warmup: Vec::new(), samples }
    }

    fn outlier_line(runtime: RuntimeKind, phases: bool, breakdown: bool) -> String {
        let plan = Plan { argv: vec!["true".into()], reps: 8, warmup: 0 };
        let lines = advice(&plan, &[result(runtime, phases)], breakdown);
        lines.into_iter().find(|l| l.contains("rep 8")).expect("rep 8 is an outlier")
    }

    #[test]
    fn outlier_advice_points_only_where_a_phase_can_be_named() {
        assert!(outlier_line(RuntimeKind::Native, true, true).contains("name the phase"));
        assert!(outlier_line(RuntimeKind::Docker, false, false).contains("use --breakdown"));
        assert!(outlier_line(RuntimeKind::Runc, false, false).contains("use --breakdown"), "runc alone is traced too");
        // bare has no phases to break down; a traced-out engine has none to name.
        let line = outlier_line(RuntimeKind::Bare, false, false);
        assert!(!line.contains("breakdown") && !line.contains("phase"), "{line}");
        assert!(!outlier_line(RuntimeKind::Docker, false, true).contains("phase"));
    }
}
