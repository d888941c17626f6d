//! Experiment 6: N idle containers started one after another; total start time and memory
//! against N, one line per runtime, and whether per-container cost grows with N.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::{sig, Builder, RatioKind, SummaryRow};
use crate::output::report::chart::{faded, runtime_color, Body, Chart, Lines, Panel, Series};
use crate::output::report::doc::Table;
use crate::experiment::scale::{Report, Step};
use crate::ground::RuntimeKind;
use crate::output::report::load;

pub fn add(b: &mut Builder, dir: &Path) -> Result<()> {
    let r: Report = load::json(dir, "scale.json")?;
    b.saw(&r.header.host, &r.reference.machine);
    b.para(
        "N idle containers started one after another: the time the whole loop took, and what the N cost in memory (their cgroups plus the engine's growth, not `free -m`).",
        "N contenedores inactivos lanzados uno tras otro: el tiempo que tomó todo el ciclo y lo que cuestan los N en memoria (sus cgroups más el crecimiento del motor, no `free -m`).",
    );
    let series = |f: &dyn Fn(&Step) -> f64| -> Vec<Series> {
        r.results
            .iter()
            .map(|x| Series {
                label: x.runtime.to_string(),
                color: runtime_color(x.runtime.name()),
                points: x.steps.iter().map(|s| (s.count as f64, f(s))).collect(),
            })
            .collect()
    };
    let chapter = |m: &BTreeMap<String, BTreeMap<String, f64>>| -> Vec<Series> {
        m.iter()
            .map(|(rt, by)| Series {
                label: b.t(format!("{rt} (chapter)"), format!("{rt} (capítulo)")),
                color: faded(runtime_color(rt)),
                points: by
                    .iter()
                    .filter_map(|(n, v)| Some((n.parse::<f64>().ok()?, *v)))
                    .collect(),
            })
            .collect()
    };
    let mut time = series(&|s| s.total_s);
    time.extend(chapter(&r.reference.time_s));
    let mut memory = series(&|s| s.memory_mb);
    memory.extend(chapter(&r.reference.memory_mb));
    b.chart(Chart {
        name: "scale".into(),
        title: b.t(
            "Scaling: time and memory of N containers (pale: the chapter)",
            "Escalamiento: tiempo y memoria de N contenedores (pálido: el capítulo)",
        ),
        body: Body::Lines(Lines {
            x_axis: b.t("containers", "contenedores"),
            panels: vec![
                Panel {
                    title: b.t("start time", "tiempo de arranque"),
                    y_axis: b.t("seconds", "segundos"),
                    series: time,
                },
                Panel {
                    title: b.t("memory", "memoria"),
                    y_axis: "MB".into(),
                    series: memory,
                },
            ],
        }),
    });
    let mut t = Table::new([
        "runtime".to_string(),
        b.t("containers", "contenedores"),
        b.t("total s", "total s"),
        b.t("ms per container", "ms por contenedor"),
        "MB".into(),
        b.t("MB per container", "MB por contenedor"),
    ]);
    for x in &r.results {
        for s in &x.steps {
            let n = s.count.max(1) as f64;
            t.row([
                x.runtime.to_string(),
                s.count.to_string(),
                sig(s.total_s),
                sig(1000.0 * s.total_s / n),
                sig(s.memory_mb),
                sig(s.memory_mb / n),
            ]);
        }
    }
    b.table(t);
    for x in &r.results {
        let Some(g) = &x.growth else { continue };
        if g.time_nonlinear || g.memory_nonlinear {
            b.note(
                format!("{}: per-container cost grows with N (time ×{}, memory ×{} from the smallest to the largest count): not linear.", x.runtime, sig(g.time_ratio), sig(g.memory_ratio)),
                format!("{}: el costo por contenedor crece con N (tiempo ×{}, memoria ×{} de la cantidad menor a la mayor): no es lineal.", x.runtime, sig(g.time_ratio), sig(g.memory_ratio)),
            );
        }
    }
    let max = r
        .results
        .iter()
        .flat_map(|x| x.steps.iter().map(|s| s.count))
        .max()
        .unwrap_or(0);
    let at_max = |rt: RuntimeKind| {
        r.results
            .iter()
            .find(|x| x.runtime == rt)
            .and_then(|x| x.steps.iter().find(|s| s.count == max))
            .map(|s| s.total_s)
    };
    let mut verdict = String::new();
    if let (Some(d), Some(p)) = (at_max(RuntimeKind::Docker), at_max(RuntimeKind::Podman)) {
        let chapter = r
            .reference
            .time_s
            .get("docker")
            .zip(r.reference.time_s.get("podman"))
            .and_then(|(d, p)| Some(d.get(&max.to_string())? / p.get(&max.to_string())?));
        b.ratio(
            b.t(
                format!("time for {max} containers docker ÷ podman"),
                format!("tiempo para {max} contenedores docker ÷ podman"),
            ),
            d / p,
            chapter,
            RatioKind::Times,
        );
        // One fleet per count: no reps, so no noise to tell a difference from; the ratio is
        // given as measured, never as "faster".
        verdict = b.t(
            format!("docker ÷ podman = {} at {max} (one run each: noise unknown)", sig(d / p)),
            format!("docker ÷ podman = {} con {max} (una corrida cada uno: ruido desconocido)", sig(d / p)),
        );
    }
    b.summary(SummaryRow {
        aspect: b.t(format!("Scaling ({max})"), format!("Escalamiento ({max})")),
        cells: r
            .results
            .iter()
            .filter_map(|x| {
                at_max(x.runtime).map(|s| (x.runtime.to_string(), format!("{} s", sig(s))))
            })
            .collect(),
        verdict,
    });
    Ok(())
}
