//! Experiment 4: write speed per storage mode and the fsync verdict — whether the data was
//! on the disk when sync returned — with the share of bytes the device had received.
//! Figures come from io.csv (computed by the experiment), modes and verdicts from io.json.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::{sig, Builder, RatioKind, SummaryRow};
use crate::output::report::chart::{Body, Chart, Key, Row, Rows, BAD, GOOD, NEUTRAL};
use crate::output::report::doc::Table;
use crate::experiment::io::backing::Store;
use crate::experiment::io::mode::Mode;
use crate::experiment::io::verdict::Outcome;
use crate::experiment::io::{ModeResult, Report};
use crate::output::report::load;
use crate::output::seed_csv::MetricRow;
use crate::ground::stats;

/// One mode's figures, medians over its reps.
struct Figures {
    total: Vec<f64>,
    write: f64,
    sync_ms: f64,
    device_pct: Option<f64>,
}

fn figures(rows: &[MetricRow], m: &ModeResult) -> Option<Figures> {
    let values = |suffix: &str| -> Vec<f64> {
        let metric = format!("{}{suffix}", m.metric);
        rows.iter()
            .filter(|r| r.runtime == m.runtime.name() && r.metric == metric)
            .filter_map(|r| r.value.parse().ok())
            .collect()
    };
    let total = values("");
    let device = values("_device_pct");
    (!total.is_empty()).then(|| Figures {
        write: stats::median(&values("_write_mbps")),
        sync_ms: stats::median(&values("_sync_ms")),
        device_pct: (!device.is_empty()).then(|| stats::median(&device)),
        total,
    })
}

fn outcome_word(b: &Builder, o: Option<Outcome>) -> String {
    match o {
        Some(Outcome::Durable) => b.t("durable", "durable"),
        Some(Outcome::NotDurable) => b.t("NOT durable", "NO durable"),
        Some(Outcome::Undecided) => b.t("undecided", "sin decidir"),
        None => b.t("reps disagree", "las repeticiones no coinciden"),
    }
}

fn outcome_color(o: Option<Outcome>) -> (u8, u8, u8) {
    match o {
        Some(Outcome::Durable) => GOOD,
        Some(Outcome::NotDurable) => BAD,
        _ => NEUTRAL,
    }
}

pub fn add(b: &mut Builder, dir: &Path) -> Result<()> {
    let r: Report = load::json(dir, "io.json")?;
    let csv = load::metric_csv(dir, "io.csv")?;
    b.saw(&r.header.host, &r.reference.machine);
    b.para(
        "A file written in 1 MiB blocks and synced, timed from inside the container; MB/s include the sync, like the chapter's `dd conv=fdatasync`. The verdict does not trust the speed: it counts the bytes the backing disk had received when the sync call returned.",
        "Se escribe un archivo en bloques de 1 MiB y se sincroniza, midiendo desde dentro del contenedor; los MB/s incluyen el sync, como el `dd conv=fdatasync` del capítulo. El veredicto no confía en la velocidad: cuenta los bytes que el disco había recibido cuando la llamada a sync retornó.",
    );
    let mut t = Table::new([
        b.t("mode", "modo"),
        b.t("MB/s with sync", "MB/s con sync"),
        b.t("MB/s write", "MB/s escritura"),
        b.t("sync ms", "sync ms"),
        b.t("on disk at sync return", "en disco al retornar sync"),
        b.t("verdict", "veredicto"),
        b.t("MB/s chapter", "MB/s capítulo"),
    ]);
    let mut rows = Vec::new();
    let mut medians: BTreeMap<Mode, f64> = BTreeMap::new();
    for m in &r.results {
        let Some(f) = figures(&csv, m) else { continue };
        let s = stats::summarize(&f.total).expect("parsed numbers are finite");
        medians.insert(m.mode, s.median);
        let word = outcome_word(b, m.outcome);
        let chapter = r.reference.mean.get(m.mode.name()).copied();
        t.row([
            m.mode.to_string(),
            sig(s.median),
            sig(f.write),
            sig(f.sync_ms),
            f.device_pct
                .map(|p| format!("{p:.0}%"))
                .unwrap_or_else(|| "n/a".into()),
            word.clone(),
            chapter.map(sig).unwrap_or_else(|| "—".into()),
        ]);
        rows.extend(Row::measured(
            m.mode.to_string(),
            &f.total,
            outcome_color(m.outcome),
            |v| format!("{} MB/s · {word}", sig(v)),
        ));
        if let Some(c) = chapter {
            rows.push(Row::bar(
                b.t(
                    format!("{} (chapter)", m.mode),
                    format!("{} (capítulo)", m.mode),
                ),
                c,
                (190, 190, 190),
                format!("{} MB/s", sig(c)),
            ));
        }
        verdict(b, m, &f);
    }
    b.chart(Chart {
        name: "io".into(),
        title: b.t("Disk write speed per storage mode, sync included, and whether the data reached the disk", "Velocidad de escritura por modo de almacenamiento, con sync, y si los datos llegaron al disco"),
        body: Body::Rows(Rows {
            axis: b.t("MB/s (more is better, if durable)", "MB/s (más es mejor, si es durable)"),
            rows,
            band: None,
            legend: vec![
                Key { label: b.t("durable", "durable"), color: GOOD },
                Key { label: b.t("not durable", "no durable"), color: BAD },
                Key { label: b.t("undecided", "sin decidir"), color: NEUTRAL },
                Key { label: b.t("the chapter's machine", "la máquina del capítulo"), color: (190, 190, 190) },
            ],
        }),
    });
    b.table(t);
    summarize(b, &r, &medians);
    Ok(())
}

/// The fsync verdict of one mode, with the number that decided it.
fn verdict(b: &mut Builder, m: &ModeResult, f: &Figures) {
    let word = outcome_word(b, m.outcome);
    let v = match b.lang {
        super::Lang::En => {
            let first = m.reps.first().map(|r| &r.verdict);
            let by = first.map(|v| v.decided_by.clone()).unwrap_or_default();
            let mech = first.and_then(|v| v.mechanism.clone()).map(|x| format!(" Mechanism: {x}.")).unwrap_or_default();
            format!("fsync, `{}`: **{word}**. {by}.{mech}{}", m.mode, crash_sentence(b, m))
        }
        super::Lang::Es => match f.device_pct {
            Some(pct) => format!(
                "fsync, `{}`: **{word}**. El disco había recibido el {pct:.0}% de los datos cuando el sync retornó (sync de {} ms); la evidencia completa está en io.json.{}",
                m.mode,
                sig(f.sync_ms),
                crash_sentence(b, m)
            ),
            None if m.reps.first().is_some_and(|r| matches!(r.backing.store, Store::Memory { .. })) => format!("fsync, `{}`: **{word}**. No hay un disco detrás del archivo (vive en memoria): el sync no tiene adónde llegar.", m.mode),
            None => format!("fsync, `{}`: **{word}**. No se pudo seguir la pila de dispositivos hasta un disco: ningún contador de disco aplica; el motivo está en io.json.", m.mode),
        },
    };
    b.verdict(v);
}

/// What the simulated power cuts kept, over the reps, and whether they agree with the
/// counters; empty without --crash-check.
fn crash_sentence(b: &Builder, m: &ModeResult) -> String {
    let crashes: Vec<&crate::experiment::io::crash::Survived> = m.reps.iter().filter_map(|r| r.crash.as_ref()).collect();
    if crashes.is_empty() {
        return String::new();
    }
    let kept = crashes.iter().filter(|c| c.complete).count();
    let disagree = crashes.iter().filter(|c| c.agrees == Some(false)).count();
    let n = crashes.len();
    if disagree == 0 {
        b.t(
            format!(" A power cut simulated at sync return kept the whole file in {kept} of {n} reps, as the counters said."),
            format!(" Un corte de luz simulado al retornar el sync conservó el archivo entero en {kept} de {n} repeticiones, como decían los contadores."),
        )
    } else {
        b.t(
            format!(" A power cut simulated at sync return kept the whole file in {kept} of {n} reps and DISAGREES with the counters in {disagree}."),
            format!(" Un corte de luz simulado al retornar el sync conservó el archivo entero en {kept} de {n} repeticiones y CONTRADICE a los contadores en {disagree}."),
        )
    }
}

/// "every sync reached the disk" only when every mode was decided durable.
fn sync_verdict(b: &Builder, results: &[ModeResult]) -> String {
    let not_durable: Vec<&str> = results
        .iter()
        .filter(|m| m.outcome == Some(Outcome::NotDurable))
        .map(|m| m.mode.name())
        .collect();
    // Undecided modes and modes whose reps disagree are neither durable nor NOT durable.
    let open: Vec<&str> = results
        .iter()
        .filter(|m| matches!(m.outcome, None | Some(Outcome::Undecided)))
        .map(|m| m.mode.name())
        .collect();
    let mut parts = Vec::new();
    if !not_durable.is_empty() {
        parts.push(b.t(
            format!("sync did not reach the disk: {}", not_durable.join(", ")),
            format!("el sync no llegó al disco: {}", not_durable.join(", ")),
        ));
    }
    if !open.is_empty() {
        parts.push(b.t(
            format!("undecided or mixed: {}", open.join(", ")),
            format!("sin decidir o mixto: {}", open.join(", ")),
        ));
    }
    if parts.is_empty() && !results.is_empty() {
        b.t("every sync reached the disk", "todo sync llegó al disco")
    } else {
        parts.join("; ")
    }
}

fn summarize(b: &mut Builder, r: &Report, medians: &BTreeMap<Mode, f64>) {
    let cells = |pick: &dyn Fn(&str) -> bool| -> Vec<(String, String)> {
        r.results
            .iter()
            .filter(|m| pick(m.mode.name()))
            .filter_map(|m| {
                medians
                    .get(&m.mode)
                    .map(|v| (m.runtime.to_string(), format!("~{} MB/s", sig(*v))))
            })
            .collect()
    };
    let is_overlay = |m: &str| m == "bare" || m.contains("overlay");
    let is_volume = |m: &str| m == "bare" || m.contains("volume") || m.contains("bind");
    let verdict = sync_verdict(b, &r.results);
    b.summary(SummaryRow {
        aspect: b.t("I/O overlay", "I/O overlay"),
        cells: cells(&is_overlay),
        verdict,
    });
    b.summary(SummaryRow {
        aspect: b.t("I/O volume", "I/O volumen"),
        cells: cells(&is_volume),
        verdict: String::new(),
    });
    if let Some(bare) = medians.get(&Mode::Bare) {
        for mode in [
            Mode::DockerOverlay,
            Mode::DockerVolume,
            Mode::PodmanOverlay,
            Mode::PodmanVolume,
        ] {
            if let Some(v) = medians.get(&mode) {
                let chapter = r
                    .reference
                    .mean
                    .get(mode.name())
                    .zip(r.reference.mean.get("bare"))
                    .map(|(m, b)| m / b);
                b.ratio(
                    b.t(
                        format!("write {mode} ÷ bare"),
                        format!("escritura {mode} ÷ bare"),
                    ),
                    v / bare,
                    chapter,
                    RatioKind::Times,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(outcomes: &[(&str, Option<&str>)]) -> Vec<ModeResult> {
        outcomes
            .iter()
            .map(|(mode, o)| {
                serde_json::from_value(serde_json::json!({"mode": mode, "runtime": "bare", "metric": "io_write", "outcome": o, "reps": [], "verdict": ""}))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn every_sync_reached_the_disk_only_when_every_mode_was_decided_durable() {
        let b = Builder::new(super::super::Lang::En);
        assert_eq!(sync_verdict(&b, &results(&[("bare", Some("durable")), ("overlay", Some("durable"))])), "every sync reached the disk");
        let v = sync_verdict(&b, &results(&[("bare", Some("durable")), ("tmpfs", Some("undecided")), ("native-bind", None)]));
        assert_eq!(v, "undecided or mixed: tmpfs, native-bind");
        let v = sync_verdict(&b, &results(&[("bare", Some("durable")), ("podman-overlay", Some("not-durable")), ("native-bind", None)]));
        assert_eq!(v, "sync did not reach the disk: podman-overlay; undecided or mixed: native-bind");
        assert_ne!(sync_verdict(&b, &[]), "every sync reached the disk");
    }
}
