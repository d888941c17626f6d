//! Experiment 8: exact memory per idle container (slope of a line through the container
//! cgroups' total against the count) and the engine's fixed cost (its processes' PSS at 0).

use std::path::Path;

use anyhow::Result;

use super::{sig, Builder, RatioKind, SummaryRow};
use crate::output::report::chart::{runtime_color, Body, Chart, Row, Rows, NEUTRAL};
use crate::output::report::doc::Table;
use crate::experiment::memory::cgroup::Report;
use crate::ground::RuntimeKind;
use crate::output::report::load;


fn chapter_kb(r: &Report, runtime: RuntimeKind) -> Option<f64> {
    let m = r.reference.kb_per_container.get(runtime.name())?;
    (!m.is_empty()).then(|| m.values().sum::<f64>() / m.len() as f64)
}

pub fn add(b: &mut Builder, dir: &Path) -> Result<()> {
    let r: Report = load::json(dir, "memory_cgroup.json")?;
    b.saw(&r.header.host, &r.reference.machine);
    let counts: Vec<String> = r.fleet.counts.iter().map(u32::to_string).collect();
    b.para(
        format!("Each container's own memory cgroup read at {} idle containers, and the engine's processes (daemons, shims, monitors) as PSS. The slope of a line through (count, memory) is what one more container costs; the engine's line at 0 containers is its fixed cost.", counts.join(", ")),
        format!("Se lee el cgroup de memoria propio de cada contenedor con {} contenedores inactivos, y los procesos del motor (daemons, shims, monitores) como PSS. La pendiente de la recta (cantidad, memoria) es lo que cuesta un contenedor más; la recta del motor en 0 contenedores es su costo fijo.", counts.join(", ")),
    );
    let mut t = Table::new([
        "runtime".to_string(),
        b.t("KB per container", "KB por contenedor"),
        "r²".into(),
        b.t("engine fixed MB", "MB fijos del motor"),
        b.t("engine KB per container", "KB del motor por contenedor"),
        b.t("KB per container, chapter", "KB por contenedor, capítulo"),
    ]);
    let mut rows = Vec::new();
    for x in &r.results {
        let per = x.fits.per_container();
        let chapter = chapter_kb(&r, x.runtime);
        t.row([
            x.runtime.to_string(),
            per.map(|f| {
                format!(
                    "{}{}",
                    sig(f.slope),
                    if x.fits.cgroup.is_none() {
                        " (PSS)"
                    } else {
                        ""
                    }
                )
            })
            .unwrap_or_else(|| "n/a".into()),
            per.map(|f| format!("{:.2}", f.r2))
                .unwrap_or_else(|| "—".into()),
            x.fits
                .daemon_pss
                .map(|f| sig(f.intercept / 1024.0))
                .unwrap_or_else(|| "—".into()),
            x.fits
                .engine_pss
                .map(|f| sig(f.slope))
                .unwrap_or_else(|| "—".into()),
            chapter.map(sig).unwrap_or_else(|| "—".into()),
        ]);
        if let Some(f) = per {
            rows.push(Row::bar(
                x.runtime.to_string(),
                f.slope,
                runtime_color(x.runtime.name()),
                format!("{} KB", sig(f.slope)),
            ));
        }
        if let Some(c) = chapter {
            rows.push(Row::bar(
                b.t(
                    format!("{} (chapter)", x.runtime),
                    format!("{} (capítulo)", x.runtime),
                ),
                c,
                NEUTRAL,
                format!("{} KB", sig(c)),
            ));
        }
    }
    b.chart(Chart {
        name: "memory-cgroup".into(),
        title: b.t("Memory per idle container, from its own cgroup (grey: the chapter's machine)", "Memoria por contenedor inactivo, según su propio cgroup (gris: la máquina del capítulo)"),
        body: Body::Rows(Rows { axis: b.t("KB per container (slope of the fit)", "KB por contenedor (pendiente del ajuste)"), rows, band: None, legend: Vec::new() }),
    });
    b.table(t);
    for x in r.results.iter().filter(|x| x.cgroup_na.is_some()) {
        b.note(
            format!("{}: the containers have no memory cgroup of their own here (rootless on a cgroup v1 host), so the PSS of their processes stands in.", x.runtime),
            format!("{}: aquí los contenedores no tienen cgroup de memoria propio (rootless en un host con cgroup v1), así que se usa el PSS de sus procesos.", x.runtime),
        );
    }
    let kb = |rt: RuntimeKind| {
        r.results
            .iter()
            .find(|x| x.runtime == rt)
            .and_then(|x| x.fits.per_container())
            .map(|f| f.slope)
    };
    let mut verdict = String::new();
    if let (Some(d), Some(p)) = (kb(RuntimeKind::Docker), kb(RuntimeKind::Podman)) {
        let chapter = chapter_kb(&r, RuntimeKind::Docker)
            .zip(chapter_kb(&r, RuntimeKind::Podman))
            .map(|(d, p)| d / p);
        b.ratio(
            b.t(
                "memory per container docker ÷ podman",
                "memoria por contenedor docker ÷ podman",
            ),
            d / p,
            chapter,
            RatioKind::Times,
        );
        verdict = if p < d {
            b.t(
                format!("podman {}× less than docker", sig(d / p)),
                format!("podman {}× menos que docker", sig(d / p)),
            )
        } else {
            b.t(
                format!("docker {}× less than podman", sig(p / d)),
                format!("docker {}× menos que podman", sig(p / d)),
            )
        };
    }
    b.summary(SummaryRow {
        aspect: b.t("Memory (cgroup)", "Memoria (cgroup)"),
        cells: r
            .results
            .iter()
            .filter_map(|x| {
                x.fits
                    .per_container()
                    .map(|f| (x.runtime.to_string(), format!("{} KB/cont", sig(f.slope))))
            })
            .collect(),
        verdict,
    });
    Ok(())
}
