//! Answers that actix-http's h1 dispatcher gives by itself, without calling our service:
//! 400 (a request line or header it cannot parse, HTTP/1.1 without `Host`), 431 (a head over
//! its fixed 128 KiB buffer, or more than 96 headers) and 408 (no complete head within
//! `--client-request-timeout-ms`). No middleware sees them, and actix has no hook for them, so
//! this wrapper around each app-port TCP stream recognises them in the bytes the dispatcher
//! writes: it counts them in `loopscope_http_requests_total` (`endpoint="UNMATCHED"`), writes
//! an access-log line, and replaces the empty body with our JSON error (with an
//! `x-request-id`, like every other answer).
//!
//! Recognising them is exact, not a guess: such an answer is the last thing the dispatcher
//! writes on its connection (it closes after it), and it is the only response on the app port
//! without an `x-request-id` (our middleware adds one to every answer of our service): nothing
//! but `content-length: 0`, `connection` and `date`. The cost on the hot path is one
//! `ends_with` per write and a copy of at most [`SAMPLE`] bytes per request head read.
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::flood_trim::OpenConnection;
use crate::metrics::http::{HttpMetrics, METHODS};
use contract::ErrorBody;

/// The first bytes of a request head kept for the log line (method and path).
const SAMPLE: usize = 80;
/// The longest head the dispatcher writes for its own answers (about 110 bytes).
const MAX_ANSWER_HEAD: usize = 256;
/// The longest path echoed in the log line.
const MAX_LOGGED_PATH: usize = 64;

/// Where the answers are counted and logged: one per worker thread, shared by its connections.
#[derive(Clone)]
pub(crate) struct AnswerSink {
    /// `None`: `--disable-layers http-metrics`.
    pub(crate) metrics: Option<HttpMetrics>,
    /// `false`: `--disable-layers access-log`.
    pub(crate) access_log: bool,
    /// Named in the 408's message.
    pub(crate) head_timeout: Duration,
}

/// An app-port connection: the TCP stream, watched for the dispatcher's own answers.
pub(crate) struct WatchedStream {
    io: TcpStream,
    sink: Rc<AnswerSink>,
    accepted: Instant,
    /// When the first byte of the request being read arrived.
    head_started: Option<Instant>,
    /// The first bytes of the request being read.
    sample: [u8; SAMPLE],
    sample_len: usize,
    /// A response was written since the last read: the next bytes read start a new request.
    new_head: bool,
    /// Our replacement for the dispatcher's answer, while it is still being written.
    rewrite: Option<Rewrite>,
    /// Counts the connection while it is open (see flood_trim.rs).
    _open: OpenConnection,
}

struct Rewrite {
    bytes: Vec<u8>,
    written: usize,
}

impl WatchedStream {
    pub(crate) fn new(io: TcpStream, sink: Rc<AnswerSink>) -> Self {
        Self {
            io,
            sink,
            accepted: Instant::now(),
            head_started: None,
            sample: [0; SAMPLE],
            sample_len: 0,
            new_head: true,
            rewrite: None,
            _open: OpenConnection::new(),
        }
    }

    /// The TCP stream itself (the stall detector reads its socket).
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.io
    }

    fn note_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.new_head {
            self.new_head = false;
            self.sample_len = 0;
            self.head_started = Some(Instant::now());
        }
        let take = bytes.len().min(SAMPLE - self.sample_len);
        self.sample[self.sample_len..self.sample_len + take].copy_from_slice(&bytes[..take]);
        self.sample_len += take;
    }

    /// Writes what is left of the replacement; `Ready(Ok)` once all of it is out.
    fn drain_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rewrite) = &mut self.rewrite {
            if rewrite.written == rewrite.bytes.len() {
                self.rewrite = None;
                break;
            }
            let n =
                ready!(Pin::new(&mut self.io).poll_write(cx, &rewrite.bytes[rewrite.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rewrite.written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Counts and logs the dispatcher's answer and returns the bytes to send instead.
    fn answer(&self, head: &DispatcherAnswer<'_>) -> Vec<u8> {
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let (method, path) = method_and_path(&self.sample[..self.sample_len]);
        let (code, message) = match head.status.as_u16() {
            408 => (
                "request_timeout",
                format!(
                    "no complete request head within {} ms",
                    self.sink.head_timeout.as_millis()
                ),
            ),
            431 => (
                "request_header_fields_too_large",
                "the request head is over 128 KiB or has more than 96 headers".to_owned(),
            ),
            _ => (
                "bad_request",
                "the request is not valid HTTP/1.x (request line, headers, or no Host)".to_owned(),
            ),
        };
        let seconds = self
            .head_started
            .unwrap_or(self.accepted)
            .elapsed()
            .as_secs_f64();
        if let Some(metrics) = &self.sink.metrics {
            metrics.observe_unrouted(method, head.status, seconds);
        }
        if self.sink.access_log {
            tracing::info!(
                target: "access",
                request_id = %request_id,
                method,
                route = "UNMATCHED",
                path = %path,
                status = head.status.as_u16(),
                duration_ms = seconds * 1e3,
                error = %message,
                answered_by = "actix-http",
                "request"
            );
        }
        let body = serde_json::to_vec(&ErrorBody {
            error: code.to_owned(),
            message,
            param: None,
            request_id: Some(request_id.clone()),
            details: None,
        })
        .unwrap_or_default();
        let mut bytes = Vec::with_capacity(MAX_ANSWER_HEAD + body.len());
        bytes.extend_from_slice(head.status_line);
        bytes.extend_from_slice(b"\r\ncontent-type: application/json\r\n");
        bytes.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        bytes.extend_from_slice(b"connection: close\r\nx-request-id: ");
        bytes.extend_from_slice(request_id.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        if let Some(date) = head.date_line {
            bytes.extend_from_slice(date);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&body);
        bytes
    }
}

/// The method label (one of [`METHODS`] or `other`) and a printable, clipped path.
fn method_and_path(sample: &[u8]) -> (&'static str, String) {
    let mut tokens = sample.split(|b| *b == b' ');
    let method = tokens
        .next()
        .and_then(|m| METHODS.iter().copied().find(|k| k.as_bytes() == m))
        .unwrap_or("other");
    let path = tokens
        .next()
        .filter(|p| !p.is_empty() && p.iter().all(u8::is_ascii_graphic))
        .map_or_else(
            || "-".to_owned(),
            |p| String::from_utf8_lossy(&p[..p.len().min(MAX_LOGGED_PATH)]).into_owned(),
        );
    (method, path)
}

/// The dispatcher's own answer, found at the end of a write.
struct DispatcherAnswer<'a> {
    /// Where it starts in the write (responses before it on the connection are kept).
    start: usize,
    status: StatusCode,
    status_line: &'a [u8],
    date_line: Option<&'a [u8]>,
}

/// Finds an answer of the dispatcher's at the end of `buf`: a 400, 408 or 431 head with
/// nothing but `content-length: 0`, `connection` and `date`, ending the write.
fn dispatcher_answer(buf: &[u8]) -> Option<DispatcherAnswer<'_>> {
    const END: &[u8] = b"\r\n\r\n";
    if !buf.ends_with(END) {
        return None;
    }
    let from = buf.len().saturating_sub(MAX_ANSWER_HEAD);
    let start = from + rfind(&buf[from..], b"HTTP/1.")?;
    let head = &buf[start..buf.len() - END.len()];
    let mut lines = split_crlf(head);
    let status_line = lines.next()?;
    let status = status_line
        .get(9..12)
        .and_then(|code| StatusCode::from_bytes(code).ok())
        .filter(|s| matches!(s.as_u16(), 400 | 408 | 431))?;
    let (mut empty_body, mut date_line) = (false, None);
    for line in lines {
        let lower = line.to_ascii_lowercase();
        if lower == b"content-length: 0" {
            empty_body = true;
        } else if lower.starts_with(b"date: ") {
            date_line = Some(line);
        } else if !lower.starts_with(b"connection: ") {
            return None;
        }
    }
    empty_body.then_some(DispatcherAnswer {
        start,
        status,
        status_line,
        date_line,
    })
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn split_crlf(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(head);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.windows(2).position(|w| w == b"\r\n") {
            Some(at) => {
                rest = Some(&current[at + 2..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.note_read(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_some() {
            // The dispatcher hands back the one byte held back below: the replacement goes out
            // first, then that byte is taken (and dropped: it belonged to the replaced answer).
            ready!(this.drain_rewrite(cx))?;
            return Poll::Ready(Ok(buf.len().min(1)));
        }
        this.new_head = true;
        let Some(answer) = dispatcher_answer(buf) else {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        };
        let mut bytes = buf[..answer.start].to_vec();
        bytes.extend_from_slice(&this.answer(&answer));
        this.rewrite = Some(Rewrite { bytes, written: 0 });
        match this.drain_rewrite(cx)? {
            Poll::Ready(()) => Poll::Ready(Ok(buf.len())),
            // Not all out yet: hold back the last byte, so the dispatcher keeps its buffer
            // non-empty (and the connection open) until the replacement is written.
            Poll::Pending => Poll::Ready(Ok(buf.len() - 1)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain_rewrite(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain_rewrite(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_dispatchers_answers_and_nothing_else() {
        let date = "date: Mon, 30 Nov 2026 16:51:13 GMT";
        let bad = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n{date}\r\n\r\n"
        );
        let found = dispatcher_answer(bad.as_bytes()).expect("the 400");
        assert_eq!((found.start, found.status.as_u16()), (0, 400));
        assert_eq!(found.date_line, Some(date.as_bytes()));
        // After an earlier response on the same connection: found where it starts.
        let earlier = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-request-id: a\r\n\r\n{}";
        let both = format!("{earlier}{bad}");
        assert_eq!(
            dispatcher_answer(both.as_bytes()).map(|a| a.start),
            Some(earlier.len())
        );
        let timeout =
            format!("HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n{date}\r\n\r\n");
        assert!(dispatcher_answer(timeout.as_bytes()).is_some());
        // Our own answers carry an x-request-id (and a body, mostly): never taken.
        let ours = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: a\r\n{date}\r\n\r\n"
        );
        assert!(dispatcher_answer(ours.as_bytes()).is_none());
        let other_status = bad.replace("400 Bad Request", "404 Not Found");
        assert!(dispatcher_answer(other_status.as_bytes()).is_none());
        assert!(dispatcher_answer(&bad.as_bytes()[..bad.len() - 2]).is_none());
    }

    #[test]
    fn method_and_path_are_bounded() {
        assert_eq!(
            method_and_path(b"GET /work/io?ms=1 HTTP/1.1\r\n"),
            ("GET", "/work/io?ms=1".to_owned())
        );
        assert_eq!(method_and_path(b"GARBAGE\r\n\r\n").0, "other");
        assert_eq!(method_and_path(b"").1, "-");
        let long = format!("GET /{} HTTP/1.1", "a".repeat(70));
        assert_eq!(method_and_path(long.as_bytes()).1.len(), MAX_LOGGED_PATH);
    }
}
