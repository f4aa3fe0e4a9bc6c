//! The access log's one line per request, formatted by hand.
//!
//! Through `tracing`'s JSON layer the line cost ~20 k instructions per request, a third of
//! the cheapest route (callgrind, `make test-cost`): every field visited through `dyn`
//! visitors, serialized by serde_json through `fmt::Write` adaptors that re-validate UTF-8
//! chunk by chunk. Here the same JSON object, field for field and in the same order as the
//! JSON layer writes it, is written into a per-thread buffer and appended to the same
//! line writer as every other line (so lines stay in order, a full buffer drops and
//! counts them, and nothing blocks the event loop). `RUST_LOG` still filters it
//! (`access=warn` silences it). With text logs (`--log-format text`, for people) the line
//! goes through `tracing` as before: there the cost does not matter.
//!
//! The line is bytes, not a `String`: the request and trace ids, the timestamp and the numbers
//! are ASCII we format ourselves, and turning each into a `&str` to push it re-validated its
//! UTF-8 (~300 instructions a request, callgrind).
use std::cell::RefCell;

use crate::timestamp::MicrosTimestamp;

/// Whether the access log is wanted at all (the `access` target at INFO).
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "access", tracing::Level::INFO)
}

/// One request's access-log fields.
pub(crate) struct AccessLine<'a> {
    /// Printable ASCII (ours, or a client's kept by [`crate::request_id::RequestId`]).
    pub request_id: &'a [u8],
    /// 32 hex digits.
    pub trace_id: Option<&'a [u8]>,
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration: std::time::Duration,
    pub error: Option<&'a str>,
}

thread_local! {
    /// Reused per thread: a line is formatted without allocating once the buffer has grown.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl AccessLine<'_> {
    /// Writes the line: by hand to the JSON writer, or as a `tracing` event for text logs.
    pub(crate) fn emit(&self) {
        let Some(sink) = crate::logging::json_writer() else {
            self.emit_through_tracing();
            return;
        };
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.write_json(line, MicrosTimestamp::now().as_bytes());
            // One append is one line; a full buffer drops and counts it.
            sink.append(line);
        });
    }

    fn duration_ms(&self) -> f64 {
        // Whole nanoseconds over 1e6 print as the shortest decimal (0.083264, not 0.08326399999999999).
        self.duration.as_nanos() as f64 / 1e6
    }

    /// [`Self::duration_ms`] as `Display` of the `f64` writes it, from integers: the same
    /// digits for any duration under ~26 days (until then an `f64` of milliseconds has more
    /// precision than the 6 decimals of whole nanoseconds), without float formatting's cost.
    fn write_duration_ms(&self, out: &mut Vec<u8>) {
        let nanos = self.duration.as_nanos();
        push_u64(out, u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX));
        let mut fraction = (nanos % 1_000_000) as u32;
        if fraction == 0 {
            return;
        }
        let mut digits = 6;
        while fraction.is_multiple_of(10) {
            fraction /= 10;
            digits -= 1;
        }
        out.push(b'.');
        let mut buf = [b'0'; 6];
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
        out.extend_from_slice(&buf[..digits]);
    }

    fn emit_through_tracing(&self) {
        let ascii = |bytes| std::str::from_utf8(bytes).unwrap_or_default();
        tracing::info!(
            target: "access",
            request_id = ascii(self.request_id),
            trace_id = self.trace_id.map(ascii),
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
    fn write_json(&self, out: &mut Vec<u8>, timestamp: &[u8]) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(timestamp);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":");
        // A client's request id is any printable ASCII (a `"` too); the trace id (hex), the
        // method (an HTTP token) and the route (one of our patterns) have nothing to escape.
        json_str(out, self.request_id);
        if let Some(trace_id) = self.trace_id {
            out.extend_from_slice(b",\"trace_id\":");
            plain_str(out, trace_id);
        }
        out.extend_from_slice(b",\"method\":");
        plain_str(out, self.method.as_bytes());
        out.extend_from_slice(b",\"route\":");
        plain_str(out, self.route.as_bytes());
        out.extend_from_slice(b",\"path\":");
        json_str(out, self.path.as_bytes());
        out.extend_from_slice(b",\"status\":");
        push_u64(out, u64::from(self.status));
        out.extend_from_slice(b",\"duration_ms\":");
        self.write_duration_ms(out);
        if let Some(error) = self.error {
            out.extend_from_slice(b",\"error\":");
            json_str(out, error.as_bytes());
        }
        out.extend_from_slice(b",\"target\":\"access\"}\n");
    }
}

/// `s` as a JSON string, when nothing in it needs escaping (checked in debug builds).
fn plain_str(out: &mut Vec<u8>, s: &[u8]) {
    debug_assert!(!s.iter().copied().any(needs_escape), "{s:?} needs escaping");
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

/// `n` in decimal, without `fmt`'s machinery.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `s` as a JSON string: runs that need no escape are copied whole. `s` is UTF-8 (a `&str`'s
/// bytes, or ASCII): escapes are ASCII, so the runs between them are whole characters.
fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    // Most ids and paths need no escape: one pass without early exit, which the compiler
    // vectorizes, and a single copy.
    if !s.iter().fold(false, |any, &b| any | needs_escape(b)) {
        plain_str(out, s);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in s.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&s[run..i]);
        out.extend_from_slice(escaped);
        run = i + 1;
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn line(error: Option<&str>, path: &str, trace_id: Option<&str>) -> serde_json::Value {
        let mut out = Vec::new();
        AccessLine {
            request_id: b"f64ef015e5df4b59a1dd49d5292623dd",
            trace_id: trace_id.map(str::as_bytes),
            method: "GET",
            route: "/work/cpu",
            path,
            status: 400,
            duration: Duration::from_micros(66_830),
            error,
        }
        .write_json(&mut out, b"2026-11-30T16:52:02.751944Z");
        let out = String::from_utf8(out).expect("UTF-8");
        assert!(out.ends_with("}\n"), "one line: {out}");
        assert_eq!(out.matches('\n').count(), 1, "one line: {out}");
        serde_json::from_str(&out).expect("valid JSON")
    }

    #[test]
    fn writes_the_fields_of_the_tracing_json_layer_in_its_order() {
        let out = {
            let mut out = Vec::new();
            AccessLine {
                request_id: b"r",
                trace_id: Some(b"t"),
                method: "GET",
                route: "/work/cpu",
                path: "/work/cpu",
                status: 200,
                duration: Duration::from_micros(66_830),
                error: None,
            }
            .write_json(&mut out, b"2026-11-30T16:52:02.751944Z");
            String::from_utf8(out).expect("UTF-8")
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
    fn durations_print_as_the_f64_of_milliseconds_prints() {
        let mut nanos: Vec<u64> = vec![0, 1, 9, 10, 999_999, 1_000_000, 1_000_001, 66_830_000];
        nanos.extend([
            83_264,
            120_000_000_000,
            2_000_000_000_000_000,
            u64::from(u32::MAX),
        ]);
        // And a spread of ordinary ones.
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            nanos.push(x >> (24 + x % 24));
        }
        for n in nanos {
            let access = AccessLine {
                request_id: b"r",
                trace_id: None,
                method: "GET",
                route: "/",
                path: "/",
                status: 200,
                duration: Duration::from_nanos(n),
                error: None,
            };
            let mut out = Vec::new();
            access.write_duration_ms(&mut out);
            assert_eq!(out, access.duration_ms().to_string().as_bytes(), "{n} ns");
        }
    }

    #[test]
    fn escapes_are_the_bytes_json_writers_write() {
        let mut out = Vec::new();
        json_str(&mut out, "a\"b\\c\n\r\t\u{1}\u{1f}\u{7f}é/ok".as_bytes());
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\u{7f}é/ok\""
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
