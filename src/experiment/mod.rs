//! One file per experiment of the chapter. Each returns records; none knows output formats.
pub mod all;
pub mod breakdown;
pub mod cpu;
pub mod cpu_cgroup;
pub mod cpu_exec;
pub mod fleets;
pub mod footprint;
pub mod io;
pub mod memory;
pub mod memory_cgroup;
pub mod nested;
pub mod reference;
pub mod scale;
pub mod startup;
pub mod workload;
