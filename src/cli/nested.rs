//! `probe nested`: Experiments 5 and 9, containers inside containers — which approaches work
//! here, why the others fail, what nesting costs. `probe nested inside` (hidden) is the
//! worker that runs in the outer container.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::emit::{emit, save, Format};

use crate::experiment::nested::inner::{Inner, Worker};
use crate::experiment::nested::{self, ApproachResult, Report};
use crate::output::results;
use crate::output::seed_csv::{self, MetricRow};
use crate::output::table::{ms, Table};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NestedArgs {
    #[command(subcommand)]
    pub worker: Option<WorkerCommand>,
    /// Approaches to run, comma-separated ids (exp5_dind, exp5_pinp, dind_privileged,
    /// socket_mount, dind_relaxed_security, pinp_basic, pinp_privileged, pinp_vfs) [default: all].
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub only: Vec<String>,
    /// Deepest native-in-native level [default: 3, from probes/nested.json]; 0 skips it.
    #[arg(long, value_name = "N")]
    pub depth: Option<u32>,
    /// Reps per native depth [default: 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub native_reps: Option<u32>,
    /// What to print on stdout; the run folder always gets CSV and JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Folder that receives a new run folder (and a `latest` link) per run.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum WorkerCommand {
    /// Runs inside the outer container: probes it, runs the inner engine, prints JSON.
    #[command(hide = true)]
    Inside(InsideArgs),
}

#[derive(Args, Debug)]
pub struct InsideArgs {
    #[arg(long, value_enum)]
    pub inner: Inner,
    /// Name for the innermost container.
    #[arg(long, default_value = "probe-inner")]
    pub name: String,
    #[arg(long, default_value_t = 30)]
    pub daemon_timeout: u64,
    /// `probe run` option for a native inner level (repeatable).
    #[arg(long = "native-flag", allow_hyphen_values = true)]
    pub native_flags: Vec<String>,
}

pub fn run(a: NestedArgs) -> anyhow::Result<ExitCode> {
    if let Some(WorkerCommand::Inside(w)) = a.worker {
        return inside(w);
    }
    let defaults = nested::probe_file().defaults;
    results::check_writable(&a.results)?;
    crate::sys::signals::install();
    let quiet = a.quiet;
    let mut progress = |m: &str| {
        if !quiet {
            eprintln!("probe nested: {m}");
        }
    };
    let report = nested::run(
        nested::Config {
            only: a.only,
            native_depth: a.depth.unwrap_or(defaults.native_depth),
            native_reps: a.native_reps.unwrap_or(defaults.native_reps),
            daemon_timeout: Duration::from_secs(defaults.daemon_timeout_s),
            outer_timeout: Duration::from_secs(defaults.outer_timeout_s),
        },
        &crate::sys::signals::interrupted,
        &mut progress,
    )?;

    let csv = seed_csv::metric_csv(&csv_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.results, "nested", &[("nested.csv", &csv), ("nested.json", &json)])?;
    emit(a.format, &render(&report), &csv, &json);
    for l in &report.leftovers {
        eprintln!("warning: left behind: {l}");
    }
    eprintln!("results: {}", dir.path().display());
    Ok(if report.leftovers.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The worker: one JSON line on stdout, whatever happens inside.
fn inside(w: InsideArgs) -> anyhow::Result<ExitCode> {
    let worker = Worker {
        inner: w.inner,
        name: w.name,
        daemon_timeout: Duration::from_secs(w.daemon_timeout),
        native_flags: w.native_flags,
    };
    let report = worker.run()?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn secs(ms: f64) -> String {
    format!("{:.3}", ms / 1e3)
}

/// The chapter's schema: runtime,metric,value. Experiment 5's two rows keep the chapter's
/// `nested_seconds` metric; every approach also gets `<id>_*` rows.
fn csv_rows(r: &Report) -> Vec<MetricRow> {
    let mut rows = Vec::new();
    let mut push = |runtime: &str, metric: String, value: String| rows.push(MetricRow { runtime: runtime.into(), metric, value });
    for a in &r.results {
        if a.experiment == 5 {
            push(&a.engine, "nested_seconds".into(), secs(a.total_ms));
        }
        push(&a.engine, format!("{}_success", a.id), u8::from(a.success).to_string());
        push(&a.engine, format!("{}_seconds", a.id), secs(a.total_ms));
        let optional = [
            ("first_echo_seconds", a.first_echo_ms),
            ("daemon_seconds", a.daemon_ms),
            ("import_seconds", a.import_ms),
            ("outer_start_seconds", a.outer_start_ms),
            ("inner_start_seconds", a.inner_start_ms),
        ];
        for (metric, v) in optional {
            if let Some(v) = v {
                push(&a.engine, format!("{}_{metric}", a.id), secs(v));
            }
        }
    }
    for l in &r.native {
        push("native", format!("depth{}_success", l.depth), u8::from(l.success).to_string());
        if let Some(m) = l.median_ms {
            push("native", format!("depth{}_ms", l.depth), format!("{m:.3}"));
        }
        if let Some(c) = l.level_cost_ms {
            push("native", format!("depth{}_level_cost_ms", l.depth), format!("{c:.3}"));
        }
    }
    rows
}

fn opt_s(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}s", v / 1e3)).unwrap_or_else(|| "-".into())
}

fn reason(a: &ApproachResult) -> String {
    match &a.cause {
        Some(c) => format!("{}: {} → {}", serde_json::to_value(c.missing).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(), c.syscall, c.errno),
        None => "—".into(),
    }
}

fn render(r: &Report) -> String {
    let mut out = String::from("Experiments 5 and 9: containers inside containers\n\n");
    let mut t = Table::new(["#", "exp", "runtime", "approach", "result", "time", "to echo ok", "daemon", "import", "reason (missing: syscall → errno)", "chapter"]);
    for (i, a) in r.results.iter().enumerate() {
        let chapter = r
            .reference
            .rows
            .iter()
            .find(|row| row.id == a.id)
            .map(|row| format!("{}{}", row.result, row.seconds.map(|s| format!(" {s}s")).unwrap_or_default()))
            .unwrap_or_default();
        t.row([
            (i + 1).to_string(),
            a.experiment.to_string(),
            a.engine.clone(),
            a.approach.clone(),
            if a.success { "Success".into() } else { "Error".into() },
            format!("{:.2}s", a.total_ms / 1e3),
            opt_s(a.first_echo_ms),
            opt_s(a.daemon_ms),
            opt_s(a.import_ms),
            reason(a),
            chapter,
        ]);
    }
    out.push_str(&t.render());

    out.push_str("\nWhy, and what to do:\n");
    for (i, a) in r.results.iter().enumerate() {
        if let Some(c) = &a.cause {
            out.push_str(&format!("  #{} {}: while trying to {}, {}.\n     fix: {}\n     engine said: {}\n", i + 1, a.id, c.step, c.reason, c.fix, c.evidence));
        }
    }
    out.push_str("\nSecurity cost of what works:\n");
    for (i, a) in r.results.iter().enumerate() {
        if let Some(s) = &a.security {
            out.push_str(&format!("  #{} {}: {s}\n", i + 1, a.id));
        }
    }

    out.push_str("\nNesting cost (engines): outer container start vs inner container start\n");
    let mut n = Table::new(["approach", "outer start ms", "inner start ms", "inner ÷ outer"]);
    for a in r.results.iter().filter(|a| a.success) {
        let (o, i) = (a.outer_start_ms.unwrap_or(0.0), a.inner_start_ms.unwrap_or(0.0));
        n.row([a.id.clone(), ms(o), ms(i), if o > 0.0 { format!("{:.2}", i / o) } else { "-".into() }]);
    }
    out.push_str(&n.render());

    if !r.native.is_empty() {
        out.push_str("\nNative-in-native: `echo ok` through N nested `probe run`s\n");
        let mut t = Table::new(["depth", "result", "median ms", "level cost ms", "reason"]);
        for l in &r.native {
            t.row([
                l.depth.to_string(),
                if l.success { "Success".into() } else { "Error".into() },
                l.median_ms.map(ms).unwrap_or_else(|| "-".into()),
                l.level_cost_ms.map(ms).unwrap_or_else(|| "-".into()),
                l.cause.as_ref().map(|c| format!("{} ({} → {}); fix: {}", c.reason, c.syscall, c.errno, c.fix)).unwrap_or_else(|| "—".into()),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}
