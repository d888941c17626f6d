//! Writes the report as one self-contained HTML file: styles inline, charts as inline SVG,
//! nothing fetched from anywhere, so it opens offline and can be mailed as one file.

use super::doc::{Block, Doc, Figure};

const STYLE: &str = "body{font-family:sans-serif;max-width:1050px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f2f2f2}code{background:#f4f4f4;padding:0 .2em;border-radius:3px}\
blockquote{border-left:4px solid #e0a800;background:#fff8e1;margin:1em 0;padding:.5em 1em}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}";

pub fn render(doc: &Doc, figures: &[Figure], lang: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&doc.title),
        inline(&doc.title)
    );
    for b in &doc.blocks {
        match b {
            Block::Heading(level, text) => {
                out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(text)))
            }
            Block::Para(text) => out.push_str(&format!("<p>{}</p>\n", inline(text))),
            Block::Note(text) => {
                out.push_str(&format!("<blockquote>{}</blockquote>\n", inline(text)))
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => {
                out.push_str("<table>\n<tr>");
                for h in &t.head {
                    out.push_str(&format!("<th>{}</th>", inline(h)));
                }
                out.push_str("</tr>\n");
                for r in &t.rows {
                    out.push_str("<tr>");
                    for c in r {
                        out.push_str(&format!("<td>{}</td>", inline(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            Block::Figure(i) => {
                let f = &figures[*i];
                out.push_str("<figure>\n");
                if let Some(svg) = &f.svg {
                    out.push_str(strip_xml_declaration(svg));
                    out.push('\n');
                }
                out.push_str(&format!(
                    "<figcaption>{}</figcaption>\n</figure>\n",
                    inline(&f.title)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// plotters may start its SVG with an XML declaration, which is not allowed inside HTML.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escaped text with `code spans` and **bold** rendered.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            for (j, p) in escape(part).split("**").enumerate() {
                if j % 2 == 1 {
                    out.push_str(&format!("<strong>{p}</strong>"));
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_inlines_and_references_nothing_outside() {
        let doc = Doc {
            title: "a < b".into(),
            blocks: vec![
                Block::Para("run `docker run --rm` **now** & see".into()),
                Block::Figure(0),
            ],
        };
        let figs = [Figure {
            title: "c".into(),
            png: None,
            svg: Some("<?xml version=\"1.0\"?>\n<svg></svg>".into()),
        }];
        let html = render(&doc, &figs, "en");
        assert!(html.contains("<h1>a &lt; b</h1>"));
        assert!(html.contains("<code>docker run --rm</code> <strong>now</strong> &amp; see"));
        assert!(html.contains("<figure>\n<svg></svg>"));
        assert!(!html.contains("<?xml"));
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!html.contains(external), "{external}");
        }
    }
}
