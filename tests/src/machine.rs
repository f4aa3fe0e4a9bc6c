//! Who may share the machine. The cross-service suites are modules of one test binary, so
//! libtest runs two tests at a time across every suite, not only within one file as it did
//! with a binary per file. Most tests are functional and share the two cores happily; a few
//! measure (RSS, latency percentiles, stall classification, shutdown grace) or load every
//! core on purpose, and a neighbour would make them flaky or be made flaky by them.
//!
//! Every test starts by taking one of the two guards, so the choice is made (and visible)
//! in each test: [`shared`] for the many, [`exclusive`] (with a comment saying why) for the
//! few. `tests/tests/main.rs` fails when a test takes neither ([`unguarded_tests`]).

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

static MACHINE: RwLock<()> = RwLock::new(());

/// Runs alongside any other shared test; waits while an exclusive one runs.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    // A failed test poisons the lock; the next test must still run.
    MACHINE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Runs alone: waits for the running tests to finish and keeps the others waiting.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(PoisonError::into_inner)
}

/// The names of the `#[test]` functions in `source` whose first statement takes neither
/// guard.
pub fn unguarded_tests(source: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut lines = source.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "#[test]" {
            continue;
        }
        // Further attributes (`#[should_panic]`, ...) may sit between `#[test]` and the fn.
        let Some(signature) = lines.by_ref().find(|l| l.contains("fn ")) else {
            break;
        };
        let name = signature
            .split("fn ")
            .nth(1)
            .and_then(|rest| rest.split('(').next())
            .unwrap_or(signature)
            .to_owned();
        // The first statement, past comments that say why a test is exclusive.
        let first = lines
            .by_ref()
            .find(|l| !l.is_empty() && !l.starts_with("//"));
        let guarded = first.is_some_and(|l| {
            l.starts_with("let _machine = loopscope_tests::machine::shared();")
                || l.starts_with("let _machine = loopscope_tests::machine::exclusive();")
        });
        if !guarded {
            missing.push(name);
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_without_a_guard_is_named() {
        let source = "
            #[test]
            fn guarded() {
                let _machine = loopscope_tests::machine::shared();
                work();
            }

            #[test]
            #[should_panic]
            fn alone() {
                // Measures RSS.
                let _machine = loopscope_tests::machine::exclusive();
            }

            #[test]
            fn forgot() {
                let svc = start();
            }

            #[test]
            fn took_it_late() {
                let svc = start();
                let _machine = loopscope_tests::machine::shared();
            }
        ";
        assert_eq!(unguarded_tests(source), ["forgot", "took_it_late"]);
    }

    #[test]
    fn a_guard_left_in_a_binding_named_underscore_is_not_taken() {
        // `let _ = ...` drops the guard at once: the test would run unguarded.
        let source = "#[test]\nfn f() {\n    let _ = loopscope_tests::machine::exclusive();\n}\n";
        assert_eq!(unguarded_tests(source), ["f"]);
    }
}
