//! `probe doctor`'s checks: what this host can measure, and for what it cannot, why and how
//! to fix it.

use serde::Serialize;

use crate::runtimes::detect;

#[derive(Serialize, Clone, Debug)]
pub struct Check {
    pub area: &'static str,
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(area: &'static str, name: impl Into<String>, ok: bool, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        area,
        name: name.into(),
        ok,
        detail: detail.into(),
        fix: if ok { None } else { fix.map(str::to_string) },
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

pub fn run_all() -> Vec<Check> {
    let mut out = Vec::new();
    let uts = nix::sys::utsname::uname().ok();
    out.push(check(
        "kernel",
        "release",
        true,
        uts.map(|u| format!("{} {}", u.release().to_string_lossy(), u.machine().to_string_lossy()))
            .unwrap_or_default(),
        None,
    ));
    out.extend(cgroup_checks());
    out.extend(privilege_checks());
    out.extend(tracing_checks());
    out.extend(perf_checks());
    for st in detect::status_all() {
        let mut detail = Vec::new();
        if let Some(v) = &st.version {
            detail.push(format!("version {v}"));
        }
        if let Some(s) = &st.storage {
            detail.push(format!("storage {s}"));
        }
        if let Some(i) = st.image {
            detail.push(format!("image {}", if i { "present" } else { "missing" }));
        }
        if let Some(p) = &st.problem {
            detail.push(p.clone());
        }
        out.push(check("runtime", st.runtime.name(), st.usable, detail.join(", "), st.fix.as_deref()));
    }
    out
}

fn cgroup_checks() -> Vec<Check> {
    match crate::sys::cgroup::detect() {
        Ok(l) => {
            let v1: Vec<String> = l.v1.iter().map(|(c, p)| format!("{c}→{}", p.display())).collect();
            let mut detail = format!("{:?}", l.kind).to_lowercase();
            if !v1.is_empty() {
                detail.push_str(&format!("; v1: {}", v1.join(" ")));
            }
            if let Some(u) = &l.unified {
                detail.push_str(&format!("; v2 at {} with [{}]", u.display(), l.unified_controllers.join(" ")));
            }
            vec![check("cgroup", "layout", true, detail, None)]
        }
        Err(e) => vec![check("cgroup", "layout", false, e.to_string(), Some("mount cgroupfs at /sys/fs/cgroup"))],
    }
}

fn privilege_checks() -> Vec<Check> {
    let euid = nix::unistd::Uid::effective();
    let mut out = vec![check(
        "privileges",
        "root",
        euid.is_root(),
        format!("euid {euid}"),
        Some("run probe with sudo for native, docker, podman and tracing (podman-rootless and `probe run` work unprivileged)"),
    )];
    if let Ok(eff) = caps::read(None, caps::CapSet::Effective) {
        let missing: Vec<String> = caps::all().difference(&eff).map(|c| c.to_string().to_lowercase()).collect();
        out.push(check(
            "privileges",
            "capabilities",
            missing.is_empty() || !euid.is_root(),
            if missing.is_empty() { "all".to_string() } else { format!("missing: {}", missing.join(" ")) },
            Some("run as real root outside a restricted container"),
        ));
    }
    let userns = read("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    out.push(check(
        "privileges",
        "user namespaces",
        userns.parse::<u64>().map(|n| n > 0).unwrap_or(false),
        format!("max_user_namespaces {userns}"),
        Some("sysctl user.max_user_namespaces=15000"),
    ));
    let fuse = std::fs::metadata("/dev/fuse").map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    out.push(check(
        "privileges",
        "/dev/fuse",
        matches!(fuse, Ok(m) if m & 0o006 == 0o006),
        match fuse {
            Ok(m) => format!("mode {m:04o}"),
            Err(e) => format!("missing ({e})"),
        },
        Some("chmod 0666 /dev/fuse (scripts/setup-engines.sh does it) so rootless fuse-overlayfs can open it"),
    ));
    out
}

fn tracing_checks() -> Vec<Check> {
    let dir = match crate::trace::tracefs_dir() {
        Ok(dir) => dir,
        Err(e) => {
            let fix = match e {
                crate::trace::session::TraceError::NotPermitted(_) => "run probe doctor with sudo",
                _ => "mount -t tracefs nodev /sys/kernel/tracing",
            };
            return vec![check("tracing", "tracefs", false, e.to_string(), Some(fix))];
        }
    };
    let mut out = vec![check("tracing", "tracefs", true, dir.display().to_string(), None)];
    let missing: Vec<&str> = crate::trace::TRACEPOINTS
        .iter()
        .copied()
        .filter(|tp| !dir.join("events").join(tp).join("format").exists())
        .collect();
    out.push(check(
        "tracing",
        "tracepoints",
        missing.is_empty(),
        if missing.is_empty() {
            format!("all {} present", crate::trace::TRACEPOINTS.len())
        } else {
            format!("missing: {}", missing.join(" "))
        },
        Some("a kernel built with CONFIG_FTRACE_SYSCALLS and the missing subsystems"),
    ));
    let paranoid = read("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
    out.push(check(
        "tracing",
        "perf_event_paranoid",
        nix::unistd::Uid::effective().is_root() || paranoid.parse::<i32>().map(|p| p <= -1).unwrap_or(false),
        paranoid,
        Some("run as root, or sysctl kernel.perf_event_paranoid=-1"),
    ));
    out
}

fn perf_checks() -> Vec<Check> {
    use perf_event::events::{Hardware, Software};
    let try_counter = |b: &mut perf_event::Builder| -> Result<u64, std::io::Error> {
        let mut c = b.build()?;
        c.enable()?;
        std::hint::black_box((0..1000).sum::<u64>());
        c.read()
    };
    let mut out = Vec::new();
    for (name, mut builder) in [
        ("task-clock", perf_event::Builder::new(Software::TASK_CLOCK)),
        ("context-switches", perf_event::Builder::new(Software::CONTEXT_SWITCHES)),
        ("page-faults", perf_event::Builder::new(Software::PAGE_FAULTS)),
    ] {
        let r = try_counter(&mut builder);
        out.push(check("perf", name, r.is_ok(), r.map(|_| "works".to_string()).unwrap_or_else(|e| e.to_string()), Some("run as root or lower kernel.perf_event_paranoid")));
    }
    for (name, mut builder) in [
        ("cycles", perf_event::Builder::new(Hardware::CPU_CYCLES)),
        ("instructions", perf_event::Builder::new(Hardware::INSTRUCTIONS)),
    ] {
        let r = try_counter(&mut builder);
        out.push(check(
            "perf",
            name,
            r.is_ok(),
            r.map(|_| "works".to_string()).unwrap_or_else(|e| format!("not supported ({e}); reported as n/a")),
            Some("hardware counters need a PMU; VMs often have none (nothing to fix, reported as n/a)"),
        ));
    }
    out
}
