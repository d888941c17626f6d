//! The chapter's scripts as thin calls to probe: `bash scripts/bench_startup.sh 2` writes
//! startup.csv in the chapter's schema (`runtime,metric,value`, one row per rep) and leaves
//! no scratch folder behind. Needs root and docker.

mod common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn bench_startup_writes_the_chapters_csv() {
    if !common::require_engine("docker") {
        return;
    }
    let root = std::env::temp_dir().join(format!("probe-scripts-test-{}", std::process::id()));
    let (out_dir, scratch) = (root.join("out"), root.join("tmp"));
    std::fs::create_dir_all(&scratch).unwrap();
    // TMPDIR of its own, so the script's scratch folder can be looked for without racing
    // whatever else uses the system temp dir.
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/bench_startup.sh"
        ))
        .arg("2")
        .env("PROBE", common::probe_bin())
        .env("BENCH_RESULTS", &out_dir)
        .env("TMPDIR", &scratch)
        .output()
        .expect("run bash");
    let csv = std::fs::read_to_string(out_dir.join("startup.csv"));
    let left: Vec<PathBuf> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        out.status.success(),
        "bench_startup.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("startup.csv"),
        "the script says where the CSV went"
    );
    assert!(
        left.is_empty(),
        "the script left its scratch folder: {left:?}"
    );
    let csv = csv.expect("startup.csv written");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("runtime,metric,value"));
    let mut per_runtime = std::collections::BTreeMap::<String, usize>::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert_eq!(f[1], "startup_ms", "{line}");
        let v: f64 = f[2]
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(v > 0.0 && v < 60_000.0, "{line}");
        *per_runtime.entry(f[0].to_string()).or_default() += 1;
    }
    assert_eq!(per_runtime.get("bare"), Some(&2), "{per_runtime:?}");
    assert_eq!(per_runtime.get("docker"), Some(&2), "{per_runtime:?}");
    assert!(
        per_runtime.values().all(|&n| n == 2),
        "2 reps for every runtime: {per_runtime:?}"
    );
}
