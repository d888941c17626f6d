//! Every table probe prints, and the prose around it (doctor's fixes, startup's notes), fits the
//! terminal it is given: `probe doctor` and the startup table (with its breakdown) at 80 and 120
//! columns, width forced through $COLUMNS (stdout is a pipe here, so probe cannot ask the
//! terminal).

mod common;

use std::process::Command;

use common::{probe_bin, require_root, TempDir};

/// probe's stdout at `width` columns; every line of its tables is checked. A table is its
/// header, a ─ rule and the rows after it that keep to the rule's columns (a space wherever the
/// rule has its gaps); a blank line or prose that crosses a gap ends it.
fn at_width(args: &[&str], width: usize) -> String {
    let o = Command::new(probe_bin()).args(args).env("COLUMNS", width.to_string()).output().unwrap();
    assert!(o.status.success(), "probe {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    let mut tables = 0;
    let mut in_table = vec![false; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('─') && i > 0 {
            tables += 1;
            let gaps: Vec<usize> = l.chars().enumerate().filter(|(_, c)| *c == ' ').map(|(k, _)| k).collect();
            let keeps_columns = |row: &str| {
                let chars: Vec<char> = row.chars().collect();
                gaps.iter().all(|&k| chars.get(k).is_none_or(|c| *c == ' '))
            };
            in_table[i - 1] = true;
            for j in i..lines.len() {
                if lines[j].is_empty() || !keeps_columns(lines[j]) {
                    break;
                }
                in_table[j] = true;
            }
        }
    }
    assert!(tables > 0, "probe {args:?} printed no table: {out}");
    for l in lines.iter().zip(&in_table).filter(|(_, t)| **t).map(|(l, _)| l) {
        assert!(l.chars().count() <= width, "probe {args:?} at {width} columns: {l:?}");
    }
    out
}

#[test]
fn doctor_fits_80_and_120_columns_with_text_left_aligned() {
    for w in [80, 120] {
        let out = at_width(&["doctor"], w);
        // The kernel release is text: it starts right after the ok/NO column, never pushed right.
        let kernel = out.lines().find(|l| l.contains("release")).unwrap_or_else(|| panic!("{out}"));
        let detail = kernel.split("  ok  ").nth(1).or_else(|| kernel.split("  NO  ").nth(1)).unwrap();
        assert!(detail.chars().next().is_some_and(|c| c.is_ascii_digit()), "kernel release not left-aligned: {kernel:?}");
        // "To fix" is prose: wrapped to the width, each item's continuation indented under it.
        // This VM has no PMU, so the perf checks always print a fix.
        let fixes = prose_after(&out, "To fix:", w);
        assert!(fixes.iter().any(|l| l.starts_with("  perf ")), "no fix printed: {out}");
        assert!(fixes[1..].iter().all(|l| l.starts_with("  ")), "{fixes:?}");
    }
}

/// The lines of the paragraph that starts with the line beginning `start`, up to a blank line;
/// each is checked to fit `width` columns.
fn prose_after<'a>(out: &'a str, start: &str, width: usize) -> Vec<&'a str> {
    let lines: Vec<&str> = out.lines().skip_while(|l| !l.starts_with(start)).take_while(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no {start:?} in {out}");
    for l in &lines {
        assert!(l.chars().count() <= width, "prose at {width} columns: {l:?}");
    }
    lines
}

#[test]
fn startup_tables_fit_80_and_120_columns() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("table-width");
    for w in [80, 120] {
        let out = at_width(&["startup", "--runtimes", "bare,native", "--reps", "3", "--breakdown", "-q", "--results", t.s()], w);
        // The note under the namespaces' table is one long sentence: wrapped, not cut.
        let note = prose_after(&out, "release = ", w);
        assert!(note.len() > 1 && note.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ").ends_with("no container start pays it directly"), "{note:?}");
        for l in out.lines().filter(|l| l.starts_with("Phases of ")) {
            assert!(l.chars().count() <= w, "{l:?}");
        }
    }
}
