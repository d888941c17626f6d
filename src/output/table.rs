//! Plain-text tables for a terminal: columns of numbers right-aligned, text left-aligned, and
//! the whole table fitted to the terminal's width by wrapping long cells onto lines of their own
//! under their row.

use std::io::IsTerminal;

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Width for output that is not a terminal and names none: files and pipes get what a
/// standard terminal shows, so a saved table reads the same when printed back.
const DEFAULT_WIDTH: usize = 80;
/// A column never gets narrower than this, even if a word must be cut.
const MIN_COLUMN: usize = 4;
const GAP: &str = "  ";

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Rendered for the width of the terminal on stdout (see [`terminal_width`]).
    pub fn render(&self) -> String {
        self.render_width(terminal_width())
    }

    pub fn render_width(&self, max_width: usize) -> String {
        let cols = self.header.len();
        let cell = |r: &Vec<String>, i: usize| r.get(i).map(String::as_str).unwrap_or("").to_string();
        let all: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|r| (0..cols).map(|i| cell(r, i)).collect())
            .collect();
        // A column is right-aligned when every value in it is a number (an empty or "-" cell
        // is no value): a lone numeric-looking detail among text ("6.18.0", "2") stays left.
        let right: Vec<bool> = (0..cols)
            .map(|i| {
                let values: Vec<&str> = self.rows.iter().map(|r| r.get(i).map(String::as_str).unwrap_or("")).filter(|c| !no_value(c)).collect();
                i > 0 && !values.is_empty() && values.iter().all(|c| is_number(c))
            })
            .collect();
        let width = fit(&all, max_width);
        let mut out = String::new();
        for (n, r) in all.iter().enumerate() {
            out.push_str(&lines(r, &width, &right));
            if n == 0 {
                out.push_str(&width.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>().join(GAP));
                out.push('\n');
            }
        }
        out
    }
}

/// Column widths: each column's widest cell, then, while the table is wider than `max`, the
/// widest column loses a character — first down to its longest word (cells wrap between
/// words), then, if that is still too wide, down to MIN_COLUMN (words are cut).
fn fit(all: &[Vec<String>], max: usize) -> Vec<usize> {
    let cols = all.first().map_or(0, Vec::len);
    let len = |s: &str| s.chars().count();
    let mut width: Vec<usize> = (0..cols).map(|i| all.iter().map(|r| len(&r[i])).max().unwrap_or(0)).collect();
    let word: Vec<usize> = (0..cols)
        .map(|i| all.iter().flat_map(|r| r[i].split(' ').map(len)).max().unwrap_or(0).max(MIN_COLUMN))
        .collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + GAP.len() * cols.saturating_sub(1);
    while total(&width) > max {
        let widest = |floor: &dyn Fn(usize) -> usize| {
            (0..cols).filter(|&i| width[i] > floor(i)).max_by_key(|&i| (width[i], i))
        };
        match widest(&|i| word[i]).or_else(|| widest(&|_| MIN_COLUMN)) {
            Some(i) => width[i] -= 1,
            None => break,
        }
    }
    width
}

/// One table row as one or more terminal lines: each cell wrapped to its column, the
/// continuation lines under their own column.
fn lines(r: &[String], width: &[usize], right: &[bool]) -> String {
    let wrapped: Vec<Vec<String>> = r.iter().zip(width).map(|(c, &w)| wrap(c, w)).collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    let mut out = String::new();
    for l in 0..height {
        let cells: Vec<String> = wrapped
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = c.get(l).map(String::as_str).unwrap_or("");
                if right[i] {
                    format!("{c:>w$}", w = width[i])
                } else {
                    format!("{c:<w$}", w = width[i])
                }
            })
            .collect();
        out.push_str(cells.join(GAP).trim_end());
        out.push('\n');
    }
    out
}

/// Greedy word wrap to `w` characters; a word longer than `w` is cut.
pub fn wrap(text: &str, w: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let used = line.chars().count();
        if used > 0 && used + 1 + word.len() <= w {
            line.push(' ');
            line.extend(&word);
            continue;
        }
        if used > 0 {
            out.push(std::mem::take(&mut line));
        }
        while word.len() > w {
            out.push(word.drain(..w).collect());
        }
        line = word.into_iter().collect();
    }
    out.push(line);
    out
}

/// Prose fitted to `width` columns like the tables: `first` leads the first line and `rest`
/// each continuation, so a wrapped item still reads as one (hanging indent).
pub fn prose(text: &str, first: &str, rest: &str, width: usize) -> String {
    let indent = first.chars().count().max(rest.chars().count());
    wrap(text, width.saturating_sub(indent).max(20))
        .iter()
        .enumerate()
        .map(|(k, line)| format!("{}{line}\n", if k == 0 { first } else { rest }))
        .collect()
}

fn no_value(c: &str) -> bool {
    matches!(c.trim(), "" | "-" | "—" | "n/a")
}

/// A measured quantity: a number, possibly signed or marked (×2.1, +5%, ~3), possibly followed
/// by its spread or unit ("12.4 ± 0.3", "0.5–0.7", "3 ms"). A version or a dotted release
/// (6.18.0) is not one.
fn is_number(c: &str) -> bool {
    let first = c.trim().split(' ').next().unwrap_or("");
    let core = first
        .trim_start_matches(['+', '-', '−', '×', '~', '≈', '<', '>'])
        .trim_end_matches(['%', '×', 'x', 's']);
    let core = core.split('–').next().unwrap_or("");
    !core.is_empty() && core.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The width tables are fitted to: the terminal's on stdout (TIOCGWINSZ), else $COLUMNS, else
/// DEFAULT_WIDTH — output to a file or a pipe is wrapped too, as a terminal would show it.
pub fn terminal_width() -> usize {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize into the pointed-to struct, which lives here.
        let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_col > 0 {
            return ws.ws_col as usize;
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .unwrap_or(DEFAULT_WIDTH)
}

/// Milliseconds with a precision that suits their size: 0.62, 12.4, 312.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(["runtime", "median"]);
        t.row(["bare", "0.61"]);
        t.row(["docker", "212"]);
        let s = t.render_width(80);
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines[0], "runtime  median");
        assert_eq!(lines[2], "bare       0.61");
        assert_eq!(lines[3], "docker      212");
    }

    #[test]
    fn text_stays_left_even_when_it_looks_numeric() {
        let mut t = Table::new(["area", "check", "detail"]);
        t.row(["kernel", "release", "6.18.0"]);
        t.row(["perf", "paranoid", "2"]);
        t.row(["cgroup", "layout", "v2 unified"]);
        let s = t.render_width(80);
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines[2], "kernel  release   6.18.0");
        assert_eq!(lines[3], "perf    paranoid  2");
        assert!(is_number("12.4 ± 0.3") && is_number("×2.1") && is_number("+5%") && is_number("0.5–0.7"));
        assert!(!is_number("6.18.0") && !is_number("ok") && !is_number("v2"));
    }

    #[test]
    fn long_cells_wrap_under_their_row_to_fit() {
        let mut t = Table::new(["area", "check", "", "detail"]);
        let long = "unified v2 hierarchy mounted at /sys/fs/cgroup with controllers cpu io memory pids cpuset hugetlb rdma misc delegated to this user through systemd";
        t.row(["cgroup", "layout", "ok", long]);
        t.row(["kernel", "release", "ok", "6.18.0"]);
        for w in [40, 80, 120] {
            let s = t.render_width(w);
            for l in s.lines() {
                assert!(l.chars().count() <= w, "{w}: {l:?}");
            }
            let lines: Vec<_> = s.lines().collect();
            assert!(lines[2].starts_with("cgroup  layout   ok  unified"), "{s}");
            // The continuation is indented to the detail column, the next row follows it.
            assert!(lines[3].starts_with("                    "), "{s}");
            let words: Vec<&str> = s.lines().skip(2).take_while(|l| !l.starts_with("kernel")).flat_map(|l| l.split_whitespace()).collect();
            assert_eq!(words[3..].join(" "), long);
        }
        // Wide enough: one line per row.
        assert_eq!(t.render_width(400).lines().count(), 4);
    }

    #[test]
    fn words_longer_than_the_column_are_cut() {
        assert_eq!(wrap("abcdefghij kl", 4), ["abcd", "efgh", "ij", "kl"]);
        assert_eq!(wrap("", 4), [""]);
    }

    #[test]
    fn ms_precision() {
        assert_eq!(ms(0.6234), "0.62");
        assert_eq!(ms(12.44), "12.4");
        assert_eq!(ms(312.4), "312");
    }
}
