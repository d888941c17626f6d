//! `probe cleanup` on the terminal: one line per thing removed (or that would be).

use crate::runtimes::cleanup::Cleaned;

/// What goes to stdout; the failures go to stderr (`failures`).
pub fn render(done: &Cleaned, dry_run: bool) -> String {
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut out = String::new();
    for (what, items) in [
        ("container", &done.containers),
        ("mount", &done.mounts),
        ("cgroup", &done.cgroups),
        ("dir", &done.dirs),
    ] {
        for i in items {
            out.push_str(&format!("{verb} {what} {i}\n"));
        }
    }
    if done.is_empty() && done.failed.is_empty() {
        out.push_str("nothing of probe's left behind\n");
    }
    out
}

pub fn failures(done: &Cleaned) -> String {
    done.failed.iter().map(|f| format!("could not clean: {f}\n")).collect()
}
