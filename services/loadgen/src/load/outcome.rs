//! What became of one request, in words a person can act on: "connect_refused", not
//! "error sending request".
use std::error::Error as _;
use std::io;

/// Why a request failed. Answers with a non-2xx status are [`ErrorKind::Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Nothing listens there (ECONNREFUSED).
    ConnectRefused,
    /// The connection could not be made in time.
    ConnectTimeout,
    /// The host name does not resolve.
    Dns,
    /// Any other failure to connect (no route, TLS, ...).
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// The server closed or reset the connection before answering.
    ConnectionClosed,
    /// The answer's body broke off.
    Body,
    /// Anything else reqwest reports.
    Other,
    /// An answer with this status outside 200–299.
    Status(u16),
}

impl ErrorKind {
    /// The key in summaries and `--json`: `connect_refused`, `timeout`, `status_503`, ...
    pub fn label(self) -> String {
        match self {
            Self::ConnectRefused => "connect_refused".to_owned(),
            Self::ConnectTimeout => "connect_timeout".to_owned(),
            Self::Dns => "dns".to_owned(),
            Self::Connect => "connect".to_owned(),
            Self::Timeout => "timeout".to_owned(),
            Self::ConnectionClosed => "connection_closed".to_owned(),
            Self::Body => "body".to_owned(),
            Self::Other => "other".to_owned(),
            Self::Status(code) => format!("status_{code}"),
        }
    }

    /// The coarse outcome `loadgen serve` exports: `error_status`, `timeout` or
    /// `unreachable` (every failure to get an answer that is not a timeout).
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Status(_) => "error_status",
            Self::Timeout | Self::ConnectTimeout => "timeout",
            _ => "unreachable",
        }
    }
}

/// Classifies a reqwest error by its flags and, underneath, the io error that caused it.
pub fn classify(e: &reqwest::Error) -> ErrorKind {
    let io_kind = io_cause(e);
    if e.is_connect() {
        if e.is_timeout() || io_kind == Some(io::ErrorKind::TimedOut) {
            return ErrorKind::ConnectTimeout;
        }
        if io_kind == Some(io::ErrorKind::ConnectionRefused) {
            return ErrorKind::ConnectRefused;
        }
        if e.is_dns() {
            return ErrorKind::Dns;
        }
        return ErrorKind::Connect;
    }
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    if let Some(status) = e.status() {
        return ErrorKind::Status(status.as_u16());
    }
    if matches!(
        io_kind,
        Some(
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    ) || chain_mentions(e, "connection closed")
    {
        return ErrorKind::ConnectionClosed;
    }
    if e.is_body() || e.is_decode() {
        return ErrorKind::Body;
    }
    ErrorKind::Other
}

/// The kind of the first io error in the source chain.
fn io_cause(e: &reqwest::Error) -> Option<io::ErrorKind> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// hyper says "connection closed before message completed" without an io error beneath.
fn chain_mentions(e: &reqwest::Error, needle: &str) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.to_string().contains(needle) {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(ErrorKind::Status(503).label(), "status_503");
        assert_eq!(ErrorKind::ConnectRefused.label(), "connect_refused");
        assert_eq!(ErrorKind::Status(404).outcome(), "error_status");
        assert_eq!(ErrorKind::Timeout.outcome(), "timeout");
        assert_eq!(ErrorKind::ConnectRefused.outcome(), "unreachable");
    }

    #[tokio::test]
    async fn a_closed_port_is_connect_refused_and_a_silent_one_a_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = reqwest::Client::new();
        // Accepts (the kernel does, into the backlog) and never answers.
        let e = client
            .get(format!("http://{addr}/"))
            .timeout(std::time::Duration::from_millis(100))
            .send()
            .await
            .expect_err("nobody answers");
        assert_eq!(classify(&e), ErrorKind::Timeout, "{e:?}");
        drop(listener);
        let e = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect_err("nobody listens");
        assert_eq!(classify(&e), ErrorKind::ConnectRefused, "{e:?}");
    }
}
