//! Experiment 7: the same busy loop, exec'd into a container that is already running
//! (`docker exec`, `podman exec`, and for native, entering its namespaces and cgroups with
//! setns), beside the same shell on the host. No container starts inside the timing, so
//! what is left is the cost of computing inside one — and each runtime's figure is set
//! against the noise its own reps show.

use std::path::PathBuf;

use anyhow::Context;
use nix::sys::signal::Signal;

use crate::experiment::cpu::{self, Config, Report, Rep, RuntimeCpu};
use crate::experiment::cpu::workload;
use crate::runtimes::detached::Fleet;
use crate::ground::RuntimeKind;
use crate::measure::runner;
use crate::measure::timer::{self, Watch};
use crate::sys::cgroup::CgroupLayout;
use crate::sys::cgroup::process as cgroupfs;

pub fn probe() -> cpu::Probe {
    serde_json::from_str(include_str!("../../../probes/cpu_exec.json")).expect("probes/cpu_exec.json is checked by a unit test")
}

/// Where an exec'd process's CPU time can be read: the container's own cgroup (exec puts
/// the process there), or nowhere when the container has none of its own.
fn container_cpu_dir(layout: &CgroupLayout, main_pid: u32) -> anyhow::Result<Result<(PathBuf, bool), String>> {
    let controller = cgroupfs::cpu_controller(layout).context("no CPU accounting controller on this host")?;
    Ok(match cgroupfs::own_dir(main_pid, layout, controller)? {
        Ok(dir) => Ok((dir, controller == "cpu")),
        Err(shared) => Err(format!(
            "the container has no CPU cgroup of its own (it shares {} with its monitor), and an exec'd process is not probe's child: \
             nothing counts its CPU time alone",
            shared.display()
        )),
    })
}

struct Target {
    kind: RuntimeKind,
    /// None for bare.
    fleet: Option<Fleet>,
    cpu_dir: Option<(PathBuf, bool)>,
    /// Which counter gives the CPU time, or why none does.
    source: Result<String, String>,
}

fn rep(t: &Target, bare_sh: &PathBuf, argv: &[String], hw: bool) -> anyhow::Result<Rep> {
    let mut cmd = match &t.fleet {
        Some(f) => f.exec_command(0, argv)?,
        None => cpu::bare_command(bare_sh, argv),
    };
    let read = |d: &(PathBuf, bool)| cgroupfs::cpu_usage_ns(&d.0, d.1);
    let before = t.cpu_dir.as_ref().map(read).transpose()?;
    // On Ctrl-C the exec'd process is killed; the fleet's guard then removes the container
    // with anything still running in it.
    let watch = Watch { count_hw: hw && !t.kind.is_engine(), stop: &mut |pid| cpu::kill_pid(pid, Signal::SIGKILL) };
    let (timed, counts) = timer::time_watched(&mut cmd, watch).with_context(|| format!("{}: exec of the loop", t.kind))?;
    anyhow::ensure!(!crate::sys::signals::interrupted(), "interrupted during a {} rep", t.kind);
    anyhow::ensure!(timed.exit_code == 0, "{}: the exec'd loop exited with code {}", t.kind, timed.exit_code);
    let cpu_ns = match (&t.cpu_dir, before) {
        (Some(d), Some(b)) => Some(read(d)?.saturating_sub(b)),
        _ if !t.kind.is_engine() => Some(timed.cpu_ns()),
        _ => None,
    };
    Ok(Rep::new(&timed, counts, cpu_ns))
}

pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let layout = crate::sys::cgroup::detect()?;
    let bare_sh = cpu::bare_shell()?;
    let engines: Vec<RuntimeKind> = cfg.runtimes.iter().copied().filter(|k| *k != RuntimeKind::Bare).collect();
    let (fleets, skipped) = if engines.is_empty() { (Vec::new(), Vec::new()) } else { crate::experiment::common::fleets::open(&engines, cfg.explicit, "exec")? };
    let mut targets = Vec::new();
    if cfg.runtimes.contains(&RuntimeKind::Bare) {
        targets.push(Target { kind: RuntimeKind::Bare, fleet: None, cpu_dir: None, source: Ok(cpu::BARE_CPU.into()) });
    }
    for mut fleet in fleets {
        let kind = fleet.kind();
        fleet.start(&["sleep".to_string(), "3600".to_string()])?;
        fleet.resolve_pids()?;
        // Entering a native container makes the command probe's grandchild: wait4 sees all of
        // it. An engine's exec'd process descends from its daemon: only its cgroup counts it.
        let (source, cpu_dir) = if kind == RuntimeKind::Native {
            (Ok("wait4 rusage of the process tree that entered the container".to_string()), None)
        } else {
            let dir = container_cpu_dir(&layout, fleet.containers()[0].main_pid)?;
            let source = dir.as_ref().map(|(_, v2)| format!("the container's own cgroup CPU counter ({}), read around the exec", cgroupfs::cpu_usage_counter(*v2)));
            (source.map_err(Clone::clone), dir.ok())
        };
        targets.push(Target { kind, fleet: Some(fleet), cpu_dir, source });
    }
    std::thread::sleep(cfg.settle);
    let argv = workload::busy_loop(cfg.count);
    let pmu = timer::pmu();
    let (runs, stopped) = runner::interleaved(&mut targets, cfg.warmup, cfg.reps, cfg.quiet, &crate::sys::signals::interrupted, |t| t.kind, |t, _| {
        Ok(rep(t, &bare_sh, &argv, pmu.is_ok()))
    })?;
    for t in &mut targets {
        if let Some(f) = t.fleet.as_mut() {
            f.remove_all()?;
        }
    }
    let source = |k: RuntimeKind| targets.iter().find(|t| t.kind == k).map(|t| t.source.clone()).expect("a run of an opened runtime");
    let results: Vec<RuntimeCpu> = runs.into_iter().map(|runs| RuntimeCpu::new(source(runs.runtime), runs)).collect();
    let mut warnings = cpu::advice(&results, cfg.reps);
    if let Some(bare) = results.iter().find(|r| r.runtime == RuntimeKind::Bare).map(|r| r.wall()) {
        if bare.mean < 5_000.0 && results.iter().any(|r| r.runtime.is_engine()) {
            warnings.push(format!(
                "the loop runs {:.1} s on the host, so an engine's fixed exec cost (tens to hundreds of ms) is a visible share of it; \
                 use --count {} or more for a loop that dominates",
                bare.mean / 1000.0,
                cfg.count * 10
            ));
        }
    }
    Ok(cpu::report("cpu-exec", &cfg, pmu, (results, stopped), skipped, warnings, probe().reference))
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_file_parses() {
        let p = super::probe();
        assert_eq!(p.defaults.count, 1_000_000);
        assert!((p.reference.mean_s["docker"] - 4.82).abs() < 1e-9);
    }
}
