//! The access log's one line per request, formatted by hand.
//!
//! Through `tracing`'s JSON layer the line cost ~20 k instructions per request, a third of
//! the cheapest route (callgrind, `make test-cost`): every field visited through `dyn`
//! visitors, serialized by serde_json through `fmt::Write` adaptors that re-validate UTF-8
//! chunk by chunk. Here the same JSON object, field for field and in the same order as the
//! JSON layer writes it, is written into a per-thread buffer and handed to the same
//! non-blocking writer as every other line (so lines stay in order, a full queue drops and
//! counts them, and nothing blocks the event loop). `RUST_LOG` still filters it
//! (`access=warn` silences it). With text logs (`--log-format text`, for people) the line
//! goes through `tracing` as before: there the cost does not matter.
use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

use tracing_appender::non_blocking::NonBlocking;

use crate::timestamp::MicrosTimestamp;

/// The JSON writer, set by `logging::init` when the format is JSON.
static JSON_SINK: OnceLock<NonBlocking> = OnceLock::new();

pub(crate) fn set_json_sink(writer: NonBlocking) {
    let _ = JSON_SINK.set(writer);
}

/// Whether the access log is wanted at all (the `access` target at INFO).
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "access", tracing::Level::INFO)
}

/// One request's access-log fields.
pub(crate) struct AccessLine<'a> {
    pub request_id: &'a str,
    pub trace_id: Option<&'a str>,
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration: std::time::Duration,
    pub error: Option<&'a str>,
}

thread_local! {
    /// Reused per thread: a line is formatted without allocating once the buffer has grown.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl AccessLine<'_> {
    /// Writes the line: by hand to the JSON writer, or as a `tracing` event for text logs.
    pub(crate) fn emit(&self) {
        let Some(sink) = JSON_SINK.get() else {
            self.emit_through_tracing();
            return;
        };
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.write_json(line, MicrosTimestamp::now().as_str());
            // One `write` is one queued line; a full queue drops and counts it. (A clone is
            // two reference counts: the writer needs `&mut`, as tracing's layer clones it too.)
            let _ = sink.clone().write(line.as_bytes());
        });
    }

    fn duration_ms(&self) -> f64 {
        // Whole nanoseconds over 1e6 print as the shortest decimal (0.083264, not 0.08326399999999999).
        self.duration.as_nanos() as f64 / 1e6
    }

    fn emit_through_tracing(&self) {
        tracing::info!(
            target: "access",
            request_id = self.request_id,
            trace_id = self.trace_id,
            method = self.method,
            route = self.route,
            path = self.path,
            status = self.status,
            duration_ms = self.duration_ms(),
            error = self.error,
            "request"
        );
    }

    /// The object tracing-subscriber's flattened JSON layer writes for the same event.
    fn write_json(&self, out: &mut String, timestamp: &str) {
        out.push_str("{\"timestamp\":\"");
        out.push_str(timestamp);
        out.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":");
        // A client's request id is any printable ASCII (a `"` too); the trace id (hex), the
        // method (an HTTP token) and the route (one of our patterns) have nothing to escape.
        json_str(out, self.request_id);
        if let Some(trace_id) = self.trace_id {
            out.push_str(",\"trace_id\":");
            plain_str(out, trace_id);
        }
        out.push_str(",\"method\":");
        plain_str(out, self.method);
        out.push_str(",\"route\":");
        plain_str(out, self.route);
        out.push_str(",\"path\":");
        json_str(out, self.path);
        let _ = write!(
            out,
            ",\"status\":{},\"duration_ms\":{}",
            self.status,
            self.duration_ms()
        );
        if let Some(error) = self.error {
            out.push_str(",\"error\":");
            json_str(out, error);
        }
        out.push_str(",\"target\":\"access\"}\n");
    }
}

/// `s` as a JSON string, when nothing in it needs escaping (checked in debug builds).
fn plain_str(out: &mut String, s: &str) {
    debug_assert!(
        !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
        "{s:?} needs escaping"
    );
    out.push('"');
    out.push_str(s);
    out.push('"');
}

/// `s` as a JSON string: runs that need no escape are copied whole.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn line(error: Option<&str>, path: &str, trace_id: Option<&str>) -> serde_json::Value {
        let mut out = String::new();
        AccessLine {
            request_id: "f64ef015e5df4b59a1dd49d5292623dd",
            trace_id,
            method: "GET",
            route: "/work/cpu",
            path,
            status: 400,
            duration: Duration::from_micros(66_830),
            error,
        }
        .write_json(&mut out, "2026-11-30T16:52:02.751944Z");
        assert!(out.ends_with("}\n"), "one line: {out}");
        assert_eq!(out.matches('\n').count(), 1, "one line: {out}");
        serde_json::from_str(&out).expect("valid JSON")
    }

    #[test]
    fn writes_the_fields_of_the_tracing_json_layer_in_its_order() {
        let out = {
            let mut out = String::new();
            AccessLine {
                request_id: "r",
                trace_id: Some("t"),
                method: "GET",
                route: "/work/cpu",
                path: "/work/cpu",
                status: 200,
                duration: Duration::from_micros(66_830),
                error: None,
            }
            .write_json(&mut out, "2026-11-30T16:52:02.751944Z");
            out
        };
        assert_eq!(
            out,
            "{\"timestamp\":\"2026-11-30T16:52:02.751944Z\",\"level\":\"INFO\",\
             \"message\":\"request\",\"request_id\":\"r\",\"trace_id\":\"t\",\"method\":\"GET\",\
             \"route\":\"/work/cpu\",\"path\":\"/work/cpu\",\"status\":200,\
             \"duration_ms\":66.83,\"target\":\"access\"}\n"
        );
    }

    #[test]
    fn escapes_what_a_client_controls() {
        let hostile = "/a\"b\\c\nd\u{1}e\u{7f}é";
        let v = line(Some("got `\"x\"`\r\t"), hostile, None);
        assert_eq!(v["path"], hostile);
        assert_eq!(v["error"], "got `\"x\"`\r\t");
        assert_eq!(v["status"], 400);
        assert_eq!(v["duration_ms"], 66.83);
        assert!(v.get("trace_id").is_none());
        assert_eq!(v["target"], "access");
    }
}
