//! Addresses to function, file and line, with `backtrace::resolve` (gimli's addr2line over
//! the binary's line tables: release builds keep them, `debug = "line-tables-only"`). Slow
//! the first time (it parses the debug info), so it runs on the stall reporter thread, never
//! on a worker or the watchdog.
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub(crate) struct StackFrame {
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Code of loopscope's own crates, as opposed to std, tokio, actix...
    pub in_app: bool,
    /// Hex, for matching against other tools.
    pub address: String,
}

/// Crates whose frames are ours (the BRIEF-COMMON contract with the Sentry side).
const IN_APP_CRATES: &[&str] = &["common", "worker", "gateway", "backend", "loadgen"];

/// Whether a demangled function name belongs to one of our crates: its first path segment,
/// after any `<` of a trait impl (`<common::stall::PollTimed<F> as Future>::poll`).
pub(crate) fn is_in_app(function: &str) -> bool {
    let name = function.trim_start_matches(['<', '&', '*', ' ']);
    let name = name.strip_prefix("mut ").unwrap_or(name);
    let first = name.split("::").next().unwrap_or_default();
    IN_APP_CRATES.contains(&first)
}

/// Whether a source file is one of our crates' (`…/services/worker/src/work.rs`, relative or
/// absolute, a Docker build's `/src/services/…` too). Release builds keep line tables only:
/// an inlined function's name is then its short DWARF name (`{closure#0}`, `{async_fn#0}`,
/// `here<…>`) with no crate path, and only its file says it is ours.
pub(crate) fn is_our_source(file: &str) -> bool {
    IN_APP_CRATES.iter().any(|krate| {
        file.contains(&format!("services/{krate}/src/"))
            && !file.contains("/.cargo/registry/")
            && !file.starts_with("/rustc/")
    })
}

/// Innermost first, as captured; inlined functions appear as frames of their own.
pub(crate) fn symbolize(addresses: &[u64]) -> Vec<StackFrame> {
    let mut frames = Vec::with_capacity(addresses.len());
    for &addr in addresses {
        let before = frames.len();
        backtrace::resolve(addr as *mut std::ffi::c_void, |symbol| {
            let function = symbol
                .name()
                .map(|n| format!("{n:#}"))
                .unwrap_or_else(|| "<unknown>".to_owned());
            let file = symbol.filename().map(|f| f.display().to_string());
            frames.push(StackFrame {
                in_app: is_in_app(&function) || file.as_deref().is_some_and(is_our_source),
                function,
                file,
                line: symbol.lineno(),
                address: format!("{addr:#x}"),
            });
        });
        if frames.len() == before {
            frames.push(StackFrame {
                function: "<unknown>".to_owned(),
                file: None,
                line: None,
                in_app: false,
                address: format!("{addr:#x}"),
            });
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_app_is_decided_by_the_crate() {
        assert!(is_in_app("worker::work::perform::{{closure}}"));
        assert!(is_in_app(
            "<common::stall::PollTimed<F> as core::future::Future>::poll"
        ));
        assert!(!is_in_app("std::thread::sleep"));
        assert!(!is_in_app("<tokio::runtime::Runtime>::block_on"));
        assert!(!is_in_app("clock_nanosleep"));
        assert!(!is_in_app("commonality::x"));
    }

    #[test]
    fn an_inlined_frame_is_ours_by_its_file() {
        assert!(is_our_source("/work/main/services/worker/src/work.rs"));
        assert!(is_our_source("services/common/src/grace_end.rs"));
        assert!(is_our_source("/src/services/gateway/src/routes.rs"));
        assert!(!is_our_source(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/actix-web-4.18.1/src/handler.rs"
        ));
        assert!(!is_our_source(
            "/rustc/59807616e1fa/library/std/src/thread/functions.rs"
        ));
        assert!(!is_our_source("/work/main/services/contractor/src/x.rs"));
    }
}
