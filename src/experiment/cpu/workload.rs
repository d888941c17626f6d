//! The chapter's CPU workload, whatever runs it (a shell on the host, `docker run`, `docker
//! exec`, a native container); measure::timer times each run of it.

/// The busy loop of Experiments 3 and 7, verbatim: only shell builtins, so one process
/// does all the work and no fork or exec is timed.
pub fn busy_loop(count: u64) -> Vec<String> {
    vec!["sh".into(), "-c".into(), format!("i=0; while [ $i -lt {count} ]; do i=$((i+1)); done")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chapters_loop() {
        assert_eq!(busy_loop(10)[2], "i=0; while [ $i -lt 10 ]; do i=$((i+1)); done");
    }
}
