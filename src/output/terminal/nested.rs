//! `probe nested` on the terminal: which approach works, why the others fail and what to do,
//! their security cost, and what each level of nesting costs.

use crate::experiment::nested::{ApproachResult, Report};
use crate::output::table::{ms, Table};

fn opt_s(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}s", v / 1e3)).unwrap_or_else(|| "-".into())
}

fn reason(a: &ApproachResult) -> String {
    match &a.cause {
        Some(c) => format!("{}: {} → {}", serde_json::to_value(c.missing).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(), c.syscall, c.errno),
        None => "—".into(),
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::from("Experiments 5 and 9: containers inside containers\n\n");
    if !r.results.is_empty() {
        let mut t = Table::new(["#", "exp", "runtime", "approach", "result", "time", "to echo ok", "daemon", "import", "reason (missing: syscall → errno)", "chapter"]);
        for (i, a) in r.results.iter().enumerate() {
            let chapter = r
                .reference
                .rows
                .iter()
                .find(|row| row.id == a.id)
                .map(|row| format!("{}{}", row.result, row.seconds.map(|s| format!(" {s}s")).unwrap_or_default()))
                .unwrap_or_default();
            t.row([
                (i + 1).to_string(),
                a.experiment.to_string(),
                a.engine.clone(),
                a.approach.clone(),
                if a.success { "Success".into() } else { "Error".into() },
                format!("{:.2}s", a.total_ms / 1e3),
                opt_s(a.first_echo_ms),
                opt_s(a.daemon_ms),
                opt_s(a.import_ms),
                reason(a),
                chapter,
            ]);
        }
        out.push_str(&t.render());

        out.push_str("\nWhy, and what to do:\n");
        for (i, a) in r.results.iter().enumerate() {
            if let Some(c) = &a.cause {
                out.push_str(&format!("  #{} {}: while trying to {}, {}.\n     fix: {}\n     engine said: {}\n", i + 1, a.id, c.step, c.reason, c.fix, c.evidence));
            }
        }
        out.push_str("\nSecurity cost of what works:\n");
        for (i, a) in r.results.iter().enumerate() {
            if let Some(s) = &a.security {
                out.push_str(&format!("  #{} {}: {s}\n", i + 1, a.id));
            }
        }

        out.push_str("\nNesting cost (engines): outer container start vs inner container start\n");
        let mut n = Table::new(["approach", "outer start ms", "inner start ms", "inner ÷ outer"]);
        for a in r.results.iter().filter(|a| a.success) {
            let (o, i) = (a.outer_start_ms.unwrap_or(0.0), a.inner_start_ms.unwrap_or(0.0));
            n.row([a.id.clone(), ms(o), ms(i), if o > 0.0 { format!("{:.2}", i / o) } else { "-".into() }]);
        }
        out.push_str(&n.render());
    }
    for n in &r.not_run {
        out.push_str(&format!("Not run here ({}: {}): {}\n", n.engine, n.approaches.join(", "), n.reason));
    }

    if !r.native.is_empty() {
        out.push_str("\nNative-in-native: `echo ok` through N nested `probe run`s\n");
        let mut t = Table::new(["depth", "result", "median ms", "level cost ms", "reason"]);
        for l in &r.native {
            t.row([
                l.depth.to_string(),
                if l.success { "Success".into() } else { "Error".into() },
                l.median_ms.map(ms).unwrap_or_else(|| "-".into()),
                l.level_cost_ms.map(ms).unwrap_or_else(|| "-".into()),
                l.cause.as_ref().map(|c| format!("{} ({} → {}); fix: {}", c.reason, c.syscall, c.errno, c.fix)).unwrap_or_else(|| "—".into()),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}
