//! Hostile input for every parser: whatever bytes /proc, cgroupfs, tracefs, a perf ring or a
//! probes/ file hand us, parsing returns a value or an error — it never panics, never loops.
//! Run by `cargo test`; PROPTEST_CASES raises the case count for a longer fuzzing session.

use proptest::prelude::*;

/// Text shaped like the files parsed (lines of space- and colon-separated tokens, some
/// numbers, some escapes) so cases reach past the first `split`, plus arbitrary unicode.
fn procish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[0-9]{1,20}",
        "-?[0-9]{1,3}:[0-9]{1,3}",
        "[a-z_/.,=:-]{0,12}",
        "\\\\[0-7]{3}",
        ".{0,8}",
    ];
    let line = prop::collection::vec(token, 0..14).prop_map(|t| t.join(" "));
    prop_oneof![
        prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n")),
        ".{0,400}",
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mountinfo(text in procish()) {
        let _ = crate::sys::mountinfo::parse(&text);
        let _ = crate::sys::cgroup::CgroupLayout::parse(&text, &text);
    }

    #[test]
    fn diskstats(text in procish()) {
        let _ = crate::sys::diskstats::parse(&text);
    }

    #[test]
    fn proc_files(text in procish()) {
        let _ = crate::sys::procfs::MemInfo::parse(&text);
        let _ = crate::sys::procfs::parse_cgroup(&text);
        let _ = crate::sys::procfs::parse_smaps_rollup(&text);
        let _ = crate::sys::procfs::parse_status(&text);
        let _ = crate::sys::cgroup::process::parse_flat(&text);
    }

    #[test]
    fn tracepoint_formats(text in procish()) {
        let _ = crate::trace::format::EventFormat::parse("fuzz/event", &text);
    }

    #[test]
    fn tracepoint_records(raw in prop::collection::vec(any::<u8>(), 0..256), ty in 0u32..16) {
        let _ = crate::trace::record::parse(ty, &raw);
        for fixture in [
            include_str!("../tests/fixtures/trace/sched_process_exec.format"),
            include_str!("../tests/fixtures/trace/block_rq_issue.format"),
            include_str!("../tests/fixtures/trace/cgroup_mkdir.format"),
        ] {
            let f = crate::trace::format::EventFormat::parse("fuzz/event", fixture).unwrap();
            let _ = f.decode(&raw);
        }
    }

    #[test]
    fn chapter_csv(raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = crate::output::seed_csv::parse_metric_csv(&raw);
    }

    #[test]
    fn probes_files(text in ".{0,300}") {
        let _ = serde_json::from_str::<crate::experiment::common::reference::StartupProbe>(&text);
    }

    #[test]
    fn names_and_ldd(text in procish()) {
        let _ = crate::runtimes::cleanup::owner_pid(&text);
        let _ = crate::runtimes::image::build::parse_ldd(&text);
    }
}
