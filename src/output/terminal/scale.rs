//! `probe scale` on the terminal: time and memory per container at each count, and whether
//! they grow linearly.

use crate::experiment::scale;
use crate::output::table::Table;

pub fn render(r: &scale::Report) -> String {
    let mut out = format!(
        "Experiment 6: N idle containers (`{}`) started one after another\n\
         memory = the containers' own cgroups (exact) + PSS of the engine processes that exist for them (shims, conmons,\n\
         probe runs, fuse-overlayfs); the daemons' growth and free -m Δ are shown for comparison.\n\n",
        r.fleet.command.join(" ")
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
