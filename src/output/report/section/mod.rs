//! The report's content: one module per experiment turns its files into text, tables and
//! charts, and feeds the cross-experiment parts — the summary table like the chapter's
//! "Tabla resumen", the ratios beside the chapter's machine, and the verdicts.

mod cpu;
mod io;
mod memory;
mod memory_cgroup;
mod nested;
mod scale;
mod startup;

use anyhow::Result;

use super::chart::Chart;
use super::doc::{Block, Doc, Table};
use super::lang::Lang;
use super::load::{Found, RunFolder};
use crate::experiment::all::Status;
use crate::experiment::common::host::HostInfo;

pub struct Builder {
    pub lang: Lang,
    blocks: Vec<Block>,
    pub charts: Vec<Chart>,
    summary: Vec<SummaryRow>,
    ratios: Vec<RatioRow>,
    verdicts: Vec<String>,
    host: Option<HostInfo>,
    chapter_machine: Option<String>,
}

/// One line of the summary table: an aspect, a cell per runtime, the verdict.
pub struct SummaryRow {
    pub aspect: String,
    pub cells: Vec<(String, String)>,
    pub verdict: String,
}

/// A proportion measured here beside the same proportion on the chapter's machine.
pub struct RatioRow {
    figure: String,
    here: f64,
    chapter: Option<f64>,
    kind: RatioKind,
}

#[derive(Clone, Copy)]
pub enum RatioKind {
    /// "237×": compared by dividing.
    Times,
    /// "+12.3%": compared by subtracting (a ratio of two overheads near 0 means nothing).
    Percent,
}

impl Builder {
    fn new(lang: Lang) -> Builder {
        Builder {
            lang,
            blocks: Vec::new(),
            charts: Vec::new(),
            summary: Vec::new(),
            ratios: Vec::new(),
            verdicts: Vec::new(),
            host: None,
            chapter_machine: None,
        }
    }

    /// The sentence in the report's language.
    pub fn t(&self, en: impl Into<String>, es: impl Into<String>) -> String {
        self.lang.pick(en.into(), es.into())
    }

    pub fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }

    pub fn para(&mut self, en: impl Into<String>, es: impl Into<String>) {
        let text = self.t(en, es);
        self.blocks.push(Block::Para(text));
    }

    pub fn note(&mut self, en: impl Into<String>, es: impl Into<String>) {
        let text = self.t(en, es);
        self.blocks.push(Block::Note(text));
    }

    pub fn table(&mut self, t: Table) {
        self.blocks.push(Block::Table(t));
    }

    pub fn chart(&mut self, c: Chart) {
        self.blocks.push(Block::Figure(self.charts.len()));
        self.charts.push(c);
    }

    pub fn summary(&mut self, row: SummaryRow) {
        self.summary.push(row);
    }

    pub fn ratio(&mut self, figure: String, here: f64, chapter: Option<f64>, kind: RatioKind) {
        if here.is_finite() {
            self.ratios.push(RatioRow {
                figure,
                here,
                chapter,
                kind,
            });
        }
    }

    pub fn verdict(&mut self, v: String) {
        self.verdicts.push(v);
    }

    /// The first experiment that records its host describes the machine for the report.
    pub fn saw(&mut self, host: &HostInfo, chapter_machine: &str) {
        if self.host.is_none() {
            self.host = Some(host.clone());
        }
        if self.chapter_machine.is_none() {
            self.chapter_machine = Some(chapter_machine.to_string());
        }
    }
}

/// "Experiment 1: startup latency" in the report's language.
pub fn title(id: &str, lang: Lang) -> String {
    let (en, es) = match id {
        "startup" => (
            "Experiment 1: startup latency",
            "Experimento 1: latencia de arranque",
        ),
        "memory" => (
            "Experiment 2: memory seen by `free -m`",
            "Experimento 2: memoria vista por `free -m`",
        ),
        "memory-cgroup" => (
            "Experiment 8: exact memory per container (cgroup)",
            "Experimento 8: memoria exacta por contenedor (cgroup)",
        ),
        "cpu" => (
            "Experiment 3: CPU under load (`run`)",
            "Experimento 3: CPU bajo carga (`run`)",
        ),
        "cpu-exec" => (
            "Experiment 7: pure CPU (`exec`)",
            "Experimento 7: CPU puro (`exec`)",
        ),
        "io" => (
            "Experiment 4: disk I/O and whether sync reaches the disk",
            "Experimento 4: I/O de disco y si el sync llega al disco",
        ),
        "scale" => ("Experiment 6: scaling", "Experimento 6: escalamiento"),
        "nested" => (
            "Experiments 5 and 9: nested containers",
            "Experimentos 5 y 9: contenedores anidados",
        ),
        other => (other, other),
    };
    lang.pick(en, es).to_string()
}

/// The whole report of a run folder: the document and the charts it refers to.
pub fn build(run: &RunFolder, lang: Lang) -> (Doc, Vec<Chart>) {
    let mut b = Builder::new(lang);
    for found in &run.steps {
        b.push(Block::Heading(2, title(found.step.id, lang)));
        if let Err(e) = add(&mut b, found) {
            b.note(
                format!("This experiment's results could not be read: `{e:#}`"),
                format!("No se pudieron leer los resultados de este experimento: `{e:#}`"),
            );
        }
    }
    let mut blocks = front_matter(&b, run);
    blocks.append(&mut b.blocks);
    let doc = Doc {
        title: b.t(
            "probe: what containers cost on this machine",
            "probe: lo que cuestan los contenedores en esta máquina",
        ),
        blocks,
    };
    (doc, b.charts)
}

fn add(b: &mut Builder, found: &Found) -> Result<()> {
    let Some(dir) = &found.dir else {
        let (en, es) = match found.entry.as_ref().map(|e| (e.status, e.note.as_str())) {
            Some((Status::Unavailable, _)) => {
                let cmd = found.step.args.join(" ");
                (
                    format!("Not available in this build of probe: it has no `probe {cmd}` yet."),
                    format!(
                        "No disponible en esta versión de probe: todavía no tiene `probe {cmd}`."
                    ),
                )
            }
            Some((Status::Failed, why)) => {
                // The error is probe's own English line: shown as quoted output, as the
                // Spanish report shows commands.
                let why = why.replace('`', "'");
                (
                    format!("Failed: `{why}`. The log is in logs/{}.log.", found.step.id),
                    format!(
                        "Falló: `{why}`. El registro está en logs/{}.log.",
                        found.step.id
                    ),
                )
            }
            Some((Status::Interrupted, _)) => (
                "Interrupted before it finished; `probe all --resume` runs it again.".into(),
                "Se interrumpió antes de terminar; `probe all --resume` lo vuelve a correr.".into(),
            ),
            _ => ("Not run.".into(), "No se corrió.".into()),
        };
        let status = b.t(en.clone(), es.clone());
        b.summary(SummaryRow {
            aspect: title(found.step.id, b.lang),
            cells: Vec::new(),
            verdict: status,
        });
        b.note(en, es);
        return Ok(());
    };
    match found.step.id {
        "startup" => startup::add(b, dir),
        "memory" => memory::add(b, dir),
        "memory-cgroup" => memory_cgroup::add(b, dir),
        "cpu" | "cpu-exec" => cpu::add(b, dir, found.step),
        "io" => io::add(b, dir),
        "scale" => scale::add(b, dir),
        "nested" => nested::add(b, dir),
        _ => Ok(()),
    }
}

/// Title, the machine beside the chapter's, the summary table, the ratios, the verdicts.
fn front_matter(b: &Builder, run: &RunFolder) -> Vec<Block> {
    let mut out = Vec::new();
    let quick = match run.quick {
        Some(true) => b.t(" It was a quick run (`--quick`): fewer reps and smaller counts than the chapter.", " Fue una corrida rápida (`--quick`): menos repeticiones y conteos más chicos que el capítulo."),
        _ => String::new(),
    };
    // The folder's name, not its path: run folders get moved (the scripts move theirs).
    let name = run
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.push(Block::Para(b.t(
        format!("Results of run `{name}`, measured with probe beside the course chapter's reference figures. What carries over between machines are proportions, not absolute numbers.{quick}"),
        format!("Resultados de la corrida `{name}`, medidos con probe junto a las cifras de referencia del capítulo del curso. Lo que se traslada entre máquinas son las proporciones, no los números absolutos.{quick}"),
    )));
    if let Some(h) = &b.host {
        out.push(Block::Heading(
            2,
            b.t(
                "This machine and the chapter's",
                "Esta máquina y la del capítulo",
            ),
        ));
        let mut t = Table::new([
            b.t("", ""),
            b.t("this machine", "esta máquina"),
            b.t("the chapter's", "la del capítulo"),
        ]);
        let engines: Vec<String> = h
            .runtimes
            .iter()
            // `runc --version` says "runc version 1.1.5": keep the number only.
            .filter_map(|r| {
                r.version.as_ref().map(|v| {
                    format!(
                        "{} {}",
                        r.runtime,
                        v.strip_prefix(&format!("{} version ", r.runtime))
                            .unwrap_or(v)
                    )
                })
            })
            .collect();
        t.row([
            b.t("machine", "máquina"),
            format!(
                "{}, {} CPU, {} MB RAM, Linux {}",
                h.cpu_model, h.cpus, h.memory_total_mb, h.kernel
            ),
            chapter_machine(b),
        ]);
        t.row([b.t("engines", "motores"), engines.join(", "), String::new()]);
        t.row([b.t("date", "fecha"), h.date.clone(), String::new()]);
        out.push(Block::Table(t));
    }
    out.push(Block::Heading(2, b.t("Summary", "Tabla resumen")));
    let mut runtimes: Vec<String> = b
        .summary
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.0.clone()))
        .collect();
    // In the order the chapter reads them, the others after.
    runtimes.sort_by_key(|r| (super::chart::runtime_rank(r).unwrap_or(usize::MAX), r.clone()));
    runtimes.dedup();
    let mut head = vec![b.t("Aspect", "Aspecto")];
    head.extend(runtimes.iter().cloned());
    head.push(b.t("Verdict", "Veredicto"));
    let mut t = Table::new(head);
    for r in &b.summary {
        let mut row = vec![format!("**{}**", r.aspect)];
        row.extend(runtimes.iter().map(|rt| {
            r.cells
                .iter()
                .find(|c| &c.0 == rt)
                .map(|c| c.1.clone())
                .unwrap_or_else(|| "—".into())
        }));
        row.push(r.verdict.clone());
        t.row(row);
    }
    out.push(Block::Table(t));
    if !b.ratios.is_empty() {
        out.push(Block::Heading(
            2,
            b.t(
                "Proportions here and on the chapter's machine",
                "Proporciones aquí y en la máquina del capítulo",
            ),
        ));
        out.push(Block::Para(b.t(
            "Each figure is a proportion between runtimes measured in one run, so it can be set beside the chapter's. `here ÷ chapter` near 1 means the proportion carried over.",
            "Cada cifra es una proporción entre runtimes medida en una misma corrida, así que se puede poner junto a la del capítulo. `aquí ÷ capítulo` cerca de 1 significa que la proporción se mantuvo.",
        )));
        let mut t = Table::new([
            b.t("Figure", "Cifra"),
            b.t("here", "aquí"),
            b.t("chapter", "capítulo"),
            b.t(
                "here ÷ chapter (or difference)",
                "aquí ÷ capítulo (o diferencia)",
            ),
        ]);
        for r in &b.ratios {
            let fmt = |v: f64| match r.kind {
                RatioKind::Times => format!("{}×", sig(v)),
                RatioKind::Percent => format!("{v:+.1}%"),
            };
            let compare = match (r.kind, r.chapter) {
                (RatioKind::Times, Some(c)) if c != 0.0 => format!("{:.2}", r.here / c),
                (RatioKind::Percent, Some(c)) => b.t(
                    format!("{:+.1} points", r.here - c),
                    format!("{:+.1} puntos", r.here - c),
                ),
                _ => "—".into(),
            };
            t.row([
                r.figure.clone(),
                fmt(r.here),
                r.chapter.map(fmt).unwrap_or_else(|| "—".into()),
                compare,
            ]);
        }
        out.push(Block::Table(t));
    }
    if !b.verdicts.is_empty() {
        out.push(Block::Heading(2, b.t("Verdicts", "Veredictos")));
        out.push(Block::List(b.verdicts.clone()));
    }
    out
}

/// The chapter's machine as probes/ describes it (in English); in Spanish only its versions,
/// the part after "machine:" up to the first ';', are kept.
fn chapter_machine(b: &Builder) -> String {
    let text = b.chapter_machine.clone().unwrap_or_default();
    match b.lang {
        Lang::En => text,
        Lang::Es => {
            let versions = text
                .split_once("machine:")
                .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_string());
            match versions {
                Some(v) if !v.is_empty() => format!("la máquina de prueba del capítulo: {v}"),
                _ => "la máquina de prueba del capítulo".into(),
            }
        }
    }
}

/// A number with about three significant digits: 0.62, 12.4, 237.
pub fn sig(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
