//! `probe all`: every experiment of the chapter in sequence, into one run folder.
//!
//! Each experiment runs as its own child process — the same `probe <experiment>` a user would
//! type — so one experiment's crash or leak cannot take the others down, and each keeps its
//! own signal handling and cleanup. A child writes into `<run>/.partial/<step>/`; only when it
//! succeeds is its run folder renamed to `<run>/<step>/` (atomic), and a line is appended to
//! the journal `<run>/all.state`. A resumed run skips the steps the journal lists as done, so
//! experiments finished before a kill are kept and never measured twice.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const JOURNAL: &str = "all.state";
const PARTIAL: &str = ".partial";
const LOGS: &str = "logs";

/// One experiment of the sequence.
pub struct Step {
    /// Subfolder name in the run folder, and the name in the journal.
    pub id: &'static str,
    /// The chapter's experiment numbers this step covers.
    pub chapter: &'static [u8],
    /// `probe` arguments: the subcommand and the flags that make this experiment.
    pub args: &'static [&'static str],
    /// Extra arguments for a full run (e.g. tracing that a quick run skips).
    pub full: &'static [&'static str],
    /// Flag/value pairs that make `--quick` quick: fewer reps, smaller counts.
    pub quick: &'static [(&'static str, &'static str)],
    /// Expected seconds here, [quick, full]: the ETA and the timeout come from it.
    pub estimate_s: [u64; 2],
}

pub const STEPS: [Step; 8] = [
    Step {
        id: "startup",
        chapter: &[1],
        args: &["startup", "--breakdown"],
        full: &[],
        quick: &[("--reps", "5")],
        estimate_s: [15, 60],
    },
    Step {
        id: "memory",
        chapter: &[2],
        args: &["memory"],
        full: &[],
        quick: &[
            ("--counts", "1,5"),
            ("--noise-reads", "4"),
            ("--settle", "1000"),
        ],
        estimate_s: [45, 200],
    },
    Step {
        id: "memory-cgroup",
        chapter: &[8],
        args: &["memory", "--cgroup"],
        full: &[],
        quick: &[("--counts", "0,1,3"), ("--settle-timeout", "3000")],
        estimate_s: [45, 120],
    },
    Step {
        id: "cpu",
        chapter: &[3],
        args: &["cpu"],
        full: &[],
        quick: &[("--count", "1000000"), ("--reps", "1")],
        estimate_s: [30, 600],
    },
    Step {
        id: "cpu-exec",
        chapter: &[7],
        args: &["cpu", "--exec"],
        full: &[],
        quick: &[("--count", "1000000"), ("--reps", "1")],
        estimate_s: [30, 300],
    },
    Step {
        id: "io",
        chapter: &[4],
        args: &["io"],
        full: &["--fsync-trace"],
        quick: &[("--size", "16"), ("--reps", "1")],
        estimate_s: [30, 180],
    },
    Step {
        id: "scale",
        chapter: &[6],
        args: &["scale"],
        full: &[],
        quick: &[("--counts", "5,10")],
        estimate_s: [40, 300],
    },
    Step {
        id: "nested",
        chapter: &[5, 9],
        args: &["nested"],
        full: &[],
        quick: &[],
        estimate_s: [60, 300],
    },
];

pub fn step(id: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.id == id)
}

impl Step {
    pub fn estimate(&self, quick: bool) -> Duration {
        Duration::from_secs(self.estimate_s[usize::from(!quick)])
    }

    /// Generous: a step is only stopped when it is clearly stuck, not merely slow.
    fn timeout(&self, quick: bool) -> Duration {
        self.estimate(quick) * 4 + Duration::from_secs(120)
    }

    /// The command line for this build of probe, or why the experiment cannot run in it.
    /// `cli` is probe's own clap definition: an experiment another engineer has not landed
    /// yet simply has no subcommand (or flag) there.
    pub fn plan(&self, cli: &clap::Command, quick: bool) -> Plan {
        let sub = match cli.find_subcommand(self.args[0]) {
            Some(s) => s,
            None => {
                return Plan::Unavailable(format!("this build has no `probe {}`", self.args[0]))
            }
        };
        let accepts = |flag: &str| {
            sub.get_arguments()
                .any(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))
        };
        if let Some(missing) = self.args[1..].iter().find(|f| !accepts(f)) {
            return Plan::Unavailable(format!(
                "this build's `probe {}` has no {missing}",
                self.args[0]
            ));
        }
        let mut args: Vec<String> = self.args.iter().map(|s| s.to_string()).collect();
        let mut dropped = Vec::new();
        if quick {
            for (flag, value) in self.quick {
                if accepts(flag) {
                    args.extend([flag.to_string(), value.to_string()]);
                } else {
                    dropped.push(format!("{flag} {value}"));
                }
            }
        } else {
            args.extend(
                self.full
                    .iter()
                    .filter(|f| accepts(f))
                    .map(|f| f.to_string()),
            );
        }
        Plan::Run { args, dropped }
    }
}

pub enum Plan {
    Run {
        args: Vec<String>,
        /// Quick-mode flags this build's experiment does not accept (it runs its defaults).
        dropped: Vec<String>,
    },
    Unavailable(String),
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Done,
    Failed,
    Unavailable,
    Interrupted,
}

/// One journal line: what became of a step.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Entry {
    pub step: String,
    pub status: Status,
    pub seconds: f64,
    /// Why it failed or is unavailable; flags it ran without.
    #[serde(default)]
    pub note: String,
}

/// Options of the whole run, fixed when it starts so that a resume measures alike.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct Options {
    pub quick: bool,
}

pub const OPTIONS: &str = "all.json";

/// An interrupted run to continue: its folder and the options it started with.
pub fn resume(dir: &Path) -> Result<(PathBuf, Options)> {
    let run = dir
        .canonicalize()
        .with_context(|| format!("cannot resume {}: no such run folder", dir.display()))?;
    Ok((run, read_options(dir)?))
}

pub fn read_options(run: &Path) -> Result<Options> {
    let path = run.join(OPTIONS);
    let text = fs::read(&path).with_context(|| {
        format!(
            "{} is not a `probe all` run folder (no readable {OPTIONS})",
            run.display()
        )
    })?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is damaged: remove the run folder or start a new run",
            path.display()
        )
    })
}

/// The journal's verdict per step (the last line about a step wins). A torn last line, as a
/// kill during the append leaves, is ignored: that step simply runs again.
pub fn read_journal(run: &Path) -> Result<BTreeMap<String, Entry>> {
    let path = run.join(JOURNAL);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = BTreeMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            out.insert(e.step.clone(), e);
        }
    }
    Ok(out)
}

/// Appends one line and fsyncs it: the line is either whole on disk or ignored on resume.
fn append(run: &Path, entry: &Entry) -> Result<()> {
    let path = run.join(JOURNAL);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut line = serde_json::to_vec(entry)?;
    line.push(b'\n');
    f.write_all(&line)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("appending to {}", path.display()))
}

/// Sees the sequence as it goes: the CLI draws its progress display from this.
pub trait Observer {
    fn started(&mut self, step: &Step, index: usize);
    fn finished(&mut self, step: &Step, entry: &Entry);
}

pub struct Config<'a> {
    pub probe: PathBuf,
    pub run: PathBuf,
    pub quick: bool,
    pub cli: &'a clap::Command,
}

/// Runs every step the journal does not list as done. Stops early only when interrupted;
/// a failed step is journaled and the next one runs.
pub fn run(
    cfg: &Config,
    interrupted: &dyn Fn() -> bool,
    observer: &mut dyn Observer,
) -> Result<Vec<Entry>> {
    let done = read_journal(&cfg.run)?;
    fs::create_dir_all(cfg.run.join(LOGS))
        .with_context(|| format!("creating {}", cfg.run.join(LOGS).display()))?;
    let mut entries = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        if let Some(e) = done.get(step.id).filter(|e| e.status == Status::Done) {
            entries.push(e.clone());
            continue;
        }
        if interrupted() {
            break;
        }
        observer.started(step, i);
        let entry = match step.plan(cfg.cli, cfg.quick) {
            Plan::Unavailable(why) => Entry {
                step: step.id.into(),
                status: Status::Unavailable,
                seconds: 0.0,
                note: why,
            },
            Plan::Run { args, dropped } => {
                let mut e = run_step(cfg, step, &args, interrupted)?;
                if !dropped.is_empty() && e.note.is_empty() {
                    e.note = format!("ran with its defaults instead of {}", dropped.join(", "));
                }
                e
            }
        };
        append(&cfg.run, &entry)?;
        observer.finished(step, &entry);
        let stop = entry.status == Status::Interrupted;
        entries.push(entry);
        if stop {
            break;
        }
    }
    let _ = fs::remove_dir(cfg.run.join(PARTIAL));
    Ok(entries)
}

fn run_step(
    cfg: &Config,
    step: &Step,
    args: &[String],
    interrupted: &dyn Fn() -> bool,
) -> Result<Entry> {
    let dest = cfg.run.join(step.id);
    let entry = |status, seconds, note: String| Entry {
        step: step.id.into(),
        status,
        seconds,
        note,
    };
    // A kill between the rename below and the journal line leaves a complete folder.
    if dest.is_dir() {
        return Ok(entry(
            Status::Done,
            0.0,
            "kept from before the interruption".into(),
        ));
    }
    let partial = cfg.run.join(PARTIAL).join(step.id);
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("removing the interrupted attempt {}", partial.display()))?;
    }
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let log_path = cfg.run.join(LOGS).join(format!("{}.log", step.id));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let mut cmd = Command::new(&cfg.probe);
    cmd.args(args)
        .arg("--results")
        .arg(&partial)
        .arg("--quiet")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe. If `probe all` dies (even by SIGKILL), the child
    // gets SIGINT and cleans up its containers instead of running on unobserved.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {} {}", cfg.probe.display(), args.join(" ")))?;
    let outcome = supervise(child, step.timeout(cfg.quick), interrupted)?;
    let seconds = started.elapsed().as_secs_f64();
    let result = match outcome {
        Outcome::Exited(true) => match adopt(&partial, &dest) {
            Ok(()) => entry(Status::Done, seconds, String::new()),
            Err(e) => entry(Status::Failed, seconds, format!("{e:#}")),
        },
        Outcome::Exited(false) => entry(Status::Failed, seconds, keep_incomplete(&partial, &cfg.run, step.id, last_error(&log_path))),
        Outcome::TimedOut => entry(
            Status::Failed,
            seconds,
            format!(
                "stopped after {:.0} s, far beyond its usual time; see {}",
                seconds,
                log_path.display()
            ),
        ),
        Outcome::Interrupted => entry(
            Status::Interrupted,
            seconds,
            "interrupted; `probe all --resume` runs it again".into(),
        ),
    };
    let _ = fs::remove_dir_all(&partial);
    Ok(result)
}

enum Outcome {
    Exited(bool),
    TimedOut,
    Interrupted,
}

/// Waits for the child, passing an interruption on as SIGINT (a `kill` of `probe all` does
/// not reach the child the way a terminal's Ctrl-C does) and stopping it when it hangs:
/// SIGINT first so it removes its containers, SIGKILL if it has not exited 30 s later.
fn supervise(
    mut child: Child,
    timeout: Duration,
    interrupted: &dyn Fn() -> bool,
) -> Result<Outcome> {
    const GRACE: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let mut stopping: Option<(Instant, bool)> = None;
    loop {
        if let Some(status) = child.try_wait().context("waiting for the experiment")? {
            return Ok(match stopping {
                Some((_, by_user)) if by_user => Outcome::Interrupted,
                Some(_) => Outcome::TimedOut,
                None => Outcome::Exited(status.success()),
            });
        }
        match stopping {
            None if interrupted() || started.elapsed() > timeout => {
                // SAFETY: signalling our own child, which has not been reaped yet.
                unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
                stopping = Some((Instant::now(), interrupted()));
            }
            Some((since, _)) if since.elapsed() > GRACE => {
                let _ = child.kill();
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Moves the experiment's run folder (the one its `latest` link names) to its place.
fn adopt(partial: &Path, dest: &Path) -> Result<()> {
    let latest = partial.join("latest");
    let name = fs::read_link(&latest).with_context(|| {
        format!(
            "the experiment exited 0 but wrote no run folder ({} is missing)",
            latest.display()
        )
    })?;
    let from = partial.join(name);
    fs::rename(&from, dest)
        .with_context(|| format!("moving {} to {}", from.display(), dest.display()))
}

/// A failed experiment that saved the reps it finished (a run marked incomplete) keeps them
/// beside the others as `<step>.incomplete[-N]`, never over an earlier one: the report reads
/// only complete folders, a resume reruns the step, and nothing measured is thrown away.
fn keep_incomplete(partial: &Path, run: &Path, id: &str, error: String) -> String {
    let Ok(name) = fs::read_link(partial.join("latest")) else {
        return error;
    };
    let dest = (1..)
        .map(|n| run.join(if n == 1 { format!("{id}.incomplete") } else { format!("{id}.incomplete-{n}") }))
        .find(|d| !d.exists())
        .expect("some name is free");
    match adopt(partial, &dest) {
        // The experiment named the folder it wrote, which has just moved.
        Ok(()) => format!(
            "{} (its finished reps are kept in {})",
            error.replace(&partial.join(name).display().to_string(), &dest.display().to_string()),
            dest.display()
        ),
        Err(e) => format!("{error} (its finished reps could not be kept: {e:#})"),
    }
}

/// The child's own one-line error (`probe: ...`), else the last line it printed.
fn last_error(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("probe: "))
        .or(lines.last())
        .map(|l| l.trim_start_matches("probe: ").to_string())
        .unwrap_or_else(|| {
            format!(
                "exited with an error and printed nothing; see {}",
                log.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("probe")
            .subcommand(
                clap::Command::new("startup")
                    .arg(
                        clap::Arg::new("breakdown")
                            .long("breakdown")
                            .action(clap::ArgAction::SetTrue),
                    )
                    .arg(clap::Arg::new("reps").long("reps")),
            )
            .subcommand(clap::Command::new("memory").arg(clap::Arg::new("counts").long("counts")))
    }

    #[test]
    fn plans_follow_what_this_build_offers() {
        match step("startup").unwrap().plan(&cli(), true) {
            Plan::Run { args, dropped } => {
                assert_eq!(args, ["startup", "--breakdown", "--reps", "5"]);
                assert!(dropped.is_empty());
            }
            Plan::Unavailable(w) => panic!("{w}"),
        }
        assert!(
            matches!(step("cpu").unwrap().plan(&cli(), true), Plan::Unavailable(w) if w.contains("no `probe cpu`"))
        );
        assert!(
            matches!(step("memory-cgroup").unwrap().plan(&cli(), true), Plan::Unavailable(w) if w.contains("--cgroup"))
        );
        match step("memory").unwrap().plan(&cli(), true) {
            Plan::Run { args, dropped } => {
                assert_eq!(args, ["memory", "--counts", "1,5"]);
                assert_eq!(dropped, ["--noise-reads 4", "--settle 1000"]);
            }
            Plan::Unavailable(w) => panic!("{w}"),
        }
    }

    #[test]
    fn journal_last_line_wins_and_torn_lines_are_ignored() {
        let dir = std::env::temp_dir().join(format!("probe-journal-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let e = |step: &str, status| Entry {
            step: step.into(),
            status,
            seconds: 1.0,
            note: String::new(),
        };
        append(&dir, &e("startup", Status::Failed)).unwrap();
        append(&dir, &e("startup", Status::Done)).unwrap();
        append(&dir, &e("memory", Status::Done)).unwrap();
        OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL))
            .unwrap()
            .write_all(b"{\"step\":\"cpu\",\"sta")
            .unwrap();
        let j = read_journal(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j["startup"].status, Status::Done);
        assert!(!j.contains_key("cpu"));
    }

    /// `probe all` with a stand-in experiment that saves a run folder and fails, twice: both
    /// partial runs are kept, numbered, and the journal says where.
    #[test]
    fn a_failed_experiment_keeps_its_finished_reps() {
        let run = std::env::temp_dir().join(format!("probe-all-incomplete-{}", std::process::id()));
        let _ = fs::remove_dir_all(&run);
        fs::create_dir_all(run.join(LOGS)).unwrap();
        let fake = run.join("fake-probe");
        // Writes a run folder and its `latest` link under --results, then fails as an engine
        // dying mid-run makes `probe startup` fail.
        fs::write(&fake, "#!/bin/sh\nwhile [ \"$1\" != --results ]; do shift; done\nmkdir -p \"$2/r1\" && echo 'docker,startup_ms,200' > \"$2/r1/startup.csv\" && ln -s r1 \"$2/latest\"\necho \"probe: docker rep 3: the docker daemon stopped answering; saved in $2/r1\" >&2\nexit 1\n").unwrap();
        fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let c = cli();
        let cfg = Config { run: run.clone(), probe: fake.clone(), cli: &c, quick: true };
        let startup = step("startup").unwrap();
        let args = ["startup".to_string()];
        for name in ["startup.incomplete", "startup.incomplete-2"] {
            let e = run_step(&cfg, startup, &args, &|| false).unwrap();
            assert_eq!(e.status, Status::Failed);
            let kept = run.join(name).display().to_string();
            assert_eq!(e.note, format!("docker rep 3: the docker daemon stopped answering; saved in {kept} (its finished reps are kept in {kept})"));
            assert_eq!(fs::read_to_string(run.join(name).join("startup.csv")).unwrap(), "docker,startup_ms,200\n");
        }
        assert!(!run.join("startup").exists(), "an incomplete run is not taken for a complete one");
        fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn step_ids_are_unique_and_cover_the_nine_experiments() {
        let mut chapter: Vec<u8> = STEPS
            .iter()
            .flat_map(|s| s.chapter.iter().copied())
            .collect();
        chapter.sort();
        assert_eq!(chapter, (1..=9).collect::<Vec<_>>());
        let ids: std::collections::HashSet<_> = STEPS.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), STEPS.len());
    }
}
