//! The cross-service tests, one module per suite, linked once into one binary (`--test
//! cross`). Run one suite with a filter: `cargo test -p loopscope-tests --test cross worker::`.
//!
//! libtest runs two tests at a time across all suites; each test takes a
//! [`loopscope_tests::machine`] guard first, shared or (for the few that measure or load
//! every core) exclusive. The two tests below keep that layout honest: a suite file that no
//! `mod` line names would silently never run, and a test without a guard could overlap a
//! measurement.

mod backend;
mod consistency;
mod dashboards;
mod experiments;
mod exposition;
mod floods;
mod gateway;
mod hostile;
mod http_layer;
mod idle;
mod latency_truth;
mod launcher;
mod layers;
mod loadgen_run;
mod sentry;
mod sentry_losses;
mod sentry_storm;
mod shutdown;
mod stall;
mod startup;
mod worker;

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read tests/tests") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn suites_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

#[test]
fn every_suite_file_is_a_module_of_this_binary() {
    let _machine = loopscope_tests::machine::shared();
    let main = std::fs::read_to_string(suites_dir().join("main.rs")).expect("main.rs");
    let declared: Vec<&str> = main
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    assert!(declared.contains(&"worker"), "the mod lines were not found");
    let mut undeclared = Vec::new();
    for entry in std::fs::read_dir(suites_dir()).expect("read tests/tests") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let is_suite = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_suite && name != "main" && !declared.contains(&name) {
            undeclared.push(path.display().to_string());
        }
    }
    assert!(
        undeclared.is_empty(),
        "add a `mod` line to tests/tests/main.rs for {undeclared:?}: with `autotests = false` \
         cargo does not build them on its own"
    );
}

#[test]
fn every_test_takes_a_machine_guard_first() {
    let _machine = loopscope_tests::machine::shared();
    let files = sources(&suites_dir());
    let mut checked = 0;
    let mut missing = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("read a suite");
        checked += source.matches("#[test]").count();
        for name in loopscope_tests::machine::unguarded_tests(&source) {
            missing.push(format!("{}: {name}", file.display()));
        }
    }
    assert!(checked > 100, "only {checked} tests found in {files:?}");
    assert!(
        missing.is_empty(),
        "these tests take no guard as their first statement (`let _machine = \
         loopscope_tests::machine::shared();`, or `exclusive()` with a comment saying why):\n{}",
        missing.join("\n")
    );
}
