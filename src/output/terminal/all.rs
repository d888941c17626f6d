//! `probe all` on the terminal: one progress line with an ETA while the experiments run, the
//! table of how each went, and the report in English and Spanish.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::experiment::all::{self, Entry, Observer, Status, Step, STEPS};
use crate::output::report::{self, lang::Lang};
use crate::output::table::Table;

/// One row per experiment: its status, seconds and note.
pub fn render(entries: &[Entry]) -> String {
    let mut t = Table::new(["experiment", "status", "seconds", "note"]);
    for e in entries {
        let chapter: Vec<String> = all::step(&e.step)
            .map(|s| s.chapter.iter().map(u8::to_string).collect())
            .unwrap_or_default();
        t.row([
            format!("{} (Exp {})", e.step, chapter.join(", ")),
            status_word(e.status).into(),
            format!("{:.1}", e.seconds),
            e.note.clone(),
        ]);
    }
    t.render()
}

/// Writes the run's report in English and Spanish and says where.
pub fn reports(run_dir: &Path) -> anyhow::Result<()> {
    for lang in [Lang::En, Lang::Es] {
        let w = report::generate(run_dir, lang)?;
        for n in &w.notes {
            eprintln!("report: {n}");
        }
        eprintln!("report: {} and {}", w.markdown.display(), w.html.display());
    }
    Ok(())
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Done => "done",
        Status::Failed => "FAILED",
        Status::Unavailable => "not available in this build",
        Status::Interrupted => "interrupted",
    }
}

/// What the display knows: the steps still to run, how long they should take, how the run
/// has gone so far against its estimates.
struct Plan {
    quick: bool,
    /// Estimates of steps not started yet.
    pending: Vec<Duration>,
    current: Option<(&'static str, Duration, Instant)>,
    estimated_done: Duration,
    actual_done: Duration,
}

impl Plan {
    /// Remaining time: what is left of the estimates, scaled by how fast the run has gone
    /// compared with them so far (clamped: one odd step should not swing it wildly).
    fn eta(&self) -> Duration {
        let pace = if self.estimated_done.is_zero() {
            1.0
        } else {
            (self.actual_done.as_secs_f64() / self.estimated_done.as_secs_f64()).clamp(0.3, 3.0)
        };
        let current = self
            .current
            .map(|(_, est, since)| est.mul_f64(pace).saturating_sub(since.elapsed()))
            .unwrap_or_default();
        self.pending.iter().sum::<Duration>().mul_f64(pace) + current
    }
}

/// One line on stderr: a bar over the whole sequence, the step running, elapsed and ETA;
/// plain lines instead when stderr is not a terminal (logs, CI).
pub struct Display {
    bar: Option<ProgressBar>,
    plan: Arc<Mutex<Plan>>,
    total: usize,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Display {
    pub fn new(quick: bool, journal: &std::collections::BTreeMap<String, Entry>) -> Display {
        let todo: Vec<&Step> = STEPS
            .iter()
            .filter(|s| journal.get(s.id).map_or(true, |e| e.status != Status::Done))
            .collect();
        let plan = Arc::new(Mutex::new(Plan {
            quick,
            pending: todo.iter().map(|s| s.estimate(quick)).collect(),
            current: None,
            estimated_done: Duration::ZERO,
            actual_done: Duration::ZERO,
        }));
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(STEPS.len() as u64);
            b.set_style(
                ProgressStyle::with_template("{spinner} {pos}/{len} done · {msg}")
                    .expect("valid template"),
            );
            b.set_position((STEPS.len() - todo.len()) as u64);
            b
        });
        // The ETA counts down between steps too, so the line is redrawn every half second.
        let ticker = bar.clone().map(|b| {
            let plan = Arc::clone(&plan);
            std::thread::spawn(move || {
                while !b.is_finished() {
                    b.set_message(line(&plan.lock().expect("display lock")));
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        });
        Display {
            bar,
            plan,
            total: STEPS.len(),
            ticker,
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

fn line(p: &Plan) -> String {
    match p.current {
        Some((id, _, since)) => format!(
            "{id:<14} {:>4.0} s   ETA {}",
            since.elapsed().as_secs_f64(),
            mmss(p.eta())
        ),
        None => format!("ETA {}", mmss(p.eta())),
    }
}

fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

impl Observer for Display {
    fn started(&mut self, step: &Step, index: usize) {
        let mut p = self.plan.lock().expect("display lock");
        if !p.pending.is_empty() {
            p.pending.remove(0);
        }
        let est = step.estimate(p.quick);
        p.current = Some((step.id, est, Instant::now()));
        if self.bar.is_none() {
            eprintln!(
                "[{}/{}] {} … (ETA {})",
                index + 1,
                self.total,
                step.id,
                mmss(p.eta())
            );
        }
    }

    fn finished(&mut self, step: &Step, entry: &Entry) {
        let mut p = self.plan.lock().expect("display lock");
        if let Some((_, est, since)) = p.current.take() {
            // Unavailable steps took no time and say nothing about the pace.
            if entry.status != Status::Unavailable {
                p.estimated_done += est;
                p.actual_done += since.elapsed();
            }
        }
        let msg = format!(
            "{}: {} ({:.1} s){}",
            step.id,
            status_word(entry.status),
            entry.seconds,
            if entry.note.is_empty() {
                String::new()
            } else {
                format!(" — {}", entry.note)
            }
        );
        match &self.bar {
            Some(b) => {
                b.println(msg);
                b.inc(1);
            }
            None => eprintln!("{msg}"),
        }
    }
}
