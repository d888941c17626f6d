//! Experiments 3 and 7: the chapter's busy loop via `run` (startup included) and via `exec`
//! into a running container (pure CPU), and the overhead over bare of each, side by side.

use std::path::Path;

use anyhow::Result;

use super::{sig, Builder, RatioKind, SummaryRow};
use crate::experiment::all::Step;
use crate::output::report::chart::{nth_color, runtime_color, Body, Chart, Key, Row, Rows};
use crate::output::report::doc::Table;
use crate::experiment::cpu::Report;
use crate::ground::RuntimeKind;
use crate::output::report::load::{self, stem};
use crate::ground::stats;

/// Each runtime's reps, in seconds.
fn seconds_per_runtime(r: &Report) -> Vec<(RuntimeKind, Vec<f64>)> {
    r.results
        .iter()
        .map(|x| (x.runtime, x.reps.iter().map(|r| r.wall_ms / 1000.0).collect()))
        .collect()
}

/// Overhead over bare, in %, from medians; None without bare.
fn overhead_over_bare(r: &Report) -> Vec<(RuntimeKind, f64)> {
    let s = seconds_per_runtime(r);
    let Some(bare) = s
        .iter()
        .find(|(rt, _)| *rt == RuntimeKind::Bare)
        .map(|(_, v)| stats::median(v))
    else {
        return Vec::new();
    };
    s.iter()
        .filter(|(rt, _)| *rt != RuntimeKind::Bare)
        .map(|(rt, v)| (*rt, (stats::median(v) / bare - 1.0) * 100.0))
        .collect()
}

pub fn add(b: &mut Builder, dir: &Path, step: &Step) -> Result<()> {
    let exec = step.id == "cpu-exec";
    let r: Report = load::json(dir, &format!("{}.json", stem(step)))?;
    b.saw(&r.header.host, &r.reference.machine);
    let how = if exec {
        b.t(
            "`exec` into a container that is already running: no startup, pure CPU",
            "`exec` dentro de un contenedor que ya está corriendo: sin arranque, CPU puro",
        )
    } else {
        b.t("a new container per run (`run`): startup included, as the chapter measured", "un contenedor nuevo por corrida (`run`): incluye el arranque, como lo midió el capítulo")
    };
    b.para(
        format!("A shell loop counting to {} ({} reps per runtime), via {how}. Wall time, in seconds.", r.count, r.reps),
        format!("Un loop de shell que cuenta hasta {} ({} repeticiones por runtime), vía {how}. Tiempo total, en segundos.", r.count, r.reps),
    );
    let seconds = seconds_per_runtime(&r);
    let overhead = overhead_over_bare(&r);
    let mut t = Table::new([
        "runtime".to_string(),
        b.t("median s", "mediana s"),
        b.t("range s", "rango s"),
        b.t("overhead here", "overhead aquí"),
        b.t("overhead chapter", "overhead capítulo"),
    ]);
    let mut rows = Vec::new();
    for (rt, v) in &seconds {
        let Some(s) = stats::summarize(v) else {
            continue;
        };
        let here = overhead
            .iter()
            .find(|(x, _)| x == rt)
            .map(|(_, o)| format!("{o:+.1}%"))
            .unwrap_or_else(|| "—".into());
        let chapter = r
            .reference
            .overhead_pct
            .get(rt.name())
            .map(|o| format!("{o:+.1}%"))
            .unwrap_or_else(|| "—".into());
        t.row([
            rt.to_string(),
            sig(s.median),
            format!("{}–{}", sig(s.min), sig(s.max)),
            here,
            chapter,
        ]);
        rows.extend(Row::measured(rt.to_string(), v, runtime_color(rt.name()), |m| {
            format!("{} s", sig(m))
        }));
    }
    let (name, what) = if exec {
        ("cpu-exec", b.t("via exec", "vía exec"))
    } else {
        ("cpu", b.t("via run", "vía run"))
    };
    b.chart(Chart {
        name: name.into(),
        title: b.t(
            format!(
                "CPU: seconds to count to {} {what}, median, range and each rep",
                r.count
            ),
            format!(
                "CPU: segundos para contar hasta {} {what}, mediana, rango y cada repetición",
                r.count
            ),
        ),
        body: Body::Rows(Rows {
            axis: b.t("seconds (less is better)", "segundos (menos es mejor)"),
            rows,
            band: None,
            legend: Vec::new(),
        }),
    });
    b.table(t);
    let mut cells = Vec::new();
    for (rt, v) in &seconds {
        let o = overhead
            .iter()
            .find(|(x, _)| x == rt)
            .map(|(_, o)| format!(" ({o:+.0}%)"))
            .unwrap_or_default();
        cells.push((rt.to_string(), format!("~{} s{o}", sig(stats::median(v)))));
    }
    for (rt, o) in &overhead {
        let label = if exec {
            b.t(
                format!("CPU exec overhead {rt}"),
                format!("overhead CPU exec {rt}"),
            )
        } else {
            b.t(
                format!("CPU run overhead {rt}"),
                format!("overhead CPU run {rt}"),
            )
        };
        b.ratio(
            label,
            *o,
            r.reference.overhead_pct.get(rt.name()).copied(),
            RatioKind::Percent,
        );
    }
    let worst = overhead.iter().max_by(|a, c| a.1.total_cmp(&c.1));
    let verdict = match worst {
        Some((rt, o)) if *o < 5.0 => b.t(
            format!("every runtime within 5% of bare (worst {rt} {o:+.1}%)"),
            format!("todos a menos de 5% de bare (el peor, {rt}: {o:+.1}%)"),
        ),
        Some((rt, o)) => b.t(
            format!("largest overhead {rt} {o:+.1}%"),
            format!("mayor overhead {rt}: {o:+.1}%"),
        ),
        None => String::new(),
    };
    b.summary(SummaryRow {
        aspect: if exec {
            b.t("CPU (exec)", "CPU (exec)")
        } else {
            b.t("CPU (run)", "CPU (run)")
        },
        cells,
        verdict,
    });
    if exec {
        if let Ok(run) = load::json::<Report>(&dir.with_file_name("cpu"), "cpu.json") {
            run_vs_exec(b, &overhead_over_bare(&run), &overhead);
        }
    }
    Ok(())
}

/// The chapter's comparison of Exp 3 and Exp 7: the overhead that is startup disappears
/// with exec, what is left is the container's cost to pure CPU.
fn run_vs_exec(b: &mut Builder, run: &[(RuntimeKind, f64)], exec: &[(RuntimeKind, f64)]) {
    let mut rows = Vec::new();
    for (rt, e) in exec {
        if !rows.is_empty() {
            rows.push(Row::gap());
        }
        if let Some((_, o)) = run.iter().find(|(x, _)| x == rt) {
            rows.push(Row::bar(
                format!("{rt} run"),
                *o,
                nth_color(0),
                format!("{o:+.1}%"),
            ));
        }
        rows.push(Row::bar(
            format!("{rt} exec"),
            *e,
            nth_color(1),
            format!("{e:+.1}%"),
        ));
    }
    b.chart(Chart {
        name: "cpu-run-vs-exec".into(),
        title: b.t(
            "CPU overhead over bare: new container per run (Exp 3) vs exec (Exp 7)",
            "Overhead de CPU sobre bare: contenedor nuevo por corrida (Exp 3) vs exec (Exp 7)",
        ),
        body: Body::Rows(Rows {
            axis: b.t(
                "% slower than bare (median)",
                "% más lento que bare (mediana)",
            ),
            rows,
            band: None,
            legend: vec![
                Key {
                    label: "run".into(),
                    color: nth_color(0),
                },
                Key {
                    label: "exec".into(),
                    color: nth_color(1),
                },
            ],
        }),
    });
}
