//! Experiments 5 and 9: which ways of running containers in containers work here, how long
//! they take, and for each failure the missing precondition; plus native nesting per level.

use std::path::Path;

use anyhow::Result;

use super::{sig, Builder, SummaryRow};
use crate::output::report::chart::{Body, Chart, Key, Row, Rows, BAD, GOOD};
use crate::output::report::doc::Table;
use crate::output::report::lang::Lang;
use crate::experiment::nested::cause::Precondition;
use crate::experiment::nested::{ApproachResult as Approach, Report};
use crate::output::report::load;

/// The missing precondition in words.
fn missing(lang: Lang, m: Precondition) -> String {
    let (en, es) = match m {
        Precondition::Capability => ("a capability is missing", "falta una capability"),
        Precondition::Seccomp => (
            "seccomp refuses the syscall",
            "seccomp rechaza la llamada al sistema",
        ),
        Precondition::Lsm => ("AppArmor/SELinux refuses it", "AppArmor/SELinux lo rechaza"),
        Precondition::UserNamespaces => (
            "user namespaces are not allowed",
            "no se permiten user namespaces",
        ),
        Precondition::DevFuse => ("/dev/fuse is missing", "falta /dev/fuse"),
        Precondition::MountPermission => ("mounting is not permitted", "no se permite montar"),
        Precondition::DaemonUnreachable => (
            "the inner daemon is not reachable",
            "el daemon interior no responde",
        ),
        Precondition::Unexplained => (
            "unexplained: see the evidence in nested.json",
            "sin explicación: ver la evidencia en nested.json",
        ),
    };
    lang.pick(en, es).to_string()
}

fn seconds(a: &Approach) -> f64 {
    a.first_echo_ms.unwrap_or(a.total_ms) / 1000.0
}

pub fn add(b: &mut Builder, dir: &Path) -> Result<()> {
    let r: Report = load::json(dir, "nested.json")?;
    b.saw(&r.header.host, &r.reference.machine);
    b.para(
        "Each approach starts an outer container and, inside it, an inner `echo ok`. Time is until the inner ok (or the failure). For failures, probe checks from inside the outer container which precondition was missing.",
        "Cada enfoque arranca un contenedor exterior y, dentro, un `echo ok` interior. El tiempo es hasta el ok interior (o la falla). En las fallas, probe revisa desde dentro del contenedor exterior qué precondición faltaba.",
    );
    let works = b.t("works", "funciona");
    let fails = b.t("fails", "falla");
    let mut t = Table::new([
        "Exp".to_string(),
        b.t("engine", "motor"),
        b.t("approach", "enfoque"),
        b.t("here", "aquí"),
        b.t("seconds", "segundos"),
        b.t("why it failed", "por qué falló"),
        b.t("chapter", "capítulo"),
    ]);
    let mut rows = Vec::new();
    for a in &r.results {
        let why = a
            .cause
            .as_ref()
            .map(|c| {
                format!(
                    "{} (`{}` → {})",
                    missing(b.lang, c.missing),
                    c.syscall,
                    c.errno
                )
            })
            .unwrap_or_default();
        let chapter = r
            .reference
            .rows
            .iter()
            .find(|x| x.id == a.id)
            .map(|x| x.result.clone())
            .unwrap_or_else(|| "—".into());
        let outcome = if a.success { &works } else { &fails };
        t.row([
            a.experiment.to_string(),
            a.engine.clone(),
            format!("`{}`", a.approach),
            outcome.clone(),
            sig(seconds(a)),
            why,
            format!("`{chapter}`"),
        ]);
        let note = match &a.cause {
            Some(c) => format!("{fails}: {}", missing(b.lang, c.missing)),
            None => format!("{outcome}, {} s", sig(seconds(a))),
        };
        rows.push(Row::bar(
            format!("{} {}", a.engine, a.approach),
            seconds(a),
            if a.success { GOOD } else { BAD },
            note,
        ));
        b.verdict(approach_verdict(b, a, &works));
    }
    // An engine without its nesting image runs none of its approaches: no chart of nothing.
    if !rows.is_empty() {
        b.chart(Chart {
            name: "nested".into(),
            title: b.t(
                "Nested containers: outcome of each approach and time to the inner `echo ok`",
                "Contenedores anidados: resultado de cada enfoque y tiempo hasta el `echo ok` interior",
            ),
            body: Body::Rows(Rows {
                axis: b.t("seconds", "segundos"),
                rows,
                band: None,
                legend: vec![
                    Key {
                        label: works.clone(),
                        color: GOOD,
                    },
                    Key {
                        label: fails.clone(),
                        color: BAD,
                    },
                ],
            }),
        });
        b.table(t);
    }
    for n in &r.not_run {
        let ids = n.approaches.join(", ");
        b.para(
            format!("Not run here ({}: {ids}): {}", n.engine, n.reason),
            format!("No se ejecutó aquí ({}: {ids}): {}", n.engine, n.reason),
        );
    }
    if !r.native.is_empty() {
        let mut n = Table::new([
            b.t("native depth", "profundidad native"),
            b.t("outcome", "resultado"),
            b.t("median ms", "mediana ms"),
            b.t("cost of this level ms", "costo de este nivel ms"),
        ]);
        for l in &r.native {
            n.row([
                l.depth.to_string(),
                if l.success {
                    works.clone()
                } else {
                    fails.clone()
                },
                l.median_ms.map(sig).unwrap_or_else(|| "—".into()),
                l.level_cost_ms.map(sig).unwrap_or_else(|| "—".into()),
            ]);
        }
        b.table(n);
    }
    for (exp, aspect) in [
        (5u8, b.t("Nested (Exp 5)", "Anidados (Exp 5)")),
        (9, b.t("Nested v2 (Exp 9)", "Anidados v2 (Exp 9)")),
    ] {
        let of: Vec<&Approach> = r.results.iter().filter(|a| a.experiment == exp).collect();
        if of.is_empty() {
            continue;
        }
        let mut engines: Vec<&str> = of.iter().map(|a| a.engine.as_str()).collect();
        engines.dedup();
        let cells = engines
            .iter()
            .map(|e| {
                let ok: Vec<&str> = of
                    .iter()
                    .filter(|a| a.engine == *e && a.success)
                    .map(|a| a.approach.as_str())
                    .collect();
                (
                    e.to_string(),
                    if ok.is_empty() {
                        format!("✗ {fails}")
                    } else {
                        format!("✓ {}", ok.join(", "))
                    },
                )
            })
            .collect();
        let k = of.iter().filter(|a| a.success).count();
        b.summary(SummaryRow {
            aspect,
            cells,
            verdict: b.t(
                format!("{k} of {} approaches work", of.len()),
                format!("{k} de {} enfoques funcionan", of.len()),
            ),
        });
    }
    Ok(())
}

fn approach_verdict(b: &Builder, a: &Approach, works: &str) -> String {
    match (&a.cause, b.lang) {
        (Some(c), Lang::En) => format!(
            "nesting, {} `{}`: **fails**: {}. Fix: {}",
            a.engine, a.approach, c.reason, c.fix
        ),
        (Some(c), Lang::Es) => format!(
            "anidado, {} `{}`: **falla**: {} (`{}` devolvió {}).",
            a.engine,
            a.approach,
            missing(Lang::Es, c.missing),
            c.syscall,
            c.errno
        ),
        (None, Lang::En) => {
            let sec = a
                .security
                .as_ref()
                .map(|s| format!(" Security, {s}."))
                .unwrap_or_default();
            format!(
                "nesting, {} `{}`: **{works}** in {} s.{sec}",
                a.engine,
                a.approach,
                sig(seconds(a))
            )
        }
        (None, Lang::Es) => format!(
            "anidado, {} `{}`: **{works}** en {} s (su costo de seguridad está en nested.json).",
            a.engine,
            a.approach,
            sig(seconds(a))
        ),
    }
}
