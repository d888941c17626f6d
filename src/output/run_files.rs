//! What each experiment writes into its run folder besides its JSON: the chapter's CSV rows
//! (schemas in seed_csv.rs) and startup's own files (startup.json, phases.csv); and the
//! folder a `probe all` run starts in.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::experiment::all;

use crate::experiment::cpu;
use crate::experiment::memory::{self, cgroup as memory_cgroup};
use crate::experiment::startup::command::Outcome;
use crate::experiment::startup;
use crate::experiment::{io, nested, scale};
use crate::ground::RuntimeKind;
use crate::measure::runner::Stopped;
use crate::output::results::RunDir;
use crate::output::seed_csv::{MetricRow, ScaleRow};

pub fn row(runtime: &str, metric: impl Into<String>, value: impl ToString) -> MetricRow {
    MetricRow {
        runtime: runtime.into(),
        metric: metric.into(),
        value: value.to_string(),
    }
}

/// The last row of a run that stopped: `RUNTIME,incomplete_at_rep,N`, numeric like every
/// other value, so the chapter's scripts still read the file.
fn stopped_row(s: &Stopped) -> MetricRow {
    row(s.runtime.name(), if s.warmup { "incomplete_at_warmup" } else { "incomplete_at_rep" }, s.rep)
}

/// One row per rep, then where a stopped run stopped.
pub fn startup_rows(report: &startup::Report) -> Vec<MetricRow> {
    let stopped = report.incomplete.iter().map(stopped_row);
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
        .chain(stopped)
        .collect()
}


/// startup.json, serialized straight from the structs: a json! Value tree of thousands of
/// reps costs tens of MB (measured: 90 MB at 1500 native reps) for a file of a few.
pub fn startup_json(o: &Outcome) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec_pretty(&o.saved)?)
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
    overhead_us: Option<f64>,
}

pub fn phases_csv(report: &startup::Report) -> anyhow::Result<Vec<u8>> {
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
                    overhead_us: (r.runtime == RuntimeKind::Native).then_some(p.overhead_ns as f64 / 1e3),
                })?;
            }
        }
    }
    Ok(w.into_inner()?)
}

/// The chapter's rows (`baseline,used_mb`, `<rt>,<N>_containers_mb`, `<rt>,overhead_mb`),
/// one pair per count, plus the noise the chapter did not measure.
pub fn memory_rows(r: &memory::Report) -> Vec<MetricRow> {
    let s = &r.noise.summary_mb;
    let mut rows = vec![
        row("baseline", "used_mb", r.noise.reads_kb[0] / 1024),
        row("noise", "min_mb", format!("{:.1}", s.min)),
        row("noise", "max_mb", format!("{:.1}", s.max)),
        row("noise", "sd_mb", format!("{:.2}", s.sd)),
    ];
    for rt in &r.results {
        for b in &rt.batches {
            let name = rt.runtime.name();
            rows.push(row(name, format!("{}_containers_mb", b.count), b.used_mb));
            rows.push(row(name, format!("{}_overhead_mb", b.count), b.delta_mb));
            rows.push(row(name, format!("{}_below_noise", b.count), b.below_noise));
        }
    }
    rows
}

pub fn memory_cgroup_rows(r: &memory_cgroup::Report) -> Vec<MetricRow> {
    let mut rows = Vec::new();
    for rt in &r.results {
        let name = rt.runtime.name();
        for p in &rt.points {
            let s = &p.snapshot;
            let n = p.count;
            if let Some(b) = s.cgroup_bytes() {
                rows.push(row(name, format!("{n}_containers_cgroup_kb"), b / 1024));
            }
            if let Some(b) = s.usage_bytes() {
                rows.push(row(name, format!("{n}_containers_usage_kb"), b / 1024));
            }
            rows.push(row(name, format!("{n}_containers_pss_kb"), s.container_pss_kb()));
            rows.push(row(name, format!("{n}_containers_engine_rss_kb"), s.engine_total().rss_kb));
            rows.push(row(name, format!("{n}_containers_engine_pss_kb"), s.engine_total().pss_kb));
            for (proc_name, m) in s.engine_by_name() {
                rows.push(row(name, format!("{n}_containers_{proc_name}_rss_kb"), m.rss_kb));
                rows.push(row(name, format!("{n}_containers_{proc_name}_pss_kb"), m.pss_kb));
            }
        }
        let f = &rt.fits;
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into());
        rows.push(row(name, "kb_per_container", fmt(f.per_container().map(|f| f.slope))));
        rows.push(row(name, "kb_per_container_r2", fmt(f.per_container().map(|f| f.r2))));
        rows.push(row(name, "usage_kb_per_container", fmt(f.usage.map(|f| f.slope))));
        rows.push(row(name, "engine_kb_per_container", fmt(f.engine_pss.map(|f| f.slope))));
        rows.push(row(name, "engine_kb_per_container_r2", fmt(f.engine_pss.map(|f| f.r2))));
        rows.push(row(name, "daemon_fixed_kb", fmt(f.daemon_pss.map(|f| f.intercept))));
        rows.push(row(name, "daemon_kb_per_container", fmt(f.daemon_pss.map(|f| f.slope))));
        rows.push(row(name, "total_kb_per_container", fmt(f.total.map(|f| f.slope))));
    }
    rows
}

/// The chapter's `cpu_seconds` (wall time, as `time` printed it) per rep, plus the CPU time
/// of the container's processes and what lies outside it; then where a stopped run stopped.
pub fn cpu_rows(report: &cpu::Report) -> Vec<MetricRow> {
    let mut out = Vec::new();
    for r in &report.results {
        let name = r.runtime.name();
        for rep in &r.reps {
            out.push(row(name, "cpu_seconds", format!("{:.3}", rep.wall_ms / 1000.0)));
            if let Some(c) = rep.cpu_ms {
                out.push(row(name, "cpu_time_seconds", format!("{:.3}", c / 1000.0)));
                out.push(row(name, "outside_cpu_seconds", format!("{:.3}", (rep.wall_ms - c) / 1000.0)));
            }
        }
    }
    out.extend(report.incomplete.iter().map(stopped_row));
    out
}

/// The chapter's rows (`docker,io_overlay,<MB/s>`, write + sync like dd conv=fdatasync), then
/// the split figures under the same metric name with a suffix; then where a stopped run stopped.
pub fn io_rows(report: &io::Report) -> Vec<MetricRow> {
    let mut rows = Vec::new();
    for r in &report.results {
        for rep in &r.reps {
            let mut row = |suffix: &str, value: String| {
                rows.push(MetricRow { runtime: r.runtime.to_string(), metric: format!("{}{suffix}", r.metric), value })
            };
            row("", format!("{:.1}", rep.total_mbps()));
            row("_write_mbps", format!("{:.1}", rep.write_mbps()));
            row("_sync_ms", format!("{:.3}", rep.sync_ms()));
            if let Some(share) = rep.device_share() {
                row("_device_pct", format!("{:.1}", share * 100.0));
            }
            row("_durable", rep.verdict.outcome.csv_value().into());
            if let Some(c) = &rep.crash {
                row("_crash_survived", u8::from(c.complete).to_string());
            }
        }
    }
    rows.extend(report.incomplete.iter().map(stopped_row));
    rows
}

fn secs(ms: f64) -> String {
    format!("{:.3}", ms / 1e3)
}

/// The chapter's schema: runtime,metric,value. Experiment 5's two rows keep the chapter's
/// `nested_seconds` metric; every approach also gets `<id>_*` rows.
pub fn nested_rows(r: &nested::Report) -> Vec<MetricRow> {
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

/// scale.csv: one row per runtime and count.
pub fn scale_rows(report: &scale::Report) -> Vec<ScaleRow> {
    report
        .results
        .iter()
        .flat_map(|r| r.steps.iter().map(move |s| ScaleRow { runtime: r.runtime.to_string(), count: s.count, time_seconds: s.total_s, memory_mb: s.memory_mb }))
        .collect()
}

/// A new `probe all` run folder holding the options it starts with. Marked `latest` now, not
/// at the end: an interrupted run is then `results/latest`, the folder `--resume` wants.
pub fn start_all(results: &Path, options: all::Options) -> anyhow::Result<PathBuf> {
    let dir = RunDir::create(results, "all")?;
    dir.write_atomic(all::OPTIONS, &serde_json::to_vec_pretty(&options)?)?;
    dir.mark_latest()?;
    Ok(dir.path().to_path_buf())
}
