//! Experiments 5 and 9: containers inside containers. For each of the chapter's eight
//! approaches, the outer container (probe-nested:latest, with the approach's flags) runs
//! probe's worker, which probes what the container allows and then walks the inner engine's
//! steps; a failure is explained by the first probe on the failing step's path that was
//! refused. Native-in-native adds `probe run` nested to depth N.
//!
//! Every outer container gets --rm, --network none, probe's label and a container_name();
//! the inner storage lives in the image's anonymous volumes, which --rm removes.

pub mod cause;
pub mod inner;
pub mod native;
mod outer;
pub mod probes;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use self::cause::Cause;
use self::inner::{engine_error, monotonic_ns, Inner, Step, StepName, WorkerReport};
use self::native::NativeLevel;
use self::probes::Probes;
use crate::runtimes::cli_engine::{container_name, output_with_timeout, CliEngine};
use crate::ground::{RuntimeKind, OWNER_LABEL};
use crate::experiment::common::host::Header;
use crate::runtimes::image::nested::{NESTED_TAG, PROBE_IN_IMAGE, TEST_ROOTFS_IN_IMAGE};

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct NestedProbe {
    pub experiment: String,
    pub title: String,
    pub defaults: Defaults,
    pub approaches: Vec<Approach>,
    pub reference: Reference,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Defaults {
    pub native_depth: u32,
    pub native_reps: u32,
    pub daemon_timeout_s: u64,
    pub outer_timeout_s: u64,
    /// Extra `probe run` options for nested native levels.
    #[serde(default)]
    pub native_level_flags: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Approach {
    pub id: String,
    /// The chapter's experiment: 5 or 9.
    pub experiment: u8,
    /// "docker" or "podman": the outer engine.
    pub engine: String,
    pub approach: String,
    pub outer_flags: Vec<String>,
    pub inner: Inner,
    /// What these flags give the inner workload on the host, as the engines document them:
    /// fixed text, not measured (the measured part is `exposure`).
    pub security: String,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Reference {
    pub machine: String,
    pub rows: Vec<ReferenceRow>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct ReferenceRow {
    pub id: String,
    pub result: String,
    pub seconds: Option<f64>,
    pub reason: String,
}

pub fn probe_file() -> NestedProbe {
    serde_json::from_str(include_str!("../../../probes/nested.json")).expect("probes/nested.json is checked by a unit test")
}

pub struct Config {
    /// Approach ids to run, in the probe file's order; empty = all.
    pub only: Vec<String>,
    pub native_depth: u32,
    pub native_reps: u32,
    pub daemon_timeout: Duration,
    pub outer_timeout: Duration,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ApproachResult {
    pub id: String,
    pub experiment: u8,
    pub engine: String,
    pub approach: String,
    pub outer_flags: Vec<String>,
    pub success: bool,
    /// Outer CLI start to exit, as the chapter's `time docker run ...` measured it.
    pub total_ms: f64,
    /// Outer CLI start to the worker running inside: the outer container's startup.
    pub outer_start_ms: Option<f64>,
    /// Outer CLI start to the inner `echo ok` having printed ok.
    pub first_echo_ms: Option<f64>,
    /// Inner dockerd start (or reaching the host's) and the test image import, included in
    /// first_echo_ms.
    pub daemon_ms: Option<f64>,
    pub import_ms: Option<f64>,
    /// The inner `run --rm echo ok` alone: the inner container's startup.
    pub inner_start_ms: Option<f64>,
    pub steps: Vec<Step>,
    pub probes: Option<Probes>,
    pub cause: Option<Cause>,
    /// For approaches that work: what was measured inside the outer container, then what
    /// the flags are documented to give, each marked as which.
    pub security: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    #[serde(flatten)]
    pub header: Header,
    pub results: Vec<ApproachResult>,
    #[serde(default)]
    pub native: Vec<NativeLevel>,
    /// Approaches whose outer engine cannot run them here, one entry per engine, with why.
    #[serde(default)]
    pub not_run: Vec<NotRun>,
    /// Anything probe's containers left on the host (must be empty).
    pub leftovers: Vec<String>,
    pub reference: Reference,
}

/// The approaches of one outer engine that were not run (the engine or its nesting image is
/// missing), and what is missing and how to fix it, in one line.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct NotRun {
    pub engine: String,
    pub approaches: Vec<String>,
    pub reason: String,
}

/// Everything an outer container needs that probe provides: the worker binary and the test
/// image, both bind-mounted read-only.
struct Mounts {
    exe: PathBuf,
    test_rootfs: PathBuf,
}

impl Mounts {
    fn locate() -> anyhow::Result<Mounts> {
        let exe = std::env::current_exe().context("locating the probe binary")?;
        let test_rootfs = crate::ground::rootfs_dir();
        if !test_rootfs.join("bin/busybox").exists() {
            bail!("test image rootfs missing at {}: run `sudo probe image build --nested`", test_rootfs.display());
        }
        Ok(Mounts { exe, test_rootfs })
    }

    fn args(&self) -> Vec<String> {
        vec![
            "-v".into(),
            format!("{}:{PROBE_IN_IMAGE}:ro", self.exe.display()),
            "-v".into(),
            format!("{}:{TEST_ROOTFS_IN_IMAGE}:ro", self.test_rootfs.display()),
        ]
    }
}

fn open_engine(name: &str) -> anyhow::Result<CliEngine> {
    let kind: RuntimeKind = name.parse().map_err(anyhow::Error::msg)?;
    let engine = CliEngine::locate(kind)?;
    engine.query(&["info"]).with_context(|| format!("{kind} does not answer: start it (scripts/setup-engines.sh)"))?;
    // The engine answered just above, so a failed inspect means the image is not there; the
    // engine's own "no such image" would only repeat it.
    if engine.query(&["image", "inspect", "--format", "{{.Id}}", NESTED_TAG]).is_err() {
        match crate::runtimes::image::nested::cannot_build() {
            Some(why) => bail!("{kind} has no {NESTED_TAG}, and `probe image build --nested` cannot make it here: {why}"),
            None => bail!("{kind} has no {NESTED_TAG}: build it with `sudo probe image build --nested`"),
        }
    }
    Ok(engine)
}

fn ms_between(a: u64, b: u64) -> f64 {
    b.saturating_sub(a) as f64 / 1e6
}

/// Runs one approach: the outer container with the worker inside, then the classification.
fn run_approach(a: &Approach, engine: &CliEngine, mounts: &Mounts, cfg: &Config, created: &mut Vec<Created>) -> anyhow::Result<ApproachResult> {
    let outer_name = container_name(&a.id.replace('_', "-"));
    let inner_name = container_name(&format!("{}-inner", a.id.replace('_', "-")));
    let cidfile = std::env::temp_dir().join(format!("{outer_name}.cid"));
    let mut args: Vec<String> = ["run", "--rm", "--network", "none", "--label", OWNER_LABEL, "--name", &outer_name]
        .map(String::from)
        .to_vec();
    args.extend(["--cidfile".into(), cidfile.display().to_string()]);
    args.extend(a.outer_flags.iter().cloned());
    args.extend(mounts.args());
    args.extend([NESTED_TAG.to_string(), PROBE_IN_IMAGE.into(), "nested".into(), "inside".into()]);
    args.extend(["--inner".into(), serde_json::to_value(a.inner)?.as_str().unwrap_or_default().to_string()]);
    args.extend(["--name".into(), inner_name.clone(), "--daemon-timeout".into(), cfg.daemon_timeout.as_secs().to_string()]);

    let spawn_ns = monotonic_ns();
    let t = Instant::now();
    let out = output_with_timeout(engine.command(&args).stdin(Stdio::null()), cfg.outer_timeout);
    let total_ms = t.elapsed().as_secs_f64() * 1e3;
    // A timeout kills only the CLI: the containers must go explicitly.
    remove_container(engine, &outer_name);
    created.push(Created { engine: engine.kind(), name: outer_name, id: std::fs::read_to_string(&cidfile).ok().map(|s| s.trim().to_string()) });
    let _ = std::fs::remove_file(&cidfile);
    if a.inner == Inner::DockerHostSocket {
        remove_container(engine, &inner_name);
        created.push(Created { engine: engine.kind(), name: inner_name, id: None });
    }
    let out = out.with_context(|| format!("{}: outer `{} run`", a.id, a.engine))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let worker: Option<WorkerReport> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());

    let mut r = ApproachResult {
        id: a.id.clone(),
        experiment: a.experiment,
        engine: a.engine.clone(),
        approach: a.approach.clone(),
        outer_flags: a.outer_flags.clone(),
        success: false,
        total_ms,
        outer_start_ms: None,
        first_echo_ms: None,
        daemon_ms: None,
        import_ms: None,
        inner_start_ms: None,
        steps: Vec::new(),
        probes: None,
        cause: None,
        security: None,
    };
    let Some(w) = worker else {
        r.cause = Some(outer::classify(engine, &a.outer_flags, &engine_error(&stderr)));
        return Ok(r);
    };
    let step = |n: StepName| w.steps.iter().find(|s| s.name == n);
    r.outer_start_ms = Some(ms_between(spawn_ns, w.started_ns));
    r.daemon_ms = step(StepName::Daemon).map(Step::ms);
    r.import_ms = step(StepName::Import).map(Step::ms);
    r.success = step(StepName::Run).is_some_and(|s| s.ok);
    if r.success {
        let run = step(StepName::Run).expect("checked");
        r.inner_start_ms = Some(run.ms());
        r.first_echo_ms = Some(ms_between(spawn_ns, run.end_ns));
        r.security = Some(security(a, &w.probes));
    } else {
        let failed = w.steps.iter().find(|s| !s.ok);
        r.cause = Some(match failed {
            Some(s) => cause::classify(s.name, a.inner, &w.probes, &s.detail),
            None => cause::classify(StepName::Run, a.inner, &w.probes, &engine_error(&stderr)),
        });
    }
    r.steps = w.steps;
    r.probes = Some(w.probes);
    Ok(r)
}

/// What the probes saw of the outer container's reach, in one clause.
fn security(a: &Approach, p: &Probes) -> String {
    format!("measured inside the outer container: {}; documented for these flags, not measured here: {}", exposure(p), a.security)
}

fn exposure(p: &Probes) -> String {
    let c = &p.confinement;
    let ok = |n| p.get(n).is_some_and(|k: &probes::Check| k.ok());
    let socket = ok(probes::CheckName::DockerSocket);
    format!(
        "{}/{} capabilities, seccomp {}, LSM {}, {} device nodes, cgroups {}{}",
        c.caps_held,
        c.caps_known,
        if c.seccomp == 2 { "on" } else { "off" },
        c.lsm_label,
        c.devices,
        if ok(probes::CheckName::CgroupMkdir) { "writable" } else { "read-only" },
        if socket { ", host docker socket reachable" } else { "" }
    )
}

fn remove_container(engine: &CliEngine, name: &str) {
    let _ = output_with_timeout(&mut engine.command(["rm", "-f", "-v", name]), Duration::from_secs(30));
}

/// What this run could leave behind, scoped to what it created so that other users of the
/// engines do not show up: its containers (by name and id), mounts naming those ids, new
/// anonymous volumes, and extra copies of the nesting image.
struct Snapshot(std::collections::BTreeSet<String>);

impl Snapshot {
    fn take(engines: &[&CliEngine], ours: &[Created]) -> Snapshot {
        let mut set = std::collections::BTreeSet::new();
        for e in engines {
            let listed = |args: &[&str]| e.query(args).unwrap_or_default();
            let containers = listed(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
            for c in ours.iter().filter(|c| c.engine == e.kind()) {
                if containers.lines().any(|l| l.split_whitespace().any(|w| w == c.name || Some(w) == c.id.as_deref())) {
                    set.insert(format!("{} container {}", e.kind(), c.name));
                }
            }
            for v in listed(&["volume", "ls", "-q"]).lines().filter(|l| !l.is_empty()) {
                set.insert(format!("{} volume {v}", e.kind()));
            }
            for i in listed(&["images", "-q", "--no-trunc", "--filter", "reference=probe-nested"]).lines().filter(|l| !l.is_empty()) {
                set.insert(format!("{} image {i}", e.kind()));
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for point in mounts.lines().filter_map(|l| l.split_whitespace().nth(4)) {
            if ours.iter().filter_map(|c| c.id.as_deref()).any(|id| point.contains(id)) {
                set.insert(format!("mount {point}"));
            }
        }
        Snapshot(set)
    }

    fn new_since(&self, before: &Snapshot) -> Vec<String> {
        self.0.difference(&before.0).cloned().collect()
    }
}

/// The nesting image declares its engines' stores as anonymous volumes. `run --rm` removes
/// them with the container, except when the container never started (docker 20.10 leaves
/// them when runc init fails, as with --privileged here): remove volumes that appeared during
/// this run and that no container uses any more.
fn remove_new_dangling_volumes(engines: &[&CliEngine], before: &Snapshot) {
    for e in engines {
        let dangling = e.query(&["volume", "ls", "-q", "--filter", "dangling=true"]).unwrap_or_default();
        let new: Vec<&str> = dangling
            .lines()
            .filter(|v| !v.is_empty() && !before.0.contains(&format!("{} volume {v}", e.kind())))
            .collect();
        if !new.is_empty() {
            let mut args = vec!["volume", "rm"];
            args.extend(&new);
            let _ = e.query(&args);
        }
    }
}

/// A container this run asked an engine for; the id comes from --cidfile once it exists.
struct Created {
    engine: RuntimeKind,
    name: String,
    id: Option<String>,
}

pub fn run(cfg: Config, interrupted: &dyn Fn() -> bool, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Report> {
    let probe = probe_file();
    let approaches: Vec<&Approach> = probe.approaches.iter().filter(|a| cfg.only.is_empty() || cfg.only.contains(&a.id)).collect();
    if approaches.is_empty() {
        let ids: Vec<&str> = probe.approaches.iter().map(|a| a.id.as_str()).collect();
        bail!("no approach matches; choose from {}", ids.join(", "));
    }
    let mounts = Mounts::locate()?;
    let mut engines: Vec<CliEngine> = Vec::new();
    let mut not_run = Vec::new();
    for name in ["docker", "podman"] {
        let ids: Vec<String> = approaches.iter().filter(|a| a.engine == name).map(|a| a.id.clone()).collect();
        if ids.is_empty() {
            continue;
        }
        match open_engine(name) {
            Ok(e) => engines.push(e),
            // Approaches the user named must run; the default set runs what this host can.
            Err(e) if !cfg.only.is_empty() => return Err(e),
            Err(e) => not_run.push(NotRun { engine: name.to_string(), approaches: ids, reason: format!("{e:#}") }),
        }
    }
    if engines.is_empty() && cfg.native_depth == 0 {
        let why: Vec<String> = not_run.iter().map(|n| n.reason.clone()).collect();
        bail!("nothing to run: {} (and --depth 0 leaves out native-in-native)", why.join("; "));
    }
    let approaches: Vec<&Approach> = approaches.into_iter().filter(|a| engines.iter().any(|e| e.kind().name() == a.engine)).collect();
    let engine_refs: Vec<&CliEngine> = engines.iter().collect();
    let before = Snapshot::take(&engine_refs, &[]);
    let mut created = Vec::new();
    let mut results = Vec::new();
    for a in approaches {
        if interrupted() {
            break;
        }
        progress(&format!("{} ({} {})", a.id, a.engine, a.outer_flags.join(" ")));
        let engine = engines.iter().find(|e| e.kind().name() == a.engine).expect("opened above");
        results.push(run_approach(a, engine, &mounts, &cfg, &mut created)?);
    }
    let native = native::run(&mounts.exe, cfg.native_depth, cfg.native_reps, &probe.defaults.native_level_flags, interrupted, progress);
    remove_new_dangling_volumes(&engine_refs, &before);
    let leftovers = Snapshot::take(&engine_refs, &created).new_since(&before);
    let mut kinds: Vec<RuntimeKind> = engines.iter().map(|e| e.kind()).collect();
    kinds.push(RuntimeKind::Native);
    Ok(Report {
        header: Header::collect("nested", &kinds),
        results,
        native,
        not_run,
        leftovers,
        reference: probe.reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_file_has_the_chapters_eight_approaches() {
        let p = probe_file();
        assert_eq!(p.approaches.len(), 8);
        assert_eq!(p.approaches.iter().filter(|a| a.experiment == 9).count(), 6);
        for a in &p.approaches {
            assert!(a.engine == "docker" || a.engine == "podman", "{}", a.id);
            assert!(p.reference.rows.iter().any(|r| r.id == a.id), "{} has no reference row", a.id);
        }
        assert!(p.defaults.native_depth >= 3);
    }

    #[test]
    fn security_marks_what_was_measured_and_what_is_documented() {
        let a = &probe_file().approaches[0];
        let s = security(a, &Probes::default());
        let (measured, documented) = s.split_once("; documented for these flags, not measured here: ").expect(&s);
        assert!(measured.starts_with("measured inside the outer container: 0/0 capabilities, seccomp off"), "{s}");
        assert_eq!(documented, a.security);
    }
}
