//! Every experiment's Report, written as its JSON file is written and read back as
//! `probe report` reads it, comes back whole: nothing renamed, dropped or defaulted.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::fleets::FleetRun;
use super::host::{Header, HostInfo};
use super::open::Skipped;
use crate::experiment::{cpu, io, memory, nested, scale, startup};
use crate::ground::phase::{Counters, Phase, PhaseRecord};
use crate::ground::RuntimeKind;
use crate::measure::runner::{Plan, Runs, RuntimeResult, Stopped};
use crate::measure::Sample;
use crate::runtimes::detect::RuntimeStatus;

/// Written, read, written again: the second file must equal the first.
fn round_trip<T: Serialize + DeserializeOwned>(report: &T) -> serde_json::Value {
    let written = serde_json::to_vec_pretty(report).unwrap();
    let read: T = serde_json::from_slice(&written).expect("the report reads what was written");
    let first: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), first);
    // The header is flattened: its keys stand at the top, as in the files written before it
    // (startup.json holds its Report under `report`).
    let top = first.get("report").unwrap_or(&first);
    assert!(top["experiment"].is_string() && top["host"]["kernel"].is_string(), "{first}");
    first
}

fn header(experiment: &str) -> Header {
    Header { experiment: experiment.into(), host: host() }
}

fn host() -> HostInfo {
    HostInfo {
        probe_version: "0.1.0".into(),
        date: "2026-01-01T00:00:00Z".into(),
        hostname: "h".into(),
        kernel: "6.1.0".into(),
        arch: "x86_64".into(),
        cpu_model: "Test CPU".into(),
        cpus: 2,
        memory_total_mb: 24_000,
        euid: 0,
        cgroup_layout: serde_json::json!({"version": "v2"}),
        runtimes: vec![RuntimeStatus {
            runtime: RuntimeKind::Docker,
            usable: true,
            version: Some("20.10.24".into()),
            storage: Some("overlay2".into()),
            image: Some(true),
            problem: None,
            fix: None,
        }],
    }
}

fn sample(wall_ns: u64, phases: Vec<PhaseRecord>) -> Sample {
    Sample { start_mono_ns: 1, pid: 2, wall_ns, user_ns: 3, sys_ns: 4, exit_code: 0, phases }
}

#[test]
fn startup() {
    let phase = PhaseRecord {
        phase: Phase::Cgroup,
        detail: Some("attach".into()),
        start_ns: 5,
        dur_ns: 6,
        counters: Counters { task_clock_ns: Some(7), ..Counters::default() },
        overhead_ns: 8,
    };
    let native = RuntimeResult {
        runtime: RuntimeKind::Native,
        warmup: vec![sample(1_000_000, vec![])],
        samples: vec![sample(2_000_000, vec![phase.clone()]), sample(4_000_000, vec![phase])],
    };
    let file = startup::StartupJson {
        breakdown: startup::breakdown::breakdown(&native).into_iter().collect(),
        report: startup::Report {
            header: header("startup"),
            plan: Plan { argv: vec!["echo".into(), "ok".into()], reps: 2, warmup: 1 },
            results: vec![native],
            skipped: vec![Skipped { runtime: RuntimeKind::Podman, reason: "not installed".into() }],
            warnings: vec!["few reps".into()],
            reference: super::reference::startup().reference,
            incomplete: Some(Stopped {
                runtime: RuntimeKind::Docker,
                rep: 3,
                warmup: false,
                reason: "the daemon stopped answering".into(),
            }),
        },
        namespaces: Some(vec![startup::nscost::NsCost {
            ns: crate::native::namespaces::NsKind::Net,
            reps: 3,
            create_median_ns: 1,
            create_p95_ns: 2,
            release_median_ns: 3,
            release_p95_ns: 4,
            release_measured: "deferred".into(),
        }]),
    };
    assert_eq!(file.breakdown.len(), 1, "the sample has phases to break down");
    round_trip(&file);
}

#[test]
fn memory() {
    let batch = memory::Batch { count: 1, baseline_mb: 100, used_mb: 101, baseline_kb: 102_400, used_kb: 103_424, delta_mb: 1, below_noise: true };
    let written = round_trip(&memory::Report {
        header: header("memory"),
        fleet: FleetRun { counts: vec![1], command: vec!["sleep".into(), "3600".into()] },
        noise: memory::Noise::from_reads(vec![1024, 2048, 1536]),
        results: vec![memory::RuntimeBatches { runtime: RuntimeKind::Native, batches: vec![batch] }],
        skipped: vec![],
        reference: memory::probe().reference,
    });
    assert!(written["counts"].is_array() && written["command"].is_array(), "the fleet's keys stand at the top");
}

#[test]
fn memory_cgroup() {
    use crate::experiment::memory::cgroup::{self, Point, RuntimeMemory};
    use crate::experiment::memory::footprint::{ContainerMemory, EngineProcess, Snapshot};
    let point = |count: u32, kb: u64| Point {
        count,
        settled: true,
        snapshot: Snapshot {
            containers: (0..count)
                .map(|i| ContainerMemory {
                    name: format!("c{i}"),
                    main_pid: 10 + i,
                    cgroup: Some(PathBuf::from("/sys/fs/cgroup/probe")),
                    memory: Some(crate::sys::cgroup::process::MemoryUsage { usage_bytes: kb * 1024, exact_bytes: kb * 1024, anon_bytes: 1, file_bytes: 2, kernel_bytes: 3 }),
                    processes: crate::sys::procfs::Rollup { rss_kb: kb, pss_kb: kb / 2 },
                })
                .collect(),
            engine: vec![EngineProcess { pid: 9, name: "dockerd".into(), daemon: true, rss_kb: 50_000, pss_kb: 40_000 }],
            used_kb: 1_000_000,
        },
    };
    let points = vec![point(0, 0), point(1, 400), point(3, 400)];
    let fits = cgroup::fits(&points);
    assert!(fits.cgroup.is_some(), "the sample fits a line");
    round_trip(&cgroup::Report {
        header: header("memory-cgroup"),
        fleet: FleetRun { counts: vec![0, 1, 3], command: vec!["sleep".into(), "3600".into()] },
        results: vec![RuntimeMemory { runtime: RuntimeKind::Docker, cgroup_na: None, points, fits }],
        skipped: vec![],
        warnings: vec![],
        reference: cgroup::probe().reference,
    });
}

#[test]
fn cpu() {
    let runs = |runtime, rep| Runs { runtime, warmup: Vec::new(), reps: vec![rep] };
    let native = cpu::RuntimeCpu::new(Err("no cgroup".into()), runs(RuntimeKind::Native, cpu::Rep { wall_ms: 1.5, cpu_ms: None, cycles: Some(3), instructions: None }));
    let bare = cpu::RuntimeCpu::new(Ok(cpu::BARE_CPU.into()), runs(RuntimeKind::Bare, cpu::Rep { wall_ms: 1.25, cpu_ms: Some(1.0), cycles: None, instructions: None }));
    round_trip(&cpu::Report {
        header: header("cpu"),
        count: 1000,
        argv: vec!["sh".into()],
        reps: 1,
        warmup: 0,
        pmu_na: Some("no PMU".into()),
        results: vec![bare, native],
        skipped: vec![Skipped { runtime: RuntimeKind::Docker, reason: "down".into() }],
        warnings: vec![],
        reference: cpu::probe().reference,
        incomplete: Some(Stopped { runtime: RuntimeKind::Native, rep: 2, warmup: false, reason: "native rep 2: exited 1".into() }),
    });
}

#[test]
fn io() {
    use crate::experiment::io::backing::{Backing, Device, FuseDaemon, Store};
    use crate::experiment::io::events::{Caller, Window};
    use crate::experiment::io::mode::Mode;
    use crate::experiment::io::protocol::SyncMode;
    use crate::experiment::io::verdict::{Outcome, Verdict};
    let window = io::DiskWindow { host_ns: 1, raw_bytes: 2, background_bytes: 3, bytes: 4, write_requests: 5, flushes: Some(6) };
    let mount = crate::sys::mountinfo::parse_line("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue").expect("the kernel's documented example");
    let rep = io::Rep {
        rep: 1,
        bytes: 1 << 20,
        write_ns: 1_000,
        sync_ns: 2_000,
        backing: Backing {
            mount: Some(mount),
            root_mount: None,
            store: Store::Device(Device {
                name: "vda1".into(),
                major: 254,
                minor: 1,
                chain: crate::sys::block::Chain {
                    fstype: "ext4".into(),
                    top: crate::sys::block::Node {
                        name: "vda1".into(),
                        major: 254,
                        minor: 1,
                        kind: crate::sys::block::Kind::Partition,
                        below: vec![crate::sys::block::Node {
                            name: "vda".into(),
                            major: 254,
                            minor: 0,
                            kind: crate::sys::block::Kind::Disk { volatile_cache: Some(true) },
                            below: vec![],
                        }],
                    },
                },
                via: "upperdir".into(),
            }),
            fuse_daemon: Some(FuseDaemon { pid: 7, comm: "fuse-overlayfs".into(), cmdline: vec!["fuse-overlayfs".into()], options: vec!["lowerdir=/l".into()] }),
        },
        disk: Some(io::DiskEvidence { device: "vda".into(), flush_devices: vec!["vda".into()], write_phase: window.clone(), sync_phase: window, before_return_bytes: 9 }),
        trace: Some(io::TraceEvidence {
            missing: vec!["fuse/fuse_request_send".into()],
            write_phase: Window { issuers: vec![("kworker".into(), 4096)], fs_syncs: vec![Caller { pid: 1, comm: "dd".into(), what: "ext4_sync_file".into(), count: 2 }], ..Window::default() },
            sync_phase: Window::default(),
        }),
        verdict: Verdict { outcome: Outcome::NotDurable, decided_by: "3% on the device".into(), mechanism: Some("volatile".into()) },
        crash: Some(crate::experiment::io::crash::Survived {
            file: "/probe-io/data".into(),
            copy_ms: 40.0,
            method: "dm-log-writes replayed to the mark".into(),
            found: true,
            file_bytes: 1 << 20,
            intact_bytes: 0,
            complete: false,
            agrees: Some(true),
        }),
    };
    let mut tmpfs = rep.clone();
    tmpfs.backing.store = Store::Memory { fstype: "tmpfs".into() };
    tmpfs.disk = None;
    tmpfs.trace = None;
    round_trip(&io::Report {
        header: header("io"),
        params: io::Params { size: 1 << 20, block: 1 << 20, sync: SyncMode::Fdatasync, reps: 1, idle_ms: 100, dir: "/var/tmp".into() },
        traced: true,
        background: io::Background { idle_ms: 100, bytes_per_s: [("vda".to_string(), 1.5)].into(), flushes_per_s: Default::default() },
        results: vec![
            io::ModeResult { mode: Mode::RootlessFuseOverlayfs, runtime: RuntimeKind::PodmanRootless, metric: "io_fuse".into(), reps: vec![rep], outcome: Some(Outcome::NotDurable), verdict: "NOT durable".into() },
            io::ModeResult { mode: Mode::Tmpfs, runtime: RuntimeKind::Bare, metric: "io_tmpfs".into(), reps: vec![tmpfs], outcome: None, verdict: "reps disagree".into() },
        ],
        skipped: vec![io::Skipped { mode: Mode::DockerVolume, reason: "no docker".into() }],
        warnings: vec![],
        crash_check: Some("ext4 on /dev/loop3".into()),
        reference: io::probe_file().reference,
        incomplete: Some(Stopped { runtime: RuntimeKind::Bare, rep: 2, warmup: false, reason: "tmpfs rep 2: the worker exited 1".into() }),
    });
}

#[test]
fn scale() {
    let step = |count: u32, total_s: f64| scale::Step {
        count,
        total_s,
        start_ms: vec![0.5; count as usize],
        cgroup_mb: Some(0.25),
        container_pss_mb: 0.5,
        engine_delta_mb: 1.0,
        daemon_delta_mb: 2.0,
        memory_mb: 1.5 * count as f64,
        free_delta_mb: -3.0,
        settled: true,
        teardown_s: 0.125,
    };
    let steps = vec![step(1, 0.5), step(2, 1.5)];
    let growth = scale::growth(&steps, 1.2);
    assert!(growth.is_some_and(|g| g.time_nonlinear), "the sample grows");
    round_trip(&scale::Report {
        header: header("scale"),
        fleet: FleetRun { counts: vec![1, 2], command: vec!["sleep".into(), "3600".into()] },
        nonlinear_ratio: 1.2,
        results: vec![scale::RuntimeScale { runtime: RuntimeKind::Native, cgroup_na: None, steps, growth }],
        skipped: vec![],
        warnings: vec![],
        reference: scale::probe().reference,
    });
}

#[test]
fn nested() {
    use crate::experiment::nested::cause::{Cause, Precondition};
    use crate::experiment::nested::inner::{Step, StepName};
    use crate::experiment::nested::native::NativeLevel;
    let cause = Cause {
        step: "run `echo ok` in an inner container".into(),
        syscall: "mount(proc)".into(),
        errno: "EPERM".into(),
        missing: Precondition::MountPermission,
        reason: "may not mount proc".into(),
        fix: "--privileged".into(),
        evidence: "Error: mount".into(),
        source: "measured: mount(2) of proc in the outer container".into(),
    };
    let failed = nested::ApproachResult {
        id: "pinp_basic".into(),
        experiment: 9,
        engine: "podman".into(),
        approach: "pinp_basic".into(),
        outer_flags: vec!["--device".into(), "/dev/fuse".into()],
        success: false,
        total_ms: 2400.0,
        outer_start_ms: Some(300.0),
        first_echo_ms: None,
        daemon_ms: None,
        import_ms: Some(100.0),
        inner_start_ms: None,
        steps: vec![Step { name: StepName::Run, ok: false, start_ns: 1, end_ns: 2, detail: "Error: mount".into() }],
        probes: Some(Default::default()),
        cause: Some(cause.clone()),
        security: None,
    };
    round_trip(&nested::Report {
        header: header("nested"),
        results: vec![failed],
        native: vec![NativeLevel { depth: 1, success: false, samples_ms: vec![10.0], median_ms: Some(10.0), level_cost_ms: None, cause: Some(cause) }],
        not_run: vec![nested::NotRun { engine: "docker".into(), approaches: vec!["exp5_dind".into()], reason: "docker has no probe-nested:latest".into() }],
        leftovers: vec![],
        reference: nested::probe_file().reference,
    });
}
