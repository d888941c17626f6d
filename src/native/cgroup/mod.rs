//! The container's own cgroup in every hierarchy it needs (the layout is read by crate::sys::cgroup).
//!
//! cgroupfs is written directly rather than through cgroups-rs: its `hierarchies::auto()`
//! treats a hybrid host as plain v1 (it ignores the unified tree, so CLONE_INTO_CGROUP could
//! never be used there), and its `Cgroup::new` creates a directory in every mounted v1
//! hierarchy, which costs a mkdir/rmdir pair per controller on the hot path.

mod container;
pub mod inside;

pub use container::{attach_self, ContainerCgroup, Limits};
