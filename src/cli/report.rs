//! `probe report`: the Markdown and HTML report of a run folder, with its charts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::output::report::{self, lang::Lang};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    probe report                                  the newest run (results/latest), in English\n  \
    probe report results/latest --lang es         in Spanish, the chapter's language\n\n\
Writes report.<lang>.md, report.<lang>.html (self-contained: charts inlined as SVG) and\n\
charts/*.<lang>.png and .svg into the run folder, replacing an earlier report in the same language.")]
pub struct ReportArgs {
    /// A run folder of `probe all` or of a single experiment.
    #[arg(default_value = "results/latest", value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Language of the report.
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
}

pub fn run(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let w = report::generate(&a.run, a.lang)?;
    for n in &w.notes {
        eprintln!("note: {n}");
    }
    println!("{}", w.markdown.display());
    println!("{}", w.html.display());
    Ok(ExitCode::SUCCESS)
}
