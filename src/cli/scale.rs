//! `probe scale`: Experiment 6, N idle containers started one after another, time and
//! exact memory per container as N grows.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::emit::{emit, finish, save, Format};
use crate::ground::RuntimeKind;
use crate::experiment::common::fleets::FleetPlan;
use crate::experiment::scale;
use crate::output::seed_csv::{self, ScaleRow};
use crate::output::table::Table;

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Runtimes, comma-separated, from native, docker, podman, podman-rootless. Default:
    /// each of them that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Container counts [default: 10,20,50]; up to 500 for engines and 1000 for native.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub counts: Option<Vec<u32>>,
    /// What to print on stdout; the run folder always gets CSV and JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Folder that receives a new run folder (and a `latest` link) per run.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(a: ScaleArgs) -> anyhow::Result<ExitCode> {
    let d = scale::probe().defaults;
    let counts = a.counts.clone().unwrap_or_else(|| d.counts.clone());
    let fleet = FleetPlan::new(a.runtimes.clone(), &d.runtimes, counts, d.command.clone(), a.quiet);
    scale::check_counts(&fleet.runtimes, &fleet.counts, &d)?;
    crate::output::results::check_writable(&a.results)?;
    crate::sys::signals::install();
    let report = scale::run(scale::Config {
        fleet,
        nonlinear_ratio: d.nonlinear_ratio,
        settle_timeout: Duration::from_millis(d.settle_timeout_ms),
        pause: Duration::from_millis(d.pause_ms),
    })?;
    let rows: Vec<ScaleRow> = report
        .results
        .iter()
        .flat_map(|r| r.steps.iter().map(move |s| ScaleRow { runtime: r.runtime.to_string(), count: s.count, time_seconds: s.total_s, memory_mb: s.memory_mb }))
        .collect();
    let csv = seed_csv::scale_csv(&rows)?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.results, "scale", &[("scale.csv", &csv), ("scale.json", &json)])?;
    emit(a.format, &render(&report), &csv, &json);
    finish(&report.warnings, &report.skipped, &dir)
}

fn render(r: &scale::Report) -> String {
    let mut out = format!(
        "Experiment 6: N idle containers (`{}`) started one after another\n\
         memory = the containers' own cgroups (exact) + PSS of the engine processes that exist for them (shims, conmons,\n\
         probe runs, fuse-overlayfs); the daemons' growth and free -m Δ are shown for comparison.\n\n",
        r.command.join(" ")
    );
    let mut t = Table::new(["runtime", "N", "total s", "ms/cont", "p95 ms", "MB total", "MB/cont", "engine MB", "daemons Δ MB", "free -m Δ MB", "teardown s", "chapter s", "chapter MB"]);
    for rt in &r.results {
        for s in &rt.steps {
            let chapter = |m: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>, prec: usize| {
                m.get(rt.runtime.name()).and_then(|c| c.get(&s.count.to_string())).map(|v| format!("{v:.prec$}")).unwrap_or_else(|| "-".into())
            };
            t.row([
                rt.runtime.to_string(),
                s.count.to_string(),
                format!("{:.2}", s.total_s),
                format!("{:.1}", s.per_container_ms()),
                format!("{:.1}", s.start_summary().p95),
                format!("{:.1}", s.memory_mb),
                format!("{:.2}", s.per_container_mb()),
                format!("{:.1}", s.engine_delta_mb),
                format!("{:+.1}", s.daemon_delta_mb),
                format!("{:+.0}", s.free_delta_mb),
                format!("{:.2}", s.teardown_s),
                chapter(&r.reference.time_s, 2),
                chapter(&r.reference.memory_mb, 0),
            ]);
        }
    }
    out.push_str(&t.render());
    out.push('\n');
    for rt in &r.results {
        if let Some(g) = rt.growth {
            let verdict = |flag: bool| if flag { "NOT linear" } else { "linear" };
            out.push_str(&format!(
                "{}: per-container time {:.2}× and memory {:.2}× from the smallest to the largest count — time {}, memory {} (limit {}×)\n",
                rt.runtime,
                g.time_ratio,
                g.memory_ratio,
                verdict(g.time_nonlinear),
                verdict(g.memory_nonlinear),
                r.nonlinear_ratio
            ));
        }
        if let Some(na) = &rt.cgroup_na {
            out.push_str(&format!("{}: cgroup n/a, memory is its processes' PSS — {na}\n", rt.runtime));
        }
    }
    out
}
