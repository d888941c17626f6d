//! The unit tests' twin of tests/common `require`: a test that cannot run here says so, and
//! under CI=true (where everything a test needs is installed and probe runs as root) the skip
//! is a failure, so no unit test can pass by returning early.

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// False (and says why) when the test cannot run here; panics instead under CI=true.
pub fn require(ok: bool, why: &str) -> bool {
    require_in(in_ci(), ok, why)
}

fn require_in(ci: bool, ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!ci, "CI=true and this test would be skipped: {why}");
    eprintln!("SKIPPED: {why}");
    false
}

pub fn require_root() -> bool {
    require(nix::unistd::Uid::effective().is_root(), "needs root (run the unit tests as root)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_fails_under_ci() {
        // CI is passed in, not set: the process environment is shared by parallel tests.
        assert!(std::panic::catch_unwind(|| require_in(true, false, "test")).is_err());
        assert!(!require_in(false, false, "test"));
        assert!(require_in(true, true, "test"));
    }
}
