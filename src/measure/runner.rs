//! Warmup + N reps on several runtimes, with progress on stderr: `interleaved` is the one rep
//! loop (startup's `run` below, both CPU experiments, io's storage modes), whatever a rep does.
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

/// Which run of a unit: a warmup or a measured rep, counted from 1 within its kind.
#[derive(Clone, Copy, Debug)]
pub struct Round {
    pub warmup: bool,
    pub n: u32,
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", if self.warmup { "warmup" } else { "rep" }, self.n)
    }
}

/// One unit's runs, the unmeasured warmups apart. `runtime` is the unit's key: its runtime,
/// or whatever else tells the units apart and names the runtime under it (io's storage modes).
pub struct Runs<R, K = RuntimeKind> {
    pub runtime: K,
    pub warmup: Vec<R>,
    pub reps: Vec<R>,
}

/// One rep as `interleaved` sees it: `Ok(Ok(r))` finished; `Ok(Err(e))` the rep itself
/// failed (an engine died, the command exited non-zero), which stops the run but keeps the
/// reps finished before it, unless Ctrl-C was pressed; `Err(e)` ends the run with nothing
/// kept (the tracer failed).
pub type RepResult<R> = anyhow::Result<anyhow::Result<R>>;

/// `warmup` then `reps` rounds, interleaved over `units` (see the module header), with
/// progress; `run(unit, round)` does one. Stops before a run once `interrupted()`.
///
/// A failed rep stops the run with the runtime named (a benchmark with silently missing reps
/// would compare unlike things), but the reps finished before it are kept (as hyperfine's
/// exports keep the benchmarks done), so an engine dying mid-run does not take everyone's
/// measurements with it: the units with a finished rep come back with where it stopped, and
/// whoever saves them marks them incomplete.
///
/// `key(unit)` names the unit in progress and errors; `Stopped` records the runtime under it.
pub fn interleaved<U, K, R>(
    units: &mut [U],
    warmup: u32,
    reps: u32,
    quiet: bool,
    interrupted: &dyn Fn() -> bool,
    key: impl Fn(&U) -> K,
    mut run: impl FnMut(&mut U, Round) -> RepResult<R>,
) -> anyhow::Result<(Vec<Runs<R, K>>, Option<Stopped>)>
where
    K: Copy + std::fmt::Display + Into<RuntimeKind>,
{
    let progress = Progress::new((reps + warmup) as u64 * units.len() as u64, quiet);
    let mut runs: Vec<Runs<R, K>> = units.iter().map(|u| Runs { runtime: key(u), warmup: Vec::new(), reps: Vec::new() }).collect();
    let rounds = (1..=warmup).map(|n| Round { warmup: true, n }).chain((1..=reps).map(|n| Round { warmup: false, n }));
    for round in rounds {
        for (unit, out) in units.iter_mut().zip(runs.iter_mut()) {
            anyhow::ensure!(!interrupted(), "interrupted: stopped before {} {round}", out.runtime);
            progress.step(format!("{} {round}", out.runtime));
            match run(unit, round)? {
                Ok(r) if round.warmup => out.warmup.push(r),
                Ok(r) => out.reps.push(r),
                // A rep cut short by Ctrl-C is the user stopping the run, not a failed rep:
                // an interrupted run writes no half results.
                Err(e) if interrupted() => {
                    progress.finish();
                    return Err(e);
                }
                Err(e) => {
                    progress.finish();
                    let kept = match out.reps.len() {
                        0 => "no rep of it finished".to_string(),
                        1 => "rep 1 finished and is kept".to_string(),
                        n => format!("reps 1–{n} finished and are kept"),
                    };
                    let error = e.context(format!("{} {round} ({kept})", out.runtime));
                    let stopped = Stopped { runtime: out.runtime.into(), rep: round.n, warmup: round.warmup, reason: format!("{error:#}") };
                    runs.retain(|r| !r.reps.is_empty());
                    // Nothing finished anywhere: there is no partial run to keep, only the error.
                    if runs.is_empty() {
                        return Err(error);
                    }
                    return Ok((runs, Some(stopped)));
                }
            }
        }
    }
    progress.finish();
    Ok((runs, None))
}

/// Runs the plan on every runtime (see `interleaved`), with the observer around each rep.
pub fn run(
    runtimes: &mut [Box<dyn Runtime>],
    plan: &Plan,
    quiet: bool,
    interrupted: &dyn Fn() -> bool,
    mut observer: Option<&mut dyn RepObserver>,
) -> anyhow::Result<(Vec<RuntimeResult>, Option<Stopped>)> {
    let (runs, stopped) = interleaved(runtimes, plan.warmup, plan.reps, quiet, interrupted, |rt| rt.kind(), |rt, _| {
        if let Some(o) = observer.as_deref_mut() {
            o.before_rep(rt.kind())?;
        }
        let mut sample = match rt.run(&plan.argv) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(o) = observer.as_deref_mut() {
            o.after_rep(rt.kind(), &mut sample)?;
        }
        Ok(Ok(sample))
    })?;
    let results = runs.into_iter().map(|r| RuntimeResult { runtime: r.runtime, warmup: r.warmup, samples: r.reps }).collect();
    Ok((results, stopped))
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
    fn rounds_interleave_warmups_first_and_stop_when_interrupted() {
        use RuntimeKind::{Bare, Docker};
        let mut units = [Bare, Docker];
        let mut order = Vec::new();
        let (runs, stopped) = interleaved(&mut units, 1, 2, true, &|| false, |u| *u, |u, round| {
            order.push(format!("{u} {round}"));
            Ok(Ok(round.n))
        })
        .unwrap();
        assert_eq!(order, ["bare warmup 1", "docker warmup 1", "bare rep 1", "docker rep 1", "bare rep 2", "docker rep 2"]);
        assert_eq!((runs[1].runtime, runs[1].warmup.clone(), runs[1].reps.clone()), (Docker, vec![1], vec![1, 2]));
        assert!(stopped.is_none());
        let calls = std::cell::Cell::new(0);
        let e = interleaved(&mut units, 0, 2, true, &|| calls.get() == 3, |u| *u, |_, _| {
            calls.set(calls.get() + 1);
            Ok(Ok(()))
        })
        .err()
        .expect("interrupted");
        assert_eq!(e.to_string(), "interrupted: stopped before docker rep 2");
        let pressed = std::cell::Cell::new(false);
        let e = interleaved(&mut units, 0, 2, true, &|| pressed.get(), |u| *u, |_, _| {
            pressed.set(true);
            Ok(Err::<(), _>(anyhow::anyhow!("interrupted during a bare rep")))
        });
        assert_eq!(e.err().expect("no partial run once interrupted").to_string(), "interrupted during a bare rep");
    }

    #[test]
    fn a_failed_rep_stops_the_run_and_keeps_the_finished_reps() {
        use RuntimeKind::{Bare, Docker, Podman};
        let mut units = [Bare, Docker, Podman];
        let (runs, stopped) = interleaved(&mut units, 1, 3, true, &|| false, |u| *u, |u, round| {
            Ok(if *u == Docker && round.n == 2 && !round.warmup { Err(anyhow::anyhow!("daemon gone")) } else { Ok(round.n) })
        })
        .unwrap();
        let stopped = stopped.expect("stopped");
        assert_eq!((stopped.runtime, stopped.rep, stopped.warmup), (Docker, 2, false));
        assert_eq!(stopped.reason, "docker rep 2 (rep 1 finished and is kept): daemon gone");
        let kept: Vec<(RuntimeKind, Vec<u32>)> = runs.into_iter().map(|r| (r.runtime, r.reps)).collect();
        assert_eq!(kept, [(Bare, vec![1, 2]), (Docker, vec![1]), (Podman, vec![1])]);
        // Nothing finished anywhere: no partial run to keep, only the error.
        let e = interleaved(&mut units, 1, 3, true, &|| false, |u| *u, |u, _| {
            Ok(if *u == Bare { Err(anyhow::anyhow!("no shell")) } else { Ok(()) })
        });
        assert_eq!(format!("{:#}", e.err().expect("no partial run")), "bare warmup 1 (no rep of it finished): no shell");
        let e = interleaved(&mut units, 0, 1, true, &|| false, |u| *u, |_, _| -> RepResult<()> { anyhow::bail!("tracer broke") });
        assert_eq!(e.err().expect("not a partial run").to_string(), "tracer broke");
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
