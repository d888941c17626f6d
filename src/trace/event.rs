//! A decoded kernel event: what attribution, summaries and `--json` work from.

use std::collections::BTreeMap;

use serde::Serialize;

use super::format::Value;

/// The name given to sampled page faults (a perf software event, not a tracepoint).
pub const PAGE_FAULT: &str = "page-faults";

/// The field of a [`PAGE_FAULT`] event holding how many faults its sample stands for.
pub const FAULTS_PER_SAMPLE: &str = "faults";

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// CLOCK_MONOTONIC nanoseconds, the clock of `Sample::start_mono_ns`.
    pub time_ns: u64,
    pub cpu: u32,
    /// Thread group id of the task the event fired in.
    pub pid: u32,
    pub tid: u32,
    /// `system/name` of the tracepoint, or [`PAGE_FAULT`].
    pub name: String,
    pub fields: BTreeMap<String, Value>,
    /// Kernel call chain (instruction pointers, innermost first) where the event records
    /// one: `sched_switch` with `probe trace --kernel-stacks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub callchain: Vec<u64>,
}

impl Event {
    pub fn int(&self, field: &str) -> Option<i64> {
        self.fields.get(field).and_then(Value::as_i64)
    }

    pub fn uint(&self, field: &str) -> Option<u64> {
        self.fields.get(field).and_then(Value::as_u64)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// The short tracepoint name, without its system (`sys_enter_mount`).
    pub fn short_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}
