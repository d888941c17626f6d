//! Experiment 1: startup latency per runtime (bars with spread), where the time goes (phases
//! stacked per runtime) and one start drawn as a timeline.

use std::path::Path;

use anyhow::Result;

use super::{sig, Builder, RatioKind, SummaryRow};
use crate::experiment::startup::breakdown::Breakdown;
use crate::experiment::startup::{Report, StartupJson};
use crate::ground::RuntimeKind;
use crate::measure::runner::RuntimeResult;
use crate::output::report::chart::{
    phase_color, runtime_color, Body, Chart, Key, Row, Rows, Segment,
};
use crate::output::report::doc::Table;
use crate::output::report::load;
use crate::ground::phase::Phase;
use crate::ground::stats::{self, Summary};

pub fn add(b: &mut Builder, dir: &Path) -> Result<()> {
    let f: StartupJson = load::json(dir, "startup.json")?;
    let r = &f.report;
    b.saw(&r.header.host, &r.reference.machine);
    let cmd = r.plan.argv.join(" ");
    let (reps, warmup) = (r.plan.reps, r.plan.warmup);
    b.para(
        format!("Wall time of `{cmd}` from the start of the runtime's command to its exit, {reps} reps per runtime after {warmup} unmeasured warm-up, reps interleaved across runtimes so background load hits all alike."),
        format!("Tiempo total de `{cmd}` desde que arranca el comando del runtime hasta que termina, {reps} repeticiones por runtime tras {warmup} de calentamiento sin medir, intercaladas entre runtimes para que la carga de fondo afecte a todos por igual."),
    );
    let sums: Vec<(RuntimeKind, Summary)> = r
        .results
        .iter()
        .filter_map(|x| Some((x.runtime, stats::summarize(&x.wall_ms())?)))
        .collect();
    let bare = sums
        .iter()
        .find(|(rt, _)| *rt == RuntimeKind::Bare)
        .map(|(_, s)| s.clone());
    let mut t = Table::new([
        "runtime".to_string(),
        b.t("median ms", "mediana ms"),
        b.t("mean ms", "promedio ms"),
        b.t("range ms", "rango ms"),
        "σ ms".into(),
        b.t("× bare here", "× bare aquí"),
        b.t("× bare chapter", "× bare capítulo"),
    ]);
    for (rt, s) in &sums {
        let here = match &bare {
            Some(bs) if *rt != RuntimeKind::Bare => {
                stats::ratio(s, bs).show(sig)
            }
            Some(_) => "1".into(),
            None => "—".into(),
        };
        let chapter = r
            .reference
            .times_bare
            .get(rt.name())
            .map(|v| format!("{v:.0}"))
            .unwrap_or_else(|| "—".into());
        t.row([
            rt.to_string(),
            sig(s.median),
            sig(s.mean),
            format!("{}–{}", sig(s.min), sig(s.max)),
            sig(s.sd),
            here,
            chapter,
        ]);
    }
    b.table(t);
    b.chart(Chart {
        name: "startup".into(),
        title: b.t(
            format!("Startup latency of `{cmd}`: median, range and each rep"),
            format!("Latencia de arranque de `{cmd}`: mediana, rango y cada repetición"),
        ),
        body: Body::Rows(Rows {
            axis: b.t(
                "milliseconds (less is better)",
                "milisegundos (menos es mejor)",
            ),
            rows: r
                .results
                .iter()
                .filter_map(|x| {
                    Row::measured(
                        x.runtime.to_string(),
                        &x.wall_ms(),
                        runtime_color(x.runtime.name()),
                        |m| format!("{} ms", sig(m)),
                    )
                })
                .collect(),
            band: None,
            legend: Vec::new(),
        }),
    });
    caveats(b, r, &sums);
    summarize(b, r, &sums, bare.as_ref());
    if !f.breakdown.is_empty() {
        phases(b, &f.breakdown);
    }
    for x in r
        .results
        .iter()
        .filter(|x| x.samples.iter().any(|s| !s.phases.is_empty()))
    {
        timeline(b, x);
    }
    Ok(())
}

/// What the reader must keep in mind: too few reps, outliers, runtimes that could not run.
fn caveats(b: &mut Builder, r: &Report, sums: &[(RuntimeKind, Summary)]) {
    if r.plan.reps < 5 {
        b.note(
            format!("Only {} reps: medians and spreads are rough; use 10 or more to compare closely.", r.plan.reps),
            format!("Solo {} repeticiones: medianas y rangos son aproximados; usa 10 o más para comparar con cuidado.", r.plan.reps),
        );
    }
    for (rt, s) in sums {
        for &i in &s.outliers {
            let v = r
                .results
                .iter()
                .find(|x| x.runtime == *rt)
                .expect("summarised from it")
                .wall_ms()[i];
            b.note(
                format!("{rt}: rep {} took {} ms against a median of {} ms, an outlier (cold caches or background load).", i + 1, sig(v), sig(s.median)),
                format!("{rt}: la repetición {} tardó {} ms frente a una mediana de {} ms, un valor atípico (cachés frías o carga de fondo).", i + 1, sig(v), sig(s.median)),
            );
        }
    }
    if !r.skipped.is_empty() {
        let names: Vec<&str> = r.skipped.iter().map(|s| s.runtime.name()).collect();
        b.note(
            format!("Not measured here: {} (startup.json says why; `probe doctor` says how to fix it).", names.join(", ")),
            format!("No medidos aquí: {} (el motivo está en startup.json; `probe doctor` dice cómo arreglarlo).", names.join(", ")),
        );
    }
}

fn summarize(b: &mut Builder, r: &Report, sums: &[(RuntimeKind, Summary)], bare: Option<&Summary>) {
    let summary = |rt: RuntimeKind| sums.iter().find(|(x, _)| *x == rt).map(|(_, s)| s);
    let mut verdict = Vec::new();
    if let (Some(ds), Some(ps)) = (summary(RuntimeKind::Docker), summary(RuntimeKind::Podman)) {
        let (d, p) = (ds.median, ps.median);
        let (fast, slow, k) = if p < d {
            ("podman", "docker", d / p)
        } else {
            ("docker", "podman", p / d)
        };
        verdict.push(if stats::welch(ds, ps).is_some_and(|w| w.resolved) {
            b.t(
                format!("{fast} {}× faster than {slow}", sig(k)),
                format!("{fast} {}× más rápido que {slow}", sig(k)),
            )
        } else {
            b.t(
                "docker and podman: no clear difference (the means differ by less than the reps' noise, Welch 95 %)".to_string(),
                "docker y podman: sin diferencia clara (las medias difieren menos que el ruido de las repeticiones, Welch 95 %)".to_string(),
            )
        });
        let chapter = r
            .reference
            .mean_ms
            .get("docker")
            .zip(r.reference.mean_ms.get("podman"))
            .map(|(d, p)| d / p);
        b.ratio(
            b.t("startup docker ÷ podman", "arranque docker ÷ podman"),
            d / p,
            chapter,
            RatioKind::Times,
        );
    }
    if let Some(bs) = bare {
        for (rt, s) in sums.iter().filter(|(rt, _)| *rt != RuntimeKind::Bare) {
            let chapter = r.reference.times_bare.get(rt.name()).copied();
            b.ratio(
                b.t(
                    format!("startup {rt} ÷ bare"),
                    format!("arranque {rt} ÷ bare"),
                ),
                s.mean / bs.mean,
                chapter,
                RatioKind::Times,
            );
        }
    }
    b.summary(SummaryRow {
        aspect: b.t("Startup", "Arranque"),
        cells: sums
            .iter()
            .map(|(rt, s)| (rt.to_string(), format!("~{} ms", sig(s.median))))
            .collect(),
        verdict: verdict.join("; "),
    });
}

/// Median time per phase, stacked per runtime: where a start's time goes.
fn phases(b: &mut Builder, breakdowns: &[Breakdown]) {
    let mut present: Vec<Phase> = breakdowns
        .iter()
        .flat_map(|x| x.rows.iter().map(|r| r.phase))
        .collect();
    present.sort();
    present.dedup();
    let per_phase = |x: &Breakdown, p: Phase| {
        x.rows
            .iter()
            .filter(|r| r.phase == p)
            .map(|r| r.median_ms)
            .sum::<f64>()
    };
    let rows = breakdowns
        .iter()
        .map(|x| {
            let mut at = 0.0;
            let segments = present
                .iter()
                .map(|&p| {
                    let from = at;
                    at += per_phase(x, p);
                    Segment {
                        from,
                        to: at,
                        color: phase_color(p),
                    }
                })
                .collect();
            Row {
                label: x.runtime.to_string(),
                segments,
                note: b.t(
                    format!("median total {} ms", sig(x.total_median_ms)),
                    format!("total mediano {} ms", sig(x.total_median_ms)),
                ),
                ..Row::default()
            }
        })
        .collect();
    b.chart(Chart {
        name: "phases".into(),
        title: b.t(
            "Where startup time goes: median of each phase, stacked per runtime",
            "Dónde se va el tiempo de arranque: mediana de cada fase, apilada por runtime",
        ),
        body: Body::Rows(Rows {
            axis: b.t("milliseconds", "milisegundos"),
            rows,
            band: None,
            legend: present
                .iter()
                .map(|&p| Key {
                    label: b.lang.phase(p).to_string(),
                    color: phase_color(p),
                })
                .collect(),
        }),
    });
    let mut head = vec![b.t("phase", "fase")];
    head.extend(breakdowns.iter().map(|x| format!("{} ms", x.runtime)));
    let mut t = Table::new(head);
    for &p in &present {
        let mut row = vec![b.lang.phase(p).to_string()];
        // + 0.0 turns the -0.0 a sum of nothing can give into 0.
        row.extend(
            breakdowns
                .iter()
                .map(|x| format!("{:.3}", per_phase(x, p) + 0.0)),
        );
        t.row(row);
    }
    b.table(t);
    b.para(
        "Phases are named in docs/phases.md. Medians of phases need not add up to the median total: each is the median over reps on its own.",
        "Las fases se explican en docs/phases.md. Las medianas de las fases no tienen por qué sumar el total mediano: cada una es la mediana de sus repeticiones por separado.",
    );
}

/// One start of `x` (the rep with the median wall time) as a timeline of its phases.
fn timeline(b: &mut Builder, x: &RuntimeResult) {
    let walls = x.wall_ms();
    let median = stats::median(&walls);
    let Some((i, rep)) = x.samples.iter().enumerate().min_by(|a, c| {
        (a.1.wall_ms() - median)
            .abs()
            .total_cmp(&(c.1.wall_ms() - median).abs())
    }) else {
        return;
    };
    let rows = rep
        .phases
        .iter()
        .map(|p| {
            let (from, to) = (
                p.start_ns as f64 / 1e6,
                (p.start_ns + p.dur_ns) as f64 / 1e6,
            );
            let label = match &p.detail {
                Some(d) => format!("{} · {}", b.lang.phase(p.phase), b.lang.detail(d)),
                None => b.lang.phase(p.phase).to_string(),
            };
            Row {
                label,
                segments: vec![Segment {
                    from,
                    to,
                    color: phase_color(p.phase),
                }],
                note: format!("{} ms", sig(to - from)),
                ..Row::default()
            }
        })
        .collect();
    b.chart(Chart {
        name: format!("timeline-{}", x.runtime),
        title: b.t(
            format!(
                "Timeline of one {} start (rep {}, the median: {} ms)",
                x.runtime,
                i + 1,
                sig(rep.wall_ms())
            ),
            format!(
                "Línea de tiempo de un arranque de {} (repetición {}, la mediana: {} ms)",
                x.runtime,
                i + 1,
                sig(rep.wall_ms())
            ),
        ),
        body: Body::Rows(Rows {
            axis: b.t(
                "milliseconds since the start",
                "milisegundos desde el inicio",
            ),
            rows,
            band: None,
            legend: Vec::new(),
        }),
    });
}
