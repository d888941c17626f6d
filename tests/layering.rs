//! The folders of src/ are the layers of probe, and a module may import only from its own layer
//! or the ones below it (docs/architecture.md). This scan keeps that true: it reads every source
//! file, finds each `crate::<layer>` path outside comments, and fails on one that points up.

use std::path::{Path, PathBuf};

/// Top to bottom. `main.rs` and the crate-wide fuzz tests sit above all of them.
const LAYERS: &[&str] = &["cli", "output", "experiment", "runtimes", "measure", "native", "trace", "sys", "ground"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line without its `//` comment (a `//` inside a string literal is rare enough in
/// an import path that it does not matter here).
fn code(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

/// Every `crate::<name>` in a line of code, with the name.
fn crate_paths(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        let tail = &rest[i + "crate::".len()..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        // `$crate::` or `some_crate::` are not this crate.
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            found.push(&tail[..end]);
        }
        rest = &tail[end..];
    }
    found
}

fn violations(src: &Path) -> (usize, Vec<String>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src).expect("under src");
        let Some(own) = rel.components().next().and_then(|c| c.as_os_str().to_str()).and_then(|first| rank(first.trim_end_matches(".rs"))) else {
            continue; // main.rs, fuzz_tests.rs: the crate root may use every layer
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in crate_paths(line) {
                match rank(name) {
                    Some(r) if r < own => bad.push(format!(
                        "src/{}:{}: layer `{}` imports `crate::{name}`, a layer above it",
                        rel.display(),
                        n + 1,
                        LAYERS[own]
                    )),
                    Some(_) => {}
                    None => bad.push(format!("src/{}:{}: `crate::{name}` is not a layer folder ({})", rel.display(), n + 1, LAYERS.join(", "))),
                }
            }
        }
    }
    (files.len(), bad)
}

#[test]
fn imports_only_go_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (files, bad) = violations(&src);
    assert!(files > 50, "scanned only {files} files under {}", src.display());
    assert!(bad.is_empty(), "{} upward import(s):\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn every_layer_folder_exists_and_nothing_else_sits_beside_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for layer in LAYERS {
        assert!(src.join(layer).join("mod.rs").is_file(), "src/{layer}/mod.rs is missing");
    }
    for entry in std::fs::read_dir(&src).expect("read src") {
        let name = entry.expect("entry").file_name().into_string().expect("utf-8 name");
        let stem = name.trim_end_matches(".rs");
        assert!(
            rank(stem).is_some() || name == "main.rs" || name == "fuzz_tests.rs",
            "src/{name} is not in a layer: put it in one of {}",
            LAYERS.join(", ")
        );
    }
}

#[test]
fn the_scan_catches_an_upward_import() {
    // The scan itself must be able to fail: a fake tree with sys/ importing experiment/.
    let dir = std::env::temp_dir().join(format!("probe-layering-{}", std::process::id()));
    let sys = dir.join("sys");
    std::fs::create_dir_all(&sys).expect("mkdir");
    std::fs::write(sys.join("mod.rs"), "// crate::cli in a comment is fine\nuse crate::ground::phase;\nuse crate::experiment::startup;\n").expect("write");
    let (_, bad) = violations(&dir);
    std::fs::remove_dir_all(&dir).expect("rm");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("src/sys/mod.rs:3") && bad[0].contains("crate::experiment"), "{}", bad[0]);
}
