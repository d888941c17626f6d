//! `probe memory` on the terminal: Experiment 2's `free -m` table against its noise, and
//! Experiment 8's per-container fits with the engine's processes.

use crate::experiment::memory::{self, cgroup as memory_cgroup};
use crate::output::table::Table;

pub fn render_free(r: &memory::Report) -> String {
    let s = &r.noise.summary_mb;
    let mut out = format!(
        "Experiment 2: `free -m` used before and after N idle containers (`{}`)\n\
         Noise: {} idle reads (before and after the batches) span {:.1} MB (σ {:.2} MB); a delta inside that band says nothing.\n\n",
        r.fleet.command.join(" "),
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

pub fn render_cgroup(r: &memory_cgroup::Report) -> String {
    let mut out = format!(
        "Experiment 8: memory per idle container (`{}`) at {} containers, fitted per runtime\n\
         KB/container = slope of the line through (count, KB). engine = the processes that exist per container\n\
         (shim, conmon, probe run, fuse-overlayfs); daemons = shared ones (dockerd, containerd, catatonit), fixed\n\
         cost = intercept; a daemon's slope moves with anyone's use of the engine (see its r²).\n\n",
        r.fleet.command.join(" "),
        r.fleet.counts.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
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
