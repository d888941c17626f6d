//! `probe cpu` on the terminal: wall and CPU time per runtime against bare, with the noise
//! band that decides whether a difference means anything.

use crate::experiment::cpu::{self, RuntimeCpu};
use crate::ground::RuntimeKind;
use crate::output::table::Table;

/// Experiment 3's table, or with `exec` Experiment 7's.
pub fn render(report: &cpu::Report, exec: bool) -> String {
    let (experiment, how) = if exec {
        ("Experiment 7", "exec'd into a running container")
    } else {
        ("Experiment 3", "in a new container per run")
    };
    let title = format!("{experiment}: `{}` {how}, {} reps after {} warmup", report.argv[2], report.reps, report.warmup);
    table(&title, &report.results, report.pmu_na.as_deref(), &report.reference.overhead_pct)
}

fn secs(mean_ms: f64, sd_ms: f64) -> String {
    format!("{:.3} ± {:.3}", mean_ms / 1000.0, sd_ms / 1000.0)
}

fn table(title: &str, results: &[RuntimeCpu], pmu_na: Option<&str>, chapter_pct: &std::collections::BTreeMap<String, f64>) -> String {
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
