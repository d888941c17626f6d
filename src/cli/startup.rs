//! `probe startup`: Experiment 1, startup latency per runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::ground::RuntimeKind;
use crate::experiment::startup::breakdown::{self, Breakdown};
use crate::experiment::startup::{self, Report};
use crate::measure::runner::Plan;
use crate::experiment::startup::observer::StartupTracer;
use crate::output::results::{self, RunDir};
use crate::output::seed_csv::{self, MetricRow};
use crate::output::table::{ms, Table};
use crate::experiment::startup::nscost::{self, NsCost};
use crate::ground::stats;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct StartupArgs {
    /// Runtimes to measure, comma-separated: bare, native, runc, crun, docker, podman,
    /// podman-rootless. Default: every one of bare, native, runc, docker, podman and
    /// podman-rootless that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Measured repetitions per runtime [default: 10, from probes/startup.json].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub reps: Option<u32>,
    /// Unmeasured runs per runtime before the reps, to warm caches [default: 1].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Also cut each start into phases (native: timed in-process) and show where time goes.
    #[arg(long)]
    pub breakdown: bool,
    /// With --breakdown: draw each runtime's median rep (native's phases, each traced
    /// engine's phases and processes) as one timeline: SVG or PNG, by the file's extension
    /// (a new file; an existing one is not replaced).
    #[arg(long, value_name = "FILE.svg|png", requires = "breakdown", value_parser = crate::output::timeline::check_path)]
    pub timeline: Option<PathBuf>,
    /// What to print on stdout; the run folder always gets CSV and JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Folder that receives a new run folder (and a `latest` link) per run.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Command to run in each container [default: echo ok].
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Serialize)]
struct StartupJson<'a> {
    report: &'a Report,
    breakdown: &'a [Breakdown],
    /// Per-namespace create/release cost (--breakdown with native, root only).
    #[serde(skip_serializing_if = "Option::is_none")]
    namespaces: Option<&'a [NsCost]>,
}

#[derive(Serialize)]
struct PhaseCsvRow<'a> {
    runtime: &'a str,
    rep: usize,
    phase: &'a str,
    detail: &'a str,
    start_ms: f64,
    dur_ms: f64,
    task_clock_ms: Option<f64>,
    context_switches: Option<u64>,
    page_faults: Option<u64>,
    cpu_migrations: Option<u64>,
    overhead_us: f64,
}

pub fn run(a: StartupArgs) -> anyhow::Result<ExitCode> {
    let defaults = crate::experiment::common::reference::startup().defaults;
    let plan = Plan {
        argv: if a.command.is_empty() { defaults.command.clone() } else { a.command.clone() },
        reps: a.reps.unwrap_or(defaults.reps),
        warmup: a.warmup.unwrap_or(defaults.warmup),
    };
    results::check_writable(&a.results)?;
    crate::sys::signals::install();
    let explicit = a.runtimes.is_some();
    let mut kinds = a.runtimes.clone().unwrap_or_else(startup::default_runtimes);
    if a.breakdown && !kinds.contains(&RuntimeKind::Native) && !explicit {
        kinds.insert(1, RuntimeKind::Native);
    }
    // Native times its own phases; only engines need the kernel tracer.
    let traced = a.breakdown && kinds.iter().any(|k| k.is_engine());
    let mut tracer = if traced { StartupTracer::start_or_explain() } else { None };
    let report = startup::run(
        startup::Config {
            runtimes: kinds,
            explicit,
            plan,
            quiet: a.quiet,
            breakdown: a.breakdown,
        },
        &crate::sys::signals::interrupted,
        tracer.as_mut().map(|t| t as &mut dyn crate::measure::runner::RepObserver),
    )?;
    let breakdowns: Vec<Breakdown> = if a.breakdown {
        report.results.iter().filter_map(breakdown::breakdown).collect()
    } else {
        Vec::new()
    };

    let has_native = breakdowns.iter().any(|b| b.runtime == RuntimeKind::Native);
    let namespaces = match has_native.then(nscost::for_breakdown) {
        Some(Err(why)) => {
            eprintln!("warning: {why}");
            None
        }
        rows => rows.and_then(Result::ok),
    };

    let dir = RunDir::create(&a.results, "startup")?;
    let csv = seed_csv::metric_csv(&csv_rows(&report))?;
    dir.write_atomic("startup.csv", &csv)?;
    // Serialized straight from the structs: a json! Value tree of thousands of reps costs
    // tens of MB (measured: 90 MB at 1500 native reps) for a file of a few.
    let json = serde_json::to_vec_pretty(&StartupJson {
        report: &report,
        breakdown: &breakdowns,
        namespaces: namespaces.as_deref(),
    })?;
    dir.write_atomic("startup.json", &json)?;
    if a.breakdown {
        dir.write_atomic("phases.csv", &phases_csv(&report)?)?;
    }
    dir.mark_latest()?;
    if let Some(path) = &a.timeline {
        let runs = StartupTracer::timeline_runs(tracer.as_ref(), &report.results);
        let runs: Vec<(String, &_)> = runs.iter().map(|(t, a)| (t.clone(), a)).collect();
        anyhow::ensure!(!runs.is_empty(), "--timeline: no rep has phases to draw (the results are saved in {})", dir.path().display());
        crate::output::timeline::write(path, &runs)?;
        eprintln!("timeline: {}", path.display());
    }

    match a.format {
        Format::Table => {
            print!("{}", render(&report));
            for b in &breakdowns {
                print!("\n{}", render_breakdown(b));
                if let (RuntimeKind::Native, Some(rows)) = (b.runtime, &namespaces) {
                    print!("\n{}", render_namespaces(rows));
                }
            }
            if let Some(t) = &tracer {
                print!("{}", t.report(&report.results, &breakdowns));
            }
            let native: Vec<String> = report
                .results
                .iter()
                .filter(|r| r.runtime == RuntimeKind::Native && a.breakdown)
                .flat_map(crate::experiment::startup::outliers::native)
                .collect();
            if !native.is_empty() {
                println!("\nNative outliers explained (from its own phase counters):");
                for l in native {
                    println!("  {l}");
                }
            }
        }
        Format::Csv => print!("{}", String::from_utf8_lossy(&csv)),
        Format::Json => println!("{}", String::from_utf8_lossy(&json)),
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for s in &report.skipped {
        eprintln!("skipped {}", s.reason);
    }
    eprintln!("results: {}", dir.path().display());
    Ok(ExitCode::SUCCESS)
}

fn csv_rows(report: &Report) -> Vec<MetricRow> {
    report
        .results
        .iter()
        .flat_map(|r| {
            r.samples.iter().map(move |s| MetricRow {
                runtime: r.runtime.to_string(),
                metric: "startup_ms".into(),
                value: format!("{:.3}", s.wall_ms()),
            })
        })
        .collect()
}

fn phases_csv(report: &Report) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &report.results {
        for (i, s) in r.samples.iter().enumerate() {
            for p in &s.phases {
                w.serialize(PhaseCsvRow {
                    runtime: r.runtime.name(),
                    rep: i + 1,
                    phase: p.phase.name(),
                    detail: p.detail.as_deref().unwrap_or(""),
                    start_ms: p.start_ns as f64 / 1e6,
                    dur_ms: p.dur_ns as f64 / 1e6,
                    task_clock_ms: p.counters.task_clock_ns.map(|n| n as f64 / 1e6),
                    context_switches: p.counters.context_switches,
                    page_faults: p.counters.page_faults,
                    cpu_migrations: p.counters.cpu_migrations,
                    overhead_us: p.overhead_ns as f64 / 1e3,
                })?;
            }
        }
    }
    Ok(w.into_inner()?)
}

fn render(report: &Report) -> String {
    let plan = &report.plan;
    let mut out = format!(
        "Experiment 1: startup latency of `{}`, {} reps after {} warmup, milliseconds\n\n",
        plan.argv.join(" "),
        plan.reps,
        plan.warmup
    );
    let bare = report
        .results
        .iter()
        .find(|r| r.runtime == RuntimeKind::Bare)
        .map(|r| r.summary());
    let mut t = Table::new(["runtime", "mean", "median", "range", "σ", "× bare", "outliers", "chapter × bare"]);
    for r in &report.results {
        let s = r.summary();
        let times = match &bare {
            Some(b) if r.runtime != RuntimeKind::Bare => {
                let q = stats::ratio(&s, b);
                format!("{:.1} ± {:.1}", q.value, q.uncertainty)
            }
            Some(_) => "1".into(),
            None => "-".into(),
        };
        let chapter = if r.runtime == RuntimeKind::Bare {
            "1".to_string()
        } else {
            report
                .reference
                .times_bare
                .get(r.runtime.name())
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into())
        };
        t.row([
            r.runtime.to_string(),
            ms(s.mean),
            ms(s.median),
            format!("{}–{}", ms(s.min), ms(s.max)),
            ms(s.sd),
            times,
            s.outliers.len().to_string(),
            chapter,
        ]);
    }
    out.push_str(&t.render());
    out
}

fn render_breakdown(b: &Breakdown) -> String {
    let mut out = format!(
        "Phases of {} (median total {} ms; named phases cover ≥ {:.1}% of every rep)\n",
        b.runtime,
        ms(b.total_median_ms),
        b.min_coverage * 100.0
    );
    let mut t = Table::new(["phase", "detail", "median ms", "p95 ms", "share", "task-clock ms", "probe overhead µs"]);
    for r in &b.rows {
        t.row([
            r.phase.to_string(),
            r.detail.clone().unwrap_or_default(),
            format!("{:.3}", r.median_ms),
            format!("{:.3}", r.p95_ms),
            format!("{:.1}%", r.share * 100.0),
            r.task_clock_ms.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into()),
            format!("{:.1}", r.overhead_us),
        ]);
    }
    out.push_str(&t.render());
    out
}

fn render_namespaces(rows: &[NsCost]) -> String {
    let reps = rows.first().map_or(0, |r| r.reps);
    let mut out = format!("Namespaces, each type alone ({reps} reps, µs)\n");
    let mut t = Table::new(["type", "create median", "create p95", "release median", "release p95"]);
    let us = |ns: u64| format!("{:.0}", ns as f64 / 1e3);
    for r in rows {
        t.row([r.ns.to_string(), us(r.create_median_ns), us(r.create_p95_ns), us(r.release_median_ns), us(r.release_p95_ns)]);
    }
    out.push_str(&t.render());
    out.push_str(&format!("{}\n", nscost::RELEASE_NOTE));
    out
}
