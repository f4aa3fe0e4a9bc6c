//! The process layer of every local run of loopscope: `loopscope up` / `demo` (this crate's
//! binary) and the cross-service tests (`tests/src`) start, probe and stop the services with
//! it, so there is one way to scrub a child's environment, read its output (`capture`: the
//! tests learn a port-0 service's ports from its `listening` line), wait for `/readyz`
//! (`ready`) and stop a process (`process`: SIGTERM, a grace period, then SIGKILL).
//!
//! Blocking code on purpose: it runs in a command-line tool and in tests, never on an event
//! loop; a sleep here waits for a process and blocks nothing else (clippy.toml bans it in
//! the services).
#![allow(clippy::disallowed_methods)]

pub mod capture;
pub mod process;
pub mod ready;
