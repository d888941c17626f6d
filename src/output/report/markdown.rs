//! Writes the report as GitHub-flavoured Markdown; charts are linked PNG files.

use super::doc::{Block, Doc, Figure};

pub fn render(doc: &Doc, figures: &[Figure]) -> String {
    let mut out = format!("# {}\n\n", doc.title);
    for b in &doc.blocks {
        match b {
            Block::Heading(level, text) => {
                out.push_str(&format!("{} {text}\n\n", "#".repeat(*level as usize)))
            }
            Block::Para(text) => out.push_str(&format!("{text}\n\n")),
            Block::Note(text) => out.push_str(&format!("> {text}\n\n")),
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {i}\n"));
                }
                out.push('\n');
            }
            Block::Table(t) => {
                let line = |cells: &[String]| {
                    format!(
                        "| {} |\n",
                        cells
                            .iter()
                            .map(|c| cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                };
                out.push_str(&line(&t.head));
                out.push_str(&format!("|{}\n", "---|".repeat(t.head.len())));
                for r in &t.rows {
                    out.push_str(&line(r));
                }
                out.push('\n');
            }
            Block::Figure(i) => {
                let f = &figures[*i];
                match &f.png {
                    Some(png) => out.push_str(&format!("![{}]({png})\n\n", f.title)),
                    None => out.push_str(&format!("*{}*\n\n", f.title)),
                }
            }
        }
    }
    out
}

/// A table cell on one line, with pipes escaped.
fn cell(c: &str) -> String {
    c.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::super::doc::Table;
    use super::*;

    #[test]
    fn tables_figures_and_notes() {
        let mut t = Table::new(["a", "b"]);
        t.row(["1|2", "x"]);
        let doc = Doc {
            title: "T".into(),
            blocks: vec![
                Block::Table(t),
                Block::Figure(0),
                Block::Note("careful".into()),
            ],
        };
        let figs = [Figure {
            title: "Chart".into(),
            png: Some("charts/c.en.png".into()),
            svg: None,
        }];
        let md = render(&doc, &figs);
        assert!(md.starts_with("# T\n"));
        assert!(md.contains("| a | b |\n|---|---|\n| 1\\|2 | x |\n"));
        assert!(md.contains("![Chart](charts/c.en.png)"));
        assert!(md.contains("> careful"));
    }
}
