//! Host side of the worker protocol: spawns the worker's command, and at each phase boundary
//! the worker reports, lets the caller take its evidence before telling the worker to go on.
//! Any failure closes the worker's stdin, which makes it remove its file and exit.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::protocol::{Message, Target};
use crate::runtimes::cli_engine::StderrSink;

/// A failure the worker itself reported: its message already names what, path and errno, so
/// nothing from its stderr (the same message again) is added.
#[derive(Debug)]
pub struct WorkerError(pub String);

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkerError {}

/// What the worker measured, in its own clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub bytes: u64,
    pub write_ns: u64,
    pub sync_ns: u64,
}

/// The boundaries at which evidence is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Ready,
    Written,
    Synced,
}

/// Runs `cmd` through the whole protocol. `mark(point, target)` runs at each boundary, while
/// the worker waits; the target is what the worker reported at `ready`.
pub fn drive(cmd: &mut Command, stderr: &mut StderrSink, mark: &mut dyn FnMut(Point, &Target) -> Result<()>) -> Result<Timing> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr.stdio().context("preparing the worker's stderr")?)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let stdout = child.stdout.take().expect("piped");
    let stdin = child.stdin.take().expect("piped");
    let result = converse(BufReader::new(stdout), stdin, mark);
    // stdin is closed by now (converse owns it), so a worker still waiting exits.
    let status = child.wait().with_context(|| format!("waiting for {program}"))?;
    match result {
        Ok(t) if status.success() => Ok(t),
        Ok(_) => bail!("the worker exited with {status} after finishing: {}", stderr.last_line()),
        Err(e) if e.is::<WorkerError>() => Err(e),
        Err(e) => Err(e.context(format!("worker via {program} ({status}); its stderr: {}", stderr.last_line()))),
    }
}

fn converse(mut out: impl BufRead, mut stdin: impl Write, mark: &mut dyn FnMut(Point, &Target) -> Result<()>) -> Result<Timing> {
    let mut target: Option<Target> = None;
    let (mut bytes, mut write_ns) = (0, 0);
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).context("reading the worker's report")? == 0 {
            bail!("the worker stopped before finishing (no `done` line)");
        }
        // Engines may print their own lines (pull notices); only the worker's JSON counts.
        let Ok(msg) = serde_json::from_str::<Message>(line.trim()) else { continue };
        let point = match msg {
            Message::Ready(t) => {
                target = Some(*t);
                Point::Ready
            }
            Message::Written { bytes: b, write_ns: w } => {
                (bytes, write_ns) = (b, w);
                Point::Written
            }
            Message::Synced { sync_ns } => {
                let t = target.as_ref().context("worker skipped `ready`")?;
                mark(Point::Synced, t)?;
                stdin.write_all(b"g").and_then(|()| stdin.flush()).context("telling the worker to finish")?;
                return finish(out, Timing { bytes, write_ns, sync_ns });
            }
            Message::Done => bail!("the worker finished without reporting `synced`"),
            Message::Error { message } => return Err(WorkerError(message).into()),
        };
        mark(point, target.as_ref().context("worker skipped `ready`")?)?;
        stdin.write_all(b"g").and_then(|()| stdin.flush()).context("telling the worker to go on")?;
    }
}

/// After `synced`: the worker removes its file and says `done` (or why it could not).
fn finish(mut out: impl BufRead, timing: Timing) -> Result<Timing> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).context("reading the worker's report")? == 0 {
            bail!("the worker stopped before removing its file");
        }
        match serde_json::from_str::<Message>(line.trim()) {
            Ok(Message::Done) => return Ok(timing),
            Ok(Message::Error { message }) => return Err(WorkerError(message).into()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: &str = r#"{"point":"ready","path":"/tmp/testfile","dev_major":0,"dev_minor":62,"mount":null,"root_mount":null}"#;

    #[test]
    fn marks_every_point_and_answers_each() {
        let script = format!("{READY}\nsome engine noise\n{{\"point\":\"written\",\"bytes\":8,\"write_ns\":5}}\n{{\"point\":\"synced\",\"sync_ns\":7}}\n{{\"point\":\"done\"}}\n");
        let mut seen = Vec::new();
        let mut answers = Vec::new();
        let t = converse(script.as_bytes(), &mut answers, &mut |p, t| {
            seen.push((p, t.dev_minor));
            Ok(())
        })
        .unwrap();
        assert_eq!(t, Timing { bytes: 8, write_ns: 5, sync_ns: 7 });
        assert_eq!(seen, vec![(Point::Ready, 62), (Point::Written, 62), (Point::Synced, 62)]);
        assert_eq!(answers, b"ggg");
    }

    #[test]
    fn worker_errors_and_early_exits_are_reported() {
        let err = r#"{"point":"error","message":"create /mnt/testfile: Read-only file system (os error 30): ..."}"#;
        let e = converse(err.as_bytes(), Vec::new(), &mut |_, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("os error 30"), "{e}");
        let e = converse(READY.as_bytes(), Vec::new(), &mut |_, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("stopped before finishing"), "{e}");
    }
}
