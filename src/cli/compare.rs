//! `probe compare`: run folders side by side, with a verdict per shared figure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::output::compare;
use crate::output::report::{self, lang::Lang};
use crate::output::results::RunDir;
use crate::output::table::terminal_width;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    probe compare results/20261129-101010-startup results/latest\n  \
    probe compare before/ after/ --lang es\n\n\
Every later run is compared with the first (A). Prints the host and version differences, then\n\
each figure both runs have with B/A (ratio of medians), its 95% bootstrap interval over the raw\n\
reps and a verdict: faster, slower or no clear difference (the interval contains 1, the ratio\n\
is within --noise of 1, the median moved by no more than either run's own drift -- its later\n\
half of reps against its earlier half, column drift -- or a startup phase moved by less than\n\
its runtime's total is known: below noise floor). Writes compare.<lang>.md and\n\
compare.<lang>.html with a chart of the phases into a new folder.")]
pub struct CompareArgs {
    /// Run folders (of `probe all` or of one experiment); the first is the baseline.
    #[arg(value_name = "RUN", num_args = 2.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Language of the printed table and the files.
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
    /// Changes smaller than this many percent are "no clear difference" even when the interval
    /// excludes 1: back-to-back runs of one setting on a busy 2-CPU VM drifted by 5–20% in
    /// sub-millisecond phases (cache and CPU contention), which no resampling of reps sees.
    /// Each figure is also held against each run's own drift, measured from its reps (column drift).
    #[arg(long, default_value_t = 10.0, value_name = "PCT")]
    pub noise: f64,
    /// Print the comparison as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Folder that receives the comparison's new folder (<date>-compare).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
}

pub fn run(a: CompareArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(a.noise.is_finite() && (0.0..100.0).contains(&a.noise), "--noise {} is not a percentage below 100: pass e.g. --noise 5", a.noise);
    let c = compare::compare(compare::load_all(&a.runs)?, a.noise / 100.0);
    let lang = a.lang;
    let dir = RunDir::create(&a.results, "compare")?;
    let (doc, charts) = compare::document(&c, lang);
    let written = report::write(dir.path(), "compare", &doc, &charts, lang)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&compare::json(&c))?);
    } else {
        print!("{}", compare::terminal(&c, lang, terminal_width()));
    }
    for n in &written.notes {
        eprintln!("note: {n}");
    }
    eprintln!("{}", written.markdown.display());
    eprintln!("{}", written.html.display());
    Ok(ExitCode::SUCCESS)
}
