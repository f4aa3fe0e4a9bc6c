//! The pipelined sender against real sockets: a plain receiver, one that closes after each
//! reply, a closed port, a silent server, and a TLS receiver with a test CA.
#![allow(clippy::unwrap_used)]
use super::*;
use std::io::Cursor;

fn conn(bytes: &[u8]) -> Connection {
    struct Fake(Cursor<Vec<u8>>);
    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // A byte at a time: every partial state is parsed.
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }
    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    Connection {
        stream: Box::new(Fake(Cursor::new(bytes.to_vec()))),
        buf: Vec::new(),
    }
}

#[test]
fn replies_are_read_in_order_whatever_their_framing() {
    let mut c = conn(
        b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n{\"id\":1}\
          HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nX-Sentry-Rate-Limits: 60:transaction\r\ntransfer-encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n0\r\nT: 1\r\n\r\n\
          HTTP/1.1 204 No Content\r\n\r\n\
          HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nrest",
    );
    let first = read_reply(&mut c).unwrap();
    assert_eq!((first.status, first.closes), (200, false));
    let second = read_reply(&mut c).unwrap();
    assert_eq!(second.status, 429);
    assert_eq!(second.retry_after.as_deref(), Some("60"));
    assert_eq!(second.rate_limits.as_deref(), Some("60:transaction"));
    assert_eq!(read_reply(&mut c).unwrap().status, 204);
    let last = read_reply(&mut c).unwrap();
    assert_eq!((last.status, last.closes), (200, true));
}

#[test]
fn a_truncated_or_foreign_reply_is_an_error_not_a_hang() {
    let mut c = conn(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort");
    assert!(matches!(read_reply(&mut c), Err(RoundError::Io(_))));
    let mut c = conn(b"SSH-2.0-OpenSSH_9.2\r\n");
    assert!(matches!(read_reply(&mut c), Err(RoundError::Protocol(_))));
    let mut c = conn(b"HTTP/1.1 200 OK\r\ncontent-length: 999999\r\n\r\n");
    assert!(matches!(read_reply(&mut c), Err(RoundError::Protocol(_))));
}

/// An envelope receiver on a free port: answers each request as it is read, `200`
/// with a JSON body, and closes a connection after its `close_after`-th reply (0: never),
/// as nginx does after `keepalive_requests`. Counts the connections, the requests it
/// took, and those sent by ureq (the transport's one-at-a-time way).
struct Receiver {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    by_ureq: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn receiver(close_after_one: bool) -> Receiver {
    receiver_closing_after(usize::from(close_after_one))
}

fn receiver_closing_after(close_after: usize) -> Receiver {
    receiver_closing(move |_, answered| close_after > 0 && answered == close_after)
}

/// A receiver that closes a connection after the reply for which `close(connection number,
/// requests answered on it)` is true.
fn receiver_closing(close: impl Fn(usize, usize) -> bool + Send + Sync + 'static) -> Receiver {
    let close = std::sync::Arc::new(close);
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let by_ureq = std::sync::Arc::new(AtomicUsize::new(0));
    let (c, r, u) = (connections.clone(), requests.clone(), by_ureq.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let connection = c.fetch_add(1, Ordering::SeqCst);
            let (r, u, close) = (r.clone(), u.clone(), close.clone());
            std::thread::spawn(move || {
                let mut answered = 0;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One whole request in `buf`: a head, then content-length bytes.
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    if buf.len() < end + 4 + len {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    }
                    buf.drain(..end + 4 + len);
                    r.fetch_add(1, Ordering::SeqCst);
                    if head.contains("user-agent: ureq") {
                        u.fetch_add(1, Ordering::SeqCst);
                    }
                    answered += 1;
                    let closing = close(connection, answered);
                    let close = if closing { "connection: close\r\n" } else { "" };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\n{close}content-length: 9\r\n\r\n{{\"id\":1}}\n"
                    );
                    stream.write_all(reply.as_bytes()).unwrap();
                    if closing {
                        return;
                    }
                }
            });
        }
    });
    Receiver {
        port,
        connections,
        requests,
        by_ureq,
    }
}

/// The transport as `init` builds it, sending to `127.0.0.1:port`.
fn transport_to(port: u16, timeout: Duration) -> crate::sentry::transport::BackingOffTransport {
    let mut options = sentry::ClientOptions::new();
    options.dsn = Some(dsn(port));
    crate::sentry::transport::BackingOffTransport::new(
        sentry::TransportOptions::try_from_client_options(&options).unwrap(),
        crate::sentry::transport::agent(timeout),
        timeout,
    )
}

/// Hands `n` error events to `transport` and waits until it has sent them.
fn send_events(transport: &impl sentry::Transport, n: usize, timeout: Duration) {
    for _ in 0..n {
        transport.send_envelope(sentry::Envelope::from(sentry::protocol::Event::default()));
    }
    assert!(transport.flush(timeout), "flushed within the timeout");
}

fn dsn(port: u16) -> sentry::types::Dsn {
    format!("http://public@127.0.0.1:{port}/1").parse().unwrap()
}

#[test]
fn a_round_goes_out_in_one_write_and_the_connection_is_kept() {
    use std::sync::atomic::Ordering;
    let rx = receiver(false);
    let mut pipeline = Pipeline::new(Endpoint::new(
        &dsn(rx.port),
        "Sentry sentry_key=public",
        Duration::from_secs(5),
    ));
    let owned: Vec<Vec<u8>> = (0..20).map(|i| format!("{{}}\n{i}").into_bytes()).collect();
    let bodies: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    for _ in 0..3 {
        let (replies, error) = pipeline.round(&bodies);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(replies.len(), 20);
        assert!(replies.iter().all(|r| r.status == 200 && !r.closes));
    }
    assert_eq!(rx.requests.load(Ordering::SeqCst), 60);
    assert_eq!(
        rx.connections.load(Ordering::SeqCst),
        1,
        "one kept-alive connection"
    );
}

#[test]
fn a_server_that_closes_answers_one_and_nothing_is_lost_silently() {
    let rx = receiver(true);
    let mut pipeline = Pipeline::new(Endpoint::new(
        &dsn(rx.port),
        "Sentry sentry_key=public",
        Duration::from_secs(5),
    ));
    let bodies: Vec<&[u8]> = vec![b"{}"; 5];
    let (replies, error) = pipeline.round(&bodies);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(replies.len(), 1, "the rest are the transport's to resend");
    assert!(replies[0].closes);
}

#[test]
fn a_closed_port_is_a_connect_error_within_the_timeout() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut pipeline = Pipeline::new(Endpoint::new(
        &dsn(port),
        "Sentry sentry_key=public",
        Duration::from_millis(500),
    ));
    let started = std::time::Instant::now();
    let (replies, error) = pipeline.round(&[b"{}"]);
    assert!(replies.is_empty());
    assert!(matches!(error, Some(RoundError::Connect(_))), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_server_that_never_answers_ends_the_round_at_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut pipeline = Pipeline::new(Endpoint::new(
        &dsn(port),
        "Sentry sentry_key=public",
        Duration::from_millis(300),
    ));
    let started = std::time::Instant::now();
    let (replies, error) = pipeline.round(&[b"{}"]);
    assert!(replies.is_empty());
    assert!(matches!(error, Some(RoundError::Io(_))), "{error:?}");
    // One retry on a fresh connection at most: two timeouts.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

#[test]
fn the_transport_resends_one_by_one_to_a_server_that_closes_and_loses_nothing() {
    use std::sync::atomic::Ordering;
    let rx = receiver(true);
    let timeout = Duration::from_secs(5);
    let transport = transport_to(rx.port, timeout);
    send_events(&transport, 5, timeout);
    assert_eq!(rx.requests.load(Ordering::SeqCst), 5);
    // Negative control of the test below: this server does send ureq's requests here.
    assert!(rx.by_ureq.load(Ordering::SeqCst) >= 3, "fell back to ureq");
}

/// A TLS envelope receiver for `localhost` (certificate from testdata/, signed by the
/// test CA in testdata/ca.pem, valid until 2125): answers one round of `n` requests.
fn tls_receiver(n: usize) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain =
        vec![CertificateDer::from_pem_slice(include_bytes!("testdata/localhost.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/localhost.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = rustls::ServerConnection::new(config).unwrap();
        let mut stream = rustls::StreamOwned::new(tls, tcp);
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        // Reads until `n` bodies have arrived (each request's body is `{}`), then answers.
        while seen.windows(4).filter(|w| w == b"\r\n\r\n").count() < n || !seen.ends_with(b"{}") {
            let k = stream.read(&mut chunk).unwrap();
            assert!(k > 0, "the client closed early");
            seen.extend_from_slice(&chunk[..k]);
        }
        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".repeat(n);
        stream.write_all(&reply).unwrap();
        stream.flush().unwrap();
    });
    port
}

#[test]
fn https_rounds_verify_the_server_and_are_pipelined_too() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let port = tls_receiver(3);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(include_bytes!("testdata/ca.pem")).unwrap())
        .unwrap();
    let dsn: sentry::types::Dsn = format!("https://public@localhost:{port}/1")
        .parse()
        .unwrap();
    let mut pipeline = Pipeline::new(Endpoint::with_roots(
        &dsn,
        "Sentry sentry_key=public",
        Duration::from_secs(5),
        roots,
    ));
    let (replies, error) = pipeline.round(&[b"{}", b"{}", b"{}"]);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(replies.len(), 3);
    assert!(pipeline.proven);

    // Negative control: Mozilla's roots do not know the test CA, so the handshake fails.
    let port = tls_receiver(1);
    let dsn: sentry::types::Dsn = format!("https://public@localhost:{port}/1")
        .parse()
        .unwrap();
    let mut pipeline = Pipeline::new(Endpoint::new(&dsn, "k", Duration::from_secs(5)));
    let (replies, error) = pipeline.round(&[b"{}"]);
    assert!(replies.is_empty());
    assert!(matches!(error, Some(RoundError::Io(_))), "{error:?}");
}

#[test]
fn a_server_that_closes_now_and_then_keeps_the_pipeline_and_gets_everything() {
    use std::sync::atomic::Ordering;
    let rx = receiver_closing_after(3);
    let timeout = Duration::from_secs(5);
    let transport = transport_to(rx.port, timeout);
    send_events(&transport, 10, timeout);
    assert_eq!(rx.requests.load(Ordering::SeqCst), 10);
    assert_eq!(
        rx.by_ureq.load(Ordering::SeqCst),
        0,
        "still pipelined, no fallback"
    );
    assert!(
        rx.connections.load(Ordering::SeqCst) >= 4,
        "a new connection after each close"
    );
}

#[test]
fn a_server_that_kept_connections_alive_and_then_closes_after_every_reply_keeps_the_pipeline() {
    use std::sync::atomic::Ordering;
    // The first connection answers a whole round and closes after its 5th reply; every later
    // one closes after each reply (an overloaded server).
    let rx = receiver_closing(|connection, answered| {
        if connection == 0 {
            answered == 5
        } else {
            answered == 1
        }
    });
    let timeout = Duration::from_secs(5);
    let transport = transport_to(rx.port, timeout);
    send_events(&transport, 5, timeout);
    send_events(&transport, 10, timeout);
    assert_eq!(rx.requests.load(Ordering::SeqCst), 15);
    assert_eq!(
        rx.by_ureq.load(Ordering::SeqCst),
        0,
        "a server that kept a connection alive once is not sent to ureq"
    );
    assert!(
        rx.connections.load(Ordering::SeqCst) >= 11,
        "one reply per connection"
    );
}

#[test]
fn an_ipv6_dsn_is_reached_and_named_with_brackets() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let seen = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while !head.ends_with(b"{}") {
            let n = stream.read(&mut chunk).unwrap();
            head.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            .unwrap();
        String::from_utf8(head).unwrap()
    });
    let dsn: sentry::types::Dsn = format!("http://public@[::1]:{port}/1").parse().unwrap();
    let mut pipeline = Pipeline::new(Endpoint::new(&dsn, "k", Duration::from_secs(5)));
    let (replies, error) = pipeline.round(&[b"{}"]);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(replies.len(), 1);
    let request = seen.join().unwrap();
    assert!(
        request.contains(&format!("host: [::1]:{port}\r\n")),
        "{request}"
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a plain test thread, no event loop
fn an_idle_transport_asleep_on_its_queue_is_dropped_at_once() {
    let rx = receiver(false);
    let timeout = Duration::from_secs(5);
    let transport = transport_to(rx.port, timeout);
    send_events(&transport, 1, timeout);
    // Past the quiet spell: the sender sleeps on its queue, woken only by a task or after a
    // second (the client-report look).
    std::thread::sleep(Duration::from_millis(400));
    let dropping = std::time::Instant::now();
    drop(transport);
    assert!(
        dropping.elapsed() < Duration::from_millis(500),
        "the stop did not wake the sender: the drop took {:?}",
        dropping.elapsed()
    );
}
