//! Experiment 2: what `free -m` says N idle containers cost, drawn against the band the same
//! figure spans with nothing started — the chapter's negative overheads live inside it.

use std::path::Path;

use anyhow::Result;

use super::{Builder, SummaryRow};
use crate::output::report::chart::{runtime_color, Band, Body, Chart, Row, Rows, NEUTRAL};
use crate::output::report::doc::Table;
use crate::experiment::memory::{Batch, Report};
use crate::output::report::load;

pub fn add(b: &mut Builder, dir: &Path) -> Result<()> {
    let r: Report = load::json(dir, "memory.json")?;
    b.saw(&r.header.host, &r.reference.machine);
    let half = r.noise.hiding_mb();
    let cmd = r.fleet.command.join(" ");
    b.para(
        format!("`free -m` `used` before and after starting N idle containers (`{cmd}`), as the chapter measured. First, {} reads of the same figure with nothing started measure the instrument's own noise: they spanned {:.1} MB.", r.noise.reads_kb.len(), r.noise.band_mb()),
        format!("`used` de `free -m` antes y después de lanzar N contenedores inactivos (`{cmd}`), como lo midió el capítulo. Antes, {} lecturas de la misma cifra sin lanzar nada miden el ruido del propio instrumento: variaron {:.1} MB.", r.noise.reads_kb.len(), r.noise.band_mb()),
    );
    let mut counts: Vec<u32> = r
        .results
        .iter()
        .flat_map(|x| x.batches.iter().map(|b| b.count))
        .collect();
    counts.sort();
    counts.dedup();
    let mut rows = Vec::new();
    let mut t = Table::new([
        b.t("containers", "contenedores"),
        "runtime".into(),
        b.t("Δ MB here", "Δ MB aquí"),
        b.t("below noise?", "¿bajo el ruido?"),
        b.t("Δ MB chapter", "Δ MB capítulo"),
    ]);
    for &n in &counts {
        if !rows.is_empty() {
            rows.push(Row::gap());
        }
        for x in &r.results {
            let Some(batch) = x.batches.iter().find(|b| b.count == n) else {
                continue;
            };
            let d = batch.delta_mb as f64;
            let noise = if batch.below_noise {
                b.t(" (noise)", " (ruido)")
            } else {
                String::new()
            };
            let color = if batch.below_noise {
                NEUTRAL
            } else {
                runtime_color(x.runtime.name())
            };
            rows.push(Row::bar(
                format!("{n} × {}", x.runtime),
                d,
                color,
                format!("{d:+.0} MB{noise}"),
            ));
            let chapter = r
                .reference
                .overhead_mb
                .get(x.runtime.name())
                .and_then(|m| m.get(&n.to_string()))
                .map(|v| format!("{v:+.0}"))
                .unwrap_or_else(|| "—".into());
            t.row([
                n.to_string(),
                x.runtime.to_string(),
                format!("{d:+}"),
                if batch.below_noise {
                    b.t("yes", "sí")
                } else {
                    "no".into()
                },
                chapter,
            ]);
        }
    }
    b.chart(Chart {
        name: "memory".into(),
        title: b.t("Memory change seen by `free -m` after starting N idle containers, against its noise", "Cambio de memoria según `free -m` al lanzar N contenedores inactivos, frente a su ruido"),
        body: Body::Rows(Rows {
            axis: b.t("MB over the baseline (shaded: the noise band; grey bars: inside it)", "MB sobre la línea base (sombreado: la banda de ruido; barras grises: dentro de ella)"),
            rows,
            band: Some(Band { from: -half, to: half }),
            legend: Vec::new(),
        }),
    });
    b.table(t);
    let all: Vec<&Batch> = r.results.iter().flat_map(|x| x.batches.iter()).collect();
    let hidden = all.iter().filter(|x| x.below_noise).count();
    b.note(
        format!("{hidden} of {} deltas are inside the noise band (±{half:.1} MB): for those `free -m` cannot tell the containers from the system's own churn. Experiment 8 reads each container's cgroup instead.", all.len()),
        format!("{hidden} de {} deltas están dentro de la banda de ruido (±{half:.1} MB): en esos casos `free -m` no distingue a los contenedores del vaivén del propio sistema. El experimento 8 lee en cambio el cgroup de cada contenedor.", all.len()),
    );
    let max = counts.last().copied().unwrap_or(0);
    b.summary(SummaryRow {
        aspect: b.t("Memory (free -m)", "Memoria (free -m)"),
        cells: r
            .results
            .iter()
            .filter_map(|x| {
                x.batches.iter().find(|b| b.count == max).map(|bt| {
                    (
                        x.runtime.to_string(),
                        format!("{:+} MB / {max} cont.", bt.delta_mb),
                    )
                })
            })
            .collect(),
        verdict: b.t(
            format!(
                "noisy: {hidden} of {} below the noise; see cgroup",
                all.len()
            ),
            format!(
                "ruidoso: {hidden} de {} bajo el ruido; ver cgroup",
                all.len()
            ),
        ),
    });
    Ok(())
}
