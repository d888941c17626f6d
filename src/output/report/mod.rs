//! `probe report`: one Markdown and one self-contained HTML file per run folder, with charts
//! as PNG (linked from the Markdown) and SVG (inlined in the HTML), in English or Spanish.

pub mod chart;
pub(crate) mod doc;
mod draw;
mod files;
mod html;
pub mod lang;
pub(crate) mod load;
mod markdown;
mod section;

pub(crate) use section::sig;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use doc::Figure;
use lang::Lang;

pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// Things the user should know (charts that could not be drawn).
    pub notes: Vec<String>,
}

const CHARTS: &str = "charts";

pub fn generate(run: &Path, lang: Lang) -> Result<Written> {
    let folder = load::find(run)?;
    let (doc, charts) = section::build(&folder, lang);
    write(&folder.dir, "report", &doc, &charts, lang)
}

/// Writes `<stem>.<lang>.md` and `.html` into `dir`, with the charts drawn into `dir/charts/`
/// (a chart that cannot be drawn is left out and named in `notes`).
pub(crate) fn write(dir: &Path, stem: &str, doc: &doc::Doc, charts: &[chart::Chart], lang: Lang) -> Result<Written> {
    let chart_dir = dir.join(CHARTS);
    std::fs::create_dir_all(&chart_dir)
        .with_context(|| format!("creating {}", chart_dir.display()))?;
    let mut notes = Vec::new();
    let mut figures = Vec::new();
    for c in charts {
        let file = format!("{}.{}", c.name, lang.code());
        let drawn = draw::svg(c).and_then(|svg| {
            files::replace_atomic(&chart_dir.join(format!("{file}.svg")), svg.as_bytes())?;
            let png = chart_dir.join(format!("{file}.png"));
            files::write_via_temp(&png, |tmp| draw::png(c, tmp).map_err(std::io::Error::other))?;
            Ok(svg)
        });
        match drawn {
            Ok(svg) => figures.push(Figure {
                title: c.title.clone(),
                png: Some(format!("{CHARTS}/{file}.png")),
                svg: Some(svg),
            }),
            Err(e) => {
                // One line, once: without a font every chart fails the same way.
                let line = format!("charts left out: {e:#}");
                if !notes.contains(&line) {
                    notes.push(line);
                }
                figures.push(Figure {
                    title: c.title.clone(),
                    png: None,
                    svg: None,
                });
            }
        }
    }
    let markdown = dir.join(format!("{stem}.{}.md", lang.code()));
    let html = dir.join(format!("{stem}.{}.html", lang.code()));
    files::replace_atomic(&markdown, markdown::render(doc, &figures).as_bytes())?;
    files::replace_atomic(&html, html::render(doc, &figures, lang.code()).as_bytes())?;
    Ok(Written {
        markdown,
        html,
        notes,
    })
}
