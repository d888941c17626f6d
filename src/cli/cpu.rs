//! `probe cpu`: Experiment 3 (the busy loop in a new container per run) and, with --exec,
//! Experiment 7 (the loop exec'd into a running container), against bare.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::emit::{emit, finish, row, save, Format};
use crate::ground::RuntimeKind;
use crate::experiment::cpu::{self, RuntimeCpu};
use crate::experiment::common::fleets;
use crate::experiment::cpu::exec as cpu_exec;
use crate::output::seed_csv::{self, MetricRow};
use crate::output::table::Table;

#[derive(Args, Debug)]
pub struct CpuArgs {
    /// Experiment 7: exec the loop into a container already running (docker/podman exec,
    /// setns for native) instead of starting one per run (Experiment 3).
    #[arg(long)]
    pub exec: bool,
    /// Runtimes, comma-separated, from bare, native, docker, podman, podman-rootless.
    /// Default: each of them that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Iterations of the shell loop [default: 10000000; with --exec 1000000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Measured runs per runtime [default: 3; with --exec 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: Option<u32>,
    /// Unmeasured runs per runtime first [default: 0; with --exec 1].
    #[arg(long)]
    pub warmup: Option<u32>,
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

pub fn run(a: CpuArgs) -> anyhow::Result<ExitCode> {
    crate::output::results::check_writable(&a.results)?;
    crate::sys::signals::install();
    let explicit = a.runtimes.is_some();
    let (report, label, experiment, how) = if a.exec {
        let d = cpu_exec::probe().defaults;
        let report = cpu_exec::run(cpu_exec::Config {
            runtimes: a.runtimes.clone().unwrap_or_else(|| fleets::parse_kinds(&d.runtimes)),
            explicit,
            count: a.count.unwrap_or(d.count),
            reps: a.reps.unwrap_or(d.reps),
            warmup: a.warmup.unwrap_or(d.warmup),
            settle: Duration::from_millis(d.settle_ms),
            quiet: a.quiet,
        })?;
        (report, "cpu_exec", "Experiment 7", "exec'd into a running container")
    } else {
        let d = cpu::probe().defaults;
        let report = cpu::run(cpu::Config {
            runtimes: a.runtimes.clone().unwrap_or_else(|| fleets::parse_kinds(&d.runtimes)),
            explicit,
            count: a.count.unwrap_or(d.count),
            reps: a.reps.unwrap_or(d.reps),
            warmup: a.warmup.unwrap_or(d.warmup),
            quiet: a.quiet,
        })?;
        (report, "cpu", "Experiment 3", "in a new container per run")
    };
    let csv = seed_csv::metric_csv(&rows(&report.results))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let (csv_name, json_name) = (format!("{label}.csv"), format!("{label}.json"));
    let dir = save(&a.results, report.experiment, &[(&csv_name, &csv), (&json_name, &json)])?;
    let title = format!("{experiment}: `{}` {how}, {} reps after {} warmup", report.argv[2], report.reps, report.warmup);
    emit(a.format, &render(&title, &report.results, report.pmu_na.as_deref(), &report.reference.overhead_pct), &csv, &json);
    finish(&report.warnings, &report.skipped, &dir)
}

/// The chapter's `cpu_seconds` (wall time, as `time` printed it) per rep, plus the CPU time
/// of the container's processes and what lies outside it.
fn rows(results: &[RuntimeCpu]) -> Vec<MetricRow> {
    let mut out = Vec::new();
    for r in results {
        let name = r.runtime.name();
        for rep in &r.reps {
            out.push(row(name, "cpu_seconds", format!("{:.3}", rep.wall_ms / 1000.0)));
            if let Some(c) = rep.cpu_ms {
                out.push(row(name, "cpu_time_seconds", format!("{:.3}", c / 1000.0)));
                out.push(row(name, "outside_cpu_seconds", format!("{:.3}", (rep.wall_ms - c) / 1000.0)));
            }
        }
    }
    out
}

fn secs(mean_ms: f64, sd_ms: f64) -> String {
    format!("{:.3} ± {:.3}", mean_ms / 1000.0, sd_ms / 1000.0)
}

fn render(title: &str, results: &[RuntimeCpu], pmu_na: Option<&str>, chapter_pct: &std::collections::BTreeMap<String, f64>) -> String {
    let mut out = format!("{title}\nwall s and cpu s: mean ± σ of the reps; noise band: 95 % interval of the difference of the means (Welch's standard error).\n\n");
    let bare = results.iter().find(|r| r.runtime == RuntimeKind::Bare);
    let mut t = Table::new(["runtime", "wall s", "× bare", "Δ vs bare", "noise band", "verdict", "cpu s", "cpu × bare", "wall−cpu ms", "chapter Δ"]);
    for r in results {
        let w = r.wall();
        let c = r.cpu();
        let vs = bare.filter(|b| b.runtime != r.runtime).map(|b| cpu::vs_bare(&w, &b.wall()));
        let cpu_vs = bare.filter(|b| b.runtime != r.runtime).and_then(|b| Some(cpu::vs_bare(c.as_ref()?, &b.cpu()?)));
        t.row([
            r.runtime.to_string(),
            secs(w.mean, w.sd),
            vs.map(|v| v.ratio.show(|x| format!("{x:.3}"))).unwrap_or_else(|| "1".into()),
            vs.map(|v| format!("{:+.0} ms ({:+.1}%)", v.delta_ms, v.delta_pct)).unwrap_or_else(|| "-".into()),
            vs.and_then(|v| v.noise_ms).map(|n| format!("±{n:.0} ms")).unwrap_or_else(|| "-".into()),
            vs.map(|v| v.verdict()).unwrap_or_else(|| "-".into()),
            c.as_ref().map(|c| secs(c.mean, c.sd)).unwrap_or_else(|| "n/a".into()),
            cpu_vs.map(|v| format!("{:.3}{}", v.ratio.value, if v.within_noise { " (within noise)" } else { "" })).unwrap_or_else(|| "-".into()),
            r.outside().map(|o| format!("{:.0}", o.mean)).unwrap_or_else(|| "n/a".into()),
            chapter_pct.get(r.runtime.name()).map(|p| format!("{p:+.1}%")).unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&t.render());
    let within: Vec<String> = results
        .iter()
        .filter(|r| r.runtime != RuntimeKind::Bare)
        .filter_map(|r| Some((r.runtime, cpu::vs_bare(&r.wall(), &bare?.wall()))))
        .map(|(k, v)| format!("{k} {}", if v.within_noise { format!("is not told apart from bare: {}", v.verdict()) } else { "differs from bare by more than the noise".into() }))
        .collect();
    if !within.is_empty() {
        out.push_str(&format!("\nWall time: {}.\n", within.join("; ")));
    }
    let cpu_within: Vec<String> = results
        .iter()
        .filter(|r| r.runtime != RuntimeKind::Bare)
        .filter_map(|r| Some((r.runtime, cpu::vs_bare(&r.cpu()?, &bare?.cpu()?))))
        .map(|(k, v)| format!("{k} {:+.1}% ({})", v.delta_pct, v.verdict()))
        .collect();
    if !cpu_within.is_empty() {
        out.push_str(&format!("CPU time vs bare: {}.\n", cpu_within.join("; ")));
    }
    for r in results {
        if let Some(na) = &r.cpu_na {
            out.push_str(&format!("{}: cpu n/a — {na}\n", r.runtime));
        }
    }
    out.push_str(&format!("cycles/instructions: {}\n", pmu_na.unwrap_or("counted for bare and native (see the JSON)")));
    out
}
