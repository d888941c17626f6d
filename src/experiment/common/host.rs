//! Facts about the host recorded with every run, so a result can be read later against the
//! machine that produced it (kernel, CPU, cgroup layout, engines, probe version, date).

use serde::{Deserialize, Serialize};

use crate::runtimes::detect::{self, RuntimeStatus};
use crate::ground::RuntimeKind;

/// What heads every experiment's report: which experiment ran, and on what host. Each Report
/// flattens it, so `experiment` and `host` stay top-level keys of the JSON.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Header {
    pub experiment: String,
    pub host: HostInfo,
}

impl Header {
    /// The host as it is now, with the status of the runtimes the experiment ran.
    pub fn collect(experiment: &str, runtimes: &[RuntimeKind]) -> Self {
        Header { experiment: experiment.into(), host: HostInfo::collect(runtimes) }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HostInfo {
    pub probe_version: String,
    /// UTC, RFC 3339.
    pub date: String,
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_total_mb: u64,
    pub euid: u32,
    pub cgroup_layout: serde_json::Value,
    #[serde(default)]
    pub runtimes: Vec<RuntimeStatus>,
}

impl HostInfo {
    pub fn collect(runtimes: &[RuntimeKind]) -> Self {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_default()
        };
        HostInfo {
            probe_version: env!("CARGO_PKG_VERSION").into(),
            date: utc_now_rfc3339(),
            hostname: field(|u| u.nodename()),
            kernel: field(|u| u.release()),
            arch: field(|u| u.machine()),
            cpu_model: cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_total_mb: mem_total_kb(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default()) / 1024,
            euid: nix::unistd::Uid::effective().as_raw(),
            cgroup_layout: crate::sys::cgroup::detect()
                .map(|l| serde_json::to_value(l).unwrap_or_default())
                .unwrap_or_else(|e| serde_json::Value::String(format!("unknown: {e}"))),
            runtimes: runtimes.iter().map(|&k| detect::status(k)).collect(),
        }
    }
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total_kb(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = crate::sys::clock::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_and_meminfo() {
        assert_eq!(cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"), "AMD EPYC 7B13");
        assert_eq!(cpu_model(""), "unknown");
        assert_eq!(mem_total_kb("MemTotal:       24684084 kB\nMemFree: 1 kB\n"), 24_684_084);
    }
}
