//! `probe doctor` on the terminal: one line per check, then how to fix what fails.

use crate::experiment::doctor::Check;
use crate::output::table::{prose, terminal_width, Table};

pub fn render(all: &[Check]) -> String {
    let mut t = Table::new(["area", "check", "", "detail"]);
    for c in all {
        t.row([
            c.area.to_string(),
            c.name.clone(),
            if c.ok { "ok" } else { "NO" }.to_string(),
            c.detail.clone(),
        ]);
    }
    let mut out = t.render();
    let fixes: Vec<_> = all.iter().filter_map(|c| c.fix.as_ref().map(|f| (c, f))).collect();
    if !fixes.is_empty() {
        out.push_str("\nTo fix:\n");
        for (c, f) in fixes {
            out.push_str(&prose(&format!("{} {}: {f}", c.area, c.name), "  ", "    ", terminal_width()));
        }
    }
    out
}
