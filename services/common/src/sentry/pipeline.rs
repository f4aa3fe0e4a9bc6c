//! Envelopes to Sentry over one kept-alive HTTP/1.1 connection, pipelined: every envelope
//! queued since the last round goes out in one write, and the replies are read in order.
//!
//! Why: each sampled transaction is one envelope, one POST. Sent one at a time, each POST is
//! a write, a wait and a read: ~18 µs of kernel time per envelope on this project's bench
//! machine (localhost TCP), more than everything else a sampled request costs. Ten
//! envelopes in one write cost ~2 µs each. No well-kept Rust client pipelines (hyper and
//! ureq send one request per connection at a time), so this is the small part we write:
//! request heads, `httparse` for the reply heads, content-length and chunked bodies, rustls
//! for https. Anything unexpected (a reply that closes the connection, a malformed head, a
//! proxy in the way) makes the transport fall back to ureq, one envelope at a time.
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// A reply body larger than this is a protocol error (Sentry answers `{"id": …}`).
const MAX_BODY: usize = 64 * 1024;
/// Reply heads larger than this are a protocol error.
const MAX_HEAD: usize = 16 * 1024;

/// What the transport reads from one reply.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) rate_limits: Option<String>,
    pub(crate) retry_after: Option<String>,
    /// The server closes the connection after this reply: it does not keep requests alive.
    pub(crate) closes: bool,
}

/// Why a round did not get every reply.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RoundError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("a malformed reply: {0}")]
    Protocol(&'static str),
}

/// Where envelopes go, prepared once from the DSN.
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    /// The request line's path and the headers every request carries.
    head: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl Endpoint {
    pub(crate) fn new(dsn: &sentry::types::Dsn, auth: &str, timeout: Duration) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(dsn, auth, timeout, roots)
    }

    /// [`Endpoint::new`] trusting `roots` (Mozilla's in production, a test CA in tests).
    fn with_roots(
        dsn: &sentry::types::Dsn,
        auth: &str,
        timeout: Duration,
        roots: rustls::RootCertStore,
    ) -> Self {
        let url = dsn.envelope_api_url();
        // The DSN's host as the URL writes it (`[::1]` for an IPv6 address), which is how
        // the `host` header wants it; looked up and named for TLS without the brackets.
        let bracketed = dsn.host();
        let host = bracketed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = dsn.port();
        let https = url.scheme() == "https";
        let default_port = if https { 443 } else { 80 };
        let authority = if port == default_port {
            bracketed.to_owned()
        } else {
            format!("{bracketed}:{port}")
        };
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: {authority}\r\nx-sentry-auth: {auth}\r\n\
             content-type: application/x-sentry-envelope\r\n",
            url.path()
        );
        Self {
            host,
            port,
            head,
            tls: https.then(|| tls_config(roots)),
            timeout,
        }
    }

    fn connect(&self) -> Result<Connection, RoundError> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host resolved to nothing");
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(RoundError::Connect)?;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(tcp) => return self.wrap(tcp).map_err(RoundError::Connect),
                Err(e) => last = e,
            }
        }
        Err(RoundError::Connect(last))
    }

    fn wrap(&self, tcp: TcpStream) -> io::Result<Connection> {
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(self.timeout))?;
        tcp.set_write_timeout(Some(self.timeout))?;
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(io::Error::other)?;
                Box::new(rustls::StreamOwned::new(tls, tcp))
            }
        };
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }
}

fn tls_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Connection {
    stream: Box<dyn Stream>,
    /// Bytes read past the replies parsed so far.
    buf: Vec<u8>,
}

/// The kept-alive connection and the buffer requests are written from.
pub(crate) struct Pipeline {
    endpoint: Endpoint,
    conn: Option<Connection>,
    out: Vec<u8>,
    /// A round has been answered whole: the server reads pipelined requests (and, over
    /// https, the TLS set-up works). Until then, a failure other than a refused connection
    /// sends the transport back to ureq.
    pub(crate) proven: bool,
}

impl Pipeline {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            conn: None,
            out: Vec::with_capacity(64 * 1024),
            proven: false,
        }
    }

    /// Sends every body in one write and reads the replies in order. Returns the replies
    /// received (the first `n` bodies were answered) and the error that ended the round
    /// early, if one did. A kept-alive connection the server closed while idle is retried
    /// once on a new one, when nothing was answered on it.
    pub(crate) fn round(&mut self, bodies: &[&[u8]]) -> (Vec<Reply>, Option<RoundError>) {
        self.out.clear();
        for body in bodies {
            self.out.extend_from_slice(self.endpoint.head.as_bytes());
            self.out.extend_from_slice(b"content-length: ");
            self.out
                .extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
            self.out.extend_from_slice(b"\r\n\r\n");
            self.out.extend_from_slice(body);
        }
        let reused = self.conn.is_some();
        let (mut replies, mut error) = self.try_round(bodies.len());
        if reused && replies.is_empty() && error.is_some() {
            (replies, error) = self.try_round(bodies.len());
        }
        self.proven |= error.is_none() && replies.len() == bodies.len();
        (replies, error)
    }

    fn try_round(&mut self, expected: usize) -> (Vec<Reply>, Option<RoundError>) {
        let mut replies = Vec::with_capacity(expected);
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => match self.endpoint.connect() {
                Ok(conn) => conn,
                Err(e) => return (replies, Some(e)),
            },
        };
        let mut conn = conn;
        let result = (|| {
            conn.stream.write_all(&self.out)?;
            conn.stream.flush()?;
            while replies.len() < expected {
                let reply = read_reply(&mut conn)?;
                let closes = reply.closes;
                replies.push(reply);
                if closes {
                    break;
                }
            }
            Ok::<_, RoundError>(())
        })();
        match result {
            Ok(()) if replies.last().is_some_and(|r| r.closes) => (replies, None),
            Ok(()) => {
                self.conn = Some(conn);
                (replies, None)
            }
            Err(e) => (replies, Some(e)),
        }
    }
}

/// Reads more bytes into the connection's buffer; EOF is an error (a reply was due).
fn fill(conn: &mut Connection) -> Result<(), RoundError> {
    let mut chunk = [0u8; 8192];
    let n = conn.stream.read(&mut chunk)?;
    if n == 0 {
        return Err(RoundError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    conn.buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn read_reply(conn: &mut Connection) -> Result<Reply, RoundError> {
    let (head_len, mut reply, body) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&conn.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let (reply, body) = read_head(&parsed)?;
                break (len, reply, body);
            }
            Ok(httparse::Status::Partial) if conn.buf.len() > MAX_HEAD => {
                return Err(RoundError::Protocol("a reply head over 16 KiB"));
            }
            Ok(httparse::Status::Partial) => fill(conn)?,
            Err(_) => return Err(RoundError::Protocol("not an HTTP/1.1 reply")),
        }
    };
    conn.buf.drain(..head_len);
    match body {
        Body::Empty => {}
        Body::Length(len) => {
            while conn.buf.len() < len {
                fill(conn)?;
            }
            conn.buf.drain(..len);
        }
        Body::Chunked => skip_chunked(conn)?,
        // Delimited by the end of the connection: read it to the end, then drop it.
        Body::UntilClose => {
            reply.closes = true;
            while conn.buf.len() <= MAX_BODY {
                match fill(conn) {
                    Ok(()) => {}
                    Err(RoundError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            conn.buf.clear();
        }
    }
    Ok(reply)
}

enum Body {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

fn read_head(parsed: &httparse::Response<'_, '_>) -> Result<(Reply, Body), RoundError> {
    let status = parsed.code.ok_or(RoundError::Protocol("no status code"))?;
    let mut reply = Reply {
        status,
        closes: parsed.version == Some(0),
        ..Reply::default()
    };
    let mut body = if matches!(status, 100..=199 | 204 | 304) {
        Body::Empty
    } else {
        Body::UntilClose
    };
    for h in parsed.headers.iter() {
        let value = || std::str::from_utf8(h.value).ok().map(str::trim);
        if h.name.eq_ignore_ascii_case("content-length") {
            let len: usize = value()
                .and_then(|v| v.parse().ok())
                .ok_or(RoundError::Protocol("a bad content-length"))?;
            if len > MAX_BODY {
                return Err(RoundError::Protocol("a reply body over 64 KiB"));
            }
            if !matches!(body, Body::Empty | Body::Chunked) {
                body = Body::Length(len);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if value().is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
                body = Body::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            reply.closes = value().is_some_and(|v| v.eq_ignore_ascii_case("close"));
        } else if h.name.eq_ignore_ascii_case("x-sentry-rate-limits") {
            reply.rate_limits = value().map(str::to_owned);
        } else if h.name.eq_ignore_ascii_case("retry-after") {
            reply.retry_after = value().map(str::to_owned);
        }
    }
    Ok((reply, body))
}

/// Skips a chunked body: `<hex size>[;ext]\r\n<data>\r\n` … `0\r\n[trailers]\r\n`.
fn skip_chunked(conn: &mut Connection) -> Result<(), RoundError> {
    let mut total = 0;
    loop {
        let line_end = loop {
            if let Some(i) = conn.buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if conn.buf.len() > MAX_HEAD {
                return Err(RoundError::Protocol("a chunk size line over 16 KiB"));
            }
            fill(conn)?;
        };
        let size_text = std::str::from_utf8(&conn.buf[..line_end])
            .ok()
            .and_then(|l| l.split(';').next())
            .map(str::trim)
            .ok_or(RoundError::Protocol("a bad chunk size"))?;
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| RoundError::Protocol("a bad chunk size"))?;
        conn.buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                if let Some(i) = conn.buf.windows(2).position(|w| w == b"\r\n") {
                    let empty = i == 0;
                    conn.buf.drain(..i + 2);
                    if empty {
                        return Ok(());
                    }
                } else if conn.buf.len() > MAX_HEAD {
                    return Err(RoundError::Protocol("trailers over 16 KiB"));
                } else {
                    fill(conn)?;
                }
            }
        }
        total += size;
        if total > MAX_BODY {
            return Err(RoundError::Protocol("a reply body over 64 KiB"));
        }
        while conn.buf.len() < size + 2 {
            fill(conn)?;
        }
        conn.buf.drain(..size + 2);
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
