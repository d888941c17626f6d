//! `probe memory`: Experiment 2 (`free -m` with N idle containers, against its measured
//! noise) and, with --cgroup, Experiment 8 (exact memory per container from its cgroup, and
//! the engine's processes).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::emit::{emit, finish, row, save, Format};
use crate::ground::RuntimeKind;
use crate::experiment::common::fleets::FleetPlan;
use crate::experiment::memory::{self, cgroup as memory_cgroup};
use crate::output::results;
use crate::output::seed_csv::{self, MetricRow};
use crate::output::table::Table;

#[derive(Args, Debug)]
pub struct MemoryArgs {
    /// Experiment 8: read each container's own cgroup and the engine's processes (exact),
    /// instead of `free -m` (Experiment 2).
    #[arg(long)]
    pub cgroup: bool,
    /// Runtimes, comma-separated, from native, docker, podman, podman-rootless. Default:
    /// each of them that works here (the others are listed as skipped, with why).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub runtimes: Option<Vec<RuntimeKind>>,
    /// Container counts [default: 1,5,10,20; with --cgroup 0,1,3,5].
    #[arg(long, value_delimiter = ',', value_name = "LIST", value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub counts: Option<Vec<u32>>,
    /// Experiment 2: idle reads of `free` that measure its noise, taken before the batches
    /// and again after them [default: 10 each time].
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub noise_reads: Option<u32>,
    /// Experiment 2: milliseconds to wait after the last start before reading [default: 3000].
    #[arg(long, value_name = "MS")]
    pub settle: Option<u64>,
    /// Experiment 8: warm-up containers started and removed before measuring [default: 1].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Experiment 8: longest wait, in ms, for the containers' memory to stop moving [default: 10000].
    #[arg(long, value_name = "MS")]
    pub settle_timeout: Option<u64>,
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

pub fn run(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    results::check_writable(&a.results)?;
    crate::sys::signals::install();
    if a.cgroup {
        run_cgroup(a)
    } else {
        run_free(a)
    }
}

fn run_free(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    let d = memory::probe().defaults;
    let report = memory::run(memory::Config {
        fleet: FleetPlan::new(a.runtimes.clone(), &d.runtimes, a.counts.clone().unwrap_or(d.counts), d.command, a.quiet),
        noise_reads: a.noise_reads.unwrap_or(d.noise_reads),
        noise_interval: Duration::from_millis(d.noise_interval_ms),
        settle: Duration::from_millis(a.settle.unwrap_or(d.settle_ms)),
        pause: Duration::from_millis(d.pause_ms),
    })?;
    let csv = seed_csv::metric_csv(&free_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.results, "memory", &[("memory.csv", &csv), ("memory.json", &json)])?;
    emit(a.format, &render_free(&report), &csv, &json);
    finish(&[], &report.skipped, &dir)
}

fn run_cgroup(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    let d = memory_cgroup::probe().defaults;
    let mut counts = a.counts.clone().unwrap_or(d.counts);
    counts.sort_unstable();
    counts.dedup();
    anyhow::ensure!(counts.len() >= 2, "--counts needs at least two different counts to fit a line");
    let report = memory_cgroup::run(memory_cgroup::Config {
        fleet: FleetPlan::new(a.runtimes.clone(), &d.runtimes, counts, d.command, a.quiet),
        warmup: a.warmup.unwrap_or(d.warmup),
        settle_timeout: Duration::from_millis(a.settle_timeout.unwrap_or(d.settle_timeout_ms)),
    })?;
    let csv = seed_csv::metric_csv(&cgroup_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.results, "memory-cgroup", &[("memory_cgroup.csv", &csv), ("memory_cgroup.json", &json)])?;
    emit(a.format, &render_cgroup(&report), &csv, &json);
    finish(&report.warnings, &report.skipped, &dir)
}

/// The chapter's rows (`baseline,used_mb`, `<rt>,<N>_containers_mb`, `<rt>,overhead_mb`),
/// one pair per count, plus the noise the chapter did not measure.
fn free_rows(r: &memory::Report) -> Vec<MetricRow> {
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

fn render_free(r: &memory::Report) -> String {
    let s = &r.noise.summary_mb;
    let mut out = format!(
        "Experiment 2: `free -m` used before and after N idle containers (`{}`)\n\
         Noise: {} idle reads (before and after the batches) span {:.1} MB (σ {:.2} MB); a delta inside that band says nothing.\n\n",
        r.command.join(" "),
        r.noise.reads_kb.len(),
        r.noise.band_mb(),
        s.sd
    );
    let mut t = Table::new(["runtime", "N", "before MB", "after MB", "Δ MB", "MB/container", "vs noise", "chapter Δ MB"]);
    for rt in &r.results {
        for b in &rt.batches {
            let chapter = r.reference.overhead_mb.get(rt.runtime.name()).and_then(|m| m.get(&b.count.to_string()));
            t.row([
                rt.runtime.to_string(),
                b.count.to_string(),
                b.baseline_mb.to_string(),
                b.used_mb.to_string(),
                format!("{:+}", b.delta_mb),
                format!("{:.1}", b.delta_mb as f64 / b.count.max(1) as f64),
                if b.below_noise { "below noise".into() } else { "above noise".into() },
                chapter.map(|v| format!("{v:+}")).unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    out.push_str(&t.render());
    out.push_str("\n`probe memory --cgroup` measures the same containers exactly (Experiment 8).\n");
    out
}

fn kb(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "n/a".into())
}

fn cgroup_rows(r: &memory_cgroup::Report) -> Vec<MetricRow> {
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

fn render_cgroup(r: &memory_cgroup::Report) -> String {
    let mut out = format!(
        "Experiment 8: memory per idle container (`{}`) at {} containers, fitted per runtime\n\
         KB/container = slope of the line through (count, KB). engine = the processes that exist per container\n\
         (shim, conmon, probe run, fuse-overlayfs); daemons = shared ones (dockerd, containerd, catatonit), fixed\n\
         cost = intercept; a daemon's slope moves with anyone's use of the engine (see its r²).\n\n",
        r.command.join(" "),
        r.counts.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    );
    let mut t = Table::new([
        "runtime",
        "cgroup KB/cont",
        "r²",
        "counter KB/cont",
        "procs PSS KB/cont",
        "engine PSS KB/cont",
        "engine r²",
        "daemons MB",
        "daemons KB/cont (r²)",
        "total KB/cont",
        "chapter KB/cont",
    ]);
    for rt in &r.results {
        let f = &rt.fits;
        // podman and native have no daemon: an all-zero line, shown as "none".
        let daemons = f.daemon_pss.filter(|d| d.intercept != 0.0 || d.slope != 0.0);
        let chapter = r.reference.kb_per_container.get(rt.runtime.name()).and_then(|m| {
            let v: Vec<f64> = m.values().copied().collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        });
        t.row([
            rt.runtime.to_string(),
            kb(f.cgroup.map(|f| f.slope)),
            f.per_container().map(|f| format!("{:.3}", f.r2)).unwrap_or_default(),
            kb(f.usage.map(|f| f.slope)),
            kb(f.container_pss.map(|f| f.slope)),
            kb(f.engine_pss.map(|f| f.slope)),
            f.engine_pss.map(|f| format!("{:.3}", f.r2)).unwrap_or_default(),
            daemons.map(|f| format!("{:.1}", f.intercept / 1024.0)).unwrap_or_else(|| "none".into()),
            daemons.map(|f| format!("{:.0} ({:.2})", f.slope, f.r2)).unwrap_or_else(|| "none".into()),
            kb(f.total.map(|f| f.slope)),
            chapter.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&t.render());
    for rt in r.results.iter().filter(|rt| rt.cgroup_na.is_some()) {
        out.push_str(&format!("{}: cgroup n/a — {}\n", rt.runtime, rt.cgroup_na.as_deref().unwrap_or_default()));
    }
    out.push_str("\nEngine processes, RSS / PSS in MB, by count (the chapter's dockerd and conmon rows):\n");
    let mut t = Table::new(["runtime", "process", "count", "RSS MB", "PSS MB"]);
    for rt in &r.results {
        for p in &rt.points {
            for (name, m) in p.snapshot.engine_by_name() {
                t.row([
                    rt.runtime.to_string(),
                    name,
                    p.count.to_string(),
                    format!("{:.1}", m.rss_kb as f64 / 1024.0),
                    format!("{:.1}", m.pss_kb as f64 / 1024.0),
                ]);
            }
        }
    }
    out.push_str(&t.render());
    out
}
